"""Pieces the NoProp models share (private module): noise draws in float32, input and block
checks, the block head û = softmax(h)·W_E or h, and the continuous-time variants' shared start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_float_tensor, check_labels, check_like
from paperzoo.noprop.embeddings import LabelEmbedding

__all__ = [
    "Head",
    "apply_head",
    "check_block",
    "check_block_dims",
    "check_inputs",
    "given_noise",
    "label_targets_and_times",
    "raise_nonfinite",
    "standard_normal",
    "uniform",
]

Head = Literal["softmax", "linear"]


def standard_normal(
    shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Standard normal noise in ``like``'s dtype/device, drawn from ``generator``'s device.

    Drawn in float32 and cast, so a float64 (or half-precision) run sees the same noise as the
    float32 run for the same generator state.
    """
    dev = like.device if generator is None else generator.device
    out = torch.randn(shape, dtype=torch.float32, device=dev, generator=generator)
    return out.to(device=like.device, dtype=like.dtype)


def given_noise(noise: object, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """``noise`` (standard normal draws a caller passes instead of a generator) checked for its
    type, ``shape`` and ``like``'s dtype and device; no host sync.

    Raises:
        TypeError: not a floating tensor, or another dtype than ``like``.
        ValueError: another shape or device.
    """
    check_float_tensor("noise", noise)
    assert isinstance(noise, Tensor)
    if tuple(noise.shape) != shape:
        raise ValueError(f"noise: expected shape {shape}, got {tuple(noise.shape)}")
    check_like("noise", noise, like)
    return noise


def uniform(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform [0, 1) noise, drawn in float32 and cast (as :func:`standard_normal`)."""
    dev = like.device if generator is None else generator.device
    out = torch.rand(shape, dtype=torch.float32, device=dev, generator=generator)
    return out.to(device=like.device, dtype=like.dtype)


def check_inputs(x: Tensor, y: Tensor | None, num_classes: int, ref: Tensor | None = None) -> None:
    """Inputs of a loss or of inference; ``ref`` (a model parameter) gives device and dtype.

    One host sync for the label range (callers run it only when validating).
    """
    check_float_tensor("x", x, nonempty=True)
    if ref is not None:
        check_like("x", x, ref)
    if y is not None:
        if isinstance(y, Tensor) and y.device != x.device:
            raise ValueError(f"y: expected x's device {x.device}, got {y.device}")
        check_labels("y", y, n=x.shape[0], num_classes=num_classes)


def check_block(block: object, name: str = "block") -> None:
    if not isinstance(block, nn.Module):
        raise TypeError(
            f"{name} must be an nn.Module mapping (x, z, t) to logits, got {type(block).__name__}"
        )


def apply_head(out: Tensor, head: Head, W_E: Tensor, name: str) -> Tensor:
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


def check_block_dims(block: nn.Module, embedding: LabelEmbedding, head: Head, name: str) -> None:
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


def raise_nonfinite(flags: Tensor, what: Sequence[str]) -> None:
    """One host sync: ``flags`` (n,) bool 'is finite'; raise naming the first bad entry."""
    ok = flags.cpu()
    if not bool(ok.all()):
        first = int((~ok).nonzero()[0, 0])
        raise ValueError(f"non-finite (NaN/Inf) value in {what[first]}")


def label_targets_and_times(
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
        check_inputs(x, y, num_classes, ref)
    u_y: Tensor = embedding.weight[y]  # y checked above (when validating)
    B = u_y.shape[0]
    if t is None:
        return u_y, uniform((B,), u_y, generator)
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
