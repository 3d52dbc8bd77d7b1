"""Frozen-feature evaluation: a linear probe and a kNN classifier on ``(N, F)`` features.

Self-supervised and representation-learning reproductions (hpm, amcl, ...) score an encoder by how
well a linear classifier or a nearest-neighbour vote separates the classes of its frozen features.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["knn_accuracy", "linear_probe_accuracy"]


def _check_features(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor) -> None:
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if not isinstance(x, Tensor) or not x.is_floating_point():
            got = x.dtype if isinstance(x, Tensor) else type(x).__name__
            raise TypeError(f"{name}: expected a floating-point tensor (N, F), got {got}")
    for name, y in (("y_train", y_train), ("y_test", y_test)):
        if not isinstance(y, Tensor) or y.dtype == torch.bool or y.is_floating_point():
            got = y.dtype if isinstance(y, Tensor) else type(y).__name__
            raise TypeError(f"{name}: expected an integer class-index tensor (N,), got {got}")
        if y.is_complex():
            raise TypeError(f"{name}: expected an integer class-index tensor (N,), got {y.dtype}")
    if x_train.dim() != 2 or x_test.dim() != 2 or x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            f"x_train, x_test: expected (N, F) with the same F, got {tuple(x_train.shape)} and "
            f"{tuple(x_test.shape)}"
        )
    if y_train.shape != (x_train.shape[0],) or y_test.shape != (x_test.shape[0],):
        raise ValueError("y_train, y_test: expected one label per row of x_train, x_test")
    if x_train.shape[0] == 0 or x_test.shape[0] == 0:
        raise ValueError("x_train, x_test: expected non-empty sets")
    devices = {t.device for t in (x_train, y_train, x_test, y_test)}
    if len(devices) > 1:
        raise ValueError(
            f"x_train, y_train, x_test, y_test: expected one device, got {sorted(map(str, devices))}"
        )
    low = int(torch.minimum(y_train.min(), y_test.min()))
    if low < 0:
        raise ValueError(f"y_train, y_test: expected class indices >= 0, got {low}")
    if not bool(torch.isfinite(x_train).all() & torch.isfinite(x_test).all()):
        raise ValueError("x_train, x_test: expected finite features, got NaN or inf")


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

    Args:
        x_train, x_test: ``(N_train, F)``, ``(N_test, F)`` floating features, finite, on one
            device; ``N_train >= 2``.
        y_train, y_test: ``(N_train,)``, ``(N_test,)`` integer class indices ``>= 0``; the class
            count is ``max(y_train, y_test) + 1``.
        optimizer: ``"lbfgs"`` (default), ``"adamw"`` or ``"sgd"``.
        weight_decay: L2 weight (``1e-4``) of the objective.
        epochs: L-BFGS iterations or full-batch steps (``100``).
        lr: step size (default 1.0 for L-BFGS, 1e-2 AdamW, 0.5 SGD).

    Returns:
        Test accuracy in [0, 1].

    Raises:
        TypeError: non-floating features or non-integer labels.
        ValueError: shapes, empty sets, fewer than 2 training rows, negative labels, NaN/inf,
            mixed devices, bad ``optimizer`` / ``epochs`` / ``weight_decay``.
    """
    if optimizer not in ("lbfgs", "adamw", "sgd"):
        raise ValueError(f"optimizer: expected 'lbfgs', 'adamw' or 'sgd', got {optimizer!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
        raise ValueError(f"epochs: expected a positive int, got {epochs!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay: expected a non-negative float, got {weight_decay!r}")
    _check_features(x_train, y_train, x_test, y_test)
    if x_train.shape[0] < 2:
        raise ValueError(
            "x_train: expected at least 2 rows (the features are standardised with the training "
            f"set's standard deviation), got {x_train.shape[0]}"
        )
    mu = x_train.mean(dim=0)
    sd = x_train.std(dim=0).clamp_min(1e-6)
    xtr = ((x_train - mu) / sd).double()
    xte = ((x_test - mu) / sd).double()
    num_classes = int(torch.cat([y_train, y_test]).max()) + 1
    dev = xtr.device
    weight = torch.zeros(
        xtr.shape[1], num_classes, dtype=torch.float64, device=dev, requires_grad=True
    )
    bias = torch.zeros(num_classes, dtype=torch.float64, device=dev, requires_grad=True)

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

    Args:
        x_train, x_test: ``(N_train, F)``, ``(N_test, F)`` floating features (finite, one device).
        y_train, y_test: ``(N_train,)``, ``(N_test,)`` integer class indices ``>= 0``.
        k: neighbours, an int in ``[1, N_train]`` (20).
        temperature: vote temperature ``> 0`` (0.07).

    Returns:
        Test accuracy in [0, 1].

    Raises:
        TypeError: non-floating features or non-integer labels.
        ValueError: shapes, empty sets, negative labels, NaN/inf, mixed devices, bad ``k`` or
            ``temperature``.
    """
    _check_features(x_train, y_train, x_test, y_test)
    if not temperature > 0:
        raise ValueError(f"temperature: expected a positive float (or inf), got {temperature!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= x_train.shape[0]:
        raise ValueError(f"k: expected an int in [1, {x_train.shape[0]}], got {k}")
    a = F.normalize(x_train.float(), dim=1)
    b = F.normalize(x_test.float(), dim=1)
    num_classes = int(torch.cat([y_train, y_test]).max()) + 1
    sim, idx = (b @ a.T).topk(k, dim=1)
    weights = (sim / temperature).exp()
    votes = torch.zeros(b.shape[0], num_classes, device=b.device).scatter_add_(
        1, y_train[idx], weights
    )
    return float((votes.argmax(dim=1) == y_test).float().mean())
