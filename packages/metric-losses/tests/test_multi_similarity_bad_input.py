"""Bad input to the MS loss, its miner and the similarity-level functions: clear errors naming the
argument (spec section 9), and the warnings on degenerate batches."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor

from paperzoo.metric_losses import (
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    gpw_weights,
    ms_pair_weights,
    multi_similarity_loss,
    multi_similarity_loss_from_similarity,
    multi_similarity_masks,
    pair_masks,
    similarity_matrix,
)


def _batch() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(12, 8, generator=g), torch.arange(4).repeat_interleave(3)


def _ok() -> tuple[Tensor, Tensor]:
    return torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"beta": -1.0}, "beta"),
        ({"epsilon": -0.1}, "epsilon"),
        ({"reduction": "avg"}, "reduction"),
        ({"similarity": "euclid"}, "similarity"),
    ],
)
def test_invalid_hyper_parameters_raise_naming_the_argument(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        MultiSimilarityLoss(**kwargs)  # type: ignore[arg-type]
    e, y = _ok()
    with pytest.raises(ValueError, match=match):
        multi_similarity_loss(e, y, **kwargs)  # type: ignore[arg-type]


def test_bad_embeddings_and_labels_raise_clear_errors() -> None:
    e, y = _ok()
    loss = MultiSimilarityLoss()
    with pytest.raises(ValueError, match="embeddings: expected a 2-D tensor"):
        loss(e.unsqueeze(0), y)
    with pytest.raises(TypeError, match="embeddings: expected a floating-point tensor"):
        loss(e.long(), y)
    with pytest.raises(TypeError, match="labels: expected an integer dtype"):
        loss(e, y.float())
    with pytest.raises(ValueError, match="labels: expected a 1-D tensor"):
        loss(e, y.unsqueeze(1))
    with pytest.raises(ValueError, match=r"labels: expected 6 labels \(one per row\), got 5"):
        loss(e, y[:5])
    with pytest.raises(ValueError, match="ref_embeddings, ref_labels: expected both or neither"):
        loss(e, y, ref_embeddings=e)
    with pytest.raises(
        ValueError, match=r"ref_embeddings: expected dimension 4 \(like embeddings\), got 3"
    ):
        loss(e, y, e[:, :3], y)
    bad = e.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="^embeddings: expected finite values"):
        loss(bad, y)
    with pytest.raises(ValueError, match="ref_embeddings: expected finite values"):
        loss(e, y, bad, y)
    with pytest.raises(ValueError, match="embeddings: expected at least 2 rows"):
        loss(e[:1], y[:1])
    with pytest.raises(ValueError, match="labels: expected non-negative labels"):
        loss(e, y - 1)
    with pytest.raises(ValueError, match=r"pairs: expected a 4-tuple \(a1, p, a2, n\), got 2"):
        loss(e, y, pairs=(y, y))
    with pytest.raises(ValueError, match=r"pairs\.p: expected indices in \[0, 6\), got range"):
        loss(e, y, pairs=(y, y + 10, y, y))


def test_miner_rejects_bad_input_too() -> None:
    e, y = _ok()
    with pytest.raises(ValueError, match="epsilon: expected value >= 0"):
        MultiSimilarityMiner(epsilon=-1.0)
    with pytest.raises(ValueError, match="labels: expected 6 labels"):
        MultiSimilarityMiner()(e, y[:3])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base": float("nan")}, "base: expected a finite value, got nan"),
        ({"base": float("inf")}, "base: expected a finite value, got inf"),
        ({"alpha": float("inf")}, "alpha: expected a finite value > 0, got inf"),
        ({"beta": float("inf")}, "beta: expected a finite value > 0, got inf"),
    ],
)
def test_non_finite_hyper_parameters_raise_instead_of_returning_nan(
    kwargs: dict[str, float], match: str
) -> None:
    e, y = _batch()
    with pytest.raises(ValueError, match=match):
        MultiSimilarityLoss(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        multi_similarity_loss(e, y, **kwargs)  # type: ignore[arg-type]


def test_boolean_or_2d_pair_indices_raise_a_type_error_naming_the_tensor() -> None:
    e, y = _batch()
    mask = torch.ones(12, dtype=torch.bool)
    with pytest.raises(TypeError, match=r"pairs\.a1: expected a 1-D integer index tensor"):
        MultiSimilarityLoss()(e, y, pairs=(mask, mask, mask, mask))
    idx = torch.zeros(1, 1, dtype=torch.long)
    with pytest.raises(TypeError, match=r"pairs\.a1: expected a 1-D integer index tensor"):
        MultiSimilarityLoss()(e, y, pairs=(idx, idx, idx, idx))


def test_similarity_level_functions_check_shapes_naming_the_argument() -> None:
    g = torch.Generator().manual_seed(5)
    y = torch.arange(3).repeat_interleave(2)
    rect = torch.rand(6, 8, generator=g)
    square = torch.rand(6, 6, generator=g)
    with pytest.raises(ValueError, match="sim: expected the square batch-vs-batch matrix"):
        multi_similarity_loss_from_similarity(rect, y)
    with pytest.raises(ValueError, match="sim: expected the square batch-vs-batch matrix"):
        multi_similarity_masks(rect, y)
    with pytest.raises(ValueError, match="sim: expected the square batch-vs-batch matrix"):
        gpw_weights(lambda s: s.sum(), rect, y)
    with pytest.raises(ValueError, match=r"ref_labels: expected 8 labels \(one per row\), got 7"):
        multi_similarity_loss_from_similarity(rect, y, torch.arange(7))
    with pytest.raises(ValueError, match="labels: expected 6 labels"):
        multi_similarity_loss_from_similarity(square, y[:4])
    with pytest.raises(ValueError, match="sim: expected a 2-D tensor"):
        multi_similarity_loss_from_similarity(square[0], y)
    with pytest.raises(TypeError, match="labels: expected an integer dtype"):
        multi_similarity_loss_from_similarity(square, y.float())
    with pytest.raises(TypeError, match="labels: expected an integer dtype"):
        pair_masks(y.float())
    pos, neg = pair_masks(y)
    with pytest.raises(ValueError, match="pos_mask: expected a bool tensor of sim's shape"):
        ms_pair_weights(square, pos[:, :5], neg)
    with pytest.raises(ValueError, match="embeddings: expected a 2-D tensor"):
        similarity_matrix(torch.rand(6))
    with pytest.raises(
        ValueError, match=r"ref_embeddings: expected dimension 4 \(like embeddings\), got 3"
    ):
        similarity_matrix(torch.rand(2, 4), torch.rand(5, 3))
    # the checks do not change a valid call
    out = multi_similarity_loss_from_similarity(rect, y, torch.arange(8) % 3)
    assert torch.isfinite(out)


def test_miner_without_validation_mines_the_same_pairs_and_skips_the_checks() -> None:
    e, y = _batch()
    for a, b in zip(
        MultiSimilarityMiner()(e, y), MultiSimilarityMiner(validate=False)(e, y), strict=True
    ):
        assert torch.equal(a, b)
    bad = e.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="embeddings: expected finite values"):
        MultiSimilarityMiner()(bad, y)
    MultiSimilarityMiner(validate=False)(bad, y)  # no check, no sync on the NaN test


def test_given_pairs_are_range_checked_only_when_validating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    e, y = _batch()
    pairs = MultiSimilarityMiner()(e, y)
    ref = MultiSimilarityLoss()(e, y, pairs=pairs)
    syncs: list[str] = []
    real_int = int

    def counting_int(x: object, *args: object) -> int:
        if isinstance(x, Tensor):
            syncs.append("int")
        return real_int(x, *args)  # type: ignore[call-overload,no-any-return]

    import paperzoo.metric_losses.multi_similarity as ms

    monkeypatch.setattr(ms, "int", counting_int, raising=False)
    out = MultiSimilarityLoss(validate=False)(e, y, pairs=pairs)
    assert syncs == []
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    MultiSimilarityLoss()(e, y, pairs=pairs)
    assert syncs  # the validating call does read the index ranges


# --------------------------------------------------------------------------- warnings


def test_zero_norm_embedding_warns_and_stays_finite() -> None:
    e, y = _ok()
    e[0] = 0.0
    with pytest.warns(RuntimeWarning, match="zero-norm"):
        out = MultiSimilarityLoss()(e, y)
    assert torch.isfinite(out)


def test_zero_norm_warning_says_that_the_gradient_explodes() -> None:
    e, y = _batch()
    e[0] = 0.0
    e.requires_grad_(True)
    with pytest.warns(RuntimeWarning, match="gradient is scaled by 1/1e-12"):
        MultiSimilarityLoss()(e, y).backward()
    assert e.grad is not None
    assert float(e.grad[0].abs().max()) > 1e6  # what the warning announces


@pytest.mark.parametrize(
    ("labels", "missing"),
    [
        (torch.arange(6), "no positive pair"),  # every label distinct
        (torch.zeros(6, dtype=torch.long), "no negative pair"),  # one class
    ],
)
def test_batch_without_positive_or_negative_pairs_warns(labels: Tensor, missing: str) -> None:
    # such a batch used to return 0 (no gradient) silently: a sampler mistake went unnoticed
    e, _ = _ok()
    e.requires_grad_(True)
    with pytest.warns(RuntimeWarning, match=f"labels: the batch has {missing}.*MPerClassSampler"):
        out = MultiSimilarityLoss()(e, labels)
    assert float(out.detach()) == 0.0
    sim = similarity_matrix(e.detach())
    with pytest.warns(RuntimeWarning, match=missing):
        multi_similarity_loss_from_similarity(sim, labels)


def test_given_pairs_without_a_negative_warn() -> None:
    e, y = _ok()
    pairs = MultiSimilarityMiner()(e, y)
    none = pairs.a2[:0]
    with pytest.warns(
        RuntimeWarning, match="pairs: the batch has no negative pair among the given"
    ):
        out = MultiSimilarityLoss()(e, y, pairs=(pairs.a1, pairs.p, none, none))
    assert float(out) == 0.0


def test_half_empty_batch_under_pml_semantics_says_the_other_half_is_kept() -> None:
    e, _ = _ok()
    one_class = torch.zeros(6, dtype=torch.long)
    with pytest.warns(RuntimeWarning, match="keeps only its other half"):
        out = MultiSimilarityLoss(mining=False, skip_incomplete_anchors=False)(e, one_class)
    assert float(out) > 0.0


def test_a_batch_with_both_kinds_of_pair_or_without_validation_does_not_warn() -> None:
    e, y = _ok()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MultiSimilarityLoss()(e, y)
        MultiSimilarityLoss(validate=False)(e, torch.arange(6))  # no check, no host sync
