"""paperzoo.compsum: comp-sum losses and smooth adversarial comp-sum training.

Mao, Mohri & Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis and Applications",
ICML 2023. The one-parameter family ``comp_sum_loss(logits, target, tau)`` spans the
sum-exponential loss (``tau = 0``), cross-entropy (``1``), generalised cross-entropy (``1 < tau <
2``) and MAE (``2``); ``smooth_adv_comp_sum_loss`` with ``PGD`` and ``AdvCompSumTrainer`` is the
paper's ADV-COMP-SUM adversarial training, with ``PGDATTrainer`` and ``TRADESTrainer`` as baselines.
"""

from paperzoo.compsum.adversarial import (
    SmoothAdvCompSumLoss,
    logit_difference_distance,
    logit_differences,
    smooth_adv_comp_sum_loss,
)
from paperzoo.compsum.attacks import (
    PGD,
    AttackObjective,
    cross_entropy_objective,
    logit_diff_distance,
    robust_accuracy,
    trades_kl_objective,
)
from paperzoo.compsum.losses import (
    CompSumLoss,
    GeneralizedCrossEntropyLoss,
    MAELoss,
    SumExponentialLoss,
    comp_sum_loss,
    comp_sum_phi,
    generalized_cross_entropy_loss,
    mae_loss,
    sum_exponential_loss,
)
from paperzoo.compsum.training import (
    AdvCompSumTrainer,
    AdversarialTrainer,
    PGDATTrainer,
    TRADESTrainer,
)

__all__ = [
    "PGD",
    "AdvCompSumTrainer",
    "AdversarialTrainer",
    "AttackObjective",
    "CompSumLoss",
    "GeneralizedCrossEntropyLoss",
    "MAELoss",
    "PGDATTrainer",
    "SmoothAdvCompSumLoss",
    "SumExponentialLoss",
    "TRADESTrainer",
    "__version__",
    "comp_sum_loss",
    "comp_sum_phi",
    "cross_entropy_objective",
    "generalized_cross_entropy_loss",
    "logit_diff_distance",
    "logit_difference_distance",
    "logit_differences",
    "mae_loss",
    "robust_accuracy",
    "smooth_adv_comp_sum_loss",
    "sum_exponential_loss",
    "trades_kl_objective",
]

__version__ = "0.1.0"
