"""The reproduction (``paperzoo run zloss``): quality on MNIST-5000 and speed at 100,000 classes.

This module only orchestrates three reproductions, each in its own module with its own config:

* A (:mod:`paperzoo.zloss.repro_a`, :class:`~paperzoo.zloss.repro_a.QualityConfig`): the losses'
  test top-1 on MNIST-5000 with an MLP, every loss selected the same way on validation only;
* A2 (:mod:`paperzoo.zloss.repro_many`, :class:`~paperzoo.zloss.repro_many.ManyClassConfig`): the
  spherical losses at 10,000 Zipf-labelled classes on the factored head, equal steps;
* B (:mod:`paperzoo.zloss.repro_b`, :class:`~paperzoo.zloss.repro_b.SpeedConfig`): dense and
  factored heads at 100,000 classes for equal wall-clock.

The command line sets the flat :class:`ZLossConfig` (``--set key=value`` reaches top-level fields
only): A's keys keep their names (``epochs``, ``a_grid``, ``spherical_eps_grid``, ...), A2's carry
the prefix ``many_`` (``many_steps`` is A2's ``steps``), B's are unprefixed (``num_classes``,
``seconds``, ...), and ``dim`` and ``zipf_exponent`` are shared by A2 and B. :meth:`ZLossConfig.quality`,
:meth:`~ZLossConfig.many` and :meth:`~ZLossConfig.speed` give each reproduction its own config; a
bad value is reported under its command-line key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext
from paperzoo.zloss.repro_a import QualityConfig, run_quality
from paperzoo.zloss.repro_b import SpeedConfig, run_speed
from paperzoo.zloss.repro_many import ManyClassConfig, run_many

__all__ = ["EXPERIMENT", "ZLossConfig", "run"]

_P = TypeVar("_P")

#: Command-line key -> field of each reproduction's config.
_QUALITY_KEYS: Mapping[str, str] = {
    "dataset": "dataset",
    "hidden": "hidden",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "lr_grid": "lr_grid",
    "a_grid": "a_grid",
    "b_grid": "b_grid",
    "spherical_eps_grid": "eps_grid",
    "extra_val_seeds": "extra_val_seeds",
}
_MANY_KEYS: Mapping[str, str] = {
    "many_classes": "num_classes",
    "dim": "dim",
    "zipf_exponent": "zipf_exponent",
    "many_train_size": "train_size",
    "many_val_size": "val_size",
    "many_test_size": "test_size",
    "many_steps": "steps",
    "many_batch": "batch",
    "many_lr": "lr",
    "many_lr_grid": "lr_grid",
    "many_a_grid": "a_grid",
    "many_b_grid": "b_grid",
    "many_eps_grid": "eps_grid",
}
_SPEED_KEYS: Mapping[str, str] = {
    k: k
    for k in (
        "num_classes",
        "dim",
        "zipf_exponent",
        "train_size",
        "test_size",
        "batch",
        "seconds",
        "eval_points",
        "ce_lr",
        "z_lr",
        "z_a",
        "z_b",
        "data_root",
        "context",
    )
}


@dataclass(frozen=True)
class ZLossConfig:
    """Config of the ``zloss`` reproduction: which parts run, and each part's command-line keys.

    Every default is read from its part's config (:class:`QualityConfig`, :class:`ManyClassConfig`,
    :class:`SpeedConfig`), the one place it is written; see the module docstring for how the keys
    map onto them.
    """

    run_quality: bool = True
    run_speed: bool = True
    threads: int | None = 1  # scoped by the run (paperzoo.core.experiments.run_experiment)
    # A: quality at small D (QualityConfig)
    dataset: str = QualityConfig.dataset
    hidden: int = QualityConfig.hidden
    epochs: int = QualityConfig.epochs
    batch_size: int = QualityConfig.batch_size
    lr: float = QualityConfig.lr
    lr_grid: tuple[float, ...] = QualityConfig.lr_grid
    a_grid: tuple[float, ...] = QualityConfig.a_grid
    b_grid: tuple[float, ...] = QualityConfig.b_grid
    spherical_eps_grid: tuple[float, ...] = QualityConfig.eps_grid
    extra_val_seeds: int = QualityConfig.extra_val_seeds
    # A2: the spherical losses at many classes (ManyClassConfig; dim and zipf_exponent shared)
    run_many: bool = True
    many_classes: int = ManyClassConfig.num_classes
    many_train_size: int = ManyClassConfig.train_size
    many_val_size: int = ManyClassConfig.val_size
    many_test_size: int = ManyClassConfig.test_size
    many_steps: int = ManyClassConfig.steps
    many_batch: int = ManyClassConfig.batch
    many_lr: float = ManyClassConfig.lr
    many_lr_grid: tuple[float, ...] = ManyClassConfig.lr_grid
    many_a_grid: tuple[float, ...] = ManyClassConfig.a_grid
    many_b_grid: tuple[float, ...] = ManyClassConfig.b_grid
    many_eps_grid: tuple[float, ...] = ManyClassConfig.eps_grid
    # B: speed at large D (SpeedConfig)
    num_classes: int = SpeedConfig.num_classes
    dim: int = SpeedConfig.dim
    zipf_exponent: float = SpeedConfig.zipf_exponent
    train_size: int = SpeedConfig.train_size
    test_size: int = SpeedConfig.test_size
    batch: int = SpeedConfig.batch
    seconds: float = SpeedConfig.seconds
    eval_points: int = SpeedConfig.eval_points
    ce_lr: float = SpeedConfig.ce_lr
    z_lr: float = SpeedConfig.z_lr
    z_a: float = SpeedConfig.z_a
    z_b: float = SpeedConfig.z_b
    data_root: str = SpeedConfig.data_root  # a word-level corpus for B (next-word prediction)
    context: int = SpeedConfig.context

    def __post_init__(self) -> None:
        self.quality()
        self.many()
        self.speed()

    def _part(self, cls: type[_P], keys: Mapping[str, str]) -> _P:
        """``cls`` from the fields named by ``keys``; an error names the command-line key."""
        try:
            return cls(**{field: getattr(self, key) for key, field in keys.items()})
        except (TypeError, ValueError) as err:
            name, sep, rest = str(err).partition(": ")
            flat = {field: key for key, field in keys.items()}
            if sep and name in flat:
                raise type(err)(f"{flat[name]}: {rest}") from None
            raise

    def quality(self) -> QualityConfig:
        """Reproduction A's config."""
        return self._part(QualityConfig, _QUALITY_KEYS)

    def many(self) -> ManyClassConfig:
        """Reproduction A2's config."""
        return self._part(ManyClassConfig, _MANY_KEYS)

    def speed(self) -> SpeedConfig:
        """Reproduction B's config."""
        return self._part(SpeedConfig, _SPEED_KEYS)


