"""UNPG loss: hand values, the shared log-sum-exp against the official matrix and a slow loop, limits."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.unpg import (
    ArcFaceHead,
    CosFaceHead,
    UNPGLoss,
    box_whisker_filter,
    in_batch_negative_similarities,
    official,
    unpg_cross_entropy,
    unpg_loss,
)

D, C = 6, 5


def _batch(b: int = 10, seed: int = 0, classes: int = C) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, D, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (b,), generator=g)
    return x, y


def _head(kind: str = "arc", seed: int = 0) -> ArcFaceHead | CosFaceHead:
    torch.manual_seed(seed)
    head = ArcFaceHead(D, C, margin=0.5) if kind == "arc" else CosFaceHead(D, C, margin=0.35)
    return head.double()


def slow_unpg(
    x: Tensor, y: Tensor, w: Tensor, margin: float, kind: str, s: float, whisker: float
) -> Tensor:
    """Per-example loop of the paper's loss: explicit pairs, explicit filter, explicit sums."""
    b = x.shape[0]
    xn = [x[i] / x[i].norm() for i in range(b)]
    wn = [w[j] / w[j].norm() for j in range(w.shape[0])]
    negs = [
        float(xn[i] @ xn[j]) for i in range(b) for j in range(i + 1, b) if int(y[i]) != int(y[j])
    ]
    if len(negs) >= 4 and math.isfinite(whisker):
        v = sorted(negs)
        q1, q3 = v[int(0.25 * len(v))], v[int(0.75 * len(v))]
        lo, hi = q1 - whisker * (q3 - q1), q3 + whisker * (q3 - q1)
        negs = [t for t in negs if lo <= t <= hi]
    out = []
    for i in range(b):
        terms = []
        target = 0.0
        for j in range(w.shape[0]):
            c = float(xn[i] @ wn[j])
            if j == int(y[i]):
                theta = math.acos(max(-1 + 1e-7, min(1 - 1e-7, c)))
                c = math.cos(theta + margin) if kind == "arc" else c - margin
                target = s * c
            terms.append(s * c)
        terms += [s * t for t in negs]
        top = max(terms)
        out.append(-target + top + math.log(sum(math.exp(t - top) for t in terms)))
    return torch.tensor(out, dtype=torch.float64)


def test_hand_value_with_and_without_extra_negatives() -> None:
    logits = torch.tensor([[0.5, 0.1]], dtype=torch.float64)
    y = torch.tensor([0])
    extra = torch.tensor([0.3, -0.2], dtype=torch.float64)
    with_neg = unpg_cross_entropy(logits, y, extra, scale=2.0)
    without = unpg_cross_entropy(logits, y, None, scale=2.0)
    assert abs(float(with_neg) - 0.861305) < 1e-6
    assert abs(float(without) - 0.371101) < 1e-6
    torch.testing.assert_close(without, F.cross_entropy(2 * logits, y))


@pytest.mark.parametrize("kind", ["arc", "cos"])
@pytest.mark.parametrize("whisker", [1.5, 0.5, math.inf])
def test_rows_equal_the_slow_per_example_loop(kind: str, whisker: float) -> None:
    x, y = _batch(12, seed=3)
    head = _head(kind)
    rows = unpg_loss(x, y, head, scale=8.0, whisker=whisker, reduction="none")
    ref = slow_unpg(x, y, head.weight.detach(), head.m, kind, 8.0, whisker)
    torch.testing.assert_close(rows, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["arc", "cos"])
@pytest.mark.parametrize("whisker", [1.5, math.inf])
def test_shared_lse_equals_materialised_official_form_with_gradients(
    kind: str, whisker: float
) -> None:
    x, y = _batch(16, seed=1)
    results = []
    for materialize in (False, True):
        head = _head(kind)
        xx = x.clone().requires_grad_(True)
        loss = unpg_loss(xx, y, head, scale=64.0, whisker=whisker, materialize=materialize)
        loss.backward()
        assert xx.grad is not None and head.weight.grad is not None
        results.append((loss.detach(), xx.grad, head.weight.grad))
    (l0, gx0, gw0), (l1, gx1, gw1) = results
    torch.testing.assert_close(l0, l1, rtol=0, atol=1e-12)
    torch.testing.assert_close(gx0, gx1, rtol=0, atol=1e-12)
    torch.testing.assert_close(gw0, gw1, rtol=0, atol=1e-12)


