"""paperzoo.ood_dro: out-of-domain unlabeled data with distributionally robust self-training.

Saberi et al., "Out-Of-Domain Unlabeled Data Improves Generalization" (ICLR 2024): a
Wasserstein-robust loss on the labeled points plus ``lambda`` times the same robust loss on
unlabeled (possibly shifted) points labeled by the model itself; closed forms for linear binary
models; the two-Gaussian theory's error formula and bounds.
"""

from paperzoo.ood_dro.costs import COSTS, l2, squared_l2
from paperzoo.ood_dro.data import (
    DigitsShift,
    digits_shift,
    gmm_mean,
    shifted_unlabeled,
    two_gaussians,
)
from paperzoo.ood_dro.losses import (
    BASE_LOSSES,
    LinearRobustLoss,
    RampLoss,
    check_pm1_labels,
    ramp_loss,
    robust_hinge_linear,
    robust_logistic_linear,
    robust_zero_one_linear,
)
from paperzoo.ood_dro.robust import WassersteinRobustLoss, robust_surrogate
from paperzoo.ood_dro.rss import RSSObjective, RSSTrainer, predict_labels, tune
from paperzoo.ood_dro.shift import shift_estimate
from paperzoo.ood_dro.theory import bayes_error, erm_rate, linear_error, thm41_rhs, thm42_rhs

__all__ = [
    "BASE_LOSSES",
    "COSTS",
    "DigitsShift",
    "LinearRobustLoss",
    "RSSObjective",
    "RSSTrainer",
    "RampLoss",
    "WassersteinRobustLoss",
    "bayes_error",
    "check_pm1_labels",
    "digits_shift",
    "erm_rate",
    "gmm_mean",
    "l2",
    "linear_error",
    "predict_labels",
    "ramp_loss",
    "robust_hinge_linear",
    "robust_logistic_linear",
    "robust_surrogate",
    "robust_zero_one_linear",
    "shift_estimate",
    "shifted_unlabeled",
    "squared_l2",
    "thm41_rhs",
    "thm42_rhs",
    "tune",
    "two_gaussians",
]

__version__ = "0.1.0"
