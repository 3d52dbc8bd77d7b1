"""The core contract suite on every public loss and layer of paperzoo.zloss."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_reduction
from paperzoo.core.testing import LayerContractTests, LossContractTests
from paperzoo.zloss import (
    FactoredSphericalLinear,
    FactoredZLossHead,
    LogSphericalSoftmaxLoss,
    LogTaylorSoftmaxLoss,
    SphericalMSELoss,
    ZLoss,
    log_spherical_softmax_loss,
    log_taylor_softmax_loss,
    spherical_mse_loss,
    z_loss,
    z_loss_from_stats,
)

D = 10


class _DenseLossInputs:
    num_classes: ClassVar[int | None] = D

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        logits = torch.randn(batch, D, generator=generator, dtype=torch.float64)
        target = torch.randint(0, D, (batch,), generator=generator)
        return logits.to(device, dtype), target.to(device)


class TestZLossContract(_DenseLossInputs, LossContractTests):
    def make_loss(self, reduction: str) -> nn.Module:
        return ZLoss(a=1.5, b=0.5, reduction=check_reduction(reduction))

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return z_loss(inputs[0], inputs[1], a=1.5, b=0.5, reduction=check_reduction(reduction))


class TestSphericalMSEContract(_DenseLossInputs, LossContractTests):
    def make_loss(self, reduction: str) -> nn.Module:
        return SphericalMSELoss(reduction=check_reduction(reduction))

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return spherical_mse_loss(inputs[0], inputs[1], reduction=check_reduction(reduction))


class TestLogTaylorSoftmaxContract(_DenseLossInputs, LossContractTests):
    def make_loss(self, reduction: str) -> nn.Module:
        return LogTaylorSoftmaxLoss(reduction=check_reduction(reduction))

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return log_taylor_softmax_loss(inputs[0], inputs[1], reduction=check_reduction(reduction))


class TestLogSphericalSoftmaxContract(_DenseLossInputs, LossContractTests):
    def make_loss(self, reduction: str) -> nn.Module:
        return LogSphericalSoftmaxLoss(eps=0.1, reduction=check_reduction(reduction))

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return log_spherical_softmax_loss(
            inputs[0], inputs[1], eps=0.1, reduction=check_reduction(reduction)
        )


class _HeadForInputs(nn.Module):
    """Test adapter: builds the seeded head for the dtype and device of each call's inputs."""

    def __init__(self, build: Callable[[str, Tensor], FactoredZLossHead], reduction: str) -> None:
        super().__init__()
        self.build, self.reduction = build, reduction

    def forward(self, h: Tensor, target: Tensor) -> Tensor:
        loss: Tensor = self.build(self.reduction, h)(h, target)
        return loss


class TestFactoredZLossHeadContract(LossContractTests):
    """The head is a loss of (features h, targets): ``head(h, target)``.

    Its state has one dtype and device, so the head is built for the inputs' dtype and device
    (by the :class:`_HeadForInputs` adapter), from a fixed seed so every call sees the same weights.
    The functional twin is the layer's statistics fed to :func:`z_loss_from_stats`.
    """

    num_classes: ClassVar[int | None] = 50

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        h = torch.randn(batch, 7, generator=generator, dtype=torch.float64)
        target = torch.randint(0, 50, (batch,), generator=generator)
        return h.to(device, dtype), target.to(device)

    def _head(self, reduction: str, like: Tensor) -> FactoredZLossHead:
        dtype = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float32
        head = FactoredZLossHead(
            7,
            50,
            a=1.5,
            b=0.5,
            reduction=check_reduction(reduction),
            dtype=dtype,
            generator=torch.Generator().manual_seed(0),
        )
        return head.to(like.device)

    def make_loss(self, reduction: str) -> nn.Module:
        return _HeadForInputs(self._head, reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        layer = self._head(reduction, inputs[0]).layer
        return z_loss_from_stats(
            *layer(*inputs), 50, 1.5, 0.5, reduction=check_reduction(reduction)
        )

    def test_head_equals_the_dense_layer_with_the_dense_z_loss(self) -> None:
        h, t = self._inputs()
        head = self._head("none", h)
        dense = head.layer.to_linear()
        torch.testing.assert_close(
            head(h, t), z_loss(dense(h), t, 1.5, 0.5, reduction="none"), rtol=1e-10, atol=1e-12
        )


class _LayerWithTargets(nn.Module):
    """Test adapter: the layer with targets computed from each row of ``h``, so it takes one input."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = FactoredSphericalLinear(6, 20)

    def reset_parameters(self) -> None:
        self.layer.reset_parameters()

    def forward(self, h: Tensor) -> tuple[Tensor, ...]:
        # a target read from the row itself, so row i alone gets the target it gets in a batch
        t = (3 * h.detach().argmax(1) + h.detach().argmin(1)) % 20
        return tuple(self.layer(h, t))


class TestFactoredSphericalLinearContract(LayerContractTests):
    def make_layer(self) -> nn.Module:
        return _LayerWithTargets()

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 6, generator=generator, dtype=torch.float64).to(device, dtype)

    def test_parameter_gradients_finite(self) -> None:
        """Overridden: the layer has no parameters by design (its state is buffers updated by
        :class:`FactoredSGD`); what backward produces for it is the stashed update, checked here."""
        layer = self._layer()
        assert list(layer.parameters()) == []
        out = layer(self._x())
        (out[0].square().mean() + out[1].mean() + out[2].mean()).backward()
        stash = layer.layer._stash
        assert len(stash) == 1
        for t in (stash[0].grad_a, stash[0].grad_q, stash[0].grad_s):
            assert bool(torch.isfinite(t).all()) and bool((t != 0).any())
        before = layer.layer.weight_augmented()
        layer.layer.sgd_step(0.1)
        assert bool(torch.isfinite(layer.layer.weight_augmented()).all())
        assert not torch.equal(layer.layer.weight_augmented(), before)


@pytest.mark.gpu
def test_factored_training_on_cuda_matches_cpu() -> None:
    """Ten exact steps on CUDA give the CPU weights; bf16/fp16 autocast stays finite."""
    g = torch.Generator().manual_seed(0)
    cpu = FactoredZLossHead(16, 500, dtype=torch.float64, generator=g, stabilize_every=5)
    gpu = FactoredZLossHead(16, 500, dtype=torch.float64, stabilize_every=5).cuda()
    gpu.load_state_dict(cpu.state_dict())
    for _ in range(10):
        h = torch.randn(32, 16, generator=g, dtype=torch.float64)
        t = torch.randint(0, 500, (32,), generator=g)
        cpu(h, t).backward()
        cpu.sgd_step(0.5, 1e-3)
        gpu(h.cuda(), t.cuda()).backward()
        gpu.sgd_step(0.5, 1e-3)
    torch.testing.assert_close(gpu.layer.weight().cpu(), cpu.layer.weight(), rtol=1e-9, atol=1e-9)
    for dtype in (torch.bfloat16, torch.float16):
        head = FactoredZLossHead(16, 500).cuda()
        body = nn.Linear(16, 16).cuda()
        x = torch.randn(32, 16, device="cuda")
        t = torch.randint(0, 500, (32,), device="cuda")
        with torch.autocast("cuda", dtype=dtype):
            loss = head(body(x), t)
        loss.backward()
        head.sgd_step(0.1)
        assert bool(torch.isfinite(loss))
        assert body.weight.grad is not None and bool(torch.isfinite(body.weight.grad).all())
        assert bool(torch.isfinite(head.layer.weight()).all())
