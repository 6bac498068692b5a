"""parse_obo / import_obo on a hand-written Gene Ontology slice (tests/data/go_slice.obo).

The expected parents below were read off the file by hand.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from taskgraph.errors import DataError
from taskgraph.hierarchy import load_hierarchy
from taskgraph.importers import import_obo, parse_obo

OBO = Path(__file__).resolve().parents[1] / "data" / "go_slice.obo"

TERMS = ["GO:0008150", "GO:0009987", "GO:0005575", "GO:0005623", "GO:0043231",
         "GO:0005634", "GO:0000001", "GO:0000011"]
IS_A = {
    "GO:0008150": set(),
    "GO:0009987": {"GO:0008150"},
    "GO:0005575": set(),
    "GO:0005623": {"GO:0005575"},
    "GO:0043231": {"GO:0005575"},
    "GO:0005634": {"GO:0043231"},
    "GO:0000001": {"GO:0009987"},          # GO:0048308 is not in the file
    "GO:0000011": {"GO:0000001"},          # GO:0000005 is obsolete
}
PART_OF = {"GO:0043231": {"GO:0005623"}, "GO:0005634": {"GO:0005623"}}  # GO:0044464 absent


def parents_of(h) -> dict[str, set[str]]:
    return {t: set(h.parents(t)) for t in h.task_names}


def test_is_a_only():
    h = import_obo(OBO)
    assert h.name == "go_slice"
    assert list(h.task_names) == TERMS
    assert parents_of(h) == IS_A
    assert h.graph.number_of_edges() == 6
    assert set(h.roots) == {"GO:0008150", "GO:0005575"}
    assert "GO:0000005" not in h          # obsolete
    assert "part_of" not in h and "regulates" not in h  # [Typedef] stanzas
    assert all(h[t].type == "binary" for t in h)
    assert h.model.coherent is True
    assert "1 obsolete" in h.description and "2 links" in h.description


def test_part_of_when_asked():
    h = import_obo(OBO, part_of=True, name="go_cc")
    assert h.name == "go_cc"
    expected = {t: IS_A[t] | PART_OF.get(t, set()) for t in TERMS}
    assert parents_of(h) == expected
    assert h.graph.number_of_edges() == 8
    # 'relationship: regulates' is never followed
    assert h.parents("GO:0000001") == ("GO:0009987",)
    assert "1 obsolete" in h.description and "3 links" in h.description


def test_term_names_become_descriptions():
    h = import_obo(OBO)
    assert h["GO:0005634"].description == "nucleus"
    assert h["GO:0043231"].description == "intracellular membrane-bounded organelle"


@pytest.mark.parametrize("part_of", [False, True])
def test_round_trip(part_of):
    h = import_obo(OBO, part_of=part_of)
    again = load_hierarchy(h.to_yaml())
    assert again == h
    assert list(again.task_names) == TERMS


def test_gzipped(tmp_path):
    target = tmp_path / "slice.obo.gz"
    with open(OBO, "rb") as src, gzip.open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    h = import_obo(target)
    assert h.name == "slice"
    assert parents_of(h) == IS_A


def test_parse_lines_with_comments_and_windows_endings():
    text = OBO.read_text(encoding="utf-8").replace("\n", "\r\n")
    h = parse_obo(text.splitlines(keepends=True), name="x")
    assert parents_of(h) == IS_A


def test_term_defined_twice_names_the_line():
    lines = ["[Term]", "id: GO:1", "", "[Term]", "id: GO:2", "", "[Term]", "id: GO:1"]
    with pytest.raises(DataError, match=r"f\.obo:8:.*'GO:1'"):
        parse_obo(lines, where="f.obo")


def test_no_terms():
    with pytest.raises(DataError, match="x.obo"):
        parse_obo(["format-version: 1.2", "[Typedef]", "id: part_of"], where="x.obo")


def test_only_obsolete_terms():
    with pytest.raises(DataError):
        parse_obo(["[Term]", "id: GO:1", "is_obsolete: true"])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_obo(tmp_path / "none.obo")
