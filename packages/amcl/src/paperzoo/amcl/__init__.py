"""paperzoo.amcl: Adaptive Multi-head Contrastive Learning (Wang, Koniusz, Gedeon, Zheng; ECCV 2024).

``C`` projection heads instead of one, and a small network that gives every (anchor, pair) its own
temperature, regularised by :math:`\\Omega(\\tau)`; AMCL forms of NT-Xent (SimCLR), InfoNCE and MoCo.
"""

from paperzoo.amcl.barlow import AMCLBarlowTwinsLoss, amcl_barlow_twins_loss
from paperzoo.amcl.guard import CollapseGuard, CollapseWarning, mean_pairwise_cosine
from paperzoo.amcl.heads import MultiHeadProjector
from paperzoo.amcl.losses import (
    AMCLInfoNCELoss,
    AMCLMoCoLoss,
    AMCLNTXentLoss,
    amcl_infonce_loss,
    amcl_moco_loss,
    amcl_ntxent_loss,
)
from paperzoo.amcl.simclr import AMCLConfig, AMCLSimCLR
from paperzoo.amcl.temperature import ConstantTemperature, PairTemperature, TemperatureNet, omega

__all__ = [
    "AMCLBarlowTwinsLoss",
    "AMCLConfig",
    "AMCLInfoNCELoss",
    "AMCLMoCoLoss",
    "AMCLNTXentLoss",
    "AMCLSimCLR",
    "CollapseGuard",
    "CollapseWarning",
    "ConstantTemperature",
    "MultiHeadProjector",
    "PairTemperature",
    "TemperatureNet",
    "amcl_barlow_twins_loss",
    "amcl_infonce_loss",
    "amcl_moco_loss",
    "amcl_ntxent_loss",
    "mean_pairwise_cosine",
    "omega",
]
