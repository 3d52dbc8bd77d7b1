"""Review hardening: hyperparameter and optimiser checks, frozen weights, derivation on ties and degenerate α,
exact state round trips of every stepper, and empty loaders."""

from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import pytest
import torch

from paperzoo.core.data import make_loader
from paperzoo.rarts import (
    MNIST1D_PRIMITIVES,
    RARTS,
    DartsFirstOrder,
    DartsSecondOrder,
    EvalNetwork,
    Genotype,
    MaskedConv,
    NATSSearchNetwork,
    SearchNetwork,
    WidthSearchResNet,
    genotype_from_alphas,
    hvp_finite_diff,
    run_search,
)
from paperzoo.rarts.space import num_edges

INF, NAN = float("inf"), float("nan")


def sgd(lr: float = 0.1) -> Any:
    return lambda ps: torch.optim.SGD(ps, lr=lr)


def a_opt(net: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(net.arch_parameters(), lr=0.1)


def batch(n: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


# ------------------------------------------------------------------ hyperparameters and optimisers


@pytest.mark.parametrize(
    "kw",
    [
        {"lam": INF},
        {"beta": INF},
        {"beta": NAN},
        {"lam": NAN},
        {"grad_clip": NAN},
        {"grad_clip": INF},
    ],
)
def test_rarts_rejects_non_finite_hyperparameters(
    kw: dict[str, float], make_tiny_supernet: Any
) -> None:
    net = make_tiny_supernet()
    name = next(iter(kw))
    with pytest.raises(ValueError, match=rf"{name}.*finite"):
        RARTS(net, sgd(), a_opt(net), **kw)


@pytest.mark.parametrize(
    "kw", [{"eps": NAN}, {"eps": INF}, {"xi": INF}, {"xi": NAN}, {"alpha_grad_clip": NAN}]
)
def test_darts_second_order_rejects_non_finite_hyperparameters(
    kw: dict[str, float], make_tiny_supernet: Any
) -> None:
    net = make_tiny_supernet()
    with pytest.raises(ValueError, match=rf"{next(iter(kw))}.*finite"):
        DartsSecondOrder(net, sgd()(net.weight_parameters()), a_opt(net), **kw)


def test_hvp_finite_diff_rejects_nan_eps_and_empty_weights() -> None:
    a = torch.zeros(2, requires_grad=True)
    w = [torch.ones(2)]
    with pytest.raises(ValueError, match="eps"):
        hvp_finite_diff(lambda ws: (ws[0] * a).sum(), w, w, [a], eps=NAN)
    with pytest.raises(ValueError, match="weights is empty"):
        hvp_finite_diff(lambda ws: a.sum(), [], [], [a])


def test_alpha_optimiser_over_all_parameters_raises(make_tiny_supernet: Any) -> None:
    # Adam over net.parameters() would re-apply the weights' stale .grad at every α step
    net = make_tiny_supernet()
    everything = torch.optim.Adam(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"a_opt must optimise only the model's α"):
        DartsFirstOrder(net, sgd()(net.weight_parameters()), everything)
    with pytest.raises(ValueError, match=r"a_opt must optimise only the model's α"):
        RARTS(net, sgd(), everything)


def test_alpha_optimiser_of_another_network_raises(make_tiny_supernet: Any) -> None:
    # it would leave this network's α untouched, silently
    net, other = make_tiny_supernet(), make_tiny_supernet()
    with pytest.raises(ValueError, match="a_opt"):
        RARTS(net, sgd(), a_opt(other))
    with pytest.raises(TypeError, match="a_opt must be a torch.optim.Optimizer"):
        RARTS(net, sgd(), net.arch_parameters())  # type: ignore[arg-type]


def test_weight_optimiser_holding_alpha_raises(make_tiny_supernet: Any) -> None:
    net = make_tiny_supernet()
    with pytest.raises(ValueError, match=r"w_opt must optimise only the model's weights"):
        DartsSecondOrder(net, sgd()(list(net.parameters())), a_opt(net))


def test_rarts_factory_that_ignores_its_argument_raises(make_tiny_supernet: Any) -> None:
    # y_opt would then step model_w's weights on the validation gradient
    net = make_tiny_supernet()
    with pytest.raises(
        ValueError, match=r"y_opt_factory\(y\) must optimise only model_y's weights"
    ):
        RARTS(net, lambda ps: torch.optim.SGD(net.weight_parameters(), lr=0.1), a_opt(net))


@pytest.mark.parametrize("kind", ["darts1", "darts2", "lagged", "exact"])
def test_frozen_weights_stay_fixed_and_do_not_break_a_step(
    kind: str, make_tiny_supernet: Any
) -> None:
    net = make_tiny_supernet()
    net.stem.requires_grad_(False)
    frozen = [p.detach().clone() for p in net.stem.parameters()]
    s: Any
    if kind == "darts1":
        s = DartsFirstOrder(net, sgd()(net.weight_parameters()), a_opt(net))
    elif kind == "darts2":
        s = DartsSecondOrder(net, sgd()(net.weight_parameters()), a_opt(net))
    else:
        s = RARTS(net, sgd(), a_opt(net), alpha_grad=kind, y_init="independent")
        y_stem = list(s.model_y.stem.parameters())
        assert all(torch.equal(a, b) for a, b in zip(frozen, y_stem, strict=True))
    s.step(batch(), batch(seed=1))
    assert all(torch.equal(a, b) for a, b in zip(frozen, net.stem.parameters(), strict=True))


# ------------------------------------------------------------------------ derivation (discretisation)


def test_genotype_on_tied_alpha_keeps_lower_inputs_and_the_first_non_none_op() -> None:
    prims = MNIST1D_PRIMITIVES  # ("none", "skip_connect", ...)
    gene = genotype_from_alphas(torch.zeros(num_edges(3), len(prims)), prims, 3)
    assert gene == [("skip_connect", j) for j in (0, 1, 0, 1, 0, 1)]
    a = torch.zeros(num_edges(2), len(prims))
    a[4, 5] = a[4, 6] = 1.0  # node 3: edge from node 2 wins; its two ops tie -> the earlier one
    a[2, 3] = 1.0  # node 3: edge from input 0 equally strong as edge 2 -> both kept
    assert genotype_from_alphas(a, prims, 2)[2:] == [(prims[3], 0), (prims[5], 2)]


@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_genotype_refuses_non_finite_alpha(value: float) -> None:
    a = torch.zeros(num_edges(2), len(MNIST1D_PRIMITIVES))
    a[3, 2] = value
    with pytest.raises(ValueError, match=r"alphas holds NaN/Inf \(rows \[3\]\)"):
        genotype_from_alphas(a, MNIST1D_PRIMITIVES, 2)


def test_genotype_refuses_a_space_of_only_none_and_non_tensor_alpha() -> None:
    with pytest.raises(ValueError, match="other than 'none'"):
        genotype_from_alphas(torch.zeros(num_edges(2), 1), ("none",), 2)
    with pytest.raises(TypeError, match="alphas must be a Tensor"):
        genotype_from_alphas([[0.0] * 8] * 5, MNIST1D_PRIMITIVES, 2)  # type: ignore[arg-type]


def test_primitives_given_as_one_string_raise_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match=r"primitives must be a sequence of operation names"):
        SearchNetwork(4, 3, 2, primitives="skip_connect", in_channels=1, dims=1)


def test_eval_network_rejects_reduction_cells_outside_its_layers() -> None:
    geno = genotype_from_alphas(torch.zeros(num_edges(2), 8), MNIST1D_PRIMITIVES, 2)
    g = Genotype(geno, [2, 3], geno, [2, 3])
    with pytest.raises(ValueError, match=r"reduction_cells must lie in \[0, 3\)"):
        EvalNetwork(g, 4, 3, 3, in_channels=1, dims=1, reduction_cells=(1, 5))
    with pytest.raises(ValueError, match="layers"):
        EvalNetwork(g, 4, 3, 0, in_channels=1, dims=1)


def test_unbatched_tensors_raise(make_tiny_supernet: Any) -> None:
    net = make_tiny_supernet()
    s = RARTS(net, sgd(), a_opt(net))
    with pytest.raises(ValueError, match=r"batch_train must hold batched tensors"):
        s.step((torch.tensor(1.0), torch.tensor(0)), batch())


def test_search_network_rejects_zero_input_channels() -> None:
    with pytest.raises(ValueError, match="in_channels"):
        SearchNetwork(4, 3, 2, in_channels=0)


def test_nats_arch_str_on_ties_and_non_finite_alpha() -> None:
    net = NATSSearchNetwork(C=4, N=1, num_classes=3)
    with torch.no_grad():
        net.arch_alphas.zero_()
    assert net.arch_str() == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # first primitive
    with torch.no_grad():
        net.arch_alphas[0, 2] = NAN
    with pytest.raises(ValueError, match="arch_alphas holds NaN/Inf"):
        net.arch_str()


def test_width_choice_on_ties_and_non_finite_alpha() -> None:
    m = MaskedConv(2, 8, (2, 4, 8))
    with torch.no_grad():
        m.alpha.zero_()
    assert m.chosen_width() == 2
    with torch.no_grad():
        m.alpha[1] = NAN
    with pytest.raises(ValueError, match="alpha holds NaN/Inf"):
        m.chosen_width()


@pytest.mark.parametrize("widths", [(2.5, 4, 8), (2, 4.0, 8), ("2", 4)])
def test_non_integer_candidate_widths_raise(widths: tuple[Any, ...]) -> None:
    with pytest.raises(TypeError, match="widths must be a sequence of ints"):
        MaskedConv(2, 8, widths)
    with pytest.raises(TypeError, match="widths must be a sequence of ints"):
        WidthSearchResNet([widths])


def test_numpy_integer_widths_are_accepted() -> None:
    assert MaskedConv(2, 8, np.array([2, 4, 8])).widths == (2, 4, 8)


def test_a_batch_on_another_device_than_the_model_raises(make_tiny_supernet: Any) -> None:
    net = make_tiny_supernet()
    s = RARTS(net, sgd(), a_opt(net))
    x, y = batch()
    with pytest.raises(
        ValueError, match=r"batch_val is on \(meta, cpu\) but the model's α are on cpu"
    ):
        s.step((x, y), (x.to("meta"), y))


# ---------------------------------------------------------------------------------- state and resume


def _stepper(kind: str, seed: int) -> Any:
    torch.manual_seed(seed)
    net = SearchNetwork(
        4, 3, 2, steps=2, multiplier=2, primitives=MNIST1D_PRIMITIVES, in_channels=1, dims=1,
        reduction_cells=(1,),
    )  # fmt: skip
    mom = lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=3e-4)  # noqa: E731
    adam = torch.optim.Adam(net.arch_parameters(), lr=3e-3, betas=(0.5, 0.999), weight_decay=1e-3)
    if kind == "darts1":
        return DartsFirstOrder(net, mom(net.weight_parameters()), adam)
    if kind == "darts2":
        return DartsSecondOrder(net, mom(net.weight_parameters()), adam)
    return RARTS(net, mom, adam, lam=0.5, beta=2.0, y_init="independent", alpha_grad=kind)


