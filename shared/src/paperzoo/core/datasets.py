"""The papers' real data sets, read from a local folder in their official formats.

Nothing here downloads and nothing is ever written into the user's folder: the user points
``root`` at files they already have, and a missing or malformed file is one :class:`UserError`
naming the expected layout and where the official files come from. The names and their layouts
(``mnist``, ``fashion-mnist``: idx files; ``cifar10``, ``cifar100``: the binary version;
``image-folder``, ``cub200``, ``cars196``: class-per-folder trees; ``sop``: the Ebay lists;
``text-corpus``: three text files; ``table``: CSV or NPZ) are listed in ``docs/core.md`` and in
each reader's error message.

Every data set is a streaming, map-style ``torch.utils.data.Dataset`` whose items are ``(x, y)``:
images ``(C, H, W)`` float32 after the transform and a 0-dim int64 label; table rows ``(F,)``
float32 and a label; text windows ``(T,)`` int64 token ids and the ``(T,)`` next tokens. Image
folders are read file by file (never one in-memory tensor); MNIST and CIFAR keep their uint8
arrays (47 MB, 180 MB) and convert each item on access, as torchvision does.

The image transforms and ``ImageFolder`` come from torchvision (the core's ``vision`` extra:
``pip install 'paperzoo-core[vision]'``). Deviation: the idx and CIFAR readers are our own numpy
code, because torchvision's MNIST reads only unpacked idx files (it unpacks ``.gz`` by writing
into the user's folder) and its CIFAR reader unpickles the python version and checks each file's
MD5 sum (which a test fixture cannot match).

Example::

    from paperzoo.core.datasets import load_real_dataset, make_real_loader

    train = load_real_dataset("cifar10", "/data/cifar", split="train")
    loader = make_real_loader(train, batch_size=128, device="cuda")
    for x, y in loader:  # x (128, 3, 32, 32) float32, y (128,) int64
        ...

This module is longer than 500 lines: it is one concept (the registry of real data sets, the
reader of each format it names, and the three entry points experiments call on top of them:
:func:`load_real_split`, :func:`load_split`, :func:`load_retrieval_set`); splitting the readers
would scatter the layouts that the error messages, the registry and the documentation share. The
entry points (the last ~200 lines) could move to a module of their own if it grows further.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import os
import pickle
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, cast

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from paperzoo.core.checks import UserError, check_positive_int
from paperzoo.core.data import Split, load_dataset, split_indices

__all__ = [
    "REAL_DATASETS",
    "ImageArrayDataset",
    "ImageListDataset",
    "RealDataset",
    "TableDataset",
    "TokenWindowDataset",
    "available_real_datasets",
    "build_vocabulary",
    "load_real_dataset",
    "load_real_split",
    "load_retrieval_set",
    "load_split",
    "make_real_loader",
    "standard_transform",
]

Item = tuple[Tensor, Tensor]
"""One example: the input and its target (a 0-dim int64 label, or ``(T,)`` next tokens)."""

Task = Literal["classification", "language-model"]

UNK: Final = "<unk>"
EOS: Final = "<eos>"

# per-channel mean and standard deviation of each training set (pixels in [0, 1])
_STATS: Final[dict[str, tuple[tuple[float, ...], tuple[float, ...]]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

_SOURCES: Final[dict[str, str]] = {
    "mnist": "the four idx files of the MNIST home page (yann.lecun.com/exdb/mnist) or a mirror",
    "fashion-mnist": "the four idx files of github.com/zalandoresearch/fashion-mnist (data/fashion)",
    "cifar10": "the 'CIFAR-10 binary version' from www.cs.toronto.edu/~kriz/cifar.html, unpacked",
    "cifar100": "the 'CIFAR-100 binary version' from www.cs.toronto.edu/~kriz/cifar.html, unpacked",
    "image-folder": "any class-per-folder image tree, e.g. an ImageNet subset",
    "cub200": "CUB_200_2011.tgz from www.vision.caltech.edu/datasets/cub_200_2011, unpacked",
    "cars196": "the Stanford Cars 'car_ims.tgz' and 'cars_annos.mat' "
    "(ai.stanford.edu/~jkrause/cars), unpacked, or its images sorted into one folder per class",
    "sop": "Stanford_Online_Products.zip from cvgl.stanford.edu/projects/lifted_struct, unpacked",
    "text-corpus": "a word-level corpus split into three files, e.g. PTB or WikiText-2/103",
    "table": "a CSV with a header row (numeric features, an integer label column) or an NPZ "
    "with arrays 'x' (N, F) and 'y' (N,)",
}


def _missing(name: str, expected: str, detail: str = "") -> UserError:
    more = f" ({detail})" if detail else ""
    return UserError(f"{name}: expected {expected}{more}; these are {_SOURCES[name]}")


def _vision(module: str, what: str) -> Any:
    """``torchvision.<module>``, or an ImportError naming the ``vision`` extra."""
    import importlib

    try:
        return importlib.import_module(f"torchvision.{module}")
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{what} needs torchvision; install the vision extra: "
            "pip install 'paperzoo-core[vision]'"
        ) from err


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RealDataset:
    """One split of a real data set and what a model needs to know about it.

    Attributes:
        dataset: a map-style dataset of ``(x, y)`` items (see the module docstring).
        name: the registry name (``"cifar10"``, ...).
        split: the split read (``"train"``, ``"test"``, ``"valid"``, ``"all"``).
        task: ``"classification"`` or ``"language-model"``.
        num_classes: the classes of this split (for ``text-corpus`` the vocabulary size).
        classes: class names, index = label (for ``text-corpus`` the vocabulary, index = id).
        input_shape: the shape of one transformed input, e.g. ``(3, 32, 32)``, ``(F,)``, ``(T,)``
            (``None`` where a user transform decides it).
        root: the folder or file that was read.
    """

    dataset: Dataset[Item]
    name: str
    split: str
    task: Task
    num_classes: int
    classes: tuple[str, ...]
    input_shape: tuple[int, ...] | None
    root: Path

    def __len__(self) -> int:
        """Number of examples (windows for ``text-corpus``)."""
        return len(cast(Sequence[Item], self.dataset))


def _label(target: int, offset: int = 0) -> Tensor:
    """A class index as a 0-dim int64 tensor, shifted by ``-offset`` (module level: picklable)."""
    return torch.tensor(target - offset, dtype=torch.int64)


class ImageArrayDataset(Dataset[Item]):
    """uint8 images ``(N, C, H, W)`` held in memory, each converted on access.

    Items are ``(transform(image), label)`` with ``image`` the ``(C, H, W)`` uint8 tensor (a
    float32 ``[0, 1]`` tensor when ``transform`` is ``None``) and ``label`` 0-dim int64.
    """

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, transform: Callable[[Tensor], Tensor] | None
    ) -> None:
        if images.ndim != 4 or images.dtype != np.uint8 or len(images) != len(labels):
            raise ValueError(
                f"images, labels: expected uint8 (N, C, H, W) and (N,), got {images.dtype} "
                f"{images.shape} and {labels.shape}"
            )
        self.images = images
        self.labels = labels.astype(np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Item:
        img = torch.from_numpy(self.images[index])
        x = img.float().div_(255.0) if self.transform is None else self.transform(img)
        return x, torch.tensor(int(self.labels[index]), dtype=torch.int64)


class ImageListDataset(Dataset[Item]):
    """Images read from a list of ``(path, label)`` pairs on access, with torchvision's loader."""

    def __init__(
        self, samples: Sequence[tuple[str, int]], transform: Callable[[Any], Tensor] | None
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self._loader = _vision("datasets.folder", "ImageListDataset").default_loader

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Item:
        path, target = self.samples[index]
        img = self._loader(path)
        x = img if self.transform is None else self.transform(img)
        return x, _label(target)


class TokenWindowDataset(Dataset[Item]):
    """Non-overlapping windows of a token stream for language modelling.

    Item ``i`` is ``(ids[iT : iT + T], ids[iT + 1 : iT + T + 1])``, both int64 ``(T,)``: the
    input and its next tokens. There are ``(len(ids) - 1) // T`` windows; the tail is dropped.
    """

    def __init__(self, ids: Tensor, seq_len: int) -> None:
        if ids.dim() != 1:
            raise ValueError(f"ids: expected shape (N,), got {tuple(ids.shape)}")
        self.ids = ids
        self.seq_len = check_positive_int("seq_len", seq_len)

    def __len__(self) -> int:
        return max(0, (self.ids.numel() - 1) // self.seq_len)

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < len(self):
            raise IndexError(f"index: expected a value in [0, {len(self)}), got {index}")
        start = index * self.seq_len
        chunk = self.ids[start : start + self.seq_len + 1].long()
        return chunk[:-1], chunk[1:]


class TableDataset(Dataset[Item]):
    """Rows of a float32 feature matrix ``(N, F)`` with int64 labels ``(N,)``."""

    def __init__(
        self, x: Tensor, y: Tensor, transform: Callable[[Tensor], Tensor] | None = None
    ) -> None:
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: int) -> Item:
        row = self.x[index]
        return (row if self.transform is None else self.transform(row)), self.y[index]


# ----------------------------------------------------------------------------- transforms


def standard_transform(name: str, *, train: bool, image_size: int = 224) -> Callable[[Any], Tensor]:
    """The usual transform of a data set's split, built from ``torchvision.transforms.v2``.

    - ``mnist``, ``fashion-mnist``: to float in [0, 1], normalise (no augmentation).
    - ``cifar10``, ``cifar100``: train adds a random 32x32 crop of the 4-pixel zero-padded
      image and a horizontal flip; both normalise with the training set's channel statistics.
    - image folders (``image-folder``, ``cub200``, ``cars196``, ``sop``): train a random
      resized crop to ``image_size`` and a horizontal flip; test a resize of the short side to
      ``image_size * 256 / 224`` and a center crop; both normalise with ImageNet's statistics.

    Returns:
        A callable from a PIL image or a ``(C, H, W)`` uint8 tensor to a float32 ``(C, H, W)``
        plain tensor.
    """
    v2 = _vision("transforms.v2", "standard_transform")
    check_positive_int("image_size", image_size)
    if name in ("mnist", "fashion-mnist", "cifar10", "cifar100"):
        mean, std = _STATS[name]
        aug = (
            [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]
            if train and name.startswith("cifar")
            else []
        )
    elif name in ("image-folder", "cub200", "cars196", "sop"):
        mean, std = _STATS["imagenet"]
        if train:
            aug = [v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()]
        else:
            resize = round(image_size * 256 / 224)
            aug = [v2.Resize(resize, antialias=True), v2.CenterCrop(image_size)]
    else:
        raise UserError(f"transform: no standard transform for {name!r}")
    return cast(
        Callable[[Any], Tensor],
        v2.Compose(
            [
                v2.ToImage(),
                *aug,
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(list(mean), list(std)),
                v2.ToPureTensor(),
            ]
        ),
    )


# ----------------------------------------------------------------------------- idx (MNIST)

_IDX_FILES: Final = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path, name: str) -> np.ndarray:
    """An idx file (raw or gzip) as a uint8 array: magic ``0 0 8 ndim``, big-endian dims, data."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise _missing(name, "readable idx files", f"{path}: {err}") from err
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or not 1 <= data[3] <= 4:
        raise _missing(name, "idx files of unsigned bytes", f"{path} has a bad header")
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise _missing(name, "complete idx files", f"{path}: header {dims}, {body.size} bytes")
    return body.reshape(dims).copy()


def _find_idx(root: Path, name: str, stem: str) -> Path:
    sub = "MNIST" if name == "mnist" else "FashionMNIST"
    for folder in (root, root / "raw", root / sub / "raw"):
        for fname in (stem, stem + ".gz"):
            if (folder / fname).is_file():
                return folder / fname
    raise _missing(
        name,
        f"{root}/{stem}[.gz] (train-/t10k-images-idx3-ubyte and train-/t10k-labels-idx1-ubyte; "
        f"also found under ROOT/raw or ROOT/{sub}/raw)",
    )


def _load_mnist(name: str, root: Path, split: str, opts: _Options) -> RealDataset:
    img_stem, lbl_stem = _IDX_FILES[_split(name, split, ("train", "test"))]
    images = _read_idx(_find_idx(root, name, img_stem), name)
    labels = _read_idx(_find_idx(root, name, lbl_stem), name)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise _missing(
            name, "images (N, 28, 28) and labels (N,)", f"{images.shape}, {labels.shape}"
        )
    if labels.size and labels.max() > 9:
        raise _missing(name, "labels in [0, 10)", f"found {int(labels.max())}")
    ds = ImageArrayDataset(images[:, None], labels, opts.image_transform(name, split))
    classes = tuple(str(c) for c in range(10))
    if name == "fashion-mnist":
        classes = (
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        )  # fmt: skip
    return RealDataset(ds, name, split, "classification", 10, classes, (1, 28, 28), root)


# ----------------------------------------------------------------------------- CIFAR


def _read_lines(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ()
    return tuple(s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip())


def _load_cifar(name: str, root: Path, split: str, opts: _Options) -> RealDataset:
    split = _split(name, split, ("train", "test"))
    ten = name == "cifar10"
    k = 10 if ten else (100 if opts.cifar100_labels == "fine" else 20)
    bin_dir = next(
        (d for d in (root / ("cifar-10-batches-bin" if ten else "cifar-100-binary"), root)
         if (d / ("data_batch_1.bin" if ten else "train.bin")).is_file()),
        None,
    )  # fmt: skip
    py_dir = root / ("cifar-10-batches-py" if ten else "cifar-100-python")
    if bin_dir is not None:
        if ten:
            files = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else []
            files = files or ["test_batch.bin"]
        else:
            files = [f"{split}.bin"]
        images, labels = _read_cifar_bin([bin_dir / f for f in files], name, ten, opts)
        meta = "batches.meta.txt" if ten else f"{opts.cifar100_labels}_label_names.txt"
        classes = _read_lines(bin_dir / meta)
    elif py_dir.is_dir():
        if not opts.trust_pickle:
            raise UserError(
                f"{name}: found only the python version in {py_dir}, which is a pickle and "
                "can run code when read; use the binary version, or pass trust_pickle=True "
                "if you trust these files"
            )
        images, labels, classes = _read_cifar_pickle(py_dir, name, ten, split, opts)
    else:
        layout = (
            f"{root}/cifar-10-batches-bin/data_batch_1.bin ... data_batch_5.bin, test_batch.bin"
            if ten
            else f"{root}/cifar-100-binary/train.bin and test.bin"
        )
        raise _missing(name, layout)
    if labels.size and int(labels.max()) >= k:
        raise _missing(name, f"labels in [0, {k})", f"found {int(labels.max())}")
    classes = classes if len(classes) == k else tuple(str(c) for c in range(k))
    ds = ImageArrayDataset(images, labels, opts.image_transform(name, split))
    return RealDataset(ds, name, split, "classification", k, classes, (3, 32, 32), root)


def _read_cifar_bin(
    files: list[Path], name: str, ten: bool, opts: _Options
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-size records: [coarse byte] label byte, then 3072 bytes (1024 R, 1024 G, 1024 B)."""
    head = 1 if ten else 2
    parts = []
    for f in files:
        if not f.is_file():
            raise _missing(name, f"{f}", "one of the binary batches is missing")
        raw = np.fromfile(f, dtype=np.uint8)
        if raw.size == 0 or raw.size % (head + 3072):
            raise _missing(
                name, f"records of {head + 3072} bytes", f"{f} has {raw.size} bytes; truncated?"
            )
        parts.append(raw.reshape(-1, head + 3072))
    rec = np.concatenate(parts)
    col = 0 if ten or opts.cifar100_labels == "coarse" else 1
    return rec[:, head:].reshape(-1, 3, 32, 32).copy(), rec[:, col].astype(np.int64)


