"""Closed-form pieces of NoProp (Li, Teh & Pascanu, 2025): posterior coefficients, the SNR-weighted
denoising loss of NoProp-DT and the KL of the noisiest latent to the prior.

Notation (paper, spec section 3): latents z_0 (noise) … z_T (cleanest); the schedule ᾱ_t increases
with t; q(z_t | y) = N(√ᾱ_t·u_y, (1 − ᾱ_t)·I) and SNR(t) = ᾱ_t / (1 − ᾱ_t).
"""

from __future__ import annotations

import torch
from torch import Tensor

from paperzoo.core.checks import (
    Reduction,
    check_positive,
    check_positive_int,
    check_reduction,
    reduce,
)

__all__ = [
    "ONE_MINUS_MIN",
    "DTDenoiseLoss",
    "dt_denoise_loss",
    "kl_to_standard_normal",
    "posterior_coeffs",
]

#: Lower clamp of 1 − ᾱ (spec section 3, "Numerics"), so a, b, c and SNR never divide by zero.
ONE_MINUS_MIN = 1e-6


def _as_tensor(value: Tensor | float, like: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        return value.to(device=like.device, dtype=like.dtype)
    return torch.tensor(float(value), device=like.device, dtype=like.dtype)


def posterior_coeffs(
    alpha_bar_prev: Tensor | float, alpha_bar_t: Tensor | float, validate: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Coefficients of q(z_t | z_{t−1}, y) = N(a_t·u_y + b_t·z_{t−1}, c_t·I).

    With α_{t−1} = ᾱ_{t−1} / ᾱ_t (the per-step noising q(z_{t−1} | z_t) = N(√α_{t−1} z_t,
    (1 − α_{t−1}) I)), Gaussian conditioning gives

        a_t = √ᾱ_t (1 − α_{t−1}) / (1 − ᾱ_{t−1}),
        b_t = √α_{t−1} (1 − ᾱ_t) / (1 − ᾱ_{t−1}),
        c_t = (1 − ᾱ_t)(1 − α_{t−1}) / (1 − ᾱ_{t−1}).

    Args:
        alpha_bar_prev: ᾱ_{t−1}, a float or a tensor of any shape, in (0, 1).
        alpha_bar_t: ᾱ_t, same shape (broadcastable), with ᾱ_t > ᾱ_{t−1}.
        validate: check 0 < ᾱ_{t−1} < ᾱ_t ≤ 1 and finiteness (one host sync for tensors);
            the package's own callers pass False (their schedules are checked once).

    Returns:
        ``(a_t, b_t, c_t)``, each of the broadcast shape, in the inputs' dtype (float64 when
        both are Python floats). 1 − ᾱ is clamped at ``ONE_MINUS_MIN`` (spec "Numerics").

    Raises:
        ValueError: (``validate``) if ᾱ_{t−1} ≤ 0, ᾱ_t > 1, ᾱ_t ≤ ᾱ_{t−1} or a value is not
            finite (a, b, c would silently be 0 or NaN).
    """
    if not isinstance(alpha_bar_prev, Tensor) and not isinstance(alpha_bar_t, Tensor):
        ref = torch.zeros((), dtype=torch.float64)
    else:
        ref = alpha_bar_t if isinstance(alpha_bar_t, Tensor) else alpha_bar_prev  # type: ignore[assignment]
        assert isinstance(ref, Tensor)
    abar_prev = _as_tensor(alpha_bar_prev, ref)
    abar_t = _as_tensor(alpha_bar_t, ref)
    if validate:
        ok = (abar_prev > 0) & (abar_t <= 1) & (abar_t > abar_prev)
        if not bool(ok.all()):
            raise ValueError(
                "posterior_coeffs needs 0 < alpha_bar_prev < alpha_bar_t <= 1 (finite), got "
                f"alpha_bar_prev={alpha_bar_prev}, alpha_bar_t={alpha_bar_t}"
            )
    alpha_prev = abar_prev / abar_t
    one_minus_prev = (1.0 - abar_prev).clamp_min(ONE_MINUS_MIN)
    one_minus_t = (1.0 - abar_t).clamp_min(ONE_MINUS_MIN)
    one_minus_alpha = (1.0 - alpha_prev).clamp_min(0.0)
    a = abar_t.sqrt() * one_minus_alpha / one_minus_prev
    b = alpha_prev.sqrt() * one_minus_t / one_minus_prev
    c = one_minus_t * one_minus_alpha / one_minus_prev
    return a, b, c


def dt_denoise_loss(
    u_hat: Tensor,
    u_y: Tensor,
    snr_t: Tensor | float,
    snr_prev: Tensor | float,
    T: int,
    eta: float,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> Tensor:
    """NoProp-DT denoising term for block t (paper Eq. for L_DT, spec section 3).

        ℓ = (T / 2) · η · (SNR(t) − SNR(t−1)) · ‖û − u_y‖²

    Since a_t² / c_t = SNR(t) − SNR(t−1), this is T·η times the KL between
    q(z_t | z_{t−1}, y) and p(z_t | z_{t−1}, x); T undoes the 1/T of E_{t~U{1..T}}.

    Args:
        u_hat: block prediction û_θt, ``(B, e)`` floating.
        u_y: clean class embedding, ``(B, e)``.
        snr_t: SNR(t), a float or a ``(B,)`` tensor (per-example t).
        snr_prev: SNR(t−1), same form. Pass the float64 difference's inputs for accuracy; the
            difference is computed in float64 and cast (spec "Numerics").
        T: number of blocks, an integer ≥ 1.
        eta: η > 0, finite (paper default 0.1 for DT).
        reduction: ``'mean'`` | ``'sum'`` | ``'none'`` over the batch.
        validate: check shapes, dtypes and finiteness (one host sync); False in tight loops.

    Returns:
        scalar, or ``(B,)`` for ``reduction='none'``.
    """
    check_reduction(reduction)
    if validate:
        _check_pair(u_hat, u_y)
    check_positive_int("T", T)
    check_positive("eta", eta)
    snr_t64 = _as_tensor(snr_t, torch.zeros((), dtype=torch.float64, device=u_hat.device))
    snr_p64 = _as_tensor(snr_prev, torch.zeros((), dtype=torch.float64, device=u_hat.device))
    delta = (snr_t64 - snr_p64).to(u_hat.dtype)
    if validate and not bool(((delta > 0) & torch.isfinite(delta)).all()):
        raise ValueError(
            "SNR(t) - SNR(t-1) must be finite and > 0 (the schedule must increase in t)"
        )
    if delta.dim() > 1 or (delta.dim() == 1 and delta.shape[0] != u_hat.shape[0]):
        raise ValueError(
            f"snr_t/snr_prev must be scalars or of shape ({u_hat.shape[0]},), "
            f"got {tuple(delta.shape)}"
        )
    sq = (u_hat - u_y).pow(2).sum(dim=-1)
    per_example = 0.5 * T * eta * delta * sq
    return reduce(per_example, reduction)


def kl_to_standard_normal(mean: Tensor, var: Tensor | float, validate: bool = True) -> Tensor:
    """KL(N(mean, var·I) ‖ N(0, I)) per row.

        KL = ½ [‖mean‖² + e·var − e − e·log var]

    For the NoProp prior term, mean = √ᾱ_0·u_y and var = 1 − ᾱ_0.

    Args:
        mean: ``(B, e)``.
        var: positive scalar variance (float or 0-d tensor) or a ``(B,)`` tensor.
        validate: check var > 0 and finite, mean finite and non-empty (one host sync).

    Returns:
        ``(B,)`` KL per row.

    Raises:
        ValueError: if mean is not ``(B, e)`` or var not a scalar / ``(B,)``; with ``validate``
            also for an empty batch, var ≤ 0 (log of a non-positive variance) or NaN/Inf.
    """
    if mean.dim() != 2:
        raise ValueError(f"mean must have shape (B, e), got {tuple(mean.shape)}")
    e = mean.shape[-1]
    v = _as_tensor(var, mean)
    if v.dim() > 1 or (v.dim() == 1 and v.shape[0] != mean.shape[0]):
        raise ValueError(
            f"var must be a scalar or of shape ({mean.shape[0]},), got {tuple(v.shape)}"
        )
    if validate:
        if mean.shape[0] == 0:
            raise ValueError("mean: empty batch (B = 0)")
        ok = torch.isfinite(mean).all() & (v > 0).all() & torch.isfinite(v).all()
        if not bool(ok):
            raise ValueError("kl_to_standard_normal needs a finite mean and a finite var > 0")
    return 0.5 * (mean.pow(2).sum(-1) + e * v - e - e * v.log())


def _check_pair(u_hat: Tensor, u_y: Tensor) -> None:
    if not torch.is_floating_point(u_hat):
        raise TypeError(f"u_hat must be a floating tensor, got dtype {u_hat.dtype}")
    if u_hat.dim() != 2:
        raise ValueError(f"u_hat must have shape (B, e), got {tuple(u_hat.shape)}")
    if u_y.shape != u_hat.shape:
        raise ValueError(
            f"u_y must have the shape of u_hat {tuple(u_hat.shape)}, got {tuple(u_y.shape)}"
        )
    if u_hat.shape[0] == 0:
        raise ValueError("u_hat: empty batch (B = 0)")
    if not bool(torch.isfinite(u_hat).all()) or not bool(torch.isfinite(u_y).all()):
        raise ValueError("u_hat and u_y must be finite (NaN/Inf found)")


class DTDenoiseLoss(torch.nn.Module):
    """Module twin of :func:`dt_denoise_loss` (same computation).

    ``forward(u_hat (B, e), u_y (B, e), snr_t, snr_prev)`` → ``(T/2)·η·ΔSNR·‖û − u_y‖²`` reduced.

    Args:
        T: number of blocks (≥ 1), default 10.
        eta: η > 0, default 0.1 (paper, DT).
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
    """

    def __init__(self, T: int = 10, eta: float = 0.1, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.T = check_positive_int("T", T)
        self.eta = check_positive("eta", eta)
        self.reduction: Reduction = check_reduction(reduction)

    def forward(
        self, u_hat: Tensor, u_y: Tensor, snr_t: Tensor | float, snr_prev: Tensor | float
    ) -> Tensor:
        """See :func:`dt_denoise_loss` (u_hat, u_y ``(B, e)``; SNRs float or ``(B,)``)."""
        return dt_denoise_loss(u_hat, u_y, snr_t, snr_prev, self.T, self.eta, self.reduction)

    def extra_repr(self) -> str:
        return f"T={self.T}, eta={self.eta}, reduction={self.reduction!r}"
