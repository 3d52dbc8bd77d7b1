"""unpg_cross_entropy: gradcheck, the gradient of an extra negative, monotonicity."""

from __future__ import annotations

import math

import torch

from paperzoo.unpg import box_whisker_filter, unpg_cross_entropy


def _inputs(b: int = 5, c: int = 4, m: int = 7, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.rand(b, c, generator=g, dtype=torch.float64) * 2 - 1
    y = torch.randint(0, c, (b,), generator=g)
    extra = torch.rand(m, generator=g, dtype=torch.float64) * 2 - 1
    return logits, y, extra


def test_gradcheck_wrt_margin_logits_and_extra_negatives() -> None:
    logits, y, extra = _inputs()
    lg = logits.clone().requires_grad_(True)
    ex = extra.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: unpg_cross_entropy(a, y, b, scale=4.0), (lg, ex), eps=1e-6, atol=1e-7
    )
    mask = torch.tensor([True, False, True, True, False, True, True])
    assert torch.autograd.gradcheck(
        lambda a, b: unpg_cross_entropy(a, y, b, scale=4.0, mask=mask), (lg, ex), eps=1e-6
    )


def test_gradient_to_an_extra_negative_is_the_mean_softmax_weight_times_s() -> None:
    logits, y, extra = _inputs(seed=1)
    s = 3.0
    ex = extra.clone().requires_grad_(True)
    unpg_cross_entropy(logits, y, ex, scale=s).backward()
    b = logits.shape[0]
    ref = torch.zeros_like(extra)
    for i in range(b):
        denom = sum(math.exp(s * float(v)) for v in logits[i]) + sum(
            math.exp(s * float(t)) for t in extra
        )
        for k, t in enumerate(extra):
            ref[k] += s * math.exp(s * float(t)) / denom / b
    assert ex.grad is not None
    torch.testing.assert_close(ex.grad, ref, rtol=1e-12, atol=1e-14)


def test_masked_out_negatives_get_zero_gradient_and_all_masked_is_plain_ce() -> None:
    logits, y, extra = _inputs(seed=2)
    ex = extra.clone().requires_grad_(True)
    none = torch.zeros(7, dtype=torch.bool)
    out = unpg_cross_entropy(logits, y, ex, scale=64.0, mask=none)
    out.backward()
    torch.testing.assert_close(out, torch.nn.functional.cross_entropy(64 * logits, y))
    assert ex.grad is not None and bool((ex.grad == 0).all())


def test_adding_a_negative_never_lowers_the_loss() -> None:
    logits, y, extra = _inputs(seed=3)
    base = unpg_cross_entropy(logits, y, extra, scale=8.0, reduction="none")
    for t in (-1.0, 0.0, 0.7):
        more = torch.cat([extra, torch.tensor([t], dtype=torch.float64)])
        assert bool(
            (unpg_cross_entropy(logits, y, more, scale=8.0, reduction="none") >= base).all()
        )


def test_raising_a_kept_negative_with_the_filter_fixed_never_lowers_the_loss() -> None:
    logits, y, extra = _inputs(seed=4)
    for k in range(extra.numel()):
        up = extra.clone()
        up[k] += 0.1
        a = unpg_cross_entropy(logits, y, extra, scale=8.0)
        assert float(unpg_cross_entropy(logits, y, up, scale=8.0)) > float(a)


def test_raising_a_negative_past_the_upper_whisker_drops_it_and_the_loss_falls() -> None:
    logits, y, _ = _inputs(seed=5)
    sims = torch.tensor([0.1, 0.12, 0.15, 0.18, 0.2, 0.22, 0.25, 0.3], dtype=torch.float64)
    kept, _ = box_whisker_filter(sims, 1.5)
    before = unpg_cross_entropy(logits, y, kept, scale=8.0)
    raised = sims.clone()
    raised[-1] = 0.9  # an upper outlier now
    kept2, mask2 = box_whisker_filter(raised, 1.5)
    assert not bool(mask2[-1])
    assert float(unpg_cross_entropy(logits, y, kept2, scale=8.0)) < float(before)


def test_half_inputs_compute_in_float32() -> None:
    logits, y, extra = _inputs(seed=6)
    out = unpg_cross_entropy(logits.half(), y, extra.half(), scale=64.0)
    assert out.dtype == torch.float32 and bool(torch.isfinite(out))
    ref = unpg_cross_entropy(logits.half().double(), y, extra.half().double(), scale=64.0)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-4)
