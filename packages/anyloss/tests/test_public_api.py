"""The exported surface changes only on purpose; every public name has a docstring."""

from __future__ import annotations

import inspect

import paperzoo.anyloss as al

EXPECTED = {
    "METRICS",
    "AccuracyAnyLoss",
    "AnyLoss",
    "BalancedAccuracyAnyLoss",
    "CollapseWarning",
    "Confusion",
    "DegenerateBatchWarning",
    "FBetaAnyLoss",
    "GMeanAnyLoss",
    "HybridAnyLoss",
    "InputType",
    "MetricFn",
    "MetricName",
    "OneVsRestAnyLoss",
    "WeightedBCELoss",
    "ZeroDivision",
    "__version__",
    "anyloss",
    "approximation",
    "confusion_metrics",
    "hybrid_anyloss",
    "one_vs_rest_anyloss",
    "soft_confusion",
    "weighted_bce",
}


def test_public_api_snapshot() -> None:
    assert set(al.__all__) == EXPECTED
    assert len(al.__all__) == len(set(al.__all__))


def test_public_functions_and_classes_have_docstrings() -> None:
    for name in al.__all__:
        obj = getattr(al, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), name
