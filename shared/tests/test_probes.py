"""paperzoo.core.probes: linear-probe and kNN evaluation on frozen features (moved from hpm)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from paperzoo.core.probes import knn_accuracy, linear_probe_accuracy


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]])
    return centres[y] + torch.randn(n, 3, generator=g), y


@pytest.mark.parametrize("optimizer", ["lbfgs", "adamw", "sgd"])
def test_linear_probe_separates_separable_classes(optimizer: str) -> None:
    xtr, ytr = _blobs(300, 0)
    xte, yte = _blobs(100, 1)
    assert linear_probe_accuracy(xtr, ytr, xte, yte, optimizer=optimizer) > 0.95  # type: ignore[arg-type]


def test_linear_probe_is_at_chance_on_random_labels() -> None:
    xtr, _ = _blobs(300, 0)
    xte, _ = _blobs(300, 1)
    g = torch.Generator().manual_seed(2)
    acc = linear_probe_accuracy(
        xtr, torch.randint(0, 3, (300,), generator=g), xte, torch.randint(0, 3, (300,), generator=g)
    )
    assert acc < 0.5


def test_knn_matches_a_brute_force_majority_vote() -> None:
    xtr, ytr = _blobs(200, 3)
    xte, yte = _blobs(50, 4)
    acc = knn_accuracy(xtr, ytr, xte, yte, k=5, temperature=float("inf"))
    a = torch.nn.functional.normalize(xtr, dim=1)
    correct = 0
    for i in range(50):
        b = torch.nn.functional.normalize(xte[i], dim=0)
        nearest = (a @ b).topk(5).indices
        votes = torch.bincount(ytr[nearest], minlength=3)
        correct += int(votes.argmax().item() == yte[i].item())
    assert acc == pytest.approx(correct / 50)


def test_probes_reject_mismatched_inputs() -> None:
    xtr, ytr = _blobs(20, 0)
    with pytest.raises(ValueError, match="x_train, x_test"):
        knn_accuracy(xtr, ytr, xtr[:, :2], ytr)
    with pytest.raises(ValueError, match="y_train"):
        linear_probe_accuracy(xtr, ytr[:5], xtr, ytr)
    with pytest.raises(ValueError, match="k"):
        knn_accuracy(xtr, ytr, xtr, ytr, k=50)
    with pytest.raises(ValueError, match="optimizer"):
        linear_probe_accuracy(xtr, ytr, xtr, ytr, optimizer="lars")  # type: ignore[arg-type]


def test_probes_reject_bad_labels_features_and_arguments() -> None:
    xtr, ytr = _blobs(20, 0)
    bad_x = xtr.clone()
    bad_x[0, 0] = float("nan")
    cases: list[tuple[type[Exception], str, dict[str, Any]]] = [
        (TypeError, "y_train", {"y_train": ytr.float()}),
        (TypeError, "y_test", {"y_test": ytr.bool()}),
        (TypeError, "x_train", {"x_train": xtr.long()}),
        (ValueError, ">= 0", {"y_train": ytr - 1}),
        (ValueError, "finite", {"x_train": bad_x}),
        (ValueError, "non-empty", {"x_test": xtr[:0], "y_test": ytr[:0]}),
    ]
    for probe in (linear_probe_accuracy, knn_accuracy):
        for err, match, kw in cases:
            args = {"x_train": xtr, "y_train": ytr, "x_test": xtr, "y_test": ytr, **kw}
            with pytest.raises(err, match=match):
                probe(**args)
    with pytest.raises(ValueError, match="at least 2 rows"):  # std of one row is NaN
        linear_probe_accuracy(xtr[:1], ytr[:1], xtr, ytr)
    with pytest.raises(ValueError, match="epochs"):
        linear_probe_accuracy(xtr, ytr, xtr, ytr, epochs=0)
    with pytest.raises(ValueError, match="temperature"):
        knn_accuracy(xtr, ytr, xtr, ytr, temperature=0.0)
    with pytest.raises(ValueError, match="k"):
        knn_accuracy(xtr, ytr, xtr, ytr, k=True)


def test_probes_accept_labels_absent_from_the_training_set() -> None:
    xtr, ytr = _blobs(20, 0)
    # class 5 only in the test set: counted (never predicted), no index error
    yte = ytr.clone()
    yte[0] = 5
    acc = knn_accuracy(xtr, ytr, xtr, yte, k=3)
    assert 0.0 <= acc <= (len(yte) - 1) / len(yte)
    assert linear_probe_accuracy(xtr, ytr, xtr, yte) <= (len(yte) - 1) / len(yte)
