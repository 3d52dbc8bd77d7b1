"""Every ```python example in the docs and the READMEs runs and prints the output shown under it,
so the examples cannot rot.

A block whose first line is ``# not run`` is skipped (for fragments that need a GPU or a user file).
An example followed by a paragraph starting "prints" or "Output" and a fenced block must print exactly
that block (``paperzoo.core.testing.markdown_examples``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from paperzoo.core.testing import markdown_examples

ROOT = Path(__file__).resolve().parents[1]


def _sources() -> list[Path]:
    files = [
        ROOT / "README.md",
        ROOT / "shared" / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
    ]
    files += sorted((ROOT / "packages").glob("*/README.md"))
    return [f for f in files if f.exists()]


def _blocks() -> list[tuple[str, str, str | None]]:
    out = []
    for f in _sources():
        for i, (code, shown) in enumerate(markdown_examples(f)):
            out.append((f"{f.relative_to(ROOT)}#{i}", code, shown))
    return out


BLOCKS = _blocks()


def test_there_are_examples_to_run() -> None:
    assert len(BLOCKS) >= 2


def test_examples_with_their_output_are_found() -> None:
    assert sum(shown is not None for _, _, shown in BLOCKS) >= 10


@pytest.mark.parametrize(("where", "code", "shown"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_example_runs_and_prints_what_is_shown(
    where: str,
    code: str,
    shown: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    torch.set_num_threads(2)
    capsys.readouterr()
    exec(compile(code, where, "exec"), {"__name__": "__docs_example__"})
    if shown is not None:
        assert capsys.readouterr().out == shown
