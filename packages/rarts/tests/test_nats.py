"""The NATS-Bench topology space: architecture strings, the supernet (shapes, derivation, layer contract), and
the optional benchmark query failing loudly without the package or the file."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.testing import LayerContractTests
from paperzoo.rarts.nats import NATSSearchNetwork, format_arch_str, parse_arch_str, query
from paperzoo.rarts.ops import (
    NATS_PRIMITIVES,
)

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_query_without_nats_bench_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nats_bench", None)  # import fails
    with pytest.raises(ImportError, match="pip install nats_bench"):
        query(ARCH)


def test_query_without_the_benchmark_file_says_where_to_put_it(tmp_path: object) -> None:
    pytest.importorskip("nats_bench")
    missing = f"{tmp_path}/NATS-tss-v1_0-3ffb9-simple"
    with pytest.raises(FileNotFoundError, match="NATS-tss-v1_0-3ffb9-simple"):
        query(ARCH, path=missing)


def test_query_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="arch_str"):
        query("|nor_conv_3x3|")
    with pytest.raises(ValueError, match="dataset"):
        query(ARCH, dataset="mnist")
    with pytest.raises(ValueError, match="hp"):
        query(ARCH, hp="50")


def test_nats_arch_str_on_ties_and_non_finite_alpha() -> None:
    net = NATSSearchNetwork(C=4, N=1, num_classes=3)
    with torch.no_grad():
        net.arch_alphas.zero_()
    assert net.arch_str() == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # first primitive
    with torch.no_grad():
        net.arch_alphas[0, 2] = float("nan")
    with pytest.raises(ValueError, match="arch_alphas holds NaN/Inf"):
        net.arch_str()


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


def test_bad_arch_strings_raise() -> None:
    with pytest.raises(ValueError, match="must read inputs"):
        parse_arch_str("|none~1|")
    with pytest.raises(ValueError, match="op~input"):
        parse_arch_str("|none|")
    with pytest.raises(ValueError, match="unknown primitive"):
        NATSSearchNetwork(C=4, N=1).set_arch("|x~0|+|none~0|none~1|+|none~0|none~1|none~2|")


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
