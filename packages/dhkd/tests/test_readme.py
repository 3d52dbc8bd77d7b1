"""The README's usage examples run and print the output the README shows next to them."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_EXAMPLE = re.compile(r"```python\n(.*?)```\n\nprints[^\n]*\n\n```\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _EXAMPLE.finditer(README.read_text("utf-8"))]


def test_the_readme_has_examples_with_their_output() -> None:
    assert len(_examples()) >= 3


@pytest.mark.parametrize("index", range(3))
def test_a_readme_example_prints_what_the_readme_shows(index: int) -> None:
    code, expected = _examples()[index]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README example {index}", "exec"), {"__name__": "__readme__"})
    assert out.getvalue() == expected
