"""Input-side random feature maps of SNNKs: positive (GERF) features and ReLU features.

Shapes: an input ``x`` is ``(*, d)`` (at least one leading axis), a projection ``G`` is ``(m, d)``
(row ``g_i``), features are ``(*, m)``. Both maps hold the ``1/sqrt(m)`` factor, so the kernel
estimate is a plain dot product of an input feature row and a parameter feature column.

- Positive features (spec 3.2, official ``create_asym_feats``; M = 0 is FAVOR+):
  ``Psi(x)_i = D exp(-M |g_i|^2 + B g_i^T x - |x|^2 / 2) / sqrt(m)``, ``B = sqrt(1 + 4M)``,
  ``D = (1 + 4M)^(d/4)``, computed in log space (D overflows float32 for moderate d).
- ReLU features (spec 3.3, official ``phi_relu_mapping_torch``):
  ``Psi(x)_i = max(g_i^T x, c) / sqrt(m)`` (c = ``floor``, 0 by default); with the same map on
  the weights, ``E[Psi(x)^T Psi(w)] = |x||w|(sin t + (pi - t) cos t) / (2 pi)`` (arc-cosine kernel
  of order 1, t the angle between x and w; :func:`arccos_kernel`).
"""

from __future__ import annotations

import math
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

__all__ = [
    "PRESCALES",
    "FeatureRangeError",
    "PositiveRandomFeatures",
    "Prescale",
    "RandomProjection",
    "ReLURandomFeatures",
    "arccos_kernel",
    "check_input",
    "gaussian_projection",
    "orthogonal_gaussian",
    "positive_features",
    "positive_log_features",
    "prescale_input",
    "relu_features",
    "seeded_generator",
]

Prescale = Literal["d^-1/4", "l2"] | None
"""How an input is scaled before the positive map: ``"d^-1/4"`` (x and w by ``d^(-1/4)``, so the
kernel approximates ``f(w^T x / sqrt(d) + b)``), ``"l2"`` (x to unit norm, w unchanged:
``f(w^T x / |x| + b)``) or ``None`` (exact ``f(w^T x + b)``)."""

PRESCALES: tuple[Prescale, ...] = ("d^-1/4", "l2", None)


def check_input(name: str, x: object, in_dim: int, *, validate: bool = True) -> Tensor:
    """``x`` if it is a floating tensor ``(*, in_dim)`` with at least one row and finite values.

    Raises:
        TypeError: not a floating-point tensor.
        ValueError: a 0-D tensor, another last dim, an empty batch, or NaN/inf (when
            ``validate``; one host sync). Messages start with ``name``.
    """
    check_float_tensor(name, x)
    assert isinstance(x, Tensor)
    if x.dim() == 0 or x.shape[-1] != in_dim:
        raise ValueError(f"{name}: expected shape (*, {in_dim}), got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {tuple(x.shape)}")
    check_finite(name, x, validate=validate)
    return x


def orthogonal_gaussian(
    m: int,
    d: int,
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """An ``(m, d)`` matrix of orthogonal random features (Yu et al. 2016; Performer).

    Blocks of ``d`` rows are the Q factors of QR-decomposed ``(d, d)`` Gaussian matrices (rows
    orthonormal within a block); every row is then rescaled by the norm of an independent
    ``N(0, I_d)`` vector, so each row is marginally ``N(0, I_d)`` (its norm chi_d distributed).
    """
    m = check_positive_int("m", m)
    d = check_positive_int("d", d)
    blocks = []
    for _ in range(math.ceil(m / d)):
        gauss = torch.randn(d, d, generator=generator, dtype=torch.float64)
        q, _r = torch.linalg.qr(gauss)
        blocks.append(q.T)
    rows = torch.cat(blocks)[:m]
    norms = torch.randn(m, d, generator=generator, dtype=torch.float64).norm(dim=1, keepdim=True)
    out: Tensor = (rows * norms).to(device=device, dtype=dtype)
    return out


def gaussian_projection(
    m: int, d: int, *, orthogonal: bool = False, generator: torch.Generator | None = None
) -> Tensor:
    """``G`` ``(m, d)`` float32 with ``N(0, I_d)`` rows (i.i.d., or :func:`orthogonal_gaussian`).

    ``generator=None`` draws from torch's global generator (``torch.manual_seed`` makes it
    repeatable); the modules pass ``torch.Generator().manual_seed(seed)`` for an int ``seed``,
    so the same seed always gives the same ``G``.

    Deviation: the official adapter draws ``torch.rand`` (uniform [0, 1)) rows on its
    non-orthogonal path; the estimator needs ``N(0, I)`` (spec section 2), used here.
    """
    if orthogonal:
        return orthogonal_gaussian(m, d, generator)
    return torch.randn(m, d, generator=generator, dtype=torch.float64).float()


def seeded_generator(seed: int | None) -> torch.Generator | None:
    """A CPU generator seeded with ``seed``, or ``None`` (torch's global generator)."""
    return None if seed is None else torch.Generator().manual_seed(int(seed))


def prescale_input(x: Tensor, prescale: Prescale) -> Tensor:
    """``x`` ``(*, d)`` scaled by ``d^(-1/4)`` (``"d^-1/4"``), to unit norm (``"l2"``) or as is."""
    out: Tensor = x
    if prescale == "d^-1/4":
        out = x * x.shape[-1] ** -0.25
    elif prescale == "l2":
        out = x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny ** 0.5)
    return out


