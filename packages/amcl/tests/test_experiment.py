"""The registered reproduction runs end to end and rejects bad settings."""

from __future__ import annotations

import pytest
import torch

from paperzoo.amcl.augment import AUGMENTATIONS, augment
from paperzoo.core.experiments import RunContext, UserError, find_row, get_experiment


@pytest.mark.slow
def test_smoke_reproduction_produces_rows_and_checks() -> None:
    exp = get_experiment("amcl")
    cfg = exp.make_config("smoke", ["n_train=128", "n_test=64", "batch_size=64"])
    res = exp.run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    for method in ("SimCLR-t0.5@five", "AMCL-C3@five"):
        assert 0.0 <= find_row(res.rows, method, "knn_acc").mean <= 1.0
        assert 0.0 <= find_row(res.rows, method, "probe_acc").mean <= 1.0
    assert len(res.checks) == 2


@pytest.mark.parametrize(
    "bad", ["methods=BYOL", "augs=seven", "dataset=cifar", "temp_form=mlp", "epochs=0"]
)
def test_bad_settings_are_rejected(bad: str) -> None:
    with pytest.raises((UserError, ValueError)):
        get_experiment("amcl").make_config("smoke", [bad])


@pytest.mark.parametrize("shape", [(6, 40), (6, 8, 8)])
def test_augmentations_keep_shape_and_differ_per_example(shape: tuple[int, ...]) -> None:
    x = torch.ones(shape)
    g = torch.Generator().manual_seed(0)
    out = augment(x, AUGMENTATIONS, g)
    assert out.shape == x.shape and bool(torch.isfinite(out).all())
    assert not torch.allclose(out[0], out[1])
    same = augment(x, AUGMENTATIONS, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, same)


def test_mlp_encoder_flattens_image_batches() -> None:
    """digits (N, 8, 8) and MNIST (N, 28, 28) reach the MLP encoder as images (it crashed before)."""
    from paperzoo.amcl.experiment import ReproConfig, _backbone

    cfg = ReproConfig(dataset="digits")
    assert _backbone(cfg, 64)(torch.rand(3, 8, 8)).shape == (3, cfg.feat_dim)
    real = ReproConfig(data_root="/unused", real_dataset="fashion-mnist")
    assert _backbone(real, 784)(torch.rand(2, 28, 28)).shape == (2, real.feat_dim)
