"""NoProp models (Li, Teh & Pascanu, 2025): NoProp-DT, NoProp-CT, NoProp-FM, the vectorised
all-blocks training step and the back-propagation chain baseline.

NoProp-DT holds T independent blocks. Block t is trained on its own local loss, on a noised
label embedding z_{t−1} ~ q(z_{t−1} | y) drawn fresh (never on block t−1's output), so no
gradient crosses blocks and no forward pass through the chain happens during training.
Inference runs the blocks in sequence from z_0 ~ N(0, I).
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from paperzoo.core.checks import check_like
from paperzoo.noprop.embeddings import LabelEmbedding, check_labels
from paperzoo.noprop.functional import (
    Reduction,
    dt_denoise_loss,
    kl_to_standard_normal,
    posterior_coeffs,
    reduce_loss,
)
from paperzoo.noprop.schedules import (
    CosineSchedule,
    DiscreteSchedule,
    LearnableSchedule,
    check_num_steps,
)

__all__ = [
    "Head",
    "NoPropCT",
    "NoPropDT",
    "NoPropFM",
    "backprop_chain_loss",
    "train_blocks_vmapped",
]

Head = Literal["softmax", "linear"]


def _randn(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise in ``like``'s dtype/device, drawn from ``generator``'s device.

    Drawn in float32 and cast, so a float64 (or half-precision) run sees the same noise as the
    float32 run for the same generator state.
    """
    dev = like.device if generator is None else generator.device
    out = torch.randn(shape, dtype=torch.float32, device=dev, generator=generator)
    return out.to(device=like.device, dtype=like.dtype)


