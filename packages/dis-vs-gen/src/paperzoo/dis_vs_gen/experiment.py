"""The paper's small reproduction (spec section 6), seed by seed.

(A) Sample-complexity regimes on the paper's Gaussian mixtures: for each ``K`` and feature
    dimension ``n`` a balanced pool of ``sim_max_factor * n`` rows and a test set of ``sim_test``
    rows; NB and LR are fitted on random subsets of a geometric grid of sizes from ``2K`` to the
    pool; ``m_eps`` is the smallest size whose error is within ``sim_tol`` of the head's error at
    the largest size. Expected: NB's ``m_eps`` nearly flat in ``n`` (``O(log n)``), LR's growing
    (``O(n)``). The "hard" (correlated) mixture shows two regimes: NB better at small ``m``, LR
    better asymptotically.
(B) Frozen-feature probes: an MLP pretrained (supervised) on mnist5k classes 0-4, frozen; NB and
    LR probes of its features for classes 5-9 against the shots per class; controls: the same
    MLP randomly initialised, and the raw sklearn digits pixels. Expected (paper): NB's curve
    flattens earlier; a crossing (NB better in few-shot, LR at the largest ``m``).

Each seed draws its own pools and subsets (one repeat per seed in (A); ``probe_repeats`` per seed
in (B)); the rows are over seeds. Checks are computed from the rows, passed or not.

At paper scale, ``--set data_root=DIR`` runs (B) on ``real_dataset`` (CIFAR-10 by default, MNIST or
Fashion-MNIST, read by ``paperzoo.core.datasets``; train and test images pooled, pixels in [0, 1],
flattened): the MLP pretrained on classes 0-4, probed on 5-9, the raw-pixel control on the same
images; (A) stays on its Gaussian mixtures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from paperzoo.core.checks import UserError, check_choice, check_positive, check_positive_int
from paperzoo.core.data import load_dataset
from paperzoo.core.datasets import load_split
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext
from paperzoo.core.models import mlp
from paperzoo.dis_vs_gen.diagnostics import llr_gap, llr_variance, pooled_variances
from paperzoo.dis_vs_gen.features import pretrain_tiny
from paperzoo.dis_vs_gen.probe import ProbeCurve, probe_curve, samples_to_reach
from paperzoo.dis_vs_gen.simulation import gaussian_mixture

__all__ = ["EXPERIMENT", "DisVsGenConfig", "geometric_grid", "loglog_slope", "run"]

HEADS = {"nb": "NB", "lr": "LR"}


@dataclass(frozen=True)
class DisVsGenConfig:
    """Config of the ``dis-vs-gen`` reproduction (spec section 6 defaults).

    ``C`` is scikit-learn's multinomial ``C``; with ``sklearn_binary_c`` two-class problems use
    ``C / 2`` so the two-row softmax head equals scikit-learn's binary fit with ``C`` (the
    reference's K = 2 runs). ``probe_shots`` are rows per class; ``probe_test_per_class`` rows of
    each probe class are held out for test.
    """

    threads: int | None = 1
    sim_classes: tuple[int, ...] = (2, 3)
    sim_features: tuple[int, ...] = (50, 100, 200, 400)
    sim_points: int = 15
    sim_max_factor: int = 20
    sim_test: int = 5000
    sim_tol: float = 0.01
    hard_features: tuple[int, ...] = (50, 100, 200)
    C: float = 1.0
    sklearn_binary_c: bool = True
    var_smoothing: float = 1e-9
    probe: bool = True
    probe_epochs: int = 2
    probe_shots: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 400)
    probe_repeats: int = 5
    probe_test_per_class: int = 100
    data_root: str = ""  # a folder with a real data set: (B) probes real_dataset
    real_dataset: str = "cifar10"  # cifar10, mnist or fashion-mnist (10 classes: 0-4 / 5-9)

    def __post_init__(self) -> None:
        try:
            check_choice("real_dataset", self.real_dataset, ("cifar10", "mnist", "fashion-mnist"))
            if self.threads is not None:
                check_positive_int("threads", self.threads)
            for name in (
                "sim_points",
                "sim_max_factor",
                "sim_test",
                "probe_epochs",
                "probe_repeats",
                "probe_test_per_class",
            ):
                check_positive_int(name, getattr(self, name))
            if self.sim_points < 2:
                raise ValueError(f"sim_points: expected an integer >= 2, got {self.sim_points}")
            for k in self.sim_classes:
                check_positive_int("sim_classes", k, minimum=2)
            for name in ("sim_features", "hard_features", "probe_shots"):
                for v in getattr(self, name):
                    check_positive_int(name, v)
            if not self.sim_classes or not self.sim_features:
                raise ValueError("sim_classes, sim_features: expected at least one value each")
            check_positive("sim_tol", self.sim_tol)
            check_positive("C", self.C)
            check_positive("var_smoothing", self.var_smoothing, allow_zero=True)
        except (TypeError, ValueError) as err:
            raise UserError(str(err)) from err


def geometric_grid(lo: int, hi: int, points: int) -> list[int]:
    """About ``points`` distinct integers from ``lo`` to ``hi``, geometrically spaced."""
    if points < 2 or hi <= lo:
        return [hi]
    vals = {round(lo * (hi / lo) ** (i / (points - 1))) for i in range(points)}
    return sorted(int(v) for v in vals)


def loglog_slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (``nan`` with an infinite ``y``)."""
    if any(not math.isfinite(v) or v <= 0 for v in y):
        return math.nan
    lx = [math.log(v) for v in x]
    ly = [math.log(v) for v in y]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sxx


