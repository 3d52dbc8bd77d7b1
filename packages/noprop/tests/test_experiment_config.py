"""The reproduction's config is checked before the run: a bad ``--set`` value is one UserError."""

from __future__ import annotations

import pytest

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import apply_overrides
from paperzoo.noprop.experiment import NoPropConfig


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("T", "0", "T: expected an integer >= 1, got 0"),
        ("lr", "-1", "lr: expected a finite value > 0"),
        ("block", "transformer", "block"),
        ("test_fraction", "1.5", "test_fraction"),
        ("inference_steps", "()", "inference_steps"),
        ("threads", "0", "threads: expected an integer >= 1"),
    ],
)
def test_a_bad_set_value_is_one_user_error_naming_the_field(
    key: str, value: str, match: str
) -> None:
    with pytest.raises(UserError, match=match):
        apply_overrides(NoPropConfig(), [(key, value)])


def test_the_default_config_and_the_budgets_are_valid() -> None:
    from paperzoo.noprop.experiment import EXPERIMENT

    for overrides in EXPERIMENT.budgets.values():
        NoPropConfig(**overrides)  # type: ignore[arg-type]
