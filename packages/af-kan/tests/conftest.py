"""Test settings for paperzoo-af-kan: one intra-op thread (small tensors; stable on shared CPUs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paperzoo.core.devices import torch_threads


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with torch_threads(1):  # the count before the test is restored after it
        yield