def _c_for(config: DisVsGenConfig, k: int) -> float:
    return config.C / 2 if (k == 2 and config.sklearn_binary_c) else config.C


def _merge(curves: list[ProbeCurve]) -> ProbeCurve:
    """Stack the repeats of several curves over the same sizes."""
    return ProbeCurve(
        curves[0].m, {h: torch.cat([c.errors[h] for c in curves]) for h in curves[0].errors}
    )


def _simulation(config: DisVsGenConfig, mode: str, k: int, n: int, seed: int) -> ProbeCurve:
    pool = config.sim_max_factor * n
    x, y = gaussian_mixture(n, k, mode, math.ceil(pool / k), seed=1000 * seed + 1)  # type: ignore[arg-type]
    xt, yt = gaussian_mixture(n, k, mode, math.ceil(config.sim_test / k), seed=1000 * seed + 2)  # type: ignore[arg-type]
    grid = geometric_grid(2 * k, x.shape[0], config.sim_points)
    return probe_curve(
        x,
        y,
        xt,
        yt,
        grid,
        repeats=1,
        scaler=None,
        seed=seed,
        C=_c_for(config, k),
        var_smoothing=config.var_smoothing,
    )


def _probe_sets(config: DisVsGenConfig, seed: int) -> dict[str, tuple[Tensor, ...]]:
    """(x_pool, y_pool, x_test, y_test) per feature set, probe classes relabelled 0..4."""
    data = load_split(
        "mnist5k", data_root=config.data_root, real_dataset=config.real_dataset, seed=0,
        val_fraction=0.0, test_fraction=0.0,
    )  # fmt: skip
    x, y = torch.cat([data.x_train, data.x_test]), torch.cat([data.y_train, data.y_test])
    probe = y >= 5
    xp, yp = x[probe], y[probe] - 5
    g = torch.Generator().manual_seed(seed)
    test = torch.zeros(xp.shape[0], dtype=torch.bool)
    for c in range(5):  # hold out probe_test_per_class rows of each class
        rows = torch.nonzero(yp == c).flatten()
        test[rows[torch.randperm(rows.numel(), generator=g)[: config.probe_test_per_class]]] = True
    encoder = pretrain_tiny(x, y, classes=range(5), epochs=config.probe_epochs, seed=seed)
    torch.manual_seed(seed)
    random_encoder = mlp([x.shape[1], 256, 64]).eval()  # the same MLP, randomly initialised
    with torch.no_grad():
        f_pre = encoder(xp)
        f_rand = random_encoder(xp)
    sets: dict[str, tuple[Tensor, ...]] = {
        "pretrained MLP": (f_pre[~test], yp[~test], f_pre[test], yp[test]),
        "random MLP": (f_rand[~test], yp[~test], f_rand[test], yp[test]),
    }
    if config.data_root:
        sets[f"raw {config.real_dataset} pixels"] = (xp[~test], yp[~test], xp[test], yp[test])
    else:
        dig = load_dataset("digits", seed=seed, val_fraction=0.0, test_fraction=0.3)
        sets["raw digits"] = (dig.x_train, dig.y_train, dig.x_test, dig.y_test)
    return sets


