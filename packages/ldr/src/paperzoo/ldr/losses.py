r"""Label-distributionally robust (LDR) losses of Zhu, Ying & Yang (ICML 2023, arXiv 2112.14869).

Notation (the paper's). Logits :math:`f \in \mathbb{R}^K`, label :math:`y`, margin :math:`c \ge 0`,
normalised scores :math:`\tilde f = N(f)` and the margin-augmented score differences

.. math:: z_k = c\,[k \ne y] + \tilde f_k - \tilde f_y \qquad (z_y = 0).

The LDR loss takes the worst case over a label distribution :math:`p` on the K classes,

.. math:: \ell(f, y) = \max_{p \in \Omega} \sum_k p_k z_k - \lambda R(p),

and its members have closed forms:

* LDR-KL (:math:`\Omega` = simplex, :math:`R = \mathrm{KL}(p \,\|\, \text{uniform})`):
  :math:`\ell = \lambda \log \frac1K \sum_k e^{z_k/\lambda}`, worst case
  :math:`p^* = \mathrm{softmax}(z/\lambda)`.
  With :math:`c = 0, \lambda = 1` and no normalisation it is cross-entropy minus :math:`\log K`.
* :math:`\lambda \to 0`: Crammer-Singer :math:`\max(0, \max_{k \ne y} c + \tilde f_k - \tilde f_y)`.
* :math:`\lambda \to \infty`: :math:`\mathrm{mean}_k z_k`, symmetric
  (:math:`\sum_y \ell(f, y) = c(K-1)` for every f), hence robust to label noise.
* Box set :math:`\Omega = [0,1]^K`, no regulariser: Weston-Watkins
  :math:`\sum_{k \ne y} (c + \tilde f_k - \tilde f_y)_+`.

ALDR-KL learns one :math:`\lambda_i` per training example (see :class:`ALDRKLLoss`).

Theory (the paper's claims, for orientation): LDR-KL with :math:`\lambda > 0` is top-k
consistent for every k; a symmetric loss that is top-1 consistent cannot be top-k consistent for
all k >= 2; large :math:`\lambda` makes the loss nearly symmetric and so robust to label noise;
ALDR-KL adapts :math:`\lambda_i` to the label uncertainty of each example.

The scores are normalised inside the loss (the official code does so): the loss does not see the raw
logits unless ``normalize="none"``.

Why one module (over 500 lines): it is one concept, the LDR loss family. Every member -- LDR-KL,
its closed-form limits (Crammer-Singer, Weston-Watkins), the worst-case distribution and the
adaptive ALDR-KL -- reads the same normalised, margin-augmented differences through the same input
handling (:func:`class_indices`, the logits check, the half-precision upcast), and ALDR-KL's loss
*is* the fused LDR-KL kernel at per-example temperatures. Split across modules these private
pieces would be imported from one module into another; here each member stays a few lines over
them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Final, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    check_positive_int,
    check_reduction,
    reduce,
)

__all__ = [
    "NORMALIZATIONS",
    "ALDRKLLoss",
    "CrammerSingerLoss",
    "LDRKLLoss",
    "WestonWatkinsLoss",
    "aldr_kl_loss",
    "class_indices",
    "crammer_singer_loss",
    "ldr_kl_loss",
    "ldr_loss",
    "margin_differences",
    "normalize_scores",
    "weston_watkins_loss",
    "worst_case_distribution",
]

EPS = 1e-12
"""Added to the normaliser's denominator so that all-zero logits give zeros, not NaN."""

_LOW_PRECISION = (torch.float16, torch.bfloat16)

NORMALIZATIONS: Final[tuple[str, ...]] = ("softplus_mean", "l1", "softplus_l1", "none")
"""The score normalisations of :func:`normalize_scores`."""


def _check_logits(logits: object, *, validate: bool = True, name: str = "logits") -> Tensor:
    """``logits`` if it is a floating (B, K) tensor with B >= 1, K >= 2 (and finite, if ``validate``).

    Built on :mod:`paperzoo.core.checks`; K >= 2 is the LDR family's own need (it divides by log K).
    """
    x = check_float_tensor(name, logits, ndim=2, nonempty=True)
    if x.shape[1] < 2:
        raise ValueError(f"{name}: expected (B, K) with K >= 2 classes, got shape {tuple(x.shape)}")
    if validate:
        # one reduction pass instead of isfinite's several elementwise passes: the smallest and
        # largest entries are NaN (propagated) or infinite exactly when some entry is
        check_finite(name, torch.stack(x.aminmax()))
    return x


def class_indices(target: Tensor, logits: Tensor, *, validate: bool = True) -> Tensor:
    """``target`` as (B,) long class indices for the (B, K) ``logits``.

    Args:
        target: (B,) integer class indices in [0, K), or a (B, K) one-hot (0/1 with one 1 per row;
            any dtype, bool included). Soft labels are rejected.
        logits: (B, K) scores the target belongs to (only its shape and device are read).
        validate: check the index range and the one-hot values (host-device syncs).

    Returns:
        (B,) ``torch.long`` class indices on ``logits``' device.

    Raises:
        TypeError: ``target`` is not a tensor, or a (B,) target of a non-integer dtype.
        ValueError: another shape or device, an index out of range, or a non-one-hot (B, K) row.
    """
    batch, num_classes = logits.shape
    if isinstance(target, Tensor) and target.dim() == 2:
        if target.device != logits.device:
            raise ValueError(
                f"target: expected device {logits.device} (like the logits), got {target.device}"
            )
        if tuple(target.shape) != (batch, num_classes):
            raise ValueError(
                f"target: expected a one-hot of shape {(batch, num_classes)} like the logits, "
                f"got {tuple(target.shape)}"
            )
        if validate:
            t = target.to(torch.float64)
            if not bool(((t == 0) | (t == 1)).all()) or not bool((t.sum(dim=1) == 1).all()):
                raise ValueError(
                    "target: expected a one-hot (only 0/1, exactly one 1 per row), got other "
                    "values (soft labels are not supported)"
                )
        if target.dtype == torch.bool:  # argmax has no bool kernel
            target = target.to(torch.uint8)
        return target.argmax(dim=1)
    if isinstance(target, Tensor) and target.dim() != 1:
        raise ValueError(
            f"target: expected ({batch},) class indices or ({batch}, {num_classes}) one-hot, "
            f"got shape {tuple(target.shape)}"
        )
    index = check_labels(
        "target", target, n=batch, num_classes=num_classes, like=logits, validate=validate
    )
    return index.long()


