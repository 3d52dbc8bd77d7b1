"""paperzoo.hpm: Hard Patches Mining for masked image modelling (Wang et al., CVPR 2023 / TPAMI).

An MAE whose decoder has a second branch, the loss predictor, trained with a relative (ranking)
objective to tell which patches are hard to reconstruct; an EMA teacher uses it to mask a growing
share (0 -> 0.5) of predicted-hardest patches.
"""

from paperzoo.hpm.hpm import HPM
from paperzoo.hpm.losses import (
    AbsoluteLossPredictionLoss,
    RelativeLossPredictionLoss,
    absolute_loss_prediction_loss,
    relative_loss_prediction_loss,
)
from paperzoo.hpm.masking import (
    check_mask,
    easy_to_hard_alpha,
    hard_patch_mask,
    num_masked,
    random_mask,
)
from paperzoo.hpm.model import MAEOutput, MaskedAutoencoderViT, sincos_pos_embed_2d
from paperzoo.hpm.patches import patchify, per_patch_mse, unpatchify
from paperzoo.hpm.probe import encoder_features, knn_accuracy, linear_probe_accuracy
from paperzoo.hpm.teacher import EMATeacher

__all__ = [
    "HPM",
    "AbsoluteLossPredictionLoss",
    "EMATeacher",
    "MAEOutput",
    "MaskedAutoencoderViT",
    "RelativeLossPredictionLoss",
    "absolute_loss_prediction_loss",
    "check_mask",
    "easy_to_hard_alpha",
    "encoder_features",
    "hard_patch_mask",
    "knn_accuracy",
    "linear_probe_accuracy",
    "num_masked",
    "patchify",
    "per_patch_mse",
    "random_mask",
    "relative_loss_prediction_loss",
    "sincos_pos_embed_2d",
    "unpatchify",
]

__version__ = "0.1.0"
