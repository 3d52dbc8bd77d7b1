"""The NATS-Bench topology search space (``tss``, = NAS-Bench-201): supernet, cell, architecture strings, and
an optional look-up of a searched cell in a benchmark file you supply.

The search cell follows NAS-Bench-201's of ``D-X-Y/AutoDL-Projects``.

No PyPI package ships the NATS-Bench tables (``nats_bench`` 1.8 is API-only, ~32 KB), and nothing here
downloads: install ``nats_bench`` (``pip install nats_bench``) and put the ``tss`` benchmark — the
``NATS-tss-v1_0-3ffb9-simple`` folder (fast mode) or ``NATS-tss-v1_0-3ffb9-full`` — where ``path`` points, or in
``$TORCH_HOME`` (default ``~/.torch``) where ``nats_bench`` looks by default. tss indices equal NAS-Bench-201's.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.rarts.ops import (
    NATS_PRIMITIVES,
    MixedOp,
    ReLUConvBN,
    batch_norm_nd,
    check_alpha_shape,
    check_dims,
    check_finite_alpha,
    check_network_input,
    check_primitives,
    conv_nd,
    reset_all_parameters,
)

__all__ = [
    "DEFAULT_TSS_NAME",
    "NATSSearchCell",
    "NATSSearchNetwork",
    "format_arch_str",
    "parse_arch_str",
    "query",
]

DEFAULT_TSS_NAME = "NATS-tss-v1_0-3ffb9-simple"
_DATASETS = ("cifar10", "cifar10-valid", "cifar100", "ImageNet16-120")


def parse_arch_str(arch_str: str) -> list[list[tuple[str, int]]]:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` into per-node lists of ``(op, input)``."""
    if not isinstance(arch_str, str):
        raise TypeError(f"arch_str must be a str, got {type(arch_str).__name__}")
    nodes: list[list[tuple[str, int]]] = []
    for i, node in enumerate(arch_str.split("+")):
        if not (node.startswith("|") and node.endswith("|")):
            raise ValueError(f"arch_str node {i} must look like '|op~0|op~1|', got {node!r}")
        items = [s for s in node[1:-1].split("|")]
        edges = []
        for item in items:
            op, sep, j = item.partition("~")
            if not sep or not j.isdigit():
                raise ValueError(f"arch_str edge {item!r} must look like 'op~input'")
            edges.append((op, int(j)))
        if [j for _, j in edges] != list(range(i + 1)):
            raise ValueError(f"arch_str node {i + 1} must read inputs 0..{i}, got {node!r}")
        nodes.append(edges)
    return nodes


def format_arch_str(nodes: Sequence[Sequence[tuple[str, int]]]) -> str:
    """Inverse of :func:`parse_arch_str`."""
    return "+".join("|" + "|".join(f"{op}~{j}" for op, j in node) + "|" for node in nodes)


class NATSSearchCell(nn.Module):
    """NAS-Bench-201 search cell: node 0 = input, node i = Σ_{j<i} ō^{(j→i)}(x_j), output = last node.

    ``forward(x (N, C, *S), weights (E, |O|))`` → ``(N, C, *S)``; edges ordered ``1<-0, 2<-0, 2<-1, 3<-0, …``.
    No BN after pooling ops (as NAS-Bench-201's search cell).
    """

    def __init__(
        self, C: int, primitives: Sequence[str] = NATS_PRIMITIVES, max_nodes: int = 4, dims: int = 2
    ) -> None:
        super().__init__()
        self.max_nodes = max_nodes
        self.num_ops = len(check_primitives(primitives))
        self.edges = nn.ModuleList(
            MixedOp(C, 1, primitives, dims, pool_bn=False)
            for i in range(1, max_nodes)
            for _ in range(i)
        )

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        check_alpha_shape(weights, (len(self.edges), self.num_ops), "weights")
        nodes = [x]
        k = 0
        for i in range(1, self.max_nodes):
            s = self.edges[k](nodes[0], weights[k])
            for j in range(1, i):
                s = s + self.edges[k + j](nodes[j], weights[k + j])
            k += i
            nodes.append(s)
        return nodes[-1]


class _ResNetBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, dims: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(inplanes, planes, 3, 2, 1, affine=True, dims=dims)
        self.conv_b = ReLUConvBN(planes, planes, 3, 1, 1, affine=True, dims=dims)
        pool = nn.AvgPool1d(2, 2) if dims == 1 else nn.AvgPool2d(2, 2)
        self.downsample = nn.Sequential(pool, conv_nd(dims)(inplanes, planes, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))  # type: ignore[no-any-return]


