"""Calibration data handling and BatchNorm recalibration (no labels, no gradients).

Calibration data is any of: one input tensor ``(N, ...)`` (split into batches), or an iterable of
input tensors, or an iterable of ``(x, y, ...)`` batches whose labels are ignored.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_finite, check_float_tensor, check_positive_int

__all__ = ["CalibrationData", "calibration_batches", "recalibrate_batchnorm", "resolve_layer"]

CalibrationData = Tensor | Iterable[Any]
"""One input tensor ``(N, ...)``, or an iterable of input tensors or of ``(x, y, ...)`` batches."""


def calibration_batches(
    data: CalibrationData, *, batch_size: int = 256, validate: bool = True
) -> list[Tensor]:
    """The input batches of ``data`` as a list of float tensors ``(B, ...)`` (labels dropped).

    Raises:
        TypeError: a batch that is not a floating tensor; ValueError: no rows at all, or NaN/inf
            values (checked when ``validate``).
    """
    check_positive_int("batch_size", batch_size)
    if isinstance(data, Tensor):
        x = check_float_tensor("data", data, nonempty=True)
        check_finite("data", x, validate=validate)
        return list(x.split(batch_size))
    out: list[Tensor] = []
    for item in data:
        x = item[0] if isinstance(item, tuple | list) else item
        x = check_float_tensor("data", x)
        if x.dim() == 0:
            raise ValueError(f"data: expected batches (B, ...), got shape {tuple(x.shape)}")
        check_finite("data", x, validate=validate)
        if x.shape[0] > 0:
            out.append(x)
    if not out:
        raise ValueError("data: expected at least one calibration sample, got none")
    return out


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """``(name, module)`` of ``layer`` (a submodule name or the module itself) inside ``model``.

    Raises:
        ValueError: no such submodule in ``model``; TypeError: neither a str nor a module.
    """
    if isinstance(layer, str):
        try:
            return layer, model.get_submodule(layer)
        except AttributeError:
            raise ValueError(f"layers: no submodule named {layer!r} in the model") from None
    if isinstance(layer, nn.Module):
        for name, m in model.named_modules():
            if m is layer:
                return name, m
        raise ValueError(f"layers: the module {type(layer).__name__} is not part of the model")
    raise TypeError(f"layers: expected a submodule name or module, got {type(layer).__name__}")


def warn_if_training(model: nn.Module) -> None:
    """Warn that a model in training mode is scored in eval mode."""
    if model.training:
        warnings.warn(
            "model: it is in training mode; scoring switches it to eval mode (restored after)",
            UserWarning,
            stacklevel=3,
        )


@contextmanager
def eval_mode(model: nn.Module, *, warn: bool = True) -> Iterator[None]:
    """Run ``model`` in eval mode (warning when it was training) and restore its mode after."""
    was = model.training
    if warn:
        warn_if_training(model)
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def _device_of(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def run_model(model: nn.Module, x: Tensor) -> Tensor:
    """``model(x)`` on the model's device; a shape the model rejects is a ``ValueError`` on data."""
    try:
        out: Tensor = model(x.to(_device_of(model)))
    except RuntimeError as err:
        raise ValueError(
            f"data: the model rejected a calibration batch of shape {tuple(x.shape)}: {err}"
        ) from err
    return out


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, data: CalibrationData, *, batch_size: int = 256, validate: bool = True
) -> nn.Module:
    """Re-estimate every BatchNorm's running mean and variance on ``data`` (in place).

    Each BN's running statistics are reset and accumulated with ``momentum=None`` (PyTorch's
    cumulative average): the running mean is the mean of the per-batch means and the running
    variance the mean of the per-batch unbiased variances (for a single batch: exactly the batch
    statistics). Affine parameters are untouched; the model's mode and each BN's momentum are
    restored. Labels in ``data`` are ignored. Returns ``model``.
    """
    batches = calibration_batches(data, batch_size=batch_size, validate=validate)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model
    was = model.training
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        for x in batches:
            run_model(model, x)
    finally:
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom
        model.train(was)
    return model
