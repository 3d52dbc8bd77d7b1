"""EnsLoss (Dai 2024): stochastic calibrated loss ensembles for binary classification.

``EnsLoss`` replaces the loss derivative of binary ERM by random calibrated derivatives drawn at
every step (negative, non-decreasing in the margin); ``hinge_loss`` / ``exponential_loss`` are the
fixed margin-loss baselines (BCE is ``torch.nn.BCEWithLogitsLoss``).
"""

from __future__ import annotations

from paperzoo.ensloss.baselines import ExponentialLoss, HingeLoss, exponential_loss, hinge_loss
from paperzoo.ensloss.loss import EnsLoss, ensloss, ensloss_derivatives, inverse_box_cox
from paperzoo.ensloss.margins import TargetFormat, binary_margins
from paperzoo.ensloss.schedule import LambdaResampler

__version__ = "0.1.0"

__all__ = [
    "EnsLoss",
    "ExponentialLoss",
    "HingeLoss",
    "LambdaResampler",
    "TargetFormat",
    "__version__",
    "binary_margins",
    "ensloss",
    "ensloss_derivatives",
    "exponential_loss",
    "hinge_loss",
    "inverse_box_cox",
]
