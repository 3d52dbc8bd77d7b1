"""The select/update protocol under misuse, state snapshots, and host reads per round."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from paperzoo.neucb import (
    ClassificationBandit,
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

from .conftest import small_env


def _env(n_rounds: int = 100, seed: int = 0) -> ClassificationBandit:
    return small_env(n_rounds, seed)


def _agents(validate: bool = True) -> dict[str, Any]:
    kw = {"validate": validate}
    rep = {"replay": 1, "replay_batch": 4, **kw}
    return {
        "NeuSquareCB": lambda: NeuSquareCB(mlp(12, 16), gamma=50, lr=0.1, **rep),
        "NeuFastCB": lambda: NeuFastCB(mlp(12, 16), gamma=50, lr=0.1, **rep),
        "NeuralUCB": lambda: NeuralUCB(mlp(12, 16), lr=0.1, nu=0.1, **rep),
        "NeuralTS": lambda: NeuralTS(mlp(12, 16), lr=0.1, nu=0.1, **rep),
        "NeuralEpsGreedy": lambda: NeuralEpsGreedy(mlp(12, 16), lr=0.1, **rep),
        "LinSquareCB": lambda: LinSquareCB(12, gamma=50, **kw),
        "Uniform": lambda: Uniform(12, **kw),
    }


NAMES = list(_agents())
NETWORK_AGENTS = ["NeuSquareCB", "NeuFastCB", "NeuralUCB", "NeuralTS", "NeuralEpsGreedy"]


# ------------------------------------------------------------------------------ state
@pytest.mark.parametrize("name", NAMES)
def test_in_memory_state_is_a_snapshot_that_resumes_exactly(name):
    # state_dict() kept in memory (no torch.save) must not follow the agent's later updates:
    # network parameters, RNG, history buffer and counters all come back as they were
    env = _env(100)
    torch.manual_seed(0)
    agent = _agents()[name]()
    run(env, agent, seed=3, n_rounds=50)
    state = agent.state_dict()
    first = run(env, agent, start=50, n_rounds=30)
    agent.load_state_dict(state)
    again = run(env, agent, start=50, n_rounds=30)
    assert torch.equal(first["actions"], again["actions"])
    torch.testing.assert_close(first["probs"], again["probs"], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["NeuSquareCB", "NeuFastCB", "NeuralUCB"])
def test_history_is_restored_on_the_agents_dtype(name):
    # a state whose history was stored in another dtype (e.g. written by a float64 run) is cast
    # to the agent's dtype on load, so the replay steps keep working
    env = _env(30)
    agent = _agents()[name]()
    run(env, agent, seed=0, n_rounds=10)
    state = agent.state_dict()
    state["history_contexts"] = state["history_contexts"].double()
    state["history_targets"] = state["history_targets"].double()
    agent.load_state_dict(state)
    assert agent.history is not None and agent.history.contexts.dtype == torch.float32
    run(env, agent, start=10, n_rounds=5)


@pytest.mark.parametrize("name", NAMES)
def test_contexts_with_an_autograd_graph_do_not_chain_graphs_across_rounds(name):
    # contexts produced by a feature network still carry its graph; the agent must not keep it
    # (the history buffer and the ridge statistics would otherwise chain every round's graph)
    encoder = nn.Linear(5, 12)
    agent = _agents()[name]()
    for t in range(4):
        contexts = encoder(torch.randn(3, 5, generator=torch.Generator().manual_seed(t)))
        action, probs = agent.select(contexts)
        agent.update(contexts[action], 0.5)
        assert not probs.requires_grad
    for key, value in agent.state_dict().items():
        tensors = value.values() if isinstance(value, dict) else [value]
        for tensor in tensors:
            if isinstance(tensor, torch.Tensor):
                assert not tensor.requires_grad, key


# ------------------------------------------------------------------------------ misuse
def _selected(agent):
    contexts = torch.randn(3, 12, generator=torch.Generator().manual_seed(0))
    action, _ = agent.select(contexts)
    return contexts, action


@pytest.mark.parametrize("name", NAMES)
def test_update_before_select_and_twice_for_one_select_raise(name):
    agent = _agents()[name]()
    with pytest.raises(ValueError, match="before select"):
        agent.update(torch.randn(12), 0.5)
    contexts, action = _selected(agent)
    agent.update(contexts[action], 0.5)
    # issue 16 item 6: the second update said "called before select()", which it was not
    with pytest.raises(ValueError, match=r"update\(\) called twice for one select\(\)"):
        agent.update(contexts[action], 0.5)
    contexts, action = _selected(agent)  # the next round works as usual
    agent.update(contexts[action], 0.5)
    assert agent.t == 2


@pytest.mark.parametrize("name", NAMES)
def test_update_with_the_contexts_of_another_arm_count_raises(name):
    agent = _agents()[name]()
    contexts, action = _selected(agent)
    with pytest.raises(ValueError, match="all K = 3 contexts"):
        agent.update(contexts, 0.5)
    with pytest.raises(ValueError, match=r"shape \(D,\)"):
        agent.update(torch.randn(5, 12), 0.5)
    agent.update(contexts[action], 0.5)  # the pending select survived the bad calls


class _ScaledLinear(nn.Module):
    """A model whose first parametrised module is not an nn.Linear (input width unknown)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))
        self.linear = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.scale)