def _upcast(logits: Tensor) -> Tensor:
    """float16/bfloat16 logits -> float32 (differentiable cast); other dtypes unchanged (no copy).

    In half precision EPS underflows to 0 (all-zero rows would give 0/0), softplus of logits below
    about -17 underflows to 0 (same 0/0), and lambda > 65504 overflows; so the losses compute in
    float32, as autocast does for ``F.cross_entropy``, and return the input's dtype.
    """
    return logits.float() if logits.dtype in _LOW_PRECISION else logits


def normalize_scores(logits: Tensor, normalize: str = "softplus_mean") -> Tensor:
    r"""Score normalisation :math:`\tilde f = N(f)` of the official code, row-wise on (B, K) logits.

    * ``"softplus_mean"`` (LDR-KL default): :math:`\mathrm{softplus}(f) / \mathrm{mean}_k\,
      \mathrm{softplus}(f_k)` -- positive scores with mean 1 (official ``LDRLoss_V1``).
    * ``"l1"`` (ALDR-KL default): :math:`f / (\lVert f \rVert_1 / K)` -- invariant to ``f -> a f``,
      a > 0 (official ``ALDRLoss_V1``). Being scale invariant, its gradient grows as
      :math:`1 / \mathrm{mean}_k |f_k|`: near-zero logits (e.g. a zero-initialised last layer) get
      very large gradients, about :math:`1/\mathrm{EPS} = 10^{12}` at f = 0 (inf in float16).
    * ``"softplus_l1"``: softplus, then ``"l1"`` (official ``ALDRLoss_V1(softplus=True)``, used for
      CIFAR-100). Softplus is positive, so this equals ``"softplus_mean"``; the name is kept so that
      configurations read like the official code.
    * ``"none"``: the raw logits.

    Deviation: ``EPS = 1e-12`` is added to every denominator (the official code adds none), so that
    all-zero logits give finite scores and gradients. float16/bfloat16 logits are normalised in
    float32 (EPS underflows in float16) and the scores returned in the input's dtype.

    Raises ``TypeError`` / ``ValueError`` unless ``logits`` is a floating (B, K) tensor, B >= 1,
    K >= 2 (values are not checked: NaN in, NaN out).
    """
    check_choice("normalize", normalize, NORMALIZATIONS)
    return _normalize(_check_logits(logits, validate=False), normalize)


def _normalize(logits: Tensor, normalize: str) -> Tensor:
    """:func:`normalize_scores` on checked logits (no checks)."""
    if normalize == "none":
        return logits
    x = _upcast(logits)
    if normalize == "l1":
        return (x / (x.abs().mean(dim=1, keepdim=True) + EPS)).to(logits.dtype)
    positive = F.softplus(x)
    return (positive / (positive.mean(dim=1, keepdim=True) + EPS)).to(logits.dtype)


def margin_differences(
    scores: Tensor, target: Tensor, margin: float, *, validate: bool = True
) -> Tensor:
    r"""Return :math:`z_{ik} = c\,[k \ne y_i] + s_{ik} - s_{i y_i}` (B, K); :math:`z_{i y_i} = 0`.

    ``scores`` (B, K) are the (already normalised) scores, ``target`` (B,) integer class indices
    in [0, K) or a (B, K) one-hot, ``margin`` :math:`c \ge 0`. ``validate=False`` skips the
    range and one-hot checks (which cost host-device syncs).
    """
    margin = check_positive("margin", margin, allow_zero=True)
    scores = _check_logits(scores, validate=False, name="scores")
    return _margins(scores, class_indices(target, scores, validate=validate), margin)


def _margins(scores: Tensor, target: Tensor, margin: float) -> Tensor:
    """:func:`margin_differences` for checked (B, K) scores and (B,) long indices (no checks)."""
    index = target.unsqueeze(1)
    z = scores - (scores.gather(1, index) - margin)
    return z.scatter_(1, index, 0.0)  # in place on a fresh tensor: one (B, K) pass less


def _checked(
    logits: Tensor, target: Tensor, normalize: str, reduction: Reduction, validate: bool
) -> tuple[Tensor, Tensor, torch.dtype]:
    """Checked logits, upcast to float32 if half precision (see :func:`_upcast`), indices, and
    the input's dtype (the dtype of the result)."""
    check_reduction(reduction)
    check_choice("normalize", normalize, NORMALIZATIONS)
    logits = _check_logits(logits, validate=validate)
    index = class_indices(target, logits, validate=validate)
    return _upcast(logits), index, logits.dtype


