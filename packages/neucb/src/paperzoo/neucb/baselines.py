r"""Baselines: NeuralUCB, NeuralTS (diagonal), neural epsilon-greedy, linear SquareCB, uniform.

The network baselines model the *reward* ``r = 1 - y`` (as in their papers) and pick the arm with
the highest score; they are trained by the same OGD(+replay) steps as the regression agents so
the comparison isolates the exploration rule. Per-arm gradients of NeuralUCB/NeuralTS are never a
Python loop over arms: for a chain of Linear layers (``mlp``) they stay factored per layer (inputs
times output gradients, no ``(K, P)`` matrix); for any other network they come from one
``torch.func.vmap`` over the arms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from paperzoo.neucb.agents import (
    BanditAgent,
    GammaSchedule,
    OnlineNeuralAgent,
    check_gamma_schedule,
    scheduled_gamma,
)
from paperzoo.neucb.functional import igw_probs, squared_loss

__all__ = ["LinSquareCB", "NeuralEpsGreedy", "NeuralTS", "NeuralUCB", "Uniform"]


class _RewardAgent(OnlineNeuralAgent):
    """A network fit to rewards ``1 - y`` by OGD on the squared loss."""

    def _target(self, loss: float) -> float:
        return 1.0 - loss

    def _oracle_loss(self, out: Tensor, target: Tensor) -> Tensor:
        return squared_loss(out, target, validate=False)

    def _oracle_grad(self, out: Tensor, target: Tensor) -> Tensor:
        return (out - target) / out.shape[0]  # of mean ½(f - y)²


#: Parameter-free modules that act on each row (each arm) on its own, elementwise: a
#: ``nn.Sequential`` of these and ``nn.Linear`` layers gets the per-layer bonus path.
_ROWWISE = (
    nn.ReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Softplus,
    nn.Identity,
)


@dataclass
class _LayerGrads:
    """Per-arm gradients in factored form: for each ``nn.Linear`` of the chain, its inputs
    ``acts (K, in)`` and the gradients of ``f`` at its outputs ``deltas (K, out)``; arm ``k``'s
    weight gradient is ``deltas[k] ⊗ acts[k]`` and its bias gradient ``deltas[k]``."""

    acts: list[Tensor]
    deltas: list[Tensor]


#: One link of the chain: the module, and for a Linear the indices of its weight and bias among
#: the agent's trainable parameters (``None``: no bias).
_Link = tuple[nn.Module, int | None, int | None]


def _linear_chain(net: nn.Module, names: list[str]) -> list[_Link] | None:
    """The chain of ``net`` when it is an ``nn.Sequential`` of ``nn.Linear`` and row-wise
    parameter-free modules whose trainable parameters are exactly the Linear layers' weights (and
    biases; a frozen bias is a constant); else None."""
    if not isinstance(net, nn.Sequential):
        return None
    index = {n: i for i, n in enumerate(names)}
    chain: list[_Link] = []
    covered: set[str] = set()
    for key, module in net.named_children():
        if isinstance(module, nn.Linear):
            w, b = f"{key}.weight", f"{key}.bias"
            if w not in index:  # a frozen weight: keep the general path
                return None
            b_idx = index.get(b)  # None: no bias, or a frozen one (a constant)
            covered.update([w] + ([b] if b_idx is not None else []))
            chain.append((module, index[w], b_idx))
        elif type(module) in _ROWWISE:
            chain.append((module, None, None))
        else:
            return None
    if covered != set(names):
        return None
    return chain


class _GradientBonusAgent(_RewardAgent):
    r"""Shared part of NeuralUCB / NeuralTS: per-arm gradients and the diagonal design ``Z``."""

    def __init__(
        self,
        model: nn.Module,
        lr: float = 0.1,
        nu: float = 0.1,
        lam: float = 1.0,
        m: float = 1.0,
        replay: int = 0,
        replay_batch: int = 32,
        seed: int = 0,
        validate: bool = True,
    ) -> None:
        super().__init__(model, lr, 0.0, None, replay, replay_batch, seed, validate)
        for name, value in (("nu", nu), ("lam", lam), ("m", m)):
            if not math.isfinite(float(value)) or float(value) <= 0:
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        self.nu = float(nu)
        self.lam = float(lam)
        self.m = float(m)
        self.names = [n for n, p in self.model.model.named_parameters() if p.requires_grad]
        self._sizes = [p.numel() for p in self.params]
        num = sum(self._sizes)
        self.Z = torch.full((num,), self.lam, device=self.device, dtype=self.dtype)
        self._chosen_grad: Tensor | None = None
        net = self.model.model

        def scalar_output(params: dict[str, Tensor], x: Tensor) -> Tensor:
            return cast(Tensor, functional_call(net, params, (x[None],))).reshape(())

        self._grad_and_value: Callable[
            [dict[str, Tensor], Tensor], tuple[dict[str, Tensor], Tensor]
        ] = vmap(grad_and_value(scalar_output), in_dims=(None, 0))
        # the per-layer path when the network is a plain chain of Linear layers (e.g. ``mlp``)
        self._chain = _linear_chain(net, self.names)

    def _per_arm(self, contexts: Tensor) -> tuple[Tensor, dict[str, Tensor] | _LayerGrads]:
        """``(f (K,), grads)``: predicted rewards and the per-arm gradients.

        For a chain of ``nn.Linear`` and row-wise activations (:func:`~paperzoo.neucb.mlp`) the
        gradients stay factored (:meth:`_per_arm_layers`, ``O(K · width)`` memory); for any other
        network they are the ``(K, ...)`` per-parameter tensors of :meth:`_per_arm_vmap`.
        """
        if self._chain is not None:
            return self._per_arm_layers(contexts)
        return self._per_arm_vmap(contexts)

    def _per_arm_vmap(self, contexts: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """``(f (K,), grads)`` through one ``torch.func.vmap``: every per-arm gradient
        materialised, ``{name: (K, *param.shape)}`` (the ``(K, P)`` matrix in pieces)."""
        params = {n: p.detach() for n, p in zip(self.names, self.params, strict=True)}
        grads, f = self._grad_and_value(params, contexts)
        return f, grads

    def _per_arm_layers(self, contexts: Tensor) -> tuple[Tensor, _LayerGrads]:
        """``(f (K,), grads)`` for a Linear chain: one batched forward over the ``K`` arms and one
        backward of ``Σ_k f_k`` to the Linear outputs (the arms do not interact, so row ``k`` of
        each output gradient is arm ``k``'s own), keeping each Linear's inputs."""
        assert self._chain is not None
        acts: list[Tensor] = []
        outs: list[Tensor] = []
        with torch.enable_grad():
            x = contexts
            for module, w_idx, _ in self._chain:
                if w_idx is None:
                    x = module(x)
                    continue
                assert isinstance(module, nn.Linear)
                acts.append(x.detach())
                bias = None if module.bias is None else module.bias.detach()
                x = torch.nn.functional.linear(x, module.weight.detach(), bias)
                if not x.requires_grad:
                    x.requires_grad_(True)
                outs.append(x)
            if x.numel() != contexts.shape[0]:
                raise ValueError(
                    f"model must map (N, D) to one score per row, (N,) or (N, 1); got "
                    f"{tuple(x.shape)} for N = {contexts.shape[0]}"
                )
            f = x.reshape(contexts.shape[0])
            deltas = torch.autograd.grad(f.sum(), outs)
        return f.detach(), _LayerGrads(acts, list(deltas))

    def _variance(self, grads: dict[str, Tensor] | _LayerGrads) -> Tensor:
        r""":math:`\lambda g^\top Z^{-1} g / m` per arm ``(K,)``, with ``Z`` diagonal.

        Materialised gradients: per parameter tensor ``g^2 @ (1/Z)`` (a matrix-vector product,
        no concatenated ``(K, P)`` matrix). Factored gradients of a Linear layer: the squared
        weight gradient of arm ``k`` is ``δ_k² ⊗ a_k²``, so its term is
        ``((δ² @ Z_W⁻¹) * a²).sum(1)`` (``Z_W⁻¹`` the ``(out, in)`` block of ``1/Z``), plus
        ``δ² @ Z_b⁻¹`` for the bias: ``O(K · out · in)`` time, no ``(K, out, in)`` tensor.
        """
        inv = torch.split(1.0 / self.Z, self._sizes)
        total: Tensor | None = None
        if isinstance(grads, _LayerGrads):
            assert self._chain is not None
            linears = [(w, b) for _, w, b in self._chain if w is not None]
            for (w_idx, b_idx), a, d in zip(linears, grads.acts, grads.deltas, strict=True):
                d2 = d.square()
                inv_w = inv[w_idx].view(d.shape[1], a.shape[1])
                term = ((d2 @ inv_w) * a.square()).sum(1)
                if b_idx is not None:
                    term = term + d2 @ inv[b_idx]
                total = term if total is None else total + term
        else:
            for name, inv_z in zip(self.names, inv, strict=True):
                g = grads[name]
                term = g.reshape(g.shape[0], -1).square() @ inv_z
                total = term if total is None else total + term
        assert total is not None
        return self.lam * total / self.m

    def _arm_grad(self, grads: dict[str, Tensor] | _LayerGrads, action: int) -> Tensor:
        """Arm ``action``'s flat gradient ``(P,)`` in the order of ``self.params``."""
        if not isinstance(grads, _LayerGrads):
            return torch.cat([grads[n][action].reshape(-1) for n in self.names])
        assert self._chain is not None
        pieces: list[Tensor] = [self.Z[:0]] * len(self.names)
        linears = [(w, b) for _, w, b in self._chain if w is not None]
        for (w_idx, b_idx), a, d in zip(linears, grads.acts, grads.deltas, strict=True):
            pieces[w_idx] = torch.outer(d[action], a[action]).reshape(-1)
            if b_idx is not None:
                pieces[b_idx] = d[action]
        return torch.cat(pieces)

    def _update(self, context: Tensor, loss: float, action: int) -> None:
        assert self._chosen_grad is not None
        self.Z.add_(self._chosen_grad.square() / self.m)
        self._chosen_grad = None
        super()._update(context, loss, action)

    def _pick(
        self, contexts: Tensor, scores: Tensor, grads: dict[str, Tensor] | _LayerGrads
    ) -> tuple[int, Tensor]:
        action = self._read_action(scores.argmax(), self._finite(contexts, scores), contexts)
        self._chosen_grad = self._arm_grad(grads, action)
        probs = torch.zeros(contexts.shape[0], device=self.device, dtype=self.dtype)
        probs[action] = 1.0
        return action, probs

    def _extra_state(self) -> dict[str, Any]:
        state = super()._extra_state()
        state["Z"] = self.Z.clone()
        if self._chosen_grad is not None:
            state["chosen_grad"] = self._chosen_grad.clone()
        return state

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self.Z = state["Z"].clone().to(self.device)
        grad = state.get("chosen_grad")
        self._chosen_grad = None if grad is None else grad.clone().to(self.device)


class NeuralUCB(_GradientBonusAgent):
    r"""NeuralUCB with a diagonal design matrix (Zhou et al. 2020; the "Diag" variant of its code).

    Score of arm ``a``: :math:`f(x_a) + \nu \sqrt{\lambda\, g_a^\top Z^{-1} g_a / m}` with
    :math:`g_a = \nabla_\theta f(x_a)`, :math:`Z_0 = \lambda I` and
    :math:`Z \leftarrow Z + \mathrm{diag}(g_{a_t}^2)/m` after each round; the arm with the highest
    score is pulled.

    Args:
        model: reward network ``(N, D) -> (N,)`` / ``(N, 1)``.
        lr: OGD step size (default ``0.1``).
        nu: confidence multiplier :math:`\nu` (default ``0.1``; the reproduction tunes it on
            ``{0.03, 0.1, 0.3}``, about the official code's grid ``{1e-3, 1e-2, 0.1}`` of
            :math:`\nu^2`).
        lam: regularisation :math:`\lambda` (default 1, the official class default; its scripts
            run ``1e-3`` (the command-line default) down to ``1e-5``). With the diagonal ``Z``,
            :math:`\lambda` decides whether the bonus shrinks at all: an entry of ``Z`` grows by
            :math:`g_i^2/m` per pull, of order ``1e-4`` for a first-layer weight of a width-100 ReLU
            net on unit-norm inputs, so with :math:`\lambda = 1` the bonus stays near its initial
            size for thousands of rounds, and with :math:`\lambda = 10^{-3}` it halves after a
            few dozen pulls of an arm. The reproduction uses ``1e-3``.
        m: the width scaling of the NTK analysis (default ``1``: with PyTorch's default
            initialisation the gradients are already O(1), as in the official code, which has no
            ``1/m``); set ``m = width`` for the NTK parameterisation of the papers.
        replay, replay_batch, seed, validate: see :class:`~paperzoo.neucb.agents.OnlineNeuralAgent`.

    Deviations: (1) the official code (uclaml/NeuralUCB, copied in EE-Net's baselines) computes
    :math:`\sqrt{\lambda\nu\sum g^2/U}`, i.e. its ``nu`` is our :math:`\nu^2`; we follow the
    papers' :math:`\nu\sqrt{\cdot}` form. (2) The official code retrains on the whole history (up to
    2000 SGD steps) every round; we take the same OGD(+replay) steps as NeuSquareCB/NeuFastCB, so
    the comparison isolates the exploration rule and fits the time budget.
    """

    def _select(self, contexts: Tensor) -> tuple[int, Tensor]:
        f, g = self._per_arm(contexts)
        scores = f + self.nu * self._variance(g).sqrt()
        return self._pick(contexts, scores, g)


class NeuralTS(_GradientBonusAgent):
    r"""Neural Thompson sampling with a diagonal design matrix (Zhang et al. 2021).

    Samples :math:`\tilde r_a \sim \mathcal N(f(x_a), \nu^2 \lambda g_a^\top Z^{-1} g_a / m)` for
    every arm (one batched draw) and pulls the argmax; ``Z`` as in :class:`NeuralUCB`.
    Same arguments and deviation (2) as :class:`NeuralUCB`. Deviation (3): the EE-Net copy of
    NeuralTS adds the scalar :math:`\lVert g\rVert^2/m` to every diagonal entry (a ``matmul`` of two
    1-D tensors); we add :math:`g^2/m` elementwise, the diagonal of :math:`g g^\top / m`.
    """

    def _select(self, contexts: Tensor) -> tuple[int, Tensor]:
        f, g = self._per_arm(contexts)
        std = self.nu * self._variance(g).sqrt()
        noise = torch.randn(f.shape, generator=self.generator, device=self.device, dtype=self.dtype)
        scores = f + std * noise
        return self._pick(contexts, scores, g)


class NeuralEpsGreedy(_RewardAgent):
    """Neural epsilon-greedy: the best predicted reward with probability ``1 - eps``, else uniform.

    Args:
        model: reward network.
        lr: OGD step size (default ``0.1``).
        epsilon: exploration rate in ``[0, 1]`` (default ``0.1``).
        replay: as for the other agents.
        replay_batch: as for the other agents.
        seed: as for the other agents.
        validate: as for the other agents.
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float = 0.1,
        epsilon: float = 0.1,
        replay: int = 0,
        replay_batch: int = 32,
        seed: int = 0,
        validate: bool = True,
    ) -> None:
        if math.isnan(float(epsilon)) or not 0.0 <= float(epsilon) <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        super().__init__(model, lr, 0.0, None, replay, replay_batch, seed, validate)
        self.epsilon = float(epsilon)

    def _select(self, contexts: Tensor) -> tuple[int, Tensor]:
        with torch.no_grad():
            f = self._forward(contexts)
        n_arms = contexts.shape[0]
        probs = torch.full((n_arms,), self.epsilon / n_arms, device=self.device, dtype=self.dtype)
        # scatter, not probs[f.argmax()] += ...: indexing with a 0-d tensor reads it to the host
        best = f.argmax().reshape(1)
        probs.scatter_add_(0, best, torch.full_like(probs[:1], 1.0 - self.epsilon))
        return self._sample(probs, contexts, f), probs


class LinSquareCB(BanditAgent):
    r"""SquareCB with an online ridge-regression oracle on the raw contexts (linear baseline).

    Keeps :math:`A = \lambda I + \sum_s x_s x_s^\top` (its inverse, by Sherman-Morrison) and
    :math:`b = \sum_s y_s x_s`; predicts :math:`\hat y = \mathrm{clip}(x^\top A^{-1} b, 0, 1)` and
    plays the inverse-gap-weighting distribution.

    Args:
        input_dim: ``D``.
        gamma: greediness.
        lam: ridge :math:`\lambda` (default 1).
        gamma_schedule: as in :class:`~paperzoo.neucb.agents.NeuSquareCB`.
        seed: as for the other agents.
        validate: as for the other agents.
        device: where the ridge statistics live.
        dtype: their dtype (default float64 for a stable Sherman-Morrison inverse).
    """

    def __init__(
        self,
        input_dim: int,
        gamma: float = 100.0,
        lam: float = 1.0,
        gamma_schedule: str | GammaSchedule | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
        validate: bool = True,
    ) -> None:
        if int(input_dim) != input_dim or input_dim < 1:
            raise ValueError(f"input_dim must be a positive integer, got {input_dim}")
        if math.isnan(float(gamma)) or float(gamma) < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if not math.isfinite(float(lam)) or float(lam) <= 0:
            raise ValueError(f"lam must be finite and > 0, got {lam}")
        check_gamma_schedule(gamma_schedule)
        super().__init__(int(input_dim), seed, device, dtype, validate)
        self.gamma = float(gamma)
        self.lam = float(lam)
        self.gamma_schedule = gamma_schedule
        self.A_inv = torch.eye(int(input_dim), device=self.device, dtype=dtype) / self.lam
        self.b = torch.zeros(int(input_dim), device=self.device, dtype=dtype)

    def gamma_at(self, t: int) -> float:
        """Greediness of round ``t`` (see :meth:`NeuSquareCB.gamma_at`; a schedule must be >= 0)."""
        return scheduled_gamma(self.gamma, self.gamma_schedule, t)

    def _select(self, contexts: Tensor) -> tuple[int, Tensor]:
        theta = self.A_inv @ self.b
        yhat = (contexts @ theta).clamp(0.0, 1.0)
        probs = igw_probs(yhat, self.gamma_at(self.t), validate=False)
        return self._sample(probs, contexts, yhat), probs

    def _update(self, context: Tensor, loss: float, action: int) -> None:
        ax = self.A_inv @ context
        self.A_inv.sub_(torch.outer(ax, ax) / (1.0 + context @ ax))
        self.b.add_(context, alpha=loss)

    def _extra_state(self) -> dict[str, Any]:
        return {"A_inv": self.A_inv.clone(), "b": self.b.clone()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.A_inv = state["A_inv"].clone().to(self.device)
        self.b = state["b"].clone().to(self.device)


class Uniform(BanditAgent):
    """Pulls an arm uniformly at random (the no-learning reference).

    Args:
        input_dim: ``D`` to check the contexts against (``None``: any width).
        seed: seed of its generator (default 0).
        validate: reject NaN/inf contexts (default ``True``).

    ``select`` returns ``probs = 1/K`` for each of the ``K`` arms; ``update`` only checks its
    arguments. Runs on the CPU.
    """

    def __init__(self, input_dim: int | None = None, seed: int = 0, validate: bool = True) -> None:
        super().__init__(input_dim, seed, "cpu", torch.float32, validate)

    def _select(self, contexts: Tensor) -> tuple[int, Tensor]:
        probs = torch.full((contexts.shape[0],), 1.0 / contexts.shape[0], dtype=self.dtype)
        return self._sample(probs, contexts, probs), probs

    def _update(self, context: Tensor, loss: float, action: int) -> None:
        return None
