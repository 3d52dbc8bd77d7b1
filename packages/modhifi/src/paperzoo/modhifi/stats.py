"""Per-layer statistics of the contributions ``A_ci`` without materialising them all at once.

Conv2d: ``A_ci = Phi_i * W[c, i]`` (the 2-D convolution of input channel ``i`` with one kernel
slice); Linear: ``A_ci = Phi_{:, i} W[c, i]`` per token. Inner products sum over spatial positions
(tokens) and average over calibration samples; the bias is excluded. Computations run in the layer's
dtype, chunk by chunk, and accumulate in float64.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.grad import conv2d_weight

from paperzoo.core.checks import check_choice
from paperzoo.modhifi.calibration import (
    CalibrationData,
    calibration_batches,
    eval_mode,
    resolve_layer,
    run_model,
)

__all__ = ["Center", "LayerStats", "Score", "followed_by_batchnorm", "score_components"]

Center = Literal["auto", "none", "position", "channel"]
"""How contributions are centred before the Gram matrices (paper's ``Q~`` for BN networks).

``"position"``: subtract the per-position mean map over samples (``<E A_ci, E A_cj>``, as the paper
writes it); ``"channel"``: subtract the per-channel scalar mean over samples and positions (what
BN itself removes); ``"none"``; ``"auto"``: ``"position"`` when a BatchNorm follows the layer."""

Score = Literal["saliency", "fidelity", "energy"]
"""Component scores: ``"saliency"`` ``R_ci = E<Y_c, A_ci>`` (paper's vision default),
``"fidelity"`` the exact singleton fidelity ``s_ci``, ``"energy"`` ``E||A_ci||^2``."""

_CHUNK = 1 << 23  # elements of one contribution chunk (32 MiB in float32)


def check_scorable(name: str, layer: nn.Module) -> nn.Conv2d | nn.Linear:
    """``layer`` if it is a supported Conv2d (groups 1, dilation 1, zero padding) or a Linear.

    Raises:
        TypeError: another module type; ValueError: a grouped/depthwise or dilated conv.
    """
    if isinstance(layer, nn.Linear):
        return layer
    if not isinstance(layer, nn.Conv2d):
        raise TypeError(f"layers: {name!r} is a {type(layer).__name__}, expected Conv2d or Linear")
    if layer.groups != 1:
        raise ValueError(f"layers: {name!r} is a grouped conv (groups={layer.groups}), unsupported")
    if tuple(layer.dilation) != (1, 1):
        raise ValueError(f"layers: {name!r} has dilation {layer.dilation}, unsupported (1 only)")
    if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
        raise ValueError(
            f"layers: {name!r} has padding {layer.padding!r}/{layer.padding_mode!r}; "
            "expected numeric zero padding"
        )
    return layer


def followed_by_batchnorm(model: nn.Module, layer: nn.Module) -> bool:
    """Whether the module registered right after ``layer`` in ``model`` is a BatchNorm over its
    output channels (the Sequential-style convention ``conv, bn, act``)."""
    mods = [m for m in model.modules() if not list(m.children())]
    for a, b in itertools.pairwise(mods):
        if a is layer:
            out = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
            return isinstance(b, nn.modules.batchnorm._BatchNorm) and b.num_features == out
    return False


def capture_inputs(model: nn.Module, layer: nn.Module, batches: Sequence[Tensor]) -> list[Tensor]:
    """The inputs ``Phi`` that ``layer`` receives when ``model`` runs on each batch (no grad)."""
    seen: list[Tensor] = []

    def hook(_m: nn.Module, args: tuple[Tensor, ...]) -> None:
        seen.append(args[0].detach())

    handle = layer.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            for x in batches:
                run_model(model, x)
    finally:
        handle.remove()
    return seen


def _conv_contributions(x: Tensor, w: Tensor, conv: nn.Conv2d) -> Tensor:
    """``A`` for the output channels of ``w`` ``(cs, n, kh, kw)``: ``(B, n, cs, P)`` by one grouped conv."""
    cs, n = w.shape[:2]
    wg = w.transpose(0, 1).reshape(n * cs, 1, *w.shape[2:])
    a = F.conv2d(x, wg, None, conv.stride, conv.padding, groups=n)
    return a.reshape(x.shape[0], n, cs, -1)


def _conv_sums(
    xs: Sequence[Tensor], conv: nn.Conv2d, need_q: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Sums over samples of ``R`` ``(c, n)``, ``E||A||^2`` ``(c, n)`` and ``Q`` ``(c, n, n)`` (float64)."""
    w = conv.weight.detach()
    c_out, n = w.shape[:2]
    r = torch.zeros(c_out, n, dtype=torch.float64, device=w.device)
    energy = torch.zeros_like(r)
    q = torch.zeros(c_out, n, n, dtype=torch.float64, device=w.device) if need_q else None
    for x in xs:
        x = x.to(w.dtype)
        y = F.conv2d(x, w, None, conv.stride, conv.padding)
        # R[c, i] = <W[c, i], G[c, i]>: G is the input-output correlation kernel, not a loss gradient
        g = conv2d_weight(x, w.shape, y, conv.stride, conv.padding)
        r += (w * g).sum((2, 3)).double()
        positions = y.shape[2] * y.shape[3]
        rows = max(1, min(x.shape[0], _CHUNK // max(1, n * positions)))
        for xb in x.split(rows):
            cs = max(1, _CHUNK // (xb.shape[0] * n * positions))
            for c0 in range(0, c_out, cs):
                a = _conv_contributions(xb, w[c0 : c0 + cs], conv)
                energy[c0 : c0 + cs] += a.square().sum((0, 3)).T.double()
                if q is not None:
                    q[c0 : c0 + cs] += torch.einsum("bicp,bjcp->cij", a, a).double()
    return r, energy, q


@dataclass(frozen=True)
class LayerStats:
    """Contribution statistics of one layer over calibration data.

    Attributes:
        saliency: ``R`` ``(c_out, n)``, ``R[c, i] = E<Y_c, A_ci>`` (row sums of ``Q``).
        energy: ``(c_out, n)``, ``E||A_ci||^2`` (the diagonal of ``Q``).
        y_energy: ``(c_out,)``, ``E||Y_c||^2 = 1'Q_c 1`` (bias excluded).
        q: the CSMs ``Q`` ``(c_out, n, n)``, or ``None`` when collected with ``need_q=False``.
        num_samples: calibration samples ``S``.
        center: the centring that was applied (``"none"``, ``"position"`` or ``"channel"``).
    All tensors are float64 on the layer's device.
    """

    saliency: Tensor
    energy: Tensor
    y_energy: Tensor
    q: Tensor | None
    num_samples: int
    center: str

    @classmethod
    @torch.no_grad()
    def collect(
        cls,
        model: nn.Module,
        layer: str | nn.Module,
        data: CalibrationData,
        *,
        center: Center = "auto",
        need_q: bool = True,
        validate: bool = True,
    ) -> LayerStats:
        """Statistics of ``layer`` (a Conv2d or Linear of ``model``) on calibration ``data``.

        Conv ``R`` costs one forward and one ``conv2d_weight`` per batch (no ``A`` materialised);
        ``Q`` and the energies come from one grouped convolution of the layer input with
        ``W[c]`` reshaped to ``(n, 1, kh, kw)``, batched over chunks of output channels. Linear:
        ``Q_c = diag(W_c) G diag(W_c)`` with ``G`` the (centred) Gram matrix of the inputs.
        The model runs in eval mode (a warning when it was training), under ``no_grad``.

        Raises:
            TypeError/ValueError: an unsupported layer, a layer not in ``model``, empty or
                non-finite data, or data the model rejects.
        """
        name, mod = resolve_layer(model, layer)
        layer_ = check_scorable(name, mod)
        check_choice("center", center, ("auto", "none", "position", "channel"))
        batches = calibration_batches(data, validate=validate)
        with eval_mode(model):
            xs = capture_inputs(model, layer_, batches)
        mode = center
        if mode == "auto":
            mode = "position" if followed_by_batchnorm(model, layer_) else "none"
        s = sum(x.shape[0] for x in xs)
        if isinstance(layer_, nn.Conv2d):
            r, energy, q = _conv_sums(xs, layer_, need_q)
            r, energy = r / s, energy / s
            q = q / s if q is not None else None
            positions = _conv_positions(xs[0], layer_)
            if mode != "none":
                mean = torch.stack([x.double().sum(0) for x in xs]).sum(0, keepdim=True) / s
                mean = mean.to(xs[0].dtype)
                if mode == "position":
                    rm, em, qm = _conv_sums([mean], layer_, need_q)
                else:  # channel: P m_ci m_cj with m_ci the mean of A_ci over samples and positions
                    m = _conv_contributions(mean, layer_.weight.detach(), layer_).double()
                    m = m.mean(-1)[0].T  # (c_out, n)
                    rm = positions * m * m.sum(1, keepdim=True)
                    em = positions * m.square()
                    qm = positions * m.unsqueeze(2) * m.unsqueeze(1) if need_q else None
                r, energy = r - rm, energy - em
                q = q - qm if q is not None and qm is not None else q
        else:
            r, energy, q, positions = _linear_stats(xs, layer_, mode, need_q)
        n = r.shape[1]
        if s * positions < n:
            warnings.warn(
                f"data: {s} samples x {positions} positions < {n} input channels: Q is singular, "
                "compensation relies on the ridge",
                UserWarning,
                stacklevel=2,
            )
        y_energy = r.sum(1)
        if bool((y_energy <= 0).any()):
            warnings.warn(
                f"layers: {name!r} has an output channel with E||Y_c||^2 = 0 on this data; its "
                "fidelity is undefined and set to 0",
                RuntimeWarning,
                stacklevel=2,
            )
        return cls(r, energy, y_energy, q, s, mode)

    def scores(self, score: Score = "saliency") -> Tensor:
        """Per-component scores ``(c_out, n)`` (see :data:`Score`); fidelity is 0 where undefined."""
        check_choice("score", score, ("saliency", "fidelity", "energy"))
        if score == "saliency":
            return self.saliency
        if score == "energy":
            return self.energy
        den = self.energy * self.y_energy.unsqueeze(1)
        ok = den > 0
        return torch.where(ok, self.saliency.square() / torch.where(ok, den, 1.0), 0.0)


def _conv_positions(x: Tensor, conv: nn.Conv2d) -> int:
    h, w = x.shape[2:]
    pad = conv.padding
    assert not isinstance(pad, str)
    ph, pw = pad
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    return ((h + 2 * ph - kh) // sh + 1) * ((w + 2 * pw - kw) // sw + 1)


def _linear_stats(
    xs: Sequence[Tensor], lin: nn.Linear, mode: str, need_q: bool
) -> tuple[Tensor, Tensor, Tensor | None, int]:
    """``(R, energy, Q, tokens)`` of a Linear layer from the Gram matrix of its inputs."""
    w = lin.weight.detach().double()
    n = w.shape[1]
    flat = [x.reshape(x.shape[0], -1, n).double() for x in xs]  # (B, T, n)
    tokens = flat[0].shape[1]
    s = sum(f.shape[0] for f in flat)
    gram = sum(torch.einsum("bti,btj->ij", f, f) for f in flat) / s
    assert isinstance(gram, Tensor)
    if mode != "none":
        mean = sum(f.sum(0) for f in flat) / s  # (T, n)
        assert isinstance(mean, Tensor)
        if mode == "position":
            gram = gram - mean.T @ mean
        else:
            mbar = mean.mean(0)
            gram = gram - tokens * torch.outer(mbar, mbar)
    r = w * (w @ gram)
    energy = w.square() * torch.diagonal(gram)
    q = w.unsqueeze(2) * gram * w.unsqueeze(1) if need_q else None
    return r, energy, q, tokens


def score_components(
    model: nn.Module,
    layers: Sequence[str | nn.Module],
    data: CalibrationData,
    score: Score = "saliency",
    *,
    center: Center = "auto",
) -> dict[str, Tensor]:
    """Scores ``(c_out, n)`` of every component of each layer in ``layers``, keyed by layer name.

    Statistics come from the model as it is (no edits between layers). ``score="energy"`` is the
    LLM score of App. D.2 read literally: the squared row norms of a Cholesky factor ``L`` of
    ``Q = LL'`` equal ``diag Q``, the component energy.
    Deviation: the paper's "energy" score is ambiguous (which factor, which ordering); we use
    ``diag Q`` and name it so.
    """
    check_choice("score", score, ("saliency", "fidelity", "energy"))
    batches = calibration_batches(data)
    out: dict[str, Tensor] = {}
    for layer in layers:
        name, _ = resolve_layer(model, layer)
        st = LayerStats.collect(model, layer, batches, center=center, need_q=False)
        out[name] = st.scores(score)
    return out


def ceil_count(fraction: float, n: int) -> int:
    """``ceil(fraction * n)`` clamped to ``[1, n]`` (with a tolerance for float round-off)."""
    return min(n, max(1, math.ceil(fraction * n - 1e-9)))
