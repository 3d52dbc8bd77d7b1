"""Review audit: half precision, target/lambda formats, hinge kinks, ALDR-KL resume and duplicates."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.ldr import (
    ALDRKLLoss,
    aldr_kl_loss,
    crammer_singer_loss,
    gce_loss,
    ldr_kl_loss,
    mae_loss,
    margin_differences,
    normalize_scores,
    weston_watkins_loss,
    worst_case_distribution,
)

NORMS = ("softplus_mean", "l1", "softplus_l1", "none")
HALF = (torch.float16, torch.bfloat16)
Y = torch.tensor([0, 1, 2, 4])


def _rows(dtype: torch.dtype) -> Tensor:
    """All-zero, all-equal, very negative and ordinary rows (K = 5), exactly representable."""
    return torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [3.0, 3.0, 3.0, 3.0, 3.0],
            [-30.0, -40.0, -30.0, -35.0, -50.0],
            [1.5, -0.5, 2.0, 0.25, -1.0],
        ],
        dtype=dtype,
    )


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("normalize", NORMS)
def test_half_precision_extreme_rows_are_finite_and_match_float32(
    dtype: torch.dtype, normalize: str
) -> None:
    """EPS = 1e-12 underflows to 0 in float16 and softplus(-30) too: both gave 0/0 = NaN before
    the losses computed 16-bit inputs in float32. Results keep the input's dtype."""
    losses: list[Callable[[Tensor], Tensor]] = [
        lambda f: ldr_kl_loss(f, Y, normalize=normalize, reduction="none"),
        lambda f: crammer_singer_loss(f, Y, normalize=normalize, reduction="none"),
        lambda f: weston_watkins_loss(f, Y, normalize=normalize, reduction="none"),
        lambda f: ALDRKLLoss(4, normalize=normalize, reduction="none")(f, Y, torch.arange(4)),
        lambda f: worst_case_distribution(f, Y, normalize=normalize),
        lambda f: normalize_scores(f, normalize),
    ]
    for fn in losses:
        half = _rows(dtype).requires_grad_(True)
        out = fn(half)
        assert out.dtype == dtype
        assert bool(torch.isfinite(out).all())
        full = _rows(torch.float32).requires_grad_(True)
        expected = fn(full)
        torch.testing.assert_close(out.float(), expected.detach().to(dtype).float())
        if out.requires_grad:
            out.float().sum().backward()
            expected.sum().backward()
            assert half.grad is not None and full.grad is not None
            assert half.grad.dtype == dtype
            # 'l1' is scale invariant, so its gradient grows as 1 / mean|f|: at f = 0 it is about
            # 1 / EPS = 1e12 (finite in float32, inf in float16); compare the other rows there.
            rows = slice(1, None) if normalize == "l1" else slice(None)
            assert bool(torch.isfinite(half.grad[rows]).all())
            torch.testing.assert_close(half.grad[rows].float(), full.grad[rows].to(dtype).float())


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("lam", [1e-8, 1e5, 1e6])
def test_half_precision_accepts_lambdas_outside_the_half_range(
    dtype: torch.dtype, lam: float
) -> None:
    """lam > 65504 overflowed float16 (RuntimeError) and lam < 6e-8 became 0 (NaN)."""
    f = _rows(torch.float32)[3:].repeat(4, 1) * torch.arange(1.0, 5.0).unsqueeze(1)
    got = ldr_kl_loss(f.to(dtype), Y, lam=lam, normalize="none", reduction="none")
    expected = ldr_kl_loss(f.to(dtype).float(), Y, lam=lam, normalize="none", reduction="none")
    assert got.dtype == dtype
    torch.testing.assert_close(got.float(), expected.to(dtype).float())


