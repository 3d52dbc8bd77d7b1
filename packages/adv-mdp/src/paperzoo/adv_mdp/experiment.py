"""The reproduction: regret against K for each learner on a sparse-feature linear MDP (spec 6).

Instance ``LinearMDP(H=3, N=8, A=4, d=6, feature_alpha=0.3)`` (``env_seed`` fixes it), a
``switching`` adversary with 8 blocks, the exact simulator. For every K a separate run per learner
with its theory schedule: LogBarrierPO's constants are pinned (``c_e = 30, c_b = 0.01, c_g = 1``);
the other learners' constants are chosen once on a tuning seed at ``K = tune_episodes`` (lowest final
regret, :func:`paperzoo.core.selection.select_on_validation`) and frozen. The evaluation seeds set the
adversary and the rollouts. Run with ``paperzoo run adv-mdp --quick``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from paperzoo.adv_mdp.envs import LinearMDP, make_adversary
from paperzoo.adv_mdp.learners import (
    DilatedBonusPO,
    FullInfoPO,
    Learner,
    LogBarrierPO,
    MagnitudeReducedPO,
    NaivePO,
    UniformPolicy,
)
from paperzoo.adv_mdp.regret import fit_loglog_slope, run
from paperzoo.core.checks import check_choice, check_positive, check_positive_int
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.selection import grid, select_on_validation

__all__ = ["EXPERIMENT", "AdvMDPConfig", "run_experiment"]

METHODS = (
    "LogBarrierPO",
    "DilatedBonusPO",
    "MagnitudeReducedPO",
    "NaivePO",
    "FullInfoPO",
    "Uniform",
)
SPEC_METHODS = ("LogBarrierPO", "DilatedBonusPO", "MagnitudeReducedPO", "FullInfoPO", "Uniform")
"""The spec's learners (the default run); ``NaivePO`` runs only when ``methods`` names it."""


