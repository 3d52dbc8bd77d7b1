"""Class-label embeddings u_y = W_E[y] for NoProp: one-hot, learned, or class prototypes."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from paperzoo.core.checks import check_labels, check_nonempty, check_positive_int

__all__ = ["EmbeddingKind", "LabelEmbedding", "select_prototypes"]

EmbeddingKind = Literal["onehot", "learned", "prototype"]


class LabelEmbedding(nn.Module):
    """Class embedding matrix W_E ∈ R^{K×e}; ``forward(y)`` returns u_y = W_E[y], ``(B, e)``.

    Args:
        num_classes: K.
        dim: e. ``'onehot'``: must be None or K (W_E = I_K, fixed). ``'learned'``: default K;
            orthogonal init (rows orthonormal when e ≥ K), trained with the model (the paper's
            learned embeddings; the KL prior term then matters). ``'prototype'``: taken from
            ``prototypes``.
        kind: ``'onehot'`` (default, fixed), ``'learned'`` or ``'prototype'`` (fixed).
        prototypes: ``(K, e)`` class prototypes for ``kind='prototype'`` (e.g. from
            :func:`select_prototypes`; the paper uses a representative image per class).
        normalize: L2-normalise the rows of W_E on use (DiffusionBlocks' remedy against
            learned-embedding collapse, spec section 8). Default False (paper).
    """

    weight_raw: Tensor

    def __init__(
        self,
        num_classes: int,
        dim: int | None = None,
        kind: EmbeddingKind = "onehot",
        prototypes: Tensor | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.kind = kind
        self.normalize = normalize
        if kind == "onehot":
            if dim is not None and dim != num_classes:
                raise ValueError(
                    f"dim must be None or num_classes={num_classes} for one-hot embeddings, "
                    f"got {dim}"
                )
            if prototypes is not None:
                raise ValueError("prototypes is only used with kind='prototype'")
            self.register_buffer("weight_raw", torch.eye(num_classes))
        elif kind == "learned":
            if prototypes is not None:
                raise ValueError("prototypes is only used with kind='prototype'")
            e = num_classes if dim is None else dim
            if e < 1:
                raise ValueError(f"dim must be >= 1, got {e}")
            self.weight_raw = nn.Parameter(torch.empty(num_classes, e))
        elif kind == "prototype":
            if prototypes is None:
                raise ValueError("kind='prototype' needs prototypes of shape (K, e)")
            if not isinstance(prototypes, Tensor) or not prototypes.dtype.is_floating_point:
                raise TypeError("prototypes must be a floating Tensor of shape (K, e)")
            p = (
                prototypes.detach().reshape(prototypes.shape[0], -1)
                if prototypes.dim() > 2
                else (prototypes.detach())
            )
            if p.dim() != 2 or p.shape[0] != num_classes or (dim is not None and p.shape[1] != dim):
                want = f"({num_classes}, {dim if dim is not None else 'e'})"
                raise ValueError(
                    f"prototypes must have shape {want}, got {tuple(prototypes.shape)}"
                )
            if not bool(torch.isfinite(p).all()):
                raise ValueError("prototypes must be finite")
            self.register_buffer("weight_raw", p.clone().float())
        else:
            raise ValueError(f"kind must be 'onehot', 'learned' or 'prototype', got {kind!r}")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Orthogonal init of learned embeddings; fixed kinds are left unchanged."""
        if self.kind == "learned":
            nn.init.orthogonal_(self.weight_raw)

    @property
    def dim(self) -> int:
        """Embedding dimension e."""
        return int(self.weight_raw.shape[1])

    @property
    def learnable(self) -> bool:
        """True for ``kind='learned'``."""
        return self.kind == "learned"

    @property
    def weight(self) -> Tensor:
        """W_E, ``(K, e)`` (row-normalised when ``normalize``)."""
        w = self.weight_raw
        return F.normalize(w, dim=-1) if self.normalize else w

    def forward(self, y: Tensor) -> Tensor:
        """u_y = W_E[y]: ``(B,)`` integer labels → ``(B, e)``."""
        check_labels("y", y, num_classes=self.num_classes)
        check_nonempty("y", y)
        return self.weight[y]

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, dim={self.dim}, kind={self.kind!r}"


def select_prototypes(X: Tensor, y: Tensor, per_class: int = 10, seed: int = 0) -> Tensor:
    """One representative example per class: the medoid of ``per_class`` random class members.

    For each class k, draw ``per_class`` of its examples at random (seeded) and return the one
    whose summed Euclidean distance to the others is smallest. Vectorised over classes.

    Args:
        X: ``(N, ...)`` examples (flattened to ``(N, D)``).
        y: ``(N,)`` integer labels in ``[0, K)``; every class needs ≥ ``per_class`` examples.
        per_class: sample size per class (≥ 1), default 10.
        seed: seed of the draw.

    Returns:
        ``(K, D)`` prototypes (K = max label + 1), in X's dtype.
    """
    check_positive_int("per_class", per_class)
    check_labels("y", y, n=X.shape[0])
    check_nonempty("y", y)
    K = int(y.max()) + 1
    flat = X.reshape(X.shape[0], -1)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(y.shape[0], generator=gen).to(y.device)
    ys = y[perm]
    order = torch.argsort(ys, stable=True)
    counts = torch.bincount(ys, minlength=K)
    if bool((counts < per_class).any()):
        raise ValueError(
            f"every class needs >= per_class={per_class} examples, got counts {counts.tolist()}"
        )
    starts = torch.cumsum(counts, 0) - counts
    idx = perm[order[starts[:, None] + torch.arange(per_class, device=y.device)]]  # (K, P)
    sample = flat[idx]  # (K, P, D)
    dist = torch.cdist(sample, sample)  # (K, P, P)
    medoid = dist.sum(-1).argmin(-1)  # (K,)
    return sample[torch.arange(K, device=y.device), medoid]
