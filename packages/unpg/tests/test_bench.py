"""The benchmark is registered and every impl it races runs (timings are not tested)."""

from __future__ import annotations

import torch

from paperzoo.core.bench import get_benchmark
from paperzoo.unpg.bench import ARCFACE, BENCHMARK, UNPG, _cases


def test_registered() -> None:
    assert get_benchmark("unpg") is BENCHMARK


def test_every_impl_runs_and_the_unpg_forms_agree() -> None:
    unpg_impls, head_impls = _cases(16, 10, 8, torch.device("cpu"))
    assert UNPG in unpg_impls and ARCFACE in unpg_impls and ARCFACE in head_impls
    grads = {}
    for name, fn in {**unpg_impls, **head_impls}.items():
        gx, gw = fn()  # type: ignore[misc]
        assert gw.ndim == 2 and bool(torch.isfinite(gw).all()), name
        assert gx.shape == (16, 8) and bool(torch.isfinite(gx).all()), name
        grads[name] = gx
    official = next(k for k in unpg_impls if "materialised" in k)
    torch.testing.assert_close(grads[UNPG], grads[official], rtol=1e-4, atol=1e-6)
    for name in head_impls:  # the peer (when installed) computes the same ArcFace gradient
        torch.testing.assert_close(grads[name], grads[ARCFACE], rtol=1e-3, atol=1e-5)
