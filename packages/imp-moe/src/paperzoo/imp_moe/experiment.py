"""The paper's small reproduction (spec section 6): AGD over a multimodal toy.

Per seed, on the offline toy of :mod:`paperzoo.imp_moe.toy` (MNIST images, mnist1d sequences,
synthetic noisy captions; four tasks):

- ``AGD dense``: one IMP-tiny encoder trained by AGD (random task order, equal weights) for
  ``steps`` task steps;
- ``AGD MoE``: the same with the last ``num_moe_layers`` FFNs experts-choose MoE (4 experts,
  ``c_f = 1``: equal active parameters per token);
- ``single-task dense``: one dense model per task, ``steps / 4`` steps each (the steps AGD gives
  each task on average);
- ``joint dense``: one dense model trained on the summed loss of all four tasks, ``steps / 4``
  steps (the same batches per task);

then test accuracy of the two classifiers and zero-shot caption classification of both
modalities (evaluation batch fixed at ``eval_batch``). The memory rows are the bytes autograd
saves for backward in one step (:func:`~paperzoo.imp_moe.saved_tensor_bytes`): an AGD step
(largest task) vs a summed-loss joint step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from paperzoo.core.checks import (
    UserError,
    check_choice,
    check_positive,
    check_positive_int,
    check_unit_interval,
)
from paperzoo.core.devices import seed_everything
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.models import count_parameters
from paperzoo.imp_moe.agd import AGDSchedule, AGDTrainer, PreWarmupCosine, Task, saved_tensor_bytes
from paperzoo.imp_moe.toy import TASKS, IMPToy, ToyData, evaluate_toy, load_toy, make_tasks

__all__ = ["EXPERIMENT", "IMPConfig", "run"]


@dataclass(frozen=True)
class IMPConfig:
    """Config of the ``imp-moe`` reproduction (spec section 6 defaults).

    ``steps``: AGD task steps per model; ``schedule``: AGD order (``random`` = the paper;
    ``round_robin`` with all intervals 1 = the official executor's loop); ``threads``: torch CPU
    threads while it runs (scoped by the core's ``run_experiment``).
    """

    n_train: int = 4000
    n_test: int = 1000
    d_model: int = 64
    depth: int = 4
    heads: int = 4
    num_moe_layers: int = 2
    num_experts: int = 4
    capacity_factor: float = 1.0
    vocab: int = 50
    caption_noise: float = 0.1
    steps: int = 2500
    batch_size: int = 64
    eval_batch: int = 64
    prototypes_per_class: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_frac: float = 0.05
    temperature_init: float = 0.2
    schedule: str = "random"
    methods: str = "agd_dense,agd_moe,single,joint"
    threads: int | None = 1

    def __post_init__(self) -> None:
        """Check every field (a bad ``--set`` value is one ``paperzoo: error:`` line)."""
        try:
            for name in (
                "n_train",
                "n_test",
                "d_model",
                "depth",
                "heads",
                "num_experts",
                "vocab",
                "batch_size",
                "eval_batch",
                "prototypes_per_class",
            ):
                check_positive_int(name, getattr(self, name))
            check_positive_int("steps", self.steps, minimum=4)
            check_positive_int("num_moe_layers", self.num_moe_layers, minimum=0)
            if self.num_moe_layers > self.depth:
                raise ValueError(
                    f"num_moe_layers: expected at most depth={self.depth}, got {self.num_moe_layers}"
                )
            if self.vocab <= 10:
                raise ValueError(f"vocab: expected more than the 10 class words, got {self.vocab}")
            if self.batch_size > self.n_train:
                raise ValueError(
                    f"batch_size: expected at most n_train={self.n_train}, got {self.batch_size}"
                )
            check_positive("capacity_factor", self.capacity_factor)
            check_positive("lr", self.lr)
            check_positive("weight_decay", self.weight_decay, allow_zero=True)
            check_positive("temperature_init", self.temperature_init)
            check_unit_interval("caption_noise", self.caption_noise)
            check_unit_interval("warmup_frac", self.warmup_frac)
            check_choice("schedule", self.schedule, ("random", "round_robin"))
            methods = [m.strip() for m in self.methods.split(",") if m.strip()]
            allowed = ("agd_dense", "agd_moe", "single", "joint")
            if not methods or any(m not in allowed for m in methods):
                raise ValueError(
                    f"methods: expected a comma list of {allowed}, got {self.methods!r}"
                )
            if self.threads is not None:
                check_positive_int("threads", self.threads)
        except (TypeError, ValueError) as err:
            raise UserError(str(err)) from None


class _EvalArgs(NamedTuple):
    eval_batch: int
    vocab: int
    prototypes_per_class: int
    seed: int


def _model(cfg: IMPConfig, moe: bool) -> IMPToy:
    kw = {
        "num_experts": cfg.num_experts,
        "router": "experts_choose",
        "capacity_factor": cfg.capacity_factor,
    }
    return IMPToy(
        cfg.d_model,
        cfg.depth,
        cfg.heads,
        cfg.vocab,
        num_moe_layers=cfg.num_moe_layers if moe else 0,
        moe_kwargs=kw,
        temperature_init=cfg.temperature_init,
    )


def _train(
    cfg: IMPConfig, model: IMPToy, tasks: list[Task], steps: int, seed: int, ctx: RunContext
) -> AGDTrainer:
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-7, weight_decay=cfg.weight_decay
    )
    sched = PreWarmupCosine(0.0, 0.0, cfg.lr, 0.0, 0, int(cfg.warmup_frac * steps), steps)
    lr = torch.optim.lr_scheduler.LambdaLR(opt, sched)
    trainer = AGDTrainer(
        model,
        opt,
        AGDSchedule(tasks, cfg.schedule, seed=seed),  # type: ignore[arg-type]
        grad_clip=1.0,
        lr_schedule=lr,
        device=ctx.device,
    )
    trainer.fit(steps)
    return trainer


def _joint_task(model: IMPToy, tasks: list[Task]) -> Task:
    """One task whose step sums the four tasks' losses on one batch of each."""

    def batches() -> Any:
        while True:
            yield [t.next_batch() for t in tasks]

    def loss_fn(model_: Any, batch: list[tuple[Tensor, ...]]) -> Tensor:
        return torch.stack(
            [model.task_loss(t.name, b) for t, b in zip(tasks, batch, strict=True)]
        ).sum()

    return Task("joint", batches(), loss_fn)


def _memory(cfg: IMPConfig, data: ToyData, seed: int) -> dict[str, float]:
    seed_everything(seed)
    model = _model(cfg, moe=False)
    tasks = make_tasks(model, data, TASKS, cfg.batch_size, seed)
    batches = {t.name: t.next_batch() for t in tasks}

    def one(name: str) -> int:
        return saved_tensor_bytes(lambda: model.task_loss(name, batches[name]))

    per_task = {n: one(n) for n in TASKS}
    joint = saved_tensor_bytes(
        lambda: torch.stack([model.task_loss(n, batches[n]) for n in TASKS]).sum()
    )
    out = {f"saved_MB_{n}": v / 2**20 for n, v in per_task.items()}
    out["saved_MB_agd_step_max"] = max(per_task.values()) / 2**20
    out["saved_MB_joint_step"] = joint / 2**20
    return out


def _loss_curve(trainer: AGDTrainer, points: int = 20) -> list[float]:
    losses = torch.stack([loss for _, loss in trainer.log]).double()
    chunks = losses.tensor_split(points)
    return [float(c.mean()) for c in chunks]


def run(config: IMPConfig, ctx: RunContext) -> Result:
    """All methods per seed; rows over seeds; checks from the rows."""
    cfg = config
    methods = [m.strip() for m in cfg.methods.split(",") if m.strip()]
    values: dict[tuple[str, str], list[float]] = {}
    curves: dict[str, list[list[float]]] = {}

    def add(method: str, metric: str, v: float) -> None:
        values.setdefault((method, metric), []).append(v)

    per_task_steps = cfg.steps // len(TASKS)
    extra: dict[str, Any] = {}
    for seed in ctx.seeds:
        data = load_toy(cfg.n_train, cfg.n_test, cfg.vocab, cfg.caption_noise, seed)
        ev = _EvalArgs(cfg.eval_batch, cfg.vocab, cfg.prototypes_per_class, seed)
        for method, moe in (("AGD dense", False), ("AGD MoE", True)):
            if ("agd_moe" if moe else "agd_dense") not in methods:
                continue
            ctx.log.info("seed %d: %s, %d AGD steps", seed, method, cfg.steps)
            seed_everything(seed)
            model = _model(cfg, moe)
            extra[f"params_{method}"] = count_parameters(model)
            trainer = _train(
                cfg,
                model,
                make_tasks(model, data, TASKS, cfg.batch_size, seed),
                cfg.steps,
                seed,
                ctx,
            )
            for k, v in evaluate_toy(model, data, metrics=TASKS, **ev._asdict()).items():
                add(method, k, v)
            for name, n in trainer.counts.items():
                add(method, f"steps_{name}", float(n))
            curves.setdefault(method, []).append(_loss_curve(trainer))
            if moe:
                auxes = model.encoder.last_aux
                add(
                    method,
                    "eval_frac_tokens_unrouted",
                    float(torch.stack([a.frac_dropped for a in auxes]).mean()),
                )
        if "single" in methods:
            for name in TASKS:
                ctx.log.info("seed %d: single-task %s, %d steps", seed, name, per_task_steps)
                seed_everything(seed)
                model = _model(cfg, moe=False)
                _train(
                    cfg,
                    model,
                    make_tasks(model, data, (name,), cfg.batch_size, seed),
                    per_task_steps,
                    seed,
                    ctx,
                )
                add(
                    "single-task dense",
                    name,
                    evaluate_toy(model, data, metrics=(name,), **ev._asdict())[name],
                )
        if "joint" in methods:
            ctx.log.info("seed %d: joint summed loss, %d steps", seed, per_task_steps)
            seed_everything(seed)
            model = _model(cfg, moe=False)
            joint = _joint_task(model, make_tasks(model, data, TASKS, cfg.batch_size, seed))
            _train(cfg, model, [joint], per_task_steps, seed, ctx)
            for k, v in evaluate_toy(model, data, metrics=TASKS, **ev._asdict()).items():
                add("joint dense (summed loss)", k, v)
        for k, v in _memory(cfg, data, seed).items():
            add("memory", k, v)
    rows = [Row.from_values(m, k, v) for (m, k), v in values.items()]
    if "agd_dense" in methods and "agd_moe" in methods:
        for task in TASKS:
            d = find_row(rows, "AGD dense", task).values
            m = find_row(rows, "AGD MoE", task).values
            rows.append(
                Row.from_values(
                    "MoE - dense (AGD)", task, [a - b for a, b in zip(m, d, strict=True)]
                )
            )
    x = [float(i + 1) / 20 * cfg.steps for i in range(20)]
    result_curves = (
        {
            "train_loss": Curve.from_seeds(
                f"AGD training loss (mean over task steps, {len(ctx.seeds)} seeds)",
                "AGD step",
                "task loss + aux",
                x,
                curves,
            )
        }
        if curves
        else {}
    )
    extra["per_task_steps_single_and_joint"] = per_task_steps
    return Result(rows=rows, checks=_checks(rows, methods), curves=result_curves, extra=extra)


def _se(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mu = sum(values) / n
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1) / n)


def _checks(rows: list[Row], methods: list[str]) -> list[Check]:
    checks = []
    if "agd_dense" in methods and "single" in methods:
        for task in TASKS:
            agd = find_row(rows, "AGD dense", task)
            single = find_row(rows, "single-task dense", task)
            margin = max(0.02, 2 * math.sqrt(_se(agd.values) ** 2 + _se(single.values) ** 2))
            checks.append(
                Check(
                    f"AGD's one dense model not below the single-task model by more than max(2 pt, 2 pooled SE): {task}",
                    agd.mean >= single.mean - margin,
                    f"{agd.mean:.4f} vs {single.mean:.4f} (margin {margin:.4f})",
                )
            )
    mem = {r.metric: r for r in rows if r.method == "memory"}
    checks.append(
        Check(
            "AGD step saves fewer bytes for backward than the summed-loss joint step",
            mem["saved_MB_agd_step_max"].mean < mem["saved_MB_joint_step"].mean,
            f"{mem['saved_MB_agd_step_max'].mean:.2f} MB vs {mem['saved_MB_joint_step'].mean:.2f} MB",
        )
    )
    if "agd_dense" in methods:
        zs = find_row(rows, "AGD dense", "image_caption_nce")
        checks.append(
            Check(
                "zero-shot caption classification of MNIST (AGD dense) >= 80% (chance 10%)",
                zs.mean >= 0.80,
                f"{zs.mean:.4f} (per seed {[round(v, 4) for v in zs.values]})",
            )
        )
    return checks


EXPERIMENT = Experiment(
    name="imp-moe",
    description="IMP: AGD over a multimodal toy (MNIST, mnist1d, captions), MoE vs dense, memory",
    config_cls=IMPConfig,
    run=run,
    budgets={
        "smoke": {
            "n_train": 256,
            "n_test": 128,
            "depth": 2,
            "num_moe_layers": 1,
            "steps": 24,
            "batch_size": 32,
            "eval_batch": 32,
            "prototypes_per_class": 4,
        },
        "quick": {"steps": 320},
        "full": {},
    },
    seeds={"smoke": 1, "quick": 3, "full": 3},
)
