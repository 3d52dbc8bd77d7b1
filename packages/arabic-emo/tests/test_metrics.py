"""multilabel_metrics against scikit-learn and the official scorer's Jaccard convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperzoo.arabic_emo import multilabel_metrics

sk = pytest.importorskip("sklearn.metrics")


def _random_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, k = 40, 11
    t = (rng.random((n, k)) < rng.uniform(0.05, 0.4)).astype(np.int64)
    p = (rng.random((n, k)) < rng.uniform(0.05, 0.4)).astype(np.int64)
    t[rng.integers(0, n, 3)] = 0  # some all-empty gold rows
    p[rng.integers(0, n, 3)] = 0
    p[:, rng.integers(0, k)] = 0  # a label never predicted (ill-defined precision)
    return t, p


@pytest.mark.parametrize("seed", range(50))
def test_metrics_equal_sklearn_on_random_matrices(seed: int) -> None:
    t, p = _random_pair(seed)
    m = multilabel_metrics(t, p)
    ref = {
        "jaccard": sk.jaccard_score(t, p, average="samples", zero_division=1),
        "hamming": sk.hamming_loss(t, p),
        "micro_p": sk.precision_score(t, p, average="micro", zero_division=0),
        "micro_r": sk.recall_score(t, p, average="micro", zero_division=0),
        "micro_f1": sk.f1_score(t, p, average="micro", zero_division=0),
        "macro_p": sk.precision_score(t, p, average="macro", zero_division=0),
        "macro_r": sk.recall_score(t, p, average="macro", zero_division=0),
        "macro_f1": sk.f1_score(t, p, average="macro", zero_division=0),
    }
    for key, value in ref.items():
        assert abs(m[key] - value) < 1e-12, (key, m[key], value)
    per_f1 = sk.f1_score(t, p, average=None, zero_division=0)
    np.testing.assert_allclose(m["per_label"]["f1"], per_f1, atol=1e-12)
    np.testing.assert_array_equal(m["per_label"]["support"], t.sum(axis=0))


def _official_jaccard(t: np.ndarray, p: np.ndarray) -> float:
    """The old ``jaccard_similarity_score`` of the official scorer, row by row: empty -> 1."""
    scores = []
    for a, b in zip(t, p, strict=True):
        union = int(((a + b) > 0).sum())
        scores.append(1.0 if union == 0 else int((a * b).sum()) / union)
    return float(np.mean(scores))


@pytest.mark.parametrize("seed", range(5))
def test_jaccard_follows_the_official_scorer_row_loop(seed: int) -> None:
    t, p = _random_pair(seed)
    assert abs(multilabel_metrics(t, p)["jaccard"] - _official_jaccard(t, p)) < 1e-12


def test_all_empty_rows_score_jaccard_one() -> None:
    z = np.zeros((5, 11), dtype=np.int64)
    m = multilabel_metrics(z, z)
    assert m["jaccard"] == 1.0 and m["hamming"] == 0.0 and m["macro_f1"] == 0.0


def test_torch_and_numpy_inputs_agree_and_bool_is_accepted() -> None:
    t, p = _random_pair(7)
    a = multilabel_metrics(t, p)
    b = multilabel_metrics(torch.from_numpy(t).bool(), torch.from_numpy(p).float())
    assert a == b


def test_zero_division_sets_the_value_of_undefined_ratios() -> None:
    t, p = _random_pair(3)
    m = multilabel_metrics(t, p, zero_division=1.0)
    ref = sk.precision_score(t, p, average="macro", zero_division=1)
    assert abs(m["macro_p"] - ref) < 1e-12


def test_bad_metric_inputs_get_clear_errors() -> None:
    t, p = _random_pair(0)
    with pytest.raises(ValueError, match="y_true, y_pred: expected the same shape"):
        multilabel_metrics(t, p[:, :5])
    with pytest.raises(ValueError, match=r"y_pred: expected values in \{0, 1\}"):
        multilabel_metrics(t, p * 2)
    with pytest.raises(TypeError, match="y_true"):
        multilabel_metrics(t.tolist(), p)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="zero_division"):
        multilabel_metrics(t, p, zero_division=2.0)
