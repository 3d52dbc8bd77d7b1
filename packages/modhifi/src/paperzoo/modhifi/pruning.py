"""ModHiFi-P: structured pruning by Subset Fidelity with closed-form compensation (Section 4, App. D).

Per layer (or coupled group of layers sharing their input channels), front to back, with the
statistics of the model as already edited: score every component ``(c, i)``, keep input channel
``i`` when it is among the top-``k`` of ANY output channel (the union rule), zero ``W[:, i]`` for
the others, and rescale each surviving kernel slice by the optimal ``delta_ci`` (Prop. 3.8); after
the last layer re-estimate the BatchNorm statistics on the calibration data. No labels and no
gradients are used.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_choice, check_positive, check_positive_int
from paperzoo.modhifi.calibration import (
    CalibrationData,
    calibration_batches,
    eval_mode,
    recalibrate_batchnorm,
    resolve_layer,
    run_model,
    warn_if_training,
)
from paperzoo.modhifi.fidelity import RidgeMode, compensation
from paperzoo.modhifi.stats import Center, LayerStats, Score, ceil_count, check_scorable

__all__ = [
    "LayerSpec",
    "ModHiFiPruner",
    "PruningPlan",
    "input_channels",
    "l2_channel_scores",
    "mask_input_channels",
    "select_channels",
]

LayerSpec = str | nn.Module | Sequence[str | nn.Module]
"""One layer (name or module), or a group of layers whose input channels are coupled (e.g. the
convolutions reading one residual stream): they keep or drop the same channels together."""


def input_channels(layer: nn.Module) -> int:
    """``n``: input channels of a Conv2d / input features of a Linear."""
    return int(layer.in_channels if isinstance(layer, nn.Conv2d) else layer.in_features)  # type: ignore[arg-type]


def select_channels(
    scores: Sequence[Tensor], *, keep: float | None = None, budget: int | None = None
) -> Tensor:
    """Which input channels survive, bool ``(n,)``, from component scores ``(c_out, n)`` of one
    group's layers (higher = more important).

    ``rank_c(i)`` is ``i``'s 0-based rank in output channel ``c``'s descending order (ties broken by
    index) and ``r_i = min`` over all output channels of all layers. With ``keep``: ``i`` survives
    iff ``r_i < ceil(keep * n)`` (the paper's union rule). With ``budget`` (our addition): the
    ``budget`` channels of smallest ``r_i``, ties broken by the largest score of ``i``. Give
    exactly one of the two.

    Raises:
        ValueError: both or neither given, ``keep`` outside ``(0, 1]``, ``budget`` outside
            ``[1, n]``, or score matrices with different ``n``.
    """
    if (keep is None) == (budget is None):
        raise ValueError("keep, budget: give exactly one of them")
    if not scores:
        raise ValueError("scores: expected at least one score matrix, got none")
    n = scores[0].shape[1]
    if any(s.dim() != 2 or s.shape[1] != n for s in scores):
        shapes = [tuple(s.shape) for s in scores]
        raise ValueError(f"scores: expected (c_out, n) matrices with one n, got {shapes}")
    ranks = (
        torch.stack(
            [
                s.argsort(dim=1, descending=True, stable=True).argsort(dim=1).min(0).values
                for s in scores
            ]
        )
        .min(0)
        .values
    )
    if keep is not None:
        return ranks < ceil_count(_check_keep(keep), n)
    b = _check_budget(budget, n)
    best = torch.stack([s.max(0).values.double() for s in scores]).max(0).values
    order = best.argsort(descending=True, stable=True)
    order = order[ranks[order].argsort(stable=True)]
    mask = torch.zeros(n, dtype=torch.bool, device=ranks.device)
    mask[order[:b]] = True
    return mask


def _check_keep(keep: object) -> float:
    k = check_positive("keep", keep)
    if k > 1.0:
        raise ValueError(f"keep: expected a value in (0, 1], got {keep!r}")
    return k


def _check_budget(budget: object, n: int) -> int:
    b = check_positive_int("budget", budget)
    if b > n:
        raise ValueError(f"budget: expected at most n = {n} input channels, got {b}")
    return b


@torch.no_grad()
def mask_input_channels(layer: nn.Module, kept: Tensor) -> None:
    """Zero ``W[:, i]`` for every input channel ``i`` not in the bool mask ``kept`` ``(n,)`` (in place)."""
    w = layer.weight
    assert isinstance(w, Tensor)
    shape = (1, -1) + (1,) * (w.dim() - 2)
    w.mul_(kept.to(w.dtype).view(shape))


@dataclass
class PruningPlan:
    """What :meth:`ModHiFiPruner.fit` decided.

    Attributes:
        groups: the layer names of each coupled group, in processing order.
        kept: ``{layer: kept input indices (k,)}`` (0-based, sorted, int64).
        delta: ``{layer: (c_out, n) float64 scales}``; 0 on pruned channels, 1 on kept ones
            without compensation.
    """

    groups: list[list[str]]
    kept: dict[str, Tensor] = field(default_factory=dict)
    delta: dict[str, Tensor] = field(default_factory=dict)

    def num_kept(self) -> dict[str, int]:
        """``{layer: number of kept input channels}``."""
        return {k: int(v.numel()) for k, v in self.kept.items()}


class ModHiFiPruner:
    """ModHiFi-P: prune the input channels of ``layers`` by Subset Fidelity, then compensate.

    Args:
        model: the network (edited in place by :meth:`apply`).
        layers: layer names/modules, or groups of them with coupled input channels (a group's
            layers must have the same ``n``); processed in this order (front to back).
        keep: fraction of each output channel's top components kept, in ``(0, 1]`` (paper: remove
            the bottom 1-20% per iteration, ``keep`` 0.8-0.99). Default 0.9.
        budget: instead of ``keep``: keep exactly this many input channels per group (one int
            for all groups or one per group; our addition, for equal-budget comparisons).
        compensate: rescale survivors by Prop. 3.8's ``delta`` (needs ``Q``). Default True.
        recalibrate_bn: re-estimate BatchNorm statistics on the calibration data in
            :meth:`apply` (paper follows OBC). Default True.
        ridge, ridge_mode: as in :func:`~paperzoo.modhifi.fidelity.compensation` (1e-4, absolute).
        score: ``"saliency"`` (paper's vision default), ``"fidelity"`` or ``"energy"``.
        center: see :data:`~paperzoo.modhifi.stats.Center` (``"auto"``).

    Example: ``plan = ModHiFiPruner(net, ["conv2", "conv3"], budget=16).fit(x_synth)`` then
    ``pruner.apply()`` and ``small = pruner.materialize()``.

    Raises:
        TypeError/ValueError: an unsupported or missing layer, ``keep`` outside ``(0, 1]``, a
            budget outside ``[1, n]``, a coupled group with different channel counts, a negative ridge.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[LayerSpec],
        *,
        keep: float = 0.9,
        budget: int | Sequence[int] | None = None,
        compensate: bool = True,
        recalibrate_bn: bool = True,
        ridge: float = 1e-4,
        ridge_mode: RidgeMode = "absolute",
        score: Score = "saliency",
        center: Center = "auto",
    ) -> None:
        if isinstance(layers, str | nn.Module) or not layers:
            raise ValueError("layers: expected a non-empty sequence of layers or groups")
        self.model = model
        self.groups: list[list[str]] = []
        self._sizes: list[int] = []
        for spec in layers:
            members = [spec] if isinstance(spec, str | nn.Module) else list(spec)
            if not members:
                raise ValueError("layers: a coupled group is empty")
            names = [resolve_layer(model, m)[0] for m in members]
            sizes = [input_channels(check_scorable(nm, model.get_submodule(nm))) for nm in names]
            if len(set(sizes)) != 1:
                raise ValueError(
                    f"layers: coupled group {names} has mismatched input channel counts {sizes}"
                )
            self.groups.append(names)
            self._sizes.append(sizes[0])
        self.keep = _check_keep(keep)
        self.budgets: list[int] | None = None
        if budget is not None:
            per = [budget] * len(self.groups) if isinstance(budget, int) else list(budget)
            if len(per) != len(self.groups):
                raise ValueError(
                    f"budget: expected one int or one per group ({len(self.groups)}), got {budget!r}"
                )
            self.budgets = [_check_budget(b, n) for b, n in zip(per, self._sizes, strict=True)]
        self.compensate = bool(compensate)
        self.recalibrate_bn = bool(recalibrate_bn)
        self.ridge = check_positive("ridge", ridge, allow_zero=True)
        self.ridge_mode: RidgeMode = check_choice(
            "ridge_mode", ridge_mode, ("absolute", "relative")
        )
        self.score: Score = check_choice("score", score, ("saliency", "fidelity", "energy"))
        self.center: Center = check_choice(
            "center", center, ("auto", "none", "position", "channel")
        )
        self.plan: PruningPlan | None = None
        self._batches: list[Tensor] = []
        self._applied = False

    @torch.no_grad()
    def fit(self, data: CalibrationData) -> PruningPlan:
        """Score, select and compensate every group on a copy of the model; return the plan.

        ``data``: calibration inputs (synthetic or real; labels ignored). The model is not changed.
        """
        batches = calibration_batches(data)
        warn_if_training(self.model)
        work = copy.deepcopy(self.model).eval()
        plan = PruningPlan(groups=[list(g) for g in self.groups])
        for g, names in enumerate(self.groups):
            stats = [
                LayerStats.collect(work, nm, batches, center=self.center, need_q=self.compensate)
                for nm in names
            ]
            kept = select_channels(
                [s.scores(self.score) for s in stats],
                keep=None if self.budgets is not None else self.keep,
                budget=None if self.budgets is None else self.budgets[g],
            )
            for nm, st in zip(names, stats, strict=True):
                if self.compensate:
                    assert st.q is not None
                    delta = compensation(st.q, kept, self.ridge, self.ridge_mode)
                else:
                    delta = kept.double().expand_as(st.saliency).clone()
                _scale_slices(work.get_submodule(nm), delta)
                plan.kept[nm] = kept.nonzero().flatten().cpu()
                plan.delta[nm] = delta
        self.plan = plan
        self._batches = batches
        self._applied = False
        return plan

    @torch.no_grad()
    def apply(self) -> nn.Module:
        """Write the plan into the model (zeroed and rescaled kernel slices), then recalibrate BN.

        Raises:
            RuntimeError: before :meth:`fit`, or applied twice for one fit.
        """
        if self.plan is None:
            raise RuntimeError("apply: call fit(data) first")
        if self._applied:
            raise RuntimeError("apply: this plan is already applied; call fit again")
        for nm, delta in self.plan.delta.items():
            _scale_slices(self.model.get_submodule(nm), delta)
        if self.recalibrate_bn:
            recalibrate_batchnorm(self.model, self._batches)
        self._applied = True
        return self.model

    @torch.no_grad()
    def materialize(self) -> nn.Module:
        """A physically smaller copy of the applied model (Sequential-style CNNs and MLPs).

        For each pruned single layer, its producer is the previous Conv2d/Linear in module order
        with ``n`` outputs; the producer's output channels, every BatchNorm over them in between,
        and the layer's input channels are sliced to the kept indices. The copy's output is
        checked against the masked model on a calibration batch.

        Raises:
            RuntimeError: before :meth:`apply`; ValueError: a coupled group (use a dependency-graph
                tool such as torch-pruning), no matching producer, or a model whose output changes.
        """
        if self.plan is None or not self._applied:
            raise RuntimeError("materialize: call fit(data) and apply() first")
        small = copy.deepcopy(self.model).eval()
        leaves = _leaves(small)
        for names in self.plan.groups:
            if len(names) != 1:
                raise ValueError(
                    f"materialize: coupled group {names} needs a dependency graph; slice it with "
                    "torch-pruning using plan.kept"
                )
            _slice_pair(leaves, names[0], self.plan.kept[names[0]])
        x = self._batches[0]
        with eval_mode(self.model, warn=False), eval_mode(small, warn=False):
            ref, got = run_model(self.model, x), run_model(small, x)
        if not torch.allclose(ref, got, rtol=1e-4, atol=1e-4 * float(ref.abs().max()) + 1e-6):
            raise ValueError(
                "materialize: the sliced model's output differs from the masked one; the model "
                "is not Sequential-style (slice it with a dependency-graph tool)"
            )
        return small


