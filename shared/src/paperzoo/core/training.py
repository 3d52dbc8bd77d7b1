"""The training loop and its parts: step, epoch, callbacks, progress, checkpoints, RNG state, DDP.

One concept (about 550 lines): these parts are what exact resume needs together (the checkpoint
holds the model, optimiser, callbacks, RNG and loader state that the loop advances).

``fit`` covers the plain supervised case. Methods whose training is not a plain loop (bilevel search,
bandits, local per-block losses) build their own loop from the same parts: :func:`train_epoch`,
:func:`save_checkpoint` / :func:`load_checkpoint`, :func:`rng_state` / :func:`set_rng_state`,
:func:`progress` and the distributed helpers.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader

from paperzoo.core.devices import PRECISIONS, autocast, resolve_device, to_device
from paperzoo.core.evaluation import evaluate

__all__ = [
    "Callback",
    "FitResult",
    "StepFn",
    "TrainState",
    "all_reduce_mean",
    "fit",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "load_checkpoint",
    "progress",
    "rank",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "to_device",
    "train_epoch",
    "world_size",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
StepFn = Callable[[nn.Module, Any, torch.device], "Tensor | Mapping[str, Tensor]"]


# --------------------------------------------------------------------------- distributed


def is_distributed() -> bool:
    """True inside an initialised ``torch.distributed`` process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (and when not distributed)."""
    return rank() == 0


def init_distributed(backend: str | None = None) -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment.

    Uses gloo on CPU and nccl on CUDA unless ``backend`` is given; a no-op (returning the auto
    device) when ``WORLD_SIZE`` is not set. Returns this rank's device.
    """
    if "WORLD_SIZE" not in os.environ or is_distributed():
        if torch.cuda.is_available() and is_distributed():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return resolve_device("auto")
    use_cuda = torch.cuda.is_available() and backend != "gloo"
    chosen = backend or ("nccl" if use_cuda else "gloo")
    dist.init_process_group(backend=chosen)
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def all_reduce_mean(t: Tensor) -> Tensor:
    """The mean of ``t`` over all ranks (``t`` itself when not distributed)."""
    if not is_distributed():
        return t
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / world_size()


# --------------------------------------------------------------------------- progress, RNG


def progress(
    iterable: Iterable[T], *, desc: str = "", total: int | None = None, enabled: bool | None = None
) -> Iterator[T]:
    """A tqdm progress bar, quiet when stderr is not a terminal or on ranks other than 0."""
    from tqdm.auto import tqdm

    show = enabled if enabled is not None else (sys.stderr.isatty() and is_main_process())
    yield from tqdm(iterable, desc=desc, total=total, disable=not show, leave=False)


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states, in a form ``torch.load(weights_only=True)`` reads."""
    py = random.getstate()
    npst: Any = np.random.get_state(legacy=True)  # noqa: NPY002 - the global stream is what we restore
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(npst[1], dtype=np.int64)),
            "pos": int(npst[2]),
            "has_gauss": int(npst[3]),
            "cached_gaussian": float(npst[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            "MT19937",
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically.

    The bytes go to a temporary file in the same folder, are flushed and fsynced, and only then
    replace ``path`` (``os.replace`` is atomic): a crash mid-write leaves the previous checkpoint
    intact and loadable.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(payload), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # persist the rename itself
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on folders
        pass


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        FileNotFoundError: no file at ``path`` (the message names it).
        ValueError: the file exists but is not a loadable checkpoint (the message names it).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {str(p)!r}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint: {str(p)!r} could not be loaded ({err})") from err
    if not isinstance(obj, dict):
        raise ValueError(f"checkpoint: {str(p)!r} holds a {type(obj).__name__}, expected a dict")
    return obj


# --------------------------------------------------------------------------- the loop


@dataclass
class TrainState:
    """Everything the loop mutates. ``epoch`` counts completed epochs, ``step`` optimizer steps."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    scaler: Any = None
    epoch: int = 0
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    should_stop: bool = False


