"""The doubly stochastic update: its gradient, a manual SGD step, and a consistency sanity run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from paperzoo.ensloss import EnsLoss, ensloss, ensloss_derivatives


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_is_the_derivative_times_the_label(reduction: str) -> None:
    x = torch.randn(37, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.randint(0, 2, (37, 1), generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    loss = EnsLoss(generator=torch.Generator().manual_seed(5), reduction=reduction)  # type: ignore[arg-type]
    loss(x, t).backward()
    y = (2 * t - 1).double()[:, 0]
    g = ensloss_derivatives((y * x.detach()[:, 0]), generator=torch.Generator().manual_seed(5))
    assert loss.last_derivatives is not None
    torch.testing.assert_close(loss.last_derivatives, g, rtol=0, atol=0)
    scale = 1.0 / 37 if reduction == "mean" else 1.0
    assert x.grad is not None
    torch.testing.assert_close(x.grad[:, 0], g * y * scale, rtol=1e-15, atol=0)


def test_01_and_pm1_targets_give_the_same_update() -> None:
    x = torch.randn(50, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t01 = torch.randint(0, 2, (50,), generator=torch.Generator().manual_seed(1))
    grads = []
    for t, fmt in ((t01, "01"), (2 * t01 - 1, "pm1"), (t01.bool(), "01"), (t01.float(), "01")):
        xi = x.clone().requires_grad_(True)
        ensloss(xi, t, target_format=fmt, generator=torch.Generator().manual_seed(2)).backward()  # type: ignore[arg-type]
        grads.append(xi.grad)
    for gr in grads[1:]:
        torch.testing.assert_close(gr, grads[0], rtol=0, atol=0)


def test_one_sgd_step_equals_the_manual_update() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, dtype=torch.float64, generator=gen)
    t = torch.randint(0, 2, (64,), generator=gen)
    model = torch.nn.Linear(5, 1, bias=False).double()
    w0 = model.weight.detach().clone()[0]
    lr = 0.3
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss = EnsLoss(generator=torch.Generator().manual_seed(9))
    loss(model(x), t).backward()
    opt.step()
    y = 2.0 * t.double() - 1.0
    g = ensloss_derivatives(y * (x @ w0), generator=torch.Generator().manual_seed(9))
    manual = w0 - lr * (g * y) @ x / 64  # theta <- theta - eta (1/B) sum g_i y_i x_i
    torch.testing.assert_close(model.weight.detach()[0], manual, rtol=1e-12, atol=1e-14)


def _train_linear(use_ensloss: bool, x: torch.Tensor, t: torch.Tensor) -> torch.nn.Linear:
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    loss = EnsLoss(generator=torch.Generator().manual_seed(1))
    order = torch.Generator().manual_seed(2)
    for _ in range(300):
        idx = torch.randint(0, x.shape[0], (128,), generator=order)
        out = model(x[idx])[:, 0]
        if use_ensloss:
            value = loss(out, t[idx])
        else:
            value = F.binary_cross_entropy_with_logits(out, t[idx].float())
        opt.zero_grad()
        value.backward()
        opt.step()
    return model


def test_ensloss_is_consistent_on_two_gaussians() -> None:
    """Two Gaussians N(+-mu, I): the Bayes rule is sign(mu . x); EnsLoss agrees with it on >= 95 %
    of 10,000 test points and its accuracy is at least BCE's minus 1 point."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([1.0, 0.5])

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.randint(0, 2, (n,), generator=gen)
        x = torch.randn(n, 2, generator=gen) + (2.0 * t - 1.0)[:, None] * mu
        return x, t

    x_tr, t_tr = sample(2000)
    x_te, t_te = sample(10_000)
    bayes = (x_te @ mu) > 0
    ens_model = _train_linear(True, x_tr, t_tr)
    bce_model = _train_linear(False, x_tr, t_tr)
    with torch.no_grad():
        ens = ens_model(x_te)[:, 0] > 0
        bce = bce_model(x_te)[:, 0] > 0
    agreement = float((ens == bayes).float().mean())
    acc_ens = float((ens == t_te.bool()).float().mean())
    acc_bce = float((bce == t_te.bool()).float().mean())
    assert agreement >= 0.95, agreement
    assert acc_ens >= acc_bce - 0.01, (acc_ens, acc_bce)


def test_validate_false_skips_the_host_syncs_but_gives_the_same_value() -> None:
    x = torch.randn(20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.randint(0, 2, (20,), generator=torch.Generator().manual_seed(1))
    a = ensloss(x, t, generator=torch.Generator().manual_seed(3))
    b = ensloss(x, t, generator=torch.Generator().manual_seed(3), validate=False)
    assert torch.equal(a, b)


@pytest.mark.gpu
def test_cuda_update_matches_cpu_with_a_cuda_generator() -> None:
    x = torch.randn(256, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.randint(0, 2, (256,), generator=torch.Generator().manual_seed(1))
    xc = x.cuda().requires_grad_(True)
    loss = EnsLoss(generator=torch.Generator(device="cuda").manual_seed(0), validate=False)
    tc = t.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # no host-device sync in forward or backward
    try:
        loss(xc, tc).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    g = loss.last_derivatives
    assert g is not None and g.device.type == "cuda"
    y = (2.0 * t.double() - 1.0).cuda()
    assert xc.grad is not None
    torch.testing.assert_close(xc.grad, g * y / 256, rtol=1e-12, atol=0)
    assert bool((g < 0).all()) and bool((g[torch.argsort(y * x.cuda())].diff() >= 0).all())
