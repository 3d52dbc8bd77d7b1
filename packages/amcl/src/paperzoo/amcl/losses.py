r"""AMCL losses: pair-adaptive NT-Xent (SimCLR), InfoNCE and MoCo, summed over projection heads.

Per head :math:`c` and anchor :math:`i` with positive :math:`p` and candidate negatives
:math:`\mathcal{N}_i` (cosine similarities :math:`s`, temperatures :math:`\tau` from a
:class:`~paperzoo.amcl.temperature.TemperatureNet`, :math:`\Omega` the regulariser):

.. math::
    \ell_i^c = -\frac{s_{ip}}{\tau_{ip}} + \mathrm{agg}_{n \in \mathcal{N}_i}\frac{s_{in}}{\tau_{in}}
    + \beta\,\Omega(\tau_{ip}) - \beta\,\overline{\Omega}(\tau_{i\mathcal{N}}),

with ``negatives`` choosing :math:`\mathrm{agg}`: ``"logsumexp"`` (default; a smooth,
pair-adaptive NT-Xent, regulariser averaged over the negatives), ``"max"`` (the authors' table:
the hardest negative :math:`n^* = \arg\max_n s_{in}` chosen by raw similarity, :math:`\Omega(\tau_{in^*})`)
or ``"topk"`` (the v2 release: the mean of :math:`s/\tau` over the ``topk`` most similar negatives,
regulariser :math:`\sum_k (\log\tau_k + 1/\tau_k)`). The loss of an example is
:math:`\sum_c \ell^c`, averaged over the two view directions for SimCLR.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.amcl.temperature import TemperatureNet, omega
from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_finite,
    check_float_tensor,
    check_positive,
    check_positive_int,
    check_reduction,
    reduce,
)

__all__ = [
    "AMCLInfoNCELoss",
    "AMCLMoCoLoss",
    "AMCLNTXentLoss",
    "Negatives",
    "amcl_infonce_loss",
    "amcl_moco_loss",
    "amcl_ntxent_loss",
]

Negatives = Literal["logsumexp", "max", "topk"]
_NEGATIVES: tuple[Negatives, ...] = ("logsumexp", "max", "topk")
_AT_BOUND = 1e-3  # a temperature within this share of the range from a bound counts as "at" it


def _as_heads(name: str, z: object) -> Tensor:
    x = check_float_tensor(name, z)
    if x.dim() == 2:
        return x.unsqueeze(0)
    if x.dim() != 3:
        raise ValueError(f"{name}: expected (C, B, d') or (B, d'), got shape {tuple(x.shape)}")
    return x


def _normalize(name: str, z: Tensor, validate: bool) -> Tensor:
    """Cosine-normalise the last axis; warn (``validate``: one sync) on zero-norm rows."""
    check_finite(name, z, validate=validate)
    if validate and bool((z.norm(dim=-1) < 1e-12).any()):
        warnings.warn(f"{name}: zero-norm feature rows; they are left at zero", stacklevel=4)
    return F.normalize(z, dim=-1, eps=1e-12)


def _check_args(
    temperature: object, beta: float, negatives: str, topk: int, kappa: float | None
) -> tuple[float, Negatives, int, float | None]:
    if not isinstance(temperature, TemperatureNet):
        raise TypeError(
            f"temperature: expected a PairTemperature or ConstantTemperature, got {type(temperature).__name__}"
        )
    b = check_positive("beta", beta, allow_zero=True)
    mode: Negatives = check_choice("negatives", negatives, _NEGATIVES)  # type: ignore[arg-type]
    k = check_positive_int("topk", topk)
    kap = None if kappa is None else check_positive("omega_kappa", kappa)
    return b, mode, k, kap


def _amcl_terms(
    anchors: Tensor,
    cands: Tensor,
    pos: Tensor,
    excluded: Tensor,
    temperature: TemperatureNet,
    beta: float,
    kappa: float,
    negatives: Negatives,
    topk: int,
    include_positive: bool,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-head, per-anchor AMCL loss ``(C, N)`` and detached statistics.

    ``anchors (C, N, d')`` and ``cands (C, M, d')`` normalised; ``pos (N,)`` the positive's column;
    ``excluded (N, M)`` columns that are neither the positive nor a negative (the anchor itself).
    """
    c, n, _ = anchors.shape
    sim = anchors @ cands.transpose(1, 2)  # (C, N, M)
    rows = torch.arange(n, device=sim.device)
    is_pos = torch.zeros_like(excluded)
    is_pos[rows, pos] = True
    cand = ~excluded if include_positive else ~(excluded | is_pos)
    s_pos = sim[:, rows, pos]  # (C, N)
    if negatives == "logsumexp":
        tau = temperature.pairwise(anchors, cands)  # (C, N, M)
        tau_pos = tau[:, rows, pos]
        logits = (sim / tau).masked_fill(~cand, float("-inf"))
        neg = torch.logsumexp(logits, dim=-1)
        w = cand.to(sim.dtype)
        reg_neg = (omega(tau, kappa) * w).sum(-1) / w.sum(-1)
        tau_neg = tau.masked_select(cand.expand_as(tau)).view(c, -1)
    else:
        k = 1 if negatives == "max" else min(topk, int(cand.sum(-1).min()))
        masked = sim.masked_fill(~cand, float("-inf"))
        idx = masked.topk(k, dim=-1).indices  # (C, N, k), by raw similarity
        tau_pos = temperature.paired(anchors, cands[:, pos])
        tau_neg = temperature.gathered(anchors, cands, idx)  # (C, N, k)
        s_neg = torch.gather(sim, 2, idx)
        neg = (s_neg / tau_neg).mean(-1)
        reg = omega(tau_neg, kappa) if negatives == "max" else omega(tau_neg, 2.0)
        reg_neg = reg.mean(-1) if negatives == "max" else reg.sum(-1)
        tau_neg = tau_neg.reshape(c, -1)
    loss = -s_pos / tau_pos + neg + beta * (omega(tau_pos, kappa) - reg_neg)
    span = _AT_BOUND * max(temperature.tau_max - temperature.tau_min, 1e-12)
    with torch.no_grad():
        stats = {
            "tau_pos": tau_pos.mean(-1),
            "tau_neg": tau_neg.mean(-1),
            "pos_at_min": (tau_pos <= temperature.tau_min + span).to(sim.dtype).mean(-1),
            "pos_at_max": (tau_pos >= temperature.tau_max - span).to(sim.dtype).mean(-1),
            "neg_at_min": (tau_neg <= temperature.tau_min + span).to(sim.dtype).mean(-1),
            "neg_at_max": (tau_neg >= temperature.tau_max - span).to(sim.dtype).mean(-1),
        }
    return loss, stats


