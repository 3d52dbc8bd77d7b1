"""The generated results page: every number on it equals the result.json it came from."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from paperzoo.core.experiments import Check, Curve, Result, Row
from paperzoo.core.report import results_page, split_metric, write_result

ROOT = Path(__file__).resolve().parents[2]


def _fixture(tmp_path: Path) -> list[Path]:
    a = Result(
        rows=[
            Row.from_values("cross_entropy", "digits/clean/top1", [0.96731, 0.97012, 0.9555]),
            Row.from_values("gce", "digits/clean/top1", [0.9612, 0.9701, 0.95]),
            Row.from_values("gce", "digits/clean/ece", [0.0123456, 0.02, 0.011]),
            Row.from_values("cross_entropy", "digits/uniform40/top1", [0.81, 0.79, 0.8]),
            Row.from_values("gce", "all/mean_rank", [1.5, 2.0]),
            Row.from_values("cross_entropy", "all/mean_rank", [1.5, 1.0]),
        ],
        checks=[
            Check("gce | beats cross-entropy", False, "0.8000 vs 0.8123"),
            Check("ranks sum up", True, "ok"),
        ],
        curves={"ranks": Curve("mean rank", "setting", "rank", [1.0, 2.0], {"gce": [1.5, 2.0]})},
    )
    b = Result(rows=[Row.from_values("mlp", "test_top1", [123456.789, 0.000123456])])
    out = []
    for name, res in (("zeta", a), ("alpha", b)):
        folder = write_result(
            tmp_path,
            experiment=name,
            budget="quick",
            device="cpu",
            seeds=[0, 1, 2],
            wall_s=12.3456,
            config={},
            result=res,
        )
        out.append(folder / "result.json")
    return out


def _parse(page: str) -> dict[str, Any]:
    """Read the page back: per experiment its header numbers, checks and ``(method, metric)`` cells."""
    found: dict[str, Any] = {}
    exp = group = ""
    header: list[str] = []
    in_checks = False
    for line in page.splitlines():
        if line.startswith("## "):
            exp, group = line[3:], ""
            found[exp] = {"cells": {}, "checks": [], "wall": None}
        elif line.startswith("### "):
            group = line[4:].split(": ", 1)[1]
        elif line.startswith("Budget "):
            found[exp]["wall"] = float(re.search(r"wall time ([\d.]+) s", line).group(1))  # type: ignore[union-attr]
            found[exp]["seeds"] = json.loads(re.search(r"seeds (\[[^\]]*\])", line).group(1))  # type: ignore[union-attr]
        elif line.startswith("| check |"):
            in_checks = True
        elif line.startswith("| method |"):
            in_checks = False
            header = [c.strip() for c in line.strip("|").split("|")][1:]
        elif line.startswith("|---"):
            continue
        elif line.startswith("| ") and in_checks:
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            found[exp]["checks"].append(cells)
        elif line.startswith("| "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            for name, cell in zip(header, cells[1:], strict=True):
                if cell:
                    mean, std = (float(v) for v in cell.split(" ± "))
                    metric = f"{group}/{name}" if group else name
                    found[exp]["cells"][(cells[0], metric)] = (mean, std)
        elif not line.strip():
            in_checks = False
    return found


def _assert_page_matches(paths: list[Path], page: str) -> None:
    parsed = _parse(page)
    for path in paths:
        payload = json.loads(path.read_text())
        got = parsed[payload["experiment"]]
        assert got["wall"] == round(payload["wall_s"], 1)
        assert got["seeds"] == payload["seeds"]
        cells = got["cells"]
        assert len(cells) == len(payload["rows"])
        for r in payload["rows"]:
            mean, std = cells[(r["method"], r["metric"])]
            assert mean == float(f"{r['mean']:.4g}"), (r["method"], r["metric"])
            assert std == float(f"{r['std']:.4g}"), (r["method"], r["metric"])
        want = [
            [c["name"], "yes" if c["passed"] else "**no**", c["detail"]] for c in payload["checks"]
        ]
        assert got["checks"] == want


def test_every_number_on_the_page_equals_its_result_json(tmp_path: Path) -> None:
    paths = _fixture(tmp_path)
    page = results_page(paths)
    _assert_page_matches(paths, page)
    assert page.index("## alpha") < page.index("## zeta")
    assert "### zeta: digits/clean" in page and "### zeta: all" in page


def test_plots_are_referenced_only_when_committed(tmp_path: Path) -> None:
    paths = _fixture(tmp_path)
    assert "![" not in results_page(paths)
    page = results_page(paths, image_uri=lambda p, k: f"results/{p.parent.name}/{k}.png")
    assert "![mean rank](results/zeta/ranks.png)" in page


def test_no_results_and_unreadable_files(tmp_path: Path) -> None:
    assert "No result.json is committed yet." in results_page([])
    bad = tmp_path / "result.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="result.json"):
        results_page([bad])


def test_split_metric() -> None:
    assert split_metric("digits/uniform40/top1") == ("digits/uniform40", "top1")
    assert split_metric("test_top1") == ("", "test_top1")


def test_committed_results_render_faithfully() -> None:
    paths = sorted((ROOT / "results").glob("*/result.json"))
    if not paths:
        pytest.skip("no results/<experiment>/result.json committed in this checkout")
    _assert_page_matches(paths, results_page(paths))
