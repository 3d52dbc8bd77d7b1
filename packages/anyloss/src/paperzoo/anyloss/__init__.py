"""paperzoo.anyloss: AnyLoss, confusion-matrix metrics as differentiable losses (Han, Moniz & Chawla, 2024).

A sigmoid probability ``p`` is amplified towards 0/1 by ``A(p) = sigmoid(L (p - 1/2))``; the
amplified values fill a soft confusion matrix over the batch, and any metric of its four cells
(accuracy, F-beta, G-mean, balanced accuracy, or your own) becomes the loss ``1 - metric``.
"""

from paperzoo.anyloss.confusion import (
    METRICS,
    Confusion,
    MetricName,
    confusion_metrics,
    soft_confusion,
)
from paperzoo.anyloss.extensions import (
    HybridAnyLoss,
    OneVsRestAnyLoss,
    WeightedBCELoss,
    hybrid_anyloss,
    one_vs_rest_anyloss,
    weighted_bce,
)
from paperzoo.anyloss.losses import (
    AccuracyAnyLoss,
    AnyLoss,
    BalancedAccuracyAnyLoss,
    CollapseWarning,
    DegenerateBatchWarning,
    FBetaAnyLoss,
    GMeanAnyLoss,
    InputType,
    MetricFn,
    ZeroDivision,
    anyloss,
    approximation,
)

__all__ = [
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
]

__version__ = "0.1.0"
