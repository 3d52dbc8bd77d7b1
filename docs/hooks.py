"""mkdocs hook: one page per package, generated from its README plus its API reference, and
the results page, generated from the committed ``results/<experiment>/result.json`` files.

Nothing is copied by hand, so a package's page cannot drift from its README or its docstrings, and
no number on the results page is typed.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

from paperzoo.core.report import results_page

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


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


def result_files() -> list[Path]:
    """The committed ``results/<experiment>/result.json`` files, sorted."""
    return sorted(RESULTS.glob("*/result.json")) if RESULTS.is_dir() else []


def result_plots() -> dict[str, Path]:
    """``{site path: file}`` of the committed plots of the result files."""
    return {
        f"results/{png.parent.name}/{png.name}": png
        for res in result_files()
        for png in sorted(res.parent.glob("*.png"))
    }


def _plot_uri(result_json: Path, key: str) -> str | None:
    png = result_json.parent / f"{key}.png"
    return f"results/{result_json.parent.name}/{png.name}" if png.is_file() else None


def on_config(config: Any) -> Any:
    """Add the results page and a "Packages" section listing every generated package page."""
    entries = [{Path(uri).stem: uri} for uri in package_pages()]
    config["nav"] = [*(config["nav"] or []), {"Results": "results.md"}, {"Packages": entries}]
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add the generated package pages, the results page and its committed plots."""
    for uri, text in package_pages().items():
        files.append(File.generated(config, uri, content=text))
    page = results_page(result_files(), image_uri=_plot_uri)
    files.append(File.generated(config, "results.md", content=page))
    for uri, png in result_plots().items():
        files.append(File.generated(config, uri, abs_src_path=str(png)))
    return files
