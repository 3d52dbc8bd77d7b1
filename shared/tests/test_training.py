"""fit: exact resume, atomic checkpoints, accumulation, precision, callbacks, bad arguments."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from paperzoo.core import training
from paperzoo.core.data import make_loader
from paperzoo.core.training import Callback, TrainState, fit, load_checkpoint, save_checkpoint


def _data(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def _model() -> nn.Module:
    torch.manual_seed(0)
    # dropout makes the run depend on the global RNG, which resume must restore
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def _run(
    epochs: int, ckpt: Path | None, resume: bool = False, stop_after: int | None = None
) -> nn.Module:
    torch.manual_seed(123)
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = _data()
    loader = make_loader(x, y, batch_size=16, shuffle=True, seed=7)

    class Stop(Callback):
        def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
            if stop_after is not None and state.epoch >= stop_after:
                state.should_stop = True

    fit(
        model,
        loader,
        opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=epochs,
        device="cpu",
        scheduler=sched,
        callbacks=[Stop()],
        checkpoint_path=ckpt,
        resume=resume,
        progress=False,
    )
    return model


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path: Path) -> None:
    full = _run(3, tmp_path / "a.pt")
    _run(3, tmp_path / "b.pt", stop_after=1)  # interrupted after epoch 1
    assert load_checkpoint(tmp_path / "b.pt")["epoch"] == 1
    resumed = _run(3, tmp_path / "b.pt", resume=True)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{k} differs after resume"


def test_resume_without_a_checkpoint_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        _run(2, tmp_path / "nope.pt", resume=True)


def test_failed_write_leaves_the_previous_checkpoint_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.arange(5)})

    def broken_save(obj: Any, f: Any, *a: Any, **k: Any) -> None:
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(5)})
    monkeypatch.undo()
    ck = load_checkpoint(path)
    assert ck["epoch"] == 1
    assert torch.equal(ck["w"], torch.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"], "temporary file left behind"


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_checkpoint(bad)


def test_checkpoint_refuses_arbitrary_pickles(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"obj": Path("x")}, evil)  # a non-tensor object needs full unpickling
    with pytest.raises(ValueError, match="evil.pt"):
        load_checkpoint(evil)


def test_rng_state_round_trip() -> None:
    import random

    import numpy as np

    st = training.rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1))
    training.set_rng_state(st)
    b = (random.random(), np.random.rand(), torch.rand(1))
    assert a[0] == b[0]
    assert a[1] == b[1]
    assert torch.equal(a[2], b[2])


def test_accumulation_equals_one_big_batch() -> None:
    x, y = _data(32)
    m1, m2 = _model().eval(), _model().eval()
    m2.load_state_dict(m1.state_dict())
    m1[2].p = 0.0  # type: ignore[union-attr]
    m2[2].p = 0.0  # type: ignore[union-attr]
    o1 = torch.optim.SGD(m1.parameters(), lr=0.1)
    o2 = torch.optim.SGD(m2.parameters(), lr=0.1)
    big = make_loader(x, y, batch_size=32, shuffle=False)
    small = make_loader(x, y, batch_size=8, shuffle=False)
    fit(m1, big, o1, loss_fn=nn.functional.cross_entropy, device="cpu", progress=False)
    fit(
        m2,
        small,
        o2,
        loss_fn=nn.functional.cross_entropy,
        device="cpu",
        accumulate=4,
        progress=False,
    )
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_grad_clip_bounds_the_update() -> None:
    x, y = _data(32)
    model = nn.Linear(8, 3)
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loader = make_loader(x * 100, y, batch_size=32, shuffle=False)
    fit(model, loader, opt, loss_fn=nn.functional.cross_entropy, device="cpu", grad_clip=0.01)
    delta = torch.cat([(p - before[k]).flatten() for k, p in model.state_dict().items()])
    assert float(delta.norm()) <= 0.01 + 1e-6


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_stays_finite(precision: str) -> None:
    x, y = _data()
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    res = fit(
        model,
        make_loader(x, y, batch_size=16, shuffle=True),
        opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=2,
        device="cpu",
        precision=precision,
    )
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in res.history)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_step_fn_and_validation_metrics() -> None:
    from torchmetrics import MetricCollection
    from torchmetrics.classification import MulticlassAccuracy

    x, y = _data()

    def step(model: nn.Module, batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
        xb, yb = batch
        return {"loss": nn.functional.cross_entropy(model(xb.to(device)), yb.to(device))}

    res = fit(
        _model(),
        make_loader(x, y, batch_size=16, shuffle=True),
        torch.optim.Adam(_model().parameters()),
        step_fn=step,
        device="cpu",
        val_loader=make_loader(x, y, batch_size=32, shuffle=False),
        metrics=MetricCollection({"acc": MulticlassAccuracy(num_classes=3, average="micro")}),
    )
    assert set(res.history[0]) == {"epoch", "train_loss", "val_acc"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"accumulate": 0}, "accumulate"),
        ({"precision": "fp8"}, "precision"),
        ({"grad_clip": -1.0}, "grad_clip"),
        ({"resume": True}, "resume"),
        ({"loss_fn": None}, "loss_fn"),
    ],
)
def test_bad_fit_arguments_are_named(kwargs: dict[str, Any], match: str) -> None:
    x, y = _data()
    model = _model()
    args: dict[str, Any] = {"loss_fn": nn.functional.cross_entropy, "device": "cpu", **kwargs}
    with pytest.raises(ValueError, match=match):
        fit(
            model,
            make_loader(x, y, batch_size=16, shuffle=False),
            torch.optim.SGD(model.parameters(), lr=0.1),
            **args,
        )


DDP_SCRIPT = r"""
import sys, torch, torch.distributed as dist
from torch import nn
from paperzoo.core.training import fit, init_distributed, is_main_process
from paperzoo.core.data import make_loader
device = init_distributed()
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3)).double()
g = torch.Generator().manual_seed(0)
x, y = torch.randn(64, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (64,), generator=g)
per_rank = 16 // (dist.get_world_size() if dist.is_initialized() else 1)
loader = make_loader(x, y, batch_size=per_rank, shuffle=False)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
fit(model, loader, opt, loss_fn=nn.functional.cross_entropy, epochs=3, device=device,
    checkpoint_path=sys.argv[2], progress=False)
