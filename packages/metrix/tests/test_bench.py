"""The benchmark's baseline builds the same pairs as ours; the benchmark is registered."""

from __future__ import annotations

import torch

from paperzoo.core.bench import get_benchmark
from paperzoo.metrix import MixPlan, mix_pairs
from paperzoo.metrix.bench import BENCHMARK, official_pairs_loop


def test_official_loop_port_builds_the_same_pairs() -> None:
    y = torch.tensor([0, 1, 0, 2, 1, 1, 3])
    ours = mix_pairs(y, kind="pos_neg")
    ref = official_pairs_loop(y)

    def key(p: MixPlan) -> list[tuple[int, int, int]]:
        return sorted(zip(p.anchor_idx.tolist(), p.i_idx.tolist(), p.j_idx.tolist(), strict=True))

    assert key(ours) == key(ref)


def test_benchmark_is_registered() -> None:
    assert get_benchmark("metrix") is BENCHMARK
