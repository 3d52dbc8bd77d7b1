"""`paperzoo run NAME --smoke --set data_root=FIXTURE`: every paper-scale path, end to end.

Each experiment whose paper uses a real data set reads a tiny copy of it, written in the
official format by ``paperzoo.core.fixtures``, through the same readers a user's files go
through; the run must finish, name the real data set in its config, and write nothing into the
data folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paperzoo.core.cli import main
from paperzoo.core.fixtures import write_fixture

pytest.importorskip("torchvision")

# experiment -> (fixture data sets written into one folder ("name:K" writes K classes,
# "image-folder:a,b" names the class folders), extra --set overrides)
CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "af-kan": (("mnist", "fashion-mnist"), ("real_datasets=mnist",)),
    "noprop": (("cifar10",), ("real_dataset=cifar10",)),
    "rarts": (("cifar10",), ()),
    "metric-losses": (("cub200",), ("image_size=8", "retrieval_batch=32")),
    "metrix": (("cub200",), ("image_size=8", "batch=32")),
    "anyloss": (("table:2",), ("n_folds=2", "l_sweep=false", "n_samples=40")),
    "amcl": (("mnist",), ("n_train=60", "n_test=30", "batch_size=32")),
    "compsum": (("cifar10",), ("parts=A,B",)),
    "dis-vs-gen": (("cifar10",), ("probe_test_per_class=4", "probe_shots=1,2")),
    "ensloss": (("cifar10",), ("batch_size=8",)),
    "dhkd": (("cifar100",), ()),
    "neucb": (("table",), ()),
    "unpg": (("cars196:12",), ("batch_size=8",)),  # cars196's fixture is a flat class tree
    "zloss": (("text-corpus",), ("run_quality=false", "run_many=false")),
    "hyp-oc": (("image-folder:print,real,replay",), ("image_size=8", "pca_dim=4", "batch_size=4")),
    "ldr": (("table",), ()),
    "hpm": (("image-folder",), ("real_dataset=image-folder", "image_size=16", "batch_size=16")),
}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_smoke_on_the_fixture_of_the_papers_data_set(tmp_path: Path, name: str) -> None:
    fixtures, sets = CASES[name]
    data = tmp_path / "data"
    for fixture in fixtures:
        name_, _, k = fixture.partition(":")
        if "," in k:
            write_fixture(name_, data, class_names=k.split(","))
        else:
            write_fixture(name_, data, num_classes=int(k) if k else None)
    before = _files(data)
    args = ["run", name, "--smoke", "--device", "cpu", "--out", str(tmp_path / "out")]
    for kv in (f"data_root={data}", *sets):
        args += ["--set", kv]
    assert main(args) == 0
    result = json.loads((tmp_path / "out" / name / "result.json").read_text())
    assert result["config"]["data_root"] == str(data)
    assert result["rows"], "a smoke run on real data must still report rows"
    assert _files(data) == before  # nothing written into the user's folder
