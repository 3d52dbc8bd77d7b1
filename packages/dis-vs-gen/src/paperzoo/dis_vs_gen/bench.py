"""Benchmark (spec section 7): fitting the heads on frozen features, against scikit-learn.

Cases (each a same-run race, ratios = peer median / ours):

* NB fit: :class:`GaussianNBHead` (pooled, one streaming pass) vs scikit-learn ``GaussianNB.fit``
  (per-class variances) vs ``LinearDiscriminantAnalysis.fit`` (full shared covariance), over
  ``m``, ``n`` and ``K``; the agreement of the predicted labels is logged.
* LR fit at a CIFAR-10-probe size (``m = 5e4, n = 512, K = 10``; ``m = 2000, n = 128`` with
  ``--quick``): :class:`LogisticHead` (L-BFGS, float64) vs scikit-learn
  ``LogisticRegression(lbfgs, max_iter=1000)``; plus NB on the same features; the label agreement
  of the two LR fits is in the case name.
* Inference: ``GaussianNBHead.as_linear()`` vs ``GaussianNBHead.forward`` (the expanded square).

scikit-learn is a ``bench`` dependency; without it only our rows are timed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.dis_vs_gen.logistic import LogisticHead
from paperzoo.dis_vs_gen.naive_bayes import GaussianNBHead

__all__ = ["BENCHMARK", "run_bench"]


def _features(m: int, n: int, k: int, seed: int = 0, spread: float = 1.0) -> tuple[Tensor, Tensor]:
    """Frozen-feature stand-ins: Gaussian class means (scale ``spread``), unit noise, float32."""
    g = torch.Generator().manual_seed(seed)
    means = spread * torch.randn(k, n, generator=g)
    y = torch.arange(m) % k
    x = means[y] + torch.randn(m, n, generator=g)
    return x, y


def _sklearn() -> object | None:
    try:
        import sklearn  # noqa: F401
    except ImportError:  # pragma: no cover - bench group not installed
        return None
    return True


def _nb_case(m: int, n: int, k: int, dev: torch.device, have_sk: bool, rt: float) -> list[BenchRow]:
    """One NB-fit race; logs the label agreement with scikit-learn's GaussianNB."""
    x, y = _features(m, n, k)
    xd, yd = x.to(dev), y.to(dev)

    def ours() -> object:
        return GaussianNBHead(n, k, dtype=torch.float32).to(dev).fit(xd, yd, validate=False)

    impls: dict[str, Callable[[], object]] = {"GaussianNBHead.fit (ours)": ours}
    note = ""
    if have_sk:
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
        from sklearn.naive_bayes import GaussianNB

        xn, yn = x.numpy(), y.numpy()

        def sk_nb() -> object:
            return GaussianNB().fit(xn, yn)

        def sk_lda() -> object:
            return LinearDiscriminantAnalysis().fit(xn, yn)

        impls["sklearn GaussianNB.fit (peer)"] = sk_nb
        if n <= 512:
            impls["sklearn LinearDiscriminantAnalysis.fit (peer)"] = sk_lda
        pred = GaussianNBHead(n, k, dtype=torch.float32).fit(x, y).predict(x[:5000])
        sk_pred = torch.from_numpy(GaussianNB().fit(xn, yn).predict(xn[:5000]))
        agree = float((pred == sk_pred).float().mean())
        note = f" (labels agree with sklearn GaussianNB on {agree:.4f} of 5000 rows)"
    return compare(
        f"NB fit, m={m}, n={n}, K={k}{note}",
        impls,
        ours="GaussianNBHead.fit (ours)",
        device=dev,
        min_run_time=rt,
        rounds=3,
        memory=m * n <= 5_000_000,
    )


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """NB fit vs scikit-learn over sizes; LR fit at a CIFAR-10 probe size; NB inference."""
    have_sk = _sklearn() is not None
    rt = 0.3 if ctx.quick else 1.0
    rows: list[BenchRow] = []
    dev = ctx.device
    nb_cases = [(10_000, 64, 10), (50_000, 512, 10), (20_000, 256, 1000)]
    if not ctx.quick:
        nb_cases += [(1_000_000, 64, 2), (20_000, 4096, 10)]
    for m, n, k in nb_cases:
        rows += _nb_case(m, n, k, dev, have_sk, rt)

    # LR at a CIFAR-10 probe size (m = 5e4, n = 512, K = 10): one fit per round
    m, n, k = (2_000, 128, 10) if ctx.quick else (50_000, 512, 10)
    x, y = _features(m, n, k, seed=1, spread=0.1)
    xd, yd = x.double().to(dev), y.to(dev)
    fitted: dict[str, Callable[[Tensor], Tensor]] = {}

    def ours_lr() -> object:
        head = LogisticHead(n, k).to(dev).fit(xd, yd, validate=False)
        fitted["ours"] = head.predict
        return head

    def ours_nb() -> object:
        return GaussianNBHead(n, k).to(dev).fit(xd, yd, validate=False)

    impls = {
        "LogisticHead.fit (ours)": ours_lr,
        "GaussianNBHead.fit (ours, NB on the same features)": ours_nb,
    }
    if have_sk:
        from sklearn.linear_model import LogisticRegression

        xn, yn = x.double().numpy(), y.numpy()

        def sk_lr() -> object:
            sk = LogisticRegression(max_iter=1000).fit(xn, yn)
            fitted["sklearn"] = lambda t: torch.from_numpy(sk.predict(t.cpu().numpy()))
            return sk

        impls["sklearn LogisticRegression(lbfgs, max_iter=1000) (peer)"] = sk_lr
    lr_rows = compare(
        f"LR fit (C=1), m={m}, n={n}, K={k}",
        impls,
        ours="LogisticHead.fit (ours)",
        device=dev,
        min_run_time=rt,
        rounds=1,
        memory=False,
    )
    if "sklearn" in fitted:  # the last fits of the race: do they agree?
        agree = float((fitted["ours"](xd).cpu() == fitted["sklearn"](xd)).float().mean())
        case = f"{lr_rows[0].case} (labels agree with sklearn on {agree:.4f})"
        lr_rows = [dataclasses.replace(r, case=case) for r in lr_rows]
    rows += lr_rows

    # inference: the linear form vs the expanded square
    x, y = _features(20_000, 512, 100)
    head = GaussianNBHead(512, 100, dtype=torch.float32).to(dev).fit(x.to(dev), y.to(dev))
    lin = head.as_linear()
    xq = x[:4096].to(dev)
    rows += compare(
        "NB inference, B=4096, n=512, K=100",
        {
            "as_linear() (ours)": lambda: lin(xq),
            "GaussianNBHead.forward (ours, quadratic form)": lambda: head(xq, validate=False),
        },
        ours="as_linear() (ours)",
        device=dev,
        min_run_time=rt,
    )
    return rows


BENCHMARK = Benchmark(
    name="dis-vs-gen",
    description="NB and LR head fits vs scikit-learn GaussianNB / LDA / LogisticRegression",
    run=run_bench,
)
