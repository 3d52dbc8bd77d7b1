"""Scalable Neural Network Kernels (SNNKs) and universal random features (Sehanobish et al., ICLR 2024).

``f(w^T x + b) ~ Psi(x)^T Phi(w, b)``: a feed-forward layer becomes a frozen random map of the
input and a trainable matrix ``Theta = Phi(W, b)``; bundling collapses an MLP into one linear
readout on a deep random map (fitted in closed form); SNNK adapters fine-tune frozen backbones.
"""

from __future__ import annotations

from .adapters import (
    AdaptedModule,
    HoulsbyAdapter,
    LoRALinear,
    SNNKAdapter,
    add_adapters,
    add_lora,
    add_snnk_adapters,
)
from .bundling import (
    RIDGE_GRID,
    BundledLayer,
    FullyBundledNetwork,
    RidgeCV,
    bundle,
    ridge_cv,
    ridge_fit,
)
from .features import (
    FeatureRangeError,
    PositiveRandomFeatures,
    ReLURandomFeatures,
    arccos_kernel,
    orthogonal_gaussian,
    positive_features,
    relu_features,
)
from .layers import SNNKLinear, trainable_parameters
from .urf import (
    GAUSSIAN,
    URF,
    Cos,
    Exp,
    GaussianActivation,
    Sin,
    SpectralSpec,
    activation_function,
    param_features,
)

__all__ = [
    "GAUSSIAN",
    "RIDGE_GRID",
    "URF",
    "AdaptedModule",
    "BundledLayer",
    "Cos",
    "Exp",
    "FeatureRangeError",
    "FullyBundledNetwork",
    "GaussianActivation",
    "HoulsbyAdapter",
    "LoRALinear",
    "PositiveRandomFeatures",
    "ReLURandomFeatures",
    "RidgeCV",
    "SNNKAdapter",
    "SNNKLinear",
    "Sin",
    "SpectralSpec",
    "activation_function",
    "add_adapters",
    "add_lora",
    "add_snnk_adapters",
    "arccos_kernel",
    "bundle",
    "orthogonal_gaussian",
    "param_features",
    "positive_features",
    "relu_features",
    "ridge_cv",
    "ridge_fit",
    "trainable_parameters",
]
