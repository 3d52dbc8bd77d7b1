"""``paperzoo run --nproc N`` (torchrun, gloo on the CPU): one result written by rank 0, equal to
the one-process run on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch.distributed is not built in"
)


def _run(nproc: int, batch: int, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "paperzoo.core.cli", "run", "baseline", "--smoke"]
    cmd += ["--device", "cpu", "--threads", "1", "--nproc", str(nproc), "--out", str(out)]
    cmd += ["--set", "drop_last=true", "--set", f"batch_size={batch}"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)


@pytest.mark.slow
def test_two_gloo_processes_write_one_result_equal_to_one_process(tmp_path: Path) -> None:
    one = _run(1, 64, tmp_path / "one")
    assert one.returncode == 0, one.stderr[-2000:]
    two = _run(2, 32, tmp_path / "two")  # 2 ranks x 32 = the same global batch of 64
    assert two.returncode == 0, two.stderr[-2000:]
    # rank 0 alone prints the table and writes the folder
    assert two.stdout.count("wrote ") == 1
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["baseline"]
    a = json.loads((tmp_path / "one" / "baseline" / "result.json").read_text())
    b = json.loads((tmp_path / "two" / "baseline" / "result.json").read_text())
    assert [r["values"] for r in a["rows"]] == [r["values"] for r in b["rows"]]
    for key in ("train_loss", "val_top1"):
        ya, yb = a["curves"][key]["series"]["mlp"], b["curves"][key]["series"]["mlp"]
        # same batches, gradients averaged over ranks: equal up to float32 summation order
        assert ya == pytest.approx(yb, rel=1e-5, abs=1e-6), key
