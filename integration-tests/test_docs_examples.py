"""Every ```python example in the docs and the READMEs runs, so the examples cannot rot.

A block whose first line is ``# not run`` is skipped (for fragments that need a GPU or a user file).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _sources() -> list[Path]:
    files = [
        ROOT / "README.md",
        ROOT / "shared" / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
    ]
    files += sorted((ROOT / "packages").glob("*/README.md"))
    return [f for f in files if f.exists()]


def _blocks() -> list[tuple[str, str]]:
    out = []
    for f in _sources():
        for i, m in enumerate(FENCE.finditer(f.read_text())):
            code = m.group(1)
            if code.lstrip().startswith("# not run"):
                continue
            out.append((f"{f.relative_to(ROOT)}#{i}", code))
    return out


BLOCKS = _blocks()


def test_there_are_examples_to_run() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_example_runs(
    where: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    torch.set_num_threads(2)
    exec(compile(code, where, "exec"), {"__name__": "__docs_example__"})
