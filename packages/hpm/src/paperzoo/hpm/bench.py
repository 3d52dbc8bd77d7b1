"""Benchmark (spec section 7): an HPM training step against an MAE step of the same model, the
reference-style HPM step, mask generation, the pairwise loss, and lightly's MAE utilities (peer).

Every case is timed in this process and run; ``ratio`` = that impl's median over ours (> 1: ours
is faster; for the MAE baseline < 1 is expected, since HPM adds a teacher forward and a second
decoder: HPM/MAE time = 1 / ratio).
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.hpm.hpm import HPM
from paperzoo.hpm.losses import relative_loss_prediction_loss
from paperzoo.hpm.masking import hard_patch_mask, random_mask
from paperzoo.hpm.model import MaskedAutoencoderViT
from paperzoo.hpm.patches import patchify

__all__ = [
    "BENCHMARK",
    "BENCH_MODELS",
    "flops_table",
    "reference_loop_mask",
    "run_bench",
    "step_flops",
]


def reference_loop_mask(pred_loss: Tensor, mask_ratio: float, hard_fraction: float) -> Tensor:
    """The official code's per-image mask construction (re-implemented for timing): argsort the
    scores, pin the top ``floor(N_m alpha)``, shuffle the rest with NumPy, one image at a time."""
    n, length = pred_loss.shape
    n_keep = int(length * (1 - mask_ratio))
    n_hard = int((length - n_keep) * hard_fraction)
    order = torch.argsort(pred_loss, dim=1)
    ids = torch.zeros_like(order)
    for i in range(n):
        hard = order[i, length - n_hard :]
        ids[i, length - n_hard :] = hard
        rest = np.delete(np.arange(length), hard.cpu().numpy())
        np.random.shuffle(rest)  # noqa: NPY002 - as the reference
        ids[i, : length - n_hard] = torch.from_numpy(rest).to(pred_loss.device)
    restore = torch.argsort(ids, dim=1)
    keep = torch.ones(n, length, device=pred_loss.device)
    keep[:, :n_keep] = 0
    return torch.gather(keep, 1, restore).bool()


def _reference_relative_loss(pred: Tensor, target: Tensor) -> Tensor:
    """The official code's eps form of the relative loss (re-implemented for timing)."""
    pos = target.unsqueeze(1) > target.unsqueeze(2)
    neg = target.unsqueeze(1) < target.unsqueeze(2)
    x = pred.unsqueeze(1) - pred.unsqueeze(2)
    loss = -pos.int() * torch.log(torch.sigmoid(x) + 1e-6) - neg.int() * torch.log(
        1 - torch.sigmoid(x) + 1e-6
    )
    return loss.sum() / (pos | neg).sum()


BENCH_MODELS: dict[str, dict[str, int]] = {
    "28px p4 (repro model)": {
        "img_size": 28,
        "patch_size": 4,
        "in_chans": 1,
        "embed_dim": 64,
        "depth": 4,
        "num_heads": 4,
        "decoder_embed_dim": 32,
        "decoder_depth": 2,
        "decoder_num_heads": 4,
    },
    "224px p16 tiny ViT 192-d x4": {
        "img_size": 224,
        "patch_size": 16,
        "in_chans": 3,
        "embed_dim": 192,
        "depth": 4,
        "num_heads": 3,
        "decoder_embed_dim": 128,
        "decoder_depth": 2,
        "decoder_num_heads": 4,
    },
    "224px p16 ViT-B, decoder 512-d x8 (paper)": {
        "img_size": 224,
        "patch_size": 16,
        "in_chans": 3,
        "embed_dim": 768,
        "depth": 12,
        "num_heads": 12,
        "decoder_embed_dim": 512,
        "decoder_depth": 8,
        "decoder_num_heads": 16,
    },
}
"""The benchmark's model sizes (and the paper's ViT-B, for :func:`step_flops` only)."""


