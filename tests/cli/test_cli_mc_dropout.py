"""``taskgraph predict/evaluate --dropout --samples K``: MC dropout from the command line."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import taskgraph as tg
from taskgraph.cli.main import main

ANIMALS = str(Path(__file__).resolve().parents[2] / "hierarchies" / "animals.yaml")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("mc-dropout")
    model = tg.compile(ANIMALS, in_features=3, task_dim=4,
                       encoder_spec={"hidden": [16], "dropout": 0.5})
    tg.save(model, root / "model.pt")
    rng = np.random.default_rng(0)
    data = root / "x.csv"
    with open(data, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["f0", "f1", "f2", "mammal", "diet", "species", "weight_kg"])
        for i, row in enumerate(rng.normal(size=(12, 3))):
            w.writerow([*row, i % 2, ["herbivore", "carnivore", "omnivore"][i % 3], "", 3.0])
    return {"model": str(root / "model.pt"), "data": str(data), "root": str(root)}


def _column(path: str, name: str) -> np.ndarray:
    with open(path, newline="") as fh:
        return np.array([float(r[name]) for r in csv.DictReader(fh)])


def test_predict_dropout_draws_vary_and_synapse_draws_differ_and_dropout_is_the_default(files):
    drop = f"{files['root']}/drop.csv"
    assert main(["predict", files["model"], "--data", files["data"], "-o", drop,
                 "--samples", "8", "--dropout", "--seed", "1"]) == 0
    std = _column(drop, "mammal.std")
    assert std.shape == (12,) and (std > 1e-4).all()  # p = 0.5 dropout: draws differ
    syn = f"{files['root']}/syn.csv"
    assert main(["predict", files["model"], "--data", files["data"], "-o", syn,
                 "--samples", "8", "--no-dropout", "--seed", "1"]) == 0
    assert not np.allclose(_column(syn, "mammal.prob"), _column(drop, "mammal.prob"))
    auto = f"{files['root']}/auto.csv"  # the default for a model with dropout: MC dropout
    assert main(["predict", files["model"], "--data", files["data"], "-o", auto,
                 "--samples", "8", "--seed", "1"]) == 0
    np.testing.assert_array_equal(_column(auto, "mammal.prob"), _column(drop, "mammal.prob"))


def test_evaluate_dropout_reports_mutual_information(files, capsys):
    assert main(["evaluate", files["model"], "--data", files["data"], "--samples", "6",
                 "--dropout", "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 6
    assert report["tasks"]["mammal"]["mutual_info"] > 0
