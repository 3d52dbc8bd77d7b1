"""The MAE-ViT with the loss-predictor branch: shapes, token order, gradient routing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.hpm import (
    MaskedAutoencoderViT,
    patchify,
    random_mask,
    relative_loss_prediction_loss,
    sincos_pos_embed_2d,
)
from paperzoo.hpm.model import Block

from .conftest import tiny_model


def test_output_shapes(model: MaskedAutoencoderViT) -> None:
    imgs = torch.rand(3, 2, 8, 8)
    mask = random_mask(3, 16, 0.75, torch.Generator().manual_seed(0))
    out = model(imgs, mask)
    assert out.pred.shape == (3, 12, 8)
    assert out.loss_pred_masked is not None and out.loss_pred_masked.shape == (3, 12)
    assert out.loss_pred is not None and out.loss_pred.shape == (3, 16)
    assert out.latent.shape == (3, 1 + 4, 16)
    assert model.encode(imgs).shape == (3, 17, 16)
    full = model(imgs)
    assert full.pred.shape == (3, 0, 8) and full.loss_pred is not None


def test_loss_pred_in_patch_order_matches_mask_token_order(model: MaskedAutoencoderViT) -> None:
    imgs = torch.rand(4, 2, 8, 8)
    mask = random_mask(4, 16, 0.5, torch.Generator().manual_seed(1))
    out = model(imgs, mask)
    assert out.loss_pred is not None and out.loss_pred_masked is not None
    assert torch.equal(out.loss_pred[mask].view(4, -1), out.loss_pred_masked)


def test_visible_first_then_mask_tokens_in_ascending_patch_order() -> None:
    """Independent formulation with boolean indexing (the reference's x[~mask], x[mask])."""
    model = tiny_model().double()
    imgs = torch.rand(3, 2, 8, 8, dtype=torch.float64)
    mask = random_mask(3, 16, 0.75, torch.Generator().manual_seed(2))
    out = model(imgs, mask)

    x = model.patch_embed(imgs).flatten(2).transpose(1, 2) + model.pos_embed[:, 1:]
    x = x[~mask].reshape(3, -1, 16)
    x = torch.cat([(model.cls_token + model.pos_embed[:, :1]).expand(3, -1, -1), x], 1)
    for blk in model.blocks:
        x = blk(x)
    latent = model.norm(x)
    assert torch.allclose(latent, out.latent)
    y = model.decoder_embed(latent)
    pos = model.decoder_pos_embed[:, 1:].expand(3, -1, -1)
    seq = torch.cat(
        [
            y[:, :1] + model.decoder_pos_embed[:, :1],
            y[:, 1:] + pos[~mask].reshape(3, -1, 8),
            model.mask_token + pos[mask].reshape(3, -1, 8),
        ],
        1,
    )
    rec = seq
    for blk in model.decoder_blocks:
        rec = blk(rec)
    pred = model.decoder_pred(model.decoder_norm(rec))[:, -12:]
    assert torch.allclose(pred, out.pred)
    target = patchify(imgs, 2)[mask].reshape(3, 12, 8)
    assert torch.allclose(model.reconstruction_loss(imgs, out), (pred - target).pow(2).mean(-1))


def test_loss_prediction_gradient_reaches_encoder_but_not_target(
    model: MaskedAutoencoderViT,
) -> None:
    imgs = torch.rand(4, 2, 8, 8)
    mask = random_mask(4, 16, 0.75, torch.Generator().manual_seed(3))
    out = model(imgs, mask)
    per_patch = model.reconstruction_loss(imgs, out)
    assert out.loss_pred_masked is not None
    loss_pred = relative_loss_prediction_loss(out.loss_pred_masked, per_patch)
    enc = model.blocks[0].attn.qkv.weight
    rec_head = model.decoder_pred.weight
    g_enc, g_rec = torch.autograd.grad(loss_pred, [enc, rec_head], allow_unused=True)
    assert g_enc is not None and g_enc.abs().sum() > 0
    assert g_rec is None or g_rec.abs().sum() == 0  # target losses are detached


def test_reconstruction_loss_gives_no_gradient_to_the_loss_predictor(
    model: MaskedAutoencoderViT,
) -> None:
    imgs = torch.rand(4, 2, 8, 8)
    mask = random_mask(4, 16, 0.75, torch.Generator().manual_seed(4))
    out = model(imgs, mask)
    loss_rec = model.reconstruction_loss(imgs, out).mean()
    assert model.losspred_head is not None
    params = [model.losspred_head.weight, model.blocks[0].mlp[0].weight]
    g_pred, g_enc = torch.autograd.grad(loss_rec, params, allow_unused=True)
    assert g_pred is None or g_pred.abs().sum() == 0
    assert g_enc is not None and g_enc.abs().sum() > 0


def test_plain_mae_has_no_loss_predictor() -> None:
    mae = tiny_model(loss_predictor=False)
    out = mae(torch.rand(2, 2, 8, 8), random_mask(2, 16, 0.75))
    assert out.loss_pred is None and out.loss_pred_masked is None
    n_hpm = sum(p.numel() for p in tiny_model().parameters())
    n_mae = sum(p.numel() for p in mae.parameters())
    assert n_hpm > n_mae


def test_sincos_embedding_matches_the_mae_formula() -> None:
    emb = sincos_pos_embed_2d(8, 3)
    assert emb.shape == (10, 8) and torch.equal(emb[0], torch.zeros(8))
    # patch at row 1, col 2 -> index 1 + 1*3 + 2; first half encodes the column
    omega = 1.0 / 10000 ** (torch.arange(2, dtype=torch.float64) / 2)
    col, row = 2.0, 1.0
    expect = torch.cat(
        [
            torch.sin(col * omega),
            torch.cos(col * omega),
            torch.sin(row * omega),
            torch.cos(row * omega),
        ]
    ).float()
    assert torch.allclose(emb[1 + 3 + 2], expect)


def test_reset_parameters_is_deterministic_under_seed() -> None:
    a, b = tiny_model(), tiny_model()
    torch.manual_seed(5)
    a.reset_parameters()
    torch.manual_seed(5)
    b.reset_parameters()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert isinstance(a.blocks[0], Block) and isinstance(a.decoder_pred, nn.Linear)


def test_model_rejects_bad_inputs(model: MaskedAutoencoderViT) -> None:
    good_mask = random_mask(2, 16, 0.75)
    with pytest.raises(ValueError, match="imgs"):
        model(torch.rand(2, 3, 8, 8), good_mask)  # channel mismatch
    with pytest.raises(ValueError, match="imgs"):
        model(torch.rand(2, 2, 8, 10), good_mask)  # non-square / wrong size
    with pytest.raises(ValueError, match="imgs"):
        model(torch.rand(0, 2, 8, 8), good_mask[:0])
    with pytest.raises(ValueError, match="imgs"):
        model(torch.full((2, 2, 8, 8), float("nan")), good_mask)
    with pytest.raises(TypeError, match="mask"):
        model(torch.rand(2, 2, 8, 8), good_mask.float())
    with pytest.raises(ValueError, match="mask"):
        model(torch.rand(2, 2, 8, 8), good_mask[:, :15])
    uneven = good_mask.clone()
    uneven[0] = True
    with pytest.raises(ValueError, match="same number"):
        model(torch.rand(2, 2, 8, 8), uneven)
    with pytest.raises(ValueError, match="num_masked"):
        model(torch.rand(2, 2, 8, 8), good_mask, num_masked=3)
    with pytest.raises(ValueError, match="img_size"):
        MaskedAutoencoderViT(img_size=10, patch_size=4)
    with pytest.raises(ValueError, match="num_heads"):
        tiny_model(num_heads=3)
    with pytest.raises(ValueError, match="decoder_embed_dim"):
        tiny_model(decoder_embed_dim=6, decoder_num_heads=3)


def test_predict_loss_equals_the_unmasked_forward(model: MaskedAutoencoderViT) -> None:
    imgs = torch.rand(3, 2, 8, 8)
    out = model(imgs)
    assert out.loss_pred is not None
    assert torch.allclose(model.predict_loss(imgs), out.loss_pred, atol=1e-6)
    with pytest.raises(ValueError, match="loss_predictor"):
        tiny_model(loss_predictor=False).predict_loss(imgs)


def test_model_rejects_a_mask_on_another_device(model: MaskedAutoencoderViT) -> None:
    mask = random_mask(2, 16, 0.75, device="meta")
    with pytest.raises(ValueError, match="mask: expected it on the images' device"):
        model(torch.rand(2, 2, 8, 8), mask)


def test_reconstruction_loss_needs_a_masked_patch(model: MaskedAutoencoderViT) -> None:
    imgs = torch.rand(2, 2, 8, 8)
    out = model(imgs, torch.zeros(2, 16, dtype=torch.bool))
    assert out.pred.shape == (2, 0, 8)
    with pytest.raises(ValueError, match="no patch"):
        model.reconstruction_loss(imgs, out)


def test_model_rejects_images_of_another_dtype_or_device(model: MaskedAutoencoderViT) -> None:
    mask = random_mask(2, 16, 0.75)
    with pytest.raises(
        TypeError,
        match=r"imgs has dtype torch.float64 but the model.s parameters are torch.float32",
    ):
        model(torch.rand(2, 2, 8, 8, dtype=torch.float64), mask)
    with pytest.raises(
        ValueError, match=r"imgs is on device meta but the model.s parameters are on cpu"
    ):
        model.encode(torch.rand(2, 2, 8, 8, device="meta"))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision stays allowed
        out = model(torch.rand(2, 2, 8, 8, dtype=torch.bfloat16), mask)
    assert out.pred.shape == (2, 12, 8)
    with pytest.raises(ValueError, match="norm_pix_loss"):
        tiny_model(patch_size=1, in_chans=1, img_size=4, norm_pix_loss=True)
