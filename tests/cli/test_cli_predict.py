"""``taskgraph predict`` on a small saved model: columns, decoded classes, values against
``model.predict`` computed here directly, CSV and NPZ, and clean errors for bad input."""

from __future__ import annotations

import csv
import importlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import taskgraph as tg
from taskgraph.cli.predict_command import prediction_columns
from taskgraph.model.predict import TaskPrediction

cli = importlib.import_module("taskgraph.cli.main")

# every task kind: multiclass with class_parents (neutral has no emotion), binary,
# multilabel, a two-output regression
MIXED = """\
taskgraph: 1
name: mixed
tasks:
  sentiment: {type: multiclass, classes: [positive, negative, neutral]}
  emotion:
    type: multiclass
    classes: [joy, anger, fear]
    parents: [sentiment]
    class_parents: {joy: positive, anger: negative, fear: negative}
  spam: {type: binary}
  aspects: {type: multilabel, classes: [price, quality], parents: [sentiment]}
  rating: {type: regression, outputs: 2, parents: [emotion]}
"""
COLUMNS = ["sentiment", "sentiment.prob.positive", "sentiment.prob.negative",
           "sentiment.prob.neutral", "emotion", "emotion.prob.joy", "emotion.prob.anger",
           "emotion.prob.fear", "spam", "spam.prob", "aspects.price", "aspects.price.prob",
           "aspects.quality", "aspects.quality.prob", "rating.0", "rating.1"]
UNCERTAINTY = ["sentiment.entropy", "sentiment.mutual_info", "sentiment.std.positive",
               "sentiment.std.negative", "sentiment.std.neutral", "emotion.entropy",
               "emotion.mutual_info", "emotion.std.joy", "emotion.std.anger", "emotion.std.fear",
               "spam.std", "spam.entropy", "spam.mutual_info", "aspects.price.std",
               "aspects.price.entropy", "aspects.price.mutual_info", "aspects.quality.std",
               "aspects.quality.entropy", "aspects.quality.mutual_info", "rating.0.std",
               "rating.1.std"]
N = 23  # rows: not a multiple of the batch sizes used below


@pytest.fixture(autouse=True)
def _predict_registered(monkeypatch):
    entry = ("taskgraph.cli.predict_command", "add_predict")
    if entry not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, entry])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    torch.manual_seed(0)
    model = tg.compile(MIXED, in_features=3, task_dim=8, encoder_spec={"hidden": [8]})
    tg.save(model, root / "model.pt")
    X = np.random.default_rng(0).normal(size=(N, 3)).astype(np.float32)
    lines = ["f1,spam,f2,f3"]  # a label column among the features: ignored
    lines += [f"{a!r},{i % 2},{b!r},{c!r}" for i, (a, b, c) in enumerate(X.tolist())]
    (root / "rows.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    np.savez(root / "rows.npz", X=X)
    return {"root": root, "model": str(root / "model.pt"), "csv": str(root / "rows.csv"),
            "npz": str(root / "rows.npz"), "X": X}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames), list(reader)


def expected(setup, samples=0, seed=0):
    """The prediction computed here, straight from the model (one batch)."""
    model = tg.load(setup["model"])
    torch.manual_seed(seed)
    with torch.no_grad():
        return model.predict(torch.from_numpy(setup["X"]), samples=samples)


def names(classes, label):
    return [classes[i] if i >= 0 else "" for i in label.tolist()]


