"""AF-KAN and ReLU-KAN layers (Ta & Tran, arXiv 2503.06112) and the KAN baselines of the race.

Shapes: ``x`` is ``(*, d)`` (any number of leading batch axes, at least one), the output is
``(*, out)``. Internally the leading axes are flattened to ``N`` rows.

One module (about 700 lines) because it is one concept, the KAN layers raced in the paper: the four
layers share the layer-input and width checks defined here (:func:`check_input`,
:func:`check_layers`), the grid and the ``reset_parameters``/``flops_per_example`` contract, and the
baselines are meant to be read beside AF-KAN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_like,
    check_positive_int,
    check_range,
)

from .basis import (
    ACTIVATIONS,
    FUNCS,
    af_basis,
    grid,
    range_floor,
    relu_kan_basis,
    relu_kan_scale,
)
from .fused import silu_quad1_sums

__all__ = [
    "METHODS",
    "NORMS",
    "AFKANLayer",
    "BSplineKANLayer",
    "RBFKANLayer",
    "ReLUKANLayer",
    "check_input",
    "check_layers",
]

#: Parameter-reduction methods of AF-KAN implemented here (paper Sec. 3.3).
METHODS = ("global_attn", "multistep", "spatial_attn")
#: Normalisation choices: post-LayerNorm (AF-KAN) / input LayerNorm (ReLU-KAN), BatchNorm, none.
NORMS = ("layer", "batch", None)
FUNC_NORMS = ("batch", "sample", None)


def check_layers(layers: Sequence[int]) -> list[int]:
    """A width list such as ``[784, 64, 10]`` (at least 2 positive integers) as a list.

    Raises:
        TypeError: not a sequence of integers. ValueError: fewer than 2 widths, or a width < 1.
    """
    if isinstance(layers, str | bytes) or not isinstance(layers, Sequence):
        raise TypeError(f"layers: expected a sequence of integers, got {type(layers).__name__}")
    widths = list(layers)
    if len(widths) < 2:
        raise ValueError(f"layers: expected at least 2 widths (input and output), got {widths}")
    for i, w in enumerate(widths):
        check_positive_int(f"layers[{i}]", w)
    return widths


def check_input(
    x: object,
    in_features: int,
    layer: str,
    *,
    finite: bool = True,
    like: Tensor | None = None,
) -> Tensor:
    """The input ``x`` of ``layer``, shape ``(*, in_features)`` with at least 2 dims and rows.

    With ``like`` (a parameter of the layer), ``x`` must be on its device and have its dtype
    (unless autocast is on for that device type). With ``finite`` (one host-device sync; layers
    expose ``validate=False`` to skip it), NaN/Inf values are refused.

    Raises:
        TypeError: not a floating-point tensor, or another dtype than ``like``.
        ValueError: fewer than 2 dims, a wrong last dim, an empty batch, another device than
            ``like``, or NaN/Inf values. Every message starts with ``"{layer}: input x"``.
    """
    name = f"{layer}: input x"
    check_float_tensor(name, x)
    assert isinstance(x, Tensor)
    if like is not None:
        check_like(name, x, like, owner="the layer")
    if x.dim() < 2:
        raise ValueError(
            f"{name}: expected shape (batch, ..., {in_features}) with at least 2 dims, "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[-1] != in_features:
        raise ValueError(
            f"{name}: expected last dim in_features={in_features}, got shape {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {tuple(x.shape)}")
    check_finite(name, x, validate=finite)
    return x


# Rough elementwise costs (FLOPs per element) used by ``flops_per_example``; documented estimates.
_ACT_FLOPS = {
    "silu": 4,
    "relu": 1,
    "leaky_relu": 2,
    "elu": 3,
    "selu": 4,
    "gelu": 8,
    "softplus": 3,
    "sigmoid": 3,
    "tanh": 4,
}
_FUNC_FLOPS = {"quad1": 2, "quad2": 4, "sum": 1, "prod": 1, "sum_prod": 3, "cubic1": 6, "cubic2": 3}


def _make_norm(norm: str | None, features: int) -> nn.Module:
    if norm == "layer":
        return nn.LayerNorm(features)
    if norm == "batch":
        return nn.BatchNorm1d(features)
    return nn.Identity()


def _check_eps(eps: object) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < math.inf:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    return float(eps)


def _check_batchnorm_batch(module: nn.Module, norm: str | None, rows: int, name: str) -> None:
    if norm == "batch" and module.training and rows < 2:
        raise ValueError(
            f"{name}: norm='batch' needs at least 2 rows per batch in training mode, got {rows} "
            "(use norm='layer' or call .eval())"
        )


class AFKANLayer(nn.Module):
    """One AF-KAN layer: activation-function bumps, L2MM, a parameter-reducing attention,
    post-LayerNorm, σ and a bias-free linear map (paper Sec. 3; official ``AF_KANLayer``).

    For input ``x_i`` (``i = 1..d``) and bumps ``j = 1..n`` (``n = G + K``):

    * ``F_ij = c(σ(x_i - s_j), σ(e_j - x_i))`` (:func:`~paperzoo.af_kan.basis.af_basis`);
    * L2MM: ``F ← (F - min F)/(max F - min F)``, min/max pooled per ``func_norm``;
    * reduction to ``h ∈ R^d`` by ``method``:

      - ``'global_attn'`` (default): ``A = softmax_i((aᵀF_i + c)/max(τ, 1))`` over the ``d``
        inputs, ``h_i = A_i Σ_j F_ij``; ``a ∈ R^n``, ``c``, ``τ`` (init ``√d``) learnable;
      - ``'multistep'``: ``h_i = aᵀF_i + c``;
      - ``'spatial_attn'``: depthwise Conv1d (``n`` channels, kernel 3, padding 1) along the
        input axis gives scores ``S ∈ R^{n×d}``, ``A = softmax_j(S/max(τ, 1))``,
        ``h_i = Σ_j F_ij A_ji``;
    * ``y = W σ(norm(h))`` with ``W ∈ R^{out×d}`` (no bias).

    Parameters with the defaults (global_attn, LayerNorm): ``out·d + (n + 1) + 1 + 2n + 2d``.

    Args:
        in_features: ``d``.
        out_features: ``out``.
        grid_size: ``G`` (default 3, the paper's best).
        order: ``K`` (default 3).
        activation: σ, one of :data:`~paperzoo.af_kan.basis.ACTIVATIONS` (default ``'silu'``).
        func: the combination, one of :data:`~paperzoo.af_kan.basis.FUNCS` (default ``'quad1'``).
        method: ``'global_attn'`` | ``'multistep'`` | ``'spatial_attn'``.
        norm: ``'layer'`` (default) | ``'batch'`` | ``None``, applied to ``h``.
        func_norm: ``'batch'`` (default, the official batch-pooled L2MM: an example's output
            depends on the other rows of its batch) | ``'sample'`` (per-row min–max, batch
            independent, recommended for inference and serving) | ``None``.
        train_grid: learn ``s`` and ``e`` (official ``train_ab=True``); if False they are buffers.
        eps: floor on ``max F - min F`` in L2MM (a finite number > 0; raised to the dtype's
            smallest normal number where it is below it, so float16 cannot give ``0/0``).
        validate: check the input (shape, dtype and device of the parameters, empty batch,
            NaN/Inf; the last costs a host sync).
        fused: take the fused basis path (:class:`~paperzoo.af_kan.fused.SiluQuad1Sums`: one
            custom autograd Function with a hand-derived backward, no ``(N, n, d)`` tensor)
            when it applies (SiLU, ``quad1``, ``global_attn``/``multistep``); otherwise, or with
            ``fused=False``, the general path (autograd through ``(N, n, d)`` tensors). Both
            compute the same function (tested in float64).

    Deviations from the official code:
        * Deviation: Only the modules the chosen method uses are created (the official layer
          instantiates q/k/v, Conv1d, MultiheadAttention, local attention and a bias that go unused
          and are then subtracted from the count via ``.grad is None``).
        * Deviation: L2MM skips the L2 pre-scaling, a mathematical no-op before min–max; it guards
          the constant-tensor case (official: NaN); the min/max gradient goes to one arg-extreme.
        * Deviation: For ``global_attn``/``multistep`` the normalised tensor is never materialised:
          the min–max map is affine, so ``aᵀF̂_i = (aᵀF_i - m Σa)/(M - m)`` and ``Σ_j F̂_ij = (Σ_j
          F_ij - n m)/(M - m)`` are computed from the raw ``F`` (exact algebra).
        * Deviation: Unknown activation names raise (official silently falls back to the identity).
        * Deviation: Any number of leading batch axes; ``func_norm='batch'`` pools over all of them.
        * Deviation (implementation only): with SiLU and ``quad1`` the basis is computed by a fused
          autograd Function (``fused=True``): the same function (equal to the general path in
          float64), with ``e^{s_j}``, ``e^{-e_j}`` clamped to the dtype's finite range (affects
          only grid points beyond about ±88 in float32).
        * Deviation: self/multi-head/local attention are not implemented (slow and memory-heavy
          upstream), nor is multi-method stacking (broken upstream: see the package README).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        grid_size: int = 3,
        order: int = 3,
        activation: str = "silu",
        func: str = "quad1",
        method: str = "global_attn",
        norm: str | None = "layer",
        func_norm: str | None = "batch",
        train_grid: bool = True,
        eps: float = 1e-8,
        validate: bool = True,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.grid_size = check_positive_int("grid_size", grid_size, 1)
        self.order = check_positive_int("order", order, 0)
        in_features, out_features = self.in_features, self.out_features  # plain ints from here
        grid_size, order = self.grid_size, self.order
        self.fused = bool(fused)
        check_choice("activation", activation, tuple(ACTIVATIONS))
        check_choice("func", func, tuple(FUNCS))
        check_choice("method", method, METHODS)
        check_choice("norm", norm, NORMS)
        check_choice("func_norm", func_norm, FUNC_NORMS)
        self.activation = activation
        self.func = func
        self.method = method
        self.norm_type = norm
        self.func_norm = func_norm
        self.train_grid = bool(train_grid)
        self.eps = _check_eps(eps)
        self.validate = bool(validate)
        n = grid_size + order
        self.num_bumps = n

        start, end = grid(grid_size, order)
        if self.train_grid:
            self.start = nn.Parameter(start)
            self.end = nn.Parameter(end)
        else:
            self.register_buffer("start", start)
            self.register_buffer("end", end)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.score: nn.Linear | None = None
        self.score_conv: nn.Conv1d | None = None
        self.temperature: nn.Parameter | None = None
        if method in ("global_attn", "multistep"):
            self.score = nn.Linear(n, 1)
        else:
            self.score_conv = nn.Conv1d(n, n, kernel_size=3, padding=1, groups=n)
        if method in ("global_attn", "spatial_attn"):
            self.temperature = nn.Parameter(torch.empty(()))
        self.norm = _make_norm(norm, in_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official initialisation: the grid, ``W`` Kaiming-uniform (a = √5), ``τ = √d``,
        PyTorch defaults for the score Linear/Conv1d and the norm."""
        start, end = grid(self.grid_size, self.order, dtype=self.weight.dtype)
        with torch.no_grad():
            self.start.copy_(start)
            self.end.copy_(end)
            if self.temperature is not None:
                self.temperature.fill_(math.sqrt(self.in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.score is not None:
            self.score.reset_parameters()
        if self.score_conv is not None:
            self.score_conv.reset_parameters()
        if isinstance(self.norm, nn.LayerNorm | nn.BatchNorm1d):
            self.norm.reset_parameters()

    def _name(self) -> str:
        return f"AFKANLayer({self.in_features} -> {self.out_features})"

    def _param(self) -> Tensor:
        return self.weight

    def attention_weights(self, x: Tensor) -> Tensor:
        """The attention of ``global_attn`` (``(*, d)``, sums to 1 over ``d``) or ``spatial_attn``
        (``(*, n, d)``, sums to 1 over ``n``) for input ``x`` (``(*, d)``)."""
        if self.method == "multistep":
            raise ValueError("method='multistep' has no attention weights")
        if self.validate:
            check_input(x, self.in_features, self._name(), like=self._param())
        rows = x.reshape(-1, self.in_features)
        feats = self._normalised_features(rows)  # (N, n, d)
        if self.method == "global_attn":
            a, c = self._score_linear()
            att = self._global_attention(torch.matmul(a, feats) + c)
        else:
            att = self._spatial_attention(feats)
        return att.reshape(*x.shape[:-1], *att.shape[1:])

    @property
    def uses_fused(self) -> bool:
        """Whether :meth:`forward` takes the fused basis path (:mod:`paperzoo.af_kan.fused`):
        ``fused=True``, SiLU, ``quad1``, ``global_attn``/``multistep`` (any norm/func_norm)."""
        return (
            self.fused
            and self.activation == "silu"
            and self.func == "quad1"
            and self.method in ("global_attn", "multistep")
        )

    def _score_linear(self) -> tuple[Tensor, Tensor]:
        assert self.score is not None
        return self.score.weight[0], self.score.bias[0]

    def _tau(self) -> Tensor:
        assert self.temperature is not None
        return self.temperature.clamp(min=1.0)

    def _global_attention(self, scores: Tensor) -> Tensor:
        return torch.softmax(scores / self._tau(), dim=-1)

    def _spatial_attention(self, feats: Tensor) -> Tensor:
        assert self.score_conv is not None
        return torch.softmax(self.score_conv(feats) / self._tau(), dim=1)  # (N, n, d)

    def _features(self, rows: Tensor) -> Tensor:
        """Basis responses in the bump-major layout ``(N, n, d)``: reductions over the ``n`` bumps
        then run over an outer axis with ``d`` contiguous, which is much faster than reducing a
        last axis of size ``n``."""
        start, end = self.start.unsqueeze(-1), self.end.unsqueeze(-1)  # (n, 1)
        return af_basis(rows.unsqueeze(-2), start, end, self.activation, self.func, pointwise=True)

    def _normalised_features(self, rows: Tensor) -> Tensor:
        feats = self._features(rows)
        if self.func_norm is None:
            return feats
        lo, hi = self._extremes(rows, feats)
        floor = range_floor(self.eps, feats.dtype)
        return (feats - lo.unsqueeze(-1)) / (hi - lo).clamp_min(floor).unsqueeze(-1)

    def _extremes(self, rows: Tensor, feats: Tensor) -> tuple[Tensor, Tensor]:
        """``min F`` and ``max F`` pooled per ``func_norm``, shaped ``(R, 1)``, with gradients.

        The arg-extremes are found without autograd (first over the bumps, then over the
        inputs, which avoids a slow arg-reduction over the full tensor); the two extreme values
        are then recomputed from their own ``(x_i, s_j, e_j)``, so their gradient reaches ``x``,
        ``s`` and ``e`` exactly as the index-based subgradient of ``min``/``max`` would, without
        the full-size zero-and-scatter tensors that autograd's min/max backward allocates.
        """
        with torch.no_grad():
            lo_nd = feats.amin(dim=1)  # (N, d): min over the bumps
            hi_nd = feats.amax(dim=1)
        return self._extremes_from(rows, lo_nd, hi_nd)

    def _extremes_from(self, rows: Tensor, lo_nd: Tensor, hi_nd: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`_extremes` from the per-input min/max over the bumps (``(N, d)`` each)."""
        with torch.no_grad():
            if self.func_norm == "batch":
                i_lo = lo_nd.reshape(1, -1).argmin(dim=1)  # flat (N·d) position, shape (1,)
                i_hi = hi_nd.reshape(1, -1).argmax(dim=1)
            else:
                i_lo = lo_nd.argmin(dim=1)  # (N,) input position per row
                i_hi = hi_nd.argmax(dim=1)
            flat_i = self._flat(torch.stack([i_lo, i_hi], dim=1))  # (R, 2) flat N·d positions
            x_ext = rows.reshape(-1)[flat_i]  # (R, 2): the inputs holding the extremes
            cols = af_basis(x_ext, self.start, self.end, self.activation, self.func)  # (R, 2, n)
            j = torch.stack([cols[:, 0].argmin(dim=-1), cols[:, 1].argmax(dim=-1)], dim=1)
        x_at = rows.reshape(-1)[flat_i]
        point = af_basis(
            x_at, self.start[j], self.end[j], self.activation, self.func, pointwise=True
        )
        return point[:, :1], point[:, 1:]

    def _flat(self, idx: Tensor) -> Tensor:
        """Flat ``(N·d)`` positions of per-pool indices (``'sample'``: add each row's offset)."""
        if self.func_norm == "batch":
            return idx
        offsets = torch.arange(idx.shape[0], device=idx.device) * self.in_features
        return idx + offsets.unsqueeze(-1)

    def reduce(self, x: Tensor) -> Tensor:
        """The reduced features ``h`` (``(*, d)``) before the norm, for input ``x`` (``(*, d)``)."""
        if self.validate:
            check_input(x, self.in_features, self._name(), like=self._param())
        return self._reduce(x.reshape(-1, self.in_features)).reshape(x.shape)

    def _reduce(self, rows: Tensor) -> Tensor:
        if self.method == "spatial_attn":
            feats = self._normalised_features(rows)  # (N, n, d)
            return (feats * self._spatial_attention(feats)).sum(dim=1)
        a, c = self._score_linear()
        if self.uses_fused:
            f_sum, f_proj, lo_nd, hi_nd = silu_quad1_sums(rows, self.start, self.end, a)
        else:
            feats = self._features(rows)  # (N, n, d)
            f_sum = feats.sum(dim=1)  # (N, d)
            f_proj = torch.matmul(a, feats)  # (N, d)
            with torch.no_grad():
                lo_nd, hi_nd = feats.amin(dim=1), feats.amax(dim=1)
        if self.func_norm is not None:
            lo, hi = self._extremes_from(rows, lo_nd, hi_nd)  # (1, 1) or (N, 1)
            scale = (hi - lo).clamp_min(range_floor(self.eps, rows.dtype)).reciprocal()
            f_sum = (f_sum - self.num_bumps * lo) * scale
            f_proj = (f_proj - a.sum() * lo) * scale
        scores = f_proj + c
        if self.method == "multistep":
            return scores
        return self._global_attention(scores) * f_sum

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in_features) -> (*, out_features)``."""
        if self.validate:
            check_input(x, self.in_features, self._name(), like=self._param())
        rows = x.reshape(-1, self.in_features)
        _check_batchnorm_batch(self, self.norm_type, rows.shape[0], self._name())
        h = self.norm(self._reduce(rows))
        out = F.linear(ACTIVATIONS[self.activation](h), self.weight)
        return out.reshape(*x.shape[:-1], self.out_features)

    def flops_per_example(self) -> int:
        """Estimated FLOPs for one input row (GEMM ``2·d·out`` plus elementwise work)."""
        d, n, out = self.in_features, self.num_bumps, self.out_features
        act = _ACT_FLOPS[self.activation]
        per_elem = 2 + 2 * act + _FUNC_FLOPS[self.func]  # shifts, σ twice, combination
        per_elem += 2 if self.func_norm is not None else 0  # min and max comparisons
        per_elem += 3  # Σ_j F and aᵀF
        reduce = {"global_attn": 8, "multistep": 2, "spatial_attn": 0}[self.method] * d
        if self.method == "spatial_attn":
            per_elem += 6 + 4 + 2  # conv taps, softmax, weighted sum
        norm = 8 * d if self.norm_type is not None else 0
        return 2 * d * out + per_elem * d * n + reduce + norm + act * d

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, grid_size={self.grid_size}, "
            f"order={self.order}, activation={self.activation!r}, func={self.func!r}, "
            f"method={self.method!r}, norm={self.norm_type!r}, func_norm={self.func_norm!r}"
        )


class ReLUKANLayer(nn.Module):
    """ReLU-KAN layer with the multi-input fix and input normalisation (official All-KAN
    ``ReLUKANLayer``, adapted there from ``quiqi/relu_kan``).

    ``y = W_lin · vec(φ(norm(x))) + b`` with ``φ_ij = [r ReLU(x_i - s_ij) ReLU(e_ij - x_i)]²``,
    ``r = 4G²/(K+1)²``, per-input learnable ``s, e`` of shape ``(d, n)`` and ``W_lin`` of shape
    ``(out, d·n)`` (``vec`` is d-major). Parameters: ``out·d·n + out + 2·d·n`` (+ ``2d`` for the
    norm).

    Args:
        in_features: ``d``.
        out_features: ``out``.
        grid_size: ``G`` (default 3, the AF-KAN paper's comparison setting; ReLU-KAN's own
            model default is 5).
        order: ``K`` (default 3).
        norm: ``'layer'`` (default, All-KAN) | ``'batch'`` | ``None``, applied to ``x`` first.
        train_grid: learn ``s`` and ``e``; if False they are buffers.
        validate: check the input (shape, dtype and device, empty batch, NaN/Inf).

    Deviations from the official code:
        * Deviation: The official layer uses a full-kernel ``Conv2d(1, out, (n, d))`` on the ``(N,
          d, n)`` tensor reinterpreted (not transposed) as ``(N, 1, n, d)``; that is exactly this
          Linear with ``W_lin = conv.weight.reshape(out, d·n)`` (tested), and the same default init.
        * Deviation: ``s, e`` are real ``(d, n)`` tensors (official: an expanded view of one row
          stored as a Parameter, which a state-dict round trip or an in-place update would break).
        * Deviation: Any number of leading batch axes (official: exactly ``(B, d)``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        grid_size: int = 3,
        order: int = 3,
        norm: str | None = "layer",
        train_grid: bool = True,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.grid_size = check_positive_int("grid_size", grid_size, 1)
        self.order = check_positive_int("order", order, 0)
        in_features, out_features = self.in_features, self.out_features  # plain ints from here
        grid_size, order = self.grid_size, self.order
        check_choice("norm", norm, NORMS)
        self.norm_type = norm
        self.train_grid = bool(train_grid)
        self.validate = bool(validate)
        self.num_bumps = grid_size + order
        self.r = relu_kan_scale(grid_size, order)
        start = torch.empty(in_features, self.num_bumps)
        end = torch.empty(in_features, self.num_bumps)
        if self.train_grid:
            self.start = nn.Parameter(start)
            self.end = nn.Parameter(end)
        else:
            self.register_buffer("start", start)
            self.register_buffer("end", end)
        self.norm = _make_norm(norm, in_features)
        self.linear = nn.Linear(in_features * self.num_bumps, out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Grid rows copied to every input; PyTorch-default Linear init (= the Conv2d init)."""
        start, end = grid(self.grid_size, self.order, dtype=self.linear.weight.dtype)
        with torch.no_grad():
            self.start.copy_(start.expand_as(self.start))
            self.end.copy_(end.expand_as(self.end))
        self.linear.reset_parameters()
        if isinstance(self.norm, nn.LayerNorm | nn.BatchNorm1d):
            self.norm.reset_parameters()

    def _name(self) -> str:
        return f"ReLUKANLayer({self.in_features} -> {self.out_features})"

    def _param(self) -> Tensor:
        return self.linear.weight

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in_features) -> (*, out_features)``."""
        if self.validate:
            check_input(x, self.in_features, self._name(), like=self._param())
        rows = x.reshape(-1, self.in_features)
        _check_batchnorm_batch(self, self.norm_type, rows.shape[0], self._name())
        phi = relu_kan_basis(self.norm(rows), self.start, self.end, self.r)
        out: Tensor = self.linear(phi.reshape(rows.shape[0], -1))
        return out.reshape(*x.shape[:-1], self.out_features)

    def flops_per_example(self) -> int:
        """Estimated FLOPs for one input row."""
        d, n, out = self.in_features, self.num_bumps, self.out_features
        norm = 8 * d if self.norm_type is not None else 0
        return 2 * d * n * out + out + 7 * d * n + norm

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, grid_size={self.grid_size}, "
            f"order={self.order}, norm={self.norm_type!r}"
        )


class BSplineKANLayer(nn.Module):
    """B-spline KAN layer in the style of efficient-kan (baseline for the race).

    ``y = W_base SiLU(x) + Σ_j (W_spline ⊙ scaler)_{:, i, j} B_j(x_i)`` with order-``K``
    B-splines ``B_j`` on a uniform grid of ``G`` cells over ``grid_range``, extended by ``K``
    knots on each side (``G + K`` bases per input). Parameters: ``out·d·(G + K + 2)``.

    Deviation: the spline weights start from a truncated normal (std ``0.1/G``) instead of
    efficient-kan's least-squares fit of random noise (same scale, no ``lstsq`` at init);
    the grid is fixed (no ``update_grid``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        grid_size: int = 5,
        order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.grid_size = check_positive_int("grid_size", grid_size, 1)
        self.order = check_positive_int("order", order, 0)
        in_features, out_features = self.in_features, self.out_features  # plain ints from here
        grid_size, order = self.grid_size, self.order
        lo, hi = check_range("grid_range", grid_range)
        self.validate = bool(validate)
        h = (hi - lo) / grid_size
        knots = torch.arange(-order, grid_size + order + 1, dtype=torch.float32) * h + lo
        self.register_buffer("knots", knots)
        n = grid_size + order
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features))
        self.spline_weight = nn.Parameter(torch.empty(out_features, in_features, n))
        self.spline_scaler = nn.Parameter(torch.empty(out_features, in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform base and scaler weights (as efficient-kan), small spline weights."""
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.spline_scaler, a=math.sqrt(5))
        nn.init.trunc_normal_(self.spline_weight, std=0.1 / self.grid_size)

    def b_splines(self, rows: Tensor) -> Tensor:
        """Cox–de Boor B-spline values ``(N, d, G + K)`` of ``rows`` (``(N, d)``)."""
        knots = self.knots
        assert isinstance(knots, Tensor)
        t = knots.to(rows.dtype)
        xe = rows.unsqueeze(-1)
        bases = ((xe >= t[:-1]) & (xe < t[1:])).to(rows.dtype)
        for k in range(1, self.order + 1):  # recursion over the order, not over data
            left = (xe - t[: -(k + 1)]) / (t[k:-1] - t[: -(k + 1)]) * bases[..., :-1]
            right = (t[k + 1 :] - xe) / (t[k + 1 :] - t[1:-k]) * bases[..., 1:]
            bases = left + right
        return bases

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in_features) -> (*, out_features)``."""
        if self.validate:
            check_input(
                x,
                self.in_features,
                f"BSplineKANLayer({self.in_features})",
                like=self.base_weight,
            )
        rows = x.reshape(-1, self.in_features)
        base = F.linear(F.silu(rows), self.base_weight)
        w = (self.spline_weight * self.spline_scaler.unsqueeze(-1)).reshape(self.out_features, -1)
        spline = F.linear(self.b_splines(rows).reshape(rows.shape[0], -1), w)
        return (base + spline).reshape(*x.shape[:-1], self.out_features)

    def flops_per_example(self) -> int:
        """Estimated FLOPs for one input row."""
        d, n, out, k = self.in_features, self.grid_size + self.order, self.out_features, self.order
        return 2 * d * out * (n + 1) + d * (n + k) * (2 + 8 * k) + 5 * d


def _sync_rbf_spacing(module: nn.Module, _incompatible: object) -> None:
    """After ``load_state_dict``: recompute ``grid_range``/``inv_h`` of an :class:`RBFKANLayer`
    from its (possibly replaced) ``centres`` buffer; a no-op when they still match (up to the
    rounding of their dtype, e.g. after ``.double()`` of a float32 layer)."""
    assert isinstance(module, RBFKANLayer)
    c = module.centres
    assert isinstance(c, Tensor)
    lo, hi = module.grid_range
    own = torch.linspace(lo, hi, module.num_grids, dtype=torch.float64, device=c.device)
    # float32 rounding (a float32 checkpoint in a float64 layer) or that of c's own dtype
    tol = max(4 * torch.finfo(c.dtype).eps, 1e-6) * max(abs(lo), abs(hi), hi - lo)
    if bool((c.to(torch.float64) - own).abs().max() <= tol):
        return
    lo, hi = check_range("loaded centres (first, last)", (float(c[0]), float(c[-1])))
    module.grid_range = (lo, hi)
    module.inv_h = (module.num_grids - 1) / (hi - lo)


class RBFKANLayer(nn.Module):
    """Gaussian-RBF KAN layer in the style of FastKAN (baseline for the race).

    ``y = W_spline vec(exp(-((LN(x)_i - c_j)/h)²)) + W_base SiLU(x) + b`` with ``num_grids``
    centres ``c`` evenly spaced on ``grid_range`` and ``h`` their spacing. Parameters:
    ``2d + out·d·num_grids + out·d + out``.

    ``h`` follows the ``centres`` buffer: loading a state dict whose centres span another range
    (a checkpoint made with another ``grid_range``) also updates ``h`` and ``grid_range``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_grids: int = 8,
        grid_range: tuple[float, float] = (-2.0, 2.0),
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.num_grids = check_positive_int("num_grids", num_grids, 2)
        in_features, out_features = self.in_features, self.out_features  # plain ints from here
        num_grids = self.num_grids
        lo, hi = check_range("grid_range", grid_range)
        self.validate = bool(validate)
        self.grid_range = (lo, hi)
        self.register_buffer("centres", torch.linspace(lo, hi, num_grids))
        self.inv_h = (num_grids - 1) / (hi - lo)
        self.register_load_state_dict_post_hook(_sync_rbf_spacing)  # type: ignore[no-untyped-call]
        self.norm = nn.LayerNorm(in_features)
        self.spline_weight = nn.Parameter(torch.empty(out_features, in_features * num_grids))
        self.base = nn.Linear(in_features, out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """FastKAN init: spline weights truncated normal (std 0.1), PyTorch defaults elsewhere."""
        nn.init.trunc_normal_(self.spline_weight, std=0.1)
        self.base.reset_parameters()
        self.norm.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """``(*, in_features) -> (*, out_features)``."""
        if self.validate:
            check_input(
                x, self.in_features, f"RBFKANLayer({self.in_features})", like=self.spline_weight
            )
        rows = x.reshape(-1, self.in_features)
        z = (self.norm(rows).unsqueeze(-1) - self.centres.to(rows.dtype)) * self.inv_h
        phi = torch.exp(-z.square()).reshape(rows.shape[0], -1)
        out: Tensor = F.linear(phi, self.spline_weight) + self.base(F.silu(rows))
        return out.reshape(*x.shape[:-1], self.out_features)

    def flops_per_example(self) -> int:
        """Estimated FLOPs for one input row."""
        d, g, out = self.in_features, self.num_grids, self.out_features
        return 2 * d * out * (g + 1) + 6 * d * g + 12 * d
