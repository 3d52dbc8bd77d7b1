"""Target formats: class indices, one-hot (bool too), and the device they live on."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from paperzoo.ldr import (
    ALDRKLLoss,
    crammer_singer_loss,
    gce_loss,
    ldr_kl_loss,
    mae_loss,
    weston_watkins_loss,
)

Y = torch.tensor([0, 1, 2, 4])


def test_bool_one_hot_target_equals_class_indices() -> None:
    """A bool one-hot passed validation and then crashed in argmax (no bool kernel)."""
    f = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    one_hot = F.one_hot(Y, 5).bool()
    for fn in (ldr_kl_loss, crammer_singer_loss, weston_watkins_loss, gce_loss, mae_loss):
        torch.testing.assert_close(fn(f, one_hot), fn(f, Y))
    torch.testing.assert_close(
        ALDRKLLoss(4)(f, one_hot, torch.arange(4)), ALDRKLLoss(4)(f, Y, torch.arange(4))
    )


def test_target_and_index_on_another_device() -> None:
    """A target on another device is a clear error; an index is moved to the table's device."""
    f = torch.randn(4, 5)
    for fn in (ldr_kl_loss, crammer_singer_loss, weston_watkins_loss, gce_loss, mae_loss):
        with pytest.raises(ValueError, match="target: expected device cpu"):
            fn(f, Y.to("meta"))
    with pytest.raises(ValueError, match="target: expected device cpu"):
        ALDRKLLoss(4)(f, Y.to("meta"), torch.arange(4))
