"""Finite-difference mixed Hessian-vector product against exact double backward."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from paperzoo.rarts.hvp import hvp_autograd, hvp_finite_diff
from paperzoo.rarts.toy import QuadraticBilevel


def supernet_problem(
    make_tiny_supernet: Any, make_tiny_batches: Any
) -> tuple[Any, list[Tensor], list[Tensor], list[Tensor]]:
    net = make_tiny_supernet(torch.float64)
    (x, y), _ = make_tiny_batches(dtype=torch.float64)
    named = [(n, p) for n, p in net.named_parameters() if not n.startswith("alphas")]
    names = [n for n, _ in named]
    buffers = {n: b.clone() for n, b in net.named_buffers()}

    def loss_at(ws: Sequence[Tensor]) -> Tensor:
        params = dict(zip(names, ws, strict=True))
        return F.cross_entropy(functional_call(net, {**params, **buffers}, (x,), strict=False), y)

    g = torch.Generator().manual_seed(0)
    ws = [p.detach() for _, p in named]
    v = [torch.randn(w.shape, generator=g, dtype=w.dtype) for w in ws]
    return loss_at, ws, v, net.arch_parameters()


def rel_err(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    num = sum(float((x - y).square().sum()) for x, y in zip(a, b, strict=True))
    den = sum(float(y.square().sum()) for y in b)
    return (num / den) ** 0.5


def test_finite_difference_hvp_matches_double_backward_on_a_supernet(
    make_tiny_supernet: Any, make_tiny_batches: Any
) -> None:
    loss_at, ws, v, arch = supernet_problem(make_tiny_supernet, make_tiny_batches)
    exact = hvp_autograd(loss_at, ws, v, arch)
    assert rel_err(hvp_finite_diff(loss_at, ws, v, arch, eps=1e-4), exact) < 1e-4


def test_finite_difference_error_is_second_order_in_eps(softmax_supernet: Any) -> None:
    # on a smooth (kink-free) supernet, halving ε quarters the error of the central difference
    torch.manual_seed(0)
    net = softmax_supernet()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (32,), generator=g)

    def loss_at(ws: Sequence[Tensor]) -> Tensor:
        params = {"weight": ws[0], "bias": ws[1]}
        return F.cross_entropy(functional_call(net, params, (x,), strict=False), y)

    ws = [p.detach() for p in net.weight_parameters()]
    v = [torch.randn(w.shape, generator=g, dtype=w.dtype) for w in ws]
    arch = net.arch_parameters()
    exact = hvp_autograd(loss_at, ws, v, arch)
    e_coarse = rel_err(hvp_finite_diff(loss_at, ws, v, arch, eps=0.2), exact)
    e_fine = rel_err(hvp_finite_diff(loss_at, ws, v, arch, eps=0.1), exact)
    assert 3.5 < e_coarse / e_fine < 4.5
    assert e_fine < 1e-2


def test_hvp_is_exact_on_the_quadratic_toy_for_any_eps() -> None:
    toy = QuadraticBilevel(2.0, w0=0.3, alpha0=0.7)
    x, _y = toy.train_batch()

    def loss_at(ws: Sequence[Tensor]) -> Tensor:
        return functional_call(toy, {"w": ws[0]}, (x,)).mean()

    v = [torch.tensor([3.0], dtype=torch.float64)]
    # ∇²_{α,w} ½(w − α)² = −1, so the product with v is −v, whatever ε (the divisor must be 2ε)
    for eps in (1e-3, 0.01, 0.5, 2.0):
        (hvp,) = hvp_finite_diff(loss_at, [toy.w.detach()], v, toy.arch_parameters(), eps=eps)
        assert float(hvp) == pytest.approx(-3.0, abs=1e-9)
    (exact,) = hvp_autograd(loss_at, [toy.w.detach()], v, toy.arch_parameters())
    assert float(exact) == pytest.approx(-3.0, abs=1e-12)


def test_precedence_bug_divisor_would_fail_this_check() -> None:
    # the buggy form (p − n) / 2 * ε equals the correct one only when ε² = 1 ... i.e. never for DARTS' ε
    toy = QuadraticBilevel(1.0)
    x, _ = toy.train_batch()

    def loss_at(ws: Sequence[Tensor]) -> Tensor:
        return functional_call(toy, {"w": ws[0]}, (x,)).mean()

    v = [torch.tensor([2.0], dtype=torch.float64)]
    eps = 0.01
    r = eps / 2.0
    p = torch.autograd.grad(loss_at([toy.w.detach() + r * v[0]]), toy.arch_parameters())[0]
    n = torch.autograd.grad(loss_at([toy.w.detach() - r * v[0]]), toy.arch_parameters())[0]
    buggy = (p - n) / 2 * r
    (ours,) = hvp_finite_diff(loss_at, [toy.w.detach()], v, toy.arch_parameters(), eps=eps)
    assert float(ours) == pytest.approx(-2.0)
    assert abs(float(buggy) - float(ours)) > 1.0


def test_zero_vector_gives_zero_product(make_tiny_supernet: Any, make_tiny_batches: Any) -> None:
    loss_at, ws, v, arch = supernet_problem(make_tiny_supernet, make_tiny_batches)
    zeros = [torch.zeros_like(t) for t in v]
    out = hvp_finite_diff(loss_at, ws, zeros, arch)
    assert all(bool(torch.isfinite(o).all()) and float(o.abs().max()) == 0.0 for o in out)


def test_hvp_rejects_bad_arguments(make_tiny_supernet: Any, make_tiny_batches: Any) -> None:
    loss_at, ws, v, arch = supernet_problem(make_tiny_supernet, make_tiny_batches)
    with pytest.raises(ValueError, match="eps"):
        hvp_finite_diff(loss_at, ws, v, arch, eps=0.0)
    with pytest.raises(ValueError, match="differ in length"):
        hvp_finite_diff(loss_at, ws, v[:-1], arch)


def test_hvp_finite_diff_rejects_nan_eps_and_empty_weights() -> None:
    a = torch.zeros(2, requires_grad=True)
    w = [torch.ones(2)]
    with pytest.raises(ValueError, match="eps"):
        hvp_finite_diff(lambda ws: (ws[0] * a).sum(), w, w, [a], eps=float("nan"))
    with pytest.raises(ValueError, match="weights is empty"):
        hvp_finite_diff(lambda ws: a.sum(), [], [], [a])
