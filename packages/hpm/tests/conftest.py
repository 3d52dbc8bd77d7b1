"""Shared fixtures: a tiny MAE-ViT that runs in milliseconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from paperzoo.hpm import HPM, MaskedAutoencoderViT


def tiny_model(loss_predictor: bool = True, **kw: object) -> MaskedAutoencoderViT:
    torch.manual_seed(0)
    cfg: dict[str, object] = {
        "img_size": 8,
        "patch_size": 2,
        "in_chans": 2,
        "embed_dim": 16,
        "depth": 1,
        "num_heads": 2,
        "decoder_embed_dim": 8,
        "decoder_depth": 1,
        "decoder_num_heads": 2,
        "loss_predictor": loss_predictor,
    }
    cfg.update(kw)
    return MaskedAutoencoderViT(**cfg)  # type: ignore[arg-type]


@pytest.fixture
def model() -> MaskedAutoencoderViT:
    return tiny_model()


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """These tests use tiny tensors: one intra-op thread is fastest and avoids oversubscription
    on shared CI cores (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def assert_same_student_and_teacher(a: HPM, b: HPM) -> None:
    """The two steppers' students and EMA teachers are bit-identical."""
    assert a.teacher is not None and b.teacher is not None
    for x, y in zip(a.teacher.module.parameters(), b.teacher.module.parameters(), strict=True):
        assert torch.equal(x, y)
    for x, y in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(x, y)
