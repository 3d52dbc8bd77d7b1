"""Write results: ``result.json`` (schema in DESIGN.md), ``result.md`` and PNG plots; ``bench.json``."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import torch

from paperzoo.core.experiments import Curve, Result

__all__ = ["environment", "plot_curve", "result_markdown", "write_bench", "write_result"]

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
