r"""EnsLoss: random calibrated loss-derivatives and the doubly stochastic update (Dai 2024).

Binary ERM with a convex margin loss :math:`\phi(z)`, :math:`z = y f(x)`, is consistent for any
classification-calibrated (CC) :math:`\phi` (convex, :math:`\phi'(0) < 0`). SGD only sees
:math:`\phi'`, so EnsLoss draws, at every step, random derivative values that satisfy the CC
conditions in derivative form (negative, non-decreasing in the margin) and uses them in place of
:math:`\phi'`: an ensemble of random CC losses inside one run, like Dropout for losses.

Per mini-batch of ``B`` margins (the reference ``losses.py``, class ``ensLoss``):

1. :math:`e_j \sim N(0, 1)`, :math:`g_j = -\mathrm{BC}^{-1}_\lambda(e_j)` (:func:`inverse_box_cox`);
2. sort :math:`g` ascending and clip it below at :math:`-c` (``clip``);
3. rank matching: the example with the r-th smallest margin gets the r-th smallest :math:`g`;
4. tail: for :math:`z_i > t` (``tail_start``), :math:`g_i \leftarrow g_i\, t / z_i`;
5. :math:`g_i \leftarrow g_i - \epsilon`; :math:`g` is a constant (detached);
6. surrogate :math:`J = \frac1B \sum_i g_i z_i`, whose gradient
   :math:`\frac1B \sum_i g_i y_i \nabla f(x_i)` is the doubly stochastic gradient.

The *value* of :math:`J` is not a loss (it can be negative and is random): log BCE or accuracy.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    as_real,
    check_float_tensor,
    check_positive,
    check_reduction,
    reduce,
)
from paperzoo.ensloss.margins import TargetFormat, binary_margins, check_target_format

__all__ = ["EnsLoss", "ensloss", "ensloss_derivatives", "inverse_box_cox"]


def _check_lam(lam: object) -> float:
    v = as_real("lam", lam)
    if not math.isfinite(v):
        raise ValueError(f"lam: expected a finite real number, got {lam!r}")
    return v


def inverse_box_cox(e: Tensor, lam: float) -> Tensor:
    r"""The inverse Box-Cox transform :math:`\mathrm{BC}^{-1}_\lambda(e)`, elementwise.

    .. math::
        \mathrm{BC}^{-1}_0(e) = e^{e}, \qquad
        \mathrm{BC}^{-1}_\lambda(e) = \max(1 + \lambda e, 0)^{1/\lambda}\ (\lambda \ne 0).

    Computed as :math:`\exp(\mathrm{log1p}(\max(\lambda e, -1)) / \lambda)`, which equals the
    power form and stays accurate in float32 for tiny :math:`\lambda` (there ``1 + λe`` rounds to
    1). For :math:`\lambda < 0` and :math:`1 + \lambda e \le 0` it is ``+inf`` (as the reference's
    ``0 ** (1/λ)``), never NaN; for :math:`\lambda > 0` it is 0 there.

    Args:
        e: any-shape float tensor.
        lam: :math:`\lambda`, a finite real.

    Returns:
        A tensor of ``e``'s shape and dtype, values in ``[0, inf]``.

    Raises:
        TypeError: ``e`` not a float tensor, ``lam`` not a real number. ValueError: ``lam`` not finite.
    """
    check_float_tensor("e", e)
    return _inverse_box_cox(e, _check_lam(lam))


def _inverse_box_cox(e: Tensor, lam: float) -> Tensor:
    """:func:`inverse_box_cox` without the argument checks (the hot path)."""
    if lam == 0.0:
        return torch.exp(e)
    return torch.exp(torch.log1p((lam * e).clamp_min(-1.0)) / lam)


def _check_options(clip: object, tail_start: object, eps: object) -> tuple[float, float, float]:
    return (
        check_positive("clip", clip),
        check_positive("tail_start", tail_start),
        check_positive("eps", eps, allow_zero=True),
    )


def _derivatives(
    margins: Tensor,
    lam: float,
    clip: float,
    tail_start: float,
    eps: float,
    generator: torch.Generator | None,
) -> Tensor:
    """Steps 1-5 on ``(B,)`` margins (no argument checks): ``(B,)`` detached derivatives."""
    z = margins.detach()
    dtype = torch.promote_types(z.dtype, torch.float32)
    z = z.to(dtype)
    # the normal draws are float32 in every precision, so a seed gives the same losses in each
    e = torch.randn(z.shape[0], generator=generator, device=z.device, dtype=torch.float32)
    g_sorted = torch.sort(-_inverse_box_cox(e.to(dtype), lam)).values.clamp_min(-clip)
    order = torch.argsort(z, stable=True)  # ties: by position (their order vanishes in expectation)
    g = torch.empty_like(g_sorted).scatter_(0, order, g_sorted)
    # tail: times t / z above t; below, t / max(z, t) = t / t = 1 exactly, so g is unchanged
    return g * (tail_start / z.clamp_min(tail_start)) - eps


def _check_generator(generator: object, like: Tensor) -> torch.Generator | None:
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator: expected a torch.Generator or None, got {type(generator).__name__}"
        )
    gd, ld = generator.device, like.device
    if gd.type != ld.type or (
        gd.index is not None and ld.index is not None and gd.index != ld.index
    ):
        raise ValueError(
            f"generator: expected a generator on the logits' device {ld}, got one on {gd} "
            f"(build it with torch.Generator(device={str(ld)!r}))"
        )
    return generator


def ensloss_derivatives(
    margins: Tensor,
    lam: float = 0.0,
    clip: float = 1.0,
    tail_start: float = 1.0,
    eps: float = 1e-6,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Random calibrated loss-derivatives :math:`g` for a batch of margins (steps 1-5 above).

    The result is negative (:math:`\le -\epsilon`), non-decreasing in the margin (so it is the
    derivative of a convex, calibrated loss at these margins), at least :math:`-c - \epsilon`, and
    for :math:`z > t` at most :math:`c\,t/z + \epsilon` in magnitude.

    Args:
        margins: ``(B,)`` float margins :math:`z_i = y_i f(x_i)` (``B >= 1``); only read, never
            differentiated.
        lam: :math:`\lambda` of :func:`inverse_box_cox` (0: log-normal magnitudes, the default of
            the reference).
        clip: :math:`c > 0`, the largest magnitude before the tail (reference: 1).
        tail_start: :math:`t > 0`, the margin above which derivatives decay like :math:`t/z`
            (reference: 1).
        eps: :math:`\epsilon \ge 0` subtracted at the end so every derivative is strictly negative.
        generator: the ``torch.Generator`` (on ``margins``' device) for the normal draws; ``None``
            uses torch's global generator.

    Returns:
        ``(B,)`` detached derivatives in ``promote(margins.dtype, float32)``.

    Raises:
        TypeError/ValueError: a non-float, non-1-D, empty or non-finite ``margins``; ``clip <= 0``;
            ``tail_start <= 0``; ``eps < 0``; a non-finite ``lam``; a generator on another device.

    Deviation: the normal draws are made in float32 whatever the margins' dtype (the reference
    draws float32 too), so one seed gives the same random losses in float32 and float64.
    Deviation: for ``tail_start`` :math:`t \ne 1` the tail multiplies by :math:`t/z` (continuous at
    :math:`t`, keeps monotonicity); the reference hard-codes :math:`t = 1` and :math:`1/z`, which is
    the same at the default. Ties in the margins are ranked by position (a stable sort; the
    reference's sort is unstable).
    """
    check_float_tensor("margins", margins, ndim=1, nonempty=True)
    if not bool(torch.isfinite(margins).all()):
        raise ValueError("margins: expected finite values, got NaN or inf")
    lam = _check_lam(lam)
    c, t, e = _check_options(clip, tail_start, eps)
    gen = _check_generator(generator, margins)
    return _derivatives(margins, lam, c, t, e, gen)


