"""Tiny data sets written in the official formats of :mod:`paperzoo.core.datasets`.

A test (or a user trying ``paperzoo run NAME --smoke --set data_root=DIR``) writes one into an
empty folder and reads it back through the real readers, so the whole path from the official
files to a result runs without the real data set. The images carry a class-dependent bright
block over low noise, so a model can learn them and a smoke run's numbers are not pure chance.

Example::

    from paperzoo.core.fixtures import write_fixture
    from paperzoo.core.datasets import load_real_split

    root = write_fixture("cifar10", "/tmp/cifar-fixture")
    split = load_real_split("cifar10", root)  # x_train (72, 3072), 10 classes

Image-folder fixtures (``image-folder``, ``cub200``, ``cars196``, ``sop``) write PNG files and
need pillow (the core's ``vision`` extra); the others need only numpy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import numpy as np

from paperzoo.core.checks import UserError, check_positive_int

__all__ = ["FIXTURES", "write_fixture"]


def _images(labels: np.ndarray, channels: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``(N, C, H, W)``: noise in [0, 64) plus a 200-valued block placed by the label."""
    n = len(labels)
    img = rng.integers(0, 64, (n, channels, size, size), dtype=np.uint8)
    block = max(2, size // 4)
    for k in np.unique(labels):  # one slice per class (the fixture has a handful of classes)
        r, c = divmod(int(k) % 16, 4)
        rows = slice(r * block % (size - block + 1), r * block % (size - block + 1) + block)
        cols = slice(c * block % (size - block + 1), c * block % (size - block + 1) + block)
        img[labels == k, int(k) % channels, rows, cols] = 200
    return img


def _labels(num_classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(num_classes), per_class)).astype(np.uint8)


