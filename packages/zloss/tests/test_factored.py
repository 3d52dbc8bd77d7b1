"""The factored layer's exact update against dense nn.Linear + torch.optim.SGD (spec section 5)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from paperzoo.zloss import (
    FactoredSGD,
    FactoredSphericalLinear,
    FactoredZLossHead,
    log_taylor_softmax_loss,
    log_taylor_softmax_loss_from_stats,
    z_loss,
    z_loss_from_stats,
)

f64 = torch.float64


def _train_both(
    k: int, bias: bool, weight_decay: float, inverse: str = "woodbury", steps: int = 30
) -> tuple[FactoredSphericalLinear, torch.nn.Linear, float]:
    """Train the factored layer and a dense copy side by side; return them and the worst grad_h gap."""
    d_out, d_in, m, lr = 50, 7, 5, 0.3
    g = torch.Generator().manual_seed(11)
    layer = FactoredSphericalLinear(
        d_in, d_out, bias=bias, dtype=f64, stabilize_every=0, inverse=inverse, generator=g
    )  # type: ignore[arg-type]
    dense = layer.to_linear()
    opt = torch.optim.SGD(dense.parameters(), lr=lr, weight_decay=weight_decay)
    worst = 0.0
    for step in range(steps):
        h = torch.randn(m, d_in, generator=g, dtype=f64)
        t = torch.randint(0, d_out, (m, k), generator=g)
        t[1] = t[0]  # duplicated targets across examples
        if k > 1:
            t[2, 1] = t[2, 0]  # and within one example
        target = t[:, 0] if k == 1 else t
        h1, h2 = h.clone().requires_grad_(True), h.clone().requires_grad_(True)
        z_loss_from_stats(*layer(h1, target), d_out, a=1.5, b=0.5).backward()
        opt.zero_grad()
        z_loss(dense(h2), target, a=1.5, b=0.5).backward()
        opt.step()
        layer.sgd_step(lr, weight_decay)
        assert h1.grad is not None and h2.grad is not None
        worst = max(worst, float((h1.grad - h2.grad).abs().max()))
        assert step >= 0
    return layer, dense, worst


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_factored_sgd_equals_dense_sgd_for_30_steps(
    k: int, bias: bool, weight_decay: float
) -> None:
    layer, dense, grad_gap = _train_both(k, bias, weight_decay)
    assert grad_gap < 1e-10
    moved = (
        (
            layer.weight()
            - FactoredSphericalLinear(
                7, 50, bias=bias, dtype=f64, generator=torch.Generator().manual_seed(11)
            ).weight()
        )
        .abs()
        .max()
    )
    assert moved > 1e-2  # training really changed W
    assert (layer.weight() - dense.weight).abs().max() < 1e-9
    if bias:
        assert dense.bias is not None
        b = layer.bias()
        assert b is not None and (b - dense.bias).abs().max() < 1e-9
    errors = layer.check_invariants(atol=1e-9)
    assert max(errors.values()) < 1e-9


def test_recomputed_inverse_equals_dense_sgd_too() -> None:
    layer, dense, grad_gap = _train_both(2, True, 0.05, inverse="recompute")
    assert grad_gap < 1e-10
    assert (layer.weight() - dense.weight).abs().max() < 1e-9
    layer.check_invariants(atol=1e-9)


def test_weight_decay_scaled_before_the_steps_would_fail_the_test() -> None:
    """The order of the weight-decay scaling matters at 1e-9: a wrong order is detectably off."""
    layer, _, _ = _train_both(1, True, 0.05)
    lr, wd = 0.3, 0.05
    g = torch.Generator().manual_seed(0)
    h = torch.randn(5, 7, generator=g, dtype=f64)
    t = torch.randint(0, 50, (5,), generator=g)
    z_loss_from_stats(*layer(h, t), 50).backward()
    before = layer.weight_augmented()
    stash = layer._stash[0]
    # wrong order: scale first (f W), then the plain-rate step from the scaled state
    wrong = FactoredSphericalLinear.from_linear(layer.to_linear(), dtype=f64)
    with torch.no_grad():
        wrong.U.mul_(1 - lr * wd)
        wrong.U_inv.div_(1 - lr * wd)
        wrong.omega.mul_(1 - lr * wd)
        wrong.Q.mul_((1 - lr * wd) ** 2)
        wrong.w_bar.mul_(1 - lr * wd)
        wrong._update(stash.h, stash.target, stash.grad_a, stash.grad_q, stash.grad_s, lr)
    layer.sgd_step(lr, wd)
    assert (wrong.weight_augmented() - layer.weight_augmented()).abs().max() > 1e-9
    assert (layer.weight_augmented() - before).abs().max() > 1e-4


def test_gradient_accumulation_over_two_backwards_is_exact() -> None:
    g = torch.Generator().manual_seed(3)
    layer = FactoredSphericalLinear(6, 40, dtype=f64, generator=g, stabilize_every=0)
    dense = layer.to_linear()
    opt = torch.optim.SGD(dense.parameters(), lr=0.2)
    h = torch.randn(8, 6, generator=g, dtype=f64)
    t = torch.randint(0, 40, (8,), generator=g)
    for half in (slice(0, 4), slice(4, 8)):
        z_loss_from_stats(*layer(h[half], t[half]), 40, reduction="sum").backward()
        z_loss(dense(h[half]), t[half], reduction="sum").backward()
    opt.step()
    layer.sgd_step(0.2)
    assert (layer.weight() - dense.weight).abs().max() < 1e-10


def test_other_spherical_losses_train_exactly_too() -> None:
    g = torch.Generator().manual_seed(4)
    layer = FactoredSphericalLinear(5, 30, dtype=f64, generator=g, stabilize_every=0)
    dense = layer.to_linear()
    opt = torch.optim.SGD(dense.parameters(), lr=0.05)
    for _ in range(10):
        h = torch.randn(4, 5, generator=g, dtype=f64)
        t = torch.randint(0, 30, (4,), generator=g)
        log_taylor_softmax_loss_from_stats(*layer(h, t), 30).backward()
        opt.zero_grad()
        log_taylor_softmax_loss(dense(h), t).backward()
        opt.step()
        layer.sgd_step(0.05)
    assert (layer.weight() - dense.weight).abs().max() < 1e-10


def _ill_conditioned(layer: FactoredSphericalLinear) -> torch.Tensor:
    """Make U ill-conditioned without changing W: U ← S U, V ← V S⁻¹."""
    w_before = layer.weight_augmented()
    d = layer.augmented_features
    g = torch.Generator().manual_seed(5)
    basis, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=layer.U.dtype))
    scales = torch.ones(d, dtype=layer.U.dtype)
    scales[0], scales[1] = 50.0, 0.01
    s = basis @ torch.diag(scales) @ basis.T
    with torch.no_grad():
        layer.U.copy_(s @ layer.U)
        layer.V.copy_(layer.V @ torch.linalg.inv(s))
        layer.U_inv.copy_(torch.linalg.inv(layer.U))
    torch.testing.assert_close(layer.weight_augmented(), w_before, rtol=0, atol=1e-12)
    return w_before


def test_stabilize_fixes_singular_values_without_changing_w() -> None:
    layer = FactoredSphericalLinear(8, 60, dtype=f64, generator=torch.Generator().manual_seed(0))
    w_before = _ill_conditioned(layer)
    assert layer.stabilize() == 2
    sv = torch.linalg.svdvals(layer.U)
    assert bool(((sv >= 0.5 - 1e-9) & (sv <= 2.0 + 1e-9)).all())
    assert (layer.weight_augmented() - w_before).abs().max() < 1e-10
    layer.check_invariants(atol=1e-9)


def test_unfactorize_resets_the_factors_without_changing_w() -> None:
    layer = FactoredSphericalLinear(8, 60, dtype=f64, generator=torch.Generator().manual_seed(0))
    w_before = _ill_conditioned(layer)
    layer.unfactorize()
    assert torch.equal(layer.U, torch.eye(9, dtype=f64))
    assert torch.equal(layer.U_inv, torch.eye(9, dtype=f64))
    assert (layer.weight_augmented() - w_before).abs().max() < 1e-10
    layer.check_invariants(atol=1e-9)


def test_stabilizing_every_step_keeps_training_exact() -> None:
    g = torch.Generator().manual_seed(6)
    layer = FactoredSphericalLinear(6, 40, dtype=f64, generator=g, stabilize_every=1)
    dense = layer.to_linear()
    opt = torch.optim.SGD(dense.parameters(), lr=2.0, weight_decay=0.2)
    for _ in range(30):
        h = 3 * torch.randn(5, 6, generator=g, dtype=f64)
        t = torch.randint(0, 40, (5,), generator=g)
        z_loss_from_stats(*layer(h, t), 40).backward()
        opt.zero_grad()
        z_loss(dense(h), t).backward()
        opt.step()
        layer.sgd_step(2.0, 0.2)
    # weight decay alone would shrink σ(U) to 0.6^30 ≈ 2e-7; stabilisation kept it in range
    assert float(torch.linalg.svdvals(layer.U).min()) > 0.25
    assert (layer.weight() - dense.weight).abs().max() < 1e-9
    layer.check_invariants(atol=1e-9)


def test_topk_and_logits_match_the_dense_layer() -> None:
    g = torch.Generator().manual_seed(7)
    layer = FactoredSphericalLinear(5, 300, generator=g)
    h = torch.randn(6, 5, generator=g)
    dense = layer.to_linear()(h)
    torch.testing.assert_close(layer.logits(h), dense, rtol=1e-5, atol=1e-5)
    vals, idx = layer.topk(h, 7, chunk_size=64)
    ref_vals, ref_idx = dense.topk(7, dim=1)
    torch.testing.assert_close(vals, ref_vals, rtol=1e-5, atol=1e-5)
    assert torch.equal(idx, ref_idx)


def test_from_linear_and_to_linear_round_trip() -> None:
    lin = torch.nn.Linear(4, 20, dtype=f64)
    layer = FactoredSphericalLinear.from_linear(lin, bias_value=0.5)
    back = layer.to_linear()
    torch.testing.assert_close(back.weight, lin.weight, rtol=0, atol=1e-14)
    assert back.bias is not None and lin.bias is not None
    torch.testing.assert_close(back.bias, lin.bias, rtol=0, atol=1e-14)
    h = torch.randn(3, 4, dtype=f64)
    t = torch.tensor([1, 5, 19])
    a, q, s = layer(h, t)
    o = lin(h)
    torch.testing.assert_close(a[:, 0], o.gather(1, t[:, None])[:, 0])
    torch.testing.assert_close(q, o.square().sum(1))
    torch.testing.assert_close(s, o.sum(1))


def test_bias_value_sets_the_bias_learning_rate() -> None:
    """With the reference's v = 0.001 the bias moves η v² as fast: only v = 1 equals nn.Linear."""
    lin = torch.nn.Linear(4, 20, dtype=f64)
    slow = FactoredSphericalLinear.from_linear(lin, bias_value=0.001)
    exact = FactoredSphericalLinear.from_linear(lin, bias_value=1.0)
    h = torch.randn(8, 4, dtype=f64)
    t = torch.randint(0, 20, (8,))
    for layer in (slow, exact):
        z_loss_from_stats(*layer(h, t), 20).backward()
        layer.sgd_step(0.5)
    moved_slow = (slow.bias() - lin.bias).abs().max()  # type: ignore[operator]
    moved_exact = (exact.bias() - lin.bias).abs().max()  # type: ignore[operator]
    assert moved_slow < 1e-5 * moved_exact


