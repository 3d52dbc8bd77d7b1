"""AF-KAN trained the way users would: the core's data, fit loop, checkpoints and evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from paperzoo.af_kan import AFKAN
from paperzoo.core.data import load_dataset, make_loader
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.models import count_parameters
from paperzoo.core.training import fit, load_checkpoint


def _digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    split = load_dataset("digits", seed=0)
    return split.x_train * 2 - 1, split.y_train, split.x_test * 2 - 1, split.y_test


def test_af_kan_trained_by_core_fit_learns_digits(tmp_path: Path) -> None:
    x, y, xt, yt = _digits()
    seed_everything(0)
    model = AFKAN([64, 32, 10])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8)
    loader = make_loader(x, y, batch_size=64, shuffle=True, seed=0)
    ckpt = tmp_path / "af_kan.pt"
    res = fit(
        model,
        loader,
        opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=6,
        device="cpu",
        scheduler=sched,
        checkpoint_path=ckpt,
        progress=False,
    )
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0]
    acc = accuracy(model, xt, yt, device="cpu")
    assert acc > 0.85, acc
    # the checkpoint the core wrote restores the same predictions into a fresh model
    state = load_checkpoint(ckpt)
    fresh = AFKAN([64, 32, 10])
    fresh.load_state_dict(state["model"])
    model.eval()
    fresh.eval()
    torch.testing.assert_close(fresh(xt[:50]), model(xt[:50]))
    assert count_parameters(fresh) == count_parameters(model)


@pytest.mark.parametrize("func_norm", ["sample", None])
def test_af_kan_variants_train_under_core_fit(func_norm: str | None) -> None:
    x, y, xt, yt = _digits()
    seed_everything(1)
    model = AFKAN([64, 16, 10], func_norm=func_norm, method="multistep")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loader = make_loader(x, y, batch_size=128, shuffle=True, seed=1)
    fit(
        model,
        loader,
        opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=3,
        device="cpu",
        progress=False,
    )
    assert accuracy(model, xt, yt, device="cpu") > 0.6
