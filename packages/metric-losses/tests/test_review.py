"""Bad input, mixed dtypes/devices and half precision found in the user-facing review."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from paperzoo.metric_losses import (
    FewShotLoss,
    ICNNLoss,
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    few_shot_loss,
    gpw_weights,
    icnn_loss,
    ms_pair_weights,
    multi_similarity_loss,
    multi_similarity_loss_from_similarity,
    multi_similarity_masks,
    pair_masks,
    proto_logits,
    proto_triplet_loss,
    prototypes,
    recall_at_k,
    similarity_matrix,
)


def _episode(seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A 5-way 2-shot 3-query episode whose points sit far from the origin (large norms)."""
    g = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.randn(5, 32, generator=g) + 5.0
    sl = torch.arange(5).repeat_interleave(2)
    ql = torch.arange(5).repeat_interleave(3)
    s = centres[sl] + 0.3 * torch.randn(10, 32, generator=g)
    q = centres[ql] + 0.3 * torch.randn(15, 32, generator=g)
    return s, sl, q, ql


def _batch() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(12, 8, generator=g), torch.arange(4).repeat_interleave(3)


# --------------------------------------------------------------------------- prototypes / logits


def test_prototypes_validates_labels_before_counting_them() -> None:
    # bincount used to run first and raised torch's own errors for these labels
    s, sl, _, _ = _episode()
    with pytest.raises(TypeError, match="support_labels must be an integer"):
        prototypes(s, sl.float(), 5)
    with pytest.raises(ValueError, match="support_labels must be non-negative"):
        prototypes(s, sl - 1, 5)
    with pytest.raises(ValueError, match="support_labels must be 1-D"):
        prototypes(s, sl.view(2, 5), 5)
    with pytest.raises(TypeError, match="support_labels must be a torch.Tensor"):
        prototypes(s, sl.tolist(), 5)  # type: ignore[arg-type]


def test_proto_logits_rejects_bad_shapes_naming_the_argument() -> None:
    s, sl, q, _ = _episode()
    protos = prototypes(s, sl, 5)
    with pytest.raises(TypeError, match="query must be a 2-D floating"):
        proto_logits(q[0], protos)
    with pytest.raises(TypeError, match="protos must be a 2-D floating"):
        proto_logits(q, protos.long())
    with pytest.raises(ValueError, match="protos has dimension 31 but query has 32"):
        proto_logits(q, protos[:, :31])


# --------------------------------------------------------------------------- episodes


def test_episode_with_unequal_class_counts_is_rejected_in_every_entry_point() -> None:
    s, sl, q, ql = _episode()
    sl_bad = torch.tensor([0, 0, 0, 1, 1, 1, 2, 3, 4, 4])  # 10 rows, 5 classes, uneven
    with pytest.raises(
        ValueError, match=r"support_labels must hold every class .* \[3, 3, 1, 1, 2\]"
    ):
        ICNNLoss()(s, sl_bad, q, ql)
    ql_bad = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
    with pytest.raises(ValueError, match="query_labels must hold every class"):
        icnn_loss(s, sl, q, ql_bad)
    with pytest.raises(ValueError, match="query_labels must hold every class"):
        FewShotLoss()(s, sl, q, ql_bad)
    # validate=False skips the (synchronising) count check, as the reproduction runs it
    assert torch.isfinite(icnn_loss(s, sl, q, ql_bad, validate=False))