def test_update_context_width_is_checked_against_the_select_when_the_model_hides_it():
    agent = NeuSquareCB(_ScaledLinear(12), gamma=10.0, lr=0.1)
    assert agent.input_dim is None
    contexts, action = _selected(agent)
    with pytest.raises(ValueError, match="D = 12 features"):
        agent.update(torch.randn(7), 0.5)
    agent.update(contexts[action], 0.5)


@pytest.mark.parametrize("loss", ["0.5", None, [0.5]])
def test_loss_of_a_non_numeric_type_raises_type_error_naming_loss(loss):
    agent = NeuFastCB(mlp(12, 8), gamma=10.0, lr=0.1)
    contexts, action = _selected(agent)
    with pytest.raises(TypeError, match="loss must be a real number"):
        agent.update(contexts[action], loss)


def test_loss_may_be_a_one_element_tensor():
    agent = NeuFastCB(mlp(12, 8), gamma=10.0, lr=0.1)
    contexts, action = _selected(agent)
    agent.update(contexts[action], torch.tensor([1.0]))
    assert agent.t == 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("loss", [-0.1, 1.5, float("nan"), float("inf")])
def test_every_agent_rejects_a_loss_outside_the_unit_interval(name, loss):
    agent = _agents()[name]()
    contexts, action = _selected(agent)
    with pytest.raises(ValueError, match=r"loss must lie in \[0, 1\]"):
        agent.update(contexts[action], loss)


def test_integer_context_in_update_raises():
    agent = NeuSquareCB(mlp(12, 8), gamma=10.0, lr=0.1)
    _selected(agent)
    with pytest.raises(TypeError, match="context must be floating point"):
        agent.update(torch.ones(12, dtype=torch.int64), 0.5)


def test_nonfinite_context_in_update_raises():
    agent = NeuSquareCB(mlp(12, 8), gamma=10.0, lr=0.1)
    _selected(agent)
    with pytest.raises(ValueError, match="context contains NaN or inf"):
        agent.update(torch.full((12,), float("nan")), 0.5)


def test_a_model_with_several_outputs_per_row_raises():
    with pytest.raises(ValueError, match=r"one score per row, \(N,\) or \(N, 1\)"):
        NeuSquareCB(nn.Linear(12, 3), gamma=10.0, lr=0.1).select(torch.randn(3, 12))


@pytest.mark.parametrize("lr", [float("inf"), float("nan")])
def test_nonfinite_lr_raises(lr):
    with pytest.raises(ValueError, match="lr must be finite"):
        NeuFastCB(mlp(12, 8), gamma=10.0, lr=lr)


def test_lr_of_a_non_numeric_type_raises():
    with pytest.raises(TypeError, match="lr: expected a real number"):
        NeuFastCB(mlp(12, 8), gamma=10.0, lr="0.1")


@pytest.mark.parametrize("cls", [NeuSquareCB, LinSquareCB])
def test_negative_gamma_from_a_schedule_raises_instead_of_negative_probabilities(cls):
    first = mlp(12, 8) if cls is NeuSquareCB else 12
    kwargs = {"lr": 0.1} if cls is NeuSquareCB else {}
    agent = cls(first, gamma=10.0, gamma_schedule=lambda t: -50.0, **kwargs)
    with pytest.raises(ValueError, match=r"gamma_schedule\(0\) must be >= 0"):
        agent.select(torch.randn(3, 12))


def _poison(name: str, agent) -> None:
    with torch.no_grad():
        if name == "LinSquareCB":
            agent.b.fill_(float("nan"))
        else:
            agent.model.model[0].weight.fill_(float("nan"))


