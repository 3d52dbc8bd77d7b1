"""Bundling (spec 3.4): a whole MLP as one linear readout on a parameter-free deep random map.

For ``h_{l+1} = f_l(W_l h_l + b_l)`` replace each layer by its SNNK, ``h_{l+1} ~ Theta_l^T
Psi_l(h_l)``. Then ``W_{l+1} h_{l+1} = (W_{l+1} Theta_l^T) Psi_l(h_l)``: one matrix acting on
``z_l = Psi_l(h_l)``, so the next SNNK is applied to ``z_l`` with weights ``W' = W_{l+1}
Theta_l^T``. Recursing, ``y = Omega^T Psi_L(... Psi_1(x)) + c``. ``Omega`` is assembled from an
MLP's weights (:func:`bundle`) or fitted directly: for MSE in closed form,
``Omega = (Z^T Z + rho I)^{-1} Z^T Y`` on centred features (:meth:`FullyBundledNetwork.fit_closed_form`,
``rho`` chosen by K-fold cross-validation with ``ridge="cv"``).

The positive features ``Psi`` do not depend on the activation ``f``: a bundle fitted in closed
form depends only on ``(m, depth, M, prescale, seeds)``; ``f`` matters only when ``Omega`` is
assembled from trained weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_positive,
    check_positive_int,
)

from .features import PRESCALES, Prescale, ReLURandomFeatures, check_input, relu_features
from .urf import URF, URF_KINDS, URFKind, activation_kind

__all__ = [
    "RIDGE_GRID",
    "BundledLayer",
    "FullyBundledNetwork",
    "RidgeCV",
    "bundle",
    "ridge_cv",
    "ridge_fit",
]

RIDGE_GRID: tuple[float, ...] = tuple(10.0**k for k in range(-8, 4))
"""The log grid ``1e-8 ... 1e3`` that ``ridge="cv"`` searches."""


def _center(Z: Tensor, Y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    mz, my = Z.mean(0), Y.mean(0)
    return Z - mz, Y - my, mz, my


def ridge_fit(Z: Tensor, Y: Tensor, ridge: float) -> tuple[Tensor, Tensor]:
    """Ridge regression with an unpenalised intercept: ``(Omega (m, k), c (k,))``.

    ``Omega = (Zc^T Zc + ridge I)^{-1} Zc^T Yc`` on the centred ``Z`` ``(n, m)``, ``Y`` ``(n, k)``,
    and ``c = mean(Y) - mean(Z) Omega``. Computed from the thin SVD ``Zc = U S V^T`` as
    ``V diag(s / (s^2 + ridge)) U^T Yc`` (stable as ``ridge -> 0``); ``ridge = 0`` gives the
    minimum-norm least-squares solution (the pseudo-inverse, singular values below
    ``max(n, m) * eps * s_max`` dropped).
    """
    Zc, Yc, mz, my = _center(Z, Y)
    U, S, Vh = torch.linalg.svd(Zc, full_matrices=False)
    if ridge == 0.0:
        tol = max(Z.shape) * torch.finfo(Z.dtype).eps * S.max()
        shrink = torch.where(tol < S, 1.0 / S.clamp_min(tol), torch.zeros_like(S))
    else:
        shrink = S / (S.square() + ridge)
    omega = Vh.T @ (shrink.unsqueeze(1) * (U.T @ Yc))
    return omega, my - mz @ omega


@dataclass(frozen=True)
class RidgeCV:
    """The result of :func:`ridge_cv`: the chosen ``ridge`` and each grid value's mean fold MSE."""

    ridge: float
    scores: dict[float, float]


