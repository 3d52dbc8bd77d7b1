"""The optional NATS-Bench query fails loudly without the package or the file."""

from __future__ import annotations

import sys

import pytest

from paperzoo.rarts.nats import query

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_query_without_nats_bench_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nats_bench", None)  # import fails
    with pytest.raises(ImportError, match="pip install nats_bench"):
        query(ARCH)


def test_query_without_the_benchmark_file_says_where_to_put_it(tmp_path: object) -> None:
    pytest.importorskip("nats_bench")
    missing = f"{tmp_path}/NATS-tss-v1_0-3ffb9-simple"
    with pytest.raises(FileNotFoundError, match="NATS-tss-v1_0-3ffb9-simple"):
        query(ARCH, path=missing)


def test_query_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="arch_str"):
        query("|nor_conv_3x3|")
    with pytest.raises(ValueError, match="dataset"):
        query(ARCH, dataset="mnist")
    with pytest.raises(ValueError, match="hp"):
        query(ARCH, hp="50")
