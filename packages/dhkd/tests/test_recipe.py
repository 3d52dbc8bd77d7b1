"""The training recipes: step functions, the schedule, distillation through the core's loop."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, find_row, get_experiment
from paperzoo.core.models import mlp
from paperzoo.dhkd import (
    DualHeadClassifier,
    binary_kl,
    conv1d_teacher,
    distill,
    distillation_step,
    kd_loss,
    step_decay,
)
from paperzoo.dhkd.bench import three_line_kd


def _student(aux: str = "linear") -> DualHeadClassifier:
    torch.manual_seed(0)
    return DualHeadClassifier(nn.Sequential(mlp([12, 16]), nn.ReLU()), 16, 3, aux)  # type: ignore[arg-type]


def test_step_decay_drops_at_the_reference_fractions() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = step_decay(opt, 240)
    lrs = []
    for _ in range(240):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[149] == 1.0 and lrs[150] == pytest.approx(0.1)
    assert lrs[180] == pytest.approx(0.01) and lrs[210] == pytest.approx(0.001)


def test_step_functions_compute_their_objectives() -> None:
    model = _student().train()
    x, y = torch.randn(8, 12), torch.randint(0, 3, (8,))
    zt = torch.randn(8, 3)
    torch.manual_seed(1)
    out = distillation_step("binary_kl", lambda b, d: zt, alpha=0.5)(
        model, (x, y), torch.device("cpu")
    )
    main = model(x).main
    torch.testing.assert_close(out["ce"], nn.functional.cross_entropy(main, y).detach())
    torch.testing.assert_close(out["kd"], 0.5 * binary_kl(main, zt, 2.0).detach())
    out = distillation_step("kd", lambda b, d: zt)(model, (x, y), torch.device("cpu"))
    torch.testing.assert_close(out["kd"], kd_loss(main, zt, 4.0).detach())
    with pytest.raises(ValueError, match="teacher_logits_of"):
        distillation_step("dhkd", None)
    with pytest.raises(ValueError, match="method"):
        distillation_step("fitnets", None)  # type: ignore[arg-type]


def test_three_line_kd_equals_kd_loss() -> None:
    zs, zt = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    torch.testing.assert_close(three_line_kd(zs, zt, 4.0), kd_loss(zs, zt, 4.0))


def test_distill_with_grad_align_trains_and_leaves_the_teacher_alone() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 12)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    teacher = conv1d_teacher(12, 3, channels=4)
    before = [p.detach().clone() for p in teacher.parameters()]
    student = _student("nonlinear")
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    res = distill(student, teacher, loader, 3, grad_align=True, lr=0.05)
    assert len(res.history) == 3 and all(
        torch.isfinite(torch.tensor(h["train_loss"])) for h in res.history
    )
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters(), strict=True))
    assert all(p.grad is None for p in teacher.parameters())


def test_experiment_config_rejects_bad_values() -> None:
    exp = get_experiment("dhkd")
    with pytest.raises(UserError, match="methods"):
        exp.make_config("smoke", ["methods=ce,fitnets"])
    with pytest.raises(UserError, match="alpha"):
        exp.make_config("smoke", ["alpha=-1"])


@pytest.mark.slow
def test_smoke_reproduction_produces_rows_and_checks() -> None:
    exp = get_experiment("dhkd")
    cfg = exp.make_config("smoke", ["n_train=128", "n_test=64", "epochs=1"])
    res = exp.run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    for label in ("CE", "DHKD linear aux", "DHKD nonlinear aux + GA", "single head CE + BinaryKL"):
        assert 0.0 <= find_row(res.rows, label, "test_top1").mean <= 1.0
    assert -1.0 <= find_row(res.rows, "single head CE + BinaryKL", "grad_cos_W").mean <= 1.0
    assert len(res.checks) == 3


def test_torchdistill_peer_equals_kd_loss() -> None:
    pytest.importorskip("torchdistill")
    from paperzoo.dhkd.bench import _torchdistill_kd

    peer = _torchdistill_kd(4.0)
    assert peer is not None
    zs, zt = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    torch.testing.assert_close(peer(zs, zt), kd_loss(zs, zt, 4.0))


def test_checks_use_two_pooled_standard_errors() -> None:
    from paperzoo.core.experiments import Row
    from paperzoo.dhkd.experiment import METHOD_LABELS, _checks

    methods = ("ce", "dhkd", "dhkd_nl_ga")

    def rows(ce: list[float], lin: list[float], nl: list[float]) -> list[Row]:
        return [
            Row.from_values(METHOD_LABELS["ce"], "test_top1", ce),
            Row.from_values(METHOD_LABELS["dhkd"], "test_top1", lin),
            Row.from_values(METHOD_LABELS["dhkd_nl_ga"], "test_top1", nl),
        ]

    # sample variances 1e-4 each over 3 seeds: pooled SE = sqrt(2e-4 / 3) = 0.008165
    ce = [0.64, 0.65, 0.66]
    inside = [v - 0.016 for v in ce]  # 1.6 points below: within 2 SE (1.63 points)
    outside = [v - 0.017 for v in ce]  # 1.7 points below: outside
    got = _checks(rows(ce, inside, outside), methods)
    by_name = {c.name: c.passed for c in got}
    assert by_name["DHKD linear aux not below CE by more than 2 pooled standard errors"]
    assert not by_name["DHKD nonlinear aux + GA not below CE by more than 2 pooled standard errors"]
    assert not by_name["DHKD nonlinear aux + GA mean >= CE mean"]
    assert _checks(rows(ce, ce, ce), ("dhkd",)) == []
