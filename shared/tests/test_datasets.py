"""Real data sets from a local folder, on tiny fixtures written here in each official format."""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from paperzoo.core.checks import UserError
from paperzoo.core.datasets import (
    ImageArrayDataset,
    RealDataset,
    TableDataset,
    TokenWindowDataset,
    available_real_datasets,
    build_vocabulary,
    load_real_dataset,
    make_real_loader,
    standard_transform,
)


def _identity(x: Tensor) -> Tensor:
    return x


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and mtime: loading must change none of them."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


# ----------------------------------------------------------------------------- idx (MNIST)


def _write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    head = bytes([0, 0, 8, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    data = head + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _mnist_root(root: Path, gz: bool, n_train: int = 6, n_test: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    root.mkdir(parents=True, exist_ok=True)
    for stem, arr in arrays.items():
        _write_idx(root / stem, arr, gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_files_read_pixel_for_pixel(tmp_path: Path, gz: bool, name: str) -> None:
    arrays = _mnist_root(tmp_path, gz)
    before = _snapshot(tmp_path)
    for split, stem in (("train", "train"), ("test", "t10k")):
        d = load_real_dataset(name, tmp_path, split=split, transform=_identity)
        images, labels = arrays[f"{stem}-images-idx3-ubyte"], arrays[f"{stem}-labels-idx1-ubyte"]
        assert len(d) == len(labels) and d.num_classes == 10 and d.input_shape == (1, 28, 28)
        for i in range(len(d)):
            x, y = d.dataset[i]
            assert x.dtype == torch.uint8 and x.shape == (1, 28, 28)
            assert torch.equal(x[0], torch.from_numpy(images[i]))
            assert y.dtype == torch.int64 and y.dim() == 0 and int(y) == int(labels[i])
    assert _snapshot(tmp_path) == before


def test_mnist_standard_transform_normalises_without_augmentation(tmp_path: Path) -> None:
    arrays = _mnist_root(tmp_path / "MNIST" / "raw", gz=True)  # torchvision's own layout
    d = load_real_dataset("mnist", tmp_path, split="train")
    x, _ = d.dataset[2]
    expected = (
        torch.from_numpy(arrays["train-images-idx3-ubyte"][2]).float() / 255 - 0.1307
    ) / 0.3081
    assert type(x) is Tensor and x.dtype == torch.float32 and x.shape == (1, 28, 28)
    torch.testing.assert_close(x[0], expected)
    assert torch.equal(d.dataset[2][0], x)  # no random augmentation for digits


def test_malformed_idx_header_and_truncated_body_are_user_errors(tmp_path: Path) -> None:
    _mnist_root(tmp_path, gz=False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x09\x03" + bytes(12))
    with pytest.raises(UserError, match="bad header.*yann.lecun.com"):
        load_real_dataset("mnist", tmp_path)
    good = np.zeros((2, 28, 28), np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", good, gz=False)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-5])
    with pytest.raises(UserError, match="complete idx files"):
        load_real_dataset("mnist", tmp_path)


def test_missing_mnist_names_the_files_and_the_source(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte\[\.gz\].*zalandoresearch"):
        load_real_dataset("fashion-mnist", tmp_path)


# ----------------------------------------------------------------------------- CIFAR


def _cifar_records(n: int, fine: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    head = 2 if fine else 1
    rec = rng.integers(0, 256, (n, head + 3072), dtype=np.uint8)
    rec[:, 0] = rng.integers(0, 20 if fine else 10, n)
    if fine:
        rec[:, 1] = rng.integers(0, 100, n)
    return rec


def _cifar10_root(root: Path) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    train = [_cifar_records(3, False, i) for i in range(5)]
    for i, rec in enumerate(train, start=1):
        (folder / f"data_batch_{i}.bin").write_bytes(rec.tobytes())
    test = _cifar_records(2, False, 9)
    (folder / "test_batch.bin").write_bytes(test.tobytes())
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    return np.concatenate(train), test


def _expected_image(record: np.ndarray, head: int, c: int, h: int, w: int) -> int:
    return int(record[head + c * 1024 + h * 32 + w])  # 1024 R, then G, then B, row-major


def test_cifar10_binary_records_are_label_then_planar_rgb(tmp_path: Path) -> None:
    train, test = _cifar10_root(tmp_path)
    before = _snapshot(tmp_path)
    d = load_real_dataset("cifar10", tmp_path, split="train", transform=_identity)
    assert len(d) == 15 and d.num_classes == 10 and d.classes[0] == "airplane"
    for i in (0, 7, 14):
        x, y = d.dataset[i]
        assert x.shape == (3, 32, 32) and x.dtype == torch.uint8
        assert int(y) == int(train[i, 0])
        for c, h, w in ((0, 0, 0), (1, 5, 31), (2, 31, 7)):
            assert int(x[c, h, w]) == _expected_image(train[i], 1, c, h, w)
    t = load_real_dataset("cifar10", tmp_path, split="test", transform=_identity)
    assert len(t) == 2 and int(t.dataset[1][1]) == int(test[1, 0])
    assert _snapshot(tmp_path) == before


def test_cifar10_train_augments_and_test_is_deterministic(tmp_path: Path) -> None:
    _cifar10_root(tmp_path)
    test = load_real_dataset("cifar10", tmp_path, split="test")
    x, _ = test.dataset[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert torch.equal(test.dataset[0][0], x)
    raw = load_real_dataset("cifar10", tmp_path, split="test", transform=_identity).dataset[0][0]
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(3, 1, 1)
    torch.testing.assert_close(x, (raw.float() / 255 - mean) / std)
    train = load_real_dataset("cifar10", tmp_path, split="train")
    torch.manual_seed(0)
    draws = torch.stack([train.dataset[0][0] for _ in range(8)])
    assert draws.shape == (8, 3, 32, 32)
    assert not all(torch.equal(draws[0], d) for d in draws[1:])  # random crop/flip at work
    off = load_real_dataset("cifar10", tmp_path, split="train", augment=False)
    assert torch.equal(off.dataset[0][0], off.dataset[0][0])


@pytest.mark.parametrize(("labels", "k", "col"), [("fine", 100, 1), ("coarse", 20, 0)])
def test_cifar100_binary_has_coarse_then_fine_label(
    tmp_path: Path, labels: Literal["fine", "coarse"], k: int, col: int
) -> None:
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    train, test = _cifar_records(5, True, 1), _cifar_records(3, True, 2)
    (folder / "train.bin").write_bytes(train.tobytes())
    (folder / "test.bin").write_bytes(test.tobytes())
    d = load_real_dataset(
        "cifar100", tmp_path, split="test", transform=_identity, cifar100_labels=labels
    )
    assert len(d) == 3 and d.num_classes == k and len(d.classes) == k
    x, y = d.dataset[2]
    assert int(y) == int(test[2, col])
    assert int(x[1, 3, 4]) == _expected_image(test[2], 2, 1, 3, 4)


def test_truncated_cifar_batch_names_the_record_size(tmp_path: Path) -> None:
    _cifar10_root(tmp_path)
    f = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(UserError, match=r"records of 3073 bytes.*data_batch_3\.bin"):
        load_real_dataset("cifar10", tmp_path, split="train")


def test_missing_cifar_folder_names_the_binary_layout_and_source(tmp_path: Path) -> None:
    with pytest.raises(
        UserError, match=r"cifar-10-batches-bin/data_batch_1\.bin.*CIFAR-10 binary version"
    ):
        load_real_dataset("cifar10", tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load_real_dataset("cifar100", tmp_path / "nowhere")


def _cifar10_python(root: Path, train: np.ndarray, test: np.ndarray) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(5):
        rec = train[3 * i : 3 * i + 3]
        batch = {b"data": rec[:, 1:], b"labels": rec[:, 0].tolist()}
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch))
    (folder / "test_batch").write_bytes(
        pickle.dumps({b"data": test[:, 1:], b"labels": test[:, 0].tolist()})
    )
    names = [n.encode() for n in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))


def test_cifar_pickle_version_is_refused_unless_trusted(tmp_path: Path) -> None:
    binary = tmp_path / "bin"
    train, test = _cifar10_root(binary)
    py = tmp_path / "py"
    py.mkdir()
    _cifar10_python(py, train, test)
    with pytest.raises(UserError, match="trust_pickle=True"):
        load_real_dataset("cifar10", py)
    d = load_real_dataset("cifar10", py, split="train", transform=_identity, trust_pickle=True)
    b = load_real_dataset("cifar10", binary, split="train", transform=_identity)
    assert d.classes == tuple("abcdefghij") and len(d) == len(b) == 15
    for i in range(15):
        assert torch.equal(d.dataset[i][0], b.dataset[i][0])
        assert torch.equal(d.dataset[i][1], b.dataset[i][1])


# ----------------------------------------------------------------------------- image folders


def _png_tree(root: Path, classes: list[str], per_class: int = 2) -> None:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for j in range(per_class):
            pixels = rng.integers(0, 256, (30 + j, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{j}.png")


@pytest.mark.parametrize("name", ["cub200", "cars196"])
def test_retrieval_class_split_puts_the_first_half_of_the_classes_in_train(
    tmp_path: Path, name: str
) -> None:
    tree = tmp_path / "CUB_200_2011" / "images" if name == "cub200" else tmp_path
    _png_tree(tree, ["003.c", "001.a", "004.d", "002.b", "005.e"], per_class=2)
    before = _snapshot(tmp_path)
    tr = load_real_dataset(name, tmp_path, split="train", image_size=16)
    te = load_real_dataset(name, tmp_path, split="test", image_size=16)
    assert tr.classes == ("001.a", "002.b") and te.classes == ("003.c", "004.d", "005.e")
    assert (len(tr), len(te)) == (4, 6)
    assert [int(tr.dataset[i][1]) for i in range(4)] == [0, 0, 1, 1]
    assert [int(te.dataset[i][1]) for i in range(6)] == [0, 0, 1, 1, 2, 2]
    x, _ = te.dataset[0]
    assert x.shape == (3, 16, 16) == te.input_shape and x.dtype == torch.float32
    assert torch.equal(te.dataset[0][0], x)  # resize + center crop: deterministic
    assert tr.dataset[1][0].shape == (3, 16, 16)
    assert _snapshot(tmp_path) == before


def test_image_folder_reads_split_subfolders_and_val_stands_in_for_test(tmp_path: Path) -> None:
    _png_tree(tmp_path / "train", ["cat", "dog"], per_class=3)
    _png_tree(tmp_path / "val", ["cat", "dog"], per_class=1)
    tr = load_real_dataset("image-folder", tmp_path, split="train", image_size=8)
    te = load_real_dataset("image-folder", tmp_path, split="test", image_size=8)
    assert (len(tr), len(te), tr.num_classes, te.classes) == (6, 2, 2, ("cat", "dog"))
    assert int(te.dataset[1][1]) == 1 and te.dataset[1][0].shape == (3, 8, 8)


def test_image_folder_without_class_folders_is_one_user_error(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(UserError, match=r"train/<class>/<image>"):
        load_real_dataset("image-folder", tmp_path, split="train")
    with pytest.raises(UserError, match=r"test/<class>/<image>"):
        load_real_dataset("image-folder", tmp_path, split="test")
    with pytest.raises(UserError, match="CUB_200_2011.tgz"):
        load_real_dataset("cub200", tmp_path / "train")


def test_cars196_official_annotations_split_the_class_ids_in_half(tmp_path: Path) -> None:
    from scipy.io import savemat

    _png_tree(tmp_path, ["car_ims"], per_class=5)
    classes = [3, 1, 4, 2, 4]  # image i of car_ims/ has class id classes[i] (1-based)
    ann = np.zeros((1, 5), dtype=[("relative_im_path", object), ("class", object)])
    for i, c in enumerate(classes):
        ann[0, i] = (f"car_ims/{i}.png", np.array([[c]], dtype=np.uint8))
    names = np.empty((1, 4), dtype=object)
    names[0, :] = ["Audi", "BMW", "Chevrolet", "Dodge"]
    savemat(tmp_path / "cars_annos.mat", {"annotations": ann, "class_names": names})
    before = _snapshot(tmp_path)
    tr = load_real_dataset("cars196", tmp_path, split="train", image_size=8)
    te = load_real_dataset("cars196", tmp_path, split="test", image_size=8)
    assert tr.classes == ("Audi", "BMW") and te.classes == ("Chevrolet", "Dodge")
    assert [int(tr.dataset[i][1]) for i in range(len(tr))] == [0, 1]  # images 1 and 3
    assert [int(te.dataset[i][1]) for i in range(len(te))] == [0, 1, 1]  # images 0, 2, 4
    assert te.dataset[2][0].shape == (3, 8, 8)
    assert _snapshot(tmp_path) == before
    (tmp_path / "cars_annos.mat").write_bytes(b"not a mat file")
    with pytest.raises(UserError, match="cars_annos.mat with 'annotations'"):
        load_real_dataset("cars196", tmp_path)


def test_sop_reads_the_official_ebay_lists(tmp_path: Path) -> None:
    base = tmp_path / "Stanford_Online_Products"
    _png_tree(base / "bicycle_final", ["x"], per_class=3)
    header = "image_id class_id super_class_id path\n"
    (base / "Ebay_train.txt").write_text(
        header + "1 1 1 bicycle_final/x/0.png\n2 1 1 bicycle_final/x/1.png\n"
    )
    (base / "Ebay_test.txt").write_text(header + "3 7 1 bicycle_final/x/2.png\n")
    tr = load_real_dataset("sop", tmp_path, split="train", image_size=8)
    te = load_real_dataset("sop", tmp_path, split="test", image_size=8)
    assert (len(tr), tr.num_classes, len(te), te.classes) == (2, 1, 1, ("7",))
    x, y = te.dataset[0]
    assert x.shape == (3, 8, 8) and int(y) == 0
    with pytest.raises(UserError, match="Ebay_train.txt"):
        load_real_dataset("sop", base / "bicycle_final")
    (base / "bicycle_final" / "x" / "2.png").unlink()
    with pytest.raises(UserError, match=r"images that Ebay_test.txt lists.*2\.png is missing"):
        load_real_dataset("sop", tmp_path, split="test")


# ----------------------------------------------------------------------------- text corpus


def _corpus(root: Path) -> None:
    root.mkdir(exist_ok=True)
    (root / "train.txt").write_text("the cat sat\nthe dog sat\nthe <unk> ran\n")
    (root / "valid.txt").write_text("the bird sat\n")
    (root / "test.txt").write_text("a cat\n")


def test_vocabulary_is_unk_then_the_most_frequent_words(tmp_path: Path) -> None:
    _corpus(tmp_path)
    # counts: the 3, <eos> 3, sat 2, cat 1, dog 1, ran 1 (<unk> is never counted as a word)
    assert build_vocabulary(tmp_path / "train.txt") == (
        "<unk>", "<eos>", "the", "sat", "cat", "dog", "ran",
    )  # fmt: skip
    assert build_vocabulary(tmp_path / "train.txt", 4) == ("<unk>", "<eos>", "the", "sat")


def test_text_windows_are_inputs_and_next_tokens_with_unknown_words_as_unk(tmp_path: Path) -> None:
    _corpus(tmp_path)
    tr = load_real_dataset("text-corpus", tmp_path, split="train", vocab_size=4, seq_len=3)
    vocab = tr.classes
    assert tr.num_classes == 4 and tr.task == "language-model" and tr.input_shape == (3,)
    ids = [vocab.index(w) if w in vocab else 0 for w in
           ["the", "cat", "sat", "<eos>", "the", "dog", "sat", "<eos>", "the", "<unk>", "ran", "<eos>"]]  # fmt: skip
    assert len(tr) == (len(ids) - 1) // 3 == 3
    for i in range(len(tr)):
        x, y = tr.dataset[i]
        assert x.dtype == y.dtype == torch.int64 and x.shape == y.shape == (3,)
        assert x.tolist() == ids[3 * i : 3 * i + 3] and y.tolist() == ids[3 * i + 1 : 3 * i + 4]
    va = load_real_dataset("text-corpus", tmp_path, split="valid", vocab_size=4, seq_len=2)
    assert va.classes == vocab  # the vocabulary always comes from train
    x, y = va.dataset[0]
    assert x.tolist() == [2, 0] and y.tolist() == [0, 3]  # "bird" is unknown
    with pytest.raises(UserError, match="at least 4 tokens"):
        load_real_dataset("text-corpus", tmp_path, split="test", seq_len=3)


def test_text_corpus_accepts_ptb_names_and_reports_missing_files(tmp_path: Path) -> None:
    (tmp_path / "ptb.train.txt").write_text("a b a\n")
    (tmp_path / "ptb.valid.txt").write_text("b b\n")
    d = load_real_dataset("text-corpus", tmp_path, split="valid", seq_len=1)
    assert len(d) == 2 and d.classes[:2] == ("<unk>", "a")
    with pytest.raises(UserError, match=r"test\.txt \(or ptb\.test\.txt, wiki\.test\.tokens\)"):
        load_real_dataset("text-corpus", tmp_path, split="test")
    with pytest.raises(UserError, match="split: expected one of"):
        load_real_dataset("text-corpus", tmp_path, split="val")


# ----------------------------------------------------------------------------- tables


def test_csv_table_takes_the_named_label_column(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("f1,label,f2\n0.5,1,2\n-1,0,3.25\n4,2,0\n")
    d = load_real_dataset("table", tmp_path, split="train")
    assert (len(d), d.num_classes, d.input_shape) == (3, 3, (2,))
    x, y = d.dataset[1]
    assert x.dtype == torch.float32 and x.tolist() == [-1.0, 3.25]
    assert y.dtype == torch.int64 and int(y) == 0
    with pytest.raises(UserError, match="label column 'target'"):
        load_real_dataset("table", tmp_path, split="train", label_column="target")
    (tmp_path / "test.csv").write_text("f1,label\nfoo,1\n")
    with pytest.raises(UserError, match="numeric cells"):
        load_real_dataset("table", tmp_path, split="test")


def test_npz_table_as_a_folder_split_or_one_file(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.savez(tmp_path / "test.npz", x=x, y=np.array([3, 0, 1, 3]))
    d = load_real_dataset("table", tmp_path, split="test")
    assert (len(d), d.num_classes) == (4, 4)
    assert d.dataset[2][0].tolist() == [6.0, 7.0, 8.0] and int(d.dataset[3][1]) == 3
    one = load_real_dataset("table", tmp_path / "test.npz", split="all")
    assert len(one) == 4
    with pytest.raises(UserError, match="split: expected one of \\['all'\\]"):
        load_real_dataset("table", tmp_path / "test.npz", split="train")
    np.savez(tmp_path / "valid.npz", features=x, y=np.zeros(4))
    with pytest.raises(UserError, match="arrays 'x' and 'y'"):
        load_real_dataset("table", tmp_path, split="valid")
    for bad in (np.array([0.5, 1, 2, 3]), np.array(["a", "b", "a", "b"])):
        np.savez(tmp_path / "train.npz", x=x, y=bad)
        with pytest.raises(UserError, match="integer labels"):
            load_real_dataset("table", tmp_path, split="train")


def test_npz_with_pickled_objects_is_not_unpickled(tmp_path: Path) -> None:
    np.savez(tmp_path / "train.npz", x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(UserError, match="readable .npz of plain arrays"):
        load_real_dataset("table", tmp_path, split="train")


# ----------------------------------------------------------------------------- registry, loaders


def test_registry_lists_every_name_and_rejects_unknown_ones(tmp_path: Path) -> None:
    assert available_real_datasets() == sorted(
        ["mnist", "fashion-mnist", "cifar10", "cifar100", "image-folder", "cub200", "cars196",
         "sop", "text-corpus", "table"]
    )  # fmt: skip
    with pytest.raises(UserError, match="available: .*cifar10"):
        load_real_dataset("imagenet", tmp_path)
    with pytest.raises(UserError, match="no standard transform"):
        standard_transform("table", train=True)


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_batches_a_real_dataset_in_a_seeded_order(tmp_path: Path, workers: int) -> None:
    _cifar10_root(tmp_path)
    d = load_real_dataset("cifar10", tmp_path, split="train", augment=False)
    assert isinstance(d, RealDataset)

    def labels(loader: torch.utils.data.DataLoader[tuple[Tensor, Tensor]]) -> list[int]:
        return torch.cat([y for _, y in loader]).tolist()

    a = make_real_loader(d, batch_size=4, num_workers=workers, seed=3)
    assert a.pin_memory is False and a.num_workers == workers
    x, y = next(iter(a))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (4,)
    again = make_real_loader(d, batch_size=4, num_workers=workers, seed=3)
    fresh = make_real_loader(d, batch_size=4, num_workers=workers, seed=3)
    assert labels(again) == labels(fresh)  # same seed, same order
    assert sorted(labels(again)) == sorted(int(d.dataset[i][1]) for i in range(len(d)))
    fixed = make_real_loader(d, batch_size=4, shuffle=False)
    assert labels(fixed) == [int(d.dataset[i][1]) for i in range(len(d))]
    assert make_real_loader(d, batch_size=4).num_workers == 0  # CPU default


def test_loader_under_torch_distributed_gives_each_rank_a_distributed_sampler(
    tmp_path: Path,
) -> None:
    import torch.distributed as dist

    d = TableDataset(torch.arange(10.0).view(5, 2), torch.tensor([0, 1, 0, 1, 1]))
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        loader = make_real_loader(d, batch_size=2, shuffle=True, seed=1)
        assert isinstance(loader.sampler, torch.utils.data.DistributedSampler)
        assert sorted(torch.cat([y for _, y in loader]).tolist()) == [0, 0, 1, 1, 1]
    finally:
        dist.destroy_process_group()


def test_building_blocks_check_their_input_and_bounds() -> None:
    images = np.arange(2 * 1 * 2 * 2, dtype=np.uint8).reshape(2, 1, 2, 2)
    a = ImageArrayDataset(images, np.array([1, 0]), transform=None)
    x, y = a[1]
    assert x.dtype == torch.float32
    torch.testing.assert_close(x, torch.tensor([[[4.0, 5.0], [6.0, 7.0]]]) / 255)
    assert int(y) == 0
    with pytest.raises(ValueError, match=r"uint8 \(N, C, H, W\)"):
        ImageArrayDataset(images[:, 0], np.array([1, 0]), transform=None)
    w = TokenWindowDataset(torch.arange(7), seq_len=3)
    assert len(w) == 2 and w[1][1].tolist() == [4, 5, 6]
    with pytest.raises(IndexError):
        w[2]
    with pytest.raises(ValueError, match="seq_len"):
        TokenWindowDataset(torch.arange(7), seq_len=0)
    t = TableDataset(torch.ones(2, 3), torch.tensor([0, 1]), transform=lambda r: 2 * r)
    assert t[0][0].tolist() == [2.0, 2.0, 2.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_loader_pins_memory_for_cuda(tmp_path: Path) -> None:
    _cifar10_root(tmp_path)
    d = load_real_dataset("cifar10", tmp_path, split="test")
    loader = make_real_loader(d, batch_size=2, device="cuda", num_workers=0)
    assert loader.pin_memory
    x, _ = next(iter(loader))
    assert x.is_pinned()


def test_nothing_is_written_next_to_any_data_set(tmp_path: Path) -> None:
    _mnist_root(tmp_path / "m", gz=True)
    _cifar10_root(tmp_path / "c")
    _corpus(tmp_path / "t")
    before = _snapshot(tmp_path)
    loaders: list[Callable[[], RealDataset]] = [
        lambda: load_real_dataset("mnist", tmp_path / "m", split="test"),
        lambda: load_real_dataset("cifar10", tmp_path / "c", split="test"),
        lambda: load_real_dataset("text-corpus", tmp_path / "t", split="test", seq_len=1),
    ]
    for load in loaders:
        d = load()
        d.dataset[0]
    assert _snapshot(tmp_path) == before
    assert not [p for p in os.listdir(tmp_path) if p not in ("m", "c", "t")]
