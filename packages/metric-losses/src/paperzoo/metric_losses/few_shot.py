r"""Prototypical few-shot episodes with SuSana's Proto-Triplet and ICNN losses.

Mendez-Ruiz et al., "SuSana Distancia is all you need", arXiv 2305.09062 (2023).

Source: the paper text was not retrievable when this was written, so the maths follows the
authors' code (``maumruiz/FSL-Loss``, ``algorithms/icnn_loss.py``: ``modified_score``,
``proto_triplet_loss`` and the ``get_icnn_loss`` combiner), which is what produced their results.
Episode layout: N-way, K-shot support and Q queries per class with labels ``0 .. N-1``.

* prototypes :math:`c_n` = mean support embedding of class :math:`n`;
* logits :math:`-\lVert f(q) - c_n\rVert^2 / T` (squared Euclidean, T = 1), cross-entropy over
  queries;
* Proto-Triplet: :math:`\max(0, d(q, c_y) - \min_{n\ne y} d(q, c_n) + m)`, margin m = 0.5, with
  :math:`d = \sqrt{\lVert\cdot\rVert^2 + 10^{-6}}` as in the reference;
* ICNN loss: :math:`-\log` of the "intra/inter-class nearest-neighbour" score in [0, 1]
  (:func:`icnn_score`).

"ICNN" here is unrelated to input-convex neural networks.

Distances are computed in float32 with autocast off when the inputs are float16/bfloat16 (the
GEMM expansion of squared distances cancels catastrophically in half precision) and cast back;
mixed input dtypes are promoted as a binary op would. Labels are moved to the embeddings'
device. ``validate=True`` (the default) checks the inputs at the cost of a few host-device syncs
per call; ``validate=False`` skips the checks.

One module, one concept (about 600 lines): the paper's episode loss, ``(CE + Proto-Triplet +
ICNN) / 3`` on one N-way episode, with each term as a function and a module; the three terms
share the episode's prototypes, distances and label checks.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    check_positive_int,
    check_reduction,
    reduce,
)

__all__ = [
    "FewShotLoss",
    "ICNNLoss",
    "ProtoTripletLoss",
    "few_shot_loss",
    "icnn_loss",
    "icnn_score",
    "proto_logits",
    "proto_triplet_loss",
    "prototypes",
]

IcnnMode = Literal["full", "support", "query"]
"""Which points the ICNN score ranks: support and queries together, the support, or the queries."""
QueryRef = Literal["support", "prototypes"]
"""What the queries are scored against in ``"query"`` mode."""

_SQRT_EPS = 1e-6  # reference: sqrt(squared distance + 1e-6)
_DIV_EPS = 1e-7  # reference: eps of modified_score


def _dtypes(x: Tensor, y: Tensor) -> tuple[torch.dtype, torch.dtype]:
    """(output dtype, compute dtype) of two inputs: promoted as a binary op, half -> float32."""
    out = torch.promote_types(x.dtype, y.dtype)
    return out, torch.float32 if out in (torch.float16, torch.bfloat16) else out


def _squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """Squared Euclidean distances (N, M) by one GEMM, clamped at 0 against rounding.

    The inputs are promoted to a common dtype (as a binary op would); half-precision ones are
    computed and returned in float32 with autocast off (the GEMM expansion
    ``|x|^2 + |y|^2 - 2<x, y>`` cancels catastrophically, and overflows, in fp16/bf16). Callers
    cast their final result back to the promoted dtype.
    """
    _, dtype = _dtypes(x, y)
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.to(dtype), y.to(dtype)
        sq = (
            x.pow(2).sum(dim=1, keepdim=True)
            + y.pow(2).sum(dim=1).unsqueeze(0)
            - 2.0 * (x @ y.transpose(0, 1))
        )
        return sq.clamp_min(0.0)


def _ref_distances(x: Tensor, y: Tensor) -> Tensor:
    """The reference code's distance ``sqrt(||x - y||^2 + 1e-6)`` (floored at 1e-3, smooth at 0)."""
    return (_squared_distances(x, y) + _SQRT_EPS).sqrt()


_ICNN_MODES: tuple[IcnnMode, ...] = ("full", "support", "query")
_QUERY_REFS: tuple[QueryRef, ...] = ("support", "prototypes")


