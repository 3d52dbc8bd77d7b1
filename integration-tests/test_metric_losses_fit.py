"""paperzoo-metric-losses with the core, the way users combine them.

* MS loss trained by ``paperzoo.core.training.fit`` on batches from the core's ``MPerClassSampler``
  improves retrieval (MAP@R) of held-out digits;
* the core's ``EpisodicBatchSampler`` feeds ``FewShotLoss`` with its layout (support class-major,
  then queries), and ProtoNet training on it beats chance on unseen classes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.data import gaussian_mixture, load_dataset
from paperzoo.core.samplers import EpisodicBatchSampler, MPerClassSampler
from paperzoo.core.training import fit
from paperzoo.metric_losses import (
    FewShotLoss,
    MultiSimilarityLoss,
    map_at_r,
    proto_logits,
    prototypes,
)


def test_ms_loss_trained_by_core_fit_improves_held_out_map_at_r() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    split = load_dataset("digits", seed=0)
    x, y = split.x_train, split.y_train
    x_te, y_te = split.x_test, split.y_test
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))
    ds = TensorDataset(x, y)
    loader = DataLoader(ds, batch_sampler=MPerClassSampler(y, 8, 40, length=40 * 150))
    loss = MultiSimilarityLoss()

    def step(m: nn.Module, batch: list[Tensor], device: torch.device) -> Tensor:
        xb, yb = (t.to(device) for t in batch)
        return loss(m(xb), yb)  # type: ignore[no-any-return]

    with torch.no_grad():
        before = map_at_r(model(x_te), y_te)
    res = fit(
        model,
        loader,
        torch.optim.Adam(model.parameters(), 1e-3),
        step_fn=step,
        epochs=2,
        device="cpu",
        progress=False,
    )
    with torch.no_grad():
        after = map_at_r(model(x_te), y_te)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert after > before + 0.1, (before, after)


def test_few_shot_loss_on_core_episodes_beats_chance_on_unseen_classes() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = gaussian_mixture(60 * 25, 60, 16, separation=3.0, seed=0)
    tr = y < 40
    x_tr, y_tr, x_te, y_te = x[tr], y[tr], x[~tr], y[~tr] - 40
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 32))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    crit = FewShotLoss()
    n_way, k, q = 10, 1, 5
    sl = torch.arange(n_way).repeat_interleave(k)
    ql = torch.arange(n_way).repeat_interleave(q)
    history = []
    for idx in EpisodicBatchSampler(y_tr, n_way, k, q, 150, seed=0):
        e = model(x_tr[idx])
        out = crit(e[: n_way * k], sl, e[n_way * k :], ql)
        loss = out["loss"]
        history.append(float(loss.detach()))
        assert set(out) == {"loss", "ce", "proto_triplet", "icnn"}
        opt.zero_grad()
        loss.backward()
        opt.step()
    accs = []
    with torch.no_grad():
        for idx in EpisodicBatchSampler(y_te, 5, 1, 5, 100, seed=1):
            e = model(x_te[idx])
            p = prototypes(e[:5], torch.arange(5), 5)
            logits = proto_logits(e[5:], p)
            accs.append(
                float((logits.argmax(1) == torch.arange(5).repeat_interleave(5)).float().mean())
            )
    assert sum(history[-30:]) < sum(history[:30])
    assert sum(accs) / len(accs) > 0.4  # chance is 0.2
