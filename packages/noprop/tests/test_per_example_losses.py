"""Per-example NoProp losses against slow per-example float64 loops written from the spec's equations.

Issue 17: ``NoPropDT.block_loss(reduction='none')`` gave every example the cross-entropy of
example 0 (``den + ce[0] + kl``), so the classifier θ_out (and a learned W_E) trained on one
example per minibatch. These references compute each example alone, one row at a time.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from paperzoo.noprop import DiscreteSchedule, LabelEmbedding, MLPDenoiseBlock, NoPropDT

K, D, E, T = 3, 5, 4, 3


class _Identity(nn.Module):
    """A DT block whose output (the softmax head's logits) is z itself."""

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return z


def _model(kind: str) -> NoPropDT:
    torch.manual_seed(0)
    emb = LabelEmbedding(K, E, kind="learned") if kind == "learned" else LabelEmbedding(K)
    e = emb.dim
    return NoPropDT(
        lambda: MLPDenoiseBlock(D, e, K, hidden=6, norm="none"), K, T=T, embedding=emb
    ).double()


def _noise(B: int, e: int, seed: int) -> tuple[Tensor, Tensor]:
    """The draws ``block_loss`` makes from a generator: ε for z_{t−1}, then ε′ for z_T (float32, cast)."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((1, B, e), generator=g).double()[0]
    eps_T = torch.randn((1, B, e), generator=g).double()[0]
    return eps, eps_T


def _reference_block_loss(model: NoPropDT, t: int, x: Tensor, y: Tensor, seed: int) -> Tensor:
    """ℓ_t per example, one example at a time (spec section 3, Algorithm 1):

    (T/2)·η·(SNR(t) − SNR(t−1))·‖û_θt(z_{t−1}, x) − u_y‖² − log softmax(W z_T + b)_y
    + ½(‖√ᾱ_0 u_y‖² + e(1 − ᾱ_0) − e − e·log(1 − ᾱ_0)).
    """
    abar = [float(a) for a in model.schedule.alpha_bar]
    snr = [a / (1 - a) for a in abar]
    W_E = model.embedding.weight
    e = W_E.shape[1]
    eps, eps_T = _noise(x.shape[0], e, seed)
    rows = []
    for i in range(x.shape[0]):
        u = W_E[int(y[i])]
        z_prev = math.sqrt(abar[t - 1]) * u + math.sqrt(1 - abar[t - 1]) * eps[i]
        logits_t = model.blocks[t - 1](x[i : i + 1], z_prev[None])[0]
        u_hat = torch.softmax(logits_t, 0) @ W_E
        den = 0.5 * T * model.eta * (snr[t] - snr[t - 1]) * ((u_hat - u) ** 2).sum()
        z_T = math.sqrt(abar[-1]) * u + math.sqrt(1 - abar[-1]) * eps_T[i]
        logits = model.classifier.weight @ z_T + model.classifier.bias
        ce = -torch.log_softmax(logits, 0)[int(y[i])]
        v = 1 - abar[0]
        kl = 0.5 * (abar[0] * (u**2).sum() + e * v - e - e * math.log(v))
        rows.append(den + ce + kl)
    return torch.stack(rows)


@pytest.mark.parametrize("kind", ["onehot", "learned"])
@pytest.mark.parametrize("t", [1, 2, 3])
def test_block_loss_row_i_is_the_loss_of_example_i(kind: str, t: int) -> None:
    model = _model(kind)
    x = torch.randn(6, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    got = model.block_loss(t, x, y, "none", generator=torch.Generator().manual_seed(5))
    want = _reference_block_loss(model, t, x, y, seed=5)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["onehot", "learned"])
def test_block_loss_gradients_of_the_classifier_and_embedding_match_the_reference(
    kind: str,
) -> None:
    model = _model(kind)
    x = torch.randn(6, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    shared = model.shared_parameters()
    got = torch.autograd.grad(
        model.block_loss(2, x, y, "mean", generator=torch.Generator().manual_seed(5)), shared
    )
    want = torch.autograd.grad(_reference_block_loss(model, 2, x, y, seed=5).mean(), shared)
    assert len(shared) == (3 if kind == "learned" else 2)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_issue_17_reproducer_each_example_gets_its_own_cross_entropy() -> None:
    """Identity block, K = 2, T = 1, ᾱ = (0.2, 0.6), identity classifier, y = [0, 1], seed 0."""
    model = NoPropDT(_Identity, 2, T=1, schedule=DiscreteSchedule(torch.tensor([0.2, 0.6])))
    with torch.no_grad():
        model.classifier.weight.copy_(torch.eye(2))
        model.classifier.bias.zero_()
    model.double()
    x = torch.zeros(2, 1, dtype=torch.float64)
    y = torch.tensor([0, 1])
    got = model.block_loss(1, x, y, "none", generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        got, torch.tensor([0.445194, 0.423666], dtype=torch.float64), rtol=0, atol=1e-6
    )
