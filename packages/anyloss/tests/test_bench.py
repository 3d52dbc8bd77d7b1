"""The benchmark is registered and every impl it races runs (timings are not tested)."""

from __future__ import annotations

import torch

from paperzoo.anyloss.bench import BENCHMARK, OURS, _impls
from paperzoo.core.bench import get_benchmark


def test_registered() -> None:
    assert get_benchmark("anyloss") is BENCHMARK


def test_every_impl_runs_and_returns_a_gradient() -> None:
    impls = _impls(64, torch.device("cpu"))
    assert OURS in impls and "BCE with logits (baseline)" in impls
    for name, fn in impls.items():
        (grad,) = fn()  # type: ignore[misc]
        assert grad.shape == (64,) and bool(torch.isfinite(grad).all()), name
