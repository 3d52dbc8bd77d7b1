"""The contract suite passes a correct loss/layer and catches deliberately broken ones."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.testing import LayerContractTests, LossContractTests


def good_ce(logits: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction: expected none/mean/sum, got {reduction!r}")
    if not logits.dtype.is_floating_point:
        raise TypeError(f"logits: expected a float tensor, got {logits.dtype}")
    if logits.dim() != 2 or y.shape != (logits.shape[0],):
        raise ValueError(f"y: expected shape ({logits.shape[0]},), got {tuple(y.shape)}")
    if logits.shape[0] == 0:
        raise ValueError("logits: empty batch")
    if bool(((y < 0) | (y >= logits.shape[1])).any()):
        raise ValueError("y: labels out of range")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("logits: non-finite values")
    return F.cross_entropy(logits, y, reduction=reduction)


class Loss(nn.Module):
    def __init__(self, fn: Any, reduction: str = "mean") -> None:
        super().__init__()
        self.fn, self.reduction = fn, reduction

    def forward(self, logits: Tensor, y: Tensor) -> Tensor:
        return self.fn(logits, y, self.reduction)  # type: ignore[no-any-return]


class _Base(LossContractTests):
    num_classes = 4
    fn: Any = staticmethod(good_ce)

    def make_loss(self, reduction: str) -> nn.Module:
        return Loss(self.fn, reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return self.fn(*inputs, reduction)  # type: ignore[no-any-return]

    def make_inputs(
        self, batch: int, *, dtype: torch.dtype, device: Any, generator: torch.Generator
    ) -> tuple[Tensor, ...]:
        logits = torch.randn(batch, 4, generator=generator, dtype=torch.float64)
        return logits.to(device, dtype), torch.randint(0, 4, (batch,), generator=generator).to(
            device
        )


class TestCorrectLossPassesTheContract(_Base):
    pass


def wrong_reduction(logits: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
    out = good_ce(logits, y, "none")
    return out.sum() if reduction == "mean" else good_ce(logits, y, reduction)  # mean is a sum


def nan_on_one(logits: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
    out = good_ce(logits, y, "none")
    # a std over the batch: NaN for a batch of one
    out = out + 0 * logits.std(dim=0).sum()
    return out if reduction == "none" else (out.mean() if reduction == "mean" else out.sum())


def silent_broadcast(logits: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
    """Checks dtype, emptiness and finiteness, but silently indexes with whatever targets it gets."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError("reduction")
    if not logits.dtype.is_floating_point:
        raise TypeError("dtype")
    if logits.shape[0] == 0 or not bool(torch.isfinite(logits).all()):
        raise ValueError("empty or non-finite")
    rows = torch.arange(y.shape[0]) % logits.shape[0]
    out = logits[rows].logsumexp(1) - logits[rows, y.clamp(0, logits.shape[1] - 1)]
    return out if reduction == "none" else (out.mean() if reduction == "mean" else out.sum())


def row_zero_term(logits: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
    """The noprop bug of issue 17: every row carries example 0's extra term."""
    ce = good_ce(logits, y, "none")
    out = ce + ce[0]
    return out if reduction == "none" else (out.mean() if reduction == "mean" else out.sum())


@pytest.mark.parametrize(
    ("broken", "check"),
    [
        (row_zero_term, "test_each_row_is_the_loss_of_that_example_alone"),
        (wrong_reduction, "test_reductions_agree"),
        (nan_on_one, "test_batch_of_one"),
        (silent_broadcast, "test_wrong_shapes_raise"),
        (silent_broadcast, "test_out_of_range_labels_raise"),
    ],
)
def test_contract_catches_a_broken_loss(broken: Any, check: str) -> None:
    suite = type("Broken", (_Base,), {"fn": staticmethod(broken)})()
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        getattr(suite, check)()


class CheckedLinear(nn.Linear):
    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x: expected (N, {self.in_features}), got {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError("x: empty batch")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x: non-finite values")
        return super().forward(x)


class _LayerBase(LayerContractTests):
    cls: Any = CheckedLinear

    def make_layer(self) -> nn.Module:
        return self.cls(3, 2)  # type: ignore[no-any-return]

    def make_input(
        self, batch: int, *, dtype: torch.dtype, device: Any, generator: torch.Generator
    ) -> Tensor:
        return torch.randn(batch, 3, generator=generator, dtype=torch.float64).to(device, dtype)


class TestCorrectLayerPassesTheContract(_LayerBase):
    pass


def test_contract_catches_a_layer_that_accepts_anything() -> None:
    suite = type("Broken", (_LayerBase,), {"cls": nn.Linear})()
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        suite.test_empty_batch_raises()
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        suite.test_nonfinite_input_raises(float("nan"))


class BatchCentred(CheckedLinear):
    """Subtracts the batch mean: output row i depends on the other rows."""

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        return out - out.mean(dim=0, keepdim=True) + out.detach().mean(dim=0, keepdim=True) * 0


def test_contract_catches_a_layer_that_pools_over_the_batch() -> None:
    suite = type("Broken", (_LayerBase,), {"cls": BatchCentred})()
    with pytest.raises(AssertionError):
        suite.test_each_output_row_is_the_layer_on_that_row_alone()


def test_a_batch_pooled_layer_is_tested_in_its_per_sample_mode() -> None:
    suite = type(
        "Pooled",
        (_LayerBase,),
        {
            "cls": BatchCentred,
            "batch_pooled": True,
            "make_per_sample_layer": lambda self: CheckedLinear(3, 2),
        },
    )()
    suite.test_each_output_row_is_the_layer_on_that_row_alone()
    undeclared = type("Pooled", (_LayerBase,), {"cls": BatchCentred, "batch_pooled": True})()
    with pytest.raises(NotImplementedError, match="make_per_sample_layer"):
        undeclared.test_each_output_row_is_the_layer_on_that_row_alone()
