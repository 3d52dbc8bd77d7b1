"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata

import paperzoo.metrix as metrix

EXPECTED = [
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


def test_public_api_snapshot() -> None:
    assert sorted(metrix.__all__) == sorted(EXPECTED)
    for name in EXPECTED:
        assert hasattr(metrix, name), name


def test_version_matches_distribution() -> None:
    assert metrix.__version__ == importlib.metadata.version("paperzoo-metrix")


def test_every_public_callable_has_a_docstring() -> None:
    for name in EXPECTED:
        obj = getattr(metrix, name)
        if (callable(obj) and not name[0].isupper()) or isinstance(obj, type):
            assert obj.__doc__, name
