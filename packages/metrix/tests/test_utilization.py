"""Utilization against brute-force NumPy; zero on the training set; permutation and chunking."""

from __future__ import annotations

import numpy as np
import torch

from paperzoo.metrix import utilization


def _sets() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(37, 5, generator=g, dtype=torch.float64), torch.randn(
        53, 5, generator=g, dtype=torch.float64
    )


def test_utilization_equals_brute_force_numpy() -> None:
    q, x = _sets()
    qn = q.numpy() / np.linalg.norm(q.numpy(), axis=1, keepdims=True)
    xn = x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True)
    d = np.array([[np.linalg.norm(a - b) for b in xn] for a in qn]).min(1)
    assert abs(float(utilization(q, x)) - d.mean()) < 1e-10
    assert abs(float(utilization(q, x, squared=True)) - (d**2).mean()) < 1e-10


def test_utilization_of_the_training_set_is_zero() -> None:
    _, x = _sets()
    assert float(utilization(x, x)) < 1e-6
    assert float(utilization(x.float(), x.float())) < 2e-3


def test_utilization_is_permutation_invariant_and_chunk_free() -> None:
    q, x = _sets()
    u = utilization(q, x)
    torch.testing.assert_close(utilization(q[torch.randperm(37)], x[torch.randperm(53)]), u)
    torch.testing.assert_close(utilization(q, x, chunk=4), u)
