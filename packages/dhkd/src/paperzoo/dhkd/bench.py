"""Benchmark (spec section 7): the logit-level loss against softmax-KD implementations, and the
cost of a DHKD training step (with and without gradient alignment) against a plain KD step.

Loss cases: forward + backward of BinaryKL-Norm (ours, the one DHKD uses) against our KD, the
common three-line KD (``F.kl_div(..., reduction="batchmean") * T^2``) and torchdistill's
``KDLoss`` (peer, from the ``bench`` dependency group; its soft term times ``T^2``), for
``(N, K)`` in (64, 10), (128, 100), (256, 1000), (32, 32000) (an LLM vocabulary), float32 and
bfloat16. ``ratio`` = that impl's median over ours (> 1: ours is faster).

Step cases: one SGD step of the reproduction's student (MLP 40-64-64, non-linear aux head,
batch 64) and of a wider one (512-d features, K = 100, batch 128): DHKD (ours) vs KD (baseline),
DHKD + gradient alignment (two backward passes + flatten/copy) and CE alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.core.models import mlp
from paperzoo.dhkd.dhkd import GradAlign
from paperzoo.dhkd.heads import DualHeadClassifier
from paperzoo.dhkd.losses import binary_kl_norm, kd_loss
from paperzoo.dhkd.recipe import distillation_step

__all__ = ["BENCHMARK", "LOSS_SHAPES", "run_bench", "three_line_kd"]

LOSS_SHAPES: tuple[tuple[int, int], ...] = ((64, 10), (128, 100), (256, 1000), (32, 32000))
"""The ``(N, K)`` loss cases of the spec."""


def three_line_kd(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float = 4.0
) -> Tensor:
    """The common KD snippet: ``kl_div(log_softmax(zs/T), softmax(zt/T), "batchmean") * T^2``."""
    return (
        F.kl_div(
            F.log_softmax(student_logits / temperature, dim=1),
            F.softmax(teacher_logits / temperature, dim=1),
            reduction="batchmean",
        )
        * temperature**2
    )


def _torchdistill_kd(temperature: float) -> Callable[[Tensor, Tensor], Tensor] | None:
    try:
        mid = importlib.import_module("torchdistill.losses.mid_level")
    except ImportError:  # the bench dependency group is not installed
        return None
    # alpha = 0: the soft term alone (KLDivLoss "batchmean" of the tempered distributions)
    loss = mid.KDLoss("s", "out", "t", "out", temperature=temperature, alpha=0.0, beta=1.0)

    def f(zs: Tensor, zt: Tensor) -> Tensor:
        out: Tensor = loss({"s": {"out": zs}}, {"t": {"out": zt}}) * temperature**2
        return out

    return f


def _loss_impls(
    n: int, k: int, dtype: torch.dtype, device: torch.device
) -> dict[str, Callable[[], object]]:
    g = torch.Generator(device="cpu").manual_seed(0)
    zs = (3 * torch.randn(n, k, generator=g)).to(device, dtype).requires_grad_(True)
    zt = (3 * torch.randn(n, k, generator=g)).to(device, dtype)

    def run(fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[[], object]:
        def f() -> None:
            zs.grad = None
            fn(zs, zt).backward()

        return f

    impls: dict[str, Callable[[], object]] = {
        "binary_kl_norm (ours, validate=False)": run(
            lambda a, b: binary_kl_norm(a, b, 2.0, validate=False)
        ),
        "binary_kl_norm (ours, validate=True)": run(lambda a, b: binary_kl_norm(a, b, 2.0)),
        "kd_loss (ours, validate=False)": run(lambda a, b: kd_loss(a, b, 4.0, validate=False)),
        "three-line KD (kl_div batchmean)": run(three_line_kd),
    }
    peer = _torchdistill_kd(4.0)
    if peer is not None:
        impls["torchdistill KDLoss x T^2 (peer)"] = run(peer)
    return impls


def _step_impls(
    in_dim: int, width: int, k: int, batch: int, device: torch.device
) -> dict[str, Callable[[], object]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, in_dim, generator=g).to(device)
    y = torch.randint(0, k, (batch,), generator=g).to(device)
    zt = (3 * torch.randn(batch, k, generator=g)).to(device)
    impls: dict[str, Callable[[], object]] = {}
    for name, method, ga in (
        ("DHKD step, nonlinear aux (ours)", "dhkd", False),
        ("KD step (baseline)", "kd", False),
        ("DHKD + GradAlign step", "dhkd", True),
        ("CE step", "ce", False),
    ):
        torch.manual_seed(0)
        model = DualHeadClassifier(
            nn.Sequential(mlp([in_dim, width, width]), nn.ReLU()), width, k, "nonlinear"
        ).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        step = distillation_step(
            method,  # type: ignore[arg-type]
            lambda b, d: zt,
            grad_align=GradAlign(opt) if ga else None,
        )

        def f(step: Any = step, model: nn.Module = model, opt: Any = opt) -> None:
            step(model, (x, y), device)["loss"].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        impls[name] = f
    return impls


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Every case with one torch thread (the count is restored afterwards)."""
    with torch_threads(1):
        return _run_bench(ctx)


def _run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Loss cases (float32, and bfloat16 unless ``quick``) and training-step cases."""
    dev = ctx.device
    rt = 0.2 if ctx.quick else 0.6
    rows: list[BenchRow] = []
    dtypes = (torch.float32,) if ctx.quick else (torch.float32, torch.bfloat16)
    for dtype in dtypes:
        for n, k in LOSS_SHAPES:
            rows += compare(
                f"loss fwd+bwd, N={n}, K={k}, {str(dtype).removeprefix('torch.')}",
                _loss_impls(n, k, dtype, dev),
                ours="binary_kl_norm (ours, validate=False)",
                device=dev,
                min_run_time=rt,
                rounds=5,
            )
    for label, (in_dim, width, k, batch) in {
        "repro student 40-64-64, K=10, batch 64": (40, 64, 10, 64),
        "512-d student, K=100, batch 128": (256, 512, 100, 128),
    }.items():
        rows += compare(
            f"train step, {label}",
            _step_impls(in_dim, width, k, batch, dev),
            ours="DHKD step, nonlinear aux (ours)",
            device=dev,
            min_run_time=rt,
            rounds=5,
        )
    return rows


BENCHMARK = Benchmark(
    name="dhkd",
    description="BinaryKL-Norm vs KD (ours, three-line, torchdistill); DHKD step vs KD step, GA",
    run=run_bench,
)
