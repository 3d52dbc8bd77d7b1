"""AGD: schedule orders, per-step isolation of task heads, equivalence with a plain loop,
memory of one task step, and the learning-rate schedule."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.data import make_loader
from paperzoo.imp_moe import (
    AGDSchedule,
    AGDTrainer,
    PreWarmupCosine,
    Task,
    repeat,
    saved_tensor_bytes,
)


def _task(name: str, **kw: object) -> Task:
    return Task(name, itertools.repeat(None), lambda m, b: torch.zeros(()), **kw)  # type: ignore[arg-type]


def test_round_robin_intervals_follow_the_official_order() -> None:
    sched = AGDSchedule(
        [_task("A", interval=1), _task("B", interval=2), _task("C", interval=3)], "round_robin"
    )
    order = "".join(next(sched).name for _ in range(11))  # six rounds
    assert order == "AABACABAABC"
    counts = {k: order.count(k) for k in "ABC"}
    assert counts == {"A": 6, "B": 3, "C": 2}


def test_random_mode_frequencies_follow_weights() -> None:
    weights = {"A": 1.0, "B": 2.0, "C": 5.0}
    sched = AGDSchedule([_task(k, weight=w) for k, w in weights.items()], "random", seed=3)
    n = 8000
    names = [next(sched).name for _ in range(n)]
    for k, w in weights.items():
        p = w / 8.0
        sd = (n * p * (1 - p)) ** 0.5
        assert abs(names.count(k) - n * p) < 3 * sd


class _TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Linear(4, 3)})


def _head_task(name: str, n_out: int, seed: int) -> Task:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 4, generator=g)
    y = torch.randint(0, n_out, (32,), generator=g)
    loader = make_loader(x, y, batch_size=8, shuffle=True, seed=seed)

    def loss_fn(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        xb, yb = batch
        out: Tensor = model.heads[name](model.body(xb))
        return nn.functional.cross_entropy(out, yb)

    return Task(name, repeat(loader), loss_fn)


def test_only_the_active_task_head_changes_in_a_step() -> None:
    torch.manual_seed(0)
    model = _TwoHeads()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    trainer = AGDTrainer(
        model, opt, AGDSchedule([_head_task("a", 2, 0), _head_task("b", 3, 1)], seed=0)
    )
    for _ in range(12):
        before = copy.deepcopy(model.state_dict())
        task = trainer.step()["task"]
        after = model.state_dict()
        other = "b" if task == "a" else "a"
        for k in after:
            same = torch.equal(before[k], after[k])
            if k.startswith(f"heads.{other}."):
                assert same, f"{k} changed in a step of task {task}"
            else:
                assert not same, f"{k} did not change in a step of task {task}"
    assert sum(trainer.counts.values()) == 12 and min(trainer.counts.values()) > 0


def test_one_task_agd_is_the_plain_training_loop_bit_for_bit() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 4, generator=g), torch.randint(0, 2, (40,), generator=g)
    torch.manual_seed(1)
    m1 = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    m2 = copy.deepcopy(m1)

    def step(model: nn.Module, batch: tuple[Tensor, Tensor], device: torch.device) -> Tensor:
        return nn.functional.cross_entropy(model(batch[0]), batch[1])

    o1 = torch.optim.AdamW(m1.parameters(), lr=1e-2)
    plain = make_loader(x, y, batch_size=8, shuffle=True, seed=5)
    for _epoch in range(3):  # the plain loop: forward, backward, clip, step, zero
        for batch in plain:
            step(m1, batch, torch.device("cpu")).backward()
            nn.utils.clip_grad_norm_(m1.parameters(), 1.0)
            o1.step()
            o1.zero_grad(set_to_none=True)
    o2 = torch.optim.AdamW(m2.parameters(), lr=1e-2)
    task = Task(
        "only",
        repeat(make_loader(x, y, batch_size=8, shuffle=True, seed=5)),
        lambda m, b: step(m, b, torch.device("cpu")),
    )
    AGDTrainer(m2, o2, AGDSchedule([task], seed=9), grad_clip=1.0).fit(15)
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_agd_step_saves_no_more_than_the_largest_task_and_less_than_the_joint_sum() -> None:
    torch.manual_seed(0)
    model = _TwoHeads()
    xa, xb = torch.randn(64, 4), torch.randn(64, 4)

    def loss_a() -> Tensor:
        return model.heads["a"](torch.tanh(model.body(xa))).square().mean()

    def loss_b() -> Tensor:
        return model.heads["b"](torch.tanh(model.body(xb))).square().mean()

    per_task = [saved_tensor_bytes(loss_a), saved_tensor_bytes(loss_b)]
    joint = saved_tensor_bytes(lambda: loss_a() + loss_b())
    assert max(per_task) <= 1.05 * max(per_task)
    assert max(per_task) < joint
    assert joint >= sum(per_task) - 4 * 4 * 4  # the shared weight is saved once


def test_lr_schedule_matches_the_official_base_setting() -> None:
    s = PreWarmupCosine(2e-5, 5e-6, 1e-3, 1e-6, 2_000, 25_000, 500_000)
    assert s.lr(0) == pytest.approx(2e-5)
    assert s.lr(2_000) == pytest.approx(5e-6)
    assert s.lr(1_000) == pytest.approx(0.5 * (2e-5 + 5e-6))
    assert s.lr(27_000) == pytest.approx(1e-3)
    assert s.lr(500_000) == pytest.approx(1.044e-6, rel=1e-3)
    assert s.lr(502_000) == pytest.approx(1e-6)
    assert s(27_000) == pytest.approx(1.0)


def test_bad_agd_configurations_raise() -> None:
    with pytest.raises(ValueError, match="at least one Task"):
        AGDSchedule([])
    with pytest.raises(ValueError, match="weight"):
        _task("A", weight=0.0)
    with pytest.raises(ValueError, match="interval"):
        _task("A", interval=0)
    with pytest.raises(ValueError, match="distinct"):
        AGDSchedule([_task("A"), _task("A")])
    short = Task("short", iter([1]), lambda m, b: torch.zeros((), requires_grad=True))
    sched = AGDSchedule([short])
    trainer = AGDTrainer(nn.Linear(1, 1), torch.optim.SGD(nn.Linear(1, 1).parameters()), sched)
    with pytest.raises(ValueError, match="task 'short': its data iterator is exhausted"):
        trainer.fit(2)
