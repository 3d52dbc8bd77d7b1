"""The CLI: list, run, bench, and one-line errors (exit 2, no traceback) for user mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.cli import main
from paperzoo.core.experiments import Row, apply_overrides, parse_set


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paperzoo.core.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_list_shows_the_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out
    assert "core" in out


def test_smoke_run_writes_a_valid_result(tmp_path: Path) -> None:
    assert (
        main(
            [
                "run",
                "baseline",
                "--smoke",
                "--seeds",
                "2",
                "--out",
                str(tmp_path),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    folder = tmp_path / "baseline"
    res = json.loads((folder / "result.json").read_text())
    assert res["experiment"] == "baseline"
    assert res["budget"] == "smoke"
    assert res["seeds"] == [0, 1]
    assert {"method", "metric", "mean", "std", "values"} <= set(res["rows"][0])
    assert len(res["rows"][0]["values"]) == 2
    assert all({"name", "passed", "detail"} <= set(c) for c in res["checks"])
    assert res["environment"]["torch"]
    assert (folder / "result.md").read_text().startswith("# baseline")
    assert (folder / "train_loss.png").stat().st_size > 1000


def test_interrupted_run_resumes_from_its_checkpoints(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    args = ["run", "baseline", "--smoke", "--out", str(tmp_path), "--device", "cpu"]
    assert main([*args, "--set", f"checkpoint_dir={ck}", "--set", "epochs=1"]) == 0
    assert main([*args, "--set", f"checkpoint_dir={ck}", "--set", "resume=true"]) == 0
    res = json.loads((tmp_path / "baseline" / "result.json").read_text())
    assert res["config"]["epochs"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nosuch"], "unknown name 'nosuch'; available: baseline"),
        (
            ["run", "baseline", "--smoke", "--set", "dataset=cifar10"],
            "dataset: unknown name 'cifar10'",
        ),
        (["run", "baseline", "--smoke", "--set", "nosuch=1"], "unknown key 'nosuch'"),
        (["run", "baseline", "--smoke", "--set", "epochs=two"], "expected an int"),
        (["run", "baseline", "--smoke", "--set", "epochs"], "expected key=value"),
        (
            [
                "run",
                "baseline",
                "--smoke",
                "--set",
                "checkpoint_dir=/nonexistent/ck",
                "--set",
                "resume=true",
            ],
            "no file at",
        ),
        (["bench", "nosuch"], "unknown name 'nosuch'"),
        (["run", "baseline", "--device", "tpu"], "device"),
    ],
)
def test_user_mistakes_are_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("paperzoo: error:")
    assert message in err[0]


def test_the_command_exits_non_zero_without_a_traceback() -> None:
    proc = _cli("run", "nosuch")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("paperzoo: error: experiment: unknown name")


def test_overrides_are_typed() -> None:
    @dataclass(frozen=True)
    class Cfg:
        a: int = 1
        b: float = 0.5
        c: bool = False
        d: str = "x"
        e: tuple[int, ...] = (1, 2)
        f: float | None = None

    cfg = apply_overrides(
        Cfg(), [parse_set(s) for s in ["a=3", "b=1e-3", "c=yes", "d=hello", "e=4,5,6", "f=none"]]
    )
    assert cfg == Cfg(a=3, b=1e-3, c=True, d="hello", e=(4, 5, 6), f=None)
    with pytest.raises(UserError, match="expected a bool"):
        apply_overrides(Cfg(), [("c", "maybe")])
    with pytest.raises(UserError, match="finite"):
        apply_overrides(Cfg(), [("b", "nan")])


def test_row_aggregates_values() -> None:
    r = Row.from_values("m", "acc", [0.5, 0.7])
    assert r.mean == pytest.approx(0.6)
    assert r.std == pytest.approx(0.1)
    with pytest.raises(ValueError, match="values"):
        Row.from_values("m", "acc", [])


@pytest.mark.slow
def test_core_benchmark_reports_fit_overhead(tmp_path: Path) -> None:
    assert main(["bench", "core", "--quick", "--device", "cpu", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "core" / "bench.json").read_text())["rows"]
    by = {r["impl"]: r for r in rows}
    assert by["fit"]["ratio"] == 1.0
    assert by["bare loop"]["median_s"] > 0


def test_compare_records_the_thread_count_it_timed_under(tmp_path: Path) -> None:
    from paperzoo.core.bench import compare
    from paperzoo.core.report import write_bench

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = compare(
            "tiny",
            {"a": lambda: None, "b": lambda: None},
            ours="a",
            device=torch.device("cpu"),
            min_run_time=0.01,
            memory=False,
            rounds=2,
        )
    finally:
        torch.set_num_threads(before)
    assert [r.threads for r in rows] == [1, 1]
    folder = write_bench(tmp_path, name="tiny", device="cpu", rows=rows, wall_s=0.1)
    table = (folder / "bench.md").read_text()
    assert "| threads |" in table and table.rstrip().endswith("| 1 |")
