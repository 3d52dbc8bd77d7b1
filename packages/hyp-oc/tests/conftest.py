"""Every test starts from the same global RNG state (tests that draw without a generator are
deterministic)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)