def _log_scale(d: int, m: int, M: float) -> float:
    """``log D - log(m) / 2`` with ``D = (1 + 4M)^(d/4)``."""
    return d / 4.0 * math.log1p(4.0 * M) - 0.5 * math.log(m)


def positive_log_features(x: Tensor, G: Tensor, M: float = 0.0) -> Tensor:
    """The exponent of :func:`positive_features`: ``log Psi(x)`` ``(*, m)`` (finite for finite x)."""
    m, d = G.shape
    B = math.sqrt(1.0 + 4.0 * M)
    shift = _log_scale(d, m, M) - M * G.square().sum(dim=1)  # (m,)
    return B * (x @ G.T) + (shift - 0.5 * x.square().sum(dim=-1, keepdim=True))


def positive_features(x: Tensor, G: Tensor, M: float = 0.0, *, validate: bool = True) -> Tensor:
    """Positive random features ``(*, m)`` of ``x`` ``(*, d)`` for the projection ``G`` ``(m, d)``.

    ``Psi(x)_i = D exp(-M |g_i|^2 + B g_i^T x - |x|^2 / 2) / sqrt(m)`` with ``B = sqrt(1 + 4M)``,
    ``D = (1 + 4M)^(d/4)`` (computed in log space). ``M = 0`` is Performer's positive softmax
    feature ``exp(g^T x - |x|^2 / 2) / sqrt(m)``.

    Args:
        x: inputs ``(*, d)``, already prescaled (:func:`prescale_input`).
        G: projection ``(m, d)``, rows ``N(0, I_d)``.
        M: the GERF parameter ``M >= 0`` (0 by default; larger values usually *raise* the variance
            and underflow in high dimension, spec 3.2).
        validate: check the exponent (one host sync): overflow raises instead of returning inf
            (the exponent is at most ``|g|^2 / 2`` for ``M = 0``: it overflows float32 in high
            dimension when ``x`` lines up with a long ``g``), and a row whose every feature
            underflows to 0 (a long ``x`` with ``prescale=None``) raises instead of returning
            zeros.

    Raises:
        ValueError: ``M < 0``; with ``validate``, an exponent above the dtype's ``log(max)``
            (a large ``|x|``: use a prescale) or a row of all-zero features.
    """
    M = check_positive("M", M, allow_zero=True)
    log_feats = positive_log_features(x, G, M)
    if validate and log_feats.numel() > 0:
        _check_exponent(log_feats, M)
    return log_feats.exp()


class FeatureRangeError(ValueError):
    """Positive random features that overflow or all underflow in the working dtype.

    A ``ValueError`` (so ``except ValueError`` still catches it), raised by the exponent check of
    :func:`positive_features` instead of returning inf or all-zero rows; a training run whose
    inputs drift out of range (e.g. an adapter diverging) can catch exactly this.
    """


def _check_exponent(log_feats: Tensor, M: float) -> None:
    info = torch.finfo(log_feats.dtype)
    row_top = log_feats.detach().amax(dim=-1)
    top, dead = torch.stack([row_top.max(), (row_top.exp() == 0).any().to(row_top.dtype)]).tolist()
    if top > math.log(info.max):
        raise FeatureRangeError(
            f"positive features: exponent {top:.4g} overflows {log_feats.dtype} (max "
            f"{math.log(info.max):.4g}); the input norm is too large for prescale=None: "
            "use prescale='d^-1/4' or 'l2', or scale the input"
        )
    if dead:
        raise FeatureRangeError(
            f"positive features: every feature of a row underflows to 0 in {log_feats.dtype} "
            f"(largest exponent of that row {float(row_top.min()):.4g}, M={M}); lower M "
            "(M = 0 is the default), prescale the input, or compute in float64"
        )


def relu_features(x: Tensor, G: Tensor, floor: float = 0.0) -> Tensor:
    """ReLU random features ``max(G x, floor) / sqrt(m)`` ``(*, m)`` of ``x`` ``(*, d)``.

    The same map on a weight vector gives the arc-cosine kernel (:func:`arccos_kernel`) with
    ``floor = 0`` (the official code's optional constant ``c`` is ``floor``).
    """
    m = G.shape[0]
    return (x @ G.T).clamp_min(floor) / math.sqrt(m)


