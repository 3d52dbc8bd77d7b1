"""SemEval-2018 Task 1 E-c data: the file reader and an offline synthetic corpus of the same shape.

File format (the official ``2018-E-c-{En,Ar,Es}-{train,dev,test-gold}.txt``): one tweet per line,
13 tab-separated columns ``ID, Tweet, anger, anticipation, disgust, fear, joy, love, optimism,
pessimism, sadness, surprise, trust``, with a header line (some copies ship without it). The
unlabelled test file holds ``NONE`` in every label column. Tweets keep their literal ``\\n``
escapes (the two characters backslash and n) unless ``newline`` asks to replace them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import torch
from torch import Tensor

from paperzoo.core.checks import UserError, check_choice, check_positive_int, check_unit_interval

__all__ = [
    "LABEL_NAMES",
    "SYNTHETIC_PRIORS",
    "EmotionDataset",
    "load_semeval_ec",
    "make_synthetic_emotion_corpus",
]

LABEL_NAMES: Final[tuple[str, ...]] = (
    "anger",
    "anticipation",
    "disgust",
    "fear",
    "joy",
    "love",
    "optimism",
    "pessimism",
    "sadness",
    "surprise",
    "trust",
)
"""The 11 E-c emotions in the files' column order."""

_LANG = {"ar": "Ar", "en": "En", "es": "Es"}
_SPLITS = {"train": "train", "dev": "dev", "test": "test-gold"}


@dataclass(frozen=True)
class EmotionDataset:
    """Tweets with their multi-label emotions.

    Attributes:
        ids: ``N`` tweet IDs.
        texts: ``N`` tweets.
        labels: ``(N, K)`` float32 0/1, or ``None`` for an unlabelled (``NONE``) file.
        label_names: the ``K`` emotion names in column order.
    """

    ids: list[str]
    texts: list[str]
    labels: Tensor | None
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)


def _resolve(path: str | Path, language: str, split: str | None) -> Path:
    p = Path(path)
    if p.is_dir():
        if split is None:
            raise UserError(
                f"split: expected one of {list(_SPLITS)} when path is a folder, got None"
            )
        check_choice("split", split, list(_SPLITS))
        p = p / f"2018-E-c-{_LANG[language]}-{_SPLITS[split]}.txt"
    if not p.is_file():
        raise FileNotFoundError(f"path: no SemEval E-c file at {p}")
    return p


