"""All T NoProp-DT blocks updated in one batched call (``torch.func.stack_module_state`` + ``vmap``)."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from paperzoo.noprop._parts import apply_head, check_inputs, raise_nonfinite
from paperzoo.noprop.dt import NoPropDT

__all__ = ["train_blocks_vmapped"]


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
        check_inputs(x, y, model.num_classes, model.classifier.weight)
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
    u_hat = apply_head(out, model.head, model.embedding.weight, "the blocks")  # (T, B, e)
    delta = (snr[1:] - snr[:-1]).to(u_hat.dtype)[:, None]
    den = 0.5 * model.T * model.eta * delta * (u_hat - u_y).pow(2).sum(-1)  # (T, B)
    ce, kl = model._shared_terms(u_y, y, eps_T)  # (T, B), (B,)
    per_block = (den + ce + kl).mean(-1)
    if model.validate:
        raise_nonfinite(
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
