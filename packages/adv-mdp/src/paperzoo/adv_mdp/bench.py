"""Benchmarks: the batched log-barrier solver against per-state scipy, MGR against the regularised
inverse, and whole episodes in exact mode as the state space grows.

Cases (every ratio is the other implementation's median time over ours, measured in this run):

* ``log-barrier``: one FTRL step at every state (``n`` states x ``A`` actions, random ``G`` with a
  spread of scales): our batched Newton from the left end (tol ``|sum p - 1| < 1e-12``) against a
  per-state ``scipy.optimize.brentq`` on the same root condition (``xtol = 1e-13``, the same
  accuracy; the results are compared before timing) and against Hedge's softmax (the cost floor of
  an FTRL step). Needs the ``bench`` dependency group for scipy (skipped without it).
* ``inverse``: MGR (``M`` sequential rank-one updates, a fresh estimate per call) against the
  regularised inverse (one ``M x A`` weighted outer-product sum and a ``d x d`` inverse).
* ``episode``: one LogBarrierPO episode (rollout + update, exact simulator) against one
  DilatedBonusPO (Hedge) episode as ``N`` grows; the G table is ``H N A`` floats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from paperzoo.adv_mdp.covariance import mgr_inverse, regularized_inverse
from paperzoo.adv_mdp.envs import LinearMDP, make_adversary
from paperzoo.adv_mdp.ftrl import hedge, log_barrier
from paperzoo.adv_mdp.learners import DilatedBonusPO, Learner, LogBarrierPO
from paperzoo.adv_mdp.simulator import Simulator
from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads

__all__ = ["BENCHMARK", "run_bench"]

log = logging.getLogger(__name__)


def _random_g(n: int, A: int) -> Tensor:
    gen = torch.Generator().manual_seed(0)
    scale = 10.0 ** torch.randint(-2, 3, (n, 1), generator=gen)
    return torch.randn(n, A, generator=gen, dtype=torch.float64) * scale


def _brentq_solver(G: Tensor, eta: float) -> Callable[[], Tensor]:
    import numpy as np
    from scipy.optimize import brentq

    rows = G.numpy()

    def solve() -> Tensor:
        out = np.empty_like(rows)
        for i, g in enumerate(rows):
            shift = eta * (g - g.min())
            x = brentq(
                lambda x, s=shift: float((1.0 / (s + x)).sum() - 1.0),
                1.0,
                float(len(g)),
                xtol=1e-13,
            )
            p = 1.0 / (shift + x)
            out[i] = p / p.sum()
        return torch.from_numpy(out)

    return solve


def _solver_cases(ctx: BenchContext) -> list[BenchRow]:
    try:
        import scipy  # noqa: F401

        have_scipy = True
    except ImportError:
        log.warning("scipy is not installed (uv sync --group bench): racing Hedge only")
        have_scipy = False
    rows: list[BenchRow] = []
    shapes = (
        [(1000, 4), (10000, 4)] if ctx.quick else [(1000, 4), (10000, 4), (10000, 32), (1000, 1000)]
    )
    for n, A in shapes:
        G, eta = _random_g(n, A), 0.5
        impls: dict[str, Callable[[], object]] = {
            "batched Newton (ours)": partial(log_barrier, G, eta, validate=False),
            "hedge softmax (cost floor)": partial(hedge, G, eta, validate=False),
        }
        if have_scipy and n * A <= 1e5:
            solve = _brentq_solver(G, eta)
            diff = float((solve() - log_barrier(G, eta)).abs().max())
            log.info("log-barrier n=%d A=%d: max |ours - brentq| = %.2e", n, A, diff)
            if diff > 1e-9:
                raise RuntimeError(f"ours and brentq disagree by {diff:.2e}")
            impls["scipy brentq per state"] = solve
        rows += compare(
            f"log-barrier: n={n} states, A={A}",
            impls,
            ours="batched Newton (ours)",
            device=ctx.device,
            min_run_time=0.5 if ctx.quick else 1.0,
            rounds=3,
        )
    return rows


def _inverse_cases(ctx: BenchContext) -> list[BenchRow]:
    rows: list[BenchRow] = []
    for M, d in [(100, 8), (1000, 32)] if not ctx.quick else [(100, 8)]:
        A = 4
        gen = torch.Generator().manual_seed(1)
        feats = torch.rand(M, A, d, generator=gen, dtype=torch.float64)
        feats = feats / feats.sum(-1, keepdim=True)
        probs = torch.full((M, A), 1.0 / A, dtype=torch.float64)
        single = feats[:, 0]
        rows += compare(
            f"inverse: M={M}, d={d}, A={A}",
            {
                "regularized inverse": partial(regularized_inverse, feats, probs, 0.1),
                "MGR": partial(mgr_inverse, single, 0.1),
            },
            ours="regularized inverse",
            device=ctx.device,
            min_run_time=0.5,
            rounds=3,
        )
    return rows


def _episode(env: LinearMDP, learner: Learner, K: int) -> Callable[[], None]:
    theta = make_adversary("switching", env, K, seed=0)
    losses = env.losses(theta)
    sim = Simulator(env, "exact", seed=0)
    gen = torch.Generator().manual_seed(0)
    state = {"k": 0}

    def one() -> None:
        k = state["k"] % K
        state["k"] += 1
        pi = learner.policy()
        learner.update(env.rollout(pi, losses[k], gen), sim, loss=losses[k])

    return one


def _episode_cases(ctx: BenchContext) -> list[BenchRow]:
    rows: list[BenchRow] = []
    sizes = (
        [(8, 4, 6), (64, 4, 6)]
        if ctx.quick
        else [(8, 4, 6), (64, 4, 6), (512, 4, 6), (64, 32, 6), (64, 4, 64)]
    )
    K = 4000
    for N, A, d in sizes:
        env = LinearMDP(H=3, n_states=N, n_actions=A, dim=d, seed=0)
        case = f"episode: H=3, N={N}, A={A}, d={d} (G table {3 * N * A} floats)"
        out = compare(
            case,
            {
                "LogBarrierPO (ours)": _episode(env, LogBarrierPO(env, K, c_e=30, c_b=0.01), K),
                "DilatedBonusPO (Hedge)": _episode(env, DilatedBonusPO(env, K), K),
            },
            ours="LogBarrierPO (ours)",
            device=ctx.device,
            min_run_time=0.5 if ctx.quick else 1.0,
            memory=False,
            rounds=3,
        )
        for row in out:
            log.info("%s %s: %.0f episodes/s", case, row.impl, 1.0 / row.median_s)
        rows += out
    return rows


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """All cases, single-threaded; ``ctx.quick`` keeps the smallest shapes."""
    with torch_threads(1):
        rows = _solver_cases(ctx)
        rows += _inverse_cases(ctx)
        rows += _episode_cases(ctx)
    return rows


BENCHMARK = Benchmark(
    name="adv-mdp",
    description="log-barrier solver vs scipy brentq per state; MGR vs regularised inverse; episodes/s",
    run=run_bench,
)
