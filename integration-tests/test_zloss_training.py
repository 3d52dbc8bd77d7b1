"""paperzoo.zloss used with the core the way users would."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.core.data import make_loader, zipf_labels
from paperzoo.core.training import Callback, TrainState, fit
from paperzoo.zloss import FactoredSGD, FactoredZLossHead, ZLoss


class _Model(nn.Module):
    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())
        self.head = FactoredZLossHead(dim, num_classes, stabilize_every=10)


class _FactoredStep(Callback):
    """Applies the head's exact SGD update after each optimizer step of fit."""

    def __init__(self, opt: FactoredSGD) -> None:
        self.opt = opt

    def on_batch_end(self, state: TrainState, loss: Tensor) -> None:
        self.opt.step()


def test_fit_trains_body_with_adam_and_the_factored_head_with_factored_sgd() -> None:
    torch.manual_seed(0)
    x, y = zipf_labels(3000, 5000, 32, seed=0)
    model = _Model(32, 5000)
    head_opt = FactoredSGD(model.head, lr=0.5)

    def step_fn(m: nn.Module, batch: tuple[Tensor, Tensor], device: torch.device) -> Tensor:
        xb, yb = (t.to(device) for t in batch)
        return m.head(m.body(xb), yb)  # type: ignore[no-any-return]

    loader = make_loader(x, y, batch_size=100, shuffle=True, seed=0)
    with torch.no_grad():
        before = float(model.head(model.body(x), y))
    res = fit(
        model,
        loader,
        torch.optim.Adam(model.body.parameters(), lr=1e-3),
        step_fn=step_fn,
        epochs=3,
        device="cpu",
        callbacks=[_FactoredStep(head_opt)],
        progress=False,
    )
    with torch.no_grad():
        after = float(model.head(model.body(x), y))
    assert len(res.history) == 3
    assert model.head.layer.num_updates == 90
    assert after < before - 0.05, (before, after)
    model.head.layer.check_invariants(atol=1e-3)
    _, top = model.head.topk(model.body(x[:500]), 10)
    assert float((top == y[:500, None]).any(1).float().mean()) > 0.3


def test_dense_z_loss_trains_with_fit_and_its_head_exports_to_factored() -> None:
    torch.manual_seed(0)
    x, y = zipf_labels(2000, 50, 16, seed=1)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 50))
    res = fit(
        model,
        make_loader(x, y, batch_size=100, shuffle=True, seed=0),
        torch.optim.SGD(model.parameters(), lr=0.1),
        loss_fn=ZLoss(),
        epochs=2,
        device="cpu",
        progress=False,
    )
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    from paperzoo.zloss import FactoredSphericalLinear

    last = model[2]
    assert isinstance(last, nn.Linear)
    head = FactoredSphericalLinear.from_linear(last)
    feats = model[1](model[0](x[:64]))
    torch.testing.assert_close(head.logits(feats), last(feats), rtol=1e-5, atol=1e-5)
