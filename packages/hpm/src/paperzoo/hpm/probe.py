"""Frozen-feature evaluation: mean-pooled encoder features, scored by the core's linear probe and
kNN classifier (:mod:`paperzoo.core.probes`, re-exported here)."""

from __future__ import annotations

import torch
from torch import Tensor

from paperzoo.core.probes import knn_accuracy, linear_probe_accuracy
from paperzoo.hpm.model import MaskedAutoencoderViT

__all__ = ["encoder_features", "knn_accuracy", "linear_probe_accuracy"]


@torch.no_grad()
def encoder_features(model: MaskedAutoencoderViT, imgs: Tensor, *, batch_size: int = 512) -> Tensor:
    """Mean over the patch tokens of the encoder output (no mask, cls token left out), ``(N, E)``.

    ``imgs`` is ``(N, C, H, W)`` (any device; moved chunk by chunk, ``batch_size`` 512, to the
    model's); the features come back on the CPU as float32. Runs in ``eval`` mode and restores the
    model's previous mode.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        feats = [
            model.encode(chunk.to(device))[:, 1:].mean(dim=1).float().cpu()
            for chunk in imgs.split(batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(feats)
