"""read_table's ``labels`` modes, and every bad label reported with its file line.

Expected messages, line numbers and matrices are worked out by hand from the file text
(the header is line 1; blank lines count).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import taskgraph as tg
from taskgraph.datasets import read_table
from taskgraph.datasets.tabular import MissingLabelsWarning
from taskgraph.errors import DataError

REPO = Path(__file__).resolve().parents[2]
ANIMALS = tg.load_hierarchy(REPO / "hierarchies" / "animals.yaml")
# columns: mammal, diet (herbivore 0, carnivore 1, omnivore 2), species (cat 0 dog 1
# cow 2 eagle 3), weight_kg
SHAPES = tg.load_hierarchy({"taskgraph": 1, "tasks": {
    "kind": {"type": "multiclass", "classes": ["a", "b", "c"]},
    "tags": {"type": "multilabel", "classes": ["red", "round", "big"], "parents": ["kind"]},
    "pos": {"type": "regression", "outputs": 2, "parents": ["kind"]},
}})
SIZE = tg.load_hierarchy({"taskgraph": 1, "tasks": {"size": {"type": "regression"}}})
NAN = math.nan
FULL = "f1,mammal,diet,species,weight_kg\n"
DIET_EXPECTS = ("multiclass task 'diet' expects a class name (herbivore, carnivore, "
                "omnivore) or an integer index 0..2")


def write(tmp_path: Path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def error_lines(path, hierarchy, **kw) -> list[str]:
    with pytest.raises(DataError) as info:
        read_table(path, hierarchy, **kw)
    lines = str(info.value).split("\n")
    assert all(line.startswith(f"{path}: ") or line.startswith("... and ") for line in lines)
    return lines


def assert_matrix(actual, expected) -> None:
    actual = np.asarray(actual, dtype=np.float64)
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=np.float64), atol=1e-6,
                               equal_nan=True)


# -- labels="required" (the default) --------------------------------------------------------

def test_required_names_every_missing_column(tmp_path):
    path = write(tmp_path, "f1,mammal,diet\n1,1,carnivore\n")
    lines = error_lines(path, ANIMALS)
    assert sorted(lines) == sorted([
        f"{path}: task 'species': no label column 'species'; add it (a blank cell marks a "
        "missing label)",
        f"{path}: task 'weight_kg': no label column 'weight_kg'; add it (a blank cell "
        "marks a missing label)"])


def test_required_suggests_a_misspelt_label_column(tmp_path):
    path = write(tmp_path, FULL.replace("weight_kg", "weight_kgs") + "1,1,0,cat,4\n")
    (line,) = error_lines(path, ANIMALS)
    assert "task 'weight_kg'" in line and "did you mean 'weight_kgs'" in line


def test_required_multilabel_columns_listed(tmp_path):
    path = write(tmp_path, "x,kind,pos.0,pos.1\n1,a,0,0\n")
    (line,) = error_lines(path, SHAPES)
    assert line == (f"{path}: task 'tags': no label columns tags.red, tags.round, tags.big; "
                    "add them (a blank cell marks a missing label)")


def test_required_without_any_label_column(tmp_path):
    path = write(tmp_path, "f1,f2\n1,2\n")
    (line,) = error_lines(path, ANIMALS)
    assert "no label columns at all" in line
    assert "mammal, diet, species, weight_kg" in line and "labels='none'" in line


@pytest.mark.parametrize("labels", ["required", "partial"])
def test_no_known_label_at_all_is_an_error(tmp_path, labels):
    # every label cell blank, NaN or -1
    path = write(tmp_path, FULL + "1,,,,\n\n2,-1,-1,,nan\n")
    (line,) = error_lines(path, ANIMALS, labels=labels)
    assert "no labels at all" in line


def test_required_complete_file(tmp_path):
    path = write(tmp_path, FULL + "1,,,,\n2,0,,eagle,\n")
    ds = read_table(path, ANIMALS)
    assert_matrix(ds.targets, [[NAN, NAN, NAN, NAN], [0, NAN, 3, NAN]])


# -- labels="partial" ----------------------------------------------------------------------

def test_partial_warns_about_the_missing_tasks(tmp_path):
    path = write(tmp_path, "f1,species\n1,cow\n2,\n")
    with pytest.warns(MissingLabelsWarning) as record:
        ds = read_table(path, ANIMALS, labels="partial")
    (w,) = record
    assert issubclass(w.category, UserWarning)
    assert str(w.message) == (f"{path}: no label column for task(s) mammal, diet, weight_kg; "
                              "their labels are all missing")
    assert w.filename == __file__  # points at the caller of read_table
    assert_matrix(ds.targets, [[NAN, NAN, 2, NAN], [NAN, NAN, NAN, NAN]])
    assert_matrix(ds.features, [[1], [2]])


def test_partial_without_any_label_column_is_an_error(tmp_path):
    path = write(tmp_path, "f1\n1\n")
    (line,) = error_lines(path, ANIMALS, labels="partial")
    assert "no label columns at all" in line


# -- labels="none" -------------------------------------------------------------------------

def test_none_reads_a_file_without_labels(tmp_path):
    path = write(tmp_path, "f1,f2\n1,2\n3,4\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = read_table(path, ANIMALS, labels="none")
    assert_matrix(ds.features, [[1, 2], [3, 4]])
    assert bool(np.isnan(ds.targets.numpy()).all())


def test_none_reads_present_label_columns_as_targets_not_features(tmp_path):
    path = write(tmp_path, "f1,weight_kg,f2\n1,4.5,2\n3,,4\n")
    ds = read_table(path, ANIMALS, labels="none")
    assert_matrix(ds.features, [[1, 2], [3, 4]])
    assert_matrix(ds.targets, [[NAN, NAN, NAN, 4.5], [NAN, NAN, NAN, NAN]])


@pytest.mark.parametrize("labels", ["required", "partial", "none"])
def test_a_label_column_is_never_a_feature(tmp_path, labels):
    path = write(tmp_path, FULL + "1,1,0,cat,4\n")
    lines = error_lines(path, ANIMALS, feature_columns=["f1", "weight_kg"], labels=labels)
    assert lines == [f"{path}: column 'weight_kg' holds the labels of task 'weight_kg'; it "
                     "cannot be a feature"]


@pytest.mark.parametrize("labels", ["required", "partial", "none"])
def test_half_a_multilabel_task_is_an_error_in_every_mode(tmp_path, labels):
    path = write(tmp_path, "x,kind,tags.red,tags.big,pos.0,pos.1\n1,a,1,0,0,0\n")
    assert error_lines(path, SHAPES, labels=labels) == [
        f"{path}: task 'tags' needs columns tags.red, tags.round, tags.big; missing tags.round"]


@pytest.mark.parametrize("labels", ["all", "", None, "Required"])
def test_bad_labels_value(tmp_path, labels):
    path = write(tmp_path, FULL + "1,1,0,cat,4\n")
    with pytest.raises(DataError) as info:
        read_table(path, ANIMALS, labels=labels)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == ("labels: expected one of 'required', 'partial', 'none', "
                               f"'ignore', got {labels!r}")


# -- NPZ -----------------------------------------------------------------------------------

def test_npz_required_names_missing_task_arrays(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((2, 1)), mammal=np.array([1, 0]), diet=np.array([0, 2]))
    lines = error_lines(str(path), ANIMALS)
    assert len(lines) == 2
    assert "task 'species': no label array 'species'" in lines[0]
    assert "task 'weight_kg': no label array 'weight_kg'" in lines[1]


def test_npz_partial_and_none(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((2, 1)), diet=np.array(["omnivore", "herbivore"]))
    with pytest.warns(MissingLabelsWarning, match="mammal, species, weight_kg"):
        ds = read_table(path, ANIMALS, labels="partial")
    assert_matrix(ds.targets, [[NAN, 2, NAN, NAN], [NAN, 0, NAN, NAN]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = read_table(path, ANIMALS, labels="none")
    assert_matrix(ds.targets[:, 1], [2, 0])


def test_npz_only_features(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((3, 2)))
    (line,) = error_lines(str(path), ANIMALS)
    assert "no label arrays at all" in line
    assert read_table(path, ANIMALS, labels="none").targets.shape == (3, 4)


def test_npz_y_counts_as_every_task(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((2, 2)), Y=np.array([[-1, -1, -1, NAN], [-1, NAN, -1, NAN]]))
    (line,) = error_lines(str(path), ANIMALS)  # present, but not one known label
    assert "no labels at all" in line
    assert read_table(path, ANIMALS, labels="none").targets.shape == (2, 4)


def test_npz_y_and_task_arrays_together(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((1, 2)), Y=np.array([[1, 0, 0, 1.0]]), diet=np.array([1]))
    (line,) = error_lines(str(path), ANIMALS)
    assert "'diet'" in line and "'Y'" in line


def test_npz_bad_labels_name_row_and_task(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((3, 1)), size=np.array([1.0, np.inf, -np.inf]))
    assert error_lines(str(path), SIZE) == [
        f"{path}: row {i} (0-based): regression task 'size' expects a finite number (blank "
        f"or NaN for missing), got {v}" for i, v in [(1, "inf"), (2, "-inf")]]


# -- one message per bad cell ---------------------------------------------------------------

def test_every_bad_label_with_its_file_line_and_type(tmp_path):
    path = write(tmp_path, FULL +
                 "1,1,carnivore,cat,4\n"      # line 2
                 "\n"                         # line 3 (blank)
                 "2,1,1.5,dog,20\n"           # line 4: diet 1.5
                 "3,0,carnivor,eagle,5\n"     # line 5: diet misspelt
                 "4,maybe,herbivore,cow,600\n"  # line 6: mammal
                 "5,1,omnivore,dgo,heavy\n"   # line 7: species, weight_kg
                 "6,1,omnivore,dog,inf\n"     # line 8: weight_kg infinite
                 "7,1,omnivore,4,nan\n")      # line 9: species index 4; NaN weight = missing
    assert sorted(error_lines(path, ANIMALS)) == sorted([
        f"{path}: line 6, column 'mammal': binary task 'mammal' expects 0/1, true/false or "
        "yes/no, got 'maybe'",
        f"{path}: line 4, column 'diet': {DIET_EXPECTS}, got '1.5'",
        f"{path}: line 5, column 'diet': {DIET_EXPECTS}, got 'carnivor' (did you mean "
        "'carnivore'?)",
        f"{path}: line 7, column 'species': multiclass task 'species' expects a class name "
        "(cat, dog, cow, eagle) or an integer index 0..3, got 'dgo' (did you mean 'dog'?)",
        f"{path}: line 9, column 'species': multiclass task 'species' expects a class name "
        "(cat, dog, cow, eagle) or an integer index 0..3, got '4'",
        f"{path}: line 7, column 'weight_kg': regression task 'weight_kg' expects a number, "
        "got 'heavy'",
        f"{path}: line 8, column 'weight_kg': regression task 'weight_kg' expects a finite "
        "number (blank or NaN for missing), got 'inf'",
    ])


def test_nan_and_blank_regression_labels_are_missing(tmp_path):
    path = write(tmp_path, "f,size\n1,nan\n2,\n3,-1\n4,NaN\n5,2.5e1\n")
    ds = read_table(path, SIZE)
    assert_matrix(ds.targets[:, 0], [NAN, NAN, -1, NAN, 25])


def test_multilabel_and_multi_output_cells(tmp_path):
    path = write(tmp_path,
                 "x,kind,tags.red,tags.round,tags.big,pos.0,pos.1\n"
                 "1,a,1,yes,0,0.5,1\n"   # line 2: tags.round
                 "2,b,0,1,2,x,1e400\n"   # line 3: tags.big, pos.0, pos.1 (overflows to inf)
                 "3,c,,-1,0.5,,\n")      # line 4: tags.big 0.5 (blank and -1: missing)
    lines = error_lines(path, SHAPES)
    assert sorted(lines) == sorted([
        f"{path}: line 2, column 'tags.round': multilabel task 'tags' expects 0 or 1, got "
        "'yes'",
        f"{path}: line 3, column 'tags.big': multilabel task 'tags' expects 0 or 1, got '2'",
        f"{path}: line 4, column 'tags.big': multilabel task 'tags' expects 0 or 1, got "
        "'0.5'",
        f"{path}: line 3, column 'pos.0': regression task 'pos' expects a number, got 'x'",
        f"{path}: line 3, column 'pos.1': regression task 'pos' expects a finite number "
        "(blank or NaN for missing), got '1e400'",
    ])
    assert not any("could not convert" in line for line in lines)


def test_the_list_is_capped_at_twenty(tmp_path):
    # 25 bad cells on lines 2..26
    path = write(tmp_path, "f,size\n" + "".join(f"{i},big\n" for i in range(25)))
    lines = error_lines(path, SIZE)
    assert len(lines) == 21
    assert lines[-1] == "... and 5 more problem(s) not shown"
    assert [line.split(",")[0] for line in lines[:20]] == [
        f"{path}: line {n}" for n in range(2, 22)]


def test_bad_labels_and_bad_features_in_one_report(tmp_path):
    path = write(tmp_path, "f,g,size\n1,x,3\n2,3,y\n")
    assert sorted(error_lines(path, SIZE)) == sorted([
        f"{path}: line 2, column 'g': 'x' is not a number (is it a task column? tasks: size)",
        f"{path}: line 3, column 'size': regression task 'size' expects a number, got 'y'"])


def test_every_ragged_row_is_listed(tmp_path):
    path = write(tmp_path, "f,size\n1,2\n1\n\n1,2,3\n")
    assert error_lines(path, SIZE) == [
        f"{path}: line 3 has 1 fields, the header has 2",
        f"{path}: line 5 has 3 fields, the header has 2"]


def test_a_quoted_cell_over_two_lines_keeps_line_numbers_right(tmp_path):
    # the first data row spans lines 2-3; the bad row is line 4
    path = write(tmp_path, 'note,f,size\n"two\nlines",1,2\nok,2,heavy\n')
    (line,) = error_lines(path, SIZE, feature_columns=["f"])
    assert line.startswith(f"{path}: line 4, column 'size': ")


def test_ignore_skips_label_columns_whatever_they_hold(tmp_path):
    """For prediction: label cells are not read (a bad one is no error) and never become
    features; a file without label columns reads the same."""
    with_labels = tmp_path / "with.csv"
    with_labels.write_text("f1,species,f2,diet\n1.5,tiger,2,\n-1,cat,0.5,carnivore\n")
    without = tmp_path / "without.csv"
    without.write_text("f1,f2\n1.5,2\n-1,0.5\n")
    for path in (with_labels, without):
        ds = read_table(path, ANIMALS, labels="ignore")
        assert ds.features.tolist() == [[1.5, 2.0], [-1.0, 0.5]]
        assert torch.isnan(ds.targets).all()