def _check_embeddings(name: str, x: object) -> Tensor:
    """``x`` if it is a finite floating-point (N, D) tensor with N >= 1 (one host sync)."""
    t = check_float_tensor(name, x, ndim=2, nonempty=True)
    check_finite(name, t)
    return t


def _check_same_dim(name: str, x: Tensor, other_name: str, other: Tensor) -> None:
    if x.shape[1] != other.shape[1]:
        raise ValueError(
            f"{name}: expected dimension {other.shape[1]} (like {other_name}), got {x.shape[1]}"
        )


def prototypes(
    support: Tensor, support_labels: Tensor, n_way: int, validate: bool = True
) -> Tensor:
    """Class prototypes (N, D): the mean support embedding of each class ``0 .. n_way-1``.

    ``support`` (N*K, D) in any order; every class must have the same number K >= 1 of shots
    (checked, with the inputs, unless ``validate=False``).
    """
    check_positive_int("n_way", n_way, minimum=2)
    if validate:
        _check_embeddings("support", support)
        check_labels("support_labels", support_labels, n=support.shape[0], num_classes=n_way)
    support_labels = support_labels.to(support.device)
    counts = torch.bincount(support_labels, minlength=n_way)
    if validate and (bool((counts != counts[0]).any()) or int(counts[0]) == 0):
        raise ValueError(
            f"support: expected N*K rows with the same K >= 1 shots per class "
            f"(n_way={n_way}), got per-class counts {counts.tolist()}"
        )
    sums = torch.zeros(n_way, support.shape[1], dtype=support.dtype, device=support.device)
    sums = sums.index_add(0, support_labels, support)
    return sums / counts.to(support.dtype).unsqueeze(1)


def proto_logits(
    query: Tensor, protos: Tensor, temperature: float = 1.0, squared: bool = True
) -> Tensor:
    """ProtoNet logits (Q, N) = ``-d(query, protos) / temperature``.

    ``squared=True`` (the reference and Snell et al.) uses squared Euclidean distance, which gives
    the same softmax as a linear layer with ``W = 2 c_n`` and ``b = -||c_n||^2``.
    """
    check_positive("temperature", temperature)
    check_float_tensor("query", query, ndim=2)
    check_float_tensor("protos", protos, ndim=2)
    _check_same_dim("protos", protos, "query", query)
    sq = _squared_distances(query, protos)
    d = sq if squared else (sq + _SQRT_EPS).sqrt()
    return (-d / temperature).to(_dtypes(query, protos)[0])


def _check_query_protos(query: Tensor, query_labels: Tensor, protos: Tensor) -> None:
    _check_embeddings("query", query)
    _check_embeddings("protos", protos)
    if protos.shape[0] < 2:
        raise ValueError(f"protos: expected at least 2 prototypes, got shape {tuple(protos.shape)}")
    _check_same_dim("protos", protos, "query", query)
    check_labels("query_labels", query_labels, n=query.shape[0], num_classes=protos.shape[0])


def proto_triplet_loss(
    query: Tensor,
    query_labels: Tensor,
    protos: Tensor,
    margin: float = 0.5,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> Tensor:
    """Functional Proto-Triplet loss; see :class:`ProtoTripletLoss`. Returns () or (Q,).

    ``query`` (Q, D), ``query_labels`` (Q,) in ``0 .. N-1``, ``protos`` (N, D).
    """
    check_reduction(reduction)
    check_positive("margin", margin, allow_zero=True)
    if validate:
        _check_query_protos(query, query_labels, protos)
    d = _ref_distances(query, protos)  # (Q, N)
    query_labels = query_labels.to(d.device)
    own = F.one_hot(query_labels, protos.shape[0]).bool()
    d_pos = d.gather(1, query_labels.unsqueeze(1)).squeeze(1)
    d_neg = d.masked_fill(own, float("inf")).amin(dim=1)
    losses = (d_pos - d_neg + margin).clamp_min(0.0).to(_dtypes(query, protos)[0])
    return reduce(losses, reduction)


class ProtoTripletLoss(nn.Module):
    """Proto-Triplet loss: anchor = query, positive = own prototype, negative = nearest other one.

    ``L = mean_q max(0, d(q, c_y) - min_{n != y} d(q, c_n) + margin)`` with the reference's
    ``d = sqrt(||.||^2 + 1e-6)``; margin 0.5 (reference default). ``forward(query (Q, D),
    query_labels (Q,) in 0..N-1, protos (N, D))`` -> () or (Q,) for ``reduction="none"``.
    """

    def __init__(
        self, margin: float = 0.5, reduction: Reduction = "mean", validate: bool = True
    ) -> None:
        super().__init__()
        check_positive("margin", margin, allow_zero=True)
        check_reduction(reduction)
        self.margin = float(margin)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, query: Tensor, query_labels: Tensor, protos: Tensor) -> Tensor:
        return proto_triplet_loss(
            query, query_labels, protos, self.margin, self.reduction, self.validate
        )

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


