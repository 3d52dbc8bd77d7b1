"""ModHiFi-U: exactly the selected slices change; zero vs negate; selection rules."""

from __future__ import annotations

import copy

import pytest
import torch

from paperzoo.modhifi import LayerStats, ModHiFiUnlearner, edit_slices, random_slices, top_slices

from .conftest import calib, tiny_cnn


@pytest.mark.parametrize("mode", ["zero", "negate"])
def test_only_the_selected_slices_change(mode: str) -> None:
    net = tiny_cnn()
    ref = copy.deepcopy(net)
    u = ModHiFiUnlearner(net, ["3", "7"], fraction=0.3, mode=mode)  # type: ignore[arg-type]
    masks = u.fit(calib())
    assert all(
        torch.equal(a, b)
        for a, b in zip(net.state_dict().values(), ref.state_dict().values(), strict=True)
    )
    u.apply()
    for name, m in masks.items():
        w, w0 = net.get_submodule(name).weight, ref.get_submodule(name).weight
        assert torch.equal(w[~m], w0[~m])
        expect = torch.zeros_like(w0[m]) if mode == "zero" else -w0[m]
        assert torch.equal(w[m], expect)
    for key in ("0.weight", "12.weight", "4.running_mean"):
        assert torch.equal(net.state_dict()[key], ref.state_dict()[key])


def test_hifi_set_is_the_top_saliency_slices_per_output_channel() -> None:
    net = tiny_cnn()
    x = calib()
    masks = ModHiFiUnlearner(net, ["7"], fraction=0.34).fit(x)
    r = LayerStats.collect(net, "7", x, center="none", need_q=False).saliency
    for c in range(r.shape[0]):
        top = set(sorted(range(6), key=lambda i, c=c: -r[c, i].item())[:3])
        assert set(masks["7"][c].nonzero().flatten().tolist()) == top


def test_retain_contrast_and_channel_granularity() -> None:
    net = tiny_cnn()
    x, xr = calib(seed=1), calib(seed=2)
    m = ModHiFiUnlearner(net, ["7"], fraction=0.5, retain_data=xr).fit(x)["7"]
    s = (
        LayerStats.collect(net, "7", x, center="none", need_q=False).saliency
        - LayerStats.collect(net, "7", xr, center="none", need_q=False).saliency
    )
    assert torch.equal(m, top_slices(s, 0.5))
    ch = ModHiFiUnlearner(net, ["7"], fraction=0.5, granularity="channel").fit(x)["7"]
    assert torch.equal(ch, ch[:1].expand_as(ch)) and int(ch[0].sum()) == 3


def test_random_slices_match_the_count_per_output_channel() -> None:
    m = random_slices(7, 10, 0.25, generator=torch.Generator().manual_seed(0))
    assert m.shape == (7, 10) and torch.all(m.sum(1) == 3)


def test_bad_unlearner_arguments_raise() -> None:
    net = tiny_cnn()
    for f in (0.0, 1.2):
        with pytest.raises(ValueError, match="fraction"):
            ModHiFiUnlearner(net, ["3"], fraction=f)
    with pytest.raises(ValueError, match="mode"):
        ModHiFiUnlearner(net, ["3"], mode="flip")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ReLU"):
        ModHiFiUnlearner(net, ["2"])
    with pytest.raises(RuntimeError, match="fit"):
        ModHiFiUnlearner(net, ["3"]).apply()
    with pytest.raises(ValueError, match="mask"):
        edit_slices(net[3], torch.ones(2, 2, dtype=torch.bool))
