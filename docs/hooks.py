"""mkdocs hook: one page per package, generated from its README plus its API reference.

Nothing is copied by hand, so a package's page cannot drift from its README or its docstrings.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent


def package_pages() -> dict[str, str]:
    """``{docs path: markdown}`` for every package under ``packages/``."""
    pages: dict[str, str] = {}
    for folder in sorted((ROOT / "packages").iterdir()):
        if not (folder / "pyproject.toml").is_file():
            continue
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        module = "paperzoo." + folder.name.replace("-", "_")
        readme = (
            (folder / "README.md").read_text()
            if (folder / "README.md").exists()
            else f"# {project['name']}\n"
        )
        # README-relative links point into the repository, not into the site
        readme = re.sub(
            r"\]\((?!https?://|#)([^)]+)\)",
            r"](https://github.com/paperzoo/paperzoo/tree/main/packages/" + folder.name + r"/\1)",
            readme,
        )
        pages[f"packages/{folder.name}.md"] = f"{readme}\n\n## API reference\n\n::: {module}\n"
    return pages


def on_config(config: Any) -> Any:
    """Add a "Packages" section listing every generated package page to the nav."""
    entries = [{Path(uri).stem: uri} for uri in package_pages()]
    config["nav"] = [*(config["nav"] or []), {"Packages": entries}]
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add the generated package pages."""
    for uri, text in package_pages().items():
        files.append(File.generated(config, uri, content=text))
    return files
