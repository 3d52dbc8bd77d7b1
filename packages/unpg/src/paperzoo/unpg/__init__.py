"""paperzoo.unpg: Unified Negative Pair Generation for margin-based face recognition losses.

Jung et al., "Unified Negative Pair Generation toward Well-discriminative Feature Space for Face
Recognition" (arXiv 2203.11593): a margin softmax (ArcFace / CosFace) whose denominator also holds
every in-batch sample–sample negative similarity that survives a box-and-whisker filter.
"""

from paperzoo.unpg.functional import extra_negative_lse, unpg_cross_entropy
from paperzoo.unpg.heads import (
    ArcFaceHead,
    CosFaceHead,
    MarginHead,
    margin_to_pml_degrees,
    weight_to_pml,
)
from paperzoo.unpg.loss import UNPGLoss, official, unpg_loss
from paperzoo.unpg.negatives import (
    box_whisker_filter,
    in_batch_negative_similarities,
    negative_pair_similarities,
    whisker_mask,
)
from paperzoo.unpg.verification import eer, tar_at_far, verification_scores, wdfs_fraction

__all__ = [
    "ArcFaceHead",
    "CosFaceHead",
    "MarginHead",
    "UNPGLoss",
    "box_whisker_filter",
    "eer",
    "extra_negative_lse",
    "in_batch_negative_similarities",
    "margin_to_pml_degrees",
    "negative_pair_similarities",
    "official",
    "tar_at_far",
    "unpg_cross_entropy",
    "unpg_loss",
    "verification_scores",
    "wdfs_fraction",
    "weight_to_pml",
    "whisker_mask",
]