def test_few_shot_losses_promote_mixed_dtypes_like_a_binary_op() -> None:
    s, sl, q, ql = _episode()
    ref, _ = FewShotLoss()(s.double(), sl, q.double(), ql)
    out, _ = FewShotLoss()(s, sl, q.double(), ql)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    protos = prototypes(s, sl, 5)
    pt = proto_triplet_loss(q.double(), ql, protos)
    torch.testing.assert_close(pt, proto_triplet_loss(q.double(), ql, protos.double()))
    assert proto_logits(q.double(), protos).dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_few_shot_loss_under_autocast_equals_float32(dtype: torch.dtype) -> None:
    # autocast used to run the distance GEMM in half precision, where |x|^2 + |c|^2 - 2<x, c>
    # cancels catastrophically for embeddings with large norms
    s, sl, q, ql = _episode()
    ref, ref_parts = FewShotLoss()(s, sl, q, ql)
    with torch.autocast("cpu", dtype=dtype):
        out, parts = FewShotLoss()(s, sl, q, ql)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    for name, value in parts.items():
        torch.testing.assert_close(value, ref_parts[name], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_few_shot_inputs_keep_distances_accurate(dtype: torch.dtype) -> None:
    s, sl, q, ql = _episode()
    sh, qh = s.to(dtype), q.to(dtype)
    protos = prototypes(sh, sl, 5)
    logits = proto_logits(qh, protos)
    assert logits.dtype == dtype
    exact = proto_logits(qh.double(), protos.double())
    # the error is the output's rounding (relative), not cancellation of |x|^2 ~ 2000
    torch.testing.assert_close(logits.double(), exact, rtol=1e-2, atol=0.05)
    loss, _ = few_shot_loss(sh, sl, qh, ql)
    ref, _ = few_shot_loss(sh.double(), sl, qh.double(), ql)
    assert torch.isfinite(loss)
    assert float(loss) == pytest.approx(float(ref), abs=2e-3)


def test_half_precision_distances_beyond_fp16_range_stay_finite() -> None:
    # squared distances of ~1e5 overflow float16 (max 65504); the distances themselves do not
    s, sl, q, ql = _episode()
    s, q = 20.0 * s, 20.0 * q
    protos = prototypes(s, sl, 5)
    pt = proto_triplet_loss(q.half(), ql, protos.half(), margin=50.0)
    assert pt.dtype == torch.float16
    assert torch.isfinite(pt)
    ref = proto_triplet_loss(q.double(), ql, protos.double(), margin=50.0)
    assert float(pt) == pytest.approx(float(ref), rel=1e-2)
    score = icnn_loss(s.half(), sl, q.half(), ql)
    assert score.dtype == torch.float16
    assert float(score) == pytest.approx(float(icnn_loss(s.double(), sl, q.double(), ql)), abs=2e-3)


# --------------------------------------------------------------------------- MS loss and miner


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base": float("nan")}, "base must be finite"),
        ({"base": float("inf")}, "base must be finite"),
        ({"alpha": float("inf")}, "alpha must be finite"),
        ({"beta": float("inf")}, "beta must be finite"),
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
    with pytest.raises(TypeError, match=r"pairs\.a1 must be a 1-D integer index tensor"):
        MultiSimilarityLoss()(e, y, pairs=(mask, mask, mask, mask))
    idx = torch.zeros(1, 1, dtype=torch.long)
    with pytest.raises(TypeError, match=r"pairs\.a1 must be a 1-D integer index tensor"):
        MultiSimilarityLoss()(e, y, pairs=(idx, idx, idx, idx))


def test_miner_returns_the_pairs_the_loss_uses_on_degenerate_batches() -> None:
    e, _ = _batch()
    for labels in (torch.zeros(12, dtype=torch.long), torch.arange(12)):
        pairs = MultiSimilarityMiner()(e, labels)
        assert all(t.numel() == 0 and t.dtype == torch.long for t in pairs)
        given = MultiSimilarityLoss()(e, labels, pairs=pairs)
        assert float(given) == 0.0


def test_second_order_gradient_raises_instead_of_being_silently_wrong() -> None:
    # the closed-form backward treats the pair weights as constants; a Hessian-vector product
    # through it used to differ from finite differences by more than the HVP itself
    e, y = _batch()
    e = e.double().requires_grad_(True)
    loss = MultiSimilarityLoss(mining=False)(e, y)
    with pytest.raises(RuntimeError, match="create_graph=True"):
        torch.autograd.grad(loss, e, create_graph=True)
    (g,) = torch.autograd.grad(loss, e)  # first order still works
    assert torch.isfinite(g).all()


def test_zero_norm_warning_says_that_the_gradient_explodes() -> None:
    e, y = _batch()
    e[0] = 0.0
    e.requires_grad_(True)
    with pytest.warns(RuntimeWarning, match="gradient is scaled by 1/1e-12"):
        MultiSimilarityLoss()(e, y).backward()
    assert e.grad is not None
    assert float(e.grad[0].abs().max()) > 1e6  # what the warning announces


def test_similarity_level_functions_check_shapes_naming_the_argument() -> None:
    g = torch.Generator().manual_seed(5)
    y = torch.arange(3).repeat_interleave(2)
    rect = torch.rand(6, 8, generator=g)
    square = torch.rand(6, 6, generator=g)
    with pytest.raises(ValueError, match="without ref_labels it must be the square"):
        multi_similarity_loss_from_similarity(rect, y)
    with pytest.raises(ValueError, match="without ref_labels it must be the square"):
        multi_similarity_masks(rect, y)
    with pytest.raises(ValueError, match="without ref_labels it must be the square"):
        gpw_weights(lambda s: s.sum(), rect, y)
    with pytest.raises(ValueError, match="ref_labels has length 7 but must have 8"):
        multi_similarity_loss_from_similarity(rect, y, torch.arange(7))
    with pytest.raises(ValueError, match="labels has length 4 but must have 6"):
        multi_similarity_loss_from_similarity(square, y[:4])
    with pytest.raises(TypeError, match="sim must be a 2-D floating-point"):
        multi_similarity_loss_from_similarity(square[0], y)
    with pytest.raises(TypeError, match="labels must be a 1-D integer tensor"):
        multi_similarity_loss_from_similarity(square, y.float())
    with pytest.raises(TypeError, match="labels must be a 1-D integer tensor"):
        pair_masks(y.float())
    pos, neg = pair_masks(y)
    with pytest.raises(ValueError, match="pos_mask must be a bool tensor of sim's shape"):
        ms_pair_weights(square, pos[:, :5], neg)
    with pytest.raises(TypeError, match="embeddings must be a 2-D floating-point"):
        similarity_matrix(torch.arange(6))
    with pytest.raises(ValueError, match="ref_embeddings has dimension 3 but embeddings has 4"):
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
    with pytest.raises(ValueError, match="embeddings contains NaN"):
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


# --------------------------------------------------------------------------- retrieval


def test_recall_at_k_rejects_empty_or_non_integer_ks() -> None:
    e, y = _batch()
    with pytest.raises(TypeError, match="ks must be a non-empty sequence of ints"):
        recall_at_k(e, y, ks=())
    with pytest.raises(TypeError, match="ks must be a non-empty sequence of ints"):
        recall_at_k(e, y, ks=(1.5,))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- devices (CUDA)


@pytest.mark.gpu
def test_labels_on_the_host_are_accepted_with_cuda_embeddings() -> None:
    e, y = _batch()
    ec = e.double()
    pc = MultiSimilarityMiner()(ec, y)
    pg = MultiSimilarityMiner()(ec.cuda(), y)  # labels stay on the CPU
    for a, b in zip(pc, pg, strict=True):
        torch.testing.assert_close(b.cpu(), a)
    s, sl, q, ql = _episode()
    lc, _ = FewShotLoss()(s.double(), sl, q.double(), ql)
    lg, _ = FewShotLoss()(s.double().cuda(), sl, q.double().cuda(), ql)
    torch.testing.assert_close(lg.cpu(), lc, rtol=0, atol=1e-9)
    s64, q64 = s.double(), q.double()
    protos = prototypes(s64.cuda(), sl, 5)
    assert protos.device.type == "cuda"
    ptg = proto_triplet_loss(q64.cuda(), ql, protos)
    ptc = proto_triplet_loss(q64, ql, prototypes(s64, sl, 5))
    torch.testing.assert_close(ptg.cpu(), ptc, rtol=0, atol=1e-9)


@pytest.mark.gpu
def test_reference_set_on_another_device_raises_naming_both() -> None:
    e, y = _batch()
    with pytest.raises(ValueError, match="ref_embeddings is on cpu but embeddings is on cuda"):
        MultiSimilarityLoss()(e.cuda(), y.cuda(), e, y)
