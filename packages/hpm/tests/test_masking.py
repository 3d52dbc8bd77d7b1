"""Random and hard-patch masks, the easy-to-hard schedule (spec section 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from paperzoo.hpm import check_mask, easy_to_hard_alpha, hard_patch_mask, num_masked, random_mask


def test_num_masked_follows_the_reference_convention() -> None:
    assert num_masked(49, 0.75) == 37  # 49 - floor(49 * 0.25) = 49 - 12
    assert num_masked(196, 0.75) == 147


def test_random_mask_has_exactly_n_m_per_row() -> None:
    mask = random_mask(64, 49, 0.75, torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == (64, 49)
    assert (mask.sum(1) == 37).all()


def test_random_mask_rate_per_position_is_n_m_over_l() -> None:
    mask = random_mask(10_000, 49, 0.75, torch.Generator().manual_seed(1))
    rate = mask.float().mean(0)
    assert (rate - 37 / 49).abs().max() < 0.02


def test_hard_fraction_zero_is_uniform() -> None:
    pred = torch.arange(49.0).repeat(10_000, 1)  # strongly ordered scores, ignored at alpha 0
    mask = hard_patch_mask(pred, 0.75, 0.0, torch.Generator().manual_seed(2))
    assert (mask.sum(1) == 37).all()
    assert (mask.float().mean(0) - 37 / 49).abs().max() < 0.02


@pytest.mark.parametrize("alpha", [0.1, 0.5, 1.0])
def test_top_predicted_patches_are_always_masked(alpha: float) -> None:
    g = torch.Generator().manual_seed(3)
    pred = torch.randn(256, 49, generator=g)
    mask = hard_patch_mask(pred, 0.75, alpha, g)
    assert (mask.sum(1) == 37).all()
    n_hard = int(37 * alpha)
    top = pred.topk(n_hard, dim=1).indices
    assert mask.gather(1, top).all()


def test_hard_fraction_one_is_exactly_the_top_patches() -> None:
    g = torch.Generator().manual_seed(4)
    pred = torch.randn(32, 49, generator=g)
    mask = hard_patch_mask(pred, 0.75, 1.0, g)
    expect = torch.zeros_like(mask).scatter_(1, pred.topk(37, dim=1).indices, True)
    assert torch.equal(mask, expect)


def _reference_loop_mask(
    pred: np.ndarray, mask_ratio: float, alpha: float, rng: np.random.Generator
) -> np.ndarray:
    """Per-image loop with the reference's logic: pin the top ones, shuffle the others."""
    n, length = pred.shape
    n_keep = int(length * (1 - mask_ratio))
    n_hard = int((length - n_keep) * alpha)
    out = np.zeros((n, length), dtype=bool)
    for i in range(n):
        order = np.argsort(pred[i])
        hard = order[length - n_hard :]
        rest = np.setdiff1d(np.arange(length), hard)
        rng.shuffle(rest)
        ids = np.concatenate([rest, hard])
        out[i, ids[n_keep:]] = True
    return out


def test_hard_mask_has_the_same_distribution_as_the_reference_loop() -> None:
    n = 20_000
    scores = np.linspace(0.0, 1.0, 10)[None].repeat(n, 0)
    ref = _reference_loop_mask(scores, 0.5, 0.4, np.random.default_rng(0))
    ours = hard_patch_mask(torch.from_numpy(scores), 0.5, 0.4, torch.Generator().manual_seed(5))
    ours_np = ours.numpy()
    assert np.abs(ref.mean(0) - ours_np.mean(0)).max() < 0.02
    # pairwise co-masking rates of the random part agree as well
    co_ref = (ref[:, :, None] & ref[:, None, :]).mean(0)
    co_ours = (ours_np[:, :, None] & ours_np[:, None, :]).mean(0)
    assert np.abs(co_ref - co_ours).max() < 0.02


def test_same_generator_seed_gives_the_same_mask() -> None:
    pred = torch.randn(8, 49)
    a = hard_patch_mask(pred, 0.75, 0.3, torch.Generator().manual_seed(7))
    b = hard_patch_mask(pred, 0.75, 0.3, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert torch.equal(
        random_mask(8, 49, 0.75, torch.Generator().manual_seed(7)),
        random_mask(8, 49, 0.75, torch.Generator().manual_seed(7)),
    )


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.count += 1
        return func(*args, **(kwargs or {}))


def test_masks_never_loop_over_images() -> None:
    counts = []
    for n in (2, 64):
        pred = torch.randn(n, 49)
        with _CountOps() as mode:
            hard_patch_mask(pred, 0.75, 0.5, torch.Generator().manual_seed(0), validate=False)
            random_mask(n, 49, 0.75, torch.Generator().manual_seed(0))
        counts.append(mode.count)
    assert counts[0] == counts[1]


def test_easy_to_hard_schedule_values() -> None:
    assert easy_to_hard_alpha(0, 10) == pytest.approx(0.05)
    assert easy_to_hard_alpha(9, 10) == pytest.approx(0.5)
    assert easy_to_hard_alpha(4, 10, 0.2, 0.7) == pytest.approx(0.45)


def test_check_mask_returns_count_and_rejects_bad_masks() -> None:
    mask = random_mask(4, 49, 0.75)
    assert check_mask(mask, 4, 49) == 37
    uneven = mask.clone()
    uneven[0] = True
    with pytest.raises(ValueError, match="same number"):
        check_mask(uneven)
    with pytest.raises(TypeError, match="bool"):
        check_mask(mask.float())
    with pytest.raises(ValueError, match="shape"):
        check_mask(mask, 4, 50)
    with pytest.raises(ValueError, match="shape"):
        check_mask(mask[None])


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5, 0.99])
def test_bad_mask_ratio_raises(ratio: float) -> None:
    with pytest.raises(ValueError, match="mask_ratio"):
        random_mask(2, 49, ratio)


def test_bad_hard_fraction_and_schedule_arguments_raise() -> None:
    with pytest.raises(ValueError, match="hard_fraction"):
        hard_patch_mask(torch.randn(2, 49), 0.75, 1.5)
    with pytest.raises(ValueError, match="pred_loss"):
        hard_patch_mask(torch.tensor([[float("nan")] * 49]), 0.75, 0.5)
    with pytest.raises(ValueError, match="pred_loss"):
        hard_patch_mask(torch.randn(0, 49), 0.75, 0.5)
    with pytest.raises(ValueError, match="total"):
        easy_to_hard_alpha(0, 0)
    with pytest.raises(ValueError, match="t:"):
        easy_to_hard_alpha(10, 10)
    with pytest.raises(ValueError, match="alpha_end"):
        easy_to_hard_alpha(0, 10, 0.0, 1.5)


def test_tied_scores_keep_exact_counts_and_mask_every_strictly_harder_patch() -> None:
    # 5 distinct top scores, then a 20-way tie straddling the n_hard = floor(37 * 0.5) = 18 cut
    scores = torch.zeros(8, 49)
    scores[:, :5] = torch.arange(5.0, 0.0, -1.0)
    scores[:, 5:25] = 0.5
    gen = torch.Generator().manual_seed(0)
    for alpha in (0.5, 1.0):
        mask = hard_patch_mask(scores, 0.75, alpha, gen)
        assert (mask.sum(1) == 37).all()
        assert mask[:, :5].all()
    # all tied (an untrained teacher can emit a constant): still exact counts
    flat = hard_patch_mask(torch.zeros(8, 49), 0.75, 1.0, gen)
    assert (flat.sum(1) == 37).all()
