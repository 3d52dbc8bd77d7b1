"""ModHiFi: Subset Fidelity for gradient-free, label-free pruning and class unlearning.

Kashyap, Murti, Nayak, Narshana, Bhattacharyya, "ModHiFi: Identifying High Fidelity predictive
components for Model Modification", NeurIPS 2025 (arXiv 2511.19566).
"""

from paperzoo.modhifi.calibration import calibration_batches, recalibrate_batchnorm
from paperzoo.modhifi.fidelity import (
    compensation,
    csm_from_contributions,
    reconstruction_fidelity,
    saliency,
    singleton_fidelity,
    subset_fidelity,
)
from paperzoo.modhifi.pruning import (
    ModHiFiPruner,
    PruningPlan,
    l2_channel_scores,
    mask_input_channels,
    select_channels,
)
from paperzoo.modhifi.stats import LayerStats, score_components
from paperzoo.modhifi.unlearning import (
    ModHiFiUnlearner,
    edit_slices,
    random_slices,
    top_slices,
)

__all__ = [
    "LayerStats",
    "ModHiFiPruner",
    "ModHiFiUnlearner",
    "PruningPlan",
    "calibration_batches",
    "compensation",
    "csm_from_contributions",
    "edit_slices",
    "l2_channel_scores",
    "mask_input_channels",
    "random_slices",
    "recalibrate_batchnorm",
    "reconstruction_fidelity",
    "saliency",
    "score_components",
    "select_channels",
    "singleton_fidelity",
    "subset_fidelity",
    "top_slices",
]
