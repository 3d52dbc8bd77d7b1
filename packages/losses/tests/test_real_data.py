"""``data_root``: a real data set read by the core's loader (a tiny MNIST fixture in idx format)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from paperzoo.core.experiments import RunContext, run_experiment
from paperzoo.losses.experiment import EXPERIMENT, LossesConfig, _real_split


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def _mnist(root: Path, n_train: int = 60, n_test: int = 20) -> None:
    rng = np.random.default_rng(0)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, (n, 28, 28))
        _write_idx(root / f"{stem}-images-idx3-ubyte", images)
        _write_idx(root / f"{stem}-labels-idx1-ubyte", labels)


def test_real_split_is_flat_seeded_and_capped(tmp_path: Path) -> None:
    _mnist(tmp_path)
    cfg = LossesConfig(settings=(), data_root=str(tmp_path), real_max_train=30)
    split = _real_split(cfg, "mnist", seed=0)
    assert split.x_train.shape == (30, 784) and split.x_val.shape == (10, 784)
    assert split.x_test.shape == (20, 784) and split.num_classes == 10
    assert split.y_train.dtype == torch.long
    again = _real_split(cfg, "mnist", seed=0)
    assert torch.equal(again.y_train, split.y_train)


def test_data_root_races_the_real_data_set(tmp_path: Path) -> None:
    _mnist(tmp_path)
    cfg = LossesConfig(
        settings=(),
        losses=("cross_entropy", "gce"),
        data_root=str(tmp_path),
        real_settings=("clean",),
        epochs=1,
        max_grid=1,
    )
    ctx = RunContext(
        seeds=[0, 1], device=torch.device("cpu"), budget="smoke", log=logging.getLogger("test")
    )
    res = run_experiment(EXPERIMENT, cfg, ctx)
    assert {r.metric for r in res.rows} >= {"mnist/clean/top1", "mnist/clean/p_vs_ce"}
