"""The benchmark's cases: the layer sizes it races and the impls of each race."""

from __future__ import annotations

import torch

from paperzoo.snnk.bench import _adapter_race, _layer_race, layer_cases


def test_layer_cases_cover_the_spec_grid_on_cuda_and_a_subset_on_cpu() -> None:
    cuda = layer_cases(quick=False, cuda=True)
    assert len(cuda) == 18 and (3072, 512, 1024) in cuda
    assert set(layer_cases(quick=True, cuda=False)) <= set(cuda)


def test_layer_race_runs_both_impls() -> None:
    impls = _layer_race(16, 4, 8, torch.device("cpu"))
    assert len(impls) == 2
    for f in impls.values():
        f()


def test_adapter_race_names_the_parameter_counts() -> None:
    name, impls = _adapter_race(torch.device("cpu"))
    assert "SNNK 8,704" in name and "Houlsby 16,928" in name and "LoRA 6,464" in name
    assert len(impls) == 3
