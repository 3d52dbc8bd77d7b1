"""Settings: parsing, noise rates, the long-tail subsample, and an untouched test split."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.data import load_dataset
from paperzoo.losses import apply_setting, class_dependent_transition, long_tail_keep, parse_setting


def test_parse_setting() -> None:
    assert parse_setting("clean") == ("clean", 0.0)
    assert parse_setting("uniform40") == ("uniform", 0.4)
    assert parse_setting("pairflip30") == ("pairflip", 0.3)
    assert parse_setting("imbalance100") == ("imbalance", 100.0)
    for bad in ("noisy", "uniform", "uniform100", "imbalance0"):
        with pytest.raises(UserError, match="setting"):
            parse_setting(bad)


def test_class_dependent_transition_rows() -> None:
    t = class_dependent_transition(4, 0.3)
    torch.testing.assert_close(t.sum(1), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(
        t.diagonal(), torch.tensor([1.0, 0.9, 0.8, 0.7], dtype=torch.float64)
    )
    assert float(t[3, 0]) == pytest.approx(0.1)


def test_long_tail_keep_counts_follow_the_exponential_profile() -> None:
    y = torch.arange(5).repeat_interleave(100)
    kept = long_tail_keep(y, 5, 100.0, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(y[kept], minlength=5).tolist()
    want = [int(100 * 100 ** (-k / 4)) for k in range(5)]  # 100, 31, 10, 3, 1
    assert counts == want
    assert kept.unique().numel() == kept.numel()


def test_long_tail_keep_binary_ratio() -> None:
    y = torch.tensor([0] * 50 + [1] * 80)
    kept = long_tail_keep(y, 2, 10.0, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(y[kept]).tolist() == [50, 5]


def test_uniform_noise_flips_the_stated_share_and_leaves_test_alone() -> None:
    split = load_dataset("digits", seed=0)
    noisy = apply_setting(split, "uniform40", seed=0)
    flipped = (noisy.split.y_train != noisy.y_train_clean).double().mean()
    assert float(flipped) == pytest.approx(0.4, abs=0.05)
    assert torch.equal(noisy.y_train_clean, split.y_train)
    assert torch.equal(noisy.split.y_test, split.y_test)
    assert float((noisy.split.y_val != noisy.y_val_clean).double().mean()) > 0.25
    again = apply_setting(split, "uniform40", seed=0)
    assert torch.equal(again.split.y_train, noisy.split.y_train)


def test_imbalance_subsamples_train_and_validation_only() -> None:
    split = load_dataset("digits", seed=0)
    noisy = apply_setting(split, "imbalance10", seed=0)
    counts = torch.bincount(noisy.split.y_train, minlength=10)
    assert noisy.imbalanced
    assert int(counts[0]) >= 9 * int(counts[9])
    assert noisy.split.x_test.shape == split.x_test.shape
    assert noisy.split.x_val.shape[0] < split.x_val.shape[0]


def test_pairflip_moves_labels_to_the_next_class() -> None:
    split = load_dataset("digits", seed=0)
    noisy = apply_setting(split, "pairflip30", seed=0)
    changed = noisy.split.y_train != noisy.y_train_clean
    assert torch.equal(noisy.split.y_train[changed], (noisy.y_train_clean[changed] + 1) % 10)
