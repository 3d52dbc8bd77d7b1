"""Benchmarks: rounds per second against Vowpal Wabbit's SquareCB and against per-arm loops.

Cases (every ratio is the other implementation's median time over ours, measured in this run):

* ``vw-race``: a whole stream of digits-as-a-bandit rounds, NeuSquareCB with a linear model and
  VW's ``gamma = 10 * sqrt(t)`` schedule against ``vowpalwabbit --cb_explore_adf --squarecb``
  (same contexts, same losses, arms drawn by the same kind of seeded stream); each impl's final
  regret is written into its name. Needs the ``bench`` dependency group (skipped without it).
* ``select``: one NeuFastCB arm selection (one batched forward over the K arms) against a
  per-arm Python loop of forwards, for several K, and widths m.
* ``ucb-grads``: NeuralUCB's scores and bonus from per-layer factored gradients (activations times
  output gradients, the default for a Linear chain) against one ``torch.func.vmap`` of the per-arm
  gradients (the 0.1.0 default) and the per-arm ``backward`` loop of the official NeuralUCB code.
* ``round``: a full NeuFastCB round (select + update) with replay off and on (replay = 1, batch 32).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.neucb.agents import NeuFastCB, NeuSquareCB
from paperzoo.neucb.baselines import NeuralUCB
from paperzoo.neucb.env import ClassificationBandit, from_sklearn
from paperzoo.neucb.functional import fastcb_probs
from paperzoo.neucb.loop import run
from paperzoo.neucb.perturbed import mlp

__all__ = ["BENCHMARK", "run_bench"]

log = logging.getLogger(__name__)


def _vw_lines(env: ClassificationBandit, t: int) -> list[str]:
    x = env.features[env.order[t]]
    d = x.shape[0]
    nonzero = x.nonzero().flatten().tolist()
    feats = [[f"{a * d + j}:{float(x[j]):.7g}" for j in nonzero] for a in range(env.n_arms)]
    return [" ".join(["|a", *f]) for f in feats]


def _vw_stream(env: ClassificationBandit, losses: list[Tensor]) -> Callable[[], float]:
    import vowpalwabbit

    lines = [_vw_lines(env, t) for t in range(env.n_rounds)]

    def play() -> float:
        vw = vowpalwabbit.Workspace("--cb_explore_adf --squarecb --quiet --random_seed 0")
        gen = torch.Generator().manual_seed(0)
        regret = 0.0
        for t, ex in enumerate(lines):
            probs = torch.tensor(vw.predict(ex), dtype=torch.float64)
            action = int(torch.multinomial(probs, 1, generator=gen))
            cost = float(losses[t][action])
            regret += cost - float(losses[t].min())
            labelled = list(ex)
            labelled[action] = f"0:{cost}:{float(probs[action])} {ex[action]}"
            vw.learn(labelled)
        vw.finish()
        return regret

    return play


def _ours_stream(
    env: ClassificationBandit, device: torch.device, reference: bool = False
) -> Callable[[], float]:
    """Play the stream; ``reference``: with the 0.1.0 autograd OGD step (not the closed form)."""

    def play() -> float:
        torch.manual_seed(0)
        agent = NeuSquareCB(
            nn.Linear(env.dim, 1).to(device),
            gamma=10.0,
            lr=0.5,
            perturb_scale=0.0,
            gamma_schedule="sqrt",
            seed=0,
        )
        agent._reference_step = reference
        return float(run(env, agent)["cum_regret"][-1])

    return play


def _ops_per_round(env: ClassificationBandit, device: torch.device, rounds: int = 50) -> float:
    """The torch operator calls (ATen dispatches, views included) per round of
    :func:`_ours_stream`, averaged over ``rounds`` rounds."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            _Count.calls += 1
            return func(*args, **(kwargs or {}))

    agent = NeuSquareCB(nn.Linear(env.dim, 1).to(device), 10.0, 0.5, 0.0, gamma_schedule="sqrt")
    with _Count():  # type: ignore[no-untyped-call]
        run(env, agent, n_rounds=rounds)
    return _Count.calls / rounds


def _vw_race(ctx: BenchContext) -> list[BenchRow]:
    try:
        import vowpalwabbit  # noqa: F401
    except ImportError:
        log.warning("vowpalwabbit is not installed (uv sync --group bench): skipping the VW race")
        return []
    n_rounds = 300 if ctx.quick else 1000
    env = from_sklearn("digits", n_rounds, seed=0)
    losses = [env.round(t)[1] for t in range(n_rounds)]
    ours_play, vw = _ours_stream(env, ctx.device), _vw_stream(env, losses)
    ref_play = _ours_stream(env, ctx.device, reference=True)
    r_ours, r_vw, r_ref = ours_play(), vw(), ref_play()
    per_round = _ops_per_round(env, ctx.device)
    ours = f"paperzoo NeuSquareCB linear (regret {r_ours:.0f}; {per_round:.0f} torch calls/round)"
    ref = "same, 0.1.0 autograd step"
    case = f"vw-race: digits T={n_rounds}, linear squarecb, whole stream"
    return compare(
        case,
        {
            ours: ours_play,
            f"vowpalwabbit --cb_explore_adf --squarecb (regret {r_vw:.0f})": vw,
            f"{ref} (regret {r_ref:.0f})": ref_play,
        },
        ours=ours,
        device=ctx.device,
        min_run_time=0.5 if ctx.quick else 1.0,
        memory=False,
    )


