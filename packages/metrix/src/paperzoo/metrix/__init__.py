"""paperzoo.metrix: Metrix, mixup for deep metric learning (Venkataramanan et al., ICLR 2022).

Generic soft-label forms of contrastive, Multi-Similarity and Proxy-Anchor losses, the pair
construction and mixing of the official code at input, feature and embedding level, and the
utilization metric. Retrieval metrics come from ``paperzoo.metric_losses``.
"""

from __future__ import annotations

from paperzoo.metric_losses import map_at_r, recall_at_k

from .generic import (
    GenericPairLoss,
    PairReduction,
    PairSimilarity,
    contrastive_generic,
    generic_pair_loss,
    multi_similarity_generic,
    pair_scores,
    positivity,
)
from .metrix import MetrixLoss
from .mixing import (
    AncNegAnchors,
    MixKind,
    MixPlan,
    mix,
    mix_pairs,
    mix_pairs_from_indices,
    sample_lambda,
    soft_labels,
)
from .proxy_anchor import ProxyAnchorGeneric, proxy_anchor_generic
from .utilization import utilization

__version__ = "0.1.0"

__all__ = [
    "AncNegAnchors",
    "GenericPairLoss",
    "MetrixLoss",
    "MixKind",
    "MixPlan",
    "PairReduction",
    "PairSimilarity",
    "ProxyAnchorGeneric",
    "__version__",
    "contrastive_generic",
    "generic_pair_loss",
    "map_at_r",
    "mix",
    "mix_pairs",
    "mix_pairs_from_indices",
    "multi_similarity_generic",
    "pair_scores",
    "positivity",
    "proxy_anchor_generic",
    "recall_at_k",
    "sample_lambda",
    "soft_labels",
    "utilization",
]
