"""``taskgraph demo``: one short run on the shipped cellcycle_FUN, and its outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import taskgraph as tg
from taskgraph.cli.main import main
from taskgraph.datasets.hmc import load_hmc
from taskgraph.hierarchy import load_hierarchy


def test_demo_without_refit_says_its_score_is_not_the_published_protocol(capsys, tmp_path):
    out_dir = tmp_path / "demo"
    code = main(["demo", "--out", str(out_dir), "--epochs", "1", "--samples", "0",
                 "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    line = next(l for l in out.splitlines() if l.startswith("test AU(PRC)-bar"))
    assert "trained on train only" in line and "taskgraph demo --refit" in line, line
    assert "saved model: trained on train for 1 epoch (the best epoch on valid);" in out
    history = json.loads((out_dir / "history.json").read_text())
    assert history["model"] == "the valid phase's best epoch (1)"
    assert 0.0 < history["epochs"][0]["val_auprc_bar"] < 1.0  # the run on train
    assert tg.load(out_dir / "model.pt").hierarchy.name == "cellcycle_FUN"


def test_demo_refit_one_epoch(capsys, tmp_path):
    out_dir = tmp_path / "new" / "demo"  # missing folders are created
    code = main(["demo", "--out", str(out_dir), "--epochs", "1", "--samples", "2",
                 "--refit", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    line = next((l for l in out.splitlines() if "test AU(PRC)-bar" in l), None)
    assert line is not None, out
    assert "0.255" in line and "the same protocol" in line
    score = float(line.split("test AU(PRC)-bar:")[1].split()[0])
    assert 0.0 < score < 1.0
    assert "1628 train / 848 valid / 1281 test" in out
    assert "saved model: trained on train + valid for 1 epoch;" in out
    for name in ("hierarchy.yaml", "model.pt", "history.json", "report.json", "report.md"):
        assert (out_dir / name).is_file(), name
    h = load_hierarchy(out_dir / "hierarchy.yaml")
    assert len(h) == 499 and h.name == "cellcycle_FUN"
    model = tg.load(out_dir / "model.pt")
    assert model.hierarchy == h

    # history.json: the saved (refit) model's epochs on top, the valid phase beside them
    history = json.loads((out_dir / "history.json").read_text())
    assert len(history["epochs"]) == 1 and history["best_epoch"] == 1
    assert "val_auprc_bar" not in history["epochs"][0]  # the refit has no validation data
    assert history["model"].startswith("refit on train + valid for 1 epochs")
    valid = history["valid_phase"]
    assert len(valid["epochs"]) == 1 and valid["best_epoch"] == 1
    assert 0.0 < valid["epochs"][0]["val_auprc_bar"] < 1.0

    # report.json: binary tasks with one class among the test labels have no score and
    # are not in overall
    report = json.loads((out_dir / "report.json").read_text())
    assert report["n_examples"] == 1281 and report["samples"] == 2
    assert report["data_name"] == "cellcycle_FUN test split (1,281 genes)"
    Y = load_hmc("cellcycle_FUN").test.Y  # (1281, 499), in hierarchy order, no missing
    positives = Y.sum(0)
    single = [t for t, p in zip(h.task_names, positives) if p in (0, len(Y))]
    assert single and report["single_class"] == single
    tasks = report["tasks"]
    assert all(tasks[t]["score"] is None for t in single)
    others = [tasks[t]["average_precision"] for t in h.task_names if t not in single]
    assert report["scored_tasks"] == len(others) == 499 - len(single)
    assert report["overall"] == pytest.approx(np.mean(others))
    md = (out_dir / "report.md").read_text()
    assert "model: trained on train + valid for 1 epoch\n" in md
    assert "data: cellcycle_FUN test split (1,281 genes)" in md
    assert (f"(mean score over {499 - len(single)} of 499 tasks); {len(single)} binary "
            "tasks have a single class in these data and are not scored") in md
    assert "| not evaluated (roots) | none |" in md  # FunCat has no root label
    html = out_dir / "report.html"
    if html.exists():  # matplotlib installed: the page counts the saved model's epochs
        assert "<dt>epochs</dt><dd>1</dd>" in html.read_text()


@pytest.mark.parametrize("option", [["--epochs", "0"], ["--samples", "-1"],
                                    ["--threads", "0"], ["--seed", "x"]])
def test_demo_rejects_bad_numbers_before_training(capsys, tmp_path, option):
    try:
        code = main(["demo", "--out", str(tmp_path / "d"), *option, "--no-progress"])
    except SystemExit as stop:  # argparse's usage error
        code = stop.code
    _, err = capsys.readouterr()
    assert code == 2 and option[0] in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_demo_refuses_a_file_as_out(capsys, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    code = main(["demo", "--out", str(target), "--epochs", "1", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2 and "is a file" in err and "Traceback" not in err
    assert target.read_text() == "keep me" and "taskgraph demo:" not in out
