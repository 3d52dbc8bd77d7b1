"""The core contract suite on the heads (layers) and the logistic objective (a loss)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from paperzoo.core.checks import Reduction
from paperzoo.core.testing import LayerContractTests, LossContractTests
from paperzoo.dis_vs_gen import GaussianNBHead, LogisticHead, logistic_objective

from .conftest import blobs

N, K = 5, 3


def _input(
    batch: int, dtype: torch.dtype, device: torch.device | str, g: torch.Generator
) -> Tensor:
    return torch.randn(batch, N, generator=g, dtype=torch.float64).to(device, dtype)


class TestGaussianNBHeadContract(LayerContractTests):
    """A fitted head (the same data for every instance, so state dicts agree)."""

    def make_layer(self) -> nn.Module:
        x, y = blobs(m=30, n=N, k=K)
        return GaussianNBHead(N, K, dtype=torch.float32).fit(x, y)  # the contract's float32 layer

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return _input(batch, dtype, device, generator)

    def test_parameter_gradients_finite(self) -> None:
        """Overridden: the head has no parameters by design (closed-form buffers); gradients flow
        to the input instead, and they are finite."""
        layer = self._layer()
        assert list(layer.parameters()) == []
        x = self._x().requires_grad_(True)
        layer(x).square().mean().backward()
        assert x.grad is not None and bool(torch.isfinite(x.grad).all())

    def test_reset_parameters_is_deterministic(self) -> None:
        """Also: a reset head is unfitted and refuses to predict."""
        super().test_reset_parameters_is_deterministic()
        layer = self.make_layer()
        layer.reset_parameters()  # type: ignore[operator]
        assert not layer.fitted  # type: ignore[union-attr]


class TestPerClassGaussianNBHeadContract(TestGaussianNBHeadContract):
    def make_layer(self) -> nn.Module:
        x, y = blobs(m=30, n=N, k=K)
        return GaussianNBHead(
            N, K, covariance="per_class", smoothing="relative", dtype=torch.float32
        ).fit(x, y)


class TestLogisticHeadContract(LayerContractTests):
    def make_layer(self) -> nn.Module:
        x, y = blobs(m=30, n=N, k=K)
        return LogisticHead(N, K, dtype=torch.float32).fit(x, y)

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return _input(batch, dtype, device, generator)


class _Objective(nn.Module):
    """Test adapter: the objective of fixed weights, as a loss of (x, y) (gradients flow to x)."""

    def __init__(self, reduction: Reduction) -> None:
        super().__init__()
        self.head = LogisticHead(N, K, C=0.8)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(K, N, generator=g, dtype=torch.float64))
            self.head.bias.copy_(torch.randn(K, generator=g, dtype=torch.float64))
        self.reduction: Reduction = reduction

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        w, b = self.head.weight.to(x.dtype), self.head.bias.to(x.dtype)
        return logistic_objective(w, b, x, y, self.head.C, self.reduction)


class TestLogisticObjectiveContract(LossContractTests):
    num_classes: ClassVar[int | None] = K
    # the penalty 1/2 ||W||^2 is shared by the rows of a batch (each row carries ||W||^2 / (2m)),
    # so a row's value depends on the batch size by definition
    batch_independent: ClassVar[bool] = False

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return _Objective(reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        ref = _Objective(reduction)
        w, b = ref.head.weight.to(inputs[0].dtype), ref.head.bias.to(inputs[0].dtype)
        return logistic_objective(w, b, inputs[0], inputs[1], 0.8, reduction)

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        x = _input(batch, dtype, device, generator)
        return x, torch.randint(0, K, (batch,), generator=generator).to(device)

    def test_rows_are_the_data_term_plus_an_equal_share_of_the_penalty(self) -> None:
        x, y = self._inputs()
        loss = _Objective("none")
        w = loss.head.weight.detach()
        alone = torch.cat([loss(x[i : i + 1], y[i : i + 1]) for i in range(x.shape[0])])
        m = x.shape[0]
        shift = w.square().sum() / 2 * (1 - 1 / m)  # one row alone carries the whole penalty
        torch.testing.assert_close(loss(x, y), alone - shift, rtol=1e-12, atol=1e-12)