def _roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    out: dict[str, Any] = torch.load(buf, weights_only=True)
    return out


@pytest.mark.parametrize("kind", ["darts1", "darts2", "lagged", "exact"])
def test_state_dict_round_trip_resumes_every_stepper_exactly(kind: str) -> None:
    batches = [(batch(seed=2 * i), batch(seed=2 * i + 1)) for i in range(5)]
    a = _stepper(kind, 0)
    for bt, bv in batches[:2]:
        a.step(bt, bv)
    b = _stepper(kind, 7)  # different weights, α and y; empty optimiser states
    b.load_state_dict(_roundtrip(a.state_dict()))
    for bt, bv in batches[2:]:
        assert a.step(bt, bv) == b.step(bt, bv)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and sa["num_steps"] == sb["num_steps"] == 5
    for key, part in sa.items():
        if key.startswith("model"):
            for name, t in part.items():
                assert torch.equal(t, sb[key][name]), (key, name)
        elif key.endswith("opt"):  # momentum buffers, Adam moments and step counts
            for pid, st in part["state"].items():
                for name, t in st.items():
                    assert torch.equal(
                        torch.as_tensor(t), torch.as_tensor(sb[key]["state"][pid][name])
                    )
    if isinstance(b, RARTS):  # α still shared after loading
        assert all(
            x is y
            for x, y in zip(b.model_w.arch_parameters(), b.model_y.arch_parameters(), strict=True)
        )


