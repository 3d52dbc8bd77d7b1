"""The README's usage example runs as written and prints the output shown under it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest


def test_readme_usage_example_prints_its_shown_output(capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(
        r"```python\n(.*?)```\n\nOutput[^\n]*\n(?:[^\n]+\n)*?\n```\n(.*?)```", text, flags=re.S
    )
    assert blocks, "README has no python example followed by its output"
    code, shown = blocks[0]
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == shown
