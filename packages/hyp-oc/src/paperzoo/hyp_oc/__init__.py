"""Hyp-OC: hyperbolic one-class classification (Narayan & Patel, FG 2024), in PyTorch.

Poincaré-ball operations (:mod:`paperzoo.hyp_oc.ops`), the ball map and hyperbolic MLR
(:mod:`~paperzoo.hyp_oc.layers`), the pseudo-negative sampler, the Hyp-CE and Hyp-PC losses, the
Hyp-OC head (:class:`HypOC`) and anti-spoofing metrics.
"""

from paperzoo.hyp_oc.layers import (
    HyperbolicMLR,
    ToPoincare,
    hyperbolic_mlr_logits,
    riemannian_gradient,
)
from paperzoo.hyp_oc.losses import HypCELoss, HypPCLoss, hyp_ce_loss, hyp_pc_loss
from paperzoo.hyp_oc.metrics import apcer_bpcer_acer, eer, hter, roc_auc
from paperzoo.hyp_oc.model import HypOC, SamplerEpochCallback
from paperzoo.hyp_oc.ops import (
    clip_norm,
    expmap,
    expmap0,
    lambda_x,
    logmap0,
    mobius_add,
    poincare_dist,
    poincare_dist_matrix,
    project,
)
from paperzoo.hyp_oc.sampler import PseudoNegativeSampler

__all__ = [
    "HypCELoss",
    "HypOC",
    "HypPCLoss",
    "HyperbolicMLR",
    "PseudoNegativeSampler",
    "SamplerEpochCallback",
    "ToPoincare",
    "apcer_bpcer_acer",
    "clip_norm",
    "eer",
    "expmap",
    "expmap0",
    "hter",
    "hyp_ce_loss",
    "hyp_pc_loss",
    "hyperbolic_mlr_logits",
    "lambda_x",
    "logmap0",
    "mobius_add",
    "poincare_dist",
    "poincare_dist_matrix",
    "project",
    "riemannian_gradient",
    "roc_auc",
]
