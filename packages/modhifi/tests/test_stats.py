"""Layer statistics against explicit per-example, per-channel loops (float64)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.modhifi import LayerStats, csm_from_contributions, score_components

from .conftest import calib, tiny_cnn

D = torch.float64


def explicit_contributions(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A ``(S, c_out, n, P)`` by a loop over samples, output and input channels."""
    s, n = x.shape[:2]
    rows = []
    for si in range(s):
        per_c = []
        for c in range(conv.out_channels):
            per_i = []
            for i in range(n):
                a = F.conv2d(
                    x[si : si + 1, i : i + 1],
                    conv.weight[c : c + 1, i : i + 1],
                    None,
                    conv.stride,
                    conv.padding,
                )
                per_i.append(a.flatten())
            per_c.append(torch.stack(per_i))
        rows.append(torch.stack(per_c))
    return torch.stack(rows)


@pytest.mark.parametrize(("stride", "padding"), [(1, 1), (2, 0), (1, 0), (2, 2)])
@pytest.mark.parametrize("center", ["none", "position", "channel"])
def test_conv_stats_equal_explicit_loops(stride: int, padding: int, center: str) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 3, 3, stride=stride, padding=padding).double().eval()
    x = torch.randn(7, 5, 6, 6, dtype=D)
    st = LayerStats.collect(conv, conv, x, center=center)  # type: ignore[arg-type]
    a = explicit_contributions(conv, x)  # (S, c, n, P)
    for c in range(3):
        ac = a[:, c]
        if center == "position":
            ac = ac - ac.mean(0, keepdim=True)
        elif center == "channel":
            ac = ac - ac.mean((0, 2), keepdim=True)
        q = csm_from_contributions(ac)
        assert st.q is not None
        torch.testing.assert_close(st.q[c], q, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(st.saliency[c], q.sum(1), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(st.energy[c], torch.diagonal(q), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(st.y_energy[c], q.sum(), rtol=1e-10, atol=1e-10)


def test_saliency_without_q_uses_the_conv2d_weight_trick() -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(5, 3, 3, padding=1).double().eval()
    x = torch.randn(6, 5, 6, 6, dtype=D)
    full = LayerStats.collect(conv, conv, x, center="none")
    lean = LayerStats.collect(conv, conv, x, center="none", need_q=False)
    assert lean.q is None
    a = explicit_contributions(conv, x)
    y = a.sum(2)  # (S, c, P)
    r = torch.einsum("scp,scip->ci", y, a) / x.shape[0]
    torch.testing.assert_close(lean.saliency, r, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(full.saliency, lean.saliency, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("center", ["none", "position", "channel"])
def test_one_by_one_conv_equals_the_linear_path(center: str) -> None:
    torch.manual_seed(2)
    conv = nn.Conv2d(4, 3, 1, bias=False).double().eval()
    lin = nn.Linear(4, 3, bias=False).double().eval()
    with torch.no_grad():
        lin.weight.copy_(conv.weight[:, :, 0, 0])
    x = torch.randn(5, 4, 3, 3, dtype=D)
    tokens = x.flatten(2).transpose(1, 2)  # (S, HW, n)
    a = LayerStats.collect(conv, conv, x, center=center)  # type: ignore[arg-type]
    b = LayerStats.collect(lin, lin, tokens, center=center)  # type: ignore[arg-type]
    for f in ("saliency", "energy", "y_energy", "q"):
        torch.testing.assert_close(getattr(a, f), getattr(b, f), rtol=1e-10, atol=1e-10)


def test_linear_stats_equal_explicit_contributions() -> None:
    torch.manual_seed(3)
    lin = nn.Linear(4, 2).double().eval()
    x = torch.randn(9, 4, dtype=D)
    st = LayerStats.collect(lin, lin, x, center="none")
    assert st.q is not None
    for c in range(2):
        a = (x * lin.weight[c]).unsqueeze(-1)  # (S, n, 1), bias excluded
        torch.testing.assert_close(st.q[c], csm_from_contributions(a), rtol=1e-12, atol=1e-12)


def test_auto_centres_only_before_batchnorm() -> None:
    net = tiny_cnn()
    assert LayerStats.collect(net, "3", calib(), need_q=False).center == "position"
    assert LayerStats.collect(net, "12", calib(), need_q=False).center == "none"


def test_scores_follow_their_definitions() -> None:
    net = tiny_cnn()
    st = LayerStats.collect(net, "3", calib())
    sc = score_components(net, ["3"], calib(), score="fidelity")["3"]
    assert st.q is not None
    exp = st.saliency.square() / (torch.diagonal(st.q, dim1=1, dim2=2) * st.y_energy[:, None])
    torch.testing.assert_close(sc, exp)
    torch.testing.assert_close(score_components(net, ["3"], calib(), "energy")["3"], st.energy)


def test_scoring_runs_without_autograd() -> None:
    net = tiny_cnn()
    with torch.inference_mode():
        st = LayerStats.collect(net, "3", calib())
        out = score_components(net, ["7"], calib())
    assert st.q is not None and torch.isfinite(st.q).all() and out["7"].shape == (5, 6)


def test_training_mode_model_is_scored_in_eval_mode_with_a_warning() -> None:
    net = tiny_cnn().train()
    before = [b.running_mean.clone() for b in net.modules() if isinstance(b, nn.BatchNorm2d)]
    with pytest.warns(UserWarning, match="training mode"):
        LayerStats.collect(net, "3", calib(), need_q=False)
    after = [b.running_mean for b in net.modules() if isinstance(b, nn.BatchNorm2d)]
    assert all(torch.equal(u, v) for u, v in zip(before, after, strict=True))
    assert net.training


def test_bad_layers_and_data_raise() -> None:
    net = tiny_cnn()
    with pytest.raises(TypeError, match="BatchNorm2d"):
        LayerStats.collect(net, "1", calib())
    with pytest.raises(ValueError, match="no submodule"):
        LayerStats.collect(net, "conv9", calib())
    with pytest.raises(ValueError, match="not part"):
        LayerStats.collect(net, nn.Conv2d(1, 1, 1), calib())
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="grouped"):
        LayerStats.collect(grouped, "0", torch.randn(2, 4, 5, 5))
    dilated = nn.Sequential(nn.Conv2d(4, 4, 3, dilation=2))
    with pytest.raises(ValueError, match="dilation"):
        LayerStats.collect(dilated, "0", torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="non-empty"):
        LayerStats.collect(net, "3", calib()[:0])
    with pytest.raises(ValueError, match="at least one"):
        LayerStats.collect(net, "3", [])
    bad = calib()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        LayerStats.collect(net, "3", bad)
    with pytest.raises(ValueError, match="rejected"):
        LayerStats.collect(net, "3", torch.randn(4, 3, 8, 8, dtype=D))
    with pytest.raises(TypeError, match="floating"):
        LayerStats.collect(net, "3", torch.ones(4, 1, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="center"):
        LayerStats.collect(net, "3", calib(), center="mean")  # type: ignore[arg-type]


def test_too_few_samples_warn_and_dead_outputs_warn() -> None:
    lin = nn.Linear(6, 2).double().eval()
    with pytest.warns(UserWarning, match="singular"):
        LayerStats.collect(lin, lin, torch.randn(3, 6, dtype=D), center="none")
    with torch.no_grad():
        lin.weight[0] = 0.0
    with pytest.warns(RuntimeWarning, match="undefined"):
        st = LayerStats.collect(lin, lin, torch.randn(20, 6, dtype=D), center="none")
    assert torch.equal(st.scores("fidelity")[0], torch.zeros(6, dtype=D))
