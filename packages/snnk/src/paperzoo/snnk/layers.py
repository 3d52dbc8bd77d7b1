"""The SNNK layer (spec 3.1): ``x (*, in) -> Theta^T Psi(x) (*, out)`` replacing ``f(W x + b)``.

``Psi`` is a frozen random feature map of the input only (positive URF features for ``cos``,
``sin``, ``exp``, ``gaussian`` or a :class:`~paperzoo.snnk.urf.SpectralSpec`; ReLU features for
``relu``), and ``Theta`` ``(m, out)`` is the trainable parameter, initialised as
``Phi(W, b)`` of a linear layer. Trainable parameters: ``m * out`` (an ``nn.Linear`` has
``in * out + out``).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_float_tensor, check_like, check_positive_int
from paperzoo.core.models import count_parameters

from .features import (
    Prescale,
    ReLURandomFeatures,
    check_input,
    positive_features,
    prescale_input,
    relu_features,
)
from .urf import URF, SpectralSpec, URFKind

__all__ = ["SNNKActivation", "SNNKLinear", "trainable_parameters"]

SNNKActivation = Literal["cos", "sin", "exp", "gaussian", "relu"] | SpectralSpec
"""What an SNNK layer approximates: a URF activation, ``"relu"`` (the arc-cosine kernel) or a
user :class:`~paperzoo.snnk.urf.SpectralSpec`."""


def trainable_parameters(model: nn.Module) -> int:
    """Number of trainable (``requires_grad``) parameters of ``model``, shared ones counted once."""
    return count_parameters(model, trainable_only=True)


class SNNKLinear(nn.Module):
    """Scalable neural network kernel layer: ``y = Psi(x) Theta`` ``(*, out_features)``.

    For URF activations ``Psi(x) Theta(W, b)`` is an unbiased estimate of ``f(x W^T + b)``
    (after ``prescale``); after training, ``Theta`` need not be the image of any ``(W, b)``.
    For ``"relu"`` the features are ``max(G x, 0) / sqrt(m)`` on both sides, so
    ``Psi(x) Theta(W)`` estimates the arc-cosine kernel ``k(x, w_j)``, *not* ``ReLU(W x + b)``
    (the paper's "beyond dot-product" case; the bias is not used).

    Args:
        in_features: ``d``.
        out_features: ``l`` (neurons).
        num_features: ``m`` (random features); trainable parameters ``m * l``.
        activation: ``"cos"`` (default), ``"sin"``, ``"exp"``, ``"gaussian"``, ``"relu"`` or a
            :class:`~paperzoo.snnk.urf.SpectralSpec`.
        M: GERF parameter ``>= 0`` (0 by default; URF activations only).
        orthogonal: orthogonal random features.
        prescale: ``"d^-1/4"`` (default: the layer estimates ``f(W x / sqrt(d) + b)``), ``"l2"``
            or ``None`` (exact ``f(W x + b)``, for small-norm inputs); URF activations only.
        seed: seed of the frozen draws (``None``: torch's global generator).
        bias: whether the initial linear layer has a bias (the ``b`` in ``f(w^T x + b)``).
        validate: input/``Theta`` finiteness and exponent checks (host syncs; ``False`` for a
            tight loop).

    Shapes: ``x`` ``(*, in_features)`` -> ``(*, out_features)``. The frozen ``G`` ``(m, d)``
    (and ``xi``) are buffers in ``state_dict``.
    """

    theta: nn.Parameter

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_features: int,
        activation: SNNKActivation = "cos",
        M: float = 0.0,
        orthogonal: bool = False,
        prescale: Prescale = "d^-1/4",
        seed: int | None = None,
        bias: bool = True,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.num_features = check_positive_int("num_features", num_features)
        self.bias = bool(bias)
        self.validate = validate
        self.features: URF | ReLURandomFeatures
        if isinstance(activation, str) and activation == "relu":
            self.features = ReLURandomFeatures(
                in_features, num_features, orthogonal=orthogonal, seed=seed, validate=validate
            )
        else:
            kind: URFKind | SpectralSpec = activation
            self.features = URF(
                kind, in_features, num_features, M, orthogonal, prescale, seed, validate
            )
        self.theta = nn.Parameter(torch.empty(num_features, out_features))
        self.reset_parameters()

    @property
    def activation(self) -> str | SpectralSpec:
        """``"relu"``, a URF kind or the layer's SpectralSpec."""
        if isinstance(self.features, ReLURandomFeatures):
            return "relu"
        return self.features.activation

    def reset_parameters(self) -> None:
        """Redraw the random features and set ``Theta = Phi(W, b)`` of a fresh ``nn.Linear``
        (PyTorch's default init, from torch's global generator)."""
        self.features.reset_parameters()
        fresh = nn.Linear(self.in_features, self.out_features, bias=self.bias)
        self.init_from(fresh.weight.detach(), None if fresh.bias is None else fresh.bias.detach())

    def param_features(self, W: Tensor, b: Tensor | None = None) -> Tensor:
        """``Phi(W, b)`` ``(m, l)`` for weights ``W`` ``(l, in_features)`` with this layer's draws."""
        check_float_tensor("W", W, ndim=2)
        if W.shape[1] != self.in_features:
            raise ValueError(
                f"W: expected shape (l, {self.in_features}) (in_features={self.in_features}), "
                f"got {tuple(W.shape)}"
            )
        if isinstance(self.features, ReLURandomFeatures):
            return relu_features(W, self.features.G.to(W.dtype), self.features.floor).T
        return self.features.param_features(W, b)

    @torch.no_grad()
    def init_from(self, W: Tensor, b: Tensor | None = None) -> None:
        """Set ``Theta = Phi(W, b)`` for weights ``W`` ``(out_features, in_features)``, ``b``
        ``(out_features,)``.

        Raises:
            ValueError: ``W`` / ``b`` of another shape, or a non-finite ``Phi``.
        """
        check_float_tensor("W", W, ndim=2)
        if W.shape != (self.out_features, self.in_features):
            raise ValueError(
                f"W: expected shape ({self.out_features}, {self.in_features}) "
                f"(out_features, in_features), got {tuple(W.shape)}"
            )
        theta = self.param_features(W.to(self.theta.dtype), None if b is None else b.to(W.dtype))
        self.theta.copy_(theta.to(self.theta))

    @classmethod
    def from_linear(
        cls,
        linear: nn.Module,
        activation: SNNKActivation = "cos",
        num_features: int = 64,
        **kw: Any,
    ) -> SNNKLinear:
        """An SNNK layer approximating ``activation(linear(x))`` (``Theta = Phi(W, b)``).

        ``kw`` go to the constructor (``M``, ``orthogonal``, ``prescale``, ``seed``, ``validate``).
        With ``prescale="d^-1/4"`` (the default) the target is ``f(W x / sqrt(d) + b)``; use
        ``prescale=None`` for ``f(W x + b)`` itself.

        Raises:
            TypeError: ``linear`` is not an ``nn.Linear``.
        """
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear: expected an nn.Linear, got {type(linear).__name__}")
        with warnings.catch_warnings():  # the constructor's fresh init is replaced below
            warnings.simplefilter("ignore", RuntimeWarning)
            layer = cls(
                linear.in_features,
                linear.out_features,
                num_features,
                activation,
                bias=linear.bias is not None,
                **kw,
            )
        w = linear.weight.detach()
        layer = layer.to(device=w.device, dtype=w.dtype)
        layer.init_from(w, None if linear.bias is None else linear.bias.detach())
        return layer

    def input_features(self, x: Tensor) -> Tensor:
        """``Psi(x)`` ``(*, m)`` (no input checks: :meth:`forward` runs them)."""
        f = self.features
        G = f.G.to(x.dtype)
        if isinstance(f, ReLURandomFeatures):
            return relu_features(x, G, f.floor)
        return positive_features(prescale_input(x, f.prescale), G, f.M, validate=self.validate)

    def forward(self, x: Tensor) -> Tensor:
        """``Psi(x) Theta`` ``(*, out_features)`` of ``x`` ``(*, in_features)``.

        Raises:
            TypeError: non-floating ``x``, or another dtype than ``Theta`` outside autocast.
            ValueError: another last dim, an empty batch, NaN/inf in ``x`` or ``Theta``, or a
                feature exponent that overflows or underflows (with ``validate``).
        """
        check_input("SNNKLinear: x", x, self.in_features, validate=False)
        check_like("SNNKLinear: x", x, self.theta, owner="SNNKLinear")
        if self.validate:
            ok_x, ok_t = torch.stack(
                [torch.isfinite(x).all(), torch.isfinite(self.theta).all()]
            ).tolist()
            if not ok_x:
                raise ValueError("SNNKLinear: x: expected finite values, got NaN or inf")
            if not ok_t:
                raise ValueError("SNNKLinear: theta: expected finite values, got NaN or inf")
        return self.input_features(x) @ self.theta

    def extra_repr(self) -> str:
        act = self.activation
        name = act.name if isinstance(act, SpectralSpec) else act
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"num_features={self.num_features}, activation={name!r}"
        )
