"""The search steppers' update rules: RARTS (shared α, Gauss–Seidel updates, α gradient, coupling) against the
DARTS first- and second-order baselines, and the supernet passes each takes per step."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from paperzoo.rarts.darts import DartsFirstOrder, DartsSecondOrder
from paperzoo.rarts.search import RARTS, coupling_penalty

LAM, BETA, LR = 0.7, 0.5, 0.1


def plain_sgd(lr: float = LR) -> Any:
    return lambda params: torch.optim.SGD(params, lr=lr)


def make_rarts(net: nn.Module, mode: Any = "lagged", **kw: Any) -> RARTS:
    return RARTS(
        net,
        plain_sgd(),
        torch.optim.SGD(net.arch_parameters(), lr=LR),  # type: ignore[operator]
        lam=LAM,
        beta=BETA,
        alpha_grad=mode,
        grad_clip=None,
        **kw,
    )


def arch_grads(model: nn.Module, batch: tuple[Tensor, Tensor], scale: float = 1.0) -> list[Tensor]:
    x, y = batch
    loss = scale * F.cross_entropy(model(x), y)
    return list(torch.autograd.grad(loss, model.arch_parameters()))  # type: ignore[operator]


def weight_grads(model: nn.Module, batch: tuple[Tensor, Tensor]) -> list[Tensor]:
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    return list(torch.autograd.grad(loss, model.weight_parameters()))  # type: ignore[operator]


def test_rarts_networks_share_the_same_alpha_objects_and_own_their_weights(
    make_tiny_supernet: Any,
) -> None:
    net = make_tiny_supernet()
    s = make_rarts(net)
    assert s.model_w is net
    for a_w, a_y in zip(s.model_w.arch_parameters(), s.model_y.arch_parameters(), strict=True):  # type: ignore[operator]
        assert a_w is a_y
    ids_w = {id(p) for p in s.weights_w}
    assert not ids_w & {id(p) for p in s.weights_y}
    assert all(torch.equal(a, b) for a, b in zip(s.weights_w, s.weights_y, strict=True))
    bt = (torch.randn(4, 1, 8), torch.randint(0, 3, (4,)))
    bv = (torch.randn(4, 1, 8), torch.randint(0, 3, (4,)))
    s.step(bt, bv)
    assert s.model_y.alphas_normal is net.alphas_normal  # type: ignore[attr-defined]


def test_independent_y_init_differs_from_w(make_tiny_supernet: Any) -> None:
    s = make_rarts(make_tiny_supernet(), y_init="independent")
    assert any(not torch.equal(a, b) for a, b in zip(s.weights_w, s.weights_y, strict=True))
    assert float(coupling_penalty(s.weights_w, s.weights_y).detach()) > 0


@pytest.mark.parametrize("mode", ["lagged", "exact"])
def test_rarts_alpha_grad_is_val_grad_at_y_plus_lambda_train_grad_at_w(
    mode: str, make_tiny_supernet: Any, make_tiny_batches: Any
) -> None:
    net = make_tiny_supernet(torch.float64)
    bt, bv = make_tiny_batches(dtype=torch.float64)
    s = make_rarts(net, mode, y_init="independent")
    alpha_before = [a.detach().clone() for a in net.arch_parameters()]
    before_w, before_y = copy.deepcopy(s.model_w), copy.deepcopy(s.model_y)
    s.step(bt, bv)
    if mode == "lagged":
        mw, my = before_w, before_y
    else:  # at the updated w, y and the α they were computed with
        mw, my = copy.deepcopy(s.model_w), copy.deepcopy(s.model_y)
        for m in (mw, my):
            with torch.no_grad():
                for a, v in zip(m.arch_parameters(), alpha_before, strict=True):
                    a.copy_(v)
    expected = [gv + gt for gv, gt in zip(arch_grads(my, bv), arch_grads(mw, bt, LAM), strict=True)]
    for a, e in zip(net.arch_parameters(), expected, strict=True):
        torch.testing.assert_close(a.grad, e, rtol=1e-9, atol=1e-12)
    for a, a0, e in zip(net.arch_parameters(), alpha_before, expected, strict=True):
        torch.testing.assert_close(a.detach(), a0 - LR * e, rtol=1e-9, atol=1e-12)


def test_rarts_weight_updates_are_gauss_seidel_with_only_the_coupling_between_splits(
    make_tiny_supernet: Any, make_tiny_batches: Any
) -> None:
    net = make_tiny_supernet(torch.float64)
    bt, bv = make_tiny_batches(dtype=torch.float64)
    s = make_rarts(net, "lagged", y_init="independent")
    w0 = [p.detach().clone() for p in s.weights_w]
    y0 = [p.detach().clone() for p in s.weights_y]
    g_train_w = weight_grads(copy.deepcopy(s.model_w), bt)  # w sees only D_train ...
    g_val_y = weight_grads(copy.deepcopy(s.model_y), bv)  # ... and y only D_val
    s.step(bt, bv)
    w1 = [w - LR * (LAM * g + BETA * (w - y)) for w, y, g in zip(w0, y0, g_train_w, strict=True)]
    y1 = [y - LR * (g + BETA * (y - w)) for y, w, g in zip(y0, w1, g_val_y, strict=True)]
    for p, e in zip(s.weights_w, w1, strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=1e-9, atol=1e-12)
    for p, e in zip(s.weights_y, y1, strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=1e-9, atol=1e-12)


def test_darts_first_order_updates_alpha_on_val_then_w_on_train(
    make_tiny_supernet: Any, make_tiny_batches: Any
) -> None:
    net = make_tiny_supernet(torch.float64)
    bt, bv = make_tiny_batches(dtype=torch.float64)
    ref = copy.deepcopy(net)
    s = DartsFirstOrder(
        net,
        torch.optim.SGD(net.weight_parameters(), lr=LR),
        torch.optim.SGD(net.arch_parameters(), lr=LR),
        grad_clip=None,
    )
    s.step(bt, bv)
    g_alpha = arch_grads(ref, bv)
    with torch.no_grad():
        for a, g in zip(ref.arch_parameters(), g_alpha, strict=True):
            a.sub_(LR * g)
    g_w = weight_grads(ref, bt)  # at the updated α
    with torch.no_grad():
        for p, g in zip(ref.weight_parameters(), g_w, strict=True):
            p.sub_(LR * g)
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-9, atol=1e-12)


def unrolled_total_derivative(net: nn.Module, bt: Any, bv: Any, xi: float) -> list[Tensor]:
    """d/dα L_val(w − ξ ∇_w L_train(w, α), α) by autograd through the virtual step (independent of the stepper)."""
    named = [(n, p) for n, p in net.named_parameters() if not n.startswith("alphas")]
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    loss_t = F.cross_entropy(net(bt[0]), bt[1])
    g = torch.autograd.grad(loss_t, [p for _, p in named], create_graph=True)
    unrolled = {n: p - xi * gi for (n, p), gi in zip(named, g, strict=True)}
    out = functional_call(net, {**unrolled, **buffers}, (bv[0],), strict=False)
    return list(torch.autograd.grad(F.cross_entropy(out, bv[1]), net.arch_parameters()))


@pytest.mark.parametrize(("hvp", "tol"), [("autograd", 1e-9), ("finite_diff", 1e-4)])
def test_darts_second_order_alpha_grad_is_the_unrolled_hypergradient(
    hvp: Any, tol: float, make_tiny_supernet: Any, make_tiny_batches: Any
) -> None:
    net = make_tiny_supernet(torch.float64)
    bt, bv = make_tiny_batches(dtype=torch.float64)
    xi = 0.05
    s = DartsSecondOrder(
        net,
        torch.optim.SGD(net.weight_parameters(), lr=xi),
        torch.optim.SGD(net.arch_parameters(), lr=LR),
        hvp=hvp,
        eps=1e-5,  # DARTS' 0.01 is too coarse for a 1e-4 match on this tiny, very curved net
        grad_clip=None,
    )
    expected = unrolled_total_derivative(copy.deepcopy(net), bt, bv, xi)
    got, _ = s.unrolled_alpha_grad(bt, bv)
    for g, e in zip(got, expected, strict=True):
        rel = float((g - e).norm() / e.norm())
        assert rel < tol


def test_official_hvp_point_differs_from_the_paper_hvp_point(
    make_tiny_supernet: Any, make_tiny_batches: Any
) -> None:
    net = make_tiny_supernet(torch.float64)
    bt, bv = make_tiny_batches(dtype=torch.float64)
    kw: dict[str, Any] = {"hvp": "autograd", "xi": 0.5, "grad_clip": None}
    opt_w = torch.optim.SGD(net.weight_parameters(), lr=0.5)
    opt_a = torch.optim.SGD(net.arch_parameters(), lr=LR)
    paper = DartsSecondOrder(net, opt_w, opt_a, hvp_point="w", **kw).unrolled_alpha_grad(bt, bv)[0]
    official = DartsSecondOrder(net, opt_w, opt_a, hvp_point="unrolled", **kw).unrolled_alpha_grad(
        bt, bv
    )[0]
    assert any(
        not torch.allclose(a, b, rtol=1e-6, atol=0) for a, b in zip(paper, official, strict=True)
    )


class _CountForward:
    def __init__(self, *models: nn.Module) -> None:
        self.n = 0
        for m in models:
            m.register_forward_hook(self._hook)

    def _hook(self, *args: Any) -> None:
        self.n += 1


@pytest.mark.parametrize(
    ("method", "passes"), [("darts1", 2), ("darts2", 5), ("rarts_lagged", 2), ("rarts_exact", 4)]
)
def test_supernet_passes_per_step(
    method: str, passes: int, make_tiny_supernet: Any, make_tiny_batches: Any
) -> None:
    net = make_tiny_supernet()
    bt, bv = make_tiny_batches()
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4)
    s: Any
    if method == "darts1":
        s = DartsFirstOrder(net, torch.optim.SGD(net.weight_parameters(), lr=0.01), a_opt)
    elif method == "darts2":
        s = DartsSecondOrder(net, torch.optim.SGD(net.weight_parameters(), lr=0.01), a_opt)
    else:
        s = make_rarts(net, method.split("_")[1])
    counter = _CountForward(*([s.model_w, s.model_y] if isinstance(s, RARTS) else [net]))
    s.step(bt, bv)
    assert counter.n == passes


# ------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("lam", "beta"), [(0.0, 1.0), (-1.0, 1.0), (1.0, -0.1)])
def test_rarts_rejects_nonpositive_lambda_or_negative_beta(
    lam: float, beta: float, make_tiny_supernet: Any
) -> None:
    net = make_tiny_supernet()
    with pytest.raises(ValueError, match=r"lam|beta"):
        RARTS(net, plain_sgd(), torch.optim.SGD(net.arch_parameters(), lr=0.1), lam=lam, beta=beta)


def test_coupling_penalty_is_half_squared_distance() -> None:
    w = [torch.tensor([1.0, 2.0]), torch.tensor([[0.0]])]
    y = [torch.tensor([2.0, 0.0]), torch.tensor([[3.0]])]
    assert float(coupling_penalty(w, y)) == pytest.approx(0.5 * (1 + 4 + 9))
    with pytest.raises(ValueError, match="differ in shape"):
        coupling_penalty(w, [y[0], torch.zeros(2)])
