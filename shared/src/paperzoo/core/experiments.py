"""Experiments: typed configs, budgets, results, and the entry-point registry.

A package registers its reproduction under the entry-point group ``paperzoo.experiments``::

    [project.entry-points."paperzoo.experiments"]
    zloss = "paperzoo.zloss.experiment:EXPERIMENT"
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, Literal, TypeVar

import torch

from paperzoo.core.checks import UserError
from paperzoo.core.devices import torch_threads

__all__ = [
    "BUDGETS",
    "Check",
    "Curve",
    "Experiment",
    "Result",
    "Row",
    "RunContext",
    "UserError",
    "apply_overrides",
    "find_row",
    "get_experiment",
    "list_experiments",
    "parse_set",
    "run_experiment",
]

Budget = Literal["smoke", "quick", "full"]
BUDGETS: tuple[str, ...] = ("smoke", "quick", "full")
C = TypeVar("C")


@dataclass(frozen=True)
class Row:
    """One method-vs-metric row of a result: the per-seed values and their mean and std."""

    method: str
    metric: str
    mean: float
    std: float
    values: list[float]

    @classmethod
    def from_values(cls, method: str, metric: str, values: Sequence[float]) -> Row:
        """Aggregate per-seed ``values`` (population std over seeds; 0 for one seed)."""
        vals = [float(v) for v in values]
        if not vals:
            raise ValueError(f"values: expected at least one value for {method}/{metric}")
        std = statistics.pstdev(vals) if len(vals) > 1 else 0.0
        return cls(method, metric, statistics.fmean(vals), std, vals)


@dataclass(frozen=True)
class Check:
    """An effect the spec expects, computed from the rows and reported honestly, passed or not."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Curve:
    """A plot: ``series[label]`` against ``x``; written as ``<key>.png``.

    ``per_seed[label]`` (optional) holds one list of y values per seed for that series; the plot
    then draws the seed mean with markers and shades the band between the lowest and highest seed
    (a reader sees the spread at a glance). :meth:`from_seeds` builds both from per-seed values.
    """

    title: str
    xlabel: str
    ylabel: str
    x: list[float]
    series: dict[str, list[float]]
    per_seed: dict[str, list[list[float]]] = field(default_factory=dict)

    @classmethod
    def from_seeds(
        cls,
        title: str,
        xlabel: str,
        ylabel: str,
        x: Sequence[float],
        per_seed: Mapping[str, Sequence[Sequence[float]]],
    ) -> Curve:
        """A curve whose series are the means over seeds of ``per_seed[label]`` ``(seeds, len(x))``.

        Raises:
            ValueError: a series with no seeds, or seeds of different lengths.
        """
        series: dict[str, list[float]] = {}
        runs: dict[str, list[list[float]]] = {}
        for lab, seeds in per_seed.items():
            rows = [[float(v) for v in r] for r in seeds]
            if not rows or any(len(r) != len(rows[0]) for r in rows):
                raise ValueError(
                    f"per_seed[{lab!r}]: expected one or more seeds of equal length, "
                    f"got lengths {[len(r) for r in rows]}"
                )
            series[lab] = [statistics.fmean(col) for col in zip(*rows, strict=True)]
            runs[lab] = rows
        return cls(title, xlabel, ylabel, [float(v) for v in x], series, runs)


