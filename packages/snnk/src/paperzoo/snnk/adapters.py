"""SNNK adapters (spec 3.5) and the adapters they are raced against (Houlsby, LoRA).

- :class:`SNNKAdapter`: ``h -> h + U (Theta^T Psi(LN?(h))) + c`` (bottleneck ``r``; ``Theta``
  ``(m, r)`` trainable, ``U`` ``(d, r)`` and ``c`` zero-initialised), or without bottleneck
  ``h -> h + v * (Theta^T Psi(h))`` (``Theta`` ``(m, d)``, ``v`` ``(d,)`` zero-initialised). It
  starts as the identity. Trainable parameters ``m r + d r + d`` / ``m d + d`` (+ ``2d`` with the
  layer norm).
- :class:`HoulsbyAdapter`: ``h -> h + W_up act(W_down h + b_down) + b_up``, ``2 d r + d + r``.
- :class:`LoRALinear`: ``x -> W x + b + (alpha / r) B A x`` around a frozen linear, ``r (in + out)``.
- :func:`add_adapters` / :func:`add_snnk_adapters` / :func:`add_lora`: put them into a model and
  freeze everything else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_choice, check_positive_int
from paperzoo.core.models import ACTIVATIONS

from .features import Prescale, check_input
from .layers import SNNKLinear

__all__ = [
    "AdaptedModule",
    "HoulsbyAdapter",
    "LoRALinear",
    "SNNKAdapter",
    "add_adapters",
    "add_lora",
    "add_snnk_adapters",
]

AdapterKind = Literal["cos", "sin", "relu"]


class SNNKAdapter(nn.Module):
    """An SNNK bottleneck adapter, the identity at initialisation.

    Args:
        d_model: ``d`` (the hidden size it adapts).
        num_features: ``m`` random features.
        bottleneck: ``r`` (``U`` ``(d, r)`` up-projection with a bias), or ``None`` (no
            down-projection: ``Theta`` ``(m, d)`` and an elementwise ``v`` ``(d,)``).
        kind: ``"cos"`` (default), ``"sin"`` or ``"relu"`` features.
        layer_norm: a LayerNorm on the adapter's input (official ``ln_before``).
        init: initial down-projection ``W_down`` ``(r, d)`` (or ``(d, d)``) whose ``Phi`` is
            ``Theta``: ``"mam"`` (kaiming-uniform, ``a = sqrt(5)``; default) or ``"bert"``
            (``N(0, 0.02^2)``).
        prescale, orthogonal, seed, validate: as for :class:`~paperzoo.snnk.SNNKLinear`
            (``prescale="d^-1/4"`` by default).

    Shapes: ``h`` ``(*, d_model)`` -> ``(*, d_model)``.

    Deviation: the official ``init="bert"`` path draws the up-projection from ``N(0, 0.02^2)``
    (the adapter is then not the identity at init); here ``U`` and its bias are zero for both
    inits, as the spec and the ``"mam"`` path have it. The official ``CustomAdapter`` also reads
    an attribute it never sets (``self.normalize``); there is no such option here.
    """

    def __init__(
        self,
        d_model: int,
        num_features: int,
        bottleneck: int | None = None,
        kind: AdapterKind = "cos",
        layer_norm: bool = False,
        init: Literal["mam", "bert"] = "mam",
        prescale: Prescale = "d^-1/4",
        orthogonal: bool = False,
        seed: int | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        self.num_features = check_positive_int("num_features", num_features)
        if bottleneck is not None:
            check_positive_int("bottleneck", bottleneck)
        self.bottleneck = bottleneck
        self.kind: AdapterKind = check_choice("kind", kind, ("cos", "sin", "relu"))
        self.init: Literal["mam", "bert"] = check_choice("init", init, ("mam", "bert"))
        self.norm = nn.LayerNorm(d_model) if layer_norm else None
        r = d_model if bottleneck is None else bottleneck
        self.down = SNNKLinear(
            d_model,
            r,
            num_features,
            activation=kind,
            orthogonal=orthogonal,
            prescale=prescale,
            seed=seed,
            bias=False,
            validate=validate,
        )
        self.up = nn.Linear(r, d_model) if bottleneck is not None else None
        self.scale = nn.Parameter(torch.zeros(d_model)) if bottleneck is None else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw ``W_down`` (``init``), set ``Theta = Phi(W_down)``, zero ``U``, its bias and ``v``."""
        self.down.features.reset_parameters()
        W = torch.empty(self.down.out_features, self.d_model)
        if self.init == "mam":
            nn.init.kaiming_uniform_(W, a=math.sqrt(5))
        else:
            nn.init.normal_(W, mean=0.0, std=0.02)
        self.down.init_from(W)
        with torch.no_grad():
            if self.up is not None:
                self.up.weight.zero_()
                self.up.bias.zero_()
            if self.scale is not None:
                self.scale.zero_()
        if self.norm is not None:
            self.norm.reset_parameters()

    def forward(self, h: Tensor) -> Tensor:
        """``h + adapter(h)`` ``(*, d_model)`` of ``h`` ``(*, d_model)``."""
        check_input("SNNKAdapter: h", h, self.d_model, validate=False)  # finiteness: in down
        z = self.norm(h) if self.norm is not None else h
        down = self.down(z)
        out: Tensor
        if self.up is not None:
            out = h + self.up(down)
        else:
            assert self.scale is not None
            out = h + down * self.scale
        return out


