"""The leaderboard table of a ``losses`` result.json: one line per loss, best mean rank first.

``python -m paperzoo.losses.leaderboard RESULT_JSON`` prints it (the README's table is made so).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["leaderboard_table", "main"]


def leaderboard_table(payload: Mapping[str, Any]) -> str:
    """Markdown: loss, mean rank over settings, then each setting's headline metric (mean over seeds).

    The headline metric of a setting is test top-1, or test G-mean in imbalanced settings (marked
    ``G``); ``*`` marks a paired t-test against cross-entropy with p < 0.05 on that metric. A
    loss that does not apply to a setting (binary-only losses on multi-class data) shows ``-``.

    Raises:
        KeyError: a payload that is not a ``losses`` result (no ``extra.mean_rank``).
    """
    extra = payload["extra"]
    mean_rank: Mapping[str, float] = extra["mean_rank"]
    heads: Mapping[str, str] = extra["headline_metric"]
    paired: Mapping[str, Mapping[str, Mapping[str, Any]]] = extra["paired_vs_cross_entropy"]
    means = {(r["method"], r["metric"]): r["mean"] for r in payload["rows"]}
    settings = list(heads)
    cols = [f"{s} ({'G' if heads[s] == 'gmean' else 'top-1'})" for s in settings]
    lines = [
        "| loss | mean rank | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(settings),
    ]
    for loss in sorted(mean_rank, key=lambda k: (mean_rank[k], k)):
        cells = []
        for s in settings:
            v = means.get((loss, f"{s}/{heads[s]}"))
            if v is None:
                cells.append("-")
                continue
            p = paired.get(s, {}).get(loss, {}).get("p_t")
            star = "*" if isinstance(p, float) and p == p and p < 0.05 else ""
            cells.append(f"{v:.3f}{star}")
        lines.append(f"| {loss} | {mean_rank[loss]:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the leaderboard of the result.json given as the one argument."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m paperzoo.losses.leaderboard RESULT_JSON\n")
        return 2
    sys.stdout.write(leaderboard_table(json.loads(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
