"""EMA teacher and the HPM stepper."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from paperzoo.core.training import load_checkpoint, save_checkpoint
from paperzoo.hpm import HPM, EMATeacher, MaskedAutoencoderViT, random_mask

from .conftest import assert_same_student_and_teacher, tiny_model


def test_ema_update_is_the_convex_combination(model: MaskedAutoencoderViT) -> None:
    teacher = EMATeacher(model, 0.9, 0.99, 0.5)
    old = [p.detach().clone() for p in teacher.module.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    d = teacher.update(model, 0.0)
    assert d == pytest.approx(0.9)
    for t, o, s in zip(teacher.module.parameters(), old, model.parameters(), strict=True):
        assert torch.allclose(t, d * o + (1 - d) * s, atol=1e-6)
        assert not t.requires_grad
    assert not teacher.module.training


def test_ema_decay_ramps_like_the_reference(model: MaskedAutoencoderViT) -> None:
    teacher = EMATeacher(model)  # 0.999 -> 0.9999 over the first 12.5 % (100 of 800 epochs)
    for epoch in (0, 50, 99, 100, 500):
        ref = 0.999 + epoch / 100 * (0.9999 - 0.999) if epoch < 100 else 0.9999
        assert teacher.decay(epoch / 800) == pytest.approx(ref)


def test_teacher_is_an_independent_copy(model: MaskedAutoencoderViT) -> None:
    teacher = EMATeacher(model)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    assert not torch.equal(next(model.parameters()), next(teacher.module.parameters()))


def test_ema_rejects_a_mismatched_student(model: MaskedAutoencoderViT) -> None:
    teacher = EMATeacher(model)
    with pytest.raises(ValueError, match="student"):
        teacher.update(tiny_model(embed_dim=8), 0.5)
    with pytest.raises(ValueError, match="decay_start"):
        EMATeacher(model, 1.5)


def test_hpm_step_returns_losses_and_an_exact_count_mask(model: MaskedAutoencoderViT) -> None:
    hpm = HPM(model, generator=torch.Generator().manual_seed(0))
    out = hpm.step(torch.rand(4, 2, 8, 8), 9, 10)
    assert out["mask"].shape == (4, 16) and (out["mask"].sum(1) == 12).all()
    assert out["alpha"].item() == pytest.approx(0.5)
    assert torch.allclose(out["loss"], out["loss_rec"] + out["loss_pred"])
    out["loss"].backward()
    assert hpm.update_teacher(9, 10) == pytest.approx(0.9999)


def test_hpm_masks_the_teachers_hardest_patches(model: MaskedAutoencoderViT) -> None:
    hpm = HPM(model, generator=torch.Generator().manual_seed(1))
    imgs = torch.rand(6, 2, 8, 8)
    scores = hpm.teacher_scores(imgs)
    mask = hpm.step(imgs, 9, 10)["mask"]  # alpha 0.5 -> 6 hard of 12
    assert mask.gather(1, scores.topk(6, dim=1).indices).all()


def test_pred_weight_scales_the_prediction_term(model: MaskedAutoencoderViT) -> None:
    imgs = torch.rand(4, 2, 8, 8)
    a = HPM(model, pred_weight=0.0, generator=torch.Generator().manual_seed(2)).step(imgs, 0, 2)
    assert torch.allclose(a["loss"], a["loss_rec"])
    assert a["loss_pred"] > 0


def test_absolute_variant_and_step_schedule(model: MaskedAutoencoderViT) -> None:
    hpm = HPM(model, relative=False, schedule="step")
    out = hpm.step(torch.rand(4, 2, 8, 8), 0, 1, step=19, total_steps=20)
    assert out["alpha"].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="step"):
        hpm.step(torch.rand(4, 2, 8, 8), 0, 1)


def test_plain_mae_stepper_uses_random_masks_and_no_teacher() -> None:
    hpm = HPM(tiny_model(loss_predictor=False))
    assert hpm.teacher is None and not hpm.learning_loss
    out = hpm.step(torch.rand(4, 2, 8, 8), 5, 10)
    assert out["loss_pred"].item() == 0.0 and torch.equal(out["loss"], out["loss"])
    assert hpm.update_teacher(5, 10) is None
    with pytest.raises(ValueError, match="learning_loss"):
        HPM(tiny_model(loss_predictor=False), learning_loss=True)


def test_hpm_rejects_bad_schedule_arguments(model: MaskedAutoencoderViT) -> None:
    hpm = HPM(model)
    imgs = torch.rand(2, 2, 8, 8)
    with pytest.raises(ValueError, match="total_epochs"):
        hpm.step(imgs, 0, 0)
    with pytest.raises(ValueError, match="epoch"):
        hpm.step(imgs, 10, 10)
    with pytest.raises(ValueError, match="mask_ratio"):
        HPM(model, mask_ratio=1.0)
    with pytest.raises(ValueError, match="alpha_end"):
        HPM(model, alpha_end=-0.1)
    with pytest.raises(ValueError, match="schedule"):
        HPM(model, schedule="batch")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model"):
        HPM(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ema_decay"):
        HPM(model, ema_decay=(0.99,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ema_decay"):
        HPM(model, ema_decay=0.99)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="generator"):
        HPM(model, generator=0)  # type: ignore[arg-type]


def test_hpm_step_rejects_non_finite_images_unless_validation_is_off(
    model: MaskedAutoencoderViT,
) -> None:
    imgs = torch.rand(2, 2, 8, 8)
    imgs[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="imgs"):
        HPM(model).step(imgs, 0, 2)
    out = HPM(model, validate=False).step(imgs, 0, 2)
    assert out["mask"].shape == (2, 16)
    with pytest.raises(ValueError, match="imgs"):
        HPM(model, validate=False).step(torch.rand(2, 3, 8, 8), 0, 2)  # shapes still checked


def _train(hpm: HPM, opt: torch.optim.Optimizer, imgs: torch.Tensor, epochs: range) -> torch.Tensor:
    mask = torch.empty(0)
    for epoch in epochs:
        out = hpm.step(imgs, epoch, 4)
        out["loss"].backward()
        opt.step()
        opt.zero_grad()
        hpm.update_teacher(epoch, 4)
        mask = out["mask"]
    return mask


def test_teacher_state_dict_round_trip(model: MaskedAutoencoderViT) -> None:
    teacher = EMATeacher(model, 0.9, 0.99, 0.25)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    teacher.update(model, 0.1)
    other = EMATeacher(tiny_model(), 0.5, 0.6, 0.0)
    other.load_state_dict(teacher.state_dict())
    assert (other.decay_start, other.decay_end, other.warmup_frac) == (0.9, 0.99, 0.25)
    for a, b in zip(other.module.parameters(), teacher.module.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="state"):
        EMATeacher(tiny_model(embed_dim=8)).load_state_dict(teacher.state_dict())
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict({"module": {}})


def test_hpm_resumes_exactly_from_a_checkpoint(tmp_path: Path) -> None:
    """Teacher, mask generator and schedule position survive save/load (weights_only)."""
    imgs = torch.rand(6, 2, 8, 8)

    def make(seed: int) -> tuple[HPM, torch.optim.Optimizer]:
        model = tiny_model()
        hpm = HPM(model, ema_decay=(0.5, 0.9), generator=torch.Generator().manual_seed(seed))
        return hpm, torch.optim.AdamW(model.parameters(), lr=1e-2)

    ref, ref_opt = make(0)
    ref_mask = _train(ref, ref_opt, imgs, range(4))

    first, first_opt = make(0)
    _train(first, first_opt, imgs, range(2))
    first.set_position(1, 4)
    save_checkpoint(
        tmp_path / "ck.pt",
        {
            "model": first.model.state_dict(),
            "opt": first_opt.state_dict(),
            "hpm": first.state_dict(),
        },
    )
    ck = load_checkpoint(tmp_path / "ck.pt")
    resumed, resumed_opt = make(123)  # another seed: everything must come from the checkpoint
    resumed.model.load_state_dict(ck["model"])
    resumed_opt.load_state_dict(ck["opt"])
    resumed.load_state_dict(ck["hpm"])
    assert resumed._pos == (1, 4, None, None)
    mask = _train(resumed, resumed_opt, imgs, range(2, 4))
    assert torch.equal(mask, ref_mask)
    assert_same_student_and_teacher(resumed, ref)


def test_hpm_load_state_dict_rejects_a_mismatched_state(model: MaskedAutoencoderViT) -> None:
    hpm = HPM(model, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="learning_loss"):
        HPM(tiny_model(loss_predictor=False)).load_state_dict(hpm.state_dict())
    with pytest.raises(ValueError, match="generator"):
        HPM(tiny_model()).load_state_dict(hpm.state_dict())
    with pytest.raises(ValueError, match="missing"):
        hpm.load_state_dict({"teacher": None})


def test_teacher_follows_the_student_to_another_device(model: MaskedAutoencoderViT) -> None:
    """An HPM built before ``fit`` moves the model: the teacher must move with it (the meta
    device stands in for CUDA on machines without one)."""
    hpm = HPM(model)
    assert hpm.teacher is not None and hpm.teacher.device.type == "cpu"
    model.to("meta")
    hpm.update_teacher(0, 2)
    assert all(p.device.type == "meta" for p in hpm.teacher.module.parameters())
    assert not any(p.requires_grad for p in hpm.teacher.module.parameters())
    # the teacher's forward comes first in a step: it moves there too, outside inference mode
    hpm = HPM(tiny_model())
    assert hpm.teacher is not None
    scores = hpm.teacher_scores(torch.empty(2, 2, 8, 8, device="meta"))
    assert scores.device.type == "meta" and hpm.teacher.device.type == "meta"
    assert not any(p.is_inference() for p in hpm.teacher.module.parameters())
    hpm.model.to("meta")
    hpm.update_teacher(0, 2)  # in-place EMA on the moved (non-inference) teacher


def test_teacher_copies_no_gradients(model: MaskedAutoencoderViT) -> None:
    model(torch.rand(2, 2, 8, 8), random_mask(2, 16, 0.75)).pred.sum().backward()
    assert all(p.grad is not None for p in model.decoder_pred.parameters())
    teacher = EMATeacher(model)
    assert all(p.grad is None for p in teacher.module.parameters())
