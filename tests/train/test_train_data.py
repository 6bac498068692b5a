"""``TaskDataset``: targets from a matrix, a mapping with class names, or a DataFrame,
and one clear DataError for each kind of unusable input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import taskgraph as tg
from taskgraph.train import TaskDataset, split_batch, target_columns
from taskgraph.train.data import MAX_PROBLEMS, encode_labels, label_counts

NAN = float("nan")


@pytest.fixture
def animals(tk):
    return tk.hierarchy("animals")


def _same(a, b) -> bool:
    """Equal, NaN matching NaN."""
    a, b = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    return a.shape == b.shape and bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())


def test_target_columns_follow_the_hierarchy(tk, animals):
    assert target_columns(animals) == [("mammal", 1), ("diet", 1), ("species", 1),
                                       ("weight_kg", 1)]
    sentiment = tk.hierarchy("sentiment")
    assert target_columns(sentiment) == [("sentiment", 1), ("emotion", 1), ("aspects", 5)]


def test_from_numpy_arrays(animals):
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    y = np.array([[1, 0, 3, 2.5], [0, 2, 1, NAN], [-1, -1, 0, 1.0], [1, 1, 2, 0.0]])
    ds = TaskDataset(x, y, animals)
    assert len(ds) == 4
    xi, yi = ds[1]
    assert xi.dtype == torch.float32 and yi.dtype == torch.float32
    assert torch.equal(xi, torch.tensor([3.0, 4.0, 5.0]))
    assert _same(yi, [0, 2, 1, NAN])
    assert _same(ds.targets, y)


def test_from_mapping_with_class_names(animals):
    x = np.zeros((5, 2))
    ds = TaskDataset(x, {
        "diet": ["carnivore", "herbivore", None, "omnivore", ""],
        "species": ["eagle", "cat", "dog", 1, -1],
        "mammal": ["yes", "no", 1, 0, NAN],
    }, animals)
    # columns: mammal, diet, species, weight_kg (absent task: all missing)
    assert _same(ds.targets[:, 0], [1, 0, 1, 0, NAN])
    assert _same(ds.targets[:, 1], [1, 0, NAN, 2, NAN])
    assert _same(ds.targets[:, 2], [3, 0, 1, 1, -1])
    assert torch.isnan(ds.targets[:, 3]).all()


def test_from_mapping_with_multilabel_task(tk):
    h = tk.hierarchy("sentiment")
    aspects = np.array([[1, 0, 0, 1, 0], [0, 0, 1, 1, 1]], dtype=np.float64)
    ds = TaskDataset(np.zeros((2, 3)), {"emotion": ["anger", "joy"], "aspects": aspects}, h)
    assert ds.targets.shape == (2, 7)
    assert _same(ds.targets[:, 1], [4, 0])
    assert _same(ds.targets[:, 2:], aspects)
    assert torch.isnan(ds.targets[:, 0]).all()


@pytest.mark.parametrize("missing", [
    pytest.param(np.array([1.0, NAN, 0.0]), id="float64-array"),
    pytest.param(np.array([1.0, NAN, 0.0], dtype=np.float32), id="float32-array"),
    pytest.param(torch.tensor([1.0, NAN, 0.0]), id="tensor"),
])
@pytest.mark.parametrize("task,column", [("mammal", 0), ("diet", 1)])
def test_nan_labels_in_a_mapping_are_missing(animals, missing, task, column):
    """NaN means "no label" whatever container the labels come in."""
    ds = TaskDataset(np.zeros((3, 2)), {task: missing}, animals)
    assert _same(ds.targets[:, column], [1, NAN, 0])


def test_from_dataframe(animals):
    import pandas as pd
    frame = pd.DataFrame({
        "length": [0.5, 1.0, 2.0],
        "mammal": [1, 0, 1],
        "height": [3.0, 4.0, 5.0],
        "diet": ["carnivore", "herbivore", None],
        "species": ["cat", "eagle", "cow"],
        "weight_kg": [4.0, NAN, 300.0],
    })
    ds = TaskDataset.from_dataframe(frame, animals)
    assert torch.equal(ds.features, torch.tensor([[0.5, 3.0], [1.0, 4.0], [2.0, 5.0]]))
    assert _same(ds.targets, [[1, 1, 0, 4.0], [0, 0, 3, NAN], [1, NAN, 2, 300.0]])
    only = TaskDataset.from_dataframe(frame, animals, feature_columns=["height"])
    assert torch.equal(only.features, torch.tensor([[3.0], [4.0], [5.0]]))
    assert _same(only.targets, ds.targets)


def test_from_dataframe_missing_feature_column(animals):
    import pandas as pd
    frame = pd.DataFrame({"length": [0.5], "mammal": [1]})
    with pytest.raises(tg.DataError, match="'lenght'.*did you mean 'length'"):
        TaskDataset.from_dataframe(frame, animals, feature_columns=["lenght"])


# -- errors -------------------------------------------------------------------------------
def test_label_outside_the_classes_names_task_value_and_suggestion(animals):
    with pytest.raises(tg.DataError) as err:
        TaskDataset(np.zeros((3, 2)), {"diet": ["herbivore", "carnivor", "omnivore"]}, animals)
    message = str(err.value)
    assert "'diet'" in message and "'carnivor'" in message
    assert "did you mean 'carnivore'" in message
    assert message.startswith("row 1 (0-based): multiclass task 'diet' expects")


@pytest.mark.parametrize("task,labels,needle", [
    ("diet", [0, 3], "3"),          # class index out of range
    ("diet", [0.5, 1], "0.5"),      # not an integer
    ("mammal", [1, 2], "2"),        # binary label that is neither 0 nor 1
    ("mammal", ["maybe", 1], "maybe"),
])
def test_bad_labels_raise_data_error(animals, task, labels, needle):
    with pytest.raises(tg.DataError) as err:
        TaskDataset(np.zeros((2, 2)), {task: labels}, animals)
    assert repr(task) in str(err.value) and needle in str(err.value)


def test_every_bad_label_in_a_mapping_is_reported(animals):
    with pytest.raises(tg.DataError) as err:
        TaskDataset(np.zeros((4, 1)), {
            "mammal": [1, "maybe", 0, 2],
            "diet": ["herbivore", 1.5, "carnivor", 3],
            "weight_kg": [1.0, "heavy", math.inf, None],
        }, animals)
    diet = ("multiclass task 'diet' expects a class name (herbivore, carnivore, omnivore) "
            "or an integer index 0..2, got")
    assert str(err.value).split("\n") == [
        "row 1 (0-based): binary task 'mammal' expects 0/1, true/false or yes/no, got 'maybe'",
        "row 3 (0-based): binary task 'mammal' expects 0/1, true/false or yes/no, got 2",
        f"row 1 (0-based): {diet} 1.5",
        f"row 2 (0-based): {diet} 'carnivor' (did you mean 'carnivore'?)",
        f"row 3 (0-based): {diet} 3",
        "row 1 (0-based): regression task 'weight_kg' expects a number, got 'heavy'",
        "row 2 (0-based): regression task 'weight_kg' expects a finite number (blank or NaN "
        "for missing), got inf",
    ]


def test_numeric_arrays_are_checked_too(animals):
    labels = np.array([0.0, 2.0, 7.0, -1.0, NAN, 0.5])
    with pytest.raises(tg.DataError) as err:
        TaskDataset(np.zeros((6, 1)), {"diet": labels}, animals)
    lines = str(err.value).split("\n")
    assert [line.split(":")[0] for line in lines] == ["row 2 (0-based)", "row 5 (0-based)"]
    assert lines[0].endswith("got 7.0") and lines[1].endswith("got 0.5")


def test_encode_labels_uses_the_callers_row_names(animals):
    with pytest.raises(tg.DataError) as err:
        encode_labels(animals, "mammal", ["yes", "no", "perhaps"],
                      rows=["line 2", "line 4", "line 9"])
    assert str(err.value) == ("line 9: binary task 'mammal' expects 0/1, true/false or "
                              "yes/no, got 'perhaps'")


def test_encode_labels_lists_at_most_twenty(animals):
    assert MAX_PROBLEMS == 20
    with pytest.raises(tg.DataError) as err:
        encode_labels(animals, "species", ["cat"] + ["lion"] * 30)
    lines = str(err.value).split("\n")
    assert len(lines) == 21 and lines[-1] == "... and 10 more problem(s) not shown"
    assert lines[0].startswith("row 1 (0-based): ") and lines[19].startswith("row 20 (0-based)")


def test_multilabel_and_multi_output_labels_in_a_mapping():
    h = tg.load_hierarchy({"taskgraph": 1, "tasks": {
        "tags": {"type": "multilabel", "classes": ["red", "round"]},
        "pos": {"type": "regression", "outputs": 2}}})
    ds = TaskDataset(np.zeros((2, 1)), {"tags": [[1, -1], [None, 0]],
                                        "pos": [["1.5", ""], [2, -3]]}, h)
    assert _same(ds.targets, [[1, -1, 1.5, NAN], [NAN, 0, 2, -3]])
    with pytest.raises(tg.DataError) as err:
        TaskDataset(np.zeros((2, 1)), {"tags": [[1, "yes"], [2, 0]],
                                       "pos": [["x", 0], [0, 0]]}, h)
    assert str(err.value).split("\n") == [
        "row 0 (0-based), class 'round': multilabel task 'tags' expects 0 or 1, got 'yes'",
        "row 1 (0-based), class 'red': multilabel task 'tags' expects 0 or 1, got 2",
        "row 0 (0-based), output 0: regression task 'pos' expects a number, got 'x'",
    ]


def test_every_unknown_task_is_named(animals):
    with pytest.raises(tg.DataError) as err:
        TaskDataset(np.zeros((1, 1)), {"dite": [0], "mammal": [1], "specie": ["cat"]}, animals)
    lines = str(err.value).split("\n")
    assert len(lines) == 2
    assert "'dite'" in lines[0] and "did you mean 'diet'" in lines[0]
    assert "'specie'" in lines[1] and "did you mean 'species'" in lines[1]


def test_non_numeric_target_matrix(animals):
    with pytest.raises(tg.DataError, match="not a numeric matrix"):
        TaskDataset(np.zeros((1, 1)), [["cat", 0, 0, 0]], animals)


def test_label_counts(animals):
    # mammal: rows 0, 2; diet: none (-1 is missing); species: rows 0, 1;
    # weight_kg: rows 0, 1, 2 (-1 is a value for regression)
    y = np.array([[1, -1, 0, 4.0], [NAN, -1, 3, -1.0], [0, NAN, -1, 0.0]])
    assert label_counts(TaskDataset(np.zeros((3, 1)), y, animals)) == {
        "mammal": 2, "diet": 0, "species": 2, "weight_kg": 3}
    h = tg.load_hierarchy({"taskgraph": 1, "tasks": {
        "tags": {"type": "multilabel", "classes": ["red", "round"]},
        "pos": {"type": "regression", "outputs": 2}}})
    y = np.array([[-1, 0, NAN, 1.0], [-1, -1, NAN, NAN], [NAN, 1, -1, NAN]])
    assert label_counts(TaskDataset(np.zeros((3, 1)), y, h)) == {"tags": 2, "pos": 2}


@pytest.mark.parametrize("bad", [NAN, math.inf, -math.inf])
def test_non_finite_features_name_the_row(animals, bad):
    x = np.zeros((6, 3))
    x[4, 2] = bad
    with pytest.raises(tg.DataError, match=r"row 4 \(0-based\)"):
        TaskDataset(x, None, animals)
    with pytest.raises(tg.DataError, match=r"row 4 \(0-based\)"):
        TaskDataset(torch.as_tensor(x), None, animals)


def test_wrong_number_of_target_columns(animals):
    with pytest.raises(tg.DataError, match=r"expected shape \(3, 4\).*got \(3, 3\)"):
        TaskDataset(np.zeros((3, 2)), np.zeros((3, 3)), animals)


def test_wrong_number_of_target_rows(animals):
    with pytest.raises(tg.DataError, match=r"\(3, 4\)"):
        TaskDataset(np.zeros((3, 2)), np.zeros((2, 4)), animals)


def test_unknown_task_in_mapping(animals):
    with pytest.raises(tg.DataError, match="'dite'.*did you mean 'diet'"):
        TaskDataset(np.zeros((2, 2)), {"dite": ["carnivore", "cat"]}, animals)


def test_mapping_with_wrong_length(animals):
    with pytest.raises(tg.DataError, match="'species'"):
        TaskDataset(np.zeros((3, 2)), {"species": ["cat", "dog"]}, animals)


def test_no_rows(animals):
    with pytest.raises(tg.DataError, match="no rows"):
        TaskDataset(np.zeros((0, 2)), None, animals)


# -- batches ------------------------------------------------------------------------------
def test_split_batch_formats():
    x, y = torch.zeros(2, 3), torch.ones(2, 4)
    assert split_batch((x, y)) == (x, y)
    assert split_batch([x, y]) == (x, y)
    assert split_batch({"x": x, "y": y}) == (x, y)
    with pytest.raises(tg.DataError, match="length 3"):
        split_batch((x, y, y))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["herbivore", "carnivore", "omnivore", None, 0, 1, 2, -1]),
                min_size=1, max_size=20))
def test_class_names_and_indices_encode_alike(labels):
    h = tg.load_hierarchy("taskgraph: 1\ntasks:\n  diet: {type: multiclass, "
                          "classes: [herbivore, carnivore, omnivore]}\n")
    index = {"herbivore": 0, "carnivore": 1, "omnivore": 2}
    ds = TaskDataset(np.zeros((len(labels), 1)), {"diet": labels}, h)
    expected = [NAN if v is None else index.get(v, v) for v in labels]
    assert _same(ds.targets[:, 0], expected)


def test_from_dataframe_does_not_share_memory_with_the_frame(animals):
    """Standardizing the features in place must not write into the caller's DataFrame."""
    import pandas as pd
    frame = pd.DataFrame({"length": np.array([1.0, 2.0], dtype=np.float32),
                          "height": np.array([3.0, 4.0], dtype=np.float32),
                          "mammal": [1, 0]})
    ds = TaskDataset.from_dataframe(frame, animals)
    ds.features.sub_(ds.features.mean(0))
    assert frame["length"].tolist() == [1.0, 2.0]
    assert frame["height"].tolist() == [3.0, 4.0]
