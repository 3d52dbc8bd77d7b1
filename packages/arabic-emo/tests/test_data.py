"""The SemEval-2018 E-c reader on a tiny fixture, its bad input, and the synthetic corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from paperzoo.arabic_emo import (
    LABEL_NAMES,
    SYNTHETIC_PRIORS,
    load_semeval_ec,
    make_synthetic_emotion_corpus,
)
from paperzoo.core.checks import UserError

FIXTURES = Path(__file__).parent / "fixtures"
TRAIN = FIXTURES / "2018-E-c-Ar-train.txt"
HEADER = TRAIN.read_text(encoding="utf-8").splitlines()[0]
ROW = "2018-Ar-1\tنص\t" + "\t".join("0" * 11)


def test_fixture_reads_ids_texts_label_order_and_dtype() -> None:
    ds = load_semeval_ec(TRAIN)
    assert ds.ids == ["2018-Ar-01964", "2018-Ar-04795", "2018-Ar-00105"]
    assert (
        ds.label_names == LABEL_NAMES and LABEL_NAMES[0] == "anger" and LABEL_NAMES[-1] == "trust"
    )
    assert ds.labels is not None and ds.labels.dtype == torch.float32
    assert ds.labels.shape == (3, 11)
    on = [[LABEL_NAMES[k] for k in torch.nonzero(r).flatten().tolist()] for r in ds.labels]
    assert on == [
        ["anger", "disgust", "pessimism", "sadness"],
        ["joy", "love", "optimism"],
        ["surprise"],
    ]
    assert "❤️😍" in ds.texts[1] and ds.texts[0].startswith("إلى متى")
    assert "\\n" in ds.texts[0] and "\n" not in ds.texts[0]  # the literal escape is kept
    assert len(ds) == 3


def test_newline_option_replaces_the_literal_escape() -> None:
    ds = load_semeval_ec(TRAIN, newline=" ")
    assert "\\n" not in ds.texts[0] and "والقهر؟!   حسبي" in ds.texts[0]


def test_folder_and_split_pick_the_official_file_name() -> None:
    assert load_semeval_ec(FIXTURES, "ar", split="train").ids == load_semeval_ec(TRAIN).ids
    with pytest.raises(UserError, match="split"):
        load_semeval_ec(FIXTURES)


def test_none_rows_give_no_labels() -> None:
    ds = load_semeval_ec(FIXTURES / "ec-ar-unlabelled.txt")
    assert ds.labels is None and len(ds.ids) == 2


def test_headerless_copy_reads_the_same(tmp_path: Path) -> None:
    lines = TRAIN.read_text(encoding="utf-8").splitlines()[1:]
    f = tmp_path / "noheader.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    a, b = load_semeval_ec(TRAIN), load_semeval_ec(f)
    assert a.ids == b.ids and a.labels is not None and b.labels is not None
    assert torch.equal(a.labels, b.labels)
    assert load_semeval_ec(f, has_header=True).ids == a.ids[1:]


def _write(tmp_path: Path, *rows: str) -> Path:
    f = tmp_path / "bad.txt"
    f.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return f


def test_bad_files_get_errors_naming_the_line(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no SemEval E-c file"):
        load_semeval_ec(tmp_path / "missing.txt")
    twelve = "\t".join(ROW.split("\t")[:-1])
    with pytest.raises(ValueError, match="line 3: expected 13 tab-separated columns, got 12"):
        load_semeval_ec(_write(tmp_path, ROW, twelve))
    with pytest.raises(ValueError, match="line 2: expected labels 0, 1 or NONE, got '2'"):
        load_semeval_ec(_write(tmp_path, ROW[:-1] + "2"))
    with pytest.raises(ValueError, match="line 3: duplicate ID '2018-Ar-1'"):
        load_semeval_ec(_write(tmp_path, ROW, ROW))
    none = "2018-Ar-2\tx\t" + "\t".join(["NONE"] * 11)
    with pytest.raises(ValueError, match="all rows labelled or all NONE"):
        load_semeval_ec(_write(tmp_path, ROW, none))
    f = tmp_path / "latin1.txt"
    f.write_bytes((HEADER + "\n").encode() + "2018-Ar-3\tcaf\xe9".encode("latin-1") + b"\n")
    with pytest.raises(ValueError, match="line 2: expected UTF-8"):
        load_semeval_ec(f)
    with pytest.raises(ValueError, match="at least one tweet"):
        load_semeval_ec(_write(tmp_path))
    with pytest.raises(ValueError, match="language"):
        load_semeval_ec(TRAIN, "fr")  # type: ignore[arg-type]


def test_synthetic_corpus_keeps_priors_and_co_occurrence_blocks() -> None:
    ds = make_synthetic_emotion_corpus(6000, seed=0)
    assert ds.labels is not None and ds.labels.shape == (6000, 11)
    freq = ds.labels.mean(dim=0)
    torch.testing.assert_close(freq, torch.tensor(SYNTHETIC_PRIORS), atol=0.02, rtol=0)
    c = torch.corrcoef(ds.labels.T)
    joy, love, anger, disgust, trust = (
        LABEL_NAMES.index(n) for n in ("joy", "love", "anger", "disgust", "trust")
    )
    assert c[joy, love] > 0.3 and c[anger, disgust] > 0.3
    assert abs(float(c[joy, anger])) < 0.05 and abs(float(c[love, trust])) < 0.05
    assert all(len(t.split()) == 24 for t in ds.texts[:50])


def test_synthetic_corpus_is_a_function_of_its_seed() -> None:
    a, b = make_synthetic_emotion_corpus(50, seed=3), make_synthetic_emotion_corpus(50, seed=3)
    c = make_synthetic_emotion_corpus(50, seed=4)
    assert a.texts == b.texts and a.texts != c.texts


def test_keywords_carry_the_labels() -> None:
    ds = make_synthetic_emotion_corpus(400, seed=1, keyword_rate=1.0)
    assert ds.labels is not None
    for text, y in zip(ds.texts[:40], ds.labels[:40], strict=True):
        owners = {int(w[1:]) // 12 for w in text.split()}
        if y.sum() > 0:
            assert owners <= set(torch.nonzero(y).flatten().tolist())


def test_bad_synthetic_arguments_raise() -> None:
    with pytest.raises(ValueError, match="label_priors"):
        make_synthetic_emotion_corpus(10, label_priors=(0.5, 1.2))
    with pytest.raises(ValueError, match="vocab_size"):
        make_synthetic_emotion_corpus(10, vocab_size=100)
    with pytest.raises(ValueError, match="co_occurrence"):
        make_synthetic_emotion_corpus(10, co_occurrence=1.0)
