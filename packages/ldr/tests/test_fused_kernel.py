"""The fused LDR-KL / ALDR-KL kernel (issue 19) equals the previous recomputing kernel."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from paperzoo.ldr import ALDRKLLoss, ldr_kl_loss
from paperzoo.ldr.losses import _aldr_step, _ldr_kl_rows

NORMS = ["softplus_mean", "l1", "softplus_l1", "none"]


def _data(
    batch: int, k: int, dtype: torch.dtype, scale: float, seed: int = 0
) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    f = (scale * torch.randn(batch, k, generator=g, dtype=torch.float64)).to(dtype)
    y = torch.randint(0, k, (batch,), generator=g)
    w = torch.randn(batch, generator=g, dtype=torch.float64).to(
        dtype
    )  # a non-uniform upstream grad
    lam = (0.1 + 5 * torch.rand(batch, generator=g, dtype=torch.float64)).to(dtype)
    return f, y, w, lam


def _tol(dtype: torch.dtype) -> dict[str, float]:
    return (
        {"rtol": 1e-10, "atol": 1e-11} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 2e-5}
    )


def _rows_and_grad(
    f: Tensor, y: Tensor, w: Tensor, impl: str, **kw: object
) -> tuple[Tensor, Tensor]:
    x = f.clone().requires_grad_(True)
    rows = _ldr_kl_rows(x, y, impl=impl, **kw)  # type: ignore[arg-type]
    (rows * w).sum().backward()
    assert x.grad is not None
    return rows.detach(), x.grad


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("normalize", NORMS)
@pytest.mark.parametrize("k", [7, 300])  # below and above the native-softmax threshold
@pytest.mark.parametrize(("margin", "lam"), [(0.1, 10.0), (0.0, 1.0), (1.0, 0.3), (0.1, "tensor")])
def test_fused_ldr_kl_equals_recompute_kernel(
    dtype: torch.dtype, normalize: str, k: int, margin: float, lam: object
) -> None:
    f, y, w, lam_t = _data(9, k, dtype, scale=3.0)
    kw = {"lam": lam_t if lam == "tensor" else lam, "margin": margin, "normalize": normalize}
    new_rows, new_grad = _rows_and_grad(f, y, w, "fused", **kw)
    old_rows, old_grad = _rows_and_grad(f, y, w, "recompute", **kw)
    torch.testing.assert_close(new_rows, old_rows, **_tol(dtype))
    torch.testing.assert_close(new_grad, old_grad, **_tol(dtype))


@pytest.mark.parametrize("k", [5, 400])
def test_fused_kernel_log_sum_exp_is_exact_for_peaked_rows(k: int) -> None:
    """Raw logits far apart (p_y underflows to 0 in float32): the loss stays finite and equal."""
    f, y, w, _ = _data(6, k, torch.float32, scale=200.0)
    new_rows, new_grad = _rows_and_grad(f, y, w, "fused", lam=0.5, margin=0.1, normalize="none")
    ref_rows, ref_grad = _rows_and_grad(
        f.double(), y, w.double(), "recompute", lam=0.5, margin=0.1, normalize="none"
    )
    assert torch.isfinite(new_rows).all()
    torch.testing.assert_close(new_rows.double(), ref_rows, rtol=1e-6, atol=1e-3)
    torch.testing.assert_close(new_grad.double(), ref_grad, rtol=1e-5, atol=1e-6)


def test_fused_kernel_without_grad_gives_the_same_rows() -> None:
    f, y, _, _ = _data(8, 11, torch.float64, scale=2.0)
    with torch.no_grad():
        plain = ldr_kl_loss(f.clone().requires_grad_(True), y, reduction="none")
    tracked = ldr_kl_loss(f.clone().requires_grad_(True), y, reduction="none")
    assert plain.grad_fn is None
    torch.testing.assert_close(plain, tracked.detach(), rtol=0, atol=0)


def test_fused_backward_twice_with_retain_graph() -> None:
    f, y, _, _ = _data(4, 6, torch.float64, scale=1.0)
    x = f.clone().requires_grad_(True)
    loss = ldr_kl_loss(x, y)
    loss.backward(retain_graph=True)
    assert x.grad is not None
    first = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * first)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("normalize", NORMS)
@pytest.mark.parametrize("exact_p", [True, False])
@pytest.mark.parametrize("k", [6, 300])
def test_fused_aldr_step_equals_recompute_path(
    dtype: torch.dtype, normalize: str, exact_p: bool, k: int
) -> None:
    f, y, w, _ = _data(10, k, dtype, scale=2.0, seed=3)
    prev = (5.0 + 5.0 * torch.rand(10, generator=torch.Generator().manual_seed(4))).to(dtype)
    out = {}
    for impl in ("fused", "recompute"):
        x = f.clone().requires_grad_(True)
        step = _aldr_step(x, y, prev, 10.0, 2.0, 0.1, exact_p, normalize, impl)
        (step.loss * w).sum().backward()
        out[impl] = (step.loss.detach(), step.lambdas, step.kl, x.grad)
    for new, old in zip(out["fused"], out["recompute"], strict=True):
        assert new is not None and old is not None
        torch.testing.assert_close(new, old, **_tol(dtype))


def test_aldr_module_uses_the_fused_step_and_writes_the_table() -> None:
    f, y, _, _ = _data(5, 4, torch.float64, scale=2.0)
    loss = ALDRKLLoss(20, reduction="none").double()
    index = torch.tensor([1, 3, 5, 7, 9])
    got = loss(f, y, index)
    ref = _aldr_step(
        f, y, torch.full((5,), 10.0, dtype=torch.float64), 10.0, 2.0, 0.1, True, "l1", "recompute"
    )
    torch.testing.assert_close(got, ref.loss.detach())
    torch.testing.assert_close(loss.lambdas[index], ref.lambdas)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_cheap_finite_check_still_catches_every_non_finite(bad: float) -> None:
    f, y, _, _ = _data(4, 5, torch.float32, scale=1.0)
    f[2, 3] = bad
    with pytest.raises(ValueError, match="logits: expected finite"):
        ldr_kl_loss(f, y)
