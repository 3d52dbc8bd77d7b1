"""paperzoo.noprop: NoProp — training neural networks without back-propagation or
forward-propagation (Li, Teh & Pascanu, arXiv 2503.24322, 2025).

A classifier is T denoising blocks; block t learns to map a noised label embedding z_{t−1} (and
the input x) to the clean class embedding u_y on its own local loss, so no gradient crosses
blocks. Variants: NoProp-DT (:class:`NoPropDT`), NoProp-CT (:class:`NoPropCT`) and NoProp-FM
(:class:`NoPropFM`).
"""

from paperzoo.noprop.blocks import ConvDenoiseBlock, MLPDenoiseBlock, SinusoidalTimeEmbedding
from paperzoo.noprop.ct import NoPropCT
from paperzoo.noprop.dt import NoPropDT, backprop_chain_loss
from paperzoo.noprop.embeddings import LabelEmbedding, select_prototypes
from paperzoo.noprop.fm import NoPropFM
from paperzoo.noprop.functional import (
    DTDenoiseLoss,
    dt_denoise_loss,
    kl_to_standard_normal,
    posterior_coeffs,
)
from paperzoo.noprop.schedules import CosineSchedule, DiscreteSchedule, LearnableSchedule
from paperzoo.noprop.vmapped import train_blocks_vmapped

__version__ = "0.1.1"

__all__ = [
    "ConvDenoiseBlock",
    "CosineSchedule",
    "DTDenoiseLoss",
    "DiscreteSchedule",
    "LabelEmbedding",
    "LearnableSchedule",
    "MLPDenoiseBlock",
    "NoPropCT",
    "NoPropDT",
    "NoPropFM",
    "SinusoidalTimeEmbedding",
    "__version__",
    "backprop_chain_loss",
    "dt_denoise_loss",
    "kl_to_standard_normal",
    "posterior_coeffs",
    "select_prototypes",
    "train_blocks_vmapped",
]
