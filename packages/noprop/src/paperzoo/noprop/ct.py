"""NoProp-CT (Li, Teh & Pascanu, 2025): one time-conditioned block, continuous t ∈ [0, 1], a
learnable noise schedule."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from paperzoo.core.checks import (
    Reduction,
    check_positive,
    check_positive_int,
    reduce,
)
from paperzoo.noprop._parts import (
    Head,
    apply_head,
    check_block,
    check_block_dims,
    check_inputs,
    given_noise,
    label_targets_and_times,
    raise_nonfinite,
    standard_normal,
)
from paperzoo.noprop.embeddings import LabelEmbedding
from paperzoo.noprop.functional import (
    kl_to_standard_normal,
    posterior_coeffs,
)
from paperzoo.noprop.schedules import LearnableSchedule

__all__ = ["NoPropCT"]


class NoPropCT(nn.Module):
    """NoProp-CT: one time-conditioned block, continuous t ∈ [0, 1], learnable schedule.

        L = −log p̂(y | z_1) + KL(q(z_0 | y) ‖ N(0, I))
            + (η/2)·E_{t~U[0,1]}[SNR′(t)·‖û_θ(z_t, x, t) − u_y‖²],  z_t ~ q(z_t | y).

    Inference on the grid t_n = n/N: z_{t_0} ~ N(0, I), then the DT update with a, b, c from
    ᾱ(t_n), ᾱ(t_{n+1}); logits = linear(z_1).

    Args:
        block: maps (x, z ``(B, e)``, t ``(B,)``) → ``(B, K)`` (softmax head) or ``(B, e)``.
        num_classes: K.
        embedding: default one-hot.
        schedule: default :class:`LearnableSchedule` (γ ∈ [−7, 7]); trained with the model.
        eta: η, default 1.0 (paper, CT; recalled).
        head: ``'softmax'`` (default) or ``'linear'``, as in :class:`NoPropDT`.
        validate: input and finiteness checks.
    """

    def __init__(
        self,
        block: nn.Module,
        num_classes: int,
        embedding: LabelEmbedding | None = None,
        schedule: LearnableSchedule | None = None,
        eta: float = 1.0,
        head: Head = "softmax",
        validate: bool = True,
    ) -> None:
        super().__init__()
        check_positive("eta", eta)
        if head not in ("softmax", "linear"):
            raise ValueError(f"head must be 'softmax' or 'linear', got {head!r}")
        self.embedding = embedding if embedding is not None else LabelEmbedding(num_classes)
        if self.embedding.num_classes != num_classes:
            raise ValueError(
                f"embedding has {self.embedding.num_classes} classes, num_classes={num_classes}"
            )
        check_block(block)
        check_block_dims(block, self.embedding, head, "block")
        self.block = block
        self.schedule = schedule if schedule is not None else LearnableSchedule()
        self.num_classes = num_classes
        self.eta = float(eta)
        self.head = head
        self.validate = validate
        self.classifier = nn.Linear(self.embedding.dim, num_classes)
        self.last_parts: dict[str, Tensor] = {}

    def _ref(self) -> Tensor:
        return self.classifier.weight

    def denoise(self, x: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """û_θ(z_t, x, t), ``(B, e)``."""
        return apply_head(self.block(x, z, t), self.head, self.embedding.weight, "block")

    def loss(
        self,
        x: Tensor,
        y: Tensor,
        reduction: Reduction = "mean",
        generator: torch.Generator | None = None,
        t: Tensor | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """NoProp-CT loss (one t ~ U[0, 1] per example unless ``t`` ``(B,)`` is given).

        Args:
            x: ``(B, ...)`` inputs; y: ``(B,)`` labels in [0, K).
            reduction: ``'mean'`` | ``'sum'`` | ``'none'`` (``(B,)``).
            generator: optional RNG for t (unless given), then ε (for z_t) and ε′ (for z_1).
            t: optional ``(B,)`` times in [0, 1].
            noise: optional ``(B, 2, e)`` standard normal draws used instead of
                ``generator``'s: ``noise[:, 0]`` is ε, ``noise[:, 1]`` is ε′. With ``t`` and
                ``noise`` given, row i depends on example i alone.

        Returns:
            scalar, or ``(B,)`` for ``reduction='none'``; the parts are in ``last_parts``.
        """
        u_y, t = label_targets_and_times(
            x, y, t, self.embedding, self.num_classes, self.validate, generator, self._ref()
        )
        if noise is None:
            eps = standard_normal(tuple(u_y.shape), u_y, generator)
            eps1 = standard_normal(tuple(u_y.shape), u_y, generator)
        else:
            noise = given_noise(noise, (u_y.shape[0], 2, u_y.shape[1]), u_y)
            eps, eps1 = noise[:, 0], noise[:, 1]
        sched = self.schedule
        abar_t = sched.alpha_bar(t, validate=False).to(u_y.dtype)[:, None]
        z_t = abar_t.sqrt() * u_y + (1 - abar_t).sqrt() * eps
        u_hat = self.denoise(x, z_t, t)
        w = sched.snr_prime(t, validate=False).to(u_y.dtype)
        den = 0.5 * self.eta * w * (u_hat - u_y).pow(2).sum(-1)
        ends = sched.alpha_bar(torch.tensor([0.0, 1.0], device=u_y.device), validate=False).to(
            u_y.dtype
        )
        z1 = ends[1].sqrt() * u_y + (1 - ends[1]).sqrt() * eps1
        ce = F.cross_entropy(self.classifier(z1), y, reduction="none")
        kl = kl_to_standard_normal(ends[0].sqrt() * u_y, 1 - ends[0], validate=False)
        per_example = den + ce + kl
        if self.validate:
            raise_nonfinite(
                torch.stack([torch.isfinite(u_hat).all(), torch.isfinite(per_example).all()]),
                [f"the output of the block ({type(self.block).__name__})", "the CT loss"],
            )
        self.last_parts = {
            "denoise": den.detach().mean(),
            "ce": ce.detach().mean(),
            "kl": kl.detach().mean(),
        }
        return reduce(per_example, reduction)

    def predict_logits(
        self,
        x: Tensor,
        steps: int = 20,
        stochastic: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Denoise on ``steps`` uniform intervals of [0, 1]; returns linear(z_1), ``(B, K)``."""
        steps = check_positive_int("steps", steps)
        if self.validate:
            check_inputs(x, None, self.num_classes, self._ref())
        ref = self.embedding.weight.to(x.dtype)
        B = x.shape[0]
        grid = torch.linspace(0.0, 1.0, steps + 1, device=x.device)
        abar = self.schedule.alpha_bar(grid, validate=False).to(torch.float64)
        a, b, c = posterior_coeffs(abar[:-1], abar[1:], validate=False)
        a, b, sc = a.to(x.dtype), b.to(x.dtype), c.sqrt().to(x.dtype)
        z = standard_normal((B, self.embedding.dim), ref, generator)
        for n in range(steps):
            u_hat = self.denoise(x, z, grid[n].to(x.dtype).expand(B))
            if self.validate:
                raise_nonfinite(
                    torch.isfinite(u_hat).all().reshape(1),
                    [f"the block output at inference step {n + 1} (t={float(grid[n]):.3f})"],
                )
            z = a[n] * u_hat + b[n] * z
            if stochastic:
                z = z + sc[n] * standard_normal(tuple(z.shape), ref, generator)
        out: Tensor = self.classifier(z)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """= :meth:`predict_logits` with defaults."""
        return self.predict_logits(x)
