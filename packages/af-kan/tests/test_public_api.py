"""Snapshot of the exported surface: fails when it changes by accident."""

from __future__ import annotations

import paperzoo.af_kan as af_kan

EXPECTED = [
    "ACTIVATIONS",
    "AFKAN",
    "AFKANLayer",
    "BSplineKAN",
    "BSplineKANLayer",
    "FUNCS",
    "METHODS",
    "MLP",
    "NORMS",
    "RBFKAN",
    "RBFKANLayer",
    "ReLUKAN",
    "ReLUKANLayer",
    "af_basis",
    "estimate_flops",
    "grid",
    "l2mm",
    "minmax_stats",
    "relu_kan_basis",
    "relu_kan_scale",
]


def test_public_api_is_unchanged() -> None:
    assert sorted(af_kan.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(af_kan, name), name


def test_registries_list_every_variant() -> None:
    assert sorted(af_kan.FUNCS) == ["cubic1", "cubic2", "prod", "quad1", "quad2", "sum", "sum_prod"]
    assert sorted(af_kan.ACTIVATIONS) == [
        "elu",
        "gelu",
        "leaky_relu",
        "relu",
        "selu",
        "sigmoid",
        "silu",
        "softplus",
        "tanh",
    ]
    assert af_kan.METHODS == ("global_attn", "multistep", "spatial_attn")
