"""Refined regret for adversarial MDPs with linear function approximation (Dai et al., ICML 2023).

Layered linear MDPs with exact DP and oblivious adversaries (:mod:`~paperzoo.adv_mdp.envs`),
log-barrier and Hedge FTRL (:mod:`~paperzoo.adv_mdp.ftrl`), MGR and regularised inverse
covariances (:mod:`~paperzoo.adv_mdp.covariance`), linear Q estimates and dilated bonuses
(:mod:`~paperzoo.adv_mdp.estimators`, :mod:`~paperzoo.adv_mdp.simulator`), the learners
(:mod:`~paperzoo.adv_mdp.learners`) and exact regret (:mod:`~paperzoo.adv_mdp.regret`).
"""

from paperzoo.adv_mdp.covariance import (
    exact_covariance,
    exact_inverse,
    mgr_expectation,
    mgr_inverse,
    regularized_inverse,
)
from paperzoo.adv_mdp.envs import AdversaryKind, LinearMDP, Trajectory, make_adversary
from paperzoo.adv_mdp.estimators import bonus, linear_q_estimate, magnitude_reduced
from paperzoo.adv_mdp.ftrl import hedge, log_barrier
from paperzoo.adv_mdp.learners import (
    DilatedBonusPO,
    FullInfoPO,
    Learner,
    LogBarrierPO,
    MagnitudeReducedPO,
    NaivePO,
    UniformPolicy,
)
from paperzoo.adv_mdp.regret import RegretTracker, RunResult, fit_loglog_slope, run
from paperzoo.adv_mdp.simulator import Simulator

__all__ = [
    "AdversaryKind",
    "DilatedBonusPO",
    "FullInfoPO",
    "Learner",
    "LinearMDP",
    "LogBarrierPO",
    "MagnitudeReducedPO",
    "NaivePO",
    "RegretTracker",
    "RunResult",
    "Simulator",
    "Trajectory",
    "UniformPolicy",
    "bonus",
    "exact_covariance",
    "exact_inverse",
    "fit_loglog_slope",
    "hedge",
    "linear_q_estimate",
    "log_barrier",
    "magnitude_reduced",
    "make_adversary",
    "mgr_expectation",
    "mgr_inverse",
    "regularized_inverse",
    "run",
]
