"""``taskgraph demo``: one short run on the shipped cellcycle_FUN, and its outputs."""

from __future__ import annotations

import json

import taskgraph as tg
from taskgraph.cli.main import main
from taskgraph.hierarchy import load_hierarchy


def test_demo_one_epoch(capsys, tmp_path):
    code = main(["demo", "--out", str(tmp_path), "--epochs", "1", "--samples", "2",
                 "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    line = next((l for l in out.splitlines() if "test AU(PRC)-bar" in l), None)
    assert line is not None, out
    assert "0.255" in line
    score = float(line.split("test AU(PRC)-bar:")[1].split()[0])
    assert 0.0 < score < 1.0
    assert "1628 train / 848 valid / 1281 test" in out
    for name in ("hierarchy.yaml", "model.pt", "history.json", "report.json", "report.md"):
        assert (tmp_path / name).is_file(), name
    h = load_hierarchy(tmp_path / "hierarchy.yaml")
    assert len(h) == 499 and h.name == "cellcycle_FUN"
    model = tg.load(tmp_path / "model.pt")
    assert model.hierarchy == h
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["epochs"]) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n_examples"] == 1281
    assert report["samples"] == 2


def test_demo_rejects_zero_epochs(capsys, tmp_path):
    code = main(["demo", "--out", str(tmp_path / "d"), "--epochs", "0", "--no-progress"])
    _, err = capsys.readouterr()
    assert code == 2 and "--epochs" in err
    assert not (tmp_path / "d").exists()
