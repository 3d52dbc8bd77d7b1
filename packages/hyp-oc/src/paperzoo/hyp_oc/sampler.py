r"""The pseudo-negative sampler: Gaussian samples around a running mean of bona-fide features."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_positive,
    check_positive_int,
    check_unit_interval,
)

__all__ = ["MeanMode", "PseudoNegativeSampler"]

MeanMode = Literal["ema", "official"]


class PseudoNegativeSampler(nn.Module):
    r"""Pseudo-negatives :math:`\tilde h \sim \mathcal{N}(\mu_t, \sigma^2 I_F)` in encoder-feature
    space, centred at a running mean of the real features (Hyp-OC, Sec. 3).

    ``update(h)`` folds a real batch ``(B, F)`` into :math:`\mu_t`; ``sample(n)`` draws ``(n, F)``
    detached samples as :math:`\mu_t + \sigma\,\varepsilon` (no ``F x F`` covariance is built; the
    official ``MultivariateNormal(μ, σ I)`` allocates and factorises one every step).

    Mean modes:

    - ``"ema"`` (default, the paper's "weighted running mean"): :math:`\mu_1 = \bar h_1`,
      :math:`\mu_t = \alpha\mu_{t-1} + (1-\alpha)\bar h_t`.
    - ``"official"`` (parity with ``train.py``): :math:`\mu_t = \alpha\bar h_{t-1} +
      (1-\alpha)\bar h_t`, the previous *batch* mean, reset to zeros by :meth:`new_epoch`.

    Deviation: ``mean_mode="ema"`` by default; the official code's mean is a two-batch average
    reset to zero at each epoch start (its first batch of an epoch is centred at
    ``(1-α) h̄``), kept as ``"official"``.

    Args:
        feature_dim: ``F``.
        alpha: :math:`\alpha \in [0, 1)` (official ``0.8``).
        std: :math:`\sigma > 0` in encoder-feature units (official ``1``), or ``"auto"``: the mean
            per-dimension standard deviation of the real batches, tracked with the same recursion
            as the mean. Deviation: the official code passes its ``std_dev`` as the *variance*
            (``cov = std_dev * I``); the two agree at the default 1.
        mean_mode: ``"ema"`` or ``"official"``.
        generator: a ``torch.Generator`` (on the features' device) for the samples; ``None``
            uses the global RNG.

    Buffers (in the ``state_dict``): ``mean`` ``(F,)``, ``prev_batch_mean`` ``(F,)``,
    ``num_updates`` (0-D long), ``feature_std`` (0-D, the ``"auto"`` estimate).
    """

    mean: Tensor
    prev_batch_mean: Tensor
    num_updates: Tensor
    feature_std: Tensor

    def __init__(
        self,
        feature_dim: int,
        alpha: float = 0.8,
        std: float | Literal["auto"] = 1.0,
        mean_mode: MeanMode = "ema",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.feature_dim = check_positive_int("feature_dim", feature_dim)
        self.alpha = check_unit_interval("alpha", alpha)
        if self.alpha >= 1.0:
            raise ValueError(f"alpha: expected a value in [0, 1), got {alpha!r}")
        self.std: float | Literal["auto"] = (
            "auto" if isinstance(std, str) and std == "auto" else check_positive("std", std)
        )
        self.mean_mode: MeanMode = check_choice("mean_mode", mean_mode, ("ema", "official"))
        self.generator = generator
        self.register_buffer("mean", torch.zeros(self.feature_dim))
        self.register_buffer("prev_batch_mean", torch.zeros(self.feature_dim))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("feature_std", torch.ones(()))

    def reset(self) -> None:
        """Forget everything: mean, previous batch mean, count and the ``"auto"`` std estimate."""
        self.mean.zero_()
        self.prev_batch_mean.zero_()
        self.num_updates.zero_()
        self.feature_std.fill_(1.0)

    def new_epoch(self) -> None:
        """The official epoch-start reset of the previous batch mean (``"official"`` mode only;
        no effect in ``"ema"`` mode)."""
        if self.mean_mode == "official":
            self.prev_batch_mean.zero_()

    @torch.no_grad()
    def update(self, h: Tensor, *, validate: bool = True) -> Tensor:
        """Fold the real batch ``h`` ``(B, F)`` into the running mean; returns ``mean`` ``(F,)``.

        Raises:
            TypeError/ValueError: not a 2-D float tensor, an empty batch, ``F`` different from
                ``feature_dim``, NaN/inf (when ``validate``).
        """
        check_float_tensor("h", h, 2, nonempty=True)
        if h.shape[1] != self.feature_dim:
            raise ValueError(
                f"h: expected {self.feature_dim} features (the sampler's feature_dim), "
                f"got shape {tuple(h.shape)}"
            )
        check_finite("h", h, validate=validate)
        hd = h.detach().to(self.mean.dtype)
        batch_mean = hd.mean(0)
        a = self.alpha
        first = self.num_updates == 0
        if self.mean_mode == "ema":
            new = torch.where(first, batch_mean, a * self.mean + (1 - a) * batch_mean)
        else:
            new = a * self.prev_batch_mean + (1 - a) * batch_mean
        self.mean.copy_(new)
        self.prev_batch_mean.copy_(batch_mean)
        if self.std == "auto" and hd.shape[0] > 1:
            s = hd.std(0).mean()
            self.feature_std.copy_(torch.where(first, s, a * self.feature_std + (1 - a) * s))
        self.num_updates += 1
        return self.mean

    def sigma(self) -> Tensor:
        """The standard deviation in use: ``std``, or the ``"auto"`` estimate (0-D)."""
        if self.std == "auto":
            return self.feature_std
        return torch.full((), self.std, dtype=self.mean.dtype, device=self.mean.device)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """``n`` pseudo-negatives ``(n, F)`` (no grad), on the buffers' device and dtype."""
        n = check_positive_int("n", n)
        eps = torch.randn(
            n,
            self.feature_dim,
            generator=self.generator,
            device=self.mean.device,
            dtype=self.mean.dtype,
        )
        return self.mean + self.sigma() * eps

    def extra_repr(self) -> str:
        return (
            f"feature_dim={self.feature_dim}, alpha={self.alpha}, std={self.std!r}, "
            f"mean_mode={self.mean_mode!r}"
        )
