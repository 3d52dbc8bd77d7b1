"""The small reproduction (spec section 6): a one-class "anti-spoofing" analogue on sklearn digits.

Bona fide = real 8x8 digit images; attacks, never seen in training, are deterministic transforms
of held-out real images (0-16 pixel scale): **print** (2x2 box blur, contrast x0.6 about the image
mean, additive N(0, 1)), **replay** (additive moire sinusoid of amplitude 3 with a random frequency
and phase, then gamma 0.7) and **partial** (a 3x3 patch replaced by the inverted patch of another
image). The encoder is fixed, standardised PCA-32 of the pixels fitted on the training reals
(standing in for the mostly frozen VGG-Face encoder). Train on 70 % reals only; 10 % reals for
validation (threshold = 95th percentile of their spoof scores, BPCER 5 %: a true one-class
protocol); test = 20 % reals + as many attacks of each type.

Methods: Hyp-OC (``pc_weight``), Hyp-OC without Hyp-PC, Hyp-OC at the official weight 1, its
Euclidean twin with and without PC, Hyp-OC with the official quirks (two-batch mean with epoch
reset, atan Hyp-PC, Möbius eps 1e-5), and a one-class SVM (RBF, nu = 0.1) on the same features.
Rows: AUC, EER and HTER per attack, and the spread of the real test points in the ball.

At paper scale, ``--set data_root=DIR`` reads face images from an anti-spoofing folder instead
(``paperzoo.core.datasets``' ``image-folder``: ``DIR/train/real/<image>`` for the bona fide
training faces, other folders under ``DIR/train`` ignored; ``DIR/test/real/<image>`` and one folder
per attack type ``DIR/test/<attack>/<image>``; frames extracted from the videos of OULU-NPU,
CASIA-MFSD, Replay-Attack, ...), resized and center-cropped to ``image_size``; one in eight
training faces is held out for the threshold; the attack rows are named after the folders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import UserError, check_positive, check_positive_int
from paperzoo.core.data import load_dataset, make_loader
from paperzoo.core.devices import seed_everything
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.training import fit
from paperzoo.hyp_oc.metrics import eer, hter, roc_auc
from paperzoo.hyp_oc.model import HypOC, SamplerEpochCallback

__all__ = ["ATTACKS", "EXPERIMENT", "METHODS", "HypOCConfig", "make_attacks", "pca_encoder", "run"]

ATTACKS = ("print", "replay", "partial")
"""The attack types of the digits analogue."""

METHODS = ("hyp", "hyp_nopc", "hyp_pc1", "euc", "euc_nopc", "hyp_official", "ocsvm")
"""Method keys for ``--set methods=...`` (comma list) or ``all``."""


@dataclass(frozen=True)
class HypOCConfig:
    """Config of the ``hyp-oc`` reproduction (spec section 6 defaults).

    ``pc_weight``: the Hyp-PC weight of the main Hyp-OC row and of the Euclidean twin;
    ``std``: pseudo-negative sigma (standardised-PCA units); ``methods``: a comma list of
    :data:`METHODS` or ``all``; ``threads``: torch CPU threads for the run.
    """

    pca_dim: int = 32
    hidden: tuple[int, ...] = (256, 128)
    ball_dim: int = 64
    c: float = 0.1
    clip_r: float = 2.0
    alpha: float = 0.8
    std: float = 1.0
    pc_weight: float = 0.1
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-6
    grad_clip: float = 3.0
    nu: float = 0.1
    bpcer_target: float = 0.05
    methods: str = "all"
    threads: int | None = 1
    data_root: str = ""  # an anti-spoofing image folder: replaces the digits analogue
    image_size: int = 32  # the crop of the real face images

    def __post_init__(self) -> None:
        try:
            for name in ("pca_dim", "ball_dim", "epochs"):
                check_positive_int(name, getattr(self, name))
            check_positive_int("batch_size", self.batch_size, minimum=2)
            if self.batch_size % 2:
                raise ValueError(f"batch_size: expected an even number, got {self.batch_size}")
            for i, w in enumerate(self.hidden):
                check_positive_int(f"hidden[{i}]", w)
            for name in ("c", "clip_r", "std", "lr", "grad_clip"):
                check_positive(name, getattr(self, name))
            check_positive("pc_weight", self.pc_weight, allow_zero=True)
            check_positive("weight_decay", self.weight_decay, allow_zero=True)
            if not 0.0 <= self.alpha < 1.0:
                raise ValueError(f"alpha: expected a value in [0, 1), got {self.alpha}")
            if not 0.0 < self.nu <= 1.0:
                raise ValueError(f"nu: expected a value in (0, 1], got {self.nu}")
            if not 0.0 < self.bpcer_target < 1.0:
                raise ValueError(f"bpcer_target: expected (0, 1), got {self.bpcer_target}")
            self.method_keys()
        except (TypeError, ValueError) as err:
            raise UserError(str(err)) from None

    def method_keys(self) -> list[str]:
        """The methods to run, in :data:`METHODS` order."""
        if self.methods == "all":
            return list(METHODS)
        keys = [m.strip() for m in self.methods.split(",") if m.strip()]
        bad = [k for k in keys if k not in METHODS]
        if not keys or bad:
            raise ValueError(f"methods: expected 'all' or a comma list of {METHODS}, got {bad}")
        return [m for m in METHODS if m in keys]


_LABELS = {
    "hyp": "Hyp-OC (PC {w})",
    "hyp_nopc": "Hyp-OC, no Hyp-PC",
    "hyp_pc1": "Hyp-OC, Hyp-PC weight 1 (official)",
    "euc": "Euclidean twin (PC {w})",
    "euc_nopc": "Euclidean twin, no PC",
    "hyp_official": "Hyp-OC, official quirks (PC {w})",
    "ocsvm": "OC-SVM (RBF)",
}


def make_attacks(x: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
    """The three attacks of real images ``x`` ``(N, 64)`` on the 0-16 scale -> ``(N, 64)`` each."""
    n = x.shape[0]
    img = x.view(n, 1, 8, 8)
    # print: 2x2 box blur (replicate-padded), contrast x0.6 about the image mean, N(0, 1) noise
    blur = F.avg_pool2d(F.pad(img, (0, 1, 0, 1), mode="replicate"), 2, stride=1)
    mean = blur.mean((2, 3), keepdim=True)
    printed = mean + 0.6 * (blur - mean) + torch.randn(img.shape, generator=generator)
    # replay: moire sinusoid (amplitude 3, random frequency/orientation/phase), then gamma 0.7
    ii, jj = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    fx, fy = (torch.rand(n, 1, 1, 1, generator=generator) * 0.4 + 0.1 for _ in range(2))
    phase = torch.rand(n, 1, 1, 1, generator=generator) * 2 * math.pi
    moire = 3 * torch.sin(2 * math.pi * (fx * ii + fy * jj) + phase)
    replay = 16 * ((img + moire).clamp(0, 16) / 16).pow(0.7)
    # partial: a 3x3 patch replaced by the inverted patch of another image
    other = img[torch.roll(torch.arange(n), 1)]
    r = torch.randint(0, 6, (n,), generator=generator)
    c = torch.randint(0, 6, (n,), generator=generator)
    rows = (ii.view(1, 1, 8, 8) >= r.view(n, 1, 1, 1)) & (ii < r.view(n, 1, 1, 1) + 3)
    cols = (jj.view(1, 1, 8, 8) >= c.view(n, 1, 1, 1)) & (jj < c.view(n, 1, 1, 1) + 3)
    partial = torch.where(rows & cols, 16 - other, img)
    return {
        "print": printed.clamp(0, 16).view(n, 64),
        "replay": replay.view(n, 64),
        "partial": partial.view(n, 64),
    }


def pca_encoder(x_fit: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Standardised PCA fitted on ``x_fit`` ``(N, D)``: ``(mean (D,), components (D, k),
    scale (k,))``; encode with ``((x - mean) @ components) / scale``."""
    mean = x_fit.mean(0)
    _, s, vh = torch.linalg.svd(x_fit - mean, full_matrices=False)
    comps = vh[:k].mT
    scale = (s[:k] / math.sqrt(max(x_fit.shape[0] - 1, 1))).clamp_min(1e-8)
    return mean, comps, scale


