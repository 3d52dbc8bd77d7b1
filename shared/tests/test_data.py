"""Datasets, splits, synthetic generators and label noise."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.data import (
    available_datasets,
    class_dependent_label_noise,
    gaussian_mixture,
    load_dataset,
    make_loader,
    multilabel,
    pair_flip_transition,
    uniform_label_noise,
    zipf_labels,
)


@pytest.mark.parametrize(
    "name", ["digits", "iris", "wine", "breast_cancer", "diabetes", "mnist5k", "mnist1d"]
)
def test_every_dataset_loads_with_disjoint_splits(name: str) -> None:
    s = load_dataset(name, seed=0)
    n = s.x_train.shape[0] + s.x_val.shape[0] + s.x_test.shape[0]
    assert s.x_train.dtype == torch.float32
    assert s.x_train.shape[1] == s.x_test.shape[1] == s.num_features
    rows = torch.cat([s.x_train, s.x_val, s.x_test])
    assert torch.unique(rows, dim=0).shape[0] >= n - 5  # (a few real duplicates exist in digits)
    if s.task == "classification":
        assert s.y_train.dtype == torch.int64
        assert int(s.y_train.max()) == s.num_classes - 1
        # stratified: each class's share of test within 5 points of its share of train
        tr = torch.bincount(s.y_train, minlength=s.num_classes).float() / s.y_train.numel()
        te = torch.bincount(s.y_test, minlength=s.num_classes).float() / s.y_test.numel()
        assert float((tr - te).abs().max()) < 0.05
    else:
        assert s.num_classes == 0


def test_splits_are_deterministic_per_seed_and_differ_across_seeds() -> None:
    a, b, c = (
        load_dataset("digits", seed=1),
        load_dataset("digits", seed=1),
        load_dataset("digits", seed=2),
    )
    assert torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


def test_known_sizes() -> None:
    assert load_dataset("mnist5k").input_shape == (1, 28, 28)
    s = load_dataset("digits", val_fraction=0.0, test_fraction=0.2)
    assert s.x_train.shape[0] + s.x_test.shape[0] == 1797
    assert s.x_val.shape[0] == 0


def test_unknown_dataset_lists_the_available_ones() -> None:
    with pytest.raises(UserError, match="available: .*digits.*mnist5k"):
        load_dataset("cifar10")
    assert "mnist1d" in available_datasets()


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.1), (0.5, 0.5), (0.1, 1.0)])
def test_bad_fractions(val: float, test: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        load_dataset("iris", val_fraction=val, test_fraction=test)


def test_gaussian_mixture_shift_moves_inputs_only() -> None:
    x0, y0 = gaussian_mixture(200, 4, 5, seed=3)
    x1, y1 = gaussian_mixture(200, 4, 5, shift=2.0, seed=3)
    assert torch.equal(y0, y1)
    d = x1 - x0
    torch.testing.assert_close(d.norm(dim=1), torch.full((200,), 2.0), rtol=1e-5, atol=1e-5)
    assert torch.bincount(y0).tolist() == [50] * 4


def test_multilabel_correlation_raises_label_cooccurrence() -> None:
    _, y_ind = multilabel(4000, 6, 10, correlation=0.0, seed=0)
    _, y_cor = multilabel(4000, 6, 10, correlation=0.95, seed=0)

    def mean_corr(y: torch.Tensor) -> float:
        c = torch.corrcoef(y.T)
        return float((c.sum() - c.diag().sum()) / (c.numel() - c.shape[0]))

    assert mean_corr(y_cor) > mean_corr(y_ind) + 0.3


def test_zipf_labels_have_decreasing_frequencies() -> None:
    _, y = zipf_labels(20000, 50, 4, exponent=1.2, seed=0)
    counts = torch.bincount(y, minlength=50).float()
    assert counts[0] > counts[1] > counts[5] > counts[40]


def test_uniform_noise_rate_and_mask() -> None:
    y = torch.arange(10000) % 10
    noisy, mask = uniform_label_noise(y, 10, 0.4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask, noisy != y), "the mask must mark exactly the changed labels"
    assert abs(float(mask.float().mean()) - 0.4) < 0.02
    assert int(noisy.max()) < 10


def test_uniform_noise_that_may_keep_the_true_class() -> None:
    y = torch.arange(20000) % 4
    noisy, mask = uniform_label_noise(
        y, 4, 0.8, generator=torch.Generator().manual_seed(0), include_true=True
    )
    assert torch.equal(mask, noisy != y)
    assert abs(float(mask.float().mean()) - 0.8 * 3 / 4) < 0.02  # flip rate eta (K-1)/K


def test_class_dependent_noise_follows_the_transition() -> None:
    y = torch.zeros(20000, dtype=torch.long)
    t = pair_flip_transition(3, 0.3)
    noisy, mask = class_dependent_label_noise(y, t, generator=torch.Generator().manual_seed(0))
    assert set(noisy.unique().tolist()) == {0, 1}
    assert abs(float(mask.float().mean()) - 0.3) < 0.02


def test_noise_bad_input() -> None:
    y = torch.tensor([0, 1, 5])
    with pytest.raises(ValueError, match="labels must lie"):
        uniform_label_noise(y, 3, 0.1)
    with pytest.raises(ValueError, match="rate"):
        uniform_label_noise(y, 6, 1.5)
    with pytest.raises(TypeError, match="y"):
        uniform_label_noise(y.float(), 6, 0.1)
    with pytest.raises(ValueError, match="transition"):
        class_dependent_label_noise(y, torch.ones(6, 6))


def test_make_loader_is_seeded() -> None:
    x, y = torch.randn(50, 2), torch.arange(50)
    a = [b[1].tolist() for b in make_loader(x, y, batch_size=10, shuffle=True, seed=1)]
    b = [b[1].tolist() for b in make_loader(x, y, batch_size=10, shuffle=True, seed=1)]
    assert a == b
    with pytest.raises(ValueError, match="rows"):
        make_loader(x, y[:3], batch_size=4, shuffle=False)
