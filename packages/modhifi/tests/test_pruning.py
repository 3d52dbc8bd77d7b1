"""ModHiFi-P semantics: the union rule, budget mode, identity at keep=1, compensation, BN recal."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from paperzoo.modhifi import (
    LayerStats,
    ModHiFiPruner,
    calibration_batches,
    compensation,
    l2_channel_scores,
    recalibrate_batchnorm,
    select_channels,
)

from .conftest import calib, tiny_cnn

D = torch.float64


def _union_by_loops(scores: list[torch.Tensor], k: int) -> torch.Tensor:
    n = scores[0].shape[1]
    keep = torch.zeros(n, dtype=torch.bool)
    for s in scores:
        for c in range(s.shape[0]):
            order = sorted(range(n), key=lambda i, c=c, s=s: (-s[c, i].item(), i))
            for i in order[:k]:
                keep[i] = True
    return keep


def test_union_rule_keeps_a_channel_iff_some_output_ranks_it_top_k() -> None:
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        scores = [torch.randn(4, 9, generator=g, dtype=D) for _ in range(1 + trial % 2)]
        for keep in (0.1, 0.3, 0.5, 1.0):
            k = max(1, -(-int(keep * 90) // 10))  # ceil(keep * 9)
            assert torch.equal(select_channels(scores, keep=keep), _union_by_loops(scores, k))


def test_budget_mode_keeps_exactly_b_channels_by_best_rank() -> None:
    g = torch.Generator().manual_seed(1)
    scores = [torch.randn(3, 10, generator=g, dtype=D)]
    for b in range(1, 11):
        mask = select_channels(scores, budget=b)
        assert int(mask.sum()) == b
    ranks = scores[0].argsort(1, descending=True).argsort(1).min(0).values
    mask = select_channels(scores, budget=3)
    assert ranks[mask].max() <= ranks[~mask].min()


def test_pruned_channels_have_zero_weights_for_every_output() -> None:
    net = tiny_cnn()
    pruner = ModHiFiPruner(net, ["3", "7"], budget=2)
    plan = pruner.fit(calib())
    pruner.apply()
    for name in ("3", "7"):
        w = net.get_submodule(name).weight
        pruned = torch.ones(w.shape[1], dtype=torch.bool)
        pruned[plan.kept[name]] = False
        assert plan.num_kept()[name] == 2
        assert torch.all(w[:, pruned] == 0)
        assert torch.all(w[:, ~pruned].abs().sum((0, 2, 3)) > 0)


def test_keep_one_is_the_identity_without_bn_recal() -> None:
    net = tiny_cnn()
    ref = copy.deepcopy(net)
    pruner = ModHiFiPruner(net, ["3", "7", "12"], keep=1.0, recalibrate_bn=False)
    plan = pruner.fit(calib())
    for d in plan.delta.values():
        assert torch.equal(d, torch.ones_like(d))
    pruner.apply()
    x = calib(seed=5)
    torch.testing.assert_close(net(x), ref(x), rtol=0, atol=0)


def test_applied_weights_are_the_compensated_slices_of_the_sequential_edit() -> None:
    net = tiny_cnn()
    ref = copy.deepcopy(net)
    x = calib()
    pruner = ModHiFiPruner(net, ["3", "7"], keep=0.34, recalibrate_bn=False, score="fidelity")
    plan = pruner.fit(x)
    pruner.apply()
    # first layer: statistics of the original model
    st = LayerStats.collect(ref, "3", x)
    assert st.q is not None
    kept = torch.zeros(4, dtype=torch.bool)
    kept[plan.kept["3"]] = True
    assert torch.equal(kept, select_channels([st.scores("fidelity")], keep=0.34))
    delta = compensation(st.q, kept, ridge=1e-4)
    torch.testing.assert_close(net[3].weight, ref[3].weight * delta[:, :, None, None])
    # second layer: statistics of the model with the first edit in place
    with torch.no_grad():
        ref[3].weight.mul_(delta[:, :, None, None])
    st2 = LayerStats.collect(ref, "7", x)
    assert st2.q is not None
    kept2 = select_channels([st2.scores("fidelity")], keep=0.34)
    torch.testing.assert_close(plan.delta["7"], compensation(st2.q, kept2, ridge=1e-4))


def test_compensation_lowers_the_layer_reconstruction_error() -> None:
    x = calib(64)
    errs = {}
    for comp in (True, False):
        net = tiny_cnn()
        ref = copy.deepcopy(net)
        p = ModHiFiPruner(net, ["7"], budget=2, compensate=comp, recalibrate_bn=False)
        p.fit(x)
        p.apply()
        with torch.no_grad():
            feats = ref[:7](x)
            diff = net[7](feats) - ref[7](feats)
        # conv 7 feeds a BatchNorm: the statistics are centred, so is the error minimised
        errs[comp] = float((diff - diff.mean(0, keepdim=True)).square().sum())
    assert errs[True] < errs[False]


def test_coupled_group_prunes_the_same_channels() -> None:
    torch.manual_seed(0)

    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 6, 3, padding=1)
            self.a = nn.Conv2d(6, 3, 3, padding=1)
            self.b = nn.Conv2d(6, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.stem(x))
            return self.a(h).mean((2, 3)).sum(1, keepdim=True) + self.b(h).mean((2, 3))

    net = Two().double().eval()
    p = ModHiFiPruner(net, [["a", "b"]], budget=3)
    plan = p.fit(calib())
    assert torch.equal(plan.kept["a"], plan.kept["b"])
    with pytest.raises(ValueError, match="mismatched"):
        ModHiFiPruner(nn.Sequential(nn.Conv2d(1, 2, 1), nn.Conv2d(2, 3, 1)), [["0", "1"]])


def test_materialized_model_is_smaller_and_equal() -> None:
    net = tiny_cnn()
    p = ModHiFiPruner(net, ["3", "7", "12"], budget=3)
    p.fit(calib())
    p.apply()
    small = p.materialize()
    x = calib(seed=9)
    torch.testing.assert_close(small(x), net(x), rtol=1e-9, atol=1e-10)
    assert small[0].out_channels == 3 and small[1].num_features == 3 and small[3].in_channels == 3
    assert small[11 + 1].in_features == 3
    assert sum(t.numel() for t in small.parameters()) < sum(t.numel() for t in net.parameters())


def test_batchnorm_recalibration_equals_the_statistics_of_one_pass() -> None:
    net = tiny_cnn()
    x = calib(48)
    recalibrate_batchnorm(net, x, batch_size=48)
    assert not net.training
    h = net[0](x)
    torch.testing.assert_close(net[1].running_mean, h.mean((0, 2, 3)))
    torch.testing.assert_close(net[1].running_var, h.var((0, 2, 3), unbiased=True))
    assert net[1].momentum == 0.1
    # several batches: the mean of per-batch means and of per-batch unbiased variances
    recalibrate_batchnorm(net, x, batch_size=16)
    parts = h.split(16)
    torch.testing.assert_close(
        net[1].running_mean, torch.stack([p.mean((0, 2, 3)) for p in parts]).mean(0)
    )
    torch.testing.assert_close(
        net[1].running_var, torch.stack([p.var((0, 2, 3)) for p in parts]).mean(0)
    )


def test_bad_pruner_arguments_raise() -> None:
    net = tiny_cnn()
    for keep in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="keep"):
            ModHiFiPruner(net, ["3"], keep=keep)
    for budget in (0, 5):
        with pytest.raises(ValueError, match="budget"):
            ModHiFiPruner(net, ["3"], budget=budget)
    with pytest.raises(TypeError, match="BatchNorm"):
        ModHiFiPruner(net, ["4"])
    with pytest.raises(ValueError, match="no submodule"):
        ModHiFiPruner(net, ["conv"])
    with pytest.raises(ValueError, match="ridge"):
        ModHiFiPruner(net, ["3"], ridge=-1.0)
    with pytest.raises(ValueError, match="layers"):
        ModHiFiPruner(net, [])
    p = ModHiFiPruner(net, ["3"])
    with pytest.raises(RuntimeError, match="fit"):
        p.apply()
    with pytest.raises(ValueError, match="keep, budget"):
        select_channels([torch.randn(2, 3)], keep=0.5, budget=1)
    singular = ModHiFiPruner(net, ["12"], keep=0.5, ridge=0.0, recalibrate_bn=False)
    with pytest.raises(ValueError, match="singular"), pytest.warns(UserWarning, match="ridge"):
        singular.fit(calib(2))  # 2 samples, 5 inputs: Q[C, C] singular without a ridge


def test_l2_baseline_scores_are_the_producer_filter_norms() -> None:
    net = tiny_cnn()
    torch.testing.assert_close(
        l2_channel_scores(net, "7"), net[3].weight.detach().flatten(1).norm(dim=1)
    )
    torch.testing.assert_close(
        l2_channel_scores(net, "12"), net[7].weight.detach().flatten(1).norm(dim=1)
    )
    with pytest.raises(ValueError, match="producer"):
        l2_channel_scores(net, "0")


def test_labelled_batches_are_accepted_and_labels_ignored() -> None:
    x = calib(40)
    batches = [(x[:20], torch.zeros(20, dtype=torch.long)), (x[20:], torch.ones(20))]
    got = calibration_batches(batches)
    assert [b.shape[0] for b in got] == [20, 20] and torch.equal(torch.cat(got), x)
    a = LayerStats.collect(tiny_cnn(), "7", batches, need_q=False)
    b = LayerStats.collect(tiny_cnn(), "7", x, need_q=False)
    torch.testing.assert_close(a.saliency, b.saliency)
