"""Benchmark (``paperzoo bench metrix``): generic losses vs PML, pair construction, Metrix overhead.

Races, in the same process and run, on float32 embeddings with labels of B/8 classes:

* ``generic fwd+bwd``: our generic contrastive / MS / Proxy-Anchor (``ours``) against
  pytorch-metric-learning's ``ContrastiveLoss(0, 0.5)``, ``MultiSimilarityLoss()`` (no miner) and
  ``ProxyAnchorLoss`` (``pml``, the peer; skipped when not installed: ``bench`` dependency group);
* ``pair construction``: :func:`mix_pairs` (vectorised) against a port of the official
  per-anchor Python loop with ``.cpu().numpy()`` round trips (``official-loop``, the baseline);
* ``metrix step``: clean MS step (``clean``) vs MS + embedding-level Metrix (``ours``), fwd+bwd.

``ratio`` = that implementation's median time over ours (above 1: we are faster). One intra-op
thread by default (``PAPERZOO_BENCH_THREADS`` to change it).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch import Tensor

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads

from .generic import contrastive_generic, multi_similarity_generic
from .metrix import MetrixLoss
from .mixing import MixPlan, mix_pairs
from .proxy_anchor import ProxyAnchorGeneric

__all__ = ["BENCHMARK", "official_pairs_loop", "run_bench"]

log = logging.getLogger(__name__)


def official_pairs_loop(labels: Tensor) -> MixPlan:
    """Pos-neg triples (every positive) built like the official ``mixup/utils.py``: a Python loop
    over anchors on NumPy copies of the labels, then back to tensors (the baseline)."""
    lab = labels.cpu().numpy()
    a_l: list[int] = []
    i_l: list[int] = []
    j_l: list[int] = []
    for a in range(len(lab)):
        pos = np.where((lab == lab[a]) & (np.arange(len(lab)) != a))[0]
        neg = np.where(lab != lab[a])[0]
        for p in pos:
            for n in neg:
                a_l.append(a)
                i_l.append(int(p))
                j_l.append(int(n))
    t = partial(torch.tensor, dtype=torch.long, device=labels.device)
    return MixPlan(t(a_l), t(i_l), t(j_l), "pos_neg")


def _backward(fn: Callable[[], Tensor], e: Tensor) -> None:
    fn().backward()
    e.grad = None


def _metrix_loss(mx: MetrixLoss, e: Tensor, y: Tensor) -> Tensor:
    out: Tensor = mx(e, y, lam=0.5)["loss"]
    return out


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """All races for each case size."""
    threads = int(os.environ.get("PAPERZOO_BENCH_THREADS", "1"))
    with torch_threads(threads):
        return _race(ctx, threads)


def _race(ctx: BenchContext, threads: int) -> list[BenchRow]:
    have_pml = importlib.util.find_spec("pytorch_metric_learning") is not None
    if not have_pml:
        log.warning("pytorch-metric-learning is not installed: the peer is not raced")
    dev = ctx.device
    min_run = 0.2 if ctx.quick else 0.5
    rows: list[BenchRow] = []
    tag = f"{dev.type} fp32 threads={threads}"
    for b, d in [(128, 128)] if ctx.quick else [(128, 128), (512, 128), (512, 512)]:
        g = torch.Generator().manual_seed(b + d)
        e = torch.randn(b, d, generator=g).to(dev).requires_grad_(True)
        y = torch.randint(0, max(2, b // 8), (b,), generator=g).to(dev)
        con, ms = contrastive_generic(validate=False), multi_similarity_generic(validate=False)
        torch.manual_seed(0)
        pa = ProxyAnchorGeneric(int(y.max()) + 1, d, validate=False).to(dev)
        ours: dict[str, Callable[[], Tensor]] = {
            "contrastive": partial(con.batch_loss, e, y),
            "multi-similarity": partial(ms.batch_loss, e, y),
            "proxy-anchor": partial(pa, e, y),
        }
        peers: dict[str, Callable[[], Tensor]] = {}
        if have_pml:
            from pytorch_metric_learning import losses

            ppa = losses.ProxyAnchorLoss(pa.num_classes, d, margin=0.1, alpha=32).to(dev)
            with torch.no_grad():
                ppa.proxies.copy_(pa.proxies)
            peers = {
                "contrastive": partial(losses.ContrastiveLoss(0.0, 0.5), e, y),
                "multi-similarity": partial(losses.MultiSimilarityLoss(), e, y),
                "proxy-anchor": partial(ppa, e, y),
            }
        for name, fn in ours.items():
            impls: dict[str, Callable[[], object]] = {"ours": partial(_backward, fn, e)}
            if name in peers:
                impls["pml"] = partial(_backward, peers[name], e)
            case = f"generic {name} fwd+bwd B={b} D={d} {tag}"
            rows += compare(case, impls, ours="ours", device=dev, min_run_time=min_run)
    for b in [40, 128] if not ctx.quick else [40]:
        y = torch.arange(b, device=dev) % 5
        impls = {
            "ours": partial(mix_pairs, y, kind="pos_neg"),
            "official-loop": partial(official_pairs_loop, y),
        }
        case = f"pair construction pos-neg B={b} (5 classes) {tag}"
        rows += compare(case, impls, ours="ours", device=dev, min_run_time=min_run, memory=False)
    for b, d in [(40, 64)] if ctx.quick else [(40, 64), (128, 512)]:
        g = torch.Generator().manual_seed(b)
        e = torch.randn(b, d, generator=g).to(dev).requires_grad_(True)
        y = torch.arange(b, device=dev) % 5
        ms = multi_similarity_generic(validate=False)
        mx = MetrixLoss(ms, kind="pos_neg", validate=False)
        impls = {
            "ours": partial(_backward, partial(_metrix_loss, mx, e, y), e),
            "clean": partial(_backward, partial(ms.batch_loss, e, y), e),
        }
        case = f"metrix step MS + embed pos-neg (vs clean MS) B={b} D={d} {tag}"
        rows += compare(case, impls, ours="ours", device=dev, min_run_time=min_run)
    for r in rows:
        log.info("%s %s: %.3g s, ratio %.2f", r.case, r.impl, r.median_s, r.ratio)
    return rows


BENCHMARK = Benchmark(
    name="metrix",
    description="generic losses vs PML, vectorised vs official pair construction, Metrix step overhead",
    run=run_bench,
)
