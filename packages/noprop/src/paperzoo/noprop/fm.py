"""NoProp-FM (Li, Teh & Pascanu, 2025): flow matching from Gaussian noise to the class embedding,
conditioned on x."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from paperzoo.core.checks import (
    Reduction,
    check_positive_int,
    reduce,
)
from paperzoo.noprop._parts import (
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

__all__ = ["NoPropFM"]


class NoPropFM(nn.Module):
    """NoProp-FM: flow matching from z_0 ~ N(0, I) to z_1 = u_y, conditioned on x.

        z_t = t·u_y + (1 − t)·z_0,   L = ‖v_θ(z_t, x, t) − (u_y − z_0)‖²
              [+ ce_weight · CE(z̃_1·W_Eᵀ, y),  z̃_1 = z_t + (1 − t)·v_θ]

    Inference: Euler steps from t = 0 to 1; logits = −‖z_1 − u_k‖² (class = nearest embedding).

    Args:
        block: maps (x, z ``(B, e)``, t ``(B,)``) → v ``(B, e)``.
        num_classes: K.
        embedding: default one-hot.
        ce_weight: weight of the anti-collapse CE for learned embeddings (recalled), default 0.
        validate: input and finiteness checks.
    """

    def __init__(
        self,
        block: nn.Module,
        num_classes: int,
        embedding: LabelEmbedding | None = None,
        ce_weight: float = 0.0,
        validate: bool = True,
    ) -> None:
        super().__init__()
        if ce_weight < 0:
            raise ValueError(f"ce_weight must be >= 0, got {ce_weight}")
        self.embedding = embedding if embedding is not None else LabelEmbedding(num_classes)
        if self.embedding.num_classes != num_classes:
            raise ValueError(
                f"embedding has {self.embedding.num_classes} classes, num_classes={num_classes}"
            )
        check_block(block)
        check_block_dims(block, self.embedding, "linear", "block")
        self.block = block
        self.num_classes = num_classes
        self.ce_weight = float(ce_weight)
        self.validate = validate

    def _ref(self) -> Tensor | None:
        return next(iter(self.block.parameters()), None)

    def velocity(self, x: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """v_θ(z_t, x, t), ``(B, e)``."""
        return apply_head(self.block(x, z, t), "linear", self.embedding.weight, "block")

    def loss(
        self,
        x: Tensor,
        y: Tensor,
        reduction: Reduction = "mean",
        generator: torch.Generator | None = None,
        t: Tensor | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Flow-matching loss (one t ~ U[0, 1] per example unless ``t`` ``(B,)`` is given).

        Args:
            x: ``(B, ...)`` inputs; y: ``(B,)`` labels in [0, K).
            reduction: ``'mean'`` | ``'sum'`` | ``'none'`` (``(B,)``).
            generator: optional RNG for t (unless given), then z_0.
            t: optional ``(B,)`` times in [0, 1].
            noise: optional ``(B, e)`` z_0 ~ N(0, I) used instead of ``generator``'s draw. With
                ``t`` and ``noise`` given, row i depends on example i alone.

        Returns:
            scalar, or ``(B,)`` for ``reduction='none'``.
        """
        u_y, t = label_targets_and_times(
            x, y, t, self.embedding, self.num_classes, self.validate, generator, self._ref()
        )
        if noise is None:
            z0 = standard_normal(tuple(u_y.shape), u_y, generator)
        else:
            z0 = given_noise(noise, tuple(u_y.shape), u_y)
        tc = t.to(u_y.dtype)[:, None]
        z_t = tc * u_y + (1 - tc) * z0
        v = self.velocity(x, z_t, t)
        per_example = (v - (u_y - z0)).pow(2).sum(-1)
        if self.ce_weight > 0:
            z1 = z_t + (1 - tc) * v
            per_example = per_example + self.ce_weight * F.cross_entropy(
                z1 @ self.embedding.weight.T, y, reduction="none"
            )
        if self.validate:
            raise_nonfinite(torch.isfinite(per_example).all().reshape(1), ["the FM loss"])
        return reduce(per_example, reduction)

    def predict_logits(
        self, x: Tensor, steps: int = 20, generator: torch.Generator | None = None
    ) -> Tensor:
        """Euler-integrate ``steps`` steps; logits −‖z_1 − u_k‖², ``(B, K)``."""
        steps = check_positive_int("steps", steps)
        if self.validate:
            check_inputs(x, None, self.num_classes, self._ref())
        W_E = self.embedding.weight.to(x.dtype)
        B = x.shape[0]
        z = standard_normal((B, self.embedding.dim), W_E, generator)
        dt = 1.0 / steps
        for n in range(steps):
            t = torch.full((B,), n * dt, dtype=x.dtype, device=x.device)
            v = self.velocity(x, z, t)
            if self.validate:
                raise_nonfinite(
                    torch.isfinite(v).all().reshape(1),
                    [f"the block output at Euler step {n + 1} (t={n * dt:.3f})"],
                )
            z = z + dt * v
        return -torch.cdist(z, W_E).pow(2)

    def forward(self, x: Tensor) -> Tensor:
        """= :meth:`predict_logits` with defaults."""
        return self.predict_logits(x)