def _scale_slices(layer: nn.Module, delta: Tensor) -> None:
    w = layer.weight
    assert isinstance(w, Tensor)
    w.mul_(delta.to(w.dtype).view(*delta.shape, *((1,) * (w.dim() - 2))))


def _slice_param(m: nn.Module, name: str, idx: Tensor, dim: int) -> None:
    t = getattr(m, name, None)
    if t is None:
        return
    new = t.detach().index_select(dim, idx.to(t.device)).clone()
    if isinstance(t, nn.Parameter):
        setattr(m, name, nn.Parameter(new, requires_grad=t.requires_grad))
    else:
        setattr(m, name, new)


def _producer(
    leaves: list[tuple[str, nn.Module]], name: str
) -> tuple[nn.Conv2d | nn.Linear, list[nn.modules.batchnorm._BatchNorm], nn.Conv2d | nn.Linear]:
    """``(producer, BatchNorms in between, consumer)`` of layer ``name`` in leaf-module order."""
    pos = next(i for i, (nm, _) in enumerate(leaves) if nm == name)
    consumer = leaves[pos][1]
    assert isinstance(consumer, nn.Conv2d | nn.Linear)
    n = input_channels(consumer)
    bns: list[nn.modules.batchnorm._BatchNorm] = []
    producer: nn.Conv2d | nn.Linear | None = None
    for _, m in reversed(leaves[:pos]):
        if isinstance(m, nn.Conv2d | nn.Linear):
            producer = m
            break
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            bns.append(m)
    out = None
    if isinstance(producer, nn.Conv2d):
        out = producer.out_channels
    elif isinstance(producer, nn.Linear):
        out = producer.out_features
    if producer is None or out != n or any(b.num_features != n for b in bns):
        raise ValueError(f"layers: no producer with {n} outputs right before {name!r}")
    return producer, bns, consumer


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(nm, m) for nm, m in model.named_modules() if not list(m.children())]


