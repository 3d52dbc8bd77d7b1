"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.arabic_emo as arabic_emo

EXPECTED = [
    "LABEL_NAMES",
    "SYNTHETIC_PRIORS",
    "BiLSTMHead",
    "ClassifierOutput",
    "EmotionDataset",
    "EncodedBatch",
    "EncoderSpec",
    "HybridLoss",
    "HybridLossOutput",
    "LabelCorrelationLoss",
    "MultiLabelContrastiveLoss",
    "StackedBiLSTMClassifier",
    "StackedEncoder",
    "TinyTextEncoder",
    "WeightedBCELoss",
    "WhitespaceTokenizer",
    "class_weights",
    "hybrid_loss",
    "label_correlation",
    "label_correlation_loss",
    "load_semeval_ec",
    "make_synthetic_emotion_corpus",
    "masked_pool",
    "multilabel_contrastive_loss",
    "multilabel_metrics",
    "weighted_bce_loss",
]


def test_public_api_snapshot() -> None:
    assert sorted(arabic_emo.__all__) == sorted(EXPECTED)
    for name in arabic_emo.__all__:
        obj = getattr(arabic_emo, name)
        assert obj.__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(arabic_emo.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.arabic_emo.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.arabic_emo.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