def _prepare(
    logits: Tensor, target: Tensor, normalize: str, reduction: Reduction, validate: bool
) -> tuple[Tensor, Tensor, torch.dtype]:
    logits, index, dtype = _checked(logits, target, normalize, reduction, validate)
    return _normalize(logits, normalize), index, dtype


def _normalized_copy(logits: Tensor, normalize: str) -> tuple[Tensor, Tensor | None]:
    """A fresh (B, K) tensor of normalised scores (safe to modify in place) and the (B, 1) divisor."""
    if normalize == "none":
        return logits.clone(), None
    if normalize == "l1":
        denom = logits.abs().mean(dim=1, keepdim=True) + EPS
        return logits / denom, denom
    positive = F.softplus(logits)
    denom = positive.mean(dim=1, keepdim=True) + EPS
    return positive.div_(denom), denom


def _scaled_margins_(scores: Tensor, index: Tensor, margin: float, lam: float | Tensor) -> Tensor:
    """In place: scores -> z / lam (z_y = 0); ``lam`` a float or a (B, 1) tensor."""
    scores.sub_(scores.gather(1, index) - margin).scatter_(1, index, 0.0)
    return scores.div_(lam)


class _LDRKLRecomputeFunction(torch.autograd.Function):
    """The previous LDR-KL kernel (kept as the reference of the fused one, ``impl="recompute"``).

    Forward keeps only the logits and the (B,) log-sum-exp; backward recomputes the normalisation
    and the exponentials. dl/ds = softmax(z / lam) - e_y (as for cross-entropy); then through the
    normalisation: ``l1``: (g - sign(f) <g, s> / K) / m; ``softplus_mean``:
    (g - <g, s> / K) / m * sigmoid(f).
    """

    @staticmethod
    def forward(
        ctx: Any, logits: Tensor, index: Tensor, lam: Tensor, margin: float, normalize: str
    ) -> Tensor:
        scores, _ = _normalized_copy(logits, normalize)
        lse = torch.logsumexp(_scaled_margins_(scores, index, margin, lam), dim=1)
        ctx.save_for_backward(logits, index, lam, lse)
        ctx.margin, ctx.normalize = margin, normalize
        return lam.squeeze(1) * (lse - math.log(logits.shape[1]))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        logits, index, lam, lse = ctx.saved_tensors
        scores, denom = _normalized_copy(logits, ctx.normalize)
        grad = _scaled_margins_(scores.clone(), index, ctx.margin, lam)
        grad = (
            grad.sub_(lse.unsqueeze(1))
            .exp_()
            .scatter_add_(1, index, torch.full_like(lse, -1.0).unsqueeze(1))
        )
        grad.mul_(grad_out.unsqueeze(1))
        if denom is not None:
            dot = (grad * scores).mean(dim=1, keepdim=True)
            if ctx.normalize == "l1":
                grad.sub_(torch.sign(logits).mul_(dot)).div_(denom)
            else:
                grad.sub_(dot).div_(denom).mul_(torch.sigmoid(logits))
        return grad, None, None, None, None


class _Adapt(NamedTuple):
    """ALDR-KL's lambda update inside the fused kernel: lam0, alpha, exact_p."""

    lam0: float
    alpha: float
    exact_p: bool


class _Fused(NamedTuple):
    rows: Tensor
    """(B,) lam_i (logsumexp(z_i / lam_i) - log K)."""
    grad: Tensor | None
    """(B, K) d sum(rows) / d logits, or None when no gradient is needed."""
    lambdas: Tensor
    """(B, 1) the temperatures used (ALDR-KL: the updated ones)."""
    kl: Tensor | None
    """(B,) KL(p_i || uniform) of the ALDR-KL update, else None."""


_SOFTMAX_MIN_K = 256
"""From this many classes on, :func:`_softmax_lse` uses the native softmax kernel; below it, the
kernel's per-row overhead dominates (on the CPU it is 3x slower than four plain passes at K = 10)."""


def _softmax_lse(v: Tensor) -> tuple[Tensor, Tensor]:
    """softmax(v) (B, K) and logsumexp(v) (B,) from one exponential pass.

    Native kernel (K >= 256): ``logsumexp(v) = max(v) - log(max softmax(v))``; the largest
    probability is at least 1 / K, so its log never underflows (unlike ``log p_y``). Small K:
    ``exp(v - max)``, its row sum ``S``, ``p = exp / S`` and ``logsumexp = max + log S``.
    """
    if v.shape[1] >= _SOFTMAX_MIN_K:
        p = torch.softmax(v, dim=1)
        return p, v.amax(dim=1) - p.amax(dim=1).log()
    top = v.amax(dim=1, keepdim=True)
    e = torch.sub(v, top).exp_()
    total = e.sum(dim=1, keepdim=True)
    return e.div_(total), (top + total.log()).squeeze(1)


