"""DHKDLoss routing, gradient alignment, the gradient-cosine diagnostic and the neural-collapse structure."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.models import mlp
from paperzoo.dhkd import (
    DHKDLoss,
    DualHeadClassifier,
    DualHeadOutput,
    GradAlign,
    binary_kl,
    binary_kl_norm,
    cross_entropy,
    gradient_cosine,
    kd_loss,
)

D = torch.float64


def _setup(
    aux: str = "linear", seed: int = 0
) -> tuple[DualHeadClassifier, nn.Module, Tensor, Tensor]:
    torch.manual_seed(seed)
    student = DualHeadClassifier(nn.Sequential(mlp([6, 8]), nn.ReLU()), 8, 5, aux).double()
    teacher = mlp([6, 16, 5]).double()
    x = torch.randn(12, 6, dtype=D)
    y = torch.randint(0, 5, (12,))
    return student, teacher, x, y


def _grads(loss: Tensor, module: nn.Module) -> dict[str, Tensor | None]:
    ps = dict(module.named_parameters())
    gs = torch.autograd.grad(loss, list(ps.values()), retain_graph=True, allow_unused=True)
    return dict(zip(ps, gs, strict=True))


def test_dhkd_routes_ce_to_the_main_head_and_the_teacher_to_the_aux_head() -> None:
    student, teacher, x, y = _setup()
    out = student(x)
    assert isinstance(out, DualHeadOutput)
    terms = DHKDLoss()(out, teacher(x), y)
    ce, kd = _grads(terms.ce, student), _grads(terms.logit_kd, student)
    assert all(ce[k] is None for k in ce if k.startswith("aux."))
    assert all(kd[k] is None for k in kd if k.startswith("fc."))
    for k in ce:
        if k.startswith("backbone."):
            assert ce[k] is not None and kd[k] is not None
            assert ce[k].abs().sum() > 0 and kd[k].abs().sum() > 0  # type: ignore[union-attr]
    terms.total.backward()
    assert all(p.grad is None for p in teacher.parameters())


def test_dhkd_total_is_gamma_ce_plus_alpha_binary_kl_norm_plus_prob_kd() -> None:
    student, teacher, x, y = _setup("nonlinear")
    out = student(x)
    zt = teacher(x)
    terms = DHKDLoss(temperature=3.0, alpha=0.1, gamma=0.7, prob_kd_weight=0.5)(out, zt, y)
    want_ce = 0.7 * nn.functional.cross_entropy(out.main, y)
    want_kd = 0.1 * binary_kl_norm(out.aux, zt, 3.0)
    want_prob = 0.5 * kd_loss(out.aux, zt, 4.0)
    torch.testing.assert_close(terms.ce, want_ce)
    torch.testing.assert_close(terms.logit_kd, want_kd)
    torch.testing.assert_close(terms.prob_kd, want_prob)
    torch.testing.assert_close(terms.total, want_ce + want_kd + want_prob)
    assert DHKDLoss()(out, zt, y).prob_kd.item() == 0.0  # off by default, as the official code


def test_dhkd_loss_bad_input() -> None:
    student, teacher, x, y = _setup()
    out = student(x)
    zt = teacher(x)
    for kw in ({"alpha": -1.0}, {"gamma": -0.1}, {"temperature": 0.0}, {"prob_kd_weight": -1}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            DHKDLoss(**kw)  # type: ignore[arg-type]
    loss = DHKDLoss()
    with pytest.raises(ValueError, match="teacher_logits"):
        loss(out, zt[:, :4], y)  # teacher K != aux head K
    with pytest.raises(ValueError, match="target"):
        loss(out, zt, torch.full_like(y, 5))
    with pytest.raises(ValueError, match="target"):
        loss(out, zt, y.view(-1, 1).expand(-1, 2))
    with pytest.raises(ValueError, match="target"):
        loss(out, zt, y[:-1])
    with pytest.raises(TypeError, match="target"):
        loss(out, zt, y.double())
    with pytest.raises(TypeError, match="DualHeadOutput"):
        loss(student.eval()(x), zt, y)  # type: ignore[arg-type]
    bad = zt.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="teacher_logits"):
        loss(out, bad, y)


def _conflicting_pair() -> tuple[nn.Parameter, Tensor, Tensor, torch.optim.Optimizer]:
    w = nn.Parameter(torch.tensor([1.0, 2.0, -1.0], dtype=D))
    a = torch.tensor([1.0, 0.5, 0.0], dtype=D)
    b = torch.tensor([-2.0, 0.5, 1.0], dtype=D)  # <a, b> = -1.75 < 0
    return w, a, b, torch.optim.SGD([w], lr=0.1)


def test_grad_align_removes_the_conflicting_component() -> None:
    w, a, b, opt = _conflicting_pair()
    ga = GradAlign(opt)
    ga.backward([(w * a).sum(), (w * b).sum()])
    assert w.grad is not None
    g_kd = w.grad - a  # the projected distillation gradient
    assert abs(torch.dot(g_kd, a).item()) <= 1e-12 * a.norm().item() * g_kd.norm().item() + 1e-15
    torch.testing.assert_close(g_kd, b - torch.dot(b, a) / torch.dot(a, a) * a)
    assert ga.last_cosine is not None and ga.last_cosine.item() < 0


def test_grad_align_without_conflict_is_plain_backward() -> None:
    torch.manual_seed(0)
    net = mlp([4, 6, 3]).double()
    x = torch.randn(10, 4, dtype=D)
    la = net(x).square().mean()
    lb = 0.5 * net(x).square().mean() + net(x).mean() * 0.0  # a positive multiple: no conflict
    plain = torch.autograd.grad(la + lb, list(net.parameters()), retain_graph=True)
    ga = GradAlign(torch.optim.SGD(net.parameters(), lr=0.1))
    ga.backward([la, lb])
    assert ga.last_cosine is not None and ga.last_cosine.item() == pytest.approx(1.0)
    for p, g in zip(net.parameters(), plain, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-12, atol=1e-14)
    w, a, _, _ = _conflicting_pair()
    GradAlign(torch.optim.SGD([w], lr=0.1)).backward([(w * a).sum(), (w * (a + 0.1)).sum()])
    torch.testing.assert_close(w.grad, 2 * a + 0.1)


def test_grad_align_conflict_on_the_student_projects_within_scope() -> None:
    """A teacher pulling against the labels: the aligned gradient is orthogonal within the scope."""
    for scope in ("all", "shared"):
        student, _, x, y = _setup(seed=1)
        out = student(x)
        zt = -10.0 * nn.functional.one_hot(y, 5).to(D)  # teacher says: not the label
        terms = DHKDLoss()(out, zt, y)
        ce_g = _grads(terms.ce, student)
        kd_g = _grads(terms.logit_kd, student)
        opt = torch.optim.SGD(student.parameters(), lr=0.1)
        ga = GradAlign(opt, scope=scope)  # type: ignore[arg-type]
        aligned = dict(
            zip(
                dict(student.named_parameters()),
                ga.aligned_gradients([terms.ce, terms.logit_kd]),
                strict=True,
            )
        )
        names = [k for k in aligned if scope == "all" or k.startswith("backbone.")]

        def flat(
            gs: dict[str, Tensor | None], keys: list[str], like: dict[str, Tensor] = aligned
        ) -> Tensor:
            return torch.cat(
                [
                    (gs[k] if gs[k] is not None else torch.zeros_like(like[k])).reshape(-1)
                    for k in keys
                ]
            )  # type: ignore[union-attr]

        g_ce = flat(ce_g, names)
        g_kd = flat(kd_g, names)
        assert torch.dot(g_ce, g_kd).item() < 0, "the construction must conflict"
        projected = flat(aligned, names) - g_ce  # type: ignore[arg-type]
        assert (
            abs(torch.dot(projected, g_ce).item())
            < 1e-10 * g_ce.norm().item() * projected.norm().item()
        )
        if scope == "shared":  # heads: their plain gradients, untouched
            for k in aligned:
                if k.startswith("fc."):
                    torch.testing.assert_close(aligned[k], ce_g[k])
                if k.startswith("aux."):
                    torch.testing.assert_close(aligned[k], kd_g[k])


def test_aligned_loss_has_the_value_of_the_sum_and_the_aligned_gradient() -> None:
    w, a, b, opt = _conflicting_pair()
    ga = GradAlign(opt)
    want = ga.aligned_gradients([(w * a).sum(), (w * b).sum()])[0]
    la, lb = (w * a).sum(), (w * b).sum()
    loss = ga.aligned_loss([la, lb])
    torch.testing.assert_close(loss, (la + lb).detach())
    loss.backward()
    torch.testing.assert_close(w.grad, want)


def test_grad_align_bad_input() -> None:
    w, a, _, opt = _conflicting_pair()
    with pytest.raises(ValueError, match="losses"):
        GradAlign(opt).backward([])
    with pytest.raises(ValueError, match=r"losses\[1\]"):
        GradAlign(opt).backward([(w * a).sum(), torch.tensor(1.0)])
    with pytest.raises(ValueError, match="scope"):
        GradAlign(opt, scope="backbone")  # type: ignore[arg-type]


def test_gradient_cosine_matches_the_flattened_definition() -> None:
    w1 = nn.Parameter(torch.randn(3, 2, dtype=D))
    w2 = nn.Parameter(torch.randn(4, dtype=D))
    la = (w1.sin()).sum() + (w2**2).sum()
    lb = (w1 * 3).sum()  # does not reach w2: zeros there
    ga = torch.cat([w1.detach().cos().reshape(-1), 2 * w2.detach()])
    gb = torch.cat([torch.full((6,), 3.0, dtype=D), torch.zeros(4, dtype=D)])
    want = torch.dot(ga, gb) / (ga.norm() * gb.norm())
    torch.testing.assert_close(gradient_cosine(la, lb, [w1, w2]), want)
    torch.testing.assert_close(gradient_cosine(la, la, [w1, w2]), torch.tensor(1.0, dtype=D))
    with pytest.raises(ValueError, match="params"):
        gradient_cosine(la, lb, [])
    with pytest.raises(ValueError, match="loss_b"):
        gradient_cosine(la, torch.tensor(0.0), [w1])


def _simplex_etf(k: int) -> Tensor:
    """(K, K) columns mu_k: unit norm, pairwise cosine -1/(K-1)."""
    return math.sqrt(k / (k - 1)) * (torch.eye(k, dtype=D) - 1.0 / k)


@pytest.mark.parametrize(
    ("teacher", "sign"),
    [("softer 0.5 z", -1.0), ("sharper 2 z", 1.0), ("shifted z + 2", -1.0)],
)
def test_neural_collapse_cosines_on_w_and_features_share_one_sign(
    teacher: str, sign: float
) -> None:
    """At an exact simplex ETF every class-symmetric logit gradient gives dL/dW_k ∝ mu_k and
    dL/dh_i ∝ mu_{y_i}: the CE-vs-BinaryKL cosines on W and on the features are both +1 or -1,
    so the paper's 'conflict on W, none on the backbone' cannot come from this construction."""
    k, s = 10, 5.0
    m = _simplex_etf(k)
    y = torch.arange(k).repeat(3)  # balanced
    w = (s * m.T).clone().requires_grad_(True)  # rows W_k = s mu_k
    h = m.T[y].clone().requires_grad_(True)  # features at the class means
    z = h @ w.T
    zt = {"softer 0.5 z": 0.5 * z, "sharper 2 z": 2 * z, "shifted z + 2": z + 2}[teacher].detach()
    ce = cross_entropy(z, y)
    bkl = binary_kl(z, zt, 2.0)
    assert gradient_cosine(ce, bkl, [w]).item() == pytest.approx(sign, abs=1e-9)
    assert gradient_cosine(ce, bkl, [h]).item() == pytest.approx(sign, abs=1e-9)
