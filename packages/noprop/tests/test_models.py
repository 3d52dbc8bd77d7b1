"""NoProp-DT/CT/FM behaviour: oracle inference, locality, the vectorised path, heads, limits."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from paperzoo.noprop import (
    ConvDenoiseBlock,
    CosineSchedule,
    DiscreteSchedule,
    LabelEmbedding,
    LearnableSchedule,
    MLPDenoiseBlock,
    NoPropCT,
    NoPropDT,
    NoPropFM,
    backprop_chain_loss,
    select_prototypes,
    train_blocks_vmapped,
)

K = 3


class OracleBlock(nn.Module):
    """Returns x, where the test feeds x = u_y: the perfect denoiser û ≡ u_y."""

    def forward(self, x: Tensor, z: Tensor, t: Tensor | None = None) -> Tensor:
        return x


class OracleVelocity(nn.Module):
    """v(z_t, t) = (u_y − z_t)/(1 − t) = u_y − z_0 on the straight path, with x = u_y."""

    def forward(self, x: Tensor, z: Tensor, t: Tensor) -> Tensor:
        return (x - z) / (1 - t)[:, None]


def _identity_classifier(model: NoPropDT | NoPropCT) -> None:
    with torch.no_grad():
        model.classifier.weight.copy_(torch.eye(K))
        model.classifier.bias.zero_()


def _assert_mean_var(z: Tensor, mean: Tensor, var: float) -> None:
    n = z.shape[0]
    se_mean = (var / n) ** 0.5
    se_var = var * (2.0 / (n - 1)) ** 0.5
    assert bool(((z.mean(0) - mean).abs() < 4 * se_mean).all()), (z.mean(0), mean)
    assert bool(((z.var(0) - var).abs() < 4 * se_var).all()), (z.var(0), var)


@pytest.mark.parametrize(
    "abar",
    [CosineSchedule(10).alpha_bar, torch.tensor([1e-4, 0.1, 0.3, 0.5, 0.6, 0.7])],
    ids=["cosine", "custom"],
)
def test_oracle_dt_inference_reaches_q_z_last_given_y(abar: Tensor) -> None:
    sched = DiscreteSchedule(abar)
    model = NoPropDT(OracleBlock, K, T=sched.T, schedule=sched, head="linear").double()
    _identity_classifier(model)
    n = 20000
    u_y = F.one_hot(torch.full((n,), 1), K).double()
    z_T = model.predict_logits(u_y, generator=torch.Generator().manual_seed(0))
    a_T = float(sched.alpha_bar[-1])
    _assert_mean_var(z_T, a_T**0.5 * u_y[0], 1 - a_T)


def test_oracle_ct_inference_reaches_q_z1_given_y() -> None:
    torch.manual_seed(0)
    model = NoPropCT(OracleBlock(), K, head="linear").double()
    _identity_classifier(model)
    n = 20000
    u_y = F.one_hot(torch.full((n,), 2), K).double()
    z_1 = model.predict_logits(u_y, steps=7, generator=torch.Generator().manual_seed(1))
    a_1 = float(model.schedule.alpha_bar(1.0).detach())
    _assert_mean_var(z_1.detach(), a_1**0.5 * u_y[0], 1 - a_1)


@pytest.mark.parametrize("steps", [1, 3, 20])
def test_oracle_fm_lands_exactly_on_u_y_for_any_step_count(steps: int) -> None:
    model = NoPropFM(OracleVelocity(), K).double()
    y = torch.tensor([0, 1, 2, 2])
    u_y = F.one_hot(y, K).double()
    logits = model.predict_logits(u_y, steps=steps, generator=torch.Generator().manual_seed(0))
    want = -torch.cdist(u_y, torch.eye(K, dtype=torch.float64)).pow(2)
    torch.testing.assert_close(logits, want, atol=1e-12, rtol=0)


def _mlp_model(T: int = 4, kind: str = "onehot", norm: str | None = None) -> NoPropDT:
    emb = LabelEmbedding(K, kind=kind)  # type: ignore[arg-type]
    return NoPropDT(
        lambda: MLPDenoiseBlock(6, emb.dim, K, hidden=8, norm=norm),  # type: ignore[arg-type]
        K,
        T=T,
        embedding=emb,
    )


@pytest.mark.parametrize("kind", ["onehot", "learned"])
def test_block_loss_touches_only_its_block_and_the_shared_head(kind: str) -> None:
    torch.manual_seed(0)
    model = _mlp_model(T=4, kind=kind)
    calls = [0] * 4
    for i, blk in enumerate(model.blocks):
        blk.register_forward_hook(lambda *_a, i=i: calls.__setitem__(i, calls[i] + 1))
    x, y = torch.randn(5, 6), torch.tensor([0, 1, 2, 1, 0])
    model.block_loss(3, x, y).backward()
    assert calls == [0, 0, 1, 0]
    for i, blk in enumerate(model.blocks):
        has = [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in blk.parameters()]
        assert any(has) if i == 2 else not any(p.grad is not None for p in blk.parameters())
    assert model.classifier.weight.grad is not None
    if kind == "learned":
        assert model.embedding.weight_raw.grad is not None


def test_train_step_with_t_moves_only_block_t_and_the_head() -> None:
    torch.manual_seed(0)
    model = _mlp_model(T=3)
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train_step(torch.randn(8, 6), torch.randint(0, K, (8,)), opt, t=2)
    for name, v in model.state_dict().items():
        changed = not torch.equal(v, before[name])
        if name.startswith("blocks.1.") or name.startswith("classifier."):
            if name.endswith("num_batches_tracked") or "weight" in name:
                assert changed, name
        elif name.startswith("blocks."):
            assert not changed, name


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_vmapped_all_blocks_step_equals_the_sequential_loop(arch: str) -> None:
    torch.manual_seed(0)
    emb = LabelEmbedding(K, kind="learned")

    def factory() -> nn.Module:
        if arch == "mlp":
            return MLPDenoiseBlock(4 * 4, emb.dim, K, hidden=8)
        return ConvDenoiseBlock(1, 4, emb.dim, K, widths=(2,), fc=4, dropout=0.0)

    # float64: block T's ΔSNR weight (~5e3) amplifies float32 rounding in one SGD step
    loop = NoPropDT(factory, K, T=3, embedding=emb).double()
    vm = copy.deepcopy(loop)
    x, y = torch.rand(10, 16, dtype=torch.float64), torch.randint(0, K, (10,))
    opt_l = torch.optim.SGD(loop.parameters(), lr=0.05)
    opt_v = torch.optim.SGD(vm.parameters(), lr=0.05)
    for step in range(2):
        ll = loop.train_step(x, y, opt_l, generator=torch.Generator().manual_seed(step))
        lv = train_blocks_vmapped(vm, x, y, opt_v, generator=torch.Generator().manual_seed(step))
        torch.testing.assert_close(lv, ll, atol=1e-9, rtol=1e-9)
    for (name, a), b in zip(loop.state_dict().items(), vm.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-9, msg=name)


def test_softmax_head_with_onehot_embedding_gives_probability_vectors() -> None:
    torch.manual_seed(0)
    model = _mlp_model()
    u_hat = model.denoise(2, torch.randn(9, 6), torch.randn(9, K))
    assert bool((u_hat >= 0).all())
    torch.testing.assert_close(u_hat.sum(-1), torch.ones(9))


def test_ce_term_becomes_plain_cross_entropy_of_linear_u_y_as_last_alpha_bar_to_1() -> None:
    torch.manual_seed(0)
    sched = DiscreteSchedule(torch.tensor([1e-4, 0.5, 1 - 1e-12], dtype=torch.float64))
    model = NoPropDT(lambda: MLPDenoiseBlock(6, K, K, hidden=8), K, T=2, schedule=sched)
    x, y = torch.randn(16, 6), torch.randint(0, K, (16,))
    model.block_loss(1, x, y)
    want = F.cross_entropy(model.classifier(F.one_hot(y, K).float()), y)
    torch.testing.assert_close(model.last_parts["ce"], want.detach(), atol=1e-4, rtol=0)


def test_noiseless_inference_is_deterministic_and_stochastic_is_seeded() -> None:
    torch.manual_seed(0)
    model = _mlp_model().eval()
    x = torch.randn(7, 6)
    with torch.no_grad():
        d1 = model.predict_logits(x, stochastic=False, generator=torch.Generator().manual_seed(0))
        d2 = model.predict_logits(x, stochastic=False, generator=torch.Generator().manual_seed(0))
        s1 = model.predict_logits(x, generator=torch.Generator().manual_seed(5))
        s2 = model.predict_logits(x, generator=torch.Generator().manual_seed(5))
        s3 = model.predict_logits(x, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(d1, d2, rtol=0, atol=0)
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    assert not torch.equal(s1, s3)


def test_noiseless_inference_ignores_the_step_noise() -> None:
    """With ε_t = 0 only z_0 is random; two different z_0 generators agree once the chain
    forgets z_0 (b_T ≈ 0 for the clipped cosine schedule)."""
    torch.manual_seed(0)
    model = _mlp_model(T=10).eval()
    x = torch.randn(4, 6)
    with torch.no_grad():
        d1 = model.predict_logits(x, stochastic=False, generator=torch.Generator().manual_seed(0))
        d2 = model.predict_logits(x, stochastic=False, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(d1, d2, atol=1e-3, rtol=0)


def test_forward_is_predict_logits_and_backprop_chain_reaches_every_block() -> None:
    torch.manual_seed(0)
    model = _mlp_model(T=3)
    x, y = torch.randn(6, 6), torch.randint(0, K, (6,))
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(1)
    b = model.predict_logits(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    backprop_chain_loss(model, x, y).backward()
    for blk in model.blocks:
        assert any(p.grad is not None for p in blk.parameters())


def test_ct_and_fm_losses_train_their_single_block() -> None:
    torch.manual_seed(0)
    ct = NoPropCT(MLPDenoiseBlock(6, K, K, hidden=8, time_dim=8), K, schedule=LearnableSchedule())
    fm = NoPropFM(MLPDenoiseBlock(6, K, K, hidden=8, time_dim=8), K, ce_weight=0.5)
    x, y = torch.randn(6, 6), torch.randint(0, K, (6,))
    for model in (ct, fm):
        model.loss(x, y).backward()
        assert all(p.grad is not None for p in model.block.parameters())
    assert ct.schedule.w2.grad is not None  # the schedule is learned through SNR'(t)


def test_ct_loss_matches_its_closed_form_at_given_times() -> None:
    torch.manual_seed(0)
    ct = NoPropCT(MLPDenoiseBlock(6, K, K, hidden=8, time_dim=8), K, eta=0.7).double()
    x, y = torch.randn(5, 6, dtype=torch.float64), torch.randint(0, K, (5,))
    t = torch.rand(5, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    total = ct.loss(x, y, reduction="none", generator=g, t=t)
    g = torch.Generator().manual_seed(3)
    eps = torch.randn(5, K, generator=g).double()
    eps1 = torch.randn(5, K, generator=g).double()
    u = F.one_hot(y, K).double()
    ab = ct.schedule.alpha_bar(t)[:, None]
    u_hat = ct.denoise(x, ab.sqrt() * u + (1 - ab).sqrt() * eps, t)
    tt = t.clone().requires_grad_(True)
    (dsnr,) = torch.autograd.grad(ct.schedule.snr(tt).sum(), tt)
    den = 0.5 * 0.7 * dsnr * (u_hat - u).pow(2).sum(-1)
    a1 = ct.schedule.alpha_bar(1.0)
    a0 = ct.schedule.alpha_bar(0.0)
    ce = F.cross_entropy(ct.classifier(a1.sqrt() * u + (1 - a1).sqrt() * eps1), y, reduction="none")
    kl = 0.5 * (a0 * u.pow(2).sum(-1) + K * (1 - a0) - K - K * torch.log(1 - a0))
    torch.testing.assert_close(total, den + ce + kl)


def test_select_prototypes_returns_the_class_medoid_of_a_seeded_sample() -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(60, 4, generator=g)
    y = torch.arange(60) % 3
    protos = select_prototypes(X, y, per_class=5, seed=2)
    # slow reference: same draw, then the medoid per class by explicit loops
    perm = torch.randperm(60, generator=torch.Generator().manual_seed(2))
    for k in range(3):
        members = [int(i) for i in perm if int(y[i]) == k][:5]
        costs = [sum(float((X[i] - X[j]).norm()) for j in members) for i in members]
        best = members[min(range(5), key=lambda m: costs[m])]
        torch.testing.assert_close(protos[k], X[best])
    emb = LabelEmbedding(3, kind="prototype", prototypes=protos)
    torch.testing.assert_close(emb(torch.tensor([2])), protos[2:3])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("head", ["softmax", "linear"])
def test_batched_all_block_losses_equal_the_per_block_form(dtype: torch.dtype, head: str) -> None:
    """issue 19: the default all-blocks losses (terms batched over blocks) = the previous form."""
    torch.manual_seed(0)
    emb = LabelEmbedding(K, kind="learned")
    out = K if head == "softmax" else emb.dim
    model = NoPropDT(lambda: MLPDenoiseBlock(16, emb.dim, out, hidden=8), K, T=4, embedding=emb)
    model = model.to(dtype)
    x, y = torch.rand(10, 16, dtype=dtype), torch.randint(0, K, (10,))
    results = []
    for impl in ("batched", "per_block"):
        model.zero_grad(set_to_none=True)
        gen = torch.Generator().manual_seed(3)
        losses = model.all_block_losses(x, y, generator=gen, _impl=impl)
        (losses * torch.arange(1.0, 5.0, dtype=dtype)).sum().backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((losses.detach(), grads))
    tol = {"atol": 1e-12, "rtol": 1e-12} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-5}
    torch.testing.assert_close(results[0][0], results[1][0], **tol)
    assert len(results[0][1]) == len(results[1][1]) > 0
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(a, b, **tol)
