"""Which pairs Metrix mixes, their soft labels, and the mixing itself (vectorised, no host loops).

A :class:`MixPlan` lists mixed examples ``x~_k = lam x[i_k] + (1 - lam) x[j_k]`` scored against the
clean anchor ``anchor_idx[k]`` with soft positivity ``lam y(a, i) + (1 - lam) y(a, j)``.

Kinds (official ``mixup/utils.py``):

* ``"pos_neg"``: for each anchor ``a`` with a positive, every (positive p, negative n) pair, ``y~ = lam``;
  ``first_positive_only`` keeps only a's first positive (official embed/feature level).
* ``"anc_neg"``: (a, n) for each anchor and negative, ``y~ = lam`` (a is positive to itself);
  ``anc_neg_anchors="no_positive"`` keeps only anchors without an in-batch positive (official).
* ``"random"``: one of the two, drawn uniformly per call (the official step's coin).

``top_k`` keeps each anchor's k hardest negatives (largest clean similarity = smallest distance);
the official input level uses k = 1, the embed/feature levels all negatives.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from paperzoo.core.checks import (
    check_choice,
    check_float_tensor,
    check_labels,
    check_positive,
    check_positive_int,
    check_unit_interval,
)

__all__ = [
    "AncNegAnchors",
    "MixKind",
    "MixPlan",
    "mix",
    "mix_pairs",
    "mix_pairs_from_indices",
    "sample_lambda",
    "soft_labels",
]

MixKind = Literal["pos_neg", "anc_neg", "random"]
AncNegAnchors = Literal["all", "no_positive"]
_KINDS: tuple[str, ...] = ("pos_neg", "anc_neg", "random")
_ANC: tuple[str, ...] = ("all", "no_positive")


class MixPlan(NamedTuple):
    """Mixed examples as index triples, each a LongTensor (K,).

    ``anchor_idx``: the clean anchor each mix is scored against; ``i_idx``/``j_idx``: the two mixed
    examples (weights lam and 1 - lam); ``kind``: ``"pos_neg"`` or ``"anc_neg"``.
    """

    anchor_idx: Tensor
    i_idx: Tensor
    j_idx: Tensor
    kind: str

    @property
    def size(self) -> int:
        """K, the number of mixes."""
        return int(self.anchor_idx.numel())


def _hard_negatives(neg: Tensor, sim: Tensor | None, top_k: int | None) -> Tensor:
    """``neg`` restricted to each row's ``top_k`` largest similarities (all when top_k is None)."""
    if top_k is None:
        return neg
    if sim is None:
        raise ValueError(
            "sim: expected the (B, B) clean similarity matrix when top_k is set, got None"
        )
    k = min(top_k, neg.shape[1])
    scores = sim.detach().masked_fill(~neg, float("-inf"))
    top = scores.topk(k, dim=1).indices
    keep = torch.zeros_like(neg).scatter_(1, top, True)
    return keep & neg


def mix_pairs(
    labels: Tensor,
    sim: Tensor | None = None,
    kind: MixKind = "random",
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    *,
    anc_neg_anchors: AncNegAnchors = "all",
    first_positive_only: bool = False,
) -> MixPlan:
    """The mixed pairs of one batch (see the module docstring for the kinds).

    Args:
        labels: (B,) integer labels.
        sim: (B, B) clean similarities (only needed for ``top_k``); larger = closer.
        kind: ``"pos_neg"``, ``"anc_neg"`` or ``"random"`` (coin drawn from ``generator``).
        top_k: keep each anchor's k hardest negatives (None = all).
        generator: for the ``"random"`` coin (CPU generator).
        anc_neg_anchors: ``"all"`` anchors or only those with ``"no_positive"`` (official).
        first_positive_only: pos_neg uses only each anchor's first positive (official embed level).

    Returns:
        :class:`MixPlan`; empty (K = 0) when the batch has fewer than 2 classes.

    Raises:
        ValueError: unknown kind/anchors, ``top_k < 1``, ``sim`` of the wrong shape.
    """
    check_labels("labels", labels, validate=False)
    check_choice("kind", kind, _KINDS)
    check_choice("anc_neg_anchors", anc_neg_anchors, _ANC)
    if top_k is not None:
        check_positive_int("top_k", top_k)
    n = labels.shape[0]
    if sim is not None:
        check_float_tensor("sim", sim, ndim=2)
        if tuple(sim.shape) != (n, n):
            raise ValueError(f"sim: expected shape {(n, n)}, got {tuple(sim.shape)}")
    if kind == "random":
        coin = int(torch.randint(2, (1,), generator=generator).item())
        kind = "pos_neg" if coin == 0 else "anc_neg"
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(n, dtype=torch.bool, device=labels.device)
    neg = _hard_negatives(~same, sim, top_k)
    if kind == "pos_neg":
        if first_positive_only:
            pos = pos & (pos.cumsum(1) == 1)
        a, i, j = (pos[:, :, None] & neg[:, None, :]).nonzero(as_tuple=True)
        return MixPlan(a, i, j, "pos_neg")
    if anc_neg_anchors == "no_positive":
        neg = neg & ~pos.any(1, keepdim=True)
    a, j = neg.nonzero(as_tuple=True)
    return MixPlan(a, a, j, "anc_neg")


