"""as_real: the shared check for real-number arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperzoo.core.errors import as_real


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
