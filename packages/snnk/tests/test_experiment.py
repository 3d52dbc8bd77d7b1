"""The registered reproduction: config checks, and each part end to end at a tiny budget."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, find_row, get_experiment
from paperzoo.snnk.experiment import kernel_relative_mse


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["parts=kernel,attention"], "parts"),
        (["kernel_ms=(16)"], "kernel_ms"),
        (["lrs=()"], "lrs"),
        (["bundle_m=0"], "bundle_m"),
        (["friedman_noise=-1"], "friedman_noise"),
        (["threads=0"], "threads"),
    ],
)
def test_bad_config_values_are_one_user_error(sets: list[str], match: str) -> None:
    with pytest.raises(UserError, match=match):
        get_experiment("snnk").make_config("smoke", sets)


def test_kernel_relative_mse_shrinks_with_m() -> None:
    for kind in ("cos", "relu"):
        small = kernel_relative_mse(kind, 8, 8, 16, 20, seed=0)
        large = kernel_relative_mse(kind, 8, 8, 1024, 20, seed=0)
        assert large < small / 10


@pytest.mark.slow
def test_smoke_reproduction_produces_rows_and_checks() -> None:
    exp = get_experiment("snnk")
    cfg = exp.make_config(
        "smoke", ["parts=kernel,bundle", "friedman_train=100", "friedman_test=50"]
    )
    res = exp.run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    assert find_row(res.rows, "cos", "kernel_mse_loglog_slope").mean < 0
    assert find_row(res.rows, "ridge on raw features", "friedman1_test_mse").mean > 0
    assert len(res.checks) == 2


def test_full_fine_tune_trains_the_backbone_and_head_only_does_not() -> None:
    from torch import nn

    from paperzoo.core.models import mlp
    from paperzoo.snnk import trainable_parameters
    from paperzoo.snnk.experiment import SNNKConfig, _adapted

    backbone = nn.Sequential(*list(mlp([40, 32, 32, 5]))[:4])
    for p in backbone.parameters():
        p.requires_grad_(False)
    cfg = SNNKConfig(hidden=32)
    full = _adapted("full", 0, backbone, cfg, 0)
    assert trainable_parameters(full) == (40 * 32 + 32) + (32 * 32 + 32) + (32 * 5 + 5)
    assert trainable_parameters(_adapted("head", 0, backbone, cfg, 0)) == 32 * 5 + 5
    snnk = _adapted("cos-snnk", 8, backbone, cfg, 0)
    assert trainable_parameters(snnk) == 2 * (8 * 32 + 32) + 32 * 5 + 5


@pytest.mark.slow  # about 50 s on the shared 2-core machine (mnist1d plus 17 short fits)
def test_parts_adapters_runs_only_the_adapter_part() -> None:
    """``--set parts=adapters`` (the README's larger-budget run) gives (b)'s rows and checks only."""
    from paperzoo.snnk.experiment import adapter_methods

    exp = get_experiment("snnk")
    cfg = exp.make_config("smoke", ["parts=adapters", "lrs=(1e-3,1e-2)"])
    res = exp.run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    assert [c.name[:3] for c in res.checks] == ["(b)"] * 4
    assert not any(r.metric.startswith(("kernel", "diabetes", "friedman")) for r in res.rows)
    for label, _method, _size in adapter_methods(cfg):
        assert 0.0 <= find_row(res.rows, label, "test_acc").mean <= 1.0
        assert find_row(res.rows, label, "lr").mean in cfg.lrs
    assert res.extra["adapter_n"]["test"] > 0


def test_features_out_of_range_raise_a_value_error_subclass() -> None:
    from paperzoo.snnk import FeatureRangeError
    from paperzoo.snnk.features import positive_features

    g = torch.randn(8, 4)
    with pytest.raises(FeatureRangeError, match="underflows"):
        positive_features(torch.full((2, 4), 20.0), g)  # |x|^2 / 2 = 800
    assert issubclass(FeatureRangeError, ValueError)


@pytest.mark.slow  # about 50 s on the shared 2-core machine, like the adapter-part test above
def test_a_diverged_learning_rate_is_never_selected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A candidate whose random features leave the dtype's range scores NaN (logged and listed in
    ``extra``); selection takes the other rate instead of the whole run crashing."""
    from paperzoo.snnk import FeatureRangeError
    from paperzoo.snnk import experiment as ex

    real = ex._fit_adapted

    def fit(method: str, size: int, backbone: Any, lr: float, *args: Any) -> Any:
        if method == "cos-snnk" and lr == 1e-2:
            raise FeatureRangeError("positive features: every feature of a row underflows")
        return real(method, size, backbone, lr, *args)

    monkeypatch.setattr(ex, "_fit_adapted", fit)
    exp = get_experiment("snnk")
    cfg = exp.make_config("smoke", ["parts=adapters", "lrs=(1e-3,1e-2)"])
    res = exp.run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    cos = [label for label, method, _ in ex.adapter_methods(cfg) if method == "cos-snnk"]
    assert cos and all(find_row(res.rows, label, "lr").mean == 1e-3 for label in cos)
    assert len(res.extra["diverged_candidates"]) == len(cos)
