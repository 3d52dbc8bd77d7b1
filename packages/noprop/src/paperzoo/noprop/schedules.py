"""Noise schedules of NoProp: the fixed discrete cosine schedule (NoProp-DT) and the learnable
monotone continuous schedule (NoProp-CT, VDM style)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from paperzoo.core.checks import check_positive_int
from paperzoo.noprop.functional import ONE_MINUS_MIN, posterior_coeffs

__all__ = ["CosineSchedule", "DiscreteSchedule", "LearnableSchedule"]


class DiscreteSchedule(nn.Module):
    """A fixed discrete schedule ᾱ_0 < ᾱ_1 < … < ᾱ_T, all strictly inside (0, 1).

    ᾱ_t increases with t: z_0 is (almost) pure noise and z_T (almost) the clean embedding.
    Stored in float64 (buffers ``alpha_bar`` and ``snr``, shape ``(T + 1,)``) so SNR differences
    are exact enough near ᾱ → 1 (spec "Numerics"); cast on use. They stay float64 when the
    module is cast (``model.half()``, ``model.to(torch.bfloat16)``: ᾱ_T = 0.9999 would round
    to 1); only on a device without float64 (MPS) do they take the cast dtype.

    Args:
        alpha_bar: ``(T + 1,)`` strictly increasing values in (0, 1).

    Raises:
        ValueError: if ``alpha_bar`` is not 1-D with ≥ 2 entries, not strictly increasing, or
            touches 0 or 1 (a, b, c and SNR would divide by zero).
    """

    alpha_bar: Tensor
    snr: Tensor

    def __init__(self, alpha_bar: Tensor) -> None:
        super().__init__()
        abar = torch.as_tensor(alpha_bar, dtype=torch.float64).detach().clone()
        if abar.dim() != 1 or abar.numel() < 2:
            raise ValueError(
                f"alpha_bar must have shape (T + 1,) with T >= 1, got {tuple(abar.shape)}"
            )
        if not bool(torch.isfinite(abar).all()):
            raise ValueError("alpha_bar must be finite")
        if bool((abar <= 0).any()) or bool((abar >= 1).any()):
            raise ValueError(
                "alpha_bar must lie strictly inside (0, 1) (0 or 1 divides by zero in a, b, c "
                f"and SNR); got min {abar.min().item():.3g}, max {abar.max().item():.3g}"
            )
        if not bool((abar[1:] > abar[:-1]).all()):
            raise ValueError("alpha_bar must be strictly increasing in t (z_0 noise, z_T clean)")
        self.register_buffer("alpha_bar", abar)
        self.register_buffer("snr", abar / (1.0 - abar).clamp_min(ONE_MINUS_MIN))

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> DiscreteSchedule:
        kept = {k: self._buffers[k] for k in ("alpha_bar", "snr")}
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        for k, old in kept.items():
            new = self._buffers[k]
            # MPS has no float64: there the buffers keep the cast values
            if (
                old is not None
                and new is not None
                and new.dtype != torch.float64
                and new.device.type != "mps"
            ):
                self._buffers[k] = old.to(device=new.device)
        return self

    @property
    def T(self) -> int:  # noqa: N802 (the paper's symbol)
        """Number of denoising steps (blocks)."""
        return int(self.alpha_bar.shape[0]) - 1

    def snr_delta(self) -> Tensor:
        """SNR(t) − SNR(t−1) for t = 1..T, ``(T,)`` float64 (all > 0)."""
        return self.snr[1:] - self.snr[:-1]

    def _check_t(self, t: int | Tensor) -> Tensor:
        tt = torch.as_tensor(t, device=self.alpha_bar.device)
        if tt.dtype.is_floating_point or tt.dtype == torch.bool:
            raise TypeError(f"t must be an integer step in 1..{self.T}, got dtype {tt.dtype}")
        if bool(((tt < 1) | (tt > self.T)).any()):
            raise ValueError(f"t must lie in 1..T = 1..{self.T}, got {t}")
        return tt.long()

    def coeffs(self, t: int | Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(a_t, b_t, c_t) of q(z_t | z_{t−1}, y) for integer t in 1..T (float64, shape of t)."""
        tt = self._check_t(t)
        return posterior_coeffs(self.alpha_bar[tt - 1], self.alpha_bar[tt], validate=False)

    def extra_repr(self) -> str:
        return f"T={self.T}"


