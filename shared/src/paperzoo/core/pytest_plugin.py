"""pytest plugin (auto-loaded through the ``pytest11`` entry point of paperzoo-core).

Registers the ``slow`` and ``gpu`` markers. Tests marked ``gpu`` are skipped when no CUDA device is
present, unless ``--require-gpu`` (or ``PAPERZOO_REQUIRE_GPU=1``) is given: then the run stops at
once with a one-line reason, so a GPU session can never pass by skipping everything.
"""

from __future__ import annotations

import os

import pytest
import torch

__all__ = ["pytest_addoption", "pytest_collection_modifyitems", "pytest_configure"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--require-gpu``."""
    parser.addoption(
        "--require-gpu",
        action="store_true",
        default=os.environ.get("PAPERZOO_REQUIRE_GPU", "") == "1",
        help="fail (instead of skipping gpu tests) when no CUDA device is present",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers and enforce ``--require-gpu``."""
    config.addinivalue_line("markers", "slow: slower tests (compile, end-to-end)")
    config.addinivalue_line("markers", "gpu: needs a CUDA device (run by nox -s gpu_tests)")
    if config.getoption("--require-gpu") and not torch.cuda.is_available():
        raise pytest.UsageError(
            "gpu tests were required (--require-gpu) but no CUDA device is present"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` tests without CUDA (unless required)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device (run nox -s gpu_tests on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
