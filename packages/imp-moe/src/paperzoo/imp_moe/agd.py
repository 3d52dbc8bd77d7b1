"""Alternating Gradient Descent (spec 3.3): each optimiser step consumes one task.

A :class:`Task` bundles a data iterator and a loss; an :class:`AGDSchedule` says which task runs
at each step (the paper's weighted random sampling, or the official round robin with
intervals); :class:`AGDTrainer` takes one task step at a time through the core's training parts
(``paperzoo.core.training.train_epoch`` for one step, ``fit`` for many), so gradient clipping,
mixed precision and the torchrun data-parallel path are the core's. There is no gradient
accumulation across tasks, so memory is that of one task step (the max over tasks, not the sum).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_choice, check_positive, check_positive_int
from paperzoo.core.devices import resolve_device, to_device
from paperzoo.core.training import Callback, FitResult, TrainState, fit, train_epoch

__all__ = [
    "AGDSchedule",
    "AGDTrainer",
    "PreWarmupCosine",
    "Task",
    "repeat",
    "saved_tensor_bytes",
]

LossFn = Callable[[nn.Module, Any], "Tensor | Mapping[str, Tensor]"]


def repeat(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate ``iterable`` again and again (a ``DataLoader`` reshuffles each pass)."""
    while True:
        empty = True
        for item in iterable:
            empty = False
            yield item
        if empty:
            return


