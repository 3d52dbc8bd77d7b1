"""paperzoo.arabic_emo: stacked encoder embeddings, a Bi-LSTM head and a hybrid loss (class-weighted
BCE + label correlation + contrastive) for multi-label emotion classification, after Aslam et al.,
"Improving Arabic Multi-Label Emotion Classification using Stacked Embeddings and Hybrid Loss
Function" (arXiv 2410.03979). The paper's loss equations and layer sizes could not be retrieved:
this package implements the spec's documented reconstruction; parity with the paper is unverified.
"""

from paperzoo.arabic_emo.data import (
    LABEL_NAMES,
    SYNTHETIC_PRIORS,
    EmotionDataset,
    load_semeval_ec,
    make_synthetic_emotion_corpus,
)
from paperzoo.arabic_emo.encoders import (
    EncodedBatch,
    EncoderSpec,
    StackedEncoder,
    TinyTextEncoder,
    WhitespaceTokenizer,
    masked_pool,
)
from paperzoo.arabic_emo.hybrid import HybridLoss, HybridLossOutput, hybrid_loss
from paperzoo.arabic_emo.losses import (
    LabelCorrelationLoss,
    MultiLabelContrastiveLoss,
    WeightedBCELoss,
    label_correlation_loss,
    multilabel_contrastive_loss,
    weighted_bce_loss,
)
from paperzoo.arabic_emo.metrics import multilabel_metrics
from paperzoo.arabic_emo.model import BiLSTMHead, ClassifierOutput, StackedBiLSTMClassifier
from paperzoo.arabic_emo.stats import class_weights, label_correlation

__all__ = [
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
