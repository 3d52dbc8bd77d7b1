"""The package's public names (a snapshot: adding or removing one is a deliberate change)."""

from __future__ import annotations

import paperzoo.metric_losses as ml


def test_public_api_snapshot() -> None:
    assert sorted(ml.__all__) == [
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
    for name in ml.__all__:
        assert hasattr(ml, name)