class NATSSearchNetwork(nn.Module):
    """The NATS-Bench ``tss`` (NAS-Bench-201) supernet: stem (C), 3 stages × N cells with residual
    reduction blocks between them (widths C/2C/4C), BN–ReLU, global pool, linear.

    ``forward(x (N, in_channels, *S))`` → logits; spatial sizes must be multiples of 4. One α
    ``arch_alphas`` of shape ``(6, |O|)`` shared by every cell (init ``1e-3·N(0, 1)``).
    """

    def __init__(
        self,
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        primitives: Sequence[str] = NATS_PRIMITIVES,
        in_channels: int = 3,
        dims: int = 2,
        max_nodes: int = 4,
    ) -> None:
        super().__init__()
        self.dims = check_dims(dims)
        self.primitives = check_primitives(primitives)
        self.in_channels, self.max_nodes = in_channels, max_nodes
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            conv_nd(dims)(in_channels, C, 3, padding=1, bias=False), batch_norm_nd(dims, C, True)
        )
        layers: list[nn.Module] = []
        C_prev = C
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(_ResNetBasicBlock(C_prev, width, dims))
            layers += [NATSSearchCell(width, self.primitives, max_nodes, dims) for _ in range(N)]
            C_prev = width
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(batch_norm_nd(dims, C_prev, True), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(C_prev, num_classes)
        E = max_nodes * (max_nodes - 1) // 2
        self.arch_alphas = nn.Parameter(1e-3 * torch.randn(E, len(self.primitives)))

    def arch_parameters(self) -> list[nn.Parameter]:
        """α: ``[arch_alphas (6, |O|)]``."""
        return [self.arch_alphas]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except α."""
        return [p for p in self.parameters() if p is not self.arch_alphas]

    def reset_parameters(self) -> None:
        """Re-initialise every weight (PyTorch defaults) and α (``1e-3·N(0, 1)``)."""
        reset_all_parameters(self)
        with torch.no_grad():
            self.arch_alphas.normal_(0.0, 1e-3)

    def forward(self, x: Tensor) -> Tensor:
        check_network_input(x, self.dims, self.in_channels, 2)
        weights = F.softmax(self.arch_alphas, dim=-1)
        h = self.stem(x)
        for layer in self.cells:
            h = layer(h, weights) if isinstance(layer, NATSSearchCell) else layer(h)
        h = self.lastact(h)
        return self.classifier(h.mean(dim=tuple(range(2, h.dim()))))  # type: ignore[no-any-return]

    def arch_str(self) -> str:
        """The derived architecture: per edge the arg-max op (``none`` included, as NAS-Bench-201; ties: the
        earlier primitive). ``ValueError`` if α holds NaN/Inf."""
        check_finite_alpha(self.arch_alphas, "arch_alphas")
        best = self.arch_alphas.detach().argmax(dim=-1).tolist()
        nodes, k = [], 0
        for i in range(1, self.max_nodes):
            nodes.append([(self.primitives[best[k + j]], j) for j in range(i)])
            k += i
        return format_arch_str(nodes)

    def set_arch(self, arch_str: str, logit: float = 10.0) -> None:
        """Set α to ``logit`` on the ops named by ``arch_str`` and 0 elsewhere (round trip of :meth:`arch_str`)."""
        nodes = parse_arch_str(arch_str)
        if len(nodes) != self.max_nodes - 1:
            raise ValueError(f"arch_str must describe {self.max_nodes - 1} nodes, got {len(nodes)}")
        alphas = torch.zeros_like(self.arch_alphas)
        k = 0
        for node in nodes:
            for op, j in node:
                if op not in self.primitives:
                    raise ValueError(
                        f"unknown primitive {op!r} in arch_str; space: {self.primitives}"
                    )
                alphas[k + j, self.primitives.index(op)] = logit
            k += len(node)
        with torch.no_grad():
            self.arch_alphas.copy_(alphas)


def _default_path() -> Path:
    home = os.environ.get("TORCH_HOME", os.path.join(os.path.expanduser("~"), ".torch"))
    return Path(home) / DEFAULT_TSS_NAME


@lru_cache(maxsize=2)
def _api(path: str) -> Any:
    nats_bench = importlib.import_module("nats_bench")
    return nats_bench.create(path, "tss", fast_mode=True, verbose=False)


def query(
    arch_str: str,
    dataset: str = "cifar10",
    hp: str = "200",
    path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Benchmark numbers of a NATS-Bench ``tss`` cell (e.g. from :meth:`NATSSearchNetwork.arch_str`).

    Args:
        arch_str: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
        dataset: ``cifar10``, ``cifar10-valid``, ``cifar100`` or ``ImageNet16-120``.
        hp: training schedule, ``"12"`` or ``"200"`` epochs.
        path: the benchmark file/folder (default ``$TORCH_HOME/NATS-tss-v1_0-3ffb9-simple``).

    Returns: ``nats_bench``'s ``get_more_info`` dict (``test-accuracy``, ``valid-accuracy``, …) plus ``index``.

    Raises:
        ImportError: ``nats_bench`` is not installed (says how to install it).
        FileNotFoundError: no benchmark file at ``path`` (says where to put it and where to get it).
        ValueError: a malformed ``arch_str``, unknown ``dataset`` or ``hp``.
    """
    parse_arch_str(arch_str)
    if dataset not in _DATASETS:
        raise ValueError(f"dataset must be one of {_DATASETS}, got {dataset!r}")
    if hp not in ("12", "200"):
        raise ValueError(f"hp must be '12' or '200', got {hp!r}")
    try:
        importlib.import_module("nats_bench")
    except ImportError as err:
        raise ImportError(
            "paperzoo.rarts.nats.query needs the optional package 'nats_bench': pip install nats_bench "
            "(it holds only the API; the benchmark file is separate, see the module docstring)"
        ) from err
    p = Path(path) if path is not None else _default_path()
    if not p.exists():
        raise FileNotFoundError(
            f"NATS-Bench tss file not found at {str(p)!r}: download 'NATS-tss-v1_0-3ffb9-simple' (see "
            "https://github.com/D-X-Y/NATS-Bench) and extract it there, or pass path=... "
            "(default location: $TORCH_HOME/NATS-tss-v1_0-3ffb9-simple)"
        )
    api = _api(str(p))
    index = api.query_index_by_arch(arch_str)
    if index is None or index < 0:
        raise ValueError(f"arch_str {arch_str!r} is not in the NATS-Bench tss space")
    info = dict(api.get_more_info(index, dataset, hp=hp, is_random=False))
    info["index"] = int(index)
    return info