def _read_cifar_pickle(
    folder: Path, name: str, ten: bool, split: str, opts: _Options
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The python version (pickled dicts of b'data' (N, 3072) and labels); trusted files only."""

    def load(path: Path) -> dict[bytes, Any]:
        try:
            with path.open("rb") as f:
                return cast(dict[bytes, Any], pickle.load(f, encoding="bytes"))
        except (OSError, pickle.UnpicklingError, EOFError, ValueError) as err:
            raise _missing(name, "readable python-version batches", f"{path}: {err}") from err

    if ten:
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        key, meta_file, meta_key = b"labels", "batches.meta", b"label_names"
    else:
        files, meta_file = [split], "meta"
        key = b"fine_labels" if opts.cifar100_labels == "fine" else b"coarse_labels"
        meta_key = b"fine_label_names" if opts.cifar100_labels == "fine" else b"coarse_label_names"
    xs, ys = [], []
    for f in files:
        d = load(folder / f)
        if b"data" not in d or key not in d:
            raise _missing(name, f"batches with b'data' and {key!r}", f"{folder / f}")
        xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(d[key], dtype=np.int64))
    meta = load(folder / meta_file) if (folder / meta_file).is_file() else {}
    classes = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in meta.get(meta_key, ()))
    return np.concatenate(xs), np.concatenate(ys), classes


# ----------------------------------------------------------------------------- image folders


def _image_folder(folder: Path, name: str, transform: Any) -> Any:
    folders = _vision("datasets", "image folders")
    try:
        return folders.ImageFolder(str(folder), transform=transform, target_transform=_label)
    except (FileNotFoundError, OSError) as err:
        raise _missing(name, f"{folder}/<class>/<image>", str(err)) from err


def _load_folder(name: str, root: Path, split: str, opts: _Options) -> RealDataset:
    class_split = opts.class_split if opts.class_split is not None else name != "image-folder"
    if name == "cub200":
        tree = next(
            (d for d in (root / "CUB_200_2011" / "images", root / "images") if d.is_dir()), root
        )
    else:
        tree = root
    transform = opts.image_transform(name, split)
    shape = None if opts.transform is not None else (3, opts.image_size, opts.image_size)
    if not class_split:
        split = _split(name, split, ("train", "val", "test"))
        folder = tree / split
        if split == "test" and not folder.is_dir():
            folder = tree / "val"
        if not folder.is_dir():
            raise _missing(name, f"{tree}/{split}/<class>/<image> (or class_split=True)")
        full = _image_folder(folder, name, transform)
        classes = tuple(full.classes)
        return RealDataset(full, name, split, "classification", len(classes), classes, shape, root)
    split = _split(name, split, ("train", "test"))
    if not tree.is_dir():
        raise _missing(name, f"{tree}/<class>/<image>")
    full = _image_folder(tree, name, transform)
    k = len(full.classes)
    if k < 2:
        raise _missing(name, f"at least 2 class folders in {tree}", f"found {k}")
    half = k // 2
    targets = list(full.targets)  # ImageFolder sorts samples by class
    cut = bisect.bisect_left(targets, half)
    if split == "train":
        indices, classes = range(cut), tuple(full.classes[:half])
    else:
        indices, classes = range(cut, len(targets)), tuple(full.classes[half:])
        full.target_transform = functools.partial(_label, offset=half)
    ds: Dataset[Item] = Subset(full, indices)
    return RealDataset(ds, name, split, "classification", len(classes), classes, shape, root)


def _check_first_image(name: str, samples: Sequence[tuple[str, int]], listing: Path) -> None:
    """A listed image that is not there means the wrong root: say so now, not in a worker."""
    if samples and not Path(samples[0][0]).is_file():
        raise _missing(
            name,
            f"the images that {listing.name} lists, relative to {listing.parent}",
            f"{samples[0][0]} is missing",
        )


def _load_cars(name: str, root: Path, split: str, opts: _Options) -> RealDataset:
    """Cars-196: the official ``cars_annos.mat`` + ``car_ims/`` if present, else a class tree."""
    mat = root / "cars_annos.mat"
    if not mat.is_file():
        return _load_folder(name, root, split, opts)
    split = _split(name, split, ("train", "test"))
    try:
        from scipy.io import loadmat
        from scipy.io.matlab import MatReadError
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "cars_annos.mat needs scipy: pip install 'paperzoo-core[vision]'"
        ) from err
    try:
        m = loadmat(str(mat), squeeze_me=True)  # MATLAB v5: plain arrays, nothing unpickled
        ann = m["annotations"]
        paths = [str(p) for p in np.atleast_1d(ann["relative_im_path"])]
        labels = np.atleast_1d(ann["class"]).astype(np.int64)
        names = [str(c) for c in np.atleast_1d(m.get("class_names", []))]
    except (OSError, ValueError, KeyError, TypeError, MatReadError, NotImplementedError) as err:
        raise _missing(
            name, "cars_annos.mat with 'annotations' (relative_im_path, class)", f"{mat}: {err}"
        ) from err
    ids = sorted(set(labels.tolist()))
    if len(ids) < 2:
        raise _missing(name, f"at least 2 classes in {mat}", f"found {len(ids)}")
    # the retrieval split: the first half of the class ids (1..98) train, the rest (99..196) test
    keep = ids[: len(ids) // 2] if split == "train" else ids[len(ids) // 2 :]
    index = {c: i for i, c in enumerate(keep)}
    samples = [
        (str(root / p), index[c]) for p, c in zip(paths, labels.tolist(), strict=True) if c in index
    ]
    _check_first_image(name, samples, mat)
    ds = ImageListDataset(samples, opts.image_transform(name, split))
    shape = None if opts.transform is not None else (3, opts.image_size, opts.image_size)
    classes = tuple(names[c - 1] if 0 < c <= len(names) else str(c) for c in keep)
    return RealDataset(ds, name, split, "classification", len(keep), classes, shape, root)


def _load_sop(name: str, root: Path, split: str, opts: _Options) -> RealDataset:
    split = _split(name, split, ("train", "test"))
    base = next(
        (d for d in (root / "Stanford_Online_Products", root) if (d / "Ebay_train.txt").is_file()),
        None,
    )
    if base is None:
        raise _missing(
            name, f"{root}/Stanford_Online_Products/Ebay_train.txt, Ebay_test.txt and the images"
        )
    listing = base / f"Ebay_{split}.txt"
    rows = listing.read_text(encoding="utf-8").split("\n") if listing.is_file() else []
    try:
        parsed = [(int(r.split()[1]), r.split()[3]) for r in rows[1:] if r.strip()]
    except (IndexError, ValueError) as err:
        raise _missing(
            name, "lines 'image_id class_id super_class_id path'", f"{listing}: {err}"
        ) from err
    if not parsed:
        raise _missing(name, f"{listing} with a header and one line per image")
    ids = sorted({c for c, _ in parsed})
    index = {c: i for i, c in enumerate(ids)}
    samples = [(str(base / p), index[c]) for c, p in parsed]
    _check_first_image(name, samples, listing)
    ds = ImageListDataset(samples, opts.image_transform(name, split))
    shape = None if opts.transform is not None else (3, opts.image_size, opts.image_size)
    classes = tuple(str(c) for c in ids)
    return RealDataset(ds, name, split, "classification", len(ids), classes, shape, root)


# ----------------------------------------------------------------------------- text corpus


def _corpus_file(root: Path, split: str) -> Path:
    for fname in (f"{split}.txt", f"ptb.{split}.txt", f"wiki.{split}.tokens"):
        if (root / fname).is_file():
            return root / fname
    raise _missing(
        "text-corpus",
        f"{root}/{split}.txt (or ptb.{split}.txt, wiki.{split}.tokens) for each of train, "
        "valid and test; the vocabulary always comes from the train file",
    )


@functools.lru_cache(maxsize=4)
def _vocab_cached(path: str, mtime_ns: int, size: int, vocab_size: int | None) -> tuple[str, ...]:
    counts: Counter[str] = Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            counts.update(line.split())
            counts[EOS] += 1
    counts.pop(UNK, None)
    words = sorted(counts, key=lambda w: (-counts[w], w))
    if vocab_size is not None:
        words = words[: vocab_size - 1]
    return (UNK, *words)


def build_vocabulary(
    path: str | os.PathLike[str], vocab_size: int | None = None
) -> tuple[str, ...]:
    """The word vocabulary of a whitespace-tokenised text file, index = token id.

    Each line counts as its words plus ``<eos>``. Id 0 is ``<unk>``; then the ``vocab_size - 1``
    most frequent words (all of them for ``None``), by count, ties alphabetically. An ``<unk>``
    in the text (as in PTB) maps to id 0.
    """
    if vocab_size is not None:
        check_positive_int("vocab_size", vocab_size, minimum=2)
    st = os.stat(path)
    return _vocab_cached(str(Path(path).resolve()), st.st_mtime_ns, st.st_size, vocab_size)


def _load_text(name: str, root: Path, split: str, opts: _Options) -> RealDataset:
    split = _split(name, split, ("train", "valid", "test"))
    vocab = build_vocabulary(_corpus_file(root, "train"), opts.vocab_size)
    index = {w: i for i, w in enumerate(vocab)}
    path = _corpus_file(root, split)
    eos = index.get(EOS, 0)
    with path.open(encoding="utf-8") as f:
        ids = np.fromiter(
            (i for line in f for i in (*(index.get(w, 0) for w in line.split()), eos)),
            dtype=np.int64 if len(vocab) >= 2**31 else np.int32,
        )
    ds = TokenWindowDataset(torch.from_numpy(ids), opts.seq_len)
    if len(ds) == 0:
        raise _missing(name, f"at least {opts.seq_len + 1} tokens in {path}", f"got {ids.size}")
    return RealDataset(ds, name, split, "language-model", len(vocab), vocab, (opts.seq_len,), root)


# ----------------------------------------------------------------------------- tables


def _load_table(name: str, root: Path, split: str, opts: _Options) -> RealDataset:
    if root.is_file():
        split, path = _split(name, split, ("all",)), root
    else:
        split = _split(name, split, ("train", "valid", "test"))
        found = [root / f"{split}{e}" for e in (".csv", ".npz") if (root / f"{split}{e}").is_file()]
        if not found:
            raise _missing(name, f"{root}/{split}.csv or {root}/{split}.npz, or ROOT one file")
        path = found[0]
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z or "y" not in z:
                    raise _missing(name, f"arrays 'x' and 'y' in {path}", f"found {z.files}")
                x, y = np.asarray(z["x"]), np.asarray(z["y"])
        except (OSError, ValueError) as err:
            if isinstance(err, UserError):
                raise
            raise _missing(name, "a readable .npz of plain arrays", f"{path}: {err}") from err
    elif path.suffix == ".csv":
        x, y = _read_csv(path, name, opts.label_column)
    else:
        raise _missing(name, "a .csv or .npz file", f"got {path}")
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise _missing(name, "features (N, F) and labels (N,), N >= 1", f"{x.shape}, {y.shape}")
    if not np.issubdtype(y.dtype, np.number) or not np.array_equal(y, np.round(y)):
        raise _missing(name, "integer labels", f"{path} has {y.dtype} labels")
    if y.min() < 0:
        raise _missing(name, "non-negative labels", f"{path} has {int(y.min())}")
    try:
        xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    except (TypeError, ValueError) as err:
        raise _missing(name, "numeric features", f"{path}: {err}") from err
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    k = int(yt.max()) + 1
    classes = tuple(str(c) for c in range(k))
    ds = TableDataset(xt, yt, opts.transform)
    shape = None if opts.transform is not None else (int(x.shape[1]),)
    return RealDataset(ds, name, split, "classification", k, classes, shape, root)


def _read_csv(path: Path, name: str, label_column: str) -> tuple[np.ndarray, np.ndarray]:
    import csv

    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or label_column not in rows[0]:
        found = rows[0] if rows else "an empty file"
        raise _missing(name, f"a header row with the label column {label_column!r}", f"{found}")
    col = rows[0].index(label_column)
    body = [r for r in rows[1:] if r]
    try:
        table = np.asarray(body, dtype=np.float64)
    except ValueError as err:
        raise _missing(
            name, f"numeric cells with {len(rows[0])} per row", f"{path}: {err}"
        ) from err
    return np.delete(table, col, axis=1), table[:, col]


# ----------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class _Options:
    transform: Callable[[Any], Tensor] | None
    augment: bool | None
    image_size: int
    class_split: bool | None
    trust_pickle: bool
    cifar100_labels: Literal["fine", "coarse"]
    vocab_size: int | None
    seq_len: int
    label_column: str

    def image_transform(self, name: str, split: str) -> Callable[[Any], Tensor]:
        if self.transform is not None:
            return self.transform
        train = self.augment if self.augment is not None else split == "train"
        return standard_transform(name, train=train, image_size=self.image_size)


def _split(name: str, split: str, allowed: tuple[str, ...]) -> str:
    if split not in allowed:
        raise UserError(f"split: expected one of {list(allowed)} for {name}, got {split!r}")
    return split


_Reader = Callable[[str, Path, str, _Options], RealDataset]

REAL_DATASETS: Final[dict[str, _Reader]] = {
    "mnist": _load_mnist,
    "fashion-mnist": _load_mnist,
    "cifar10": _load_cifar,
    "cifar100": _load_cifar,
    "image-folder": _load_folder,
    "cub200": _load_folder,
    "cars196": _load_cars,
    "sop": _load_sop,
    "text-corpus": _load_text,
    "table": _load_table,
}
"""Registry: data set name -> its reader (use :func:`load_real_dataset`)."""


def available_real_datasets() -> list[str]:
    """Names accepted by :func:`load_real_dataset`."""
    return sorted(REAL_DATASETS)


def load_real_dataset(
    name: str,
    root: str | os.PathLike[str],
    *,
    split: str = "train",
    transform: Callable[[Any], Tensor] | None = None,
    augment: bool | None = None,
    image_size: int = 224,
    class_split: bool | None = None,
    trust_pickle: bool = False,
    cifar100_labels: Literal["fine", "coarse"] = "fine",
    vocab_size: int | None = None,
    seq_len: int = 35,
    label_column: str = "label",
) -> RealDataset:
    """One split of a real data set read from the local folder ``root`` (see the module table).

    Args:
        name: one of :func:`available_real_datasets`.
        root: the folder (for ``table`` also a single ``.csv``/``.npz`` file, split ``"all"``).
        split: ``"train"`` or ``"test"``; ``"valid"`` for ``text-corpus`` and ``table``,
            ``"val"`` for ``image-folder`` without ``class_split``.
        transform: replaces the standard image transform (called on a ``(C, H, W)`` uint8
            tensor for MNIST/CIFAR, a PIL image for folders, a ``(F,)`` row for tables).
        augment: train-time augmentation of :func:`standard_transform`; default: on for
            ``split="train"`` only.
        image_size: the crop size of image folders (224).
        class_split: the retrieval papers' split of one class-per-folder tree: the first half of
            the sorted classes (``K // 2``) is ``train``, the rest ``test``, each relabelled from
            0. Default: on for ``cub200`` and ``cars196``, off for ``image-folder``.
        trust_pickle: allow CIFAR's python (pickle) version when its binary version is absent;
            unpickling can run code, so only for files you trust.
        cifar100_labels: CIFAR-100's ``"fine"`` (100) or ``"coarse"`` (20) labels.
        vocab_size: ``text-corpus`` vocabulary size ``D`` (``<unk>`` plus the ``D - 1`` most
            frequent training words); ``None`` keeps every training word.
        seq_len: ``text-corpus`` window length ``T``.
        label_column: the label column of a CSV table.

    Options that do not apply to ``name`` are ignored.

    Returns:
        A :class:`RealDataset`; nothing is written anywhere.

    Raises:
        UserError: an unknown name or split, or a missing or malformed file (one line naming the
            expected layout and where the official files come from).
    """
    if name not in REAL_DATASETS:
        raise UserError(
            f"dataset: unknown name {name!r}; available: {', '.join(available_real_datasets())}"
        )
    path = Path(root).expanduser()
    if not path.exists():
        raise _missing(name, f"an existing folder, got {path} (which does not exist)")
    if cifar100_labels not in ("fine", "coarse"):
        raise UserError(f"cifar100_labels: expected 'fine' or 'coarse', got {cifar100_labels!r}")
    opts = _Options(
        transform=transform,
        augment=augment,
        image_size=check_positive_int("image_size", image_size),
        class_split=class_split,
        trust_pickle=bool(trust_pickle),
        cifar100_labels=cifar100_labels,
        vocab_size=vocab_size,
        seq_len=check_positive_int("seq_len", seq_len),
        label_column=label_column,
    )
    return REAL_DATASETS[name](name, path, split, opts)


def make_real_loader(
    data: RealDataset | Dataset[Item],
    *,
    batch_size: int,
    shuffle: bool | None = None,
    device: str | torch.device = "cpu",
    num_workers: int | None = None,
    seed: int = 0,
    drop_last: bool = False,
) -> DataLoader[Item]:
    """A ``DataLoader`` over a real data set: workers, pinned memory on CUDA, a seeded order.

    Args:
        data: a :class:`RealDataset` or any map-style dataset.
        batch_size: examples per batch (per rank under ``torch.distributed``).
        shuffle: default: on for a ``RealDataset`` of split ``"train"``, else off.
        device: where the batches go; ``cuda`` turns on ``pin_memory``.
        num_workers: loader processes; default ``min(8, cores - 1)`` on CUDA, 0 elsewhere.
        seed: the shuffling seed (its generator state is checkpointed by ``fit``).
        drop_last: drop the last incomplete batch.

    Under ``torch.distributed`` it uses a ``DistributedSampler`` (``fit`` calls its ``set_epoch``).
    """
    check_positive_int("batch_size", batch_size)
    ds = data.dataset if isinstance(data, RealDataset) else data
    if shuffle is None:
        shuffle = isinstance(data, RealDataset) and data.split == "train"
    cuda = torch.device(device).type == "cuda"
    if num_workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        num_workers = min(8, max(0, (cores or 1) - 1)) if cuda else 0
    check_positive_int("num_workers", num_workers, minimum=0)
    common: dict[str, Any] = {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "pin_memory": cuda,
        "drop_last": drop_last,
        "persistent_workers": num_workers > 0,
    }
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        sampler: DistributedSampler[Item] = DistributedSampler(
            ds, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        return DataLoader(ds, sampler=sampler, **common)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ds, shuffle=shuffle, generator=gen, **common)


def _materialise(real: RealDataset, batch_size: int = 512) -> tuple[Tensor, Tensor]:
    """All items of ``real`` as ``(N, F)`` float32 features and ``(N,)`` int64 labels."""
    ds = real.dataset
    if isinstance(ds, ImageArrayDataset) and ds.transform is _unit_scale:
        x = torch.from_numpy(ds.images).flatten(1).float().div_(255.0)
        return x, torch.from_numpy(ds.labels)
    if isinstance(ds, TableDataset) and ds.transform is None:
        return ds.x.float(), ds.y.long()
    xs, ys = [], []
    for xb, yb in DataLoader(ds, batch_size=batch_size, shuffle=False):
        xs.append(xb.flatten(1).float())
        ys.append(yb.long())
    if not xs:
        raise _missing(real.name, f"at least one example in split {real.split!r}")
    return torch.cat(xs), torch.cat(ys)


def _unit_scale(img: Tensor) -> Tensor:
    """uint8 ``(C, H, W)`` -> float32 in [0, 1] (module level: picklable, and recognised)."""
    return img.float().div_(255.0)


def _subset(x: Tensor, y: Tensor, limit: int | None, seed: int) -> tuple[Tensor, Tensor]:
    if limit is None or limit >= len(y):
        return x, y
    keep = torch.from_numpy(np.random.default_rng(seed).permutation(len(y))[:limit].copy())
    return x[keep], y[keep]


def load_real_split(
    name: str,
    root: str | os.PathLike[str],
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    limit: int | None = None,
    image_size: int = 32,
    **options: Any,
) -> Split:
    """A real data set as the in-memory train/val/test :class:`~paperzoo.core.data.Split`.

    The bridge from the real readers to every experiment written over ``load_dataset``'s
    tensors: the official train and test splits, no augmentation, a seeded stratified
    validation share carved out of train (tables with a ``valid`` file use it instead).

    Args:
        name: a classification data set of :func:`available_real_datasets` (not
            ``text-corpus``, which is a token stream: use :func:`load_real_dataset`).
        root: the folder (see :func:`load_real_dataset`).
        seed: the seed of the validation carve-out and of ``limit``'s subsets.
        val_fraction: share of train held out for validation, in [0, 1).
        test_fraction: only for a ``table`` given as one file (split ``"all"``): the share of
            its rows held out for test, in [0, 1) (a seeded stratified 3-way split).
        limit: keep at most this many examples per split (a seeded random subset), e.g. for a
            quick look at a large set; ``None`` keeps all.
        image_size: the crop size of image-folder sets (images are materialised, so small).
        **options: passed on to :func:`load_real_dataset` (``cifar100_labels``,
            ``trust_pickle``, ``class_split``, ``label_column``).

    Returns:
        Float32 features ``(N, F)``: MNIST, Fashion-MNIST and CIFAR pixels scaled to [0, 1] as
        ``load_dataset``'s image sets are; image folders after the deterministic test
        transform (resize, center crop, ImageNet normalisation); tables standardised with the
        training split's mean and standard deviation. Labels int64 ``(N,)``. For the retrieval
        sets (``cub200``, ``cars196``, ``sop``) train/val and test hold disjoint classes,
        test relabelled from 0, and ``num_classes`` counts the training classes.

    Raises:
        UserError: an unknown or non-classification name, a missing or malformed folder.
        ValueError: ``val_fraction`` outside [0, 1) or a non-positive ``limit``.

    Memory grows with the data set: MNIST is 0.2 GB, CIFAR-10 0.6 GB as float32. Paper-scale
    training on image folders streams with :func:`load_real_dataset` and
    :func:`make_real_loader` instead.
    """
    if name == "text-corpus":
        raise UserError(
            "dataset: text-corpus is a token stream, not a classification split; "
            "use load_real_dataset('text-corpus', ...)"
        )
    for arg, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= v < 1.0:
            raise ValueError(f"{arg}: expected a value in [0, 1), got {v}")
    if limit is not None:
        check_positive_int("limit", limit)
    arrays = name in ("mnist", "fashion-mnist", "cifar10", "cifar100")
    kw: dict[str, Any] = {"augment": False, "image_size": image_size, **options}
    if arrays:
        kw["transform"] = _unit_scale
    valid: tuple[Tensor, Tensor] | None = None
    if name == "table" and Path(root).is_file():  # one file: a seeded stratified 3-way split
        if val_fraction + test_fraction >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction: expected < 1, got {val_fraction + test_fraction}"
            )
        train = load_real_dataset(name, root, split="all", **kw)
        x_all, y_all = _materialise(train)
        tr, va, te = split_indices(y_all.numpy(), True, seed, val_fraction, test_fraction)
        x_tr, y_tr = x_all[torch.from_numpy(tr)], y_all[torch.from_numpy(tr)]
        x_te, y_te = x_all[torch.from_numpy(te)], y_all[torch.from_numpy(te)]
        valid = (x_all[torch.from_numpy(va)], y_all[torch.from_numpy(va)])
    else:
        train = load_real_dataset(name, root, split="train", **kw)
        x_tr, y_tr = _materialise(train)
        x_te, y_te = _materialise(load_real_dataset(name, root, split="test", **kw))
    if name == "table" and Path(root).is_dir():
        try:
            valid = _materialise(load_real_dataset(name, root, split="valid", **kw))
        except UserError:
            valid = None
    if valid is not None:
        x_va, y_va = valid
    else:
        tr, va, _ = split_indices(y_tr.numpy(), True, seed, val_fraction, 0.0)
        tr_i, va_i = torch.from_numpy(tr.astype(np.int64)), torch.from_numpy(va.astype(np.int64))
        x_tr, y_tr, x_va, y_va = x_tr[tr_i], y_tr[tr_i], x_tr[va_i], y_tr[va_i]
    x_tr, y_tr = _subset(x_tr, y_tr, limit, seed)
    x_va, y_va = _subset(x_va, y_va, limit, seed + 1)
    x_te, y_te = _subset(x_te, y_te, limit, seed + 2)
    if name == "table":
        mu = x_tr.mean(dim=0)
        sd = x_tr.std(dim=0, unbiased=False)
        sd = torch.where(sd > 0, sd, torch.ones_like(sd))
        x_tr, x_va, x_te = ((v - mu) / sd for v in (x_tr, x_va, x_te))
    num_classes = train.num_classes
    if name == "table":
        num_classes = int(max(int(y.max()) if y.numel() else -1 for y in (y_tr, y_va, y_te))) + 1
    shape = train.input_shape or (int(x_tr.shape[1]),)
    return Split(
        x_train=x_tr.contiguous(),
        y_train=y_tr,
        x_val=x_va.contiguous(),
        y_val=y_va,
        x_test=x_te.contiguous(),
        y_test=y_te,
        num_classes=num_classes,
        task="classification",
        name=name,
        input_shape=tuple(shape),
    )


def load_split(
    dataset: str,
    *,
    data_root: str | os.PathLike[str] = "",
    real_dataset: str = "",
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    **options: Any,
) -> Split:
    """An experiment's data: the offline ``dataset``, or the paper's real one when given a folder.

    The one switch every experiment's ``data_root`` config key goes through: with an empty
    ``data_root`` this is ``load_dataset(dataset, seed=, val_fraction=, test_fraction=)``;
    otherwise ``load_real_split(real_dataset, data_root, seed=, val_fraction=, **options)``,
    whose test split is the data set's official one (``test_fraction`` does not apply).

    Args:
        dataset: an offline name of :func:`paperzoo.core.data.available_datasets`.
        data_root: a folder holding ``real_dataset`` in its official layout, or ``""``.
        real_dataset: a name of :func:`available_real_datasets` (needed with ``data_root``).
        seed, val_fraction, test_fraction: the split (see the two loaders).
        **options: passed on to :func:`load_real_split` (``limit``, ``image_size``, ...).

    Raises:
        UserError: ``data_root`` without a known ``real_dataset``, or what the loaders raise.
    """
    if not str(data_root):
        return load_dataset(
            dataset, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction
        )
    if real_dataset not in REAL_DATASETS:
        raise UserError(
            f"real_dataset: expected one of {', '.join(available_real_datasets())} with "
            f"data_root, got {real_dataset!r}"
        )
    return load_real_split(real_dataset, data_root, seed=seed, val_fraction=val_fraction, **options)


def load_retrieval_set(
    name: str, root: str | os.PathLike[str], *, image_size: int = 32, **options: Any
) -> tuple[Tensor, Tensor, int]:
    """A retrieval set's images as one labelled pool, for the zero-shot (unseen classes) protocol.

    Args:
        name: ``cub200``, ``cars196``, ``sop`` (or ``image-folder`` with ``class_split=True``).
        root: the folder (see :func:`load_real_dataset`).
        image_size: the center crop the images are resized to before flattening.
        **options: passed on to :func:`load_real_split`.

    Returns:
        ``(x, y, k)``: features ``(N, F)`` (the deterministic test transform, flattened), labels
        ``(N,)`` with the ``k`` training classes as ``0..k-1`` and the unseen test classes as
        ``k, k+1, ...``: train on ``y < k``, retrieve among ``y >= k``.
    """
    s = load_real_split(name, root, val_fraction=0.0, image_size=image_size, **options)
    k = s.num_classes
    return torch.cat([s.x_train, s.x_test]), torch.cat([s.y_train, s.y_test + k]), k
