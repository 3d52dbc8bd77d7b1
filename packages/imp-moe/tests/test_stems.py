"""Stems: token counts, patch layout, DropToken, bad input."""

from __future__ import annotations

import pytest
import torch

from paperzoo.imp_moe import (
    DropToken,
    IMPEncoder,
    PatchEmbed1D,
    PatchEmbed2D,
    PatchEmbed3D,
    TokenEmbed,
)


def test_stems_map_inputs_to_tokens() -> None:
    assert PatchEmbed3D((2, 4, 4), 3, 16)(torch.randn(2, 3, 4, 8, 8)).shape == (2, 8, 16)
    assert PatchEmbed3D((2, 4, 4), 3, 16)(torch.randn(2, 3, 8, 8)).shape == (2, 4, 16)
    assert PatchEmbed2D((7, 7), 1, 16)(torch.randn(2, 1, 28, 28)).shape == (2, 16, 16)
    assert PatchEmbed1D(4, 1, 16, max_len=10)(torch.randn(2, 40)).shape == (2, 10, 16)
    assert TokenEmbed(50, 16)(torch.randint(0, 50, (2, 4))).shape == (2, 4, 16)


def test_patch_projection_sees_exactly_its_patch() -> None:
    stem = PatchEmbed2D((2, 2), 1, 4, max_grid=(2, 2))
    x = torch.zeros(1, 1, 4, 4)
    base = stem(x)
    x[0, 0, 2, 3] = 1.0  # patch (1, 1) -> token 3
    changed = (stem(x) - base).abs().sum(-1)[0] > 0
    assert changed.tolist() == [False, False, False, True]


def test_patch_not_dividing_input_raises_unless_pad() -> None:
    with pytest.raises(ValueError, match="divisible by the patch"):
        PatchEmbed1D(4, 1, 8)(torch.randn(2, 42))
    assert PatchEmbed1D(4, 1, 8, pad=True)(torch.randn(2, 42)).shape == (2, 11, 8)


def test_drop_token_keeps_rounded_share_in_train_and_all_in_eval() -> None:
    drop = DropToken(0.75, generator=torch.Generator().manual_seed(0))
    x = torch.randn(3, 13, 4)  # (1 - 0.75) * 13 = 3.25: no .5 tie, keeps 3
    out = drop(x)
    assert out.shape == (3, 3, 4)
    for b in range(3):  # kept tokens are rows of x, in order
        idx = [int((x[b] == row).all(-1).nonzero()) for row in out[b]]
        assert idx == sorted(idx)
    drop.eval()
    assert torch.equal(drop(x), x)


def test_unknown_modality_raises() -> None:
    enc = IMPEncoder(8, 1, 2, {"image": PatchEmbed2D((2, 2), 1, 8, max_grid=(2, 2))})
    with pytest.raises(ValueError, match="modality: expected one of \\['image'\\]"):
        enc(torch.randn(1, 1, 4, 4), "audio")


def test_token_ids_outside_vocab_raise() -> None:
    with pytest.raises(ValueError, match="ids"):
        TokenEmbed(5, 8)(torch.tensor([[0, 5]]))
