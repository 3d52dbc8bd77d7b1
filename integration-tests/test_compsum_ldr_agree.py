"""GCE and MAE are offered by two packages (compsum: members of the comp-sum family; ldr: the LDR
paper's baselines); both follow the same closed forms and must agree."""

from __future__ import annotations

import pytest
import torch

from paperzoo.compsum import comp_sum_loss
from paperzoo.ldr import gce_loss, mae_loss


@pytest.mark.parametrize("q", [0.05, 0.7, 1.0])
def test_ldr_gce_equals_comp_sum_at_tau_one_plus_q(q: float) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 7, generator=g, dtype=torch.float64)
    y = torch.randint(0, 7, (16,), generator=g)
    torch.testing.assert_close(
        gce_loss(logits, y, q=q, reduction="none"),
        comp_sum_loss(logits, y, 1.0 + q, reduction="none"),
        rtol=1e-12,
        atol=1e-14,
    )


def test_ldr_mae_is_twice_comp_sum_at_tau_two() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(16, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (16,), generator=g)
    torch.testing.assert_close(
        mae_loss(logits, y, reduction="none"),
        2 * comp_sum_loss(logits, y, 2.0, reduction="none"),
        rtol=1e-12,
        atol=1e-14,
    )
