"""Search space: mixed operations, cells, genotype derivation, NATS cells, and the layer contract."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.testing import LayerContractTests
from paperzoo.rarts.ops import DARTS_PRIMITIVES, MNIST1D_PRIMITIVES, NATS_PRIMITIVES, OPS, make_op
from paperzoo.rarts.space import (
    EvalNetwork,
    Genotype,
    MixedOp,
    NATSSearchNetwork,
    SearchCell,
    SearchNetwork,
    format_arch_str,
    genotype_from_alphas,
    num_edges,
    parse_arch_str,
    random_genotype,
)


def _input(dims: int, n: int = 4, c: int = 4, size: int = 8) -> Tensor:
    g = torch.Generator().manual_seed(0)
    shape = (n, c, size) if dims == 1 else (n, c, size, size)
    return torch.randn(shape, generator=g)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", sorted(OPS))
def test_every_registered_op_keeps_channels_and_divides_spatial_size_by_stride(
    name: str, stride: int, dims: int
) -> None:
    op = make_op(name, 4, stride, affine=False, dims=dims)
    out = op(_input(dims))
    assert out.shape == (4, 4, *([8 // stride] * dims))


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_one_hot_weights_select_exactly_one_op(dims: int, stride: int) -> None:
    torch.manual_seed(0)
    mixed = MixedOp(4, stride, DARTS_PRIMITIVES, dims)
    x = _input(dims)
    for k, name in enumerate(DARTS_PRIMITIVES):
        w = torch.zeros(len(DARTS_PRIMITIVES))
        w[k] = 1.0
        out = mixed(x, w)
        if name == "none":
            assert float(out.detach().abs().max()) == 0.0
        else:
            torch.testing.assert_close(out, mixed._ops[k](x), rtol=0, atol=0)


def test_mixed_op_is_the_weighted_sum_of_all_ops_reference_loop() -> None:
    torch.manual_seed(0)
    mixed = MixedOp(4, 1, MNIST1D_PRIMITIVES, 1)
    x = _input(1)
    w = torch.softmax(torch.randn(len(MNIST1D_PRIMITIVES)), 0)
    expected = torch.zeros_like(x)
    for k in range(len(MNIST1D_PRIMITIVES)):  # includes `none`, whose output is zero
        expected = expected + w[k] * mixed._ops[k](x)
    torch.testing.assert_close(mixed(x, w), expected, rtol=1e-6, atol=1e-6)


def test_supernet_output_is_invariant_to_shifting_alpha_rows(make_tiny_supernet: Any) -> None:
    net = make_tiny_supernet().eval()
    x = _input(1, c=1)
    before = net(x)
    with torch.no_grad():
        net.alphas_normal += torch.randn(net.alphas_normal.shape[0], 1)  # softmax weights sum to 1
        net.alphas_reduce += 5.0
    torch.testing.assert_close(net(x), before, rtol=1e-5, atol=1e-6)


def test_search_network_alpha_shapes_and_parameter_split() -> None:
    net = SearchNetwork(
        4, 10, 3, steps=3, multiplier=3, in_channels=1, dims=1, reduction_cells=(1,)
    )
    assert num_edges(3) == 9 and num_edges(4) == 14
    assert net.alphas_normal.shape == (9, 8) == net.alphas_reduce.shape
    ids = {id(p) for p in net.weight_parameters()}
    assert not ids & {id(a) for a in net.arch_parameters()}
    assert len(ids) + 2 == len(list(net.parameters()))
    assert [c.reduction for c in net.cells] == [False, True, False]
    assert SearchNetwork(4, 10, 8).reduction_cells == (2, 5)  # DARTS: L//3 and 2L//3


def test_hand_set_alpha_gives_the_expected_genotype() -> None:
    prims = DARTS_PRIMITIVES
    k = {p: i for i, p in enumerate(prims)}
    a = torch.zeros(num_edges(2), len(prims))
    # node 2 reads edges 0, 1; node 3 reads edges 2, 3, 4
    a[0, k["none"]] = 9.0  # `none` is ignored for strength and choice
    a[0, k["sep_conv_3x3"]] = 2.0
    a[1, k["skip_connect"]] = 3.0
    a[2, k["max_pool_3x3"]] = 1.0
    a[3, k["dil_conv_5x5"]] = 4.0
    a[4, k["avg_pool_3x3"]] = 2.5
    gene = genotype_from_alphas(a, prims, 2)
    assert gene == [
        ("sep_conv_3x3", 0),
        ("skip_connect", 1),
        ("dil_conv_5x5", 1),
        ("avg_pool_3x3", 2),
    ]


def test_genotype_matches_a_reference_loop_on_random_alpha() -> None:
    torch.manual_seed(1)
    a = torch.randn(num_edges(4), len(DARTS_PRIMITIVES))
    w = torch.softmax(a, -1).tolist()
    none = DARTS_PRIMITIVES.index("none")
    expected, start = [], 0
    for i in range(4):  # the rule of quark0/darts Network._parse, written as plain loops
        rows = w[start : start + i + 2]
        strength = [max(r[o] for o in range(len(r)) if o != none) for r in rows]
        edges = sorted(range(i + 2), key=lambda j: -strength[j])[:2]
        for j in sorted(edges):
            best = max((o for o in range(len(rows[j])) if o != none), key=lambda o: rows[j][o])
            expected.append((DARTS_PRIMITIVES[best], j))
        start += i + 2
    assert genotype_from_alphas(a, DARTS_PRIMITIVES, 4) == expected


def test_eval_network_runs_any_random_genotype_in_1d_and_2d() -> None:
    g = torch.Generator().manual_seed(0)
    for dims in (1, 2):
        geno = random_genotype(MNIST1D_PRIMITIVES, 3, generator=g)
        assert all(op != "none" for op, _ in geno.normal + geno.reduce)
        net = EvalNetwork(geno, 4, 5, 5, in_channels=1, dims=dims)
        assert net(_input(dims, c=1)).shape == (4, 5)


def test_op_counts_and_alpha_entropy_diagnostics(make_tiny_supernet: Any) -> None:
    net = make_tiny_supernet()
    counts = net.op_counts()
    assert sum(counts["normal"].values()) == 2 * net.steps
    ent = net.alpha_entropy()
    assert ent["normal"] == pytest.approx(torch.log(torch.tensor(8.0)).item(), abs=1e-4)


@pytest.mark.parametrize(
    "arch",
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    ],
)
def test_nats_arch_string_round_trips(arch: str) -> None:
    assert format_arch_str(parse_arch_str(arch)) == arch
    net = NATSSearchNetwork(C=4, N=1, num_classes=3)
    net.set_arch(arch)
    assert net.arch_str() == arch


def test_nats_supernet_shapes() -> None:
    net = NATSSearchNetwork(C=4, N=1, num_classes=3)
    assert net.arch_alphas.shape == (6, len(NATS_PRIMITIVES))
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 3)


# ------------------------------------------------------------------------------------- bad input


def test_alpha_of_the_wrong_shape_raises() -> None:
    cell = SearchCell(2, 2, 4, 4, 4, False, False, DARTS_PRIMITIVES, 1)
    x = _input(1)
    with pytest.raises(ValueError, match=r"weights must have shape \(E, \|O\|\) = \(5, 8\)"):
        cell(x, x, torch.zeros(5, 7))
    with pytest.raises(ValueError, match="alphas must have shape"):
        genotype_from_alphas(torch.zeros(4, 8), DARTS_PRIMITIVES, 2)


def test_unknown_primitive_raises() -> None:
    with pytest.raises(ValueError, match="unknown primitive 'conv_9x9'"):
        SearchNetwork(4, 3, 1, primitives=("none", "conv_9x9"))
    with pytest.raises(ValueError, match="unknown primitive"):
        make_op("conv_9x9", 4, 1)


@pytest.mark.parametrize("stride", [0, 3])
def test_stride_outside_one_two_raises(stride: int) -> None:
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        MixedOp(4, stride)


@pytest.mark.parametrize("dims", [0, 3])
def test_dims_outside_one_two_raises(dims: int) -> None:
    with pytest.raises(ValueError, match="dims must be 1"):
        SearchNetwork(4, 3, 1, dims=dims)


def test_input_too_small_for_the_reductions_raises(make_tiny_supernet: Any) -> None:
    net = SearchNetwork(4, 3, 3, steps=1, multiplier=1, in_channels=1, dims=1)  # 2 reductions
    with pytest.raises(ValueError, match="multiple of 4"):
        net(torch.randn(2, 1, 2))
    with pytest.raises(ValueError, match="multiple of 4"):
        net(torch.randn(2, 1, 10))
    with pytest.raises(ValueError, match=r"shape \(N, C, L\) with C=1"):
        net(torch.randn(2, 3, 8))


def test_bad_arch_strings_raise() -> None:
    with pytest.raises(ValueError, match="must read inputs"):
        parse_arch_str("|none~1|")
    with pytest.raises(ValueError, match="op~input"):
        parse_arch_str("|none|")
    with pytest.raises(ValueError, match="unknown primitive"):
        NATSSearchNetwork(C=4, N=1).set_arch("|x~0|+|none~0|none~1|+|none~0|none~1|none~2|")


# ------------------------------------------------------------------------------------- contracts


class _OneDInput:
    channels = 1

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, self.channels, 8, generator=generator, dtype=dtype).to(device)


class TestSearchNetworkContract(_OneDInput, LayerContractTests):
    checks_nonfinite = False  # no per-forward NaN scan (a host sync); steppers check losses and α

    def make_layer(self) -> nn.Module:
        return SearchNetwork(  # one reduction cell, 2 nodes: small enough for gradcheck/compile
            4,
            3,
            1,
            steps=2,
            multiplier=2,
            primitives=MNIST1D_PRIMITIVES,
            in_channels=1,
            dims=1,
            reduction_cells=(0,),
        )


class TestEvalNetworkContract(_OneDInput, LayerContractTests):
    checks_nonfinite = False

    def make_layer(self) -> nn.Module:
        geno = Genotype(
            [("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_3x3", 1), ("max_pool_3x3", 2)],
            [2, 3],
            [("avg_pool_3x3", 0), ("nor_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_5x5", 2)],
            [2, 3],
        )
        return EvalNetwork(geno, 4, 3, 3, in_channels=1, dims=1)


class TestNATSSearchNetworkContract(LayerContractTests):
    checks_nonfinite = False

    def make_layer(self) -> nn.Module:
        return NATSSearchNetwork(C=4, N=1, num_classes=3, in_channels=1)

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 1, 4, 4, generator=generator, dtype=dtype).to(device)
