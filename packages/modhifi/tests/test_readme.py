"""The README's examples run and print what the README shows."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from paperzoo.core.testing import markdown_examples

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = markdown_examples(README)


def test_the_readme_has_examples_with_outputs() -> None:
    assert EXAMPLES and all(shown is not None for _, shown in EXAMPLES)


@pytest.mark.parametrize(("code", "shown"), EXAMPLES)
def test_readme_example_prints_what_is_shown(code: str, shown: str | None) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "__example__"})
    assert out.getvalue() == shown
