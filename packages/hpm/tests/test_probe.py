"""hpm's frozen-feature evaluation: mean-pooled encoder features (the probes are the core's)."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core import probes
from paperzoo.hpm import encoder_features, knn_accuracy, linear_probe_accuracy

from .conftest import tiny_model


def test_the_probes_are_the_cores() -> None:
    assert knn_accuracy is probes.knn_accuracy
    assert linear_probe_accuracy is probes.linear_probe_accuracy


def test_encoder_features_are_mean_pooled_patch_tokens() -> None:
    model = tiny_model()
    imgs = torch.rand(5, 2, 8, 8)
    feats = encoder_features(model, imgs, batch_size=2)
    with torch.no_grad():
        expect = model.encode(imgs)[:, 1:].mean(1)
    assert feats.shape == (5, 16) and torch.allclose(feats, expect, atol=1e-6)
    assert model.training


def test_encoder_features_rejects_a_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        encoder_features(tiny_model(), torch.rand(2, 2, 8, 8), batch_size=0)
