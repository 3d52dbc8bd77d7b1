"""The search-stepper interface shared by DARTS-1st/2nd and RARTS: hyperparameter and optimiser checks, frozen
weights, batch and α checks before a step (a rejected step changes nothing), the non-finite guard after it,
and exact state round trips."""

from __future__ import annotations

import copy
import io
import logging
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.rarts.darts import DartsFirstOrder, DartsSecondOrder
from paperzoo.rarts.ops import (
    MNIST1D_PRIMITIVES,
)
from paperzoo.rarts.search import RARTS
from paperzoo.rarts.space import (
    SearchNetwork,
)

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


def test_unbatched_tensors_raise(make_tiny_supernet: Any) -> None:
    net = make_tiny_supernet()
    s = RARTS(net, sgd(), a_opt(net))
    with pytest.raises(ValueError, match=r"batch_train: expected batched tensors"):
        s.step((torch.tensor(1.0), torch.tensor(0)), batch())


def test_a_batch_on_another_device_than_the_model_raises(make_tiny_supernet: Any) -> None:
    net = make_tiny_supernet()
    s = RARTS(net, sgd(), a_opt(net))
    x, y = batch()
    with pytest.raises(
        ValueError,
        match=r"batch_val: expected tensors on the device of the model.s α \(cpu\), got \(meta, cpu\)",
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


# -------------------------------------------------------------------------------------- batches and α


def rarts(net: Any) -> RARTS:
    return RARTS(net, sgd(), a_opt(net))


def test_steppers_reject_a_model_without_arch_parameters() -> None:
    net = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="arch_parameters"):
        RARTS(net, sgd(), torch.optim.SGD(net.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="arch_parameters"):
        DartsFirstOrder(
            net,
            torch.optim.SGD(net.parameters(), lr=0.1),
            torch.optim.SGD(net.parameters(), lr=0.1),
        )


def test_batches_with_different_feature_shapes_raise(make_tiny_supernet: Any) -> None:
    s = rarts(make_tiny_supernet())
    bt = (torch.randn(4, 1, 8), torch.randint(0, 3, (4,)))
    bv = (torch.randn(4, 1, 16), torch.randint(0, 3, (4,)))
    with pytest.raises(ValueError, match=r"batch_val: expected the feature shape of batch_train"):
        s.step(bt, bv)


@pytest.mark.parametrize("bad", [-1, 3])
def test_labels_outside_the_class_range_raise(bad: int, make_tiny_supernet: Any) -> None:
    s = rarts(make_tiny_supernet())
    y = torch.randint(0, 3, (4,))
    y[1] = bad
    with pytest.raises(ValueError, match=r"batch_val labels: expected labels in \[0, 3\)"):
        s.step((torch.randn(4, 1, 8), torch.randint(0, 3, (4,))), (torch.randn(4, 1, 8), y))


@pytest.mark.parametrize("kind", ["darts1", "darts2", "lagged", "exact"])
@pytest.mark.parametrize("which", ["batch_train", "batch_val"])
def test_float_labels_raise_a_type_error_naming_the_labels(kind: str, which: str) -> None:
    s = _stepper(kind, 0)
    good = batch()
    bad = (good[0], good[1].float())
    bt, bv = (bad, good) if which == "batch_train" else (good, bad)
    with pytest.raises(TypeError, match=rf"{which} labels: expected an integer dtype"):
        s.step(bt, bv)


def test_empty_batch_raises(make_tiny_supernet: Any) -> None:
    s = rarts(make_tiny_supernet())
    with pytest.raises(ValueError, match="batch_train: expected a non-empty batch"):
        s.step(
            (torch.randn(0, 1, 8), torch.zeros(0, dtype=torch.long)),
            (torch.randn(4, 1, 8), torch.zeros(4, dtype=torch.long)),
        )


def _assert_same_state(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Every tensor of two ``state_dict()`` s equal, NaN included (models, buffers, optimiser states)."""
    assert before.keys() == after.keys()
    for key, part in before.items():
        if key.startswith("model"):
            assert part.keys() == after[key].keys()
            for name, t in part.items():
                torch.testing.assert_close(after[key][name], t, rtol=0, atol=0, equal_nan=True)
        elif key.endswith("opt"):
            assert part["state"].keys() == after[key]["state"].keys()
            for pid, st in part["state"].items():
                for name, t in st.items():
                    torch.testing.assert_close(
                        torch.as_tensor(after[key]["state"][pid][name]),
                        torch.as_tensor(t),
                        rtol=0,
                        atol=0,
                        equal_nan=True,
                    )
        else:
            assert after[key] == before[key]


@pytest.mark.parametrize("kind", ["darts1", "darts2", "lagged", "exact"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_alpha_is_named_and_the_step_changes_nothing(kind: str, value: float) -> None:
    s = _stepper(kind, 0)
    s.step(batch(seed=0), batch(seed=1))  # optimiser states and momenta exist
    net = s.model
    with torch.no_grad():
        net.alphas_reduce[0, 0] = value
    before = copy.deepcopy(s.state_dict())
    with pytest.raises(ValueError, match=r"arch_parameters\(\) \[1\] \(α\): expected finite"):
        s.step(batch(seed=2), batch(seed=3))
    _assert_same_state(before, s.state_dict())
    assert s.num_steps == 1


@pytest.mark.parametrize("kind", ["darts1", "lagged"])
def test_non_finite_x_is_named_and_the_step_changes_nothing(kind: str) -> None:
    s = _stepper(kind, 0)
    x, y = batch(seed=1)
    x[0, 0, 0] = float("nan")
    before = copy.deepcopy(s.state_dict())
    with pytest.raises(ValueError, match=r"batch_val x: expected finite values"):
        s.step(batch(), (x, y))
    _assert_same_state(before, s.state_dict())


def test_a_loss_that_turns_non_finite_in_the_step_names_step_and_loss(
    make_tiny_supernet: Any,
) -> None:
    net = make_tiny_supernet()
    s = DartsFirstOrder(
        net,
        torch.optim.SGD(net.weight_parameters(), lr=0.1),
        torch.optim.SGD(net.arch_parameters(), lr=0.1),
        loss_fn=lambda out, y: F.cross_entropy(out, y) * float("nan"),
    )
    b = (torch.randn(4, 1, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"search step 1: loss 'val_loss' is non-finite"):
        s.step(b, b)


def test_alpha_that_turns_non_finite_in_the_step_stops_the_search(make_tiny_supernet: Any) -> None:
    net = make_tiny_supernet()
    s = rarts(net)
    b = (torch.randn(4, 1, 8), torch.zeros(4, dtype=torch.long))
    s.step(b, b)
    s.a_opt.param_groups[0]["lr"] = float("inf")
    with pytest.raises(ValueError, match=r"search step 2: .*NaN/Inf"):
        s.step(b, b)
