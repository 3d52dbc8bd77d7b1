"""The offline multimodal toy of the reproduction (spec section 6) and the IMP-tiny model.

Modalities: ``"image"`` = the bundled 5000-image MNIST (28x28, 7x7 patches, 16 tokens),
``"sequence"`` = mnist1d (40 samples, patches of 4, 10 tokens), ``"text"`` = synthetic captions
of 4 tokens from a 50-word vocabulary: the class word (ids 0-9) at a random position among 3
distractors (ids 10-49); with probability ``noise`` the class word is another class's.

Tasks: image classification, sequence classification, image-caption NCE and sequence-caption
NCE; zero-shot classification by caption prototypes is the extra metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.data import load_dataset, make_loader
from paperzoo.imp_moe.agd import Task, repeat
from paperzoo.imp_moe.encoder import IMPEncoder
from paperzoo.imp_moe.heads import (
    ClassificationHead,
    CommonSpace,
    CrossModalNCELoss,
    classification_loss,
)
from paperzoo.imp_moe.stems import PatchEmbed1D, PatchEmbed2D, TokenEmbed

__all__ = [
    "MODALITIES",
    "TASKS",
    "IMPToy",
    "ToyData",
    "evaluate_toy",
    "load_toy",
    "make_captions",
    "make_tasks",
]

NUM_CLASSES = 10
CAPTION_LEN = 4
MODALITIES = ("image", "sequence")
TASKS = ("image_cls", "sequence_cls", "image_caption_nce", "sequence_caption_nce")


def make_captions(labels: Tensor, vocab: int, noise: float, generator: torch.Generator) -> Tensor:
    """Captions ``(N, 4)`` int64 for ``labels (N,)``: the class word (id = label, or with
    probability ``noise`` another class's) at a random position, 3 distractors from ids
    ``[10, vocab)`` elsewhere."""
    n = labels.shape[0]
    words = labels.clone()
    flip = torch.rand(n, generator=generator) < noise
    other = (labels + torch.randint(1, NUM_CLASSES, (n,), generator=generator)) % NUM_CLASSES
    words = torch.where(flip, other, words)
    caps = torch.randint(NUM_CLASSES, vocab, (n, CAPTION_LEN), generator=generator)
    pos = torch.randint(0, CAPTION_LEN, (n,), generator=generator)
    caps[torch.arange(n), pos] = words
    return caps


@dataclass(frozen=True)
class ToyData:
    """Train/test tensors per modality: ``x[m]``, ``y[m]``, ``captions[m]`` (train captions
    noisy; test captions unused by the metrics)."""

    x_train: dict[str, Tensor]
    y_train: dict[str, Tensor]
    cap_train: dict[str, Tensor]
    x_test: dict[str, Tensor]
    y_test: dict[str, Tensor]


def load_toy(n_train: int, n_test: int, vocab: int, noise: float, seed: int) -> ToyData:
    """The toy's data (splits fixed; captions drawn with ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, dict[str, Tensor]] = {"xt": {}, "yt": {}, "ct": {}, "xe": {}, "ye": {}}
    for m, name in (("image", "mnist5k"), ("sequence", "mnist1d")):
        s = load_dataset(name, seed=0, val_fraction=0.0, test_fraction=0.2)
        shape = (1, 28, 28) if m == "image" else (40,)
        out["xt"][m] = s.x_train[:n_train].reshape(-1, *shape)
        out["yt"][m] = s.y_train[:n_train]
        out["xe"][m] = s.x_test[:n_test].reshape(-1, *shape)
        out["ye"][m] = s.y_test[:n_test]
        out["ct"][m] = make_captions(out["yt"][m], vocab, noise, g)
    return ToyData(out["xt"], out["yt"], out["ct"], out["xe"], out["ye"])


class IMPToy(nn.Module):
    """IMP-tiny: one shared :class:`IMPEncoder` (image / sequence / text stems), a classifier
    per classification task, disjoint common spaces and a learnable-temperature NCE per pair
    task. ``num_moe_layers > 0`` makes the last blocks experts-choose MoE FFNs."""

    def __init__(
        self,
        d_model: int = 64,
        depth: int = 4,
        heads: int = 4,
        vocab: int = 50,
        num_moe_layers: int = 0,
        moe_kwargs: dict[str, Any] | None = None,
        temperature_init: float = 0.2,
    ) -> None:
        super().__init__()
        stems = {
            "image": PatchEmbed2D((7, 7), 1, d_model, max_grid=(4, 4), validate=False),
            "sequence": PatchEmbed1D(4, 1, d_model, max_len=10, validate=False),
            "text": TokenEmbed(vocab, d_model, max_len=CAPTION_LEN, validate=False),
        }
        kw = {"validate": False, **(moe_kwargs or {})}
        self.encoder = IMPEncoder(
            d_model,
            depth,
            heads,
            stems,
            num_moe_layers=num_moe_layers,
            moe_kwargs=kw,
            qk_layernorm=num_moe_layers > 0,
        )
        self.heads = nn.ModuleDict(
            {f"{m}_cls": ClassificationHead(d_model, NUM_CLASSES) for m in MODALITIES}
        )
        pairs = [p for m in MODALITIES for p in ((m, "text"), ("text", m))]
        self.common = CommonSpace(d_model, d_model, pairs, kind="disjoint")
        self.nce = nn.ModuleDict(
            {
                f"{m}_caption_nce": CrossModalNCELoss(temperature_init, validate=False)
                for m in MODALITIES
            }
        )

    def task_loss(self, task: str, batch: tuple[Tensor, ...]) -> Tensor:
        """The loss (plus MoE aux losses) of ``task`` on its batch ``(x, y, captions)``."""
        x, y, cap = batch
        m = task.split("_")[0]
        pooled: Tensor
        aux: Tensor
        _, pooled, aux = self.encoder(x, m)
        if task.endswith("_cls"):
            logits: Tensor = self.heads[task](pooled)
            return classification_loss(logits, y, validate=False) + aux
        pooled_t: Tensor
        aux_t: Tensor
        _, pooled_t, aux_t = self.encoder(cap, "text")
        za = self.common(pooled, m, "text")
        zb = self.common(pooled_t, "text", m)
        nce: Tensor = self.nce[task](za, zb)
        return nce + aux + aux_t

    def embed(self, x: Tensor, modality: str, target: str) -> Tensor:
        """Normalised common-space embeddings ``(B, d)`` of ``x`` towards ``target``."""
        return F.normalize(self.common(self.encoder(x, modality)[1], modality, target), dim=-1)


def make_tasks(
    model: IMPToy,
    data: ToyData,
    names: tuple[str, ...],
    batch_size: int,
    seed: int,
) -> list[Task]:
    """One :class:`Task` per name, each cycling its own seeded loader of ``(x, y, captions)``."""
    tasks = []
    for i, name in enumerate(names):
        m = name.split("_")[0]
        idx = torch.arange(data.x_train[m].shape[0])
        loader = make_loader(
            idx, idx, batch_size=batch_size, shuffle=True, seed=seed + i, drop_last=True
        )

        def batches(loader: Any = loader, m: str = m) -> Any:
            for ib, _ in repeat(loader):
                yield data.x_train[m][ib], data.y_train[m][ib], data.cap_train[m][ib]

        def loss_fn(model_: nn.Module, batch: tuple[Tensor, ...], name: str = name) -> Tensor:
            return model.task_loss(name, batch)

        tasks.append(Task(name, batches(), loss_fn))
    return tasks


def _classifier_scores(model: IMPToy, m: str, task: str) -> Callable[[Tensor], Tensor]:
    def scores(xb: Tensor) -> Tensor:
        out: Tensor = model.heads[task](model.encoder(xb, m)[1])
        return out

    return scores


def _prototype_scores(model: IMPToy, m: str, protos: Tensor) -> Callable[[Tensor], Tensor]:
    def scores(xb: Tensor) -> Tensor:
        return model.embed(xb, m, "text") @ protos.T

    return scores


@torch.no_grad()
def evaluate_toy(
    model: IMPToy,
    data: ToyData,
    eval_batch: int,
    vocab: int,
    prototypes_per_class: int,
    seed: int,
    metrics: tuple[str, ...] = TASKS,
) -> dict[str, float]:
    """Test accuracy of each requested metric: ``<m>_cls`` (classifier) and
    ``<m>_caption_nce`` (zero-shot: nearest class prototype, the mean normalised embedding of
    noise-free captions of the class), in fixed batches of ``eval_batch`` (experts-choose
    routing depends on the batch)."""
    from paperzoo.core.evaluation import accuracy

    model.eval()
    out: dict[str, float] = {}
    g = torch.Generator().manual_seed(seed + 7919)
    for task in metrics:
        m = task.split("_")[0]
        x, y = data.x_test[m], data.y_test[m]
        if task.endswith("_cls"):
            scores = _classifier_scores(model, m, task)
        else:
            labels = torch.arange(NUM_CLASSES).repeat_interleave(prototypes_per_class)
            caps = make_captions(labels, vocab, 0.0, g)
            emb = torch.cat(
                [
                    model.embed(caps[i : i + eval_batch], "text", m)
                    for i in range(0, len(caps), eval_batch)
                ]
            )
            protos = F.normalize(emb.view(NUM_CLASSES, prototypes_per_class, -1).mean(1), dim=-1)
            scores = _prototype_scores(model, m, protos)

        out[task] = accuracy(scores, x, y, batch_size=eval_batch)
    model.train()
    return out
