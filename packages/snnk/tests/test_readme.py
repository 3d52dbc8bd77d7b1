"""The README's examples run and print what the README shows."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from paperzoo.core.testing import markdown_examples

README = Path(__file__).parents[1] / "README.md"
EXAMPLES = markdown_examples(README)


def test_readme_has_examples_with_outputs() -> None:
    assert len(EXAMPLES) >= 3 and all(out is not None for _, out in EXAMPLES)


@pytest.mark.parametrize("i", range(len(EXAMPLES)))
def test_readme_example_prints_what_it_shows(i: int) -> None:
    code, shown = EXAMPLES[i]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "__example__"})
    assert out.getvalue() == shown