def test_float32_is_computed_in_float32_unchanged() -> None:
    """The upcast is a no-op for float32/float64: the value is the plain formula."""
    f = _rows(torch.float32)
    s = f / (f.abs().mean(dim=1, keepdim=True) + 1e-12)
    z = (s - s.gather(1, Y[:, None]) + 0.1).scatter(1, Y[:, None], 0.0)
    expected = 10.0 * (torch.logsumexp(z / 10.0, dim=1) - torch.log(torch.tensor(5.0)))
    got = ldr_kl_loss(f, Y, normalize="l1", reduction="none")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)


def test_bool_one_hot_target_equals_class_indices() -> None:
    """A bool one-hot passed validation and then crashed in argmax (no bool kernel)."""
    f = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    one_hot = F.one_hot(Y, 5).bool()
    for fn in (ldr_kl_loss, crammer_singer_loss, weston_watkins_loss, gce_loss, mae_loss):
        torch.testing.assert_close(fn(f, one_hot), fn(f, Y))
    torch.testing.assert_close(
        ALDRKLLoss(4)(f, one_hot, torch.arange(4)), ALDRKLLoss(4)(f, Y, torch.arange(4))
    )


@pytest.mark.parametrize(
    ("lambdas", "error", "match"),
    [
        (torch.full((4,), -1.0), ValueError, "lambdas must be finite and > 0"),
        (torch.tensor([10.0, 0.0, 10.0, 10.0]), ValueError, "lambdas must be finite and > 0"),
        (torch.tensor([10.0, float("nan"), 10.0, 10.0]), ValueError, "lambdas must be finite"),
        (torch.full((4,), 10), ValueError, r"lambdas must be floating with shape \(4,\)"),
        (torch.full((3,), 10.0), ValueError, r"lambdas must be floating with shape \(4,\)"),
        ([10.0] * 4, TypeError, r"lambdas must be a \(4,\) tensor"),
    ],
)
def test_functional_aldr_checks_the_stored_lambdas(
    lambdas: object, error: type[Exception], match: str
) -> None:
    """Negative or zero stored lambdas used to give a silent, meaningless loss."""
    with pytest.raises(error, match=match):
        aldr_kl_loss(torch.randn(4, 5), Y, lambdas)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("logits", "target", "error", "match"),
    [
        (torch.randn(4), Y, ValueError, "logits must have shape"),
        (torch.randn(4, 1), torch.zeros(4, dtype=torch.long), ValueError, "K >= 2"),
        (torch.randn(0, 5), Y[:0], ValueError, "empty batch"),
        (torch.ones(4, 5, dtype=torch.long), Y, TypeError, "floating dtype"),
        (torch.randn(4, 5), torch.tensor([0, 1, 2, 5]), ValueError, "target class indices"),
        (torch.randn(4, 5), Y[:3], ValueError, "target has shape"),
        (torch.randn(4, 5), Y.float(), TypeError, "integer dtype"),
        (torch.randn(4, 5), torch.full((4, 5), 0.2), ValueError, "soft labels"),
        (torch.full((4, 5), float("nan")), Y, ValueError, "NaN or Inf"),
        (torch.full((4, 5), float("-inf")), Y, ValueError, "NaN or Inf"),
    ],
)
def test_comparison_losses_reject_bad_input(
    logits: Tensor, target: Tensor, error: type[Exception], match: str
) -> None:
    for fn in (gce_loss, mae_loss):
        with pytest.raises(error, match=match):
            fn(logits, target)


