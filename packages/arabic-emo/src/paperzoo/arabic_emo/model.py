"""The Bi-LSTM classification head and the full stacked classifier (spec section 3, steps 4 and 6).

Stage B trains the meta-learner and the head on *cached* encoder outputs
(:meth:`StackedBiLSTMClassifier.cache_embeddings`): frozen encoders never run again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.arabic_emo.encoders import EncodedBatch, StackedEncoder
from paperzoo.core.checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_positive_int,
    check_unit_interval,
)

__all__ = ["BiLSTMHead", "ClassifierOutput", "StackedBiLSTMClassifier", "Summary"]

Summary = Literal["final", "maxpool"]
"""How the Bi-LSTM's outputs become one vector per sequence."""


class ClassifierOutput(NamedTuple):
    """``logits`` ``(B, K)`` (sigmoid at inference, threshold 0.5) and the summary ``embedding``
    ``(B, 2 * lstm_hidden)`` (``h`` of the contrastive term, before its L2 normalisation)."""

    logits: Tensor
    embedding: Tensor


class BiLSTMHead(nn.Module):
    """Bi-LSTM over a ``(B, L, F)`` sequence, then ``Dropout -> Linear(2H, 128) -> ReLU ->
    Linear(128, K)``.

    The sequence is packed by its right-padded ``(B, L)`` mask (padding never enters the LSTM), so
    output row b depends on row b alone. Summary: ``"final"`` (default) = concat(final forward
    state, final backward state); ``"maxpool"`` = masked max over positions of the ``(B, L, 2H)``
    outputs.

    Args:
        input_size: ``F``.
        num_labels: ``K`` (11).
        lstm_hidden: ``H`` (128, one layer).
        dropout: 0.3 (before the first linear layer).
        summary: ``"final"`` or ``"maxpool"``.
        mlp_hidden: width of the hidden linear layer (128).

    ``forward(x (B, L, F), mask (B, L) bool | None)`` → :class:`ClassifierOutput`.
    """

    def __init__(
        self,
        input_size: int,
        num_labels: int = 11,
        lstm_hidden: int = 128,
        dropout: float = 0.3,
        summary: Summary = "final",
        mlp_hidden: int = 128,
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.num_labels = check_positive_int("num_labels", num_labels)
        h = check_positive_int("lstm_hidden", lstm_hidden)
        check_choice("summary", summary, ("final", "maxpool"))
        self.summary: Summary = summary
        self.lstm = nn.LSTM(input_size, h, num_layers=1, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(check_unit_interval("dropout", dropout))
        self.fc1 = nn.Linear(2 * h, check_positive_int("mlp_hidden", mlp_hidden))
        self.fc2 = nn.Linear(mlp_hidden, num_labels)

    @property
    def embedding_size(self) -> int:
        """``2 * lstm_hidden``."""
        return 2 * self.lstm.hidden_size

    def reset_parameters(self) -> None:
        """Re-initialise the LSTM and both linear layers (PyTorch defaults)."""
        self.lstm.reset_parameters()
        self.fc1.reset_parameters()
        self.fc2.reset_parameters()

    def forward(
        self, x: Tensor, mask: Tensor | None = None, *, validate: bool = True
    ) -> ClassifierOutput:
        """``x``: ``(B, L, F)``; ``mask``: ``(B, L)`` right-padded (True = token) or ``None``.

        Raises:
            TypeError: non-floating ``x``. ValueError: wrong rank/width, empty batch, NaN/inf, a
                mask of the wrong shape or a row without tokens (with ``validate``).
        """
        check_float_tensor("x", x, 3, nonempty=True)
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"x: expected {self.input_size} features (B, L, {self.input_size}), got shape "
                f"{tuple(x.shape)}"
            )
        check_finite("x", x, validate=validate)
        if mask is None:
            out, (hn, _) = self.lstm(x)
            valid = None
        else:
            if mask.shape != x.shape[:2]:
                raise ValueError(
                    f"mask: expected shape {tuple(x.shape[:2])}, got {tuple(mask.shape)}"
                )
            valid = mask.bool()
            lengths = valid.sum(dim=1).cpu()  # packing needs CPU lengths: one sync
            if validate and bool((lengths == 0).any()):
                raise ValueError("mask: expected at least one token per row, got an empty row")
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths.clamp_min(1), batch_first=True, enforce_sorted=False
            )
            packed_out, (hn, _) = self.lstm(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(
                packed_out, batch_first=True, total_length=x.shape[1]
            )
        if self.summary == "final":
            emb = torch.cat([hn[0], hn[1]], dim=1)
        else:
            if valid is not None:
                out = out.masked_fill(~valid.unsqueeze(-1), float("-inf"))
            emb = out.amax(dim=1)
        logits = self.fc2(F.relu(self.fc1(self.dropout(emb))))
        return ClassifierOutput(logits, emb)


class StackedBiLSTMClassifier(nn.Module):
    """Stacked encoder embeddings → meta-learner → :class:`BiLSTMHead` (the paper's model, [R]).

    Args:
        stacked: the :class:`~paperzoo.arabic_emo.encoders.StackedEncoder`.
        num_labels: ``K`` (11).
        lstm_hidden: 128; dropout: 0.3; summary: ``"final"`` or ``"maxpool"`` (as
            :class:`BiLSTMHead`).

    ``forward(texts | one token mapping per encoder)`` → :class:`ClassifierOutput` (``logits``
    ``(B, K)``, ``embedding`` ``(B, 2 * lstm_hidden)``); :meth:`forward_encoded` does the same from
    cached encoder outputs.
    """

    def __init__(
        self,
        stacked: StackedEncoder,
        num_labels: int = 11,
        lstm_hidden: int = 128,
        dropout: float = 0.3,
        summary: Summary = "final",
    ) -> None:
        super().__init__()
        if not isinstance(stacked, StackedEncoder):
            raise TypeError(f"stacked: expected a StackedEncoder, got {type(stacked).__name__}")
        self.stacked = stacked
        self.head = BiLSTMHead(stacked.output_size, num_labels, lstm_hidden, dropout, summary)

    def reset_parameters(self) -> None:
        """Re-initialise the meta-learner and the head (encoders are left alone)."""
        self.stacked.reset_parameters()
        self.head.reset_parameters()

    def forward(
        self, inputs: Sequence[str] | Sequence[Mapping[str, Tensor]], *, validate: bool = True
    ) -> ClassifierOutput:
        """Texts, or one ``{"input_ids", "attention_mask"}`` mapping per encoder."""
        return self.forward_encoded(
            self.stacked.encode(inputs, validate=validate), validate=validate
        )

    def forward_encoded(self, encoded: EncodedBatch, *, validate: bool = True) -> ClassifierOutput:
        """From (cached) encoder outputs: the meta-learner and the head only."""
        s, mask = self.stacked.fuse(encoded, validate=validate)
        out: ClassifierOutput = self.head(s, mask, validate=validate)
        return out

    @torch.no_grad()
    def cache_embeddings(
        self,
        inputs: Sequence[str] | Sequence[Mapping[str, Tensor]],
        batch_size: int = 64,
    ) -> EncodedBatch:
        """Run the encoders once over a whole data set, in eval mode, for stage B.

        Token states are right-padded to each encoder's ``max_length`` so batches concatenate
        (packing in the head ignores the padding, so logits equal the live ones).

        Args:
            inputs: ``N`` texts, or one token mapping per encoder with ``(N, L_m)`` tensors.
            batch_size: rows per encoder call.

        Returns:
            :class:`~paperzoo.arabic_emo.encoders.EncodedBatch` with ``N`` rows, on the model's
            device.

        Raises:
            ValueError: trainable encoders (their outputs change during training, so a cache
                would be stale), no rows, ``batch_size < 1``.
        """
        bs = check_positive_int("batch_size", batch_size)
        trainable = [i for i, s in enumerate(self.stacked.specs) if s.trainable]
        if trainable:
            raise ValueError(
                f"specs: cache_embeddings needs frozen encoders, got trainable encoders {trainable}"
            )
        if not inputs:
            raise ValueError("inputs: expected at least one row, got none")
        if isinstance(inputs[0], str):
            texts = [str(t) for t in inputs]
            n = len(texts)
            tokens = None
        else:
            tokens = [dict(t) for t in inputs if not isinstance(t, str)]
            n = int(tokens[0]["input_ids"].shape[0])

        def chunk(a: int, b: int) -> EncodedBatch:
            if tokens is None:
                return self.stacked.encode(texts[a:b])
            return self.stacked.encode([{k: v[a:b] for k, v in t.items()} for t in tokens])

        was = self.training
        self.eval()
        parts = [chunk(a, min(a + bs, n)) for a in range(0, n, bs)]
        self.train(was)
        feats, masks = [], []
        for i, spec in enumerate(self.stacked.specs):
            if self.stacked.fusion == "token":
                L = spec.max_length
                feats.append(
                    torch.cat(
                        [F.pad(p.features[i], (0, 0, 0, L - p.features[i].shape[1])) for p in parts]
                    )
                )
                masks.append(
                    torch.cat([F.pad(p.masks[i], (0, L - p.masks[i].shape[1])) for p in parts])
                )
            else:
                feats.append(torch.cat([p.features[i] for p in parts]))
        return EncodedBatch(feats, masks)
