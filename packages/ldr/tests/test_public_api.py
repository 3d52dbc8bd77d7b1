"""The exported surface changes only on purpose."""

from __future__ import annotations

import inspect
from pathlib import Path

import paperzoo.ldr as ldr

EXPECTED = [
    "ALDRKLLoss",
    "CrammerSingerLoss",
    "GCELoss",
    "LDRKLLoss",
    "MAELoss",
    "WestonWatkinsLoss",
    "aldr_kl_loss",
    "class_dependent_label_noise",
    "class_indices",
    "crammer_singer_loss",
    "gce_loss",
    "ldr_kl_loss",
    "ldr_loss",
    "mae_loss",
    "margin_differences",
    "normalize_scores",
    "uniform_label_noise",
    "weston_watkins_loss",
    "worst_case_distribution",
]

SIGNATURES = {
    "ldr_kl_loss": "(logits: 'Tensor', target: 'Tensor', lam: 'float | Tensor' = 10.0, "
    "margin: 'float' = 0.1, normalize: 'str' = 'softplus_mean', reduction: 'Reduction' = 'mean', *, "
    "validate: 'bool' = True) -> 'Tensor'",
    "ALDRKLLoss": "(num_samples: 'int', lam0: 'float' = 10.0, alpha: 'float' = 2.0, "
    "margin: 'float' = 0.1, normalize: 'str' = 'l1', exact_p: 'bool' = True, "
    "reduction: 'Reduction' = 'mean', *, validate: 'bool' = True) -> 'None'",
}


def test_public_api_snapshot() -> None:
    assert sorted(ldr.__all__) == EXPECTED
    for name in ldr.__all__:
        assert getattr(ldr, name).__doc__, f"{name} has no docstring"


def test_default_signatures_snapshot() -> None:
    assert str(inspect.signature(ldr.ldr_kl_loss)) == SIGNATURES["ldr_kl_loss"]
    assert (
        str(inspect.signature(ldr.ALDRKLLoss.__init__)).replace("self, ", "")
        == (SIGNATURES["ALDRKLLoss"])
    )


def test_package_is_typed() -> None:
    assert (Path(ldr.__file__).parent / "py.typed").exists()


def test_readme_usage_example_runs() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "README.md", "exec"), {"print": lambda *a: None})
