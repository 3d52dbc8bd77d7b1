"""ALDR-KL's per-example lambda table: exact resume, index dtypes, duplicate indices."""

from __future__ import annotations

import io

import torch

from paperzoo.ldr import (
    ALDRKLLoss,
    aldr_kl_loss,
)

Y = torch.tensor([0, 1, 2, 4])


def test_aldr_resumes_exactly_from_a_checkpoint() -> None:
    """Four steps in one go == two steps, save/load the state_dict into a fresh module, two more."""
    g = torch.Generator().manual_seed(3)
    n, batch = 12, 6
    steps = [
        (3 * torch.randn(batch, 7, generator=g), torch.randint(0, 7, (batch,), generator=g))
        for _ in range(4)
    ]
    order = [torch.randperm(n, generator=g)[:batch] for _ in range(4)]
    straight = ALDRKLLoss(n)
    want = [straight(f, y, i) for (f, y), i in zip(steps, order, strict=True)]
    first = ALDRKLLoss(n)
    for (f, y), i in zip(steps[:2], order[:2], strict=True):
        first(f, y, i)
    buffer = io.BytesIO()
    torch.save({"loss": first.state_dict()}, buffer)
    buffer.seek(0)
    resumed = ALDRKLLoss(n)
    resumed.load_state_dict(torch.load(buffer, weights_only=True)["loss"])
    got = [resumed(f, y, i) for (f, y), i in zip(steps[2:], order[2:], strict=True)]
    assert torch.equal(torch.stack(got), torch.stack(want[2:]))
    assert torch.equal(resumed.lambdas, straight.lambdas)


def test_aldr_index_dtypes_give_the_same_table() -> None:
    f = 3 * torch.randn(4, 5, generator=torch.Generator().manual_seed(4))
    tables = []
    for dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
        loss_fn = ALDRKLLoss(9)
        loss_fn(f, Y, torch.tensor([8, 0, 5, 2], dtype=dtype))
        tables.append(loss_fn.lambdas)
    for table in tables[1:]:
        assert torch.equal(table, tables[0])


def test_duplicate_indices_keep_the_last_occurrence() -> None:
    """Two views of one example in a batch: each uses the stored lambda, the table keeps the last."""
    g = torch.Generator().manual_seed(5)
    f = 3 * torch.randn(6, 5, generator=g)
    y = torch.randint(0, 5, (6,), generator=g)
    index = torch.tensor([4, 1, 4, 0, 1, 4])
    loss_fn = ALDRKLLoss(6, reduction="none")
    loss_fn.lambdas.copy_(torch.tensor([9.0, 8.0, 7.0, 6.0, 5.5, 10.0]))
    before = loss_fn.lambdas.clone()
    got = loss_fn(f, y, index)
    fresh = aldr_kl_loss(f, y, before[index], reduction="none")
    torch.testing.assert_close(got, fresh)  # every occurrence read the stored value
    assert loss_fn.last_lambdas is not None
    new = loss_fn.last_lambdas
    assert loss_fn.lambdas[4] == new[5] and loss_fn.lambdas[1] == new[4]
    assert loss_fn.lambdas[0] == new[3]
    assert torch.equal(loss_fn.lambdas[[2, 3, 5]], before[[2, 3, 5]])
