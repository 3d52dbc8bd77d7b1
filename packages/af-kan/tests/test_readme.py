"""The README's usage example runs as written and prints the output shown under it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_usage_example_prints_its_shown_output(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```\n\nOutput.*?\n\n```\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no python example followed by its output"
    code, shown = blocks[0]
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out == shown
