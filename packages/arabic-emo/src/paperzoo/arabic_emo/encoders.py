"""Pluggable text encoders and the stacked-embedding meta-learner (spec section 3, steps 1-3).

An encoder is any ``transformers`` model path/hub id (loaded lazily with ``AutoModel``, extra
``[hf]``) or any ``nn.Module`` called as ``module(input_ids=..., attention_mask=...)`` that returns
``(B, L, D)`` hidden states or an object with ``.last_hidden_state``. :class:`StackedEncoder` runs
the M encoders, projects each one's states with the meta-learner
``P_m = GELU(LayerNorm(Linear(D_m -> d_meta)))`` and stacks them with per-sample softmax gates.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import check_choice, check_finite, check_positive_int

__all__ = [
    "EncodedBatch",
    "EncoderSpec",
    "Fusion",
    "Pooling",
    "StackedEncoder",
    "TinyTextEncoder",
    "Tokenizer",
    "WhitespaceTokenizer",
    "masked_pool",
]

Pooling = Literal["cls", "mean"]
"""How an encoder's ``(B, L, D)`` states become one ``(B, D)`` vector."""
Fusion = Literal["token", "pooled"]
"""How the M encoders' outputs are stacked for the Bi-LSTM."""
Tokenizer = Callable[[Sequence[str], int], Mapping[str, Tensor]]
"""``tokenizer(texts, max_length) -> {"input_ids": (B, L) long, "attention_mask": (B, L)}``."""


@dataclass(frozen=True)
class EncoderSpec:
    """One encoder of the stack.

    Attributes:
        model: a ``transformers`` path or hub id (``AutoModel.from_pretrained``, needs the
            ``[hf]`` extra; a local folder works offline), or an ``nn.Module``.
        tokenizer: a :data:`Tokenizer` callable, a ``transformers`` tokenizer path/id, or ``None``
            (a str ``model`` then loads its own tokenizer; a module needs pre-tokenised input).
        pooling: ``"cls"`` (first position, default) or ``"mean"`` (masked mean).
        max_length: tokens kept per text (128).
        trainable: ``False`` (default): frozen (no gradients, always in eval mode).
    """

    model: str | nn.Module
    tokenizer: str | Tokenizer | None = None
    pooling: Pooling = "cls"
    max_length: int = 128
    trainable: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.model, (str, nn.Module)):
            raise TypeError(
                f"model: expected a model path/hub id or an nn.Module, got {type(self.model).__name__}"
            )
        check_choice("pooling", self.pooling, ("cls", "mean"))
        check_positive_int("max_length", self.max_length)


def _transformers() -> Any:
    try:
        return importlib.import_module("transformers")
    except ImportError:
        raise ImportError(
            "EncoderSpec(model=<str>) loads a Hugging Face model and needs transformers: "
            "pip install 'paperzoo-arabic-emo[hf]' (or pass an nn.Module)"
        ) from None


def _hf_tokenizer(name: str) -> Tokenizer:
    tok = _transformers().AutoTokenizer.from_pretrained(name)

    def call(texts: Sequence[str], max_length: int) -> Mapping[str, Tensor]:
        out = tok(
            list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}

    return call


class WhitespaceTokenizer:
    """Split on whitespace and map words to ids: 0 ``[PAD]``, 1 ``[UNK]``, 2 ``[CLS]``, words from 3.

    ``tokenizer(texts, max_length)`` → ``input_ids`` ``(B, L)`` long (``[CLS]`` first, right-padded
    to the longest text, at most ``max_length``) and ``attention_mask`` ``(B, L)`` long.
    """

    def __init__(self, vocab: Sequence[str]) -> None:
        self.index = {w: i + 3 for i, w in enumerate(vocab)}
        self.vocab_size = len(self.index) + 3

    def __call__(self, texts: Sequence[str], max_length: int) -> dict[str, Tensor]:
        if isinstance(texts, str):
            raise TypeError("texts: expected a sequence of strings, got one str")
        check_positive_int("max_length", max_length)
        rows = [[2] + [self.index.get(w, 1) for w in t.split()] for t in texts]
        rows = [r[:max_length] for r in rows]
        length = max((len(r) for r in rows), default=1)
        ids = torch.zeros(len(rows), length, dtype=torch.long)
        mask = torch.zeros(len(rows), length, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask}


