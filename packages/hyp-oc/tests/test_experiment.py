"""The reproduction: attacks, the PCA encoder, the config checks, and the smoke run end to end."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, run_experiment
from paperzoo.hyp_oc.experiment import EXPERIMENT, HypOCConfig, make_attacks, pca_encoder


def test_attacks_keep_the_pixel_range_and_change_the_images() -> None:
    x = torch.rand(20, 64) * 16
    atk = make_attacks(x, torch.Generator().manual_seed(0))
    for name, a in atk.items():
        assert a.shape == x.shape, name
        assert float(a.min()) >= 0 and float(a.max()) <= 16, name
        assert float((a - x).abs().mean()) > 0.1, name
    # partial changes exactly a 3x3 patch per image
    changed = (atk["partial"] != x).view(20, 8, 8).sum((1, 2))
    assert bool((changed <= 9).all())


def test_pca_encoder_whitens_the_training_features() -> None:
    x = torch.randn(500, 10, dtype=torch.float64) @ torch.randn(10, 10, dtype=torch.float64)
    mean, comps, scale = pca_encoder(x, 4)
    f = ((x - mean) @ comps) / scale
    torch.testing.assert_close(f.std(0), torch.ones(4, dtype=torch.float64), rtol=1e-8, atol=1e-8)


def test_bad_config_values_are_user_errors() -> None:
    with pytest.raises(UserError, match="batch_size"):
        HypOCConfig(batch_size=31)
    with pytest.raises(UserError, match="methods"):
        HypOCConfig(methods="hyp,svdd")
    with pytest.raises(UserError, match="alpha"):
        HypOCConfig(alpha=1.0)
    with pytest.raises(UserError, match="std"):
        HypOCConfig(std=0.0)


def test_smoke_run_produces_rows_and_checks() -> None:
    cfg = EXPERIMENT.make_config("smoke", ["methods=hyp,euc"])
    ctx = RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke")
    res = run_experiment(EXPERIMENT, cfg, ctx)
    metrics = {(r.method, r.metric) for r in res.rows}
    assert ("Hyp-OC (PC 0.1)", "auc_print") in metrics
    assert ("Euclidean twin (PC 0.1)", "hter_partial") in metrics
    assert len(res.checks) == 4
    assert all(0.0 <= r.mean <= 1.0 for r in res.rows if r.metric.startswith("auc"))
