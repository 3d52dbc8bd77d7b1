"""run_search: exact stop-and-resume, empty loaders, scheduler mismatches on resume."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from paperzoo.core.data import make_loader
from paperzoo.rarts.loop import run_search
from paperzoo.rarts.search import RARTS


def _rarts_on_eight_rows(net: Any) -> tuple[RARTS, torch.Tensor, torch.Tensor]:
    """A plain-SGD RARTS stepper on ``net`` and 8 rows ``(8, 1, 8)`` of 3 classes."""
    stepper = RARTS(
        net,
        lambda ps: torch.optim.SGD(ps, lr=0.1),
        torch.optim.SGD(net.arch_parameters(), lr=0.1),
    )
    g = torch.Generator().manual_seed(0)
    return stepper, torch.randn(8, 1, 8, generator=g), torch.randint(0, 3, (8,), generator=g)


def test_run_search_with_an_empty_loader_raises(make_tiny_supernet: Any) -> None:
    s, x, y = _rarts_on_eight_rows(make_tiny_supernet())
    full = make_loader(x, y, batch_size=4, shuffle=False)
    empty = make_loader(x[:3], y[:3], batch_size=4, shuffle=False, drop_last=True)
    with pytest.raises(ValueError, match="yielded no batches"):
        run_search(s, full, empty, epochs=1)


def test_resume_with_a_different_number_of_schedulers_raises(
    tmp_path: Any, make_tiny_supernet: Any
) -> None:
    s, x, y = _rarts_on_eight_rows(make_tiny_supernet())
    tl, vl = (
        make_loader(x[:4], y[:4], batch_size=4, shuffle=False),
        make_loader(x[4:], y[4:], batch_size=4, shuffle=False),
    )
    ck = tmp_path / "ck.pt"
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(s.w_opt, 2)
    run_search(s, tl, vl, epochs=1, schedulers=[sched], checkpoint_path=ck)
    with pytest.raises(ValueError, match=r"holds 1 scheduler state\(s\) but 0 scheduler\(s\)"):
        run_search(s, tl, vl, epochs=2, checkpoint_path=ck, resume=True)


def test_stopped_and_resumed_search_is_identical_to_an_uninterrupted_one(
    tmp_path: Any, make_tiny_supernet: Any
) -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 1, 8, generator=g), torch.randint(0, 3, (32,), generator=g)

    def build() -> tuple[RARTS, list[Any], Any, Any]:
        net = make_tiny_supernet(seed=3)
        sgd = lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=3e-4)  # noqa: E731
        s = RARTS(net, sgd, torch.optim.Adam(net.arch_parameters(), lr=3e-3, betas=(0.5, 0.999)))
        scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, 2) for o in (s.w_opt, s.y_opt)]
        tl = make_loader(x[:16], y[:16], batch_size=6, shuffle=True, seed=1)
        vl = make_loader(x[16:], y[16:], batch_size=6, shuffle=True, seed=2)
        return s, scheds, tl, vl

    s_full, sch, tl, vl = build()
    full = run_search(s_full, tl, vl, epochs=2, schedulers=sch)
    ck = tmp_path / "search.pt"
    s_a, sch, tl, vl = build()
    run_search(s_a, tl, vl, epochs=1, schedulers=sch, checkpoint_path=ck)
    s_b, sch, tl, vl = build()  # a fresh process would rebuild everything like this
    resumed = run_search(s_b, tl, vl, epochs=2, schedulers=sch, checkpoint_path=ck, resume=True)
    want, got = s_full.state_dict(), s_b.state_dict()
    for part in ("model_w", "model_y"):
        for k, v in want[part].items():
            torch.testing.assert_close(got[part][k], v, rtol=0, atol=0)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    assert s_b.num_steps == s_full.num_steps == 6
