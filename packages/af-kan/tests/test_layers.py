"""AF-KAN / ReLU-KAN layer properties: attention, counts, Conv2d equivalence, gradients, shapes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.af_kan import (
    AFKAN,
    MLP,
    AFKANLayer,
    BSplineKANLayer,
    RBFKANLayer,
    ReLUKAN,
    ReLUKANLayer,
    af_basis,
    l2mm,
    relu_kan_basis,
)
from paperzoo.core.models import count_parameters


def _inputs(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype) * 2 - 1


def _reference_af_kan_forward(layer: AFKANLayer, x: torch.Tensor) -> torch.Tensor:
    """Slow, obviously-correct AF-KAN layer: materialise F, L2MM it, reduce row by row."""
    feats = af_basis(x, layer.start, layer.end, layer.activation, layer.func)
    if layer.func_norm is not None:
        feats = l2mm(feats, layer.func_norm, layer.eps)
    act = {"silu": F.silu, "relu": F.relu, "tanh": torch.tanh}[layer.activation]
    rows = []
    for b in range(x.shape[0]):
        fb = feats[b]  # (d, n)
        if layer.method == "multistep":
            assert layer.score is not None
            h = torch.stack(
                [fb[i] @ layer.score.weight[0] + layer.score.bias[0] for i in range(fb.shape[0])]
            )
        elif layer.method == "global_attn":
            assert layer.score is not None and layer.temperature is not None
            tau = max(layer.temperature.item(), 1.0)
            scores = torch.stack(
                [fb[i] @ layer.score.weight[0] + layer.score.bias[0] for i in range(fb.shape[0])]
            )
            w = torch.exp(scores / tau)
            w = w / w.sum()
            h = torch.stack([w[i] * fb[i].sum() for i in range(fb.shape[0])])
        else:
            assert layer.score_conv is not None and layer.temperature is not None
            tau = max(layer.temperature.item(), 1.0)
            d, n = fb.shape
            padded = F.pad(fb.T, (1, 1))  # (n, d + 2)
            kern = layer.score_conv.weight[:, 0, :]  # (n, 3)
            scores = torch.stack(
                [
                    torch.stack(
                        [
                            padded[j, i : i + 3] @ kern[j] + layer.score_conv.bias[j]
                            for i in range(d)
                        ]
                    )
                    for j in range(n)
                ]
            )  # (n, d)
            w = torch.softmax(scores / tau, dim=0)
            h = torch.stack([sum(fb[i, j] * w[j, i] for j in range(n)) for i in range(d)])
        rows.append(h)
    hidden = layer.norm(torch.stack(rows))
    return F.linear(act(hidden), layer.weight)


@pytest.mark.parametrize("method", ["global_attn", "multistep", "spatial_attn"])
@pytest.mark.parametrize("func_norm", ["batch", "sample", None])
def test_af_kan_layer_matches_slow_reference(method: str, func_norm: str | None) -> None:
    torch.manual_seed(0)
    layer = AFKANLayer(7, 4, method=method, func_norm=func_norm).double()
    with torch.no_grad():
        if layer.temperature is not None:
            layer.temperature.fill_(1.7)
        for p in layer.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = _inputs(5, 7)
    torch.testing.assert_close(layer(x), _reference_af_kan_forward(layer, x))


def test_global_attention_is_a_distribution_over_inputs() -> None:
    torch.manual_seed(1)
    layer = AFKANLayer(9, 3).double()
    att = layer.attention_weights(_inputs(6, 9))
    assert att.shape == (6, 9)
    assert (att >= 0).all()
    torch.testing.assert_close(att.sum(dim=-1), torch.ones(6, dtype=torch.float64))


def test_spatial_attention_is_a_distribution_over_bumps() -> None:
    torch.manual_seed(1)
    layer = AFKANLayer(9, 3, method="spatial_attn").double()
    att = layer.attention_weights(_inputs(6, 9))
    assert att.shape == (6, 6, 9)
    assert (att >= 0).all()
    torch.testing.assert_close(att.sum(dim=1), torch.ones(6, 9, dtype=torch.float64))


def test_temperature_below_one_behaves_exactly_like_one() -> None:
    torch.manual_seed(2)
    layer = AFKANLayer(8, 3).double()
    assert layer.temperature is not None
    x = _inputs(4, 8)
    with torch.no_grad():
        layer.temperature.fill_(0.3)
    low = layer(x)
    with torch.no_grad():
        layer.temperature.fill_(1.0)
    torch.testing.assert_close(low, layer(x), rtol=0, atol=0)
    with torch.no_grad():
        layer.temperature.fill_(1.5)
    assert not torch.allclose(low, layer(x))


def test_huge_temperature_gives_uniform_attention() -> None:
    torch.manual_seed(3)
    layer = AFKANLayer(8, 3).double()
    assert layer.temperature is not None
    with torch.no_grad():
        layer.temperature.fill_(1e12)
    att = layer.attention_weights(_inputs(4, 8))
    torch.testing.assert_close(att, torch.full_like(att, 1 / 8))


def test_temperature_initialised_to_sqrt_d() -> None:
    layer = AFKANLayer(784, 64)
    assert layer.temperature is not None
    assert layer.temperature.item() == pytest.approx(math.sqrt(784))


@pytest.mark.parametrize(
    ("d", "out", "G", "K"), [(784, 64, 3, 3), (64, 10, 3, 3), (5, 7, 4, 2), (3, 1, 1, 0)]
)
def test_af_kan_layer_parameter_count_matches_formula(d: int, out: int, G: int, K: int) -> None:
    n = G + K
    assert count_parameters(AFKANLayer(d, out, G, K)) == out * d + (n + 1) + 1 + 2 * n + 2 * d
    assert (
        count_parameters(AFKANLayer(d, out, G, K, method="multistep"))
        == out * d + (n + 1) + 2 * n + 2 * d
    )
    assert (
        count_parameters(AFKANLayer(d, out, G, K, method="spatial_attn"))
        == out * d + 4 * n + 1 + 2 * n + 2 * d
    )
    assert count_parameters(AFKANLayer(d, out, G, K, norm=None)) == out * d + (n + 1) + 1 + 2 * n
    assert (
        count_parameters(AFKANLayer(d, out, G, K, train_grid=False))
        == out * d + (n + 1) + 1 + 2 * d
    )
    assert count_parameters(ReLUKANLayer(d, out, G, K)) == out * d * n + out + 2 * d * n + 2 * d


def test_parameter_counts_at_784_64_10_equal_the_official_numbers() -> None:
    assert count_parameters(AFKAN([784, 64, 10])) == 52_552
    assert count_parameters(ReLUKAN([784, 64, 10])) == 316_842
    assert count_parameters(MLP([784, 64, 10])) == 50_890


@pytest.mark.parametrize("model", [AFKAN, ReLUKAN, MLP])
def test_every_parameter_receives_a_gradient(model: type[nn.Module]) -> None:
    net = model([20, 8, 3])
    net(_inputs(6, 20, dtype=torch.float32)).square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        if name.endswith("score.bias") and isinstance(net, AFKAN):
            # c shifts every score equally: softmax over inputs cancels it (zero, but used)
            assert p.grad.abs().max() < 1e-5
        else:
            assert p.grad.abs().sum() > 0, name


def test_relu_kan_linear_form_equals_official_full_kernel_conv2d() -> None:
    torch.manual_seed(4)
    d, out, G, K = 6, 4, 3, 2
    n = G + K
    layer = ReLUKANLayer(d, out, G, K).double()
    with torch.no_grad():
        layer.start.add_(0.05 * torch.randn_like(layer.start))
    x = _inputs(5, d)
    conv = nn.Conv2d(1, out, (n, d)).double()
    with torch.no_grad():
        conv.weight.copy_(layer.linear.weight.reshape(out, 1, n, d))
        conv.bias.copy_(layer.linear.bias)
    phi = relu_kan_basis(layer.norm(x), layer.start, layer.end, layer.r)  # (B, d, n) contiguous
    ref = conv(phi.reshape(len(x), 1, n, d)).reshape(len(x), out)
    torch.testing.assert_close(layer(x), ref)


def test_relu_kan_handles_many_inputs_per_example() -> None:
    # quiqi/relu_kan#1: the original crashed as soon as there was more than one input.
    layer = ReLUKANLayer(13, 2)
    assert layer(_inputs(3, 13, dtype=torch.float32)).shape == (3, 2)


def _gradcheck_inputs(d: int) -> torch.Tensor:
    # away from knots/ties: irrational-ish offsets
    g = torch.Generator().manual_seed(5)
    return (
        torch.rand(3, d, generator=g, dtype=torch.float64) * 1.6 - 0.5 + 0.0123
    ).requires_grad_()


@pytest.mark.parametrize("func_norm", ["sample", None, "batch"])
@pytest.mark.parametrize("method", ["global_attn", "multistep", "spatial_attn"])
def test_af_kan_layer_gradcheck_float64(func_norm: str | None, method: str) -> None:
    torch.manual_seed(6)
    layer = AFKANLayer(4, 3, method=method, func_norm=func_norm).double()
    x = _gradcheck_inputs(4)
    params = tuple(layer.parameters())

    def fn(inp: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(
            layer,
            {name: p for (name, _), p in zip(layer.named_parameters(), ps, strict=True)},
            (inp,),
        )

    args = (x, *(p.detach().clone().requires_grad_() for p in params))
    assert torch.autograd.gradcheck(fn, args, fast_mode=True)


def test_relu_kan_layer_gradcheck_float64() -> None:
    torch.manual_seed(7)
    layer = ReLUKANLayer(4, 3, norm=None).double()
    x = _gradcheck_inputs(4)
    params = tuple(layer.parameters())

    def fn(inp: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(
            layer,
            {name: p for (name, _), p in zip(layer.named_parameters(), ps, strict=True)},
            (inp,),
        )

    args = (x, *(p.detach().clone().requires_grad_() for p in params))
    assert torch.autograd.gradcheck(fn, args, fast_mode=True)


@pytest.mark.parametrize("layer_cls", [AFKANLayer, ReLUKANLayer])
def test_fixed_grid_lives_in_buffers(layer_cls: type[nn.Module]) -> None:
    layer = layer_cls(5, 3, train_grid=False)
    names = {n for n, _ in layer.named_parameters()}
    assert "start" not in names and "end" not in names
    assert {"start", "end"} <= {n for n, _ in layer.named_buffers()}
    assert "start" in layer.state_dict()


@pytest.mark.parametrize(
    "make",
    [
        lambda: AFKANLayer(6, 4),
        lambda: AFKANLayer(6, 4, func_norm="sample", method="spatial_attn"),
        lambda: ReLUKANLayer(6, 4),
        lambda: BSplineKANLayer(6, 4),
        lambda: RBFKANLayer(6, 4),
    ],
)
def test_three_dim_input_matches_flattened_rows(make: object) -> None:
    torch.manual_seed(8)
    layer = make()  # type: ignore[operator]
    x = _inputs(3, 5, 6, dtype=torch.float32)
    out = layer(x)
    assert out.shape == (3, 5, 4)
    torch.testing.assert_close(out, layer(x.reshape(15, 6)).reshape(3, 5, 4))


def test_sample_func_norm_makes_outputs_batch_independent() -> None:
    torch.manual_seed(9)
    x = _inputs(6, 10, dtype=torch.float32)
    x[2:] = x[2:] * 2.5  # other rows reach other basis extremes
    sample = AFKANLayer(10, 3, func_norm="sample")
    torch.testing.assert_close(sample(x)[:2], sample(x[:2]))
    batch = AFKANLayer(10, 3, func_norm="batch")
    batch.load_state_dict(sample.state_dict())
    assert not torch.allclose(batch(x)[:2], batch(x[:2]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("func_norm", ["batch", "sample"])
def test_inputs_far_outside_the_grid_give_finite_outputs_in_low_precision(
    func_norm: str, fused: bool, dtype: torch.dtype
) -> None:
    # every bump is ~0 there, so max F - min F is 0 (or a denormal): L2MM's eps floor must hold
    torch.manual_seed(12)
    layer = AFKANLayer(5, 3, func_norm=func_norm, fused=fused).to(dtype)
    x = torch.full((2, 5), 100.0, dtype=dtype, requires_grad=True)
    out = layer(x)
    assert out.dtype == dtype
    assert bool(torch.isfinite(out).all())
    if dtype == torch.float16:
        return  # the backward overflows there (1/floor ~ 2^14 times O(100)): documented limit
    out.sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float16, 1e-2), (torch.bfloat16, 6e-2)])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("func_norm", ["batch", "sample", None])
def test_low_precision_layer_follows_the_float64_layer(
    func_norm: str | None, fused: bool, dtype: torch.dtype, tol: float
) -> None:
    torch.manual_seed(13)
    ref = AFKANLayer(20, 7, func_norm=func_norm, fused=fused).double()
    low = AFKANLayer(20, 7, func_norm=func_norm, fused=fused)
    low.load_state_dict(ref.state_dict())
    low = low.to(dtype)
    x = _inputs(64, 20, seed=13) * 1.5 + 0.5  # [-1, 2]: the whole default grid
    expected = ref(x)
    got = low(x.to(dtype)).double()
    assert (got - expected).abs().max() <= tol * expected.abs().max()
