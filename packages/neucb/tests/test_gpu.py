"""CUDA: the same numbers as on the CPU, and finite under bf16/fp16 autocast."""

from __future__ import annotations

import pytest
import torch

from paperzoo.neucb import NeuFastCB, NeuralUCB, PerturbedModel, fastcb_probs, igw_probs, mlp


@pytest.mark.gpu
def test_selection_rules_on_cuda_match_cpu():
    preds = torch.rand(64, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for fn in (igw_probs, fastcb_probs):
        torch.testing.assert_close(fn(preds.cuda(), 50.0).cpu(), fn(preds, 50.0))


@pytest.mark.gpu
def test_agent_update_on_cuda_matches_cpu():
    # one select + update with the same perturbation on both devices -> the same parameters
    torch.manual_seed(0)
    net = mlp(40, 16)
    agents = {}
    for device in ("cpu", "cuda"):
        copy = mlp(40, 16)
        copy.load_state_dict(net.state_dict())
        agents[device] = NeuFastCB(copy.to(device), gamma=30.0, lr=0.1, replay=0, seed=0)
    contexts = torch.randn(4, 40)
    eps = None
    for device, agent in agents.items():
        agent.select(contexts.to(device))
        if eps is None:
            eps = [e.cpu() for e in agent.model.eps]
        with torch.no_grad():
            for mine, ref in zip(agent.model.eps, eps, strict=True):
                mine.copy_(ref.to(device))
        agent.update(contexts[1].to(device), 0.0)
    for p_cpu, p_cuda in zip(agents["cpu"].params, agents["cuda"].params, strict=True):
        torch.testing.assert_close(p_cuda.cpu(), p_cpu, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_neuralucb_vmap_gradients_on_cuda_match_cpu():
    torch.manual_seed(0)
    net = mlp(40, 16)
    contexts = torch.randn(4, 40)
    out = {}
    for device in ("cpu", "cuda"):
        copy = mlp(40, 16)
        copy.load_state_dict(net.state_dict())
        agent = NeuralUCB(copy.to(device), lr=0.1, nu=0.1)
        f, grads = agent._per_arm(contexts.to(device))
        out[device] = (f.cpu(), agent._variance(grads).cpu())
    torch.testing.assert_close(out["cuda"][0], out["cpu"][0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["cuda"][1], out["cpu"][1], rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_perturbed_forward_and_agent_finite_under_autocast(dtype):
    torch.manual_seed(0)
    model = PerturbedModel(mlp(40, 16).cuda(), 1e-2, torch.Generator(device="cuda").manual_seed(0))
    model.resample()
    x = torch.randn(8, 40, device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        y = model(x)
    y.float().square().mean().backward()
    assert bool(torch.isfinite(y).all())
    agent = NeuFastCB(mlp(40, 16).cuda(), gamma=30.0, lr=0.1)
    with torch.autocast("cuda", dtype=dtype):
        action, probs = agent.select(torch.randn(5, 40, device="cuda"))
        agent.update(torch.randn(40, device="cuda"), 1.0)
    assert bool(torch.isfinite(probs).all()) and 0 <= action < 5


@pytest.mark.gpu
@pytest.mark.parametrize("validate", [False, True])
@pytest.mark.parametrize(
    "cls", ["NeuFastCB", "NeuSquareCB", "NeuralUCB", "NeuralTS", "NeuralEpsGreedy"]
)
def test_one_synchronising_cuda_call_per_round_on_device_contexts(cls, validate):
    # contexts already on the GPU: the round reads the chosen arm (one sync); with validate the
    # update also checks the finiteness of the caller's (GPU) context (a second one)
    import warnings

    import paperzoo.neucb as neucb

    torch.manual_seed(0)
    kwargs = {"lr": 0.1, "replay": 1, "replay_batch": 4, "validate": validate}
    if cls in ("NeuFastCB", "NeuSquareCB"):
        kwargs["gamma"] = 30.0
    agent = getattr(neucb, cls)(mlp(40, 16).cuda(), **kwargs)
    contexts = torch.randn(5, 40, device="cuda")
    for _ in range(3):  # warm up (lazy initialisation, the history buffer)
        action, _ = agent.select(contexts)
        agent.update(contexts[action], 0.5)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            action, _ = agent.select(contexts)
            agent.update(contexts[action], 0.5)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchronizing" in str(w.message)]
    assert len(syncs) == (2 if validate else 1), [str(w.message) for w in syncs]
