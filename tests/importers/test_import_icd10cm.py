"""parse_icd10cm / import_icd10cm / `taskgraph import icd10cm`.

tests/data/icd10cm_tabular_slice.xml is cut from the April 2026 ICD-10-CM tabular XML
(public domain, CDC/NCHS, as shipped by simple-icd-10-cm): chapter 1 with the first
three categories of A00-A09 and the one-category section B10, and chapter 19 with the
first two subcategories of S00 and of S06 (7th characters A, D, S; the S06 exception).
Expected names and parents were read off the XML by hand.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from taskgraph.cli.main import main
from taskgraph.errors import DataError
from taskgraph.hierarchy import load_hierarchy
from taskgraph.importers import import_icd10cm, parse_icd10cm
from taskgraph.importers import icd10cm as icd_module

SLICE = Path(__file__).resolve().parents[1] / "data" / "icd10cm_tabular_slice.xml"

BY_HAND = {
    "chapter 1": (),
    "A00-A09": ("chapter 1",),
    "A00": ("A00-A09",),
    "A00.0": ("A00",),
    "A01.00": ("A01.0",),
    "B10-B10": ("chapter 1",),  # the section, renamed: the category is also B10
    "B10": ("B10-B10",),
    "B10.01": ("B10.0",),
    "chapter 19": (),
    "S00-S09": ("chapter 19",),
    "S00.00": ("S00.0",),
    "S00.00XA": ("S00.00",),  # padded with X to six characters, then the 7th
    "S00.00XS": ("S00.00",),
    "S06.0X1D": ("S06.0X1",),
    "S06.1X7A": ("S06.1X7",),
}


@pytest.fixture(scope="module")
def sliced():
    return import_icd10cm(SLICE)


def test_slice_names_and_parents(sliced):
    for name, parents in BY_HAND.items():
        assert sliced.parents(name) == parents, name
    assert sliced.roots == ("chapter 1", "chapter 19")
    assert all(sliced[t].type == "binary" for t in sliced.task_names)
    assert sliced.model.coherent
    assert sliced["A00.0"].description == "Cholera due to Vibrio cholerae 01, biovar cholerae"


def test_seven_character_extensions(sliced):
    # A, D, S under every leaf of S00 and S06 ...
    assert {"S00.00XA", "S00.00XD", "S00.00XS"} <= set(sliced.children("S00.00"))
    assert sliced["S00.00XD"].description.endswith(", subsequent encounter")
    # ... except S06 codes with 6th character 7 or 8: only A (the category's note)
    assert sliced.children("S06.1X7") == ("S06.1X7A",)
    assert sliced.children("S06.1X8") == ("S06.1X8A",)
    # a non-leaf gets none, and chapter 1 has no 7th characters at all
    assert not any(len(c.replace(".", "")) == 7 for c in sliced.children("S06.1X"))
    assert not any(n.startswith(("A", "B")) and "-" not in n and len(n.replace(".", "")) == 7
                   for n in sliced.task_names)


def test_without_extensions():
    h = import_icd10cm(SLICE, extensions=False)
    full = import_icd10cm(SLICE)
    dropped = set(full.task_names) - set(h.task_names)
    assert dropped and all(len(n.replace(".", "")) == 7 and n[0] == "S" for n in dropped)
    assert h.children("S00.00") == ()


def test_round_trips_through_yaml(sliced, tmp_path):
    out = tmp_path / "icd.yaml"
    sliced.to_yaml(out)
    again = load_hierarchy(out)
    assert again.task_names == sliced.task_names
    assert sorted(again.graph.edges) == sorted(sliced.graph.edges)


def test_padding_of_short_codes():
    xml = ("<ICD10CM.tabular><chapter><name>19</name><desc>Injury</desc>"
           "<section id='T00-T01'><desc>s</desc><diag><name>T00</name><desc>d</desc>"
           "<sevenChrDef><extension char='A'>initial</extension></sevenChrDef>"
           "<diag><name>T00.1</name><desc>e</desc></diag></diag></section>"
           "</chapter></ICD10CM.tabular>")
    h = parse_icd10cm(xml)
    assert h.children("T00.1") == ("T00.1XXA",)
    assert h.children("T00") == ("T00.1",)  # T00 has a child, so no extension of its own


@pytest.mark.parametrize("text, words", [
    ("<ICD10CM.tabular><chapter>", "not well-formed"),
    ("<something/>", "not ICD-10-CM tabular XML"),
    ("<ICD10CM.tabular><chapter><desc>x</desc></chapter></ICD10CM.tabular>", "without <name>"),
    ("<ICD10CM.tabular><chapter><name>1</name><desc>x</desc><section><desc>y</desc>"
     "</section></chapter></ICD10CM.tabular>", "section> without an id"),
    ("<ICD10CM.tabular><chapter><name>1</name><desc>x</desc><section id='A-B'><desc>y</desc>"
     "<diag><name>A</name><desc>z</desc></diag><diag><name>A</name><desc>z</desc></diag>"
     "</section></chapter></ICD10CM.tabular>", "'A' appears twice"),
])
def test_bad_xml_one_clear_message(text, words, tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        import_icd10cm(path)
    assert words in str(err.value) and str(path) in str(err.value)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError) as err:
        icd_module.default_path()
    assert 'pip install "taskgraph[icd10]"' in str(err.value)


def test_cli_import_writes_valid_yaml(tmp_path, capsys):
    out = tmp_path / "icd.yaml"
    assert main(["import", "icd10cm", str(SLICE), "-o", str(out)]) == 0
    assert "tasks" in capsys.readouterr().err
    assert load_hierarchy(out).parents("S00.00XA") == ("S00.00",)
    assert main(["import", "icd10cm", str(SLICE), "--no-extensions", "-o", str(out)]) == 0
    assert "S00.00XA" not in load_hierarchy(out).tasks


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert main(["import", "icd10cm", str(tmp_path / "absent.xml")]) == 2
    assert "absent.xml" in capsys.readouterr().err
    bad = tmp_path / "bad.xml"
    bad.write_text("<ICD10CM.tabular>", encoding="utf-8")
    assert main(["import", "icd10cm", str(bad)]) == 2
    assert "bad.xml" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("simple_icd_10_cm") is None,
                    reason="the optional package simple-icd-10-cm is not installed")
def test_full_release_matches_simple_icd_10_cm():
    import simple_icd_10_cm as icd

    h = import_icd10cm()
    codes = icd.get_all_codes(True)
    assert len(h) == len(codes) > 98_000  # B10 is listed twice there: section and category

    def ours(code: str, parent: str) -> str:
        if icd.is_chapter(parent):
            return "chapter " + parent
        one_category_section = icd.is_block(parent) and "-" not in parent
        if one_category_section and (parent == code or not icd.is_category(parent)):
            return f"{parent}-{parent}"
        return parent

    for code in codes:
        if not icd.is_chapter(code):
            assert h.parents(code) == (ours(code, icd.get_parent(code)),), code
    assert len(h.roots) == 22
