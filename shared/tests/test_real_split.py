"""Fixtures in the official formats, and real data sets as in-memory train/val/test splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.datasets import load_real_dataset, load_real_split
from paperzoo.core.fixtures import FIXTURES, write_fixture

pytest.importorskip("torchvision")


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_fixture_reads_back_through_its_official_reader(tmp_path: Path, name: str) -> None:
    write_fixture(name, tmp_path, per_class=4)
    split = "valid" if name == "text-corpus" else "test"
    for s in ("train", split):
        real = load_real_dataset(name, tmp_path, split=s, image_size=16, augment=False)
        assert len(real) > 0
        x, y = real.dataset[0]
        assert x.dtype == (torch.int64 if name == "text-corpus" else torch.float32)
        assert y.dtype == torch.int64


def test_mnist_split_is_the_idx_bytes_over_255_with_a_stratified_validation_carve_out(
    tmp_path: Path,
) -> None:
    write_fixture("mnist", tmp_path, per_class=10)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    pixels = np.frombuffer(raw[16:], dtype=np.uint8).reshape(100, 784)
    labels = np.frombuffer((tmp_path / "train-labels-idx1-ubyte").read_bytes()[8:], np.uint8)
    before = _files(tmp_path)
    s = load_real_split("mnist", tmp_path, val_fraction=0.2, seed=3)
    assert _files(tmp_path) == before  # nothing written into the user's folder
    assert (s.x_train.shape, s.x_val.shape, s.x_test.shape) == ((80, 784), (20, 784), (50, 784))
    assert s.num_classes == 10 and s.input_shape == (1, 28, 28) and s.task == "classification"
    assert s.y_val.bincount(minlength=10).tolist() == [2] * 10  # stratified
    # every train/val row is one row of the file, scaled to [0, 1], with its own label
    rows = {pixels[i].tobytes(): int(labels[i]) for i in range(100)}
    seen = set()
    for x, y in zip(torch.cat([s.x_train, s.x_val]), torch.cat([s.y_train, s.y_val]), strict=True):
        key = (x * 255).round().to(torch.uint8).numpy().tobytes()
        assert rows[key] == int(y)
        seen.add(key)
    assert len(seen) == 100  # train and val are disjoint and cover the file
    again = load_real_split("mnist", tmp_path, val_fraction=0.2, seed=3)
    assert torch.equal(again.x_val, s.x_val)
    other = load_real_split("mnist", tmp_path, val_fraction=0.2, seed=4)
    assert not torch.equal(other.x_val, s.x_val)


def test_limit_keeps_a_seeded_subset_of_each_split(tmp_path: Path) -> None:
    write_fixture("cifar10", tmp_path, per_class=6)
    s = load_real_split("cifar10", tmp_path, limit=12, seed=1)
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (
        12,
        10,
        12,
    )  # val: one per class (stratified 10%)
    assert (
        s.x_train.shape[1] == 3072
        and 0.0 <= float(s.x_train.min()) <= float(s.x_train.max()) <= 1.0
    )
    full = load_real_split("cifar10", tmp_path, seed=1)
    assert all(any(torch.equal(r, f) for f in full.x_train) for r in s.x_train)
    with pytest.raises(ValueError, match="limit"):
        load_real_split("cifar10", tmp_path, limit=0)
    with pytest.raises(ValueError, match="val_fraction"):
        load_real_split("cifar10", tmp_path, val_fraction=1.0)


def test_retrieval_split_keeps_train_and_test_classes_disjoint(tmp_path: Path) -> None:
    write_fixture("cub200", tmp_path, per_class=4, num_classes=6)
    s = load_real_split("cub200", tmp_path, image_size=8)
    assert s.num_classes == 3 and s.x_train.shape[1] == 3 * 8 * 8
    assert sorted(s.y_test.unique().tolist()) == [0, 1, 2]  # test classes 4..6, relabelled from 0
    assert len(s.y_train) + len(s.y_val) == 12 and len(s.y_test) == 12


def test_table_uses_its_valid_file_and_standardises_with_train_statistics(tmp_path: Path) -> None:
    write_fixture("table", tmp_path, per_class=20)
    s = load_real_split("table", tmp_path)
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (60, 30, 30)
    assert torch.allclose(s.x_train.mean(0), torch.zeros(6), atol=1e-5)
    assert torch.allclose(s.x_train.std(0, unbiased=False), torch.ones(6), atol=1e-4)
    raw = load_real_dataset("table", tmp_path, split="train")
    x = torch.stack([raw.dataset[i][0] for i in range(len(raw))])
    expected = (x - x.mean(0)) / x.std(0, unbiased=False)
    assert torch.allclose(s.x_train, expected, atol=1e-5)


def test_text_corpus_and_unknown_names_are_user_errors(tmp_path: Path) -> None:
    write_fixture("text-corpus", tmp_path)
    with pytest.raises(UserError, match="token stream"):
        load_real_split("text-corpus", tmp_path)
    with pytest.raises(UserError, match="unknown fixture"):
        write_fixture("imagenet-21k", tmp_path)
    with pytest.raises(UserError, match="cifar-10-batches-bin"):
        load_real_split("cifar10", tmp_path)


def test_fixture_images_carry_a_learnable_class_signal(tmp_path: Path) -> None:
    write_fixture("cifar10", tmp_path, per_class=8)
    s = load_real_split("cifar10", tmp_path, val_fraction=0.0)
    means = torch.stack([s.x_train[s.y_train == k].mean(0) for k in range(10)])
    nearest = torch.cdist(s.x_test, means).argmin(1)
    assert float((nearest == s.y_test).float().mean()) == 1.0


def test_one_table_file_is_split_three_ways_stratified_and_seeded(tmp_path: Path) -> None:
    write_fixture("table", tmp_path, per_class=20)
    one = tmp_path / "train.csv"  # 60 rows, 3 classes, read as split "all"
    s = load_real_split("table", one, val_fraction=0.2, test_fraction=0.3, seed=5)
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (30, 12, 18)
    assert s.y_test.bincount().tolist() == [6, 6, 6]
    rows = torch.cat([s.x_train, s.x_val, s.x_test])
    assert torch.unique(rows, dim=0).shape[0] == 60  # disjoint parts covering the file
    assert torch.equal(
        load_real_split("table", one, val_fraction=0.2, test_fraction=0.3, seed=5).x_test, s.x_test
    )
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction"):
        load_real_split("table", one, val_fraction=0.5, test_fraction=0.5)


def test_image_folder_fixture_takes_class_names(tmp_path: Path) -> None:
    write_fixture("image-folder", tmp_path, per_class=4, class_names=["real", "print"])
    train = load_real_dataset("image-folder", tmp_path, split="train", image_size=8)
    assert train.classes == ("print", "real") and len(train) == 8
    with pytest.raises(ValueError, match="class_names"):
        write_fixture("image-folder", tmp_path / "b", class_names=["real", "real"])