class Task:
    """One AGD task: a name, a data iterator, and ``loss_fn(model, batch) -> loss`` (a 0-d
    tensor or a mapping with ``"loss"``; it adds the encoder's MoE aux loss itself).

    ``weight``: sampling weight (random mode); ``interval``: run every ``interval`` rounds
    (round-robin mode, the official configs' integer intervals).

    Raises:
        ValueError: an empty name, a non-positive weight or interval.
    """

    def __init__(
        self,
        name: str,
        iterator: Iterable[Any],
        loss_fn: LossFn,
        weight: float = 1.0,
        interval: int = 1,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected a non-empty string, got {name!r}")
        self.name = name
        self.weight = check_positive(f"task {name!r}: weight", weight)
        self.interval = check_positive_int(f"task {name!r}: interval", interval)
        self.loss_fn = loss_fn
        self._it = iter(iterator)

    def next_batch(self) -> Any:
        """The task's next batch.

        Raises:
            ValueError: its iterator is exhausted (wrap a finite loader in :func:`repeat`).
        """
        try:
            return next(self._it)
        except StopIteration:
            raise ValueError(
                f"task {self.name!r}: its data iterator is exhausted (wrap a finite loader in "
                "paperzoo.imp_moe.repeat to cycle it)"
            ) from None

    def __repr__(self) -> str:
        return f"Task({self.name!r}, weight={self.weight}, interval={self.interval})"


class AGDSchedule:
    """The order in which AGD runs tasks (an infinite iterator of :class:`Task`).

    ``mode="random"`` (the paper, Fig. 1): every step draws task ``k`` with probability
    ``w_k / sum w`` from a generator seeded with ``seed``. ``mode="round_robin"`` (the official
    ``executors.py``): rounds r = 1, 2, ...; in each round the tasks in their given order, task
    ``k`` running when ``r`` is a multiple of its ``interval`` (so it first runs in round
    ``interval``). Intervals (1, 2, 3) give A A B A C A B A A B C over six rounds.

    Raises:
        ValueError: no tasks, repeated task names, an unknown mode.
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        mode: Literal["random", "round_robin"] = "random",
        seed: int = 0,
    ) -> None:
        self.tasks = list(tasks)
        if not self.tasks:
            raise ValueError("tasks: expected at least one Task, got none")
        for t in self.tasks:
            if not isinstance(t, Task):
                raise TypeError(f"tasks: expected Task objects, got {type(t).__name__}")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"tasks: expected distinct names, got {names}")
        self.mode = check_choice("mode", mode, ("random", "round_robin"))
        self.seed = int(seed)
        self._iter = self._random() if mode == "random" else self._round_robin()

    def _random(self) -> Iterator[Task]:
        gen = torch.Generator().manual_seed(self.seed)
        w = torch.tensor([t.weight for t in self.tasks], dtype=torch.float64)
        while True:
            for k in torch.multinomial(w, 1024, replacement=True, generator=gen).tolist():
                yield self.tasks[k]

    def _round_robin(self) -> Iterator[Task]:
        r = 0
        while True:
            r += 1
            for t in self.tasks:
                if r % t.interval == 0:
                    yield t

    def __iter__(self) -> Iterator[Task]:
        return self

    def __next__(self) -> Task:
        return next(self._iter)


class _Stream:
    """``num_steps`` items ``(task, batch)`` drawn from a schedule (a loader for ``fit``)."""

    def __init__(self, schedule: AGDSchedule, num_steps: int) -> None:
        self.schedule = schedule
        self.num_steps = num_steps

    def __len__(self) -> int:
        return self.num_steps

    def __iter__(self) -> Iterator[tuple[Task, Any]]:
        for _ in range(self.num_steps):
            task = next(self.schedule)
            yield task, task.next_batch()


class _PerStep(Callback):
    """Steps the LR schedule after every optimiser step and logs each step's task and loss."""

    def __init__(self, trainer: AGDTrainer) -> None:
        self.trainer = trainer

    def on_batch_end(self, state: TrainState, loss: Tensor) -> None:
        self.trainer._after_step(loss)


class AGDTrainer:
    """AGD: each step draws a task from ``schedule``, computes its loss on its next batch, and
    takes one optimiser step (clip the global gradient norm, step, zero grads), all tasks sharing
    one optimiser and step counter.

    Parameters a task's loss does not touch get no gradient (``None``), so ``torch.optim`` optimisers
    (AdamW included) leave them and their state unchanged in that step.

    Args:
        model: the module holding every task's parameters (encoder, stems, heads).
        optimizer: over ``model``'s parameters (IMP: AdamW(0.9, 0.999, eps 1e-7, wd 1e-4)).
        schedule: the :class:`AGDSchedule`.
        grad_clip: max global gradient norm (IMP 1.0), or None.
        lr_schedule: a ``torch.optim.lr_scheduler`` stepped after every optimiser step.
        device: where to train (``"auto"``: the core's choice).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (the core's autocast).

    ``step()`` returns ``{"task": name, "loss": 0-d tensor}``; ``fit(num_steps)`` runs the core
    ``fit`` over ``num_steps`` task steps; ``log`` keeps ``(task, loss)`` per step.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: AGDSchedule,
        grad_clip: float | None = 1.0,
        lr_schedule: Any = None,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
    ) -> None:
        if not isinstance(schedule, AGDSchedule):
            raise TypeError(f"schedule: expected an AGDSchedule, got {type(schedule).__name__}")
        if grad_clip is not None:
            check_positive("grad_clip", grad_clip)
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.grad_clip = grad_clip
        self.lr_schedule = lr_schedule
        self.device = resolve_device(device)
        self.precision = precision
        self.state = TrainState(model=model.to(self.device), optimizer=optimizer)
        self.log: list[tuple[str, Tensor]] = []
        self.counts: dict[str, int] = {t.name: 0 for t in schedule.tasks}
        self._current = ""

    def _step_fn(self, model: nn.Module, item: Any, device: torch.device) -> Any:
        task, batch = item
        self._current = task.name
        return task.loss_fn(model, to_device(batch, device))

    def _after_step(self, loss: Tensor) -> None:
        self.counts[self._current] += 1
        self.log.append((self._current, loss))
        if self.lr_schedule is not None:
            self.lr_schedule.step()

    def step(self) -> dict[str, Any]:
        """One AGD step: ``{"task": name, "loss": 0-d tensor (detached)}``."""
        train_epoch(
            self.state,
            _Stream(self.schedule, 1),
            self._step_fn,
            device=self.device,
            precision=self.precision,
            grad_clip=self.grad_clip,
            callbacks=[_PerStep(self)],
            show_progress=False,
        )
        return {"task": self._current, "loss": self.log[-1][1]}

    def fit(self, num_steps: int, progress: bool | None = False) -> FitResult:
        """``num_steps`` AGD steps through the core ``fit`` (one "epoch" of task steps)."""
        n = check_positive_int("num_steps", num_steps)
        res = fit(
            self.model,
            _Stream(self.schedule, n),
            self.optimizer,
            step_fn=self._step_fn,
            epochs=1,
            device=self.device,
            grad_clip=self.grad_clip,
            precision=self.precision,
            callbacks=[_PerStep(self)],
            progress=progress,
        )
        self.state.step += res.state.step
        return res


class PreWarmupCosine:
    """IMP's learning-rate schedule (official ``schedules.py``, optax semantics).

    Linear ``pre_init -> init`` over ``pre_warmup_steps``; then linear ``init -> peak`` over
    ``warmup_steps``; then cosine ``peak -> end`` over ``decay_steps - warmup_steps``;
    ``decay_steps`` counts from the end of the pre-warmup and includes the warmup; ``end``
    afterwards. IMP-B: ``(2e-5, 5e-6, 1e-3, 1e-6, 2_000, 25_000, 500_000)``.

    ``lr(step)`` is the absolute rate; calling the object gives ``lr(step) / peak``, the factor
    ``torch.optim.lr_scheduler.LambdaLR`` expects with the optimiser's ``lr = peak``.
    """

    def __init__(
        self,
        pre_init: float,
        init: float,
        peak: float,
        end: float,
        pre_warmup_steps: int,
        warmup_steps: int,
        decay_steps: int,
    ) -> None:
        self.pre_init = check_positive("pre_init", pre_init, allow_zero=True)
        self.init = check_positive("init", init, allow_zero=True)
        self.peak = check_positive("peak", peak)
        self.end = check_positive("end", end, allow_zero=True)
        self.pre_warmup_steps = check_positive_int("pre_warmup_steps", pre_warmup_steps, minimum=0)
        self.warmup_steps = check_positive_int("warmup_steps", warmup_steps, minimum=0)
        self.decay_steps = check_positive_int("decay_steps", decay_steps)
        if self.decay_steps < self.warmup_steps:
            raise ValueError(
                f"decay_steps: expected >= warmup_steps={warmup_steps}, got {decay_steps}"
            )

    def lr(self, step: int) -> float:
        """The learning rate at optimiser step ``step`` (0-based)."""
        s = float(step)
        if s < self.pre_warmup_steps:
            return self.pre_init + (self.init - self.pre_init) * s / self.pre_warmup_steps
        s -= self.pre_warmup_steps
        if s < self.warmup_steps:
            return self.init + (self.peak - self.init) * s / self.warmup_steps
        span = self.decay_steps - self.warmup_steps
        if span == 0:
            return self.end
        frac = min(1.0, (s - self.warmup_steps) / span)
        return self.end + (self.peak - self.end) * 0.5 * (1.0 + math.cos(math.pi * frac))

    def __call__(self, step: int) -> float:
        """``lr(step) / peak`` (the LambdaLR factor)."""
        return self.lr(step) / self.peak


def saved_tensor_bytes(fn: Callable[[], Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn()`` builds its graph.

    Each storage counts once (a parameter saved by several ops, or views of one activation), so
    this is the activation (+ saved weight) memory a backward pass holds: the memory AGD bounds
    by one task. Toy activations sit below allocator noise in peak-memory readings; this count
    is exact. ``fn`` returns the loss; its graph is dropped afterwards.
    """
    seen: dict[tuple[torch.device, int], int] = {}

    def pack(t: Tensor) -> Tensor:
        st = t.untyped_storage()
        seen[(t.device, st.data_ptr())] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = fn()
    del loss
    return sum(seen.values())
