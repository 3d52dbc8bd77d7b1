"""paperzoo.noprop with the core the way users combine them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.core.data import gaussian_mixture, make_loader
from paperzoo.core.evaluation import accuracy
from paperzoo.core.training import fit
from paperzoo.noprop import LabelEmbedding, MLPDenoiseBlock, NoPropDT, NoPropFM


def test_noprop_dt_trained_block_by_block_learns_a_gaussian_mixture() -> None:
    """Algorithm 1 with the core's loader; evaluated by the core's accuracy (forward = predict)."""
    torch.manual_seed(0)
    x, y = gaussian_mixture(600, 3, 8, separation=4.0, seed=0)
    model = NoPropDT(lambda: MLPDenoiseBlock(8, 3, 3, hidden=32), 3, T=4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for epoch in range(10):
        for t in range(1, model.T + 1):
            for xb, yb in make_loader(x[:500], y[:500], batch_size=64, shuffle=True, seed=epoch):
                model.train_step(xb, yb, opt, t=t)
    model.eval()
    acc = accuracy(model, x[500:], y[500:], device="cpu")
    assert acc > 0.8, acc


def test_noprop_fm_trains_with_core_fit_step_fn() -> None:
    """NoProp-FM's loss as a core ``fit`` step function, learned embeddings."""
    torch.manual_seed(0)
    x, y = gaussian_mixture(600, 3, 8, separation=4.0, seed=1)
    emb = LabelEmbedding(3, kind="learned")
    model = NoPropFM(MLPDenoiseBlock(8, 3, 3, hidden=32, time_dim=16), 3, embedding=emb,
                     ce_weight=0.1)  # fmt: skip

    def step(m: nn.Module, batch: tuple[Tensor, Tensor], device: torch.device) -> Tensor:
        xb, yb = (b.to(device) for b in batch)
        loss: Tensor = m.loss(xb, yb)  # type: ignore[operator]
        return loss

    loader = make_loader(x[:500], y[:500], batch_size=64, shuffle=True, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    result = fit(model, loader, opt, step_fn=step, epochs=15, device="cpu", progress=False)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    model.eval()
    assert accuracy(model, x[500:], y[500:], device="cpu") > 0.8
