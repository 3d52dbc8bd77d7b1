"""Test settings for paperzoo-af-kan: one intra-op thread (small tensors; stable on shared CPUs)."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
