"""State: every model survives a ``state_dict`` round trip and resumes training exactly."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import torch
from torch import nn

from paperzoo.af_kan import AFKAN, MLP, RBFKAN, BSplineKAN, RBFKANLayer, ReLUKAN

_MAKERS: list[Callable[[], nn.Module]] = [
    lambda: AFKAN([6, 5, 3]),
    lambda: AFKAN([6, 5, 3], fused=False, func_norm="sample"),
    lambda: AFKAN([6, 5, 3], train_grid=False, norm="batch"),  # grid + running stats buffers
    lambda: AFKAN([6, 5, 3], method="spatial_attn", norm=None),
    lambda: ReLUKAN([6, 5, 3], train_grid=False, norm="batch"),
    lambda: BSplineKAN([6, 5, 3], grid_range=(-1.5, 2.0)),  # knots buffer
    lambda: RBFKAN([6, 5, 3], grid_range=(-1.0, 3.0)),  # centres buffer
    lambda: MLP([6, 5, 3], norm="layer"),
]


def _step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def _roundtrip(obj: object) -> object:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("make", _MAKERS)
def test_checkpoint_round_trip_resumes_exactly(make: Callable[[], nn.Module]) -> None:
    g = torch.Generator().manual_seed(21)
    x = torch.rand(16, 6, generator=g) * 2 - 1
    y = torch.randint(0, 3, (16,), generator=g)
    torch.manual_seed(21)
    model = make()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        _step(model, opt, x, y)
    ckpt = _roundtrip({"model": model.state_dict(), "opt": opt.state_dict()})
    assert isinstance(ckpt, dict)

    torch.manual_seed(99)  # a different initialisation, overwritten by the checkpoint
    resumed = make()
    resumed.load_state_dict(ckpt["model"])
    resumed_opt = torch.optim.AdamW(resumed.parameters(), lr=1e-2)
    resumed_opt.load_state_dict(ckpt["opt"])
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    model.eval()
    resumed.eval()
    torch.testing.assert_close(resumed(x), model(x), rtol=0, atol=0)
    model.train()
    resumed.train()
    _step(model, opt, x, y)
    _step(resumed, resumed_opt, x, y)
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_rbf_spacing_follows_loaded_centres() -> None:
    # the centres buffer comes from the checkpoint; the spacing 1/h must follow it
    torch.manual_seed(22)
    src = RBFKANLayer(4, 3, grid_range=(-1.0, 3.0))
    dst = RBFKANLayer(4, 3)  # default (-2, 2)
    dst.load_state_dict(src.state_dict())
    assert dst.grid_range == (-1.0, 3.0)
    assert dst.inv_h == src.inv_h
    x = torch.rand(5, 4)
    torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)


def test_rbf_spacing_is_untouched_by_its_own_state_dict() -> None:
    layer = RBFKANLayer(4, 3, grid_range=(-1.3, 1.7))
    before = layer.inv_h
    layer.load_state_dict(layer.state_dict())
    assert layer.inv_h == before and layer.grid_range == (-1.3, 1.7)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_rbf_spacing_survives_a_dtype_change_before_loading(dtype: torch.dtype) -> None:
    layer = RBFKANLayer(4, 3, grid_range=(-1.3, 1.7))
    state = layer.state_dict()
    other = RBFKANLayer(4, 3, grid_range=(-1.3, 1.7)).to(dtype)
    other.load_state_dict(state)  # float32 centres copied into a float64/bfloat16 buffer
    assert other.inv_h == layer.inv_h and other.grid_range == (-1.3, 1.7)
