"""The paper's small reproduction (spec section 6).

(A) Isotropic two-Gaussian mixture (d = 200, ``||mu0|| = 1``, ``sigma = 1``): the reference
simulation's non-robust setup (linear ``w . x``, ramp loss with margin scale ``g`` on labeled data
plus ``lambda`` times the ramp of ``g' |w . x'|`` on unlabeled data, full-batch Adam lr 0.07,
ReduceLROnPlateau(0.1, 3), restarts keeping the lowest-objective epoch). For each labeled size
``m``, shift ``alpha_ratio`` and unlabeled size ``n``: hyper-parameters chosen on a labeled
validation set of 1000 (never on test) over a grid, then test accuracy on 10000. Baselines:
labeled-only ramp ERM (its own grid), ERM with ``ceiling_m`` labels, the Bayes accuracy.

(B) Digits analog (scikit-learn 8x8 digits, MLP 64-128-K, robust CE with ``T_in = 10``): 20
labels per class, unlabeled = the other training digits with pixel noise; labeled-only WRM vs RSS
with a labeled-only warm-up; best epoch by validation accuracy. Reported, not asserted.

Deviations from the reference protocol: a fixed grid (spec section 6) instead of 500 / 4000
random draws, chosen on validation instead of test; 5 restarts (reference: 15 ERM / 20 RSS);
20 epochs as the reference notebook (the spec's prototype used 30); the quick budget uses 3
restarts, a smaller grid and no 10000-label ceiling run (same 3 seeds). The best epoch of a
restart is the lowest-objective one, as the notebook intends (its ``state_dict()`` is not
copied, so it actually keeps the last epoch).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from paperzoo.core.checks import UserError, check_positive, check_positive_int
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.models import mlp
from paperzoo.core.selection import grid
from paperzoo.ood_dro.data import digits_shift, gmm_mean, shifted_unlabeled, two_gaussians
from paperzoo.ood_dro.losses import RampLoss
from paperzoo.ood_dro.rss import RSSObjective, RSSTrainer, predict_labels, tune
from paperzoo.ood_dro.theory import bayes_error

__all__ = ["EXPERIMENT", "OodDroConfig", "run"]


def _floats(name: str, text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{name}: expected a comma list of numbers, got {text!r}") from None
    if not vals or any(v < 0 for v in vals):
        raise UserError(f"{name}: expected a non-empty comma list of numbers >= 0, got {text!r}")
    return vals


def _n_values(text: str, m: int) -> list[int]:
    """``"10m,100m,10000"`` -> ``[10 m, 100 m, 10000]``."""
    out = []
    for tok in (t.strip() for t in text.split(",") if t.strip()):
        try:
            out.append(int(float(tok[:-1]) * m) if tok.endswith("m") else int(tok))
        except ValueError:
            raise UserError(f"n_values: expected items like 10m or 10000, got {tok!r}") from None
    if not out or any(n < 1 for n in out):
        raise UserError(f"n_values: expected positive sizes, got {text!r}")
    return out


@dataclass(frozen=True)
class OodDroConfig:
    """Config of the ``ood-dro`` reproduction (spec section 6 defaults; comma lists as strings).

    ``threads``: torch CPU threads while it runs (scoped by the core's ``run_experiment``).
    """

    d: int = 200
    mu0_norm: float = 1.0
    sigma: float = 1.0
    alphas: str = "0,0.5"
    ms: str = "10,40"
    n_values: str = "10m,100m,10000"
    n_val: int = 1000
    n_test: int = 10000
    ceiling_m: int = 10000  # 0: no ceiling run
    rss_g: str = "1,10"
    rss_gu: str = "0.05,0.2"
    rss_lam: str = "2,10,20"
    rss_wd: str = "0.1,0.5"
    erm_g: str = "0.5,2,8,15"
    erm_wd: str = "0,0.1,0.4,0.8"
    epochs: int = 20
    restarts: int = 5
    lr: float = 0.07
    digits: bool = True
    digits_epochs: int = 150
    digits_warmup: int = 75
    digits_lam: float = 0.5
    digits_gamma: float = 1.0
    digits_step_size: float = 0.1
    digits_noise: str = "0,0.3"
    threads: int | None = 1

    def __post_init__(self) -> None:
        """Check every field (a bad ``--set`` value is one ``paperzoo: error:`` line)."""
        check_positive_int("ceiling_m", self.ceiling_m, minimum=0)
        for name in ("d", "n_val", "n_test", "epochs", "restarts", "digits_epochs"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("digits_warmup", self.digits_warmup, minimum=0)
        for name in ("mu0_norm", "sigma", "lr", "digits_gamma", "digits_step_size"):
            check_positive(name, getattr(self, name))
        check_positive("digits_lam", self.digits_lam, allow_zero=True)
        for name in (
            "alphas",
            "rss_g",
            "rss_gu",
            "rss_lam",
            "rss_wd",
            "erm_g",
            "erm_wd",
            "digits_noise",
        ):
            _floats(name, getattr(self, name))
        ms = _floats("ms", self.ms)
        if any(m < 1 or m != int(m) for m in ms):
            raise UserError(f"ms: expected positive integers, got {self.ms!r}")
        _n_values(self.n_values, 1)
        if self.threads is not None:
            check_positive_int("threads", self.threads)


def _xavier(model: nn.Module) -> None:
    for mod in model.modules():
        if isinstance(mod, nn.Linear):
            nn.init.xavier_uniform_(mod.weight)


def _acc(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((predict_labels(model(x)) == y).double().mean())


def _ramp_trainer(
    cfg: OodDroConfig, p: dict[str, float], seed: int, device: torch.device
) -> RSSTrainer:
    """The reference simulation's training of one grid point (labeled-only when ``lam = 0``)."""
    obj = RSSObjective(
        nn.Linear(cfg.d, 1, bias=False),
        RampLoss(p["g"], reduction="none", validate=False),
        lam=p.get("lam", 0.0),
        robust=False,
        unlabeled_loss_fn=RampLoss(p.get("gu", 1.0), reduction="none", validate=False),
        validate=False,
    )
    return RSSTrainer(
        obj,
        lr=cfg.lr,
        weight_decay=p["wd"],
        epochs=cfg.epochs,
        restarts=cfg.restarts,
        scheduler="plateau",
        select="train_loss",
        init=_xavier,
        seed=seed,
        device=device,
    )


def _fit_linear(
    cfg: OodDroConfig,
    cands: list[dict[str, Any]],
    x_l: Tensor,
    y_l: Tensor,
    x_u: Tensor | None,
    val: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    seed: int,
    ctx: RunContext,
) -> tuple[float, dict[str, Any]]:
    with warnings.catch_warnings():  # labeled-only runs warn that there is no unlabeled data
        warnings.simplefilter("ignore", UserWarning)
        sel, model = tune(
            lambda p: _ramp_trainer(cfg, p, seed, ctx.device), cands, x_l, y_l, x_u, val
        )
    return _acc(model, *test), sel.best


def _gmm(
    cfg: OodDroConfig, seed: int, ctx: RunContext, add: Any, curves: dict[int, dict[str, Any]]
) -> None:
    dev = ctx.device
    mu0 = gmm_mean(cfg.d, cfg.mu0_norm, seed=50_000 + seed)
    x_te, y_te = two_gaussians(cfg.n_test, cfg.d, mu0, cfg.sigma, seed=10_000 + seed)
    x_va, y_va = two_gaussians(cfg.n_val, cfg.d, mu0, cfg.sigma, seed=20_000 + seed)
    test, val = (x_te.to(dev), y_te.to(dev)), (x_va.to(dev), y_va.to(dev))
    erm_grid = grid(g=_floats("erm_g", cfg.erm_g), wd=_floats("erm_wd", cfg.erm_wd))
    rss_grid = grid(
        g=_floats("rss_g", cfg.rss_g),
        gu=_floats("rss_gu", cfg.rss_gu),
        lam=_floats("rss_lam", cfg.rss_lam),
        wd=_floats("rss_wd", cfg.rss_wd),
    )
    if cfg.ceiling_m > 0:
        x_c, y_c = two_gaussians(cfg.ceiling_m, cfg.d, mu0, cfg.sigma, seed=30_000 + seed)
        acc, _ = _fit_linear(cfg, erm_grid, x_c.to(dev), y_c.to(dev), None, val, test, seed, ctx)
        add(f"ERM m={cfg.ceiling_m} (ceiling)", "test_acc", acc)
    alphas = _floats("alphas", cfg.alphas)
    for m in (int(v) for v in _floats("ms", cfg.ms)):
        x_l, y_l = (t.to(dev) for t in two_gaussians(m, cfg.d, mu0, cfg.sigma, seed=seed))
        acc, best = _fit_linear(cfg, erm_grid, x_l, y_l, None, val, test, seed, ctx)
        add(f"ERM m={m}", "test_acc", acc)
        ctx.log.info("seed %d m=%d ERM %.3f (%s)", seed, m, acc, best)
        ns = _n_values(cfg.n_values, m)
        for alpha in alphas:
            pool, _ = shifted_unlabeled(max(ns), mu0, alpha, cfg.sigma, seed=40_000 + seed)
            accs = []
            for n in ns:
                acc, best = _fit_linear(
                    cfg, rss_grid, x_l, y_l, pool[:n].to(dev), val, test, seed, ctx
                )
                add(f"RSS m={m} alpha={alpha:g} n={n}", "test_acc", acc)
                ctx.log.info(
                    "seed %d m=%d alpha=%g n=%d RSS %.3f (%s)", seed, m, alpha, n, acc, best
                )
                accs.append(acc)
            curves.setdefault(m, {"x": ns, "series": {}})["series"].setdefault(
                f"alpha={alpha:g}", []
            ).append(accs)


def _digits(cfg: OodDroConfig, seed: int, ctx: RunContext, add: Any) -> None:
    for task, classes in (("3-vs-8", (3, 8)), ("10-class", None)):
        for noise in _floats("digits_noise", cfg.digits_noise):
            ds = digits_shift(classes, 20, noise=noise, seed=seed)
            dev = ctx.device
            val = (ds.x_val.to(dev), ds.y_val.to(dev))
            runs = (
                [("RSS", cfg.digits_lam)]
                if noise != _floats("digits_noise", cfg.digits_noise)[0]
                else [("labeled-only WRM", 0.0), ("RSS", cfg.digits_lam)]
            )
            for name, lam in runs:
                torch.manual_seed(seed)
                obj = RSSObjective(
                    mlp([64, 128, ds.num_classes]),
                    "ce",
                    gamma=cfg.digits_gamma,
                    lam=lam,
                    steps=10,
                    step_size=cfg.digits_step_size,
                    validate=False,
                )
                tr = RSSTrainer(
                    obj,
                    lr=1e-3,
                    epochs=cfg.digits_epochs,
                    warmup_epochs=cfg.digits_warmup if lam > 0 else 0,
                    val=val,
                    seed=seed,
                    device=dev,
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    model = tr.fit(
                        ds.x_l.to(dev), ds.y_l.to(dev), ds.x_u.to(dev) if lam > 0 else None
                    )
                label = name if lam == 0 else f"{name} noise={noise:g}"
                add(
                    f"digits {task} {label}",
                    "test_acc",
                    _acc(model, ds.x_test.to(dev), ds.y_test.to(dev)),
                )


def run(config: OodDroConfig, ctx: RunContext) -> Result:
    """(A) and (B) per seed; rows over seeds; checks from the rows."""
    values: dict[tuple[str, str], list[float]] = {}

    def add(method: str, metric: str, v: float) -> None:
        values.setdefault((method, metric), []).append(float(v))

    curves: dict[int, dict[str, Any]] = {}
    for seed in ctx.seeds:
        _gmm(config, seed, ctx, add, curves)
        if config.digits:
            _digits(config, seed, ctx, add)
    alphas = _floats("alphas", config.alphas)
    for m in (int(v) for v in _floats("ms", config.ms)):
        for n in _n_values(config.n_values, m):
            for a in alphas[1:]:
                hi = values[(f"RSS m={m} alpha={a:g} n={n}", "test_acc")]
                lo = values[(f"RSS m={m} alpha={alphas[0]:g} n={n}", "test_acc")]
                diff = [h - lo_ for h, lo_ in zip(hi, lo, strict=True)]
                add(
                    f"shift effect m={m} n={n}", f"acc(alpha={a:g}) - acc(alpha={alphas[0]:g})", 0.0
                )
                values[
                    (f"shift effect m={m} n={n}", f"acc(alpha={a:g}) - acc(alpha={alphas[0]:g})")
                ] = diff
    rows = [Row.from_values(m, k, v) for (m, k), v in values.items()]
    bayes = 1 - bayes_error(config.mu0_norm, config.sigma)
    rows.append(Row.from_values("Bayes", "test_acc", [bayes] * len(ctx.seeds)))
    return Result(
        rows=rows,
        checks=_checks(config, rows),
        curves={
            f"acc_vs_n_m{m}": Curve.from_seeds(
                f"RSS test accuracy vs unlabeled n (m={m}, {len(ctx.seeds)} seeds)",
                "unlabeled n",
                "test accuracy",
                [float(n) for n in c["x"]],
                c["series"],
            )
            for m, c in curves.items()
        },
        extra={"bayes_acc": bayes},
    )


def _checks(cfg: OodDroConfig, rows: list[Row]) -> list[Check]:
    checks = []
    ms = [int(v) for v in _floats("ms", cfg.ms)]
    alphas = _floats("alphas", cfg.alphas)
    m0 = ms[0]
    erm = find_row(rows, f"ERM m={m0}", "test_acc")
    n_max0 = _n_values(cfg.n_values, m0)[-1]
    for alpha in alphas:
        rss = find_row(rows, f"RSS m={m0} alpha={alpha:g} n={n_max0}", "test_acc")
        checks.append(
            Check(
                f"m={m0}, alpha={alpha:g}: RSS with n={n_max0} >= labeled-only ERM + 0.10",
                rss.mean >= erm.mean + 0.10,
                f"{rss.mean:.3f} vs {erm.mean:.3f} (per seed {[round(v, 3) for v in rss.values]} vs "
                f"{[round(v, 3) for v in erm.values]})",
            )
        )
    for m in ms:
        ns = _n_values(cfg.n_values, m)
        for alpha in alphas:
            lo = find_row(rows, f"RSS m={m} alpha={alpha:g} n={ns[0]}", "test_acc")
            hi = find_row(rows, f"RSS m={m} alpha={alpha:g} n={ns[-1]}", "test_acc")
            checks.append(
                Check(
                    f"m={m}, alpha={alpha:g}: accuracy at n={ns[-1]} >= at n={ns[0]} + 0.03",
                    hi.mean >= lo.mean + 0.03,
                    f"{hi.mean:.3f} vs {lo.mean:.3f}",
                )
            )
    return checks


EXPERIMENT = Experiment(
    name="ood-dro",
    description="RSS on the shifted two-Gaussian mixture (d=200) vs labeled-only ERM; digits analog",
    config_cls=OodDroConfig,
    run=run,
    budgets={
        "smoke": {
            "d": 20,
            "ms": "10",
            "n_values": "10m,200",
            "alphas": "0,0.5",
            "n_val": 200,
            "n_test": 500,
            "ceiling_m": 500,
            "rss_g": "1",
            "rss_gu": "0.2",
            "rss_lam": "2",
            "rss_wd": "0.1",
            "erm_g": "2",
            "erm_wd": "0.1",
            "epochs": 5,
            "restarts": 1,
            "digits_epochs": 4,
            "digits_warmup": 2,
            "digits_noise": "0",
        },
        "quick": {
            "restarts": 3,
            "ceiling_m": 0,
            "rss_g": "1,10",
            "rss_gu": "0.05",
            "rss_lam": "2,20",
            "rss_wd": "0.1",
            "erm_g": "0.5,2,8",
            "erm_wd": "0.1,0.4",
            "digits_epochs": 100,
            "digits_warmup": 50,
        },
        "full": {},
    },
    seeds={"smoke": 1, "quick": 3, "full": 3},
)
