"""The reproduction and the benchmark are registered and run end to end at a tiny budget."""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points

import torch
import torch.nn.functional as F

from paperzoo.core.experiments import RunContext
from paperzoo.ldr.experiment import EXPERIMENT, _StackedNet, run


def test_experiment_and_benchmark_are_registered() -> None:
    exps = {ep.name: ep.value for ep in entry_points(group="paperzoo.experiments")}
    benches = {ep.name: ep.value for ep in entry_points(group="paperzoo.benchmarks")}
    assert exps["ldr"] == "paperzoo.ldr.experiment:EXPERIMENT"
    assert benches["ldr"] == "paperzoo.ldr.bench:BENCHMARK"
    assert EXPERIMENT.seeds["quick"] >= 3


def test_stacked_members_train_exactly_as_if_trained_alone() -> None:
    """Two members trained together (one batched matmul) == each trained alone, step by step."""
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    together = _StackedNet([5, 4, 3], "relu", gens, repeat=1)
    alone = [_StackedNet([5, 4, 3], "relu", [torch.Generator().manual_seed(s)], 1) for s in (0, 1)]
    opts = [
        torch.optim.SGD(n.params, lr=0.1, momentum=0.9, weight_decay=5e-3)
        for n in (together, *alone)
    ]
    g = torch.Generator().manual_seed(2)
    for _ in range(5):
        x = torch.randn(2, 8, 5, generator=g)
        y = torch.randint(0, 3, (2, 8), generator=g)
        out = together(x)
        loss = sum(F.cross_entropy(out[m], y[m]) for m in range(2))
        assert isinstance(loss, torch.Tensor)
        opts[0].zero_grad()
        loss.backward()
        opts[0].step()
        for m in range(2):
            lm = F.cross_entropy(alone[m](x[m : m + 1])[0], y[m])
            opts[m + 1].zero_grad()
            lm.backward()
            opts[m + 1].step()
    for m in range(2):
        for p_all, p_one in zip(together.params, alone[m].params, strict=True):
            torch.testing.assert_close(p_all[m : m + 1], p_one)


def test_tiny_run_produces_rows_checks_and_curves() -> None:
    cfg = dataclasses.replace(
        EXPERIMENT.make_config("smoke"),
        epochs=2,
        decay_epochs=(1,),
        settings=("clean", "uniform:0.6"),
    )
    result = run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    metrics = {(r.method, r.metric) for r in result.rows}
    assert ("CE [ffnn]", "test_top1@uniform:0.6") in metrics
    assert any(m == "mean_lambda_noisy@uniform:0.6" for _, m in metrics)
    assert all(0.0 <= r.mean <= 1.0 for r in result.rows if "top1" in r.metric)
    names = [c.name for c in result.checks]
    assert any("5 points above CE" in n for n in names)
    assert "accuracy_vs_noise_ffnn" in result.curves
