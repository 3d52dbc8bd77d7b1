"""The small reproduction of NoProp (spec section 6), registered as ``paperzoo run noprop``.

mnist5k (4000 train / 1000 test, a seeded stratified split per seed), one-hot embeddings, T = 10:

- NoProp-DT trained by Algorithm 1 (for each epoch, for t = 1..T, for each minibatch: one step
  of block t on its local loss), evaluated with stochastic (paper) and noiseless inference;
- NoProp-CT and NoProp-FM with one shared block of the same size (trained ``ct_epochs``);
- baselines: (i) the same T-block chain trained end to end by back-propagation through the
  inference recursion (CE at the end); (i') the same with a linear block head (û = h_θt), since
  the softmax·W_E head slows end-to-end training; (ii) a plain network of about the chain's
  total size trained with CE;
- the peak training memory of one optimiser step: NoProp-DT (one block) vs the chain.

Deviation: the split is the core's seeded stratified split (4000 / 1000 for mnist5k, a new
split per seed) rather than "first 4000 / last 1000"; baseline (ii) is an MLP (the quick blocks
are MLPs) sized to the chain's parameter count.

Deviation (quick/smoke budgets): MLP denoising blocks (FC ``hidden``) instead of the spec's small
conv blocks, because the conv chain does not fit the ~5 min / 2 CPU cores budget (a conv block
step is ~40x an MLP block step on CPU); ``--full`` uses the conv blocks (conv 16→32, FC 128).

At paper scale, ``--set data_root=DIR`` trains on ``real_dataset`` (``mnist``, ``cifar10`` or
``cifar100``, read from their official files by ``paperzoo.core.datasets``: the official
train / test split, pixels in [0, 1]) instead of ``dataset``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from paperzoo.core.bench import peak_memory
from paperzoo.core.checks import (
    check_choice,
    check_positive,
    check_positive_int,
    check_unit_interval,
)
from paperzoo.core.data import Split, make_loader
from paperzoo.core.datasets import load_split
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.models import count_parameters
from paperzoo.core.training import Callback, TrainState, fit
from paperzoo.noprop.baselines import plain_mlp
from paperzoo.noprop.blocks import ConvDenoiseBlock, MLPDenoiseBlock
from paperzoo.noprop.ct import NoPropCT
from paperzoo.noprop.dt import NoPropDT, backprop_chain_loss
from paperzoo.noprop.fm import NoPropFM

__all__ = ["EXPERIMENT", "NoPropConfig", "run"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NoPropConfig:
    """Config of the ``noprop`` reproduction (defaults: the quick budget's values)."""

    dataset: str = "mnist5k"
    data_root: str = ""  # a folder with the paper's data set: real_dataset replaces dataset
    real_dataset: str = "mnist"  # the paper's: mnist, cifar10, cifar100
    test_fraction: float = 0.2
    max_train: int = 0  # 0 = the whole training split
    block: str = "mlp"  # "mlp" | "conv"
    hidden: int = 128  # FC width of a block (paper: 256)
    conv_widths: tuple[int, ...] = (16, 32)
    T: int = 10
    eta: float = 0.1
    eta_ct: float = 1.0
    epochs: int = 10
    ct_epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-3
    inference_steps: tuple[int, ...] = (1, 2, 5, 10, 20)
    threads: int | None = 1  # torch threads, scoped by the core's run_experiment
    dt_margin: float = 0.02  # "NoProp-DT within 2 points of back-propagation"
    memory_factor: float = 1.5  # goal: DT peak memory <= memory_factor / T of the chain's

    def __post_init__(self) -> None:
        """Check every field (a bad ``--set`` value is one ``paperzoo: error:`` line)."""
        check_choice("block", self.block, ("mlp", "conv"))
        check_choice("real_dataset", self.real_dataset, ("mnist", "cifar10", "cifar100"))
        check_unit_interval("test_fraction", self.test_fraction, open_=True)
        check_positive_int("max_train", self.max_train, minimum=0)
        for name in ("hidden", "T", "epochs", "ct_epochs", "batch_size"):
            check_positive_int(name, getattr(self, name))
        for i, w in enumerate(self.conv_widths):
            check_positive_int(f"conv_widths[{i}]", w)
        for name in ("eta", "eta_ct", "lr", "memory_factor"):
            check_positive(name, getattr(self, name))
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("dt_margin", self.dt_margin, allow_zero=True)
        if not self.inference_steps:
            raise ValueError("inference_steps: expected at least one step count, got ()")
        for i, n in enumerate(self.inference_steps):
            check_positive_int(f"inference_steps[{i}]", n)
        if self.threads is not None:
            check_positive_int("threads", self.threads)


def _block_factory(
    cfg: NoPropConfig, split: Split, embed_dim: int, out_dim: int, time_dim: int | None
) -> Callable[[], nn.Module]:
    shape = split.input_shape
    in_dim = int(split.x_train.shape[1])
    if cfg.block == "mlp":
        return lambda: MLPDenoiseBlock(in_dim, embed_dim, out_dim, cfg.hidden, time_dim)
    if cfg.block == "conv":
        if len(shape) != 3:
            raise ValueError(f"block='conv' needs image data, {split.name} has shape {shape}")
        return lambda: ConvDenoiseBlock(
            shape[0], shape[1], embed_dim, out_dim, cfg.conv_widths, time_dim,
            fc=cfg.hidden, pool_to=2,
        )  # fmt: skip
    raise ValueError(f"block must be 'mlp' or 'conv', got {cfg.block!r}")


def _adamw(model: nn.Module, cfg: NoPropConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


class _EpochBatches:
    """The minibatches of one epoch, reshuffled per epoch with a seed of (seed, epoch[, t]).

    ``blocks=None``: ``(x, y)`` batches (seed·100003 + epoch). ``blocks=T``: Algorithm 1's
    order, ``(t, x, y)`` for t = 1..T, each t a full pass (seed·100003 + epoch·1009 + t).
    :class:`_SetEpoch` keeps ``epoch`` at ``fit``'s epoch.
    """

    def __init__(
        self, x: Tensor, y: Tensor, batch_size: int, seed: int, blocks: int | None = None
    ) -> None:
        self.x, self.y, self.batch_size, self.seed, self.blocks = x, y, batch_size, seed, blocks
        self.epoch = 0

    def _loader(self, seed: int) -> Iterator[tuple[Tensor, ...]]:
        return iter(
            make_loader(self.x, self.y, batch_size=self.batch_size, shuffle=True, seed=seed)
        )

    def __len__(self) -> int:
        return -(-self.x.shape[0] // self.batch_size) * (self.blocks or 1)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        if self.blocks is None:
            yield from self._loader(self.seed * 100003 + self.epoch)
            return
        for t in range(1, self.blocks + 1):
            for xb, yb in self._loader(self.seed * 100003 + self.epoch * 1009 + t):
                yield t, xb, yb


class _SetEpoch(Callback):
    """Tells :class:`_EpochBatches` which epoch ``fit`` is in."""

    def __init__(self, batches: _EpochBatches) -> None:
        self.batches = batches

    def on_epoch_begin(self, state: TrainState) -> None:
        self.batches.epoch = state.epoch


def _algorithm1_step(model: nn.Module, batch: Any, device: torch.device) -> Tensor:
    """``fit`` step of Algorithm 1: block t's local loss (the optimiser moves only block t and
    the shared head, since the other blocks get no gradient)."""
    t, xb, yb = batch
    assert isinstance(model, NoPropDT)
    return model.block_loss(t, xb.to(device), yb.to(device))


def _fit(
    model: nn.Module, loss: Callable[[Tensor, Tensor], Tensor] | None,
    split_xy: tuple[Tensor, Tensor], cfg: NoPropConfig, epochs: int, seed: int,
    dev: torch.device,
) -> None:  # fmt: skip
    """Train with the core's ``fit``: ``loss(x, y)`` per minibatch, or Algorithm 1 (``None``:
    the model is a :class:`NoPropDT`; for each epoch, for t = 1..T, one pass stepping block t)."""
    blocks = model.T if loss is None and isinstance(model, NoPropDT) else None
    batches = _EpochBatches(*split_xy, cfg.batch_size, seed, blocks)

    def step(m: nn.Module, batch: Any, device: torch.device) -> Tensor:
        assert loss is not None
        xb, yb = batch
        return loss(xb.to(device), yb.to(device))

    fit(
        model, batches, _adamw(model, cfg), step_fn=_algorithm1_step if blocks else step,
        epochs=epochs, device=dev, callbacks=[_SetEpoch(batches)], progress=False,
    )  # fmt: skip


def _accuracy(predict: Callable[[Tensor], Tensor], x: Tensor, y: Tensor) -> float:
    """Test top-1 in minibatches of 500 (the stochastic predictors draw their noise per batch)."""
    return accuracy(predict, x, y, batch_size=500, device=x.device)


def _one_seed(cfg: NoPropConfig, seed: int, dev: torch.device) -> dict[str, float]:
    split = load_split(
        cfg.dataset, data_root=cfg.data_root, real_dataset=cfg.real_dataset, seed=seed,
        val_fraction=0.0, test_fraction=cfg.test_fraction,
    )  # fmt: skip
    K = split.num_classes
    x_tr, y_tr = split.x_train, split.y_train
    if cfg.max_train:
        x_tr, y_tr = x_tr[: cfg.max_train], y_tr[: cfg.max_train]
    x_te, y_te = split.x_test.to(dev), split.y_test.to(dev)
    out: dict[str, float] = {}
    seed_everything(seed)

    # NoProp-DT, Algorithm 1
    t0 = time.perf_counter()
    dt = NoPropDT(_block_factory(cfg, split, K, K, None), K, T=cfg.T, eta=cfg.eta).to(dev)
    _fit(dt, None, (x_tr, y_tr), cfg, cfg.epochs, seed, dev)
    dt.eval()
    g = torch.Generator(device=dev).manual_seed(seed)
    out["dt_stochastic"] = _accuracy(lambda xb: dt.predict_logits(xb, generator=g), x_te, y_te)
    out["dt_noiseless"] = _accuracy(
        lambda xb: dt.predict_logits(xb, stochastic=False, generator=g), x_te, y_te
    )
    out["dt_train_s"] = time.perf_counter() - t0
    out["block_params"] = float(count_parameters(dt.blocks[0]))

    # baseline (i): the same chain, end-to-end back-propagation through the recursion
    seed_everything(seed)
    t0 = time.perf_counter()
    chain = NoPropDT(_block_factory(cfg, split, K, K, None), K, T=cfg.T, eta=cfg.eta).to(dev)
    _fit(chain, partial(backprop_chain_loss, chain), (x_tr, y_tr), cfg, cfg.epochs, seed, dev)
    chain.eval()
    out["chain"] = _accuracy(lambda xb: chain.predict_logits(xb, generator=g), x_te, y_te)
    out["chain_train_s"] = time.perf_counter() - t0

    # baseline (i'): the same chain with a linear head (û = h_θt), end-to-end back-propagation;
    # the softmax·W_E head makes end-to-end CE learn slowly, this isolates that effect
    seed_everything(seed)
    chain_lin = NoPropDT(
        _block_factory(cfg, split, K, K, None), K, T=cfg.T, eta=cfg.eta, head="linear"
    ).to(dev)
    _fit(chain_lin, partial(backprop_chain_loss, chain_lin), (x_tr, y_tr), cfg, cfg.epochs, seed,
         dev)  # fmt: skip
    chain_lin.eval()
    out["chain_linear"] = _accuracy(
        lambda xb: chain_lin.predict_logits(xb, generator=g), x_te, y_te
    )

    # peak memory of one training step: DT (one block) vs the chain (all blocks)
    xb, yb = x_tr[: cfg.batch_size].to(dev), y_tr[: cfg.batch_size].to(dev)
    opt_dt, opt_ch = _adamw(dt, cfg), _adamw(chain, cfg)
    dt.train()
    chain.train()

    def dt_step() -> None:
        dt.train_step(xb, yb, opt_dt, t=cfg.T // 2 + 1)

    def chain_step() -> None:
        opt_ch.zero_grad(set_to_none=True)
        torch.autograd.backward(backprop_chain_loss(chain, xb, yb))
        opt_ch.step()

    for f in (dt_step, chain_step):  # warm-up: optimiser state exists before measuring
        for _ in range(2):
            f()
    out["dt_peak_bytes"] = float(peak_memory(dt_step, dev) or 0)
    out["chain_peak_bytes"] = float(peak_memory(chain_step, dev) or 0)

    # baseline (ii): a plain network of about the chain's total size, trained with CE
    seed_everything(seed)
    in_dim = int(split.x_train.shape[1])
    plain = plain_mlp(in_dim, K, count_parameters(chain)).to(dev)
    _fit(plain, lambda xb, yb: F.cross_entropy(plain(xb), yb), (x_tr, y_tr), cfg, cfg.epochs,
         seed, dev)  # fmt: skip
    plain.eval()
    out["plain"] = _accuracy(plain, x_te, y_te)

    # NoProp-CT and NoProp-FM: one shared time-conditioned block of the same size
    time_dim = 32
    seed_everything(seed)
    ct = NoPropCT(_block_factory(cfg, split, K, K, time_dim)(), K, eta=cfg.eta_ct).to(dev)
    _fit(ct, ct.loss, (x_tr, y_tr), cfg, cfg.ct_epochs, seed, dev)
    ct.eval()
    seed_everything(seed)
    fm = NoPropFM(_block_factory(cfg, split, K, K, time_dim)(), K).to(dev)
    _fit(fm, fm.loss, (x_tr, y_tr), cfg, cfg.ct_epochs, seed, dev)
    fm.eval()
    for n in cfg.inference_steps:
        out[f"ct_{n}"] = _accuracy(partial(_ct_predict, ct, n, g), x_te, y_te)
        out[f"fm_{n}"] = _accuracy(partial(_fm_predict, fm, n, g), x_te, y_te)
    return out


def _ct_predict(model: NoPropCT, steps: int, g: torch.Generator, xb: Tensor) -> Tensor:
    return model.predict_logits(xb, steps=steps, generator=g)


def _fm_predict(model: NoPropFM, steps: int, g: torch.Generator, xb: Tensor) -> Tensor:
    return model.predict_logits(xb, steps=steps, generator=g)


def run(config: NoPropConfig, ctx: RunContext) -> Result:
    """Run every method once per seed; rows are test top-1 (and peak bytes), checks from rows."""
    per_seed = []
    for seed in ctx.seeds:
        t0 = time.perf_counter()
        per_seed.append(_one_seed(config, seed, ctx.device))
        ctx.log.info("seed %d done in %.1f s: %s", seed, time.perf_counter() - t0,
                     {k: round(v, 4) for k, v in per_seed[-1].items()})  # fmt: skip

    def vals(key: str) -> list[float]:
        return [s[key] for s in per_seed]

    n_ref = max(config.inference_steps)
    top1 = "test_top1"
    rows = [
        Row.from_values("NoProp-DT (stochastic inference)", top1, vals("dt_stochastic")),
        Row.from_values("NoProp-DT (noiseless inference)", top1, vals("dt_noiseless")),
        Row.from_values(f"NoProp-CT ({n_ref} steps)", top1, vals(f"ct_{n_ref}")),
        Row.from_values(f"NoProp-FM ({n_ref} steps)", top1, vals(f"fm_{n_ref}")),
        Row.from_values("backprop chain (same T blocks, end-to-end CE)", top1, vals("chain")),
        Row.from_values(
            "backprop chain, linear head (same blocks, end-to-end CE)", top1, vals("chain_linear")
        ),
        Row.from_values("plain MLP (CE, ~chain size)", top1, vals("plain")),
        Row.from_values("NoProp-DT (one block step)", "peak_train_bytes", vals("dt_peak_bytes")),
        Row.from_values("backprop chain step", "peak_train_bytes", vals("chain_peak_bytes")),
        Row.from_values("NoProp-DT", "train_seconds", vals("dt_train_s")),
        Row.from_values("backprop chain", "train_seconds", vals("chain_train_s")),
    ]
    dt_s = find_row(rows, "NoProp-DT (stochastic inference)", top1)
    dt_n = find_row(rows, "NoProp-DT (noiseless inference)", top1)
    ch = find_row(rows, "backprop chain (same T blocks, end-to-end CE)", top1)
    plain = find_row(rows, "plain MLP (CE, ~chain size)", top1)
    ch_lin = find_row(rows, "backprop chain, linear head (same blocks, end-to-end CE)", top1)
    ct_r = find_row(rows, f"NoProp-CT ({n_ref} steps)", top1)
    fm_r = find_row(rows, f"NoProp-FM ({n_ref} steps)", top1)
    mem_dt = find_row(rows, "NoProp-DT (one block step)", "peak_train_bytes").mean
    mem_ch = find_row(rows, "backprop chain step", "peak_train_bytes").mean
    mem_ratio = mem_dt / mem_ch if mem_ch > 0 else float("nan")
    goal = config.memory_factor / config.T
    checks = [
        Check(
            f"NoProp-DT within {100 * config.dt_margin:.0f} points of the back-propagation "
            "chain (test top-1, stochastic inference)",
            dt_s.mean >= ch.mean - config.dt_margin,
            f"{dt_s.mean:.4f} vs {ch.mean:.4f}",
        ),
        Check(
            f"NoProp-DT within {100 * config.dt_margin:.0f} points of the linear-head "
            "back-propagation chain (test top-1, stochastic inference)",
            dt_s.mean >= ch_lin.mean - config.dt_margin,
            f"{dt_s.mean:.4f} vs {ch_lin.mean:.4f}",
        ),
        Check(
            f"NoProp-DT within {100 * config.dt_margin:.0f} points of the plain network "
            "trained by back-propagation (test top-1, stochastic inference)",
            dt_s.mean >= plain.mean - config.dt_margin,
            f"{dt_s.mean:.4f} vs {plain.mean:.4f}",
        ),
        Check(
            "noiseless inference at least as accurate as stochastic (NoProp-DT)",
            dt_n.mean >= dt_s.mean,
            f"{dt_n.mean:.4f} vs {dt_s.mean:.4f}",
        ),
        Check(
            f"peak training memory per step of NoProp-DT <= {config.memory_factor}/T of the "
            "back-propagation chain",
            mem_ch > 0 and mem_ratio <= goal,
            f"ratio {mem_ratio:.3f} vs goal {goal:.3f} ({mem_dt:.0f} vs {mem_ch:.0f} bytes)",
        ),
        Check(
            "NoProp-CT and NoProp-FM a few points below NoProp-DT (at most 10 points below, "
            "not above)",
            all(dt_s.mean - 0.10 <= r.mean <= dt_s.mean for r in (ct_r, fm_r)),
            f"CT {ct_r.mean:.4f}, FM {fm_r.mean:.4f}, DT {dt_s.mean:.4f}",
        ),
    ]
    steps = [float(n) for n in config.inference_steps]
    curves = {
        "accuracy_vs_inference_steps": Curve.from_seeds(
            "CT/FM test top-1 vs inference steps (seed mean, min-max band)",
            "inference steps",
            "test top-1",
            steps,
            {
                label: [[s[f"{key}_{n}"] for n in config.inference_steps] for s in per_seed]
                for label, key in (("NoProp-CT", "ct"), ("NoProp-FM", "fm"))
            },
        )
    }
    extra = {
        "block_params": per_seed[0]["block_params"],
        "memory_ratio_dt_over_chain": mem_ratio,
        "accuracy_vs_steps": {
            "ct": {str(n): vals(f"ct_{n}") for n in config.inference_steps},
            "fm": {str(n): vals(f"fm_{n}") for n in config.inference_steps},
        },
        "config": asdict(config),
    }
    return Result(rows=rows, checks=checks, curves=curves, extra=extra)


EXPERIMENT = Experiment(
    name="noprop",
    description="NoProp-DT/CT/FM vs the back-propagation chain on mnist5k (accuracy, memory)",
    config_cls=NoPropConfig,
    run=run,
    budgets={
        "smoke": {
            "dataset": "digits",
            "max_train": 256,
            "T": 3,
            "hidden": 32,
            "epochs": 1,
            "ct_epochs": 1,
            "inference_steps": (1, 4),
        },
        "quick": {},
        "full": {
            "block": "conv",
            "hidden": 128,
            "epochs": 100,
            "ct_epochs": 200,
            "inference_steps": (1, 2, 5, 10, 20, 40),
            "threads": 2,
        },
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