def _fused_ldr_kl(
    logits: Tensor,
    index: Tensor,
    lam: Tensor,
    margin: float,
    normalize: str,
    need_grad: bool,
    adapt: _Adapt | None = None,
) -> _Fused:
    """LDR-KL rows and their gradient in one forward sweep (no recomputation in backward).

    ``logits`` (B, K) checked, ``index`` (B, 1) long, ``lam`` (B, 1) the temperatures (ALDR-KL:
    the stored ones, updated here first). With ``v = s / lam`` and ``v_y -= c / lam`` the
    margin-augmented differences are ``z / lam = v - v_y``, so ``logsumexp(z / lam) =
    logsumexp(v) - v_y`` and ``p = softmax(v)``: one softmax pass gives the loss and the
    gradient ``p - e_y`` (w.r.t. the scores), which is then taken through the normalisation
    (``l1``: (g - sign(f) <g, s> / K) / m; ``softplus_mean``: (g - <g, s> / K) / m * sigmoid(f)),
    with ``<g, s> = lam (<p, v> - v_y) + c (p_y - 1)``.
    """
    k = logits.shape[1]
    log_k = math.log(k)
    if normalize == "none":
        base, inv = logits, None
    else:
        base = logits if normalize == "l1" else F.softplus(logits)
        size = base.abs() if normalize == "l1" else base
        inv = size.mean(dim=1, keepdim=True).add_(EPS).reciprocal_()
    kl = None
    buffer = None
    if adapt is not None:  # ALDR-KL: p_i = softmax(adversary / stored lam_i), then lam_i <- lam*
        u = base * (lam.reciprocal() if inv is None else inv / lam)
        if adapt.exact_p and margin != 0.0:
            u.scatter_add_(1, index, (-margin) / lam)
        q, lse_u = _softmax_lse(u)
        kl = torch.linalg.vecdot(q, u).sub_(lse_u).add_(log_k)  # sum q log q + log K
        lam = (
            (adapt.lam0 * (1.0 - kl / (adapt.alpha * log_k)))
            .clamp_(adapt.lam0 * (1.0 - 1.0 / adapt.alpha), adapt.lam0)
            .unsqueeze(1)
        )
        buffer = u
    scale = lam.reciprocal() if inv is None else inv / lam
    v = torch.mul(base, scale, out=buffer) if buffer is not None else base * scale
    if margin != 0.0:
        v.scatter_add_(1, index, (-margin) / lam)
    p, lse = _softmax_lse(v)
    v_y = v.gather(1, index).squeeze(1)
    rows = lam.squeeze(1) * (lse - v_y - log_k)
    if not need_grad:
        return _Fused(rows, None, lam, kl)
    grad = p.scatter_add_(1, index, torch.full_like(v_y, -1.0).unsqueeze(1))  # p - e_y
    if inv is not None:
        # <g, s> = lam <g, v> + c g_y (s = lam v, except s_y = lam v_y + c)
        gs = lam.squeeze(1) * torch.linalg.vecdot(grad, v)
        if margin != 0.0:
            gs.add_(grad.gather(1, index).squeeze(1), alpha=margin)
        col = gs.unsqueeze(1).mul_(inv).div_(-k)  # -<g, s> / (K m)
        if normalize == "l1":
            grad.mul_(inv).addcmul_(torch.sign(logits), col)
        else:
            grad.mul_(inv).add_(col).mul_(torch.sigmoid(logits))
    return _Fused(rows, grad, lam, kl)


class _LDRKLFunction(torch.autograd.Function):
    """The fused LDR-KL kernel (:func:`_fused_ldr_kl`) as an autograd function.

    Forward computes the rows and, when a gradient is needed, their (B, K) gradient, which it
    keeps for backward (one (B, K) tensor, as ``F.cross_entropy`` keeps its log-softmax); backward
    scales it by the incoming (B,) gradient. Outputs: rows (B,), and the detached (B,) lambdas and
    KL of the ALDR-KL update (an empty (0,) tensor when there is no update).
    """

    @staticmethod
    def forward(
        ctx: Any,
        logits: Tensor,
        index: Tensor,
        lam: Tensor,
        margin: float,
        normalize: str,
        need_grad: bool,
        adapt: _Adapt | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        out = _fused_ldr_kl(logits, index, lam, margin, normalize, need_grad, adapt)
        if out.grad is not None:
            ctx.save_for_backward(out.grad)
        kl = out.kl if out.kl is not None else out.rows.new_zeros(0)
        lambdas = out.lambdas.squeeze(1)
        ctx.mark_non_differentiable(lambdas, kl)
        return out.rows, lambdas, kl

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor, *_: Tensor) -> tuple[Tensor | None, ...]:
        (grad,) = ctx.saved_tensors
        return grad * grad_out.unsqueeze(1), None, None, None, None, None, None


def _lam_column(lam: float | Tensor, logits: Tensor) -> Tensor:
    """``lam`` (a float or a (B,) tensor, treated as a constant) as a (B, 1) column."""
    if isinstance(lam, Tensor):
        return lam.detach().to(dtype=logits.dtype).unsqueeze(1)
    return torch.full((logits.shape[0], 1), float(lam), dtype=logits.dtype, device=logits.device)


def _ldr_kl_rows(
    logits: Tensor,
    index: Tensor,
    lam: float | Tensor,
    margin: float,
    normalize: str,
    impl: str = "fused",
) -> Tensor:
    r"""Row-wise :math:`\lambda (\mathrm{logsumexp}(z/\lambda) - \log K)`; lam scalar or (B,).

    ``lam`` is a constant: no gradient flows to it. ``impl="fused"`` (default) computes the
    gradient in the forward sweep; ``"recompute"`` is the previous kernel, which recomputes it in
    backward (kept as the reference the fused one is tested against).
    """
    lam_col = _lam_column(lam, logits)
    if impl == "recompute":
        out: Tensor = _LDRKLRecomputeFunction.apply(
            logits, index.unsqueeze(1), lam_col, margin, normalize
        )
        return out
    need_grad = torch.is_grad_enabled() and logits.requires_grad
    fused: tuple[Tensor, Tensor, Tensor] = _LDRKLFunction.apply(
        logits, index.unsqueeze(1), lam_col, margin, normalize, need_grad, None
    )
    return fused[0]


