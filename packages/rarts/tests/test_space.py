"""The DARTS search space: cells, supernet, genotype derivation (ties, degenerate α), the evaluation network,
and the layer contract."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.testing import LayerContractTests
from paperzoo.rarts.ops import (
    DARTS_PRIMITIVES,
    MNIST1D_PRIMITIVES,
)
from paperzoo.rarts.space import (
    EvalNetwork,
    Genotype,
    SearchCell,
    SearchNetwork,
    genotype_from_alphas,
    num_edges,
    random_genotype,
)


def test_supernet_output_is_invariant_to_shifting_alpha_rows(make_tiny_supernet: Any) -> None:
    net = make_tiny_supernet().eval()
    x = torch.randn(4, 1, 8, generator=torch.Generator().manual_seed(0))
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
        assert net(torch.randn((4, 1) + (8,) * dims)).shape == (4, 5)


def test_op_counts_and_alpha_entropy_diagnostics(make_tiny_supernet: Any) -> None:
    net = make_tiny_supernet()
    counts = net.op_counts()
    assert sum(counts["normal"].values()) == 2 * net.steps
    ent = net.alpha_entropy()
    assert ent["normal"] == pytest.approx(torch.log(torch.tensor(8.0)).item(), abs=1e-4)


# ------------------------------------------------------------------------------------- bad input


def test_alpha_of_the_wrong_shape_raises() -> None:
    cell = SearchCell(2, 2, 4, 4, 4, False, False, DARTS_PRIMITIVES, 1)
    x = torch.randn(4, 4, 8)
    with pytest.raises(ValueError, match=r"weights must have shape \(E, \|O\|\) = \(5, 8\)"):
        cell(x, x, torch.zeros(5, 7))
    with pytest.raises(ValueError, match="alphas must have shape"):
        genotype_from_alphas(torch.zeros(4, 8), DARTS_PRIMITIVES, 2)


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


def test_genotype_on_tied_alpha_keeps_lower_inputs_and_the_first_non_none_op() -> None:
    prims = MNIST1D_PRIMITIVES  # ("none", "skip_connect", ...)
    gene = genotype_from_alphas(torch.zeros(num_edges(3), len(prims)), prims, 3)
    assert gene == [("skip_connect", j) for j in (0, 1, 0, 1, 0, 1)]
    a = torch.zeros(num_edges(2), len(prims))
    a[4, 5] = a[4, 6] = 1.0  # node 3: edge from node 2 wins; its two ops tie -> the earlier one
    a[2, 3] = 1.0  # node 3: edge from input 0 equally strong as edge 2 -> both kept
    assert genotype_from_alphas(a, prims, 2)[2:] == [(prims[3], 0), (prims[5], 2)]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_genotype_refuses_non_finite_alpha(value: float) -> None:
    a = torch.zeros(num_edges(2), len(MNIST1D_PRIMITIVES))
    a[3, 2] = value
    with pytest.raises(ValueError, match=r"alphas holds NaN/Inf \(rows \[3\]\)"):
        genotype_from_alphas(a, MNIST1D_PRIMITIVES, 2)


def test_genotype_refuses_a_space_of_only_none_and_non_tensor_alpha() -> None:
    with pytest.raises(ValueError, match="other than 'none'"):
        genotype_from_alphas(torch.zeros(num_edges(2), 1), ("none",), 2)
    with pytest.raises(TypeError, match="alphas must be a Tensor"):
        genotype_from_alphas([[0.0] * 8] * 5, MNIST1D_PRIMITIVES, 2)  # type: ignore[arg-type]


def test_primitives_given_as_one_string_raise_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match=r"primitives must be a sequence of operation names"):
        SearchNetwork(4, 3, 2, primitives="skip_connect", in_channels=1, dims=1)


def test_eval_network_rejects_reduction_cells_outside_its_layers() -> None:
    geno = genotype_from_alphas(torch.zeros(num_edges(2), 8), MNIST1D_PRIMITIVES, 2)
    g = Genotype(geno, [2, 3], geno, [2, 3])
    with pytest.raises(ValueError, match=r"reduction_cells must lie in \[0, 3\)"):
        EvalNetwork(g, 4, 3, 3, in_channels=1, dims=1, reduction_cells=(1, 5))
    with pytest.raises(ValueError, match="layers"):
        EvalNetwork(g, 4, 3, 0, in_channels=1, dims=1)


def test_search_network_rejects_zero_input_channels() -> None:
    with pytest.raises(ValueError, match="in_channels"):
        SearchNetwork(4, 3, 2, in_channels=0)
