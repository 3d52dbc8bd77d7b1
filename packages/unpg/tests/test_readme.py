"""The README's usage example runs as written and prints the output shown under it."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path


def test_readme_usage_example_prints_the_shown_output() -> None:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```\s*\nprints\s*\n\s*```text\n(.*?)```", text, flags=re.S)
    assert match, "README has no python example followed by its printed output"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(match.group(1), "README.md", "exec"), {})
    assert out.getvalue() == match.group(2)