def icnn_score(
    x: Tensor,
    y: Tensor,
    ref: Tensor | None = None,
    ref_labels: Tensor | None = None,
    k: int = 4,
    ipc: int | None = None,
    drop_first_neighbour: bool = False,
    validate: bool = True,
) -> Tensor:
    r"""ICNN score in [0, 1] of points ``x`` (n, D) with labels ``y`` (n,) against a reference set.

    The reference set ``R`` (``ref`` (m, D), ``ref_labels`` (m,)) defaults to ``x`` itself, in which
    case each point's own row is excluded from its neighbours. Steps (reference ``modified_score``):

    1. if ``k + 2 >= m`` then ``k = m - 2`` and γ is forced to 1; ``ipc`` defaults to ``k + 1``;
    2. the ``ipc`` nearest neighbours of each point in R, distances
       ``D_ij = sqrt(||.||^2 + 1e-6)``;
    3. ``δ_i`` = distance to the nearest different-class one among them (∞ if none);
       for the first ``k``: ``N_ij = D_ij / (δ_i + 1e-7)``, each row divided by
       ``max(1, max_j N_ij)``;
    4. ``λ_same = 1 -`` mean, over rows with a same-class neighbour, of the row's mean
       same-class ``N``;
    5. ``G_ij = D_ij / (max different-class D + 1e-7)`` over the first k;
       ``λ_diff`` = mean over rows with a different-class neighbour of the row mean of ``G``
       (1 if there is no different-class neighbour at all);
    6. ``γ`` = mean fraction of same-class points among the first k;
       score ``= ((λ_same + λ_diff) / 2 + γ) / 2``.

    If ``ipc < k`` only ``ipc`` columns exist and γ still divides by ``k`` (as the reference's
    slicing does). The reference's ``+1e-7`` in every mean's denominator is kept so values match
    it. Gradients flow through the distances only (masks and γ are piecewise constant).

    Deviation: when R is ``x`` the point itself is excluded by index; the reference drops the
    first of the ``ipc + 1`` nearest columns, which is the point itself unless an exact duplicate
    ties with it. When R is another set nothing is dropped; the reference still drops the nearest
    column (e.g. the query's nearest prototype) — ``drop_first_neighbour=True`` reproduces that.
    """
    self_ref = ref is None
    if (ref is None) != (ref_labels is None):
        raise ValueError(
            "ref, ref_labels: expected both or neither, got "
            f"ref={'a tensor' if ref is not None else None}, "
            f"ref_labels={'a tensor' if ref_labels is not None else None}"
        )
    R = x if ref is None else ref
    yR = y if ref_labels is None else ref_labels
    if validate:
        _check_embeddings("x", x)
        check_labels("y", y, n=x.shape[0])
        if not self_ref:
            _check_embeddings("ref", R)
            check_labels("ref_labels", yR, n=R.shape[0])
            _check_same_dim("ref", R, "x", x)
        check_positive_int("k", k)
        if R.shape[0] < 3:
            raise ValueError(
                "ref: expected a reference set of at least 3 points for the ICNN score, got "
                f"{R.shape[0]}"
            )
    m = R.shape[0]
    gamma_forced = k + 2 >= m
    if gamma_forced:
        k = m - 2
    n_nb = k + 1 if ipc is None else ipc
    available = m - 1 if (self_ref or drop_first_neighbour) else m
    if n_nb < 1 or n_nb > available:
        raise ValueError(
            f"ipc: expected a value in [1, {available}] (reference set of {m} points), got {n_nb}"
        )
    d = _ref_distances(x, R)
    y, yR = y.to(d.device), yR.to(d.device)
    if self_ref:
        d = d.masked_fill(torch.eye(m, dtype=torch.bool, device=d.device), float("inf"))
        D, idx = d.topk(n_nb, dim=1, largest=False)
    elif drop_first_neighbour:
        D, idx = d.topk(n_nb + 1, dim=1, largest=False)
        D, idx = D[:, 1:], idx[:, 1:]
    else:
        D, idx = d.topk(n_nb, dim=1, largest=False)
    same = yR[idx] == y.unsqueeze(1)  # (n, ipc)

    delta = D.masked_fill(same, float("inf")).amin(dim=1, keepdim=True)
    Dk, same_k = D[:, :k], same[:, :k]
    diff_k = ~same_k
    Nk = Dk / (delta + _DIV_EPS)
    Nk = Nk / Nk.amax(dim=1, keepdim=True).clamp_min(1.0)
    sc_count = same_k.sum(dim=1).to(D.dtype)
    row_same = (Nk * same_k).sum(dim=1) / (sc_count + _DIV_EPS)
    lam_same = 1.0 - row_same.sum() / ((sc_count > 0).sum().to(D.dtype) + _DIV_EPS)

    Gk = Dk * diff_k
    Gk = Gk / (Gk.amax() + _DIV_EPS)
    dc_count = diff_k.sum(dim=1).to(D.dtype)
    row_diff = Gk.sum(dim=1) / (dc_count + _DIV_EPS)
    lam_diff = row_diff.sum() / ((dc_count > 0).sum().to(D.dtype) + _DIV_EPS)
    lam_diff = torch.where(diff_k.any(), lam_diff, torch.ones_like(lam_diff))

    if gamma_forced:
        gamma = torch.ones((), dtype=D.dtype, device=D.device)
    else:
        gamma = sc_count.sum() / (k * x.shape[0])
    score: Tensor = ((lam_same + lam_diff) / 2.0 + gamma) / 2.0
    return score.to(_dtypes(x, R)[0])


