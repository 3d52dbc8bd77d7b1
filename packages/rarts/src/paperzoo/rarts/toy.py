"""The analytically solvable bilevel model (closed-form surrogate; the paper's own toy could not be re-read).

Scalars w, α (and RARTS' y); c > 0:

* L_train(w, α) = ½ (w − α)²
* L_val(w, α) = ½ (w − 1)² + (c/2) α²

Bilevel optimum: w*(α) = α, so α* = argmin ½(α − 1)² + (c/2)α² = 1/(1 + c). Fixed points of the searches:
DARTS-1st α = 0 (it ignores that w follows α), DARTS-2nd with virtual step ξ: α = ξ/(ξ + c) (exact iff ξ = 1),
RARTS: α = 1/(1 + c + c/β + c/λ), w = 1 − cα − cα/β, y = 1 − cα (→ α* as λ, β → ∞).

:class:`QuadraticBilevel` is also an ``nn.Module`` supernet, so the real steppers of
:mod:`paperzoo.rarts.search` run on it: a "batch" is a row ``(a, b, d)`` and the model returns
½(w − a·α − b)² + (d/2)α²; :meth:`QuadraticBilevel.train_batch` is (1, 0, 0) and
:meth:`QuadraticBilevel.val_batch` is (0, 1, c). Use :func:`mean_loss` as the stepper's ``loss_fn``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["QuadraticBilevel", "mean_loss"]


def mean_loss(output: Tensor, target: Tensor) -> Tensor:
    """``loss_fn`` for the toy model: the mean of the per-row losses it returns (``target`` is unused)."""
    del target
    return output.mean()


class QuadraticBilevel(nn.Module):
    """Closed-form bilevel toy with parameters ``w`` (weights) and ``alpha`` (architecture), shape ``(1,)``.

    Args: c: > 0, the strength of the α² term in L_val. w0, alpha0: initial values. dtype: default float64.
    ``forward(x (N, 3))`` → per-row loss ``(N,)``.
    """

    def __init__(
        self, c: float, w0: float = 0.0, alpha0: float = 0.5, dtype: torch.dtype = torch.float64
    ) -> None:
        super().__init__()
        if not c > 0:
            raise ValueError(f"c must be > 0, got {c}")
        self.c = float(c)
        self.w = nn.Parameter(torch.tensor([w0], dtype=dtype))
        self.alpha = nn.Parameter(torch.tensor([alpha0], dtype=dtype))

    def arch_parameters(self) -> list[nn.Parameter]:
        """α."""
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        """w."""
        return [self.w]

    def reset_parameters(self) -> None:
        """w ~ N(0, 1) (used by RARTS' ``y_init='independent'``); α is left alone."""
        with torch.no_grad():
            self.w.normal_()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (N, 3) = rows (a, b, d), got {tuple(x.shape)}")
        a, b, d = x.to(self.w.dtype).unbind(dim=1)
        return 0.5 * (self.w - a * self.alpha - b) ** 2 + 0.5 * d * self.alpha**2

    def train_batch(self) -> tuple[Tensor, Tensor]:
        """The batch whose loss is L_train(w, α)."""
        x = torch.tensor([[1.0, 0.0, 0.0]], dtype=self.w.dtype, device=self.w.device)
        return x, torch.zeros(1, dtype=torch.long, device=self.w.device)

    def val_batch(self) -> tuple[Tensor, Tensor]:
        """The batch whose loss is L_val(w, α)."""
        x = torch.tensor([[0.0, 1.0, self.c]], dtype=self.w.dtype, device=self.w.device)
        return x, torch.zeros(1, dtype=torch.long, device=self.w.device)

    @staticmethod
    def l_train(w: Tensor | float, alpha: Tensor | float) -> Tensor | float:
        """L_train(w, α) = ½ (w − α)²."""
        return 0.5 * (w - alpha) ** 2

    def l_val(self, w: Tensor | float, alpha: Tensor | float) -> Tensor | float:
        """L_val(w, α) = ½ (w − 1)² + (c/2) α²."""
        return 0.5 * (w - 1) ** 2 + 0.5 * self.c * alpha**2

    def bilevel_opt(self) -> float:
        """α* = 1/(1 + c), the solution of min_α L_val(w*(α), α), w*(α) = argmin_w L_train."""
        return 1.0 / (1.0 + self.c)

    def darts1_fixed_point(self) -> float:
        """First-order DARTS' fixed point α = 0."""
        return 0.0

    def darts2_fixed_point(self, xi: float) -> float:
        """Second-order DARTS' fixed point with virtual step ξ: α = ξ/(ξ + c)."""
        if not xi >= 0:
            raise ValueError(f"xi must be >= 0, got {xi}")
        return xi / (xi + self.c)

    def rarts_fixed_point(self, lam: float, beta: float) -> tuple[float, float, float]:
        """RARTS' stationary point ``(α, w, y)`` of L_β: α = 1/(1 + c + c/β + c/λ), w = 1 − cα − cα/β,
        y = 1 − cα (λ > 0, β > 0)."""
        if not lam > 0 or not beta > 0:
            raise ValueError(f"need lam > 0 and beta > 0, got {lam}, {beta}")
        c = self.c
        alpha = 1.0 / (1.0 + c + c / beta + c / lam)
        return alpha, 1.0 - c * alpha - c * alpha / beta, 1.0 - c * alpha

    def single_level_fixed_point(self, lam: float) -> float:
        """β → ∞ limit of RARTS: min_{w,α} L_val(w, α) + λ L_train(w, α), α = 1/(1 + c + c/λ)."""
        if not lam > 0:
            raise ValueError(f"lam must be > 0, got {lam}")
        return 1.0 / (1.0 + self.c + self.c / lam)
