"""The DARTS search space (mixed operations, cells, supernet, genotype) and the NATS-Bench topology space.

Shapes: ``dims=2`` networks take ``(N, in_channels, H, W)``; ``dims=1`` networks take ``(N, in_channels, L)``.
Architecture parameters α are registered ``nn.Parameter`` s of the supernet (so they travel with ``state_dict``,
``.to()`` and ``deepcopy``); give the weight optimiser :meth:`SearchNetwork.weight_parameters` and the
architecture optimiser :meth:`SearchNetwork.arch_parameters`.

Follows ``quark0/darts`` ``cnn/model_search.py`` / ``cnn/model.py`` (read for this package) and the
NAS-Bench-201 search cell of ``D-X-Y/AutoDL-Projects``.
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
    NATS_PRIMITIVES,
    OPS,
    FactorizedReduce,
    ReLUConvBN,
    _bn,
    _conv,
    check_dims,
    check_stride,
    make_op,
    reset_all_parameters,
)

__all__ = [
    "EvalNetwork",
    "Genotype",
    "MixedOp",
    "NATSSearchCell",
    "NATSSearchNetwork",
    "SearchCell",
    "SearchNetwork",
    "format_arch_str",
    "genotype_from_alphas",
    "num_edges",
    "parse_arch_str",
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


def _check_primitives(primitives: Sequence[str]) -> tuple[str, ...]:
    if isinstance(primitives, str):
        raise TypeError(
            f"primitives must be a sequence of operation names, got the str {primitives!r} "
            f"(write ({primitives!r},))"
        )
    prims = tuple(primitives)
    if not prims:
        raise ValueError("primitives must name at least one operation, got an empty sequence")
    for name in prims:
        if name not in OPS:
            raise ValueError(f"unknown primitive {name!r} in primitives; registered: {sorted(OPS)}")
    if len(set(prims)) != len(prims):
        raise ValueError(f"primitives must be distinct, got {prims}")
    return prims


def _check_alpha_shape(alphas: Tensor, expected: tuple[int, int], name: str) -> None:
    if tuple(alphas.shape) != expected:
        raise ValueError(f"{name} must have shape (E, |O|) = {expected}, got {tuple(alphas.shape)}")


def _check_finite_alpha(alphas: Tensor, name: str) -> None:
    """Derivation on NaN/Inf α would silently pick an arbitrary op: refuse it (one host sync; not per step)."""
    bad = ~torch.isfinite(alphas.detach())
    if bool(bad.any()):
        rows = sorted({int(i) for i in bad.nonzero()[:, 0].tolist()})
        raise ValueError(f"{name} holds NaN/Inf (rows {rows}); cannot derive an architecture")


def _check_input(x: Tensor, dims: int, in_channels: int, reductions: int, name: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    expected = "(N, C, L)" if dims == 1 else "(N, C, H, W)"
    if x.dim() != dims + 2 or x.shape[1] != in_channels:
        raise ValueError(
            f"{name} must have shape {expected} with C={in_channels}, got {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N=0)")
    factor = 2**reductions
    for size in x.shape[2:]:
        if size < factor or size % factor != 0:
            raise ValueError(
                f"{name} spatial size {tuple(x.shape[2:])} is too small or not divisible for "
                f"{reductions} reduction(s): every spatial size must be a positive multiple of {factor}"
            )


class MixedOp(nn.Module):
    """Mixed edge ō(x) = Σ_o softmax(α)_o · o(x) over ``primitives``.

    Args:
        C: channels (kept). stride: 1 or 2. primitives: operation names from :data:`~paperzoo.rarts.ops.OPS`.
        dims: 1 or 2. pool_bn: append BN(affine=False) after pooling ops (DARTS: yes; NAS-Bench-201: no).
        affine: BN affinity inside the ops (search: False, as DARTS).

    ``forward(x (N, C, *S), weights (|O|,))`` → ``(N, C, *S/stride)``; ``weights`` are the softmax weights.
    The ``none`` operation is not evaluated: its output is exactly zero, so dropping the term is identical
    (value and gradient) and saves a multiply per edge.
    """

    def __init__(
        self,
        C: int,
        stride: int,
        primitives: Sequence[str] = DARTS_PRIMITIVES,
        dims: int = 2,
        *,
        pool_bn: bool = True,
        affine: bool = False,
    ) -> None:
        super().__init__()
        self.primitives = _check_primitives(primitives)
        self.stride = check_stride(stride)
        self.dims = check_dims(dims)
        ops = []
        active = []
        for k, name in enumerate(self.primitives):
            op = make_op(name, C, stride, affine=affine, dims=dims)
            if pool_bn and "pool" in name:
                op = nn.Sequential(op, _bn(dims, C, False))
            ops.append(op)
            if name != "none":
                active.append(k)
        self._ops = nn.ModuleList(ops)
        self.register_buffer("_active", torch.tensor(active, dtype=torch.long), persistent=False)
        self._active_list = active

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        if weights.shape != (len(self.primitives),):
            raise ValueError(
                f"weights must have shape (|O|,) = ({len(self.primitives)},), got {tuple(weights.shape)}"
            )
        if not self._active_list:
            return self._ops[0](x)  # type: ignore[no-any-return]
        outs = torch.stack([self._ops[k](x) for k in self._active_list])
        active = self._active
        assert isinstance(active, Tensor)
        w = weights.index_select(0, active).to(outs.dtype)
        out: Tensor = torch.tensordot(w, outs, dims=1)
        return out


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
        self.num_ops = len(_check_primitives(primitives))
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
        _check_alpha_shape(weights, (len(self._ops), self.num_ops), "weights")
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
    prims = _check_primitives(primitives)
    if not isinstance(alphas, Tensor):
        raise TypeError(f"alphas must be a Tensor of shape (E, |O|), got {type(alphas).__name__}")
    if all(p == "none" for p in prims):
        raise ValueError(f"primitives must contain an operation other than 'none', got {prims}")
    _check_alpha_shape(alphas, (num_edges(steps), len(prims)), "alphas")
    _check_finite_alpha(alphas, "alphas")
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
        self.primitives = _check_primitives(primitives)
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
            _conv(dims)(in_channels, C_curr, 3, padding=1, bias=False), _bn(dims, C_curr, True)
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
        _check_input(x, self.dims, self.in_channels, len(self.reduction_cells))
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
    prims = [p for p in _check_primitives(primitives) if p != "none"]
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
            _conv(dims)(in_channels, C_curr, 3, padding=1, bias=False), _bn(dims, C_curr, True)
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
        _check_input(x, self.dims, self.in_channels, len(self.reduction_cells))
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(s1.mean(dim=tuple(range(2, s1.dim()))))  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------------
# NATS-Bench topology search space (NAS-Bench-201)


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
        self.num_ops = len(_check_primitives(primitives))
        self.edges = nn.ModuleList(
            MixedOp(C, 1, primitives, dims, pool_bn=False)
            for i in range(1, max_nodes)
            for _ in range(i)
        )

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        _check_alpha_shape(weights, (len(self.edges), self.num_ops), "weights")
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
        self.downsample = nn.Sequential(pool, _conv(dims)(inplanes, planes, 1, bias=False))

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
        self.primitives = _check_primitives(primitives)
        self.in_channels, self.max_nodes = in_channels, max_nodes
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            _conv(dims)(in_channels, C, 3, padding=1, bias=False), _bn(dims, C, True)
        )
        layers: list[nn.Module] = []
        C_prev = C
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(_ResNetBasicBlock(C_prev, width, dims))
            layers += [NATSSearchCell(width, self.primitives, max_nodes, dims) for _ in range(N)]
            C_prev = width
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(_bn(dims, C_prev, True), nn.ReLU(inplace=False))
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
        _check_input(x, self.dims, self.in_channels, 2)
        weights = F.softmax(self.arch_alphas, dim=-1)
        h = self.stem(x)
        for layer in self.cells:
            h = layer(h, weights) if isinstance(layer, NATSSearchCell) else layer(h)
        h = self.lastact(h)
        return self.classifier(h.mean(dim=tuple(range(2, h.dim()))))  # type: ignore[no-any-return]

    def arch_str(self) -> str:
        """The derived architecture: per edge the arg-max op (``none`` included, as NAS-Bench-201; ties: the
        earlier primitive). ``ValueError`` if α holds NaN/Inf."""
        _check_finite_alpha(self.arch_alphas, "arch_alphas")
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
