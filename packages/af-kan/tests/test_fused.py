"""The fused SiLU/quad1 basis path equals the general path, is finite at overflow, and is lean."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from paperzoo.af_kan import AFKAN, AFKANLayer, af_basis
from paperzoo.af_kan.fused import silu_quad1_sums


def _pair(**kw: Any) -> tuple[AFKANLayer, AFKANLayer]:
    """A fused layer and a general-path copy with perturbed, non-default parameters."""
    torch.manual_seed(0)
    fused = AFKANLayer(12, 5, **kw).double()
    with torch.no_grad():
        fused.start.add_(0.05 * torch.randn_like(fused.start))
        fused.end.add_(0.05 * torch.randn_like(fused.end))
        assert fused.score is not None
        fused.score.weight.normal_()
        fused.score.bias.fill_(0.3)
        if fused.temperature is not None:
            fused.temperature.fill_(1.7)
        if isinstance(fused.norm, torch.nn.LayerNorm):
            fused.norm.weight.uniform_(0.5, 1.5)
            fused.norm.bias.normal_()
    general = copy.deepcopy(fused)
    general.fused = False
    return fused, general


def _run(layer: AFKANLayer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xr = x.clone().requires_grad_(True)
    y = layer(xr)
    weights = torch.linspace(-1.0, 2.0, y.numel(), dtype=y.dtype).reshape(y.shape)
    (y * weights).sum().backward()
    assert xr.grad is not None
    return y.detach(), xr.grad


@pytest.mark.parametrize("method", ["global_attn", "multistep"])
@pytest.mark.parametrize("func_norm", ["batch", "sample", None])
@pytest.mark.parametrize("norm", ["layer", None])
def test_fused_equals_general_values_and_gradients(
    method: str, func_norm: str | None, norm: str | None
) -> None:
    fused, general = _pair(method=method, func_norm=func_norm, norm=norm)
    assert fused.uses_fused and not general.uses_fused
    x = torch.rand(9, 12, dtype=torch.float64) * 3 - 1.5  # also outside the grid
    y_f, gx_f = _run(fused, x)
    y_g, gx_g = _run(general, x)
    torch.testing.assert_close(y_f, y_g, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gx_f, gx_g, rtol=1e-10, atol=1e-12)
    names = [name for name, _ in fused.named_parameters()]
    assert {"start", "end", "score.weight", "score.bias"} <= set(names)
    if method == "global_attn":
        assert "temperature" in names
    if norm == "layer":
        assert {"norm.weight", "norm.bias"} <= set(names)
    for (name, p_f), p_g in zip(fused.named_parameters(), general.parameters(), strict=True):
        assert p_f.grad is not None and p_g.grad is not None, name
        torch.testing.assert_close(p_f.grad, p_g.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_default_layer_takes_the_fused_path_and_others_fall_back() -> None:
    assert AFKANLayer(4, 2).uses_fused
    assert not AFKANLayer(4, 2, fused=False).uses_fused
    assert not AFKANLayer(4, 2, activation="gelu").uses_fused
    assert not AFKANLayer(4, 2, func="quad2").uses_fused
    assert not AFKANLayer(4, 2, method="spatial_attn").uses_fused


def test_fused_sums_match_the_basis_tensor() -> None:
    x = torch.rand(7, 5, dtype=torch.float64) * 4 - 2
    start = torch.linspace(-1.0, 0.7, 6, dtype=torch.float64)
    end = start + 4 / 3
    a = torch.randn(6, dtype=torch.float64)
    f_sum, f_proj, lo, hi = silu_quad1_sums(x, start, end, a)
    feats = af_basis(x, start, end)  # (7, 5, 6)
    torch.testing.assert_close(f_sum, feats.sum(-1))
    torch.testing.assert_close(f_proj, feats @ a)
    torch.testing.assert_close(lo, feats.amin(-1))
    torch.testing.assert_close(hi, feats.amax(-1))


def _leaf_inputs(
    g: torch.Generator, rows: int, cols: int, x_half_width: float, shift: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """float64 leaves ``x (rows, cols)`` in ``±x_half_width``, 6 bump starts (shifted by
    ``shift`` off the grid), their ends (width 1.3) and 6 coefficients."""
    x = (torch.rand(rows, cols, generator=g, dtype=torch.float64) * 2 - 1) * x_half_width
    start = torch.linspace(-1.0, 0.7, 6, dtype=torch.float64) + shift
    end = start + 1.3
    a = torch.randn(6, generator=g, dtype=torch.float64)
    return tuple(t.requires_grad_(True) for t in (x, start, end, a))  # type: ignore[return-value]


def test_fused_function_gradcheck_float64() -> None:
    x, start, end, a = _leaf_inputs(torch.Generator().manual_seed(1), 4, 5, 1.5, 0.01)
    assert torch.autograd.gradcheck(lambda *t: silu_quad1_sums(*t)[:2], (x, start, end, a))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_overflow_gives_the_limits_not_nan(dtype: torch.dtype) -> None:
    big = 100.0 if dtype == torch.float32 else 1000.0  # exp overflows in both cases
    x = torch.tensor([[-big, big, -100.0, 100.0, 0.25]], dtype=dtype, requires_grad=True)
    start, end = torch.linspace(-1.0, 0.67, 6, dtype=dtype), torch.linspace(0.33, 2.0, 6)
    end = end.to(dtype)
    a = torch.randn(6, dtype=dtype)
    out = silu_quad1_sums(x, start, end, a)
    (out[0].sum() + out[1].sum()).backward()
    assert x.grad is not None
    for t in (*out, x.grad):
        assert torch.isfinite(t).all()
    # F -> 0 far from the bumps (u·v -> 0 on both sides); the reference agrees where finite
    for t in out:
        assert t[0, :2].abs().max() < 1e-30
    ref = af_basis(x.detach(), start, end)
    torch.testing.assert_close(out[0].detach(), ref.sum(-1), rtol=1e-5, atol=1e-30)


def test_fused_layer_is_finite_at_large_inputs() -> None:
    layer = AFKANLayer(6, 3, validate=False)
    x = torch.tensor([[-100.0, 100.0, 0.1, 0.5, -0.5, 1.0]]).repeat(2, 1).requires_grad_(True)
    layer(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for p in layer.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


class _LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an aten op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def _largest_tensor(model: torch.nn.Module, x: torch.Tensor) -> int:
    with _LargestTensor() as mode:
        model(x).sum().backward()
    return mode.largest


def test_fused_path_never_allocates_a_tensor_larger_than_the_general_path() -> None:
    x = torch.rand(32, 100) * 2 - 1
    fused = AFKAN([100, 16, 4])
    general = AFKAN([100, 16, 4], fused=False)
    big_fused = _largest_tensor(fused, x)
    big_general = _largest_tensor(general, x)
    n = fused.layers[0].num_bumps
    assert big_general >= 32 * 100 * n  # the general path holds the (N, n, d) basis tensor
    assert big_fused <= big_general
    assert big_fused <= 32 * 100  # the fused path: nothing beyond (N, d) (or a weight matrix)


def test_compile_form_equals_the_eager_loop() -> None:
    """The broadcast form that runs under ``torch.compile`` matches the eager loop (float64)."""
    from paperzoo.af_kan.fused import _backward_grid, _forward_grid

    g = torch.Generator().manual_seed(2)
    x, start, end, a = _leaf_inputs(g, 6, 9, 2.0, 0.02)
    g_sum, g_proj = torch.randn(2, 6, 9, generator=g, dtype=torch.float64)
    out = silu_quad1_sums(x, start, end, a)
    torch.autograd.backward(out[:2], (g_sum, g_proj))
    xd = x.detach()
    grid_out = _forward_grid(xd, start.detach(), end.detach(), a.detach(), (-xd).exp(), xd.exp())
    for o, r in zip(grid_out, out, strict=True):
        torch.testing.assert_close(o, r.detach())
    grads = _backward_grid(
        xd, start.detach(), end.detach(), a.detach(), (-xd).exp(), xd.exp(), g_sum, g_proj
    )
    for gr, leaf in zip(grads, (x, start, end, a), strict=True):
        assert leaf.grad is not None
        torch.testing.assert_close(gr, leaf.grad)