def _model(cfg: HypOCConfig, key: str, seed: int) -> HypOC:
    geometry = "euclidean" if key.startswith("euc") else "hyperbolic"
    pc = {"hyp_nopc": 0.0, "euc_nopc": 0.0, "hyp_pc1": 1.0}.get(key, cfg.pc_weight)
    official = key == "hyp_official"
    return HypOC(
        cfg.pca_dim,
        hidden=cfg.hidden,
        ball_dim=cfg.ball_dim,
        c=cfg.c,
        clip_r=cfg.clip_r,
        alpha=cfg.alpha,
        std=cfg.std,
        pc_weight=pc,
        geometry=geometry,  # type: ignore[arg-type]
        mean_mode="official" if official else "ema",
        pc_distance="official_atan" if official else "artanh",
        mobius_eps=1e-5 if official else 0.0,
        generator=torch.Generator().manual_seed(seed + 7),
        validate=False,
    )


def _face_folder(cfg: HypOCConfig, seed: int) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
    """Bona fide train / validation / test faces and the test faces of each attack folder."""
    from paperzoo.core.datasets import load_real_dataset, load_real_split

    classes = {
        s: load_real_dataset(
            "image-folder", cfg.data_root, split=s, image_size=cfg.image_size, augment=False
        ).classes
        for s in ("train", "test")
    }
    for s, names in classes.items():
        if "real" not in names or (s == "test" and len(names) < 2):
            raise UserError(
                f"data_root: expected {cfg.data_root}/{s}/real/<image>"
                + (" and one folder per attack type beside it" if s == "test" else "")
                + f", found the folders {list(names)}"
            )
    split = load_real_split(
        "image-folder", cfg.data_root, seed=seed, val_fraction=0.125, image_size=cfg.image_size
    )
    real_tr, real_te = classes["train"].index("real"), classes["test"].index("real")
    attacks = {
        name: split.x_test[split.y_test == k]
        for k, name in enumerate(classes["test"])
        if name != "real"
    }
    return (
        split.x_train[split.y_train == real_tr],
        split.x_val[split.y_val == real_tr],
        split.x_test[split.y_test == real_te],
        attacks,
    )


