"""The DARTS search space: search cells and supernet, genotype derivation, and the derived evaluation network.

Shapes: ``dims=2`` networks take ``(N, in_channels, H, W)``; ``dims=1`` networks take ``(N, in_channels, L)``.
Architecture parameters α are registered ``nn.Parameter`` s of the supernet (so they travel with ``state_dict``,
``.to()`` and ``deepcopy``); give the weight optimiser :meth:`SearchNetwork.weight_parameters` and the
architecture optimiser :meth:`SearchNetwork.arch_parameters`.

Follows ``quark0/darts`` ``cnn/model_search.py`` / ``cnn/model.py`` (read for this package). The mixed edge
:class:`~paperzoo.rarts.ops.MixedOp` lives with the operations; the NATS-Bench topology space is in
:mod:`paperzoo.rarts.nats`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.rarts.ops import (
    DARTS_PRIMITIVES,
    OPS,
    FactorizedReduce,
    MixedOp,
    ReLUConvBN,
    batch_norm_nd,
    check_alpha_shape,
    check_dims,
    check_finite_alpha,
    check_network_input,
    check_primitives,
    conv_nd,
    make_op,
    reset_all_parameters,
)

__all__ = [
    "EvalNetwork",
    "Genotype",
    "SearchCell",
    "SearchNetwork",
    "genotype_from_alphas",
    "num_edges",
    "random_genotype",
]


class Genotype(NamedTuple):
    """A discrete DARTS cell pair: per cell type a list of ``(op_name, input_index)`` (2 per node) and the
    indices of the states concatenated into the cell output."""

    normal: list[tuple[str, int]]
    normal_concat: list[int]
    reduce: list[tuple[str, int]]
    reduce_concat: list[int]


def num_edges(steps: int) -> int:
    """Number of mixed edges E = Σ_{j<steps} (j + 2) of a DARTS cell with ``steps`` intermediate nodes."""
    return sum(j + 2 for j in range(steps))


class SearchCell(nn.Module):
    """A DARTS search cell: 2 input nodes, ``steps`` intermediate nodes, every edge a :class:`MixedOp`.

    ``forward(s0 (N, C_pp, *S), s1 (N, C_p, *S), weights (E, |O|))`` → ``(N, multiplier·C, *S')``,
    ``S' = S/2`` for a reduction cell. Node j = Σ_{i<j} ō^{(i,j)}(x_i); output = concat of the last
    ``multiplier`` nodes.
    """

    def __init__(
        self,
        steps: int,
        multiplier: int,
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
        primitives: Sequence[str] = DARTS_PRIMITIVES,
        dims: int = 2,
    ) -> None:
        super().__init__()
        if steps < 1 or not 1 <= multiplier <= steps:
            raise ValueError(
                f"need steps >= 1 and 1 <= multiplier <= steps, got {steps}, {multiplier}"
            )
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        self.num_ops = len(check_primitives(primitives))
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(C_prev_prev, C, affine=False, dims=dims)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False, dims=dims)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False, dims=dims)
        self._ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self._ops.append(MixedOp(C, stride, primitives, dims))

    def forward(self, s0: Tensor, s1: Tensor, weights: Tensor) -> Tensor:
        check_alpha_shape(weights, (len(self._ops), self.num_ops), "weights")
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self.multiplier :], dim=1)


def genotype_from_alphas(
    alphas: Tensor, primitives: Sequence[str], steps: int
) -> list[tuple[str, int]]:
    """Discretise one cell's α ``(E, |O|)``: per intermediate node keep the 2 strongest incoming edges
    (strength = largest softmax weight over non-``none`` ops) with their arg-max non-``none`` op.

    Same rule as ``Network._parse`` of ``quark0/darts``. Ties (e.g. uniform α at initialisation): equally
    strong edges keep the lower input index, equally weighted ops the earlier primitive. ``ValueError`` if α
    holds NaN/Inf or ``primitives`` has no operation besides ``none``.
    """
    prims = check_primitives(primitives)
    if not isinstance(alphas, Tensor):
        raise TypeError(f"alphas must be a Tensor of shape (E, |O|), got {type(alphas).__name__}")
    if all(p == "none" for p in prims):
        raise ValueError(f"primitives must contain an operation other than 'none', got {prims}")
    check_alpha_shape(alphas, (num_edges(steps), len(prims)), "alphas")
    check_finite_alpha(alphas, "alphas")
    weights = F.softmax(alphas.detach().double(), dim=-1)
    if "none" in prims:
        weights[:, prims.index("none")] = -math.inf
    strength, best = weights.max(dim=-1)
    strength_l, best_l = strength.tolist(), best.tolist()
    gene: list[tuple[str, int]] = []
    start = 0
    for i in range(steps):
        n = i + 2
        edges = sorted(range(n), key=lambda j: (-strength_l[start + j], j))[:2]
        for j in sorted(edges):
            gene.append((prims[best_l[start + j]], j))
        start += n
    return gene


class SearchNetwork(nn.Module):
    """The DARTS supernet (``Network`` of ``quark0/darts`` ``model_search.py``).

    Args:
        C: initial channels (DARTS search: 16; our CPU default in the reproduction: 8).
        num_classes: classes of the linear head.
        layers: number of cells L (DARTS: 8).
        steps: intermediate nodes N per cell (DARTS: 4). multiplier: nodes concatenated (DARTS: 4).
        primitives: candidate operations (default :data:`DARTS_PRIMITIVES`).
        in_channels: input channels (DARTS CIFAR: 3). dims: 1 (Conv1d ops) or 2.
        stem_multiplier: stem width = stem_multiplier·C (DARTS: 3).
        reduction_cells: indices of the reduction cells; default ``(L//3, 2L//3)`` as DARTS.
            Deviation: exposed so the spec's 3-cell N-R-N CPU net can be built (DARTS' rule gives N-R-R).

    ``forward(x (N, in_channels, *S))`` → logits ``(N, num_classes)``. Every spatial size must be a multiple
    of 2**(number of reduction cells). α: ``alphas_normal``, ``alphas_reduce`` of shape ``(E, |O|)``,
    initialised ``1e-3·N(0, 1)`` as DARTS.
    """

    def __init__(
        self,
        C: int,
        num_classes: int,
        layers: int,
        steps: int = 4,
        multiplier: int = 4,
        primitives: Sequence[str] = DARTS_PRIMITIVES,
        in_channels: int = 3,
        dims: int = 2,
        stem_multiplier: int = 3,
        reduction_cells: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.dims = check_dims(dims)
        self.primitives = check_primitives(primitives)
        if C < 2 or C % 2 != 0:
            raise ValueError(f"C must be an even number >= 2, got {C}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        if in_channels < 1 or stem_multiplier < 1:
            raise ValueError(
                f"in_channels and stem_multiplier must be >= 1, got {in_channels}, {stem_multiplier}"
            )
        self.C, self.num_classes, self.layers = C, num_classes, layers
        self.steps, self.multiplier, self.in_channels = steps, multiplier, in_channels
        self.stem_multiplier = stem_multiplier
        if reduction_cells is None:
            reduction_cells = sorted({layers // 3, 2 * layers // 3} - {0}) if layers >= 3 else []
        self.reduction_cells = tuple(sorted(set(reduction_cells)))
        for r in self.reduction_cells:
            if not 0 <= r < layers:
                raise ValueError(
                    f"reduction_cells must lie in [0, {layers}), got {self.reduction_cells}"
                )
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(
            conv_nd(dims)(in_channels, C_curr, 3, padding=1, bias=False),
            batch_norm_nd(dims, C_curr, True),
        )
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in self.reduction_cells
            if reduction:
                C_curr *= 2
            cell = SearchCell(
                steps,
                multiplier,
                C_pp,
                C_p,
                C_curr,
                reduction,
                reduction_prev,
                self.primitives,
                dims,
            )
            reduction_prev = reduction
            self.cells.append(cell)
            C_pp, C_p = C_p, multiplier * C_curr
        self.classifier = nn.Linear(C_p, num_classes)
        E, O = num_edges(steps), len(self.primitives)
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(E, O))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(E, O))

    def reset_parameters(self) -> None:
        """Re-initialise every weight (PyTorch defaults) and α (``1e-3·N(0, 1)``) from the global RNG."""
        reset_all_parameters(self)
        with torch.no_grad():
            self.alphas_normal.normal_(0.0, 1e-3)
            self.alphas_reduce.normal_(0.0, 1e-3)

    def arch_parameters(self) -> list[nn.Parameter]:
        """α: ``[alphas_normal (E, |O|), alphas_reduce (E, |O|)]``."""
        return [self.alphas_normal, self.alphas_reduce]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except α (the network weights w)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def forward(self, x: Tensor) -> Tensor:
        check_network_input(x, self.dims, self.in_channels, len(self.reduction_cells))
        s0 = s1 = self.stem(x)
        w_normal = F.softmax(self.alphas_normal, dim=-1)
        w_reduce = F.softmax(self.alphas_reduce, dim=-1)
        for cell in self.cells:
            weights = w_reduce if cell.reduction else w_normal
            s0, s1 = s1, cell(s0, s1, weights)
        out = s1.mean(dim=tuple(range(2, s1.dim())))
        return self.classifier(out)  # type: ignore[no-any-return]

    def genotype(self) -> Genotype:
        """Derive the discrete architecture (2 strongest edges per node, ``none`` excluded)."""
        concat = list(range(2 + self.steps - self.multiplier, self.steps + 2))
        return Genotype(
            normal=genotype_from_alphas(self.alphas_normal, self.primitives, self.steps),
            normal_concat=concat,
            reduce=genotype_from_alphas(self.alphas_reduce, self.primitives, self.steps),
            reduce_concat=concat,
        )

    def alpha_entropy(self) -> dict[str, float]:
        """Mean entropy (nats) of softmax(α) per edge, per cell type (collapse diagnostic; max = ln|O|)."""
        out = {}
        for name, a in (("normal", self.alphas_normal), ("reduce", self.alphas_reduce)):
            p = F.softmax(a.detach().double(), dim=-1)
            out[name] = float(-(p * p.clamp_min(1e-300).log()).sum(-1).mean())
        return out

    def op_counts(self) -> dict[str, dict[str, int]]:
        """How often each op is chosen in the derived genotype, per cell type (collapse to
        parameter-free ops shows up as many ``skip_connect``)."""
        g = self.genotype()
        counts: dict[str, dict[str, int]] = {}
        for name, gene in (("normal", g.normal), ("reduce", g.reduce)):
            c = dict.fromkeys(self.primitives, 0)
            for op, _ in gene:
                c[op] += 1
            counts[name] = c
        return counts


def random_genotype(
    primitives: Sequence[str],
    steps: int,
    multiplier: int | None = None,
    *,
    generator: torch.Generator,
) -> Genotype:
    """A uniformly random DARTS genotype: per node 2 distinct random inputs, each a random non-``none`` op."""
    prims = [p for p in check_primitives(primitives) if p != "none"]
    if not prims:
        raise ValueError("primitives must contain an operation other than 'none'")
    multiplier = steps if multiplier is None else multiplier

    def cell() -> list[tuple[str, int]]:
        gene = []
        for i in range(steps):
            inputs = torch.randperm(i + 2, generator=generator)[:2].sort().values.tolist()
            ops = torch.randint(len(prims), (2,), generator=generator).tolist()
            gene += [(prims[o], j) for o, j in zip(ops, inputs, strict=True)]
        return gene

    concat = list(range(2 + steps - multiplier, steps + 2))
    return Genotype(cell(), concat, cell(), concat)


class _DropPath(nn.Module):
    def __init__(self, op: nn.Module) -> None:
        super().__init__()
        self.op = op
        self.drop_prob = 0.0

    def forward(self, x: Tensor) -> Tensor:
        y: Tensor = self.op(x)
        if self.training and self.drop_prob > 0.0 and not isinstance(self.op, nn.Identity):
            keep = 1.0 - self.drop_prob
            shape = (y.shape[0],) + (1,) * (y.dim() - 1)
            mask = torch.empty(shape, device=y.device, dtype=y.dtype).bernoulli_(keep)
            y = y / keep * mask
        return y


class _EvalCell(nn.Module):
    def __init__(
        self,
        gene: Sequence[tuple[str, int]],
        concat: Sequence[int],
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
        dims: int,
    ) -> None:
        super().__init__()
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(C_prev_prev, C, affine=True, dims=dims)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=True, dims=dims)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=True, dims=dims)
        if len(gene) % 2 != 0 or not gene:
            raise ValueError(f"a genotype cell needs 2 (op, input) pairs per node, got {len(gene)}")
        self.steps = len(gene) // 2
        self.concat = list(concat)
        self.reduction = reduction
        self.indices = [j for _, j in gene]
        for i, j in enumerate(self.indices):
            if not 0 <= j < 2 + i // 2:
                raise ValueError(f"genotype edge {gene[i]} reads a node that does not exist yet")
        for c in self.concat:
            if not 0 <= c < 2 + self.steps:
                raise ValueError(f"genotype concat index {c} out of range [0, {2 + self.steps})")
        self._ops = nn.ModuleList(
            _DropPath(make_op(name, C, 2 if reduction and j < 2 else 1, affine=True, dims=dims))
            for name, j in gene
        )

    def forward(self, s0: Tensor, s1: Tensor) -> Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            h1 = self._ops[2 * i](states[self.indices[2 * i]])
            h2 = self._ops[2 * i + 1](states[self.indices[2 * i + 1]])
            states.append(h1 + h2)
        return torch.cat([states[i] for i in self.concat], dim=1)


class EvalNetwork(nn.Module):
    """The network built from a :class:`Genotype` for retraining (``NetworkCIFAR`` of ``quark0/darts``).

    ``forward(x (N, in_channels, *S))`` → logits ``(N, num_classes)``. Reduction cells at ``(L//3, 2L//3)``.
    ``drop_path_prob`` (DARTS: 0.2) applies to every non-identity op during training.

    Deviation: no auxiliary head and no cutout (DARTS' 600-epoch CIFAR recipe); at our CPU scale (a few
    thousand 1-D examples, tens of epochs) they add cost without changing the comparison between methods.
    """

    def __init__(
        self,
        genotype: Genotype,
        C: int,
        num_classes: int,
        layers: int,
        in_channels: int = 3,
        dims: int = 2,
        stem_multiplier: int = 3,
        drop_path_prob: float = 0.0,
        reduction_cells: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.dims = check_dims(dims)
        if C < 2 or C % 2 != 0:
            raise ValueError(f"C must be an even number >= 2, got {C}")
        if not 0.0 <= drop_path_prob < 1.0:
            raise ValueError(f"drop_path_prob must lie in [0, 1), got {drop_path_prob}")
        for name, _ in list(genotype.normal) + list(genotype.reduce):
            if name not in OPS:
                raise ValueError(
                    f"unknown primitive {name!r} in genotype; registered: {sorted(OPS)}"
                )
        if num_classes < 1 or layers < 1 or in_channels < 1:
            raise ValueError(
                "num_classes, layers and in_channels must be >= 1, got "
                f"{num_classes}, {layers}, {in_channels}"
            )
        self.genotype = genotype
        self.in_channels = in_channels
        if reduction_cells is None:
            reduction_cells = sorted({layers // 3, 2 * layers // 3} - {0}) if layers >= 3 else []
        self.reduction_cells = tuple(sorted(set(reduction_cells)))
        if any(not 0 <= r < layers for r in self.reduction_cells):
            raise ValueError(
                f"reduction_cells must lie in [0, {layers}), got {self.reduction_cells}"
            )
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(
            conv_nd(dims)(in_channels, C_curr, 3, padding=1, bias=False),
            batch_norm_nd(dims, C_curr, True),
        )
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in self.reduction_cells
            if reduction:
                C_curr *= 2
            gene, concat = (
                (genotype.reduce, genotype.reduce_concat)
                if reduction
                else (genotype.normal, genotype.normal_concat)
            )
            cell = _EvalCell(gene, concat, C_pp, C_p, C_curr, reduction, reduction_prev, dims)
            reduction_prev = reduction
            self.cells.append(cell)
            C_pp, C_p = C_p, len(cell.concat) * C_curr
        self.classifier = nn.Linear(C_p, num_classes)
        self.drop_path_prob = drop_path_prob

    @property
    def drop_path_prob(self) -> float:
        """Drop-path probability of every non-identity op (DARTS ramps it linearly over epochs)."""
        return self._drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, value: float) -> None:
        self._drop_path_prob = float(value)
        for m in self.modules():
            if isinstance(m, _DropPath):
                m.drop_prob = float(value)

    def reset_parameters(self) -> None:
        """Re-initialise every weight with PyTorch's defaults."""
        reset_all_parameters(self)

    def forward(self, x: Tensor) -> Tensor:
        check_network_input(x, self.dims, self.in_channels, len(self.reduction_cells))
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(s1.mean(dim=tuple(range(2, s1.dim()))))  # type: ignore[no-any-return]
