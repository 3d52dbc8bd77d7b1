"""The benchmark's operation count: the HPM step's arithmetic against the MAE step's."""

from __future__ import annotations

import pytest

from paperzoo.hpm.bench import BENCH_MODELS, step_flops


@pytest.mark.parametrize("name", ["28px p4 (repro model)", "224px p16 tiny ViT 192-d x4"])
def test_hpm_step_costs_teacher_plus_second_decoder(name: str) -> None:
    f = step_flops(BENCH_MODELS[name])
    # the teacher's forward sees all L patches: more than the student's encoder forward on the
    # visible quarter, and part of the HPM step only
    assert 0 < f["teacher"] < f["hpm_step"] - f["mae_step"]
    # teacher (encoder on L + 1 tokens, loss-predictor decoder) and the student's second decoder
    # (forward + backward) cost more than one MAE step for these sizes: the official algorithm's
    # arithmetic exceeds 2x MAE (see the README's benchmark section)
    assert f["ratio"] > 2.0


def test_step_flops_scale_with_batch() -> None:
    cfg = BENCH_MODELS["28px p4 (repro model)"]
    one, two = step_flops(cfg, 1), step_flops(cfg, 2)
    for key in ("mae_step", "hpm_step", "teacher"):
        assert one[key] == pytest.approx(two[key], rel=1e-9)