def test_rarts_state_carries_lambda_beta_and_refuses_another_alpha_grad(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = _stepper("lagged", 0)
    a.beta = 8.0  # e.g. a β schedule
    state = _roundtrip(a.state_dict())
    assert (state["lam"], state["beta"], state["alpha_grad"]) == (0.5, 8.0, "lagged")
    b = _stepper("lagged", 1)
    with caplog.at_level(logging.WARNING, logger="paperzoo.rarts.search"):
        b.load_state_dict(state)
    assert b.beta == 8.0 and "beta restored to 8.0" in caplog.text
    with pytest.raises(ValueError, match=r"alpha_grad='lagged'.*alpha_grad='exact'"):
        _stepper("exact", 1).load_state_dict(state)


def test_loading_another_steppers_state_names_the_mismatch() -> None:
    with pytest.raises(ValueError, match=r"not a RARTS state: missing \['model_w'"):
        _stepper("lagged", 0).load_state_dict(_stepper("darts1", 0).state_dict())
    with pytest.raises(ValueError, match=r"not a DartsFirstOrder state: missing \['model'\]"):
        _stepper("darts1", 0).load_state_dict(_stepper("lagged", 0).state_dict())


# ------------------------------------------------------------------------------------------- loops


def test_run_search_with_an_empty_loader_raises(make_tiny_supernet: Any) -> None:
    net = make_tiny_supernet()
    s = RARTS(net, sgd(), a_opt(net))
    x, y = batch(8)
    full = make_loader(x, y, batch_size=4, shuffle=False)
    empty = make_loader(x[:3], y[:3], batch_size=4, shuffle=False, drop_last=True)
    with pytest.raises(ValueError, match="yielded no batches"):
        run_search(s, full, empty, epochs=1)


def test_resume_with_a_different_number_of_schedulers_raises(
    tmp_path: Any, make_tiny_supernet: Any
) -> None:
    net = make_tiny_supernet()
    s = RARTS(net, sgd(), a_opt(net))
    x, y = batch(8)
    tl, vl = (
        make_loader(x[:4], y[:4], batch_size=4, shuffle=False),
        make_loader(x[4:], y[4:], batch_size=4, shuffle=False),
    )
    ck = tmp_path / "ck.pt"
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(s.w_opt, 2)
    run_search(s, tl, vl, epochs=1, schedulers=[sched], checkpoint_path=ck)
    with pytest.raises(ValueError, match=r"holds 1 scheduler state\(s\) but 0 scheduler\(s\)"):
        run_search(s, tl, vl, epochs=2, checkpoint_path=ck, resume=True)
