"""neucb with the core: a network warm-started by core.training.fit, and agent checkpoints."""

from __future__ import annotations

import torch

from paperzoo.core import devices, training
from paperzoo.core.data import make_loader
from paperzoo.neucb import ClassificationBandit, KLLoss, NeuFastCB, Uniform, mlp, run


def _bandit(n_rounds: int, seed: int) -> ClassificationBandit:
    gen = torch.Generator().manual_seed(123)
    centers = torch.randn(4, 6, generator=gen) * 2
    y = torch.arange(400) % 4
    X = centers[y] + 0.5 * torch.randn(400, 6, generator=gen)
    return ClassificationBandit(X, y, n_rounds, seed=seed)


def test_network_warm_started_by_core_fit_on_logged_data_beats_a_cold_start():
    # log 600 rounds of a uniform policy, fit the loss network offline with the core's fit loop
    # (KL loss on the logged losses), then hand it to NeuFastCB for the online stream
    devices.seed_everything(0)
    logged = run(_bandit(600, seed=1), Uniform(seed=1))
    env_log = _bandit(600, seed=1)
    xs = torch.stack([env_log.round(t)[0][a] for t, a in enumerate(logged["actions"].tolist())])
    ys = logged["losses"].float()
    loader = make_loader(xs, ys, batch_size=32, shuffle=True, seed=0)
    kl = KLLoss()

    def step(model, batch, device):
        x, y = (t.to(device) for t in batch)
        return kl(model(x).reshape(-1), y)

    devices.seed_everything(0)
    warm = mlp(env_log.dim, 32)
    optimizer = torch.optim.Adam(warm.parameters(), lr=1e-2)
    result = training.fit(warm, loader, optimizer, step_fn=step, epochs=15, device="cpu")
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]

    devices.seed_everything(0)
    cold = mlp(env_log.dim, 32)
    env = _bandit(300, seed=2)
    warm_regret = run(env, NeuFastCB(warm, gamma=100.0, lr=0.1, seed=0))["cum_regret"][-1]
    cold_regret = run(env, NeuFastCB(cold, gamma=100.0, lr=0.1, seed=0))["cum_regret"][-1]
    assert warm_regret < 0.5 * cold_regret


def test_agent_state_saved_with_core_checkpoint_resumes_exactly(tmp_path):
    env = _bandit(200, seed=0)
    devices.seed_everything(0)
    agent = NeuFastCB(mlp(env.dim, 16), gamma=50.0, lr=0.1, replay=1, replay_batch=8, seed=0)
    run(env, agent, n_rounds=100)
    path = tmp_path / "agent.ckpt"
    training.save_checkpoint(path, {"agent": agent.state_dict(), "round": 100})
    tail = run(env, agent, start=100)

    devices.seed_everything(7)
    fresh = NeuFastCB(mlp(env.dim, 16), gamma=50.0, lr=0.1, replay=1, replay_batch=8, seed=5)
    payload = training.load_checkpoint(path)
    fresh.load_state_dict(payload["agent"])
    tail_again = run(env, fresh, start=int(payload["round"]))
    assert torch.equal(tail["actions"], tail_again["actions"])
    torch.testing.assert_close(tail["cum_regret"], tail_again["cum_regret"], rtol=0, atol=0)