class HoulsbyAdapter(nn.Module):
    """The Houlsby et al. (2019) bottleneck adapter ``h + W_up act(W_down h + b_down) + b_up``.

    ``W_down`` ``(r, d)`` with PyTorch's default init, ``W_up`` ``(d, r)`` and ``b_up`` zero (the
    identity at init). Trainable parameters ``2 d r + d + r``. Shapes ``(*, d) -> (*, d)``.

    Args:
        d_model: ``d``. bottleneck: ``r``. activation: a name of ``paperzoo.core.models.ACTIVATIONS``
            (``"relu"`` by default).
    """

    def __init__(
        self, d_model: int, bottleneck: int, activation: str = "relu", validate: bool = True
    ) -> None:
        super().__init__()
        self.validate = validate
        self.d_model = check_positive_int("d_model", d_model)
        self.bottleneck = check_positive_int("bottleneck", bottleneck)
        self.act = ACTIVATIONS[check_choice("activation", activation, tuple(ACTIVATIONS))]()
        self.down = nn.Linear(d_model, bottleneck)
        self.up = nn.Linear(bottleneck, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Default init of ``W_down``; zero ``W_up`` and ``b_up``."""
        self.down.reset_parameters()
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: Tensor) -> Tensor:
        """``h + up(act(down(h)))`` ``(*, d_model)``."""
        check_input("HoulsbyAdapter: h", h, self.d_model, validate=self.validate)
        out: Tensor = h + self.up(self.act(self.down(h)))
        return out


class LoRALinear(nn.Module):
    """LoRA (Hu et al. 2021) around a frozen ``nn.Linear``: ``W x + b + (alpha / r) B A x``.

    ``A`` ``(r, in)`` kaiming-uniform (``a = sqrt(5)``, as peft), ``B`` ``(out, r)`` zero, so the
    layer starts as ``base``. Trainable parameters ``r (in + out)``. Shapes ``(*, in) -> (*, out)``.

    Args:
        base: the linear layer (frozen here). rank: ``r``. alpha: scale numerator (default ``r``).
    """

    def __init__(
        self, base: nn.Linear, rank: int, alpha: float | None = None, validate: bool = True
    ) -> None:
        super().__init__()
        self.validate = validate
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base: expected an nn.Linear, got {type(base).__name__}")
        self.rank = check_positive_int("rank", rank)
        self.scaling = (float(alpha) if alpha is not None else float(rank)) / rank
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        w = base.weight
        self.lora_a = nn.Parameter(
            torch.empty(rank, base.in_features, dtype=w.dtype, device=w.device)
        )
        self.lora_b = nn.Parameter(
            torch.zeros(base.out_features, rank, dtype=w.dtype, device=w.device)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform ``A``, zero ``B`` (the base layer is left as it is)."""
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        nn.init.zeros_(self.lora_b)

    def forward(self, x: Tensor) -> Tensor:
        """``base(x) + scaling * x A^T B^T`` ``(*, out)``."""
        check_input("LoRALinear: x", x, self.base.in_features, validate=self.validate)
        out: Tensor = self.base(x) + self.scaling * ((x @ self.lora_a.T) @ self.lora_b.T)
        return out


class AdaptedModule(nn.Module):
    """``adapter(inner(*args))``: a sublayer followed by its adapter (what :func:`add_adapters`
    puts in place of the sublayer)."""

    def __init__(self, inner: nn.Module, adapter: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.adapter = adapter

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The inner module's output passed through the adapter."""
        return self.adapter(self.inner(*args, **kwargs))


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _freeze(model: nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


def add_adapters(
    model: nn.Module, where: Sequence[str], make: Callable[[str, nn.Module], nn.Module]
) -> dict[str, nn.Module]:
    """Freeze ``model`` and put ``make(name, sub)`` after each named submodule ``sub``.

    Each ``model.<name>`` becomes an :class:`AdaptedModule` (``adapter(sub(...))``); only the
    adapters' parameters stay trainable. Returns ``{name: adapter}``.

    Raises:
        ValueError: an empty ``where`` or a name that is not a submodule (listing the names).
    """
    if isinstance(where, str) or len(where) == 0:
        raise ValueError(f"where: expected a non-empty list of submodule names, got {where!r}")
    names = dict(model.named_modules())
    for name in where:
        if name not in names or name == "":
            raise ValueError(f"where: no submodule {name!r}; submodules: {sorted(names)[1:]}")
    _freeze(model)
    made: dict[str, nn.Module] = {}
    for name in where:
        sub = model.get_submodule(name)
        adapter = make(name, sub)
        for p in adapter.parameters():
            p.requires_grad_(True)
        _replace(model, name, AdaptedModule(sub, adapter))
        made[name] = adapter
    return made


def _width(name: str, sub: nn.Module, d_model: int | None) -> int:
    if d_model is not None:
        return d_model
    if isinstance(sub, nn.Linear):
        return sub.out_features
    raise ValueError(
        f"d_model: {name!r} is a {type(sub).__name__}, whose output width is unknown; pass d_model"
    )


def add_snnk_adapters(
    model: nn.Module,
    where: Sequence[str],
    num_features: int,
    d_model: int | None = None,
    **kw: Any,
) -> dict[str, SNNKAdapter]:
    """Freeze ``model`` and put an :class:`SNNKAdapter` after each named submodule.

    ``d_model`` defaults to a ``Linear``'s ``out_features``; ``kw`` go to :class:`SNNKAdapter`
    (``bottleneck``, ``kind``, ``layer_norm``, ``init``, ...). Returns ``{name: adapter}``.
    """

    def make(name: str, sub: nn.Module) -> nn.Module:
        ref = next(sub.parameters(), None)
        ad = SNNKAdapter(_width(name, sub, d_model), num_features, **kw)
        return ad if ref is None else ad.to(device=ref.device, dtype=ref.dtype)

    return {k: v for k, v in add_adapters(model, where, make).items() if isinstance(v, SNNKAdapter)}


def add_lora(
    model: nn.Module, where: Sequence[str], rank: int, alpha: float | None = None
) -> dict[str, LoRALinear]:
    """Freeze ``model`` and wrap each named ``nn.Linear`` in a :class:`LoRALinear`.

    Raises:
        TypeError: a named submodule that is not an ``nn.Linear``. ValueError: an unknown name.
    """
    names = dict(model.named_modules())
    for name in where:
        if name not in names or name == "":
            raise ValueError(f"where: no submodule {name!r}; submodules: {sorted(names)[1:]}")
    _freeze(model)
    made: dict[str, LoRALinear] = {}
    for name in where:
        sub = model.get_submodule(name)
        if not isinstance(sub, nn.Linear):
            raise TypeError(f"where: {name!r} is a {type(sub).__name__}, expected an nn.Linear")
        lora = LoRALinear(sub, rank, alpha)
        _replace(model, name, lora)
        made[name] = lora
    return made