def _ensloss(
    logits: Tensor,
    target: Tensor,
    lam: float,
    clip: float,
    tail_start: float,
    eps: float,
    target_format: TargetFormat,
    generator: torch.Generator | None,
    reduction: Reduction,
    validate: bool,
) -> tuple[Tensor, Tensor]:
    """The one computation behind :func:`ensloss` and :class:`EnsLoss`: (surrogate, derivatives)."""
    check_reduction(reduction)
    lam = _check_lam(lam)
    c, t, e = _check_options(clip, tail_start, eps)
    _, z = binary_margins(logits, target, check_target_format(target_format), validate=validate)
    gen = _check_generator(generator, z)
    g = _derivatives(z, lam, c, t, e, gen).to(z.dtype)
    return reduce(g * z, reduction), g


def ensloss(
    logits: Tensor,
    target: Tensor,
    lam: float = 0.0,
    clip: float = 1.0,
    tail_start: float = 1.0,
    eps: float = 1e-6,
    target_format: TargetFormat = "01",
    generator: torch.Generator | None = None,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""The EnsLoss surrogate :math:`J = \frac1B \sum_i g_i z_i` for one batch (steps 1-6).

    Only its gradient is meaningful: :math:`\partial J / \partial f(x_i) = g_i y_i / B`, the doubly
    stochastic gradient (random batch, random calibrated loss). Each call draws new derivatives.

    Args:
        logits: ``(B,)`` or ``(B, 1)`` float scores, one logit per example (binary only).
        target: ``(B,)`` or ``(B, 1)`` targets in ``{0, 1}`` (``target_format="01"``, as the
            reference) or ``{-1, +1}`` (``"pm1"``); integer, bool or float dtype.
        lam, clip, tail_start, eps, generator: as in :func:`ensloss_derivatives`.
        target_format: ``"01"`` or ``"pm1"``.
        reduction: ``"mean"`` (the reference's, gradient :math:`g_i y_i / B`), ``"sum"``
            (gradient :math:`g_i y_i`) or ``"none"`` (the ``(B,)`` terms :math:`g_i z_i`).
        validate: check finiteness and target values (host syncs); ``False`` for a tight loop.

    Returns:
        A scalar in ``logits``' dtype (``(B,)`` for ``reduction="none"``).

    Raises:
        TypeError/ValueError: several logit columns (binary-only), bad targets, shape or device
            mismatch, an empty batch, NaN/inf logits, ``clip <= 0``, ``tail_start <= 0``,
            ``eps < 0``, an unknown ``reduction``.

    Deviation: the reference offers only the mean; ``"sum"`` and ``"none"`` are added for the
    contract of every paperzoo loss (``"none"`` rows still depend on the whole batch through the
    rank matching).
    """
    return _ensloss(
        logits, target, lam, clip, tail_start, eps, target_format, generator, reduction, validate
    )[0]


class EnsLoss(nn.Module):
    r"""EnsLoss as a module: ``EnsLoss()(logits, target)`` is :func:`ensloss` with this state.

    Drop it in place of ``BCEWithLogitsLoss`` in any loop and optimiser; ``backward`` gives the
    doubly stochastic gradient. ``lam`` is an attribute (a :class:`LambdaResampler` changes it);
    ``last_derivatives`` (a non-persistent buffer, ``(B,)``) holds the derivatives of the last
    call, for logging. Reference defaults: ``lam=0``, ``clip=1``, ``tail_start=1``, ``eps=1e-6``,
    0/1 targets, mean reduction.

    Args:
        lam, clip, tail_start, eps, target_format, reduction, validate: as in :func:`ensloss`.
        generator: the loss's own ``torch.Generator`` (on the logits' device), so a run is
            reproducible without touching the global RNG; ``None`` uses the global one.

    Shapes: ``logits`` ``(B,)`` or ``(B, 1)``, ``target`` the same; output a scalar (``(B,)``
    with ``reduction="none"``).

    Deviation: the reference moves the derivatives to ``"cuda"`` (hard-coded), clips with NumPy and
    draws from the global RNG; here everything stays on the logits' device in torch, with an
    optional generator.
    """

    last_derivatives: Tensor | None

    def __init__(
        self,
        lam: float = 0.0,
        clip: float = 1.0,
        tail_start: float = 1.0,
        eps: float = 1e-6,
        target_format: TargetFormat = "01",
        generator: torch.Generator | None = None,
        reduction: Reduction = "mean",
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.lam = _check_lam(lam)
        self.clip, self.tail_start, self.eps = _check_options(clip, tail_start, eps)
        self.target_format: TargetFormat = check_target_format(target_format)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator: expected a torch.Generator or None, got {type(generator).__name__}"
            )
        self.generator = generator
        self.reduction: Reduction = check_reduction(reduction)
        self.validate = validate
        self.register_buffer("last_derivatives", None, persistent=False)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The surrogate (scalar, or ``(B,)`` for ``reduction="none"``); see :func:`ensloss`."""
        out, g = _ensloss(
            logits,
            target,
            self.lam,
            self.clip,
            self.tail_start,
            self.eps,
            self.target_format,
            self.generator,
            self.reduction,
            self.validate,
        )
        self.last_derivatives = g
        return out

    def extra_repr(self) -> str:
        return (
            f"lam={self.lam}, clip={self.clip}, tail_start={self.tail_start}, eps={self.eps}, "
            f"target_format={self.target_format!r}, reduction={self.reduction!r}"
        )
