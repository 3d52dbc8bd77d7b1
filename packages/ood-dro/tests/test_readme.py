"""The README's example runs and prints the output shown under it."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from paperzoo.core.testing import markdown_examples

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_print_what_they_show() -> None:
    examples = markdown_examples(README)
    assert examples, "the README has no python example"
    for code, shown in examples:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(README), "exec"), {"__name__": "__example__"})
        assert shown is None or out.getvalue() == shown