class _NoLargeTensor(TorchDispatchMode):
    """Fails on any op whose output has ``limit`` or more elements."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.biggest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t is not args[0]:
                self.biggest = max(self.biggest, t.numel())
                assert t.numel() < self.limit, f"{func} made a tensor of {t.numel()} elements"
        return out


@pytest.mark.parametrize(("k", "inverse"), [(1, "woodbury"), (3, "recompute")])
def test_a_training_step_never_allocates_a_classes_by_batch_tensor(k: int, inverse: str) -> None:
    d_out, d_in, m = 20000, 15, 64  # D·m = 1.28M, while V has D·(d+1) = 320k elements
    head = FactoredZLossHead(d_in, d_out, stabilize_every=1, inverse=inverse)
    body = torch.nn.Linear(d_in, d_in)
    x = torch.randn(m, d_in)
    t = torch.randint(0, d_out, (m, k)) if k > 1 else torch.randint(0, d_out, (m,))
    limit = d_out * m // 2  # each backward sees m/2 examples
    with _NoLargeTensor(limit) as guard:
        for half in (slice(0, m // 2), slice(m // 2, m)):  # two backwards, one step
            loss = head(body(x[half]), t[half])
            loss.backward()
        head.sgd_step(0.1, weight_decay=1e-4)  # includes stabilize (stabilize_every=1)
    assert guard.biggest < limit
    assert head.layer.num_updates == 1
    with pytest.raises(AssertionError, match="elements"), _NoLargeTensor(d_out * m):
        head.logits(x)  # the guard itself can fail: full logits are D·m


@pytest.mark.slow
def test_step_arithmetic_does_not_grow_with_the_number_of_classes() -> None:
    """A factored step's multiply-adds are independent of D (counted, not timed: speed lives in
    the benchmark); only the m touched rows of the D-sized factor are read or written."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    flops = {}
    for d_out in (20000, 200000):
        head = FactoredZLossHead(64, d_out, stabilize_every=0)
        h = torch.randn(64, 64)
        t = torch.randint(0, d_out, (64,))
        head(h, t).backward()
        head.sgd_step(0.01)
        with FlopCounterMode(display=False) as counter:
            head(h, t).backward()
            head.sgd_step(0.01)
        flops[d_out] = counter.get_total_flops()
    assert flops[20000] > 0
    assert flops[200000] == flops[20000], flops


