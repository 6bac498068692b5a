"""parse_wordnet / import_wordnet on a slice of WordNet 3.0's data.noun.

tests/data/wordnet_data_noun_slice.txt holds the licence header and 51 synsets of
data.noun: the first 40, plus Cape_Horn and Mars (two instance hypernyms each) with
every hypernym up to entity. Expected parents were read off the lines by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from taskgraph.errors import DataError
from taskgraph.hierarchy import load_hierarchy
from taskgraph.importers import import_wordnet, parse_wordnet

SLICE = Path(__file__).resolve().parents[1] / "data" / "wordnet_data_noun_slice.txt"

BY_HAND = {
    "entity.00001740": set(),
    "physical_entity.00001930": {"entity.00001740"},
    "abstraction.00002137": {"entity.00001740"},
    # two hypernyms
    "person.00007846": {"organism.00004475", "causal_agent.00007347"},
    # '#p 00004475' (part holonym) is not a parent
    "cell.00006484": {"living_thing.00004258"},
    # two synsets share the word 'substance'; one hypernym (13809207) lies outside the slice
    "substance.00019613": {"matter.00020827"},
    "substance.00020090": {"matter.00020827"},
    # instance hypernyms (@i)
    "cape_horn.08722645": {"cape.09233715", "promontory.09399592"},
    "mars.09347445": {"terrestrial_planet.09456369", "superior_planet.09450866"},
    "celestial_body.09239740": {"natural_object.00019128"},
}


def raw_synsets() -> list[str]:
    return [line for line in SLICE.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("  ")]


def test_slice_keeps_the_licence_header():
    text = SLICE.read_text(encoding="utf-8")
    assert text.startswith("  1 This software and database is being provided")
    assert "Princeton University" in text


def test_parse_slice_names_and_parents():
    h = import_wordnet(SLICE)
    assert h.name == "wordnet_nouns"
    lines = raw_synsets()
    assert len(h) == len(lines) == 51
    # names: first word, lower-cased, dot, offset; in file order
    expected_names = [f"{line.split()[4].lower()}.{line.split()[0]}" for line in lines]
    assert list(h.task_names) == expected_names
    for task, parents in BY_HAND.items():
        assert set(h.parents(task)) == parents, task
    assert h.roots == ("entity.00001740",)
    assert all(h[t].type == "binary" for t in h)


def test_edges_are_the_in_slice_hypernym_pointers():
    lines = raw_synsets()
    offsets = {line.split()[0]: f"{line.split()[4].lower()}.{line.split()[0]}" for line in lines}
    edges = set()
    for line in lines:
        pointers = line.split("|")[0]
        for target in re.findall(r" @i? (\d{8}) n \d{4}", pointers):
            if target in offsets:
                edges.add((offsets[target], offsets[line.split()[0]]))
    h = parse_wordnet(SLICE.read_text(encoding="utf-8").splitlines())
    assert set(h.graph.edges) == edges
    assert len(edges) == 53


def test_round_trip():
    h = import_wordnet(SLICE, name="wn_slice")
    assert h.name == "wn_slice"
    assert load_hierarchy(h.to_yaml()) == h


def test_missing_file_names_wordnet_base(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        import_wordnet(tmp_path / "data.noun")
    assert "wordnet-base" in str(info.value)
    assert info.value.filename == str(tmp_path / "data.noun")


def test_malformed_line_names_the_line():
    lines = SLICE.read_text(encoding="utf-8").splitlines()[:31] + ["00001740 03 n zz entity"]
    with pytest.raises(DataError, match=r"wn:32:"):
        parse_wordnet(lines, where="wn")


def test_header_only():
    header = [line for line in SLICE.read_text().splitlines() if line.startswith("  ")]
    with pytest.raises(DataError):
        parse_wordnet(header)


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").exists(),
                    reason="Debian wordnet-base is not installed")
def test_installed_wordnet_default_path():
    h = import_wordnet()
    assert len(h) > 80000
    assert h.roots == ("entity.00001740",)
