"""Universal random features (URFs, spec 3.2): ``f(w^T x + b) ~ Psi(x)^T Phi(w, b)``.

For an activation with a Fourier representation ``f(z) = int tau(xi) exp(i xi z) d xi`` and
``g ~ N(0, I_d)``, ``xi ~ p``, with the GERF parameter ``M >= 0``, ``B = sqrt(1 + 4M)`` and
``D = (1 + 4M)^(d/4)``:

- input side (parameter-free, real, positive): ``Psi(x) = D exp(-M|g|^2 + B g^T x - |x|^2/2)``;
- parameter side: ``Phi(w, b) = (tau/p)(xi) D exp(-M|g|^2 + xi^2 |w|^2 / 2) exp(i xi (B g^T w + b))``,

so ``E[Psi(x) Phi(w, b)] = f(w^T x + b)`` (the Gaussian identity ``E exp(g^T v) = exp(v^T v / 2)``
for complex ``v``). ``Psi`` is real, so the trainable real matrix is ``Theta = Re Phi``. Instances:
``cos`` / ``sin`` (``xi = 1`` exactly): ``Theta = D e^{-M|g|^2} e^{|w|^2/2} cos(B g^T w + b)``
(resp. ``sin``); ``exp`` (the softmax kernel, ``u = w`` instead of ``i xi w``):
``Theta = D e^{-M|g|^2} e^{b} exp(B g^T w - |w|^2/2)``; ``gaussian`` (``f(z) = exp(-z^2/2)``,
``xi ~ N(0, 1)``, weight 1, finite variance only for ``|w|^2 < 1/2``); any other ``f`` through a
:class:`SpectralSpec` (``xi ~ p``, weight ``tau/p``).

Deviation: the official code puts the imaginary frequency on the input side; here it is on the
parameter side (the same estimator up to conjugation) so ``Psi`` is parameter-free and real.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_positive,
    check_positive_int,
)

from .features import (
    PRESCALES,
    Prescale,
    check_input,
    gaussian_projection,
    positive_features,
    prescale_input,
    seeded_generator,
)

__all__ = [
    "GAUSSIAN",
    "URF",
    "URF_KINDS",
    "Cos",
    "Exp",
    "GaussianActivation",
    "Sin",
    "SpectralSpec",
    "URFKind",
    "activation_function",
    "activation_kind",
    "param_features",
]

URFKind = Literal["cos", "sin", "exp", "gaussian"]
URF_KINDS: tuple[URFKind, ...] = ("cos", "sin", "exp", "gaussian")


@dataclass(frozen=True)
class SpectralSpec:
    """A user activation ``f(z) = int tau(xi) exp(i xi z) d xi`` for URFs.

    Attributes:
        sample_xi: ``sample_xi(m, generator) -> (m,)`` float64 draws ``xi ~ p``.
        weight: ``weight(xi) -> (m,)``: the importance weight ``tau(xi) / p(xi)`` (real, or complex
            for a ``tau`` that is not even; the estimator uses ``Re(weight * exp(i xi z))``).
        max_sq_norm: ``|w|^2`` at or above which the estimator's variance is infinite (a
            ``RuntimeWarning`` is raised there); ``None``: no bound known.
        fn: ``f`` itself (for tests and error measurement), optional.
        name: a label.
    """

    sample_xi: Callable[[int, torch.Generator | None], Tensor]
    weight: Callable[[Tensor], Tensor]
    max_sq_norm: float | None = None
    fn: Callable[[Tensor], Tensor] | None = None
    name: str = "spectral"


def _gaussian_xi(m: int, generator: torch.Generator | None) -> Tensor:
    return torch.randn(m, generator=generator, dtype=torch.float64)


def _gaussian_act(z: Tensor) -> Tensor:
    return torch.exp(-0.5 * z.square())


GAUSSIAN = SpectralSpec(
    sample_xi=_gaussian_xi,
    weight=torch.ones_like,
    max_sq_norm=0.5,
    fn=_gaussian_act,
    name="gaussian",
)
"""``f(z) = exp(-z^2 / 2)``: ``tau`` is the ``N(0, 1)`` density, ``xi ~ N(0, 1)``, weight 1."""


class Cos(nn.Module):
    """``cos`` as a module (an activation with a URF, for :func:`~paperzoo.snnk.bundle`)."""

    def forward(self, z: Tensor) -> Tensor:
        """``cos(z)``, any shape."""
        return torch.cos(z)


class Sin(nn.Module):
    """``sin`` as a module (an activation with a URF)."""

    def forward(self, z: Tensor) -> Tensor:
        """``sin(z)``, any shape."""
        return torch.sin(z)


class Exp(nn.Module):
    """``exp`` as a module (the softmax-kernel activation)."""

    def forward(self, z: Tensor) -> Tensor:
        """``exp(z)``, any shape."""
        return torch.exp(z)


class GaussianActivation(nn.Module):
    """``exp(-z^2 / 2)`` as a module (the Gaussian activation, URF with ``xi ~ N(0, 1)``)."""

    def forward(self, z: Tensor) -> Tensor:
        """``exp(-z^2 / 2)``, any shape."""
        return _gaussian_act(z)


_MODULE_KINDS: dict[type[nn.Module], str] = {
    Cos: "cos",
    Sin: "sin",
    Exp: "exp",
    GaussianActivation: "gaussian",
    nn.ReLU: "relu",
}


def activation_kind(module: nn.Module) -> str | None:
    """The SNNK kind of an activation module (``cos``, ``sin``, ``exp``, ``gaussian``, ``relu``),
    or ``None`` when it has no random-feature representation here (e.g. ``nn.Tanh``)."""
    return _MODULE_KINDS.get(type(module))


def activation_function(activation: URFKind | SpectralSpec) -> Callable[[Tensor], Tensor]:
    """``f`` of a URF activation (``SpectralSpec.fn``; ``ValueError`` when it has none)."""
    if isinstance(activation, SpectralSpec):
        if activation.fn is None:
            raise ValueError(f"activation: the SpectralSpec {activation.name!r} gives no fn")
        return activation.fn
    fns: dict[str, Callable[[Tensor], Tensor]] = {
        "cos": torch.cos,
        "sin": torch.sin,
        "exp": torch.exp,
        "gaussian": _gaussian_act,
    }
    return fns[check_choice("activation", activation, URF_KINDS)]


def _spec_of(activation: URFKind | SpectralSpec) -> URFKind | SpectralSpec:
    if isinstance(activation, SpectralSpec):
        return activation
    if not isinstance(activation, str):
        raise TypeError(
            f"activation: expected one of {list(URF_KINDS)} or a SpectralSpec, "
            f"got {type(activation).__name__}"
        )
    kind = check_choice("activation", activation, URF_KINDS)
    return GAUSSIAN if kind == "gaussian" else kind


def param_features(
    activation: URFKind | SpectralSpec,
    W: Tensor,
    b: Tensor | None,
    G: Tensor,
    M: float = 0.0,
    xi: Tensor | None = None,
    *,
    validate: bool = True,
) -> Tensor:
    """``Theta = Re Phi(W, b)`` ``(m, l)``: the parameter-side URF of ``l`` neurons.

    Args:
        activation: ``"cos"``, ``"sin"``, ``"exp"``, ``"gaussian"`` or a :class:`SpectralSpec`.
        W: weights ``(l, d)`` (already prescaled).
        b: biases ``(l,)`` or ``None`` (zero).
        G: projection ``(m, d)``.
        M: GERF parameter ``>= 0``.
        xi: frequencies ``(m,)`` drawn from ``p`` (needed for ``gaussian`` / a SpectralSpec).
        validate: warn when ``|w|^2`` reaches the spec's variance bound (``gaussian``: 1/2)
            and raise when ``Theta`` is not finite (host syncs).

    Returns:
        ``(m, l)``, holding the ``1/sqrt(m)`` factor, so ``positive_features(x, G, M) @ Theta``
        estimates ``f(x W^T + b)``.

    Raises:
        ValueError: a non-finite ``Theta`` (weights too large for ``exp(|w|^2 / 2)``), a missing
            ``xi``, or mismatched shapes.
    """
    spec = _spec_of(activation)
    M = check_positive("M", M, allow_zero=True)
    check_float_tensor("W", W, ndim=2)
    m, d = G.shape
    if W.shape[1] != d:
        raise ValueError(f"W: expected shape (l, {d}), got {tuple(W.shape)}")
    bias = torch.zeros(W.shape[0], dtype=W.dtype, device=W.device) if b is None else b
    if bias.shape != (W.shape[0],):
        raise ValueError(f"b: expected shape ({W.shape[0]},), got {tuple(bias.shape)}")
    B = math.sqrt(1.0 + 4.0 * M)
    c = (d / 4.0 * math.log1p(4.0 * M) - 0.5 * math.log(m)) - M * G.square().sum(1)  # (m,)
    a = G @ W.T  # (m, l): g_i^T w_j
    nw2 = W.square().sum(1)  # (l,)
    if spec == "cos" or spec == "sin":
        trig = torch.cos if spec == "cos" else torch.sin
        theta = torch.exp(c[:, None] + 0.5 * nw2) * trig(B * a + bias)
    elif spec == "exp":
        theta = torch.exp(c[:, None] + B * a - 0.5 * nw2 + bias)
    else:
        assert isinstance(spec, SpectralSpec)
        if xi is None or xi.shape != (m,):
            raise ValueError(f"xi: expected frequencies of shape ({m},) for {spec.name!r}")
        xi = xi.to(W.dtype)
        if validate and spec.max_sq_norm is not None:
            top = float(nw2.detach().max())
            if top >= spec.max_sq_norm:
                warnings.warn(
                    f"{spec.name} URF: |w|^2 = {top:.4g} >= {spec.max_sq_norm}: the estimator's "
                    "variance is infinite; scale the weights down (or prescale)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        phase = xi[:, None] * (B * a + bias)
        mag = torch.exp(c[:, None] + 0.5 * xi.square()[:, None] * nw2)
        wt = spec.weight(xi)
        if wt.is_complex():
            theta = mag * (
                wt.real[:, None] * torch.cos(phase) - wt.imag[:, None] * torch.sin(phase)
            )
        else:
            theta = mag * wt.to(W.dtype)[:, None] * torch.cos(phase)
    if validate:
        check_finite("Theta = Phi(W, b) (weights too large for exp(|w|^2/2)?)", theta)
    return theta


class URF(nn.Module):
    """Universal random features of one activation: ``f(x W^T + b) ~ Psi(x) Theta(W, b)``.

    Args:
        activation: ``"cos"``, ``"sin"``, ``"exp"``, ``"gaussian"`` or a :class:`SpectralSpec`.
        in_dim: ``d``.
        num_features: ``m``.
        M: GERF parameter ``>= 0`` (default 0, the plain positive features).
        orthogonal: orthogonal ``G`` rows.
        prescale: ``None`` (default: exact ``f(w^T x + b)``), ``"d^-1/4"`` (x and w by
            ``d^(-1/4)``: ``f(w^T x / sqrt(d) + b)``) or ``"l2"`` (x to unit norm).
        seed: seed of the frozen draws ``G`` ``(m, d)`` and ``xi`` ``(m,)`` (``None``: global RNG).
        validate: input, overflow/underflow and variance checks (host syncs).

    Buffers ``G`` and ``xi`` are saved in ``state_dict``; ``xi`` is empty for cos/sin/exp.
    """

    G: Tensor
    xi: Tensor

    def __init__(
        self,
        activation: URFKind | SpectralSpec,
        in_dim: int,
        num_features: int,
        M: float = 0.0,
        orthogonal: bool = False,
        prescale: Prescale = None,
        seed: int | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.activation = _spec_of(activation)
        self.in_dim = check_positive_int("in_dim", in_dim)
        self.num_features = check_positive_int("num_features", num_features)
        self.M = check_positive("M", M, allow_zero=True)
        self.orthogonal = bool(orthogonal)
        self.prescale: Prescale = check_choice("prescale", prescale, PRESCALES)
        self.seed = seed
        self.validate = validate
        G, xi = self._draw()
        self.register_buffer("G", G)
        self.register_buffer("xi", xi)

    def _draw(self) -> tuple[Tensor, Tensor]:
        gen = seeded_generator(self.seed)
        m, d = self.num_features, self.in_dim
        G = gaussian_projection(m, d, orthogonal=self.orthogonal, generator=gen)
        if isinstance(self.activation, SpectralSpec):
            xi = self.activation.sample_xi(m, gen).float()
        else:
            xi = torch.zeros(0)
        return G, xi

    def reset_parameters(self) -> None:
        """Redraw ``G`` and ``xi`` (from ``seed``, or torch's global generator)."""
        G, xi = self._draw()
        self.G.copy_(G)
        self.xi.copy_(xi)

    def forward(self, x: Tensor) -> Tensor:
        """``Psi(x)`` ``(*, m)``, the input side (same as :meth:`input_features`)."""
        return self.input_features(x)

    def input_features(self, x: Tensor) -> Tensor:
        """``Psi(x)`` ``(*, m)`` of ``x`` ``(*, in_dim)`` (prescaled first)."""
        check_input("URF: x", x, self.in_dim, validate=self.validate)
        xs = prescale_input(x, self.prescale)
        return positive_features(xs, self.G.to(x.dtype), self.M, validate=self.validate)

    def param_features(self, W: Tensor, b: Tensor | None = None) -> Tensor:
        """``Theta`` ``(m, l)`` of weights ``W`` ``(l, in_dim)`` and biases ``b`` ``(l,)``."""
        check_float_tensor("W", W, ndim=2)
        if W.shape[1] != self.in_dim:
            raise ValueError(f"W: expected shape (l, {self.in_dim}), got {tuple(W.shape)}")
        Ws = W * self.in_dim**-0.25 if self.prescale == "d^-1/4" else W
        xi = self.xi.to(W.dtype) if self.xi.numel() else None
        return param_features(
            self.activation, Ws, b, self.G.to(W.dtype), self.M, xi, validate=self.validate
        )

    def estimate(self, x: Tensor, W: Tensor, b: Tensor | None = None) -> Tensor:
        """The estimate of ``f(x W^T + b)`` ``(*, l)`` (``x`` ``(*, in_dim)``, ``W`` ``(l, in_dim)``)."""
        return self.input_features(x) @ self.param_features(W, b)

    def extra_repr(self) -> str:
        act = self.activation.name if isinstance(self.activation, SpectralSpec) else self.activation
        return (
            f"{act}, in_dim={self.in_dim}, num_features={self.num_features}, M={self.M}, "
            f"orthogonal={self.orthogonal}, prescale={self.prescale!r}"
        )