def _episode_sizes(
    support: Tensor,
    support_labels: Tensor,
    query: Tensor,
    query_labels: Tensor,
    validate: bool = True,
) -> tuple[int, int, int]:
    """(n_way, k_shot, q_query) of an episode with labels 0..N-1 and equal class counts
    (the counts are checked when ``validate``)."""
    n_way = int(support_labels.max()) + 1
    if n_way < 2:
        raise ValueError(f"support_labels: expected at least 2 classes, got {n_way}")
    if support.shape[0] % n_way or query.shape[0] % n_way:
        raise ValueError(
            f"support, query: expected sizes that are multiples of n_way={n_way}, got "
            f"{support.shape[0]} and {query.shape[0]}"
        )
    check_labels("query_labels", query_labels, num_classes=n_way)
    if validate:
        for name, labels in (("support_labels", support_labels), ("query_labels", query_labels)):
            counts = torch.bincount(labels, minlength=n_way)
            if bool((counts != counts[0]).any()):
                raise ValueError(
                    f"{name}: expected every class 0..{n_way - 1} equally often (an N-way "
                    f"episode), got per-class counts {counts.tolist()}"
                )
    return n_way, support.shape[0] // n_way, query.shape[0] // n_way


def _check_episode_inputs(
    support: Tensor, support_labels: Tensor, query: Tensor, query_labels: Tensor
) -> None:
    _check_embeddings("support", support)
    check_labels("support_labels", support_labels, n=support.shape[0])
    _check_embeddings("query", query)
    check_labels("query_labels", query_labels, n=query.shape[0])
    _check_same_dim("query", query, "support", support)