if is_main_process():
    torch.save({k: v for k, v in model.state_dict().items()}, sys.argv[1])
if dist.is_initialized():
    dist.destroy_process_group()
"""


@pytest.mark.slow
def test_two_process_gloo_ddp_equals_one_process(tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    single = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "one.pt"), str(tmp_path / "ck1.pt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    multi = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(tmp_path / "two.pt"),
            str(tmp_path / "ck2.pt"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert multi.returncode == 0, multi.stderr[-2000:]
    one = torch.load(tmp_path / "one.pt", weights_only=True)
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=0, atol=1e-6)
    # rank 0 alone wrote the checkpoint, and it loads
    assert load_checkpoint(tmp_path / "ck2.pt")["epoch"] == 3


class _Counter(Callback):
    """Counts batches in a tensor and adds it to the logs in on_epoch_end (stateful)."""

    def __init__(self) -> None:
        self.batches = torch.zeros((), dtype=torch.long)

    def on_batch_end(self, state: TrainState, loss: torch.Tensor) -> None:
        self.batches += 1

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        logs["batches_so_far"] = float(self.batches)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"batches": self.batches.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches = state["batches"].clone()


def _fit_counter(
    epochs: int, ckpt: Path, resume: bool, callbacks: list[Callback]
) -> list[dict[str, float]]:
    x, y = _data(32)
    model = _model()
    res = fit(
        model,
        make_loader(x, y, batch_size=8, shuffle=False),
        torch.optim.SGD(model.parameters(), lr=0.1),
        loss_fn=nn.functional.cross_entropy,
        epochs=epochs,
        device="cpu",
        callbacks=callbacks,
        checkpoint_path=ckpt,
        resume=resume,
        progress=False,
    )
    return res.history


def test_callback_state_and_the_logs_it_adds_survive_a_resume(tmp_path: Path) -> None:
    full = _fit_counter(3, tmp_path / "a.pt", False, [_Counter()])
    _fit_counter(1, tmp_path / "b.pt", False, [_Counter()])
    resumed_cb = _Counter()
    resumed = _fit_counter(3, tmp_path / "b.pt", True, [resumed_cb])
    assert int(resumed_cb.batches) == 12  # 4 batches x 3 epochs, counting across the resume
    # the log a callback adds in on_epoch_end is in the checkpointed history too
    assert [h["batches_so_far"] for h in resumed] == [h["batches_so_far"] for h in full]
    assert [h["batches_so_far"] for h in full] == [4.0, 8.0, 12.0]
    saved = load_checkpoint(tmp_path / "b.pt")["callbacks"]
    assert len(saved) == 1 and int(saved[0]["batches"]) == 12


def test_resume_with_other_callbacks_is_refused_or_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _fit_counter(1, tmp_path / "c.pt", False, [_Counter()])
    with pytest.raises(ValueError, match="callbacks: the checkpoint .* holds the state of 1"):
        _fit_counter(2, tmp_path / "c.pt", True, [_Counter(), _Counter()])
    with pytest.raises(TypeError, match="keeps no state"):
        _fit_counter(2, tmp_path / "c.pt", True, [Callback()])
    _fit_counter(1, tmp_path / "d.pt", False, [Callback()])
    with caplog.at_level("WARNING", logger="paperzoo.core.training"):
        _fit_counter(2, tmp_path / "d.pt", True, [_Counter()])
    assert "holds no state for it" in caplog.text
