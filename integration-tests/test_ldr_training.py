"""paperzoo.ldr losses trained the way users train: by paperzoo.core.training.fit."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.data import gaussian_mixture, make_loader
from paperzoo.core.evaluation import accuracy
from paperzoo.core.training import fit, load_checkpoint
from paperzoo.ldr import ALDRKLLoss, LDRKLLoss, uniform_label_noise


def _mlp(dim: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, 32), nn.Tanh(), nn.Linear(32, k))


def test_ldr_kl_trains_an_mlp_with_fit() -> None:
    torch.manual_seed(0)
    x, y = gaussian_mixture(1200, 5, 8, separation=4.0, seed=0)
    model = _mlp(8, 5)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = make_loader(x[:1000], y[:1000], batch_size=64, shuffle=True, seed=0)
    res = fit(model, loader, opt, loss_fn=LDRKLLoss(), epochs=8, device="cpu", progress=False)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert accuracy(model, x[1000:], y[1000:], device="cpu") > 0.9


class _WithALDR(nn.Module):
    """The network and its ALDR-KL criterion in one module, so fit checkpoints the lambda table."""

    def __init__(self, dim: int, k: int, n: int) -> None:
        super().__init__()
        self.net = _mlp(dim, k)
        self.criterion = ALDRKLLoss(n)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]


def test_aldr_kl_trains_with_dataset_indices_and_checkpoints_its_lambdas(tmp_path: Path) -> None:
    torch.manual_seed(0)
    n = 1000
    x, y = gaussian_mixture(n + 200, 5, 8, separation=4.0, seed=1)
    noisy, _ = uniform_label_noise(y[:n], 5, 0.4, generator=torch.Generator().manual_seed(0))
    ds = TensorDataset(x[:n], noisy, torch.arange(n))
    loader = DataLoader(ds, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    model = _WithALDR(8, 5, n)
    opt = torch.optim.SGD(model.net.parameters(), lr=0.05, momentum=0.9)

    def step(m: nn.Module, batch: tuple[Tensor, ...], device: torch.device) -> Tensor:
        xb, yb, idx = (t.to(device) for t in batch)
        assert isinstance(m, _WithALDR)
        return m.criterion(m(xb), yb, idx)  # type: ignore[no-any-return]

    ckpt = tmp_path / "run.pt"
    fit(
        model,
        loader,
        opt,
        step_fn=step,
        epochs=6,
        device="cpu",
        checkpoint_path=ckpt,
        progress=False,
    )
    lambdas = model.criterion.lambdas
    assert bool((lambdas < 10.0).any()) and bool((lambdas >= 5.0).all())
    saved = load_checkpoint(ckpt)["model"]["criterion.lambdas"]
    assert torch.equal(saved, lambdas)
    assert accuracy(model, x[n:], y[n:], device="cpu") > 0.85
