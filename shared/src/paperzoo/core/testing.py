"""The contract every loss and layer passes, as pytest base classes (the idea of langchain's standard tests).

Subclass in a package's tests and fill in the factories::

    class TestZLossContract(LossContractTests):
        num_classes = 10

        def make_loss(self, reduction):
            return ZLoss(reduction=reduction)

        def call_functional(self, inputs, reduction):
            return z_loss(*inputs, reduction=reduction)

        def make_inputs(self, batch, *, dtype, device, generator):
            logits = torch.randn(batch, 10, generator=generator, dtype=torch.float64).to(device, dtype)
            return logits, torch.randint(0, 10, (batch,), generator=generator).to(device)

pytest collects every ``test_*`` method below for the subclass. ``torch.compile`` checks are marked
``slow``; CUDA checks are marked ``gpu`` (skipped without CUDA in the plain test run, required by
``nox -s gpu_tests``).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.checks import Reduction

__all__ = ["LayerContractTests", "LossContractTests", "markdown_examples"]

_RAISES = (ValueError, TypeError)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class LossContractTests:
    """Checks for a loss: reductions, dtypes, gradcheck, edge batches, bad input, functional twin, compile, CUDA.

    Override ``make_loss``, ``call_functional`` and ``make_inputs``; set ``num_classes`` when
    ``inputs[1]`` holds class labels (``None`` otherwise).
    """

    num_classes: ClassVar[int | None] = None
    batch_size: ClassVar[int] = 6
    rtol: ClassVar[float] = 1e-5
    atol: ClassVar[float] = 1e-6
    reductions: ClassVar[tuple[Reduction, ...]] = ("none", "mean", "sum")
    #: whether reduction="none" returns one value per example (shape (N,))
    per_example: ClassVar[bool] = True
    #: whether example i's loss depends on example i alone (False for losses that couple the
    #: batch by definition: pair/proxy-free metric losses, batch confusion matrices; say why)
    batch_independent: ClassVar[bool] = True

    # ---------------------------------------------------------------- to override
    def make_loss(self, reduction: Reduction) -> nn.Module:
        """The loss module with this reduction."""
        raise NotImplementedError

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        """The functional twin on the same inputs."""
        raise NotImplementedError

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        """Valid inputs for ``batch`` examples: ``inputs[0]`` is the float tensor gradients flow to."""
        raise NotImplementedError

    # ---------------------------------------------------------------- hooks
    def bad_shape_inputs(self, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """Inputs with mismatched shapes (default: drop the last row of ``inputs[1]``)."""
        return (inputs[0], inputs[1][:-1], *inputs[2:])

    def example_inputs(self, inputs: tuple[Tensor, ...], i: int) -> tuple[Tensor, ...]:
        """The inputs of example ``i`` alone (default: row ``i:i+1`` of every tensor whose first
        dimension is the batch; other tensors, e.g. class prototypes, are passed whole)."""
        n = inputs[0].shape[0]
        return tuple(t[i : i + 1] if t.dim() > 0 and t.shape[0] == n else t for t in inputs)

    def call_none(self, inputs: tuple[Tensor, ...]) -> Tensor:
        """``reduction='none'`` on ``inputs``; a stochastic loss overrides this to draw its noise
        per example from a generator seeded the same way for a batch and for one example alone."""
        return self._call(inputs, "none")

    def out_of_range_inputs(self, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """Inputs with a label equal to ``num_classes`` (out of range)."""
        assert self.num_classes is not None
        bad = inputs[1].clone()
        bad.view(-1)[0] = self.num_classes
        return (inputs[0], bad, *inputs[2:])

    # ---------------------------------------------------------------- helpers
    def _inputs(
        self,
        batch: int | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> tuple[Tensor, ...]:
        return self.make_inputs(
            batch or self.batch_size, dtype=dtype, device=device, generator=_gen(seed)
        )

    def _call(self, inputs: tuple[Tensor, ...], reduction: Reduction = "mean") -> Tensor:
        return self.make_loss(reduction)(*inputs)  # type: ignore[no-any-return]

    # ---------------------------------------------------------------- the contract
    def test_reductions_agree(self) -> None:
        inputs = self._inputs()
        none = self._call(inputs, "none")
        if self.per_example:
            assert none.shape == (inputs[0].shape[0],), (
                f"reduction='none' gave shape {tuple(none.shape)}"
            )
        mean = self._call(inputs, "mean")
        total = self._call(inputs, "sum")
        assert mean.dim() == 0 and total.dim() == 0, "mean/sum reductions must return scalars"
        torch.testing.assert_close(mean, none.mean(), rtol=self.rtol, atol=self.atol)
        torch.testing.assert_close(total, none.sum(), rtol=self.rtol, atol=self.atol)

    def test_each_row_is_the_loss_of_that_example_alone(self) -> None:
        """Row i of reduction='none' equals the loss of example i computed alone (float64).

        Catches the per-example bug where every row carries one example's term (e.g. ``ce[0]``).
        """
        if not self.per_example or not self.batch_independent:
            pytest.skip("this loss couples the examples of a batch by definition")
        inputs = self._inputs()
        rows = self.call_none(inputs)
        alone = torch.cat(
            [self.call_none(self.example_inputs(inputs, i)) for i in range(len(rows))]
        )
        torch.testing.assert_close(rows, alone, rtol=1e-10, atol=1e-12)

    def test_unknown_reduction_raises(self) -> None:
        with pytest.raises(ValueError, match="reduction"):
            self._call(self._inputs(), "average")  # type: ignore[arg-type]

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_dtype_in_dtype_out_and_finite(self, dtype: torch.dtype) -> None:
        inputs = self._inputs(dtype=dtype)
        out = self._call(inputs)
        assert out.dtype == dtype, f"input {dtype} gave output {out.dtype}"
        assert bool(torch.isfinite(out).all()), "loss is not finite on valid input"

    def test_float32_matches_float64(self) -> None:
        o32 = self._call(self._inputs(dtype=torch.float32), "none")
        o64 = self._call(self._inputs(dtype=torch.float64), "none")
        torch.testing.assert_close(o32.double(), o64, rtol=1e-3, atol=1e-4)

    def test_gradcheck_float64(self) -> None:
        inputs = self._inputs(batch=min(self.batch_size, 4))
        x = inputs[0].detach().clone().requires_grad_(True)
        rest = inputs[1:]
        loss = self.make_loss("sum")

        def f(t: Tensor) -> Tensor:
            return loss(t, *rest)  # type: ignore[no-any-return]

        assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5, rtol=1e-4)

    def test_gradient_is_finite(self) -> None:
        inputs = self._inputs(dtype=torch.float32)
        x = inputs[0].detach().clone().requires_grad_(True)
        self._call((x, *inputs[1:])).backward()
        assert x.grad is not None and bool(torch.isfinite(x.grad).all())

    def test_batch_of_one(self) -> None:
        inputs = self._inputs(batch=1)
        out = self._call(inputs, "none")
        if self.per_example:
            assert out.shape == (1,)
        assert bool(torch.isfinite(out).all()), "loss is not finite on a batch of one"
        assert bool(torch.isfinite(self._call(inputs, "mean")).all())

    def test_empty_batch_raises(self) -> None:
        inputs = self._inputs()
        empty = tuple(
            t[:0] if t.dim() > 0 and t.shape[0] == inputs[0].shape[0] else t for t in inputs
        )
        with pytest.raises(ValueError):
            self._call(empty)

    def test_wrong_shapes_raise(self) -> None:
        with pytest.raises(_RAISES):
            self._call(self.bad_shape_inputs(self._inputs()))

    def test_out_of_range_labels_raise(self) -> None:
        if self.num_classes is None:
            pytest.skip("inputs[1] holds no class labels")
        with pytest.raises(ValueError):
            self._call(self.out_of_range_inputs(self._inputs()))

    @pytest.mark.parametrize("value", [float("nan"), float("inf")])
    def test_nonfinite_input_raises(self, value: float) -> None:
        inputs = self._inputs()
        x = inputs[0].clone()
        x.view(-1)[0] = value
        with pytest.raises(ValueError):
            self._call((x, *inputs[1:]))

    def test_integer_scores_raise(self) -> None:
        inputs = self._inputs()
        with pytest.raises(TypeError):
            self._call((inputs[0].round().long(), *inputs[1:]))

    @pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
    def test_functional_equals_module(self, reduction: Reduction) -> None:
        if reduction not in self.reductions:
            pytest.skip(f"reduction {reduction!r} not offered")
        inputs = self._inputs()
        torch.testing.assert_close(
            self.call_functional(inputs, reduction), self._call(inputs, reduction), rtol=0, atol=0
        )

    @pytest.mark.slow
    def test_torch_compile_runs(self) -> None:
        inputs = self._inputs(dtype=torch.float32)
        loss = self.make_loss("mean")
        compiled = torch.compile(loss, backend="eager", fullgraph=False)
        torch.testing.assert_close(compiled(*inputs), loss(*inputs), rtol=1e-4, atol=1e-5)

    @pytest.mark.gpu
    def test_cuda_matches_cpu(self) -> None:
        cpu = self._inputs(dtype=torch.float32)
        gpu = tuple(t.cuda() for t in cpu)
        torch.testing.assert_close(
            self._call(gpu, "none").cpu(), self._call(cpu, "none"), rtol=1e-4, atol=1e-5
        )

    @pytest.mark.gpu
    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
    def test_cuda_autocast_finite(self, dtype: torch.dtype) -> None:
        inputs = tuple(t.cuda() for t in self._inputs(dtype=torch.float32))
        x = inputs[0].detach().clone().requires_grad_(True)
        with torch.autocast("cuda", dtype=dtype):
            out = self._call((x, *inputs[1:]))
        out.float().backward()
        assert (
            bool(torch.isfinite(out).all())
            and x.grad is not None
            and bool(torch.isfinite(x.grad).all())
        )


class LayerContractTests:
    """Checks for a layer: forward, dtypes, gradcheck, edge batches, bad input, reset, state_dict, compile, CUDA.

    Override ``make_layer`` and ``make_input``.
    """

    batch_size: ClassVar[int] = 4
    #: the layer raises ValueError on NaN/inf input
    checks_nonfinite: ClassVar[bool] = True
    #: the layer pools statistics over the batch (e.g. batch min-max normalisation): then
    #: ``make_per_sample_layer`` must give its per-sample mode for the batch-independence test
    batch_pooled: ClassVar[bool] = False
    rtol: ClassVar[float] = 1e-4
    atol: ClassVar[float] = 1e-5

    def make_layer(self) -> nn.Module:
        """A fresh layer (float32, CPU)."""
        raise NotImplementedError

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        """A valid input of ``batch`` examples."""
        raise NotImplementedError

    def bad_shape_input(self, x: Tensor) -> Tensor:
        """An input of the wrong shape (default: drop the last feature column)."""
        return x[..., :-1]

    def make_per_sample_layer(self) -> nn.Module:
        """The layer in a mode whose output row i depends on input row i only (``batch_pooled``
        layers override this; the default is :meth:`make_layer`)."""
        if self.batch_pooled:
            raise NotImplementedError("a batch_pooled layer must define make_per_sample_layer")
        return self.make_layer()

    def _x(
        self,
        batch: int | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> Tensor:
        return self.make_input(
            batch or self.batch_size, dtype=dtype, device=device, generator=_gen(0)
        )

    def _layer(self, dtype: torch.dtype = torch.float32) -> nn.Module:
        torch.manual_seed(0)
        return self.make_layer().to(dtype)

    @staticmethod
    def _out(y: Any) -> Tensor:
        return y[0] if isinstance(y, tuple) else y  # type: ignore[no-any-return]

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_forward_dtype_and_finite(self, dtype: torch.dtype) -> None:
        y = self._out(self._layer(dtype)(self._x(dtype=dtype)))
        assert y.dtype == dtype and y.shape[0] == self.batch_size
        assert bool(torch.isfinite(y).all())

    def test_batch_of_one(self) -> None:
        layer = self._layer().eval()
        x = self._x()
        y1 = self._out(layer(x[:1]))
        assert y1.shape[0] == 1 and bool(torch.isfinite(y1).all())

    def test_each_output_row_is_the_layer_on_that_row_alone(self) -> None:
        """In eval mode, output row i equals the layer applied to ``x[i:i+1]`` (float64)."""
        torch.manual_seed(0)
        layer = self.make_per_sample_layer().to(torch.float64).eval()
        x = self._x(dtype=torch.float64)
        with torch.no_grad():
            rows = self._out(layer(x))
            alone = torch.cat([self._out(layer(x[i : i + 1])) for i in range(x.shape[0])])
        torch.testing.assert_close(rows, alone, rtol=1e-10, atol=1e-12)

    def test_gradcheck_float64(self) -> None:
        layer = self._layer(torch.float64)
        x = self._x(batch=2, dtype=torch.float64).requires_grad_(True)
        assert torch.autograd.gradcheck(
            lambda t: self._out(layer(t)), (x,), eps=1e-6, atol=1e-5, rtol=1e-4
        )

    def test_parameter_gradients_finite(self) -> None:
        layer = self._layer()
        self._out(layer(self._x())).square().mean().backward()
        grads = [p.grad for p in layer.parameters() if p.requires_grad]
        assert grads, "the layer has no trainable parameters"
        assert any(g is not None for g in grads), "no parameter received a gradient"
        assert all(bool(torch.isfinite(g).all()) for g in grads if g is not None)

    def test_empty_batch_raises(self) -> None:
        with pytest.raises(ValueError):
            self._layer()(self._x()[:0])

    def test_wrong_shape_raises(self) -> None:
        with pytest.raises(_RAISES):
            self._layer()(self.bad_shape_input(self._x()))

    @pytest.mark.parametrize("value", [float("nan"), float("inf")])
    def test_nonfinite_input_raises(self, value: float) -> None:
        if not self.checks_nonfinite:
            pytest.skip("this layer documents that it does not check for NaN/inf input")
        x = self._x().clone()
        x.view(-1)[0] = value
        with pytest.raises(ValueError):
            self._layer()(x)

    def test_reset_parameters_is_deterministic(self) -> None:
        layer = self.make_layer()
        assert hasattr(layer, "reset_parameters"), "layers must offer reset_parameters()"
        reset: Any = layer.reset_parameters
        torch.manual_seed(1)
        reset()
        first = copy.deepcopy(layer.state_dict())
        torch.manual_seed(1)
        reset()
        for k, v in layer.state_dict().items():
            torch.testing.assert_close(v, first[k], rtol=0, atol=0)

    def test_state_dict_round_trip(self) -> None:
        a = self._layer().eval()
        torch.manual_seed(123)
        b = self.make_layer().eval()
        b.load_state_dict(a.state_dict())
        x = self._x()
        torch.testing.assert_close(self._out(b(x)), self._out(a(x)), rtol=0, atol=0)

    @pytest.mark.slow
    def test_torch_compile_runs(self) -> None:
        layer = self._layer().eval()
        x = self._x()
        compiled = torch.compile(layer, backend="eager")
        torch.testing.assert_close(
            self._out(compiled(x)), self._out(layer(x)), rtol=self.rtol, atol=self.atol
        )

    @pytest.mark.gpu
    def test_cuda_matches_cpu(self) -> None:
        layer = self._layer().eval()
        x = self._x()
        ref = self._out(layer(x))
        out = self._out(layer.cuda()(x.cuda())).cpu()
        torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-4)

    @pytest.mark.gpu
    def test_cuda_autocast_finite(self) -> None:
        layer = self._layer().cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = self._out(layer(self._x(device="cuda")))
        y.float().square().mean().backward()
        assert bool(torch.isfinite(y).all())


_EXAMPLE = re.compile(
    r"```python\n(?P<code>.*?)```\n"  # the example
    r"(?:\n(?:prints|output)[^\n]*\n(?:[^\n`]+\n)*\n?```(?:text)?\n(?P<out>.*?)```)?",  # its output
    re.S | re.I,
)


def markdown_examples(path: str | Path) -> list[tuple[str, str | None]]:
    """The ```` ```python ```` examples of a Markdown file, each with the output shown under it.

    An example's output is the fenced block that follows it after a paragraph starting with
    "prints" or "Output" (``None`` when there is none). A block whose first line is ``# not run``
    is left out. A test runs each example and compares what it prints with the output shown, so a
    README cannot drift from its code::

        for code, shown in markdown_examples("README.md"):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, "README.md", "exec"), {"__name__": "__example__"})
            assert shown is None or out.getvalue() == shown
    """
    text = Path(path).read_text(encoding="utf-8")
    return [
        (m.group("code"), m.group("out"))
        for m in _EXAMPLE.finditer(text)
        if not m.group("code").lstrip().startswith("# not run")
    ]