def run(config: DisVsGenConfig, ctx: RunContext) -> Result:
    """(A) simulation regimes and (B) frozen-feature probes per seed; rows over seeds."""
    values: dict[tuple[str, str], list[float]] = {}
    curves: dict[str, Curve] = {}

    def add(method: str, metric: str, v: float) -> None:
        values.setdefault((method, metric), []).append(float(v))

    # ---- (A) easy mixture: m_eps against n
    meps: dict[tuple[str, int, int], float] = {}
    slopes_x = [float(n) for n in config.sim_features]
    for k in config.sim_classes:
        for n in config.sim_features:
            runs = []
            for seed in ctx.seeds:
                ctx.log.info("simulation easy K=%d n=%d seed %d", k, n, seed)
                c = _simulation(config, "easy", k, n, seed)
                runs.append(c)
                for h, name in HEADS.items():
                    add(
                        name,
                        f"easy K={k} n={n}: m_eps (per seed)",
                        samples_to_reach(c, config.sim_tol)[h],
                    )
            curve = _merge(runs)
            reach = samples_to_reach(curve, config.sim_tol)
            smooth = samples_to_reach(curve, config.sim_tol, interpolate=True)
            small = max(1, len(curve.m) // 3)
            for h, name in HEADS.items():
                meps[(h, k, n)] = reach[h]
                meps[(h + "_interp", k, n)] = smooth[h]
                errs = curve.errors[h]
                for i in range(errs.shape[0]):
                    add(name, f"easy K={k} n={n}: asymptotic error", float(errs[i, -1]))
                    add(
                        name,
                        f"easy K={k} n={n}: mean error, smallest third of m",
                        float(errs[i, :small].mean()),
                    )
            if n == max(config.sim_features):
                curves[f"easy_K{k}_n{n}"] = Curve.from_seeds(
                    f"easy mixture, K={k}, n={n}: test error",
                    "m (training rows)",
                    "error",
                    curve.m,
                    {HEADS[h]: curve.errors[h].tolist() for h in HEADS},
                )
        curves[f"m_eps_K{k}"] = Curve(
            f"easy mixture, K={k}: m_eps (mean curve within {config.sim_tol} of asymptote)",
            "n (features)",
            "m_eps",
            slopes_x,
            {HEADS[h]: [meps[(h, k, n)] for n in config.sim_features] for h in HEADS},
        )

    # ---- (A') hard mixture: two regimes (K = 2)
    for n in config.hard_features:
        runs = [_simulation(config, "hard", 2, n, seed) for seed in ctx.seeds]
        curve = _merge(runs)
        small = max(1, len(curve.m) // 3)
        for h, name in HEADS.items():
            errs = curve.errors[h]
            for i in range(errs.shape[0]):
                add(name, f"hard K=2 n={n}: asymptotic error", float(errs[i, -1]))
                add(
                    name,
                    f"hard K=2 n={n}: mean error, smallest third of m",
                    float(errs[i, :small].mean()),
                )
        curves[f"hard_K2_n{n}"] = Curve.from_seeds(
            f"hard mixture, K=2, n={n}: test error",
            "m (training rows)",
            "error",
            curve.m,
            {HEADS[h]: curve.errors[h].tolist() for h in HEADS},
        )

    # ---- (B) frozen-feature probes
    probe_curves: dict[str, list[ProbeCurve]] = {}
    if config.probe:
        for seed in ctx.seeds:
            ctx.log.info("probes, seed %d", seed)
            for name, (xp, yp, xt, yt) in _probe_sets(config, seed).items():
                limit = int(torch.bincount(yp).min())
                shots = [s for s in config.probe_shots if s <= limit]
                c = probe_curve(
                    xp,
                    yp,
                    xt,
                    yt,
                    shots,
                    repeats=config.probe_repeats,
                    scaler="minmax",
                    seed=seed,
                    per_class=True,
                    C=config.C,
                    var_smoothing=config.var_smoothing,
                )
                probe_curves.setdefault(name, []).append(c)
                for h, hn in HEADS.items():
                    mean = c.mean(h)
                    for s, e in zip(c.m, mean, strict=True):
                        add(hn, f"probe {name}: error at {s}/class", e)
                if name == "pretrained MLP":
                    add(
                        "NB",
                        "probe pretrained MLP: pooled variance, 1st percentile",
                        float(torch.quantile(pooled_variances(xp, yp, 5), 0.01)),
                    )
                    gap = llr_gap(xp, yp, 5, config.var_smoothing)
                    off = ~torch.eye(5, dtype=torch.bool)
                    add("NB", "probe pretrained MLP: min per-dim LLR gap", float(gap[off].min()))
                    add(
                        "NB",
                        "probe pretrained MLP: max per-dim LLR variance",
                        float(llr_variance(xp, yp, 5, config.var_smoothing)[off].max()),
                    )
        for name, cs in probe_curves.items():
            merged = _merge(cs)
            curves["probe_" + name.replace(" ", "_")] = Curve.from_seeds(
                f"probe on {name} features: test error",
                "training rows per class",
                "error",
                merged.m,
                {HEADS[h]: [c.mean(h) for c in cs] for h in HEADS},
            )

    rows = [Row.from_values(m, k, v) for (m, k), v in values.items()]
    checks = _checks(config, meps, values, probe_curves)
    return Result(
        rows=rows,
        checks=checks,
        curves=curves,
        extra={
            "m_eps_mean_curve": {f"{h} K={k} n={n}": v for (h, k, n), v in meps.items()},
            "sim_grid_max": {str(n): config.sim_max_factor * n for n in config.sim_features},
        },
    )


def _mean(values: dict[tuple[str, str], list[float]], method: str, metric: str) -> float:
    v = values[(method, metric)]
    return sum(v) / len(v)


def _checks(
    config: DisVsGenConfig,
    meps: dict[tuple[str, int, int], float],
    values: dict[tuple[str, str], list[float]],
    probes: dict[str, list[ProbeCurve]],
) -> list[Check]:
    checks: list[Check] = []
    ns = list(config.sim_features)
    lo, hi = min(ns), max(ns)
    for k in config.sim_classes:
        nb = [meps[("nb", k, n)] for n in ns]
        lr = [meps[("lr", k, n)] for n in ns]
        nb_ratio, lr_ratio = (
            nb[ns.index(hi)] / nb[ns.index(lo)],
            lr[ns.index(hi)] / lr[ns.index(lo)],
        )
        checks.append(
            Check(
                f"(A) K={k}: NB m_eps nearly flat (grows < 2x from n={lo} to n={hi})",
                nb_ratio < 2.0,
                f"NB m_eps {nb} (x{nb_ratio:.2f}) for n={ns}",
            )
        )
        checks.append(
            Check(
                f"(A) K={k}: LR m_eps grows >= 2x from n={lo} to n={hi}",
                lr_ratio >= 2.0,
                f"LR m_eps {lr} (x{lr_ratio:.2f}) for n={ns}",
            )
        )
        s_nb = loglog_slope([float(n) for n in ns], [meps[("nb_interp", k, n)] for n in ns])
        s_lr = loglog_slope([float(n) for n in ns], [meps[("lr_interp", k, n)] for n in ns])
        checks.append(
            Check(
                f"(A) K={k}: log-log slope of interpolated m_eps vs n: LR >= 0.5, NB <= 0.25",
                s_lr >= 0.5 and s_nb <= 0.25,
                f"LR {s_lr:.2f}, NB {s_nb:.2f}",
            )
        )
        below = [
            (
                n,
                _mean(values, "NB", f"easy K={k} n={n}: mean error, smallest third of m"),
                _mean(values, "LR", f"easy K={k} n={n}: mean error, smallest third of m"),
            )
            for n in ns
        ]
        checks.append(
            Check(
                f"(A) K={k}: NB error below LR's at small m (smallest third of the grid), every n",
                all(a < b for _, a, b in below),
                ", ".join(f"n={n}: {a:.3f} vs {b:.3f}" for n, a, b in below),
            )
        )
    if config.hard_features:
        parts, ok = [], True
        for n in config.hard_features:
            a_nb = _mean(values, "NB", f"hard K=2 n={n}: asymptotic error")
            a_lr = _mean(values, "LR", f"hard K=2 n={n}: asymptotic error")
            s_nb = _mean(values, "NB", f"hard K=2 n={n}: mean error, smallest third of m")
            s_lr = _mean(values, "LR", f"hard K=2 n={n}: mean error, smallest third of m")
            ok = ok and a_lr < a_nb and s_nb < s_lr
            parts.append(
                f"n={n}: asymptotic NB {a_nb:.3f} / LR {a_lr:.3f}, small m NB "
                f"{s_nb:.3f} / LR {s_lr:.3f}"
            )
        checks.append(
            Check(
                "(A) hard mixture, K=2: two regimes (NB better at small m, LR asymptotically)",
                ok,
                "; ".join(parts),
            )
        )
    if "pretrained MLP" in probes:
        cs = probes["pretrained MLP"]
        merged = _merge(cs)
        nb, lr = merged.mean("nb"), merged.mean("lr")
        m = merged.m
        if 10 in m:
            j = m.index(10)
            d_nb, d_lr = nb[j] - nb[-1], lr[j] - lr[-1]
            checks.append(
                Check(
                    f"(B) pretrained features: NB's curve flattens earlier (error drop from 10 to "
                    f"{m[-1]} per class smaller for NB than LR)",
                    d_nb < d_lr,
                    f"NB drop {d_nb:.3f} vs LR drop {d_lr:.3f}",
                )
            )
        few = [j for j, s in enumerate(m) if s <= 10]
        cross = all(nb[j] <= lr[j] for j in few) and lr[-1] < nb[-1]
        detail = ", ".join(
            f"{s}/class NB {a:.3f} LR {b:.3f}" for s, a, b in zip(m, nb, lr, strict=True)
        )
        checks.append(
            Check(
                "(B) pretrained features: two regimes (NB <= LR at <= 10/class, LR < NB at the "
                "largest m) - the paper's crossing",
                cross,
                detail,
            )
        )
    return checks


EXPERIMENT = Experiment(
    name="dis-vs-gen",
    description="Naive Bayes vs logistic regression: sample complexity vs dimension, frozen probes",
    config_cls=DisVsGenConfig,
    run=run,
    budgets={
        "smoke": {
            "sim_classes": (2,),
            "sim_features": (10, 20),
            "sim_points": 5,
            "sim_max_factor": 10,
            "sim_test": 500,
            "hard_features": (10,),
            "probe_epochs": 1,
            "probe_shots": (1, 5, 10, 20),
            "probe_repeats": 1,
        },
        "quick": {},
        "full": {
            "sim_classes": (2, 3, 5, 7),
            "sim_features": (100, 200, 400, 1000),
            "sim_points": 20,
            "sim_max_factor": 100,
            "sim_test": 10_000,
            "hard_features": (50, 100, 200, 400),
            "probe_epochs": 10,
        },
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
