"""paperzoo.metric_losses: Multi-Similarity loss with General Pair Weighting
(Wang et al., CVPR 2019) and SuSana's Proto-Triplet and ICNN few-shot losses
(Mendez-Ruiz et al., 2023), in PyTorch.

The m-per-class and episodic batch samplers these methods train with live in
``paperzoo.core.samplers`` (shared by several packages).
"""

from __future__ import annotations

from .few_shot import (
    FewShotLoss,
    ICNNLoss,
    ProtoTripletLoss,
    few_shot_loss,
    icnn_loss,
    icnn_score,
    proto_logits,
    proto_triplet_loss,
    prototypes,
)
from .multi_similarity import (
    MSConfig,
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    PairIndices,
    Similarity,
    gpw_weights,
    ms_pair_weights,
    multi_similarity_loss,
    multi_similarity_loss_from_similarity,
    multi_similarity_masks,
    pair_masks,
    similarity_matrix,
)
from .retrieval import map_at_r, recall_at_k, retrieval_metrics

__version__ = "0.1.0"

__all__ = [
    "FewShotLoss",
    "ICNNLoss",
    "MSConfig",
    "MultiSimilarityLoss",
    "MultiSimilarityMiner",
    "PairIndices",
    "ProtoTripletLoss",
    "Similarity",
    "__version__",
    "few_shot_loss",
    "gpw_weights",
    "icnn_loss",
    "icnn_score",
    "map_at_r",
    "ms_pair_weights",
    "multi_similarity_loss",
    "multi_similarity_loss_from_similarity",
    "multi_similarity_masks",
    "pair_masks",
    "proto_logits",
    "proto_triplet_loss",
    "prototypes",
    "recall_at_k",
    "retrieval_metrics",
    "similarity_matrix",
]
