"""The RSS objective and trainer: special cases, pseudo-labels, training, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.selection import grid
from paperzoo.ood_dro import (
    RampLoss,
    RSSObjective,
    RSSTrainer,
    WassersteinRobustLoss,
    predict_labels,
    ramp_loss,
    robust_surrogate,
    shifted_unlabeled,
    tune,
    two_gaussians,
)


def _mlp(seed: int = 0, d: int = 6, k: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, k)).double()


def _data(
    seed: int = 0, m: int = 10, n: int = 15, d: int = 6, k: int = 3
) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(m, d, generator=g, dtype=torch.float64),
        torch.randint(0, k, (m,), generator=g),
        torch.randn(n, d, generator=g, dtype=torch.float64),
    )


def test_rss_with_lambda_zero_is_wrm() -> None:
    model = _mlp()
    x_l, y_l, x_u = _data()
    obj = RSSObjective(model, "ce", gamma=0.5, lam=0.0, steps=5, step_size=0.05)
    with pytest.warns(UserWarning, match="lam"):
        out = obj(x_l, y_l, x_u)
    wrm = WassersteinRobustLoss("ce", 0.5, steps=5, step_size=0.05)(model, x_l, y_l)
    torch.testing.assert_close(out["total"], wrm, rtol=0, atol=0)


def test_rss_without_unlabeled_data_is_wrm_and_warns() -> None:
    model = _mlp()
    x_l, y_l, x_u = _data()
    obj = RSSObjective(model, "ce", gamma=0.5, lam=1.0, steps=5, step_size=0.05)
    wrm = WassersteinRobustLoss("ce", 0.5, steps=5, step_size=0.05)(model, x_l, y_l)
    for empty in (None, x_u[:0]):
        with pytest.warns(UserWarning, match="no unlabeled"):
            out = obj(x_l, y_l, empty)
        torch.testing.assert_close(out["total"], wrm, rtol=0, atol=0)


def test_robust_unlabeled_term_is_the_robust_loss_at_hard_pseudo_labels() -> None:
    model = _mlp()
    x_l, y_l, x_u = _data()
    obj = RSSObjective(model, "ce", gamma=0.5, gamma_u=0.7, lam=2.0, steps=4, step_size=0.05)
    out = obj(x_l, y_l, x_u)
    y_u = model(x_u).argmax(1)
    phi_u, _ = robust_surrogate(model, x_u, y_u, "ce", 0.7, steps=4, step_size=0.05)
    phi_l, _ = robust_surrogate(model, x_l, y_l, "ce", 0.5, steps=4, step_size=0.05)
    torch.testing.assert_close(out["unlabeled"], phi_u.mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        out["total"], phi_l.mean() + 2.0 * phi_u.mean(), rtol=1e-12, atol=1e-12
    )


def test_hard_pseudo_label_ramp_for_a_linear_model_is_the_symmetric_ramp() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(5, 1, bias=False).double()
    g = torch.Generator().manual_seed(1)
    x_l = torch.randn(7, 5, generator=g, dtype=torch.float64)
    y_l = torch.randint(0, 2, (7,), generator=g) * 2 - 1
    x_u = torch.randn(30, 5, generator=g, dtype=torch.float64)
    obj = RSSObjective(
        lin,
        RampLoss(2.0, reduction="none"),
        lam=3.0,
        robust=False,
        unlabeled_loss_fn=RampLoss(0.5, reduction="none"),
    )
    out = obj(x_l, y_l, x_u)
    s_l, s_u = (x_l @ lin.weight[0]), (x_u @ lin.weight[0])
    # slow reference: one example at a time
    ref_l = torch.stack([ramp_loss(y_l[i] * s_l[i], 2.0) for i in range(7)]).mean()
    ref_u = torch.stack([ramp_loss(s_u[j].abs(), 0.5) for j in range(30)]).mean()
    torch.testing.assert_close(out["labeled"], ref_l, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out["unlabeled"], ref_u, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out["total"], ref_l + 3.0 * ref_u, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("robust", [True, False])
def test_pseudo_labels_carry_no_gradient(robust: bool) -> None:
    """The unlabeled term's gradient equals that of the same loss with the labels fixed upfront."""
    model = _mlp()
    x_l, y_l, x_u = _data()
    obj = RSSObjective(model, "ce", gamma=0.5, lam=1.0, robust=robust, steps=3, step_size=0.05)
    obj(x_l, y_l, x_u)["unlabeled"].backward()
    g1 = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    with torch.no_grad():
        fixed = model(x_u).argmax(1)
    if robust:
        phi, _ = robust_surrogate(model, x_u, fixed, "ce", 0.5, steps=3, step_size=0.05)
    else:
        phi = nn.functional.cross_entropy(model(x_u), fixed, reduction="none")
    phi.mean().backward()
    g2 = [p.grad for p in model.parameters() if p.grad is not None]
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_soft_pseudo_labels_are_detached_probabilities() -> None:
    model = _mlp()
    x_l, y_l, x_u = _data()
    obj = RSSObjective(model, "ce", lam=1.0, robust=False, pseudo_label="soft")
    out = obj(x_l, y_l, x_u)
    p = model(x_u).softmax(1).detach()
    ref = -(p * model(x_u).log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(out["unlabeled"], ref, rtol=1e-12, atol=1e-12)


def test_predict_labels_binary_and_multiclass() -> None:
    assert predict_labels(torch.tensor([0.3, -0.1, 0.0])).tolist() == [1, -1, 1]
    assert predict_labels(torch.tensor([[0.3], [-0.1]])).tolist() == [1, -1]
    assert predict_labels(torch.tensor([[0.1, 0.9], [2.0, 0.0]])).tolist() == [1, 0]


def _xavier(model: nn.Module) -> None:
    for mod in model.modules():
        if isinstance(mod, nn.Linear):
            nn.init.xavier_uniform_(mod.weight)


def test_trainer_learns_the_mixture_and_keeps_the_lowest_loss_epoch() -> None:
    """Full-batch ramp RSS (reference simulation setup) learns the mixture; with
    ``select="train_loss"`` the kept state is the epoch with the lowest objective over restarts."""
    d = 20
    x_te, y_te = two_gaussians(4000, d, 2.0, seed=99)
    x_l, y_l = two_gaussians(10, d, 2.0, seed=0)
    x_u, _ = shifted_unlabeled(1000, 2.0, 0.0, d=d, seed=50)
    lin = nn.Linear(d, 1, bias=False)
    obj = RSSObjective(
        lin,
        RampLoss(1.0, reduction="none"),
        lam=2.0,
        robust=False,
        unlabeled_loss_fn=RampLoss(0.2, reduction="none"),
    )
    tr = RSSTrainer(
        obj,
        lr=0.07,
        weight_decay=0.1,
        epochs=20,
        restarts=2,
        scheduler="plateau",
        select="train_loss",
        init=_xavier,
    )
    model = tr.fit(x_l, y_l, x_u)
    losses = [h["train_loss"] for run in tr.history for h in run]
    assert tr.best_score == pytest.approx(-min(losses))
    with torch.no_grad():
        assert float(obj(x_l, y_l, x_u)["total"]) == pytest.approx(min(losses), rel=1e-5)
        acc = float((predict_labels(model(x_te)) == y_te).float().mean())
    assert acc > 0.75


def test_trainer_warmup_and_validation_selection_and_tune() -> None:
    x_l, y_l, x_u = _data(m=30, n=60, k=3)
    x_l, x_u = x_l.float(), x_u.float()
    val = _data(seed=5, m=40, k=3)[:2]
    val = (val[0].float(), val[1])
    seen: list[float] = []

    def build(p: dict[str, float]) -> RSSTrainer:
        model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
        obj = RSSObjective(model, "ce", gamma=1.0, lam=p["lam"], steps=2, step_size=0.05)
        return RSSTrainer(obj, lr=0.05, epochs=4, warmup_epochs=2, batch_size=10, val=val, seed=1)

    sel, model = tune(build, grid(lam=(0.1, 1.0)), x_l, y_l, x_u, val)
    assert set(sel.scores) == {"lam=0.1", "lam=1"}
    seen.append(sel.best_score)
    with torch.no_grad():
        acc = float((model(val[0]).argmax(1) == val[1]).float().mean())
    assert acc == pytest.approx(sel.best_score)
    tr = build({"lam": 1.0})
    tr.fit(x_l, y_l, x_u)
    assert tr.best_epoch > 2  # warm-up epochs are never the returned model
    assert tr.objective.lam_scale == 1.0


def test_bad_rss_input_gets_a_clear_error() -> None:
    model = _mlp()
    x_l, y_l, x_u = _data()
    obj = RSSObjective(model, "ce", lam=1.0, steps=1)
    with pytest.raises(ValueError, match="x_u: expected the labeled feature shape"):
        obj(x_l, y_l, x_u[:, :4])
    with pytest.raises(ValueError, match="x_l: expected 6 features"):
        obj(x_l[:, :4], y_l, x_u[:, :4])
    with pytest.raises(ValueError, match="x_l: expected a non-empty batch"):
        obj(x_l[:0], y_l[:0], x_u)
    with pytest.raises(ValueError, match="y: expected labels in"):
        obj(x_l, y_l + 3, x_u)
    bad = x_u.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x_u: expected finite"):
        obj(x_l, y_l, bad)
    with pytest.raises(ValueError, match="lam"):
        RSSObjective(model, lam=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        RSSObjective(model, gamma=0.0)
    with pytest.raises(ValueError, match="steps"):
        RSSObjective(model, steps=-1)
    with pytest.raises(ValueError, match="step_size"):
        RSSObjective(model, step_size=0.0)
    with pytest.raises(ValueError, match="pseudo_label"):
        RSSObjective(model, "logistic", pseudo_label="soft")
    with pytest.raises(ValueError, match="val"):
        RSSTrainer(obj, select="val_acc")
    lin = nn.Linear(6, 1).double()
    binary = RSSObjective(lin, "logistic", lam=1.0, steps=1)
    with pytest.raises(ValueError, match=r"y_l: expected binary labels in \{-1, \+1\}"):
        binary(x_l, y_l, x_u)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": -1.0, "steps": 0}, "gamma"),
        ({"steps": -1}, "steps"),
        ({"step_size": 0.0}, "step_size"),
        ({"cost": "l1"}, "cost"),
        ({"schedule": "cosine"}, "schedule"),
    ],
)
def test_bad_robust_loss_arguments_get_a_clear_error(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WassersteinRobustLoss(**kw)  # type: ignore[arg-type]


def test_zero_steps_is_the_plain_loss_and_costs_are_zero_at_x() -> None:
    model = _mlp()
    x_l, y_l, _ = _data()
    phi, z = robust_surrogate(model, x_l, y_l, "ce", 0.0, steps=0)
    torch.testing.assert_close(phi, nn.functional.cross_entropy(model(x_l), y_l, reduction="none"))
    assert z is x_l
    from paperzoo.ood_dro import l2, squared_l2

    assert float(squared_l2(x_l, x_l).abs().max()) == 0.0 and float(l2(x_l, x_l).abs().max()) == 0.0
    torch.testing.assert_close(
        squared_l2(x_l, 2 * x_l), torch.stack([(x_l[i] ** 2).sum() for i in range(10)])
    )


def test_robust_value_is_above_the_plain_loss_and_stores_the_adversarial_batch() -> None:
    model = _mlp()
    x_l, y_l, _ = _data()
    loss = WassersteinRobustLoss("ce", 1.0, steps=10, step_size=0.1, reduction="none")
    phi = loss(model, x_l, y_l)
    plain = nn.functional.cross_entropy(model(x_l), y_l, reduction="none")
    assert bool((phi >= plain - 1e-12).all()) and bool((phi > plain).any())
    assert loss.last_adversarial is not None and loss.last_adversarial.shape == x_l.shape
