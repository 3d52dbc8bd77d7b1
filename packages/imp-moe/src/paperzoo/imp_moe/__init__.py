"""IMP in PyTorch: a modality-agnostic Transformer with sparse MoE FFNs (experts-choose and
tokens-choose routing), trained with Alternating Gradient Descent over tasks of different
modalities, losses and resolutions (Akbari et al., NeurIPS 2023)."""

from paperzoo.imp_moe.agd import (
    AGDSchedule,
    AGDTrainer,
    PreWarmupCosine,
    Task,
    repeat,
    saved_tensor_bytes,
)
from paperzoo.imp_moe.encoder import Attention, IMPEncoder, TransformerBlock, moe_layer_indices
from paperzoo.imp_moe.heads import (
    ClassificationHead,
    ClassificationLoss,
    CommonSpace,
    CrossModalNCELoss,
    classification_loss,
    cross_modal_nce,
)
from paperzoo.imp_moe.moe import FeedForward, MoEAux, MoEFFN, expert_forward
from paperzoo.imp_moe.routing import (
    capacity,
    experts_choose,
    load_balancing_loss,
    num_groups,
    router_z_loss,
    slot_table,
    tokens_choose,
)
from paperzoo.imp_moe.stems import DropToken, PatchEmbed1D, PatchEmbed2D, PatchEmbed3D, TokenEmbed

__all__ = [
    "AGDSchedule",
    "AGDTrainer",
    "Attention",
    "ClassificationHead",
    "ClassificationLoss",
    "CommonSpace",
    "CrossModalNCELoss",
    "DropToken",
    "FeedForward",
    "IMPEncoder",
    "MoEAux",
    "MoEFFN",
    "PatchEmbed1D",
    "PatchEmbed2D",
    "PatchEmbed3D",
    "PreWarmupCosine",
    "Task",
    "TokenEmbed",
    "TransformerBlock",
    "capacity",
    "classification_loss",
    "cross_modal_nce",
    "expert_forward",
    "experts_choose",
    "load_balancing_loss",
    "moe_layer_indices",
    "num_groups",
    "repeat",
    "router_z_loss",
    "saved_tensor_bytes",
    "slot_table",
    "tokens_choose",
]
