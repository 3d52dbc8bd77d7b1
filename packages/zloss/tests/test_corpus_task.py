"""Reproduction B at paper scale: next-word prediction windows read from a word-level corpus."""

from __future__ import annotations

from pathlib import Path

import torch

from paperzoo.core.datasets import load_real_dataset
from paperzoo.zloss.repro_b import SpeedConfig, corpus_task, speed_run


def _corpus(root: Path) -> None:
    words = [f"w{i}" for i in range(30)]
    lines = [" ".join(words[(3 * j + k) % 30] for k in range(7)) for j in range(60)]
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "valid.txt").write_text("w1 w2\n")
    (root / "test.txt").write_text("\n".join(lines[:10]) + "\n")


def test_each_example_is_the_previous_words_and_the_next_word(tmp_path: Path) -> None:
    _corpus(tmp_path)
    cfg = SpeedConfig(
        num_classes=20, train_size=50, test_size=30, context=3, data_root=str(tmp_path)
    )
    task, (x_tr, y_tr, x_te, y_te) = corpus_task(cfg, seed=0)
    assert task.num_classes == 20 and task.data_root == str(tmp_path)
    assert x_tr.shape == (50, 3) and y_tr.shape == (50,) and x_te.shape == (30, 3)
    assert y_te.shape == (30,)
    ids = load_real_dataset("text-corpus", tmp_path, split="train", vocab_size=20).dataset.ids
    stream = ids.tolist()
    grams = {tuple(stream[t : t + 4]) for t in range(len(stream) - 3)}
    for ctx, nxt in zip(x_tr.tolist(), y_tr.tolist(), strict=True):
        assert (*ctx, nxt) in grams  # a real 4-gram of the training stream, in order
    assert int(torch.cat([x_tr.flatten(), y_tr]).max()) < 20
    again = corpus_task(cfg, seed=0)[1]
    assert torch.equal(again[0], x_tr) and not torch.equal(corpus_task(cfg, seed=1)[1][0], x_tr)


def test_factored_head_trains_on_word_contexts(tmp_path: Path) -> None:
    _corpus(tmp_path)
    cfg = SpeedConfig(
        num_classes=20, dim=8, train_size=200, test_size=40, batch=16, seconds=0.2,
        eval_points=1, data_root=str(tmp_path),
    )  # fmt: skip
    task, data = corpus_task(cfg, seed=0)
    run = speed_run(task, "factored z-loss", 0, data, None)
    assert run.steps > 0 and run.finite and 0.0 <= run.top1 <= run.top10 <= 1.0
