"""Write results: ``result.json`` (schema in DESIGN.md), ``result.md`` and PNG plots; ``bench.json``."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import torch

from paperzoo.core.experiments import Curve, Result

__all__ = [
    "environment",
    "plot_curve",
    "result_markdown",
    "results_page",
    "split_metric",
    "write_bench",
    "write_result",
]

log = logging.getLogger(__name__)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: torch.device | str) -> dict[str, Any]:
    """Versions of the paperzoo packages and torch, the device, threads, machine and git commit."""
    pkgs = {
        d.metadata["Name"]: d.version
        for d in distributions()
        if (d.metadata["Name"] or "").startswith("paperzoo")
    }
    return {
        "paperzoo": dict(sorted(pkgs.items())),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
    }


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def result_markdown(payload: Mapping[str, Any]) -> str:
    """The Markdown table of a result payload (rows, then checks)."""
    lines = [
        f"# {payload['experiment']} ({payload['budget']}, seeds {payload['seeds']}, "
        f"{payload['device']}, {payload['wall_s']:.1f} s)",
        "",
        "| method | metric | mean | std | values |",
        "|---|---|---|---|---|",
    ]
    for r in payload["rows"]:
        vals = ", ".join(_fmt(v) for v in r["values"])
        lines.append(
            f"| {r['method']} | {r['metric']} | {_fmt(r['mean'])} | {_fmt(r['std'])} | {vals} |"
        )
    if payload["checks"]:
        lines += ["", "| check | passed | detail |", "|---|---|---|"]
        for c in payload["checks"]:
            lines.append(f"| {c['name']} | {'yes' if c['passed'] else 'NO'} | {c['detail']} |")
    return "\n".join(lines) + "\n"


def plot_curve(curve: Curve, path: Path) -> bool:
    """Draw one curve to ``path`` (PNG); False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'paperzoo-core[plots]'): no plot")
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for label, ys in curve.series.items():
        xs = curve.x[: len(ys)]
        (line,) = ax.plot(xs, ys, marker="o", markersize=3.5, label=label)
        runs = curve.per_seed.get(label)
        if runs and len(runs) > 1:
            lo = [min(col) for col in zip(*runs, strict=True)][: len(ys)]
            hi = [max(col) for col in zip(*runs, strict=True)][: len(ys)]
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    seeds = max((len(r) for r in curve.per_seed.values()), default=0)
    title = curve.title if seeds < 2 else f"{curve.title}\n(mean of {seeds} seeds; band: min-max)"
    ax.set_title("\n".join(textwrap.fill(t, width=64) for t in title.split("\n")), fontsize=10)
    ax.set_xlabel(curve.xlabel)
    ax.set_ylabel(curve.ylabel)
    if curve.series:
        ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, float | int | str | bool) or obj is None:
        return obj
    return str(obj)


def write_result(
    out_dir: str | os.PathLike[str],
    *,
    experiment: str,
    budget: str,
    device: torch.device | str,
    seeds: Sequence[int],
    wall_s: float,
    config: Any,
    result: Result,
) -> Path:
    """Write ``out_dir/experiment/{result.json,result.md,<curve>.png}``; returns that folder."""
    folder = Path(out_dir) / experiment
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "experiment": experiment,
        "budget": budget,
        "device": str(device),
        "seeds": list(seeds),
        "wall_s": round(float(wall_s), 3),
        "config": _jsonable(config),
        "rows": [_jsonable(r) for r in result.rows],
        "checks": [_jsonable(c) for c in result.checks],
        "curves": {k: _jsonable(c) for k, c in result.curves.items()},
        "extra": _jsonable(result.extra),
        "environment": environment(device),
    }
    (folder / "result.json").write_text(json.dumps(payload, indent=2) + "\n")
    (folder / "result.md").write_text(result_markdown(payload))
    for key, curve in result.curves.items():
        plot_curve(curve, folder / f"{key}.png")
    return folder


