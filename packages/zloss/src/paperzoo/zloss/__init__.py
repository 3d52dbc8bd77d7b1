"""paperzoo.zloss: the Z-loss and exact O(d²) training of very large output layers.

de Brébisson & Vincent, "The Z-loss: a shift and scale invariant classification loss belonging to the
Spherical Family" (2016), with the factored exact update of Vincent, de Brébisson & Bouthillier
(NeurIPS 2015). Not the PaLM/ST-MoE ``logsumexp²`` "z-loss" regulariser.
"""

from paperzoo.zloss.factored import (
    FactoredSGD,
    FactoredSphericalLinear,
    FactoredZLossHead,
    SphericalOutputs,
)
from paperzoo.zloss.losses import (
    DENSE_SPHERICAL_LOSSES,
    SPHERICAL_LOSSES,
    LogSphericalSoftmaxLoss,
    LogTaylorSoftmaxLoss,
    SphericalLossFn,
    SphericalMSELoss,
    ZLoss,
    log_spherical_softmax_loss,
    log_spherical_softmax_loss_from_stats,
    log_taylor_softmax_loss,
    log_taylor_softmax_loss_from_stats,
    spherical_mse_loss,
    spherical_mse_loss_from_stats,
    spherical_stats,
    spherical_targets,
    z_loss,
    z_loss_from_stats,
)

__version__ = "0.1.1"

__all__ = [
    "DENSE_SPHERICAL_LOSSES",
    "SPHERICAL_LOSSES",
    "FactoredSGD",
    "FactoredSphericalLinear",
    "FactoredZLossHead",
    "LogSphericalSoftmaxLoss",
    "LogTaylorSoftmaxLoss",
    "SphericalLossFn",
    "SphericalMSELoss",
    "SphericalOutputs",
    "ZLoss",
    "__version__",
    "log_spherical_softmax_loss",
    "log_spherical_softmax_loss_from_stats",
    "log_taylor_softmax_loss",
    "log_taylor_softmax_loss_from_stats",
    "spherical_mse_loss",
    "spherical_mse_loss_from_stats",
    "spherical_stats",
    "spherical_targets",
    "z_loss",
    "z_loss_from_stats",
]
