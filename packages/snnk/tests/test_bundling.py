"""Bundling: the identity W' z = W h, closed-form readout vs lstsq / pseudo-inverse, ridge CV."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.snnk import Cos, Exp, FullyBundledNetwork, bundle, ridge_cv, ridge_fit
from paperzoo.snnk.urf import URF


def _mlp(widths: list[int], act: type[nn.Module] = Cos) -> nn.Sequential:
    torch.manual_seed(0)
    mods: list[nn.Module] = []
    for i in range(len(widths) - 1):
        mods.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            mods.append(act())
    return nn.Sequential(*mods).double()


@pytest.mark.parametrize("act", [Cos, Exp, nn.ReLU])
def test_bundled_preactivations_equal_the_unbundled_ones(act: type[nn.Module]) -> None:
    """W'_{l+1} z_l = W_{l+1} (Theta_l^T z_l) (float64) at every layer, and forward = Omega^T z_L + c."""
    mlp = _mlp([5, 7, 6, 3], act)
    net = bundle(mlp, 32, prescale=None, seed=0)
    x = torch.randn(10, 5, dtype=torch.float64) * 0.3
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    z = x
    for layer, f, lin_next in zip(net.assembled, net.maps, linears[1:], strict=True):
        z = f.input_features(z) if isinstance(f, URF) else f(z)
        h = z @ layer.theta  # the SNNK of layer l: h_{l+1} ~ Theta_l^T z_l
        w_prime = lin_next.weight @ layer.theta.T
        torch.testing.assert_close(z @ w_prime.T, h @ lin_next.weight.T, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        net(x), z @ (linears[-1].weight @ net.assembled[-1].theta.T).T + linears[-1].bias
    )
    torch.testing.assert_close(net.features(x), z)


def test_depth_one_bundle_approximates_the_network() -> None:
    """One hidden cos layer, prescale None: the bundled network estimates the MLP's output."""
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 8), Cos(), nn.Linear(8, 2)).double()
    with torch.no_grad():
        mlp[0].weight.mul_(0.5)
    x = torch.randn(30, 4, dtype=torch.float64) * 0.2
    net = bundle(mlp, 20000, prescale=None, seed=1)
    with torch.no_grad():
        err = float((net(x) - mlp(x)).norm() / mlp(x).norm())
    assert err < 0.05


def _features(n: int = 60, m: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    Z = torch.randn(n, m, generator=gen, dtype=torch.float64)
    Y = (
        Z @ torch.randn(m, 2, generator=gen, dtype=torch.float64)
        + 0.1 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        + 1.5
    )
    return Z, Y


def test_closed_form_equals_lstsq_on_the_augmented_system() -> None:
    Z, Y = _features()
    rho = 0.7
    omega, c = ridge_fit(Z, Y, rho)
    Zc, Yc = Z - Z.mean(0), Y - Y.mean(0)
    aug = torch.cat([Zc, rho**0.5 * torch.eye(Z.shape[1], dtype=Z.dtype)])
    ref = torch.linalg.lstsq(
        aug, torch.cat([Yc, torch.zeros(Z.shape[1], 2, dtype=Z.dtype)])
    ).solution
    torch.testing.assert_close(omega, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(c, Y.mean(0) - Z.mean(0) @ ref, rtol=1e-6, atol=1e-6)


def test_closed_form_equals_converged_gradient_descent() -> None:
    Z, Y = _features(n=40, m=5)
    rho = 0.5
    omega, c = ridge_fit(Z, Y, rho)
    w = torch.zeros(5, 2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = 0.5 * (Z @ w + b - Y).square().sum() + 0.5 * rho * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(w.detach(), omega, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(b.detach(), c, rtol=1e-6, atol=1e-6)


def test_ridge_to_zero_matches_the_pseudo_inverse_when_m_exceeds_n() -> None:
    Z, Y = _features(n=15, m=40)
    Zc, Yc = Z - Z.mean(0), Y - Y.mean(0)
    pinv = torch.linalg.pinv(Zc) @ Yc
    torch.testing.assert_close(ridge_fit(Z, Y, 0.0)[0], pinv, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(ridge_fit(Z, Y, 1e-10)[0], pinv, rtol=1e-4, atol=1e-6)


def test_ridge_cv_matches_a_loop_over_folds_and_ridges() -> None:
    """The eigendecomposition shortcut gives each grid value the plain K-fold validation MSE."""
    Z, Y = _features(n=53, m=12)
    grid = (1e-3, 0.1, 1.0, 10.0, 100.0)
    res = ridge_cv(Z, Y, grid, folds=4, seed=3)
    perm = torch.randperm(53, generator=torch.Generator().manual_seed(3))
    for rho in grid:
        total = 0.0
        for part in perm.tensor_split(4):
            train = torch.ones(53, dtype=torch.bool)
            train[part] = False
            om, c = ridge_fit(Z[train], Y[train], rho)
            total += float((Z[part] @ om + c - Y[part]).square().mean()) * len(part) / 53
        assert abs(res.scores[rho] - total) < 1e-9 * max(1.0, total)
    assert res.ridge == min(grid, key=lambda r: res.scores[r])


def test_fit_closed_form_with_cv_avoids_the_interpolating_ridge() -> None:
    """m = 256 features on n = 60 noisy rows: ridge 1e-6 interpolates; CV picks a larger one
    and a lower test error."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(120, 3, generator=gen, dtype=torch.float64)
    y = torch.sin(X[:, 0]) + 0.3 * torch.randn(120, generator=gen, dtype=torch.float64)
    net = FullyBundledNetwork(3, 1, 256, depth=2, seed=0).double()
    cv = net.fit_closed_form(X[:60], y[:60], ridge="cv")
    assert cv.ridge_ is not None and cv.ridge_ > 1e-6
    tiny = FullyBundledNetwork(3, 1, 256, depth=2, seed=0).double().fit_closed_form(X[:60], y[:60])
    with torch.no_grad():
        mse_cv = float((cv(X[60:])[:, 0] - y[60:]).square().mean())
        mse_tiny = float((tiny(X[60:])[:, 0] - y[60:]).square().mean())
    assert mse_cv < mse_tiny


def test_bundle_features_do_not_depend_on_the_activation() -> None:
    """Positive features are parameter-free: cos and exp bundles with the same seeds share z_L."""
    x = torch.randn(5, 5, dtype=torch.float64)
    a = bundle(_mlp([5, 7, 6, 3], Cos), 16, seed=0)
    b = bundle(_mlp([5, 7, 6, 3], Exp), 16, seed=0)
    torch.testing.assert_close(a.features(x), b.features(x), rtol=0, atol=0)
