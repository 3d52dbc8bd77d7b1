"""The registered reproduction runs end to end at its smoke budget; bad config is a UserError."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, find_row, get_experiment
from paperzoo.imp_moe.toy import make_captions


@pytest.mark.slow
def test_smoke_reproduction_produces_rows_and_checks() -> None:
    exp = get_experiment("imp-moe")
    cfg = exp.make_config("smoke", ["n_train=64", "n_test=32", "steps=8", "prototypes_per_class=2"])
    res = exp.run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    for method in ("AGD dense", "AGD MoE", "joint dense (summed loss)"):
        assert 0.0 <= find_row(res.rows, method, "image_cls").mean <= 1.0
    assert len(res.checks) == 6
    mem = find_row(res.rows, "memory", "saved_MB_joint_step").mean
    assert mem > find_row(res.rows, "memory", "saved_MB_agd_step_max").mean


def test_captions_hold_the_class_word_unless_flipped() -> None:
    labels = torch.arange(10).repeat(100)
    caps = make_captions(labels, 50, 0.1, torch.Generator().manual_seed(0))
    class_words = (caps < 10).sum(1)
    assert bool((class_words == 1).all())
    word = caps[caps < 10]
    flipped = float((word != labels).float().mean())
    assert 0.06 < flipped < 0.14


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["methods=sgd"], "methods"),
        (["schedule=cyclic"], "schedule"),
        (["num_moe_layers=9"], "num_moe_layers"),
        (["steps=0"], "steps"),
        (["caption_noise=2"], "caption_noise"),
        (["threads=0"], "threads"),
    ],
)
def test_bad_config_values_are_one_user_error(sets: list[str], match: str) -> None:
    with pytest.raises(UserError, match=match):
        get_experiment("imp-moe").make_config("quick", sets)