class Callback:
    """Hooks called by :func:`fit`; override the ones you need. Set ``state.should_stop`` to stop."""

    def on_train_begin(self, state: TrainState) -> None:
        """Before the first epoch (after a resume has been applied)."""

    def on_epoch_begin(self, state: TrainState) -> None:
        """Before each epoch."""

    def on_batch_end(self, state: TrainState, loss: Tensor) -> None:
        """After each micro-batch; ``loss`` is a detached 0-d tensor (no host sync is forced)."""

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        """After each epoch with its logs (``train_loss``, ``val_*``)."""

    def on_train_end(self, state: TrainState) -> None:
        """After the last epoch."""

    def state_dict(self) -> dict[str, Any] | None:
        """State to keep in ``fit``'s checkpoint (``None``, the default: the callback keeps none).

        Return tensors, numbers, strings and containers of them (the checkpoint is read back
        with ``weights_only=True``). ``fit`` saves it after every epoch's :meth:`on_epoch_end`
        and hands it to :meth:`load_state_dict` on resume, before :meth:`on_train_begin`.
        """
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (called by ``fit(resume=True)``)."""
        raise TypeError(
            f"{type(self).__name__}.load_state_dict: this callback keeps no state, but the "
            "checkpoint holds some for it (were the callbacks passed in another order?)"
        )


def _load_callback_states(
    callbacks: Sequence[Callback],
    saved: Sequence[dict[str, Any] | None] | None,
    path: str | os.PathLike[str],
) -> None:
    """Hand each callback its saved state (checkpoint entry ``callbacks``, one per callback)."""
    if saved is None:  # a checkpoint written before callback states were kept
        saved = [None] * len(callbacks)
    if len(saved) != len(callbacks):
        raise ValueError(
            f"callbacks: the checkpoint {str(path)!r} holds the state of {len(saved)} "
            f"callbacks, fit got {len(callbacks)}; pass the same callbacks in the same order"
        )
    for cb, state in zip(callbacks, saved, strict=True):
        if state is not None:
            cb.load_state_dict(state)
        elif cb.state_dict() is not None:
            log.warning(
                "%s: the checkpoint %s holds no state for it; it starts from its current state",
                type(cb).__name__,
                path,
            )


@dataclass
class FitResult:
    """What :func:`fit` returns: the per-epoch logs and the final state."""

    history: list[dict[str, float]]
    state: TrainState


def _loss_of(out: Tensor | Mapping[str, Tensor]) -> Tensor:
    if isinstance(out, Tensor):
        return out
    if "loss" not in out:
        raise ValueError("step_fn: a returned mapping must hold the key 'loss'")
    return out["loss"]


def train_epoch(
    state: TrainState,
    loader: Iterable[Any],
    step_fn: StepFn,
    *,
    device: torch.device,
    precision: str = "fp32",
    grad_clip: float | None = None,
    accumulate: int = 1,
    callbacks: Sequence[Callback] = (),
    show_progress: bool | None = None,
    desc: str = "train",
) -> Tensor:
    """One pass over ``loader``: forward under autocast, backward (scaled for fp16), clip, step.

    Returns the mean training loss as a 0-d tensor on ``device`` (one host sync when read).
    """
    model, opt = state.model, state.optimizer
    model.train()
    total = torch.zeros((), device=device)
    count = 0
    opt.zero_grad(set_to_none=True)
    pending = 0
    try:
        n_batches: int | None = len(loader)  # type: ignore[arg-type]
    except TypeError:
        n_batches = None
    mixed = precision != "fp32"
    for batch in progress(loader, desc=desc, total=n_batches, enabled=show_progress):
        if mixed:
            with autocast(device, precision):
                loss = _loss_of(step_fn(model, batch, device))
        else:
            loss = _loss_of(step_fn(model, batch, device))
        if loss.dim() != 0:
            raise ValueError(f"step_fn: expected a scalar loss, got shape {tuple(loss.shape)}")
        scaled = loss / accumulate if accumulate > 1 else loss
        if state.scaler is not None:
            state.scaler.scale(scaled).backward()
        else:
            scaled.backward()
        pending += 1
        total += loss.detach()
        count += 1
        if pending == accumulate:
            _optimizer_step(state, grad_clip)
            pending = 0
        for cb in callbacks:
            cb.on_batch_end(state, loss.detach())
    if pending:
        _optimizer_step(state, grad_clip)
    if count == 0:
        raise ValueError("train_loader: yielded no batches")
    return total / count


def _optimizer_step(state: TrainState, grad_clip: float | None) -> None:
    opt = state.optimizer
    if state.scaler is not None:
        if grad_clip is not None:
            state.scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(state.model.parameters(), grad_clip)
        state.scaler.step(opt)
        state.scaler.update()
    else:
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(state.model.parameters(), grad_clip)
        opt.step()
    opt.zero_grad(set_to_none=True)
    state.step += 1


def _default_step(loss_fn: Callable[[Tensor, Tensor], Tensor]) -> StepFn:
    def step(model: nn.Module, batch: Any, device: torch.device) -> Tensor:
        x, y = to_device(batch, device)[:2]
        return loss_fn(model(x), y)

    return step


def _set_epoch(loader: Any, epoch: int) -> None:
    for obj in (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
        inner = getattr(obj, "sampler", None)
        if inner is not None and hasattr(inner, "set_epoch"):
            inner.set_epoch(epoch)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def fit(
    model: nn.Module,
    train_loader: DataLoader[Any] | Iterable[Any],
    optimizer: torch.optim.Optimizer,
    *,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    step_fn: StepFn | None = None,
    epochs: int = 1,
    device: str | torch.device = "auto",
    val_loader: Iterable[Any] | None = None,
    metrics: Any = None,
    scheduler: Any = None,
    callbacks: Sequence[Callback] = (),
    grad_clip: float | None = None,
    accumulate: int = 1,
    precision: str = "fp32",
    checkpoint_path: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool | None = None,
) -> FitResult:
    """Train ``model`` for ``epochs`` epochs (the plain supervised loop).

    Args:
        model: the network; moved to ``device`` (wrapped in DDP under ``torch.distributed``).
        train_loader: yields batches; ``(x, y)`` for the default step. A sampler or batch sampler
            with ``set_epoch`` gets the epoch number; a loader's ``generator`` state is checkpointed.
        optimizer: built over ``model``'s parameters.
        loss_fn: ``loss_fn(model(x), y)`` → scalar; used when ``step_fn`` is not given.
        step_fn: ``step_fn(model, batch, device)`` → scalar loss or a mapping with ``"loss"``.
        epochs: total epochs (a resumed run continues up to this number).
        val_loader: evaluated after each epoch with ``metrics``.
        metrics: a torchmetrics ``MetricCollection`` (logged as ``val_<name>``), synchronised
            across ranks by torchmetrics.
        scheduler: stepped once per epoch.
        grad_clip: max global gradient norm, or None.
        accumulate: micro-batches per optimizer step.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (fp16 uses a gradient scaler).
        checkpoint_path: written atomically after every epoch, after the callbacks'
            ``on_epoch_end`` (rank 0 only).
        resume: continue from ``checkpoint_path`` (model, optimizer, scheduler, scaler, epoch,
            history, RNG and loader-generator state, and each callback's
            :meth:`Callback.state_dict`): the result is bit-identical on CPU to an
            uninterrupted run.
        progress: show a progress bar (default: only on a terminal, rank 0).

    Returns:
        :class:`FitResult` with one log dict per epoch (``epoch``, ``train_loss``, ``val_*``).

    Raises:
        ValueError: bad arguments, or a checkpoint holding another number of callback states;
            FileNotFoundError: ``resume`` without a checkpoint file.
    """
    if (loss_fn is None) == (step_fn is None):
        raise ValueError("loss_fn, step_fn: give exactly one of them")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: expected a positive int, got {epochs!r}")
    if not isinstance(accumulate, int) or accumulate < 1:
        raise ValueError(f"accumulate: expected a positive int, got {accumulate!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip: expected a positive float or None, got {grad_clip!r}")
    if resume and checkpoint_path is None:
        raise ValueError("resume: needs checkpoint_path")
    dev = resolve_device(device)
    model.to(dev)
    scaler = torch.amp.GradScaler(dev.type) if precision == "fp16" else None
    state = TrainState(model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
    generator = getattr(train_loader, "generator", None)
    if resume:
        assert checkpoint_path is not None
        ck = load_checkpoint(checkpoint_path)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if scheduler is not None and ck.get("scheduler") is not None:
            scheduler.load_state_dict(ck["scheduler"])
        if scaler is not None and ck.get("scaler") is not None:
            scaler.load_state_dict(ck["scaler"])
        state.epoch, state.step = int(ck["epoch"]), int(ck["step"])
        state.history = list(ck["history"])
        set_rng_state(ck["rng"])
        if isinstance(generator, torch.Generator) and ck.get("loader_generator") is not None:
            generator.set_state(ck["loader_generator"])
        _load_callback_states(callbacks, ck.get("callbacks"), checkpoint_path)
        log.info("resumed from %s at epoch %d", checkpoint_path, state.epoch)
    if is_distributed():
        state.model = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    step = step_fn if step_fn is not None else _default_step(loss_fn)  # type: ignore[arg-type]
    for cb in callbacks:
        cb.on_train_begin(state)
    while state.epoch < epochs and not state.should_stop:
        _set_epoch(train_loader, state.epoch)
        for cb in callbacks:
            cb.on_epoch_begin(state)
        mean_loss = train_epoch(
            state,
            train_loader,
            step,
            device=dev,
            precision=precision,
            grad_clip=grad_clip,
            accumulate=accumulate,
            callbacks=callbacks,
            show_progress=progress,
            desc=f"epoch {state.epoch + 1}/{epochs}",
        )
        logs: dict[str, float] = {
            "epoch": float(state.epoch + 1),
            "train_loss": float(all_reduce_mean(mean_loss)),
        }
        if val_loader is not None and metrics is not None:
            logs.update(
                {
                    f"val_{k}": v
                    for k, v in evaluate(state.model, val_loader, metrics, device=dev).items()
                }
            )
        if scheduler is not None:
            scheduler.step()
        state.epoch += 1
        state.history.append(logs)
        for cb in callbacks:
            cb.on_epoch_end(state, logs)
        # after on_epoch_end: the logs the callbacks add and their state belong to this epoch
        if checkpoint_path is not None:
            if is_main_process():
                save_checkpoint(
                    checkpoint_path,
                    {
                        "model": _unwrap(state.model).state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler is not None else None,
                        "scaler": scaler.state_dict() if scaler is not None else None,
                        "epoch": state.epoch,
                        "step": state.step,
                        "history": state.history,
                        "rng": rng_state(),
                        "loader_generator": generator.get_state()
                        if isinstance(generator, torch.Generator)
                        else None,
                        "callbacks": [cb.state_dict() for cb in callbacks],
                    },
                )
            if is_distributed():
                dist.barrier()
    for cb in callbacks:
        cb.on_train_end(state)
    state.model = _unwrap(state.model)
    return FitResult(history=state.history, state=state)
