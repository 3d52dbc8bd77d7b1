"""patchify / unpatchify / per_patch_mse (spec section 5)."""

from __future__ import annotations

import pytest
import torch

from paperzoo.hpm import patchify, per_patch_mse, unpatchify


def test_patchify_unpatchify_round_trip_is_exact() -> None:
    imgs = torch.randn(3, 3, 8, 12)
    x = patchify(imgs, 4)
    assert x.shape == (3, 6, 48)
    assert torch.equal(unpatchify(x, 4, 3, grid=(2, 3)), imgs)
    square = torch.randn(2, 1, 28, 28)
    assert torch.equal(unpatchify(patchify(square, 4), 4, 1), square)


def test_patch_vector_order_is_row_col_channel() -> None:
    # hand-built 1x2x4x4 image: value = 100*c + 10*row + col
    rows = torch.arange(4).view(4, 1)
    cols = torch.arange(4).view(1, 4)
    img = torch.stack([100 * c + 10 * rows + cols for c in range(2)]).float()[None]
    x = patchify(img, 2)
    assert x.shape == (1, 4, 8)
    # patch 1 = top-right block (rows 0-1, cols 2-3); vector order (p_row, p_col, c)
    expect = []
    for pr in range(2):
        for pc in range(2):
            for c in range(2):
                expect.append(100 * c + 10 * pr + (2 + pc))
    assert x[0, 1].tolist() == [float(v) for v in expect]
    # patch 2 = bottom-left block
    assert x[0, 2, 0].item() == 20.0 and x[0, 2, 1].item() == 120.0


def test_per_patch_mse_matches_definition() -> None:
    pred = torch.randn(2, 3, 4, dtype=torch.float64)
    target = torch.randn(2, 3, 4, dtype=torch.float64)
    out = per_patch_mse(pred, target)
    assert out.shape == (2, 3)
    assert out[1, 2].item() == pytest.approx(((pred[1, 2] - target[1, 2]) ** 2).mean().item())


def test_norm_pix_target_has_zero_mean_and_unit_unbiased_variance() -> None:
    target = torch.rand(2, 5, 16, dtype=torch.float64) * 3 + 1
    zero = torch.zeros_like(target)
    # with pred = 0, per-patch MSE = mean(t_norm^2) = var_biased(t_norm) + mean(t_norm)^2
    normed = target - target.mean(-1, keepdim=True)
    normed = normed / torch.sqrt(target.var(-1, keepdim=True) + 1e-6)
    assert torch.allclose(normed.mean(-1), torch.zeros(2, 5, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(normed.var(-1), torch.ones(2, 5, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(per_patch_mse(zero, target, norm_pix=True), normed.pow(2).mean(-1))
    assert torch.allclose(
        per_patch_mse(zero, target, norm_pix=True),
        torch.full((2, 5), 15 / 16, dtype=torch.float64),
        atol=1e-4,
    )


def test_gradcheck_per_patch_mse_with_norm_pix() -> None:
    pred = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, t: per_patch_mse(p, t, norm_pix=True), (pred, target))


def test_patchify_rejects_sizes_not_divisible_by_patch() -> None:
    with pytest.raises(ValueError, match="divisible by patch_size"):
        patchify(torch.randn(1, 3, 10, 8), 4)
    with pytest.raises(ValueError, match="imgs"):
        patchify(torch.randn(3, 8, 8), 4)
    with pytest.raises(ValueError, match="patch_size"):
        patchify(torch.randn(1, 3, 8, 8), 0)


def test_unpatchify_rejects_wrong_patch_dim_and_non_square() -> None:
    with pytest.raises(ValueError, match="channels"):
        unpatchify(torch.randn(1, 4, 10), 2, 3)
    with pytest.raises(ValueError, match="square"):
        unpatchify(torch.randn(1, 6, 12), 2, 3)
    with pytest.raises(ValueError, match="grid"):
        unpatchify(torch.randn(1, 6, 12), 2, 3, grid=(2, 2))


def test_per_patch_mse_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="pred, target"):
        per_patch_mse(torch.randn(2, 3, 4), torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="target"):
        per_patch_mse(torch.randn(1, 1, 2), torch.tensor([[[0.0, float("nan")]]]))
    with pytest.raises(ValueError, match="non-empty"):
        per_patch_mse(torch.randn(0, 3, 4), torch.randn(0, 3, 4))


def test_non_square_round_trip_with_odd_channel_count() -> None:
    imgs = torch.randn(2, 3, 8, 12)
    x = patchify(imgs, 4)
    assert x.shape == (2, 6, 48)
    assert torch.equal(unpatchify(x, 4, 3, grid=(2, 3)), imgs)
    with pytest.raises(ValueError, match="divisible"):
        patchify(torch.randn(1, 3, 8, 10), 4)


def test_unpatchify_rejects_bad_channels_and_grid() -> None:
    x = torch.randn(1, 16, 8)
    with pytest.raises(ValueError, match="channels"):
        unpatchify(x, 2, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channels"):
        unpatchify(x, 2, 0)
    with pytest.raises(ValueError, match="grid"):
        unpatchify(x, 2, 2, grid=(-4, -4))
    with pytest.raises(ValueError, match="grid"):
        unpatchify(x, 2, 2, grid=(16,))  # type: ignore[arg-type]


def test_norm_pix_needs_two_values_per_patch() -> None:
    with pytest.raises(ValueError, match="norm_pix"):
        per_patch_mse(torch.randn(2, 3, 1), torch.randn(2, 3, 1), norm_pix=True)
    assert per_patch_mse(torch.randn(2, 3, 1), torch.randn(2, 3, 1)).shape == (2, 3)
