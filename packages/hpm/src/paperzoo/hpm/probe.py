"""Frozen-feature evaluation: mean-pooled encoder features, a linear probe and a kNN classifier."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.hpm.model import MaskedAutoencoderViT

__all__ = ["encoder_features", "knn_accuracy", "linear_probe_accuracy"]


@torch.no_grad()
def encoder_features(model: MaskedAutoencoderViT, imgs: Tensor, *, batch_size: int = 512) -> Tensor:
    """Mean over the patch tokens of the encoder output (no mask, cls token left out), ``(N, E)``.

    Runs in ``eval`` mode and restores the model's previous mode.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        feats = [
            model.encode(chunk.to(device))[:, 1:].mean(dim=1).float().cpu()
            for chunk in imgs.split(batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(feats)


def _check_features(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor) -> None:
    if x_train.dim() != 2 or x_test.dim() != 2 or x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            f"x_train, x_test: expected (N, F) with the same F, got {tuple(x_train.shape)} and "
            f"{tuple(x_test.shape)}"
        )
    if y_train.shape != (x_train.shape[0],) or y_test.shape != (x_test.shape[0],):
        raise ValueError("y_train, y_test: expected one label per row of x_train, x_test")
    if x_train.shape[0] == 0 or x_test.shape[0] == 0:
        raise ValueError("x_train, x_test: expected non-empty sets")


def linear_probe_accuracy(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    *,
    optimizer: Literal["lbfgs", "adamw", "sgd"] = "lbfgs",
    weight_decay: float = 1e-4,
    epochs: int = 100,
    lr: float | None = None,
) -> float:
    """Test accuracy of a multinomial logistic regression on frozen features.

    Features are standardised with the training set's statistics (like MAE's parameter-free
    BatchNorm before the linear head). ``"lbfgs"`` fits the L2-regularised objective full-batch
    (``epochs`` = L-BFGS iterations, deterministic); ``"adamw"`` / ``"sgd"`` run ``epochs``
    full-batch steps (HPM issue #5: the reference's LARS probe did badly at small batch, so a plain
    optimizer is offered).

    Deviation: the spec names scikit-learn's ``LogisticRegression``; this torch version fits the
    same model without adding scikit-learn to the runtime dependencies, and runs on any device.
    """
    _check_features(x_train, y_train, x_test, y_test)
    mu = x_train.mean(dim=0)
    sd = x_train.std(dim=0).clamp_min(1e-6)
    xtr = ((x_train - mu) / sd).double()
    xte = ((x_test - mu) / sd).double()
    num_classes = int(torch.cat([y_train, y_test]).max()) + 1
    weight = torch.zeros(xtr.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)

    def objective() -> Tensor:
        logits = xtr @ weight + bias
        return F.cross_entropy(logits, y_train) + 0.5 * weight_decay * weight.pow(2).sum()

    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS(
            [weight, bias], lr=lr or 1.0, max_iter=epochs, line_search_fn="strong_wolfe"
        )

        def closure() -> float:
            opt.zero_grad()
            loss = objective()
            loss.backward()
            return float(loss.detach())

        opt.step(closure)
    elif optimizer in ("adamw", "sgd"):
        if optimizer == "adamw":
            opt = torch.optim.AdamW([weight, bias], lr=lr or 1e-2, weight_decay=0.0)
        else:
            opt = torch.optim.SGD([weight, bias], lr=lr or 0.5, momentum=0.9)
        for _ in range(epochs):
            opt.zero_grad()
            objective().backward()
            opt.step()
    else:
        raise ValueError(f"optimizer: expected 'lbfgs', 'adamw' or 'sgd', got {optimizer!r}")
    with torch.no_grad():
        pred = (xte @ weight + bias).argmax(dim=1)
    return float((pred == y_test).double().mean())


def knn_accuracy(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Test accuracy of a cosine-similarity kNN classifier (``k=20``).

    Each of the ``k`` nearest training features votes for its label with weight
    ``exp(cos / temperature)`` (the weighted kNN of DINO's evaluation, T = 0.07, which MAE-style
    kNN evaluations use); ``temperature=inf`` gives plain majority voting.
    """
    _check_features(x_train, y_train, x_test, y_test)
    if not 0 < k <= x_train.shape[0]:
        raise ValueError(f"k: expected an int in [1, {x_train.shape[0]}], got {k}")
    a = F.normalize(x_train.float(), dim=1)
    b = F.normalize(x_test.float(), dim=1)
    num_classes = int(torch.cat([y_train, y_test]).max()) + 1
    sim, idx = (b @ a.T).topk(k, dim=1)
    weights = (sim / temperature).exp()
    votes = torch.zeros(b.shape[0], num_classes).scatter_add_(1, y_train[idx], weights)
    return float((votes.argmax(dim=1) == y_test).float().mean())
