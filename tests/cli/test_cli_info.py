"""``taskgraph info``: summary text and JSON (counts, roots, leaves, depths worked out by hand)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from taskgraph.cli.main import main

REPO = Path(__file__).resolve().parents[2]
ANIMALS = str(REPO / "hierarchies" / "animals.yaml")
CELLS = str(REPO / "hierarchies" / "cell_functions.yaml")

# hierarchies/cell_functions.yaml, read by hand:
#   metabolism -> lipid_metabolism, carbohydrate_metabolism; carbohydrate_metabolism -> glycolysis
#   signaling -> receptor_signaling, lipid_signaling; lipid_metabolism -> lipid_signaling
CELL_TASKS = [
    ("metabolism", [], 0),
    ("signaling", [], 0),
    ("lipid_metabolism", ["metabolism"], 1),
    ("carbohydrate_metabolism", ["metabolism"], 1),
    ("glycolysis", ["carbohydrate_metabolism"], 2),
    ("receptor_signaling", ["signaling"], 1),
    ("lipid_signaling", ["lipid_metabolism", "signaling"], 2),
]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json_cell_functions(capsys):
    code, out, err = run(capsys, "info", "--json", CELLS)
    assert code == 0 and err == ""
    info = json.loads(out)
    assert info["name"] == "cell_functions"
    assert info["tasks"] == 7
    assert info["edges"] == 6
    assert info["roots"] == ["metabolism", "signaling"]
    assert info["leaves"] == 3  # glycolysis, receptor_signaling, lipid_signaling
    assert info["max_depth"] == 2
    assert info["types"] == {"binary": 7}
    assert [(t["name"], t["parents"], t["depth"]) for t in info["task_list"]] == CELL_TASKS
    assert all(t["type"] == "binary" and t["classes"] == [] for t in info["task_list"])
    assert "Gene-Ontology" in info["description"]


def test_info_json_animals(capsys):
    code, out, _ = run(capsys, "info", "--json", ANIMALS)
    assert code == 0
    info = json.loads(out)
    assert (info["name"], info["tasks"], info["edges"]) == ("animals", 4, 3)
    assert info["roots"] == ["mammal"]
    assert info["leaves"] == 1
    assert info["max_depth"] == 3
    assert info["types"] == {"binary": 1, "multiclass": 2, "regression": 1}
    assert info["task_list"] == [
        {"name": "mammal", "type": "binary", "classes": [], "parents": [], "depth": 0},
        {"name": "diet", "type": "multiclass", "classes": ["herbivore", "carnivore", "omnivore"],
         "parents": ["mammal"], "depth": 1},
        {"name": "species", "type": "multiclass", "classes": ["cat", "dog", "cow", "eagle"],
         "parents": ["diet"], "depth": 2},
        {"name": "weight_kg", "type": "regression", "classes": [], "parents": ["species"],
         "depth": 3},
    ]


def test_info_text_cell_functions(capsys):
    code, out, err = run(capsys, "info", CELLS)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("cell_functions: 7 tasks, 6 edges, max depth 2")
    assert any(line.startswith("roots (2): metabolism, signaling") for line in lines)
    assert "leaves: 3" in lines
    rows = {line.split()[0]: line.split() for line in lines
            if line.split() and line.split()[0] in dict((n, 0) for n, _, _ in CELL_TASKS)}
    assert set(rows) == {n for n, _, _ in CELL_TASKS}
    for name, parents, depth in CELL_TASKS:
        row = rows[name]
        assert row[1] == "binary" and row[2] == str(depth)
        for parent in parents:
            assert parent in " ".join(row[3:])


def test_info_text_animals(capsys):
    code, out, _ = run(capsys, "info", ANIMALS)
    assert code == 0
    assert out.splitlines()[0].startswith("animals: 4 tasks, 3 edges, max depth 3")
    species = next(line for line in out.splitlines() if line.startswith("species "))
    assert "multiclass" in species and "cat" in species and "diet" in species
    assert species.split()[2] == "2"


def test_info_lists_the_first_50_tasks_unless_all(capsys, tmp_path):
    path = tmp_path / "chain.yaml"
    path.write_text("taskgraph: 1\ntasks:\n  t0: {type: binary}\n" + "".join(
        f"  t{i}: {{type: binary, parents: [t{i - 1}]}}\n" for i in range(1, 60)),
        encoding="utf-8")
    code, out, _ = run(capsys, "info", str(path))
    assert code == 0
    assert "chain: 60 tasks, 59 edges, max depth 59" in out
    rows = [line for line in out.splitlines() if re.match(r"t\d+ ", line)]
    assert len(rows) == 50
    assert "10 more tasks" in out
    code, out, _ = run(capsys, "info", "--all", str(path))
    rows = [line for line in out.splitlines() if re.match(r"t\d+ ", line)]
    assert len(rows) == 60
    assert rows[-1].split()[:3] == ["t59", "binary", "59"]


def test_info_on_a_bad_file(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("taskgraph: 1\ntasks:\n  a: {type: binary, parents: [b]}\n", encoding="utf-8")
    code, out, err = run(capsys, "info", str(path))
    assert code == 2
    assert out == ""
    assert f"{path}:3:31: tasks.a.parents[0]: unknown task 'b'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("flag", [[], ["--json"]])
def test_info_on_a_missing_file(capsys, tmp_path, flag):
    missing = str(tmp_path / "nope.yaml")
    code, out, err = run(capsys, "info", *flag, missing)
    assert code == 2
    assert out == ""
    assert missing in err and "Traceback" not in err