# ----------------------------------------------------------------------------- bad input


def test_h_with_the_wrong_width_is_rejected() -> None:
    layer = FactoredSphericalLinear(4, 10)
    with pytest.raises(ValueError, match=r"h: expected shape \(B, in_features=4\)"):
        layer(torch.randn(3, 5), torch.zeros(3, dtype=torch.long))


def test_h_of_another_dtype_is_rejected() -> None:
    layer = FactoredSphericalLinear(4, 10)
    with pytest.raises(TypeError, match=r"h has dtype torch\.float64"):
        layer(torch.randn(3, 4, dtype=f64), torch.zeros(3, dtype=torch.long))


def test_h_under_autocast_is_cast_to_the_layer_dtype() -> None:
    layer = FactoredSphericalLinear(4, 10)
    h = torch.randn(3, 4)
    t = torch.tensor([1, 2, 3])
    ref = layer(h, t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(h.bfloat16(), t)
    assert out.sq_sum.dtype == torch.float32
    torch.testing.assert_close(out.sq_sum, ref.sq_sum, rtol=2e-2, atol=2e-2)


def test_h_on_another_device_is_rejected() -> None:
    layer = FactoredSphericalLinear(4, 10, device="meta")
    with pytest.raises(ValueError, match="h is on cpu but the layer is on meta"):
        layer(torch.randn(3, 4), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_h_is_rejected(value: float) -> None:
    h = torch.randn(3, 4)
    h[0, 0] = value
    with pytest.raises(ValueError, match="h: expected finite values, got NaN or inf"):
        FactoredSphericalLinear(4, 10)(h, torch.zeros(3, dtype=torch.long))


def test_target_out_of_range_is_rejected_by_the_layer() -> None:
    with pytest.raises(
        ValueError, match=r"target: expected labels in \[0, 10\), got range \[3, 10\]"
    ):
        FactoredSphericalLinear(4, 10)(torch.randn(2, 4), torch.tensor([3, 10]))


def test_sgd_step_before_backward_is_rejected() -> None:
    layer = FactoredSphericalLinear(4, 10)
    with pytest.raises(RuntimeError, match=r"call loss\.backward\(\) first"):
        layer.sgd_step(0.1)
    layer(torch.randn(2, 4), torch.tensor([1, 2]))  # forward only
    with pytest.raises(RuntimeError, match=r"call loss\.backward\(\) first"):
        layer.sgd_step(0.1)


def test_a_second_sgd_step_for_one_backward_is_rejected() -> None:
    layer = FactoredSphericalLinear(4, 10)
    z_loss_from_stats(*layer(torch.randn(2, 4), torch.tensor([1, 2])), 10).backward()
    layer.sgd_step(0.1)
    with pytest.raises(RuntimeError, match=r"call loss\.backward\(\) first"):
        layer.sgd_step(0.1)


def test_a_step_between_forward_and_backward_is_rejected() -> None:
    layer = FactoredSphericalLinear(4, 10)
    z_loss_from_stats(*layer(torch.randn(2, 4), torch.tensor([1, 2])), 10).backward()
    pending = z_loss_from_stats(*layer(torch.randn(2, 4), torch.tensor([1, 2])), 10)
    layer.sgd_step(0.1)
    with pytest.raises(
        RuntimeError, match=r"updated \(sgd_step\) between this forward and its backward"
    ):
        pending.backward()


def test_non_sgd_optimizers_are_refused_with_an_explanation() -> None:
    head = FactoredZLossHead(4, 10)
    with pytest.raises(ValueError, match="plain SGD only"):
        FactoredSGD(head, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="plain SGD only"):
        FactoredSGD(head, lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="FactoredSGD updates a FactoredSphericalLinear"):
        FactoredSGD(torch.nn.Linear(4, 10), lr=0.1)


@pytest.mark.parametrize(
    "make", [lambda: FactoredZLossHead(4, 10), lambda: FactoredSphericalLinear(4, 10)]
)
def test_a_torch_optimizer_on_the_head_is_refused_with_a_hint_to_factored_sgd(
    make: Callable[[], torch.nn.Module],
) -> None:
    """``Adam(head.parameters())`` names FactoredSGD (torch alone says "empty parameter list")."""
    with pytest.raises(TypeError, match=r"no nn\.Parameters.*FactoredSGD\(head, lr=\.\.\.\)"):
        torch.optim.Adam(make().parameters())


def test_a_model_holding_the_head_gives_the_optimizer_only_the_body() -> None:
    body = torch.nn.Linear(4, 4)
    model = torch.nn.Sequential(body, FactoredSphericalLinear(4, 10))
    assert [p.data_ptr() for p in model.parameters()] == [p.data_ptr() for p in body.parameters()]
    torch.optim.Adam(model.parameters())  # the body alone; the head steps with FactoredSGD


def test_factored_sgd_steps_and_zero_grad() -> None:
    head = FactoredZLossHead(4, 10, dtype=f64)
    opt = FactoredSGD(head, lr=0.5)
    before = head.layer.weight()
    head(torch.randn(3, 4, dtype=f64), torch.tensor([1, 2, 3])).backward()
    opt.zero_grad()
    assert not head.layer.has_pending_update
    head(torch.randn(3, 4, dtype=f64), torch.tensor([1, 2, 3])).backward()
    opt.step()
    assert (head.layer.weight() - before).abs().max() > 1e-4


def test_bad_hyper_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="num_classes: expected an integer >= 2, got 1"):
        FactoredSphericalLinear(4, 1)
    with pytest.raises(
        ValueError, match=r"inverse: expected one of \['woodbury', 'recompute'\], got 'svd'"
    ):
        FactoredSphericalLinear(4, 10, inverse="svd")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype: expected torch.float32 or torch.float64"):
        FactoredSphericalLinear(4, 10, dtype=torch.float16)
    with pytest.raises(ValueError, match="a: expected a finite value > 0"):
        FactoredZLossHead(4, 10, a=0.0)
    layer = FactoredSphericalLinear(4, 10)
    z_loss_from_stats(*layer(torch.randn(2, 4), torch.tensor([1, 2])), 10).backward()
    with pytest.raises(ValueError, match="lr: expected a finite value >= 0, got -1.0"):
        layer.sgd_step(-1.0)
    with pytest.raises(ValueError, match=r"lr \* weight_decay: expected a value < 1"):
        layer.sgd_step(1.0, weight_decay=1.0)


def test_nonfinite_gradients_are_refused_and_leave_the_state_untouched() -> None:
    layer = FactoredSphericalLinear(4, 10, dtype=f64, generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in layer.state_dict().items() if k != "_extra_state"}
    a, _, _ = layer(torch.randn(5, 4, dtype=f64), torch.tensor([1, 2, 3, 4, 5]))
    (a.sum() * float("nan")).backward()  # a NaN loss: NaN gradients on the target outputs
    with pytest.raises(ValueError, match="stashed by backward contain NaN or Inf"):
        layer.sgd_step(0.1)
    for k, v in layer.state_dict().items():
        if k != "_extra_state":
            assert torch.equal(v, before[k]), k  # without the check V became NaN
    assert not layer.has_pending_update and layer.num_updates == 0


def test_learning_rates_that_are_not_numbers_are_rejected_by_name() -> None:
    layer = FactoredSphericalLinear(4, 10)
    z_loss_from_stats(*layer(torch.randn(2, 4), torch.tensor([1, 2])), 10).backward()
    with pytest.raises(TypeError, match="lr: expected a real number, got str"):
        layer.sgd_step("0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="weight_decay: expected a real number, got NoneType"):
        layer.sgd_step(0.1, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lr: expected a real number, got str"):
        FactoredSGD(layer, lr="0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bias_value: expected a real number, got str"):
        FactoredSphericalLinear(4, 10, bias_value="1")  # type: ignore[arg-type]
    layer.sgd_step(torch.tensor(0.1))  # type: ignore[arg-type]  # a 0-d tensor rate still works


def test_a_half_precision_state_is_refused_with_an_explanation() -> None:
    layer = FactoredSphericalLinear(4, 10).half()  # the constructor refuses float16; .half() not
    with pytest.raises(TypeError, match=r"layer's state is torch\.float16"):
        layer(torch.randn(2, 4).half(), torch.tensor([1, 2]))


def test_from_linear_refuses_nonfinite_weights_and_a_bias_keyword() -> None:
    lin = torch.nn.Linear(4, 10)
    with pytest.raises(TypeError, match="from_linear takes bias from linear"):
        FactoredSphericalLinear.from_linear(lin, bias=False)
    with torch.no_grad():
        lin.bias[3] = float("inf")
    with pytest.raises(ValueError, match=r"linear\.bias: expected finite values"):
        FactoredSphericalLinear.from_linear(lin)
    with torch.no_grad():
        lin.bias.zero_()
        lin.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"linear\.weight: expected finite values"):
        FactoredSphericalLinear.from_linear(lin)


@pytest.mark.parametrize("bias", [True, False])
def test_dense_export_import_round_trip_after_training(bias: bool) -> None:
    """to_linear -> from_linear of a trained (factored, U != I) layer: same W, and training both
    copies on from there stays equal (the import rebuilds Q and w̄ exactly)."""
    g = torch.Generator().manual_seed(8)
    layer = FactoredSphericalLinear(5, 40, bias=bias, dtype=f64, generator=g, stabilize_every=0)
    for _ in range(5):
        h, t = torch.randn(6, 5, generator=g, dtype=f64), torch.randint(0, 40, (6, 2), generator=g)
        z_loss_from_stats(*layer(h, t), 40).backward()
        layer.sgd_step(0.5, 0.01)
    assert (layer.U - torch.eye(layer.augmented_features, dtype=f64)).abs().max() > 1e-3
    lin = layer.to_linear()
    assert (lin.bias is not None) == bias
    copy = FactoredSphericalLinear.from_linear(lin, stabilize_every=0)
    assert copy.V.dtype == f64 and copy.has_bias == bias
    torch.testing.assert_close(
        copy.weight_augmented(), layer.weight_augmented(), rtol=0, atol=1e-13
    )
    copy.check_invariants(atol=1e-12)
    for _ in range(5):
        h, t = torch.randn(6, 5, generator=g, dtype=f64), torch.randint(0, 40, (6,), generator=g)
        for x in (layer, copy):
            z_loss_from_stats(*x(h, t), 40).backward()
            x.sgd_step(0.5, 0.01)
    torch.testing.assert_close(
        copy.weight_augmented(), layer.weight_augmented(), rtol=0, atol=1e-11
    )


def test_state_dict_mid_training_resumes_exactly() -> None:
    """Every buffer (V, U, U⁻¹, ω, Q = WᵀW, w̄ = Wᵀ1) and the update counter that schedules
    stabilize() survive a save/load: training on from the copy is bit-identical."""
    import io

    g = torch.Generator().manual_seed(9)
    kw: dict[str, Any] = {"dtype": f64, "stabilize_every": 3}
    first = FactoredZLossHead(4, 30, a=2.0, b=1.0, generator=g, **kw)
    opt = FactoredSGD(first, lr=3.0, weight_decay=0.05)  # decay 0.85 per step: σ(U) leaves [.5, 2]

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(6, 4, generator=g, dtype=f64), torch.randint(0, 30, (6,), generator=g)

    for _ in range(4):  # 4 updates: the next stabilize() is due at update 6
        first(*batch()).backward()
        opt.step()
    buf = io.BytesIO()
    torch.save({"head": first.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    second = FactoredZLossHead(4, 30, a=2.0, b=1.0, **kw)
    second.load_state_dict(saved["head"])
    opt2 = FactoredSGD(second, lr=0.0)
    opt2.load_state_dict(saved["opt"])
    assert second.layer.num_updates == 4 and opt2.lr == 3.0 and opt2.weight_decay == 0.05
    # control: the same state with the counter lost stabilises at other updates and drifts apart
    third = FactoredZLossHead(4, 30, a=2.0, b=1.0, **kw)
    third.load_state_dict(saved["head"])
    third.layer.num_updates = 0
    for _ in range(5):
        h, t = batch()
        for head in (first, second, third):
            head(h, t).backward()
            head.sgd_step(3.0, 0.05)
    sd2 = second.state_dict()
    for name, a in first.state_dict().items():
        b = sd2[name]
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), name
    assert first.layer.num_updates == second.layer.num_updates == 9
    assert not torch.equal(first.layer.U, third.layer.U)
    first.layer.check_invariants(atol=1e-9)


def test_loading_a_state_drops_pending_gradients_and_graphs() -> None:
    """Gradients and graphs computed for the old state must not be applied to the loaded one."""
    layer = FactoredSphericalLinear(4, 10, dtype=f64)
    other = FactoredSphericalLinear(4, 10, dtype=f64, generator=torch.Generator().manual_seed(1))
    h, t = torch.randn(3, 4, dtype=f64), torch.tensor([1, 2, 3])
    z_loss_from_stats(*layer(h, t), 10).backward()
    pending = z_loss_from_stats(*layer(h, t), 10)
    layer.load_state_dict(other.state_dict())
    with pytest.raises(RuntimeError, match=r"call loss\.backward\(\) first"):
        layer.sgd_step(0.1)
    with pytest.raises(RuntimeError, match="between this forward and its backward"):
        pending.backward()


def test_loading_a_state_saved_with_another_bias_value_is_refused() -> None:
    """V holds the bias divided by v: the same buffers under another v are another layer."""
    saved = FactoredSphericalLinear(4, 10, bias_value=0.001).state_dict()
    layer = FactoredSphericalLinear(4, 10)
    before = layer.V.clone()
    with pytest.raises(ValueError, match=r"saved with bias_value=0\.001 but this layer has"):
        layer.load_state_dict(saved)
    assert torch.equal(layer.V, before)  # refused before any buffer was overwritten
    same = FactoredSphericalLinear(4, 10, bias_value=0.001)
    same.load_state_dict(saved)
    old_format = dict(saved, _extra_state={"num_updates": 7})  # a checkpoint without bias_value
    layer.load_state_dict(old_format)
    assert layer.num_updates == 7


def test_many_unapplied_backwards_warn_about_memory() -> None:
    """A head that is never stepped (body-only training without zero_grad) keeps every stash."""
    layer = FactoredSphericalLinear(3, 10)
    h, t = torch.randn(2, 3), torch.tensor([1, 2])
    for _ in range(99):
        z_loss_from_stats(*layer(h, t), 10).backward()
    with pytest.warns(RuntimeWarning, match="gradients of 100 backward passes"):
        z_loss_from_stats(*layer(h, t), 10).backward()
    layer.zero_grad_stash()
    assert not layer.has_pending_update


def test_many_targets_per_example_bound_the_comparison_matrix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ẏ Ẏᵀ compares all m·K targets pairwise; with many targets that (mK)² matrix is built in
    blocks of rows (here forced small) and the update stays exact."""
    import paperzoo.zloss.factored as factored

    d_out, d_in, m, k = 50, 7, 32, 16  # (m K)² = 262144 elements in one piece
    g = torch.Generator().manual_seed(12)
    layer = FactoredSphericalLinear(d_in, d_out, dtype=f64, stabilize_every=0, generator=g)
    dense = layer.to_linear()
    opt = torch.optim.SGD(dense.parameters(), lr=0.1)
    h = torch.randn(m, d_in, generator=g, dtype=f64)
    t = torch.randint(0, d_out, (m, k), generator=g)  # many duplicates within and across rows
    z_loss_from_stats(*layer(h, t), d_out).backward()
    z_loss(dense(h), t).backward()
    opt.step()
    monkeypatch.setattr(factored, "_YY_BLOCK", 10_000, raising=False)
    with _NoLargeTensor(100_000):
        layer.sgd_step(0.1)
    assert (layer.weight() - dense.weight).abs().max() < 1e-12
    layer.check_invariants(atol=1e-10)


@pytest.mark.parametrize(("low", "high"), [(0.0, 2.0), (1.5, 2.0), (0.5, 0.8), (0.5, math.inf)])
def test_stabilize_range_must_hold_one(low: float, high: float) -> None:
    """Each out-of-range singular value is mapped to 1, so [low, high] must contain 1."""
    layer = FactoredSphericalLinear(4, 10, dtype=f64)
    before = layer.U.clone()
    with pytest.raises(ValueError, match=r"0 < low <= 1 <= high < inf"):
        layer.stabilize(low, high)
    assert torch.equal(layer.U, before)


@pytest.mark.parametrize(
    ("m", "k", "inverse", "weight_decay"),
    [
        (40, 1, "woodbury", 0.0),
        (5, 2, "woodbury", 0.1),
        (40, 3, "recompute", 0.0),
        (12, 1, "woodbury", 0.0),
    ],
)
def test_default_update_equals_the_reference_m_by_m_update(
    m: int, k: int, inverse: str, weight_decay: float
) -> None:
    # m = 40 > d~ = 9 takes the d~ x d~ Woodbury solve, m = 5 the m x m one; repeated targets
    # (D = 30 < m K) exercise the duplicate accumulation of Y Y^T. float64, eight steps.
    g = torch.Generator().manual_seed(11)
    fast = FactoredSphericalLinear(
        8, 30, dtype=f64, stabilize_every=0, inverse=inverse, generator=g
    )  # type: ignore[arg-type]
    ref = FactoredSphericalLinear.from_linear(fast.to_linear(), stabilize_every=0, inverse=inverse)  # type: ignore[arg-type]
    ref._reference_update = True
    init = fast.weight_augmented()
    for step in range(8):
        h = torch.randn(m, 8, generator=g, dtype=f64)
        t = torch.randint(0, 30, (m, k), generator=g)
        for layer in (fast, ref):
            z_loss_from_stats(*layer(h, t), 30, a=0.5, b=0.1).backward()
            layer.sgd_step(0.3 + 0.05 * step, weight_decay)
    for name in ("V", "U", "U_inv", "omega", "Q", "w_bar"):
        torch.testing.assert_close(getattr(fast, name), getattr(ref, name), rtol=1e-10, atol=1e-12)
    assert (fast.weight_augmented() - init).abs().max() > 1e-3  # the steps moved W
    fast.check_invariants(atol=1e-9)