@pytest.mark.parametrize(
    ("q", "error", "match"),
    [
        (0.0, ValueError, "q must be finite and > 0"),
        (-0.5, ValueError, "q must be finite and > 0"),
        (1.5, ValueError, r"q must lie in \(0, 1\]"),
        (float("nan"), ValueError, "q must be finite"),
        (True, TypeError, "q must be a real number"),
        (torch.tensor(0.7), TypeError, "q must be a real number"),
    ],
)
def test_gce_rejects_bad_q(q: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        gce_loss(torch.randn(4, 5), Y, q=q)  # type: ignore[arg-type]


def _kink_rows() -> tuple[Tensor, Tensor]:
    """Rows at the hinges' kinks (margin 1, integers, so the ties are exact in float64)."""
    f = torch.tensor(
        [
            [1.0, 0.0, 0.0, -2.0],  # y=0: two hinge terms exactly at 0, CS max tied with z_y = 0
            [0.0, 3.0, 3.0, 1.0],  # y=1: z = (-2, 0, 1, -1): one at the kink, CS max unique
            [2.0, 2.0, 2.0, 2.0],  # y=2: all equal, every hinge term = 1 (CS ties everywhere)
            [0.0, 1.0, 1.0, 0.0],  # y=3: z = (1, 2, 2, 0): CS max tied between two classes
        ],
        dtype=torch.float64,
    )
    return f, torch.tensor([0, 1, 2, 3])


@pytest.mark.parametrize("fn", [crammer_singer_loss, weston_watkins_loss])
def test_hinge_gradients_at_kinks_are_subgradients(fn: Callable[..., Tensor]) -> None:
    """Convexity: l(f + d) >= l(f) + <g, d> for every d when g is a subgradient at f."""
    f, y = _kink_rows()
    x = f.clone().requires_grad_(True)
    fn(x, y, 1.0, reduction="sum").backward()
    assert x.grad is not None
    g = torch.Generator().manual_seed(0)
    base = fn(f, y, 1.0, reduction="none")
    for _ in range(200):
        d = 1e-3 * torch.randn(f.shape, generator=g, dtype=torch.float64)
        moved = fn(f + d, y, 1.0, reduction="none")
        assert bool((moved - base >= (x.grad * d).sum(dim=1) - 1e-12).all())


def test_crammer_singer_values_at_kinks() -> None:
    f, y = _kink_rows()
    torch.testing.assert_close(
        crammer_singer_loss(f, y, 1.0, reduction="none"),
        torch.tensor([0.0, 1.0, 1.0, 2.0], dtype=torch.float64),
    )
    torch.testing.assert_close(
        weston_watkins_loss(f, y, 1.0, reduction="none"),
        torch.tensor([0.0, 1.0, 3.0, 5.0], dtype=torch.float64),
    )


def test_crammer_singer_kink_gradient_is_the_small_lambda_limit_of_ldr_kl() -> None:
    """At ties, LDR-KL's gradient softmax(z/lam) - e_y splits evenly between the tied maxima for
    every lam; Crammer-Singer (its lam -> 0 limit) returns that same subgradient."""
    f, y = _kink_rows()
    cs = f.clone().requires_grad_(True)
    crammer_singer_loss(cs, y, 1.0, reduction="sum").backward()
    ldr = f.clone().requires_grad_(True)
    ldr_kl_loss(ldr, y, 1e-3, 1.0, "none", reduction="sum").backward()
    assert cs.grad is not None and ldr.grad is not None
    torch.testing.assert_close(cs.grad, ldr.grad, atol=1e-9, rtol=0)


def test_aldr_resumes_exactly_from_a_checkpoint() -> None:
    """Four steps in one go == two steps, save/load the state_dict into a fresh module, two more."""
    g = torch.Generator().manual_seed(3)
    n, batch = 12, 6
    steps = [
        (3 * torch.randn(batch, 7, generator=g), torch.randint(0, 7, (batch,), generator=g))
        for _ in range(4)
    ]
    order = [torch.randperm(n, generator=g)[:batch] for _ in range(4)]
    straight = ALDRKLLoss(n)
    want = [straight(f, y, i) for (f, y), i in zip(steps, order, strict=True)]
    first = ALDRKLLoss(n)
    for (f, y), i in zip(steps[:2], order[:2], strict=True):
        first(f, y, i)
    buffer = io.BytesIO()
    torch.save({"loss": first.state_dict()}, buffer)
    buffer.seek(0)
    resumed = ALDRKLLoss(n)
    resumed.load_state_dict(torch.load(buffer, weights_only=True)["loss"])
    got = [resumed(f, y, i) for (f, y), i in zip(steps[2:], order[2:], strict=True)]
    assert torch.equal(torch.stack(got), torch.stack(want[2:]))
    assert torch.equal(resumed.lambdas, straight.lambdas)


def test_aldr_index_dtypes_give_the_same_table() -> None:
    f = 3 * torch.randn(4, 5, generator=torch.Generator().manual_seed(4))
    tables = []
    for dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
        loss_fn = ALDRKLLoss(9)
        loss_fn(f, Y, torch.tensor([8, 0, 5, 2], dtype=dtype))
        tables.append(loss_fn.lambdas)
    for table in tables[1:]:
        assert torch.equal(table, tables[0])


def test_duplicate_indices_keep_the_last_occurrence() -> None:
    """Two views of one example in a batch: each uses the stored lambda, the table keeps the last."""
    g = torch.Generator().manual_seed(5)
    f = 3 * torch.randn(6, 5, generator=g)
    y = torch.randint(0, 5, (6,), generator=g)
    index = torch.tensor([4, 1, 4, 0, 1, 4])
    loss_fn = ALDRKLLoss(6, reduction="none")
    loss_fn.lambdas.copy_(torch.tensor([9.0, 8.0, 7.0, 6.0, 5.5, 10.0]))
    before = loss_fn.lambdas.clone()
    got = loss_fn(f, y, index)
    fresh = aldr_kl_loss(f, y, before[index], reduction="none")
    torch.testing.assert_close(got, fresh)  # every occurrence read the stored value
    assert loss_fn.last_lambdas is not None
    new = loss_fn.last_lambdas
    assert loss_fn.lambdas[4] == new[5] and loss_fn.lambdas[1] == new[4]
    assert loss_fn.lambdas[0] == new[3]
    assert torch.equal(loss_fn.lambdas[[2, 3, 5]], before[[2, 3, 5]])


def test_target_and_index_on_another_device() -> None:
    """A target on another device is a clear error; an index is moved to the table's device."""
    f = torch.randn(4, 5)
    for fn in (ldr_kl_loss, crammer_singer_loss, weston_watkins_loss, gce_loss, mae_loss):
        with pytest.raises(ValueError, match="target is on meta but logits is on cpu"):
            fn(f, Y.to("meta"))
    with pytest.raises(ValueError, match="target is on meta"):
        ALDRKLLoss(4)(f, Y.to("meta"), torch.arange(4))


def test_public_helpers_check_their_inputs() -> None:
    """normalize_scores / margin_differences are public: clear errors, one-hot targets accepted."""
    s = torch.randn(4, 5)
    with pytest.raises(ValueError, match=r"logits must have shape \(B, K\)"):
        normalize_scores(torch.randn(5), "l1")
    with pytest.raises(TypeError, match="logits must be a torch.Tensor"):
        normalize_scores([[1.0, 2.0]], "l1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="logits must have a floating dtype"):
        normalize_scores(torch.ones(2, 3, dtype=torch.long), "l1")
    with pytest.raises(ValueError, match=r"scores must have shape \(B, K\)"):
        margin_differences(torch.randn(5), Y, 0.1)
    with pytest.raises(ValueError, match=r"target class indices must lie in \[0, 5\)"):
        margin_differences(s, torch.tensor([0, 1, 2, 7]), 0.1)
    with pytest.raises(ValueError, match="margin must be finite and >= 0"):
        margin_differences(s, Y, -1.0)
    torch.testing.assert_close(
        margin_differences(s, F.one_hot(Y, 5), 0.1), margin_differences(s, Y, 0.1)
    )
    z = margin_differences(s, Y, 0.1)
    expected = (s + 0.1 - s.gather(1, Y[:, None])).scatter(1, Y[:, None], 0.0)
    torch.testing.assert_close(z, expected)