@pytest.mark.parametrize("name", [*NETWORK_AGENTS, "LinSquareCB"])
def test_nan_predictions_raise_with_the_round_index_for_every_agent(name):
    env = _env(10)
    agent = _agents()[name]()
    run(env, agent, seed=0, n_rounds=4)
    _poison(name, agent)
    with pytest.raises(ValueError, match="NaN or inf at round 4"):
        agent.select(env.round(4)[0])


def test_tune_with_an_empty_value_list_raises():
    with pytest.raises(ValueError, match=r"empty: \['lr'\]"):
        tune(
            lambda seed, lr: NeuSquareCB(mlp(12, 8), gamma=1.0, lr=lr, seed=seed),
            lambda seed: _env(10, seed),
            {"lr": []},
            seeds=[0],
        )


# ------------------------------------------------------------------------------ host reads
_HOST_READS = {"__bool__", "__int__", "__float__", "__index__", "item", "tolist", "numpy"}


class _CountHostReads(TorchFunctionMode):
    """Counts the tensor -> Python conversions (on CUDA each one is a host-device sync)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in _HOST_READS:
            self.reads[name] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_one_host_read_per_select_and_one_check_of_the_callers_context(name, validate):
    # select reads the chosen arm and the finiteness flag together (one read); update with
    # validate checks the caller's context where it lives (the CPU here) and reads nothing else
    env = _env(20)
    agent = _agents(validate)[name]()
    run(env, agent, seed=0, n_rounds=5)
    contexts, losses = env.round(5)
    loss = float(losses[0])
    with _CountHostReads() as select_mode:
        action, _ = agent.select(contexts)
    with _CountHostReads() as update_mode:
        agent.update(contexts[action], loss)
    assert sum(select_mode.reads.values()) == 1, select_mode.reads
    assert sum(update_mode.reads.values()) == (1 if validate else 0), update_mode.reads


@pytest.mark.parametrize("name", NAMES)
def test_the_finiteness_check_does_not_change_the_stream(name):
    env = _env(60)
    outs = []
    for validate in (True, False):
        torch.manual_seed(0)
        outs.append(run(env, _agents(validate)[name](), seed=1))
    assert torch.equal(outs[0]["actions"], outs[1]["actions"])
    torch.testing.assert_close(outs[0]["probs"], outs[1]["probs"], rtol=0, atol=0)


# ------------------------------------------------------------------------------ NeuralUCB / TS
def _loop_scores(net: nn.Module, contexts: torch.Tensor, Z: torch.Tensor, lam: float, m: float):
    """The official code's per-arm loop: one backward per arm, then the diagonal bonus."""
    f, bonus, grads = [], [], []
    for x in contexts:
        net.zero_grad()
        out = net(x[None]).reshape(())
        out.backward()
        g = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
        f.append(out.detach())
        grads.append(g)
        bonus.append(torch.sqrt(lam * (g.square() / Z).sum() / m))
    return torch.stack(f), torch.stack(bonus), torch.stack(grads)


def _record_scores(agent) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    pick = agent._pick

    def recording(contexts, scores, grads):
        seen.append(scores.detach().clone())
        return pick(contexts, scores, grads)

    agent._pick = recording
    return seen


def test_neuralucb_vmap_scores_and_design_update_match_a_per_arm_backward_loop():
    torch.manual_seed(0)
    lam, m, nu = 1e-2, 3.0, 0.7
    net = mlp(12, 16).double()
    agent = NeuralUCB(net, lr=0.1, nu=nu, lam=lam, m=m, replay=1, replay_batch=4)
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):  # move theta and Z away from their initial values
        contexts = torch.randn(4, 12, generator=gen, dtype=torch.float64)
        action, _ = agent.select(contexts)
        agent.update(contexts[action], float(action % 2))
    contexts = torch.randn(4, 12, generator=gen, dtype=torch.float64)
    Z = agent.Z.clone()
    f, bonus, grads = _loop_scores(net, contexts, Z, lam, m)
    seen = _record_scores(agent)
    action, probs = agent.select(contexts)
    torch.testing.assert_close(seen[0], f + nu * bonus, rtol=1e-10, atol=1e-14)
    assert action == int((f + nu * bonus).argmax())
    assert probs[action] == 1.0
    agent.update(contexts[action], 0.0)
    torch.testing.assert_close(agent.Z, Z + grads[action].square() / m, rtol=1e-12, atol=0)


