"""Paper-specific correctness tests of ALDR-KL (spec section 5)."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.ldr import ALDRKLLoss, aldr_kl_loss, ldr_kl_loss, normalize_scores


def _rand(batch: int, k: int, seed: int, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    f = scale * torch.randn(batch, k, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (batch,), generator=g)
    return f, y


def _reference_aldr_rows(
    f: Tensor, y: Tensor, prev: list[float], lam0: float, alpha: float, c: float, exact_p: bool
) -> tuple[list[float], list[float]]:
    """Per-example loop from the paper's formulas (l1 normalisation): (losses, new lambdas)."""
    losses, lams = [], []
    k = f.shape[1]
    log_k = math.log(k)
    for i in range(f.shape[0]):
        row = [float(v) for v in f[i]]
        m = sum(abs(v) for v in row) / k
        s = [v / (m + 1e-12) for v in row]
        yi = int(y[i])
        z = [(c if j != yi else 0.0) + s[j] - s[yi] for j in range(k)]
        a = z if exact_p else s
        e = [math.exp(v / prev[i]) for v in a]
        p = [v / sum(e) for v in e]
        kl = sum(pj * math.log(k * pj) for pj in p)
        lam = lam0 * (1 - kl / (alpha * log_k))
        loss = lam * math.log(sum(math.exp(v / lam) for v in z) / k)
        loss -= alpha * log_k / (2 * lam0) * (lam - lam0) ** 2
        losses.append(loss)
        lams.append(lam)
    return losses, lams


@pytest.mark.parametrize("exact_p", [True, False])
def test_vectorised_aldr_matches_reference_loop(exact_p: bool) -> None:
    f, y = _rand(6, 5, 0, scale=2.0)
    prev = [10.0, 7.0, 5.5, 9.0, 6.0, 8.0]
    loss_fn = ALDRKLLoss(10, lam0=10.0, alpha=2.0, exact_p=exact_p, reduction="none").double()
    index = torch.tensor([3, 1, 4, 0, 9, 7])
    loss_fn.lambdas[index] = torch.tensor(prev, dtype=torch.float64)
    got = loss_fn(f, y, index)
    losses, lams = _reference_aldr_rows(f, y, prev, 10.0, 2.0, 0.1, exact_p)
    torch.testing.assert_close(got, torch.tensor(losses, dtype=torch.float64))
    torch.testing.assert_close(loss_fn.lambdas[index], torch.tensor(lams, dtype=torch.float64))


def test_closed_form_lambda_is_the_argmax_over_a_lambda_grid() -> None:
    lam0, alpha, k = 10.0, 2.0, 7
    log_k = math.log(k)
    f, y = _rand(5, k, 1, scale=3.0)
    loss_fn = ALDRKLLoss(5, lam0=lam0, alpha=alpha, reduction="none").double()
    loss_fn(f, y, torch.arange(5))
    assert loss_fn.last_kl is not None and loss_fn.last_lambdas is not None
    grid = torch.linspace(1e-3, 2 * lam0, 200001, dtype=torch.float64)
    for kl, lam in zip(loss_fn.last_kl.tolist(), loss_fn.last_lambdas.tolist(), strict=True):
        objective = -grid * kl - alpha * log_k / (2 * lam0) * (grid - lam0) ** 2
        assert lam == pytest.approx(float(grid[objective.argmax()]), abs=2e-4)


def test_lambdas_stay_in_the_interval_and_shrink_for_flat_worst_cases() -> None:
    lam0, alpha = 10.0, 2.0
    g = torch.Generator().manual_seed(2)
    loss_fn = ALDRKLLoss(50, lam0=lam0, alpha=alpha)
    for _ in range(20):
        f = 5 * torch.randn(16, 10, generator=g)
        idx = torch.randint(0, 50, (16,), generator=g)
        loss_fn(f, torch.randint(0, 10, (16,), generator=g), idx)
    lo = lam0 * (1 - 1 / alpha)
    assert bool((loss_fn.lambdas >= lo).all()) and bool((loss_fn.lambdas <= lam0).all())
    assert float(loss_fn.lambdas.min()) < lam0 - 1e-3
    # all-equal scores: uniform worst case (KL = 0) keeps lambda at lam0 when the margin is zero
    flat = ALDRKLLoss(3, lam0=lam0, alpha=alpha, margin=0.0)
    flat(torch.ones(3, 4), torch.tensor([0, 1, 2]), torch.arange(3))
    torch.testing.assert_close(flat.lambdas, torch.full((3,), lam0))