def icnn_loss(
    support: Tensor,
    support_labels: Tensor,
    query: Tensor,
    query_labels: Tensor,
    *,
    mode: IcnnMode = "full",
    k: int = 4,
    query_ref: QueryRef = "support",
    drop_first_neighbour: bool = False,
    validate: bool = True,
) -> Tensor:
    """Functional ICNN loss ``-log(icnn_score(...))`` of an episode; see :class:`ICNNLoss`.

    ``support`` (N*K, D), ``support_labels`` (N*K,), ``query`` (N*Q, D), ``query_labels``
    (N*Q,), labels in ``0 .. N-1``. Returns a scalar.
    """
    check_choice("mode", mode, _ICNN_MODES)
    check_choice("query_ref", query_ref, _QUERY_REFS)
    if validate:
        _check_episode_inputs(support, support_labels, query, query_labels)
    support_labels = support_labels.to(support.device)
    query_labels = query_labels.to(support.device)
    if mode == "support":
        score = icnn_score(support, support_labels, k=k, validate=validate)
    elif mode == "full":
        _, k_shot, q_query = _episode_sizes(support, support_labels, query, query_labels, validate)
        x = torch.cat([support, query])
        y = torch.cat([support_labels, query_labels])
        score = icnn_score(x, y, k=k, ipc=k_shot + q_query, validate=validate)
    else:
        n_way = int(support_labels.max()) + 1
        check_labels("query_labels", query_labels, num_classes=n_way)
        if query_ref == "support":
            ref, ref_labels = support, support_labels
        else:
            ref = prototypes(support, support_labels, n_way, validate=validate)
            ref_labels = torch.arange(n_way, device=support.device)
        score = icnn_score(
            query,
            query_labels,
            ref,
            ref_labels,
            k=k,
            drop_first_neighbour=drop_first_neighbour,
            validate=validate,
        )
    return -torch.log(score)


