"""AF-KAN: Activation Function-Based Kolmogorov-Arnold Networks (Ta & Tran, arXiv 2503.06112).

AF-KAN generalises ReLU-KAN's ReLU bumps to any activation σ and to several combinations of two
shifted activations, min–max normalises the basis responses, and reduces the ``inputs × bumps``
features with an attention-style weighting and LayerNorm before a single linear map, so a layer
costs about as many parameters as an MLP layer.
"""

from .basis import (
    ACTIVATIONS,
    FUNCS,
    af_basis,
    grid,
    l2mm,
    minmax_stats,
    relu_kan_basis,
    relu_kan_scale,
)
from .layers import METHODS, NORMS, AFKANLayer, BSplineKANLayer, RBFKANLayer, ReLUKANLayer
from .models import AFKAN, MLP, RBFKAN, BSplineKAN, ReLUKAN
from .utils import estimate_flops

__all__ = [
    "ACTIVATIONS",
    "AFKAN",
    "FUNCS",
    "METHODS",
    "MLP",
    "NORMS",
    "RBFKAN",
    "AFKANLayer",
    "BSplineKAN",
    "BSplineKANLayer",
    "RBFKANLayer",
    "ReLUKAN",
    "ReLUKANLayer",
    "af_basis",
    "estimate_flops",
    "grid",
    "l2mm",
    "minmax_stats",
    "relu_kan_basis",
    "relu_kan_scale",
]

__version__ = "0.1.1"
