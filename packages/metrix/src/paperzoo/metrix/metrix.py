"""Metrix: the clean metric loss plus a weighted soft-label loss on mixed examples.

    L = l_clean + w * l_mixed,   l_mixed scored between *clean* anchors and mixed examples
    x~ = mix_lam(x_i, x_j) with y~ = lam y(a, x_i) + (1 - lam) y(a, x_j),  lam ~ Beta(alpha, alpha)

at three levels: embedding (:meth:`MetrixLoss.forward`, mixes normalised embeddings, no extra
forward pass), input (:meth:`MetrixLoss.step_input`, mixes images, one extra forward of the mixed
batch) and feature (:meth:`MetrixLoss.step_feature`, mixes a feature map, one extra head pass).
Defaults are the official ``Metrix_ICLR22`` code: alpha = 2, w = 0.4, one lam per step, the
``"random"`` coin between pos-neg and anchor-neg mixing, the input level's single hardest negative.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    check_positive_int,
    check_unit_interval,
)

from .generic import _NORM_EPS, GenericPairLoss, _avg_nonzero
from .mixing import AncNegAnchors, MixKind, MixPlan, mix, mix_pairs, sample_lambda, soft_labels
from .proxy_anchor import ProxyAnchorGeneric

__all__ = ["MetrixLoss"]


def _safe_sqrt(x: Tensor) -> Tensor:
    """sqrt with a zero (not infinite) gradient at 0 and negatives clamped to 0."""
    pos = x > 0
    return torch.where(
        pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x)
    )


Base = GenericPairLoss | ProxyAnchorGeneric


class MetrixLoss(nn.Module):
    """Metrix around a generic base loss (contrastive, MS or Proxy-Anchor).

    Args:
        base: a :class:`GenericPairLoss` (reduction ``"mean"`` or ``"avg_nonzero_pairs"``) or a
            :class:`ProxyAnchorGeneric` (reduction ``"mean"``).
        weight: w >= 0, weight of the mixed loss (official 0.4).
        alpha: Beta(alpha, alpha) for lam (official 2).
        kind: ``"pos_neg"``, ``"anc_neg"`` or ``"random"`` (official: coin per step).
        top_k: hardest negatives kept per anchor at embed/feature level (None = all, official).
        input_top_k: the same at input level (official 1).
        renormalize: L2-normalise mixed embeddings (official relies on PML doing it implicitly).
        anc_neg_anchors: ``"all"`` (default) or ``"no_positive"`` (official scoping).
        first_positive_only: pos-neg mixing at embed/feature level with a's first positive only
            (official); False = every positive.
        generator: CPU generator for lam and the coin (None = global RNG).
        validate: device-syncing checks (finiteness) on/off.

    ``forward``/``step_*`` return ``{"loss", "clean", "mixed", "lam"}`` (scalars).

    Deviation: the mixed term of a per-anchor base (MS) is averaged over anchors that have at least
    one mix (anchors without mixes are not counted); the contrastive base keeps the official
    avg-non-zero pair reduction. Proxy-Anchor mixes every ordered pair of different-label examples
    (``anc_neg`` pairs; the paper's pairing for proxies is not released). At input level the anchor
    embeddings come from the clean forward pass (the official code re-embeds the anchors; equal
    for a deterministic model in eval mode).
    """

    def __init__(
        self,
        base: Base,
        weight: float = 0.4,
        alpha: float = 2.0,
        kind: MixKind = "random",
        top_k: int | None = None,
        input_top_k: int = 1,
        renormalize: bool = True,
        anc_neg_anchors: AncNegAnchors = "all",
        first_positive_only: bool = False,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(base, GenericPairLoss | ProxyAnchorGeneric):
            raise TypeError(
                f"base: expected a GenericPairLoss or ProxyAnchorGeneric, got {type(base).__name__}"
            )
        if base.reduction not in ("mean", "avg_nonzero_pairs"):
            raise ValueError(
                f"base: expected reduction 'mean' or 'avg_nonzero_pairs', got {base.reduction!r}"
            )
        self.base = base
        self.weight = check_positive("weight", weight, allow_zero=True)
        self.alpha = check_positive("alpha", alpha)
        mix_pairs(
            torch.zeros(1, dtype=torch.long), kind=kind, anc_neg_anchors=anc_neg_anchors
        )  # checks
        self.kind: MixKind = kind
        self.top_k = None if top_k is None else check_positive_int("top_k", top_k)
        self.input_top_k = check_positive_int("input_top_k", input_top_k)
        self.renormalize = renormalize
        self.anc_neg_anchors: AncNegAnchors = anc_neg_anchors
        self.first_positive_only = first_positive_only
        self.generator = generator
        self.validate = validate

    # ------------------------------------------------------------------ pieces
    def clean_loss(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The base loss on the clean batch (scalar)."""
        if isinstance(self.base, ProxyAnchorGeneric):
            return cast(Tensor, self.base(embeddings, labels))
        return self.base.batch_loss(embeddings, labels)

    def plan(
        self, embeddings: Tensor, labels: Tensor, top_k: int | None, first_positive_only: bool
    ) -> MixPlan:
        """The batch's :class:`MixPlan` from the clean (detached) similarities."""
        n_classes = int(labels.unique().numel()) if labels.numel() else 0
        if n_classes < 2:
            warnings.warn(
                "labels: mixing needs at least 2 classes in the batch, got "
                f"{n_classes}; the mixed loss is 0 for this batch",
                UserWarning,
                stacklevel=3,
            )
        with torch.no_grad():
            e = F.normalize(embeddings.detach(), dim=1, eps=_NORM_EPS)
            sim = e @ e.T
        if isinstance(self.base, ProxyAnchorGeneric):
            return mix_pairs(labels, sim, "anc_neg", top_k, self.generator, anc_neg_anchors="all")
        return mix_pairs(
            labels,
            sim,
            self.kind,
            top_k,
            self.generator,
            anc_neg_anchors=self.anc_neg_anchors,
            first_positive_only=first_positive_only,
        )

    def mixed_loss(
        self, embeddings: Tensor, labels: Tensor, plan: MixPlan, lam: float, mixed: Tensor
    ) -> Tensor:
        """The soft-label loss of the mixed embeddings ``mixed`` (K, D) against clean anchors."""
        if plan.size == 0:
            return embeddings.sum() * 0.0
        if mixed.shape[0] != plan.size:
            raise ValueError(
                f"mixed: expected {plan.size} rows (one per mix), got {mixed.shape[0]}"
            )
        if isinstance(self.base, ProxyAnchorGeneric):
            return self._proxy_mixed(labels, plan, lam, mixed)
        a = F.normalize(embeddings[plan.anchor_idx], dim=1, eps=_NORM_EPS)
        m = F.normalize(mixed, dim=1, eps=_NORM_EPS) if self.renormalize else mixed
        if self.base.similarity == "cosine":
            score = (a * m).sum(1)
        else:
            score = _safe_sqrt(((a - m) ** 2).sum(1))
        return self._reduce_mixed(score, labels, plan, lam, embeddings.shape[0])

    def embed_mixed_loss(
        self, embeddings: Tensor, labels: Tensor, plan: MixPlan, lam: float
    ) -> Tensor:
        """Embedding-level mixed loss from the clean Gram matrix, without materialising mixes.

        Mixes ``m = lam e_i + (1 - lam) e_j`` of the L2-normalised embeddings: ``<e_a, m>`` and
        ``|m|^2 = lam^2 + (1 - lam)^2 + 2 lam (1 - lam) <e_i, e_j>`` come from the (B, B) Gram
        matrix, so the step costs O(B^2 D + K) instead of O(K D). Equal to mixing the vectors
        (tested).
        """
        if plan.size == 0:
            return embeddings.sum() * 0.0
        if isinstance(self.base, ProxyAnchorGeneric):
            e = F.normalize(embeddings, dim=1, eps=_NORM_EPS)
            return self._proxy_mixed(labels, plan, lam, mix(e[plan.i_idx], e[plan.j_idx], lam))
        e = F.normalize(embeddings, dim=1, eps=_NORM_EPS)
        g = e @ e.T
        dot = lam * g[plan.anchor_idx, plan.i_idx] + (1 - lam) * g[plan.anchor_idx, plan.j_idx]
        sq = lam**2 + (1 - lam) ** 2 + 2 * lam * (1 - lam) * g[plan.i_idx, plan.j_idx]
        if self.renormalize:
            norm = _safe_sqrt(sq).clamp(min=_NORM_EPS)
            cos = dot / norm
            d2 = 2.0 - 2.0 * cos
        else:
            cos = dot
            d2 = 1.0 + sq - 2.0 * dot
        score = cos if self.base.similarity == "cosine" else _safe_sqrt(d2)
        return self._reduce_mixed(score, labels, plan, lam, embeddings.shape[0])

    def _proxy_mixed(self, labels: Tensor, plan: MixPlan, lam: float, mixed: Tensor) -> Tensor:
        assert isinstance(self.base, ProxyAnchorGeneric)
        c = torch.arange(self.base.num_classes, device=labels.device)[:, None]
        dt = mixed.dtype
        yc = lam * (c == labels[plan.i_idx][None]).to(dt)
        yc = yc + (1 - lam) * (c == labels[plan.j_idx][None]).to(dt)
        return self.base.soft(mixed, yc, normalize=self.renormalize)

    def _reduce_mixed(
        self, score: Tensor, labels: Tensor, plan: MixPlan, lam: float, n: int
    ) -> Tensor:
        assert isinstance(self.base, GenericPairLoss)
        y = soft_labels(plan, lam, labels, dtype=score.dtype)
        pos, neg = self.base.pair_terms(score, y)
        if self.base.reduction == "avg_nonzero_pairs":
            return _avg_nonzero(pos) + _avg_nonzero(neg)
        pos_sum = pos.new_zeros(n).index_add_(0, plan.anchor_idx, pos)
        neg_sum = neg.new_zeros(n).index_add_(0, plan.anchor_idx, neg)
        has = torch.bincount(plan.anchor_idx, minlength=n) > 0
        return self.base.combine(pos_sum, neg_sum)[has].mean()

    def _check(self, embeddings: Tensor, labels: Tensor) -> None:
        check_float_tensor("embeddings", embeddings, ndim=2, nonempty=True)
        check_labels("labels", labels, n=embeddings.shape[0], validate=False)
        check_finite("embeddings", embeddings, validate=self.validate)

    def _lam(self, lam: float | None) -> float:
        return (
            sample_lambda(self.alpha, self.generator)
            if lam is None
            else check_unit_interval("lam", lam)
        )

    def _out(self, clean: Tensor, mixed: Tensor, lam: float) -> dict[str, Tensor]:
        return {
            "loss": clean + self.weight * mixed,
            "clean": clean.detach(),
            "mixed": mixed.detach(),
            "lam": torch.tensor(lam, dtype=clean.dtype),
        }

    # ------------------------------------------------------------------ the three levels
    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        plan: MixPlan | None = None,
        lam: float | None = None,
    ) -> dict[str, Tensor]:
        """Embedding-level Metrix: embeddings (B, D), labels (B,) -> dict of scalars.

        ``plan``/``lam`` override the sampled ones (tests, custom pair universes).
        """
        self._check(embeddings, labels)
        plan = (
            plan
            if plan is not None
            else self.plan(embeddings, labels, self.top_k, self.first_positive_only)
        )
        lam = self._lam(lam)
        mixed = self.embed_mixed_loss(embeddings, labels, plan, lam)
        return self._out(self.clean_loss(embeddings, labels), mixed, lam)

    def step_input(
        self,
        model: Callable[[Tensor], Tensor],
        images: Tensor,
        labels: Tensor,
        plan: MixPlan | None = None,
        lam: float | None = None,
    ) -> dict[str, Tensor]:
        """Input-level Metrix: images (B, ...) through ``model`` -> (B, D); mixes images.

        Runs ``model`` twice: on the clean batch and on the K mixed images.
        """
        check_float_tensor("images", images, nonempty=True)
        check_finite("images", images, validate=self.validate)
        e = model(images)
        self._check(e, labels)
        plan = plan if plan is not None else self.plan(e, labels, self.input_top_k, False)
        lam = self._lam(lam)
        m = model(mix(images[plan.i_idx], images[plan.j_idx], lam)) if plan.size else e[:0]
        return self._out(self.clean_loss(e, labels), self.mixed_loss(e, labels, plan, lam, m), lam)

    def step_feature(
        self,
        features_fn: Callable[[Tensor], Tensor],
        head_fn: Callable[[Tensor], Tensor],
        images: Tensor,
        labels: Tensor,
        plan: MixPlan | None = None,
        lam: float | None = None,
    ) -> dict[str, Tensor]:
        """Feature-level Metrix: ``head_fn(features_fn(images))`` is the embedding (B, D); mixes
        the feature map (B, ...) and runs ``head_fn`` once more on the K mixed features.

        Raises:
            ValueError: ``head_fn`` changes the batch size.
        """
        check_float_tensor("images", images, nonempty=True)
        check_finite("images", images, validate=self.validate)
        f = features_fn(images)
        e = head_fn(f)
        if e.shape[0] != f.shape[0]:
            raise ValueError(
                f"head_fn: expected to keep the batch size {f.shape[0]}, got {e.shape[0]}"
            )
        self._check(e, labels)
        plan = (
            plan if plan is not None else self.plan(e, labels, self.top_k, self.first_positive_only)
        )
        lam = self._lam(lam)
        if plan.size:
            m = head_fn(mix(f[plan.i_idx], f[plan.j_idx], lam))
            if m.shape[0] != plan.size:
                raise ValueError(
                    f"head_fn: expected to keep the batch size {plan.size}, got {m.shape[0]}"
                )
        else:
            m = e[:0]
        return self._out(self.clean_loss(e, labels), self.mixed_loss(e, labels, plan, lam, m), lam)

    def extra_repr(self) -> str:
        return (
            f"weight={self.weight}, alpha={self.alpha}, kind={self.kind!r}, top_k={self.top_k}, "
            f"input_top_k={self.input_top_k}, renormalize={self.renormalize}, "
            f"anc_neg_anchors={self.anc_neg_anchors!r}, first_positive_only={self.first_positive_only}"
        )
