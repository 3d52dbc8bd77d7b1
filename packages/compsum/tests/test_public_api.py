"""The exported surface changes only on purpose; every public name has a docstring."""

from __future__ import annotations

import paperzoo.compsum as cs

EXPECTED = {
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
}


def test_public_api_snapshot() -> None:
    assert set(cs.__all__) == EXPECTED
    assert len(cs.__all__) == len(set(cs.__all__))
    for name in cs.__all__:
        obj = getattr(cs, name)
        if callable(obj) and not isinstance(obj, cs.AttackObjective):
            assert obj.__doc__, name