def _write_idx(path: Path, arr: np.ndarray) -> None:
    """The idx format: two zero bytes, the type code (0x08 = uint8), ndim, big-endian dims."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def _mnist(root: Path, per_class: int, num_classes: int, rng: np.random.Generator) -> None:
    for prefix, count in (("train", per_class), ("t10k", max(2, per_class // 2))):
        y = _labels(min(num_classes, 10), count, rng)
        x = _images(y, 1, 28, rng)[:, 0]
        _write_idx(root / f"{prefix}-images-idx3-ubyte", x)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte", y)


def _cifar10(root: Path, per_class: int, num_classes: int, rng: np.random.Generator) -> None:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    k = min(num_classes, 10)
    y = _labels(k, per_class, rng)
    records = np.concatenate([y[:, None], _images(y, 3, 32, rng).reshape(len(y), -1)], axis=1)
    for i, part in enumerate(np.array_split(records, 5), start=1):
        part.astype(np.uint8).tofile(folder / f"data_batch_{i}.bin")
    yt = _labels(k, max(2, per_class // 2), rng)
    test = np.concatenate([yt[:, None], _images(yt, 3, 32, rng).reshape(len(yt), -1)], axis=1)
    test.astype(np.uint8).tofile(folder / "test_batch.bin")
    names = ["airplane", "automobile", "bird", "cat", "deer"]
    names += ["dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n")


def _cifar100(root: Path, per_class: int, num_classes: int, rng: np.random.Generator) -> None:
    folder = root / "cifar-100-binary"
    folder.mkdir(parents=True, exist_ok=True)
    k = min(num_classes, 100)
    for split, count in (("train", per_class), ("test", max(2, per_class // 2))):
        fine = _labels(k, count, rng)
        coarse = (fine // 5).astype(np.uint8)
        pixels = _images(fine, 3, 32, rng).reshape(len(fine), -1)
        rec = np.concatenate([coarse[:, None], fine[:, None], pixels], axis=1)
        rec.astype(np.uint8).tofile(folder / f"{split}.bin")


def _png_tree(
    folder: Path, classes: list[str], per_class: int, rng: np.random.Generator
) -> list[tuple[str, int]]:
    """One PNG per (class, j) under ``folder/<class>/``; returns (relative path, class index)."""
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "image-folder fixtures need pillow: pip install 'paperzoo-core[vision]'"
        ) from err
    written = []
    for k, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        img = _images(np.full(per_class, k), 3, 24, rng).transpose(0, 2, 3, 1)
        for j in range(per_class):
            Image.fromarray(np.ascontiguousarray(img[j])).save(folder / name / f"{j:03d}.png")
            written.append((f"{name}/{j:03d}.png", k))
    return written


def _folder(
    root: Path,
    per_class: int,
    num_classes: int,
    rng: np.random.Generator,
    names: Sequence[str] | None = None,
) -> None:
    classes = list(names) if names else [f"class{k:02d}" for k in range(num_classes)]
    _png_tree(root / "train", classes, per_class, rng)
    _png_tree(root / "test", classes, max(2, per_class // 2), rng)


def _cub(root: Path, per_class: int, num_classes: int, rng: np.random.Generator) -> None:
    classes = [f"{k + 1:03d}.Bird_{k + 1}" for k in range(num_classes)]
    _png_tree(root / "CUB_200_2011" / "images", classes, per_class, rng)


def _cars(root: Path, per_class: int, num_classes: int, rng: np.random.Generator) -> None:
    _png_tree(root, [f"car{k + 1:03d}" for k in range(num_classes)], per_class, rng)


def _sop(root: Path, per_class: int, num_classes: int, rng: np.random.Generator) -> None:
    base = root / "Stanford_Online_Products"
    classes = [f"product_{k + 1}" for k in range(num_classes)]
    written = _png_tree(base / "bicycle_final", classes, per_class, rng)
    half = num_classes // 2
    for split, keep in (("train", range(half)), ("test", range(half, num_classes))):
        lines = ["image_id class_id super_class_id path"]
        rows = [(p, k) for p, k in written if k in keep]
        lines += [f"{i + 1} {k + 1} 1 bicycle_final/{p}" for i, (p, k) in enumerate(rows)]
        (base / f"Ebay_{split}.txt").write_text("\n".join(lines) + "\n")


def _text(root: Path, per_class: int, num_classes: int, rng: np.random.Generator) -> None:
    words = [f"w{i}" for i in range(max(num_classes, 2) * 5)]
    p = 1.0 / np.arange(1, len(words) + 1)  # Zipf-like word frequencies
    p /= p.sum()
    for split, lines in (
        ("train", per_class * 8),
        ("valid", per_class * 2),
        ("test", per_class * 2),
    ):
        text = [
            " ".join(rng.choice(words, size=int(rng.integers(4, 12)), p=p)) for _ in range(lines)
        ]
        (root / f"{split}.txt").write_text("\n".join(text) + "\n")


def _table(root: Path, per_class: int, num_classes: int, rng: np.random.Generator) -> None:
    features = 6
    centres = rng.normal(0.0, 2.0, (num_classes, features))
    for split, count in (("train", per_class), ("valid", max(2, per_class // 2)),
                         ("test", max(2, per_class // 2))):  # fmt: skip
        y = np.repeat(np.arange(num_classes), count)
        x = centres[y] + rng.normal(0.0, 1.0, (len(y), features))
        header = ",".join([*(f"f{j}" for j in range(features)), "label"])
        body = "\n".join(
            ",".join([*(f"{v:.5f}" for v in row), str(c)]) for row, c in zip(x, y, strict=True)
        )
        (root / f"{split}.csv").write_text(header + "\n" + body + "\n")


_Writer = Callable[[Path, int, int, np.random.Generator], None]

FIXTURES: Final[dict[str, tuple[_Writer, int]]] = {
    "mnist": (_mnist, 10),
    "fashion-mnist": (_mnist, 10),
    "cifar10": (_cifar10, 10),
    "cifar100": (_cifar100, 10),
    "image-folder": (_folder, 4),
    "cub200": (_cub, 8),
    "cars196": (_cars, 8),
    "sop": (_sop, 8),
    "text-corpus": (_text, 10),
    "table": (_table, 3),
}
"""Data set name -> (its writer, the default number of classes)."""


def write_fixture(
    name: str,
    root: str | os.PathLike[str],
    *,
    per_class: int = 8,
    num_classes: int | None = None,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Write a tiny copy of data set ``name`` in its official layout under ``root``.

    Args:
        name: one of :data:`FIXTURES` (the names of :func:`~paperzoo.core.datasets.load_real_dataset`).
        root: the folder to write into (created if missing).
        per_class: training examples per class (test and valid get half, at least 2; the
            text corpus writes ``8 * per_class`` training lines).
        num_classes: classes to write; default: 10 for MNIST/CIFAR (CIFAR-100's fine labels
            0..9 of its 100), 8 for the retrieval sets (4 train and 4 test classes), 4 for an
            image folder, 3 for a table; for the text corpus it scales the vocabulary.
        seed: the seed of every pixel, label order and feature.
        class_names: the class folder names of an ``image-folder`` fixture (e.g. ``["attack",
            "real"]``; they set ``num_classes``); ignored for the other names.

    Returns:
        ``root`` as a :class:`~pathlib.Path`, ready for ``load_real_dataset(name, root)``.

    Raises:
        UserError: an unknown name.
        ValueError: a non-positive ``per_class`` or ``num_classes`` below 2.
    """
    if name not in FIXTURES:
        raise UserError(
            f"dataset: unknown fixture {name!r}; available: {', '.join(sorted(FIXTURES))}"
        )
    writer, default_k = FIXTURES[name]
    check_positive_int("per_class", per_class)
    k = (
        default_k
        if num_classes is None
        else check_positive_int("num_classes", num_classes, minimum=2)
    )
    names = list(class_names) if class_names is not None and name == "image-folder" else None
    if names is not None and (len(names) < 2 or len(set(names)) != len(names)):
        raise ValueError(f"class_names: expected 2 or more distinct names, got {names}")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if names is not None:
        _folder(path, per_class, len(names), rng, names)
    else:
        writer(path, per_class, k, rng)
    return path
