"""NoProp-DT (Li, Teh & Pascanu, 2025, Algorithm 1) and the back-propagation chain baseline.

NoProp-DT holds T independent blocks. Block t is trained on its own local loss, on a noised
label embedding z_{t−1} ~ q(z_{t−1} | y) drawn fresh (never on block t−1's output), so no
gradient crosses blocks and no forward pass through the chain happens during training.
Inference runs the blocks in sequence from z_0 ~ N(0, I). The baseline trains the same chain end
to end by back-propagating the cross-entropy of the inference recursion's logits.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from paperzoo.core.checks import (
    Reduction,
    check_positive,
    check_positive_int,
    check_reduction,
    reduce,
)
from paperzoo.noprop._parts import (
    Head,
    apply_head,
    check_block,
    check_block_dims,
    check_inputs,
    given_noise,
    raise_nonfinite,
    standard_normal,
)
from paperzoo.noprop.embeddings import LabelEmbedding
from paperzoo.noprop.functional import (
    dt_denoise_loss,
    kl_to_standard_normal,
    posterior_coeffs,
)
from paperzoo.noprop.schedules import CosineSchedule, DiscreteSchedule

__all__ = ["NoPropDT", "backprop_chain_loss"]


class NoPropDT(nn.Module):
    """NoProp-DT: T independently trained denoising blocks (paper Algorithm 1).

    Per example, block t's loss (the negative-ELBO terms it touches) is

        ℓ_t = (T/2)·η·(SNR(t) − SNR(t−1))·‖û_θt(z_{t−1}, x) − u_y‖²     (denoise)
              − log p̂_θout(y | z_T),  z_T ~ q(z_T | y)                  (CE, linear head)
              + KL(q(z_0 | y) ‖ N(0, I))                                 (prior)

    with z_{t−1} = √ᾱ_{t−1}·u_y + √(1 − ᾱ_{t−1})·ε. Inference: z_0 ~ N(0, I),
    z_t = a_t·û_θt(z_{t−1}, x) + b_t·z_{t−1} + √c_t·ε_t, logits = linear(z_T).

    Args:
        block_factory: called T times; each block maps (x ``(B, ...)``, z ``(B, e)``) to
            ``(B, K)`` logits (``head='softmax'``) or ``(B, e)`` (``head='linear'``).
        num_classes: K.
        T: number of blocks / steps, default 10 (paper).
        embedding: label embedding; default one-hot (e = K, fixed).
        eta: η, weight of the denoising term, default 0.1 (paper, DT; recalled).
        schedule: a :class:`DiscreteSchedule` with T steps; default :class:`CosineSchedule` (T).
        head: ``'softmax'`` (default): û = softmax(h_θt)·W_E, a probability-weighted mix of the
            class embeddings (paper's block output, recalled); ``'linear'``: û = h_θt.
        validate: check inputs and raise on non-finite block outputs / losses (host syncs: one
            for the labels and one for the outputs per :meth:`block_loss`, one per block at
            inference); set False in tight loops. The package's blocks have their own
            ``validate`` attribute (input shapes and finiteness, one more sync per call), which
            this switch does not change.

    Raises:
        TypeError: if ``block_factory`` is a module (not a factory) or T is not an integer.
        ValueError: if the factory returns blocks that share parameters (the same module
            twice), T < 1, η ≤ 0 or infinite, or dimensions disagree.

    Attributes:
        blocks: ``nn.ModuleList`` of the T blocks (θ_1..θ_T); ``classifier``: linear(e → K)
            (θ_out); ``embedding``: W_E; ``last_parts``: the mean ``denoise``, ``ce``, ``kl`` of
            the last :meth:`block_loss` (detached tensors, no host sync).
    """

    def __init__(
        self,
        block_factory: Callable[[], nn.Module],
        num_classes: int,
        T: int = 10,
        embedding: LabelEmbedding | None = None,
        eta: float = 0.1,
        schedule: DiscreteSchedule | None = None,
        head: Head = "softmax",
        validate: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("T", T)
        check_positive("eta", eta)
        if isinstance(block_factory, nn.Module) or not callable(block_factory):
            raise TypeError(
                "block_factory must be a callable returning a new block on every call (e.g. "
                f"`lambda: MLPDenoiseBlock(...)`), got {type(block_factory).__name__}"
            )
        if head not in ("softmax", "linear"):
            raise ValueError(f"head must be 'softmax' or 'linear', got {head!r}")
        self.schedule = schedule if schedule is not None else CosineSchedule(T)
        if not isinstance(self.schedule, DiscreteSchedule):
            raise TypeError(f"schedule must be a DiscreteSchedule, got {type(schedule).__name__}")
        if self.schedule.T != T:
            raise ValueError(f"schedule has {self.schedule.T} steps but T={T}")
        self.embedding = embedding if embedding is not None else LabelEmbedding(num_classes)
        if self.embedding.num_classes != num_classes:
            raise ValueError(
                f"embedding has {self.embedding.num_classes} classes, num_classes={num_classes}"
            )
        self.num_classes = num_classes
        self.T = T
        self.eta = float(eta)
        self.head = head
        self.validate = validate
        built = [block_factory() for _ in range(T)]
        owner: dict[int, int] = {}
        for i, blk in enumerate(built):
            check_block(blk, f"block_factory() (block t={i + 1})")
            check_block_dims(blk, self.embedding, head, f"block t={i + 1}")
            for p in blk.parameters():
                if owner.setdefault(id(p), i) != i:
                    raise ValueError(
                        f"blocks t={owner[id(p)] + 1} and t={i + 1} share parameters: "
                        "block_factory must build a new block on every call (NoProp trains "
                        "T independent blocks)"
                    )
        self.blocks = nn.ModuleList(built)
        self.classifier = nn.Linear(self.embedding.dim, num_classes)
        self.last_parts: dict[str, Tensor] = {}

    # -- pieces ---------------------------------------------------------------------------
    def _ref(self) -> Tensor:
        """A parameter whose device and dtype the inputs must match."""
        return self.classifier.weight

    def shared_parameters(self) -> list[nn.Parameter]:
        """θ_out and (if learned) W_E: the parameters every block's loss also updates."""
        params = list(self.classifier.parameters())
        if self.embedding.learnable:
            params += list(self.embedding.parameters())
        return params

    def denoise(self, t: int, x: Tensor, z: Tensor) -> Tensor:
        """û_θt(z_{t−1}, x): block t's prediction of u_y, ``(B, e)`` (t in 1..T)."""
        t = self._check_t(t)
        return apply_head(
            self.blocks[t - 1](x, z), self.head, self.embedding.weight, f"block t={t}"
        )

    def _check_t(self, t: int) -> int:
        """t as a Python int (ints, NumPy integers and 0-d integer tensors are accepted)."""
        bad = isinstance(t, bool) or (isinstance(t, Tensor) and t.dtype == torch.bool)
        try:
            ti = None if bad else operator.index(t)
        except TypeError:
            ti = None
        if ti is None:
            raise TypeError(f"t must be an int in 1..T, got {type(t).__name__}")
        if not 1 <= ti <= self.T:
            raise ValueError(f"t must lie in 1..T = 1..{self.T}, got {ti}")
        return ti

    def _draw_noise(
        self, n: int, u_y: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """ε for z_{t−1} and ε′ for z_T, each ``(n, B, e)`` (this order, for reproducibility)."""
        shape = (n, *u_y.shape)
        return standard_normal(shape, u_y, generator), standard_normal(shape, u_y, generator)

    def _shared_terms(self, u_y: Tensor, y: Tensor, eps_T: Tensor) -> tuple[Tensor, Tensor]:
        """CE of linear(z_T), z_T ~ q(z_T | y), and KL(q(z_0 | y) ‖ N(0, I)). ``(..., B)`` each."""
        abar = self.schedule.alpha_bar
        zT = abar[-1].sqrt().to(u_y.dtype) * u_y + (1 - abar[-1]).sqrt().to(u_y.dtype) * eps_T
        logits = self.classifier(zT)
        ce = F.cross_entropy(
            logits.reshape(-1, self.num_classes),
            y.expand(*zT.shape[:-1]).reshape(-1),
            reduction="none",
        ).reshape(zT.shape[:-1])
        kl = kl_to_standard_normal(
            abar[0].sqrt().to(u_y.dtype) * u_y, (1 - abar[0]).to(u_y.dtype), validate=False
        )
        return ce, kl

    def _block_terms(
        self, t: int, x: Tensor, y: Tensor, u_y: Tensor, eps: Tensor, eps_T: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        abar, snr = self.schedule.alpha_bar, self.schedule.snr
        z_prev = (
            abar[t - 1].sqrt().to(u_y.dtype) * u_y + (1 - abar[t - 1]).sqrt().to(u_y.dtype) * eps
        )
        u_hat = self.denoise(t, x, z_prev)
        den = dt_denoise_loss(
            u_hat, u_y, snr[t], snr[t - 1], self.T, self.eta, "none", validate=False
        )
        ce, kl = self._shared_terms(u_y, y, eps_T)
        return den, ce, kl, u_hat

    # -- training ---------------------------------------------------------------------------
    def block_loss(
        self,
        t: int,
        x: Tensor,
        y: Tensor,
        reduction: Reduction = "mean",
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Local loss of block t (denoise + CE + KL), touching only θ_t, θ_out and W_E.

        Args:
            t: block index in 1..T.
            x: ``(B, ...)`` inputs.
            y: ``(B,)`` integer labels in [0, K).
            reduction: ``'mean'`` | ``'sum'`` | ``'none'`` (``(B,)``).
            generator: optional RNG for the two noise draws (ε for z_{t−1}, then ε′ for
                z_T). Noise is drawn in float32 and cast, so float64 runs see the float32 draws.
            noise: optional ``(B, 2, e)`` standard normal draws used instead of ``generator``'s:
                ``noise[:, 0]`` is ε (for z_{t−1}), ``noise[:, 1]`` is ε′ (for z_T). Row i of the
                result then depends on example i alone (a batch and a single example agree).

        Returns:
            scalar, or ``(B,)`` for ``reduction='none'``; the parts are in ``last_parts``.
        """
        t = self._check_t(t)
        if self.validate:
            check_inputs(x, y, self.num_classes, self.classifier.weight)
        u_y = self.embedding.weight[y]  # y checked above (when validating)
        if noise is None:
            eps, eps_T = (n[0] for n in self._draw_noise(1, u_y, generator))
        else:
            noise = given_noise(noise, (u_y.shape[0], 2, u_y.shape[1]), u_y)
            eps, eps_T = noise[:, 0], noise[:, 1]
        den, ce, kl, u_hat = self._block_terms(t, x, y, u_y, eps, eps_T)  # each (B,)
        per_example = den + ce + kl
        if self.validate:
            raise_nonfinite(
                torch.stack([torch.isfinite(u_hat).all(), torch.isfinite(per_example).all()]),
                [
                    f"the output of block t={t} ({type(self.blocks[t - 1]).__name__})",
                    f"the loss of block t={t}",
                ],
            )
        self.last_parts = {
            "denoise": den.detach().mean(),
            "ce": ce.detach().mean(),
            "kl": kl.detach().mean(),
        }
        return reduce(per_example, reduction)

    def all_block_losses(
        self,
        x: Tensor,
        y: Tensor,
        generator: torch.Generator | None = None,
        *,
        _impl: str = "batched",
    ) -> Tensor:
        """Mean loss of every block on one minibatch, ``(T,)``, by a loop over blocks.

        The sequential twin of :func:`train_blocks_vmapped` (same noise draws for the same
        generator state). Summing and back-propagating gives each block its own gradient.
        Only the T block calls are a loop: the noised inputs z_{t-1}, the denoising terms, the
        T cross-entropies of linear(z_T) and the KL term (the same for every block) are computed
        once for all blocks. ``_impl="per_block"`` is the previous form (every term per block,
        the KL T times), kept as the reference the batched form is tested against.
        """
        if self.validate:
            check_inputs(x, y, self.num_classes, self.classifier.weight)
        u_y = self.embedding.weight[y]  # y checked above (when validating)
        eps, eps_T = self._draw_noise(self.T, u_y, generator)
        if _impl == "per_block":
            losses = []
            for t in range(1, self.T + 1):
                den, ce, kl, _ = self._block_terms(t, x, y, u_y, eps[t - 1], eps_T[t - 1])
                losses.append((den + ce + kl).mean())
            out = torch.stack(losses)
        else:
            abar, snr = self.schedule.alpha_bar, self.schedule.snr
            sa = abar[:-1].sqrt().to(u_y.dtype)[:, None, None]
            sn = (1 - abar[:-1]).sqrt().to(u_y.dtype)[:, None, None]
            z_prev = sa * u_y + sn * eps  # (T, B, e)
            u_hat = torch.stack([self.denoise(t, x, z_prev[t - 1]) for t in range(1, self.T + 1)])
            delta = (snr[1:] - snr[:-1]).to(u_hat.dtype)[:, None]
            den = 0.5 * self.T * self.eta * delta * (u_hat - u_y).pow(2).sum(-1)  # (T, B)
            ce, kl = self._shared_terms(u_y, y, eps_T)  # (T, B), (B,)
            out = (den + ce + kl).mean(-1)
        if self.validate:
            raise_nonfinite(
                torch.isfinite(out), [f"the loss of block t={t}" for t in range(1, self.T + 1)]
            )
        return out

    def train_step(
        self,
        x: Tensor,
        y: Tensor,
        optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
        t: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """One optimiser step of block t (or of all blocks when ``t`` is None).

        Args:
            x, y: one minibatch.
            optimizers: one optimiser over all parameters, or T optimisers (the t-th holding
                block t's parameters and, typically, θ_out / W_E). Gradients are zeroed with
                ``set_to_none`` so an optimiser over all parameters only moves block t (and the
                shared θ_out / W_E).
            t: block in 1..T (Algorithm 1's inner step); None: every block one step on this
                minibatch, Σ_t ℓ_t back-propagated once (blocks stay independent).

        Deviation (``t=None`` only): Algorithm 1 updates the shared θ_out / W_E after every
        block's step; the all-blocks step updates them once with the summed gradient of the T
        block losses. The blocks' own updates are exactly Algorithm 1's (their losses are
        independent). Use ``t=1..T`` for the paper's schedule.
            generator: optional RNG for the noise.

        Returns:
            the detached loss: scalar for one block, ``(T,)`` for all.
        """
        opts = [optimizers] if isinstance(optimizers, torch.optim.Optimizer) else list(optimizers)
        if len(opts) not in (1, self.T):
            raise ValueError(f"optimizers must be one optimiser or T={self.T}, got {len(opts)}")
        if t is not None:
            t = self._check_t(t)
            loss = self.block_loss(t, x, y, generator=generator)
            chosen = opts[0] if len(opts) == 1 else opts[t - 1]
            chosen.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            chosen.step()
            return loss.detach()
        losses = self.all_block_losses(x, y, generator=generator)
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        torch.autograd.backward(losses.sum())
        for opt in opts:
            opt.step()
        return losses.detach()

    # -- inference --------------------------------------------------------------------------
    def predict_logits(
        self,
        x: Tensor,
        stochastic: bool = True,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Run the chain from z_0 ~ N(0, I) and return linear(z_T), ``(B, K)``.

        Args:
            x: ``(B, ...)`` inputs.
            stochastic: add √c_t·ε_t at each step (paper, default). False: ε = 0, deterministic;
                a community report (Sid3503/NoProp#4) finds it more accurate.
            generator: optional RNG for z_0 and the ε_t.
            noise: optional ``(B, T + 1, e)`` standard normal draws used instead of
                ``generator``'s: ``noise[:, 0]`` is z_0, ``noise[:, t]`` is ε_t (unused when not
                ``stochastic``). Row i then depends on example i alone.

        Differentiable (no ``no_grad`` inside), so the back-propagation chain baseline trains
        through it; wrap in ``torch.no_grad()`` for evaluation.
        """
        if self.validate:
            check_inputs(x, None, self.num_classes, self._ref())
        W_E = self.embedding.weight
        dtype = x.dtype if x.dtype.is_floating_point else W_E.dtype
        abar = self.schedule.alpha_bar
        a, b, c = posterior_coeffs(abar[:-1], abar[1:], validate=False)
        a, b, sc = a.to(dtype), b.to(dtype), c.sqrt().to(dtype)
        ref = W_E.to(dtype)
        if noise is not None:
            noise = given_noise(noise, (x.shape[0], self.T + 1, self.embedding.dim), ref)
            z = noise[:, 0]
        else:
            z = standard_normal((x.shape[0], self.embedding.dim), ref, generator)
        for t in range(1, self.T + 1):
            u_hat = self.denoise(t, x, z)
            if self.validate:  # one sync per step, so the error names the block
                raise_nonfinite(
                    torch.isfinite(u_hat).all().reshape(1), [f"the output of block t={t}"]
                )
            z = a[t - 1] * u_hat + b[t - 1] * z
            if stochastic:
                eps = (
                    standard_normal(tuple(z.shape), ref, generator)
                    if noise is None
                    else noise[:, t]
                )
                z = z + sc[t - 1] * eps
        out: Tensor = self.classifier(z)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """= :meth:`predict_logits` (stochastic): ``F.cross_entropy(model(x), y)`` evaluates it."""
        return self.predict_logits(x)


def backprop_chain_loss(
    model: NoPropDT,
    x: Tensor,
    y: Tensor,
    reduction: Reduction = "mean",
    stochastic: bool = True,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """Baseline: the same T-block chain trained end to end by back-propagation.

    Cross-entropy of the logits at the end of the inference recursion (z_0 → … → z_T →
    linear), back-propagated through all T blocks (spec section 6, baseline (i)).

    Args:
        model: the chain (a :class:`NoPropDT`).
        x: ``(B, ...)`` inputs; y: ``(B,)`` labels in [0, K).
        reduction: ``'mean'`` | ``'sum'`` | ``'none'`` (``(B,)``).
        stochastic, generator, noise: as in :meth:`NoPropDT.predict_logits`.

    Returns:
        scalar, or ``(B,)`` for ``reduction='none'``.

    Measured (``paperzoo run noprop``): with ``head='softmax'`` the logits are a linear map of a
    point in the simplex and end-to-end CE learns slowly (even for T = 1); a model built with
    ``head='linear'`` trains normally, so the experiment reports both.
    """
    check_reduction(reduction)
    check_inputs(x, y, model.num_classes, model.classifier.weight)
    logits = model.predict_logits(x, stochastic=stochastic, generator=generator, noise=noise)
    return F.cross_entropy(logits, y, reduction=reduction)
