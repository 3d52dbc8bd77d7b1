"""paperzoo.losses: which loss should I use? Every classification loss of paperzoo under one protocol.

``paperzoo run losses`` trains one MLP per loss, data set, setting (label noise, class imbalance)
and seed, selects each loss's hyper-parameters on the noisy validation split, and reports test
top-1, macro-F1, G-mean, calibration error, the memorisation gap, ranks and paired tests against
cross-entropy. The parts are public: :mod:`~paperzoo.losses.settings` (noise and imbalance),
:mod:`~paperzoo.losses.registry` (the contestants), :mod:`~paperzoo.losses.stats` (paired tests,
ranks) and :class:`FocalLoss`, the one baseline no other package holds.
"""

from paperzoo.losses.baselines import FocalLoss, focal_loss
from paperzoo.losses.metrics import classification_metrics, g_mean
from paperzoo.losses.registry import CONTESTANTS, Contestant, Task, contestants_for
from paperzoo.losses.settings import (
    Noisy,
    apply_setting,
    class_dependent_transition,
    long_tail_keep,
    parse_setting,
)
from paperzoo.losses.stats import (
    PairedTest,
    average_ranks,
    paired_t_test,
    sign_test,
    student_t_two_sided_p,
)

__all__ = [
    "CONTESTANTS",
    "Contestant",
    "FocalLoss",
    "Noisy",
    "PairedTest",
    "Task",
    "__version__",
    "apply_setting",
    "average_ranks",
    "class_dependent_transition",
    "classification_metrics",
    "contestants_for",
    "focal_loss",
    "g_mean",
    "long_tail_keep",
    "paired_t_test",
    "parse_setting",
    "sign_test",
    "student_t_two_sided_p",
]

__version__ = "0.1.0"
