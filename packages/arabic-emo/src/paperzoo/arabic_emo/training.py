"""The two training stages inside the core's ``fit`` loop (spec section 3, steps 1 and 6).

- Stage A: :func:`finetune_encoder` fine-tunes one encoder with a linear head on its pooled state
  and plain BCE.
- Stage B: :func:`cached_step` is a core step function that trains the meta-learner and the
  Bi-LSTM head on cached encoder outputs with any loss returning a mapping with ``"loss"`` (the
  hybrid loss's :meth:`~paperzoo.arabic_emo.hybrid.HybridLossOutput.as_dict`);
  :class:`BestOnDev` keeps the weights of the epoch with the best dev macro-F1;
  :func:`predict_proba` and :func:`tune_thresholds` score a trained model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.arabic_emo.encoders import EncodedBatch, Pooling, masked_pool
from paperzoo.arabic_emo.metrics import multilabel_metrics
from paperzoo.arabic_emo.model import ClassifierOutput, StackedBiLSTMClassifier
from paperzoo.core.checks import check_positive, check_positive_int
from paperzoo.core.data import make_loader
from paperzoo.core.training import Callback, StepFn, TrainState, fit

__all__ = [
    "BestOnDev",
    "EncoderFineTuner",
    "cached_step",
    "finetune_encoder",
    "predict_proba",
    "tune_thresholds",
]

CachedLoss = Callable[[ClassifierOutput, Tensor], Mapping[str, Tensor]]
"""``loss(output, targets) -> {"loss": scalar, ...}``."""


class EncoderFineTuner(nn.Module):
    """Stage A: an encoder with a linear head on its pooled state (``(B, K)`` logits).

    Args:
        encoder: called as ``encoder(input_ids=..., attention_mask=...)`` → ``(B, L, D)``.
        hidden_size: ``D``; num_labels: ``K``; pooling: ``"cls"`` or ``"mean"``.
    """

    def __init__(
        self, encoder: nn.Module, hidden_size: int, num_labels: int, pooling: Pooling = "cls"
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling: Pooling = pooling
        self.head = nn.Linear(
            check_positive_int("hidden_size", hidden_size),
            check_positive_int("num_labels", num_labels),
        )

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """``(B, L)`` ids and mask → ``(B, K)`` logits."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        h = getattr(out, "last_hidden_state", out)
        return self.head(masked_pool(h, attention_mask, self.pooling))  # type: ignore[no-any-return]


def finetune_encoder(
    encoder: nn.Module,
    tokens: Mapping[str, Tensor],
    labels: Tensor,
    *,
    hidden_size: int,
    epochs: int = 3,
    lr: float = 2e-5,
    batch_size: int = 32,
    pooling: Pooling = "cls",
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Stage A: fine-tune ``encoder`` in place with a linear head and BCE (``fit``, Adam).

    Defaults are the spec's recommendation for BERT-base encoders (lr 2e-5, batch 32), not the
    paper's values (unverified). The head is discarded afterwards.

    Args:
        encoder: the encoder (its parameters are updated).
        tokens: ``input_ids`` and ``attention_mask``, ``(N, L)`` each.
        labels: ``(N, K)`` 0/1 training labels.
        hidden_size: the encoder's ``D``.
        epochs, lr, batch_size, pooling, seed, device: the run.

    Returns:
        The mean training loss of each epoch.
    """
    check_positive("lr", lr)
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    model = EncoderFineTuner(encoder, hidden_size, labels.shape[1], pooling)
    loader = make_loader(
        torch.arange(ids.shape[0]), labels, batch_size=batch_size, shuffle=True, seed=seed
    )

    def step(m: nn.Module, batch: Any, dev: torch.device) -> Tensor:
        idx, y = batch
        logits = m(ids[idx].to(dev), mask[idx].to(dev))
        return F.binary_cross_entropy_with_logits(logits, y.to(dev))

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    res = fit(model, loader, opt, step_fn=step, epochs=epochs, device=device, progress=False)
    return [h["train_loss"] for h in res.history]


def cached_step(cache: EncodedBatch, loss: CachedLoss) -> StepFn:
    """A core step function for stage B: batches of ``(row index, targets)`` from
    ``make_loader(torch.arange(N), labels, ...)``; the model runs on ``cache.take(index)``."""

    def step(model: nn.Module, batch: Any, device: torch.device) -> Mapping[str, Tensor]:
        idx, y = batch
        assert isinstance(model, StackedBiLSTMClassifier)
        out = model.forward_encoded(cache.take(idx.to(device)), validate=False)
        return loss(out, y.to(device))

    return step


@torch.no_grad()
def predict_proba(
    model: StackedBiLSTMClassifier, cache: EncodedBatch, batch_size: int = 256
) -> Tensor:
    """``(N, K)`` sigmoid probabilities of a model on cached encoder outputs (eval mode)."""
    was = model.training
    model.eval()
    n = cache.features[0].shape[0]
    parts = []
    for a in range(0, n, batch_size):
        rows = torch.arange(a, min(a + batch_size, n), device=cache.features[0].device)
        parts.append(torch.sigmoid(model.forward_encoded(cache.take(rows), validate=False).logits))
    model.train(was)
    return torch.cat(parts)


def tune_thresholds(probs: Tensor, labels: Tensor, grid: Tensor | None = None) -> Tensor:
    """Per-label decision thresholds that maximise each label's F1 on a dev split.

    Args:
        probs: ``(N, K)`` dev probabilities; labels: ``(N, K)`` 0/1 dev labels.
        grid: candidate thresholds (default ``0.05, 0.10, ..., 0.95``); ties go to the one
            closest to 0.5.

    Returns:
        ``(K,)`` thresholds (predict ``probs >= threshold``).
    """
    if grid is None:
        grid = torch.arange(1, 20, dtype=torch.float64) / 20
    grid = grid.to(probs.device, torch.float64)
    pred = probs.double().unsqueeze(0) >= grid[:, None, None]  # (G, N, K)
    y = labels.bool().unsqueeze(0)
    tp = (pred & y).sum(dim=1).double()
    fp = (pred & ~y).sum(dim=1).double()
    fn = (~pred & y).sum(dim=1).double()
    f1 = torch.where(tp > 0, 2 * tp / (2 * tp + fp + fn).clamp_min(1.0), torch.zeros_like(tp))
    # prefer thresholds near 0.5 among equal F1: a small penalty below the F1 resolution
    score = f1 - 1e-9 * (grid[:, None] - 0.5).abs()
    return grid[score.argmax(dim=0)].to(probs.dtype)


class BestOnDev(Callback):
    """After each epoch, scores the dev macro-F1 (threshold 0.5) and keeps the best epoch's weights;
    at the end of training they are loaded back (the spec's early stopping on dev macro-F1)."""

    def __init__(self, dev_cache: EncodedBatch, dev_labels: Tensor) -> None:
        self.cache = dev_cache
        self.labels = dev_labels
        self.best = -1.0
        self.best_epoch = 0
        self.best_state: dict[str, Tensor] | None = None

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        model = state.model
        assert isinstance(model, StackedBiLSTMClassifier)
        probs = predict_proba(model, self.cache)
        score = multilabel_metrics(self.labels, (probs >= 0.5).to(torch.uint8))["macro_f1"]
        logs["dev_macro_f1"] = score
        if score > self.best:
            self.best, self.best_epoch = score, int(logs["epoch"])
            self.best_state = copy.deepcopy(model.state_dict())

    def on_train_end(self, state: TrainState) -> None:
        if self.best_state is not None:
            state.model.load_state_dict(self.best_state)
