"""as_real: the shared check for real-number arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperzoo.core.errors import as_real, check_like


@pytest.mark.parametrize(
    "value", [3, 2.5, np.float32(2.5), np.int64(3), torch.tensor(2.5), torch.tensor([2.5])]
)
def test_reals_and_one_element_tensors_become_floats(value: object) -> None:
    out = as_real("lr", value)
    assert type(out) is float and out == float(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, "0.1", b"1", None, [1.0], torch.ones(2), object()])
def test_anything_else_is_a_type_error_naming_the_argument(value: object) -> None:
    with pytest.raises(TypeError, match="^lr must be a real number, got "):
        as_real("lr", value)


def test_check_like_names_device_and_dtype_mismatches() -> None:
    w = torch.zeros(2)
    check_like("x", torch.ones(3), w)  # same device and dtype: nothing
    with pytest.raises(
        ValueError, match=r"^x is on device meta but the layer's parameters are on cpu"
    ):
        check_like("x", torch.ones(3, device="meta"), w, owner="the layer")
    with pytest.raises(
        TypeError, match=r"^x has dtype torch.float64 but the model's parameters are torch.float32"
    ):
        check_like("x", torch.ones(3, dtype=torch.float64), w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        check_like("x", torch.ones(3, dtype=torch.bfloat16), w)  # autocast allows the dtype
