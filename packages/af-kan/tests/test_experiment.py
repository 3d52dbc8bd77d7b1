"""The reproduction's config: every field checked in ``__post_init__``, so a bad ``--set`` value is one
``paperzoo: error:`` line (exit status 2), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from paperzoo.af_kan.experiment import AFKANReproConfig
from paperzoo.core.cli import main


@pytest.mark.parametrize(
    ("setting", "name"),
    [
        ("models=mlp,transformer", "models"),
        ("datasets=cifar10", "datasets"),
        ("epochs=0", "epochs"),
        ("lr=-1", "lr"),
        ("test_fraction=1.0", "test_fraction"),
        ("input_norm=zscore", "input_norm"),
        ("threads=0", "threads"),
    ],
)
def test_a_bad_set_value_is_one_error_line(
    setting: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["run", "af-kan", "--smoke", "--set", setting, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("paperzoo: error:") and f"{name}: expected" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_the_config_checks_itself_when_built_in_code() -> None:
    with pytest.raises(ValueError, match=r"models: expected one of \[.*\], got 'transformer'"):
        AFKANReproConfig(models=("mlp", "transformer"))
    with pytest.raises(TypeError, match="hidden: expected an integer >= 1, got float"):
        AFKANReproConfig(hidden=64.5)  # type: ignore[arg-type]
    assert AFKANReproConfig().models[0] == "mlp"
