"""Every contestant builds and gives a finite loss and gradient on the MLP's logits."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core.selection import grid
from paperzoo.losses import CONTESTANTS, Task, contestants_for


@pytest.mark.parametrize("num_classes", [2, 3])
def test_every_contestant_trains_on_plain_logits(num_classes: int) -> None:
    g = torch.Generator().manual_seed(0)
    for c in contestants_for(num_classes):
        for params in grid(**c.full_grid):
            loss = c.build(params, Task(num_classes, 16))
            logits = torch.randn(16, num_classes, generator=g, requires_grad=True)
            target = torch.arange(16) % num_classes
            out = loss(logits, target, torch.arange(16)) if c.needs_index else loss(logits, target)
            out.backward()
            assert out.dim() == 0 and torch.isfinite(out), (c.name, params)
            assert logits.grad is not None and torch.isfinite(logits.grad).all(), (c.name, params)


def test_binary_only_losses_are_left_out_of_multiclass_races() -> None:
    names = [c.name for c in contestants_for(10)]
    assert "ensloss" not in names and "hinge" not in names and "cross_entropy" in names
    assert [c.name for c in contestants_for(2, ("cross_entropy", "hinge"))] == [
        "cross_entropy",
        "hinge",
    ]


def test_quick_grids_fit_in_the_full_grids() -> None:
    for c in CONTESTANTS:
        assert set(c.grid) == set(c.full_grid), c.name
        for axis, values in c.grid.items():
            assert set(values) <= set(c.full_grid[axis]), (c.name, axis)


def test_binary_margin_predicts_like_argmax() -> None:
    # the margin adapter feeds o1 - o0: a hinge loss is zero exactly when that margin is >= 1
    (hinge,) = [c for c in CONTESTANTS if c.name == "hinge"]
    loss = hinge.build({}, Task(2, 4))
    logits = torch.tensor([[0.0, 2.0], [3.0, 0.0]])
    assert float(loss(logits, torch.tensor([1, 0]))) == 0.0
    assert float(loss(logits, torch.tensor([0, 1]))) == pytest.approx((3.0 + 4.0) / 2)
