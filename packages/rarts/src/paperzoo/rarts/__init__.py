"""paperzoo.rarts — RARTS: An Efficient First-Order Relaxed Architecture Search Method (Xue, Qi & Xin, 2020/2022).

RARTS replaces DARTS' bilevel problem by a relaxed single-level objective over two networks (weights w on the
training split, y on the validation split) that share one architecture α, coupled by (β/2)‖y − w‖², and updates
them Gauss–Seidel with first derivatives only. This package holds the DARTS search space (1-D and 2-D), the
NATS-Bench topology space, DARTS first/second order and RARTS as stepper objects, the width-search variant, the
analytically solvable toy model, and the reproduction and benchmark.
"""

from paperzoo.rarts.darts import DartsFirstOrder, DartsSecondOrder
from paperzoo.rarts.hvp import hvp_autograd, hvp_finite_diff
from paperzoo.rarts.loop import SearchResult, run_search
from paperzoo.rarts.nats import (
    NATSSearchCell,
    NATSSearchNetwork,
    format_arch_str,
    parse_arch_str,
    query,
)
from paperzoo.rarts.ops import (
    DARTS_PRIMITIVES,
    MNIST1D_PRIMITIVES,
    NATS_PRIMITIVES,
    OPS,
    MixedOp,
    make_op,
)
from paperzoo.rarts.search import RARTS, coupling_penalty
from paperzoo.rarts.space import (
    EvalNetwork,
    Genotype,
    SearchCell,
    SearchNetwork,
    genotype_from_alphas,
    random_genotype,
)
from paperzoo.rarts.stepper import SearchStepper
from paperzoo.rarts.toy import QuadraticBilevel, mean_loss
from paperzoo.rarts.width import MaskedConv, WidthResNet, WidthSearchResNet

__all__ = [
    "DARTS_PRIMITIVES",
    "MNIST1D_PRIMITIVES",
    "NATS_PRIMITIVES",
    "OPS",
    "RARTS",
    "DartsFirstOrder",
    "DartsSecondOrder",
    "EvalNetwork",
    "Genotype",
    "MaskedConv",
    "MixedOp",
    "NATSSearchCell",
    "NATSSearchNetwork",
    "QuadraticBilevel",
    "SearchCell",
    "SearchNetwork",
    "SearchResult",
    "SearchStepper",
    "WidthResNet",
    "WidthSearchResNet",
    "coupling_penalty",
    "format_arch_str",
    "genotype_from_alphas",
    "hvp_autograd",
    "hvp_finite_diff",
    "make_op",
    "mean_loss",
    "parse_arch_str",
    "query",
    "random_genotype",
    "run_search",
]