@dataclass
class Result:
    """What an experiment returns: rows, checks, curves and any extra JSON-able details."""

    rows: list[Row]
    checks: list[Check] = field(default_factory=list)
    curves: dict[str, Curve] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Where and how an experiment runs."""

    seeds: list[int]
    device: torch.device
    budget: str
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("paperzoo.experiment"))


@dataclass(frozen=True)
class Experiment(Generic[C]):
    """A registered reproduction.

    Attributes:
        name: the CLI name (``paperzoo run NAME``).
        description: one line.
        config_cls: a dataclass of typed fields (int, float, bool, str, or tuples of them).
        run: ``run(config, ctx) -> Result``.
        budgets: config overrides per budget (``smoke`` seconds, ``quick`` minutes on 2 CPU cores,
            ``full`` the paper-sized run).
        seeds: default number of seeds per budget.
    """

    name: str
    description: str
    config_cls: type[C]
    run: Callable[[C, RunContext], Result]
    budgets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seeds: Mapping[str, int] = field(default_factory=lambda: {"smoke": 1, "quick": 3, "full": 5})

    def make_config(self, budget: str, sets: Sequence[str] = ()) -> C:
        """The config for ``budget`` with ``--set key=value`` overrides applied (type-checked)."""
        if budget not in BUDGETS:
            raise UserError(f"budget: expected one of {BUDGETS}, got {budget!r}")
        try:
            cfg = self.config_cls(**dict(self.budgets.get(budget, {})))
        except (TypeError, ValueError) as err:  # a budget that its own config rejects: a bug
            raise RuntimeError(f"{self.name}: the {budget!r} budget is invalid: {err}") from err
        return apply_overrides(cfg, [parse_set(s) for s in sets])


def parse_set(text: str) -> tuple[str, str]:
    """Split ``key=value``; raises :class:`UserError` without an ``=``."""
    if "=" not in text:
        raise UserError(f"--set: expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _convert(name: str, raw: str, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if raw.lower() in ("none", "null"):
            return None
        return _convert(name, raw, args[0])
    if origin is Literal:
        allowed = typing.get_args(tp)
        if raw not in allowed:
            raise UserError(f"--set {name}: expected one of {allowed}, got {raw!r}")
        return raw
    if origin is tuple:
        inner = typing.get_args(tp)
        parts = [p for p in raw.strip("()[]").split(",") if p.strip()]
        elem = inner[0] if inner else str
        return tuple(_convert(name, p.strip(), elem) for p in parts)
    if tp is bool:
        low = raw.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise UserError(f"--set {name}: expected a bool (true/false), got {raw!r}")
    if tp is int:
        try:
            return int(raw)
        except ValueError:
            raise UserError(f"--set {name}: expected an int, got {raw!r}") from None
    if tp is float:
        try:
            v = float(raw)
        except ValueError:
            raise UserError(f"--set {name}: expected a float, got {raw!r}") from None
        if not math.isfinite(v):
            raise UserError(f"--set {name}: expected a finite float, got {raw!r}")
        return v
    if tp is str:
        return raw
    raise UserError(f"--set {name}: the field's type {tp!r} cannot be set from the command line")


def apply_overrides(config: C, sets: Sequence[tuple[str, str]]) -> C:
    """Return a copy of the dataclass ``config`` with ``(key, text)`` overrides converted to each field's type.

    Raises:
        UserError: an unknown key (listing the known ones) or a value of the wrong type.
    """
    if not sets:
        return config
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, raw in sets:
        if key not in names:
            raise UserError(f"--set: unknown key {key!r}; known: {', '.join(names)}")
        changes[key] = _convert(key, raw, hints[key])
    try:
        # the dataclass's __post_init__ checks the values (with paperzoo.core.checks)
        return dataclasses.replace(config, **changes)  # type: ignore[type-var]
    except UserError:
        raise
    except (TypeError, ValueError) as err:
        keys = ", ".join(f"{k}={v}" for k, v in sets)
        raise UserError(f"--set {keys}: {err}") from None


def run_experiment(experiment: Experiment[C], config: C, ctx: RunContext) -> Result:
    """Run ``experiment`` with ``config``; the run owns the torch thread count.

    A config with a ``threads`` field (``int | None``) runs under
    :func:`paperzoo.core.devices.torch_threads` and the previous count is restored afterwards,
    whatever happens; experiments never call ``torch.set_num_threads`` themselves.
    """
    threads = getattr(config, "threads", None)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise UserError(f"threads: expected an integer >= 1, got {threads!r}")
    if threads is not None and threads < 1:
        raise UserError(f"threads: expected an integer >= 1, got {threads!r}")
    with torch_threads(threads):
        return experiment.run(config, ctx)


def find_row(rows: Sequence[Row], method: str, metric: str) -> Row:
    """The row for ``(method, metric)``; ``KeyError`` naming what exists otherwise."""
    for r in rows:
        if r.method == method and r.metric == metric:
            return r
    have = sorted({(r.method, r.metric) for r in rows})
    raise KeyError(f"no row for method={method!r}, metric={metric!r}; rows: {have}")


def _group(name: str) -> list[Any]:
    return list(entry_points(group=name))


def list_experiments() -> dict[str, str]:
    """``{name: 'module:attr'}`` of every installed experiment."""
    return {ep.name: ep.value for ep in _group("paperzoo.experiments")}


def get_experiment(name: str) -> Experiment[Any]:
    """Load a registered experiment; :class:`UserError` listing the known names otherwise."""
    eps = {ep.name: ep for ep in _group("paperzoo.experiments")}
    if name not in eps:
        raise UserError(
            f"experiment: unknown name {name!r}; available: {', '.join(sorted(eps)) or 'none'}"
        )
    obj = eps[name].load()
    if not isinstance(obj, Experiment):
        raise TypeError(f"entry point {name!r} ({eps[name].value}) is not an Experiment")
    return obj
