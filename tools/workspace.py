"""Workspace tooling for CI and releases (standard library only).

python tools/workspace.py changed --base origin/main        # JSON list of members to test
python tools/workspace.py changed --files a.py shared/x.py  # same, from explicit paths
python tools/workspace.py tag zloss-v0.1.0                  # check a release tag, print the member folder
python tools/workspace.py verify zloss [--run-tests]        # build one member alone, install its wheel in a
                                                            # clean venv, import it (and run its tests)
python tools/workspace.py bump zloss 0.2.0                  # set a member's version and open a CHANGELOG entry
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: files whose change can affect every member
GLOBAL_FILES = {"pyproject.toml", "uv.lock", "noxfile.py", ".ci/run"}
#: paths whose change never needs a package's tests
DOC_PREFIXES = ("docs/", "README.md", "mkdocs.yml", ".github/ISSUE_TEMPLATE/")


def members(root: Path = ROOT) -> dict[str, Path]:
    """``{short name: folder}``: ``core`` for ``shared/`` and each ``packages/<name>``."""
    out = {"core": root / "shared"}
    for p in sorted((root / "packages").glob("*/pyproject.toml")):
        out[p.parent.name] = p.parent
    return out


def _project(folder: Path) -> dict[str, object]:
    return tomllib.loads((folder / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def dist_name(folder: Path) -> str:
    """The distribution name in a member's pyproject."""
    return str(_project(folder)["name"])


def dependents(root: Path = ROOT) -> dict[str, set[str]]:
    """``{member: members that depend on it, directly or not}``."""
    mem = members(root)
    by_dist = {dist_name(f): n for n, f in mem.items()}
    direct: dict[str, set[str]] = {n: set() for n in mem}
    for n, f in mem.items():
        for req in _project(f).get("dependencies", []):  # type: ignore[attr-defined]
            dep = re.split(r"[\s<>=!~;\[(]", str(req), maxsplit=1)[0]
            if dep in by_dist and by_dist[dep] != n:
                direct[by_dist[dep]].add(n)
    closure: dict[str, set[str]] = {}
    for n in mem:
        seen: set[str] = set()
        stack = [n]
        while stack:
            for d in direct[stack.pop()]:
                if d not in seen:
                    seen.add(d)
                    stack.append(d)
        closure[n] = seen
    return closure


def changed_members(files: list[str], root: Path = ROOT) -> list[str]:
    """The members whose tests a change to ``files`` needs: the touched ones and their dependents.

    A change to the core or to a workspace-wide file (root pyproject, lock, noxfile, CI script)
    tests everything; documentation-only changes test nothing.
    """
    mem = members(root)
    deps = dependents(root)
    hit: set[str] = set()
    for f in files:
        f = f.strip().lstrip("./")
        if not f or f.startswith(DOC_PREFIXES):
            continue
        if f in GLOBAL_FILES:
            return sorted(mem)
        if f.startswith("shared/"):
            return sorted(mem)
        m = re.match(r"packages/([^/]+)/", f)
        if m and m.group(1) in mem:
            hit.add(m.group(1))
            hit |= deps[m.group(1)]
    return sorted(hit)


def git_changed(base: str) -> list[str]:
    """Files changed between ``base`` and the working tree's HEAD (merge-base diff)."""
    out = subprocess.run(
        ["git", "diff", "--name-only", f"{base}...HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


TAG_RE = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9-]*)-v(?P<version>\d+\.\d+\.\d+(?:[.-]?(?:a|b|rc|post|dev)\d*)?)$"
)


def check_tag(tag: str, root: Path = ROOT) -> Path:
    """Parse ``<name>-v<version>``; the member must exist and its pyproject version must equal the tag's.

    Raises:
        ValueError: a malformed tag, an unknown member, or a version mismatch.
    """
    m = TAG_RE.match(tag)
    if not m:
        raise ValueError(f"tag: expected <name>-v<major>.<minor>.<patch>, got {tag!r}")
    mem = members(root)
    name, version = m.group("name"), m.group("version")
    if name not in mem:
        raise ValueError(f"tag: unknown package {name!r}; known: {', '.join(sorted(mem))}")
    have = str(_project(mem[name])["version"])
    if have != version:
        raise ValueError(
            f"tag: {tag!r} says version {version} but {mem[name]}/pyproject.toml says {have}"
        )
    return mem[name]


