r"""AMCL's Barlow Twins form (experimental): per-entry temperatures on the cross-correlation.

Per head :math:`c`, with :math:`\mathcal{C}^c` the ``(d', d')`` cross-correlation of the two
batch-standardised views and temperatures computed by the temperature network from pairs of
standardised feature *columns* (vectors of length ``B``):

.. math::
    \ell^c = \sum_l \Big(1 - \frac{\mathcal{C}_{ll}}{\tau^+_l}\Big)^2
    + \lambda \sum_{l \ne m} \frac{\mathcal{C}_{lm}^2}{\tau^-_{lm}}
    + \beta \sum_l \Omega(\tau^+_l) - \beta \sum_{l \ne m} \Omega(\tau^-_{lm}).

The network's input width is the batch size, so a :class:`PairTemperature` built with ``dim = B``
only serves batches of exactly ``B``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.amcl.losses import _as_heads, _check_args
from paperzoo.amcl.temperature import PairTemperature, TemperatureNet, omega
from paperzoo.core.checks import Reduction, check_finite, check_positive, check_reduction, reduce

__all__ = ["AMCLBarlowTwinsLoss", "amcl_barlow_twins_loss"]


def _standardise(z: Tensor) -> Tensor:
    return (z - z.mean(1, keepdim=True)) / (z.std(1, keepdim=True) + 1e-9)


def _barlow(
    z1: Tensor,
    z2: Tensor,
    temperature: TemperatureNet,
    lambd: float,
    beta: float,
    kappa: float | None,
    validate: bool,
) -> Tensor:
    a, b = _as_heads("z1", z1), _as_heads("z2", z2)
    if a.shape != b.shape:
        raise ValueError(
            f"z1, z2: expected the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    n = a.shape[1]
    if n < 2:
        raise ValueError(f"z1: expected a batch of at least 2 (batch statistics), got {n}")
    if isinstance(temperature, PairTemperature) and temperature.dim != n:
        raise ValueError(
            f"z1: expected batch size {temperature.dim} (the temperature network's input width), got {n}"
        )
    temperature.check_heads(a.shape[0])
    check_finite("z1", a, validate=validate)
    check_finite("z2", b, validate=validate)
    sa, sb = _standardise(a), _standardise(b)  # (C, B, d')
    corr = sa.transpose(1, 2) @ sb / n  # (C, d', d')
    tau = temperature.pairwise(
        sa.transpose(1, 2).contiguous(), sb.transpose(1, 2).contiguous()
    )  # (C, d', d')
    d = corr.shape[-1]
    eye = torch.eye(d, dtype=torch.bool, device=corr.device)
    kap = float(d) if kappa is None else kappa
    diag_c, diag_t = torch.diagonal(corr, dim1=1, dim2=2), torch.diagonal(tau, dim1=1, dim2=2)
    off = ~eye
    on = (1 - diag_c / diag_t).square().sum(-1)
    off_term = (corr.square() / tau * off).sum((1, 2))
    reg = omega(diag_t, kap).sum(-1) - (omega(tau, kap) * off).sum((1, 2))
    return on + lambd * off_term + beta * reg  # (C,)


def amcl_barlow_twins_loss(
    z1: Tensor,
    z2: Tensor,
    temperature: TemperatureNet,
    *,
    lambd: float = 5e-3,
    beta: float = 0.1,
    omega_kappa: float | None = None,
    reduction: Reduction = "sum",
    validate: bool = True,
) -> Tensor:
    r"""AMCL Barlow Twins loss (see the module docstring); experimental.

    Args:
        z1, z2: projections ``(C, B, d')`` (or ``(B, d')``), not normalised; ``B >= 2``.
        temperature: a :class:`PairTemperature` with ``dim = B`` and ``num_heads = C``, or a
            :class:`ConstantTemperature` (``tau = 1``, ``beta = 0``: standard Barlow Twins).
        lambd: :math:`\lambda` (5e-3). beta: :math:`\beta \ge 0` (0.1). omega_kappa: :math:`\kappa`
            (default :math:`d'`).
        reduction: over heads: ``"sum"`` (default, the paper's), ``"mean"``, or ``"none"`` ``(C,)``.
        validate: NaN/inf checks (a host sync); False skips them.

    Returns:
        A scalar, or the per-head losses ``(C,)``.

    Raises:
        TypeError: non-float features. ValueError: shape mismatch, ``B < 2``, a batch size other
            than the temperature network's ``dim``, heads not matching, NaN/inf.

    Deviation: the standardisation uses the unbiased std plus 1e-9 (the v2 release; lightly's
    ``BarlowTwinsLoss`` uses the biased variance via ``batch_norm``, so it differs by ``B/(B-1)``);
    the loss is batch-level, so there are no per-example rows.
    """
    red = check_reduction(reduction)
    b, _, _, kap = _check_args(temperature, beta, "logsumexp", 1, omega_kappa)
    lam = check_positive("lambd", lambd, allow_zero=True)
    return reduce(_barlow(z1, z2, temperature, lam, b, kap, validate), red)


class AMCLBarlowTwinsLoss(nn.Module):
    """Module twin of :func:`amcl_barlow_twins_loss` (experimental; fixed batch size).

    ``forward(z1 (C, B, d'), z2 (C, B, d')) -> loss`` (scalar, or ``(C,)`` with ``"none"``).
    """

    def __init__(
        self,
        temperature: TemperatureNet,
        lambd: float = 5e-3,
        beta: float = 0.1,
        omega_kappa: float | None = None,
        reduction: Reduction = "sum",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.beta, _, _, self.omega_kappa = _check_args(
            temperature, beta, "logsumexp", 1, omega_kappa
        )
        self.lambd = check_positive("lambd", lambd, allow_zero=True)
        self.temperature = temperature
        self.reduction = check_reduction(reduction)
        self.validate = bool(validate)

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        """The loss of the two views' projections."""
        out = _barlow(
            z1, z2, self.temperature, self.lambd, self.beta, self.omega_kappa, self.validate
        )
        return reduce(out, self.reduction)
