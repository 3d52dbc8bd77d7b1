"""One intra-op thread: the tensors here are tiny, and on a shared 2-core machine more threads only
oversubscribe the cores (measured 40x slower per step under load)."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