@dataclass(frozen=True)
class AdvMDPConfig:
    """Config of the ``adv-mdp`` reproduction (defaults: the quick budget, the spec's setting).

    Attributes:
        H, n_states, n_actions, dim, feature_alpha: the instance; env_seed: its seed.
        adversary: ``switching``, ``stochastic`` or ``drift``; n_blocks: switching blocks.
        Ks: the horizons, one separate run each.
        c_e, c_b, c_g: LogBarrierPO's pinned constants (spec 6).
        tune_episodes, tune_seed: the single tuning run's horizon and seed (adversary and rollouts).
        luo_c_g, luo_c_b: DilatedBonusPO's grid; mr_c_e, mr_c_b: MagnitudeReducedPO's grid;
            naive_c_e: NaivePO's grid; full_c_e: FullInfoPO's grid. A first run with 3-value
            grids one step lower selected the top of every ``c_e``/``c_g`` axis (and the bottom of
            Luo's ``c_b``), so each was widened once; whether the final selection is interior is
            a reported check.
        methods: the learners to run (default: the spec's five; the checks need all of them;
            ``NaivePO`` is available but not in the default run).
        threads: torch CPU threads while running (the run scopes them; ``None``: torch's choice).
    """

    H: int = 3
    n_states: int = 8
    n_actions: int = 4
    dim: int = 6
    feature_alpha: float = 0.3
    env_seed: int = 0
    adversary: str = "switching"
    n_blocks: int = 8
    Ks: tuple[int, ...] = (250, 500, 1000, 2000, 4000)
    c_e: float = 30.0
    c_b: float = 0.01
    c_g: float = 1.0
    tune_episodes: int = 500
    tune_seed: int = 1000
    luo_c_g: tuple[float, ...] = (30.0, 100.0, 300.0, 1000.0)
    luo_c_b: tuple[float, ...] = (0.0001, 0.001, 0.01)
    mr_c_e: tuple[float, ...] = (30.0, 100.0, 300.0, 1000.0)
    mr_c_b: tuple[float, ...] = (0.001, 0.01, 0.1)
    naive_c_e: tuple[float, ...] = (10.0, 30.0, 100.0, 300.0)
    full_c_e: tuple[float, ...] = (3.0, 10.0, 30.0, 100.0, 300.0)
    methods: tuple[str, ...] = SPEC_METHODS
    threads: int | None = 1

    def __post_init__(self) -> None:
        """Check every field (a bad ``--set`` value is one ``paperzoo: error:`` line)."""
        for name in ("H", "n_states", "dim", "n_blocks", "tune_episodes"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("n_actions", self.n_actions, minimum=2)
        check_positive_int("env_seed", self.env_seed, minimum=0)
        check_positive_int("tune_seed", self.tune_seed, minimum=0)
        check_positive("feature_alpha", self.feature_alpha)
        check_choice("adversary", self.adversary, ("switching", "stochastic", "drift"))
        if len(self.Ks) < 2 or len(set(self.Ks)) != len(self.Ks):
            raise ValueError(f"Ks: expected two or more distinct horizons, got {list(self.Ks)}")
        for K in self.Ks:
            check_positive_int("Ks", K)
        for name in ("c_e", "c_b", "c_g"):
            check_positive(name, getattr(self, name))
        for name in ("luo_c_g", "luo_c_b", "mr_c_e", "mr_c_b", "naive_c_e", "full_c_e"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name}: expected at least one value, got none")
            for v in values:
                check_positive(name, v)
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown or not self.methods:
            raise ValueError(
                f"methods: expected a non-empty subset of {list(METHODS)}, got {list(self.methods)}"
            )
        if self.threads is not None:
            check_positive_int("threads", self.threads)


Factory = Callable[..., Learner]


def _factories(cfg: AdvMDPConfig) -> dict[str, tuple[Factory, list[dict[str, Any]]]]:
    """``{method: (make(env, K, **setting), grid of settings)}``."""

    def ours(env: LinearMDP, K: int) -> Learner:
        return LogBarrierPO(env, K, c_e=cfg.c_e, c_b=cfg.c_b, c_g=cfg.c_g)

    def luo(env: LinearMDP, K: int, c_g: float, c_b: float) -> Learner:
        return DilatedBonusPO(env, K, c_g=c_g, c_b=c_b)

    def mr(env: LinearMDP, K: int, c_e: float, c_b: float) -> Learner:
        return MagnitudeReducedPO(env, K, c_e=c_e, c_b=c_b, c_g=cfg.c_g)

    def naive(env: LinearMDP, K: int, c_e: float) -> Learner:
        return NaivePO(env, K, c_e=c_e, c_g=cfg.c_g)

    def full(env: LinearMDP, K: int, c_e: float) -> Learner:
        return FullInfoPO(env, K, c_e=c_e)

    def uniform(env: LinearMDP, K: int) -> Learner:
        return UniformPolicy(env, K)

    return {
        "LogBarrierPO": (ours, [{}]),
        "DilatedBonusPO": (luo, grid(c_g=cfg.luo_c_g, c_b=cfg.luo_c_b)),
        "MagnitudeReducedPO": (mr, grid(c_e=cfg.mr_c_e, c_b=cfg.mr_c_b)),
        "NaivePO": (naive, grid(c_e=cfg.naive_c_e)),
        "FullInfoPO": (full, grid(c_e=cfg.full_c_e)),
        "Uniform": (uniform, [{}]),
    }


def _regret(
    cfg: AdvMDPConfig, env: LinearMDP, make: Factory, K: int, seed: int, **kw: Any
) -> tuple[float, float]:
    theta = make_adversary(cfg.adversary, env, K, seed=seed, n_blocks=cfg.n_blocks)  # type: ignore[arg-type]
    out = run(env, make(env, K, **kw), theta, seed=seed)
    return float(out.regret[-1]), out.seconds


def run_experiment(cfg: AdvMDPConfig, ctx: RunContext) -> Result:
    """Tune the non-pinned learners once at ``tune_episodes``, then run every ``K`` and seed; rows, checks, plot."""
    if cfg.tune_seed in ctx.seeds:
        raise ValueError(f"tune_seed: {cfg.tune_seed} is one of the evaluation seeds {ctx.seeds}")
    env = LinearMDP(
        cfg.H, cfg.n_states, cfg.n_actions, cfg.dim, cfg.feature_alpha, seed=cfg.env_seed
    )
    methods = [m for m in METHODS if m in cfg.methods]
    factories = _factories(cfg)
    tuned: dict[str, dict[str, Any]] = {}
    tuning: dict[str, dict[str, float]] = {}
    for m in methods:
        make, settings = factories[m]
        if len(settings) == 1:
            tuned[m] = settings[0]
            continue

        def score(setting: dict[str, Any], make: Factory = make) -> float:
            return -_regret(cfg, env, make, cfg.tune_episodes, cfg.tune_seed, **setting)[0]

        sel = select_on_validation(settings, score, log=ctx.log)
        tuned[m], tuning[m] = dict(sel.best), {k: -v for k, v in sel.scores.items()}
        ctx.log.info(
            "tuned %s: %s (regret %.1f at K=%d)", m, sel.best, -sel.best_score, cfg.tune_episodes
        )

    Ks = sorted(cfg.Ks)
    regret: dict[tuple[str, int], list[float]] = {(m, K): [] for m in methods for K in Ks}
    secs: dict[str, list[float]] = {m: [] for m in methods}
    for seed in ctx.seeds:
        for m in methods:
            make, _ = factories[m]
            total = 0.0
            for K in Ks:
                r, s = _regret(cfg, env, make, K, seed, **tuned[m])
                regret[m, K].append(r)
                total += s
            secs[m].append(total)
            ctx.log.info(
                "seed %d %s: regret %s (%.1fs)",
                seed,
                m,
                [round(regret[m, K][-1], 1) for K in Ks],
                total,
            )

    rows: list[Row] = []
    slopes: dict[str, list[float]] = {}
    for m in methods:
        for K in Ks:
            rows.append(Row.from_values(m, f"regret_K{K}", regret[m, K]))
        per_seed = [[regret[m, K][i] for K in Ks] for i in range(len(ctx.seeds))]
        if all(min(r) > 0 for r in per_seed):
            slopes[m] = [fit_loglog_slope(Ks, r)[0] for r in per_seed]
            rows.append(Row.from_values(m, "loglog_slope", slopes[m]))
        rows.append(Row.from_values(m, "seconds", secs[m]))
    if "Uniform" in methods:
        top = Ks[-1]
        for m in methods:
            ratios = [a / u for a, u in zip(regret[m, top], regret["Uniform", top], strict=True)]
            rows.append(Row.from_values(m, f"ratio_to_uniform_K{top}", ratios))
    checks: list[Check] = []
    if set(SPEC_METHODS) <= set(methods):  # the checks are defined on the full table
        checks = _checks(rows, Ks[-1])
        checks.append(_interior_check(tuned, {m: factories[m][1] for m in tuned}))
    return Result(
        rows=rows,
        checks=checks,
        curves={"regret_vs_K": _curve(regret, methods, Ks)},
        extra={"tuned": tuned, "tuning_regret": tuning, "config": asdict(cfg)},
    )


def _curve(regret: dict[tuple[str, int], list[float]], methods: list[str], Ks: list[int]) -> Curve:
    """log10 regret against log10 K, seed means with min-max bands, and each fitted line."""
    x = [math.log10(K) for K in Ks]
    series: dict[str, list[float]] = {}
    per_seed: dict[str, list[list[float]]] = {}
    for m in methods:
        means = [sum(regret[m, K]) / len(regret[m, K]) for K in Ks]
        if min(means) <= 0:
            continue
        series[m] = [math.log10(v) for v in means]
        n = len(regret[m, Ks[0]])
        if all(regret[m, K][i] > 0 for K in Ks for i in range(n)):
            per_seed[m] = [[math.log10(regret[m, K][i]) for K in Ks] for i in range(n)]
        slope, intercept, _ = fit_loglog_slope(Ks, means)
        series[f"{m} fit (slope {slope:.2f})"] = [
            (intercept + slope * math.log(K)) / math.log(10) for K in Ks
        ]
    return Curve(
        "regret vs K (log-log), switching adversary",
        "log10 K",
        "log10 expected regret",
        x,
        series,
        per_seed,
    )


def _interior_check(
    tuned: dict[str, dict[str, Any]], grids: dict[str, list[dict[str, Any]]]
) -> Check:
    """Every tuned value lies strictly inside its grid axis (axes of 3 or more values)."""
    edges, checked = [], 0
    for m, setting in tuned.items():
        for k, v in setting.items():
            axis = sorted({g[k] for g in grids[m]})
            if len(axis) >= 3:
                checked += 1
                if v in (axis[0], axis[-1]):
                    edges.append(f"{m} {k}={v:g}")
    detail = "on an edge: " + ", ".join(edges) if edges else f"all {checked} axes interior"
    return Check(
        "every tuned constant is interior to its grid (axes of 3+ values)", not edges, detail
    )


def _checks(rows: list[Row], top: int) -> list[Check]:
    def mean(m: str, metric: str) -> float:
        return find_row(rows, m, metric).mean

    uni = mean("Uniform", f"regret_K{top}")
    ours, luo = mean("LogBarrierPO", f"regret_K{top}"), mean("DilatedBonusPO", f"regret_K{top}")
    full = mean("FullInfoPO", f"regret_K{top}")
    slope = mean("Uniform", "loglog_slope")
    return [
        Check(
            "Uniform's log-log slope in [0.95, 1.05]", 0.95 <= slope <= 1.05, f"slope {slope:.3f}"
        ),
        Check(
            f"LogBarrierPO regret at K={top} <= 0.6x Uniform's",
            ours <= 0.6 * uni,
            f"{ours:.1f} vs {uni:.1f} (ratio {ours / uni:.2f})",
        ),
        Check(
            f"FullInfoPO regret at K={top} <= 0.75x Uniform's",
            full <= 0.75 * uni,
            f"{full:.1f} vs {uni:.1f} (ratio {full / uni:.2f})",
        ),
        Check(
            f"LogBarrierPO regret below DilatedBonusPO's (Luo 2021) at K={top}",
            ours < luo,
            f"{ours:.1f} vs {luo:.1f} (ratio {ours / luo:.2f})",
        ),
    ]


EXPERIMENT = Experiment(
    name="adv-mdp",
    description="Regret vs K of log-barrier policy optimisation (Dai et al. 2023) vs dilated bonuses",
    config_cls=AdvMDPConfig,
    run=run_experiment,
    budgets={
        "smoke": {
            "Ks": (20, 40),
            "tune_episodes": 20,
            "luo_c_g": (10.0,),
            "luo_c_b": (0.01,),
            "mr_c_e": (30.0,),
            "mr_c_b": (0.01,),
            "naive_c_e": (30.0,),
            "full_c_e": (1.0,),
        },
        "quick": {},
        "full": {"Ks": (250, 500, 1000, 2000, 4000, 8000, 16000)},
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
