"""Batch samplers shared by packages: m-per-class batches and N-way K-shot episodes.

Both are ``DataLoader(dataset, batch_sampler=...)`` batch samplers, seeded (the order is a function of
``seed`` and the epoch set by ``set_epoch``), and distributed-aware: under ``torch.distributed`` (or with
``num_replicas``/``rank`` given) each rank gets a disjoint share of the epoch's batches. Index
generation is vectorised: no Python loop over classes or examples.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from paperzoo.core.checks import check_labels

__all__ = ["EpisodicBatchSampler", "MPerClassSampler"]


def _as_labels(labels: Tensor | Sequence[int]) -> Tensor:
    t = labels if isinstance(labels, Tensor) else torch.as_tensor(list(labels))
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise TypeError(f"labels: expected integer class labels, got dtype {t.dtype}")
    if t.dim() != 1 or t.numel() == 0:
        raise ValueError(f"labels: expected a non-empty 1-D tensor, got shape {tuple(t.shape)}")
    t = t.detach().to("cpu", torch.int64)
    check_labels("labels", t)  # non-negative class ids
    return t


def _replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    import torch.distributed as dist

    dist_on = dist.is_available() and dist.is_initialized()
    world = num_replicas if num_replicas is not None else (dist.get_world_size() if dist_on else 1)
    r = rank if rank is not None else (dist.get_rank() if dist_on else 0)
    if world < 1:
        raise ValueError(f"num_replicas: expected >= 1, got {world}")
    if not 0 <= r < world:
        raise ValueError(f"rank: expected a value in [0, {world}), got {r}")
    return world, r


class _ClassIndex:
    """Examples grouped by class, with a per-epoch random order inside each class."""

    def __init__(self, labels: Tensor) -> None:
        self.labels = labels
        self.classes, self.counts = torch.unique(labels, return_counts=True)
        # position of each class in self.classes, per example
        self.class_pos = torch.searchsorted(self.classes, labels)
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def draw(self, chosen: Tensor, per: int, gen: torch.Generator) -> Tensor:
        """Indices ``(P, per)`` for ``P`` chosen class positions.

        Inside a class, examples come from one random permutation, consumed ``per`` at a time in
        order of the class's occurrences in ``chosen`` and cycled when exhausted: every example is
        used before any repeats, and the ``per`` indices of one row are distinct when the class has
        at least ``per`` examples.
        """
        n = self.labels.numel()
        keys = torch.rand(n, generator=gen)
        # sort by (class, random key): a random permutation within each class
        order = torch.argsort(self.class_pos.double() + keys.double(), stable=True)
        flat = chosen.reshape(-1)
        # occurrence number of each chosen class among earlier picks of the same class
        srt = torch.argsort(flat, stable=True)
        sorted_cls = flat[srt]
        first = torch.searchsorted(sorted_cls, sorted_cls, right=False)
        occ_sorted = torch.arange(flat.numel()) - first
        occ = torch.empty_like(occ_sorted)
        occ[srt] = occ_sorted
        counts = self.counts[flat]
        offs = (occ[:, None] * per + torch.arange(per)[None, :]) % counts[:, None]
        return order[self.starts[flat][:, None] + offs]


class MPerClassSampler:
    """Batches of ``batch_size // m`` distinct classes with ``m`` examples each.

    Args:
        labels: ``(N,)`` integer class labels of the dataset.
        m: examples per class in a batch.
        batch_size: global batch size (per rank under distributed: ``batch_size`` per rank too);
            a multiple of ``m`` with ``batch_size // m`` at most the number of classes.
        length: examples per epoch over all ranks (default ``N``); the epoch has
            ``length // batch_size`` batches, rounded down to a multiple of the world size.
        seed: base seed; the epoch's order is a function of ``(seed, epoch)``.
        num_replicas: number of ranks (default: from ``torch.distributed``, else 1).
        rank: this rank (default: from ``torch.distributed``, else 0).

    A class with fewer than ``m`` examples repeats some of them inside a batch.
    """

    def __init__(
        self,
        labels: Tensor | Sequence[int],
        m: int,
        batch_size: int,
        *,
        length: int | None = None,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        self._index = _ClassIndex(_as_labels(labels))
        if not isinstance(m, int) or m < 1:
            raise ValueError(f"m: expected a positive int, got {m!r}")
        if not isinstance(batch_size, int) or batch_size < m or batch_size % m:
            raise ValueError(
                f"batch_size: expected a positive multiple of m={m}, got {batch_size!r}"
            )
        n_cls = int(self._index.classes.numel())
        if batch_size // m > n_cls:
            raise ValueError(
                f"batch_size: {batch_size} // m={m} = {batch_size // m} classes per batch, "
                f"but the labels hold only {n_cls} classes"
            )
        self.m = m
        self.batch_size = batch_size
        self.length = int(length) if length is not None else int(self._index.labels.numel())
        if self.length < batch_size:
            raise ValueError(f"length: expected >= batch_size={batch_size}, got {self.length}")
        self.seed = seed
        self.epoch = 0
        self.num_replicas, self.rank = _replicas(num_replicas, rank)
        total = self.length // batch_size
        self._total = total - total % self.num_replicas
        if self._total == 0:
            raise ValueError(
                f"length: {self.length} examples give fewer batches than the {self.num_replicas} ranks"
            )

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch; each epoch has its own (seeded) order."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self._total // self.num_replicas

    def all_batches(self) -> Tensor:
        """Every rank's batches of this epoch, ``(num_batches, batch_size)``."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n_cls = int(self._index.classes.numel())
        cpb = self.batch_size // self.m
        chosen = torch.rand(self._total, n_cls, generator=gen).argsort(dim=1)[:, :cpb]
        idx = self._index.draw(chosen.reshape(-1), self.m, gen)
        return idx.reshape(self._total, self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        mine = self.all_batches()[self.rank :: self.num_replicas]
        yield from mine.tolist()


class EpisodicBatchSampler:
    """N-way K-shot Q-query episodes for few-shot learning.

    Each episode yields ``n_way * (k_shot + q_query)`` dataset indices: first the support set
    class-major (``k_shot`` of the episode's class 0, then class 1, ...), then the queries
    class-major. Local class ``j`` of an episode is ``episode_classes(i)[j]``.

    Args:
        labels: ``(N,)`` integer class labels.
        n_way: classes per episode.
        k_shot: support examples per class.
        q_query: query examples per class.
        episodes: episodes per epoch over all ranks (rounded down to a multiple of the world size).
        seed: base seed; the epoch's episodes are a function of ``(seed, epoch)``.
        num_replicas: number of ranks (default: from ``torch.distributed``, else 1).
        rank: this rank (default: from ``torch.distributed``, else 0).

    Raises:
        ValueError: fewer classes than ``n_way``, or a class with fewer than ``k_shot + q_query``
            examples (support and query never share an example).
    """

    def __init__(
        self,
        labels: Tensor | Sequence[int],
        n_way: int,
        k_shot: int,
        q_query: int,
        episodes: int,
        *,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        self._index = _ClassIndex(_as_labels(labels))
        for name, v, lo in (("n_way", n_way, 1), ("k_shot", k_shot, 1), ("q_query", q_query, 0)):
            if not isinstance(v, int) or v < lo:
                raise ValueError(f"{name}: expected an int >= {lo}, got {v!r}")
        if not isinstance(episodes, int) or episodes < 1:
            raise ValueError(f"episodes: expected a positive int, got {episodes!r}")
        n_cls = int(self._index.classes.numel())
        if n_way > n_cls:
            raise ValueError(f"n_way: expected at most the {n_cls} classes in labels, got {n_way}")
        small = self._index.counts < k_shot + q_query
        if bool(small.any()):
            bad = self._index.classes[small].tolist()[:5]
            raise ValueError(
                f"k_shot + q_query: {k_shot + q_query} examples per class needed, but classes {bad} "
                f"have only {self._index.counts[small].tolist()[:5]}"
            )
        self.n_way, self.k_shot, self.q_query = n_way, k_shot, q_query
        self.seed = seed
        self.epoch = 0
        self.num_replicas, self.rank = _replicas(num_replicas, rank)
        self._total = episodes - episodes % self.num_replicas
        if self._total == 0:
            raise ValueError(f"episodes: expected >= the {self.num_replicas} ranks, got {episodes}")
        self._cache: tuple[int, Tensor, Tensor] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch; each epoch has its own (seeded) episodes."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self._total // self.num_replicas

    def _generate(self) -> tuple[Tensor, Tensor]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1], self._cache[2]
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n_cls = int(self._index.classes.numel())
        chosen = torch.rand(self._total, n_cls, generator=gen).argsort(dim=1)[:, : self.n_way]
        per = self.k_shot + self.q_query
        idx = self._index.draw(chosen.reshape(-1), per, gen).reshape(self._total, self.n_way, per)
        support = idx[:, :, : self.k_shot].reshape(self._total, -1)
        query = idx[:, :, self.k_shot :].reshape(self._total, -1)
        episodes = torch.cat([support, query], dim=1)
        classes = self._index.classes[chosen]
        self._cache = (self.epoch, episodes, classes)
        return episodes, classes

    def all_episodes(self) -> Tensor:
        """Every rank's episodes of this epoch, ``(episodes, n_way * (k_shot + q_query))``."""
        return self._generate()[0]

    def episode_classes(self, i: int) -> list[int]:
        """The dataset classes of this rank's episode ``i`` of the current epoch, in local order."""
        classes = self._generate()[1][self.rank :: self.num_replicas]
        return [int(c) for c in classes[i].tolist()]

    def __iter__(self) -> Iterator[list[int]]:
        mine = self._generate()[0][self.rank :: self.num_replicas]
        yield from mine.tolist()
