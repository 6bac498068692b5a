"""``taskgraph draw`` / ``taskgraph report`` through the real entry point (the two
commands registered next to the others), and that ``import taskgraph`` stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest
from viz_helpers import ROOT

cli = importlib.import_module("taskgraph.cli.main")  # the module, not its main()

ANIMALS = str(ROOT / "hierarchies" / "animals.yaml")


@pytest.fixture
def main(monkeypatch):
    extra = [("taskgraph.cli.draw_commands", "add_draw"),
             ("taskgraph.cli.draw_commands", "add_report")]
    monkeypatch.setattr(cli, "COMMANDS", [c for c in cli.COMMANDS if c not in extra] + extra)

    def call(capsys, *argv):
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return call


def test_draw_writes_the_default_png_and_other_formats(main, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = main(capsys, "draw", ANIMALS)
    assert code == 0 and (tmp_path / "animals.png").stat().st_size > 1000
    assert "wrote animals.png: 4 tasks" in out
    code, _, _ = main(capsys, "draw", ANIMALS, "-o", tmp_path / "sub.dot", "--root", "diet",
                      "--depth", "1")
    text = (tmp_path / "sub.dot").read_text(encoding="utf-8")
    assert code == 0 and '"species" [' in text and '"mammal" [' not in text


def test_draw_a_saved_model_with_both_directions(main, capsys, run, tmp_path):
    code, out, err = main(capsys, "draw", run.folder / "model.pt", "-o", tmp_path / "m.svg",
                          "--directions", "both")
    assert code == 0, err
    assert (tmp_path / "m.svg").read_text(encoding="utf-8").count("<svg") == 1


@pytest.mark.parametrize("argv,message", [
    (["--root", "mamal"], "did you mean 'mammal'"),
    (["-o", "g.jpg"], "unknown picture format .jpg"),
    (["--max-nodes", "2", "--depth", "3"], "more than max_nodes=2"),
    (["--depth", "-1"], "depth: expected an integer >= 0"),
])
def test_draw_errors_exit_2_with_one_message(main, capsys, tmp_path, monkeypatch, argv,
                                             message):
    monkeypatch.chdir(tmp_path)
    code, _, err = main(capsys, "draw", ANIMALS, *argv)
    assert code == 2 and message in err and err.startswith("taskgraph draw: error")
    assert not (tmp_path / "g.jpg").exists()


def test_draw_missing_or_invalid_file_exits_2(main, capsys, tmp_path):
    code, _, err = main(capsys, "draw", tmp_path / "nope.yaml")
    assert code == 2 and "nope.yaml" in err
    code, _, err = main(capsys, "draw", tmp_path / "nope.pt")
    assert code == 2 and "No such file" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("taskgraph: 1\ntasks:\n  a: {type: binry}\n", encoding="utf-8")
    code, _, err = main(capsys, "draw", bad)
    assert code == 2 and "binry" in err


def test_report_command(main, capsys, run, tmp_path):
    rng = np.random.default_rng(1)
    lines = ["f1,f2,f3,f4,f5,mammal,diet,species,weight_kg"]
    for i in range(20):
        x = ",".join(f"{v:.3f}" for v in rng.normal(size=5))
        lines.append(f"{x},{i % 2},{['herbivore', 'carnivore', 'omnivore'][i % 3]},"
                     f"{['cat', 'dog', 'cow', 'eagle'][i % 4]},{i}.5")
    data = tmp_path / "val.csv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "d.html"
    code, stdout, err = main(capsys, "report", run.folder, "-o", out, "--data", data)
    assert code == 0, err
    assert f"wrote {out}" in stdout
    assert "reliability diagrams" in out.read_text(encoding="utf-8")


def test_report_errors_exit_2(main, capsys, tmp_path):
    code, _, err = main(capsys, "report", tmp_path / "missing")
    assert code == 2 and "missing" in err
    code, _, err = main(capsys, "report", tmp_path)
    assert code == 2 and "nothing to report" in err
    code, _, err = main(capsys, "report", tmp_path, "--data", tmp_path / "x.csv")
    assert code == 2 and "--data needs a model" in err


def test_import_taskgraph_does_not_import_matplotlib():
    code = ("import sys, taskgraph, taskgraph.viz, taskgraph.cli.draw_commands; "
            "import taskgraph.viz.graph, taskgraph.viz.report_html; "
            "bad = [m for m in ('matplotlib', 'torch') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
