"""The perturbed prediction: zero at init, exact identities, and its expectation (ridge to theta_0)."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core.testing import LayerContractTests
from paperzoo.neucb.perturbed import PerturbedModel, mlp


def _perturbed(scale: float = 0.5, seed: int = 0, dtype=torch.float32) -> PerturbedModel:
    model = mlp(6, width=8).to(dtype)
    return PerturbedModel(model, scale, torch.Generator().manual_seed(seed))


class TestPerturbedModelContract(LayerContractTests):
    def make_layer(self):
        layer = _perturbed()
        with torch.no_grad():
            for p in layer.model.parameters():
                p.add_(0.1 * torch.randn_like(p))
        layer.resample()
        return layer

    def make_input(self, batch, *, dtype, device, generator):
        return torch.randn(batch, 6, generator=generator, dtype=torch.float64).to(device, dtype)


def test_perturbation_is_exactly_zero_at_initialisation():
    model = _perturbed(scale=1.0)
    model.resample()
    x = torch.randn(5, 6)
    assert model.perturbation().item() == 0.0
    assert torch.equal(model(x), model.model(x))


def test_zero_scale_gives_identical_outputs_and_gradients():
    torch.manual_seed(0)
    base = mlp(6, width=8)
    wrapped = PerturbedModel(base, 0.0)
    with torch.no_grad():
        for p in base.parameters():
            p.add_(0.3)
    wrapped.resample()
    x = torch.randn(4, 6)
    out_w = wrapped(x)
    g_w = torch.autograd.grad(out_w.sum(), list(base.parameters()))
    out_b = base(x)
    g_b = torch.autograd.grad(out_b.sum(), list(base.parameters()))
    assert torch.equal(out_w, out_b)
    for a, b in zip(g_w, g_b, strict=False):
        assert torch.equal(a, b)


def test_perturbation_is_inner_product_with_displacement_and_its_gradient_adds_eps():
    model = _perturbed(scale=0.7, dtype=torch.float64)
    with torch.no_grad():
        for p in model.model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    model.resample()
    x = torch.randn(1, 6, dtype=torch.float64)
    params = list(model.model.parameters())
    # reference: flat vectors
    eps = torch.cat([e.flatten() for e in model.eps])
    disp = torch.cat([(p - t).flatten() for p, t in zip(params, model.theta0, strict=False)])
    torch.testing.assert_close(model(x) - model.model(x), (eps @ disp).reshape(1, 1))
    y = torch.tensor([[0.3]], dtype=torch.float64)
    loss = 0.5 * (model(x) - y).square().sum()
    grads = torch.autograd.grad(loss, params)
    ftilde = model(x).detach()
    grad_f = torch.autograd.grad(model.model(x).sum(), params)
    for g, gf, e in zip(grads, grad_f, model.eps, strict=False):
        torch.testing.assert_close(g, (ftilde - y).item() * (gf + e))


def test_eps_has_the_specified_scale():
    model = _perturbed(scale=2.0, dtype=torch.float64)
    draws = []
    for _ in range(200):
        model.resample()
        draws.append(torch.cat([e.flatten() for e in model.eps]))
    flat = torch.stack(draws)
    expected_var = 2.0**2 / model.num_params
    assert flat.mean().abs() < 4 * (expected_var / flat.numel()) ** 0.5
    assert flat.var().item() == pytest.approx(expected_var, rel=0.05)


def test_expected_squared_loss_is_ridge_towards_theta0():
    # E_eps (y - ftilde)^2 = (y - f)^2 + (c^2 / p) ||theta - theta_0||^2, Monte Carlo within 4 SE
    scale = 3.0
    model = _perturbed(scale=scale, seed=1, dtype=torch.float64)
    with torch.no_grad():
        for p in model.model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    x = torch.randn(1, 6, dtype=torch.float64)
    y = 0.4
    with torch.no_grad():
        f = model.model(x).item()
        params = list(model.model.parameters())
        disp2 = sum(((p - t) ** 2).sum() for p, t in zip(params, model.theta0, strict=False)).item()
        n = 20000
        gen = torch.Generator().manual_seed(5)
        flat = torch.randn(n, model.num_params, generator=gen, dtype=torch.float64)
        flat *= scale / model.num_params**0.5
        disp = torch.cat([(p - t).flatten() for p, t in zip(params, model.theta0, strict=False)])
        samples = (y - (f + flat @ disp)) ** 2
    # the same thing through the module for a few draws, to tie the MC to PerturbedModel itself
    for _ in range(3):
        model.resample()
        with torch.no_grad():
            eps = torch.cat([e.flatten() for e in model.eps])
            assert model(x).item() == pytest.approx(f + (eps @ disp).item(), rel=1e-10)
    expected = (y - f) ** 2 + scale**2 / model.num_params * disp2
    se = samples.std().item() / n**0.5
    assert abs(samples.mean().item() - expected) < 4 * se
    assert scale**2 / model.num_params * disp2 > 10 * se  # the ridge term is resolved, not noise


def test_negative_scale_raises():
    with pytest.raises(ValueError, match="perturb_scale"):
        PerturbedModel(mlp(3), -1.0)


def test_wrong_input_width_raises():
    with pytest.raises(ValueError, match="D = 6"):
        _perturbed()(torch.randn(2, 5))
