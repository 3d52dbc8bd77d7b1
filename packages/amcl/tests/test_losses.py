"""Correctness of the AMCL losses against slow per-example float64 references (spec section 5)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.amcl import (
    AMCLMoCoLoss,
    AMCLNTXentLoss,
    ConstantTemperature,
    PairTemperature,
    TemperatureNet,
    amcl_infonce_loss,
    amcl_moco_loss,
    amcl_ntxent_loss,
    omega,
)

D = 8


def _views(c: int, b: int, seed: int = 0, d: int = D) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(c, b, d, generator=g, dtype=torch.float64),
        torch.randn(c, b, d, generator=g, dtype=torch.float64),
    )


def _temp(c: int, **kw: object) -> PairTemperature:
    torch.manual_seed(1)
    return PairTemperature(D, hidden=16, num_heads=c, **kw).double()  # type: ignore[arg-type]


def _naive_tau(t: TemperatureNet, c: int, u: Tensor, v: Tensor) -> Tensor:
    """tau(u, v) of one pair through head c's network, the concat MLP written out."""
    if isinstance(t, ConstantTemperature):
        return torch.tensor(t.tau, dtype=u.dtype)
    assert isinstance(t, PairTemperature) and t.form == "concat"
    h = 0 if t.shared else c
    w1 = torch.cat([t.w_a[h], t.w_b[h]], dim=0)  # (2d, hidden)

    def one(a: Tensor, b: Tensor) -> Tensor:
        hid = torch.relu(torch.cat([a, b]) @ w1 + t.b_1[h, 0])
        logit = hid @ t.w_2[h, :, 0] + t.b_2[h, 0, 0]
        return t.tau_min + (t.tau_max - t.tau_min) * torch.sigmoid(logit)

    return 0.5 * (one(u, v) + one(v, u)) if t.symmetric else one(u, v)


def _reference_ntxent_rows(
    z1: Tensor,
    z2: Tensor,
    t: TemperatureNet,
    beta: float,
    negatives: str,
    topk: int,
    include_positive: bool,
    symmetric: bool,
) -> Tensor:
    """The AMCL NT-Xent loss of each example, one anchor, head and candidate at a time."""
    c_heads, b, d = z1.shape
    kappa = float(d)
    rows = []
    for i in range(b):
        total = torch.zeros((), dtype=z1.dtype)
        directions = [(z1, z2), (z2, z1)] if symmetric else [(z1, z2)]
        for za, zb in directions:
            for c in range(c_heads):
                a = F.normalize(za[c, i], dim=0)
                p = F.normalize(zb[c, i], dim=0)
                s_pos = a @ p
                tau_pos = _naive_tau(t, c, a, p)
                cands = [F.normalize(za[c, j], dim=0) for j in range(b) if j != i]
                cands += [F.normalize(zb[c, j], dim=0) for j in range(b) if j != i]
                if include_positive:
                    cands.append(p)
                sims = [a @ n for n in cands]
                taus = [_naive_tau(t, c, a, n) for n in cands]
                if negatives == "logsumexp":
                    neg = torch.logsumexp(
                        torch.stack([s / u for s, u in zip(sims, taus, strict=True)]), 0
                    )
                    reg = sum(omega(u, kappa) for u in taus) / len(taus)
                else:
                    order = sorted(range(len(sims)), key=lambda j: -float(sims[j]))
                    k = 1 if negatives == "max" else min(topk, len(sims))
                    top = order[:k]
                    neg = sum(sims[j] / taus[j] for j in top) / k
                    if negatives == "max":
                        reg = omega(taus[top[0]], kappa)
                    else:
                        reg = sum(torch.log(taus[j]) + 1 / taus[j] for j in top)
                total = total + (-s_pos / tau_pos + neg + beta * (omega(tau_pos, kappa) - reg))
        rows.append(total / len(directions))
    return torch.stack(rows)


@pytest.mark.parametrize("negatives", ["logsumexp", "max", "topk"])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("include_positive", [False, True])
def test_vectorised_rows_equal_the_per_example_reference(
    negatives: str, symmetric: bool, include_positive: bool
) -> None:
    z1, z2 = _views(2, 5)
    t = _temp(2, shared=False, symmetric=symmetric)
    rows = amcl_ntxent_loss(
        z1,
        z2,
        t,
        beta=0.3,
        negatives=negatives,
        topk=3,
        include_positive=include_positive,  # type: ignore[arg-type]
        symmetric=symmetric,
        reduction="none",
    )
    ref = _reference_ntxent_rows(z1, z2, t, 0.3, negatives, 3, include_positive, symmetric)
    torch.testing.assert_close(rows, ref, rtol=1e-10, atol=1e-10)


