"""HPM inside the core's fit loop, the per-step LR schedule, and the experiment's metrics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from paperzoo.core.data import make_loader
from paperzoo.core.training import fit, load_checkpoint
from paperzoo.hpm import HPM
from paperzoo.hpm.experiment import pairwise_ranking_accuracy, spearman
from paperzoo.hpm.training import HPMCallback, WarmupCosineLR, param_groups, warmup_cosine_lr

from .conftest import assert_same_student_and_teacher, tiny_model


def test_fit_trains_hpm_and_updates_the_teacher_every_step() -> None:
    model = tiny_model()
    hpm = HPM(model, ema_decay=(0.5, 0.5), generator=torch.Generator().manual_seed(0))
    assert hpm.teacher is not None
    before = [p.clone() for p in hpm.teacher.module.parameters()]
    x, y = torch.rand(32, 2, 8, 8), torch.zeros(32, dtype=torch.long)
    loader = make_loader(x, y, batch_size=8, shuffle=True, seed=0)
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-3)
    res = fit(
        model,
        loader,
        opt,
        step_fn=hpm.fit_step,
        epochs=2,
        device="cpu",
        callbacks=[WarmupCosineLR(1e-3, 2, 4, 1), HPMCallback(hpm, 2)],
        progress=False,
    )
    assert len(res.history) == 2 and res.history[1]["loss_pred"] > 0
    assert math.isclose(
        res.history[0]["train_loss"],
        res.history[0]["loss_rec"] + res.history[0]["loss_pred"],
        rel_tol=1e-4,
    )
    # the teacher moved (EMA with d=0.5 after every one of the 8 optimizer steps)
    assert any(
        not torch.equal(t, b) for t, b in zip(hpm.teacher.module.parameters(), before, strict=True)
    )
    assert hpm._pos[0] == 1  # the callback told the stepper the epoch


def test_warmup_cosine_matches_mae_schedule() -> None:
    assert warmup_cosine_lr(0.0, 1.0, 10, 2) == 0.0
    assert warmup_cosine_lr(1.0, 1.0, 10, 2) == pytest.approx(0.5)
    assert warmup_cosine_lr(2.0, 1.0, 10, 2) == pytest.approx(1.0)
    assert warmup_cosine_lr(6.0, 1.0, 10, 2) == pytest.approx(0.5)
    assert warmup_cosine_lr(10.0, 1.0, 10, 2, min_lr=0.1) == pytest.approx(0.1)


def test_param_groups_exclude_biases_and_norms_from_decay() -> None:
    model = tiny_model()
    no_decay, decay = param_groups(model, 0.05)
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.05
    assert all(p.dim() <= 1 for p in no_decay["params"])
    assert all(p.dim() >= 2 for p in decay["params"])
    total = len(no_decay["params"]) + len(decay["params"])
    assert total == len(list(model.parameters()))


def test_ranking_metrics_on_known_orders() -> None:
    t = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    assert pairwise_ranking_accuracy(t * 5, t).item() == 1.0
    assert pairwise_ranking_accuracy(-t, t).item() == 0.0
    assert spearman(t, t).item() == pytest.approx(1.0)
    assert spearman(-t, t).item() == pytest.approx(-1.0)
    half = torch.tensor([[0.2, 0.1, 0.4, 0.3]])
    assert pairwise_ranking_accuracy(half, t).item() == pytest.approx(4 / 6)


def _fit_hpm(epochs: int, ckpt: Path, resume: bool) -> HPM:
    model = tiny_model()
    hpm = HPM(model, ema_decay=(0.5, 0.9), generator=torch.Generator().manual_seed(0))
    x, y = torch.rand(32, 2, 8, 8, generator=torch.Generator().manual_seed(1)), torch.zeros(32)
    loader = make_loader(x, y.long(), batch_size=8, shuffle=True, seed=0)
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-3)
    fit(
        model,
        loader,
        opt,
        step_fn=hpm.fit_step,
        epochs=epochs,
        device="cpu",
        callbacks=[
            WarmupCosineLR(1e-3, 3, 4, 1),
            HPMCallback(hpm, 3),
        ],
        checkpoint_path=ckpt,
        resume=resume,
        progress=False,
    )
    return hpm


def test_fit_resume_restores_the_teacher_and_mask_generator(tmp_path: Path) -> None:
    ref = _fit_hpm(3, tmp_path / "ref.pt", resume=False)
    _fit_hpm(1, tmp_path / "run.pt", resume=False)
    resumed = _fit_hpm(3, tmp_path / "run.pt", resume=True)
    assert_same_student_and_teacher(resumed, ref)
    assert resumed.generator is not None and ref.generator is not None
    assert torch.equal(resumed.generator.get_state(), ref.generator.get_state())


def test_the_hpm_state_is_in_fits_own_checkpoint(tmp_path: Path) -> None:
    hpm = _fit_hpm(2, tmp_path / "run.pt", resume=False)
    saved = load_checkpoint(tmp_path / "run.pt")["callbacks"]
    assert saved[0] is None  # WarmupCosineLR keeps no state (it reads the step)
    assert hpm.teacher is not None
    teacher = saved[1]["hpm"]["teacher"]["module"]
    for k, v in hpm.teacher.module.state_dict().items():
        assert torch.equal(teacher[k], v), k
    assert torch.equal(saved[1]["hpm"]["generator"], hpm.generator.get_state())  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="'hpm'"):
        HPMCallback(hpm, 2).load_state_dict({"teacher": 1})


def test_fit_resume_from_a_checkpoint_without_hpm_state_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = tiny_model()
    x, y = torch.rand(16, 2, 8, 8), torch.zeros(16, dtype=torch.long)
    loader = make_loader(x, y, batch_size=8, shuffle=False)
    hpm = HPM(model)
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-3)
    common: dict[str, Any] = dict(
        step_fn=hpm.fit_step, device="cpu", checkpoint_path=tmp_path / "run.pt", progress=False
    )
    fit(model, loader, opt, epochs=1, callbacks=[WarmupCosineLR(1e-3, 2, 2, 1)], **common)
    with caplog.at_level("WARNING", logger="paperzoo.core.training"):
        fit(model, loader, opt, epochs=2, callbacks=[HPMCallback(hpm, 2)], resume=True, **common)
    assert "HPMCallback: the checkpoint" in caplog.text and "holds no state for it" in caplog.text
