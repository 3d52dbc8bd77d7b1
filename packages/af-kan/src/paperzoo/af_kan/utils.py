"""Parameter and FLOP counting for the models of this package (and any ``nn.Module``)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from torch import nn

__all__ = ["count_parameters", "estimate_flops"]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``.

    The layers of this package create only the parameters they use, so this equals the
    official code's "used parameters" count (trainable parameters whose ``.grad`` is set
    after a backward pass) without needing a backward pass.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def estimate_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Estimated forward FLOPs of ``model`` on an input of shape ``input_shape`` (``(*, d)``).

    Modules that define ``flops_per_example()`` (every layer and model of this package) report
    their own analytic estimate: the GEMMs count ``2·in·out`` and the elementwise basis work a
    fixed number of FLOPs per element (σ: 1 for ReLU to 8 for GELU; see ``layers.py``). Any other
    ``nn.Linear`` counts ``2·in·out + out``; other modules count 0. The result is multiplied by
    the number of rows ``prod(input_shape[:-1])``. Like ptflops (used by the paper), this is an
    estimate, meant for comparing models, not a measurement.
    """
    shape = tuple(input_shape)
    if len(shape) < 2 or any(
        isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in shape
    ):
        raise ValueError(
            f"input_shape must be (batch, ..., features) of positive ints, got {shape}"
        )
    rows = math.prod(int(s) for s in shape[:-1])
    return rows * _per_example(model)


def _per_example(module: nn.Module) -> int:
    own = getattr(module, "flops_per_example", None)
    if callable(own):
        return int(own())
    if isinstance(module, nn.Linear):
        bias = module.out_features if module.bias is not None else 0
        return 2 * module.in_features * module.out_features + bias
    return sum(_per_example(child) for child in module.children())
