"""Spec section 5: the approximation, soft = hard, an analytic case, identities, gradients,
invariances, degenerate and collapsed batches, the generic callable, and the extensions."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    fbeta_score,
    recall_score,
)
from torch import Tensor

from paperzoo.anyloss import (
    METRICS,
    AnyLoss,
    BalancedAccuracyAnyLoss,
    CollapseWarning,
    DegenerateBatchWarning,
    FBetaAnyLoss,
    GMeanAnyLoss,
    anyloss,
    approximation,
    confusion_metrics,
    hybrid_anyloss,
    one_vs_rest_anyloss,
    soft_confusion,
    weighted_bce,
)


# ----------------------------------------------------------------------------- references
def loop_confusion(y_hat: Tensor, y: Tensor) -> tuple[float, float, float, float]:
    """``(tn, fp, fn, tp)`` by a Python loop over examples (Eq. 3 cell by cell)."""
    tn = fp = fn = tp = 0.0
    for yh, t in zip(y_hat.double().tolist(), y.double().tolist(), strict=True):
        tp += t * yh
        fn += t * (1 - yh)
        fp += (1 - t) * yh
        tn += (1 - t) * (1 - yh)
    return tn, fp, fn, tp


def generic_metric(
    name: str, tn: float, fp: float, fn: float, tp: float, beta: float = 1.0
) -> float:
    """Each metric from its textbook definition in the four cells (not the closed forms)."""
    tpr = tp / (tp + fn)
    tnr = tn / (tn + fp)
    if name == "accuracy":
        return (tp + tn) / (tp + tn + fp + fn)
    if name in ("f1", "fbeta"):
        b2 = 1.0 if name == "f1" else beta * beta
        return (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp)
    if name == "gmean":
        return math.sqrt(tpr * tnr)
    if name == "balanced_accuracy":
        return (tpr + tnr) / 2
    raise KeyError(name)


def probs_for(y_hat: Tensor, L: float) -> Tensor:
    """The probabilities ``p`` with ``A(p) = y_hat`` (inverse of the approximation function)."""
    return 0.5 + torch.logit(y_hat) / L


NAMES = ["accuracy", "f1", "fbeta", "gmean", "balanced_accuracy"]


def _batch(n: int, seed: int, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    y[0], y[1] = 0, 1
    return scale * torch.randn(n, generator=g, dtype=torch.float64), y


# ----------------------------------------------------------------------------- approximation


def test_approximation_is_one_half_at_one_half_and_strictly_increasing() -> None:
    assert approximation(torch.tensor(0.5, dtype=torch.float64)).item() == 0.5
    p = torch.linspace(0, 1, 1001, dtype=torch.float64)
    a = approximation(p)
    assert bool((a[1:] >= a[:-1]).all())
    mid = a[300:701]  # p in [0.3, 0.7]: strictly increasing in floating point too
    assert bool((mid[1:] > mid[:-1]).all())
    assert a.min().item() > 0 and a.max().item() < 1  # (0, 1) in float64
    assert approximation(torch.tensor(0.6, dtype=torch.float64)).item() == pytest.approx(
        1 / (1 + math.exp(-7.3)), abs=1e-15
    )
    assert approximation(torch.tensor(0.6, dtype=torch.float64)).item() == pytest.approx(
        0.99933, abs=1e-5
    )


def test_approximation_saturates_to_exactly_one_in_float32() -> None:
    """In float32 with L = 73, A(p) == 1.0 exactly from p ~ 0.728 on, with a zero gradient."""
    p = torch.tensor([0.70, 0.72, 0.73, 0.8, 0.9, 1.0], requires_grad=True)
    a = approximation(p)
    assert bool((a[:2] < 1).all())
    assert bool((a[2:] == 1.0).all())
    a.sum().backward()
    assert p.grad is not None
    assert bool((p.grad[2:] == 0).all()) and bool((p.grad[:2] > 0).all())
    # the same p in float64 stays below 1 with a tiny but positive gradient
    p64 = p.detach().double().requires_grad_(True)
    approximation(p64).sum().backward()
    assert bool((approximation(p64) < 1).all())
    assert p64.grad is not None and bool((p64.grad > 0).all())


# ----------------------------------------------------------------------------- soft = hard


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_confusion_of_hard_predictions_is_sklearns_confusion_matrix(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 50)
    pred = rng.integers(0, 2, 50)
    c = soft_confusion(torch.from_numpy(pred).double(), torch.from_numpy(y))
    got = [c.tn.item(), c.fp.item(), c.fn.item(), c.tp.item()]
    assert got == confusion_matrix(y, pred).ravel().tolist()
    assert c.n.item() == 50 and c.n_pos.item() == y.sum() and c.n_neg.item() == 50 - y.sum()


def _sklearn_values(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    spec = recall_score(y, pred, pos_label=0)
    return {
        "accuracy": accuracy_score(y, pred),
        "f1": f1_score(y, pred),
        "fbeta0.5": fbeta_score(y, pred, beta=0.5),
        "fbeta2": fbeta_score(y, pred, beta=2.0),
        "balanced_accuracy": balanced_accuracy_score(y, pred),
        "gmean": math.sqrt(recall_score(y, pred) * spec),
    }


def _our_losses(p: Tensor, y: Tensor) -> dict[str, float]:
    kw = {"input_type": "probs"}
    return {
        "accuracy": anyloss(p, y, "accuracy", **kw).item(),  # type: ignore[arg-type]
        "f1": anyloss(p, y, "f1", **kw).item(),  # type: ignore[arg-type]
        "fbeta0.5": anyloss(p, y, "fbeta", beta=0.5, **kw).item(),  # type: ignore[arg-type]
        "fbeta2": anyloss(p, y, "fbeta", beta=2.0, **kw).item(),  # type: ignore[arg-type]
        "balanced_accuracy": anyloss(p, y, "balanced_accuracy", **kw).item(),  # type: ignore[arg-type]
        "gmean": anyloss(p, y, "gmean", **kw).item(),  # type: ignore[arg-type]
    }


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_each_loss_on_hard_predictions_is_one_minus_sklearns_metric(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 40)
    y[:2] = (0, 1)
    pred = rng.integers(0, 2, 40)
    yt = torch.from_numpy(y)
    ref = _sklearn_values(y, pred)
    # hard probabilities 0/1: A(0), A(1) are within 2e-16 of 0 and 1
    ours = _our_losses(torch.from_numpy(pred).double(), yt)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(1 - v, abs=1e-12), k
    # confident probabilities 0.02 / 0.98 with L = 73 agree within 1e-6
    soft = _our_losses(torch.from_numpy(np.where(pred == 1, 0.98, 0.02)), yt)
    for k, v in ref.items():
        assert soft[k] == pytest.approx(1 - v, abs=1e-6), k
    # the evaluation helper at threshold 0.5 agrees with sklearn as well
    ev = confusion_metrics(torch.from_numpy(pred * 0.9 + 0.05), yt)
    for k in ("accuracy", "f1", "balanced_accuracy", "gmean"):
        assert ev[k] == pytest.approx(ref[k], abs=1e-12), k


def test_confusion_metrics_flags_a_constant_classifier() -> None:
    y = torch.tensor([0, 1, 0, 1])
    assert confusion_metrics(torch.full((4,), 0.3), y)["constant"] == 1.0
    assert confusion_metrics(torch.full((4,), 0.7), y)["constant"] == 1.0
    out = confusion_metrics(torch.tensor([0.3, 0.7, 0.3, 0.3]), y)
    assert out["constant"] == 0.0 and out["f1"] == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------- analytic case


def test_tiny_analytic_case() -> None:
    y = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    y_hat = torch.tensor([0.9, 0.2, 0.6, 0.1], dtype=torch.float64)
    c = soft_confusion(y_hat, y)
    for got, want in ((c.tp, 1.5), (c.fp, 0.3), (c.fn, 0.5), (c.tn, 1.7)):
        assert got.item() == pytest.approx(want, abs=1e-12)
    p = probs_for(y_hat, 73.0)  # A(p) = y_hat
    kw = {"input_type": "probs"}
    assert 1 - anyloss(p, y, "f1", **kw).item() == pytest.approx(3 / 3.8, abs=1e-12)  # type: ignore[arg-type]
    assert 1 - anyloss(p, y, "balanced_accuracy", **kw).item() == pytest.approx(0.8, abs=1e-12)  # type: ignore[arg-type]
    assert 1 - anyloss(p, y, "gmean", **kw).item() == pytest.approx(  # type: ignore[arg-type]
        math.sqrt(0.75 * 0.85), abs=1e-12
    )
    assert 1 - anyloss(p, y, "accuracy", **kw).item() == pytest.approx(3.2 / 4, abs=1e-12)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- identities


@pytest.mark.parametrize("seed", range(4))
def test_cells_sum_to_n_and_match_a_per_example_loop(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    y_hat = torch.rand(37, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (37,), generator=g)
    c = soft_confusion(y_hat, y)
    assert (c.tn + c.fp + c.fn + c.tp).item() == pytest.approx(37, abs=1e-12)
    for got, want in zip((c.tn, c.fp, c.fn, c.tp), loop_confusion(y_hat, y), strict=True):
        assert got.item() == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", range(3))
def test_closed_forms_equal_the_generic_confusion_matrix_forms(
    name: str, beta: float, seed: int
) -> None:
    if name == "f1" and beta != 1.0:
        pytest.skip("f1 fixes beta = 1")
    g = torch.Generator().manual_seed(seed)
    y_hat = torch.rand(29, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (29,), generator=g)
    y[:2] = torch.tensor([0, 1])
    p = probs_for(y_hat, 73.0)
    loss = anyloss(p, y, name, beta=beta, input_type="probs")  # type: ignore[arg-type]
    want = generic_metric(name, *loop_confusion(y_hat, y), beta=beta)
    assert 1 - loss.item() == pytest.approx(want, abs=1e-12)


def test_gmean_without_sqrt_is_the_extensions_product_of_rates() -> None:
    x, y = _batch(30, 0)
    y_hat = approximation(torch.sigmoid(x))
    tn, fp, fn, tp = loop_confusion(y_hat, y)
    got = 1 - GMeanAnyLoss(sqrt=False)(x, y).item()
    assert got == pytest.approx(tp / (tp + fn) * tn / (tn + fp), abs=1e-12)


def test_the_registry_holds_exactly_the_documented_metrics() -> None:
    assert sorted(METRICS) == sorted(NAMES)


def test_generic_callable_matches_the_built_in_f1() -> None:
    x, y = _batch(25, 1)

    def f1(tn: Tensor, fp: Tensor, fn: Tensor, tp: Tensor) -> Tensor:
        return 2 * tp / (2 * tp + fp + fn)

    torch.testing.assert_close(anyloss(x, y, f1), anyloss(x, y, "f1"), rtol=1e-12, atol=1e-12)


def test_callable_mcc_matches_its_per_example_loop_value() -> None:
    x, y = _batch(25, 2)

    def mcc(tn: Tensor, fp: Tensor, fn: Tensor, tp: Tensor) -> Tensor:
        return (tp * tn - fp * fn) / ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)).sqrt()

    tn, fp, fn, tp = loop_confusion(approximation(torch.sigmoid(x)), y)
    want = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert 1 - anyloss(x, y, mcc).item() == pytest.approx(want, abs=1e-12)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("L", [5.0, 73.0])
def test_gradcheck_float64_wrt_logits(name: str, L: float) -> None:
    # p near 1/2 (|logit| <~ 0.1) so that A is not saturated at L = 73
    x, y = _batch(8, 3, scale=0.05 if L > 10 else 1.0)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda t: anyloss(t, y, name, beta=1.0 if name == "f1" else 2.0, L=L),
        (x,),
        eps=1e-7,
        atol=1e-6,
        rtol=1e-4,
    )


def _dydx(x: Tensor, L: float) -> tuple[Tensor, Tensor]:
    p = torch.sigmoid(x)
    y_hat = torch.sigmoid(L * (p - 0.5))
    return y_hat, L * y_hat * (1 - y_hat) * p * (1 - p)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_autograd_equals_the_papers_analytic_fbeta_derivative(beta: float) -> None:
    x, y = _batch(20, 4, scale=0.2)
    yf = y.double()
    x.requires_grad_(True)
    anyloss(x, y, "fbeta", beta=beta).backward()
    y_hat, dy = _dydx(x.detach(), 73.0)
    b2 = beta * beta
    den = b2 * yf.sum() + y_hat.sum()
    tp = (yf * y_hat).sum()
    d_metric = (1 + b2) * (yf * den - tp) / den**2  # dF/dy_hat_i
    assert x.grad is not None
    torch.testing.assert_close(x.grad, -d_metric * dy, rtol=1e-10, atol=1e-14)


def test_autograd_equals_the_analytic_accuracy_and_balanced_accuracy_derivatives() -> None:
    x, y = _batch(20, 5, scale=0.2)
    yf = y.double()
    n, n1 = 20.0, yf.sum()
    _, dy = _dydx(x, 73.0)
    xa = x.clone().requires_grad_(True)
    anyloss(xa, y, "accuracy").backward()
    assert xa.grad is not None
    torch.testing.assert_close(xa.grad, (1 - 2 * yf) / n * dy, rtol=1e-10, atol=1e-14)
    xb = x.clone().requires_grad_(True)
    anyloss(xb, y, "balanced_accuracy").backward()
    assert xb.grad is not None
    want = -(n * yf - n1) / (2 * n1 * (n - n1)) * dy
    torch.testing.assert_close(xb.grad, want, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["f1", "fbeta", "accuracy", "balanced_accuracy", "gmean"])
@pytest.mark.parametrize("seed", range(3))
def test_gradient_sign_pushes_positives_up_and_negatives_down(name: str, seed: int) -> None:
    x, y = _batch(32, 10 + seed)
    x.requires_grad_(True)
    anyloss(x, y, name, beta=1.0 if name == "f1" else 2.0).backward()
    assert x.grad is not None
    pos, neg = y == 1, y == 0
    assert bool((x.grad[pos] < 0).all()) and bool((x.grad[neg] > 0).all())
    # float32: saturated entries get exactly 0, never the wrong sign
    x32 = x.detach().float().requires_grad_(True)
    anyloss(x32, y, name, beta=1.0 if name == "f1" else 2.0).backward()
    assert x32.grad is not None
    assert bool((x32.grad[pos] <= 0).all()) and bool((x32.grad[neg] >= 0).all())


def test_float32_saturated_examples_get_exactly_zero_gradient() -> None:
    x = torch.tensor([-3.0, -0.1, 0.1, 1.5, 3.0], requires_grad=True)  # p = 0.05 .. 0.95
    y = torch.tensor([1, 0, 1, 0, 1])
    anyloss(x, y, "f1").backward()
    assert x.grad is not None
    # p >= 0.82: A(p) == 1.0 exactly, so exactly no gradient (a wrong negative among them)
    assert x.grad[3].item() == 0 and x.grad[4].item() == 0
    # p = 0.05: A(p) ~ 5e-15 does not underflow, its gradient is tiny but not zero
    assert 0 < abs(x.grad[0].item()) < 1e-12
    assert x.grad[1].item() > 0 and x.grad[2].item() < 0


# ----------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("name", NAMES)
def test_duplicating_the_batch_leaves_every_loss_unchanged(name: str) -> None:
    x, y = _batch(21, 6)
    one = anyloss(x, y, name)
    two = anyloss(torch.cat([x, x]), torch.cat([y, y]), name)
    torch.testing.assert_close(one, two, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_permuting_the_batch_leaves_every_loss_unchanged(name: str) -> None:
    x, y = _batch(21, 7)
    perm = torch.randperm(21, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(anyloss(x, y, name), anyloss(x[perm], y[perm], name))


def test_column_and_flat_shapes_and_label_dtypes_agree() -> None:
    x, y = _batch(12, 8)
    ref = anyloss(x, y)
    for yy in (y.float(), y.bool(), y.view(-1, 1), y.double().view(-1, 1)):
        torch.testing.assert_close(anyloss(x.view(-1, 1), yy), ref)


# ----------------------------------------------------------------------------- degenerate


def test_all_negative_batch_gives_fbeta_loss_one_with_zero_gradient() -> None:
    x = torch.randn(10, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(10, dtype=torch.long)
    loss = FBetaAnyLoss()(x, y)
    loss.backward()
    assert loss.item() == 1.0
    assert x.grad is not None and bool((x.grad == 0).all())


@pytest.mark.parametrize("name", ["gmean", "balanced_accuracy"])
@pytest.mark.parametrize("label", [0, 1])
def test_one_class_batch_warns_or_raises_for_gmean_and_balanced_accuracy(
    name: str, label: int
) -> None:
    x = torch.randn(10, dtype=torch.float64)
    y = torch.full((10,), label)
    with pytest.warns(DegenerateBatchWarning, match=name):
        loss = anyloss(x, y, name)  # type: ignore[arg-type]
    assert bool(torch.isfinite(loss))
    with pytest.raises(ValueError, match="zero_division"):
        anyloss(x, y, name, zero_division="raise")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="zero_division"):  # asked for: checked even unvalidated
        anyloss(x, y, name, zero_division="raise", validate=False)  # type: ignore[arg-type]


def test_collapsed_batch_warns_and_is_counted() -> None:
    y = torch.tensor([1, 0, 0, 0, 1, 0])
    x = torch.full((6,), -2.0)  # p = 0.12 everywhere: A(p) ~ 1e-12, a constant classifier
    loss_fn = BalancedAccuracyAnyLoss()
    with pytest.warns(CollapseWarning):
        loss_fn(x, y)
    assert loss_fn.collapsed_batches.item() == 1 and loss_fn.seen_batches.item() == 1
    quiet = BalancedAccuracyAnyLoss(validate=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet(x, y)  # no host sync, no warning ...
        quiet(torch.randn(6), y)
    assert quiet.collapsed_batches.item() == 1 and quiet.seen_batches.item() == 2  # ... but counted
    quiet.reset_counters()
    assert quiet.collapsed_batches.item() == 0
    # a one-class batch predicted as that class is not a collapse
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        anyloss(torch.full((4,), -3.0), torch.zeros(4), "f1")


def test_module_equals_function_and_counters_stay_out_of_the_state_dict() -> None:
    x, y = _batch(9, 9)
    m = AnyLoss("gmean", L=20.0)
    torch.testing.assert_close(m(x, y), anyloss(x, y, "gmean", L=20.0), rtol=0, atol=0)
    assert m.state_dict() == {}
    assert "metric='gmean'" in repr(m)


# ----------------------------------------------------------------------------- extensions


def test_one_vs_rest_is_the_mean_of_binary_losses_per_class() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(30, 4, generator=g, dtype=torch.float64)
    t = torch.arange(30) % 4
    probs = torch.softmax(logits, 1)
    for name in NAMES:
        want = (
            sum(
                anyloss(
                    probs[:, k],
                    (t == k).long(),
                    name,
                    beta=2.0 if name == "fbeta" else 1.0,
                    L=20.0,
                    input_type="probs",
                )  # type: ignore[arg-type]
                for k in range(4)
            )
            / 4
        )
        got = one_vs_rest_anyloss(logits, t, name, beta=2.0 if name == "fbeta" else 1.0, L=20.0)  # type: ignore[arg-type]
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_one_vs_rest_gradcheck_float64() -> None:
    g = torch.Generator().manual_seed(1)
    logits = (0.1 * torch.randn(12, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    t = torch.arange(12) % 3
    assert torch.autograd.gradcheck(lambda z: one_vs_rest_anyloss(z, t, "gmean", L=20.0), (logits,))


def test_weighted_bce_matches_a_per_example_loop() -> None:
    x, y = _batch(17, 11)
    n1 = float(y.sum())
    want = []
    for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
        p = 1 / (1 + math.exp(-xi))
        w = (17 - n1) / 17 if yi == 1 else n1 / 17
        want.append(-w * (yi * math.log(p) + (1 - yi) * math.log(1 - p)))
    got = weighted_bce(x, y, reduction="none")
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-14)
    p = torch.sigmoid(x)
    torch.testing.assert_close(weighted_bce(p, y, input_type="probs"), got.mean())


def test_hybrid_is_weighted_bce_plus_the_unamplified_metric() -> None:
    x, y = _batch(17, 12)
    _tn, fp, fn, tp = loop_confusion(torch.sigmoid(x), y)  # no approximation function
    f1 = 2 * tp / (2 * tp + fp + fn)
    want = 0.7 * weighted_bce(x, y).item() + 0.3 * (1 - f1)
    assert hybrid_anyloss(x, y, "f1", r=0.3).item() == pytest.approx(want, abs=1e-12)
    assert hybrid_anyloss(x, y, "f1", r=0.0).item() == pytest.approx(weighted_bce(x, y).item())


def test_counters_follow_the_inputs_device_without_moving_the_module() -> None:
    loss_fn = AnyLoss("f1", validate=False)
    x, y = torch.randn(6, device="meta"), torch.zeros(6, device="meta")
    assert loss_fn(x, y).device.type == "meta"
    assert loss_fn.seen_batches.device.type == "meta"
    assert loss_fn.collapsed_batches.device.type == "meta"