def ridge_cv(
    Z: Tensor, Y: Tensor, ridges: Sequence[float] = RIDGE_GRID, folds: int = 5, seed: int = 0
) -> RidgeCV:
    """Choose the ridge by ``folds``-fold cross-validation (mean validation MSE; ties: smaller).

    One eigendecomposition of each fold's centred Gram matrix serves every grid value.
    ``Z`` ``(n, m)``, ``Y`` ``(n, k)``; the folds are a seeded permutation of the rows.

    Raises:
        ValueError: fewer rows than folds, an empty grid or a negative ridge.
    """
    n = Z.shape[0]
    folds = check_positive_int("folds", folds, minimum=2)
    if n < folds:
        raise ValueError(f"Z: expected at least folds={folds} rows for cross-validation, got {n}")
    if len(ridges) == 0 or any(r < 0 for r in ridges):
        raise ValueError(f"ridges: expected a non-empty grid of values >= 0, got {ridges!r}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(Z.device)
    rho = torch.tensor(list(ridges), dtype=Z.dtype, device=Z.device)
    err = torch.zeros(len(ridges), dtype=Z.dtype, device=Z.device)
    for part in perm.tensor_split(folds):
        train = torch.ones(n, dtype=torch.bool, device=Z.device)
        train[part] = False
        Zc, Yc, mz, my = _center(Z[train], Y[train])
        lam, V = torch.linalg.eigh(Zc.T @ Zc)  # (m,), (m, m)
        P = V.T @ (Zc.T @ Yc)  # (m, k)
        A = (Z[part] - mz) @ V  # (nv, m)
        coef = P.unsqueeze(0) / (lam.clamp_min(0).unsqueeze(0) + rho.unsqueeze(1)).unsqueeze(-1)
        pred = torch.einsum("vm,rmk->rvk", A, coef) + my  # (R, nv, k)
        err += (pred - Y[part]).square().mean(dim=(1, 2)) * (part.numel() / n)
    scores = {float(r): float(e) for r, e in zip(ridges, err.tolist(), strict=True)}
    best = min(sorted(scores), key=lambda r: scores[r])
    return RidgeCV(best, scores)


@dataclass(frozen=True)
class BundledLayer:
    """One assembled layer of :func:`bundle`: the SNNK matrix ``theta`` ``(m, l)`` of ``f_l``
    and the weight ``weight`` ``(l, m or d)`` it was computed from (``W_1`` for the first layer,
    ``W_{l} Theta_{l-1}^T`` after), with the bias ``bias`` ``(l,)``."""

    weight: Tensor
    bias: Tensor | None
    theta: Tensor


class FullyBundledNetwork(nn.Module):
    """``y = Omega^T Psi_L(... Psi_1(x)) + c``: a deep parameter-free random map and a readout.

    Args:
        in_dim: ``d``.
        out_dim: ``k``.
        num_features: ``m`` (the width of every ``z_l``).
        depth: ``L``, the number of bundled activations (feature maps).
        activations: one kind per layer (``"cos"``, ``"sin"``, ``"exp"``, ``"gaussian"``,
            ``"relu"``), or one kind for all; URF kinds share the same positive input map.
        M: GERF parameter ``>= 0``. orthogonal: orthogonal features.
        prescale: ``"l2"`` (default: each layer's input to unit norm; stacked positive features are
            heavy-tailed, and with ``"d^-1/4"`` a depth-2 bundle was unstable, spec 3.4),
            ``"d^-1/4"`` or ``None``.
        seed: layer ``l`` draws from ``seed + l`` (``None``: torch's global generator).

    ``Omega`` ``(m, k)`` and ``c`` ``(k,)`` are parameters (zero until fitted or assembled);
    ``ridge_`` is the last closed-form fit's ridge. Shapes: ``x`` ``(*, d)`` -> ``(*, k)``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_features: int,
        depth: int = 2,
        activations: str | Sequence[str] = "cos",
        M: float = 0.0,
        orthogonal: bool = False,
        prescale: Prescale = "l2",
        seed: int | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.in_dim = check_positive_int("in_dim", in_dim)
        self.out_dim = check_positive_int("out_dim", out_dim)
        self.num_features = check_positive_int("num_features", num_features)
        depth = check_positive_int("depth", depth)
        kinds = [activations] * depth if isinstance(activations, str) else list(activations)
        if len(kinds) != depth:
            raise ValueError(f"activations: expected {depth} kinds (one per layer), got {kinds}")
        for i, k in enumerate(kinds):
            check_choice(f"activations[{i}]", k, (*URF_KINDS, "relu"))
        self.kinds = kinds
        self.M = check_positive("M", M, allow_zero=True)
        self.prescale: Prescale = check_choice("prescale", prescale, PRESCALES)
        self.validate = validate
        maps: list[nn.Module] = []
        for i, kind in enumerate(kinds):
            dim = in_dim if i == 0 else num_features
            s = None if seed is None else seed + i
            if kind == "relu":
                maps.append(ReLURandomFeatures(dim, num_features, orthogonal=orthogonal, seed=s))
            else:
                maps.append(
                    URF(
                        cast(URFKind, kind), dim, num_features, M, orthogonal, prescale, s, validate
                    )
                )
        self.maps = nn.ModuleList(maps)
        self.omega = nn.Parameter(torch.zeros(num_features, out_dim))
        self.c = nn.Parameter(torch.zeros(out_dim))
        self.ridge_: float | None = None
        self.assembled: list[BundledLayer] = []

    @property
    def depth(self) -> int:
        """The number of bundled feature maps ``L``."""
        return len(self.maps)

    def reset_parameters(self) -> None:
        """Redraw every feature map and zero the readout."""
        for f in self.maps:
            f.reset_parameters()  # type: ignore[operator]
        with torch.no_grad():
            self.omega.zero_()
            self.c.zero_()
        self.ridge_ = None

    def features(self, x: Tensor) -> Tensor:
        """``z_L = Psi_L(... Psi_1(x))`` ``(*, m)`` of ``x`` ``(*, in_dim)``."""
        check_input("FullyBundledNetwork: x", x, self.in_dim, validate=self.validate)
        z = x
        for f in self.maps:
            z = f.input_features(z) if isinstance(f, URF) else f(z)
        return z

    def forward(self, x: Tensor) -> Tensor:
        """``z_L Omega + c`` ``(*, out_dim)``."""
        return self.features(x) @ self.omega.to(x.dtype) + self.c.to(x.dtype)

    @torch.no_grad()
    def fit_closed_form(
        self, X: Tensor, Y: Tensor, ridge: float | str = 1e-6, folds: int = 5
    ) -> FullyBundledNetwork:
        """Fit ``Omega, c`` for the MSE in closed form (no backprop); returns ``self``.

        Args:
            X: inputs ``(n, in_dim)``.
            Y: targets ``(n,)`` (for ``out_dim = 1``) or ``(n, out_dim)``.
            ridge: ``rho >= 0`` (``1e-6`` by default; it overfits once ``m >~ n``), or ``"cv"``:
                ``rho`` from :data:`RIDGE_GRID` by ``folds``-fold cross-validation on ``X``.
            folds: folds for ``"cv"``.

        Raises:
            ValueError: mismatched rows, an empty ``X``, a negative ridge or another width;
            TypeError: non-floating tensors.
        """
        check_float_tensor("X", X, ndim=2, nonempty=True)
        check_float_tensor("Y", Y)
        if Y.dim() == 1:
            Y = Y.unsqueeze(1)
        if Y.dim() != 2 or Y.shape[0] != X.shape[0] or Y.shape[1] != self.out_dim:
            raise ValueError(
                f"Y: expected shape ({X.shape[0]},) or ({X.shape[0]}, {self.out_dim}) (one row "
                f"per row of X), got {tuple(Y.shape)}"
            )
        check_finite("Y", Y, validate=self.validate)
        if isinstance(ridge, str):
            check_choice("ridge", ridge, ("cv",))
        else:
            ridge = check_positive("ridge", ridge, allow_zero=True)
        Z = self.features(X)
        Yt = Y.to(Z.dtype)
        rho = ridge_cv(Z, Yt, folds=folds).ridge if isinstance(ridge, str) else ridge
        omega, c = ridge_fit(Z, Yt, rho)
        self.omega.copy_(omega.to(self.omega))
        self.c.copy_(c.to(self.c))
        self.ridge_ = rho
        return self


def bundle(
    mlp: nn.Sequential,
    num_features: int,
    M: float = 0.0,
    orthogonal: bool = False,
    prescale: Prescale = "l2",
    seed: int | None = None,
) -> FullyBundledNetwork:
    """Bundle ``Linear, act, Linear, act, ..., Linear`` into a :class:`FullyBundledNetwork`.

    Every activation must have random features (:class:`~paperzoo.snnk.urf.Cos`, ``Sin``,
    ``Exp``, ``GaussianActivation``, ``nn.ReLU``; ReLU features give the arc-cosine kernel).
    ``Omega = (W_{L+1} Theta_L^T)^T`` and ``c = b_{L+1}`` are assembled from the weights; the
    assembled layers are kept in ``net.assembled`` (:class:`BundledLayer`). With
    ``prescale="l2"`` each layer's input is normalised first, so the assembled network
    approximates the MLP with unit-norm layer inputs; with ``None`` it approximates the MLP.

    Raises:
        TypeError: not an ``nn.Sequential`` of that pattern.
        ValueError: an activation without random features (e.g. ``nn.Tanh``).
    """
    if not isinstance(mlp, nn.Sequential):
        raise TypeError(f"mlp: expected an nn.Sequential, got {type(mlp).__name__}")
    mods = list(mlp)
    if len(mods) < 3 or len(mods) % 2 == 0:
        raise TypeError(
            f"mlp: expected Linear, act, Linear, ..., Linear (an odd number >= 3 of modules), "
            f"got {[type(m).__name__ for m in mods]}"
        )
    linears, kinds = [], []
    for i, mod in enumerate(mods):
        if i % 2 == 0:
            if not isinstance(mod, nn.Linear):
                raise TypeError(f"mlp[{i}]: expected an nn.Linear, got {type(mod).__name__}")
            linears.append(mod)
        else:
            kind = activation_kind(mod)
            if kind is None:
                raise ValueError(
                    f"mlp[{i}]: the activation {type(mod).__name__} has no random-feature "
                    "representation here; use Cos, Sin, Exp, GaussianActivation or nn.ReLU"
                )
            kinds.append(kind)
    w0 = linears[0].weight
    net = FullyBundledNetwork(
        linears[0].in_features,
        linears[-1].out_features,
        num_features,
        len(kinds),
        kinds,
        M,
        orthogonal,
        prescale,
        seed,
    ).to(device=w0.device, dtype=w0.dtype)
    assembled: list[BundledLayer] = []
    with torch.no_grad():
        W = linears[0].weight.detach()
        for lin, lin_next, f in zip(linears[:-1], linears[1:], net.maps, strict=True):
            bias = None if lin.bias is None else lin.bias.detach()
            if isinstance(f, URF):
                theta = f.param_features(W, bias)
            else:
                assert isinstance(f, ReLURandomFeatures)
                theta = relu_features(W, f.G.to(W.dtype), f.floor).T
            assembled.append(BundledLayer(W, bias, theta))
            W = lin_next.weight.detach() @ theta.T  # W' = W_{l+1} Theta_l^T, (l_{l+1}, m)
        net.omega.copy_(W.T)
        last_bias = linears[-1].bias
        if last_bias is not None:
            net.c.copy_(last_bias.detach())
    net.assembled = assembled
    return net
