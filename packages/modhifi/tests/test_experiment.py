"""The registered reproduction: config checks, and a tiny end-to-end run."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, find_row, get_experiment
from paperzoo.modhifi.synthetic import GaussianMixtureSampler


@pytest.mark.slow
def test_smoke_reproduction_produces_rows_and_checks() -> None:
    exp = get_experiment("modhifi")
    cfg = exp.make_config("smoke", ["epochs=1", "prune_fracs=(0.5,)"])
    res = exp.run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    for m in ("ModHiFi", "L2", "random", "ModHiFi (no comp)", "ModHiFi (no BN recal)"):
        assert 0.0 <= find_row(res.rows, m, "test_acc@prune0.5").mean <= 1.0
    assert 0.0 <= find_row(res.rows, "unlearn", "forget_acc@q0.05").mean <= 1.0
    assert len(res.checks) == 4 + 2


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["dataset=cifar"], "dataset"),
        (["widths=(8,8)"], "widths"),
        (["prune_fracs=(1.0,)"], "prune_fracs"),
        (["forget_fracs=(0.0,)"], "forget_fracs"),
        (["epochs=0"], "epochs"),
        (["threads=0"], "threads"),
        (["dataset=cifar10"], "data_root"),
        (["unlearn_layers=5"], "unlearn_layers"),
    ],
)
def test_bad_config_values_are_one_user_error(sets: list[str], match: str) -> None:
    with pytest.raises(UserError, match=match):
        get_experiment("modhifi").make_config("smoke", sets)


def test_synthetic_sampler_draws_seeded_images_in_range() -> None:
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(60, 1, 4, 4, generator=g)
    s = GaussianMixtureSampler(n_pca=5, n_mix=2).fit(imgs)
    a, b = s.sample(30, seed=3), s.sample(30, seed=3)
    assert a.shape == (30, 1, 4, 4) and torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    with pytest.raises(RuntimeError, match="fit"):
        GaussianMixtureSampler().sample(3)