def _evaluate(
    cfg: HypOCConfig, scores: dict[str, Tensor], attacks: tuple[str, ...] = ATTACKS
) -> dict[str, float]:
    """AUC / EER / HTER per attack from ``scores`` (``val``, ``real``, one per attack)."""
    thr = float(torch.quantile(scores["val"].double(), 1 - cfg.bpcer_target))
    out: dict[str, float] = {}
    for atk in attacks:
        s = torch.cat([scores["real"], scores[atk]]).double()
        y = torch.cat([torch.zeros(len(scores["real"])), torch.ones(len(scores[atk]))]).long()
        out[f"auc_{atk}"] = roc_auc(s, y)
        out[f"eer_{atk}"] = eer(s, y)[0]
        out[f"hter_{atk}"] = hter(s, y, thr)
    return out


def run(config: HypOCConfig, ctx: RunContext) -> Result:
    """Every method per seed; rows over seeds; checks from the rows."""
    keys = config.method_keys()
    values: dict[tuple[str, str], list[float]] = {}
    losses: dict[str, list[list[float]]] = {}

    def add(method: str, metric: str, v: float) -> None:
        values.setdefault((method, metric), []).append(float(v))

    n_test = 0
    names: tuple[str, ...] = ATTACKS
    for seed in ctx.seeds:
        if config.data_root:
            x_tr, x_va, x_te, attacks = _face_folder(config, seed)
            names = tuple(attacks)
        else:
            split = load_dataset("digits", seed=seed, val_fraction=0.1, test_fraction=0.2)
            x_tr, x_va, x_te = (16 * t for t in (split.x_train, split.x_val, split.x_test))
            g = torch.Generator().manual_seed(seed + 1000)
            attacks = make_attacks(x_te, g)
        mean, comps, scale = pca_encoder(x_tr, config.pca_dim)

        def enc(x: Tensor, m: Tensor = mean, p: Tensor = comps, s: Tensor = scale) -> Tensor:
            return ((x - m) @ p) / s

        feats = {"train": enc(x_tr), "val": enc(x_va), "real": enc(x_te)}
        feats.update({a: enc(v) for a, v in attacks.items()})
        n_test = int(x_te.shape[0])
        for key in keys:
            label = _LABELS[key].format(w=f"{config.pc_weight:g}")
            if key == "ocsvm":
                from sklearn.svm import OneClassSVM

                svm = OneClassSVM(kernel="rbf", nu=config.nu, gamma="scale")
                svm.fit(feats["train"].double().numpy())
                scores = {
                    k: -torch.from_numpy(svm.decision_function(v.double().numpy()))
                    for k, v in feats.items()
                    if k != "train"
                }
            else:
                seed_everything(seed)
                model = _model(config, key, seed)
                loader = make_loader(
                    feats["train"],
                    torch.zeros(feats["train"].shape[0], dtype=torch.long),
                    batch_size=config.batch_size,
                    shuffle=True,
                    seed=seed,
                    drop_last=True,
                )
                opt = torch.optim.Adam(
                    model.parameters(), lr=config.lr, weight_decay=config.weight_decay
                )
                res = fit(
                    model,
                    loader,
                    opt,
                    step_fn=HypOC.fit_step,
                    epochs=config.epochs,
                    device=ctx.device,
                    callbacks=[SamplerEpochCallback(model.sampler)],
                    grad_clip=config.grad_clip,
                    progress=False,
                )
                losses.setdefault(label, []).append([h["train_loss"] for h in res.history])
                model.eval()
                scores = {
                    k: model.score(v.to(ctx.device)).cpu() for k, v in feats.items() if k != "train"
                }
                with torch.no_grad():
                    z = model.embed(feats["real"].to(ctx.device))
                add(label, "real_point_std", float(z.std(0).mean()))
            for metric, v in _evaluate(config, scores, names).items():
                add(label, metric, v)
    rows = [Row.from_values(m, k, v) for (m, k), v in values.items()]
    curves = {}
    if losses:
        curves["train_loss"] = Curve.from_seeds(
            "training loss (Hyp-CE + w Hyp-PC)",
            "epoch",
            "loss",
            list(range(1, config.epochs + 1)),
            losses,
        )
    return Result(
        rows=rows,
        checks=_checks(rows, config, keys, names),
        curves=curves,
        extra={"n_test_real": n_test, "attacks": list(names)},
    )