def test_one_identity_batch_is_the_base_margin_softmax() -> None:
    x, _ = _batch(8)
    y = torch.full((8,), 2)
    head = _head("arc")
    base = F.cross_entropy(64.0 * head(x, y), y)
    torch.testing.assert_close(unpg_loss(x, y, head), base, rtol=0, atol=1e-12)
    x2, y2 = _batch(8, seed=5)
    off = unpg_loss(x2, y2, head, use_ml_negatives=False)
    torch.testing.assert_close(off, F.cross_entropy(64.0 * head(x2, y2), y2), rtol=0, atol=1e-12)


def test_in_batch_negatives_raise_the_loss() -> None:
    x, y = _batch(12, seed=2)
    head = _head("arc")
    with_neg = unpg_loss(x, y, head, scale=16.0, reduction="none")
    without = unpg_loss(x, y, head, scale=16.0, reduction="none", use_ml_negatives=False)
    assert bool((with_neg > without).all())


def test_batch_of_one_warns_and_falls_back() -> None:
    x, y = _batch(1)
    head = _head("arc")
    with pytest.warns(RuntimeWarning, match="fewer than 2"):
        out = unpg_loss(x, y, head)
    torch.testing.assert_close(out, F.cross_entropy(64.0 * head(x, y), y))


def test_loss_is_invariant_to_a_batch_permutation() -> None:
    x, y = _batch(14, seed=4)
    head = _head("cos")
    perm = torch.randperm(14, generator=torch.Generator().manual_seed(0))
    a = unpg_loss(x, y, head, scale=16.0, reduction="none")
    b = unpg_loss(x[perm], y[perm], head, scale=16.0, reduction="none")
    torch.testing.assert_close(a[perm], b, rtol=1e-12, atol=1e-12)


def test_last_stats_report_the_filter() -> None:
    x, y = _batch(12, seed=6)
    loss = UNPGLoss(_head("arc"), scale=16.0)
    loss(x, y)
    sims = in_batch_negative_similarities(x, y)
    kept, _ = box_whisker_filter(sims, 1.5)
    st = loss.last_stats
    assert int(st["M"]) == sims.numel() and int(st["kept"]) == kept.numel()
    assert float(st["min"]) == float(sims.min()) and float(st["max"]) == float(sims.max())


def test_gather_fn_supplies_the_negative_pool() -> None:
    x, y = _batch(8, seed=7)
    extra_x, extra_y = _batch(6, seed=8)
    head = _head("arc")

    def gather(e: Tensor, lab: Tensor) -> tuple[Tensor, Tensor]:
        return torch.cat([e, extra_x]), torch.cat([lab, extra_y])

    got = unpg_loss(x, y, head, scale=8.0, whisker=math.inf, gather_fn=gather)
    negs = in_batch_negative_similarities(torch.cat([x, extra_x]), torch.cat([y, extra_y]))
    want = unpg_cross_entropy(head(x, y), y, negs, scale=8.0)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_official_preset_uses_the_configs_values() -> None:
    arc = official("arcface", D, C)
    cos = official("cosface", D, C)
    assert arc.scale == 64.0 and arc.whisker == 1.5 and isinstance(arc.head, ArcFaceHead)
    assert isinstance(cos.head, CosFaceHead) and cos.head.m == 0.5 and arc.head.m == 0.5
    assert CosFaceHead(D, C).m == 0.35


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_loss_and_gradients_are_finite(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    head = ArcFaceHead(D, C).to(dtype)
    x = F.normalize(head.weight.detach().float()[[0, 1, 2, 0, 1, 2]], dim=1).to(dtype)
    y = torch.tensor([0, 1, 2, 0, 1, 2])  # theta = 0 on the target class, exactly
    x = (x + 0.0).requires_grad_(True)
    loss = unpg_loss(x, y, head, scale=64.0)
    loss.backward()
    assert loss.dtype == torch.float32 and bool(torch.isfinite(loss))
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    assert head.weight.grad is not None and bool(torch.isfinite(head.weight.grad).all())


def test_bfloat16_autocast_matches_float32() -> None:
    x, y = _batch(10)
    head = _head("arc").float()
    ref = unpg_loss(x.float(), y, head, scale=16.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = unpg_loss(x.float(), y, head, scale=16.0)
    assert bool(torch.isfinite(out))
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)
