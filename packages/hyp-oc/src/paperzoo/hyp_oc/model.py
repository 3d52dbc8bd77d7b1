r"""The Hyp-OC head: MLP -> clip -> Poincaré ball -> hyperbolic MLR, trained with Hyp-CE + Hyp-PC
on real features and pseudo-negatives (and its Euclidean twin, ``geometry="euclidean"``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_positive,
    check_positive_int,
)
from paperzoo.core.models import mlp
from paperzoo.core.training import Callback, TrainState
from paperzoo.hyp_oc.layers import HyperbolicMLR, ToPoincare
from paperzoo.hyp_oc.losses import PCDistance, hyp_ce_loss, hyp_pc_loss
from paperzoo.hyp_oc.ops import check_curvature, clip_norm
from paperzoo.hyp_oc.sampler import MeanMode, PseudoNegativeSampler

__all__ = ["Geometry", "HypOC", "SamplerEpochCallback"]

Geometry = Literal["hyperbolic", "euclidean"]


class HypOC(nn.Module):
    r"""Hyp-OC: a one-class (bona-fide only) classifier head on encoder features ``(N, F)``.

    Training step on a real batch ``h`` ``(B, F)``: update the sampler's running mean, draw ``B``
    pseudo-negatives, run ``[h; noise]`` through the MLP ``F -> hidden... -> ball_dim`` (ReLU after
    every layer, as official), :class:`~paperzoo.hyp_oc.layers.ToPoincare` (clip ``r``, learned base
    point), :class:`~paperzoo.hyp_oc.layers.HyperbolicMLR` (2 classes), and minimise

    .. math:: L = L_{\text{Hyp-CE}} + w_{PC}\, L_{\text{Hyp-PC}}(z_{1..B}).

    The spoof score is ``softmax(logits)[:, 1]`` (pseudo-negative class).

    Args:
        encoder_dim: ``F``, the encoder feature dimension (official 4096, VGG-Face fc6).
        hidden: hidden widths of the MLP (official ``(8192, 1000, 512)``).
        ball_dim: ``d``, the MLP output and ball dimension (official 128).
        c: curvature magnitude ``> 0`` (official 0.1).
        clip_r: feature-clipping radius (official 2), ``None`` for none.
        alpha: running-mean weight (official 0.8).
        std: pseudo-negative σ in feature units, or ``"auto"`` (see
            :class:`~paperzoo.hyp_oc.sampler.PseudoNegativeSampler`).
        pc_weight: :math:`w_{PC}` (official 1). Deviation: exposed; on the digits reproduction
            weight 1 collapses the real ball points (see the README), 0.1 does not.
        geometry: ``"hyperbolic"`` or ``"euclidean"`` (the twin: clipped Euclidean features, a
            linear 2-class classifier, Euclidean pairwise confusion).
        mean_mode: ``"ema"`` or ``"official"`` (sampler).
        pc_distance: ``"artanh"`` or ``"official_atan"`` (ignored for the Euclidean twin).
        mobius_eps: see :func:`paperzoo.hyp_oc.ops.mobius_add` (official ``1e-5``).
        learn_base_point, riemannian_grad: see :class:`~paperzoo.hyp_oc.layers.ToPoincare`.
        final_relu: ReLU after the last MLP layer (official ``True``).
        generator: for the pseudo-negatives.
        validate: input checks (NaN/inf; host syncs) in the forward passes.

    Attributes:
        last_stats: after each :meth:`training_step`: ``ce``, ``pc`` and ``max_norm`` (largest
            ``‖z‖``) as detached 0-D tensors.
    """

    def __init__(
        self,
        encoder_dim: int,
        hidden: Sequence[int] = (512, 128),
        ball_dim: int = 128,
        c: float = 0.1,
        clip_r: float | None = 2.0,
        alpha: float = 0.8,
        std: float | Literal["auto"] = 1.0,
        pc_weight: float = 1.0,
        geometry: Geometry = "hyperbolic",
        mean_mode: MeanMode = "ema",
        pc_distance: PCDistance = "artanh",
        mobius_eps: float = 0.0,
        learn_base_point: bool = True,
        riemannian_grad: bool = True,
        final_relu: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.encoder_dim = check_positive_int("encoder_dim", encoder_dim)
        self.ball_dim = check_positive_int("ball_dim", ball_dim)
        widths = [self.encoder_dim, *(int(w) for w in hidden), self.ball_dim]
        self.c = check_curvature(c)
        self.clip_r = None if clip_r is None else check_positive("clip_r", clip_r)
        self.pc_weight = check_positive("pc_weight", pc_weight, allow_zero=True)
        self.geometry: Geometry = check_choice("geometry", geometry, ("hyperbolic", "euclidean"))
        self.pc_distance: PCDistance = check_choice(
            "pc_distance", pc_distance, ("artanh", "official_atan")
        )
        self.mobius_eps = check_positive("mobius_eps", mobius_eps, allow_zero=True)
        self.validate = bool(validate)
        layers: list[nn.Module] = list(mlp(widths))
        if final_relu:
            layers.append(nn.ReLU())
        self.head = nn.Sequential(*layers)
        self.to_ball: ToPoincare | None = None
        self.classifier: nn.Module
        if self.geometry == "hyperbolic":
            self.to_ball = ToPoincare(
                self.c,
                self.clip_r,
                learn_base_point=learn_base_point,
                dim=self.ball_dim,
                riemannian_grad=riemannian_grad,
                mobius_eps=self.mobius_eps,
                validate=False,
            )
            self.classifier = HyperbolicMLR(
                self.ball_dim, 2, self.c, mobius_eps=self.mobius_eps, validate=False
            )
        else:
            self.classifier = nn.Linear(self.ball_dim, 2)
        self.sampler = PseudoNegativeSampler(
            self.encoder_dim, alpha=alpha, std=std, mean_mode=mean_mode, generator=generator
        )
        self.last_stats: dict[str, Tensor] = {}

    def _check(self, name: str, h: Tensor) -> None:
        check_float_tensor(name, h, 2, nonempty=True)
        if h.shape[1] != self.encoder_dim:
            raise ValueError(
                f"{name}: expected {self.encoder_dim} features (encoder_dim), "
                f"got shape {tuple(h.shape)}"
            )
        check_finite(name, h, validate=self.validate)

    def _embed(self, h: Tensor) -> Tensor:
        x = self.head(h)
        if self.to_ball is not None:
            return self.to_ball(x)  # type: ignore[no-any-return]
        return x if self.clip_r is None else clip_norm(x, self.clip_r)

    def embed(self, h: Tensor) -> Tensor:
        """Encoder features ``(N, F)`` -> ball points (Euclidean twin: clipped features) ``(N, d)``."""
        self._check("h", h)
        return self._embed(h)

    def forward(self, h: Tensor) -> Tensor:
        """Encoder features ``(N, F)`` -> logits ``(N, 2)`` (column 1: spoof / pseudo-negative)."""
        self._check("h", h)
        return self.classifier(self._embed(h))  # type: ignore[no-any-return]

    @torch.no_grad()
    def score(self, h: Tensor) -> Tensor:
        """Spoof probability ``softmax(logits)[:, 1]`` of features ``(N, F)`` -> ``(N,)``."""
        return self.forward(h).softmax(-1)[:, 1]

    def training_step(self, h_real: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """One Hyp-OC step on a batch of real features ``(B, F)`` (``B`` even for Hyp-PC).

        Returns:
            ``(loss, parts)``: the scalar total loss and detached ``ce``, ``pc``, ``max_norm``.

        Raises:
            ValueError: wrong ``F``, NaN/inf, odd ``B`` with ``pc_weight > 0``.
        """
        self._check("h_real", h_real)
        b = h_real.shape[0]
        self.sampler.update(h_real, validate=False)
        noise = self.sampler.sample(b).to(h_real.dtype)
        z = self._embed(torch.cat([h_real, noise]))
        logits = self.classifier(z)
        target = torch.cat(
            [
                torch.zeros(b, dtype=torch.long, device=z.device),
                torch.ones(b, dtype=torch.long, device=z.device),
            ]
        )
        ce = hyp_ce_loss(logits, target, validate=False)
        loss = ce
        pc = torch.zeros((), dtype=ce.dtype, device=ce.device)
        if self.pc_weight > 0:
            pc = hyp_pc_loss(
                z[:b],
                self.c,
                distance="euclidean" if self.geometry == "euclidean" else self.pc_distance,
                mobius_eps=self.mobius_eps,
                validate=False,
            )
            loss = ce + self.pc_weight * pc
        self.last_stats = {
            "ce": ce.detach(),
            "pc": pc.detach(),
            "max_norm": z.detach().norm(dim=-1).max(),
        }
        return loss, self.last_stats

    @staticmethod
    def fit_step(model: nn.Module, batch: Any, device: torch.device) -> Mapping[str, Tensor]:
        """A :func:`paperzoo.core.training.fit` step function: ``batch = (h_real, _)``."""
        inner = model.module if hasattr(model, "module") else model
        assert isinstance(inner, HypOC)
        loss, parts = inner.training_step(batch[0].to(device))
        return {"loss": loss, **parts}


class SamplerEpochCallback(Callback):
    """Calls ``sampler.new_epoch()`` at each epoch start (the official epoch reset of the
    previous batch mean; no effect in ``"ema"`` mode)."""

    def __init__(self, sampler: PseudoNegativeSampler) -> None:
        self.sampler = sampler

    def on_epoch_begin(self, state: TrainState) -> None:
        """Reset the sampler's previous batch mean (official mode)."""
        self.sampler.new_epoch()