def _checks(
    rows: list[Row], cfg: HypOCConfig, keys: list[str], attacks: tuple[str, ...] = ATTACKS
) -> list[Check]:
    w = f"PC {cfg.pc_weight:g}"
    checks: list[Check] = []
    if "hyp" in keys:
        hyp = f"Hyp-OC ({w})"
        auc = {a: find_row(rows, hyp, f"auc_{a}") for a in attacks}
        if "print" in auc and "replay" in auc:
            checks.append(
                Check(
                    f"{hyp}: mean AUC > 0.80 on print and replay",
                    auc["print"].mean > 0.80 and auc["replay"].mean > 0.80,
                    ", ".join(f"{a} {auc[a].mean:.3f}" for a in ("print", "replay")),
                )
            )
        checks.append(
            Check(
                f"{hyp}: well above chance (mean AUC > 0.70) on every attack",
                all(r.mean > 0.70 for r in auc.values()),
                ", ".join(f"{a} {r.mean:.3f}" for a, r in auc.items()),
            )
        )
        spread = find_row(rows, hyp, "real_point_std")
        checks.append(
            Check(
                f"{hyp}: real ball points do not collapse (mean per-dim std > 1e-3)",
                spread.mean > 1e-3,
                f"{spread.mean:.4g} (per seed {[round(v, 4) for v in spread.values]})",
            )
        )
    for hk, ek, tag in (("hyp", "euc", w), ("hyp_nopc", "euc_nopc", "no PC")):
        if hk in keys and ek in keys:
            h_lab = _LABELS[hk].format(w=f"{cfg.pc_weight:g}")
            e_lab = _LABELS[ek].format(w=f"{cfg.pc_weight:g}")
            diffs = {
                a: find_row(rows, h_lab, f"auc_{a}").mean - find_row(rows, e_lab, f"auc_{a}").mean
                for a in attacks
            }
            checks.append(
                Check(
                    f"hyperbolic AUC >= Euclidean twin - 0.05 on every attack ({tag})",
                    all(d >= -0.05 for d in diffs.values()),
                    ", ".join(f"{a} {d:+.3f}" for a, d in diffs.items()),
                )
            )
    return checks


EXPERIMENT = Experiment(
    name="hyp-oc",
    description="Hyp-OC vs its Euclidean twin and an OC-SVM, one-class digits anti-spoofing analogue",
    config_cls=HypOCConfig,
    run=run,
    budgets={
        "smoke": {"epochs": 1, "hidden": (32,), "ball_dim": 8, "methods": "hyp,euc,ocsvm"},
        "quick": {},
        "full": {},
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
