"""AMCL's multi-head projection: ``C`` projection heads of one architecture, independent weights."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import check_finite, check_float_tensor, check_positive_int

__all__ = ["MultiHeadProjector"]


class MultiHeadProjector(nn.Module):
    r"""``C`` heads :math:`g_c`: ``Linear(in_dim, hidden)-ReLU-Linear(hidden, out_dim)`` each.

    All heads run as one batched matmul over a head axis (``(C, in, hidden)`` weights), so ``C``
    heads cost one grouped GEMM, not ``C`` module calls. :math:`z^c = g_c(f(x))`, L2-normalised
    when ``normalize`` (the cosine similarity of the paper).

    Args:
        in_dim: backbone feature width.
        out_dim: projection dimension :math:`d'` (default 128).
        num_heads: :math:`C` (default 3, the official code's).
        hidden: hidden width (default 512, the official code's).
        normalize: L2-normalise each head's output (default True).

    Shapes:
        ``x (B, in_dim) -> z (C, B, out_dim)``.

    Raises:
        TypeError/ValueError: a non-float input, not 2-D, the wrong width, NaN/inf.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 128,
        num_heads: int = 3,
        hidden: int = 512,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.in_dim = check_positive_int("in_dim", in_dim)
        self.out_dim = check_positive_int("out_dim", out_dim)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.hidden = check_positive_int("hidden", hidden)
        self.normalize = bool(normalize)
        c = self.num_heads
        self.w_1 = nn.Parameter(torch.empty(c, self.in_dim, self.hidden))
        self.b_1 = nn.Parameter(torch.empty(c, 1, self.hidden))
        self.w_2 = nn.Parameter(torch.empty(c, self.hidden, self.out_dim))
        self.b_2 = nn.Parameter(torch.empty(c, 1, self.out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Linear``'s initialisation for every head (uniform in ``±1/sqrt(fan_in)``)."""
        with torch.no_grad():
            for w, b, fan in ((self.w_1, self.b_1, self.in_dim), (self.w_2, self.b_2, self.hidden)):
                bound = 1.0 / math.sqrt(fan)
                w.uniform_(-bound, bound)
                b.uniform_(-bound, bound)

    def forward(self, x: Tensor, validate: bool = True) -> Tensor:
        """``x (B, in_dim) -> (C, B, out_dim)``; ``validate=False`` skips the NaN/inf check (a sync)."""
        check_float_tensor("x", x, 2, nonempty=True)
        if x.shape[1] != self.in_dim:
            raise ValueError(f"x: expected {self.in_dim} features, got shape {tuple(x.shape)}")
        check_finite("x", x, validate=validate)
        h = torch.relu(x.unsqueeze(0) @ self.w_1 + self.b_1)
        z = h @ self.w_2 + self.b_2
        return F.normalize(z, dim=-1) if self.normalize else z

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, out_dim={self.out_dim}, num_heads={self.num_heads}, "
            f"hidden={self.hidden}, normalize={self.normalize}"
        )
