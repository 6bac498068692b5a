"""``taskgraph import arff|obo|wordnet``: YAML that ``taskgraph validate`` accepts."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from taskgraph.cli.main import main
from taskgraph.datasets.hmc import shipped_root
from taskgraph.hierarchy import load_hierarchy
from taskgraph.importers import import_arff

DATA = Path(__file__).resolve().parents[1] / "data"
SHIPPED = str(Path(shipped_root()) / "cellcycle_FUN.train.arff.gz")
OBO = str(DATA / "go_slice.obo")
WORDNET = str(DATA / "wordnet_data_noun_slice.txt")
GO_SLICE = str(DATA / "cellcycle_GO_slice.train.arff.gz")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_arff_writes_valid_yaml(capsys, tmp_path):
    target = tmp_path / "fun.yaml"
    code, out, err = run(capsys, "import", "arff", SHIPPED, "-o", str(target))
    assert code == 0, err
    assert out == ""
    assert str(target) in err and "499 tasks" in err
    # FunCat declares 499 paths; the ones without '/' are the roots
    with gzip.open(SHIPPED, "rt") as fh:
        paths = next(l for l in fh if "hierarchical" in l).split("hierarchical")[1].strip()
    paths = paths.split(",")
    assert f"{len(paths) - sum('/' not in p for p in paths)} edges" in err
    assert f"{sum('/' not in p for p in paths)} root(s)" in err
    code, out, err = run(capsys, "validate", str(target))
    assert code == 0, err
    assert out.strip() == f"{target}: OK"
    h = load_hierarchy(target)
    assert h.name == "cellcycle_FUN" and len(h) == 499


def test_import_arff_to_stdout(capsys):
    code, out, err = run(capsys, "import", "arff", GO_SLICE, "--name", "go30")
    assert code == 0, err
    h = load_hierarchy(out)
    assert h.name == "go30"
    assert h == import_arff(GO_SLICE, name="go30")
    assert h.roots == ("root",)


def test_import_arff_missing_file(capsys, tmp_path):
    code, out, err = run(capsys, "import", "arff", str(tmp_path / "x.arff.gz"))
    assert code == 2 and "x.arff.gz" in err and "Traceback" not in err


def test_import_arff_bad_file_names_the_line(capsys, tmp_path):
    path = tmp_path / "bad.arff"
    path.write_text("@RELATION r\n@ATTRIBUTE a numeric\n@ATTRIBUTE c hierarchical 01,02\n"
                    "@DATA\n1,01\n2,03\n")
    code, out, err = run(capsys, "import", "arff", str(path))
    assert code == 2
    assert f"{path}:6:" in err and "'03'" in err


@pytest.mark.parametrize("part_of,edges", [(False, 6), (True, 8)])
def test_import_obo(capsys, tmp_path, part_of, edges):
    target = tmp_path / "go.yaml"
    argv = ["import", "obo", OBO, "-o", str(target)] + (["--part-of"] if part_of else [])
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert f"8 tasks, {edges} edges, 2 root(s)" in err
    code, out, err = run(capsys, "validate", str(target))
    assert code == 0, err
    h = load_hierarchy(target)
    assert h.name == "go_slice"
    assert set(h.parents("GO:0005634")) == (
        {"GO:0043231", "GO:0005623"} if part_of else {"GO:0043231"})


def test_import_obo_duplicate_term(capsys, tmp_path):
    path = tmp_path / "dup.obo"
    path.write_text("[Term]\nid: GO:1\n\n[Term]\nid: GO:1\n")
    code, out, err = run(capsys, "import", "obo", str(path))
    assert code == 2 and f"{path}:5:" in err


def test_import_wordnet_slice(capsys, tmp_path):
    target = tmp_path / "wn.yaml"
    code, out, err = run(capsys, "import", "wordnet", WORDNET, "-o", str(target))
    assert code == 0, err
    assert "51 tasks" in err and "1 root(s)" in err
    code, out, err = run(capsys, "validate", str(target))
    assert code == 0, err
    h = load_hierarchy(target)
    assert h.name == "wordnet_nouns"
    assert set(h.parents("person.00007846")) == {"organism.00004475", "causal_agent.00007347"}
    assert set(h.parents("cape_horn.08722645")) == {"cape.09233715", "promontory.09399592"}


def test_import_wordnet_name(capsys):
    code, out, err = run(capsys, "import", "wordnet", WORDNET, "--name", "nouns")
    assert code == 0
    assert load_hierarchy(out).name == "nouns"


def test_import_wordnet_missing_file(capsys, tmp_path):
    code, out, err = run(capsys, "import", "wordnet", str(tmp_path / "data.noun"))
    assert code == 2
    assert "wordnet-base" in err
    assert str(tmp_path / "data.noun") in err
    assert "Traceback" not in err and out == ""
