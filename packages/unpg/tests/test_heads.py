"""ArcFace / CosFace heads: limits, the clamp, half precision, parity with pytorch-metric-learning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from paperzoo.unpg import (
    ArcFaceHead,
    CosFaceHead,
    margin_to_pml_degrees,
    unpg_loss,
    weight_to_pml,
)

D, C = 8, 6


def _x(b: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, D, generator=g, dtype=torch.float64), torch.randint(
        0, C, (b,), generator=g
    )


def test_zero_margin_gives_plain_cosines() -> None:
    x, y = _x()
    for head in (ArcFaceHead(D, C, margin=0.0).double(), CosFaceHead(D, C, margin=0.0).double()):
        ref = F.normalize(x, dim=1) @ F.normalize(head.weight, dim=1).t()
        torch.testing.assert_close(head(x, y), ref, rtol=0, atol=1e-6)
        torch.testing.assert_close(head(x), ref, rtol=0, atol=1e-15)


def test_margins_touch_only_the_target_column() -> None:
    x, y = _x(seed=1)
    arc = ArcFaceHead(D, C, margin=0.5).double()
    cos = arc.cosine(x)
    out = arc(x, y)
    onehot = F.one_hot(y, C).bool()
    torch.testing.assert_close(out[~onehot], cos[~onehot], rtol=0, atol=0)
    torch.testing.assert_close(out[onehot], torch.cos(torch.acos(cos[onehot]) + 0.5))
    cf = CosFaceHead(D, C, margin=0.35).double()
    torch.testing.assert_close(cf(x, y)[onehot], cf.cosine(x)[onehot] - 0.35)


def test_easy_margin_keeps_obtuse_targets_unchanged() -> None:
    x, y = _x(seed=2)
    head = ArcFaceHead(D, C, margin=0.5, easy_margin=True).double()
    cos = head.cosine(x).gather(1, y[:, None]).squeeze(1)
    out = head(x, y).gather(1, y[:, None]).squeeze(1)
    neg = cos <= 0
    assert bool(neg.any()) and bool((~neg).any())
    torch.testing.assert_close(out[neg], cos[neg])
    torch.testing.assert_close(out[~neg], torch.cos(torch.acos(cos[~neg]) + 0.5))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_angles_at_zero_and_pi_stay_finite(sign: float) -> None:
    head = ArcFaceHead(D, C).double()
    x = (sign * head.weight.detach()[:3]).clone().requires_grad_(True)
    y = torch.tensor([0, 1, 2])
    out = head(x, y)
    out.sum().backward()
    assert bool(torch.isfinite(out).all()) and x.grad is not None
    assert bool(torch.isfinite(x.grad).all())


def _pml() -> object:
    return pytest.importorskip("pytorch_metric_learning.losses")


def _small_angle_batch(head: ArcFaceHead | CosFaceHead, seed: int) -> tuple[torch.Tensor, ...]:
    """Embeddings near their class weight: every target angle well below π - m."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (12,), generator=g)
    x = head.weight.detach()[y] + 0.5 * torch.randn(12, D, generator=g, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("kind", ["arc", "cos"])
def test_base_loss_matches_pytorch_metric_learning(kind: str) -> None:
    losses = _pml()
    torch.manual_seed(0)
    if kind == "arc":
        head: ArcFaceHead | CosFaceHead = ArcFaceHead(D, C, margin=0.5).double()
        peer = losses.ArcFaceLoss(C, D, margin=margin_to_pml_degrees(0.5), scale=64)  # type: ignore[attr-defined]
    else:
        head = CosFaceHead(D, C, margin=0.35).double()
        peer = losses.CosFaceLoss(C, D, margin=0.35, scale=64)  # type: ignore[attr-defined]
    peer.W.data = weight_to_pml(head.weight).double()
    x, y = _small_angle_batch(head, 0)
    ours = unpg_loss(x, y, head, scale=64.0, use_ml_negatives=False)
    torch.testing.assert_close(ours, peer(x, y), rtol=1e-10, atol=1e-10)


def test_arcface_differs_from_pml_beyond_pi_minus_m() -> None:
    losses = _pml()
    torch.manual_seed(0)
    head = ArcFaceHead(D, C, margin=0.5).double()
    peer = losses.ArcFaceLoss(C, D, margin=margin_to_pml_degrees(0.5), scale=64)  # type: ignore[attr-defined]
    peer.W.data = weight_to_pml(head.weight).double()
    y = torch.tensor([0, 1])
    x = -head.weight.detach()[y]  # target angle π > π - m: PML switches to cos θ - m sin m
    ours = unpg_loss(x, y, head, scale=64.0, use_ml_negatives=False)
    assert abs(float(ours.detach()) - float(peer(x, y).detach())) > 1.0


def test_pml_conversions() -> None:
    assert abs(margin_to_pml_degrees(math.pi / 6) - 30.0) < 1e-12
    w = torch.randn(C, D)
    assert torch.equal(weight_to_pml(w), w.t())
