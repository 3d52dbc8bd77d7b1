"""Stacks of layers: AF-KAN, ReLU-KAN, and the baselines MLP, B-spline KAN and RBF KAN.

Every model maps ``(*, layers[0]) -> (*, layers[-1])``; only the first layer checks its input
(the later ones see what the model itself produced).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from paperzoo.core.checks import check_choice

from .basis import ACTIVATIONS
from .layers import (
    AFKANLayer,
    BSplineKANLayer,
    RBFKANLayer,
    ReLUKANLayer,
    check_input,
    check_layers,
)

__all__ = ["AFKAN", "MLP", "RBFKAN", "BSplineKAN", "ReLUKAN"]


class _Stack(nn.Module):
    """A plain chain of layers with ``reset_parameters`` and ``flops_per_example``."""

    layers: nn.ModuleList

    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        self.widths = widths

    def forward(self, x: Tensor) -> Tensor:
        """``(*, layers[0]) -> (*, layers[-1])``."""
        for layer in self.layers:
            x = layer(x)
        return x

    def reset_parameters(self) -> None:
        """Re-initialise every layer."""
        for layer in self.layers:
            layer.reset_parameters()  # type: ignore[operator]

    def flops_per_example(self) -> int:
        """Sum of the layers' estimated FLOPs for one input row."""
        total = 0
        for layer in self.layers:
            total += int(layer.flops_per_example())  # type: ignore[operator]
        return total


class AFKAN(_Stack):
    """AF-KAN network (official ``AF_KAN`` with one method): a chain of :class:`AFKANLayer`.

    Args:
        layers: widths, e.g. ``[784, 64, 10]`` (at least 2 positive integers).
        **layer_kwargs: passed to every :class:`AFKANLayer` (``grid_size=3``, ``order=3``,
            ``activation='silu'``, ``func='quad1'``, ``method='global_attn'``, ``norm='layer'``,
            ``func_norm='batch'`` by default; the README defaults of All-KAN).

    At 784-64-10 with the defaults it has 52,552 parameters. Deviation: the official model
    stacks ``len(methods)`` copies of the input and combines them (sum/product/...), but never
    passes ``methods`` to its layers, so only the first copy is ever filled; a single method
    per layer is implemented here.
    """

    def __init__(self, layers: Sequence[int], **layer_kwargs: Any) -> None:
        widths = check_layers(layers)
        super().__init__(widths)
        validate = bool(layer_kwargs.pop("validate", True))
        self.layers = nn.ModuleList(
            AFKANLayer(i, o, validate=validate and k == 0, **layer_kwargs)
            for k, (i, o) in enumerate(itertools.pairwise(widths))
        )


class ReLUKAN(_Stack):
    """ReLU-KAN network: a chain of :class:`ReLUKANLayer` (316,842 parameters at 784-64-10
    with ``grid_size=3, order=3, norm='layer'``).

    Args:
        layers: widths, e.g. ``[784, 64, 10]``.
        **layer_kwargs: passed to every :class:`ReLUKANLayer`.
    """

    def __init__(self, layers: Sequence[int], **layer_kwargs: Any) -> None:
        widths = check_layers(layers)
        super().__init__(widths)
        validate = bool(layer_kwargs.pop("validate", True))
        self.layers = nn.ModuleList(
            ReLUKANLayer(i, o, validate=validate and k == 0, **layer_kwargs)
            for k, (i, o) in enumerate(itertools.pairwise(widths))
        )


class BSplineKAN(_Stack):
    """Chain of :class:`BSplineKANLayer` (efficient-kan style baseline)."""

    def __init__(self, layers: Sequence[int], **layer_kwargs: Any) -> None:
        widths = check_layers(layers)
        super().__init__(widths)
        validate = bool(layer_kwargs.pop("validate", True))
        self.layers = nn.ModuleList(
            BSplineKANLayer(i, o, validate=validate and k == 0, **layer_kwargs)
            for k, (i, o) in enumerate(itertools.pairwise(widths))
        )


class RBFKAN(_Stack):
    """Chain of :class:`RBFKANLayer` (FastKAN style baseline)."""

    def __init__(self, layers: Sequence[int], **layer_kwargs: Any) -> None:
        widths = check_layers(layers)
        super().__init__(widths)
        validate = bool(layer_kwargs.pop("validate", True))
        self.layers = nn.ModuleList(
            RBFKANLayer(i, o, validate=validate and k == 0, **layer_kwargs)
            for k, (i, o) in enumerate(itertools.pairwise(widths))
        )


class MLP(_Stack):
    """Multilayer perceptron baseline: ``Linear -> σ`` between layers, a plain Linear at the end.

    784-64-10 with biases and ``norm=None`` has 50,890 parameters.

    Args:
        layers: widths, e.g. ``[784, 64, 10]``.
        activation: σ, a key of :data:`~paperzoo.af_kan.basis.ACTIVATIONS` (default ``'silu'``).
        norm: ``None`` (default, a plain MLP) or ``'layer'``: LayerNorm before every Linear, as
            All-KAN's ``MLP`` does (that one also drops the biases and applies σ to the logits;
            use ``bias=False`` for the former, the latter is not reproduced).
        bias: Linear biases (default True).
        validate: check the input of the first layer.
    """

    def __init__(
        self,
        layers: Sequence[int],
        activation: str = "silu",
        norm: str | None = None,
        bias: bool = True,
        validate: bool = True,
    ) -> None:
        widths = check_layers(layers)
        super().__init__(widths)
        check_choice("activation", activation, tuple(ACTIVATIONS))
        check_choice("norm", norm, ("layer", None))
        self.activation = activation
        self.norm_type = norm
        self.validate = bool(validate)
        self.norms = nn.ModuleList(
            nn.LayerNorm(i) if norm == "layer" else nn.Identity() for i in widths[:-1]
        )
        self.layers = nn.ModuleList(
            nn.Linear(i, o, bias=bias) for i, o in itertools.pairwise(widths)
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(*, layers[0]) -> (*, layers[-1])``."""
        if self.validate:
            first = self.layers[0]
            assert isinstance(first, nn.Linear)
            check_input(x, self.widths[0], f"MLP({self.widths})", like=first.weight)
        act = ACTIVATIONS[self.activation]
        last = len(self.layers) - 1
        for k, (norm, layer) in enumerate(zip(self.norms, self.layers, strict=True)):
            x = layer(norm(x))
            if k < last:
                x = act(x)
        return x

    def reset_parameters(self) -> None:
        """PyTorch-default Linear and LayerNorm initialisation."""
        for layer in self.layers:
            assert isinstance(layer, nn.Linear)
            layer.reset_parameters()
        for norm in self.norms:
            if isinstance(norm, nn.LayerNorm):
                norm.reset_parameters()

    def flops_per_example(self) -> int:
        """``2·in·out (+ out)`` per Linear, plus σ and the norms."""
        total = 0
        for k, layer in enumerate(self.layers):
            assert isinstance(layer, nn.Linear)
            total += 2 * layer.in_features * layer.out_features
            total += layer.out_features if layer.bias is not None else 0
            total += 8 * layer.in_features if self.norm_type == "layer" else 0
            total += 4 * layer.out_features if k < len(self.layers) - 1 else 0
        return total
