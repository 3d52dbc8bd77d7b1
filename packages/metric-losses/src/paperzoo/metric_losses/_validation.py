"""Cheap input checks shared by the losses (clear errors naming the argument)."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")
SIMILARITIES = ("cosine", "dot")


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_similarity(similarity: str) -> None:
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def check_non_negative(name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def check_embeddings(name: str, x: Tensor, *, min_rows: int = 1) -> None:
    """``x`` must be a finite floating (N, D) tensor with at least ``min_rows`` rows."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got shape {tuple(x.shape)}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have at least one feature column, got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf")


def check_labels(name: str, y: Tensor, n: int, rows_name: str) -> None:
    """``y`` must be a 1-D integer tensor of length ``n`` with no negative entry."""
    if not isinstance(y, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(y.shape)}")
    if y.shape[0] != n:
        raise ValueError(
            f"{name} has length {y.shape[0]} but {rows_name} has {n} rows; they must match"
        )
    if n > 0 and bool((y < 0).any()):
        raise ValueError(f"{name} must be non-negative class ids, got min {int(y.min())}")


def warn_zero_norm(name: str, x: Tensor) -> None:
    if bool((x.detach().abs().amax(dim=1) == 0).any()):
        warnings.warn(
            f"{name} has zero-norm rows; with similarity='cosine' they are eps-normalised "
            "(norm clamped at 1e-12) and get similarity 0 to everything; their gradient is "
            "scaled by 1/1e-12 (one optimiser step can blow the head up): check the embedding "
            "head or drop those rows",
            RuntimeWarning,
            stacklevel=3,
        )
