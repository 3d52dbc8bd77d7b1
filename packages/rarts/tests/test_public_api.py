"""The exported surface changes only on purpose."""

from __future__ import annotations

import paperzoo.rarts as rarts

EXPECTED = [
    "DARTS_PRIMITIVES",
    "DartsFirstOrder",
    "DartsSecondOrder",
    "EvalNetwork",
    "Genotype",
    "MNIST1D_PRIMITIVES",
    "MaskedConv",
    "MixedOp",
    "NATSSearchCell",
    "NATSSearchNetwork",
    "NATS_PRIMITIVES",
    "OPS",
    "QuadraticBilevel",
    "RARTS",
    "SearchCell",
    "SearchNetwork",
    "SearchResult",
    "SearchStepper",
    "WidthResNet",
    "WidthSearchResNet",
    "coupling_penalty",
    "format_arch_str",
    "genotype_from_alphas",
    "hvp_autograd",
    "hvp_finite_diff",
    "make_op",
    "mean_loss",
    "parse_arch_str",
    "query",
    "random_genotype",
    "run_search",
]


def test_public_api_snapshot() -> None:
    assert sorted(rarts.__all__) == sorted(EXPECTED)
    for name in EXPECTED:
        assert getattr(rarts, name) is not None


def test_package_is_typed() -> None:
    from importlib.resources import files

    assert files("paperzoo.rarts").joinpath("py.typed").is_file()
