"""Every check of the workspace, as nox sessions (``uv run nox`` runs the default set).

Each session installs from the committed ``uv.lock`` (``uv sync --frozen``) into its own environment;
``tests(package=...)`` installs only that member and its declared dependencies, so a member that
imports something undeclared fails there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
nox.options.default_venv_backend = "uv"
nox.options.sessions = [
    "lint",
    "typecheck",
    "tooling",
    "tests",
    "integration",
    "repro_smoke",
    "build",
    "docs",
]
nox.options.error_on_missing_interpreters = False


def _members() -> dict[str, Path]:
    """``{short name: folder}`` for the core and every package (``core`` is ``shared/``)."""
    out = {"core": ROOT / "shared"}
    for p in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        out[p.parent.name] = p.parent
    return out


MEMBERS = _members()


def _dist(folder: Path) -> str:
    return str(tomllib.loads((folder / "pyproject.toml").read_text())["project"]["name"])


def _version(folder: Path) -> str:
    return str(tomllib.loads((folder / "pyproject.toml").read_text())["project"]["version"])


def _groups(folder: Path) -> set[str]:
    return set(tomllib.loads((folder / "pyproject.toml").read_text()).get("dependency-groups", {}))


def _sync(session: nox.Session, *args: str) -> None:
    """``uv sync --frozen`` into this session's environment."""
    env = {"UV_PROJECT_ENVIRONMENT": str(session.virtualenv.location)}
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--no-progress",
        "--no-default-groups",
        *args,
        env=env,
        external=True,
    )


def _src_roots() -> list[str]:
    return [str(f / "src") for f in MEMBERS.values()]


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run(
        "actionlint", "-color", *map(str, sorted((ROOT / ".github" / "workflows").glob("*.yml")))
    )


@nox.session
def tooling(session: nox.Session) -> None:
    """Unit tests of tools/ (changed-package selection, release tags, version bumps)."""
    _sync(session, "--group", "test")
    session.run("pytest", "tools/tests", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every src tree (the PEP 420 namespace ``paperzoo``)."""
    _sync(session, "--all-packages", "--all-extras", "--group", "lint", "--group", "test")
    env = {"MYPYPATH": os.pathsep.join(_src_roots())}
    targets = [str(Path(r) / "paperzoo") for r in _src_roots()]
    session.run("mypy", "--strict", "--explicit-package-bases", *targets, env=env)


@nox.session
@nox.parametrize("package", list(MEMBERS))
def tests(session: nox.Session, package: str) -> None:
    """One member's tests (slow ones included, gpu ones skipped without CUDA), installed alone."""
    folder = MEMBERS[package]
    args = ["--package", _dist(folder), "--group", "test"]
    if package == "core":
        args += ["--extra", "data", "--extra", "plots", "--extra", "testing", "--extra", "vision"]
    if "peers" in _groups(folder):
        args += ["--group", "peers"]
    _sync(session, *args)
    session.run("pytest", str(folder / "tests"), "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """integration-tests/ with every package installed."""
    _sync(session, "--all-packages", "--all-extras", "--group", "test")
    session.run("pytest", "integration-tests", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def repro_smoke(session: nox.Session) -> None:
    """Every registered experiment end to end at its smoke budget."""
    _sync(session, "--all-packages", "--all-extras")
    out = tempfile.mkdtemp(prefix="paperzoo-smoke-")
    session.run(
        "paperzoo", "run", "--all", "--smoke", "--device", "cpu", "--out", out, *session.posargs
    )


@nox.session
def build(session: nox.Session) -> None:
    """Build every member's sdist and wheel, check metadata, install each wheel alone and import it."""
    _sync(session, "--group", "release")
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run(
        "uv", "build", "--all-packages", "--out-dir", str(dist), "--no-progress", external=True
    )
    artifacts = sorted([*dist.glob("*.whl"), *dist.glob("*.tar.gz")])
    session.run("twine", "check", "--strict", *map(str, artifacts))
    for name, folder in MEMBERS.items():
        dist_name = _dist(folder).replace("-", "_")
        wheels = sorted(dist.glob(f"{dist_name}-*.whl"))
        if len(wheels) != 1:
            session.error(
                f"{name}: expected one wheel {dist_name}-*.whl in dist/, found {len(wheels)}"
            )
        venv = Path(tempfile.mkdtemp(prefix=f"wheel-{name}-"))
        session.run("uv", "venv", "-q", str(venv / "env"), external=True)
        py = str(venv / "env" / "bin" / "python")
        session.run(
            "uv",
            "pip",
            "install",
            "-q",
            "--python",
            py,
            "--find-links",
            str(dist),
            # the wheels just built share their file names with earlier builds: never take a
            # cached copy of one of ours (a stale paperzoo-core once hid a new core function)
            *(f"--refresh-package={_dist(f)}" for f in MEMBERS.values()),
            str(wheels[0]),
            external=True,
        )
        module = "paperzoo.core" if name == "core" else f"paperzoo.{name.replace('-', '_')}"
        session.run(
            py,
            "-c",
            f"import {module}; print({module}.__name__, 'imports from its wheel')",
            external=True,
        )
        shutil.rmtree(venv, ignore_errors=True)
    # dry run of the release workflow's build-and-verify steps for one package
    session.run(
        "python", "tools/workspace.py", "tag", "ldr-v" + _version(MEMBERS["ldr"]), external=True
    )
    session.run("python", "tools/workspace.py", "verify", "ldr", "--run-tests", external=True)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with warnings as errors."""
    if not (ROOT / "mkdocs.yml").exists():
        session.skip("no mkdocs.yml yet")
    _sync(session, "--all-packages", "--all-extras", "--group", "docs")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"))


@nox.session
def gpu_tests(session: nox.Session) -> None:
    """Every gpu-marked test of every member plus the GPU integration tests; fails without CUDA."""
    _sync(session, "--all-packages", "--all-extras", "--group", "test", "--all-groups")
    check = "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 3)"
    try:
        session.run("python", "-c", check, silent=True)
    except nox.command.CommandFailed:
        session.error("gpu_tests: no CUDA device is present on this machine")
    paths = [str(f / "tests") for f in MEMBERS.values()] + ["integration-tests"]
    session.run(
        "pytest",
        *paths,
        "-m",
        "gpu",
        "--require-gpu",
        "-q",
        "-p",
        "no:cacheprovider",
        *session.posargs,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Every registered benchmark (peers from each package's bench group); not in the default run."""
    _sync(session, "--all-packages", "--all-extras", "--all-groups")
    session.run(
        "paperzoo", "bench", "--all", "--out", str(ROOT / "runs" / "bench"), *session.posargs
    )