def _rand(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform [0, 1) noise, drawn in float32 and cast (as :func:`_randn`)."""
    dev = like.device if generator is None else generator.device
    out = torch.rand(shape, dtype=torch.float32, device=dev, generator=generator)
    return out.to(device=like.device, dtype=like.dtype)


def _check_xy(x: Tensor, y: Tensor | None, num_classes: int, ref: Tensor | None = None) -> None:
    """Inputs of a loss or of inference; ``ref`` (a model parameter) gives device and dtype."""
    if not isinstance(x, Tensor) or not x.dtype.is_floating_point:
        raise TypeError(f"x must be a floating Tensor, got {getattr(x, 'dtype', type(x))}")
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"x: empty batch (B = 0), shape {tuple(x.shape)}")
    if ref is not None:
        check_like("x", x, ref)
    if y is not None:
        if isinstance(y, Tensor) and y.device != x.device:
            raise ValueError(f"y is on {y.device} but x is on {x.device}")
        check_labels(y, num_classes)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y batch sizes differ: {x.shape[0]} vs {y.shape[0]}")


def _check_eta(eta: float) -> None:
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"eta must be > 0 and finite, got {eta}")


def _check_block(block: object, name: str = "block") -> None:
    if not isinstance(block, nn.Module):
        raise TypeError(
            f"{name} must be an nn.Module mapping (x, z, t) to logits, got {type(block).__name__}"
        )


def _check_steps(steps: object) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"steps must be an integer >= 1, got {type(steps).__name__} {steps!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return steps


def _apply_head(out: Tensor, head: Head, W_E: Tensor, name: str) -> Tensor:
    """û from a block's output: softmax(out)·W_E (``'softmax'``) or out itself (``'linear'``)."""
    K, e = W_E.shape
    if head == "softmax":
        if out.shape[-1] != K:
            raise ValueError(
                f"{name} must output (B, num_classes={K}) logits, got {tuple(out.shape)}"
            )
        return out.softmax(-1) @ W_E
    if out.shape[-1] != e:
        raise ValueError(
            f"{name} must output (B, embed_dim={e}) with head='linear', got {tuple(out.shape)}"
        )
    return out


def _check_block_dims(block: nn.Module, embedding: LabelEmbedding, head: Head, name: str) -> None:
    embed_dim = getattr(block, "embed_dim", None)
    if embed_dim is not None and embed_dim != embedding.dim:
        raise ValueError(
            f"{name}.embed_dim={embed_dim} does not match the label embedding dim {embedding.dim}"
        )
    out = getattr(block, "num_classes", None)
    want = embedding.num_classes if head == "softmax" else embedding.dim
    if out is not None and out != want:
        raise ValueError(
            f"{name} outputs {out} values but head={head!r} needs {want} "
            f"({'num_classes' if head == 'softmax' else 'embed_dim'})"
        )


def _raise_nonfinite(flags: Tensor, what: Sequence[str]) -> None:
    """One host sync: ``flags`` (n,) bool 'is finite'; raise naming the first bad entry."""
    ok = flags.cpu()
    if not bool(ok.all()):
        first = int((~ok).nonzero()[0, 0])
        raise ValueError(f"non-finite (NaN/Inf) value in {what[first]}")


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
        check_num_steps(T)
        _check_eta(eta)
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
            _check_block(blk, f"block_factory() (block t={i + 1})")
            _check_block_dims(blk, self.embedding, head, f"block t={i + 1}")
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
        return _apply_head(
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
        return _randn(shape, u_y, generator), _randn(shape, u_y, generator)

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
    ) -> Tensor:
        """Local loss of block t (denoise + CE + KL), touching only θ_t, θ_out and W_E.

        Args:
            t: block index in 1..T.
            x: ``(B, ...)`` inputs.
            y: ``(B,)`` integer labels in [0, K).
            reduction: ``'mean'`` | ``'sum'`` | ``'none'`` (``(B,)``).
            generator: optional RNG for the two noise draws (ε for z_{t−1}, then ε′ for
                z_T). Noise is drawn in float32 and cast, so float64 runs see the float32 draws.

        Returns:
            scalar, or ``(B,)`` for ``reduction='none'``; the parts are in ``last_parts``.
        """
        t = self._check_t(t)
        if self.validate:
            _check_xy(x, y, self.num_classes, self.classifier.weight)
        u_y = self.embedding.weight[y]  # y checked above (when validating)
        eps, eps_T = self._draw_noise(1, u_y, generator)
        den, ce, kl, u_hat = self._block_terms(t, x, y, u_y, eps[0], eps_T[0])  # ce (B,)
        per_example = den + ce + kl
        if self.validate:
            _raise_nonfinite(
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
        return reduce_loss(per_example, reduction)

    def all_block_losses(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Mean loss of every block on one minibatch, ``(T,)``, by a loop over blocks.

        The sequential twin of :func:`train_blocks_vmapped` (same noise draws for the same
        generator state). Summing and back-propagating gives each block its own gradient.
        """
        if self.validate:
            _check_xy(x, y, self.num_classes, self.classifier.weight)
        u_y = self.embedding.weight[y]  # y checked above (when validating)
        eps, eps_T = self._draw_noise(self.T, u_y, generator)
        losses = []
        for t in range(1, self.T + 1):
            den, ce, kl, _ = self._block_terms(t, x, y, u_y, eps[t - 1], eps_T[t - 1])
            losses.append((den + ce + kl).mean())
        out = torch.stack(losses)
        if self.validate:
            _raise_nonfinite(
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
    ) -> Tensor:
        """Run the chain from z_0 ~ N(0, I) and return linear(z_T), ``(B, K)``.

        Args:
            x: ``(B, ...)`` inputs.
            stochastic: add √c_t·ε_t at each step (paper, default). False: ε = 0, deterministic;
                a community report (Sid3503/NoProp#4) finds it more accurate.
            generator: optional RNG for z_0 and the ε_t.

        Differentiable (no ``no_grad`` inside), so the back-propagation chain baseline trains
        through it; wrap in ``torch.no_grad()`` for evaluation.
        """
        if self.validate:
            _check_xy(x, None, self.num_classes, self._ref())
        W_E = self.embedding.weight
        dtype = x.dtype if x.dtype.is_floating_point else W_E.dtype
        abar = self.schedule.alpha_bar
        a, b, c = posterior_coeffs(abar[:-1], abar[1:], validate=False)
        a, b, sc = a.to(dtype), b.to(dtype), c.sqrt().to(dtype)
        ref = W_E.to(dtype)
        z = _randn((x.shape[0], self.embedding.dim), ref, generator)
        for t in range(1, self.T + 1):
            u_hat = self.denoise(t, x, z)
            if self.validate:  # one sync per step, so the error names the block
                _raise_nonfinite(
                    torch.isfinite(u_hat).all().reshape(1), [f"the output of block t={t}"]
                )
            z = a[t - 1] * u_hat + b[t - 1] * z
            if stochastic:
                z = z + sc[t - 1] * _randn(tuple(z.shape), ref, generator)
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
) -> Tensor:
    """Baseline: the same T-block chain trained end to end by back-propagation.

    Cross-entropy of the logits at the end of the inference recursion (z_0 → … → z_T →
    linear), back-propagated through all T blocks (spec section 6, baseline (i)).

    Measured (``paperzoo run noprop``): with ``head='softmax'`` the logits are a linear map of a
    point in the simplex and end-to-end CE learns slowly (even for T = 1); a model built with
    ``head='linear'`` trains normally, so the experiment reports both.
    """
    _check_xy(x, y, model.num_classes, model.classifier.weight)
    logits = model.predict_logits(x, stochastic=stochastic, generator=generator)
    return F.cross_entropy(logits, y, reduction=reduction)


def _disable_validation(module: nn.Module) -> None:
    for m in module.modules():
        if "validate" in vars(m):
            vars(m)["validate"] = False


def train_blocks_vmapped(
    model: NoPropDT,
    x: Tensor,
    y: Tensor,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One optimiser step of all T blocks in one batched call (``stack_module_state`` + ``vmap``).

    Numerically the same step as ``model.train_step(x, y, optimizer, t=None)``: every block sees
    its own noised z_{t−1} (same draws for the same generator state), Σ_t ℓ_t is
    back-propagated once, gradients and BN statistics are written back to the blocks, then
    ``optimizer`` (over the model's parameters) steps. Blocks must share one architecture.

    Deviation: as ``train_step(t=None)``, θ_out / W_E get one update with the summed gradient
    of the T block losses (Algorithm 1 updates them after each block's step).

    Dropout inside the vmapped blocks uses independent masks per block
    (``randomness='different'``), so with dropout active the masks differ from the loop's.

    Returns:
        ``(T,)`` detached mean loss per block.
    """
    if model.validate:
        _check_xy(x, y, model.num_classes, model.classifier.weight)
    blocks = list(model.blocks)
    params, buffers = stack_module_state(blocks)
    base = copy.deepcopy(blocks[0]).to("meta")
    _disable_validation(base)
    u_y = model.embedding.weight[y]  # y checked above (when validating)
    eps, eps_T = model._draw_noise(model.T, u_y, generator)
    abar, snr = model.schedule.alpha_bar, model.schedule.snr
    sa = abar[:-1].sqrt().to(u_y.dtype)[:, None, None]
    sn = (1 - abar[:-1]).sqrt().to(u_y.dtype)[:, None, None]
    z_prev = sa * u_y + sn * eps  # (T, B, e)

    def call(p: dict[str, Tensor], b: dict[str, Tensor], z: Tensor) -> Tensor:
        out: Tensor = functional_call(base, (p, b), (x, z))
        return out

    out = vmap(call, in_dims=(0, 0, 0), randomness="different")(params, buffers, z_prev)
    u_hat = _apply_head(out, model.head, model.embedding.weight, "the blocks")  # (T, B, e)
    delta = (snr[1:] - snr[:-1]).to(u_hat.dtype)[:, None]
    den = 0.5 * model.T * model.eta * delta * (u_hat - u_y).pow(2).sum(-1)  # (T, B)
    ce, kl = model._shared_terms(u_y, y, eps_T)  # (T, B), (B,)
    per_block = (den + ce + kl).mean(-1)
    if model.validate:
        _raise_nonfinite(
            torch.isfinite(per_block), [f"the loss of block t={t}" for t in range(1, model.T + 1)]
        )
    optimizer.zero_grad(set_to_none=True)
    torch.autograd.backward(per_block.sum())
    with torch.no_grad():
        for name, stacked in params.items():
            grads = None if stacked.grad is None else stacked.grad.unbind(0)
            for i, blk in enumerate(blocks):
                blk.get_parameter(name).grad = None if grads is None else grads[i]
        for name, stacked_buf in buffers.items():
            for i, blk in enumerate(blocks):
                blk.get_buffer(name).copy_(stacked_buf[i])
    optimizer.step()
    return per_block.detach()


def _label_targets_and_times(
    x: Tensor,
    y: Tensor,
    t: Tensor | None,
    embedding: LabelEmbedding,
    num_classes: int,
    validate: bool,
    generator: torch.Generator | None,
    ref: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The continuous-time variants' shared start: ``u_y`` ``(B, e)`` and ``t`` ``(B,)`` in [0, 1]
    (drawn uniformly unless given; a given ``t`` is checked when ``validate``)."""
    if validate:
        _check_xy(x, y, num_classes, ref)
    u_y: Tensor = embedding.weight[y]  # y checked above (when validating)
    B = u_y.shape[0]
    if t is None:
        return u_y, _rand((B,), u_y, generator)
    if validate:
        if not isinstance(t, Tensor) or not t.dtype.is_floating_point:
            raise TypeError(
                f"t must be a floating Tensor of times in [0, 1], got {getattr(t, 'dtype', type(t))}"
            )
        if t.shape != (B,):
            raise ValueError(f"t must have shape ({B},), got {tuple(t.shape)}")
        if t.device != x.device:
            raise ValueError(f"t is on {t.device} but x is on {x.device}")
        if not bool(((t >= 0) & (t <= 1)).all()):
            raise ValueError("t must lie in [0, 1] (NaN/Inf or values outside found)")
    return u_y, t


class NoPropCT(nn.Module):
    """NoProp-CT: one time-conditioned block, continuous t ∈ [0, 1], learnable schedule.

        L = −log p̂(y | z_1) + KL(q(z_0 | y) ‖ N(0, I))
            + (η/2)·E_{t~U[0,1]}[SNR′(t)·‖û_θ(z_t, x, t) − u_y‖²],  z_t ~ q(z_t | y).

    Inference on the grid t_n = n/N: z_{t_0} ~ N(0, I), then the DT update with a, b, c from
    ᾱ(t_n), ᾱ(t_{n+1}); logits = linear(z_1).

    Args:
        block: maps (x, z ``(B, e)``, t ``(B,)``) → ``(B, K)`` (softmax head) or ``(B, e)``.
        num_classes: K.
        embedding: default one-hot.
        schedule: default :class:`LearnableSchedule` (γ ∈ [−7, 7]); trained with the model.
        eta: η, default 1.0 (paper, CT; recalled).
        head: ``'softmax'`` (default) or ``'linear'``, as in :class:`NoPropDT`.
        validate: input and finiteness checks.
    """

    def __init__(
        self,
        block: nn.Module,
        num_classes: int,
        embedding: LabelEmbedding | None = None,
        schedule: LearnableSchedule | None = None,
        eta: float = 1.0,
        head: Head = "softmax",
        validate: bool = True,
    ) -> None:
        super().__init__()
        _check_eta(eta)
        if head not in ("softmax", "linear"):
            raise ValueError(f"head must be 'softmax' or 'linear', got {head!r}")
        self.embedding = embedding if embedding is not None else LabelEmbedding(num_classes)
        if self.embedding.num_classes != num_classes:
            raise ValueError(
                f"embedding has {self.embedding.num_classes} classes, num_classes={num_classes}"
            )
        _check_block(block)
        _check_block_dims(block, self.embedding, head, "block")
        self.block = block
        self.schedule = schedule if schedule is not None else LearnableSchedule()
        self.num_classes = num_classes
        self.eta = float(eta)
        self.head = head
        self.validate = validate
        self.classifier = nn.Linear(self.embedding.dim, num_classes)
        self.last_parts: dict[str, Tensor] = {}

    def _ref(self) -> Tensor:
        return self.classifier.weight

    def denoise(self, x: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """û_θ(z_t, x, t), ``(B, e)``."""
        return _apply_head(self.block(x, z, t), self.head, self.embedding.weight, "block")

    def loss(
        self,
        x: Tensor,
        y: Tensor,
        reduction: Reduction = "mean",
        generator: torch.Generator | None = None,
        t: Tensor | None = None,
    ) -> Tensor:
        """NoProp-CT loss (one t ~ U[0, 1] per example unless ``t`` ``(B,)`` is given)."""
        u_y, t = _label_targets_and_times(
            x, y, t, self.embedding, self.num_classes, self.validate, generator, self._ref()
        )
        eps = _randn(tuple(u_y.shape), u_y, generator)
        eps1 = _randn(tuple(u_y.shape), u_y, generator)
        sched = self.schedule
        abar_t = sched.alpha_bar(t, validate=False).to(u_y.dtype)[:, None]
        z_t = abar_t.sqrt() * u_y + (1 - abar_t).sqrt() * eps
        u_hat = self.denoise(x, z_t, t)
        w = sched.snr_prime(t, validate=False).to(u_y.dtype)
        den = 0.5 * self.eta * w * (u_hat - u_y).pow(2).sum(-1)
        ends = sched.alpha_bar(torch.tensor([0.0, 1.0], device=u_y.device), validate=False).to(
            u_y.dtype
        )
        z1 = ends[1].sqrt() * u_y + (1 - ends[1]).sqrt() * eps1
        ce = F.cross_entropy(self.classifier(z1), y, reduction="none")
        kl = kl_to_standard_normal(ends[0].sqrt() * u_y, 1 - ends[0], validate=False)
        per_example = den + ce + kl
        if self.validate:
            _raise_nonfinite(
                torch.stack([torch.isfinite(u_hat).all(), torch.isfinite(per_example).all()]),
                [f"the output of the block ({type(self.block).__name__})", "the CT loss"],
            )
        self.last_parts = {
            "denoise": den.detach().mean(),
            "ce": ce.detach().mean(),
            "kl": kl.detach().mean(),
        }
        return reduce_loss(per_example, reduction)

    def predict_logits(
        self,
        x: Tensor,
        steps: int = 20,
        stochastic: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Denoise on ``steps`` uniform intervals of [0, 1]; returns linear(z_1), ``(B, K)``."""
        steps = _check_steps(steps)
        if self.validate:
            _check_xy(x, None, self.num_classes, self._ref())
        ref = self.embedding.weight.to(x.dtype)
        B = x.shape[0]
        grid = torch.linspace(0.0, 1.0, steps + 1, device=x.device)
        abar = self.schedule.alpha_bar(grid, validate=False).to(torch.float64)
        a, b, c = posterior_coeffs(abar[:-1], abar[1:], validate=False)
        a, b, sc = a.to(x.dtype), b.to(x.dtype), c.sqrt().to(x.dtype)
        z = _randn((B, self.embedding.dim), ref, generator)
        for n in range(steps):
            u_hat = self.denoise(x, z, grid[n].to(x.dtype).expand(B))
            if self.validate:
                _raise_nonfinite(
                    torch.isfinite(u_hat).all().reshape(1),
                    [f"the block output at inference step {n + 1} (t={float(grid[n]):.3f})"],
                )
            z = a[n] * u_hat + b[n] * z
            if stochastic:
                z = z + sc[n] * _randn(tuple(z.shape), ref, generator)
        out: Tensor = self.classifier(z)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """= :meth:`predict_logits` with defaults."""
        return self.predict_logits(x)


class NoPropFM(nn.Module):
    """NoProp-FM: flow matching from z_0 ~ N(0, I) to z_1 = u_y, conditioned on x.

        z_t = t·u_y + (1 − t)·z_0,   L = ‖v_θ(z_t, x, t) − (u_y − z_0)‖²
              [+ ce_weight · CE(z̃_1·W_Eᵀ, y),  z̃_1 = z_t + (1 − t)·v_θ]

    Inference: Euler steps from t = 0 to 1; logits = −‖z_1 − u_k‖² (class = nearest embedding).

    Args:
        block: maps (x, z ``(B, e)``, t ``(B,)``) → v ``(B, e)``.
        num_classes: K.
        embedding: default one-hot.
        ce_weight: weight of the anti-collapse CE for learned embeddings (recalled), default 0.
        validate: input and finiteness checks.
    """

    def __init__(
        self,
        block: nn.Module,
        num_classes: int,
        embedding: LabelEmbedding | None = None,
        ce_weight: float = 0.0,
        validate: bool = True,
    ) -> None:
        super().__init__()
        if ce_weight < 0:
            raise ValueError(f"ce_weight must be >= 0, got {ce_weight}")
        self.embedding = embedding if embedding is not None else LabelEmbedding(num_classes)
        if self.embedding.num_classes != num_classes:
            raise ValueError(
                f"embedding has {self.embedding.num_classes} classes, num_classes={num_classes}"
            )
        _check_block(block)
        _check_block_dims(block, self.embedding, "linear", "block")
        self.block = block
        self.num_classes = num_classes
        self.ce_weight = float(ce_weight)
        self.validate = validate

    def _ref(self) -> Tensor | None:
        return next(iter(self.block.parameters()), None)

    def velocity(self, x: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """v_θ(z_t, x, t), ``(B, e)``."""
        return _apply_head(self.block(x, z, t), "linear", self.embedding.weight, "block")

    def loss(
        self,
        x: Tensor,
        y: Tensor,
        reduction: Reduction = "mean",
        generator: torch.Generator | None = None,
        t: Tensor | None = None,
    ) -> Tensor:
        """Flow-matching loss (one t ~ U[0, 1] per example unless ``t`` ``(B,)`` is given)."""
        u_y, t = _label_targets_and_times(
            x, y, t, self.embedding, self.num_classes, self.validate, generator, self._ref()
        )
        z0 = _randn(tuple(u_y.shape), u_y, generator)
        tc = t.to(u_y.dtype)[:, None]
        z_t = tc * u_y + (1 - tc) * z0
        v = self.velocity(x, z_t, t)
        per_example = (v - (u_y - z0)).pow(2).sum(-1)
        if self.ce_weight > 0:
            z1 = z_t + (1 - tc) * v
            per_example = per_example + self.ce_weight * F.cross_entropy(
                z1 @ self.embedding.weight.T, y, reduction="none"
            )
        if self.validate:
            _raise_nonfinite(torch.isfinite(per_example).all().reshape(1), ["the FM loss"])
        return reduce_loss(per_example, reduction)

    def predict_logits(
        self, x: Tensor, steps: int = 20, generator: torch.Generator | None = None
    ) -> Tensor:
        """Euler-integrate ``steps`` steps; logits −‖z_1 − u_k‖², ``(B, K)``."""
        steps = _check_steps(steps)
        if self.validate:
            _check_xy(x, None, self.num_classes, self._ref())
        W_E = self.embedding.weight.to(x.dtype)
        B = x.shape[0]
        z = _randn((B, self.embedding.dim), W_E, generator)
        dt = 1.0 / steps
        for n in range(steps):
            t = torch.full((B,), n * dt, dtype=x.dtype, device=x.device)
            v = self.velocity(x, z, t)
            if self.validate:
                _raise_nonfinite(
                    torch.isfinite(v).all().reshape(1),
                    [f"the block output at Euler step {n + 1} (t={n * dt:.3f})"],
                )
            z = z + dt * v
        return -torch.cdist(z, W_E).pow(2)

    def forward(self, x: Tensor) -> Tensor:
        """= :meth:`predict_logits` with defaults."""
        return self.predict_logits(x)
