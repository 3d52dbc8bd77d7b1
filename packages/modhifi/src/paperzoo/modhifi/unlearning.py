"""ModHiFi-U: class unlearning by removing the forget class's high-fidelity components (Section 5).

Calibration is synthetic samples of the forget class only; each chosen layer's components
``(c, i)`` are scored on them, the top fraction ``q`` per output channel form the HiFi set ``H``,
and their kernel slices are zeroed (BatchNorm networks) or negated (LayerNorm + residual
Transformers). No compensation, no fine-tuning, no labels, no gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_choice, check_positive
from paperzoo.modhifi.calibration import CalibrationData, calibration_batches, resolve_layer
from paperzoo.modhifi.stats import Center, LayerStats, Score, ceil_count, check_scorable

__all__ = ["Granularity", "ModHiFiUnlearner", "edit_slices", "random_slices", "top_slices"]

Granularity = Literal["slice", "channel"]
"""``"slice"``: single kernel slices ``(c, i)`` (paper); ``"channel"``: whole input channels."""


def top_slices(scores: Tensor, fraction: float, granularity: Granularity = "slice") -> Tensor:
    """The HiFi set as a bool mask ``(c_out, n)`` from scores ``(c_out, n)``.

    ``"slice"``: per output channel the ``ceil(fraction * n)`` highest-scoring components (ties by
    index); ``"channel"``: the ``ceil(fraction * n)`` input channels of highest total score over
    output channels, for every ``c``.

    Raises:
        ValueError: ``fraction`` outside ``(0, 1]``, scores not 2-D, unknown granularity.
    """
    q = check_positive("fraction", fraction)
    if q > 1.0:
        raise ValueError(f"fraction: expected a value in (0, 1], got {fraction!r}")
    check_choice("granularity", granularity, ("slice", "channel"))
    if scores.dim() != 2:
        raise ValueError(f"scores: expected (c_out, n), got shape {tuple(scores.shape)}")
    n = scores.shape[1]
    k = ceil_count(q, n)
    mask = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    if granularity == "slice":
        idx = scores.argsort(dim=1, descending=True, stable=True)[:, :k]
        return mask.scatter_(1, idx, True)
    idx = scores.sum(0).argsort(descending=True, stable=True)[:k]
    mask[:, idx] = True
    return mask


def random_slices(
    c_out: int, n: int, fraction: float, *, generator: torch.Generator | None = None
) -> Tensor:
    """A random mask ``(c_out, n)`` with ``ceil(fraction * n)`` slices per output channel (the
    random-zeroing baseline of the same count as :func:`top_slices`)."""
    return top_slices(torch.rand(c_out, n, generator=generator), fraction)


@torch.no_grad()
def edit_slices(layer: nn.Module, mask: Tensor, mode: Literal["zero", "negate"] = "zero") -> None:
    """Zero (or negate) the kernel slices ``W[c, i]`` where ``mask`` ``(c_out, n)`` is True, in place;
    every other weight stays bit-identical."""
    check_choice("mode", mode, ("zero", "negate"))
    w = layer.weight
    assert isinstance(w, Tensor)
    if mask.shape != w.shape[:2]:
        raise ValueError(f"mask: expected shape {tuple(w.shape[:2])}, got {tuple(mask.shape)}")
    m = mask.to(w.device).view(*mask.shape, *((1,) * (w.dim() - 2))).expand_as(w)
    if mode == "zero":
        w.masked_fill_(m, 0.0)
    else:
        w.copy_(torch.where(m, -w, w))


class ModHiFiUnlearner:
    """ModHiFi-U: forget a class by editing its high-fidelity components.

    Args:
        model: the network (edited in place by :meth:`apply`).
        layers: Conv2d/Linear layer names or modules to edit (paper, VGG-19: the last 12 convs).
        fraction: ``q``, the share of components per output channel in the HiFi set, ``(0, 1]``
            (default 0.05).
        mode: ``"zero"`` (BN networks, paper) or ``"negate"`` (LayerNorm/residual Transformers).
        retain_data: optional retain-class inputs; scores become ``score_forget - score_retain``
            (an extension, off by default).
        granularity: ``"slice"`` (paper) or ``"channel"``.
        score: component score (``"saliency"``, paper's vision default).
        center: centring of the statistics. Default ``"none"``.
            Deviation: the paper centres for BN networks; on forget-class-only data the sample mean
            is the forget class's own mean response, which centring would remove, while BN
            subtracts the training-distribution mean, so we do not centre by default.

    Raises:
        TypeError/ValueError: unsupported or missing layers, ``fraction`` outside ``(0, 1]``, an
            unknown mode or granularity.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str | nn.Module],
        *,
        fraction: float = 0.05,
        mode: Literal["zero", "negate"] = "zero",
        retain_data: CalibrationData | None = None,
        granularity: Granularity = "slice",
        score: Score = "saliency",
        center: Center = "none",
    ) -> None:
        if isinstance(layers, str | nn.Module) or not layers:
            raise ValueError("layers: expected a non-empty sequence of layers")
        self.model = model
        self.layers = [resolve_layer(model, m)[0] for m in layers]
        for nm in self.layers:
            check_scorable(nm, model.get_submodule(nm))
        q = check_positive("fraction", fraction)
        if q > 1.0:
            raise ValueError(f"fraction: expected a value in (0, 1], got {fraction!r}")
        self.fraction = q
        self.mode: Literal["zero", "negate"] = check_choice("mode", mode, ("zero", "negate"))
        self.granularity: Granularity = check_choice(
            "granularity", granularity, ("slice", "channel")
        )
        self.score: Score = check_choice("score", score, ("saliency", "fidelity", "energy"))
        self.center: Center = check_choice(
            "center", center, ("auto", "none", "position", "channel")
        )
        self.retain = calibration_batches(retain_data) if retain_data is not None else None
        self.masks: dict[str, Tensor] | None = None

    def fit(self, forget_data: CalibrationData) -> dict[str, Tensor]:
        """Score the layers on ``forget_data`` (forget-class inputs) and return the HiFi masks
        ``{layer: bool (c_out, n)}``; the model is not changed."""
        batches = calibration_batches(forget_data)
        masks: dict[str, Tensor] = {}
        for nm in self.layers:
            st = LayerStats.collect(self.model, nm, batches, center=self.center, need_q=False)
            s = st.scores(self.score)
            if self.retain is not None:
                rt = LayerStats.collect(
                    self.model, nm, self.retain, center=self.center, need_q=False
                )
                s = s - rt.scores(self.score)
            masks[nm] = top_slices(s, self.fraction, self.granularity)
        self.masks = masks
        return masks

    def apply(self) -> nn.Module:
        """Zero (or negate) the selected slices in the model and return it.

        Raises:
            RuntimeError: before :meth:`fit`.
        """
        if self.masks is None:
            raise RuntimeError("apply: call fit(forget_data) first")
        for nm, m in self.masks.items():
            edit_slices(self.model.get_submodule(nm), m, self.mode)
        return self.model
