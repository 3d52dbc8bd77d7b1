"""paperzoo.ldr: label-distributionally robust losses (LDR-KL, ALDR-KL); Zhu, Ying, Yang 2023.

The loss takes the worst case over a distribution of the label, regularised by KL to uniform:
``LDRKLLoss`` (a fixed temperature lambda) and ``ALDRKLLoss`` (one learned lambda_i per example),
plus the family's closed forms (Crammer-Singer, Weston-Watkins) and comparison losses (GCE, MAE).
"""

from paperzoo.ldr.baselines import GCELoss, MAELoss, gce_loss, mae_loss
from paperzoo.ldr.losses import (
    ALDRKLLoss,
    CrammerSingerLoss,
    LDRKLLoss,
    WestonWatkinsLoss,
    aldr_kl_loss,
    class_indices,
    crammer_singer_loss,
    ldr_kl_loss,
    ldr_loss,
    margin_differences,
    normalize_scores,
    weston_watkins_loss,
    worst_case_distribution,
)
from paperzoo.ldr.noise import class_dependent_label_noise, uniform_label_noise

__all__ = [
    "ALDRKLLoss",
    "CrammerSingerLoss",
    "GCELoss",
    "LDRKLLoss",
    "MAELoss",
    "WestonWatkinsLoss",
    "aldr_kl_loss",
    "class_dependent_label_noise",
    "class_indices",
    "crammer_singer_loss",
    "gce_loss",
    "ldr_kl_loss",
    "ldr_loss",
    "mae_loss",
    "margin_differences",
    "normalize_scores",
    "uniform_label_noise",
    "weston_watkins_loss",
    "worst_case_distribution",
]

__version__ = "0.1.1"
