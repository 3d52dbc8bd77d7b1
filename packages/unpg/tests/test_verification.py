"""Verification metrics: TAR@FAR, EER and the WDFS fraction against brute-force definitions."""

from __future__ import annotations

import pytest
import torch

from paperzoo.unpg import eer, tar_at_far, verification_scores, wdfs_fraction


def _scores(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gen = torch.randn(300, generator=g, dtype=torch.float64) + 1.5
    imp = torch.randn(2000, generator=g, dtype=torch.float64)
    return torch.cat([gen, imp]), torch.cat([torch.ones(300), torch.zeros(2000)]).bool()


def test_tar_at_far_hand_value() -> None:
    scores = torch.tensor([0.9, 0.8, 0.4, 0.7, 0.5, 0.3, 0.2, 0.1], dtype=torch.float64)
    same = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0]).bool()
    # FAR 0.2 of 5 impostors: 1 may pass, threshold 0.5 -> genuine 0.9, 0.8 pass
    out = tar_at_far(scores, same, far=(0.0, 0.2, 0.4))
    assert out == {0.0: 2 / 3, 0.2: 2 / 3, 0.4: 1.0}  # FAR 0.4: 0.7, 0.5 pass, threshold 0.3
    assert wdfs_fraction(scores, same) == 2 / 3


@pytest.mark.parametrize("far", [1e-3, 1e-2, 0.1])
def test_tar_at_far_respects_the_false_accept_budget(far: float) -> None:
    scores, same = _scores()
    tar = tar_at_far(scores, same, far=(far,))[far]
    imp, gen = scores[~same], scores[same]
    # brute force: the best TAR over thresholds whose FAR (strictly above) stays within far
    best = 0.0
    for thr in scores.tolist():
        if float((imp > thr).double().mean()) <= far:
            best = max(best, float((gen > thr).double().mean()))
    assert tar == best


def test_eer_matches_a_threshold_sweep() -> None:
    scores, same = _scores(1)
    imp, gen = scores[~same], scores[same]
    best, gap = 0.0, 2.0
    for thr in sorted(set(scores.tolist())):
        fa = float((imp >= thr).double().mean())
        fr = float((gen < thr).double().mean())
        if abs(fa - fr) < gap:
            gap, best = abs(fa - fr), (fa + fr) / 2
    assert abs(eer(scores, same) - best) < 1e-12


def test_verification_scores_are_cosines() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    torch.testing.assert_close(verification_scores(a, b), torch.tensor([1.0, 0.0]))


def test_bad_verification_inputs_raise() -> None:
    scores, same = _scores()
    with pytest.raises(TypeError, match="issame"):
        tar_at_far(scores, same.long())
    with pytest.raises(ValueError, match="impostor"):
        tar_at_far(scores[:300], same[:300])
    with pytest.raises(ValueError, match="far"):
        tar_at_far(scores, same, far=(1.5,))
    with pytest.raises(ValueError, match="emb_a, emb_b"):
        verification_scores(torch.zeros(2, 3), torch.zeros(3, 3))