def cosine_alpha_bar(
    T: int, s: float = 0.008, clip: tuple[float, float] = (1e-4, 0.9999)
) -> Tensor:
    """Nichol–Dhariwal cosine schedule mapped to increasing ᾱ_t, t = 0..T (float64, ``(T + 1,)``).

    ᾱ_t = f(T − t) / f(0),  f(τ) = cos²(π/2 · (τ/T + s) / (1 + s)),  clipped to ``clip``.
    """
    check_positive_int("T", T)
    lo, hi = clip
    if not 0.0 < lo < hi < 1.0:
        raise ValueError(f"clip must satisfy 0 < lo < hi < 1, got {clip}")
    if not (math.isfinite(s) and s >= 0):
        raise ValueError(f"s must be a finite offset >= 0, got {s}")
    tau = torch.arange(T, -1, -1, dtype=torch.float64) / T

    def f(x: Tensor) -> Tensor:
        return torch.cos(0.5 * math.pi * (x + s) / (1.0 + s)) ** 2

    abar = (f(tau) / f(torch.zeros((), dtype=torch.float64))).clamp(lo, hi)
    if not bool((abar[1:] > abar[:-1]).all()):
        raise ValueError(
            f"T={T} is too large for the cosine schedule clipped to {clip}: neighbouring steps "
            "clip to the same alpha_bar (a zero SNR step); use a smaller T (the default clip "
            "allows T <= 155), a wider clip, or a DiscreteSchedule of your own"
        )
    return abar


class CosineSchedule(DiscreteSchedule):
    """Fixed cosine schedule of NoProp-DT (spec section 3, "DT schedule").

    ᾱ_t = f(T − t)/f(0), f(τ) = cos²(π/2·(τ/T + s)/(1 + s)), clipped to [1e-4, 0.9999].
    For T = 10: ᾱ ≈ 1e-4, .024, .094, .203, .341, .494, .647, .787, .899, .972, .9999.

    Args:
        T: number of steps (blocks), default 10 (paper).
        s: cosine offset, default 0.008 (Nichol & Dhariwal).
        clip: ``(lo, hi)`` clamp of ᾱ, default ``(1e-4, 0.9999)``.

    Raises:
        TypeError / ValueError: if T is not an integer >= 1, or so large that two neighbouring
            steps clip to the same ᾱ (T > 155 with the default clip).
    """

    def __init__(
        self, T: int = 10, s: float = 0.008, clip: tuple[float, float] = (1e-4, 0.9999)
    ) -> None:
        super().__init__(cosine_alpha_bar(T, s, clip))
        self.s = s
        self.clip = clip


