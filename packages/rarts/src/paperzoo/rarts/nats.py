"""Optional NATS-Bench (topology space ``tss``) look-up of a searched cell, from a benchmark file you supply.

No PyPI package ships the NATS-Bench tables (``nats_bench`` 1.8 is API-only, ~32 KB), and nothing here
downloads: install ``nats_bench`` (``pip install nats_bench``) and put the ``tss`` benchmark — the
``NATS-tss-v1_0-3ffb9-simple`` folder (fast mode) or ``NATS-tss-v1_0-3ffb9-full`` — where ``path`` points, or in
``$TORCH_HOME`` (default ``~/.torch``) where ``nats_bench`` looks by default. tss indices equal NAS-Bench-201's.
"""

from __future__ import annotations

import importlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from paperzoo.rarts.space import parse_arch_str

__all__ = ["DEFAULT_TSS_NAME", "query"]

DEFAULT_TSS_NAME = "NATS-tss-v1_0-3ffb9-simple"
_DATASETS = ("cifar10", "cifar10-valid", "cifar100", "ImageNet16-120")


def _default_path() -> Path:
    home = os.environ.get("TORCH_HOME", os.path.join(os.path.expanduser("~"), ".torch"))
    return Path(home) / DEFAULT_TSS_NAME


@lru_cache(maxsize=2)
def _api(path: str) -> Any:
    nats_bench = importlib.import_module("nats_bench")
    return nats_bench.create(path, "tss", fast_mode=True, verbose=False)


def query(
    arch_str: str,
    dataset: str = "cifar10",
    hp: str = "200",
    path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Benchmark numbers of a NATS-Bench ``tss`` cell (e.g. from :meth:`NATSSearchNetwork.arch_str`).

    Args:
        arch_str: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
        dataset: ``cifar10``, ``cifar10-valid``, ``cifar100`` or ``ImageNet16-120``.
        hp: training schedule, ``"12"`` or ``"200"`` epochs.
        path: the benchmark file/folder (default ``$TORCH_HOME/NATS-tss-v1_0-3ffb9-simple``).

    Returns: ``nats_bench``'s ``get_more_info`` dict (``test-accuracy``, ``valid-accuracy``, …) plus ``index``.

    Raises:
        ImportError: ``nats_bench`` is not installed (says how to install it).
        FileNotFoundError: no benchmark file at ``path`` (says where to put it and where to get it).
        ValueError: a malformed ``arch_str``, unknown ``dataset`` or ``hp``.
    """
    parse_arch_str(arch_str)
    if dataset not in _DATASETS:
        raise ValueError(f"dataset must be one of {_DATASETS}, got {dataset!r}")
    if hp not in ("12", "200"):
        raise ValueError(f"hp must be '12' or '200', got {hp!r}")
    try:
        importlib.import_module("nats_bench")
    except ImportError as err:
        raise ImportError(
            "paperzoo.rarts.nats.query needs the optional package 'nats_bench': pip install nats_bench "
            "(it holds only the API; the benchmark file is separate, see the module docstring)"
        ) from err
    p = Path(path) if path is not None else _default_path()
    if not p.exists():
        raise FileNotFoundError(
            f"NATS-Bench tss file not found at {str(p)!r}: download 'NATS-tss-v1_0-3ffb9-simple' (see "
            "https://github.com/D-X-Y/NATS-Bench) and extract it there, or pass path=... "
            "(default location: $TORCH_HOME/NATS-tss-v1_0-3ffb9-simple)"
        )
    api = _api(str(p))
    index = api.query_index_by_arch(arch_str)
    if index is None or index < 0:
        raise ValueError(f"arch_str {arch_str!r} is not in the NATS-Bench tss space")
    info = dict(api.get_more_info(index, dataset, hp=hp, is_random=False))
    info["index"] = int(index)
    return info
