"""Few-shot losses across dtypes: mixed inputs promote like a binary op, and half precision (inputs
or autocast) keeps the distances accurate (computed in float32) and finite."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from paperzoo.metric_losses import (
    FewShotLoss,
    few_shot_loss,
    icnn_loss,
    proto_logits,
    proto_triplet_loss,
    prototypes,
)


def test_few_shot_losses_promote_mixed_dtypes_like_a_binary_op(
    far_episode: tuple[Tensor, Tensor, Tensor, Tensor],
) -> None:
    s, sl, q, ql = far_episode
    ref = FewShotLoss()(s.double(), sl, q.double(), ql)["loss"]
    out = FewShotLoss()(s, sl, q.double(), ql)["loss"]
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    protos = prototypes(s, sl, 5)
    pt = proto_triplet_loss(q.double(), ql, protos)
    torch.testing.assert_close(pt, proto_triplet_loss(q.double(), ql, protos.double()))
    assert proto_logits(q.double(), protos).dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_few_shot_loss_under_autocast_equals_float32(
    dtype: torch.dtype, far_episode: tuple[Tensor, Tensor, Tensor, Tensor]
) -> None:
    # autocast used to run the distance GEMM in half precision, where |x|^2 + |c|^2 - 2<x, c>
    # cancels catastrophically for embeddings with large norms
    s, sl, q, ql = far_episode
    ref = FewShotLoss()(s, sl, q, ql)
    with torch.autocast("cpu", dtype=dtype):
        out = FewShotLoss()(s, sl, q, ql)
    assert out["loss"].dtype == torch.float32
    assert set(out) == set(ref)
    for name, value in out.items():
        torch.testing.assert_close(value, ref[name], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_few_shot_inputs_keep_distances_accurate(
    dtype: torch.dtype, far_episode: tuple[Tensor, Tensor, Tensor, Tensor]
) -> None:
    s, sl, q, ql = far_episode
    sh, qh = s.to(dtype), q.to(dtype)
    protos = prototypes(sh, sl, 5)
    logits = proto_logits(qh, protos)
    assert logits.dtype == dtype
    exact = proto_logits(qh.double(), protos.double())
    # the error is the output's rounding (relative), not cancellation of |x|^2 ~ 2000
    torch.testing.assert_close(logits.double(), exact, rtol=1e-2, atol=0.05)
    loss = few_shot_loss(sh, sl, qh, ql)["loss"]
    ref = few_shot_loss(sh.double(), sl, qh.double(), ql)["loss"]
    assert torch.isfinite(loss)
    assert float(loss) == pytest.approx(float(ref), abs=2e-3)


def test_half_precision_distances_beyond_fp16_range_stay_finite(
    far_episode: tuple[Tensor, Tensor, Tensor, Tensor],
) -> None:
    # squared distances of ~1e5 overflow float16 (max 65504); the distances themselves do not
    s, sl, q, ql = far_episode
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