def _prepare_views(
    z1: object, z2: object, temperature: TemperatureNet, validate: bool
) -> tuple[Tensor, Tensor]:
    a, b = _as_heads("z1", z1), _as_heads("z2", z2)
    if a.shape != b.shape:
        raise ValueError(
            f"z1, z2: expected the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[1] == 0:
        raise ValueError(f"z1: expected a non-empty batch, got shape {tuple(a.shape)}")
    if a.shape[1] < 2:
        raise ValueError(
            f"z1: expected a batch of at least 2 (the negatives are the other examples), got {a.shape[1]}"
        )
    temperature.check_heads(a.shape[0])
    return _normalize("z1", a, validate), _normalize("z2", b, validate)


def _ntxent(
    z1: Tensor,
    z2: Tensor,
    temperature: TemperatureNet,
    beta: float,
    negatives: Negatives,
    topk: int,
    include_positive: bool,
    symmetric: bool,
    kappa: float | None,
    validate: bool,
) -> tuple[Tensor, dict[str, Tensor]]:
    a, b = _prepare_views(z1, z2, temperature, validate)
    n = a.shape[1]
    z = torch.cat([a, b], dim=1)  # (C, 2B, d')
    m = 2 * n
    if symmetric:
        anchors, pos = z, (torch.arange(m, device=z.device) + n) % m
        excluded = torch.eye(m, dtype=torch.bool, device=z.device)
    else:
        anchors, pos = a, torch.arange(n, device=z.device) + n
        excluded = torch.eye(n, m, dtype=torch.bool, device=z.device)
    kap = float(a.shape[-1]) if kappa is None else kappa
    loss, stats = _amcl_terms(
        anchors, z, pos, excluded, temperature, beta, kap, negatives, topk, include_positive
    )
    rows = loss.sum(0)
    if symmetric:
        rows = rows.view(2, n).mean(0)
    return rows, stats


def amcl_ntxent_loss(
    z1: Tensor,
    z2: Tensor,
    temperature: TemperatureNet,
    *,
    beta: float = 0.1,
    negatives: Negatives = "logsumexp",
    topk: int = 100,
    include_positive: bool = False,
    symmetric: bool = True,
    omega_kappa: float | None = None,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> Tensor:
    r"""AMCL's SimCLR loss: pair-adaptive NT-Xent over ``C`` heads (see the module docstring).

    Anchor :math:`i` of view 1 has the positive :math:`z_2[i]` and the :math:`2B - 2` negatives
    :math:`z_1[j], z_2[j]`, :math:`j \ne i`; with ``symmetric`` the view-2 anchors are added and
    the two directions averaged. With ``C = 1``, a constant temperature, ``beta = 0``,
    ``negatives="logsumexp"`` and ``include_positive=True`` this is exactly NT-Xent.

    Args:
        z1, z2: projections of the two views, ``(C, B, d')`` (or ``(B, d')`` for one head),
            ``B >= 2``; cosine-normalised here.
        temperature: a :class:`~paperzoo.amcl.temperature.PairTemperature` (with ``num_heads =
            C``) or :class:`~paperzoo.amcl.temperature.ConstantTemperature`.
        beta: :math:`\beta \ge 0`, the regulariser weight (default 0.1, the 2024 code's; the v2
            release's runs use 1e-4).
        negatives: ``"logsumexp"`` (default), ``"max"`` (the table) or ``"topk"`` (v2).
        topk: negatives kept in ``"topk"`` mode (default 100, capped at ``2B - 2``).
        include_positive: aggregate over the positive too (InfoNCE / NT-Xent's denominator).
        symmetric: both view directions (default) or view 1's anchors only.
        omega_kappa: :math:`\kappa` of :math:`\Omega` (default None: :math:`d'`).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per example ``(B,)``).
        validate: NaN/inf and zero-norm checks (one host sync each); False skips them.

    Returns:
        The loss (a scalar, or ``(B,)`` with ``reduction="none"``).

    Raises:
        TypeError: non-float features or a wrong temperature object.
        ValueError: shape mismatch, not 2-/3-D, ``B < 2``, heads not matching ``temperature``,
            ``beta < 0``, ``omega_kappa <= 0``, an unknown ``negatives`` mode, NaN/inf features.

    Deviation: ``"logsumexp"`` is the library default (the table's ``"max"`` and the v2
    ``"topk"`` collapsed the projections in the prototype; kept as parity modes); its negative
    regulariser, :math:`-\beta` times the mean of :math:`\Omega` over the negatives, is our choice
    (the table defines it for :math:`n^*` only).
    """
    red = check_reduction(reduction)
    b, mode, k, kap = _check_args(temperature, beta, negatives, topk, omega_kappa)
    rows, _ = _ntxent(z1, z2, temperature, b, mode, k, include_positive, symmetric, kap, validate)
    return reduce(rows, red)


def amcl_infonce_loss(
    z1: Tensor,
    z2: Tensor,
    temperature: TemperatureNet,
    *,
    beta: float = 0.1,
    negatives: Negatives = "logsumexp",
    topk: int = 100,
    symmetric: bool = True,
    omega_kappa: float | None = None,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> Tensor:
    """AMCL's InfoNCE form (LGP, CAN): :func:`amcl_ntxent_loss` with the positive among the
    candidates (``include_positive=True``). Shapes, arguments and errors as there."""
    return amcl_ntxent_loss(
        z1,
        z2,
        temperature,
        beta=beta,
        negatives=negatives,
        topk=topk,
        include_positive=True,
        symmetric=symmetric,
        omega_kappa=omega_kappa,
        reduction=reduction,
        validate=validate,
    )


def _moco(
    q: Tensor,
    k: Tensor,
    queue: Tensor,
    temperature: TemperatureNet,
    beta: float,
    negatives: Negatives,
    topk: int,
    include_positive: bool,
    kappa: float | None,
    validate: bool,
) -> tuple[Tensor, dict[str, Tensor]]:
    a, b = _as_heads("q", q), _as_heads("k", k)
    if a.shape != b.shape:
        raise ValueError(
            f"q, k: expected the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[1] == 0:
        raise ValueError(f"q: expected a non-empty batch, got shape {tuple(a.shape)}")
    bank = _as_heads("queue", queue)
    if bank.shape[0] != a.shape[0] or bank.shape[2] != a.shape[2] or bank.shape[1] == 0:
        raise ValueError(
            f"queue: expected (C, K, d') = ({a.shape[0]}, K >= 1, {a.shape[2]}) like q, got {tuple(bank.shape)}"
        )
    temperature.check_heads(a.shape[0])
    qn, kn = _normalize("q", a, validate), _normalize("k", b, validate)
    bn = _normalize("queue", bank, validate)
    n = a.shape[1]
    cands = torch.cat([kn, bn], dim=1)  # (C, B + K, d'): own key, then the queue
    pos = torch.arange(n, device=a.device)
    excluded = torch.zeros(n, cands.shape[1], dtype=torch.bool, device=a.device)
    excluded[:, :n] = ~torch.eye(n, dtype=torch.bool, device=a.device)  # other queries' keys
    kap = float(a.shape[-1]) if kappa is None else kappa
    loss, stats = _amcl_terms(
        qn, cands, pos, excluded, temperature, beta, kap, negatives, topk, include_positive
    )
    return loss.sum(0), stats


def amcl_moco_loss(
    q: Tensor,
    k: Tensor,
    queue: Tensor,
    temperature: TemperatureNet,
    *,
    beta: float = 0.1,
    negatives: Negatives = "logsumexp",
    topk: int = 100,
    include_positive: bool = False,
    omega_kappa: float | None = None,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> Tensor:
    r"""AMCL's MoCo loss: query :math:`q_i` against its key :math:`k_i` and a per-head queue.

    Args:
        q: queries ``(C, B, d')`` (or ``(B, d')``).
        k: keys (momentum encoder), the shape of ``q``; the other queries' keys are not negatives.
        queue: per-head negative bank ``(C, K, d')`` (or ``(K, d')``).
        temperature, beta, negatives, topk, include_positive, omega_kappa, reduction, validate: as
            in :func:`amcl_ntxent_loss`; with a constant temperature, ``beta = 0``,
            ``"logsumexp"`` and ``include_positive=True`` this is MoCo's InfoNCE.

    Returns:
        The loss (a scalar, or ``(B,)`` with ``reduction="none"``).

    Raises:
        TypeError/ValueError: as :func:`amcl_ntxent_loss`, and a queue whose heads or
            dimension differ from ``q``'s.
    """
    red = check_reduction(reduction)
    b, mode, kk, kap = _check_args(temperature, beta, negatives, topk, omega_kappa)
    rows, _ = _moco(q, k, queue, temperature, b, mode, kk, include_positive, kap, validate)
    return reduce(rows, red)


class AMCLNTXentLoss(nn.Module):
    """Module twin of :func:`amcl_ntxent_loss`; owns the temperature network.

    ``forward(z1 (C, B, d'), z2 (C, B, d')) -> loss``; after each call ``last_stats`` holds
    detached per-head ``(C,)`` tensors: ``tau_pos``/``tau_neg`` (mean temperatures) and
    ``pos_at_min``, ``pos_at_max``, ``neg_at_min``, ``neg_at_max`` (share of temperatures within
    0.1% of the range from a bound: watch these for temperature collapse).
    """

    def __init__(
        self,
        temperature: TemperatureNet,
        beta: float = 0.1,
        negatives: Negatives = "logsumexp",
        topk: int = 100,
        include_positive: bool = False,
        symmetric: bool = True,
        omega_kappa: float | None = None,
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.beta, self.negatives, self.topk, self.omega_kappa = _check_args(
            temperature, beta, negatives, topk, omega_kappa
        )
        self.temperature = temperature
        self.include_positive = bool(include_positive)
        self.symmetric = bool(symmetric)
        self.reduction = check_reduction(reduction)
        self.validate = bool(validate)
        self.last_stats: dict[str, Tensor] = {}

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        """The loss of the two views' projections (see :func:`amcl_ntxent_loss`)."""
        rows, self.last_stats = _ntxent(
            z1,
            z2,
            self.temperature,
            self.beta,
            self.negatives,
            self.topk,
            self.include_positive,
            self.symmetric,
            self.omega_kappa,
            self.validate,
        )
        return reduce(rows, self.reduction)


class AMCLInfoNCELoss(AMCLNTXentLoss):
    """Module twin of :func:`amcl_infonce_loss`: :class:`AMCLNTXentLoss` with the positive among the
    candidates. ``forward(z1 (C, B, d'), z2 (C, B, d')) -> loss``."""

    def __init__(
        self,
        temperature: TemperatureNet,
        beta: float = 0.1,
        negatives: Negatives = "logsumexp",
        topk: int = 100,
        symmetric: bool = True,
        omega_kappa: float | None = None,
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__(
            temperature, beta, negatives, topk, True, symmetric, omega_kappa, reduction, validate
        )


class AMCLMoCoLoss(nn.Module):
    """Module twin of :func:`amcl_moco_loss` with per-head queues (memory ``C x K x d'``).

    Args:
        temperature: the temperature network (``num_heads = C``).
        dim: :math:`d'`; num_heads: :math:`C`; queue_size: :math:`K` (default 4096).
        Others as :func:`amcl_moco_loss`.

    ``forward(q (C, B, d'), k (C, B, d')) -> loss`` uses the current queue; call
    :meth:`enqueue` with the (detached) keys afterwards. The queue starts as random unit vectors.
    """

    queue: Tensor
    ptr: Tensor

    def __init__(
        self,
        temperature: TemperatureNet,
        dim: int,
        num_heads: int = 3,
        queue_size: int = 4096,
        beta: float = 0.1,
        negatives: Negatives = "logsumexp",
        topk: int = 100,
        include_positive: bool = False,
        omega_kappa: float | None = None,
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.beta, self.negatives, self.topk, self.omega_kappa = _check_args(
            temperature, beta, negatives, topk, omega_kappa
        )
        self.temperature = temperature
        d = check_positive_int("dim", dim)
        c = check_positive_int("num_heads", num_heads)
        size = check_positive_int("queue_size", queue_size)
        self.include_positive = bool(include_positive)
        self.reduction = check_reduction(reduction)
        self.validate = bool(validate)
        self.register_buffer("queue", F.normalize(torch.randn(c, size, d), dim=-1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.last_stats: dict[str, Tensor] = {}

    def forward(self, q: Tensor, k: Tensor) -> Tensor:
        """The loss of queries ``q`` against keys ``k`` and the queue (see :func:`amcl_moco_loss`)."""
        rows, self.last_stats = _moco(
            q,
            k,
            self.queue.to(q.dtype),
            self.temperature,
            self.beta,
            self.negatives,
            self.topk,
            self.include_positive,
            self.omega_kappa,
            self.validate,
        )
        return reduce(rows, self.reduction)

    @torch.no_grad()
    def enqueue(self, k: Tensor) -> None:
        """Write the normalised keys ``k (C, B, d')`` into the ring buffer (oldest first)."""
        keys = _as_heads("k", k)
        c, size, d = self.queue.shape
        if keys.shape[0] != c or keys.shape[2] != d:
            raise ValueError(f"k: expected (C, B, d') = ({c}, B, {d}), got {tuple(keys.shape)}")
        keys = F.normalize(keys.detach(), dim=-1).to(self.queue.dtype)
        n = min(keys.shape[1], size)
        idx = (self.ptr + torch.arange(n, device=self.queue.device)) % size
        self.queue[:, idx] = keys[:, -n:]
        self.ptr.copy_((self.ptr + n) % size)
