"""The README's leaderboard table against a hand-made payload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paperzoo.losses.leaderboard import leaderboard_table, main

PAYLOAD = {
    "rows": [
        {"method": "cross_entropy", "metric": "d/clean/top1", "mean": 0.9},
        {"method": "gce", "metric": "d/clean/top1", "mean": 0.95},
        {"method": "cross_entropy", "metric": "b/imbalance10/gmean", "mean": 0.5},
        {"method": "gce", "metric": "b/imbalance10/gmean", "mean": 0.4},
        {"method": "hinge", "metric": "b/imbalance10/gmean", "mean": 0.7},
    ],
    "extra": {
        "mean_rank": {"gce": 1.5, "cross_entropy": 1.5, "hinge": 1.0},
        "headline_metric": {"d/clean": "top1", "b/imbalance10": "gmean"},
        "paired_vs_cross_entropy": {
            "d/clean": {"gce": {"p_t": 0.01}},
            "b/imbalance10": {"gce": {"p_t": 0.2}, "hinge": {"p_t": float("nan")}},
        },
    },
}


def test_leaderboard_orders_by_rank_and_marks_significance() -> None:
    lines = leaderboard_table(PAYLOAD).splitlines()
    assert lines[0] == "| loss | mean rank | d/clean (top-1) | b/imbalance10 (G) |"
    assert lines[2] == "| hinge | 1.00 | - | 0.700 |"
    assert lines[3] == "| cross_entropy | 1.50 | 0.900 | 0.500 |"
    assert lines[4] == "| gce | 1.50 | 0.950* | 0.400 |"


def test_main_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "result.json"
    f.write_text(json.dumps(PAYLOAD))
    assert main([str(f)]) == 0
    assert "| hinge | 1.00 |" in capsys.readouterr().out
    assert main([]) == 2
