"""PseudoNegativeSampler: EMA recursion, official two-batch mean with epoch reset, sample
statistics, no grad, state_dict, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.hyp_oc import PseudoNegativeSampler


def _batches(n: int, f: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(8, f, generator=g) * 2 + i for i in range(n)]


def test_ema_mode_follows_the_recursion_from_the_first_batch_mean() -> None:
    s = PseudoNegativeSampler(5, alpha=0.8)
    mu = None
    for h in _batches(6, 5):
        s.update(h)
        m = h.mean(0)
        mu = m if mu is None else 0.8 * mu + 0.2 * m
        torch.testing.assert_close(s.mean, mu, rtol=0, atol=1e-6)


def test_official_mode_averages_two_batch_means_and_resets_each_epoch() -> None:
    s = PseudoNegativeSampler(4, alpha=0.8, mean_mode="official")
    bs = _batches(3, 4)
    s.update(bs[0])
    torch.testing.assert_close(s.mean, 0.2 * bs[0].mean(0))  # previous mean starts at zeros
    s.update(bs[1])
    torch.testing.assert_close(s.mean, 0.8 * bs[0].mean(0) + 0.2 * bs[1].mean(0))
    s.new_epoch()
    s.update(bs[2])
    torch.testing.assert_close(s.mean, 0.2 * bs[2].mean(0))


def test_new_epoch_does_not_touch_the_ema() -> None:
    s = PseudoNegativeSampler(3)
    s.update(torch.ones(4, 3))
    s.new_epoch()
    s.update(torch.zeros(4, 3))
    torch.testing.assert_close(s.mean, torch.full((3,), 0.8))


@pytest.mark.parametrize("std", [0.5, 2.0])
def test_samples_have_the_running_mean_and_the_requested_std(std: float) -> None:
    f, n = 16, 100_000
    g = torch.Generator().manual_seed(0)
    s = PseudoNegativeSampler(f, std=std, generator=g).double()
    s.update(torch.randn(10, f, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    x = s.sample(n)
    assert x.shape == (n, f) and not x.requires_grad
    assert float((x.mean(0) - s.mean).abs().max()) < 4 * std / math.sqrt(n)
    assert float((x.var(0) / std**2 - 1).abs().max()) < 0.02


def test_samples_carry_no_grad_even_from_a_grad_batch() -> None:
    s = PseudoNegativeSampler(3)
    h = torch.randn(4, 3, requires_grad=True)
    s.update(h)
    assert not s.sample(5).requires_grad and not s.mean.requires_grad


def test_auto_std_tracks_the_feature_spread() -> None:
    s = PseudoNegativeSampler(8, std="auto")
    h = torch.randn(4000, 8, generator=torch.Generator().manual_seed(2)) * 3
    s.update(h)
    assert float(s.sigma()) == pytest.approx(3.0, rel=0.05)


def test_generator_makes_samples_reproducible_and_state_dict_round_trips() -> None:
    a = PseudoNegativeSampler(3, generator=torch.Generator().manual_seed(0))
    b = PseudoNegativeSampler(3, generator=torch.Generator().manual_seed(0))
    a.update(torch.ones(2, 3))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a.sample(4), b.sample(4), rtol=0, atol=0)
    a.reset()
    assert int(a.num_updates) == 0 and float(a.mean.abs().sum()) == 0


def test_bad_sampler_arguments_and_inputs_raise() -> None:
    with pytest.raises(ValueError, match="alpha"):
        PseudoNegativeSampler(3, alpha=1.0)
    with pytest.raises(ValueError, match="alpha"):
        PseudoNegativeSampler(3, alpha=-0.1)
    with pytest.raises(ValueError, match="std"):
        PseudoNegativeSampler(3, std=0.0)
    with pytest.raises(ValueError, match="mean_mode"):
        PseudoNegativeSampler(3, mean_mode="batch")  # type: ignore[arg-type]
    s = PseudoNegativeSampler(3)
    with pytest.raises(ValueError, match="3 features"):
        s.update(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="finite"):
        s.update(torch.tensor([[float("nan"), 0.0, 0.0]]))