def l2_channel_scores(model: nn.Module, layer: str | nn.Module) -> Tensor:
    """The L2-norm filter-pruning baseline's scores ``(n,)`` for the input channels of ``layer``:
    the L2 norm of each output filter of its producer (the previous Conv2d/Linear in module
    order; Li et al.'s criterion). Keep the largest.

    Raises:
        ValueError: ``layer`` missing, or no producer with ``n`` outputs right before it.
    """
    name, mod = resolve_layer(model, layer)
    check_scorable(name, mod)
    producer, _, _ = _producer(_leaves(model), name)
    scores: Tensor = producer.weight.detach().flatten(1).norm(dim=1)
    return scores


def _slice_pair(leaves: list[tuple[str, nn.Module]], name: str, idx: Tensor) -> None:
    producer, bns, consumer = _producer(leaves, name)
    if isinstance(producer, nn.Conv2d) and producer.groups != 1:
        raise ValueError(f"materialize: the producer of {name!r} is a grouped conv")
    k = int(idx.numel())
    _slice_param(producer, "weight", idx, 0)
    _slice_param(producer, "bias", idx, 0)
    if isinstance(producer, nn.Conv2d):
        producer.out_channels = k
    else:
        producer.out_features = k
    for b in bns:
        for p in ("weight", "bias", "running_mean", "running_var"):
            _slice_param(b, p, idx, 0)
        b.num_features = k
    _slice_param(consumer, "weight", idx, 1)
    if isinstance(consumer, nn.Conv2d):
        consumer.in_channels = k
    else:
        consumer.in_features = k