def step_flops(cfg: dict[str, int], batch: int = 1) -> dict[str, float]:
    """Floating-point operations per image of one MAE and one HPM step (forward + backward,
    counted by ``torch.utils.flop_counter.FlopCounterMode`` on the real code, alpha = 0.5).

    Returns:
        ``mae_step``, ``hpm_step`` (teacher forward + student forward/backward with both
        decoders + ``L_pred``), ``teacher`` (its share of ``hpm_step``) and ``ratio`` =
        ``hpm_step / mae_step``. The optimizer and EMA updates (elementwise) are not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    out: dict[str, float] = {}
    for key, with_predictor in (("mae_step", False), ("hpm_step", True)):
        torch.manual_seed(0)
        model = MaskedAutoencoderViT(**cfg, loss_predictor=with_predictor)  # type: ignore[arg-type]
        stepper = HPM(model, generator=torch.Generator().manual_seed(0), validate=False)
        imgs = torch.rand(batch, cfg["in_chans"], cfg["img_size"], cfg["img_size"])
        with FlopCounterMode(display=False) as counter:
            stepper.step(imgs, 9, 10)["loss"].backward()
        out[key] = counter.get_total_flops() / batch
        if with_predictor:
            with FlopCounterMode(display=False) as counter:
                stepper.teacher_scores(imgs)
            out["teacher"] = counter.get_total_flops() / batch
    out["ratio"] = out["hpm_step"] / out["mae_step"]
    return out


def flops_table() -> str:
    """Markdown table of :func:`step_flops` for :data:`BENCH_MODELS` (``python -m
    paperzoo.hpm.bench``)."""
    lines = [
        "| model | MAE step GFLOP/img | HPM step GFLOP/img | of it teacher | HPM / MAE |",
        "|---|---|---|---|---|",
    ]
    for name, cfg in BENCH_MODELS.items():
        f = step_flops(cfg)
        lines.append(
            f"| {name} | {f['mae_step'] / 1e9:.4g} | {f['hpm_step'] / 1e9:.4g} | "
            f"{f['teacher'] / 1e9:.4g} | {f['ratio']:.2f} |"
        )
    return "\n".join(lines)


def _steps(
    cfg: dict[str, int], batch: int, device: torch.device
) -> dict[str, Callable[[], object]]:
    torch.manual_seed(0)
    hpm_model = MaskedAutoencoderViT(**cfg, loss_predictor=True).to(device)  # type: ignore[arg-type]
    mae_model = MaskedAutoencoderViT(**cfg, loss_predictor=False).to(device)  # type: ignore[arg-type]
    ref_model = copy.deepcopy(hpm_model)
    imgs = torch.rand(batch, cfg["in_chans"], cfg["img_size"], cfg["img_size"], device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    hpm = HPM(hpm_model, ema_decay=(0.99, 0.999), generator=gen)
    mae = HPM(mae_model, generator=gen)
    ref = HPM(ref_model, ema_decay=(0.99, 0.999), generator=gen)
    opts = {
        k: torch.optim.AdamW(m.parameters(), lr=1e-4)
        for k, m in (("hpm", hpm_model), ("mae", mae_model), ("ref", ref_model))
    }

    def one(stepper: HPM, key: str) -> Callable[[], object]:
        def f() -> None:
            out = stepper.step(imgs, 9, 10)  # alpha = 0.5, the hardest setting
            out["loss"].backward()
            opts[key].step()
            opts[key].zero_grad(set_to_none=True)
            stepper.update_teacher(9, 10)

        return f

    def reference_style() -> None:
        # the reference's teacher: full forward through both decoders, then a per-image mask loop
        assert ref.teacher is not None
        with torch.no_grad():
            full = ref.teacher.module(imgs, None, validate=False)
        assert full.loss_pred is not None
        mask = reference_loop_mask(full.loss_pred, 0.75, 0.5)
        out = ref_model(imgs, mask, num_masked=ref.num_masked, validate=False)
        per_patch = ref_model.reconstruction_loss(imgs, out)
        assert out.loss_pred_masked is not None
        loss = per_patch.mean() + _reference_relative_loss(out.loss_pred_masked, per_patch.detach())
        loss.backward()
        opts["ref"].step()
        opts["ref"].zero_grad(set_to_none=True)
        ref.update_teacher(9, 10)

    n_mask = hpm.num_masked
    s = torch.randn(batch, n_mask, device=device, requires_grad=True)
    t = torch.rand(batch, n_mask, device=device)

    def pairwise_loss_only() -> None:
        relative_loss_prediction_loss(s, t, validate=False).backward()

    # components of the two steps (same fixed mask; no optimizer step): where HPM's extra time goes
    fixed = random_mask(batch, hpm_model.num_patches, 0.75, gen, device=device)

    def student(model: MaskedAutoencoderViT) -> Callable[[], object]:
        def f() -> None:
            out = model(imgs, fixed, num_masked=n_mask, validate=False)
            per_patch = model.reconstruction_loss(imgs, out)
            loss = per_patch.mean()
            if out.loss_pred_masked is not None:
                loss = loss + relative_loss_prediction_loss(
                    out.loss_pred_masked, per_patch.detach(), validate=False
                )
            loss.backward()
            model.zero_grad(set_to_none=True)

        return f

    return {
        "HPM step (ours)": one(hpm, "hpm"),
        "MAE step (baseline)": one(mae, "mae"),
        "HPM step, reference-style teacher + mask loop": reference_style,
        f"relative loss alone, M={n_mask} (share of our step)": pairwise_loss_only,
        "part: teacher scores, all L patches (HPM only)": lambda: hpm.teacher_scores(imgs),
        "part: student fwd+bwd, both decoders + L_pred (HPM)": student(hpm_model),
        "part: student fwd+bwd, one decoder (MAE)": student(mae_model),
    }


def _try_lightly() -> Any:
    try:
        return importlib.import_module("lightly.models.utils")
    except ImportError:  # the bench dependency group is not installed
        return None


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """All cases; ``ctx.quick`` keeps the MNIST-size steps and shorter timings."""
    # one thread on the CPU (restored afterwards): spin-waiting OpenMP workers on a shared CPU
    # make the ratios of small kernels noise
    with torch_threads(1 if ctx.device.type == "cpu" else None):
        return _run_cases(ctx)


def _run_cases(ctx: BenchContext) -> list[BenchRow]:
    dev = ctx.device
    rt = 0.3 if ctx.quick else 1.0
    rows: list[BenchRow] = []
    mnist = BENCH_MODELS["28px p4 (repro model)"]
    tiny224 = BENCH_MODELS["224px p16 tiny ViT 192-d x4"]
    # CPU: the MNIST model at batch 32 / 128 and the 224 px tiny ViT at batch 8 (a 2-core CPU
    # cannot time batch 512 or a 224 px batch of 32 in interleaved rounds within minutes);
    # CUDA: batch 32 / 128 / 512 and the 224 px model at batch 32 / 128.
    cases: list[tuple[str, dict[str, int], int]] = [("28px p4 (repro model)", mnist, 32)]
    if dev.type == "cuda":
        cases += [("28px p4 (repro model)", mnist, b) for b in (128, 512)]
        cases += [("224px p16 tiny ViT 192-d x4", tiny224, b) for b in (32, 128)]
    elif not ctx.quick:
        cases += [
            ("28px p4 (repro model)", mnist, 128),
            ("224px p16 tiny ViT 192-d x4", tiny224, 8),
        ]
    for name, cfg, batch in cases:
        rows += compare(
            f"train step, {name}, batch {batch}",
            _steps(cfg, batch, dev),
            ours="HPM step (ours)",
            device=dev,
            min_run_time=rt,
            rounds=3 if dev.type == "cpu" else 7,
        )

    # mask generation: ours (vectorised) vs the reference's per-image loop vs lightly (random)
    n, length = (256, 196)
    scores = torch.randn(n, length, device=dev)
    g = torch.Generator(device=dev).manual_seed(0)
    rows += compare(
        f"hard-patch mask, N={n}, L={length}, r=0.75, alpha=0.5",
        {
            "hard_patch_mask (ours)": lambda: hard_patch_mask(scores, 0.75, 0.5, g),
            "reference per-image loop": lambda: reference_loop_mask(scores, 0.75, 0.5),
        },
        ours="hard_patch_mask (ours)",
        device=dev,
        min_run_time=rt,
    )
    lightly_utils = _try_lightly()
    random_impls: dict[str, Callable[[], object]] = {
        "random_mask (ours)": lambda: random_mask(n, length, 0.75, g, device=dev),
    }
    patch_impls: dict[str, Callable[[], object]] = {}
    imgs = torch.rand(64, 3, 224, 224, device=dev)
    patch_impls["patchify (ours)"] = lambda: patchify(imgs, 16)
    if lightly_utils is not None:
        lu = lightly_utils
        random_impls["lightly random_token_mask (peer)"] = lambda: lu.random_token_mask(
            (n, length), mask_ratio=0.75, device=dev
        )
        patch_impls["lightly patchify (peer)"] = lambda: lu.patchify(imgs, 16)
    rows += compare(
        f"random mask, N={n}, L={length}, r=0.75",
        random_impls,
        ours="random_mask (ours)",
        device=dev,
        min_run_time=rt,
    )
    rows += compare(
        "patchify 64x3x224x224, p=16",
        patch_impls,
        ours="patchify (ours)",
        device=dev,
        min_run_time=rt,
    )

    # the pairwise loss at ViT-B size: M = 147 masked of 196
    s = torch.randn(128, 147, device=dev, requires_grad=True)
    t = torch.rand(128, 147, device=dev)

    def ours_loss() -> None:
        relative_loss_prediction_loss(s, t, validate=False).backward()

    def ref_loss() -> None:
        _reference_relative_loss(s, t).backward()

    rows += compare(
        "relative loss fwd+bwd, N=128, M=147 (ViT-B)",
        {"relative_loss_prediction_loss (ours)": ours_loss, "reference eps form": ref_loss},
        ours="relative_loss_prediction_loss (ours)",
        device=dev,
        min_run_time=rt,
    )
    return rows


BENCHMARK = Benchmark(
    name="hpm",
    description="HPM step vs MAE step and the reference-style step; masks; pairwise loss; lightly",
    run=run_bench,
)


if __name__ == "__main__":
    print(flops_table())
