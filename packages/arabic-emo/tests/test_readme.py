"""The README's examples run and print what the README shows."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from paperzoo.core.testing import markdown_examples

EXAMPLES = markdown_examples(Path(__file__).parents[1] / "README.md")


def test_readme_has_examples_with_output() -> None:
    assert len(EXAMPLES) >= 2 and all(shown is not None for _, shown in EXAMPLES)


@pytest.mark.parametrize(("code", "shown"), EXAMPLES)
def test_readme_example_prints_what_is_shown(code: str, shown: str | None) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "__example__"})
    assert out.getvalue() == shown
