"""HMC ARFF files: FunCat paths and GO pairs, missing values, ancestors, gzip, errors.

Every expected array below was written out by hand from the file text in this module.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskgraph.datasets.arff import hierarchy_from_arff, parse_arff, read_arff
from taskgraph.errors import DataError

DATA = Path(__file__).resolve().parents[1] / "data"
GO_SLICE = DATA / "cellcycle_GO_slice.train.arff.gz"

# line numbers (1-based) are noted on the right; the parser must report them
FUNCAT = """\
% a FunCat-style toy file
@RELATION 'toy_fun'

@ATTRIBUTE g1      numeric
@ATTRIBUTE g2      real
@ATTRIBUTE colour  {red,green,blue}
@ATTRIBUTE class   hierarchical 01,01/01,01/01/03,01/02,02,02/05

@DATA
0.5,1.5,red,01/01/03
?,2,blue,02/05@01/02
-1e-1,?,?,01
% a comment among the rows
3,4,green,?
"""
# rows are on lines 10, 11, 12 and 14
FUN_LABELS = ["01", "01/01", "01/01/03", "01/02", "02", "02/05"]
FUN_EDGES = [("01", "01/01"), ("01/01", "01/01/03"), ("01", "01/02"), ("02", "02/05")]
FUN_FEATURES = ["g1", "g2", "colour=red", "colour=green", "colour=blue"]
NAN = math.nan
FUN_X = [[0.5, 1.5, 1, 0, 0],
         [NAN, 2.0, 0, 0, 1],
         [-0.1, NAN, NAN, NAN, NAN],
         [3.0, 4.0, 0, 1, 0]]
# 01/01/03 -> + 01/01, 01;  02/05@01/02 -> + 02, 01;  01 -> itself;  ? -> nothing
FUN_Y = [{"01/01/03", "01/01", "01"},
         {"02/05", "02", "01/02", "01"},
         {"01"},
         set()]

GO = """\
@relation toy_go
@attribute f1 numeric
@attribute site {nucleus,cytoplasm}
@attribute f2 integer
@attribute class hierarchical root/GO0000001,root/GO0000002,GO0000001/GO0000010,GO0000002/GO0000010,GO0000010/GO0000100,GO0000002/GO0000020
@data
1,nucleus,7,GO0000100
2,?,8,GO0000020@GO0000001
?,cytoplasm,?,GO0000010
"""
GO_LABELS = ["root", "GO0000001", "GO0000002", "GO0000010", "GO0000100", "GO0000020"]
GO_EDGES = [("root", "GO0000001"), ("root", "GO0000002"), ("GO0000001", "GO0000010"),
            ("GO0000002", "GO0000010"), ("GO0000010", "GO0000100"), ("GO0000002", "GO0000020")]
GO_X = [[1.0, 1, 0, 7.0],
        [2.0, NAN, NAN, 8.0],
        [NAN, 0, 1, NAN]]
# GO0000010 has two parents, so GO0000100 pulls in both branches up to root
GO_Y = [{"GO0000100", "GO0000010", "GO0000001", "GO0000002", "root"},
        {"GO0000020", "GO0000002", "GO0000001", "root"},
        {"GO0000010", "GO0000001", "GO0000002", "root"}]


def label_sets(data) -> list[set[str]]:
    return [{data.labels[j] for j in np.flatnonzero(row)} for row in data.Y]


def write(tmp_path: Path, name: str, text: str, gz: bool) -> Path:
    path = tmp_path / (name + (".arff.gz" if gz else ".arff"))
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def assert_same_nan(actual: np.ndarray, expected) -> None:
    np.testing.assert_allclose(actual, np.array(expected, dtype=np.float64), rtol=0, atol=1e-6,
                               equal_nan=True)
    assert np.array_equal(np.isnan(actual), np.isnan(np.array(expected, dtype=np.float64)))


# -- FunCat style --------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_funcat_file(tmp_path, gz):
    data = read_arff(write(tmp_path, "toy_fun", FUNCAT, gz))
    assert data.relation == "toy_fun"
    assert data.kind == "tree"
    assert data.labels == FUN_LABELS
    assert sorted(data.edges) == sorted(FUN_EDGES)
    assert data.feature_names == FUN_FEATURES
    assert data.X.shape == (4, 5) and data.Y.shape == (4, 6)
    assert data.X.dtype == np.float32 and data.Y.dtype == np.float32
    assert_same_nan(data.X, FUN_X)
    assert set(np.unique(data.Y)) <= {0.0, 1.0}
    assert label_sets(data) == FUN_Y


def test_missing_nominal_is_nan_in_every_one_hot_column():
    data = parse_arff(FUNCAT.splitlines())
    colour = [j for j, n in enumerate(data.feature_names) if n.startswith("colour=")]
    assert len(colour) == 3
    assert np.isnan(data.X[2, colour]).all()
    for i in (0, 1, 3):  # present: exactly one 1
        assert data.X[i, colour].tolist().count(1.0) == 1
        assert data.X[i, colour].sum() == 1.0


def test_funcat_hierarchy_is_a_forest_of_paths():
    data = parse_arff(FUNCAT.splitlines(), name="toy.arff")
    h = hierarchy_from_arff(data, name="toy")
    assert h.name == "toy"
    assert set(h.task_names) == set(FUN_LABELS)
    assert set(h.roots) == {"01", "02"}
    assert h.parents("01/01/03") == ("01/01",)
    assert h.parents("02/05") == ("02",)
    assert all(h[t].type == "binary" for t in h.task_names)
    assert h.model.coherent is True


def test_funcat_parent_declared_after_child_is_accepted():
    text = FUNCAT.replace("01,01/01,01/01/03,01/02,02,02/05", "01/01/03,01/01,02/05,01,01/02,02")
    data = parse_arff(text.splitlines())
    assert sorted(data.edges) == sorted(FUN_EDGES)
    assert label_sets(data) == FUN_Y


# -- GO style ------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_go_file(tmp_path, gz):
    data = read_arff(write(tmp_path, "toy_go", GO, gz))
    assert data.relation == "toy_go"
    assert data.kind == "dag"
    assert data.labels == GO_LABELS
    assert sorted(data.edges) == sorted(GO_EDGES)
    assert data.feature_names == ["f1", "site=nucleus", "site=cytoplasm", "f2"]
    assert_same_nan(data.X, GO_X)
    assert label_sets(data) == GO_Y


def test_go_hierarchy_has_a_node_with_two_parents():
    h = hierarchy_from_arff(parse_arff(GO.splitlines()))
    assert h.name == "toy_go"  # from @relation
    assert h.roots == ("root",)
    assert set(h.parents("GO0000010")) == {"GO0000001", "GO0000002"}
    assert h.ancestors("GO0000100") == {"GO0000010", "GO0000001", "GO0000002", "root"}


def test_crlf_line_endings_and_blank_lines():
    text = GO.replace("\n", "\r\n").replace("@data\r\n", "@data\r\n\r\n")
    data = parse_arff(text.splitlines(keepends=True))
    assert label_sets(data) == GO_Y


def test_header_only_gives_empty_arrays():
    data = parse_arff(GO.split("@data")[0].splitlines() + ["@data"])
    assert data.X.shape == (0, 4)
    assert data.Y.shape == (0, 6)


# -- errors: DataError naming file and line ------------------------------------------------

def _error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, "bad", text, gz=False)
    with pytest.raises(DataError) as info:
        read_arff(path)
    return str(info.value), str(path)


@pytest.mark.parametrize("old,new,line,words", [
    ("?,2,blue,02/05@01/02", "?,2,blue,02/05@03", 11, ["'03'", "not declared"]),
    ("-1e-1,?,?,01", "-1e-1,?,01", 12, ["3 values", "4 attributes"]),
    ("-1e-1,?,?,01", "-1e-1,?,?,01,7", 12, ["5 values", "4 attributes"]),
    ("3,4,green,?", "3,abc,green,?", 14, ["'g2'", "'abc'", "not a number"]),
    ("0.5,1.5,red,01/01/03", "0.5,1.5,purple,01/01/03", 10, ["'colour'", "'purple'"]),
], ids=["undeclared-label", "too-few-values", "too-many-values", "not-a-number",
        "undeclared-nominal"])
def test_data_row_errors_name_file_and_line(tmp_path, old, new, line, words):
    assert old in FUNCAT
    message, path = _error(tmp_path, FUNCAT.replace(old, new))
    assert message.startswith(f"{path}:{line}:"), message
    for word in words:
        assert word in message, message


def test_undeclared_parent_path_names_line(tmp_path):
    text = FUNCAT.replace("01,01/01,01/01/03,01/02", "01,01/01/03,01/02")
    message, path = _error(tmp_path, text)
    assert message.startswith(f"{path}:7:"), message
    assert "'01/01/03'" in message and "'01/01'" in message


def test_no_data_section(tmp_path):
    message, path = _error(tmp_path, FUNCAT.split("@DATA")[0])
    assert path in message and "@DATA" in message


def test_no_hierarchical_attribute(tmp_path):
    text = FUNCAT.replace("@ATTRIBUTE class   hierarchical 01,01/01,01/01/03,01/02,02,02/05\n", "")
    text = "\n".join(line.rsplit(",", 1)[0] if line[:1] in "0?-3" else line
                     for line in text.splitlines())
    message, path = _error(tmp_path, text)
    assert path in message and "hierarchical" in message


def test_unsupported_attribute_type(tmp_path):
    message, path = _error(tmp_path, FUNCAT.replace("g2      real", "g2      string"))
    assert message.startswith(f"{path}:5:"), message


def test_gzip_file_that_is_not_gzip(tmp_path):
    path = tmp_path / "fake.arff.gz"
    path.write_text(FUNCAT)
    with pytest.raises(DataError, match="fake.arff.gz"):
        read_arff(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_arff(tmp_path / "nope.arff.gz")


# -- the real slice (header + first 30 rows of cellcycle_GO.train) --------------------------

def _raw_slice() -> tuple[list[tuple[str, str]], list[list[str]], list[str]]:
    lines = gzip.open(GO_SLICE, "rt", encoding="utf-8").read().splitlines()
    decl = next(l for l in lines if "hierarchical" in l).split("hierarchical", 1)[1].strip()
    pairs = [tuple(item.split("/")) for item in decl.split(",")]
    start = next(i for i, l in enumerate(lines) if l.strip().upper() == "@DATA") + 1
    rows = [l.split(",") for l in lines[start:] if l.strip()]
    attrs = [l.split()[1] for l in lines if l.upper().startswith("@ATTRIBUTE")]
    return pairs, rows, attrs


def test_real_go_slice_matches_its_text():
    pairs, rows, attrs = _raw_slice()
    data = read_arff(GO_SLICE)
    assert data.kind == "dag"
    assert data.relation == "cellcycle0.names"
    assert len(rows) == 30 and data.X.shape == (30, 77) == (len(rows), len(attrs) - 1)
    assert data.feature_names == attrs[:-1]
    assert sorted(data.edges) == sorted(set(pairs))
    assert set(data.labels) == {x for p in pairs for x in p}
    # features: '?' -> NaN, other cells as written
    for i in (0, 1, 29):
        expected = [NAN if c == "?" else float(c) for c in rows[i][:-1]]
        assert_same_nan(data.X[i], expected)
    # labels: each listed label plus all its ancestors, by a walk over the declared pairs
    parents: dict[str, set[str]] = {}
    for p, c in pairs:
        parents.setdefault(c, set()).add(p)
    for i, row in enumerate(rows):
        closed, pending = set(), list(row[-1].split("@"))
        while pending:
            label = pending.pop()
            if label not in closed:
                closed.add(label)
                pending += parents.get(label, ())
        assert label_sets(data)[i] == closed, i


def test_real_go_slice_first_row_by_hand():
    data = read_arff(GO_SLICE)
    got = label_sets(data)[0]
    # row 1 lists GO0003709@GO0000127@GO0005739@GO0006384; GO0003709's parent in the
    # declaration is GO0030528, GO0000127's is GO0005667; root is always reached
    assert {"GO0003709", "GO0000127", "GO0005739", "GO0006384"} <= got
    assert {"GO0030528", "GO0005667", "root"} <= got
    assert np.isnan(data.X[0, 1]) and data.X[0, 0] == np.float32(0.15)


def test_quoted_attribute_name_with_a_space():
    # ARFF quotes a name that contains spaces: @ATTRIBUTE 'name with space' numeric
    text = FUNCAT.replace("@ATTRIBUTE g1      numeric", "@ATTRIBUTE 'gene 1' numeric")
    data = parse_arff(text.splitlines())
    assert data.feature_names[0] == "gene 1"
    assert_same_nan(data.X, FUN_X)


@st.composite
def funcat_files(draw):
    """A random FunCat-style declaration (closed under prefixes) and rows of labels."""
    paths: list[str] = []
    for _ in range(draw(st.integers(1, 12))):
        parent = draw(st.sampled_from([""] + paths))
        k = 1 + sum(p.rsplit("/", 1)[0] == parent if "/" in p else parent == "" for p in paths)
        paths.append(f"{parent}/{k:02d}" if parent else f"{k:02d}")
    rows = draw(st.lists(st.lists(st.sampled_from(paths), max_size=3), min_size=1, max_size=6))
    return paths, rows


@settings(max_examples=40, deadline=None)
@given(funcat_files(), st.sampled_from(["numeric", "{x,y}"]))
def test_random_funcat_rows_carry_every_prefix(case, kind):
    paths, rows = case
    text = ["@RELATION r", f"@ATTRIBUTE a {kind}",
            "@ATTRIBUTE class hierarchical " + ",".join(paths), "@DATA"]
    for i, labels in enumerate(rows):
        value = str(i) if kind == "numeric" else "xy"[i % 2]
        text.append(f"{value},{'@'.join(labels) or '?'}")
    data = parse_arff(text)
    assert data.labels == paths
    for i, labels in enumerate(rows):
        expected = set()
        for label in labels:
            parts = label.split("/")
            expected |= {"/".join(parts[:k]) for k in range(1, len(parts) + 1)}
        assert label_sets(data)[i] == expected


# -- Weka's sparse rows ---------------------------------------------------------------------

# FUNCAT's rows written sparse: left-out numerics are 0, a left-out nominal is its first
# value ("red"), a left-out class is no label; "?" is still missing
SPARSE = FUNCAT.replace("0.5,1.5,red,01/01/03", "{0 0.5, 1 1.5, 3 01/01/03}") \
               .replace("?,2,blue,02/05@01/02", "{0 ?,1 2,2 blue,3 02/05@01/02}") \
               .replace("-1e-1,?,?,01", "{1 ?, 2 ?, 3 01, 0 -1e-1}") \
               .replace("3,4,green,?", "{}")
SPARSE_X = [[0.5, 1.5, 1, 0, 0],
            [NAN, 2.0, 0, 0, 1],
            [-0.1, NAN, NAN, NAN, NAN],
            [0.0, 0.0, 1, 0, 0]]


def test_sparse_rows_mean_the_dense_rows_they_leave_out():
    data = parse_arff(SPARSE.splitlines())
    assert_same_nan(data.X, SPARSE_X)
    assert label_sets(data) == FUN_Y


def test_sparse_and_dense_rows_mix():
    text = FUNCAT.replace("3,4,green,?", "{0 3, 1 4, 2 green}")
    data = parse_arff(text.splitlines())
    assert_same_nan(data.X, FUN_X)
    assert label_sets(data) == FUN_Y


@pytest.mark.parametrize("row,words", [
    ("{0 0.5, 9 1}", ["sparse entry '9 1'", "0..3"]),
    ("{0 0.5, 0 1}", ["attribute 0 given twice"]),
    ("{x 0.5}", ["'x 0.5'", "not 'index value'"]),
    ("{0 0.5, 1}", ["'1'", "expected an attribute index"]),
    ("{0 0.5", ["must end with '}'"]),
    ("{1 abc}", ["'g2'", "'abc'", "not a number"]),
], ids=["index-out-of-range", "twice", "no-index", "no-value", "unclosed", "not-a-number"])
def test_sparse_row_errors_name_file_and_line(tmp_path, row, words):
    message, path = _error(tmp_path, FUNCAT.replace("3,4,green,?", row))
    assert message.startswith(f"{path}:14:"), message
    for word in words:
        assert word in message, message