def mix_pairs_from_indices(
    indices: tuple[Tensor, Tensor, Tensor, Tensor], batch_size: int, kind: MixKind = "pos_neg"
) -> MixPlan:
    """A :class:`MixPlan` from a PML-style pair tuple ``(a1, p, a2, n)`` (e.g. a miner's output).

    ``"pos_neg"``: for every anchor, each of its mined positives ``p`` (pairs ``(a1, p)``) with each
    of its mined negatives ``n`` (pairs ``(a2, n)``); ``"anc_neg"``: the mined ``(a2, n)`` pairs.

    Raises:
        ValueError: ``kind="random"`` (draw the coin yourself), tuples of unequal lengths.
    """
    check_choice("kind", kind, ("pos_neg", "anc_neg"))
    check_positive_int("batch_size", batch_size)
    a1, p, a2, n = indices
    if a1.shape != p.shape or a2.shape != n.shape:
        raise ValueError(
            f"indices: expected a1/p and a2/n of equal lengths, got {tuple(a1.shape)}/"
            f"{tuple(p.shape)} and {tuple(a2.shape)}/{tuple(n.shape)}"
        )
    dev = a2.device
    neg = torch.zeros(batch_size, batch_size, dtype=torch.bool, device=dev)
    neg[a2, n] = True
    if kind == "anc_neg":
        a, j = neg.nonzero(as_tuple=True)
        return MixPlan(a, a, j, "anc_neg")
    pos = torch.zeros_like(neg)
    pos[a1, p] = True
    a, i, j = (pos[:, :, None] & neg[:, None, :]).nonzero(as_tuple=True)
    return MixPlan(a, i, j, "pos_neg")


def soft_labels(
    plan: MixPlan, lam: float, labels: Tensor, dtype: torch.dtype | None = None
) -> Tensor:
    """Soft positivity of each mix w.r.t. its anchor: ``lam y(a, i) + (1 - lam) y(a, j)``, (K,).

    Raises:
        ValueError: ``lam`` outside [0, 1].
    """
    lam = check_unit_interval("lam", lam)
    la = labels[plan.anchor_idx]
    dt = dtype or torch.get_default_dtype()
    return lam * (la == labels[plan.i_idx]).to(dt) + (1 - lam) * (la == labels[plan.j_idx]).to(dt)


def mix(x_i: Tensor, x_j: Tensor, lam: float) -> Tensor:
    """``lam x_i + (1 - lam) x_j`` for tensors of any (equal) shape, dtype and device.

    Raises:
        TypeError: non-float tensors or different dtypes.
        ValueError: different shapes or devices, ``lam`` outside [0, 1].
    """
    lam = check_unit_interval("lam", lam)
    check_float_tensor("x_i", x_i)
    check_float_tensor("x_j", x_j)
    if x_i.shape != x_j.shape:
        raise ValueError(
            f"x_j: expected shape {tuple(x_i.shape)} (like x_i), got {tuple(x_j.shape)}"
        )
    if x_i.dtype != x_j.dtype:
        raise TypeError(f"x_j: expected dtype {x_i.dtype} (like x_i), got {x_j.dtype}")
    if x_i.device != x_j.device:
        raise ValueError(f"x_j: expected device {x_i.device} (like x_i), got {x_j.device}")
    return lam * x_i + (1 - lam) * x_j


def sample_lambda(alpha: float = 2.0, generator: torch.Generator | None = None) -> float:
    """One ``lam ~ Beta(alpha, alpha)`` (official alpha = 2), reproducible from ``generator``.

    The draw goes through NumPy seeded from the torch generator (``torch.distributions.Beta``
    takes no generator). Raises ValueError for ``alpha <= 0``.
    """
    alpha = check_positive("alpha", alpha)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    return float(np.random.default_rng(seed).beta(alpha, alpha))