def run(config: ZLossConfig, ctx: RunContext) -> Result:
    """Run A, A2 and/or B on every seed; checks are computed from the rows, passed or not."""
    rows: list[Row] = []
    checks: list[Check] = []
    curves: dict[str, Curve] = {}
    extra: dict[str, Any] = {}
    if config.run_quality:
        r, c, e = run_quality(config.quality(), ctx)
        rows += r
        checks += c
        extra.update(e)
    if config.run_many:
        r, c, e = run_many(config.many(), ctx)
        rows += r
        checks += c
        extra.update(e)
    if config.run_speed:
        r, c, cu, e = run_speed(config.speed(), ctx)
        rows += r
        checks += c
        curves.update(cu)
        extra.update(e)
    return Result(rows=rows, checks=checks, curves=curves, extra=extra)


EXPERIMENT = Experiment(
    name="zloss",
    description="Z-loss vs cross-entropy and the spherical family (MNIST-5000, and 10k Zipf "
    "classes on the factored head); "
    "factored O(d^2) head vs dense at 100k classes, equal wall-clock",
    config_cls=ZLossConfig,
    run=run,
    budgets={
        "smoke": {
            "epochs": 1,
            "lr_grid": (1e-3,),
            "a_grid": (1.0,),
            "b_grid": (0.0,),
            "spherical_eps_grid": (0.01,),
            "num_classes": 2000,
            "train_size": 4000,
            "test_size": 200,
            "seconds": 1.0,
            "eval_points": 1,
            "many_classes": 500,
            "many_train_size": 2000,
            "many_val_size": 200,
            "many_test_size": 200,
            "many_steps": 3,
            "many_lr_grid": (1.0,),
            "many_a_grid": (1.0,),
            "many_b_grid": (0.0,),
            "many_eps_grid": (0.01,),
        },
        "quick": {"epochs": 20, "seconds": 10.0, "eval_points": 3, "extra_val_seeds": 5},
        "full": {"epochs": 20, "seconds": 60.0, "eval_points": 6, "extra_val_seeds": 7},
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
