"""read_table: CSV and NPZ files into a TaskDataset; each error names file and place.

Expected feature and target matrices are written out by hand from the file text.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import taskgraph as tg
from taskgraph.datasets import read_table, target_column_names
from taskgraph.datasets.tabular import MissingLabelsWarning
from taskgraph.errors import DataError

REPO = Path(__file__).resolve().parents[2]
ANIMALS = tg.load_hierarchy(REPO / "hierarchies" / "animals.yaml")
# diet classes: herbivore 0, carnivore 1, omnivore 2; species: cat 0, dog 1, cow 2, eagle 3
SHAPES = tg.load_hierarchy("""\
taskgraph: 1
name: shapes
tasks:
  kind: {type: multiclass, classes: [a, b, c]}
  tags: {type: multilabel, classes: [red, round, big], parents: [kind]}
  pos:  {type: regression, outputs: 2, parents: [kind]}
""")
MAMMAL = tg.load_hierarchy({"taskgraph": 1, "tasks": {"mammal": {"type": "binary"}}})
DIET = tg.load_hierarchy({"taskgraph": 1, "tasks": {
    "diet": {"type": "multiclass", "classes": ["herbivore", "carnivore", "omnivore"]}}})
NAN = math.nan


def write(tmp_path: Path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def assert_matrix(actual, expected) -> None:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), (actual, expected)
    np.testing.assert_allclose(actual, expected, atol=1e-6, equal_nan=True)


def error_of(path, hierarchy, **kw) -> str:
    with pytest.raises(DataError) as info:
        read_table(path, hierarchy, **kw)
    message = str(info.value)
    assert str(path) in message, message
    return message


# -- CSV -----------------------------------------------------------------------------------

def test_column_names_per_task():
    assert target_column_names(ANIMALS) == {
        "mammal": ["mammal"], "diet": ["diet"], "species": ["species"],
        "weight_kg": ["weight_kg"]}
    assert target_column_names(SHAPES) == {
        "kind": ["kind"], "tags": ["tags.red", "tags.round", "tags.big"],
        "pos": ["pos.0", "pos.1"]}


def test_csv_class_names_and_blanks(tmp_path):
    path = write(tmp_path,
                 "f1,species,f2,mammal,diet,weight_kg\n"
                 "0.5,cat,1,1,carnivore,4.2\n"
                 "-2,eagle,0,0,,\n"
                 "3e2,,7,,omnivore,30\n"
                 "1,cow,2,yes,0,600\n")
    ds = read_table(path, ANIMALS)
    assert_matrix(ds.features, [[0.5, 1], [-2, 0], [300, 7], [1, 2]])
    # columns: mammal, diet, species, weight_kg (hierarchy order, not file order)
    assert_matrix(ds.targets, [[1, 1, 0, 4.2],
                               [0, NAN, 3, NAN],
                               [NAN, 2, NAN, 30],
                               [1, 0, 2, 600]])
    assert len(ds) == 4


def test_csv_task_columns_may_be_absent_with_partial_labels(tmp_path):
    with pytest.warns(MissingLabelsWarning):
        ds = read_table(write(tmp_path, "a,diet\n1,herbivore\n2,carnivore\n"), ANIMALS,
                        labels="partial")
    assert_matrix(ds.targets, [[NAN, 0, NAN, NAN], [NAN, 1, NAN, NAN]])


def test_csv_multilabel_and_k_output_regression(tmp_path):
    path = write(tmp_path,
                 "x1,kind,tags.red,tags.round,tags.big,pos.0,pos.1,x2\n"
                 "1,a,1,0,0,0.5,-0.5,10\n"
                 "2,c,0,1,,1.5,,20\n"
                 "3,,,,,,,30\n")
    ds = read_table(path, SHAPES)
    assert_matrix(ds.features, [[1, 10], [2, 20], [3, 30]])
    assert_matrix(ds.targets, [[0, 1, 0, 0, 0.5, -0.5],
                               [2, 0, 1, NAN, 1.5, NAN],
                               [NAN, NAN, NAN, NAN, NAN, NAN]])


def test_csv_explicit_feature_columns(tmp_path):
    path = write(tmp_path, "id,x1,kind,x2\n100,1,b,10\n200,2,a,20\n")
    ds = read_table(path, SHAPES, feature_columns=["x2", "x1"], labels="none")
    assert_matrix(ds.features, [[10, 1], [20, 2]])
    assert_matrix(ds.targets[:, 0], [1, 0])


def test_csv_explicit_feature_column_missing(tmp_path):
    path = write(tmp_path, "id,x1,kind,x2\n100,1,b,10\n")
    message = error_of(path, SHAPES, feature_columns=["x3"])
    assert "'x3'" in message


def test_csv_blank_lines_between_rows_are_skipped(tmp_path):
    ds = read_table(write(tmp_path, "f,mammal\n1,1\n\n2,0\n\n"), MAMMAL)
    assert_matrix(ds.features, [[1], [2]])


def test_csv_utf8_bom(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefff1,mammal\n1,0\n".encode("utf-8"))
    ds = read_table(path, MAMMAL)
    assert_matrix(ds.features, [[1]])


@pytest.mark.parametrize("cell", ["abc", "1,5"])
def test_csv_non_number_feature(tmp_path, cell):
    quoted = f'"{cell}"' if "," in cell else cell
    path = write(tmp_path, f"f1,f2,mammal\n1,2,1\n3,{quoted},0\n")
    message = error_of(path, MAMMAL)
    assert "line 3" in message and "'f2'" in message and repr(cell) in message


@pytest.mark.parametrize("bad", ["3,x,0", "3,4"], ids=["not-a-number", "ragged"])
def test_csv_error_line_counts_blank_lines(tmp_path, bad):
    # the bad row is on line 4 of the file (line 3 is blank)
    path = write(tmp_path, f"f1,f2,mammal\n1,2,1\n\n{bad}\n")
    message = error_of(path, MAMMAL)
    assert "line 4" in message, message


def test_csv_misspelt_task_column_is_flagged(tmp_path):
    path = write(tmp_path, "f1,dieet\n1,carnivore\n")
    message = error_of(path, ANIMALS)
    assert "'dieet'" in message and "'diet'" in message


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf", "NaN"])
def test_csv_non_finite_feature(tmp_path, cell):
    path = write(tmp_path, f"f1,f2,mammal\n1,{cell},1\n")
    message = error_of(path, MAMMAL)
    assert "line 2" in message and "'f2'" in message and "finite" in message


def test_csv_empty_feature_cell(tmp_path):
    message = error_of(write(tmp_path, "f1,f2,mammal\n1,,1\n"), MAMMAL)
    assert "line 2" in message and "'f2'" in message


def test_csv_duplicate_column(tmp_path):
    message = error_of(write(tmp_path, "f1,mammal,f1\n1,1,2\n"), MAMMAL)
    assert "duplicate" in message and "'f1'" in message


@pytest.mark.parametrize("row,fields", [("1,2", 2), ("1,2,1,9", 4)])
def test_csv_ragged_row(tmp_path, row, fields):
    path = write(tmp_path, f"f1,f2,mammal\n1,2,1\n4,5,0\n{row}\n")
    message = error_of(path, MAMMAL)
    assert "line 4" in message and f"{fields} fields" in message and "3" in message


def test_csv_unknown_class_label_with_suggestion(tmp_path):
    path = write(tmp_path, "f1,diet\n1,carnivore\n2,carnivor\n")
    message = error_of(path, DIET)
    assert "'diet'" in message and "'carnivor'" in message
    assert "did you mean 'carnivore'" in message


def test_csv_class_index_out_of_range(tmp_path):
    message = error_of(write(tmp_path, "f1,species\n1,4\n"), ANIMALS, labels="none")
    assert "line 2, column 'species'" in message and "index 0..3, got '4'" in message


def test_csv_missing_multilabel_column(tmp_path):
    path = write(tmp_path, "x,tags.red,tags.round\n1,1,0\n")
    message = error_of(path, SHAPES)
    assert "'tags'" in message and "tags.big" in message


def test_csv_bad_multilabel_cell(tmp_path):
    path = write(tmp_path, "x,tags.red,tags.round,tags.big\n1,1,yes,0\n")
    message = error_of(path, SHAPES)
    assert "'tags'" in message


def test_csv_empty_file(tmp_path):
    message = error_of(write(tmp_path, ""), ANIMALS)
    assert "empty" in message


def test_csv_header_without_rows(tmp_path):
    message = error_of(write(tmp_path, "f1,mammal\n"), MAMMAL)
    assert "no data rows" in message


def test_csv_no_feature_columns(tmp_path):
    message = error_of(write(tmp_path, "mammal,diet\n1,carnivore\n"), ANIMALS)
    assert "no feature columns" in message


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("f1,diet\n1,caf\xe9\n".encode("latin-1"))
    error_of(path, DIET)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / "none.csv", ANIMALS)


# -- NPZ -----------------------------------------------------------------------------------

def test_npz_x_and_y(tmp_path):
    path = tmp_path / "d.npz"
    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    Y = np.array([[1, 0, 2, 600.0], [0, 1, 3, 5.0], [1, -1, -1, NAN]])
    np.savez(path, X=X, Y=Y)
    ds = read_table(path, ANIMALS)
    assert_matrix(ds.features, X)
    assert_matrix(ds.targets, Y)


def test_npz_per_task_arrays(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.array([[0.5], [1.5]]), species=np.array(["dog", "cow"]),
             weight_kg=np.array([20.0, 700.0]))
    ds = read_table(path, ANIMALS, labels="none")
    assert_matrix(ds.targets, [[NAN, NAN, 1, 20], [NAN, NAN, 2, 700]])


def test_npz_multilabel_and_k_output(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((2, 3)), tags=np.array([[1, 0, 1], [0, 0, 0]]),
             pos=np.array([[1.0, 2.0], [3.0, 4.0]]))
    ds = read_table(path, SHAPES, labels="none")
    assert_matrix(ds.targets, [[NAN, 1, 0, 1, 1, 2], [NAN, 0, 0, 0, 3, 4]])


def test_npz_without_x(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.zeros((2, 2)), mammal=np.array([0, 1]))
    message = error_of(path, ANIMALS)
    assert "'X'" in message and "features" in message


def test_npz_array_not_a_task(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((2, 2)), mamal=np.array([0, 1]))
    message = error_of(path, ANIMALS)
    assert "'mamal'" in message and "did you mean 'mammal'" in message


def test_npz_wrong_y_shape(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((2, 2)), Y=np.zeros((2, 3)))
    error_of(path, ANIMALS)


def test_npz_non_finite_feature(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.array([[0.0, NAN]]), mammal=np.array([1]))
    message = error_of(path, MAMMAL)
    assert "non-finite" in message


def test_npz_not_an_archive(tmp_path):
    path = write(tmp_path, "X,1\n", name="d.npz")
    error_of(path, ANIMALS)
