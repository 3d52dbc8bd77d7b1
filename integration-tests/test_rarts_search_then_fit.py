"""RARTS with the core's data, loaders and checkpoints, then the derived network trained by the core's ``fit``."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from paperzoo.core.data import load_dataset, make_loader
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.training import fit, load_checkpoint
from paperzoo.rarts import MNIST1D_PRIMITIVES, RARTS, EvalNetwork, SearchNetwork, run_search


def test_rarts_search_on_digits_then_core_fit_of_the_derived_network(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    seed_everything(0)
    split = load_dataset("digits", seed=0)
    x = split.x_train.view(-1, 1, 8, 8)[:256]
    y = split.y_train[:256]
    net = SearchNetwork(
        4,
        10,
        3,
        steps=2,
        multiplier=2,
        primitives=MNIST1D_PRIMITIVES,
        in_channels=1,
        dims=2,
        reduction_cells=(1,),
    )
    stepper = RARTS(
        net,
        lambda ps: torch.optim.SGD(ps, lr=0.025, momentum=0.9, weight_decay=3e-4),
        torch.optim.Adam(net.arch_parameters(), lr=3e-3, betas=(0.5, 0.999), weight_decay=1e-3),
    )
    ck = tmp_path / "search.pt"
    res = run_search(
        stepper,
        make_loader(x[:128], y[:128], batch_size=32, shuffle=True, seed=0),
        make_loader(x[128:], y[128:], batch_size=32, shuffle=True, seed=1),
        epochs=1,
        checkpoint_path=ck,
    )
    assert load_checkpoint(ck)["epoch"] == 1 and res.history[0]["search_s"] > 0
    geno = net.genotype()
    model = EvalNetwork(geno, 8, 10, 3, in_channels=1, dims=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xtr = split.x_train.view(-1, 1, 8, 8)
    fit(
        model,
        make_loader(xtr, split.y_train, batch_size=64, shuffle=True),
        opt,
        loss_fn=F.cross_entropy,
        epochs=3,
        progress=False,
        device="cpu",
    )
    acc = accuracy(model, split.x_test.view(-1, 1, 8, 8), split.y_test, device="cpu")
    assert acc > 0.5  # chance is 0.1