def arccos_kernel(x: Tensor, w: Tensor) -> Tensor:
    """Arc-cosine kernel of order 1, ``E_g[ReLU(g^T x) ReLU(g^T w)]`` for ``g ~ N(0, I)``.

    ``|x||w| (sin t + (pi - t) cos t) / (2 pi)`` with ``t`` the angle between ``x`` ``(*, d)``
    and ``w`` ``(*, d)`` (broadcast); returns ``(*)``. For ``x = w`` it is ``|x|^2 / 2``.
    """
    nx, nw = x.norm(dim=-1), w.norm(dim=-1)
    cos = ((x * w).sum(-1) / (nx * nw).clamp_min(torch.finfo(x.dtype).tiny)).clamp(-1.0, 1.0)
    t = torch.arccos(cos)
    k: Tensor = nx * nw * (torch.sin(t) + (math.pi - t) * cos) / (2 * math.pi)
    return k


class RandomProjection(nn.Module):
    """A frozen ``G`` ``(num_features, in_dim)`` with ``N(0, I)`` rows (buffer, in ``state_dict``):
    the base of the feature maps.

    Args:
        in_dim: ``d``. num_features: ``m``. orthogonal: orthogonal rows. seed: seed of ``G``
        (``None``: torch's global generator). validate: input checks (host syncs).
    """

    G: Tensor

    def __init__(
        self,
        in_dim: int,
        num_features: int,
        orthogonal: bool = False,
        seed: int | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.in_dim = check_positive_int("in_dim", in_dim)
        self.num_features = check_positive_int("num_features", num_features)
        self.orthogonal = bool(orthogonal)
        self.seed = seed
        self.validate = validate
        self.register_buffer("G", self._draw())

    def reset_parameters(self) -> None:
        """Redraw ``G`` (from ``seed``, or torch's global generator)."""
        self.G.copy_(self._draw())

    def _draw(self) -> Tensor:
        gen = seeded_generator(self.seed)
        return gaussian_projection(
            self.num_features, self.in_dim, orthogonal=self.orthogonal, generator=gen
        )


class PositiveRandomFeatures(RandomProjection):
    """The positive (GERF) feature map ``x (*, in_dim) -> Psi(x) (*, num_features)``.

    The projection ``G`` ``(m, d)`` is a frozen buffer (saved in ``state_dict``).

    Args:
        in_dim: ``d``.
        num_features: ``m``.
        M: GERF parameter, ``M >= 0`` (default 0).
        orthogonal: orthogonal random features (:func:`orthogonal_gaussian`).
        prescale: ``"d^-1/4"`` (default, the official non-normalised scale on both sides),
            ``"l2"`` or ``None``; see :data:`Prescale`.
        seed: seed of ``G`` (``None``: torch's global generator).
        validate: check inputs and the exponent (host syncs; ``False`` for a tight loop).

    Deviation: the official asymmetric layer divides ``x`` by ``d`` but ``w`` by ``d^(1/4)``
    (apparently unintended); ``"d^-1/4"`` scales both by ``d^(-1/4)``.
    """

    def __init__(
        self,
        in_dim: int,
        num_features: int,
        M: float = 0.0,
        orthogonal: bool = False,
        prescale: Prescale = "d^-1/4",
        seed: int | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__(in_dim, num_features, orthogonal, seed, validate)
        self.M = check_positive("M", M, allow_zero=True)
        self.prescale: Prescale = check_choice("prescale", prescale, PRESCALES)

    def forward(self, x: Tensor) -> Tensor:
        """``Psi(prescale(x))`` ``(*, num_features)`` of ``x`` ``(*, in_dim)``."""
        check_input("PositiveRandomFeatures: x", x, self.in_dim, validate=self.validate)
        return positive_features(
            prescale_input(x, self.prescale), self.G.to(x.dtype), self.M, validate=self.validate
        )

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, num_features={self.num_features}, M={self.M}, "
            f"orthogonal={self.orthogonal}, prescale={self.prescale!r}"
        )


class ReLURandomFeatures(RandomProjection):
    """The ReLU feature map ``x (*, in_dim) -> max(G x, floor) / sqrt(m)`` ``(*, num_features)``.

    Args:
        in_dim: ``d``.
        num_features: ``m``.
        floor: the official code's constant ``c`` (0: the arc-cosine kernel).
        orthogonal: orthogonal random features.
        seed: seed of ``G`` (``None``: torch's global generator).
        validate: check inputs (a host sync for finiteness).
    """

    def __init__(
        self,
        in_dim: int,
        num_features: int,
        floor: float = 0.0,
        orthogonal: bool = False,
        seed: int | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__(in_dim, num_features, orthogonal, seed, validate)
        self.floor = float(floor)
        if not math.isfinite(self.floor):
            raise ValueError(f"floor: expected a finite number, got {floor!r}")

    def forward(self, x: Tensor) -> Tensor:
        """``max(G x, floor) / sqrt(m)`` ``(*, num_features)`` of ``x`` ``(*, in_dim)``."""
        check_input("ReLURandomFeatures: x", x, self.in_dim, validate=self.validate)
        return relu_features(x, self.G.to(x.dtype), self.floor)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, num_features={self.num_features}, floor={self.floor}"
