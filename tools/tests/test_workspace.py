"""The changed-package and release-tag logic of tools/workspace.py, on a synthetic workspace."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("workspace_tool", ROOT / "tools" / "workspace.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["workspace_tool"] = mod
    spec.loader.exec_module(mod)
    return mod


ws = _load()


def _member(root: Path, folder: str, name: str, deps: list[str], version: str = "0.1.0") -> None:
    d = root / folder
    d.mkdir(parents=True)
    dep_list = ", ".join(f'"{x}"' for x in deps)
    (d / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{dep_list}]\n'
    )
    (d / "CHANGELOG.md").write_text("# Changelog\n\n## 0.1.0\n\n- first\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    _member(tmp_path, "shared", "paperzoo-core", ["torch>=2"])
    _member(tmp_path, "packages/ldr", "paperzoo-ldr", ["paperzoo-core>=0.1,<0.2"])
    _member(
        tmp_path, "packages/compsum", "paperzoo-compsum", ["paperzoo-core", "paperzoo-ldr>=0.1"]
    )
    _member(tmp_path, "packages/zloss", "paperzoo-zloss", ["paperzoo-core[data]>=0.1"])
    _member(tmp_path, "packages/top", "paperzoo-top", ["paperzoo-compsum ; python_version>'3'"])
    return tmp_path


def test_a_package_change_tests_it_and_its_dependents(tree: Path) -> None:
    assert ws.changed_members(["packages/ldr/src/x.py"], tree) == ["compsum", "ldr", "top"]
    assert ws.changed_members(["packages/zloss/README.md"], tree) == ["zloss"]
    assert ws.changed_members(["packages/top/tests/t.py"], tree) == ["top"]


def test_a_core_or_workspace_change_tests_everything(tree: Path) -> None:
    everything = ["compsum", "core", "ldr", "top", "zloss"]
    assert ws.changed_members(["shared/src/paperzoo/core/data.py"], tree) == everything
    assert ws.changed_members(["uv.lock"], tree) == everything
    assert ws.changed_members(["./noxfile.py"], tree) == everything


def test_documentation_only_changes_test_nothing(tree: Path) -> None:
    assert ws.changed_members(["docs/index.md", "README.md", "mkdocs.yml"], tree) == []


def test_release_tag_must_match_the_pyproject_version(tree: Path) -> None:
    assert ws.check_tag("ldr-v0.1.0", tree) == tree / "packages" / "ldr"
    assert ws.check_tag("core-v0.1.0", tree) == tree / "shared"
    with pytest.raises(ValueError, match="says version 0.2.0"):
        ws.check_tag("ldr-v0.2.0", tree)
    with pytest.raises(ValueError, match="unknown package 'nope'"):
        ws.check_tag("nope-v0.1.0", tree)
    with pytest.raises(ValueError, match="expected <name>-v"):
        ws.check_tag("ldr-0.1.0", tree)


def test_bump_sets_the_version_and_opens_a_changelog_entry(tree: Path) -> None:
    ws.bump("zloss", "0.2.0", tree)
    assert 'version = "0.2.0"' in (tree / "packages/zloss/pyproject.toml").read_text()
    log = (tree / "packages/zloss/CHANGELOG.md").read_text()
    assert log.index("## 0.2.0") < log.index("## 0.1.0")
    assert ws.check_tag("zloss-v0.2.0", tree)
    with pytest.raises(ValueError, match="version"):
        ws.bump("zloss", "two", tree)


def test_the_real_workspace_maps_every_member() -> None:
    mem = ws.members()
    assert "core" in mem
    assert ws.changed_members(["shared/README.md"]) == sorted(mem)
    for name, folder in mem.items():
        assert ws.check_tag(f"{name}-v{ws._project(folder)['version']}") == folder
