"""FLOP estimates for the models of this package (and any ``nn.Module``).

Parameters are counted with :func:`paperzoo.core.models.count_parameters`: the layers of this
package create only the parameters they use, so it equals the official code's "used parameters"
count (trainable parameters whose ``.grad`` is set after a backward pass) without a backward pass.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from torch import nn

__all__ = ["estimate_flops"]


def estimate_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Estimated forward FLOPs of ``model`` on an input of shape ``input_shape`` (``(*, d)``).

    Modules that define ``flops_per_example()`` (every layer and model of this package) report
    their own analytic estimate: the GEMMs count ``2·in·out`` and the elementwise basis work a
    fixed number of FLOPs per element (σ: 1 for ReLU to 8 for GELU; see ``layers.py``). Any other
    ``nn.Linear`` counts ``2·in·out + out``; other modules count 0. The result is multiplied by
    the number of rows ``prod(input_shape[:-1])``. Like ptflops (used by the paper), this is an
    estimate, meant for comparing models, not a measurement.

    Raises:
        ValueError: ``input_shape`` is not ``(batch, ..., features)`` of positive ints, or its
            last entry is not the model's input width (read from the model's ``widths[0]`` or
            ``in_features``, or an ``nn.Sequential``'s first module; other models are not checked).
    """
    shape = tuple(input_shape)
    if len(shape) < 2 or any(
        isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in shape
    ):
        raise ValueError(
            f"input_shape must be (batch, ..., features) of positive ints, got {shape}"
        )
    width = _input_width(model)
    if width is not None and int(shape[-1]) != width:
        raise ValueError(
            f"input_shape: expected last entry {width} (the input width of "
            f"{type(model).__name__}), got {shape}"
        )
    rows = math.prod(int(s) for s in shape[:-1])
    return rows * _per_example(model)


def _input_width(model: nn.Module) -> int | None:
    """The model's input width where it declares one: ``widths[0]``, ``in_features``, or the first
    module of an ``nn.Sequential``; ``None`` when it does not."""
    widths = getattr(model, "widths", None)
    if isinstance(widths, Sequence) and widths and isinstance(widths[0], numbers.Integral):
        return int(widths[0])
    own = getattr(model, "in_features", None)
    if isinstance(own, numbers.Integral) and not isinstance(own, bool):
        return int(own)
    if isinstance(model, nn.Sequential) and len(model) > 0:
        return _input_width(model[0])
    return None


def _per_example(module: nn.Module) -> int:
    own = getattr(module, "flops_per_example", None)
    if callable(own):
        return int(own())
    if isinstance(module, nn.Linear):
        bias = module.out_features if module.bias is not None else 0
        return 2 * module.in_features * module.out_features + bias
    return sum(_per_example(child) for child in module.children())
