"""The benchmark's NB race runs and reports same-run ratios (tiny sizes)."""

from __future__ import annotations

import torch

from paperzoo.dis_vs_gen.bench import _nb_case


def test_nb_race_reports_ours_and_the_peers() -> None:
    rows = _nb_case(300, 4, 3, torch.device("cpu"), True, 0.01)
    impls = {r.impl: r for r in rows}
    assert impls["GaussianNBHead.fit (ours)"].ratio == 1.0
    assert "sklearn GaussianNB.fit (peer)" in impls
    assert "labels agree with sklearn GaussianNB" in rows[0].case
    assert all(r.median_s > 0 for r in rows)
