"""The public surface does not change by accident."""

from __future__ import annotations

import paperzoo.losses as pkg


def test_public_api_snapshot() -> None:
    assert sorted(pkg.__all__) == sorted(
        [
            "CONTESTANTS",
            "Contestant",
            "FocalLoss",
            "Noisy",
            "PairedTest",
            "Task",
            "__version__",
            "apply_setting",
            "average_ranks",
            "class_dependent_transition",
            "classification_metrics",
            "contestants_for",
            "focal_loss",
            "g_mean",
            "long_tail_keep",
            "paired_t_test",
            "parse_setting",
            "sign_test",
            "student_t_two_sided_p",
        ]
    )
    for name in pkg.__all__:
        assert hasattr(pkg, name), name
