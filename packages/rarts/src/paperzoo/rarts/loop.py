"""The search loop: a stepper driven over paired D_train / D_val loaders, with exact checkpoint/resume.

Architecture search is not a plain ``fit`` (two loaders, two or three optimisers, two networks for RARTS), so it
has its own loop built from the core's parts: :func:`paperzoo.core.training.progress`, atomic
:func:`~paperzoo.core.training.save_checkpoint` / :func:`~paperzoo.core.training.load_checkpoint`
(``weights_only=True``) and :func:`~paperzoo.core.training.rng_state`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader

from paperzoo.core.training import (
    load_checkpoint,
    progress,
    rng_state,
    save_checkpoint,
    set_rng_state,
    to_device,
)
from paperzoo.rarts.stepper import SearchStepper

__all__ = ["SearchResult", "run_search"]

logger = logging.getLogger(__name__)


@dataclass
class SearchResult:
    """What :func:`run_search` returns: one dict per epoch (mean of each returned loss, ``epoch``,
    ``search_s`` — wall-clock seconds spent in ``step`` calls that epoch — and, for supernets with
    ``alpha_entropy()``, ``alpha_entropy_normal`` / ``alpha_entropy_reduce``)."""

    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def search_seconds(self) -> float:
        """Total wall-clock seconds spent in ``step`` over all epochs (resumed epochs included)."""
        return float(sum(h["search_s"] for h in self.history))


def _gen(loader: Iterable[Any]) -> torch.Generator | None:
    g = getattr(loader, "generator", None)
    return g if isinstance(g, torch.Generator) else None


def run_search(
    stepper: SearchStepper,
    train_loader: DataLoader[Any] | Iterable[Any],
    val_loader: DataLoader[Any] | Iterable[Any],
    *,
    epochs: int,
    device: torch.device | str = "cpu",
    schedulers: Sequence[Any] = (),
    checkpoint_path: str | os.PathLike[str] | None = None,
    resume: bool = False,
    show_progress: bool | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> SearchResult:
    """Run ``epochs`` epochs of ``stepper.step(batch_train, batch_val)`` over ``zip(train_loader, val_loader)``.

    Args:
        stepper: a :class:`~paperzoo.rarts.darts.DartsFirstOrder`, ``DartsSecondOrder`` or ``RARTS``.
        train_loader, val_loader: loaders of ``(x, y)`` batches over D_train and D_val; an epoch ends with the
            shorter one (DARTS uses two equal halves).
        epochs: number of epochs (> 0). ``ValueError`` if an epoch gets no batch.
        device: batches are moved there.
        schedulers: learning-rate schedulers stepped once per epoch (e.g. cosine on the w/y optimisers).
        checkpoint_path: when given, an atomic checkpoint (stepper, schedulers, loader generators, RNG, history)
            is written after every epoch.
        resume: continue from ``checkpoint_path`` if it exists: the result is bit-identical on CPU to an
            uninterrupted run.
        show_progress: tqdm bar (default: only on a terminal).
        on_epoch_end: ``callback(epoch, logs)``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    dev = torch.device(device)
    history: list[dict[str, float]] = []
    start = 0
    gens = [_gen(train_loader), _gen(val_loader)]
    if resume and checkpoint_path is not None and os.path.exists(checkpoint_path):
        ck = load_checkpoint(checkpoint_path)
        if len(ck["schedulers"]) != len(schedulers):
            raise ValueError(
                f"checkpoint {os.fspath(checkpoint_path)!r} holds {len(ck['schedulers'])} scheduler "
                f"state(s) but {len(schedulers)} scheduler(s) were given"
            )
        stepper.load_state_dict(ck["stepper"])
        for s, st in zip(schedulers, ck["schedulers"], strict=True):
            s.load_state_dict(st)
        for g, st in zip(gens, ck["loader_generators"], strict=True):
            if g is not None and st is not None:
                g.set_state(st)
        set_rng_state(ck["rng"])
        history = [dict(h) for h in ck["history"]]
        start = int(ck["epoch"])
        logger.info("resumed search from %s at epoch %d", checkpoint_path, start)
    for epoch in range(start, epochs):
        sums: dict[str, float] = {}
        n = 0
        spent = 0.0
        batches = zip(train_loader, val_loader, strict=False)
        for bt, bv in progress(batches, desc=f"search {epoch + 1}/{epochs}", enabled=show_progress):
            xt, yt = to_device(bt, dev)[:2]
            xv, yv = to_device(bv, dev)[:2]
            t0 = time.perf_counter()
            out = stepper.step((xt, yt), (xv, yv))
            spent += time.perf_counter() - t0
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
        if n == 0:
            raise ValueError(
                f"search epoch {epoch + 1}: train_loader or val_loader yielded no batches "
                "(an empty split, or a DataLoader with drop_last=True and fewer rows than batch_size)"
            )
        for s in schedulers:
            s.step()
        logs = {k: v / max(n, 1) for k, v in sums.items()}
        logs.update(epoch=float(epoch + 1), search_s=spent)
        entropy = getattr(stepper.model, "alpha_entropy", None)
        if callable(entropy):  # collapse diagnostic: mean softmax(α) entropy per cell type
            logs.update({f"alpha_entropy_{k}": float(v) for k, v in entropy().items()})
        history.append(logs)
        logger.info("search epoch %d/%d: %s", epoch + 1, epochs, logs)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, logs)
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                {
                    "epoch": epoch + 1,
                    "stepper": stepper.state_dict(),
                    "schedulers": [s.state_dict() for s in schedulers],
                    "loader_generators": [None if g is None else g.get_state() for g in gens],
                    "rng": rng_state(),
                    "history": history,
                },
            )
        if any(not math.isfinite(v) for v in logs.values()):  # pragma: no cover - step raises first
            raise ValueError(f"search epoch {epoch + 1}: non-finite logs {logs}")
    return SearchResult(history)
