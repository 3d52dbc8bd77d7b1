"""MetrixLoss: label-interpolation consistency, level plumbing, mixed term against a slow loop."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.metrix import (
    MetrixLoss,
    ProxyAnchorGeneric,
    contrastive_generic,
    mix_pairs,
    multi_similarity_generic,
)

D64 = torch.float64


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 4])
    return torch.randn(len(y), 6, generator=g, dtype=D64), y


def test_lambda_one_and_zero_reduce_to_clean_terms_at_embedding_level() -> None:
    e, y = _batch()
    base = multi_similarity_generic(reduction="none")
    loss = MetrixLoss(multi_similarity_generic())
    plan = mix_pairs(y, kind="pos_neg")
    for lam, other in ((1.0, plan.i_idx), (0.0, plan.j_idx)):
        got = loss(e, y, plan=plan, lam=lam)["mixed"]
        # the mix equals x (lam=1) or x' (lam=0) exactly, with its clean label
        a = e[plan.anchor_idx]
        lab = (y[plan.anchor_idx] == y[other]).to(D64)
        per = torch.stack(
            [
                base(a[k : k + 1], e[other][k : k + 1], lab[k : k + 1, None]).squeeze()
                for k in range(plan.size)
            ]
        )
        # reference: sum the clean pair terms per anchor, then sigma (a slow loop over anchors)
        ref = []
        for anc in plan.anchor_idx.unique().tolist():
            rows = (plan.anchor_idx == anc).nonzero().flatten()
            yy = lab[rows][None]
            ref.append(base(e[anc : anc + 1], e[other][rows], yy).squeeze())
        assert per.numel() == plan.size
        torch.testing.assert_close(got, torch.stack(ref).mean(), rtol=1e-12, atol=1e-12)


def test_ms_mixed_term_equals_slow_loop() -> None:
    e, y = _batch()
    lam = 0.37
    plan = mix_pairs(y, kind="pos_neg")
    got = MetrixLoss(multi_similarity_generic())(e, y, plan=plan, lam=lam)["mixed"]
    per = {}
    for k in range(plan.size):
        a, i, j = (int(t[k]) for t in plan[:3])
        ei, ej = F.normalize(e[i], dim=0), F.normalize(e[j], dim=0)
        m = F.normalize(lam * ei + (1 - lam) * ej, dim=0)
        s = float(F.normalize(e[a], dim=0) @ m)
        yt = lam * float(y[a] == y[i]) + (1 - lam) * float(y[a] == y[j])
        p, n = per.get(a, (0.0, 0.0))
        per[a] = (p + yt * math.exp(-2 * (s - 0.5)), n + (1 - yt) * math.exp(50 * (s - 0.5)))
    ref = sum(math.log1p(p) / 2 + math.log1p(n) / 50 for p, n in per.values()) / len(per)
    assert abs(float(got) - ref) < 1e-10


def test_contrastive_mixed_term_hand_value() -> None:
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=D64)
    y = torch.tensor([0, 0, 1])
    plan = mix_pairs(y, kind="pos_neg")
    plan = plan._replace(anchor_idx=plan.anchor_idx[:1], i_idx=plan.i_idx[:1], j_idx=plan.j_idx[:1])
    assert (
        plan.anchor_idx.tolist() == [0]
        and plan.i_idx.tolist() == [1]
        and plan.j_idx.tolist() == [2]
    )
    out = MetrixLoss(contrastive_generic())(e, y, plan=plan, lam=0.5)
    assert abs(float(out["mixed"]) - 0.923880) < 1e-6


def test_feature_level_with_identity_features_equals_input_level() -> None:
    e, y = _batch()
    torch.manual_seed(0)
    head = nn.Linear(6, 4).double()
    loss = MetrixLoss(contrastive_generic())
    plan = mix_pairs(y, kind="pos_neg")
    a = loss.step_input(head, e, y, plan=plan, lam=0.3)
    b = loss.step_feature(nn.Identity(), head, e, y, plan=plan, lam=0.3)
    torch.testing.assert_close(a["loss"], b["loss"], rtol=0, atol=0)


def test_input_level_mixes_only_the_hardest_negative_by_default() -> None:
    e, y = _batch()
    loss = MetrixLoss(multi_similarity_generic(), kind="anc_neg")
    plan = loss.plan(e, y, loss.input_top_k, False)
    assert bool((torch.bincount(plan.anchor_idx, minlength=len(y)) == 1).all())
    assert loss.plan(e, y, loss.top_k, False).size > plan.size


def test_embedding_step_runs_no_extra_forward_and_input_step_one() -> None:
    e, y = _batch()
    calls = []
    model = nn.Linear(6, 4).double()
    model.register_forward_hook(lambda *_: calls.append(1))
    loss = MetrixLoss(multi_similarity_generic(), generator=torch.Generator().manual_seed(0))
    loss(model(e), y)
    assert len(calls) == 1
    loss.step_input(model, e, y)
    assert len(calls) == 3


def test_fixed_generator_gives_identical_loss() -> None:
    e, y = _batch()
    outs = [
        MetrixLoss(contrastive_generic(), generator=torch.Generator().manual_seed(7))(e, y)
        for _ in range(2)
    ]
    assert torch.equal(outs[0]["loss"], outs[1]["loss"]) and torch.equal(
        outs[0]["lam"], outs[1]["lam"]
    )


def test_loss_is_clean_plus_weighted_mixed_and_differentiable() -> None:
    e, y = _batch()
    e.requires_grad_(True)
    out = MetrixLoss(multi_similarity_generic(), weight=0.4)(e, y)
    torch.testing.assert_close(out["loss"].detach(), out["clean"] + 0.4 * out["mixed"])
    out["loss"].backward()
    assert e.grad is not None and bool(torch.isfinite(e.grad).all())


def test_proxy_anchor_metrix_soft_labels_per_proxy() -> None:
    e, y = _batch()
    base = ProxyAnchorGeneric(5, 6).double()
    loss = MetrixLoss(base)
    plan = mix_pairs(y, kind="anc_neg")
    got = loss(e, y, plan=plan, lam=0.25)["mixed"]
    en = F.normalize(e, dim=1)
    m = 0.25 * en[plan.i_idx] + 0.75 * en[plan.j_idx]
    yc = torch.zeros(5, plan.size, dtype=D64)
    for k in range(plan.size):
        yc[y[plan.i_idx[k]], k] += 0.25
        yc[y[plan.j_idx[k]], k] += 0.75
    torch.testing.assert_close(got, base.soft(m, yc))


def test_gram_embedding_path_equals_materialised_mixes() -> None:
    e, y = _batch()
    en = F.normalize(e, dim=1)
    for form in (contrastive_generic(), multi_similarity_generic()):
        for renorm in (True, False):
            loss = MetrixLoss(form, renormalize=renorm)
            for kind in ("pos_neg", "anc_neg"):
                plan = mix_pairs(y, kind=kind)  # type: ignore[arg-type]
                m = 0.3 * en[plan.i_idx] + 0.7 * en[plan.j_idx]
                gram = loss.embed_mixed_loss(e, y, plan, 0.3)
                torch.testing.assert_close(
                    gram, loss.mixed_loss(e, y, plan, 0.3, m), rtol=1e-10, atol=1e-12
                )


def test_gradcheck_embedding_level_metrix() -> None:
    e, y = _batch()
    plan = mix_pairs(y, kind="pos_neg")
    for form in (contrastive_generic(), multi_similarity_generic()):
        loss = MetrixLoss(form)

        def f(t: torch.Tensor, loss: MetrixLoss = loss) -> torch.Tensor:
            return loss(t, y, plan=plan, lam=0.35)["loss"]

        assert torch.autograd.gradcheck(
            f,
            (e.clone().requires_grad_(),),
            eps=1e-6,
            atol=1e-5,
        )
