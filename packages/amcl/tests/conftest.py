"""Tests run single-threaded (2 shared cores)."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