def _ntxent_reference(z1: Tensor, z2: Tensor, tau: float) -> Tensor:
    """Textbook NT-Xent (SimCLR eq. 1) averaged over the 2B anchors, written per anchor."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    losses = []
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        den = sum(torch.exp(z[i] @ z[k] / tau) for k in range(2 * n) if k != i)
        losses.append(-torch.log(torch.exp(z[i] @ z[j] / tau) / den))
    return torch.stack(losses).mean()


def test_reduces_to_ntxent_with_one_head_constant_tau_and_no_regulariser() -> None:
    z1, z2 = _views(1, 6)
    ours = amcl_ntxent_loss(z1, z2, ConstantTemperature(0.3), beta=0.0, include_positive=True)
    torch.testing.assert_close(ours, _ntxent_reference(z1[0], z2[0], 0.3), rtol=1e-10, atol=1e-10)


def test_reduces_to_lightly_ntxent() -> None:
    lightly_loss = pytest.importorskip("lightly.loss")
    z1, z2 = _views(1, 6)
    ours = amcl_ntxent_loss(z1[0], z2[0], ConstantTemperature(0.3), beta=0.0, include_positive=True)
    peer = lightly_loss.NTXentLoss(temperature=0.3)(z1[0], z2[0])
    torch.testing.assert_close(ours, peer, rtol=1e-10, atol=1e-10)


def test_reduces_to_pytorch_metric_learning_ntxent() -> None:
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    z1, z2 = _views(1, 6)
    ours = amcl_ntxent_loss(z1[0], z2[0], ConstantTemperature(0.3), beta=0.0, include_positive=True)
    labels = torch.arange(6).repeat(2)
    peer = pml.NTXentLoss(temperature=0.3)(torch.cat([z1[0], z2[0]]), labels)
    torch.testing.assert_close(ours, peer, rtol=1e-10, atol=1e-10)


class _ByPairSimilarity(TemperatureNet):
    """tau = 0.5 for pairs with cosine > 0.55 (the positive), 0.25 otherwise (test helper)."""

    tau_min, tau_max = 0.25, 0.5

    def gathered(self, u: Tensor, v: Tensor, idx: Tensor) -> Tensor:
        c, n, k = idx.shape
        w = v[:, idx.reshape(-1)].view(c, n, k, -1) if c == 1 else v
        s = (u.unsqueeze(2) * w).sum(-1)
        return torch.where(s > 0.55, 0.5, 0.25).to(u.dtype)

    def pairwise(self, u: Tensor, v: Tensor) -> Tensor:
        return torch.where(u @ v.transpose(1, 2) > 0.55, 0.5, 0.25).to(u.dtype)


def _unit(cos: float) -> Tensor:
    return torch.tensor([cos, 0.0, math.sqrt(1 - cos * cos)], dtype=torch.float64)


@pytest.mark.parametrize("negatives", ["max", "logsumexp"])
def test_max_mode_hand_value(negatives: str) -> None:
    q = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    k = torch.tensor([[0.6, 0.8, 0.0]], dtype=torch.float64)
    queue = torch.stack([_unit(0.2), _unit(0.5), _unit(-0.1)])
    out = amcl_moco_loss(q, k, queue, _ByPairSimilarity(), beta=0.0, negatives=negatives)  # type: ignore[arg-type]
    if negatives == "max":
        expected = -0.6 / 0.5 + 0.5 / 0.25  # = 0.8
    else:
        expected = -0.6 / 0.5 + math.log(sum(math.exp(s / 0.25) for s in (0.2, 0.5, -0.1)))
    assert out.item() == pytest.approx(expected, abs=1e-12)
    if negatives == "max":
        assert out.item() == pytest.approx(0.8, abs=1e-12)


def test_omega_value_and_optimal_temperature() -> None:
    assert omega(torch.tensor(0.5, dtype=torch.float64), 2.0).item() == pytest.approx(
        1.306853, abs=1e-6
    )
    d, s = 64, 0.3
    tau_star = 2 * (1 - s) / d
    tau = torch.tensor(tau_star, dtype=torch.float64, requires_grad=True)
    (-s / tau + omega(tau, float(d))).backward()
    assert tau.grad is not None and abs(tau.grad.item()) < 1e-9
    off = torch.tensor(1.5 * tau_star, dtype=torch.float64, requires_grad=True)
    (-s / off + omega(off, float(d))).backward()
    assert off.grad is not None and off.grad.item() > 1e-3  # not a flat function


def test_positive_temperature_degenerates_to_tau_min() -> None:
    """beta = 0.1, kappa = 128, s = 0.8: f(tau) = -0.7/tau + 6.4 log tau increases in tau, so
    gradient descent on a free tau ends at tau_min (the documented degeneracy)."""
    tau_min, tau_max = 0.05, 1.0
    r = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([r], lr=0.05)
    for _ in range(150):
        tau = tau_min + (tau_max - tau_min) * torch.sigmoid(r)
        loss = -0.8 / tau + 0.1 * omega(tau, 128.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    tau = tau_min + (tau_max - tau_min) * torch.sigmoid(r)
    assert tau.item() < tau_min + 0.01


@pytest.mark.parametrize("negatives", ["logsumexp", "max", "topk"])
def test_temperatures_stay_in_bounds_and_finite_for_huge_inputs(negatives: str) -> None:
    z1, z2 = _views(2, 5)
    z1, z2 = (z1 * 1e6).requires_grad_(True), (z2 * 1e6).requires_grad_(True)
    t = _temp(2)
    for p in t.parameters():
        p.data.mul_(1e3)
    tau = t.pairwise(z1.detach(), z2.detach())
    assert bool((tau >= t.tau_min).all() & (tau <= t.tau_max).all())
    loss = amcl_ntxent_loss(z1, z2, t, negatives=negatives, topk=3)  # type: ignore[arg-type]
    loss.backward()
    assert bool(torch.isfinite(loss))
    for g in (z1.grad, z2.grad, *(p.grad for p in t.parameters())):
        assert g is not None and bool(torch.isfinite(g).all())


@pytest.mark.parametrize("form", ["concat", "dot"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_separable_pairwise_equals_naive_and_gathered(form: str, symmetric: bool) -> None:
    z1, z2 = _views(2, 5)
    t = _temp(2, shared=False, symmetric=symmetric, form=form)
    fast = t.pairwise(z1, z2)
    if form == "concat":
        naive = torch.stack(
            [
                torch.stack(
                    [
                        torch.stack([_naive_tau(t, c, z1[c, i], z2[c, j]) for j in range(5)])
                        for i in range(5)
                    ]
                )
                for c in range(2)
            ]
        )
        torch.testing.assert_close(fast, naive, rtol=1e-12, atol=1e-12)
    idx = torch.tensor([4, 0, 2]).view(1, 1, 3).expand(2, 5, 3)
    torch.testing.assert_close(
        t.gathered(z1, z2, idx), fast[:, :, [4, 0, 2]], rtol=1e-12, atol=1e-12
    )
    torch.testing.assert_close(
        t(z1, z2), torch.diagonal(fast, dim1=1, dim2=2), rtol=1e-12, atol=1e-12
    )
    torch.testing.assert_close(t(z1[1], z2[1], head=1), fast[1].diagonal(), rtol=1e-12, atol=1e-12)
    if symmetric or form == "dot":
        torch.testing.assert_close(t.pairwise(z2, z1), fast.transpose(1, 2), rtol=1e-12, atol=1e-12)
    else:
        assert not torch.allclose(t.pairwise(z2, z1), fast.transpose(1, 2))


def test_identical_heads_give_c_times_the_single_head_loss() -> None:
    z1, z2 = _views(1, 6)
    t1 = _temp(1)
    t3 = PairTemperature(D, hidden=16, num_heads=3, shared=True).double()
    t3.load_state_dict(t1.state_dict())
    one = amcl_ntxent_loss(z1, z2, t1, negatives="logsumexp")
    three = amcl_ntxent_loss(z1.expand(3, -1, -1), z2.expand(3, -1, -1), t3)
    torch.testing.assert_close(three, 3 * one, rtol=1e-12, atol=1e-12)


def test_heads_receive_independent_gradients() -> None:
    z1, z2 = _views(3, 6)
    z1.requires_grad_(True)
    t = ConstantTemperature(0.4)
    amcl_ntxent_loss(z1, z2, t, beta=0.1).backward()
    assert z1.grad is not None
    alone = z1[1].detach().clone().requires_grad_(True)
    amcl_ntxent_loss(alone, z2[1], t, beta=0.1).backward()
    torch.testing.assert_close(z1.grad[1], alone.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("negatives", ["max", "logsumexp"])
def test_gradcheck_features_and_temperature_parameters(negatives: str) -> None:
    z1, z2 = _views(2, 4, seed=3)
    t = _temp(2, shared=False)
    params = list(t.parameters())

    module = AMCLNTXentLoss(t, negatives=negatives, beta=0.2)  # type: ignore[arg-type]
    names = [f"temperature.{n}" for n, _ in t.named_parameters()]

    def loss(a: Tensor, b: Tensor, *ps: Tensor) -> Tensor:  # parameters perturbed by gradcheck too
        out: Tensor = torch.func.functional_call(module, dict(zip(names, ps, strict=True)), (a, b))
        return out

    inputs = (
        z1.requires_grad_(True),
        z2.requires_grad_(True),
        *(p.detach().clone().requires_grad_(True) for p in params),
    )
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_batch_permutation_rescaling_and_view_swap_invariance() -> None:
    z1, z2 = _views(2, 6)
    t = _temp(2, symmetric=True)
    base = amcl_ntxent_loss(z1, z2, t, reduction="none")
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    torch.testing.assert_close(
        amcl_ntxent_loss(z1[:, perm], z2[:, perm], t, reduction="none"), base[perm]
    )
    torch.testing.assert_close(amcl_ntxent_loss(7.0 * z1, 0.1 * z2, t, reduction="none"), base)
    torch.testing.assert_close(amcl_ntxent_loss(z2, z1, t, reduction="none"), base)


def test_moco_reduces_to_infonce_with_a_queue() -> None:
    q, k = _views(1, 5)
    g = torch.Generator().manual_seed(9)
    queue = torch.randn(1, 7, D, generator=g, dtype=torch.float64)
    ours = amcl_moco_loss(
        q, k, queue, ConstantTemperature(0.2), beta=0.0, include_positive=True, reduction="none"
    )
    qn, kn, bn = F.normalize(q[0], dim=1), F.normalize(k[0], dim=1), F.normalize(queue[0], dim=1)
    logits = torch.cat([(qn * kn).sum(1, keepdim=True), qn @ bn.T], dim=1) / 0.2
    ref = F.cross_entropy(logits, torch.zeros(5, dtype=torch.long), reduction="none")
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_moco_queue_is_a_ring_buffer_per_head() -> None:
    loss = AMCLMoCoLoss(ConstantTemperature(0.2), dim=D, num_heads=2, queue_size=5)
    keys = torch.randn(2, 3, D)
    loss.enqueue(keys)
    loss.enqueue(2 * keys)
    unit = F.normalize(keys, dim=-1)
    # slots 0-2 got the first batch, slots 3, 4, 0 the second (oldest overwritten first)
    torch.testing.assert_close(loss.queue[:, 1:3], unit[:, 1:3])
    torch.testing.assert_close(loss.queue[:, 3:5], unit[:, 0:2])
    torch.testing.assert_close(loss.queue[:, 0], unit[:, 2])
    assert int(loss.ptr) == 1


def test_infonce_is_ntxent_with_the_positive_among_candidates() -> None:
    z1, z2 = _views(2, 5)
    t = _temp(2)
    torch.testing.assert_close(
        amcl_infonce_loss(z1, z2, t, negatives="max"),
        amcl_ntxent_loss(z1, z2, t, negatives="max", include_positive=True),
        rtol=0,
        atol=0,
    )


def test_last_stats_report_per_head_temperatures_and_bound_shares() -> None:
    z1, z2 = _views(3, 6)
    loss = AMCLNTXentLoss(_temp(3))
    loss(z1, z2)
    assert set(loss.last_stats) == {
        "tau_pos",
        "tau_neg",
        "pos_at_min",
        "pos_at_max",
        "neg_at_min",
        "neg_at_max",
    }
    for v in loss.last_stats.values():
        assert v.shape == (3,) and not v.requires_grad
    pinned = AMCLNTXentLoss(ConstantTemperature(0.5))
    pinned(z1, z2)
    assert bool((pinned.last_stats["pos_at_min"] == 1).all())
