"""NCE and classification objectives against per-example loops and analytic values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from paperzoo.imp_moe import (
    ClassificationHead,
    CommonSpace,
    CrossModalNCELoss,
    classification_loss,
    cross_modal_nce,
)


def test_nce_of_two_orthonormal_aligned_pairs_is_log1p_exp_minus_inv_tau() -> None:
    z = torch.eye(2, dtype=torch.float64)
    for tau in (0.1, 0.2, 1.0):
        loss = cross_modal_nce(z, z.clone(), tau)
        assert float(loss) == pytest.approx(math.log1p(math.exp(-1.0 / tau)), rel=1e-12)


def test_nce_rows_match_a_per_example_loop() -> None:
    torch.manual_seed(0)
    za = torch.randn(5, 3, dtype=torch.float64)
    zb = torch.randn(5, 3, dtype=torch.float64)
    rows = cross_modal_nce(za, zb, 0.3, reduction="none")
    a, b = F.normalize(za, dim=-1), F.normalize(zb, dim=-1)
    for i in range(5):
        sims_row = torch.stack([a[i] @ b[j] for j in range(5)]) / 0.3
        sims_col = torch.stack([a[j] @ b[i] for j in range(5)]) / 0.3
        ce_row = -sims_row[i] + torch.logsumexp(sims_row, 0)
        ce_col = -sims_col[i] + torch.logsumexp(sims_col, 0)
        assert float(rows[i]) == pytest.approx(0.5 * float(ce_row + ce_col), rel=1e-12)


def test_nce_is_symmetric_and_scale_invariant() -> None:
    torch.manual_seed(1)
    za, zb = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    ab = cross_modal_nce(za, zb, 0.2, reduction="none")
    torch.testing.assert_close(ab, cross_modal_nce(zb, za, 0.2, reduction="none"))
    torch.testing.assert_close(ab, cross_modal_nce(3.0 * za, 0.5 * zb, 0.2, reduction="none"))


def test_nce_module_temperature_is_learnable_and_starts_at_init() -> None:
    loss = CrossModalNCELoss(temperature_init=1.0)
    assert float(loss.temperature) == pytest.approx(1.0)
    za, zb = torch.randn(4, 3), torch.randn(4, 3)
    loss(za, zb).backward()
    assert loss.log_tau.grad is not None
    fixed = CrossModalNCELoss(0.2, learnable=False)
    assert not any(p.requires_grad for p in fixed.parameters())


@pytest.mark.parametrize(
    ("za", "zb", "match"),
    [
        (torch.randn(4, 3), torch.randn(5, 3), "same shape"),
        (torch.randn(1, 3), torch.randn(1, 3), "at least 2"),
    ],
)
def test_nce_bad_batches_raise(za: torch.Tensor, zb: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cross_modal_nce(za, zb)


def test_classification_loss_matches_a_loop_and_normalises_multilabel_targets() -> None:
    torch.manual_seed(2)
    logits = torch.randn(4, 5, dtype=torch.float64)
    y = torch.tensor([0, 4, 2, 2])
    rows = classification_loss(logits, y, reduction="none")
    for i in range(4):
        ref = -logits[i, y[i]] + torch.logsumexp(logits[i], 0)
        assert float(rows[i]) == pytest.approx(float(ref), rel=1e-12)
    multi = torch.zeros(4, 5, dtype=torch.float64)
    multi[0, [1, 3]] = 1.0
    multi[1:, 0] = 1.0
    out = classification_loss(logits, multi, reduction="none")
    ref0 = -0.5 * (logits[0, 1] + logits[0, 3]) + torch.logsumexp(logits[0], 0)
    assert float(out[0]) == pytest.approx(float(ref0), rel=1e-12)


def test_labels_outside_range_raise() -> None:
    with pytest.raises(ValueError, match=r"target: expected labels in \[0, 5\)"):
        classification_loss(torch.randn(3, 5), torch.tensor([0, 5, 1]))


def test_common_space_disjoint_has_one_projection_per_pair() -> None:
    cs = CommonSpace(8, 4, [("image", "text"), ("seq", "text")], kind="disjoint")
    assert len(cs.proj) == 2
    joint = CommonSpace(8, 4, [("image", "text"), ("seq", "text")], kind="joint")
    assert len(joint.proj) == 3
    x = torch.randn(2, 8)
    assert cs(x, "image", "text").shape == (2, 4)
    with pytest.raises(ValueError, match="source, target"):
        cs(x, "audio", "text")


def test_classification_head_starts_at_zero_logits() -> None:
    head = ClassificationHead(8, 3)
    assert bool((head(torch.randn(2, 8)) == 0).all())