def ldr_kl_loss(
    logits: Tensor,
    target: Tensor,
    lam: float | Tensor = 10.0,
    margin: float = 0.1,
    normalize: str = "softplus_mean",
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""LDR-KL loss :math:`\lambda \log \frac1K \sum_k \exp(z_k / \lambda)` (KL regulariser).

    Args:
        logits: (B, K) floating scores, K >= 2.
        target: (B,) integer class indices in [0, K) or (B, K) one-hot.
        lam: :math:`\lambda > 0`, the KL weight (temperature). Default 10 (official experiments,
            selected by 5-fold CV from {0.1, 1, 10}). A (B,) tensor gives one :math:`\lambda_i`
            per example (treated as a constant). Use :func:`crammer_singer_loss` for
            :math:`\lambda = 0`.
        margin: :math:`c \ge 0`. Default 0.1 (official ``experiment.py --margin``).
        normalize: score normalisation, see :func:`normalize_scores`. Default ``"softplus_mean"``
            (official ``LDRLoss_V1``).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (then shape (B,)).
        validate: check the inputs (costs host-device syncs); ``False`` in tight loops.

    Returns:
        The reduced loss (scalar) or per-example losses (B,), in the dtype of ``logits``.

    float16/bfloat16 logits are computed in float32 (the gradient kept for backward is float32),
    as autocast does for ``F.cross_entropy``; the same holds for every loss here.

    Computed as :math:`\lambda(\operatorname{logsumexp}(z/\lambda) - \log K)`; the official code
    subtracts a detached row maximum by hand, which gives the same value and gradient. A fused
    autograd function computes the rows and their gradient in one forward sweep (one softmax
    pass: :math:`\partial\ell/\partial\tilde f = \mathrm{softmax}(z/\lambda) - e_y`, then
    through the normalisation in closed form) and keeps only that (B, K) gradient for backward,
    as ``F.cross_entropy`` keeps its log-softmax; without grad mode the gradient is not formed.
    First-order gradients only (no double backward), and no gradient flows to a ``lam`` tensor.
    """
    if not isinstance(lam, Tensor):
        lam = check_positive("lam", lam)
    margin = check_positive("margin", margin, allow_zero=True)
    logits, index, dtype = _checked(logits, target, normalize, reduction, validate)
    if isinstance(lam, Tensor):
        lam = _check_lambda_tensor("lam", lam, logits, validate)
    return reduce(_ldr_kl_rows(logits, index, lam, margin, normalize), reduction).to(dtype)


def _check_lambda_tensor(name: str, lam: object, scores: Tensor, validate: bool) -> Tensor:
    """A per-example lambda: a floating (B,) tensor, finite and > 0 (checked if ``validate``)."""
    batch = scores.shape[0]
    if not isinstance(lam, Tensor):
        raise TypeError(f"{name}: expected a ({batch},) tensor, got {type(lam).__name__}")
    if tuple(lam.shape) != (batch,) or not lam.is_floating_point():
        raise ValueError(
            f"{name}: expected a floating tensor of shape ({batch},), "
            f"got {lam.dtype} {tuple(lam.shape)}"
        )
    if validate and not bool(((lam > 0) & torch.isfinite(lam)).all()):
        raise ValueError(f"{name}: expected finite values > 0 for every example, got others")
    return lam.to(device=scores.device, dtype=scores.dtype)


def crammer_singer_loss(
    logits: Tensor,
    target: Tensor,
    margin: float = 1.0,
    normalize: str = "none",
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""Crammer-Singer hinge :math:`\max(0, \max_{k \ne y} c + \tilde f_k - \tilde f_y)`.

    The :math:`\lambda \to 0` limit of LDR-KL (simplex, no regulariser). Shapes as
    :func:`ldr_kl_loss`; default margin 1 and raw logits, as the official ``CSLoss``.
    """
    margin = check_positive("margin", margin, allow_zero=True)
    scores, index, dtype = _prepare(logits, target, normalize, reduction, validate)
    z = _margins(scores, index, margin)
    return reduce(z.amax(dim=1), reduction).to(dtype)


def weston_watkins_loss(
    logits: Tensor,
    target: Tensor,
    margin: float = 1.0,
    normalize: str = "none",
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""Weston-Watkins multi-class hinge :math:`\sum_{k \ne y} (c + \tilde f_k - \tilde f_y)_+`.

    The LDR loss over the box :math:`\Omega = [0, 1]^K` without regulariser. Shapes as
    :func:`ldr_kl_loss`; default margin 1 and raw logits, as the official ``WWLoss``.

    Deviation: the official ``WWLoss`` averages the hinge terms over the K classes as well as
    over the batch, i.e. it returns this loss divided by K; we return the sum over classes (the
    closed form of the box-set LDR loss and the usual Weston-Watkins definition). Multiply by
    ``1 / K`` to match it.
    """
    margin = check_positive("margin", margin, allow_zero=True)
    scores, index, dtype = _prepare(logits, target, normalize, reduction, validate)
    z = _margins(scores, index, margin)
    return reduce(z.clamp_min(0.0).sum(dim=1), reduction).to(dtype)


def ldr_loss(
    logits: Tensor,
    target: Tensor,
    lam: float = 10.0,
    margin: float = 0.1,
    region: str = "simplex",
    regularizer: str = "kl",
    normalize: str = "softplus_mean",
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""General LDR loss :math:`\max_{p \in \Omega} \sum_k p_k z_k - \lambda R(p)`, closed forms.

    * ``region="simplex", regularizer="kl"``: LDR-KL (:func:`ldr_kl_loss`), needs ``lam > 0``.
    * ``region="simplex", regularizer="none"``: Crammer-Singer, :math:`\max_k z_k`.
    * ``region="box", regularizer="none"``: Weston-Watkins, :math:`\sum_k (z_k)_+`.

    ``lam`` is ignored when ``regularizer="none"``. The box set with a KL regulariser is not a
    member the paper defines (KL needs a distribution), so it raises ``ValueError``. Shapes as
    :func:`ldr_kl_loss`; margin and normalisation apply to every member.
    """
    check_choice("region", region, ("simplex", "box"))
    check_choice("regularizer", regularizer, ("kl", "none"))
    if regularizer == "kl":
        if region == "box":
            raise ValueError(
                "region='box' with regularizer='kl' is not a closed-form LDR member "
                "(KL needs p on the simplex); use region='simplex' or regularizer='none'"
            )
        return ldr_kl_loss(logits, target, lam, margin, normalize, reduction, validate=validate)
    if region == "simplex":
        return crammer_singer_loss(logits, target, margin, normalize, reduction, validate=validate)
    return weston_watkins_loss(logits, target, margin, normalize, reduction, validate=validate)


def worst_case_distribution(
    logits: Tensor,
    target: Tensor,
    lam: float = 10.0,
    margin: float = 0.1,
    normalize: str = "softplus_mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""The LDR-KL adversary's label distribution :math:`p^* = \mathrm{softmax}(z/\lambda)` (B, K).

    It attains the maximum in :math:`\max_p \sum_k p_k z_k - \lambda \mathrm{KL}(p \| u)`
    (Donsker-Varadhan); :math:`\sum_k p^*_k z_k - \lambda \mathrm{KL}(p^* \| u)` equals
    :func:`ldr_kl_loss` with ``reduction="none"``. For analysis and plots.

    Args: ``logits`` (B, K) floating, ``target`` (B,) class indices or (B, K) one-hot, ``lam`` > 0
    (default 10), ``margin`` >= 0 (default 0.1), ``normalize`` (default ``"softplus_mean"``), as
    :func:`ldr_kl_loss`. Returns (B, K) rows summing to one, in the dtype of ``logits``.
    """
    lam = check_positive("lam", lam)
    margin = check_positive("margin", margin, allow_zero=True)
    scores, index, dtype = _prepare(logits, target, normalize, "none", validate)
    return torch.softmax(_margins(scores, index, margin) / lam, dim=1).to(dtype)


class _ALDRStep(NamedTuple):
    loss: Tensor
    """(B,) per-example ALDR-KL losses (penalty included)."""
    lambdas: Tensor
    """(B,) the updated, detached lambda_i."""
    kl: Tensor
    """(B,) KL(p_i || uniform) that produced them, detached."""


def _check_aldr_params(lam0: float, alpha: float, margin: float) -> None:
    check_positive("lam0", lam0)
    check_positive("alpha", alpha)
    if alpha <= 1:
        raise ValueError(
            f"alpha: expected a value > 1 (lambda_i stays in [lam0(1-1/alpha), lam0]), got {alpha}"
        )
    check_positive("margin", margin, allow_zero=True)


def _aldr_step(
    logits: Tensor,
    index: Tensor,
    previous: Tensor,
    lam0: float,
    alpha: float,
    margin: float,
    exact_p: bool,
    normalize: str,
    impl: str = "fused",
) -> _ALDRStep:
    """One ALDR-KL step on (checked) logits with the stored lambdas ``previous`` (B,).

    ``impl="fused"`` (default): the lambda update and the loss in one fused sweep (the scores are
    normalised once); ``"recompute"``: the previous path (a separate no-grad update, then the
    recomputing kernel), kept as the reference the fused one is tested against.
    """
    num_classes = logits.shape[1]
    log_k = math.log(num_classes)
    if impl == "fused":
        need_grad = torch.is_grad_enabled() and logits.requires_grad
        prev_col = previous.detach().to(dtype=logits.dtype).unsqueeze(1)
        adapt = _Adapt(lam0, alpha, exact_p)
        rows, lambdas, kl = _LDRKLFunction.apply(
            logits, index.unsqueeze(1), prev_col, margin, normalize, need_grad, adapt
        )
        penalty = (alpha * log_k / (2.0 * lam0)) * (lambdas - lam0) ** 2
        return _ALDRStep(rows - penalty, lambdas, kl)
    with torch.no_grad():
        scores = _normalize(logits, normalize)
        prev = previous.to(dtype=scores.dtype)
        adversary = _margins(scores, index, margin) if exact_p else scores
        log_p = torch.log_softmax(adversary / prev.unsqueeze(1), dim=1)
        kl = (log_p.exp() * log_p).sum(dim=1) + log_k
        lambdas = (lam0 * (1.0 - kl / (alpha * log_k))).clamp(lam0 * (1.0 - 1.0 / alpha), lam0)
    penalty = (alpha * log_k / (2.0 * lam0)) * (lambdas - lam0) ** 2
    loss = _ldr_kl_rows(logits, index, lambdas, margin, normalize, impl) - penalty
    return _ALDRStep(loss, lambdas, kl)


def aldr_kl_loss(
    logits: Tensor,
    target: Tensor,
    lambdas: Tensor,
    lam0: float = 10.0,
    alpha: float = 2.0,
    margin: float = 0.1,
    normalize: str = "l1",
    exact_p: bool = True,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""Functional ALDR-KL: one step of :class:`ALDRKLLoss` given the stored :math:`\lambda_i`.

    Args:
        logits: (B, K) floating scores; target: (B,) class indices or (B, K) one-hot.
        lambdas: (B,) the stored :math:`\lambda_i` of these examples (the table rows); not modified.
        lam0, alpha, margin, normalize, exact_p: see :class:`ALDRKLLoss`.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Returns the loss computed with the updated :math:`\lambda_i` (which this function does not
    store; use :class:`ALDRKLLoss` for the per-example table).
    """
    _check_aldr_params(lam0, alpha, margin)
    logits, index, dtype = _checked(logits, target, normalize, reduction, validate)
    lambdas = _check_lambda_tensor("lambdas", lambdas, logits, validate)
    step = _aldr_step(logits, index, lambdas, lam0, alpha, margin, exact_p, normalize)
    return reduce(step.loss, reduction).to(dtype)


def _last_write_wins(rows: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """(rows, values) for ``index_copy_`` in which every duplicate row carries the value of its
    last occurrence, so that the copy is deterministic on every device (no host sync)."""
    sorted_rows, order = torch.sort(rows, stable=True)
    last = torch.searchsorted(sorted_rows, sorted_rows, right=True) - 1
    return sorted_rows, values[order][last]


class LDRKLLoss(nn.Module):
    """Module form of :func:`ldr_kl_loss` (same arguments and defaults)."""

    def __init__(
        self,
        lam: float = 10.0,
        margin: float = 0.1,
        normalize: str = "softplus_mean",
        reduction: Reduction = "mean",
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        lam = check_positive("lam", lam)
        margin = check_positive("margin", margin, allow_zero=True)
        check_choice("normalize", normalize, NORMALIZATIONS)
        check_reduction(reduction)
        self.lam, self.margin, self.normalize = lam, margin, normalize
        self.reduction, self.validate = reduction, validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """logits (B, K), target (B,) indices or (B, K) one-hot -> loss."""
        return ldr_kl_loss(
            logits,
            target,
            self.lam,
            self.margin,
            self.normalize,
            self.reduction,
            validate=self.validate,
        )

    def extra_repr(self) -> str:
        return f"lam={self.lam}, margin={self.margin}, normalize={self.normalize!r}"


class _MarginLossModule(nn.Module):
    """Shared module form of the two margin losses: stores the arguments, calls ``_loss``."""

    _loss: ClassVar[Callable[..., Tensor]]

    def __init__(
        self,
        margin: float = 1.0,
        normalize: str = "none",
        reduction: Reduction = "mean",
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        margin = check_positive("margin", margin, allow_zero=True)
        check_choice("normalize", normalize, NORMALIZATIONS)
        check_reduction(reduction)
        self.margin, self.normalize, self.reduction, self.validate = (
            margin,
            normalize,
            reduction,
            validate,
        )

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """logits (B, K), target (B,) indices or (B, K) one-hot -> loss."""
        return type(self)._loss(
            logits, target, self.margin, self.normalize, self.reduction, validate=self.validate
        )


class CrammerSingerLoss(_MarginLossModule):
    """Module form of :func:`crammer_singer_loss` (same arguments and defaults)."""

    _loss = staticmethod(crammer_singer_loss)


class WestonWatkinsLoss(_MarginLossModule):
    """Module form of :func:`weston_watkins_loss` (same arguments and defaults)."""

    _loss = staticmethod(weston_watkins_loss)


class ALDRKLLoss(nn.Module):
    r"""Adaptive LDR-KL (ALDR-KL) with one :math:`\lambda_i` per training example.

    .. math::
        \ell_i = \max_{\lambda}\max_{p \in \Delta} \sum_k p_k z_{ik} - \lambda \mathrm{KL}(p \| u)
                 - \frac{\alpha \log K}{2 \lambda_0} (\lambda - \lambda_0)^2 .

    For fixed p the maximising :math:`\lambda` is
    :math:`\lambda^* = \lambda_0 (1 - \mathrm{KL}(p \| u) / (\alpha \log K)) \in
    [\lambda_0(1 - 1/\alpha), \lambda_0]`. Each call runs one block-ascent step, as the official
    ``ALDRLoss_V1``: (1) :math:`p_i = \mathrm{softmax}(z_i / \Lambda_i)` with the stored
    :math:`\Lambda_i`; (2) :math:`\Lambda_i \leftarrow \lambda^*(p_i)`, detached and written to the
    table; (3) :math:`\ell_i = \Lambda_i(\operatorname{logsumexp}(z_i/\Lambda_i) - \log K)
    - \frac{\alpha\log K}{2\lambda_0}(\Lambda_i - \lambda_0)^2` (the penalty has no gradient).
    Direction of the adaptation (from the formula): :math:`\lambda_i` falls as
    :math:`\mathrm{KL}(p_i \| u)` grows, i.e. as the worst case -- the model's own score profile at
    temperature :math:`\Lambda_i` -- gets *peaked*. A confident prediction (of any class) gives a
    small :math:`\lambda_i` (towards Crammer-Singer); a flat, uncertain prediction keeps
    :math:`\lambda_i` near :math:`\lambda_0` (the more symmetric, noise-robust end). With
    ``exact_p=False`` (official) :math:`p_i` does not depend on the label at all; with
    ``exact_p=True`` only through the margin c. So the update does not see whether a label is wrong:
    it sees how confident the model is on :math:`x_i`.

    Args:
        num_samples: N, the size of the training set (the table ``lambdas`` has shape (N,)).
        lam0: :math:`\lambda_0 > 0`, the initial and largest :math:`\lambda`. Default 10 (official).
        alpha: :math:`\alpha > 1`. Default 2 (official ``--alpha``).
        margin: :math:`c \ge 0`. Default 0.1 (official).
        normalize: default ``"l1"`` (official ``ALDRLoss_V1``; ``"softplus_l1"`` is the official
            CIFAR-100 choice). See :func:`normalize_scores`.
        exact_p: ``True`` (default): step (1) uses :math:`z_i` (margin included), the exact
            block-ascent step of the objective above. ``False``: uses the normalised scores without
            the margin, as the official code does.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        validate: check inputs (costs host-device syncs). With ``False`` an index outside
            [0, N) is not caught here: ``index_select`` raises ``IndexError`` on the CPU and a
            device-side assert on CUDA.

    Deviation: the default ``exact_p=True`` differs from the official code, which omits the margin
    when computing :math:`p_i` (step 1); ``exact_p=False`` reproduces it. For c = 0.1 and
    :math:`\lambda_0 = 10` the two differ very little.
    Deviation: the official code adds 1e-5 to :math:`p_i` and renormalises before the KL; we compute
    the KL exactly from ``log_softmax`` (no epsilon needed). The new :math:`\lambda_i` is clamped to
    :math:`[\lambda_0(1 - 1/\alpha), \lambda_0]`, which only removes rounding error.
    Deviation: the table is updated only in training mode (``module.train()``, the default); in
    ``eval()`` mode the step uses the updated :math:`\lambda_i` but does not store it, so that
    evaluation does not change training state. The official code never evaluates the loss.
    Duplicated indices in one batch (e.g. two augmented views of one example) each compute their
    own :math:`\lambda_i` from the same stored value; the table keeps the one of the *last*
    occurrence in the batch, on every device (a plain ``index_copy_`` would leave the choice to
    the CUDA scheduler).

    The table is a buffer: it moves with ``.to(device)``, is saved in ``state_dict()``
    (checkpoint it with the model) and is reset by :meth:`reset`. It is float32; ``.half()`` /
    ``.to(torch.bfloat16)`` on a parent module converts it too (bfloat16 stores 10 as steps of
    0.0625), so keep the loss out of such casts (autocast does not touch it). ``last_lambdas``
    and ``last_kl`` hold the (B,) values of the last call for logging.

    Distributed training: each process keeps its own table and writes only the rows of its own
    batches. Keep the loss outside a ``DistributedDataParallel``-wrapped module (DDP broadcasts
    rank 0's buffers on every forward, overwriting the other ranks' rows), and note that a
    shuffling ``DistributedSampler`` sends an example to different ranks in different epochs, so
    the rows must be exchanged (e.g. all-gather ``index`` and ``last_lambdas`` and write them on
    every rank) for one consistent table.
    """

    lambdas: Tensor
    last_lambdas: Tensor | None
    last_kl: Tensor | None

    def __init__(
        self,
        num_samples: int,
        lam0: float = 10.0,
        alpha: float = 2.0,
        margin: float = 0.1,
        normalize: str = "l1",
        exact_p: bool = True,
        reduction: Reduction = "mean",
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        num_samples = check_positive_int("num_samples", num_samples)
        _check_aldr_params(lam0, alpha, margin)
        check_choice("normalize", normalize, NORMALIZATIONS)
        check_reduction(reduction)
        self.num_samples, self.lam0, self.alpha, self.margin = num_samples, lam0, alpha, margin
        self.normalize, self.exact_p, self.reduction, self.validate = (
            normalize,
            exact_p,
            reduction,
            validate,
        )
        self.register_buffer("lambdas", torch.full((num_samples,), float(lam0)))
        self.last_lambdas = None
        self.last_kl = None

    def reset(self) -> None:
        """Set every :math:`\\lambda_i` back to :math:`\\lambda_0`."""
        self.lambdas.fill_(self.lam0)
        self.last_lambdas = None
        self.last_kl = None

    def _check_index(self, index: object, batch: int) -> Tensor:
        """The (B,) dataset indices on the table's device, checked against ``num_samples``."""
        if index is None:
            raise ValueError(
                "index: expected the (B,) dataset indices of the batch's examples (the dataset "
                "must return them), got None"
            )
        rows = check_labels("index", index, n=batch, validate=False)
        rows = rows.to(device=self.lambdas.device, dtype=torch.long)
        if self.validate and bool(((rows < 0) | (rows >= self.num_samples)).any()):
            lo, hi = int(rows.min()), int(rows.max())
            raise ValueError(
                f"index: expected values in [0, num_samples={self.num_samples}), "
                f"got range [{lo}, {hi}]"
            )
        return rows

    def forward(self, logits: Tensor, target: Tensor, index: Tensor | None = None) -> Tensor:
        """logits (B, K), target (B,) indices or (B, K) one-hot, index (B,) dataset indices."""
        logits, target_index, dtype = _checked(
            logits, target, self.normalize, self.reduction, self.validate
        )
        rows = self._check_index(index, target_index.shape[0])
        previous = self.lambdas.index_select(0, rows).to(logits.device)
        step = _aldr_step(
            logits,
            target_index,
            previous,
            self.lam0,
            self.alpha,
            self.margin,
            self.exact_p,
            self.normalize,
        )
        if self.training:
            self.lambdas.index_copy_(0, *_last_write_wins(rows, step.lambdas.to(self.lambdas)))
        self.last_lambdas, self.last_kl = step.lambdas, step.kl
        return reduce(step.loss, self.reduction).to(dtype)

    def extra_repr(self) -> str:
        return (
            f"num_samples={self.num_samples}, lam0={self.lam0}, alpha={self.alpha}, "
            f"margin={self.margin}, normalize={self.normalize!r}, exact_p={self.exact_p}"
        )
