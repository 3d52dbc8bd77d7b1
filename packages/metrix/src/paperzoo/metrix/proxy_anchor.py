"""Proxy-Anchor loss in the generic soft-label form (Metrix, Sec. 3; Kim et al., CVPR 2020).

Anchors are learnable class proxies ``p_c``; candidates are the batch embeddings with positivity
``y[c, x]`` in [0, 1] (one-hot labels for clean examples, interpolated for mixed ones):

    pos(c) = log(1 + sum_x y[c,x] exp(-alpha (s(p_c, x) - delta)))
    neg(c) = log(1 + sum_x (1 - y[c,x]) exp(alpha (s(p_c, x) + delta)))
    L = sum_c pos(c) / |{c : sum_x y[c,x] > 0}| + sum_c neg(c) / C

(cosine similarity; positive part averaged over proxies with (soft) positives, negative part over
all proxies, as in pytorch-metric-learning's ``ProxyAnchorLoss``, tested equal in float64).
The paper describes, but the official code does not release, the Proxy-Anchor Metrix variant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_float_tensor,
    check_labels,
    check_positive,
    check_positive_int,
    check_reduction,
)

from .generic import _check_pair_inputs, pair_scores

__all__ = ["ProxyAnchorGeneric", "proxy_anchor_generic"]


def proxy_anchor_generic(
    embeddings: Tensor,
    proxies: Tensor,
    y: Tensor,
    *,
    alpha: float = 32.0,
    delta: float = 0.1,
    reduction: Reduction = "mean",
    normalize: bool = True,
    validate: bool = True,
) -> Tensor:
    """Proxy-Anchor with soft positivity (module docstring's equation).

    Args:
        embeddings: (B, D) embeddings (normalised inside unless ``normalize=False``).
        proxies: (C, D) class proxies (normalised inside).
        y: (C, B) soft positivity of proxy c for example x, in [0, 1].
        alpha, delta: scale and margin (paper defaults 32, 0.1).
        reduction: ``"mean"`` -> the loss L; ``"none"`` -> (C,) per-proxy contributions
            ``pos(c) C / n_pos + neg(c)`` whose mean is L; ``"sum"`` -> their sum (= C L).
        normalize: normalise the candidate embeddings.
        validate: check finiteness and the range of ``y`` (device syncs).

    Raises:
        TypeError / ValueError: bad shapes, dtypes, non-finite input, ``y`` outside [0, 1].
    """
    check_reduction(reduction)
    check_positive("alpha", alpha)
    check_positive("delta", delta, allow_zero=True)
    _check_pair_inputs(proxies, embeddings, y, None, validate)
    s = pair_scores(proxies, embeddings, "cosine", normalize)  # (C, B)
    yy = y.to(s.dtype)
    pos = torch.log1p((yy * torch.exp(-alpha * (s - delta))).sum(1))
    neg = torch.log1p(((1 - yy) * torch.exp(alpha * (s + delta))).sum(1))
    n_classes = s.shape[0]
    n_pos = (yy.sum(1) > 0).sum().clamp(min=1).to(s.dtype)
    per_proxy = pos * (n_classes / n_pos) + neg
    if reduction == "none":
        return per_proxy
    total = pos.sum() / n_pos + neg.sum() / n_classes
    return total if reduction == "mean" else total * n_classes


class ProxyAnchorGeneric(nn.Module):
    """Proxy-Anchor loss with learnable proxies (C, D), hard or soft labels.

    ``forward(embeddings (B, D), labels (B,))`` -> scalar (or (C,) with ``reduction="none"``, see
    :func:`proxy_anchor_generic`); :meth:`soft` takes soft positivity ``y`` (C, B) instead of labels.
    Proxies are initialised like PML (``kaiming_normal_``, ``mode="fan_out"``).

    Args:
        num_classes: C (>= 2).
        dim: embedding dimension D.
        alpha: scale (32). delta: margin (0.1).
        reduction: see :func:`proxy_anchor_generic`.
        validate: device-syncing checks on/off.
    """

    def __init__(
        self,
        num_classes: int,
        dim: int,
        alpha: float = 32.0,
        delta: float = 0.1,
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        self.dim = check_positive_int("dim", dim)
        self.alpha = check_positive("alpha", alpha)
        self.delta = check_positive("delta", delta, allow_zero=True)
        self.reduction: Reduction = check_reduction(reduction)
        self.validate = validate
        self.proxies = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")

    def soft(self, embeddings: Tensor, y: Tensor, normalize: bool = True) -> Tensor:
        """The loss with soft positivity ``y`` (C, B)."""
        return proxy_anchor_generic(
            embeddings,
            self.proxies.to(embeddings.dtype),
            y,
            alpha=self.alpha,
            delta=self.delta,
            reduction=self.reduction,
            normalize=normalize,
            validate=self.validate,
        )

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_float_tensor("embeddings", embeddings, ndim=2, nonempty=True)
        check_labels(
            "labels",
            labels,
            n=embeddings.shape[0],
            num_classes=self.num_classes,
            validate=self.validate,
        )
        classes = torch.arange(self.num_classes, device=labels.device)
        y = (classes[:, None] == labels[None, :]).to(embeddings.dtype)
        return self.soft(embeddings, y)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, dim={self.dim}, alpha={self.alpha}, delta={self.delta}"