def test_csv_columns_rows_and_values(setup, capsys):
    out = setup["root"] / "new" / "deeper" / "p.csv"  # folders are created
    code, stdout, err = run(capsys, "predict", setup["model"], "--data", setup["csv"],
                            "-o", out, "--batch-size", "5")
    assert code == 0, err
    assert stdout.strip() == f"predicted {N} rows ({len(COLUMNS)} columns, 5 tasks); wrote {out}"
    assert os.listdir(out.parent) == ["p.csv"]  # no temporary file left
    header, rows = read_csv(out)
    assert header == COLUMNS and len(rows) == N
    pred = expected(setup)

    def col(name):
        return np.array([float(r[name]) for r in rows])

    for task in ("sentiment", "emotion"):
        classes = tg.load_hierarchy(MIXED)[task].classes
        assert [r[task] for r in rows] == names(classes, pred[task].label)
        probs = np.stack([col(f"{task}.prob.{c}") for c in classes], axis=1)
        np.testing.assert_allclose(probs, pred[task].probs.numpy(), rtol=1e-6)
        np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert [int(r["spam"]) for r in rows] == (pred["spam"].probs > 0.5).long().tolist()
    np.testing.assert_allclose(col("spam.prob"), pred["spam"].probs.numpy(), rtol=1e-6)
    for k, c in enumerate(["price", "quality"]):
        assert col(f"aspects.{c}").tolist() == (pred["aspects"].probs[:, k] > 0.5).tolist()
        np.testing.assert_allclose(col(f"aspects.{c}.prob"), pred["aspects"].probs[:, k],
                                   rtol=1e-6)
    for k in range(2):
        np.testing.assert_allclose(col(f"rating.{k}"), pred["rating"].value[:, k],
                                   rtol=1e-6, atol=1e-7)


def test_decoded_classes_follow_class_parents(setup, capsys):
    out = setup["root"] / "paths.csv"
    assert run(capsys, "predict", setup["model"], "--data", setup["csv"], "-o", out)[0] == 0
    parent = {"joy": "positive", "anger": "negative", "fear": "negative"}
    for row in read_csv(out)[1]:
        # an emotion only under its sentiment; none (blank) under neutral
        assert (row["emotion"] == "") == (row["sentiment"] == "neutral")
        assert row["emotion"] == "" or parent[row["emotion"]] == row["sentiment"]


def test_npz_output_from_npz_input(setup, capsys):
    out = setup["root"] / "p.npz"
    code, _, err = run(capsys, "predict", setup["model"], "--data", setup["npz"], "-o", out)
    assert code == 0, err
    pred = expected(setup)
    with np.load(out, allow_pickle=False) as z:
        assert z.files == COLUMNS
        assert z["sentiment"].dtype.kind == "U" and z["spam"].dtype == np.int64
        assert z["sentiment"].tolist() == names(("positive", "negative", "neutral"),
                                                pred["sentiment"].label)
        assert z["emotion"].tolist() == names(("joy", "anger", "fear"), pred["emotion"].label)
        np.testing.assert_array_equal(z["rating.1"], pred["rating"].value[:, 1].numpy())
        np.testing.assert_array_equal(z["aspects.quality.prob"], pred["aspects"].probs[:, 1])
        assert all(len(z[name]) == N for name in z.files)