def write_bench(
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    device: torch.device | str,
    rows: Sequence[Any],
    wall_s: float,
) -> Path:
    """Write ``out_dir/name/bench.json`` and ``bench.md``; returns that folder."""
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    env = environment(device)
    data = [_jsonable(r) for r in rows]
    payload = {
        "benchmark": name,
        "device": str(device),
        "wall_s": round(wall_s, 3),
        "rows": data,
        "environment": env,
    }
    (folder / "bench.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        f"# bench {name} ({device}, process default {env['threads']} threads, {env['platform']})",
        "",
        "| case | impl | median ms | peak MiB | ratio (impl / ours) | threads |",
        "|---|---|---|---|---|---|",
    ]
    for r in data:
        peak = "" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.2f}"
        lines.append(
            f"| {r['case']} | {r['impl']} | {r['median_s'] * 1e3:.3f} | {peak} | {r['ratio']:.2f} "
            f"| {r.get('threads', -1)} |"
        )
    (folder / "bench.md").write_text("\n".join(lines) + "\n")
    return folder


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def split_metric(metric: str) -> tuple[str, str]:
    """``"digits/uniform40/top1"`` -> ``("digits/uniform40", "top1")``; no ``/``: ``("", metric)``."""
    group, _, name = metric.rpartition("/")
    return group, name


def _pivot(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One Markdown table: a line per method, a column per metric, cells ``mean ± std``."""
    methods: list[str] = []
    metrics: list[str] = []
    cells: dict[tuple[str, str], str] = {}
    for r in rows:
        _, name = split_metric(r["metric"])
        if r["method"] not in methods:
            methods.append(r["method"])
        if name not in metrics:
            metrics.append(name)
        cells[(r["method"], name)] = f"{_fmt(r['mean'])} ± {_fmt(r['std'])}"
    lines = [
        "| method | " + " | ".join(_cell(m) for m in metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for m in methods:
        vals = [cells.get((m, k), "") for k in metrics]
        lines.append(f"| {_cell(m)} | " + " | ".join(vals) + " |")
    return lines


def results_page(
    paths: Sequence[str | os.PathLike[str]],
    *,
    image_uri: Callable[[Path, str], str | None] | None = None,
) -> str:
    """A Markdown page of the result.json files at ``paths`` (the docs' generated results page).

    Per experiment (sorted by name): its budget, seeds, device and wall time; its checks as they
    came out (passed or not, with their detail); its rows as tables, one per metric group (a
    metric ``"<group>/<name>"`` is column ``name`` of the table ``group``; ``mean ± std`` over
    seeds, four significant digits); and each curve's plot where ``image_uri(result_json, key)``
    gives a link (``None``: the plot is not committed, so not referenced). Every number on the
    page is formatted from the file; nothing is typed by hand.
    """
    payloads = []
    for p in paths:
        path = Path(p)
        try:
            payloads.append((path, json.loads(path.read_text())))
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: expected a readable result.json, got {err}") from None
    lines = [
        "# Results",
        "",
        "Generated from the committed `results/<experiment>/result.json` files by "
        "`paperzoo.core.report.results_page`; cells are `mean ± std` over seeds.",
        "",
    ]
    if not payloads:
        lines.append("No result.json is committed yet.")
    for path, pl in sorted(payloads, key=lambda t: str(t[1]["experiment"])):
        lines += [
            f"## {pl['experiment']}",
            "",
            f"Budget `{pl['budget']}`, seeds {pl['seeds']}, device `{pl['device']}`, "
            f"wall time {pl['wall_s']:.1f} s.",
            "",
        ]
        if pl.get("checks"):
            lines += ["| check | passed | detail |", "|---|---|---|"]
            for c in pl["checks"]:
                passed = "yes" if c["passed"] else "**no**"
                lines.append(f"| {_cell(c['name'])} | {passed} | {_cell(c['detail'])} |")
            lines.append("")
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for r in pl["rows"]:
            groups.setdefault(split_metric(r["metric"])[0], []).append(r)
        for group, rows in groups.items():
            if group:
                lines += [f"### {pl['experiment']}: {group}", ""]
            lines += [*_pivot(rows), ""]
        for key, curve in pl.get("curves", {}).items():
            uri = image_uri(path, key) if image_uri is not None else None
            if uri is not None:
                lines += [f"![{_cell(curve.get('title', key))}]({uri})", ""]
    return "\n".join(lines).rstrip() + "\n"
