"""load_hmc and the benchmark protocol's preprocessing (DESIGN.md §5).

References come from the raw ARFF text (read here with a few lines of string handling)
or were worked out by hand; the shipped cellcycle_FUN is always available, the full
collection in ../shared/data/hmc only on some machines (those tests skip without it).
"""

from __future__ import annotations

import gzip
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from taskgraph.datasets.hmc import HMCData, Split, load_hmc, shipped_root
from taskgraph.errors import DataError

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data" / "hmc"
GO_SLICE = REPO / "tests" / "data" / "cellcycle_GO_slice.train.arff.gz"
GO_ROOTS = {"root", "GO0003674", "GO0005575", "GO0008150"}

needs_shared = pytest.mark.skipif(not SHARED.is_dir(),
                                  reason="../shared/data/hmc (the full HMC collection) is absent")


def raw_rows(path: Path) -> list[list[str]]:
    """The data rows of an ARFF file as lists of cells, straight from the text."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().upper() == "@DATA") + 1
    return [line.split(",") for line in lines[start:] if line.strip()
            and not line.startswith("%")]


def raw_column(path: Path, j: int) -> np.ndarray:
    return np.array([math.nan if r[j] == "?" else float(r[j]) for r in raw_rows(path)])


@pytest.fixture(scope="module")
def fun():
    return load_hmc("cellcycle_FUN")


@pytest.fixture(scope="module")
def fun_pre(fun):
    return fun.preprocessed()


def shipped(split: str) -> Path:
    return Path(shipped_root()) / f"cellcycle_FUN.{split}.arff.gz"


# -- the shipped cellcycle_FUN -------------------------------------------------------------

def test_shipped_shapes_match_the_files(fun):
    assert fun.name == "cellcycle_FUN" and fun.hierarchy.name == "cellcycle_FUN"
    n_labels = len(fun.hierarchy)
    assert n_labels == 499
    for split in ("train", "valid", "test"):
        rows = raw_rows(shipped(split))
        s = getattr(fun, split)
        assert s.X.shape == (len(rows), len(rows[0]) - 1) == (len(rows), 77)
        assert s.Y.shape == (len(rows), n_labels)
    assert (len(fun.train.X), len(fun.valid.X), len(fun.test.X)) == (1628, 848, 1281)
    assert len(fun.feature_names) == 77


def test_shipped_labels_are_binary_and_closed_under_ancestors(fun):
    h = fun.hierarchy
    idx = h.index
    parents = np.array([idx[p] for p, _ in h.graph.edges])
    children = np.array([idx[c] for _, c in h.graph.edges])
    assert len(parents) == 499 - len(h.roots)  # a forest: one edge per non-root label
    for split in (fun.train, fun.valid, fun.test):
        assert set(np.unique(split.Y)) == {0.0, 1.0}
        # a child's label never set without its parent's
        assert not (split.Y[:, children] > split.Y[:, parents]).any()
        assert (split.Y.sum(axis=1) > 0).all()


def test_shipped_label_columns_follow_the_hierarchy_order(fun):
    # test row 1 straight from the file: each listed FunCat path plus all its prefixes,
    # placed by name through hierarchy.task_names
    for split, s in (("train", fun.train), ("test", fun.test)):
        row = raw_rows(shipped(split))[0]
        expected = set()
        for label in row[-1].split("@"):
            parts = label.split("/")
            expected |= {"/".join(parts[:k]) for k in range(1, len(parts) + 1)}
        got = {fun.hierarchy.task_names[j] for j in np.flatnonzero(s.Y[0])}
        assert got == expected


def test_shipped_features_match_the_file(fun):
    for split, s in (("train", fun.train), ("valid", fun.valid), ("test", fun.test)):
        for j in (0, 1, 76):
            col = raw_column(shipped(split), j)
            np.testing.assert_allclose(s.X[:, j], col, atol=1e-6, equal_nan=True)
    assert np.isnan(fun.train.X).any()  # the real data has '?' cells


def test_shipped_eval_columns_exclude_only_roots(fun):
    assert fun.roots == []  # FunCat paths: no 'root' label
    assert fun.eval_columns.tolist() == list(range(499))


def test_preprocessed_has_no_nan_and_standard_train_valid(fun, fun_pre):
    for s in (fun_pre.train, fun_pre.valid, fun_pre.test):
        assert np.isfinite(s.X).all()
        assert s.X.dtype == np.float32
    fit = np.concatenate([fun_pre.train.X, fun_pre.valid.X]).astype(np.float64)
    np.testing.assert_allclose(fit.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(fit.std(axis=0), 1.0, atol=1e-4)
    # labels unchanged, the original left alone
    np.testing.assert_array_equal(fun_pre.test.Y, fun.test.Y)
    assert np.isnan(fun.train.X).any()
    assert fun_pre.hierarchy == fun.hierarchy


@pytest.mark.parametrize("j", [1, 40])
def test_preprocessed_test_uses_train_valid_statistics(fun_pre, j):
    # column j from the raw text: mean over present train+valid cells, missing cells
    # filled with it, population std of the filled train+valid column
    fit = np.concatenate([raw_column(shipped("train"), j), raw_column(shipped("valid"), j)])
    assert np.isnan(fit).any()
    mean = np.nanmean(fit)
    std = np.where(np.isnan(fit), mean, fit).std()
    test = raw_column(shipped("test"), j)
    expected = (np.where(np.isnan(test), mean, test) - mean) / std
    np.testing.assert_allclose(fun_pre.test.X[:, j], expected, atol=2e-5)
    # statistics of test alone would differ
    test_filled = np.where(np.isnan(test), np.nanmean(test), test)
    assert abs(test_filled.mean() - mean) > 1e-4


def test_preprocessed_by_hand_constant_and_all_missing_columns():
    nan = math.nan
    data = HMCData(
        name="toy",
        train=Split(np.array([[1, 5, nan], [3, 5, nan]], np.float32), np.zeros((2, 1))),
        valid=Split(np.array([[nan, 5, nan], [2, 5, nan]], np.float32), np.zeros((2, 1))),
        test=Split(np.array([[4, 7, 3], [nan, 5, nan]], np.float32), np.zeros((2, 1))),
        hierarchy=None, feature_names=["a", "b", "c"], eval_columns=np.array([0]))
    pre = data.preprocessed()
    # column a: fit values 1, 3, (2), 2 -> mean 2, std sqrt(0.5)
    # column b: constant 5 -> centred, std taken as 1
    # column c: missing everywhere in train+valid -> mean 0, std 1
    r = math.sqrt(2.0)
    np.testing.assert_allclose(pre.train.X, [[-r, 0, 0], [r, 0, 0]], atol=1e-5)
    np.testing.assert_allclose(pre.valid.X, [[0, 0, 0], [0, 0, 0]], atol=1e-5)
    np.testing.assert_allclose(pre.test.X, [[2 * r, 2, 3], [0, 0, 0]], atol=1e-5)


# -- folders, file names, errors -----------------------------------------------------------

def _go_folder(tmp_path: Path, splits=("train", "valid", "test"), gz=True) -> Path:
    for split in splits:
        target = tmp_path / f"slice_GO.{split}.arff{'.gz' if gz else ''}"
        if gz:
            shutil.copyfile(GO_SLICE, target)
        else:
            with gzip.open(GO_SLICE, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return tmp_path


def test_go_slice_as_a_data_set_excludes_its_four_roots(tmp_path):
    data = load_hmc("slice_GO", _go_folder(tmp_path))
    h = data.hierarchy
    assert set(data.roots) == GO_ROOTS
    names = h.task_names
    excluded = {names[j] for j in set(range(len(h))) - set(data.eval_columns.tolist())}
    assert excluded == GO_ROOTS
    assert len(data.eval_columns) == len(h) - 4
    assert h.roots == ("root",)
    assert any(len(h.parents(t)) > 1 for t in names)
    assert data.train.X.shape == (30, 77)


def test_plain_arff_files_are_found(tmp_path):
    data = load_hmc("slice_GO", _go_folder(tmp_path, gz=False))
    assert data.test.Y.shape[0] == 30


def test_missing_split_lists_the_folder(tmp_path):
    _go_folder(tmp_path, splits=("train", "valid"))
    (tmp_path / "other_FUN.train.arff.gz").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(FileNotFoundError) as info:
        load_hmc("slice_GO", tmp_path)
    message = str(info.value)
    assert "slice_GO.test" in message
    assert "slice_GO" in message.split("data sets there:")[1]
    assert "other_FUN" in message and "notes" not in message


def test_unknown_name_in_the_shipped_folder():
    with pytest.raises(FileNotFoundError) as info:
        load_hmc("derisi_GO")
    assert "cellcycle_FUN" in str(info.value)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_hmc("cellcycle_FUN", tmp_path / "nowhere")


def test_splits_that_disagree(tmp_path):
    _go_folder(tmp_path, splits=("train", "test"))
    shutil.copyfile(shipped("valid"), tmp_path / "slice_GO.valid.arff.gz")
    with pytest.raises(DataError, match="valid"):
        load_hmc("slice_GO", tmp_path)


# -- the full collection, when present -----------------------------------------------------

@needs_shared
def test_shared_go_set_excludes_four_roots():
    data = load_hmc("cellcycle_GO", SHARED)
    h = data.hierarchy
    assert set(data.roots) == GO_ROOTS
    assert sorted(set(range(len(h))) - set(data.eval_columns.tolist())) == sorted(
        h.index[r] for r in GO_ROOTS)
    rows = raw_rows(SHARED / "cellcycle_GO.test.arff.gz")
    assert data.test.X.shape == (len(rows), 77)
    idx = h.index
    p = np.array([idx[a] for a, _ in h.graph.edges])
    c = np.array([idx[b] for _, b in h.graph.edges])
    assert not (data.train.Y[:, c] > data.train.Y[:, p]).any()
    assert data.train.Y[:, idx["root"]].all()


@needs_shared
def test_shared_nominal_attributes_one_hot():
    data = load_hmc("pheno_FUN", SHARED)
    groups: dict[str, list[int]] = {}
    for j, name in enumerate(data.feature_names):
        if "=" in name:
            groups.setdefault(name.split("=")[0], []).append(j)
    assert groups  # pheno has nominal attributes
    for cols in groups.values():
        block = data.train.X[:, cols]
        missing = np.isnan(block)
        assert (missing.all(axis=1) | ~missing.any(axis=1)).all()
        present = ~missing.any(axis=1)
        np.testing.assert_array_equal(block[present].sum(axis=1), 1.0)
    assert np.isfinite(data.preprocessed().train.X).all()
