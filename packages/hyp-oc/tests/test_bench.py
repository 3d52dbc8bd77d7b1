"""The benchmark's official-style re-implementations compute what ours compute."""

from __future__ import annotations

import torch

from paperzoo.hyp_oc import expmap0, hyp_pc_loss, hyperbolic_mlr_logits
from paperzoo.hyp_oc.bench import official_style_mlr, official_style_pc_loss


def test_official_style_mlr_equals_ours_with_the_official_eps() -> None:
    c = 0.1
    z = expmap0(torch.randn(12, 6, dtype=torch.float64), c)
    p = expmap0(torch.randn(3, 6, dtype=torch.float64) * 0.5, c)
    a = torch.randn(3, 6, dtype=torch.float64)
    torch.testing.assert_close(
        official_style_mlr(z, p, a, c), hyperbolic_mlr_logits(z, p, a, c, mobius_eps=1e-5)
    )


def test_official_style_pc_loop_equals_the_atan_variant() -> None:
    z = expmap0(torch.randn(8, 5, dtype=torch.float64), 0.1)
    torch.testing.assert_close(
        official_style_pc_loss(z, 0.1),
        hyp_pc_loss(z, 0.1, distance="official_atan", mobius_eps=1e-5),
    )
