"""Bad input to the few-shot functions: clear errors naming the argument, checked before torch
sees the tensors (spec section 9)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from paperzoo.metric_losses import FewShotLoss, ICNNLoss, icnn_loss, proto_logits, prototypes


def test_prototypes_validates_labels_before_counting_them(
    far_episode: tuple[Tensor, Tensor, Tensor, Tensor],
) -> None:
    # bincount used to run first and raised torch's own errors for these labels
    s, sl, _, _ = far_episode
    with pytest.raises(TypeError, match="support_labels: expected an integer dtype"):
        prototypes(s, sl.float(), 5)
    with pytest.raises(
        ValueError, match=r"support_labels: expected labels in \[0, 5\), got range \[-1, 3\]"
    ):
        prototypes(s, sl - 1, 5)
    with pytest.raises(ValueError, match="support_labels: expected a 1-D tensor"):
        prototypes(s, sl.view(2, 5), 5)
    with pytest.raises(TypeError, match="support_labels: expected a torch.Tensor"):
        prototypes(s, sl.tolist(), 5)  # type: ignore[arg-type]


def test_proto_logits_rejects_bad_shapes_naming_the_argument(
    far_episode: tuple[Tensor, Tensor, Tensor, Tensor],
) -> None:
    s, sl, q, _ = far_episode
    protos = prototypes(s, sl, 5)
    with pytest.raises(ValueError, match="query: expected a 2-D tensor"):
        proto_logits(q[0], protos)
    with pytest.raises(TypeError, match="protos: expected a floating-point tensor"):
        proto_logits(q, protos.long())
    with pytest.raises(ValueError, match=r"protos: expected dimension 32 \(like query\), got 31"):
        proto_logits(q, protos[:, :31])


def test_episode_with_unequal_class_counts_is_rejected_in_every_entry_point(
    far_episode: tuple[Tensor, Tensor, Tensor, Tensor],
) -> None:
    s, sl, q, ql = far_episode
    sl_bad = torch.tensor([0, 0, 0, 1, 1, 1, 2, 3, 4, 4])  # 10 rows, 5 classes, uneven
    with pytest.raises(
        ValueError,
        match=r"support_labels: expected every class .* got per-class counts \[3, 3, 1, 1, 2\]",
    ):
        ICNNLoss()(s, sl_bad, q, ql)
    ql_bad = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
    with pytest.raises(ValueError, match="query_labels: expected every class"):
        icnn_loss(s, sl, q, ql_bad)
    with pytest.raises(ValueError, match="query_labels: expected every class"):
        FewShotLoss()(s, sl, q, ql_bad)
    # validate=False skips the (synchronising) count check, as the reproduction runs it
    assert torch.isfinite(icnn_loss(s, sl, q, ql_bad, validate=False))
