"""Benchmark (spec section 7): scoring and statistics time, the compensation solve, and the pruned
model's real CPU inference speedup, against torch-pruning's L2 (magnitude) pruning as the peer.

Cases (each timed in this process and run; ``ratio`` = that impl's median over ours, > 1: ours
is faster):

- scoring conv2-conv4 of a BN CNN (32-64-64-128 on 3x32x32, 64 calibration inputs): our
  saliency (one forward + one ``conv2d_weight`` per layer), our full statistics with ``Q``, and
  torch-pruning's ``MagnitudeImportance`` (weights only, no data: expected faster);
- ``Q`` of one layer: the batched grouped convolution against a per-output-channel loop;
- compensation for ``c_out = n = 64``: one batched Cholesky against a per-channel ``solve`` loop;
- inference at batch 64 (the paper's CPU protocol, shorter): the dense model, ours after
  ``materialize()`` at 50% channel removal, and torch-pruning's L2-pruned model of the same shape.

torch-pruning is the ``bench`` dependency group; without it the peer rows are left out.
"""

from __future__ import annotations

import copy
import importlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.modhifi.experiment import bn_cnn
from paperzoo.modhifi.fidelity import compensation
from paperzoo.modhifi.pruning import ModHiFiPruner
from paperzoo.modhifi.stats import LayerStats

__all__ = ["BENCHMARK", "loop_q", "loop_solve", "run_bench"]

LAYERS = ("conv2", "conv3", "conv4")
WIDTHS = (32, 64, 64, 128)


def loop_q(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``Q`` ``(c_out, n, n)`` by one convolution per output channel (the obvious reference)."""
    w = conv.weight.detach()
    out = []
    for c in range(w.shape[0]):
        a = F.conv2d(x, w[c].unsqueeze(1), None, conv.stride, conv.padding, groups=w.shape[1])
        a = a.flatten(2)
        out.append(torch.einsum("sip,sjp->ij", a, a).double() / x.shape[0])
    return torch.stack(out)


def loop_solve(q: Tensor, keep: Tensor, ridge: float = 1e-4) -> Tensor:
    """Prop. 3.8's ``delta`` ``(c_out, n)`` by one dense solve per output channel."""
    delta = torch.zeros(q.shape[:2], dtype=q.dtype)
    idx = keep.nonzero().flatten()
    drop = (~keep).nonzero().flatten()
    for c in range(q.shape[0]):
        qcc = q[c][idx][:, idx] + ridge * torch.eye(len(idx), dtype=q.dtype)
        rhs = q[c][idx][:, drop].sum(1)
        delta[c, idx] = 1.0 + torch.linalg.solve(qcc, rhs)
    return delta


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    net = bn_cnn(3, WIDTHS, 10)
    net.train()
    with torch.no_grad():
        net(torch.rand(128, 3, 32, 32))
    return net.eval()


def _peer(model: nn.Module, x: Tensor) -> tuple[Any, Any] | None:
    try:
        tp: Any = importlib.import_module("torch_pruning")
    except ImportError:
        return None
    ignored = [model.get_submodule("conv4"), model.get_submodule("fc")]
    imp = tp.importance.MagnitudeImportance(p=2)
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=x[:1])
    groups = list(dg.get_all_groups(ignored_layers=ignored, root_module_types=[nn.Conv2d]))

    def score() -> object:
        return [imp(g) for g in groups]

    small = copy.deepcopy(model)
    pruner = tp.pruner.MetaPruner(
        small,
        x[:1],
        importance=imp,
        pruning_ratio=0.5,
        ignored_layers=[small.get_submodule("conv4"), small.get_submodule("fc")],
    )
    pruner.step()
    return score, small.eval()


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """All cases on ``ctx.device`` (one torch thread); see the module docstring."""
    dev = ctx.device
    rt = 1.0 if ctx.quick else 3.0
    model = _model().to(dev)
    g = torch.Generator().manual_seed(1)
    calib = torch.rand(64, 3, 32, 32, generator=g).to(dev)
    rows: list[BenchRow] = []
    peer = _peer(model, calib)

    def ours_scores() -> object:
        return [LayerStats.collect(model, nm, calib, need_q=False) for nm in LAYERS]

    def ours_full() -> object:
        return [LayerStats.collect(model, nm, calib, need_q=True) for nm in LAYERS]

    impls: dict[str, Any] = {"ours saliency": ours_scores, "ours saliency + Q": ours_full}
    if peer is not None:
        impls["torch-pruning L2 importance"] = peer[0]
    rows += compare(
        "score conv2-conv4 of a 32-64-64-128 BN CNN, 64 calib inputs 3x32x32",
        impls,
        ours="ours saliency",
        device=dev,
        min_run_time=rt,
        memory=True,
    )

    conv = model.get_submodule("conv3")
    assert isinstance(conv, nn.Conv2d)
    feats = model[:8](calib[:16]).detach()  # conv3's input: (16, 64, 16, 16)

    def batched_q() -> object:
        return LayerStats.collect(conv, conv, feats, center="none")

    rows += compare(
        "Q of conv3 (64 -> 64, 3x3, 16x16 maps), 16 inputs",
        {"ours batched grouped conv": batched_q, "per-channel loop": lambda: loop_q(conv, feats)},
        ours="ours batched grouped conv",
        device=dev,
        min_run_time=rt,
        memory=False,
    )

    q = LayerStats.collect(conv, conv, feats, center="none").q
    assert q is not None
    q = q.cpu()
    keep = torch.arange(64) % 2 == 0
    rows += compare(
        "compensation solve, c_out=64, |C|=32 of 64",
        {
            "ours batched Cholesky": lambda: compensation(q, keep),
            "per-channel solve": lambda: loop_solve(q, keep),
        },
        ours="ours batched Cholesky",
        device=dev,
        min_run_time=rt,
        memory=False,
    )

    pruned = copy.deepcopy(model)
    p = ModHiFiPruner(pruned, list(LAYERS), budget=[w // 2 for w in WIDTHS[:3]])
    p.fit(calib)
    p.apply()
    small = p.materialize()
    x = torch.rand(64, 3, 32, 32, generator=g).to(dev)
    infer: dict[str, Any] = {
        "ours (ModHiFi, materialized)": lambda: small(x),
        "dense model": lambda: model(x),
    }
    if peer is not None:
        infer["torch-pruning L2 (same shapes)"] = lambda: peer[1](x)
    with torch.no_grad():
        rows += compare(
            "inference batch 64, 3x32x32, 50% channels of conv1-conv3 removed",
            infer,
            ours="ours (ModHiFi, materialized)",
            device=dev,
            min_run_time=rt,
            memory=False,
        )
    return rows


def _bench(ctx: BenchContext) -> list[BenchRow]:
    with torch_threads(1):  # timings on one thread; the previous count comes back after
        return run_bench(ctx)


BENCHMARK = Benchmark(
    name="modhifi",
    description="ModHiFi scoring, Q, compensation and pruned-model speedup vs torch-pruning L2",
    run=_bench,
)
