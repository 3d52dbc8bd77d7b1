"""Label-noise generators of the paper's protocol."""

from __future__ import annotations

import torch

from paperzoo.ldr import class_dependent_label_noise, uniform_label_noise


def test_uniform_noise_replaces_with_any_class_so_flip_rate_is_eta_times_k_minus_one_over_k() -> (
    None
):
    y = torch.randint(0, 10, (200_000,), generator=torch.Generator().manual_seed(0))
    noisy, mask = uniform_label_noise(y, 10, 0.6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(mask, noisy != y)
    assert abs(float(mask.float().mean()) - 0.6 * 9 / 10) < 0.005
    # replaced labels are uniform over all classes, the true one included
    counts = torch.bincount((noisy - y)[mask] % 10, minlength=10)
    assert counts[0] == 0 and bool((counts[1:] > 0).all())


def test_zero_noise_changes_nothing_and_is_seeded() -> None:
    y = torch.arange(50) % 7
    noisy, mask = uniform_label_noise(y, 7, 0.0)
    assert torch.equal(noisy, y) and not bool(mask.any())
    a = uniform_label_noise(y, 7, 0.5, generator=torch.Generator().manual_seed(3))[0]
    b = uniform_label_noise(y, 7, 0.5, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(a, b)


def test_class_dependent_noise_is_a_pair_flip_by_default() -> None:
    y = torch.randint(0, 5, (100_000,), generator=torch.Generator().manual_seed(0))
    noisy, mask = class_dependent_label_noise(y, 5, 0.3, torch.Generator().manual_seed(2))
    assert torch.equal(noisy[mask], (y[mask] + 1) % 5)
    assert abs(float(mask.float().mean()) - 0.3) < 0.005
    mapping = torch.tensor([2, 2, 0, 4, 3])
    noisy, mask = class_dependent_label_noise(y, 5, 1.0, mapping=mapping)
    assert torch.equal(noisy, mapping[y]) and torch.equal(mask, noisy != y)
