"""Sampler invariants: class counts per batch, episode shapes, disjoint ranks, coverage, seeding."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.samplers import EpisodicBatchSampler, MPerClassSampler

LABELS = torch.arange(120) % 10  # 10 classes x 12 examples


def test_every_batch_has_m_per_class_of_distinct_classes() -> None:
    s = MPerClassSampler(LABELS, m=4, batch_size=20, seed=3)
    batches = list(s)
    assert len(batches) == 120 // 20
    for b in batches:
        lab = LABELS[b]
        classes, counts = lab.unique(return_counts=True)
        assert len(b) == 20
        assert classes.numel() == 5
        assert bool((counts == 4).all())
        assert len(set(b)) == 20, "an example repeats inside a batch"


def test_m_per_class_uses_each_example_before_repeating_it() -> None:
    s = MPerClassSampler(LABELS, m=3, batch_size=30, length=1200, seed=0)
    idx = s.all_batches().flatten()
    for c in range(10):
        drawn = idx[LABELS[idx] == c]
        first = drawn[:12]
        assert first.unique().numel() == 12, f"class {c} repeated an example before using all 12"


def test_m_per_class_ranks_are_disjoint_and_cover_the_epoch() -> None:
    full = MPerClassSampler(LABELS, 2, 10, seed=5, num_replicas=1, rank=0).all_batches()
    shards = [
        list(MPerClassSampler(LABELS, 2, 10, seed=5, num_replicas=3, rank=r)) for r in range(3)
    ]
    assert all(len(s) == len(shards[0]) for s in shards)
    got = sorted(tuple(b) for s in shards for b in s)
    assert len(set(got)) == len(got), "two ranks received the same batch"
    assert got == sorted(tuple(b) for b in full.tolist()[: len(got)]), (
        "ranks do not cover the epoch"
    )


def test_m_per_class_is_seeded_and_epoch_dependent() -> None:
    a = MPerClassSampler(LABELS, 4, 20, seed=1)
    b = MPerClassSampler(LABELS, 4, 20, seed=1)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)


def test_m_per_class_works_as_a_dataloader_batch_sampler() -> None:
    ds = TensorDataset(torch.randn(120, 3), LABELS)
    loader = DataLoader(ds, batch_sampler=MPerClassSampler(LABELS, 4, 20))
    xb, yb = next(iter(loader))
    assert xb.shape == (20, 3)
    assert yb.unique(return_counts=True)[1].tolist() == [4] * 5


def test_episodes_have_support_then_query_class_major() -> None:
    s = EpisodicBatchSampler(LABELS, n_way=5, k_shot=2, q_query=3, episodes=7, seed=2)
    eps = list(s)
    assert len(eps) == 7
    for i, ep in enumerate(eps):
        assert len(ep) == 5 * (2 + 3)
        assert len(set(ep)) == len(ep), "support and query overlap"
        classes = s.episode_classes(i)
        assert len(set(classes)) == 5
        sup = LABELS[ep[:10]].view(5, 2)
        qry = LABELS[ep[10:]].view(5, 3)
        assert sup.tolist() == [[c, c] for c in classes]
        assert qry.tolist() == [[c, c, c] for c in classes]


def test_episodes_split_disjointly_across_ranks() -> None:
    full = EpisodicBatchSampler(LABELS, 3, 1, 1, 8, seed=4).all_episodes().tolist()
    r0 = list(EpisodicBatchSampler(LABELS, 3, 1, 1, 8, seed=4, num_replicas=2, rank=0))
    r1 = list(EpisodicBatchSampler(LABELS, 3, 1, 1, 8, seed=4, num_replicas=2, rank=1))
    assert len(r0) == len(r1) == 4
    assert sorted(r0 + r1) == sorted(full)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_way": 11}, "n_way"),
        ({"k_shot": 10, "q_query": 5}, "k_shot \\+ q_query"),
        ({"episodes": 0}, "episodes"),
        ({"k_shot": 0}, "k_shot"),
    ],
)
def test_episode_bad_arguments(kwargs: dict[str, int], match: str) -> None:
    args = {"n_way": 5, "k_shot": 1, "q_query": 1, "episodes": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        EpisodicBatchSampler(LABELS, **args)


@pytest.mark.parametrize(
    ("m", "batch", "match"), [(0, 4, "m"), (3, 10, "batch_size"), (1, 11, "classes per batch")]
)
def test_m_per_class_bad_arguments(m: int, batch: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MPerClassSampler(LABELS, m, batch)


def test_float_labels_are_refused() -> None:
    with pytest.raises(TypeError, match="labels"):
        MPerClassSampler(LABELS.float(), 2, 4)


@pytest.mark.parametrize("cls", ["m", "episodic"])
def test_negative_labels_are_rejected(cls: str) -> None:
    labels = torch.tensor([-1, -1, 0, 0, 1, 1])
    msg = r"^labels: expected non-negative labels, got range \[-1, 1\]"
    with pytest.raises(ValueError, match=msg):
        _ = (
            MPerClassSampler(labels, m=2, batch_size=4)
            if cls == "m"
            else EpisodicBatchSampler(labels, n_way=2, k_shot=1, q_query=1, episodes=2)
        )
