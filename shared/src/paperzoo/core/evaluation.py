"""Evaluation: a model over a loader with a torchmetrics ``MetricCollection``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from paperzoo.core.devices import to_device

__all__ = ["accuracy", "evaluate", "predict"]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    metrics: Any,
    *,
    device: torch.device | str = "cpu",
    forward: Callable[[nn.Module, Tensor], Tensor] | None = None,
) -> dict[str, float]:
    """Run ``model`` over ``loader`` (batches ``(x, y)``) and compute a torchmetrics collection.

    Args:
        model: put in eval mode for the pass and restored to its previous mode after.
        loader: yields ``(x, y)``.
        metrics: a ``torchmetrics.MetricCollection`` (or one ``Metric``); it is reset, updated
            with ``(forward(model, x), y)`` and computed; under ``torch.distributed`` torchmetrics
            synchronises the states across ranks.
        device: where the model and batches run.
        forward: how to get predictions (default ``model(x)``).

    Returns:
        ``{name: value}`` as Python floats.
    """
    dev = torch.device(device) if isinstance(device, str) else device
    was_training = model.training
    model.eval()
    metrics = metrics.to(dev)
    metrics.reset()
    seen = False
    for batch in loader:
        x, y = to_device(batch, dev)[:2]
        out = forward(model, x) if forward is not None else model(x)
        metrics.update(out, y)
        seen = True
    model.train(was_training)
    if not seen:
        raise ValueError("loader: yielded no batches to evaluate")
    res = metrics.compute()
    if isinstance(res, Tensor):
        name = type(metrics).__name__
        return {name: float(res)}
    return {k: float(v) for k, v in res.items()}


@torch.no_grad()
def predict(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
) -> Tensor:
    """``model(x)`` in batches of ``batch_size``; returns the outputs on the CPU ``(N, ...)``.

    ``model`` is any callable ``(B, ...) -> (B, ...)``: an ``nn.Module`` (put in eval mode for the
    pass and restored after) or a function such as a method's own inference routine.
    """
    if x.shape[0] == 0:
        raise ValueError("x: expected at least one row, got an empty tensor")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    dev = torch.device(device) if isinstance(device, str) else device
    module = model if isinstance(model, nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        outs = [
            model(x[i : i + batch_size].to(dev)).cpu() for i in range(0, x.shape[0], batch_size)
        ]
    finally:
        if module is not None:
            module.train(was_training)
    return torch.cat(outs)


def accuracy(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    *,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
) -> float:
    """Top-1 accuracy of ``model`` (any callable returning scores ``(B, C)``) on ``x`` ``(N, ...)``
    with labels ``y`` ``(N,)``."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x, y: expected the same number of rows, got {x.shape[0]} and {y.shape[0]}"
        )
    pred = predict(model, x, batch_size=batch_size, device=device).argmax(dim=1)
    return float((pred == y.cpu()).float().mean())