def load_semeval_ec(
    path: str | Path,
    language: Literal["ar", "en", "es"] = "ar",
    *,
    split: Literal["train", "dev", "test"] | None = None,
    has_header: bool | Literal["auto"] = "auto",
    newline: str | None = None,
) -> EmotionDataset:
    """Read a SemEval-2018 Task 1 E-c file (13 tab-separated columns).

    Args:
        path: the file, or a folder holding ``2018-E-c-{Ar,En,Es}-{train,dev,test-gold}.txt``
            (then ``split`` picks the file).
        language: ``"ar"`` (default), ``"en"`` or ``"es"``: the file name's language (the format
            is the same for all three).
        split: ``"train"``, ``"dev"`` or ``"test"`` when ``path`` is a folder.
        has_header: ``"auto"`` (default: a first line whose first column is ``ID`` is a header),
            ``True`` or ``False``.
        newline: replace the literal two-character escape ``\\n`` in tweets by this string
            (``None``, default: keep it, as the official files have it).

    Returns:
        :class:`EmotionDataset`; ``labels`` ``(N, 11)`` float32, or ``None`` when every label
        column is ``NONE``.

    Raises:
        FileNotFoundError: no such file. ValueError: non-UTF-8 bytes, a line without 13 columns,
            a label other than 0/1/NONE, a file mixing labelled and NONE rows, duplicate IDs, an
            empty file (each naming the line).
    """
    check_choice("language", language, list(_LANG))
    if has_header != "auto" and not isinstance(has_header, bool):
        raise TypeError(f"has_header: expected True, False or 'auto', got {has_header!r}")
    file = _resolve(path, language, split)
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        lineno = raw[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{file}: line {lineno}: expected UTF-8 text, got byte {raw[err.start]:#04x}"
        ) from None
    lines = text.splitlines()
    first = 0
    if lines and (has_header is True or (has_header == "auto" and lines[0].split("\t")[0] == "ID")):
        first = 1
    ids: list[str] = []
    texts: list[str] = []
    rows: list[list[float]] = []
    seen: dict[str, int] = {}
    n_none = 0
    k = len(LABEL_NAMES)
    for i, line in enumerate(lines[first:], start=first + 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != k + 2:
            raise ValueError(
                f"{file}: line {i}: expected {k + 2} tab-separated columns, got {len(cols)}"
            )
        tid, tweet, labs = cols[0], cols[1], cols[2:]
        if tid in seen:
            raise ValueError(f"{file}: line {i}: duplicate ID {tid!r} (first on line {seen[tid]})")
        seen[tid] = i
        if all(v.strip() == "NONE" for v in labs):
            n_none += 1
            rows.append([])
        else:
            bad = [v for v in labs if v.strip() not in ("0", "1")]
            if bad:
                raise ValueError(f"{file}: line {i}: expected labels 0, 1 or NONE, got {bad[0]!r}")
            rows.append([float(v) for v in labs])
        ids.append(tid)
        texts.append(tweet if newline is None else tweet.replace("\\n", newline))
    if not ids:
        raise ValueError(f"{file}: expected at least one tweet, got none")
    if 0 < n_none < len(ids):
        raise ValueError(
            f"{file}: expected all rows labelled or all NONE, got {n_none} NONE rows of {len(ids)}"
        )
    labels = None if n_none else torch.tensor(rows, dtype=torch.float32)
    return EmotionDataset(ids, texts, labels, LABEL_NAMES)


SYNTHETIC_PRIORS: Final[tuple[float, ...]] = (
    0.35, 0.09, 0.18, 0.16, 0.26, 0.21, 0.26, 0.22, 0.29, 0.02, 0.03,
)  # fmt: skip
"""SemEval-like label priors of :func:`make_synthetic_emotion_corpus` (surprise, trust rarest)."""

_BLOCKS: Final[tuple[tuple[str, ...], ...]] = (
    ("joy", "love", "optimism"),
    ("anger", "disgust"),
    ("sadness", "pessimism"),
)


def make_synthetic_emotion_corpus(
    n: int,
    vocab_size: int = 300,
    label_priors: tuple[float, ...] = SYNTHETIC_PRIORS,
    co_occurrence: float = 0.7,
    seq_len: int = 24,
    seed: int = 0,
    *,
    keyword_rate: float = 0.3,
    keywords_per_label: int = 12,
) -> EmotionDataset:
    """An offline imbalanced, correlated multi-label "tweet" corpus (spec section 6).

    Labels: a Gaussian copula. ``u ~ N(0, Sigma)`` with correlation ``co_occurrence`` inside the
    blocks joy-love-optimism, anger-disgust, sadness-pessimism (0 elsewhere), and label k on when
    ``u_k > Phi^{-1}(1 - prior_k)``: each label keeps its prior, labels of a block co-occur.
    Tokens: each of the ``seq_len`` positions is, with probability ``keyword_rate`` (when the
    tweet has a label), a keyword of one of its labels (label k owns words
    ``[k * keywords_per_label, (k + 1) * keywords_per_label)``), otherwise a noise word drawn
    uniformly from the whole vocabulary. Words are ``"w<index>"``.

    Args:
        n: number of tweets.
        vocab_size: words (must exceed ``K * keywords_per_label``).
        label_priors: the ``K`` marginal label probabilities, each in ``(0, 1)``.
        co_occurrence: within-block latent correlation in ``[0, 1)``.
        seq_len: words per tweet.
        seed: the generator seed (same seed, same corpus).
        keyword_rate: probability that a position emits a keyword of the tweet's labels.
        keywords_per_label: keywords owned by each label.

    Returns:
        :class:`EmotionDataset` with ids ``"syn-<i>"`` and ``(n, K)`` float32 labels (label
        names from :data:`LABEL_NAMES` when ``K = 11``, else ``"label<k>"``).

    Raises:
        ValueError: a non-positive size, priors outside ``(0, 1)``, ``co_occurrence`` outside
            ``[0, 1)``, a vocabulary too small for the keywords.
    """
    n = check_positive_int("n", n)
    vocab_size = check_positive_int("vocab_size", vocab_size)
    seq_len = check_positive_int("seq_len", seq_len)
    kpl = check_positive_int("keywords_per_label", keywords_per_label)
    rate = check_unit_interval("keyword_rate", keyword_rate)
    rho = check_unit_interval("co_occurrence", co_occurrence)
    if rho >= 1.0:
        raise ValueError(f"co_occurrence: expected a value in [0, 1), got {co_occurrence!r}")
    priors = torch.tensor([float(v) for v in label_priors], dtype=torch.float64)
    if priors.numel() == 0 or not bool(((priors > 0) & (priors < 1)).all()):
        raise ValueError(f"label_priors: expected values in (0, 1), got {label_priors!r}")
    k = priors.numel()
    if vocab_size <= k * kpl:
        raise ValueError(
            f"vocab_size: expected more than {k * kpl} words ({k} labels x {kpl} keywords), "
            f"got {vocab_size}"
        )
    names = LABEL_NAMES if k == len(LABEL_NAMES) else tuple(f"label{i}" for i in range(k))
    sigma = torch.eye(k, dtype=torch.float64)
    if k == len(LABEL_NAMES):
        for block in _BLOCKS:
            idx = [LABEL_NAMES.index(b) for b in block]
            for a in idx:
                for b in idx:
                    if a != b:
                        sigma[a, b] = rho
    g = torch.Generator().manual_seed(seed)
    chol = torch.linalg.cholesky(sigma)
    u = torch.randn(n, k, generator=g, dtype=torch.float64) @ chol.T
    thresholds = torch.special.ndtri(1.0 - priors)
    labels = (u > thresholds).to(torch.float32)
    # each position: a keyword of one of the tweet's labels (uniform over its labels) or noise
    has = labels.sum(dim=1, keepdim=True) > 0
    label_probs = torch.where(has, labels, torch.ones_like(labels))
    pick = torch.multinomial(label_probs.repeat_interleave(seq_len, 0), 1, generator=g)
    pick = pick.view(n, seq_len)
    kw = pick * kpl + torch.randint(0, kpl, (n, seq_len), generator=g)
    noise = torch.randint(0, vocab_size, (n, seq_len), generator=g)
    use_kw = (torch.rand(n, seq_len, generator=g) < rate) & has
    words = torch.where(use_kw, kw, noise)
    texts = [" ".join(f"w{i}" for i in row) for row in words.tolist()]
    ids = [f"syn-{i}" for i in range(n)]
    return EmotionDataset(ids, texts, labels, names)
