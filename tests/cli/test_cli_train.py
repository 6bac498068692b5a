"""``taskgraph train`` / ``taskgraph evaluate`` on small generated CSV files, in-process."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

import taskgraph as tg
from taskgraph.cli.main import main

REPO = Path(__file__).resolve().parents[2]
ANIMALS = str(REPO / "hierarchies" / "animals.yaml")
CELLS = str(REPO / "hierarchies" / "cell_functions.yaml")
SPECIES = ["cat", "dog", "cow", "eagle"]
DIET = {"cat": "carnivore", "dog": "omnivore", "cow": "herbivore", "eagle": "carnivore"}
WEIGHT = {"cat": 4.0, "dog": 20.0, "cow": 600.0, "eagle": 5.0}


def zoo_csv(path: Path, n: int, seed: int, bad_species: str | None = None) -> str:
    rng = np.random.default_rng(seed)
    lines = ["f1,f2,f3,mammal,diet,species,weight_kg"]
    for i in range(n):
        s = SPECIES[i % 4]
        x = rng.normal(size=3)
        label = bad_species if bad_species and i == n - 1 else s
        lines.append(f"{x[0]:.3f},{x[1]:.3f},{x[2]:.3f},{int(s != 'eagle')},{DIET[s]},"
                     f"{label},{WEIGHT[s] * (1 + 0.1 * x[0]):.2f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors (bad option values)
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = zoo_csv(root / "zoo.csv", 32, seed=0)
    val = zoo_csv(root / "val.csv", 12, seed=1)
    out = root / "run"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["train", ANIMALS, "--data", data, "--val", val, "--out", str(out),
                     "--epochs", "2", "--no-progress", "--batch-size", "16"])
    return {"code": code, "out": out, "data": data, "val": val, "root": root,
            "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


def test_train_writes_model_history_and_reports(trained):
    assert trained["code"] == 0, trained["stderr"]
    out: Path = trained["out"]
    for name in ("model.pt", "history.json", "report.json", "report.md"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.tmp*"))
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history["epochs"]] == [1, 2]
    report = json.loads((out / "report.json").read_text())
    assert report["n_examples"] == 12  # the --val file
    assert set(report["tasks"]) == {"mammal", "diet", "species", "weight_kg"}
    md = (out / "report.md").read_text()
    assert "species" in md and "weight_kg" in md
    assert "model.pt" in trained["stdout"]
    model = tg.load(out / "model.pt")
    assert model.hierarchy == tg.load_hierarchy(ANIMALS)
    assert model.config.in_features == 3


def test_evaluate_prints_the_report(trained, capsys):
    code, out, err = run(capsys, "evaluate", str(trained["out"] / "model.pt"),
                         "--data", trained["data"])
    assert code == 0, err
    for task in ("mammal", "diet", "species", "weight_kg"):
        assert task in out


def test_evaluate_json(trained, capsys, tmp_path):
    code, out, err = run(capsys, "evaluate", str(trained["out"] / "model.pt"),
                         "--data", trained["val"], "--json", "--out", str(tmp_path / "ev"))
    assert code == 0, err
    report = json.loads(out)
    assert report["n_examples"] == 12
    assert report["tasks"]["species"]["type"] == "multiclass"
    assert report["tasks"]["species"]["n"] == 12
    assert json.loads((tmp_path / "ev" / "report.json").read_text()) == report
    assert (tmp_path / "ev" / "report.md").is_file()


def test_evaluate_data_for_another_hierarchy(trained, capsys, tmp_path):
    # a CSV for hierarchies/cell_functions.yaml: its binary label columns all look like
    # numeric features to the animals model
    h = tg.load_hierarchy(CELLS)
    rng = np.random.default_rng(2)
    lines = [",".join(["g1", "g2", "g3", *h.task_names])]
    for _ in range(6):
        lines.append(",".join([f"{v:.2f}" for v in rng.normal(size=3)]
                              + [str(int(b)) for b in rng.integers(0, 2, len(h))]))
    path = tmp_path / "cells.csv"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "evaluate", str(trained["out"] / "model.pt"),
                         "--data", str(path))
    assert code == 2
    assert str(path) in err
    assert "Traceback" not in err and out == ""


def test_evaluate_missing_checkpoint(capsys, tmp_path, trained):
    code, _, err = run(capsys, "evaluate", str(tmp_path / "none.pt"), "--data", trained["data"])
    assert code == 2 and "none.pt" in err


def test_train_bad_label_names_the_task(capsys, tmp_path):
    data = zoo_csv(tmp_path / "bad.csv", 8, seed=3, bad_species="dgo")
    code, out, err = run(capsys, "train", ANIMALS, "--data", data, "--out",
                         str(tmp_path / "run"), "--epochs", "1", "--no-progress")
    assert code == 2
    assert "'species'" in err and "'dgo'" in err and data in err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize("flag,value", [("--epochs", "0"), ("--batch-size", "0"),
                                        ("--epochs", "-3")])
def test_train_rejects_non_positive(capsys, tmp_path, flag, value):
    data = zoo_csv(tmp_path / "zoo.csv", 8, seed=4)
    code, out, err = run(capsys, "train", ANIMALS, "--data", data, "--out",
                         str(tmp_path / "run"), flag, value, "--no-progress")
    assert code == 2
    assert flag in err
    assert not (tmp_path / "run" / "model.pt").exists()


def test_train_missing_data_file(capsys, tmp_path):
    code, _, err = run(capsys, "train", ANIMALS, "--data", str(tmp_path / "no.csv"),
                       "--out", str(tmp_path / "run"), "--epochs", "1", "--no-progress")
    assert code == 2 and "no.csv" in err