class ICNNLoss(nn.Module):
    """ICNN loss ``-log(score)`` of an episode (reference ``suppicnn``/``queryicnn``/``fullicnn``).

    Args:
        k: neighbours scored (reference 4).
        mode: ``"full"`` (support and queries together, ``ipc = K + Q``; the reference's best
            runs use it), ``"support"`` (support only, ``ipc = k + 1``) or ``"query"`` (queries
            scored against ``query_ref``).
        query_ref: ``"support"`` or ``"prototypes"`` (reference flag ``--query_protos``).
        drop_first_neighbour: ``"query"`` mode only; True reproduces the reference, which drops
            the nearest reference point as if it were the query itself.

    ``forward(support (N*K, D), support_labels (N*K,), query (N*Q, D), query_labels (N*Q,))``
    with labels in ``0 .. N-1`` -> scalar.
    """

    def __init__(
        self,
        k: int = 4,
        mode: IcnnMode = "full",
        query_ref: QueryRef = "support",
        drop_first_neighbour: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("k", k)
        check_choice("mode", mode, _ICNN_MODES)
        check_choice("query_ref", query_ref, _QUERY_REFS)
        self.k = k
        self.mode: IcnnMode = mode
        self.query_ref: QueryRef = query_ref
        self.drop_first_neighbour = drop_first_neighbour
        self.validate = validate

    def forward(
        self, support: Tensor, support_labels: Tensor, query: Tensor, query_labels: Tensor
    ) -> Tensor:
        return icnn_loss(
            support,
            support_labels,
            query,
            query_labels,
            mode=self.mode,
            k=self.k,
            query_ref=self.query_ref,
            drop_first_neighbour=self.drop_first_neighbour,
            validate=self.validate,
        )

    def extra_repr(self) -> str:
        return f"k={self.k}, mode={self.mode!r}, query_ref={self.query_ref!r}"


def _check_combination(ce: bool, proto_triplet: bool, icnn: IcnnMode | None) -> None:
    if not (ce or proto_triplet or icnn is not None):
        raise ValueError(
            "ce, proto_triplet, icnn: expected at least one term, got ce=False, "
            "proto_triplet=False, icnn=None"
        )
    if icnn is not None:
        check_choice("icnn", icnn, _ICNN_MODES)


def few_shot_loss(
    support: Tensor,
    support_labels: Tensor,
    query: Tensor,
    query_labels: Tensor,
    *,
    ce: bool = True,
    proto_triplet: bool = True,
    icnn: IcnnMode | None = "full",
    average: bool = True,
    margin: float = 0.5,
    k: int = 4,
    temperature: float = 1.0,
    query_ref: QueryRef = "support",
    validate: bool = True,
) -> dict[str, Tensor]:
    """Functional twin of :class:`FewShotLoss`: ``{"loss": ..., <term>: ...}`` of one episode."""
    _check_combination(ce, proto_triplet, icnn)
    if validate:
        _check_episode_inputs(support, support_labels, query, query_labels)
    support_labels = support_labels.to(support.device)
    query_labels = query_labels.to(support.device)
    n_way, _, _ = _episode_sizes(support, support_labels, query, query_labels, validate)
    protos = prototypes(support, support_labels, n_way, validate=validate)
    terms: dict[str, Tensor] = {}
    if ce:
        logits = proto_logits(query, protos, temperature)
        terms["ce"] = F.cross_entropy(logits, query_labels)
    if proto_triplet:
        terms["proto_triplet"] = proto_triplet_loss(
            query, query_labels, protos, margin, validate=False
        )
    if icnn is not None:
        terms["icnn"] = icnn_loss(
            support,
            support_labels,
            query,
            query_labels,
            mode=icnn,
            k=k,
            query_ref=query_ref,
            validate=False,
        )
    total = torch.stack(list(terms.values())).sum()
    if average:
        total = total / len(terms)
    return {"loss": total, **{name: t.detach() for name, t in terms.items()}}


class FewShotLoss(nn.Module):
    """ProtoNet episode loss: cross-entropy + Proto-Triplet + ICNN (reference ``get_icnn_loss``).

    Args:
        ce: include the ProtoNet cross-entropy over queries (squared-Euclidean logits divided by
            ``temperature``, T = 1 in the reference).
        proto_triplet: include :class:`ProtoTripletLoss` with ``margin`` (0.5).
        icnn: ICNN mode (``"full"``, ``"support"``, ``"query"``) or None to leave it out;
            ``k`` (4) neighbours, ``query_ref`` for ``"query"`` mode.
        average: divide the sum of the selected terms by their number, as the reference does
            (its best runs, tags 12: ``(CE + PT + ICNN_full) / 3``); False returns the plain sum.
        validate: check the inputs and that every class has the same number of support and of
            query examples (host-device syncs); False skips the checks.

    ``forward(support (N*K, D), support_labels (N*K,), query (N*Q, D), query_labels (N*Q,))``
    with labels in ``0 .. N-1`` -> a dict: ``"loss"`` (the scalar to back-propagate) and the
    terms in use among ``"ce"``, ``"proto_triplet"``, ``"icnn"`` as detached scalars (so
    ``paperzoo.core.training.fit`` takes it from a ``step_fn`` as it is).
    """

    def __init__(
        self,
        ce: bool = True,
        proto_triplet: bool = True,
        icnn: IcnnMode | None = "full",
        average: bool = True,
        margin: float = 0.5,
        k: int = 4,
        temperature: float = 1.0,
        query_ref: QueryRef = "support",
        validate: bool = True,
    ) -> None:
        super().__init__()
        _check_combination(ce, proto_triplet, icnn)
        check_positive("temperature", temperature)
        check_positive("margin", margin, allow_zero=True)
        check_positive_int("k", k)
        check_choice("query_ref", query_ref, _QUERY_REFS)
        self.ce = ce
        self.proto_triplet = proto_triplet
        self.icnn: IcnnMode | None = icnn
        self.average = average
        self.margin = float(margin)
        self.k = k
        self.temperature = float(temperature)
        self.query_ref: QueryRef = query_ref
        self.validate = validate

    def forward(
        self, support: Tensor, support_labels: Tensor, query: Tensor, query_labels: Tensor
    ) -> dict[str, Tensor]:
        return few_shot_loss(
            support,
            support_labels,
            query,
            query_labels,
            ce=self.ce,
            proto_triplet=self.proto_triplet,
            icnn=self.icnn,
            average=self.average,
            margin=self.margin,
            k=self.k,
            temperature=self.temperature,
            query_ref=self.query_ref,
            validate=self.validate,
        )

    def extra_repr(self) -> str:
        return (
            f"ce={self.ce}, proto_triplet={self.proto_triplet}, icnn={self.icnn!r}, "
            f"average={self.average}, margin={self.margin}, k={self.k}"
        )