def test_samples_add_uncertainty_columns(setup, capsys):
    out = setup["root"] / "mc.npz"
    code, _, err = run(capsys, "predict", setup["model"], "--data", setup["csv"], "-o", out,
                       "--samples", "6", "--seed", "3")
    assert code == 0, err
    pred = expected(setup, samples=6, seed=3)
    with np.load(out) as z:
        assert z.files[:4] == COLUMNS[:4] and sorted(z.files) == sorted(COLUMNS + UNCERTAINTY)
        np.testing.assert_allclose(z["rating.0.std"], pred["rating"].variance[:, 0].sqrt(),
                                   rtol=1e-5)
        np.testing.assert_allclose(z["emotion.mutual_info"], pred["emotion"].mutual_info,
                                   rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(z["spam.std"], pred["spam"].std, rtol=1e-5)
        np.testing.assert_allclose(z["aspects.price.entropy"], pred["aspects"].entropy[:, 0],
                                   rtol=1e-5)
        assert (z["rating.0.std"] > 0).all()  # the synapses are stochastic
        probs = np.stack([z[f"sentiment.prob.{c}"] for c in ("positive", "negative", "neutral")])
        np.testing.assert_allclose(probs.sum(axis=0), 1, rtol=1e-5)
    again = setup["root"] / "mc2.npz"
    assert run(capsys, "predict", setup["model"], "--data", setup["csv"], "-o", again,
               "--samples", "6", "--seed", "3")[0] == 0
    with np.load(out) as a, np.load(again) as b:
        np.testing.assert_array_equal(a["spam.prob"], b["spam.prob"])  # --seed: reproducible


def test_blank_class_where_none_fits():
    h = tg.load_hierarchy(MIXED)
    p = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    pred = {name: TaskPrediction("x") for name in h.task_names}
    pred["sentiment"] = TaskPrediction("multiclass", probs=p, label=torch.tensor([2, 0]))
    pred["emotion"] = TaskPrediction("multiclass", probs=p, label=torch.tensor([-1, 0]))
    pred["spam"] = TaskPrediction("binary", probs=torch.tensor([0.5, 0.75]),
                                  label=torch.tensor([0, 1]))
    pred["aspects"] = TaskPrediction("multilabel", probs=p[:, :2], label=torch.tensor([[0, 0],
                                                                                      [1, 0]]))
    pred["rating"] = TaskPrediction("regression", value=torch.ones(2, 2),
                                    variance=torch.zeros(2, 2))
    cols = prediction_columns(h, pred)
    assert cols["sentiment"].tolist() == ["neutral", "positive"]
    assert cols["emotion"].tolist() == ["", "joy"]
    assert cols["aspects.price"].tolist() == [0, 1] and cols["spam.prob"].tolist() == [0.5, 0.75]


def test_duplicate_output_column_is_an_error():
    h = tg.load_hierarchy("taskgraph: 1\ntasks:\n  a: {type: binary}\n"
                          "  a.prob: {type: regression}\n")
    model = tg.compile(h, in_features=2, task_dim=4)
    with pytest.raises(tg.DataError, match=r"task 'a.prob': its output column 'a.prob'"):
        prediction_columns(h, model.predict(torch.zeros(1, 2)))


# -- bad input: exit 2, one message naming the culprit, no traceback ---------------------
def test_bad_extension_and_folder(setup, capsys):
    code, _, err = run(capsys, "predict", setup["model"], "--data", setup["csv"],
                       "-o", setup["root"] / "p.txt")
    assert code == 2 and "-o" in err and "p.txt" in err and ".csv or .npz" in err
    code, _, err = run(capsys, "predict", setup["model"], "--data", setup["csv"],
                       "-o", setup["root"])
    assert code == 2 and "is a folder" in err and "Traceback" not in err


def test_missing_data_file(setup, capsys):
    code, _, err = run(capsys, "predict", setup["model"], "--data", setup["root"] / "nope.csv",
                       "-o", setup["root"] / "x.csv")
    assert code == 2 and "nope.csv" in err and "Traceback" not in err
    assert not (setup["root"] / "x.csv").exists()


def test_feature_count_mismatch(setup, capsys):
    data = setup["root"] / "two.csv"
    data.write_text("f1,f2\n0.5,1\n", encoding="utf-8")
    code, _, err = run(capsys, "predict", setup["model"], "--data", data,
                       "-o", setup["root"] / "x.csv")
    assert code == 2 and "Traceback" not in err
    assert "two.csv: 2 feature columns" in err and f"{setup['model']} takes 3" in err


def test_corrupt_checkpoint(setup, capsys):
    bad = setup["root"] / "broken.pt"
    bad.write_bytes(Path(setup["model"]).read_bytes()[:500])
    code, _, err = run(capsys, "predict", bad, "--data", setup["csv"],
                       "-o", setup["root"] / "x.csv")
    assert code == 2 and "broken.pt" in err and "Traceback" not in err


@pytest.mark.parametrize("option, value", [("--samples", "-1"), ("--batch-size", "0"),
                                           ("--samples", "two")])
def test_bad_numbers(setup, capsys, option, value):
    try:  # argparse's usage error: exit status 2, returned or raised as SystemExit
        code = cli.main(["predict", setup["model"], "--data", setup["csv"], "-o",
                         str(setup["root"] / "x.csv"), option, value])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and option in err and repr(value) in err
    assert "Traceback" not in err
