"""The exported surface changes only on purpose."""

from __future__ import annotations

import inspect

import paperzoo.zloss as zl

EXPECTED = {
    "DENSE_SPHERICAL_LOSSES",
    "SPHERICAL_LOSSES",
    "FactoredSGD",
    "FactoredSphericalLinear",
    "FactoredZLossHead",
    "LogSphericalSoftmaxLoss",
    "LogTaylorSoftmaxLoss",
    "SphericalLossFn",
    "SphericalMSELoss",
    "SphericalOutputs",
    "ZLoss",
    "__version__",
    "log_spherical_softmax_loss",
    "log_spherical_softmax_loss_from_stats",
    "log_taylor_softmax_loss",
    "log_taylor_softmax_loss_from_stats",
    "spherical_mse_loss",
    "spherical_mse_loss_from_stats",
    "spherical_stats",
    "spherical_targets",
    "z_loss",
    "z_loss_from_stats",
}


def test_public_api_snapshot() -> None:
    assert set(zl.__all__) == EXPECTED
    assert len(zl.__all__) == len(set(zl.__all__))
    for name in zl.__all__:
        assert hasattr(zl, name), name


def test_signatures_of_the_spec_api() -> None:
    assert list(inspect.signature(zl.z_loss).parameters)[:6] == [
        "logits",
        "target",
        "a",
        "b",
        "eps",
        "reduction",
    ]
    assert list(inspect.signature(zl.z_loss_from_stats).parameters)[:8] == [
        "target_logits",
        "sq_sum",
        "sum",
        "num_classes",
        "a",
        "b",
        "eps",
        "reduction",
    ]
    params = inspect.signature(zl.FactoredSphericalLinear).parameters
    assert params["bias_value"].default == 1.0
    assert params["stabilize_every"].default == 100
    assert params["inverse"].default == "woodbury"
    z = inspect.signature(zl.z_loss).parameters
    assert (z["a"].default, z["b"].default, z["eps"].default) == (1.0, 0.0, 1e-12)


def test_every_public_object_is_documented() -> None:
    for name in zl.__all__:
        obj = getattr(zl, name)
        if callable(obj) and not isinstance(obj, dict):
            assert inspect.getdoc(obj), f"{name} has no docstring"
    assert "PaLM" in (zl.__doc__ or "")
