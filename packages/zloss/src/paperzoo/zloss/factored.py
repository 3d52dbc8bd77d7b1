"""Exact O(d²) training of a very large linear output layer under a spherical loss.

Vincent, de Brébisson & Bouthillier (NeurIPS 2015) and de Brébisson & Vincent (2016): for a loss that
depends on the outputs ``o = W h`` only through ``(o_c, q = ||o||², s = Σ o)``, the loss, the gradient
with respect to ``h`` and the *exact* plain-SGD update of the ``D × d`` matrix ``W`` cost
``O(d² + K d)`` per example instead of ``O(D d)``: ``W`` is kept factored as ``W = V U + 1 ωᵀ``
(``V`` is ``D × d``, ``U`` is ``d × d``, ``ω`` is ``d``) with the bookkeeping ``Q = WᵀW``,
``w̄ = Wᵀ1`` and ``U⁻¹``. A step multiplies ``U`` by a ``d × d`` matrix and touches only the ``K·m``
rows of ``V`` named by the targets. No ``D × m`` tensor is ever formed.

Notation (row form, batch first): ``H`` is ``(m, d)`` (a constant column ``v`` appended for the
bias), ``T`` the ``(m, K)`` targets, ``A = o_T`` ``(m, K)``, ``G_A, g_q, g_s`` the loss gradients.

One concept in one module (about 800 lines, over the usual 500): the factored layer's state, the
autograd function that stashes its gradients, the exact update with its stabilisation, and the two
thin wrappers that drive it (:class:`FactoredSGD`, :class:`FactoredZLossHead`) all read and write
the same private invariants (the gradient stash and its version counter, ``Q``, ``w̄``, ``U⁻¹``),
which splitting the file would expose across modules.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from paperzoo.core.checks import (
    Reduction,
    as_real,
    check_choice,
    check_finite,
    check_float_tensor,
    check_nonempty,
    check_positive,
    check_positive_int,
)
from paperzoo.zloss.losses import ZLoss, spherical_targets, z_loss_from_stats

__all__ = [
    "FactoredSGD",
    "FactoredSphericalLinear",
    "FactoredZLossHead",
    "SphericalOutputs",
]

log = logging.getLogger(__name__)

InverseMode = Literal["woodbury", "recompute"]

#: Largest block of the ``(m K) × (m K)`` target-comparison matrix formed at once in the update.
_YY_BLOCK = 1 << 24

#: Why ``parameters()`` of the layer or the head raises (``Adam(head.parameters())`` would otherwise
#: get torch's bare "optimizer got an empty parameter list").
_NO_PARAMETERS = (
    "{cls} has no nn.Parameters: its D x d weight is kept factored in buffers, where only plain "
    "SGD (+ weight decay) stays exact, so no torch.optim optimizer can train it. Step it with "
    "paperzoo.zloss.FactoredSGD(head, lr=...) (its zero_grad() drops the stashed gradients) and "
    "give the rest of the model (e.g. body.parameters()) to any optimizer."
)

#: Warn once the stash holds this many backward passes (a head that is never stepped leaks memory).
_STASH_WARN_AT = 100


class SphericalOutputs(NamedTuple):
    """The spherical statistics of a batch, all differentiable with respect to ``h``.

    ``target_logits`` ``(B, K)`` = ``o_c``; ``sq_sum`` ``(B,)`` = ``q = Σ_k o_k²``;
    ``sum`` ``(B,)`` = ``s = Σ_k o_k``.
    """

    target_logits: Tensor
    sq_sum: Tensor
    sum: Tensor


@dataclass
class _Stash:
    """What one backward pass leaves for the update (all on the layer's device/dtype)."""

    h: Tensor  # (m, d~) inputs with the bias column
    target: Tensor  # (m, K) long
    grad_a: Tensor  # (m, K)
    grad_q: Tensor  # (m,)
    grad_s: Tensor  # (m,)
    version: int
    hq: Tensor  # (m, d~) H Q, from the forward
    z: Tensor  # (m, d~) Wᵀ(Ẏ + 1 g_sᵀ) per row, from the backward


class _FactoredSpherical(torch.autograd.Function):
    """Forward: the statistics from the factored state. Backward: grad_h, and stash for the step."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        h: Tensor,
        target: Tensor,
        layer: FactoredSphericalLinear,
        trigger: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        ht = layer._augment(h)
        hq = ht @ layer.Q  # Ĥ = H Q, (m, d~)
        sq_sum = (ht * hq).sum(1)
        sum_ = ht @ layer.w_bar
        hu = ht @ layer.U.T  # rows U h_j
        vt = layer.V[target]  # (m, K, d~), gathered once for forward and backward
        target_logits = torch.einsum("mkd,md->mk", vt, hu) + (ht @ layer.omega)[:, None]
        ctx.save_for_backward(ht, hq, target, vt)
        ctx.layer = layer  # type: ignore[attr-defined]
        ctx.version = layer._version  # type: ignore[attr-defined]
        ctx.in_features = h.shape[1]  # type: ignore[attr-defined]
        return target_logits, sq_sum, sum_

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_a: Tensor, grad_q: Tensor, grad_s: Tensor
    ) -> tuple[Tensor | None, None, None, Tensor]:
        layer: FactoredSphericalLinear = ctx.layer
        if ctx.version != layer._version:
            raise RuntimeError(
                "FactoredSphericalLinear was updated (sgd_step) between this forward and its "
                "backward; run forward, backward, then sgd_step"
            )
        ht, hq, target, vt = ctx.saved_tensors
        with torch.autocast(ht.device.type, enabled=False):
            grad_a, grad_q, grad_s = (g.to(ht.dtype) for g in (grad_a, grad_q, grad_s))
            z = layer._z(ht, target, grad_a, grad_s, vt)
            grad_ht = 2.0 * grad_q[:, None] * hq + z
        layer._stash.append(_Stash(ht, target, grad_a, grad_q, grad_s, ctx.version, hq, z))
        if len(layer._stash) == _STASH_WARN_AT:
            warnings.warn(
                f"FactoredSphericalLinear holds the gradients of {_STASH_WARN_AT} backward passes "
                "without an sgd_step(): they are kept (memory grows with every backward) until "
                "sgd_step() applies them or FactoredSGD.zero_grad() / zero_grad_stash() drops "
                "them; call zero_grad() each iteration when the head is not being trained",
                RuntimeWarning,
                stacklevel=2,
            )
        grad_h = grad_ht[:, : ctx.in_features] if ctx.needs_input_grad[0] else None
        return grad_h, None, None, torch.zeros_like(ctx.saved_tensors[0][:0, 0])


class FactoredSphericalLinear(nn.Module):
    r"""A ``D × d`` linear output layer trained exactly in ``O(d²)`` per example.

    ``W = V U + 1 ωᵀ`` with ``V (D, d~)``, ``U (d~, d~)``, ``ω (d~,)`` and the bookkeeping
    ``Q = WᵀW``, ``w̄ = Wᵀ1``, ``U⁻¹`` (``d~ = d + 1`` with a bias). The forward pass gives the
    spherical statistics ``(o_c, q, s)`` of ``o = W h`` without forming ``o``; feed them to a
    ``*_from_stats`` loss. ``loss.backward()`` returns ``∂L/∂h`` to earlier layers and stashes what
    :meth:`sgd_step` (or :class:`FactoredSGD`) needs to apply ``W ← W - η (∂L/∂W)`` exactly. Gradients
    of several backward passes before one step are concatenated (exact gradient accumulation).

    The factored state is held in *buffers*, not parameters: ``model.parameters()`` never hands it to
    Adam or momentum SGD, whose state would be a dense ``D × d`` matrix (only plain SGD with weight
    decay is exact in factored form). Train the rest of the model with any optimizer and this layer
    with :class:`FactoredSGD`.

    Not synchronised across processes: under ``torch.distributed`` each rank would apply only its own
    batch's update (the dense ``W`` gradient that DDP all-reduces never exists); train it in one process.

    Args:
        in_features: ``d``.
        num_classes: ``D >= 2``.
        bias: append a constant feature ``bias_value`` to ``h`` (default True).
        bias_value: the constant ``v``. SGD then moves the bias at rate ``η v²``; only the default
            ``v = 1`` equals ``nn.Linear`` + ``torch.optim.SGD``. Deviation: the reference example
            appends 0.001, which makes its bias learn ``10⁶`` times slower.
        stabilize_every: ``P``, run :meth:`stabilize` every ``P`` updates (default 100, the official
            One-Billion-Word example; the Theano op's default is 10); 0 disables it.
        inverse: how ``U⁻¹`` follows ``U``: ``"woodbury"`` (default, the reference's CPU mode:
            an ``m × m`` solve, ``O(m d² + m² d + m³)``) or ``"recompute"`` (``O(d³)`` inverse, the
            reference's GPU mode).
        dtype: of the state, float32 (default) or float64.
        device: of the state (default: the CPU).
        generator: for :meth:`reset_parameters`.
        validate: check inputs (shape, dtype, target range, finiteness; the last two sync the host)
            and, in :meth:`sgd_step`, that the stashed gradients are finite (one more sync).

    Deviation: ``V`` is initialised like ``nn.Linear`` (``U(-1/√d, 1/√d)``, bias column the same
    divided by ``v``), ``U = I``, ``ω = 0``; the reference example draws ``V ~ N(0, 0.001²)``.
    Deviation: :meth:`stabilize` reads the singular values of ``U`` from an exact SVD (``O(d³)``, every
    ``P`` updates) instead of 100 power iterations, and fixes all out-of-range ones at once with the
    same rank-one maps the reference applies one at a time.
    """

    V: Tensor
    U: Tensor
    U_inv: Tensor
    omega: Tensor
    Q: Tensor
    w_bar: Tensor

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        bias: bool = True,
        bias_value: float = 1.0,
        stabilize_every: int = 100,
        inverse: InverseMode = "woodbury",
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("num_classes", num_classes, minimum=2)
        check_positive_int("stabilize_every", stabilize_every, minimum=0)
        check_choice("inverse", inverse, ("woodbury", "recompute"))
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        bias_value = as_real("bias_value", bias_value)
        if not (math.isfinite(bias_value) and bias_value != 0.0):
            raise ValueError(f"bias_value: expected a finite non-zero value, got {bias_value!r}")
        self.in_features = in_features
        self.num_classes = num_classes
        self.has_bias = bool(bias)
        self.bias_value = float(bias_value)
        self.stabilize_every = stabilize_every
        self.inverse: InverseMode = inverse
        self.validate = validate
        dt = self.in_features + int(self.has_bias)
        kw: dict[str, Any] = {"dtype": dtype, "device": device}
        self.register_buffer("V", torch.empty(num_classes, dt, **kw))
        self.register_buffer("U", torch.empty(dt, dt, **kw))
        self.register_buffer("U_inv", torch.empty(dt, dt, **kw))
        self.register_buffer("omega", torch.empty(dt, **kw))
        self.register_buffer("Q", torch.empty(dt, dt, **kw))
        self.register_buffer("w_bar", torch.empty(dt, **kw))
        self.num_updates = 0
        self._version = 0
        self._stash: list[_Stash] = []
        # True: sgd_step runs the 0.1.0 m × m update (_update_reference; tests and the benchmark)
        self._reference_update = False
        self.reset_parameters(generator)

    # ------------------------------------------------------------------ state

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """Raises :class:`TypeError`: the layer has no ``nn.Parameter`` (train it with :class:`FactoredSGD`).

        A parent module's ``parameters()`` is unaffected (it reads each child's parameter table,
        which is empty here), so ``Adam(model.parameters())`` trains the rest of the model.
        """
        raise TypeError(_NO_PARAMETERS.format(cls=type(self).__name__))

    @property
    def augmented_features(self) -> int:
        """``d~ = d + 1`` with a bias, else ``d``."""
        return self.in_features + int(self.has_bias)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """``nn.Linear``-style init of ``V``; ``U = U⁻¹ = I``, ``ω = 0``, exact ``Q`` and ``w̄``."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            # Drawn on the CPU so that the same generator gives the same weights on every device.
            v = torch.rand(self.V.shape, generator=generator, dtype=torch.float64)
            v = (2.0 * v - 1.0) * bound
            if self.has_bias:
                v[:, -1] /= self.bias_value
            self.V.copy_(v)
            self.U.copy_(torch.eye(self.augmented_features))
            self.U_inv.copy_(torch.eye(self.augmented_features))
            self.omega.zero_()
            self._refresh_bookkeeping()
        self.num_updates = 0
        self._bump()

    def _bump(self) -> None:
        self._version += 1
        self._stash.clear()

    def _refresh_bookkeeping(self) -> None:
        """Exact ``Q = WᵀW`` and ``w̄ = Wᵀ1``, over row chunks of W (``O(D d²)``)."""
        q = torch.zeros_like(self.Q)
        w = torch.zeros_like(self.w_bar)
        for rows in self._weight_chunks():
            q += rows.T @ rows
            w += rows.sum(0)
        self.Q.copy_(0.5 * (q + q.T))
        self.w_bar.copy_(w)

    def _weight_chunks(self, rows: int = 32768) -> Any:
        for start in range(0, self.num_classes, rows):
            yield self.V[start : start + rows] @ self.U + self.omega

    def get_extra_state(self) -> dict[str, float]:
        """The update counter (it schedules :meth:`stabilize`) and ``bias_value`` (``V`` stores
        the bias divided by it), saved with the buffers."""
        return {"num_updates": self.num_updates, "bias_value": self.bias_value}

    def set_extra_state(self, state: dict[str, float]) -> None:
        """Restore the update counter (``bias_value`` is checked before any buffer is loaded)."""
        self.num_updates = int(state["num_updates"])
        self._bump()

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        extra = state_dict.get(prefix + "_extra_state")
        saved_v = extra.get("bias_value") if isinstance(extra, dict) else None
        if saved_v is not None and self.has_bias and float(saved_v) != self.bias_value:
            raise ValueError(
                f"the state was saved with bias_value={saved_v} but this layer has "
                f"bias_value={self.bias_value}; V holds the bias divided by it, so the loaded "
                f"layer would have another bias: build it with bias_value={saved_v}"
            )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._bump()

    # ------------------------------------------------------------------ inputs

    def _check_h(self, h: Tensor) -> Tensor:
        check_float_tensor("h", h)
        if h.dim() != 2 or h.shape[1] != self.in_features:
            raise ValueError(
                f"h: expected shape (B, in_features={self.in_features}), got {tuple(h.shape)}"
            )
        check_nonempty("h", h)
        if self.V.dtype not in (torch.float32, torch.float64):
            raise TypeError(
                f"the layer's state is {self.V.dtype} (after .half()/.to()?); the factored update "
                "needs float32 or float64: convert the layer back with .float() or .double()"
            )
        if h.device != self.V.device:
            raise ValueError(
                f"h is on {h.device} but the layer is on {self.V.device}; move one of them"
            )
        if h.dtype != self.V.dtype:
            if torch.is_autocast_enabled(h.device.type):
                h = h.to(self.V.dtype)  # the layer always runs in its own precision
            else:
                raise TypeError(
                    f"h has dtype {h.dtype} but the layer holds {self.V.dtype}; cast h or "
                    "build the layer with that dtype"
                )
        check_finite("h", h, validate=self.validate)
        return h

    def _augment(self, h: Tensor) -> Tensor:
        if not self.has_bias:
            return h
        return torch.cat([h, h.new_full((h.shape[0], 1), self.bias_value)], dim=1)

    def _z(
        self,
        ht: Tensor,
        target: Tensor,
        grad_a: Tensor,
        grad_s: Tensor,
        vt: Tensor | None = None,
    ) -> Tensor:
        """``Z = Wᵀ(Ẏ + 1 g_sᵀ)`` per row: ``(Σ_k G_A V[T]) U + ȳ ω + g_s w̄``, (m, d~).

        ``vt`` is ``V[target]`` ``(m, K, d~)`` when the caller already gathered it.
        """
        if vt is None:
            vt = self.V[target]
        yv = torch.einsum("mk,mkd->md", grad_a, vt)
        return yv @ self.U + grad_a.sum(1)[:, None] * self.omega + grad_s[:, None] * self.w_bar

    # ------------------------------------------------------------------ forward

    def forward(self, h: Tensor, target: Tensor) -> SphericalOutputs:
        """Spherical statistics of ``o = W h + b`` for the targets.

        Args:
            h: ``(B, in_features)`` on the layer's device and dtype (under autocast it is cast).
            target: ``(B,)`` or ``(B, K)`` integer classes in ``[0, num_classes)``.

        Returns:
            :class:`SphericalOutputs` ``(target_logits (B, K), sq_sum (B,), sum (B,))``.
        """
        h = self._check_h(h)
        tgt = spherical_targets(target, h.shape[0], self.num_classes, validate=self.validate)
        tgt = tgt.to(self.V.device)
        trigger = h.new_zeros(0)
        if torch.is_grad_enabled():
            # Makes backward run (and stash the update) even when h needs no gradient.
            trigger.requires_grad_(True)
        with torch.autocast(h.device.type, enabled=False):
            a, q, s = _FactoredSpherical.apply(h, tgt, self, trigger)
        return SphericalOutputs(a, q, s)

    # ------------------------------------------------------------------ update

    def zero_grad_stash(self) -> None:
        """Drop the gradients stashed by backward passes (what ``FactoredSGD.zero_grad`` does).

        Every backward through the layer stashes ``O(m d)`` numbers until :meth:`sgd_step` or this
        drops them: when only the body is trained (the head frozen), call it every iteration
        (a ``RuntimeWarning`` is issued once 100 backward passes are held).
        """
        self._stash.clear()

    @property
    def has_pending_update(self) -> bool:
        """Whether a backward pass has stashed gradients that :meth:`sgd_step` would apply."""
        return bool(self._stash)

    def sgd_step(self, lr: float, weight_decay: float = 0.0) -> None:
        """Apply ``W ← (1 - lr·λ) W - lr · ∂L/∂W`` exactly (``torch.optim.SGD`` semantics).

        ``∂L/∂W`` is that of the backward passes since the last step (concatenated). Cost
        ``O(m d² + m² d + m K d)`` (+ ``O(m³)`` Woodbury or ``O(d³)`` recompute).

        Weight decay runs the step with rate ``lr / f`` and then scales ``U, ω, w̄`` by
        ``f = 1 - lr·λ``, ``Q`` by ``f²`` and ``U⁻¹`` by ``1/f`` (exact; the reference forgets ``Q``
        and ``w̄``).

        Raises:
            RuntimeError: no backward pass since the last step (or a step after the forward).
            ValueError: ``lr < 0``, ``weight_decay < 0`` or ``lr·weight_decay >= 1``; with
                ``validate`` (one host sync), NaN/Inf stashed gradients: the state is left as it
                was, whereas without ``validate`` they would make ``V``, ``U`` or the bookkeeping
                non-finite for good.
            TypeError: ``lr`` or ``weight_decay`` not a real number.
        """
        lr = check_positive("lr", lr, allow_zero=True)
        weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        decay = 1.0 - lr * weight_decay
        if decay <= 0.0:
            raise ValueError(f"lr * weight_decay: expected a value < 1, got {lr * weight_decay!r}")
        if not self._stash:
            raise RuntimeError(
                "sgd_step() needs the gradients of a backward pass: call loss.backward() first "
                "(each backward is consumed by one step, so a second step needs a new backward)"
            )
        if any(s.version != self._version for s in self._stash):
            self._stash.clear()
            raise RuntimeError("stashed gradients were computed for an older state of the layer")
        h, target, grad_a, grad_q, grad_s, hq, z = self._collect_stash()
        self._stash.clear()
        if self.validate and not bool(
            torch.isfinite(grad_a).all()
            & torch.isfinite(grad_q).all()
            & torch.isfinite(grad_s).all()
        ):
            raise ValueError(
                "the gradients stashed by backward contain NaN or Inf (is the loss finite?); "
                "the layer was not updated and the gradients were dropped"
            )
        with torch.no_grad(), torch.autocast(h.device.type, enabled=False):
            if self._reference_update:
                self._update_reference(h, target, grad_a, grad_q, grad_s, lr / decay)
            else:
                self._update(h, target, grad_a, grad_q, grad_s, lr / decay, hq=hq, z=z)
            if decay != 1.0:
                self.U.mul_(decay)
                self.U_inv.div_(decay)
                self.omega.mul_(decay)
                self.Q.mul_(decay * decay)
                self.w_bar.mul_(decay)
        self._version += 1
        self.num_updates += 1
        if self.stabilize_every and self.num_updates % self.stabilize_every == 0:
            self.stabilize()

    def _collect_stash(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        if len(self._stash) == 1:
            s = self._stash[0]
            return s.h, s.target, s.grad_a, s.grad_q, s.grad_s, s.hq, s.z
        k = max(s.target.shape[1] for s in self._stash)

        def pad(t: Tensor) -> Tensor:  # extra targets: class 0 with zero gradient
            return torch.nn.functional.pad(t, (0, k - t.shape[1]))

        return (
            torch.cat([s.h for s in self._stash]),
            torch.cat([pad(s.target) for s in self._stash]),
            torch.cat([pad(s.grad_a) for s in self._stash]),
            torch.cat([s.grad_q for s in self._stash]),
            torch.cat([s.grad_s for s in self._stash]),
            torch.cat([s.hq for s in self._stash]),
            torch.cat([s.z for s in self._stash]),
        )

    @staticmethod
    def _yy(target: Tensor, grad_a: Tensor, dtype: torch.dtype) -> Tensor:
        """``Ẏ Ẏᵀ`` (m, m): ``Σ_kl G_A[i,k] G_A[j,l] [T_ik == T_jl]``; duplicates accumulate.

        The ``(mK)²`` comparison is taken over blocks of rows so that it stays below
        ``_YY_BLOCK`` elements (one block, the whole matrix, whenever ``(mK)²`` fits, e.g. always
        for ``K = 1`` and ``m <= 4096``).
        """
        m, k = target.shape
        flat_t, flat_g = target.reshape(-1), grad_a.reshape(-1)
        rows = max(1, _YY_BLOCK // (m * k * k))
        blocks = []
        for start in range(0, m, rows):  # over blocks of examples, not examples
            bt, bg = flat_t[start * k : (start + rows) * k], flat_g[start * k : (start + rows) * k]
            same = (bt[:, None] == flat_t[None, :]).to(dtype)
            blocks.append((same * bg[:, None] * flat_g[None, :]).reshape(-1, k, m, k).sum((1, 3)))
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks)

    def _update(
        self,
        h: Tensor,
        target: Tensor,
        grad_a: Tensor,
        grad_q: Tensor,
        grad_s: Tensor,
        eta: float,
        *,
        hq: Tensor | None = None,
        z: Tensor | None = None,
    ) -> None:
        """Steps 1-6 of the exact update with rate ``eta``, in ``d~ × d~`` form (the default).

        The same update as :meth:`_update_reference` (equal to float rounding; tested), regrouped
        so that no ``m × m`` matrix but ``Ẏ Ẏᵀ`` is formed: with ``P = 2 diag(g_q) H`` and
        ``S = Hᵀ P`` (``d~ × d~``), ``Hᵀ M̃ H = (PᵀĤ) S + D uuᵀ + Hᵀ(ẎẎᵀ H) + u ūᵀ + ū uᵀ
        + S (ZᵀH) + (HᵀZ) S`` (``u = Hᵀ g_s``, ``ū = Hᵀ ȳ``), ``grad_Hᵀ H = (PᵀĤ)ᵀ + ZᵀH``,
        ``U ← U - η U S``, and for ``m > d~`` the Woodbury step is the equal ``d~ × d~`` solve
        ``U⁻¹ ← (I - η S)⁻¹ U⁻¹`` (the ``m × m`` solve otherwise). ``hq = H Q`` and ``z`` (the
        rows of ``Wᵀ(Ẏ + 1 g_sᵀ)``) are reused from the backward pass when given. Cost
        ``O(m d² + m² d + d³)`` with about half the ``m d²`` products of the reference.
        """
        m, dt = h.shape
        if hq is None:
            hq = h @ self.Q  # Ĥ
        if z is None:
            z = self._z(h, target, grad_a, grad_s)
        y_bar = grad_a.sum(1)
        yy = self._yy(target, grad_a, h.dtype)
        gq2 = 2.0 * grad_q
        p = gq2[:, None] * h  # 2 diag(g_q) H
        s_mat = h.T @ p  # Hᵀ 2 diag(g_q) H, (d~, d~)
        u_s, u_y = h.T @ grad_s, h.T @ y_bar
        ptq = p.T @ hq  # Pᵀ Ĥ
        zth = z.T @ h  # Zᵀ H
        sz = s_mat @ zth
        ht_m_h = (
            ptq @ s_mat
            + self.num_classes * torch.outer(u_s, u_s)
            + h.T @ (yy @ h)
            + torch.outer(u_s, u_y)
            + torch.outer(u_y, u_s)
            + sz
            + sz.T
        )
        cross = ptq.T + zth  # grad_Hᵀ H
        w_step = s_mat @ self.w_bar + self.num_classes * u_s + u_y
        # 2. U ← U (I - η S); U⁻¹ ← (I - η S)⁻¹ U⁻¹
        self.U.sub_(eta * (self.U @ s_mat))
        if self.inverse == "woodbury":
            if m > dt:
                eye = torch.eye(dt, dtype=h.dtype, device=h.device)
                self.U_inv.copy_(torch.linalg.solve(eye - eta * s_mat, self.U_inv))
            else:
                self._woodbury_m(h, eta * gq2)
        else:
            self.U_inv.copy_(torch.linalg.inv(self.U))
        # 3. ω ← ω - η (S ω + u)
        self.omega.sub_(eta * (s_mat @ self.omega + u_s))
        # 4. V[T] ← V[T] - η Ẏᵀ H U_new⁻¹  (only the K·m target rows)
        hv = h @ self.U_inv
        delta = (-eta) * grad_a[:, :, None] * hv[:, None, :]
        self.V.index_add_(0, target.reshape(-1), delta.reshape(-1, dt))
        # 5. Q ← Q - η(grad_Hᵀ H + Hᵀ grad_H) + η² Hᵀ M̃ H
        self.Q.add_(-eta * (cross + cross.T) + (eta * eta) * ht_m_h)
        self.Q.copy_(0.5 * (self.Q + self.Q.T))
        # 6. w̄ ← w̄ - η (S w̄ + D u + ū)
        self.w_bar.sub_(eta * w_step)

    def _woodbury_m(self, h: Tensor, c: Tensor) -> None:
        """``U⁻¹ ← (I + Hᵀ C (I - H Hᵀ C)⁻¹ H) U⁻¹`` with ``C = diag(c)``: an ``m × m`` solve."""
        m = h.shape[0]
        system = torch.eye(m, dtype=h.dtype, device=h.device) - (h @ h.T) * c[None, :]
        r = torch.linalg.solve(system, h @ self.U_inv)
        self.U_inv.add_(h.T @ (c[:, None] * r))

    def _update_reference(
        self, h: Tensor, target: Tensor, grad_a: Tensor, grad_q: Tensor, grad_s: Tensor, eta: float
    ) -> None:
        """Steps 1-6 of the exact update with rate ``eta`` in ``m × m`` form (the 0.1.0 path).

        Kept as the reference :meth:`_update` is tested against; forms the ``m × m`` matrix
        ``M̃`` and (Woodbury) solves an ``m × m`` system.
        """
        hq = h @ self.Q  # Ĥ
        s = h @ self.w_bar
        y_bar = grad_a.sum(1)
        z = self._z(h, target, grad_a, grad_s)  # Wᵀ(Ẏ + 1 g_sᵀ) per row
        grad_h = 2.0 * grad_q[:, None] * hq + z
        flat_t = target.reshape(-1)
        yy = self._yy(target, grad_a, h.dtype)
        gq2 = 2.0 * grad_q
        hz = h @ z.T  # h_i · Z_j
        m_tilde = (
            (gq2[:, None] * gq2[None, :]) * (hq @ h.T)
            + self.num_classes * grad_s[:, None] * grad_s[None, :]
            + yy
            + grad_s[:, None] * y_bar[None, :]
            + y_bar[:, None] * grad_s[None, :]
            + gq2[:, None] * hz
            + hz.T * gq2[None, :]
        )
        gqh = gq2[:, None] * h  # 2 diag(g_q) H
        # 2. U ← U (I - 2η Hᵀ diag(g_q) H); U⁻¹ ← (I + Hᵀ C (I - H Hᵀ C)⁻¹ H) U⁻¹, C = 2η diag(g_q)
        self.U.sub_(eta * ((self.U @ h.T) @ gqh))
        if self.inverse == "woodbury":
            self._woodbury_m(h, eta * gq2)
        else:
            self.U_inv.copy_(torch.linalg.inv(self.U))
        # 3. ω ← ω - η Hᵀ(2 diag(g_q) H ω + g_s)
        self.omega.sub_(eta * (h.T @ (gq2 * (h @ self.omega) + grad_s)))
        # 4. V[T] ← V[T] - η Ẏᵀ H U_new⁻¹  (only the K·m target rows)
        hv = h @ self.U_inv
        delta = (-eta) * grad_a[:, :, None] * hv[:, None, :]
        self.V.index_add_(0, flat_t, delta.reshape(-1, h.shape[1]))
        # 5. Q ← Q - η(grad_Hᵀ H + Hᵀ grad_H) + η² Hᵀ M̃ H
        cross = grad_h.T @ h
        self.Q.add_(-eta * (cross + cross.T) + (eta * eta) * (h.T @ (m_tilde @ h)))
        self.Q.copy_(0.5 * (self.Q + self.Q.T))
        # 6. w̄ ← w̄ - η Hᵀ(2 diag(g_q) s + D g_s + ȳ)
        self.w_bar.sub_(eta * (h.T @ (gq2 * s + self.num_classes * grad_s + y_bar)))

    # ------------------------------------------------------------------ stability

    @torch.no_grad()
    def stabilize(self, low: float = 0.5, high: float = 2.0) -> int:
        """Bring the singular values of ``U`` back into ``[low, high]`` without changing ``W``.

        First recomputes ``U⁻¹`` exactly (iterated Woodbury drifts). For each out-of-range singular
        value ``σ`` with left singular vector ``u``: ``U ← (I + α u uᵀ) U``, ``V ← V (I + β u uᵀ)``,
        ``U⁻¹ ← U⁻¹ (I + β u uᵀ)``, ``α = 1/σ - 1``, ``β = -α/(1 + α)`` (``O(D d)`` each). If more than
        a third are out of range, :meth:`unfactorize` (``O(D d²)``). Returns how many were fixed.

        Raises:
            ValueError: unless ``0 < low <= 1 <= high`` (the maps send each fixed value to 1).
        """
        low, high = as_real("low", low), as_real("high", high)
        if not (0.0 < low <= 1.0 <= high < math.inf):
            raise ValueError(
                f"stabilize needs 0 < low <= 1 <= high < inf, got low={low}, high={high}"
            )
        with torch.autocast(self.U.device.type, enabled=False):
            self.U_inv.copy_(torch.linalg.inv(self.U))
            left, sing, _ = torch.linalg.svd(self.U)
            out = (sing < low) | (sing > high)
            n_out = int(out.sum())
            if n_out == 0:
                return 0
            if 3 * n_out > sing.numel():
                log.debug("stabilize: %d of %d singular values out of range", n_out, sing.numel())
                self.unfactorize()
                return n_out
            u = left[:, out]
            alpha = 1.0 / sing[out] - 1.0
            beta = -alpha / (1.0 + alpha)
            self.U.add_((u * alpha) @ (u.T @ self.U))
            self.V.add_((self.V @ u) @ (beta[:, None] * u.T))
            self.U_inv.add_((self.U_inv @ u) @ (beta[:, None] * u.T))
        return n_out

    @torch.no_grad()
    def unfactorize(self) -> None:
        """``V ← W``, ``U = U⁻¹ = I``, ``ω = 0``, and exact ``Q``, ``w̄`` (``O(D d²)``; W unchanged)."""
        with torch.autocast(self.U.device.type, enabled=False):
            for start in range(0, self.num_classes, 32768):
                rows = self.V[start : start + 32768]
                rows.copy_(rows @ self.U + self.omega)
            eye = torch.eye(self.augmented_features, dtype=self.U.dtype, device=self.U.device)
            self.U.copy_(eye)
            self.U_inv.copy_(eye)
            self.omega.zero_()
            self._refresh_bookkeeping()

    @torch.no_grad()
    def check_invariants(self, atol: float = 1e-6) -> dict[str, float]:
        """Relative errors of the bookkeeping: ``Q = WᵀW``, ``w̄ = Wᵀ1``, ``U U⁻¹ = I``.

        Returns the three errors (each relative to ``max(1, max|exact|)``); raises ``RuntimeError``
        naming the first one above ``atol``. ``O(D d²)``.
        """
        q = torch.zeros_like(self.Q)
        w = torch.zeros_like(self.w_bar)
        for rows in self._weight_chunks():
            q += rows.T @ rows
            w += rows.sum(0)
        eye = torch.eye(self.augmented_features, dtype=self.U.dtype, device=self.U.device)

        def rel(got: Tensor, exact: Tensor) -> float:
            return float((got - exact).abs().max() / exact.abs().max().clamp_min(1.0))

        errors = {
            "Q": rel(self.Q, q),
            "w_bar": rel(self.w_bar, w),
            "U_inv": rel(self.U @ self.U_inv, eye),
        }
        for name, err in errors.items():
            if not err <= atol:
                raise RuntimeError(f"invariant {name} broken: relative error {err:.3g} > {atol}")
        return errors

    # ------------------------------------------------------------------ dense views

    @torch.no_grad()
    def weight_augmented(self) -> Tensor:
        """Dense ``(D, d~)`` matrix ``V U + 1 ωᵀ`` (the bias column last, scaled by ``1/v``)."""
        return torch.cat(list(self._weight_chunks()))

    def weight(self) -> Tensor:
        """Dense ``(D, in_features)`` weight, as ``nn.Linear.weight`` (``O(D d²)``)."""
        return self.weight_augmented()[:, : self.in_features]

    def bias(self) -> Tensor | None:
        """Dense ``(D,)`` bias (``v`` times the last column), or None without a bias."""
        if not self.has_bias:
            return None
        return self.weight_augmented()[:, -1] * self.bias_value

    def to_linear(self) -> nn.Linear:
        """An ``nn.Linear(in_features, num_classes)`` with the same weights."""
        lin = nn.Linear(
            self.in_features,
            self.num_classes,
            bias=self.has_bias,
            dtype=self.V.dtype,
            device=self.V.device,
        )
        with torch.no_grad():
            w = self.weight_augmented()
            lin.weight.copy_(w[:, : self.in_features])
            if lin.bias is not None:
                lin.bias.copy_(w[:, -1] * self.bias_value)
        return lin

    @classmethod
    def from_linear(cls, linear: nn.Linear, **kwargs: Any) -> FactoredSphericalLinear:
        """A factored layer equal to ``linear`` (``V = [W, b/v]``, ``U = I``, ``ω = 0``).

        ``kwargs`` go to the constructor (``bias_value``, ``stabilize_every``, ``inverse``, ...;
        not ``bias``, which is read from ``linear``). With ``validate`` (default) a non-finite
        weight or bias is a ``ValueError``.
        """
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear: expected an nn.Linear, got {type(linear).__name__}")
        if "bias" in kwargs:
            raise TypeError(
                "from_linear takes bias from linear (linear.bias is not None); do not pass bias="
            )
        if kwargs.get("validate", True):
            for name, t in (("linear.weight", linear.weight), ("linear.bias", linear.bias)):
                if t is not None:
                    check_finite(name, t)
        kwargs.setdefault("dtype", linear.weight.dtype)
        kwargs.setdefault("device", linear.weight.device)
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, **kwargs)
        with torch.no_grad():
            layer.V[:, : linear.in_features].copy_(linear.weight)
            if linear.bias is not None:
                layer.V[:, -1].copy_(linear.bias / layer.bias_value)
            layer._refresh_bookkeeping()
        layer._bump()
        return layer

    def logits(self, h: Tensor) -> Tensor:
        """All ``(B, D)`` outputs ``W h + b`` for evaluation (``O(B D d)``; differentiable in h)."""
        h = self._check_h(h)
        ht = self._augment(h)
        return (ht @ self.U.T) @ self.V.T + (ht @ self.omega)[:, None]

    @torch.no_grad()
    def topk(self, h: Tensor, k: int, chunk_size: int = 65536) -> tuple[Tensor, Tensor]:
        """Top-``k`` outputs and classes ``((B, k), (B, k))`` without a ``(B, D)`` tensor.

        Scans ``V`` in chunks of ``chunk_size`` rows (``O(B D d)`` time, ``O(B·chunk_size)`` memory).
        """
        check_positive_int("k", k)
        if k > self.num_classes:
            raise ValueError(f"k: expected a value <= num_classes={self.num_classes}, got {k}")
        check_positive_int("chunk_size", chunk_size)
        h = self._check_h(h)
        ht = self._augment(h)
        hu, hw = ht @ self.U.T, (ht @ self.omega)[:, None]
        best_v = ht.new_full((h.shape[0], 0), -math.inf)
        best_i = torch.empty(h.shape[0], 0, dtype=torch.long, device=h.device)
        for start in range(0, self.num_classes, chunk_size):
            scores = hu @ self.V[start : start + chunk_size].T + hw
            kk = min(k, scores.shape[1])
            v, i = scores.topk(kk, dim=1)
            best_v, pos = torch.cat([best_v, v], 1).topk(min(k, best_v.shape[1] + kk), dim=1)
            best_i = torch.cat([best_i, i + start], 1).gather(1, pos)
        return best_v, best_i

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_classes={self.num_classes}, "
            f"bias={self.has_bias}, bias_value={self.bias_value}, "
            f"stabilize_every={self.stabilize_every}, inverse={self.inverse!r}"
        )


class FactoredSGD:
    """Plain SGD (with optional weight decay) for a :class:`FactoredSphericalLinear` (or a head).

    ``torch.optim.SGD`` semantics on the dense ``W``: ``W ← W - lr (∂L/∂W + λ W)``, applied exactly
    in ``O(d²)`` per example. ``step()`` applies the gradients stashed by ``loss.backward()``;
    ``zero_grad()`` drops unapplied ones. ``lr`` is a plain attribute (schedule it by assignment).

    Deviation: not a ``torch.optim.Optimizer`` (the layer has no parameters, its state is buffers),
    so torch LR schedulers do not drive it. Momentum, Nesterov and dampening are refused: their state
    would be a dense ``D × d`` matrix, which the factored form exists to avoid.
    """

    def __init__(
        self,
        layer: nn.Module,
        lr: float,
        weight_decay: float = 0.0,
        *,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        target = getattr(layer, "layer", layer)
        if not isinstance(target, FactoredSphericalLinear):
            raise TypeError(
                "FactoredSGD updates a FactoredSphericalLinear (or FactoredZLossHead); got "
                f"{type(layer).__name__}. Train other parameters with any torch.optim optimizer."
            )
        if momentum != 0.0 or dampening != 0.0 or nesterov:
            raise ValueError(
                "FactoredSGD supports plain SGD only (momentum=0, dampening=0, nesterov=False): "
                "momentum/Adam state on W would be a dense D x d matrix, and the update would no "
                "longer be exact in factored form"
            )
        lr = check_positive("lr", lr, allow_zero=True)
        weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.layer = target
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)

    def step(self) -> None:
        """Apply the stashed gradients (see :meth:`FactoredSphericalLinear.sgd_step`)."""
        self.layer.sgd_step(self.lr, self.weight_decay)

    def zero_grad(self) -> None:
        """Drop gradients stashed since the last step."""
        self.layer.zero_grad_stash()

    def state_dict(self) -> dict[str, float]:
        """``{"lr", "weight_decay"}`` (the layer's state is in the layer's own ``state_dict``)."""
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore ``lr`` and ``weight_decay`` from :meth:`state_dict`."""
        self.lr = float(state["lr"])
        self.weight_decay = float(state["weight_decay"])


class FactoredZLossHead(nn.Module):
    """A :class:`FactoredSphericalLinear` followed by the Z-loss: ``head(h, target) -> loss``.

    Args: ``in_features`` (d), ``num_classes`` (D), ``a``, ``b``, ``eps`` of :func:`z_loss`
    (defaults 1.0, 0.0, 1e-12: tune a and b), ``reduction`` (default ``"mean"``); the rest go to
    :class:`FactoredSphericalLinear`. Train with ``loss.backward()`` then :meth:`sgd_step` or
    :class:`FactoredSGD`; predict with :meth:`logits` or :meth:`topk`.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        a: float = 1.0,
        b: float = 0.0,
        eps: float = 1e-12,
        reduction: Reduction = "mean",
        **layer_kwargs: Any,
    ) -> None:
        super().__init__()
        loss = ZLoss(a, b, eps, reduction)  # checks a, b, eps and reduction like the dense loss
        self.a, self.b, self.eps = loss.a, loss.b, loss.eps
        self.reduction: Reduction = loss.reduction
        self.layer = FactoredSphericalLinear(in_features, num_classes, **layer_kwargs)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-initialise the layer (see :meth:`FactoredSphericalLinear.reset_parameters`)."""
        self.layer.reset_parameters(generator)

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """Raises :class:`TypeError`: the layer has no ``nn.Parameter`` (train it with :class:`FactoredSGD`).

        A parent module's ``parameters()`` is unaffected (it reads each child's parameter table,
        which is empty here), so ``Adam(model.parameters())`` trains the rest of the model.
        """
        raise TypeError(_NO_PARAMETERS.format(cls=type(self).__name__))

    def forward(self, h: Tensor, target: Tensor) -> Tensor:
        """Z-loss of ``(B, d)`` features ``h`` for ``(B,)``/``(B, K)`` targets (scalar or ``(B,)``)."""
        a, q, s = self.layer(h, target)
        return z_loss_from_stats(
            a,
            q,
            s,
            self.layer.num_classes,
            self.a,
            self.b,
            self.eps,
            self.reduction,
            validate=False,
        )

    def sgd_step(self, lr: float, weight_decay: float = 0.0) -> None:
        """See :meth:`FactoredSphericalLinear.sgd_step`."""
        self.layer.sgd_step(lr, weight_decay)

    def logits(self, h: Tensor) -> Tensor:
        """All ``(B, D)`` outputs (evaluation)."""
        return self.layer.logits(h)

    def topk(self, h: Tensor, k: int, chunk_size: int = 65536) -> tuple[Tensor, Tensor]:
        """Top-``k`` ``(values, classes)``, each ``(B, k)``, chunked over classes."""
        return self.layer.topk(h, k, chunk_size)

    def extra_repr(self) -> str:
        return f"a={self.a}, b={self.b}, eps={self.eps}, reduction={self.reduction!r}"
