"""The experiment's config checks its fields, so a bad ``--set`` value is one UserError line."""

from __future__ import annotations

import pytest

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import apply_overrides
from paperzoo.metric_losses.experiment import EXPERIMENT, MetricLossesConfig


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("fsl_lr", "-1e-3", "fsl_lr: expected a finite value > 0"),
        ("retrieval_iterations", "0", "retrieval_iterations: expected an integer >= 1"),
        ("retrieval_batch", "41", "retrieval_batch: expected a multiple of retrieval_m=8"),
        ("fsl_test_way", "1", "fsl_test_way: expected an integer >= 2"),
        ("fsl_train_way", "300", "fsl_train_way: expected at most fsl_train_classes=200"),
        ("fsl_query", "30", "fsl_shot \\+ fsl_query: expected at most fsl_per_class=30"),
        ("threads", "0", "threads: expected an integer >= 1"),
    ],
)
def test_a_bad_set_value_is_one_user_error_naming_the_field(
    key: str, value: str, match: str
) -> None:
    with pytest.raises(UserError, match=match):
        apply_overrides(MetricLossesConfig(), [(key, value)])


def test_every_budget_is_a_valid_config() -> None:
    for budget, overrides in EXPERIMENT.budgets.items():
        MetricLossesConfig(**overrides)  # type: ignore[arg-type]
        assert budget in EXPERIMENT.seeds
    assert apply_overrides(MetricLossesConfig(), [("threads", "2")]).threads == 2