def _loop_select(agent: NeuFastCB, contexts: Tensor) -> int:
    """The per-arm baseline: one forward per arm, then the same rule and draw."""
    agent.model.resample()
    with torch.no_grad():
        outs = [agent.model(contexts[a : a + 1]).reshape(()) for a in range(contexts.shape[0])]
    probs = fastcb_probs(torch.sigmoid(torch.stack(outs)), agent.gamma, validate=False)
    return int(torch.multinomial(probs, 1, generator=agent.generator))


def _select_cases(ctx: BenchContext) -> list[BenchRow]:
    rows: list[BenchRow] = []
    shapes = [(10, 64, 100)] if ctx.quick else [(2, 64, 100), (10, 64, 100), (100, 64, 100)]
    widths = [] if ctx.quick else [(10, 64, 64), (10, 64, 1024)]
    for k, d, m in shapes + widths:
        torch.manual_seed(0)
        agent = NeuFastCB(mlp(k * d, m).to(ctx.device), gamma=100.0, lr=0.1, seed=0)
        contexts = torch.randn(k, k * d, device=ctx.device) / (d**0.5)

        def batched(a: NeuFastCB = agent, c: Tensor = contexts) -> object:
            return a.select(c)

        def looped(a: NeuFastCB = agent, c: Tensor = contexts) -> object:
            return _loop_select(a, c)

        rows += compare(
            f"select: K={k}, D={k * d}, m={m}",
            {"batched forward (ours)": batched, "per-arm forward loop": looped},
            ours="batched forward (ours)",
            device=ctx.device,
            min_run_time=0.3 if ctx.quick else 0.5,
        )
    return rows


def _loop_bonus(agent: NeuralUCB, contexts: Tensor) -> Tensor:
    """The official NeuralUCB code's way: one backward per arm, gradients flattened one by one."""
    scores = []
    net = agent.model.model
    for a in range(contexts.shape[0]):
        f = net(contexts[a : a + 1]).reshape(())
        grads = torch.autograd.grad(f, agent.params)
        g = torch.cat([gr.flatten() for gr in grads])
        bonus = agent.nu * (agent.lam * (g * g / agent.Z).sum() / agent.m).sqrt()
        scores.append(f.detach() + bonus)
    return torch.stack(scores)


def _ucb_cases(ctx: BenchContext) -> list[BenchRow]:
    rows: list[BenchRow] = []
    for k in [10] if ctx.quick else [10, 50]:
        d = 64
        torch.manual_seed(0)
        agent = NeuralUCB(mlp(k * d, 100).to(ctx.device), lr=0.1, nu=0.1)
        contexts = torch.randn(k, k * d, device=ctx.device) / (d**0.5)

        def layers(a: NeuralUCB = agent, c: Tensor = contexts) -> Tensor:
            f, grads = a._per_arm_layers(c)
            return f + a.nu * a._variance(grads).sqrt()

        def vmapped(a: NeuralUCB = agent, c: Tensor = contexts) -> Tensor:
            f, grads = a._per_arm_vmap(c)
            return f + a.nu * a._variance(grads).sqrt()

        def looped(a: NeuralUCB = agent, c: Tensor = contexts) -> Tensor:
            return _loop_bonus(a, c)

        torch.testing.assert_close(layers(), looped(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(vmapped(), looped(), rtol=1e-4, atol=1e-5)
        ours = "per-layer factored gradients (ours)"
        rows += compare(
            f"ucb-grads: K={k}, D={k * d}, m=100",
            {
                ours: layers,
                "torch.func.vmap (0.1.0 default)": vmapped,
                "per-arm backward loop (official code)": looped,
            },
            ours=ours,
            device=ctx.device,
            min_run_time=0.3 if ctx.quick else 0.5,
        )
    return rows


def _round_cases(ctx: BenchContext) -> list[BenchRow]:
    env = from_sklearn("digits", 200, seed=0)
    rounds = [env.round(t) for t in range(200)]
    impls: dict[str, Callable[[], object]] = {}
    for replay in (0, 1):
        torch.manual_seed(0)
        agent = NeuFastCB(mlp(env.dim, 100).to(ctx.device), 100.0, 0.1, replay=replay, seed=0)
        state = {"t": 0}

        def one_round(a: NeuFastCB = agent, s: dict[str, int] = state) -> None:
            contexts, losses = rounds[s["t"] % len(rounds)]
            s["t"] += 1
            action, _ = a.select(contexts)
            a.update(contexts[action], float(losses[action]))

        impls[f"NeuFastCB replay={replay}"] = one_round
    rows = compare(
        "round: digits K=10, D=640, m=100 (select + update)",
        impls,
        ours="NeuFastCB replay=0",
        device=ctx.device,
        min_run_time=0.3 if ctx.quick else 0.5,
        memory=False,
    )
    for row in rows:
        log.info("%s: %.0f rounds/s", row.impl, 1.0 / row.median_s)
    return rows


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """All cases; ``ctx.quick`` keeps one shape per case and a shorter VW race."""
    with torch_threads(1):  # timed single-threaded; the previous count is restored afterwards
        rows = _vw_race(ctx)
        rows += _select_cases(ctx)
        rows += _ucb_cases(ctx)
        rows += _round_cases(ctx)
    return rows


BENCHMARK = Benchmark(
    name="neucb",
    description="rounds/s vs vowpalwabbit squarecb; batched arms and vmap gradients vs loops",
    run=run_bench,
)