def test_huge_alpha_reduces_aldr_to_ldr_kl_at_lambda0() -> None:
    f, y = _rand(8, 6, 3, scale=2.0)
    aldr = ALDRKLLoss(8, lam0=4.0, alpha=1e9, normalize="softplus_mean").double()
    got = aldr(f, y, torch.arange(8))
    torch.testing.assert_close(got, ldr_kl_loss(f, y, 4.0, 0.1, "softplus_mean"))


def test_only_rows_in_index_change() -> None:
    f, y = _rand(4, 5, 4, scale=3.0)
    loss_fn = ALDRKLLoss(12)
    index = torch.tensor([2, 5, 7, 11])
    before = loss_fn.lambdas.clone()
    loss_fn(f.float(), y, index)
    changed = (loss_fn.lambdas != before).nonzero().flatten()
    assert set(changed.tolist()) <= set(index.tolist())
    assert len(changed) > 0
    untouched = torch.ones(12, dtype=torch.bool)
    untouched[index] = False
    assert torch.equal(loss_fn.lambdas[untouched], before[untouched])


def test_exact_p_false_reproduces_the_reference_formula() -> None:
    """Written independently of the package: the official ALDRLoss_V1 step (p from scores/Lambda,
    1e-5 smoothing and renormalisation, margin only in the loss)."""
    f, y = _rand(8, 6, 5, scale=2.0)
    prev = torch.tensor([10.0, 9.0, 8.0, 7.0, 6.0, 5.5, 9.5, 8.5], dtype=torch.float64)
    lam0, alpha, c, k = 10.0, 2.0, 0.1, 6
    one_hot = F.one_hot(y, k).double()
    s = f / (f.abs().sum(dim=1, keepdim=True) / k)
    p = torch.softmax(s / prev[:, None], dim=1) + 1e-5
    p = p / p.sum(dim=1, keepdim=True)
    kl = (p * torch.log(k * p)).sum(dim=1)
    lam = lam0 - lam0 * kl / (alpha * math.log(k))
    diff = c * (1 - one_hot) + s - (s * one_hot).sum(dim=1, keepdim=True)
    ref = lam * torch.log(torch.exp(diff / lam[:, None]).mean(dim=1))
    ref = ref - 0.5 * alpha * math.log(k) / lam0 * (lam - lam0) ** 2

    loss_fn = ALDRKLLoss(8, lam0, alpha, c, exact_p=False, reduction="none").double()
    loss_fn.lambdas.copy_(prev)
    got = loss_fn(f, one_hot, torch.arange(8))
    # the 1e-5 smoothing is the only difference (we use the exact KL)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(loss_fn.lambdas, lam, atol=1e-4, rtol=0)
    exact = ALDRKLLoss(8, lam0, alpha, c, exact_p=True, reduction="none").double()
    exact.lambdas.copy_(prev)
    assert not torch.allclose(exact(f, one_hot, torch.arange(8)), got, atol=1e-9, rtol=0)


def test_state_dict_round_trip_preserves_lambdas() -> None:
    f, y = _rand(6, 5, 6, scale=3.0)
    loss_fn = ALDRKLLoss(6)
    loss_fn(f.float(), y, torch.arange(6))
    buffer = io.BytesIO()
    torch.save(loss_fn.state_dict(), buffer)
    buffer.seek(0)
    restored = ALDRKLLoss(6)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(restored.lambdas, loss_fn.lambdas)
    assert not torch.equal(restored.lambdas, torch.full((6,), 10.0))
    restored.reset()
    assert torch.equal(restored.lambdas, torch.full((6,), 10.0))


