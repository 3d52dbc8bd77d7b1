"""Dual-Head Knowledge Distillation (Yang et al., arXiv 2411.08937) in PyTorch.

The logit-level losses (BinaryKL, BinaryKL-Norm in its stable log-cosh form), vanilla KD, the
dual-head student, the DHKD objective, gradient alignment and the training recipes.
"""

from paperzoo.dhkd.dhkd import DHKDLoss, GradAlign, LossBreakdown, cross_entropy, gradient_cosine
from paperzoo.dhkd.heads import (
    AuxHead,
    DualHeadClassifier,
    DualHeadOutput,
    NonLinearHead,
    add_aux_head,
)
from paperzoo.dhkd.losses import (
    BinaryKLLoss,
    BinaryKLNormLoss,
    KDLoss,
    binary_kl,
    binary_kl_norm,
    kd_loss,
    log_cosh,
)
from paperzoo.dhkd.recipe import (
    METHODS,
    Method,
    conv1d_teacher,
    distill,
    distillation_step,
    step_decay,
    train_teacher,
)

__all__ = [
    "METHODS",
    "AuxHead",
    "BinaryKLLoss",
    "BinaryKLNormLoss",
    "DHKDLoss",
    "DualHeadClassifier",
    "DualHeadOutput",
    "GradAlign",
    "KDLoss",
    "LossBreakdown",
    "Method",
    "NonLinearHead",
    "add_aux_head",
    "binary_kl",
    "binary_kl_norm",
    "conv1d_teacher",
    "cross_entropy",
    "distill",
    "distillation_step",
    "gradient_cosine",
    "kd_loss",
    "log_cosh",
    "step_decay",
    "train_teacher",
]