class LearnableSchedule(nn.Module):
    """Learnable monotone schedule of NoProp-CT (VDM-style, paper Appendix B).

        ᾱ(t) = sigmoid(−γ(t)),   SNR(t) = e^{−γ(t)},
        γ(t) = γ_max − (γ_max − γ_min)·γ̃(t),   γ̃(t) = (g(t) − g(0)) / (g(1) − g(0)),

    with g a monotone MLP with positive weights (Kingma et al. 2021):
    g(t) = l₁(t) + l₃(sigmoid(l₂(l₁(t)))), weights made positive by softplus. Hence γ̃(0) = 0,
    γ̃(1) = 1, ᾱ(0) = sigmoid(−γ_max) ≈ 9e-4, ᾱ(1) = sigmoid(−γ_min) ≈ 0.9991 and
    SNR′(t) = (γ_max − γ_min)·γ̃′(t)·e^{−γ(t)} > 0. SNR′ is analytic (no autograd needed) and
    differentiable in the schedule parameters.

    Args:
        gamma_min: γ_min (at t = 1, clean end), default −7.0.
        gamma_max: γ_max (at t = 0, noise end), default 7.0.
        hidden: width of the monotone MLP, default 64.

    Deviation: the positivity map is softplus (VDM uses abs); either gives a monotone network.
    """

    def __init__(self, gamma_min: float = -7.0, gamma_max: float = 7.0, hidden: int = 64) -> None:
        super().__init__()
        if not (math.isfinite(gamma_min) and math.isfinite(gamma_max)):
            raise ValueError(
                f"gamma_min and gamma_max must be finite (an infinite end makes alpha_bar 0 or 1), "
                f"got gamma_min={gamma_min}, gamma_max={gamma_max}"
            )
        if not gamma_max > gamma_min:
            raise ValueError(
                f"gamma_max must exceed gamma_min, got gamma_min={gamma_min}, gamma_max={gamma_max}"
            )
        check_positive_int("hidden", hidden)
        self.gamma_min = float(gamma_min)
        self.gamma_max = float(gamma_max)
        self.hidden = hidden
        self.w1 = nn.Parameter(torch.empty(1))
        self.b1 = nn.Parameter(torch.empty(1))
        self.w2 = nn.Parameter(torch.empty(hidden))
        self.b2 = nn.Parameter(torch.empty(hidden))
        self.w3 = nn.Parameter(torch.empty(hidden))
        self.b3 = nn.Parameter(torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random init (weights before softplus ~ N(0, 1), biases ~ N(0, 1))."""
        with torch.no_grad():
            for p in (self.w1, self.b1, self.w2, self.b2, self.w3, self.b3):
                p.normal_()

    def _g_and_grad(self, t: Tensor) -> tuple[Tensor, Tensor]:
        w1, w2, w3 = F.softplus(self.w1), F.softplus(self.w2), F.softplus(self.w3)
        h = w1 * t.unsqueeze(-1) + self.b1  # (..., 1)
        s = torch.sigmoid(h * w2 + self.b2)  # (..., H)
        g = h.squeeze(-1) + (s * w3).sum(-1) + self.b3
        dg = w1.squeeze(-1) * (1.0 + (w3 * w2 * s * (1.0 - s)).sum(-1))
        return g, dg

    def _check_t(self, t: Tensor | float, validate: bool = True) -> Tensor:
        tt = torch.as_tensor(t, dtype=self.w1.dtype, device=self.w1.device)
        if validate and (bool(((tt < 0) | (tt > 1)).any()) or not bool(torch.isfinite(tt).all())):
            raise ValueError(f"t must lie in [0, 1], got values outside: {t}")
        return tt

    def gamma_tilde(self, t: Tensor | float, validate: bool = True) -> Tensor:
        """γ̃(t) ∈ [0, 1], increasing, γ̃(0) = 0, γ̃(1) = 1 (shape of t)."""
        tt = self._check_t(t, validate)
        g, _ = self._g_and_grad(tt)
        ends, _ = self._g_and_grad(torch.tensor([0.0, 1.0], dtype=tt.dtype, device=tt.device))
        return (g - ends[0]) / (ends[1] - ends[0])

    def gamma(self, t: Tensor | float, validate: bool = True) -> Tensor:
        """γ(t) = γ_max − (γ_max − γ_min)·γ̃(t), decreasing in t (shape of t)."""
        return self.gamma_max - (self.gamma_max - self.gamma_min) * self.gamma_tilde(t, validate)

    def alpha_bar(self, t: Tensor | float, validate: bool = True) -> Tensor:
        """ᾱ(t) = sigmoid(−γ(t)), increasing in t (shape of t)."""
        return torch.sigmoid(-self.gamma(t, validate))

    def snr(self, t: Tensor | float, validate: bool = True) -> Tensor:
        """SNR(t) = e^{−γ(t)} (shape of t)."""
        return torch.exp(-self.gamma(t, validate))

    def snr_prime(self, t: Tensor | float, validate: bool = True) -> Tensor:
        """dSNR/dt = (γ_max − γ_min)·γ̃′(t)·e^{−γ(t)} > 0 (analytic; shape of t)."""
        tt = self._check_t(t, validate)
        g, dg = self._g_and_grad(tt)
        ends, _ = self._g_and_grad(torch.tensor([0.0, 1.0], dtype=tt.dtype, device=tt.device))
        span = ends[1] - ends[0]
        gt = (g - ends[0]) / span
        gamma = self.gamma_max - (self.gamma_max - self.gamma_min) * gt
        return (self.gamma_max - self.gamma_min) * (dg / span) * torch.exp(-gamma)

    def coeffs(
        self, s: Tensor | float, t: Tensor | float, validate: bool = True
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(a, b, c) of q(z_t | z_s, y) for 0 ≤ s < t ≤ 1 (the DT update between two times).

        Raises:
            ValueError: (``validate``) if s or t lies outside [0, 1] or s ≥ t somewhere.
        """
        if validate:
            ss, tt = self._check_t(s), self._check_t(t)
            if not bool((ss < tt).all()):
                raise ValueError(
                    f"coeffs needs s < t (from time s to the later time t), got s={s}, t={t}"
                )
        return posterior_coeffs(
            self.alpha_bar(s, validate), self.alpha_bar(t, validate), validate=False
        )

    def extra_repr(self) -> str:
        return f"gamma_min={self.gamma_min}, gamma_max={self.gamma_max}, hidden={self.hidden}"
