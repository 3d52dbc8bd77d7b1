r"""The DHKD objective and gradient alignment.

``L = gamma * CE(z_main, y) + alpha * BinaryKL-Norm_T(z_aux, z_t)`` (official ``--distill dhkd``):
the main head never sees the teacher, which reaches the student through the shared backbone only.
With ``--ga`` the two gradients are aligned before the step (:class:`GradAlign`): when the
distillation gradient conflicts with the cross-entropy gradient (negative inner product) its
component along the cross-entropy gradient is removed (a PCGrad-style projection).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import check_choice, check_labels, check_positive
from paperzoo.dhkd.heads import DualHeadOutput
from paperzoo.dhkd.losses import binary_kl_norm, kd_loss

__all__ = ["DHKDLoss", "GradAlign", "LossBreakdown", "cross_entropy", "gradient_cosine"]


class LossBreakdown(NamedTuple):
    """The DHKD objective and its weighted terms (0-d tensors).

    ``total = ce + logit_kd + prob_kd`` with ``ce = gamma * CE``, ``logit_kd = alpha *
    BinaryKL-Norm`` and ``prob_kd = prob_kd_weight * KD`` (0 when off). For :class:`GradAlign`
    pass ``[ce, logit_kd + prob_kd]`` (cross-entropy first, as the reference).
    """

    total: Tensor
    ce: Tensor
    logit_kd: Tensor
    prob_kd: Tensor


def cross_entropy(logits: Tensor, target: Tensor, *, validate: bool = True) -> Tensor:
    """Mean cross-entropy of ``(N, K)`` logits and ``(N,)`` integer labels, labels checked first.

    Raises:
        TypeError: float/bool labels; ValueError: wrong label shape, labels outside ``[0, K)``
            (the messages name ``target``).
    """
    check_labels(
        "target",
        target,
        n=logits.shape[0],
        num_classes=logits.shape[1],
        like=logits,
        validate=validate,
    )
    return F.cross_entropy(logits, target)


class DHKDLoss(nn.Module):
    """The DHKD objective on a :class:`~paperzoo.dhkd.heads.DualHeadOutput`.

    ``forward(output, teacher_logits, target) -> LossBreakdown``; ``output.main`` and
    ``output.aux`` are ``(N, K)``, ``teacher_logits`` ``(N, K)`` (detached inside), ``target``
    ``(N,)`` integer labels.

    Args:
        temperature: ``T`` of BinaryKL-Norm (``--BinaryKL_T``, default 2).
        alpha: weight of the logit-level term (``-a``; the reference has no default and crashes
            without it: 1 on CIFAR-100, 0.1 on ImageNet; default here 1).
        gamma: weight of cross-entropy (``-r``, default 1).
        prob_kd_weight: weight of an extra softmax-KD term on the *auxiliary* head (an opt-in
            extension: 0, off, in the official DHKD).
        kd_temperature: ``T`` of that KD term (4).
        validate: check logits and labels (host syncs).

    Raises:
        ValueError: negative ``alpha``/``gamma``/``prob_kd_weight``, non-positive temperatures;
            at forward, the errors of :func:`~paperzoo.dhkd.losses.binary_kl_norm` (a teacher
            with another K than the auxiliary head, NaN/inf) and of :func:`cross_entropy`.
        TypeError: ``output`` is not a :class:`DualHeadOutput` (e.g. a model in eval mode).
    """

    def __init__(
        self,
        temperature: float = 2.0,
        alpha: float = 1.0,
        gamma: float = 1.0,
        prob_kd_weight: float = 0.0,
        kd_temperature: float = 4.0,
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.alpha = check_positive("alpha", alpha, allow_zero=True)
        self.gamma = check_positive("gamma", gamma, allow_zero=True)
        self.prob_kd_weight = check_positive("prob_kd_weight", prob_kd_weight, allow_zero=True)
        self.kd_temperature = check_positive("kd_temperature", kd_temperature)
        self.validate = validate

    def forward(
        self, output: DualHeadOutput, teacher_logits: Tensor, target: Tensor
    ) -> LossBreakdown:
        """The weighted terms and their sum (see :class:`LossBreakdown`)."""
        if not isinstance(output, DualHeadOutput):
            raise TypeError(
                "output: expected a DualHeadOutput (main, aux); got "
                f"{type(output).__name__} (is the DualHeadClassifier in eval mode?)"
            )
        main, aux = output
        if aux.shape != teacher_logits.shape:
            raise ValueError(
                f"teacher_logits: expected the auxiliary head's shape {tuple(aux.shape)}, got "
                f"{tuple(teacher_logits.shape)}"
            )
        logit = binary_kl_norm(aux, teacher_logits, self.temperature, validate=self.validate)
        ce = self.gamma * cross_entropy(main, target, validate=self.validate)
        logit_kd = self.alpha * logit
        if self.prob_kd_weight > 0:
            prob = self.prob_kd_weight * kd_loss(
                aux, teacher_logits, self.kd_temperature, validate=self.validate
            )
        else:
            prob = torch.zeros((), dtype=logit.dtype, device=logit.device)
        return LossBreakdown(ce + logit_kd + prob, ce, logit_kd, prob)


def _grads(loss: Tensor, params: Sequence[Tensor], retain: bool) -> list[Tensor | None]:
    return list(torch.autograd.grad(loss, params, retain_graph=retain, allow_unused=True))


def _flat(grads: Sequence[Tensor | None], params: Sequence[Tensor]) -> Tensor:
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )


def gradient_cosine(loss_a: Tensor, loss_b: Tensor, params: Iterable[Tensor]) -> Tensor:
    """Cosine between the gradients of two losses over ``params`` (flattened together).

    Parameters a loss does not reach count as zero gradient. A zero gradient gives cosine 0.
    The graph is kept (``retain_graph``), so both losses can still be back-propagated.

    Returns:
        A 0-d tensor in ``[-1, 1]`` (no host sync).

    Raises:
        ValueError: ``params`` is empty, or a loss does not require grad.
    """
    ps = list(params)
    if not ps:
        raise ValueError("params: expected at least one parameter, got none")
    for name, loss in (("loss_a", loss_a), ("loss_b", loss_b)):
        if not (isinstance(loss, Tensor) and loss.requires_grad):
            raise ValueError(f"{name}: expected a tensor that requires grad")
    ga = _flat(_grads(loss_a, ps, True), ps)
    gb = _flat(_grads(loss_b, ps, True), ps)
    denom = (ga.norm() * gb.norm()).clamp_min(torch.finfo(ga.dtype).tiny)
    cos: Tensor = torch.dot(ga, gb) / denom
    return cos


class GradAlign:
    """Gradient alignment (``helper/optimizer.py``'s ``OptimGradAlign``) around an optimizer.

    ``backward([loss_ce, loss_kd, ...])`` computes each loss's gradient over the optimizer's
    parameters (two or more backward passes on one graph); every later gradient ``g_i`` that
    conflicts with the first one ``g_0`` (``<g_i, g_0> < 0``) is projected onto its normal plane,
    ``g_i <- g_i - <g_i, g_0> / ||g_0||^2 g_0``; the parameters' ``.grad`` is set to the sum.
    Without a conflict the result is plain ``sum(losses).backward()``.

    ``scope="all"`` (the reference) flattens all parameters together, so the projection also
    adds a multiple of ``g_0`` to parameters only the first loss reaches (the main head);
    ``scope="shared"`` measures and projects on ``shared_params`` only (default: the parameters
    every loss reaches, e.g. the backbone) and sums the rest unchanged.

    The conflict test is a ``torch.where`` on the device: no host sync. ``last_cosine`` holds the
    cosine of ``g_0`` and ``g_1`` (within the scope) from the latest call.

    Args:
        optimizer: any ``torch.optim.Optimizer``; its parameters are the ones aligned.
        scope: ``"all"`` (default) or ``"shared"``.
        shared_params: for ``scope="shared"``, the parameters to align on (default: inferred).

    Raises:
        ValueError: an unknown scope; at ``backward``, an empty list or a loss that does not
            require grad.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        scope: Literal["all", "shared"] = "all",
        shared_params: Iterable[Tensor] | None = None,
    ) -> None:
        self.optimizer = optimizer
        self.scope = check_choice("scope", scope, ("all", "shared"))
        self.params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
        self._shared_ids = None if shared_params is None else {id(p) for p in shared_params}
        self.last_cosine: Tensor | None = None

    def aligned_gradients(self, losses: Sequence[Tensor]) -> list[Tensor]:
        """The aligned summed gradient, one tensor per parameter (``.grad`` untouched)."""
        if not isinstance(losses, Sequence) or len(losses) == 0:
            raise ValueError("losses: expected a non-empty list of scalar losses")
        for i, loss in enumerate(losses):
            if not (isinstance(loss, Tensor) and loss.requires_grad):
                raise ValueError(
                    f"losses[{i}]: expected a scalar tensor that requires grad (does it depend "
                    "on the optimizer's parameters?)"
                )
        ps = self.params
        raw = [_grads(loss, ps, i < len(losses) - 1) for i, loss in enumerate(losses)]
        if self.scope == "shared":
            if self._shared_ids is not None:
                mask = [id(p) in self._shared_ids for p in ps]
            else:
                mask = [all(r[j] is not None for r in raw) for j in range(len(ps))]
        else:
            mask = [True] * len(ps)
        sel = [p for p, m in zip(ps, mask, strict=True) if m]
        flats = [_flat([g for g, m in zip(r, mask, strict=True) if m], sel) for r in raw]
        g0 = flats[0]
        norm2 = torch.dot(g0, g0).clamp_min(torch.finfo(g0.dtype).tiny)
        total = g0.clone()
        for i, gi in enumerate(flats[1:]):
            dot = torch.dot(gi, g0)
            if i == 0:
                self.last_cosine = (
                    dot / (norm2.sqrt() * gi.norm()).clamp_min(torch.finfo(g0.dtype).tiny)
                ).detach()
            total += gi - torch.clamp(dot, max=0.0) / norm2 * g0
        out: list[Tensor] = []
        k = 0
        for j, (p, m) in enumerate(zip(ps, mask, strict=True)):
            if m:
                out.append(total[k : k + p.numel()].view_as(p))
                k += p.numel()
            else:
                parts = [g for r in raw if (g := r[j]) is not None]
                out.append(torch.stack(parts).sum(0) if parts else torch.zeros_like(p))
        return out

    def backward(self, losses: Sequence[Tensor]) -> None:
        """Set each parameter's ``.grad`` to the aligned sum of the ``losses``' gradients."""
        for p, g in zip(self.params, self.aligned_gradients(losses), strict=True):
            p.grad = g.detach().clone()

    def aligned_loss(self, losses: Sequence[Tensor]) -> Tensor:
        """A scalar whose value is ``sum(losses)`` and whose gradient is the aligned gradient.

        For training loops that call ``loss.backward()`` themselves (``paperzoo.core.training.
        fit``): ``sum_p <g_p, p>`` with the aligned ``g_p`` held constant has gradient ``g_p``.
        """
        grads = self.aligned_gradients(losses)
        value = torch.stack([loss.detach() for loss in losses]).sum()
        surrogate = sum(
            ((g.detach() * p).sum() for g, p in zip(grads, self.params, strict=True)),
            torch.zeros((), dtype=value.dtype, device=value.device),
        )
        return value + surrogate - surrogate.detach()

    def step(self) -> None:
        """The wrapped optimizer's step."""
        self.optimizer.step()

    def zero_grad(self) -> None:
        """The wrapped optimizer's ``zero_grad(set_to_none=True)``."""
        self.optimizer.zero_grad(set_to_none=True)
