"""State: state_dict round trips through a file, exact resume of training, schedule dtype."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from paperzoo.noprop import (
    CosineSchedule,
    LabelEmbedding,
    LearnableSchedule,
    MLPDenoiseBlock,
    NoPropCT,
    NoPropDT,
    NoPropFM,
    select_prototypes,
    train_blocks_vmapped,
)

K, D = 3, 6
X = torch.randn(16, D, generator=torch.Generator().manual_seed(1))
Y = torch.arange(16) % K


def _dt(kind: str = "learned") -> NoPropDT:
    if kind == "prototype":
        emb = LabelEmbedding(K, kind="prototype", prototypes=select_prototypes(X, Y, per_class=3))
        dim = D
    else:
        emb = LabelEmbedding(K, kind=kind)  # type: ignore[arg-type]
        dim = K
    return NoPropDT(lambda: MLPDenoiseBlock(D, dim, K, hidden=8), K, T=4, embedding=emb)


def _ct() -> NoPropCT:
    return NoPropCT(MLPDenoiseBlock(D, K, K, hidden=8, time_dim=8), K)


def _fm() -> NoPropFM:
    return NoPropFM(MLPDenoiseBlock(D, K, K, hidden=8, time_dim=8), K)


def _save_load(model: nn.Module, fresh: nn.Module, path: Path) -> nn.Module:
    torch.save(model.state_dict(), path)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    return fresh


@pytest.mark.parametrize("kind", ["onehot", "learned", "prototype"])
def test_dt_state_dict_round_trip_gives_the_same_predictions(kind: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _dt(kind)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for t in range(1, model.T + 1):  # moves the weights, BN statistics and (learned) W_E
        model.train_step(X, Y, opt, t=t)
    torch.manual_seed(1)
    fresh = _save_load(model, _dt(kind), tmp_path / "dt.pt")
    assert isinstance(fresh, NoPropDT)
    model.eval()
    fresh.eval()
    torch.testing.assert_close(fresh.embedding.weight, model.embedding.weight, rtol=0, atol=0)
    with torch.no_grad():
        for stochastic in (False, True):
            a = model.predict_logits(X, stochastic, torch.Generator().manual_seed(3))
            b = fresh.predict_logits(X, stochastic, torch.Generator().manual_seed(3))
            torch.testing.assert_close(b, a, rtol=0, atol=0)


@pytest.mark.parametrize("make", [_ct, _fm], ids=["ct", "fm"])
def test_ct_fm_state_dict_round_trip_keeps_the_learned_schedule(
    make: Callable[[], NoPropCT | NoPropFM], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        model.loss(X, Y, generator=torch.Generator().manual_seed(0)).backward()
        opt.step()
    torch.manual_seed(1)
    fresh = _save_load(model, make(), tmp_path / "m.pt")
    grid = torch.linspace(0, 1, 7)
    if isinstance(model, NoPropCT):
        assert isinstance(fresh, NoPropCT)
        torch.testing.assert_close(
            fresh.schedule.snr_prime(grid), model.schedule.snr_prime(grid), rtol=0, atol=0
        )
    with torch.no_grad():
        a = model.predict_logits(X, steps=5, generator=torch.Generator().manual_seed(2))
        b = fresh.predict_logits(X, steps=5, generator=torch.Generator().manual_seed(2))  # type: ignore[operator]
    torch.testing.assert_close(b, a, rtol=0, atol=0)


def _run_dt(model: NoPropDT, opt: torch.optim.Optimizer, gen: torch.Generator, mode: str) -> None:
    for _ in range(2):
        if mode == "blocks":
            for t in range(1, model.T + 1):
                model.train_step(X, Y, opt, t=t, generator=gen)
        else:
            train_blocks_vmapped(model, X, Y, opt, generator=gen)


@pytest.mark.parametrize("mode", ["blocks", "vmapped"])
def test_dt_training_resumes_exactly_from_a_checkpoint(mode: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _dt("learned")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(7)
    _run_dt(model, opt, gen, mode)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": gen.get_state()}, path)
    _run_dt(model, opt, gen, mode)  # the uninterrupted run

    torch.manual_seed(5)
    resumed = _dt("learned")
    ropt = torch.optim.AdamW(resumed.parameters(), lr=1e-2, weight_decay=1e-3)
    ckpt = torch.load(path, weights_only=True)
    resumed.load_state_dict(ckpt["model"])
    ropt.load_state_dict(ckpt["opt"])
    rgen = torch.Generator()
    rgen.set_state(ckpt["rng"])
    _run_dt(resumed, ropt, rgen, mode)
    for (name, p), q in zip(model.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(q, p, rtol=0, atol=0, msg=name)


def test_ct_training_resumes_exactly_including_the_schedule(tmp_path: Path) -> None:
    def run(m: NoPropCT, o: torch.optim.Optimizer, g: torch.Generator) -> None:
        for _ in range(3):
            o.zero_grad(set_to_none=True)
            m.loss(X, Y, generator=g).backward()
            o.step()

    torch.manual_seed(0)
    model = _ct()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(3)
    run(model, opt, gen)
    path = tmp_path / "ct.pt"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": gen.get_state()}, path)
    run(model, opt, gen)
    torch.manual_seed(9)
    resumed = _ct()
    ropt = torch.optim.AdamW(resumed.parameters(), lr=1e-2)
    ckpt = torch.load(path, weights_only=True)
    resumed.load_state_dict(ckpt["model"])
    ropt.load_state_dict(ckpt["opt"])
    rgen = torch.Generator()
    rgen.set_state(ckpt["rng"])
    run(resumed, ropt, rgen)
    assert any(n.startswith("schedule.") for n, _ in model.named_parameters())
    for (name, p), q in zip(model.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(q, p, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_schedule_buffers_stay_float64_when_the_model_is_cast(dtype: torch.dtype) -> None:
    ref = CosineSchedule(10)
    model = NoPropDT(lambda: MLPDenoiseBlock(D, K, K, hidden=8), K, T=10).to(dtype)
    assert model.blocks[0].x_branch[0].weight.dtype == dtype  # type: ignore[index,union-attr]
    for name in ("alpha_bar", "snr"):
        buf: Tensor = getattr(model.schedule, name)
        assert buf.dtype == torch.float64, name
        torch.testing.assert_close(buf, getattr(ref, name), rtol=0, atol=0)
    assert float(model.schedule.alpha_bar[-1]) == 0.9999  # rounds to 1 in float16/bfloat16
    # a state_dict saved from the cast model still loads into a float64 schedule
    fresh = NoPropDT(lambda: MLPDenoiseBlock(D, K, K, hidden=8), K, T=10)
    fresh.load_state_dict({k: v.to(torch.float32) for k, v in model.state_dict().items()})
    assert fresh.schedule.alpha_bar.dtype == torch.float64


def test_learnable_schedule_round_trip_keeps_endpoints() -> None:
    torch.manual_seed(0)
    a = LearnableSchedule(gamma_min=-5.0, gamma_max=6.0, hidden=4)
    b = LearnableSchedule(gamma_min=-5.0, gamma_max=6.0, hidden=4)
    b.load_state_dict(a.state_dict())
    t = torch.rand(9)
    torch.testing.assert_close(b.alpha_bar(t), a.alpha_bar(t), rtol=0, atol=0)
    ends = b.alpha_bar(torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(ends, torch.sigmoid(-torch.tensor([6.0, -5.0])))
