"""The experiment's registration and config validation (the runs themselves are the CLI's)."""

from __future__ import annotations

import pytest

from paperzoo.core.experiments import get_experiment
from paperzoo.metrix.experiment import EXPERIMENT, MetrixConfig


def test_experiment_is_registered() -> None:
    assert get_experiment("metrix") is EXPERIMENT
    assert EXPERIMENT.seeds["quick"] >= 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iterations", 0),
        ("lr", 0.0),
        ("weight", -1.0),
        ("alpha", 0.0),
        ("batch", 36),
        ("batch", 48),
    ],
)
def test_bad_config_raises(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        MetrixConfig(**{field: value})  # type: ignore[arg-type]
