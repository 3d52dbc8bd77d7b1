"""Packages combined the way downstream users combine them, through the core's parts.

One test per pair that makes sense together: an AF-KAN network trained by the core's ``fit`` with an
LDR or a Z-loss, an AF-KAN embedder trained with the Multi-Similarity loss on the core's m-per-class
batches, and an AF-KAN regressor inside a neural contextual-bandit agent.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.af_kan import AFKAN
from paperzoo.core.data import load_dataset, make_loader
from paperzoo.core.evaluation import accuracy
from paperzoo.core.samplers import MPerClassSampler
from paperzoo.core.training import fit
from paperzoo.ldr import LDRKLLoss
from paperzoo.metric_losses import MultiSimilarityLoss, recall_at_k
from paperzoo.neucb import ClassificationBandit, NeuFastCB, run
from paperzoo.zloss import ZLoss


def _digits() -> tuple[torch.Tensor, ...]:
    s = load_dataset("digits", seed=0)
    return s.x_train, s.y_train, s.x_test, s.y_test


def test_af_kan_trained_by_fit_with_the_ldr_kl_loss() -> None:
    torch.manual_seed(0)
    x, y, xt, yt = _digits()
    model = AFKAN([64, 32, 10])
    loader = make_loader(x, y, batch_size=64, shuffle=True, seed=0)
    res = fit(
        model,
        loader,
        torch.optim.Adam(model.parameters(), lr=3e-3),
        loss_fn=LDRKLLoss(),
        epochs=6,
        device="cpu",
    )
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert accuracy(model, xt, yt) > 0.85


def test_af_kan_trained_by_fit_with_the_z_loss() -> None:
    torch.manual_seed(0)
    x, y, xt, yt = _digits()
    model = AFKAN([64, 32, 10])
    loader = make_loader(x, y, batch_size=64, shuffle=True, seed=0)
    fit(
        model,
        loader,
        torch.optim.Adam(model.parameters(), lr=3e-3),
        loss_fn=ZLoss(),
        epochs=6,
        device="cpu",
    )
    assert accuracy(model, xt, yt) > 0.85


def test_multi_similarity_trains_an_af_kan_embedder_on_m_per_class_batches() -> None:
    torch.manual_seed(0)
    x, y, xt, yt = _digits()
    net = AFKAN([64, 32, 16])
    before = recall_at_k(net(xt).detach(), yt, ks=(1,))[1]
    loader = DataLoader(
        TensorDataset(x, y), batch_sampler=MPerClassSampler(y, m=4, batch_size=40, seed=0)
    )
    fit(
        net,
        loader,
        torch.optim.Adam(net.parameters(), lr=3e-3),
        loss_fn=MultiSimilarityLoss(),
        epochs=4,
        device="cpu",
    )
    net.eval()
    after = recall_at_k(net(xt).detach(), yt, ks=(1,))[1]
    assert after > max(before + 0.05, 0.85)


def test_neufastcb_learns_with_an_af_kan_regressor() -> None:
    torch.manual_seed(0)
    s = load_dataset("iris", seed=0)
    env = ClassificationBandit(
        torch.cat([s.x_train, s.x_test]), torch.cat([s.y_train, s.y_test]), n_rounds=600, seed=0
    )
    dim = env.round(0)[0].shape[1]
    agent = NeuFastCB(AFKAN([dim, 8, 1]), gamma=20.0, lr=0.05, replay=1, seed=0)
    res = run(env, agent, seed=0)
    # a uniform policy errs on 2/3 of the rounds of a 3-arm bandit
    assert float(res["cum_regret"][-1]) < 0.5 * 600
