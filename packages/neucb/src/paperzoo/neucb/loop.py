"""The online loop with regret tracking, and a small grid search over agent settings."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from paperzoo.neucb.agents import BanditAgent

__all__ = ["BanditEnv", "TuneResult", "run", "tune"]

log = logging.getLogger(__name__)


class BanditEnv(Protocol):
    """What :func:`run` needs from an environment (e.g. :class:`ClassificationBandit`)."""

    n_rounds: int
    n_arms: int

    def round(self, t: int) -> tuple[Tensor, Tensor]:
        """``(contexts (K, D), losses (K,))`` of round ``t``."""
        ...


def run(
    env: BanditEnv,
    agent: BanditAgent,
    seed: int | None = None,
    *,
    n_rounds: int | None = None,
    start: int = 0,
) -> dict[str, Any]:
    """Play ``agent`` on ``env`` and track the regret.

    Args:
        env: the bandit (``env.round(t) -> (contexts (K, D), losses (K,))``).
        agent: any agent of this package (``select`` / ``update``).
        seed: reseeds the agent's random stream first when given (``None``: keep its state).
        n_rounds: rounds to play (default: ``env.n_rounds - start``).
        start: the first round (continue a stream after restoring an agent's state).

    Returns:
        ``dict(cum_regret (T,), actions (T,) int64, probs (T, K), losses (T,), seconds)`` where the
        per-round regret is ``losses[a_t] - min_a losses[a]`` (for a classification bandit, 1 per
        mistake), ``cum_regret`` its running sum (average regret per round is
        ``cum_regret[-1] / T``) and ``seconds`` the wall time.
    """
    if seed is not None:
        agent.manual_seed(seed)
    if n_rounds is not None and (isinstance(n_rounds, bool) or int(n_rounds) != n_rounds):
        raise ValueError(f"n_rounds (T) must be an integer, got {n_rounds}")
    if int(start) != start:
        raise ValueError(f"start must be an integer, got {start}")
    total = env.n_rounds - start if n_rounds is None else int(n_rounds)
    if total <= 0:
        raise ValueError(f"n_rounds (T) must be > 0, got {total}")
    if start < 0 or start + total > env.n_rounds:
        raise ValueError(
            f"rounds [{start}, {start + total}) exceed the environment's {env.n_rounds} rounds"
        )
    # Per round only the agent's own work and the loss read: the rounds' actions, probabilities
    # and loss vectors are kept as they come and stacked once, at the end (the probabilities
    # stay where the agent made them and move to the CPU then).
    actions: list[int] = []
    probs_rows: list[Tensor] = []
    loss_rows: list[Tensor] = []
    began = time.perf_counter()
    for i in range(total):
        contexts, losses = env.round(start + i)
        action, probs = agent.select(contexts)
        agent.update(contexts[action], float(losses[action]))
        actions.append(action)
        probs_rows.append(probs.detach())
        loss_rows.append(losses)
    probs_cpu = torch.stack(probs_rows).to("cpu", torch.float64)
    table = torch.stack([row.to("cpu") for row in loss_rows])
    chosen = torch.tensor(actions, dtype=torch.int64)
    picked = table.gather(1, chosen[:, None])[:, 0]
    # in the losses' dtype, then float64: the per-round values of the 0.1.0 loop exactly
    regret = (picked - table.min(1).values).to(torch.float64)
    observed = picked.to(torch.float64)
    seconds = time.perf_counter() - began
    cum = regret.cumsum(0)
    log.debug("%s: %d rounds, regret %.1f, %.2fs", type(agent).__name__, total, cum[-1], seconds)
    return {
        "cum_regret": cum,
        "actions": chosen,
        "probs": probs_cpu,
        "losses": observed,
        "seconds": seconds,
    }


@dataclass
class TuneResult:
    """Outcome of :func:`tune`: the best setting and the mean final regret of every setting."""

    best: dict[str, Any]
    best_regret: float
    scores: list[tuple[dict[str, Any], float]] = field(default_factory=list)


def tune(
    make_agent: Callable[..., BanditAgent],
    make_env: Callable[[int], BanditEnv],
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
) -> TuneResult:
    """Grid search by mean final cumulative regret over ``seeds`` (lowest wins, first on ties).

    Args:
        make_agent: ``make_agent(seed=s, **setting) -> agent`` (builds a fresh network too).
        make_env: ``make_env(s) -> env`` for seed ``s`` (use seeds disjoint from the evaluation).
        grid: ``{"gamma": [10, 100], "lr": [0.01, 0.1]}``: every combination is tried.
        seeds: the tuning seeds (at least one).

    Deviation: the spec sketches ``tune(grid, seeds)``; the agent and environment factories are
    explicit arguments here so that any agent and any environment can be tuned.
    """
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    if not grid:
        raise ValueError("grid must name at least one setting")
    empty = [k for k, values in grid.items() if len(values) == 0]
    if empty:
        raise ValueError(f"grid must give at least one value per setting; empty: {empty}")
    keys = list(grid)
    scores: list[tuple[dict[str, Any], float]] = []
    for values in itertools.product(*(grid[k] for k in keys)):
        setting = dict(zip(keys, values, strict=True))
        finals = [
            float(run(make_env(s), make_agent(seed=s, **setting), seed=s)["cum_regret"][-1])
            for s in seeds
        ]
        scores.append((setting, sum(finals) / len(finals)))
        log.info("tune %s: mean regret %.1f", setting, scores[-1][1])
    best, best_regret = min(scores, key=lambda item: item[1])
    return TuneResult(best=best, best_regret=best_regret, scores=scores)
