"""The MAE ViT with HPM's second decoder branch, the loss predictor."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import check_finite, check_float_tensor, check_like
from paperzoo.hpm.masking import check_mask, ids_visible_first, take_patches
from paperzoo.hpm.patches import patchify, per_patch_mse

__all__ = ["Block", "MAEOutput", "MaskedAutoencoderViT", "sincos_pos_embed_2d"]


def sincos_pos_embed_2d(dim: int, grid_size: int, cls_token: bool = True) -> Tensor:
    """MAE's fixed 2-D sine-cosine position embedding, ``(grid_size**2 [+1], dim)``.

    As in the reference (``get_2d_sincos_pos_embed``): the first half of the channels encodes
    the column index, the second half the row index; each half is ``[sin(pos*w), cos(pos*w)]``
    with ``w_k = 1 / 10000^(k / (dim/4))``; the cls slot is zeros.
    """
    if dim % 4:
        raise ValueError(f"dim: expected a multiple of 4 for the 2-D sin-cos embedding, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    coords = torch.arange(grid_size, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")

    def one_d(pos: Tensor) -> Tensor:
        out = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([out.sin(), out.cos()], dim=1)

    emb = torch.cat([one_d(cols), one_d(rows)], dim=1)
    if cls_token:
        emb = torch.cat([torch.zeros(1, dim, dtype=emb.dtype), emb], dim=0)
    return emb.float()


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (timm's ``Attention``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads: {num_heads} must divide the width {dim}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        projected: Tensor = self.proj(out.transpose(1, 2).reshape(n, t, d))
        return projected


class Block(nn.Module):
    """Pre-norm transformer block (timm 0.3.2's ``Block``: LN eps 1e-6, qkv bias, GELU MLP)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        out: Tensor = x + self.mlp(self.norm2(x))
        return out


class MAEOutput(NamedTuple):
    """What :meth:`MaskedAutoencoderViT.forward` returns.

    Attributes:
        pred: ``(N, M, D)`` reconstructed masked patches, ascending patch index.
        loss_pred_masked: ``(N, M)`` predicted losses of the mask tokens (same order), or
            ``None`` without a loss predictor. This is what the student's predictor is trained on.
        loss_pred: ``(N, L)`` predicted losses of every token, in patch order (visible tokens'
            scores included), or ``None``. With an all-visible mask this is the teacher's ``s^T``.
        mask: ``(N, L)`` bool, True = masked.
        latent: ``(N, 1 + L - M, embed_dim)`` encoder output (cls first, visible ascending).
    """

    pred: Tensor
    loss_pred_masked: Tensor | None
    loss_pred: Tensor | None
    mask: Tensor
    latent: Tensor


class MaskedAutoencoderViT(nn.Module):
    """MAE (ViT encoder, light decoder) with HPM's loss-predictor branch.

    The encoder sees only the visible patches (+ cls token, fixed 2-D sin-cos position
    embedding). The decoder input is ``[cls, visible tokens (ascending), mask tokens
    (ascending)]`` with decoder position embeddings; it feeds two stacks of the same depth and
    width: the *reconstructor* (predicts ``D = p*p*C`` values per masked patch) and the *loss
    predictor* (one score per token). The predictor's gradient reaches the encoder.

    Defaults are the reference class's (``img_size=224, patch_size=16``, ViT-L encoder 1024-d x
    24, decoder 512-d x 8, 16 heads); the paper's ViT-B uses ``embed_dim=768, depth=12,
    num_heads=12``.

    Deviation: the reference's predictor head is ``Linear(d_dec, D)`` followed by a mean over
    the D outputs; that is the same function class as our ``Linear(d_dec, 1)`` (only the
    initial scale differs). Position embeddings are non-persistent buffers (fixed, rebuilt from
    the config) rather than frozen parameters. No ``vis_mask_ratio`` / saliency options (unused
    by HPM's recipe).

    Args:
        img_size: square input side ``H = W``.
        patch_size: ``p``; must divide ``img_size``.
        in_chans: ``C``.
        embed_dim, depth, num_heads: encoder width, blocks and heads.
        decoder_embed_dim, decoder_depth, decoder_num_heads: decoder (and loss predictor) sizes.
        mlp_ratio: MLP hidden width / width (4.0).
        norm_pix_loss: per-patch normalised targets in :meth:`reconstruction_loss` (default False,
            as in the official ViT-B script).
        loss_predictor: build the loss-predictor branch (False gives a plain MAE).
    """

    pos_embed: Tensor
    decoder_pos_embed: Tensor

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        decoder_embed_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        mlp_ratio: float = 4.0,
        norm_pix_loss: bool = False,
        loss_predictor: bool = True,
    ) -> None:
        super().__init__()
        for name, v in (
            ("img_size", img_size),
            ("patch_size", patch_size),
            ("in_chans", in_chans),
            ("embed_dim", embed_dim),
            ("depth", depth),
            ("num_heads", num_heads),
            ("decoder_embed_dim", decoder_embed_dim),
            ("decoder_depth", decoder_depth),
            ("decoder_num_heads", decoder_num_heads),
        ):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        for name, v in (("embed_dim", embed_dim), ("decoder_embed_dim", decoder_embed_dim)):
            if v % 4:
                raise ValueError(
                    f"{name}: expected a multiple of 4 (2-D sin-cos position embedding), got {v}"
                )
        if norm_pix_loss and patch_size**2 * in_chans < 2:
            raise ValueError(
                "norm_pix_loss: needs patches of at least 2 values (unbiased variance), got "
                f"patch_size={patch_size}, in_chans={in_chans}"
            )
        if img_size % patch_size:
            raise ValueError(f"img_size: {img_size} must be divisible by patch_size={patch_size}")
        self.img_size = img_size
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.grid_size = img_size // patch_size
        self.num_patches = self.grid_size**2
        self.embed_dim = embed_dim
        self.decoder_embed_dim = decoder_embed_dim
        self.norm_pix_loss = norm_pix_loss
        self.has_loss_predictor = loss_predictor
        patch_dim = patch_size**2 * in_chans

        # encoder
        self.patch_embed = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.register_buffer(
            "pos_embed", sincos_pos_embed_2d(embed_dim, self.grid_size)[None], persistent=False
        )
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

        # decoder input
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.register_buffer(
            "decoder_pos_embed",
            sincos_pos_embed_2d(decoder_embed_dim, self.grid_size)[None],
            persistent=False,
        )
        # reconstructor
        self.decoder_blocks = nn.ModuleList(
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio) for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_dim)
        # loss predictor (same depth/width, own blocks/norm/head)
        self.losspred_blocks: nn.ModuleList | None = None
        self.losspred_norm: nn.LayerNorm | None = None
        self.losspred_head: nn.Linear | None = None
        if loss_predictor:
            self.losspred_blocks = nn.ModuleList(
                Block(decoder_embed_dim, decoder_num_heads, mlp_ratio) for _ in range(decoder_depth)
            )
            self.losspred_norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
            self.losspred_head = nn.Linear(decoder_embed_dim, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference initialisation: xavier-uniform Linear (bias 0), patch embedding as a
        flattened Linear, LayerNorm (1, 0), ``cls_token`` and ``mask_token`` ~ N(0, 0.02)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        if self.patch_embed.bias is not None:
            nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    # ------------------------------------------------------------------ helpers
    def _check_imgs(self, imgs: Tensor, validate: bool) -> None:
        check_float_tensor("imgs", imgs, 4)
        expect = (self.in_chans, self.img_size, self.img_size)
        if tuple(imgs.shape[1:]) != expect:
            raise ValueError(
                f"imgs: expected shape (N, {', '.join(map(str, expect))}), got {tuple(imgs.shape)}"
            )
        if imgs.shape[0] == 0:
            raise ValueError("imgs: expected a non-empty batch, got N=0")
        check_like("imgs", imgs, self.patch_embed.weight)
        if validate:
            check_finite("imgs", imgs)

    def _embed(self, imgs: Tensor) -> Tensor:
        x: Tensor = self.patch_embed(imgs).flatten(2).transpose(1, 2)
        return x + self.pos_embed[:, 1:].to(x.dtype)

    def _encode_tokens(self, x: Tensor) -> Tensor:
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls.to(x.dtype), x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        out: Tensor = self.norm(x)
        return out

    # ------------------------------------------------------------------ public
    def encode(self, imgs: Tensor, *, validate: bool = True) -> Tensor:
        """Encoder on every patch (no mask), for probing: ``(N, C, H, W) -> (N, 1 + L, E)``."""
        self._check_imgs(imgs, validate)
        return self._encode_tokens(self._embed(imgs))

    def forward(
        self,
        imgs: Tensor,
        mask: Tensor | None = None,
        *,
        num_masked: int | None = None,
        validate: bool = True,
    ) -> MAEOutput:
        """Encode the visible patches, decode the masked ones and predict per-token losses.

        Args:
            imgs: ``(N, C, H, W)``.
            mask: ``(N, L)`` bool on ``imgs``' device, True = masked, the same count ``M`` per
                row; ``None`` = all visible (``M = 0``, how the EMA teacher scores every patch).
            num_masked: ``M`` if known (skips a host sync); checked when ``validate``.
            validate: check inputs (shapes, finiteness, equal mask counts).

        Returns:
            :class:`MAEOutput`; only the ``M`` masked patches are reconstructed (``pred``).
        """
        self._check_imgs(imgs, validate)
        n = imgs.shape[0]
        if mask is None:
            mask = torch.zeros(n, self.num_patches, dtype=torch.bool, device=imgs.device)
            num_masked = 0
        else:
            if isinstance(mask, Tensor) and mask.device != imgs.device:
                raise ValueError(
                    f"mask: expected it on the images' device {imgs.device}, got {mask.device}"
                )
            if validate or num_masked is None:
                counted = check_mask(mask, n, self.num_patches)
                if num_masked is not None and num_masked != counted:
                    raise ValueError(
                        f"num_masked: {num_masked} but the mask holds {counted} per row"
                    )
                num_masked = counted
        n_vis = self.num_patches - num_masked
        order = ids_visible_first(mask)  # (N, L): visible ascending, then masked ascending

        # encoder on visible tokens (ascending patch order)
        x_vis = take_patches(self._embed(imgs), order[:, :n_vis])
        latent = self._encode_tokens(x_vis)

        # decoder input: [cls, visible + pos, mask_token + pos]
        y = self.decoder_embed(latent)
        dpos = self.decoder_pos_embed.to(y.dtype)
        pos = take_patches(dpos[:, 1:].expand(n, -1, -1), order)
        seq = torch.cat(
            [
                y[:, :1] + dpos[:, :1],
                y[:, 1:] + pos[:, :n_vis],
                self.mask_token.to(y.dtype) + pos[:, n_vis:],
            ],
            dim=1,
        )

        rec = seq
        for blk in self.decoder_blocks:
            rec = blk(rec)
        # norm and head are per token: only the masked tokens' outputs are used
        pred = self.decoder_pred(self.decoder_norm(rec[:, 1 + n_vis :]))

        loss_pred_masked: Tensor | None = None
        loss_pred: Tensor | None = None
        if self.losspred_blocks is not None:
            assert self.losspred_norm is not None and self.losspred_head is not None
            s = seq
            for blk in self.losspred_blocks:
                s = blk(s)
            scores = self.losspred_head(self.losspred_norm(s))[:, 1:, 0]  # (N, L) token order
            loss_pred_masked = scores[:, n_vis:]
            loss_pred = torch.zeros_like(scores).scatter(1, order, scores)
        return MAEOutput(pred, loss_pred_masked, loss_pred, mask, latent)

    def predict_loss(self, imgs: Tensor, *, validate: bool = True) -> Tensor:
        """Predicted difficulty of every patch from the full image, ``(N, L)`` in patch order.

        Equals ``forward(imgs).loss_pred`` (no mask) but skips the reconstruction decoder, whose
        output an unmasked view does not need: this is the EMA teacher's forward in HPM.
        """
        if self.losspred_blocks is None:
            raise ValueError("loss_predictor: this model was built without a loss predictor")
        assert self.losspred_norm is not None and self.losspred_head is not None
        self._check_imgs(imgs, validate)
        y = self.decoder_embed(self._encode_tokens(self._embed(imgs)))
        s = y + self.decoder_pos_embed.to(y.dtype)
        for blk in self.losspred_blocks:
            s = blk(s)
        scores: Tensor = self.losspred_head(self.losspred_norm(s))[:, 1:, 0]
        return scores

    def masked_targets(self, imgs: Tensor, mask: Tensor, num_masked: int) -> Tensor:
        """The raw target patches of the masked positions, ``(N, M, D)``, ascending order."""
        order = ids_visible_first(mask)[:, mask.shape[1] - num_masked :]
        return take_patches(patchify(imgs, self.patch_size), order)

    def reconstruction_loss(self, imgs: Tensor, out: MAEOutput) -> Tensor:
        """Per-patch MSE of the masked patches, ``(N, M)`` (``norm_pix_loss`` applied).

        Only masked patches enter MAE's loss; visible ones are never scored.

        Raises:
            ValueError: ``out`` holds no masked patch (an all-visible mask: the mean would be NaN).
        """
        num = out.pred.shape[1]
        if num == 0:
            raise ValueError(
                "out: the mask hides no patch; MAE's loss averages over masked patches only"
            )
        target = self.masked_targets(imgs, out.mask, num)
        return per_patch_mse(
            out.pred, target.to(out.pred.dtype), norm_pix=self.norm_pix_loss, validate=False
        )

    def extra_repr(self) -> str:
        return (
            f"img_size={self.img_size}, patch_size={self.patch_size}, in_chans={self.in_chans}, "
            f"num_patches={self.num_patches}, norm_pix_loss={self.norm_pix_loss}, "
            f"loss_predictor={self.has_loss_predictor}"
        )
