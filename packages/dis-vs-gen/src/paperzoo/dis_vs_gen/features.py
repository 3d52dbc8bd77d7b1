"""Frozen features for linear probes: extraction, and a tiny supervised pretraining.

No pretrained encoder can be downloaded here, so the reproduction stands in for the paper's
ImageNet backbones with a small MLP pretrained on some classes of an offline data set
(:func:`pretrain_tiny`) and probes its features on the other classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_float_tensor, check_labels, check_positive_int
from paperzoo.core.data import make_loader
from paperzoo.core.devices import resolve_device, seed_everything
from paperzoo.core.models import mlp
from paperzoo.core.training import fit

__all__ = ["extract", "pretrain_tiny"]


@torch.no_grad()
def extract(
    model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], device: str | torch.device = "cpu"
) -> tuple[Tensor, Tensor]:
    """Features ``(N, d)`` and labels ``(N,)`` of ``model`` (in eval mode) over ``loader``.

    The model's train/eval mode is restored afterwards; features come back on the CPU.
    """
    dev = resolve_device(device)
    was = model.training
    model.eval()
    xs, ys = [], []
    try:
        for x, y in loader:
            xs.append(model(x.to(dev)).detach().cpu())
            ys.append(y.cpu())
    finally:
        model.train(was)
    if not xs:
        raise ValueError("loader: expected at least one batch, got none")
    return torch.cat(xs), torch.cat(ys)


def pretrain_tiny(
    x: Tensor,
    y: Tensor,
    classes: Sequence[int],
    epochs: int = 2,
    *,
    widths: Sequence[int] = (256, 64),
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> nn.Sequential:
    """Supervised pretraining of an MLP encoder on the rows of ``classes`` (the rest unseen).

    The encoder ``mlp([d, *widths])`` (its last layer linear: pre-activation features) gets a
    ReLU and a linear classifier over ``len(classes)`` classes and is trained with cross-entropy
    and Adam through :func:`paperzoo.core.training.fit`.

    Args:
        x: inputs ``(N, d)`` float; y: labels ``(N,)``.
        classes: the label values used for pretraining (relabelled ``0..len-1``).
        epochs: training epochs; widths: hidden and feature widths; lr, batch_size: Adam's.
        seed: seeds the initialisation and the batch order.

    Returns:
        The trained encoder ``(N, d) -> (N, widths[-1])`` in eval mode, on ``device``.

    Deviation: the spec's tiny CNN is an MLP here (the prototype's 784-256-64), so the
    pretraining stays within seconds on two CPU cores.
    """
    check_float_tensor("x", x, ndim=2, nonempty=True)
    check_labels("y", y, n=x.shape[0])
    ep = check_positive_int("epochs", epochs)
    cls = torch.tensor(sorted({int(c) for c in classes}), dtype=torch.long)
    if cls.numel() < 2:
        raise ValueError(f"classes: expected at least 2 distinct classes, got {list(classes)}")
    keep = torch.isin(y, cls)
    if not bool(keep.any()):
        raise ValueError(f"classes: no rows of y carry the classes {cls.tolist()}")
    remap = torch.full((int(max(int(y.max()), int(cls.max()))) + 1,), -1, dtype=torch.long)
    remap[cls] = torch.arange(cls.numel())
    xs, ys = x[keep], remap[y[keep]]
    seed_everything(seed)
    encoder = mlp([x.shape[1], *widths])
    model = nn.Sequential(encoder, nn.ReLU(), nn.Linear(widths[-1], cls.numel()))
    loader = make_loader(xs, ys, batch_size=batch_size, shuffle=True, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    fit(
        model,
        loader,
        opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=ep,
        device=device,
        progress=False,
    )
    return encoder.eval()
