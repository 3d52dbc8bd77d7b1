"""AMCL-SimCLR: a backbone, ``C`` projection heads, a temperature network and the AMCL loss in one
module; :class:`AMCLConfig` with the library defaults and the official (v2) parity preset."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from torch import Tensor, nn

from paperzoo.amcl.guard import CollapseGuard
from paperzoo.amcl.heads import MultiHeadProjector
from paperzoo.amcl.losses import AMCLNTXentLoss, Negatives
from paperzoo.amcl.temperature import (
    ConstantTemperature,
    PairTemperature,
    TemperatureForm,
    TemperatureNet,
)
from paperzoo.core.checks import check_choice, check_positive, check_positive_int

__all__ = ["AMCLConfig", "AMCLSimCLR"]


@dataclass(frozen=True)
class AMCLConfig:
    """Hyper-parameters of AMCL-SimCLR (library defaults; see :meth:`official` for the v2 preset).

    Attributes:
        num_heads: :math:`C` (3). out_dim: :math:`d'` (128). head_hidden: projector hidden (512).
        temp_hidden: temperature-network hidden width (128; None: ``out_dim``, the v2 ``dot`` form).
        tau_min, tau_max: temperature range (``[0.05, 1.0]``). beta: :math:`\\beta` (0.1).
        negatives, topk, include_positive, omega_kappa: as :func:`~paperzoo.amcl.amcl_ntxent_loss`.
        shared_temperature: one temperature network for all heads (paper figure; True).
        symmetric_temperature: average both input orders (False). form: ``"concat"`` or ``"dot"``.
        constant_tau: if set, a :class:`ConstantTemperature` replaces the network (SimCLR baselines).
    """

    num_heads: int = 3
    out_dim: int = 128
    head_hidden: int = 512
    temp_hidden: int | None = 128
    tau_min: float = 0.05
    tau_max: float = 1.0
    beta: float = 0.1
    negatives: Negatives = "logsumexp"
    topk: int = 100
    include_positive: bool = False
    omega_kappa: float | None = None
    shared_temperature: bool = True
    symmetric_temperature: bool = False
    form: TemperatureForm = "concat"
    constant_tau: float | None = None

    def __post_init__(self) -> None:
        check_positive_int("num_heads", self.num_heads)
        check_positive_int("out_dim", self.out_dim)
        check_positive_int("head_hidden", self.head_hidden)
        if self.temp_hidden is not None:
            check_positive_int("temp_hidden", self.temp_hidden)
        check_positive("tau_min", self.tau_min)
        if not self.tau_min < self.tau_max:
            raise ValueError(
                f"tau_min, tau_max: expected 0 < tau_min < tau_max, got {self.tau_min}, {self.tau_max}"
            )
        check_positive("beta", self.beta, allow_zero=True)
        check_choice("negatives", self.negatives, ("logsumexp", "max", "topk"))
        check_choice("form", self.form, ("concat", "dot"))
        if self.constant_tau is not None:
            check_positive("constant_tau", self.constant_tau)

    @classmethod
    def official(cls, **overrides: object) -> AMCLConfig:
        """The v2 release's SimCLR settings: ``tau in [1e-5, 2]``, ``beta = 1e-4``, top-100
        negatives, one shared ``dot``-form network with hidden width ``d'``. Pass ``beta=0.1`` for
        the 2024 files' value."""
        base = cls(
            tau_min=1e-5,
            tau_max=2.0,
            beta=1e-4,
            negatives="topk",
            topk=100,
            form="dot",
            temp_hidden=None,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    @classmethod
    def simclr(cls, tau: float = 0.5) -> AMCLConfig:
        """Plain SimCLR (NT-Xent): one head, constant ``tau``, ``beta = 0``, positive in the
        denominator."""
        return cls(num_heads=1, constant_tau=tau, beta=0.0, include_positive=True)

    def temperature(self) -> TemperatureNet:
        """The temperature module this config describes."""
        if self.constant_tau is not None:
            return ConstantTemperature(self.constant_tau)
        return PairTemperature(
            self.out_dim,
            hidden=self.temp_hidden if self.temp_hidden is not None else self.out_dim,
            tau_min=self.tau_min,
            tau_max=self.tau_max,
            num_heads=self.num_heads,
            shared=self.shared_temperature,
            symmetric=self.symmetric_temperature,
            form=self.form,
        )


class AMCLSimCLR(nn.Module):
    """SimCLR with AMCL: ``backbone -> C heads -> AMCL NT-Xent`` for two augmented views.

    Args:
        backbone: any module mapping a batch to features ``(B, feat_dim)`` (e.g. a lightly or
            torchvision ResNet with its classifier removed).
        feat_dim: the backbone's feature width.
        config: an :class:`AMCLConfig` (default: the library defaults).
        guard: an optional :class:`~paperzoo.amcl.guard.CollapseGuard` called on view 1's
            projections in training mode.

    ``forward(x1, x2) -> (loss, stats)``: ``stats`` is the loss's ``last_stats`` (per-head
    ``(C,)`` tensors). :meth:`fit_step` is a ``paperzoo.core.training.fit`` step function.
    """

    def __init__(
        self,
        backbone: nn.Module,
        feat_dim: int,
        config: AMCLConfig | None = None,
        guard: CollapseGuard | None = None,
    ) -> None:
        super().__init__()
        cfg = config or AMCLConfig()
        self.config = cfg
        self.backbone = backbone
        self.projector = MultiHeadProjector(
            check_positive_int("feat_dim", feat_dim), cfg.out_dim, cfg.num_heads, cfg.head_hidden
        )
        self.loss = AMCLNTXentLoss(
            cfg.temperature(),
            beta=cfg.beta,
            negatives=cfg.negatives,
            topk=cfg.topk,
            include_positive=cfg.include_positive,
            omega_kappa=cfg.omega_kappa,
            validate=False,
        )
        self.guard = guard

    def project(self, x: Tensor) -> Tensor:
        """``x -> (C, B, d')`` normalised projections."""
        return self.projector(self.backbone(x), validate=False)  # type: ignore[no-any-return]

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Mapping[str, Tensor]]:
        """The AMCL loss of two views of one batch, and its statistics."""
        z1, z2 = self.project(x1), self.project(x2)
        if self.guard is not None and self.training:
            self.guard(z1)
        loss = self.loss(z1, z2)
        return loss, self.loss.last_stats