def test_gradient_is_the_ldr_kl_gradient_at_the_updated_lambdas() -> None:
    f, y = _rand(5, 4, 7, scale=2.0)
    x = f.clone().requires_grad_(True)
    loss_fn = ALDRKLLoss(5, reduction="sum").double()
    loss_fn(x, y, torch.arange(5)).backward()
    assert loss_fn.last_lambdas is not None and x.grad is not None
    lams = loss_fn.last_lambdas.clone()
    x2 = f.clone().requires_grad_(True)
    ldr_kl_loss(x2, y, lams, 0.1, "l1", reduction="sum").backward()
    torch.testing.assert_close(x.grad, x2.grad)
    # and that gradient is right (float64 gradcheck at fixed lambdas)
    assert torch.autograd.gradcheck(
        lambda v: ldr_kl_loss(v, y, lams, 0.1, "l1", reduction="none"),
        (f.clone().requires_grad_(True),),
    )


def test_functional_equals_module_on_a_fresh_table() -> None:
    f, y = _rand(7, 5, 8)
    module = ALDRKLLoss(7, reduction="none").double()
    got = module(f, y, torch.arange(7))
    fun = aldr_kl_loss(f, y, torch.full((7,), 10.0, dtype=torch.float64), reduction="none")
    torch.testing.assert_close(got, fun)


def test_eval_mode_does_not_write_the_table() -> None:
    f, y = _rand(4, 5, 9, scale=3.0)
    loss_fn = ALDRKLLoss(4).eval()
    loss_fn(f.float(), y, torch.arange(4))
    assert torch.equal(loss_fn.lambdas, torch.full((4,), 10.0))
    assert loss_fn.last_lambdas is not None


def test_label_enters_the_lambda_update_only_through_the_margin() -> None:
    """softmax(z / L) = softmax((s + c [k != y]) / L): with exact_p a label that disagrees with the
    top score keeps the top class's margin, so p is more peaked, KL larger and lambda smaller; with
    the official step (exact_p=False) lambda_i does not depend on the label at all."""
    scores = torch.tensor([[6.0, 0.0, 0.0, 0.0], [6.0, 0.0, 0.0, 0.0]])
    exact = ALDRKLLoss(2, lam0=1.0, alpha=2.0, normalize="none")
    exact(scores, torch.tensor([0, 1]), torch.arange(2))
    agree, disagree = exact.lambdas.tolist()
    assert disagree < agree
    official = ALDRKLLoss(2, lam0=1.0, alpha=2.0, normalize="none", exact_p=False)
    official(scores, torch.tensor([0, 1]), torch.arange(2))
    assert official.lambdas[0] == official.lambdas[1]


def test_softplus_l1_is_the_official_cifar100_choice() -> None:
    f, y = _rand(5, 6, 10, scale=2.0)
    a = ALDRKLLoss(5, normalize="softplus_l1", reduction="none").double()
    b = ALDRKLLoss(5, normalize="none", reduction="none").double()
    torch.testing.assert_close(
        a(f, y, torch.arange(5)), b(normalize_scores(f, "softplus_mean"), y, torch.arange(5))
    )


def test_lambda_update_follows_confidence_not_the_label() -> None:
    """lambda* = lam0 (1 - KL(p||u) / (alpha log K)): peaked scores -> small lambda, flat -> lam0.

    With the official update (exact_p=False) p = softmax(s / Lambda) ignores the label, so a wrong
    label and a right label on the same logits get the same lambda.
    """
    k = 10
    confident = torch.zeros(1, k, dtype=torch.float64)
    confident[0, 3] = 8.0
    flat = torch.full((1, k), 0.1, dtype=torch.float64)
    flat[0, 3] = 0.2
    f = torch.cat([confident, confident, flat])
    y = torch.tensor([3, 7, 3])  # right label, wrong label, right label on a flat prediction
    loss_fn = ALDRKLLoss(3, lam0=1.0, alpha=2.0, exact_p=False).double()
    loss_fn(f, y, torch.arange(3))
    lam = loss_fn.lambdas
    assert lam[0] == lam[1]
    assert lam[0] < lam[2] <= 1.0
    assert lam[0] < 0.75  # well inside [lam0 (1 - 1/alpha), lam0] = [0.5, 1]