def masked_pool(h: Tensor, mask: Tensor, pooling: Pooling) -> Tensor:
    """``(B, L, D)`` states and a ``(B, L)`` 0/1 mask → ``(B, D)``: position 0 (``"cls"``) or the
    masked mean (``"mean"``)."""
    if pooling == "cls":
        return h[:, 0]
    m = mask.to(h.dtype).unsqueeze(-1)
    return (h * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


class EncodedBatch(NamedTuple):
    """What the frozen encoders produce (and what :meth:`StackedEncoder.encode` caches).

    ``features[m]``: ``(B, L_m, D_m)`` states (``fusion="token"``) or ``(B, D_m)`` pooled vectors
    (``fusion="pooled"``); ``masks[m]``: ``(B, L_m)`` bool (token fusion; empty for pooled).
    """

    features: list[Tensor]
    masks: list[Tensor]

    def take(self, rows: Tensor) -> EncodedBatch:
        """The rows ``rows`` (a 1-D index tensor) of every tensor."""
        return EncodedBatch([f[rows] for f in self.features], [m[rows] for m in self.masks])

    def to(self, device: torch.device | str) -> EncodedBatch:
        """Every tensor on ``device``."""
        return EncodedBatch(
            [f.to(device) for f in self.features], [m.to(device) for m in self.masks]
        )


def _hidden_states(out: object, name: str) -> Tensor:
    h = getattr(out, "last_hidden_state", out)
    if isinstance(h, (tuple, list)) and h and isinstance(h[0], Tensor):
        h = h[0]
    if not isinstance(h, Tensor):
        raise TypeError(
            f"{name}: expected (B, L, D) hidden states or an output with .last_hidden_state, "
            f"got {type(out).__name__}"
        )
    if h.dim() != 3:
        raise ValueError(
            f"{name}: expected (B, L, D) hidden states with a sequence dimension, got shape "
            f"{tuple(h.shape)}"
        )
    return h


class StackedEncoder(nn.Module):
    """M encoders plus the meta-learner that stacks their embeddings.

    Per encoder, ``P_m = GELU(LayerNorm(Linear(D_m -> d_meta)))`` of its states; per sample, gates
    ``g = softmax(Linear(concat_m pool(P_m)) -> M)``; the stacked representation is

    - ``fusion="token"`` (default): ``S = concat_m (g_m * P_m)`` ``(B, L, M * d_meta)``, the M
      sequences right-padded to the longest and concatenated *position by position* (naive
      alignment: position t of two tokenisations is not the same word; positions past an
      encoder's length are zeros), with the union mask ``(B, L)``;
    - ``fusion="pooled"``: each encoder's pooled vector is projected, ``S = stack_m(g_m * P_m)``
      ``(B, M, d_meta)``, a length-M sequence (no alignment issue), mask ``None``.

    Deviation: the paper's meta-learner is not specified in what we could read (spec section 3,
    [R]); this gate-and-project form is the spec's reconstruction.

    Args:
        specs: the encoders (at least one).
        fusion: ``"token"`` or ``"pooled"``.
        d_meta: projection width (128).

    Raises:
        ValueError: no specs, unknown fusion, ``d_meta < 1``. ImportError: a str model without
            ``transformers`` (with the install hint).
    """

    def __init__(
        self, specs: Sequence[EncoderSpec], fusion: Fusion = "token", d_meta: int = 128
    ) -> None:
        super().__init__()
        specs = list(specs)
        if not specs:
            raise ValueError("specs: expected at least one EncoderSpec, got none")
        for i, s in enumerate(specs):
            if not isinstance(s, EncoderSpec):
                raise TypeError(f"specs[{i}]: expected an EncoderSpec, got {type(s).__name__}")
        self.specs = specs
        check_choice("fusion", fusion, ("token", "pooled"))
        self.fusion: Fusion = fusion
        self.d_meta = check_positive_int("d_meta", d_meta)
        models: list[nn.Module] = []
        self.tokenizers: list[Tokenizer | None] = []
        for s in specs:
            if isinstance(s.model, str):
                models.append(_transformers().AutoModel.from_pretrained(s.model))
            else:
                models.append(s.model)
            tok = s.tokenizer
            if isinstance(tok, str) or (tok is None and isinstance(s.model, str)):
                self.tokenizers.append(_hf_tokenizer(tok if isinstance(tok, str) else s.model))  # type: ignore[arg-type]
            else:
                self.tokenizers.append(tok)
        self.encoders = nn.ModuleList(models)
        for s, m in zip(specs, models, strict=True):
            if not s.trainable:
                m.requires_grad_(False)
                m.eval()
        self.hidden_sizes = [self._hidden_size(i) for i in range(len(specs))]
        self.projections = nn.ModuleList(
            nn.Sequential(nn.Linear(d, d_meta), nn.LayerNorm(d_meta), nn.GELU())
            for d in self.hidden_sizes
        )
        self.gate = nn.Linear(len(specs) * d_meta, len(specs))

    @property
    def output_size(self) -> int:
        """Feature width of ``S``: ``M * d_meta`` (token fusion) or ``d_meta`` (pooled)."""
        return len(self.specs) * self.d_meta if self.fusion == "token" else self.d_meta

    def _hidden_size(self, i: int) -> int:
        cfg = getattr(self.encoders[i], "config", None)
        size = getattr(cfg, "hidden_size", None)
        if isinstance(size, int):
            return size
        ids = torch.full((1, 2), 2, dtype=torch.long)
        with torch.no_grad():
            h = self._run(i, {"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        return int(h.shape[-1])

    def _run(self, i: int, tokens: Mapping[str, Tensor]) -> Tensor:
        out = self.encoders[i](**tokens)
        return _hidden_states(out, f"encoder {i} output")

    def train(self, mode: bool = True) -> StackedEncoder:
        """As ``nn.Module.train``, but frozen encoders stay in eval mode."""
        super().train(mode)
        for s, m in zip(self.specs, self.encoders, strict=True):
            if not s.trainable:
                m.eval()
        return self

    def reset_parameters(self) -> None:
        """Re-initialise the meta-learner (projections and gate); encoders are left alone."""
        for proj in self.projections:
            for layer in proj.children():
                if isinstance(layer, (nn.Linear, nn.LayerNorm)):
                    layer.reset_parameters()
        self.gate.reset_parameters()

    def tokenize(self, texts: Sequence[str]) -> list[Mapping[str, Tensor]]:
        """One token mapping per encoder (``input_ids``, ``attention_mask``), by its tokenizer.

        Raises:
            ValueError: an encoder without a tokenizer (pass token tensors instead).
        """
        if isinstance(texts, str):
            raise TypeError("texts: expected a sequence of strings, got one str")
        out: list[Mapping[str, Tensor]] = []
        for i, (s, tok) in enumerate(zip(self.specs, self.tokenizers, strict=True)):
            if tok is None:
                raise ValueError(
                    f"specs[{i}].tokenizer: raw text needs a tokenizer for this encoder, got None "
                    "(give EncoderSpec(tokenizer=...) or pass token tensors)"
                )
            out.append(tok(texts, s.max_length))
        return out

    def encode(
        self, inputs: Sequence[str] | Sequence[Mapping[str, Tensor]], *, validate: bool = True
    ) -> EncodedBatch:
        """Run the encoders: texts or one token mapping per encoder → :class:`EncodedBatch`.

        Frozen encoders run under ``no_grad``. States are truncated to ``max_length``.

        Raises:
            ValueError: wrong number of token mappings, an empty batch, an encoder output
                without a sequence dimension, NaN/inf states (with ``validate``).
        """
        if inputs and isinstance(inputs[0], str):
            tokens = self.tokenize([str(t) for t in inputs])
        else:
            tokens = [t for t in inputs if not isinstance(t, str)]
        if len(tokens) != len(self.specs):
            raise ValueError(
                f"inputs: expected texts or {len(self.specs)} token mappings (one per encoder), "
                f"got {len(tokens)}"
            )
        device = self.gate.weight.device
        feats: list[Tensor] = []
        masks: list[Tensor] = []
        for i, (s, tok) in enumerate(zip(self.specs, tokens, strict=True)):
            ids = tok["input_ids"].to(device)
            if ids.dim() != 2 or ids.shape[0] == 0:
                raise ValueError(
                    f"inputs[{i}]['input_ids']: expected a non-empty (B, L) tensor, got shape "
                    f"{tuple(ids.shape)}"
                )
            am = tok.get("attention_mask")
            mask = torch.ones_like(ids) if am is None else am.to(device)
            with torch.set_grad_enabled(s.trainable and torch.is_grad_enabled()):
                h = self._run(i, {"input_ids": ids, "attention_mask": mask})
            h, mask = h[:, : s.max_length], mask[:, : s.max_length].bool()
            check_finite(f"encoder {i} output", h, validate=validate)
            if self.fusion == "token":
                feats.append(h)
                masks.append(mask)
            else:
                feats.append(masked_pool(h, mask, s.pooling))
        return EncodedBatch(feats, masks)

    def fuse(self, encoded: EncodedBatch, *, validate: bool = True) -> tuple[Tensor, Tensor | None]:
        """The meta-learner: :class:`EncodedBatch` → ``S`` and its ``(B, L)`` bool mask (``None``
        for pooled fusion).

        Raises:
            ValueError: wrong number of feature tensors, wrong ranks or widths, batch sizes that
                differ, NaN/inf (with ``validate``).
        """
        feats, masks = encoded
        m_enc = len(self.specs)
        if len(feats) != m_enc or (self.fusion == "token" and len(masks) != m_enc):
            raise ValueError(
                f"encoded: expected {m_enc} feature tensors (and masks for token fusion), got "
                f"{len(feats)} and {len(masks)}"
            )
        want_dim = 3 if self.fusion == "token" else 2
        for i, (f, d) in enumerate(zip(feats, self.hidden_sizes, strict=True)):
            if not isinstance(f, Tensor) or not f.is_floating_point():
                raise TypeError(f"encoded.features[{i}]: expected a floating tensor")
            if f.dim() != want_dim or f.shape[-1] != d or f.shape[0] != feats[0].shape[0]:
                raise ValueError(
                    f"encoded.features[{i}]: expected a {want_dim}-D tensor of width {d} with "
                    f"{feats[0].shape[0]} rows, got shape {tuple(f.shape)}"
                )
            if f.shape[0] == 0:
                raise ValueError(f"encoded.features[{i}]: expected a non-empty batch, got 0 rows")
            check_finite(f"encoded.features[{i}]", f, validate=validate)
        if self.fusion == "pooled":
            proj = [p(f) for p, f in zip(self.projections, feats, strict=True)]
            g = torch.softmax(self.gate(torch.cat(proj, dim=1)), dim=1)
            return torch.stack([g[:, i : i + 1] * p for i, p in enumerate(proj)], dim=1), None
        length = max(f.shape[1] for f in feats)
        proj, pooled, padded = [], [], []
        for p, s, f, mk in zip(self.projections, self.specs, feats, masks, strict=True):
            mk = F.pad(mk.bool(), (0, length - mk.shape[1]))
            pm = p(F.pad(f, (0, 0, 0, length - f.shape[1]))) * mk.unsqueeze(-1).to(f.dtype)
            proj.append(pm)
            pooled.append(masked_pool(pm, mk, s.pooling))
            padded.append(mk)
        g = torch.softmax(self.gate(torch.cat(pooled, dim=1)), dim=1)
        stacked = torch.cat([g[:, i, None, None] * pm for i, pm in enumerate(proj)], dim=-1)
        union = torch.stack(padded).any(dim=0)
        return stacked, union


class TinyTextEncoder(nn.Module):
    """A small random-init BERT-like encoder (token + position embeddings, LayerNorm, post-norm
    ``nn.TransformerEncoder`` with GELU) for offline tests and the reproduction; no download.

    ``forward(input_ids (B, L) long, attention_mask (B, L) | None)`` → ``(B, L, hidden_size)``.

    Args:
        vocab_size: token ids in ``[0, vocab_size)`` (0 is padding).
        hidden_size: ``D``; num_layers, num_heads: transformer depth and heads (``D`` divisible
            by ``num_heads``); max_length: positions; dropout: 0.1 as BERT.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 32,
        num_layers: int = 2,
        num_heads: int = 2,
        max_length: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        heads = check_positive_int("num_heads", num_heads)
        if hidden_size % heads:
            raise ValueError(
                f"num_heads: expected a divisor of hidden_size={hidden_size}, got {num_heads}"
            )
        self.max_length = check_positive_int("max_length", max_length)
        self.tokens = nn.Embedding(check_positive_int("vocab_size", vocab_size), hidden_size)
        self.positions = nn.Embedding(max_length, hidden_size)
        self.norm = nn.LayerNorm(hidden_size)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            hidden_size, heads, 4 * hidden_size, dropout, activation="gelu", batch_first=True
        )
        self.layers = nn.TransformerEncoder(
            layer, check_positive_int("num_layers", num_layers), enable_nested_tensor=False
        )

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """``(B, L)`` ids (``L <= max_length``) → ``(B, L, hidden_size)`` states."""
        if input_ids.dim() != 2 or input_ids.shape[1] > self.max_length:
            raise ValueError(
                f"input_ids: expected (B, L) with L <= {self.max_length}, got shape "
                f"{tuple(input_ids.shape)}"
            )
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.drop(self.norm(self.tokens(input_ids) + self.positions(pos)))
        pad = None if attention_mask is None else attention_mask == 0
        return self.layers(x, src_key_padding_mask=pad)  # type: ignore[no-any-return]
