"""The small reproduction (spec section 6): margin losses with and without UNPG on synthetic identities.

Face data cannot be downloaded, so the run scales the paper down: 600 synthetic identities
(:mod:`paperzoo.unpg.synthetic`; 500 train, 100 unseen test identities, 40 samples each), an MLP
``128 -> 256 -> 128`` embedding instead of an iResNet, Adam instead of SGD, and open-set
verification on the test identities (every genuine pair, 20k random impostor pairs): TAR at FAR
1e-3 and 1e-2, EER and the WDFS fraction (genuine pairs above every impostor).

Per seed (each seed draws its own identities and initialisation; every method of a seed sees the
same data, initial weights and batch order): ArcFace, ArcFace + UNPG (k = 1.5), ArcFace + MLPG
negatives without the filter (k = inf), CosFace, CosFace + UNPG, on clean labels; then the ArcFace
trio again with 5% uniform label noise on the training labels (the filter's use case). Training
goes through ``paperzoo.core.training.fit``; a callback records the test TAR@1e-3 after each epoch.

At paper scale, ``--set data_root=DIR`` replaces the synthetic identities by face images in one
class-per-identity folder tree (``DIR/<identity>/<image>``, e.g. CASIA-WebFace or an MS1M export;
``paperzoo.core.datasets``' ``image-folder`` with the class split): the first half of the
identities trains, verification runs on the unseen second half, images resized and center-cropped
to ``image_size``, flattened and standardised with the training statistics for the same MLP.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import UserError
from paperzoo.core.data import make_loader, uniform_label_noise
from paperzoo.core.devices import seed_everything
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.models import mlp
from paperzoo.core.training import Callback, TrainState, fit
from paperzoo.unpg.heads import ArcFaceHead, CosFaceHead, MarginHead
from paperzoo.unpg.loss import UNPGLoss
from paperzoo.unpg.synthetic import (
    IdentitySplit,
    SyntheticIdentities,
    synthetic_identities,
    verification_pairs,
)
from paperzoo.unpg.verification import eer, tar_at_far

__all__ = ["EXPERIMENT", "METHODS", "UNPGConfig", "run"]

METHODS: dict[str, tuple[str, str, bool]] = {
    "arcface": ("ArcFace", "arc", False),
    "arcface+unpg": ("ArcFace+UNPG", "arc", True),
    "arcface+mlpg": ("ArcFace+MLPG (k=inf)", "arc", True),
    "cosface": ("CosFace", "cos", False),
    "cosface+unpg": ("CosFace+UNPG", "cos", True),
}
"""Config key -> (display name, head, in-batch negatives). ``+unpg`` uses ``whisker``,
``+mlpg`` keeps every negative (k = inf)."""


@dataclass(frozen=True)
class UNPGConfig:
    """Config of the ``unpg`` reproduction (defaults: spec section 6).

    ``methods`` / ``noisy_methods``: comma lists of :data:`METHODS` keys trained on clean labels
    and with ``label_noise`` (0 skips the noisy runs); ``scales``: the ``s`` values (each a full
    set of runs); ``threads``: torch CPU threads for the run.
    """

    num_identities: int = 600
    num_train_identities: int = 500
    per_identity: int = 40
    sigma: float = 0.8
    noise: float = 0.1
    hidden: int = 256
    embedding: int = 128
    arc_margin: float = 0.5
    cos_margin: float = 0.35
    scales: tuple[float, ...] = (32.0,)
    whisker: float = 1.5
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    num_impostor: int = 20000
    methods: str = "arcface,arcface+unpg,arcface+mlpg,cosface,cosface+unpg"
    noisy_methods: str = "arcface,arcface+unpg,arcface+mlpg"
    label_noise: float = 0.05
    threads: int | None = 1
    data_root: str = ""  # a class-per-identity face folder: replaces the synthetic identities
    image_size: int = 32  # the crop of the real face images (flattened into the MLP)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("int", "float") and (
                isinstance(v, bool) or not isinstance(v, int | float)
            ):
                raise UserError(f"{f.name}: expected a number, got {v!r}")
        for name in ("num_train_identities", "hidden", "embedding", "epochs", "num_impostor"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name}: expected an integer >= 1, got {getattr(self, name)}")
        if self.num_train_identities >= self.num_identities - 1:
            raise UserError(
                f"num_train_identities: expected < num_identities - 1, got {self.num_train_identities}"
            )
        if self.per_identity < 2 or self.batch_size < 2:
            raise UserError("per_identity, batch_size: expected integers >= 2")
        if not (self.sigma > 0 and self.noise >= 0 and self.lr > 0):
            raise UserError("sigma, lr: expected > 0; noise: expected >= 0")
        if not 0 <= self.arc_margin < math.pi / 2 or not 0 <= self.cos_margin <= 2:
            raise UserError("arc_margin: expected [0, π/2); cos_margin: expected [0, 2]")
        if not self.scales or any(not s > 0 for s in self.scales):
            raise UserError(f"scales: expected positive values, got {self.scales!r}")
        if math.isnan(self.whisker) or self.whisker < 0:
            raise UserError(f"whisker: expected a value >= 0, got {self.whisker}")
        if not 0 <= self.label_noise < 1:
            raise UserError(f"label_noise: expected a value in [0, 1), got {self.label_noise}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"threads: expected an integer >= 1 or None, got {self.threads}")
        for key in (*self.method_list, *self.noisy_list):
            if key not in METHODS:
                raise UserError(f"methods: unknown {key!r}; known: {', '.join(METHODS)}")
        if not self.method_list:
            raise UserError("methods: expected at least one method")

    @property
    def method_list(self) -> list[str]:
        """The clean-label methods."""
        return [m.strip() for m in self.methods.split(",") if m.strip()]

    @property
    def noisy_list(self) -> list[str]:
        """The label-noise methods (empty when ``label_noise`` is 0)."""
        if self.label_noise == 0:
            return []
        return [m.strip() for m in self.noisy_methods.split(",") if m.strip()]


class _Embedder(nn.Module):
    """The trained pair: embedding network and the loss (which holds the class weights)."""

    def __init__(self, net: nn.Module, loss: UNPGLoss) -> None:
        super().__init__()
        self.net = net
        self.loss = loss


@torch.no_grad()
def _scores(net: nn.Module, test: SyntheticIdentities, pairs: tuple[Tensor, ...]) -> Tensor:
    """Cosine score of every verification pair ``(P,)`` (the network in eval mode)."""
    was = net.training
    net.eval()
    device = next(net.parameters()).device
    emb = F.normalize(net(test.x.to(device)), dim=1).cpu()
    net.train(was)
    a, b, _ = pairs
    return (emb[a] * emb[b]).sum(1)


def _evaluate(
    net: nn.Module, test: SyntheticIdentities, pairs: tuple[Tensor, ...]
) -> dict[str, float]:
    scores, same = _scores(net, test, pairs), pairs[2]
    tar = tar_at_far(scores, same, far=(0.0, 1e-3, 1e-2))
    return {
        "tar@1e-3": 100 * tar[1e-3],
        "tar@1e-2": 100 * tar[1e-2],
        "eer": 100 * eer(scores, same),
        "wdfs": 100 * tar[0.0],
    }


class _TestCurve(Callback):
    """Test TAR@1e-3 after every epoch (a diagnostic of over-fitting; never used to select)."""

    def __init__(self, test: SyntheticIdentities, pairs: tuple[Tensor, ...]) -> None:
        self.test, self.pairs = test, pairs
        self.values: list[float] = []

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        model = state.model
        assert isinstance(model, _Embedder)
        scores = _scores(model.net, self.test, self.pairs)
        self.values.append(100 * tar_at_far(scores, self.pairs[2], far=(1e-3,))[1e-3])


def _train_one(
    cfg: UNPGConfig,
    key: str,
    scale: float,
    train: SyntheticIdentities,
    test: SyntheticIdentities,
    pairs: tuple[Tensor, ...],
    seed: int,
    ctx: RunContext,
) -> tuple[dict[str, float], list[float]]:
    _, kind, ml = METHODS[key]
    seed_everything(seed)
    net = mlp([train.x.shape[1], cfg.hidden, cfg.embedding])
    head: MarginHead = (
        ArcFaceHead(cfg.embedding, cfg.num_train_identities, margin=cfg.arc_margin)
        if kind == "arc"
        else CosFaceHead(cfg.embedding, cfg.num_train_identities, margin=cfg.cos_margin)
    )
    whisker = math.inf if key.endswith("+mlpg") else cfg.whisker
    loss = UNPGLoss(head, scale=scale, whisker=whisker, use_ml_negatives=ml, validate=False)
    model = _Embedder(net, loss)
    loader = make_loader(train.x, train.y, batch_size=cfg.batch_size, shuffle=True, seed=seed)

    def step(m: nn.Module, batch: tuple[Tensor, Tensor], device: torch.device) -> dict[str, Tensor]:
        assert isinstance(m, _Embedder)
        x, y = batch[0].to(device), batch[1].to(device)
        return {"loss": m.loss(m.net(x), y)}

    curve = _TestCurve(test, pairs)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    fit(
        model,
        loader,
        opt,
        step_fn=step,
        epochs=cfg.epochs,
        device=ctx.device,
        callbacks=[curve],
        progress=False,
    )
    return _evaluate(net, test, pairs), curve.values


def _label(key: str, whisker: float, scale: float, noise: float) -> str:
    name = METHODS[key][0]
    if key.endswith("+unpg"):
        name += f" (k={whisker:g})"
    return f"{name} s={scale:g}" + (f" noise={noise:.0%}" if noise > 0 else "")


def _face_folder(config: UNPGConfig) -> tuple[UNPGConfig, IdentitySplit]:
    """The identities of ``config.data_root``: the config sized to them, and the split."""
    from dataclasses import replace

    from paperzoo.core.datasets import load_retrieval_set

    x, y, k = load_retrieval_set(
        "image-folder", config.data_root, image_size=config.image_size, class_split=True
    )
    mu, sd = x[y < k].mean(0), x[y < k].std(0).clamp_min(1e-6)
    x = (x - mu) / sd
    split = IdentitySplit(
        SyntheticIdentities(x[y < k], y[y < k]), SyntheticIdentities(x[y >= k], y[y >= k] - k)
    )
    return replace(config, num_identities=int(y.max()) + 1, num_train_identities=k), split


def run(config: UNPGConfig, ctx: RunContext) -> Result:
    """Every method per seed and scale, clean and noisy labels; rows over seeds; checks."""
    values: dict[tuple[str, str], list[float]] = {}
    curves: dict[str, list[list[float]]] = {}
    real = _face_folder(config) if config.data_root else None
    if real is not None:
        config = real[0]
    for seed in ctx.seeds:
        data = (
            real[1]
            if real is not None
            else synthetic_identities(
                config.num_identities,
                config.per_identity,
                config.num_train_identities,
                sigma=config.sigma,
                noise=config.noise,
                seed=seed,
            )
        )
        pairs = verification_pairs(data.test.y, config.num_impostor, seed=seed)
        noisy_y, _ = uniform_label_noise(
            data.train.y,
            config.num_train_identities,
            config.label_noise,
            generator=torch.Generator().manual_seed(seed + 7919),
        )
        noisy = SyntheticIdentities(data.train.x, noisy_y)
        for scale in config.scales:
            for noise, keys, train in (
                (0.0, config.method_list, data.train),
                (config.label_noise, config.noisy_list, noisy),
            ):
                for key in keys:
                    label = _label(key, config.whisker, scale, noise)
                    ctx.log.info("seed %d: %s", seed, label)
                    metrics, curve = _train_one(
                        config, key, scale, train, data.test, pairs, seed, ctx
                    )
                    for metric, v in metrics.items():
                        values.setdefault((label, metric), []).append(v)
                    curves.setdefault(label, []).append(curve)
    rows = [Row.from_values(m, k, v) for (m, k), v in values.items()]
    epochs = [float(e + 1) for e in range(config.epochs)]
    return Result(
        rows=rows,
        checks=_checks(rows, config),
        curves={
            "test_tar": Curve.from_seeds(
                "test TAR@FAR 1e-3 (%) after each epoch", "epoch", "TAR@1e-3 (%)", epochs, curves
            )
        },
        extra={
            "protocol": "open-set verification on unseen "
            + ("face identities (data_root)" if config.data_root else "synthetic identities")
        },
    )


def _paired(rows: list[Row], a: str, b: str, metric: str) -> tuple[float, float]:
    """Mean of ``a - b`` over seeds and its standard error (0 with one seed)."""
    d = [
        x - y
        for x, y in zip(
            find_row(rows, a, metric).values, find_row(rows, b, metric).values, strict=True
        )
    ]
    se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else 0.0
    return statistics.fmean(d), se


def _checks(rows: list[Row], cfg: UNPGConfig) -> list[Check]:
    checks: list[Check] = []
    s = cfg.scales[0]
    have = {r.method for r in rows}
    for noise in (0.0, cfg.label_noise) if cfg.label_noise > 0 else (0.0,):
        for head in ("arcface", "cosface"):
            base = _label(head, cfg.whisker, s, noise)
            unpg = _label(f"{head}+unpg", cfg.whisker, s, noise)
            if base in have and unpg in have:
                d, se = _paired(rows, unpg, base, "tar@1e-3")
                checks.append(
                    Check(
                        f"{unpg} TAR@1e-3 not below {base} by more than 2 SE of the paired "
                        "difference",
                        d >= -2 * se,
                        f"difference {d:+.2f} points, SE {se:.2f} "
                        f"({find_row(rows, unpg, 'tar@1e-3').mean:.1f} vs "
                        f"{find_row(rows, base, 'tar@1e-3').mean:.1f})",
                    )
                )
        base = _label("arcface", cfg.whisker, s, noise)
        mlpg = _label("arcface+mlpg", cfg.whisker, s, noise)
        if noise == 0.0 and base in have and mlpg in have:
            a, b = find_row(rows, mlpg, "tar@1e-3").mean, find_row(rows, base, "tar@1e-3").mean
            checks.append(Check(f"{mlpg} TAR@1e-3 mean above {base}", a > b, f"{a:.1f} vs {b:.1f}"))
    return checks


EXPERIMENT = Experiment(
    name="unpg",
    description="ArcFace/CosFace with and without UNPG on synthetic identities: TAR@FAR, EER",
    config_cls=UNPGConfig,
    run=run,
    budgets={
        "smoke": {
            "num_identities": 40,
            "num_train_identities": 30,
            "per_identity": 6,
            "hidden": 32,
            "embedding": 16,
            "epochs": 1,
            "batch_size": 32,
            "num_impostor": 200,
            "methods": "arcface,arcface+unpg",
            "noisy_methods": "arcface+unpg",
        },
        # 5 epochs, not 30: 24 runs must fit ~5 min on 2 cores (README: what is scaled down)
        "quick": {"epochs": 5},
        "full": {"scales": (32.0, 64.0)},
    },
    seeds={"smoke": 1, "quick": 3, "full": 3},
)