def bump(name: str, version: str, root: Path = ROOT) -> None:
    """Set ``name``'s pyproject version and add an ``## <version>`` heading to its CHANGELOG."""
    mem = members(root)
    if name not in mem:
        raise ValueError(f"name: unknown package {name!r}; known: {', '.join(sorted(mem))}")
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise ValueError(f"version: expected <major>.<minor>.<patch>, got {version!r}")
    py = mem[name] / "pyproject.toml"
    text = py.read_text()
    new, n = re.subn(r'(?m)^version = "[^"]*"', f'version = "{version}"', text, count=1)
    if n != 1:
        raise ValueError(f"{py}: no version line found")
    py.write_text(new)
    log = mem[name] / "CHANGELOG.md"
    old = log.read_text() if log.exists() else "# Changelog\n"
    head, _, rest = old.partition("\n")
    entry = f"\n## {version} ({_dt.date.today().isoformat()})\n\n- (describe the changes)\n"
    log.write_text(head + "\n" + entry + rest)


def _local_dependencies(folder: Path, mem: dict[str, Path]) -> list[str]:
    """The distribution names of the workspace members ``folder`` depends on, transitively."""
    by_dist = {dist_name(f): f for f in mem.values()}
    out: list[str] = []
    todo = [folder]
    while todo:
        project = tomllib.loads((todo.pop() / "pyproject.toml").read_text())["project"]
        for req in project.get("dependencies", []):
            dep = re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0]
            if dep in by_dist and dep not in out:
                out.append(dep)
                todo.append(by_dist[dep])
    return out


def verify(name: str, run_tests: bool, root: Path = ROOT) -> None:
    """Build one member alone, install its wheel in a clean venv, import it, optionally run its tests."""
    mem = members(root)
    if name not in mem:
        raise ValueError(f"name: unknown package {name!r}; known: {', '.join(sorted(mem))}")
    folder = mem[name]
    work = Path(tempfile.mkdtemp(prefix=f"verify-{name}-"))
    try:
        dist = work / "dist"
        # the core is built too so the wheel can be installed against the local, unreleased core
        subprocess.run(
            [
                "uv",
                "build",
                "--package",
                dist_name(folder),
                "--out-dir",
                str(dist),
                "--no-progress",
            ],
            cwd=root,
            check=True,
        )
        # the workspace members it depends on (the core, a sibling package) are built too, so the
        # wheel installs against the local, unreleased versions
        for dep in _local_dependencies(folder, mem):
            subprocess.run(
                [
                    "uv",
                    "build",
                    "--package",
                    dep,
                    "--wheel",
                    "--out-dir",
                    str(dist),
                    "--no-progress",
                ],
                cwd=root,
                check=True,
            )
        wheel = next(dist.glob(dist_name(folder).replace("-", "_") + "-*.whl"))
        subprocess.run(["uv", "venv", "-q", str(work / "env")], check=True)
        py = str(work / "env" / "bin" / "python")
        extras = "[data,plots,testing]" if name == "core" else ""
        subprocess.run(
            [
                "uv",
                "pip",
                "install",
                "-q",
                "--python",
                py,
                "--find-links",
                str(dist),
                # never a cached wheel of ours with the same file name (a stale paperzoo-core)
                *(f"--refresh-package={d}" for d in _local_dependencies(folder, mem)),
                "--refresh-package",
                dist_name(folder),
                f"{wheel}{extras}",
            ],
            check=True,
        )
        module = "paperzoo.core" if name == "core" else f"paperzoo.{name.replace('-', '_')}"
        subprocess.run([py, "-c", f"import {module}"], check=True)
        if run_tests:
            subprocess.run(
                [
                    "uv",
                    "pip",
                    "install",
                    "-q",
                    "--python",
                    py,
                    "pytest",
                    "pytest-timeout",
                    "hypothesis",
                ],
                check=True,
            )
            # a copy of the package folder without src/: the tests (and the README they may read)
            # run against the installed wheel, never the source tree
            pkg = work / "pkg"
            shutil.copytree(folder, pkg, ignore=shutil.ignore_patterns("src", "__pycache__"))
            subprocess.run(
                [
                    py,
                    "-m",
                    "pytest",
                    str(pkg / "tests"),
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--import-mode=importlib",
                    "-m",
                    "not gpu",
                ],
                cwd=pkg,
                check=True,
            )
        print(f"verified {dist_name(folder)} from {wheel.name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="workspace", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("changed")
    c.add_argument("--base")
    c.add_argument("--files", nargs="*")
    t = sub.add_parser("tag")
    t.add_argument("tag")
    v = sub.add_parser("verify")
    v.add_argument("name")
    v.add_argument("--run-tests", action="store_true")
    b = sub.add_parser("bump")
    b.add_argument("name")
    b.add_argument("version")
    a = p.parse_args(argv)
    try:
        if a.cmd == "changed":
            if (a.base is None) == (a.files is None):
                raise ValueError("changed: give --base REV or --files ...")
            files = a.files if a.files is not None else git_changed(a.base)
            print(json.dumps(changed_members(files)))
        elif a.cmd == "tag":
            print(check_tag(a.tag).relative_to(ROOT))
        elif a.cmd == "verify":
            verify(a.name, a.run_tests)
        else:
            bump(a.name, a.version)
    except ValueError as err:
        print(f"workspace: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
