"""Agents: learning sanity, determinism, exact save/restore mid-stream, and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.neucb import (
    LinSquareCB,
    NeuFastCB,
    NeuralEpsGreedy,
    NeuralTS,
    NeuralUCB,
    NeuSquareCB,
    Uniform,
    mlp,
    run,
    tune,
)

from .conftest import separable_bandit, small_env

AGENTS = {
    "NeuSquareCB": lambda: NeuSquareCB(mlp(12, 16), gamma=50, lr=0.1, replay=1, replay_batch=4),
    "NeuFastCB": lambda: NeuFastCB(mlp(12, 16), gamma=50, lr=0.1, replay=1, replay_batch=4),
    "NeuralUCB": lambda: NeuralUCB(mlp(12, 16), lr=0.1, nu=0.1, replay=1, replay_batch=4),
    "NeuralTS": lambda: NeuralTS(mlp(12, 16), lr=0.1, nu=0.1),
    "NeuralEpsGreedy": lambda: NeuralEpsGreedy(mlp(12, 16), lr=0.1),
    "LinSquareCB": lambda: LinSquareCB(12, gamma=50),
    "Uniform": lambda: Uniform(12),
}


def test_online_ogd_regression_regret_is_small_and_decreasing():
    # realizable linear targets with noise; the oracle's online regret
    # mean_t [(f_t(x_t) - y_t)^2 - (h(x_t) - y_t)^2] must be < 0.05 after 5000 rounds and shrink
    gen = torch.Generator().manual_seed(0)
    d = 5
    w = torch.randn(d, generator=gen)
    w = w / w.norm()
    torch.manual_seed(0)
    agent = NeuSquareCB(nn.Linear(d, 1), gamma=10.0, lr=0.5, perturb_scale=0.0, seed=0)
    xs = torch.randn(5000, 2, d, generator=gen)
    xs = xs / xs.norm(dim=-1, keepdim=True)
    noise = (torch.rand(5000, generator=gen) - 0.5) * 0.2
    regret = torch.empty(5000)
    for t in range(5000):
        action, _ = agent.select(xs[t])
        x = xs[t, action]
        h = 0.5 + 0.4 * (x @ w)
        y = float(h + noise[t])
        with torch.no_grad():
            f = agent.model(x[None]).item()
        regret[t] = (f - y) ** 2 - (float(h) - y) ** 2
        agent.update(x, y)
    avg = [regret[:n].mean().item() for n in (500, 1000, 2500, 5000)]
    assert avg[-1] < 0.05
    assert avg[0] > avg[1] > avg[2] > avg[3]


def _fastcb_on_separable(seed: int) -> dict:
    torch.manual_seed(seed)
    env = separable_bandit(3000, seed=0)
    agent = NeuFastCB(nn.Linear(env.dim, 1), gamma=100.0, lr=0.5, perturb_scale=1e-3, seed=seed)
    return run(env, agent)


def test_neufastcb_learns_a_linearly_separable_bandit_and_is_deterministic():
    first = _fastcb_on_separable(0)
    mistakes_last = first["cum_regret"][-1] - first["cum_regret"][-1001]
    assert mistakes_last.item() / 1000 < 0.05
    again = _fastcb_on_separable(0)
    assert torch.equal(first["actions"], again["actions"])


@pytest.mark.parametrize("name", list(AGENTS))
def test_state_restored_mid_stream_continues_identically(name, tmp_path):
    env = small_env(100)
    torch.manual_seed(0)
    agent = AGENTS[name]()
    run(env, agent, seed=3, n_rounds=60)
    agent.select(env.round(60)[0])  # save between select and update too
    path = tmp_path / "agent.pt"
    torch.save(agent.state_dict(), path)
    contexts, losses = env.round(60)
    action = agent._pending[1]
    agent.update(contexts[action], float(losses[action]))
    rest = run(env, agent, start=61)

    torch.manual_seed(99)  # a different initialisation, overwritten by the state
    restored = AGENTS[name]()
    restored.load_state_dict(torch.load(path, weights_only=True))
    restored.update(contexts[action], float(losses[action]))
    rest_again = run(env, restored, start=61)
    assert torch.equal(rest["actions"], rest_again["actions"])
    torch.testing.assert_close(rest["probs"], rest_again["probs"], rtol=0, atol=0)


@pytest.mark.parametrize("name", list(AGENTS))
def test_every_agent_returns_a_distribution_and_its_action(name):
    env = small_env(20)
    out = run(env, AGENTS[name](), seed=0)
    torch.testing.assert_close(out["probs"].sum(1), torch.ones(20, dtype=torch.float64))
    chosen = out["probs"].gather(1, out["actions"][:, None])
    assert bool((chosen > 0).all())


def test_sqrt_gamma_schedule_starts_uniform_and_grows():
    agent = NeuSquareCB(mlp(12, 8), gamma=10.0, lr=0.1, gamma_schedule="sqrt")
    assert agent.gamma_at(0) == 0.0 and agent.gamma_at(100) == pytest.approx(100.0)
    _, probs = agent.select(small_env().round(0)[0])
    torch.testing.assert_close(probs, torch.full((3,), 1 / 3))


def test_tune_picks_the_setting_with_lowest_mean_regret():
    result = tune(
        lambda seed, lr: NeuSquareCB(mlp(12, 8), gamma=30.0, lr=lr, seed=seed),
        lambda seed: small_env(100, seed),
        {"lr": [1e-4, 0.5]},
        seeds=[0],
    )
    assert len(result.scores) == 2
    assert result.best_regret == min(score for _, score in result.scores)


# ------------------------------------------------------------------------------ bad input
def _agent() -> NeuSquareCB:
    return NeuSquareCB(mlp(12, 8), gamma=10.0, lr=0.1)


def test_contexts_of_wrong_rank_or_width_raise():
    with pytest.raises(ValueError, match=r"shape \(K, D\)"):
        _agent().select(torch.randn(12))
    with pytest.raises(ValueError, match="D = 12"):
        _agent().select(torch.randn(3, 11))


def test_fewer_than_two_arms_raise():
    with pytest.raises(ValueError, match="K >= 2"):
        _agent().select(torch.randn(1, 12))


@pytest.mark.parametrize("loss", [-0.1, 1.5, float("nan")])
def test_loss_outside_unit_interval_raises(loss):
    agent = _agent()
    contexts = torch.randn(3, 12)
    action, _ = agent.select(contexts)
    with pytest.raises(ValueError, match=r"loss must lie in \[0, 1\]"):
        agent.update(contexts[action], loss)


def test_update_before_select_raises():
    with pytest.raises(ValueError, match="before select"):
        _agent().update(torch.randn(12), 0.5)


def test_update_with_all_arms_or_another_action_raises():
    agent = _agent()
    contexts = torch.randn(3, 12)
    action, _ = agent.select(contexts)
    with pytest.raises(ValueError, match="chosen arm"):
        agent.update(contexts, 0.5)
    with pytest.raises(ValueError, match="differs from the selected arm"):
        agent.update(contexts[action], 0.5, action=(action + 1) % 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": -1.0}, "gamma"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1.0}, "lr"),
        ({"perturb_scale": -1e-3}, "perturb_scale"),
    ],
)
@pytest.mark.parametrize("cls", [NeuSquareCB, NeuFastCB])
def test_bad_hyperparameters_raise(cls, kwargs, match):
    args = {"gamma": 10.0, "lr": 0.1} | kwargs
    with pytest.raises(ValueError, match=match):
        cls(mlp(4, 4), **args)


def test_nan_predictions_raise_with_round_index():
    agent = _agent()
    env = small_env(10)
    run(env, agent, n_rounds=3)
    with torch.no_grad():
        agent.model.model[0].weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN or inf at round 3"):
        agent.select(env.round(3)[0])


def test_nonpositive_rounds_in_run_raise():
    with pytest.raises(ValueError, match="n_rounds"):
        run(small_env(10), Uniform(), n_rounds=0)


def test_projection_keeps_parameters_within_radius_of_theta0():
    env = small_env(50)
    torch.manual_seed(0)
    agent = NeuFastCB(mlp(12, 8), gamma=30.0, lr=1.0, radius=0.05, seed=0)
    run(env, agent)
    dist = torch.sqrt(
        sum(((p - t) ** 2).sum() for p, t in zip(agent.params, agent.model.theta0, strict=True))
    )
    assert 0.04 < dist.item() <= 0.05 + 1e-6


def test_neufastcb_round_matches_a_hand_computation_of_the_spec_formulas():
    """Sec. 3: yhat = sigmoid(f + <eps, theta - theta0>), FastCB probs, one OGD step on the KL."""
    torch.manual_seed(0)
    n_arms, dim, gamma, lr, scale = 5, 12, 50.0, 0.2, 0.5
    net = mlp(dim, width=16).double()
    agent = NeuFastCB(net, gamma=gamma, lr=lr, perturb_scale=scale, seed=3)
    theta0 = [p.detach().clone() for p in net.parameters()]
    x = torch.randn(n_arms, dim, dtype=torch.float64)
    for _ in range(5):  # move theta away from theta0 so that the perturbation is not zero
        a, _ = agent.select(x)
        agent.update(x[a], float(a % 2))
    action, probs = agent.select(x)
    eps = agent.model.eps
    pairs = zip(eps, net.parameters(), theta0, strict=True)
    shift = sum((e * (p.detach() - t0)).sum() for e, p, t0 in pairs)
    assert abs(float(shift)) > 1e-4
    with torch.no_grad():
        yhat = torch.sigmoid(net(x).reshape(n_arms) + shift)
    b = int(torch.argmin(yhat))
    expected = yhat[b] / (n_arms * yhat[b] + gamma * (yhat - yhat[b]))
    expected[b] = 0.0
    expected[b] = 1.0 - expected.sum()
    torch.testing.assert_close(probs, expected, atol=1e-12, rtol=0.0)
    # the update: theta - lr * (sigmoid(ftilde) - y) * (grad f + eps), with the same eps
    y = 1.0
    net.zero_grad()
    out = net(x[action : action + 1]).reshape(())
    out.backward()
    coef = torch.sigmoid(out.detach() + shift) - y
    after = [
        p.detach() - lr * coef * (p.grad + e) for p, e in zip(net.parameters(), eps, strict=True)
    ]
    agent.update(x[action], y)
    for p, want in zip(net.parameters(), after, strict=True):
        torch.testing.assert_close(p.detach(), want, atol=1e-12, rtol=0.0)


@pytest.mark.parametrize(
    ("cls", "perturb_scale", "radius"),
    [(NeuSquareCB, 0.0, None), (NeuSquareCB, 0.1, 0.5), (NeuFastCB, 0.05, None)],
)
def test_closed_form_linear_step_equals_the_autograd_step(cls, perturb_scale, radius):
    # A bare nn.Linear(D, 1) takes its OGD steps without autograd; the 0.1.0 autograd step
    # (_reference_step) must play the same stream: same arms, same probabilities, same weights.
    from paperzoo.neucb import from_sklearn, run

    env = from_sklearn("digits", 120, seed=1)
    agents = []
    for reference in (False, True):
        torch.manual_seed(0)
        model = nn.Linear(env.dim, 1).double()
        agent = cls(model, gamma=30.0, lr=0.5, perturb_scale=perturb_scale, radius=radius, seed=3)
        assert agent._linear is model
        agent._reference_step = reference
        agents.append((agent, run(env, agent)))
    (fast, out_fast), (ref, out_ref) = agents
    assert torch.equal(out_fast["actions"], out_ref["actions"])
    torch.testing.assert_close(out_fast["probs"], out_ref["probs"], rtol=1e-9, atol=1e-12)
    for p, q in zip(fast.params, ref.params, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)
    assert out_fast["cum_regret"][-1] < 120 * 0.9  # it learned something: not all mistakes


def test_all_finite_flag_equals_torch_isfinite_all():
    from paperzoo.neucb.agents import _all_finite

    x = torch.tensor([0.0, -1.5, 3e38, -3e38, 1e-45])
    assert bool(_all_finite(x)) and bool(torch.isfinite(x).all())
    for bad in (float("nan"), float("inf"), float("-inf")):
        y = x.clone()
        y[2] = bad
        assert not bool(_all_finite(y)) and not bool(torch.isfinite(y).all())