def test_neuralts_samples_with_the_loop_standard_deviation():
    torch.manual_seed(0)
    lam, nu = 1e-2, 0.5
    net = mlp(12, 16).double()
    agent = NeuralTS(net, lr=0.1, nu=nu, lam=lam, seed=4)
    contexts = torch.randn(5, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    f, bonus, _ = _loop_scores(net, contexts, agent.Z, lam, 1.0)
    noise = torch.randn(
        5, generator=torch.Generator().manual_seed(4), dtype=torch.float64
    )  # the agent's stream, seeded alike, draws the noise first
    seen = _record_scores(agent)
    action, _ = agent.select(contexts)
    torch.testing.assert_close(seen[0], f + nu * bonus * noise, rtol=1e-10, atol=1e-14)
    assert action == int(seen[0].argmax())


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: NeuFastCB(mlp(12, 8), gamma=10.0, lr=0.1, perturb_scale=float("inf")), "perturb"),
        (lambda: NeuralUCB(mlp(12, 8), nu=float("inf")), "nu must be finite"),
        (lambda: NeuralTS(mlp(12, 8), lam=float("inf")), "lam must be finite"),
        (lambda: NeuralUCB(mlp(12, 8), m=float("nan")), "m must be finite"),
        (lambda: LinSquareCB(12, lam=float("inf")), "lam must be finite"),
    ],
)
def test_infinite_hyperparameters_raise_at_construction_not_as_nan_predictions(make, match):
    # an infinite perturbation or bonus would otherwise surface rounds later as "the network's
    # predictions are NaN or inf", blaming the network
    with pytest.raises(ValueError, match=match):
        make()


def test_the_draw_is_torch_multinomials_draw_and_never_a_zero_probability_arm():
    # the reproduction's streams were recorded with torch.multinomial(p, 1): the exponential
    # race must give the same arm from the same generator state
    agent = Uniform(seed=0, validate=False)
    reference = torch.Generator().manual_seed(0)
    source = torch.Generator().manual_seed(1)
    contexts = torch.zeros(6, 3)
    for trial in range(2000):
        probs = torch.rand(6, generator=source) ** 3
        probs[trial % 6] = 0.0
        probs = probs / probs.sum()
        want = int(torch.multinomial(probs, 1, generator=reference))
        got = agent._sample(probs, contexts, probs)
        assert got == want and probs[got] > 0


@pytest.mark.parametrize(("depth", "activation"), [(1, "relu"), (2, "softplus"), (0, "relu")])
def test_neuralucb_per_layer_bonus_equals_the_vmapped_per_arm_gradients(depth, activation):
    # The default path for a Linear chain keeps the gradients factored (activations times
    # output gradients); it must give the vmapped path's scores, bonus and chosen gradient.
    torch.manual_seed(3)
    net = mlp(10, 8, depth=depth, activation=activation).double()
    agent = NeuralUCB(net, lr=0.1, nu=0.5, lam=1e-2, m=2.0)
    assert agent._chain is not None
    gen = torch.Generator().manual_seed(5)
    for _ in range(4):  # move theta and Z away from their initial values
        contexts = torch.randn(6, 10, generator=gen, dtype=torch.float64)
        action, _ = agent.select(contexts)
        agent.update(contexts[action], float(action % 2))
    contexts = torch.randn(6, 10, generator=gen, dtype=torch.float64)
    f_layers, g_layers = agent._per_arm_layers(contexts)
    f_vmap, g_vmap = agent._per_arm_vmap(contexts)
    torch.testing.assert_close(f_layers, f_vmap, rtol=1e-12, atol=1e-14)
    var_layers, var_vmap = agent._variance(g_layers), agent._variance(g_vmap)
    assert var_vmap.min() > 0 and (var_vmap.max() - var_vmap.min()) > 0
    torch.testing.assert_close(var_layers, var_vmap, rtol=1e-10, atol=1e-15)
    for arm in (0, 5):
        torch.testing.assert_close(
            agent._arm_grad(g_layers, arm), agent._arm_grad(g_vmap, arm), rtol=1e-12, atol=1e-15
        )


def test_neuralucb_keeps_the_vmapped_path_for_other_networks():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(6, 1)
            self.scale = nn.Parameter(torch.tensor(2.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.scale * self.lin(x)

    agent = NeuralUCB(Scaled(), lr=0.1)
    assert agent._chain is None
    frozen = mlp(6, 4)
    frozen[0].bias.requires_grad_(False)
    assert NeuralUCB(frozen, lr=0.1)._chain is not None  # a frozen bias is just not a parameter
    with_norm = nn.Sequential(nn.Linear(6, 4), nn.LayerNorm(4), nn.Linear(4, 1))
    assert NeuralUCB(with_norm, lr=0.1)._chain is None
    contexts = torch.randn(3, 6)
    action, _ = agent.select(contexts)
    agent.update(contexts[action], 0.5)
    assert agent.Z.shape == (8,)
