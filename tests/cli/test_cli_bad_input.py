"""Every sub-command over a table of bad arguments and bad files: exit status 2, one
message that names the offending option, file or value, and never a traceback.

The table grows with every bad invocation found; each row is
``(id, argv, words the message must contain)``. Paths in argv are templates filled
from the ``files`` fixture (``{zoo}``, ``{text_pt}``, ...).
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import taskgraph as tg
from taskgraph.cli.main import main

REPO = Path(__file__).resolve().parents[2]
ANIMALS = str(REPO / "hierarchies" / "animals.yaml")
SPECIES = ["cat", "dog", "cow", "eagle"]
DIET = {"cat": "carnivore", "dog": "omnivore", "cow": "herbivore", "eagle": "carnivore"}


def _zoo(path: Path, n: int, features: int = 3) -> str:
    rng = np.random.default_rng(0)
    cols = ",".join(f"f{j}" for j in range(features))
    rows = [f"{cols},mammal,diet,species,weight_kg"]
    for i in range(n):
        s = SPECIES[i % 4]
        x = ",".join(f"{v:.3f}" for v in rng.normal(size=features))
        rows.append(f"{x},{int(s != 'eagle')},{DIET[s]},{s},{4 + i % 3}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad-input")
    f: dict[str, str] = {"animals": ANIMALS, "root": str(root)}
    f["zoo"] = _zoo(root / "zoo.csv", 16)
    f["zoo2"] = _zoo(root / "zoo2.csv", 8, features=2)
    (root / "afile").write_text("I am a file\n")
    f["afile"] = str(root / "afile")
    (root / "text.pt").write_text("hello, I am text\n")
    f["text_pt"] = str(root / "text.pt")
    (root / "empty.pt").write_bytes(b"")
    f["empty_pt"] = str(root / "empty.pt")
    (root / "cycle.yaml").write_text("taskgraph: 1\ntasks:\n  a: {type: binary, parents: [b]}\n"
                                     "  b: {type: binary, parents: [a]}\n")
    f["cycle"] = str(root / "cycle.yaml")
    (root / "broken.yaml").write_text("taskgraph: 1\ntasks: [unclosed\n")
    f["broken"] = str(root / "broken.yaml")
    (root / "badlabel.csv").write_text("f0,f1,f2,mammal,diet,species,weight_kg\n"
                                       "0,1,2,1,carnivore,tiger,4\n")
    f["badlabel"] = str(root / "badlabel.csv")
    (root / "nan.csv").write_text("f0,f1,f2,mammal,diet,species,weight_kg\n"
                                  "0,nan,2,1,carnivore,cat,4\n")
    f["nanfeature"] = str(root / "nan.csv")
    model = tg.compile(ANIMALS, in_features=3, task_dim=4, encoder_spec={"hidden": [8]})
    tg.save(model, root / "model.pt")
    f["model"] = str(root / "model.pt")
    run = root / "run"
    run.mkdir()
    tg.save(model, run / "model.pt")
    f["run"] = str(run)
    return f


MISSING = "/no/such/file"

# (id, argv, words that must all appear in stderr)
CASES: list[tuple[str, list[str], list[str]]] = [
    # validate / info
    ("validate-missing", ["validate", MISSING + ".yaml"], [MISSING]),
    ("validate-cycle", ["validate", "{cycle}"], ["cycle", "a -> b -> a"]),
    ("validate-syntax", ["validate", "{broken}"], ["broken.yaml"]),
    ("validate-folder", ["validate", "{root}"], ["{root}"]),
    ("info-missing", ["info", MISSING + ".yaml"], [MISSING]),
    ("info-cycle", ["info", "{cycle}"], ["cycle"]),
    # train: numbers
    ("train-lr-negative", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                           "--lr", "-1"], ["--lr", "-1"]),
    ("train-lr-nan", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                      "--lr", "nan"], ["--lr", "nan"]),
    ("train-lr-zero", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                       "--lr", "0"], ["--lr", "> 0"]),
    ("train-lr-inf", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                      "--lr", "inf"], ["--lr", "finite"]),
    ("train-lr-text", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                       "--lr", "fast"], ["--lr", "fast"]),
    ("train-grad-noise", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                          "--grad-noise", "-1"], ["--grad-noise"]),
    ("train-kl-weight", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                         "--kl-weight", "-1"], ["--kl-weight"]),
    ("train-epochs-zero", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                           "--epochs", "0"], ["--epochs", "0"]),
    ("train-epochs-float", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                            "--epochs", "2.5"], ["--epochs", "2.5"]),
    ("train-batch-size", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                          "--batch-size", "0"], ["--batch-size"]),
    ("train-patience", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                        "--patience", "-2"], ["--patience"]),
    ("train-patience-no-val", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                               "--patience", "2"], ["--patience", "--val"]),
    ("train-samples", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                       "--samples", "-1"], ["--samples"]),
    ("train-seed", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                    "--seed", "-5"], ["--seed"]),
    ("train-threads", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                       "--threads", "0"], ["--threads"]),
    ("train-device", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                      "--device", "gpu7"], ["--device", "gpu7"]),
    ("train-weighting", ["train", "{animals}", "--data", "{zoo}", "--out", "{root}/o",
                         "--weighting", "magic"], ["--weighting", "magic"]),
    # train: files
    ("train-hierarchy-missing", ["train", MISSING + ".yaml", "--data", "{zoo}", "--out",
                                 "{root}/o"], [MISSING]),
    ("train-hierarchy-cycle", ["train", "{cycle}", "--data", "{zoo}", "--out", "{root}/o"],
     ["cycle"]),
    ("train-data-missing", ["train", "{animals}", "--data", MISSING + ".csv", "--out",
                            "{root}/o"], [MISSING]),
    ("train-val-features", ["train", "{animals}", "--data", "{zoo}", "--val", "{zoo2}",
                            "--out", "{root}/o"], ["zoo2.csv", "2 feature", "3"]),
    ("train-out-is-file", ["train", "{animals}", "--data", "{zoo}", "--out", "{afile}"],
     ["--out", "afile", "file"]),
    ("train-out-holds-run", ["train", "{animals}", "--data", "{zoo}", "--out", "{run}"],
     ["--out", "model.pt", "--resume", "--force"]),
    ("train-bad-label", ["train", "{animals}", "--data", "{badlabel}", "--out", "{root}/o"],
     ["badlabel.csv", "species", "tiger"]),
    ("train-nan-feature", ["train", "{animals}", "--data", "{nanfeature}", "--out",
                           "{root}/o"], ["nan.csv", "f1"]),
    ("train-data-is-text-pt", ["train", "{animals}", "--data", "{text_pt}", "--out",
                               "{root}/o"], ["text.pt"]),
    # evaluate
    ("evaluate-text-checkpoint", ["evaluate", "{text_pt}", "--data", "{zoo}"],
     ["text.pt", "not a torch archive"]),
    ("evaluate-empty-checkpoint", ["evaluate", "{empty_pt}", "--data", "{zoo}"],
     ["empty.pt", "empty"]),
    ("evaluate-missing-checkpoint", ["evaluate", MISSING + ".pt", "--data", "{zoo}"],
     [MISSING]),
    ("evaluate-features", ["evaluate", "{model}", "--data", "{zoo2}"],
     ["zoo2.csv", "2 feature", "3"]),
    ("evaluate-samples", ["evaluate", "{model}", "--data", "{zoo}", "--samples", "-3"],
     ["--samples"]),
    ("evaluate-batch-size", ["evaluate", "{model}", "--data", "{zoo}", "--batch-size", "0"],
     ["--batch-size"]),
    ("evaluate-out-is-file", ["evaluate", "{model}", "--data", "{zoo}", "--out", "{afile}"],
     ["--out", "afile"]),
    ("evaluate-bad-label", ["evaluate", "{model}", "--data", "{badlabel}"], ["tiger"]),
    # predict
    ("predict-text-checkpoint", ["predict", "{text_pt}", "--data", "{zoo}", "-o",
                                 "{root}/p.csv"], ["text.pt"]),
    ("predict-features", ["predict", "{model}", "--data", "{zoo2}", "-o", "{root}/p.csv"],
     ["zoo2.csv", "2 feature"]),
    ("predict-extension", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.xlsx"],
     ["-o", ".xlsx"]),
    ("predict-out-is-folder", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}"],
     ["-o", "{root}"]),
    ("predict-samples", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                         "--samples", "-1"], ["--samples"]),
    ("predict-dropout-no-samples", ["predict", "{model}", "--data", "{zoo}", "-o",
                                    "{root}/p.csv", "--dropout"], ["dropout", "samples"]),
    ("evaluate-dropout-no-samples", ["evaluate", "{model}", "--data", "{zoo}", "--dropout"],
     ["dropout", "samples"]),
    ("predict-data-missing", ["predict", "{model}", "--data", MISSING + ".csv", "-o",
                              "{root}/p.csv"], [MISSING]),
    ("predict-confidence-zero", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                                 "--confidence", "0"], ["--confidence", "> 0", "'0'"]),
    ("predict-confidence-above-one", ["predict", "{model}", "--data", "{zoo}", "-o",
                                      "{root}/p.csv", "--confidence", "1.5"],
     ["--confidence", "<= 1", "'1.5'"]),
    ("predict-confidence-text", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                                 "--confidence", "high"], ["--confidence", "'high'"]),
    ("predict-target-accuracy-one", ["predict", "{model}", "--data", "{zoo}", "-o",
                                     "{root}/p.csv", "--target-accuracy", "1", "--val", "{zoo}"],
     ["--target-accuracy", "< 1"]),
    ("predict-target-no-val", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                               "--target-accuracy", "0.9"], ["--target-accuracy", "--val"]),
    ("predict-val-no-target", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                               "--val", "{zoo}"], ["--val", "--target-accuracy"]),
    ("predict-confidence-and-target", ["predict", "{model}", "--data", "{zoo}", "-o",
                                       "{root}/p.csv", "--confidence", "0.5",
                                       "--target-accuracy", "0.9", "--val", "{zoo}"],
     ["--confidence", "--target-accuracy"]),
    ("predict-delta-no-target", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                                 "--confidence", "0.5", "--delta", "0.1"],
     ["--delta", "--target-accuracy"]),
    ("predict-delta-one", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                           "--target-accuracy", "0.9", "--val", "{zoo}", "--delta", "1"],
     ["--delta", "< 1"]),
    ("predict-max-std-negative", ["predict", "{model}", "--data", "{zoo}", "-o",
                                  "{root}/p.csv", "--confidence", "0.5", "--samples", "2",
                                  "--max-std", "-0.1"], ["--max-std", ">= 0"]),
    ("predict-max-std-no-samples", ["predict", "{model}", "--data", "{zoo}", "-o",
                                    "{root}/p.csv", "--confidence", "0.5", "--max-std", "0.1"],
     ["--max-std", "--samples"]),
    ("predict-max-std-alone", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                               "--samples", "2", "--max-std", "0.1"],
     ["--max-std", "--confidence"]),
    ("predict-max-std-no-dag", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                                "--confidence", "0.5", "--samples", "2", "--max-std", "0.1"],
     ["--max-std", "no label DAG"]),
    ("predict-val-missing", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                             "--target-accuracy", "0.9", "--val", MISSING + ".csv"], [MISSING]),
    ("predict-val-features", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                              "--target-accuracy", "0.9", "--val", "{zoo2}"],
     ["zoo2.csv", "2 feature"]),
    ("predict-val-bad-label", ["predict", "{model}", "--data", "{zoo}", "-o", "{root}/p.csv",
                               "--target-accuracy", "0.9", "--val", "{badlabel}"], ["tiger"]),
    ("predict-target-unreachable", ["predict", "{model}", "--data", "{zoo}", "-o",
                                    "{root}/p.csv", "--target-accuracy", "0.99", "--val",
                                    "{zoo}"],
     ["--target-accuracy 0.99", "class path species", "no threshold"]),
    # draw / report
    ("draw-missing", ["draw", MISSING + ".yaml", "-o", "{root}/g.png"], [MISSING]),
    ("draw-text-checkpoint", ["draw", "{text_pt}", "-o", "{root}/g.png"], ["text.pt"]),
    ("draw-extension", ["draw", "{animals}", "-o", "{root}/g.bmp"], [".bmp"]),
    ("draw-max-nodes", ["draw", "{animals}", "--max-nodes", "0"], ["--max-nodes"]),
    ("draw-depth", ["draw", "{animals}", "--depth", "-1"], ["--depth"]),
    ("draw-root", ["draw", "{animals}", "-o", "{root}/g.dot", "--root", "mamal"], ["mamal"]),
    ("draw-out-is-folder", ["draw", "{animals}", "-o", "{root}"], ["{root}"]),
    ("report-missing", ["report", MISSING], [MISSING]),
    ("report-file", ["report", "{afile}"], ["afile"]),
    ("report-samples", ["report", "{run}", "--samples", "-1"], ["--samples"]),
    # import
    ("import-arff-missing", ["import", "arff", MISSING + ".arff"], [MISSING]),
    ("import-obo-garbage", ["import", "obo", "{text_pt}"], ["text.pt"]),
    ("import-out-is-folder", ["import", "arff", MISSING + ".arff", "-o", "{root}"], ["{root}"]),
    # demo (all checked before the data is loaded)
    ("demo-out-is-file", ["demo", "--out", "{afile}"], ["--out", "afile"]),
    ("demo-epochs", ["demo", "--epochs", "0"], ["--epochs"]),
    ("demo-threads", ["demo", "--threads", "-1"], ["--threads"]),
    ("demo-samples", ["demo", "--samples", "-1"], ["--samples"]),
    # no command, unknown command
    ("unknown-command", ["trian"], ["trian"]),
]


def _fill(argv: list[str], files: dict[str, str]) -> list[str]:
    return [a.format(**files) for a in argv]


def _run(argv: list[str]) -> tuple[int, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
    return code, stderr.getvalue()


@pytest.mark.parametrize("argv, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_a_named_message(argv, words, files):
    code, err = _run(_fill(argv, files))
    assert code == 2, err
    assert "Traceback" not in err
    for word in _fill(words, files):
        assert word in err, (word, err)


def test_the_table_covers_every_command():
    from taskgraph.cli.main import COMMANDS

    commands = {func.removeprefix("add_") for _, func in COMMANDS}
    covered = {argv[0] for _, argv, _ in CASES}
    assert commands <= covered, commands - covered


@pytest.mark.parametrize("argv", [["train", "{animals}", "--data", "{zoo}", "--out",
                                   "{root}/sub", "--lr", "-1"],
                                  ["evaluate", "{text_pt}", "--data", "{zoo}"]])
def test_the_console_script_prints_no_traceback(argv, files):
    """Through a real process: exit status 2 and no traceback on stderr."""
    proc = subprocess.run([sys.executable, "-m", "taskgraph", *_fill(argv, files)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr
