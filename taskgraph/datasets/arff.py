"""Hierarchical multi-label ARFF files (the Clus HMC format), gzipped or not.

The header lists attributes (``numeric`` / ``real`` / ``integer``, or nominal
``{a,b,c}``) and one ``hierarchical`` class attribute whose declaration is the
hierarchy: FunCat-style paths (``01,01/01,01/01/03``: a tree, each path's parent is its
prefix) or GO-style ``parent/child`` pairs (``root/GO0003674,GO0003674/GO0003774``: a
DAG). Each data row's class value lists labels separated by ``@``; a row carries each
label and all its ancestors. ``?`` is a missing value. A row may also be written in
Weka's sparse form, ``{index value, ...}`` (0-based attribute indices, the usual layout
of bag-of-words sets): an attribute it leaves out is 0 if numeric, its first value if
nominal, and no label if it is the class.

Example:
    >>> text = '''@RELATION toy
    ... @ATTRIBUTE f1 numeric
    ... @ATTRIBUTE colour {red,blue}
    ... @ATTRIBUTE class hierarchical 01,01/01,02
    ... @DATA
    ... 0.5,red,01/01
    ... ?,blue,02@01
    ... '''
    >>> arff = parse_arff(text.splitlines())
    >>> arff.labels, arff.edges, arff.feature_names
    (['01', '01/01', '02'], [('01', '01/01')], ['f1', 'colour=red', 'colour=blue'])
    >>> arff.Y.tolist()
    [[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]]
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from dataclasses import dataclass
from typing import Iterable

import networkx as nx
import numpy as np

from taskgraph.errors import DataError

__all__ = ["ArffData", "parse_arff", "read_arff", "hierarchy_from_arff"]


@dataclass
class ArffData:
    """A parsed HMC ARFF file.

    Attributes:
        X: ``(N, F)`` float32 features, NaN where missing; nominal attributes one-hot.
        Y: ``(N, T)`` float32 0/1 labels (ancestors included), columns in ``labels`` order.
        labels: label names in declaration order.
        edges: ``(parent, child)`` pairs of the class hierarchy.
        feature_names: one per column of ``X`` (``name=value`` for one-hot columns).
        kind: ``"tree"`` (path declaration) or ``"dag"`` (pair declaration).
        relation: the ``@RELATION`` name.
    """

    X: np.ndarray
    Y: np.ndarray
    labels: list[str]
    edges: list[tuple[str, str]]
    feature_names: list[str]
    kind: str
    relation: str


def _hierarchy(spec: str, where: str) -> tuple[list[str], list[tuple[str, str]], str]:
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise DataError(f"{where}: the hierarchical class attribute declares no labels")
    pairs = all(item.count("/") == 1 for item in items) and any(
        item.split("/")[0] == "root" for item in items)
    labels: dict[str, None] = {}
    edges: list[tuple[str, str]] = []
    if pairs:  # GO style: parent/child pairs
        for item in items:
            parent, child = item.split("/")
            labels.setdefault(parent)
            labels.setdefault(child)
            edges.append((parent, child))
        return list(labels), list(dict.fromkeys(edges)), "dag"
    for item in items:  # FunCat style: paths
        labels.setdefault(item)
    for item in labels:
        if "/" in item:
            parent = item.rsplit("/", 1)[0]
            if parent not in labels:
                raise DataError(f"{where}: label {item!r} is declared but its parent "
                                f"{parent!r} is not")
            edges.append((parent, item))
    return list(labels), edges, "tree"


def parse_arff(lines: Iterable[str], *, name: str = "<arff>") -> ArffData:
    """Parse HMC ARFF text given as lines (see the module docstring)."""
    attrs: list[tuple[str, list[str] | None]] = []  # (name, nominal values or None)
    class_index, labels, edges, kind, relation = None, [], [], "tree", ""
    it = iter(lines)
    lineno = 0
    for raw in it:
        lineno += 1
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        head = line.split(None, 1)[0].upper()
        if head == "@RELATION":
            relation = line.split(None, 1)[1].strip("'\" ") if " " in line else ""
        elif head == "@ATTRIBUTE":
            head_len = len(line.split(None, 1)[0])
            body = line[head_len:].strip()
            if body[:1] in ("'", '"'):  # a quoted name may hold spaces
                end = body.find(body[0], 1)
                attr, rest = body[1:end], body[end + 1:].strip() if end > 0 else ""
            else:
                attr, _, rest = body.partition(" ")
                rest = rest.strip()
            if not attr or not rest:
                raise DataError(f"{name}:{lineno}: malformed @ATTRIBUTE line")
            low = rest.lower()
            if low.startswith("hierarchical"):
                class_index = len(attrs)
                labels, edges, kind = _hierarchy(rest[len("hierarchical"):], f"{name}:{lineno}")
                attrs.append((attr, None))
            elif low in ("numeric", "real", "integer"):
                attrs.append((attr, None))
            elif rest.startswith("{") and rest.endswith("}"):
                attrs.append((attr, [v.strip().strip("'\"") for v in rest[1:-1].split(",")]))
            else:
                raise DataError(f"{name}:{lineno}: attribute {attr!r} has unsupported type "
                                f"{rest[:40]!r} (numeric and nominal attributes are read)")
        elif head == "@DATA":
            break
    else:
        raise DataError(f"{name}: no @DATA section")
    if class_index is None:
        raise DataError(f"{name}: no hierarchical class attribute")
    feature_names: list[str] = []
    for i, (attr, values) in enumerate(attrs):
        if i != class_index:
            feature_names += [attr] if values is None else [f"{attr}={v}" for v in values]
    col = {label: j for j, label in enumerate(labels)}
    graph = nx.DiGraph(edges)
    graph.add_nodes_from(labels)
    ancestors = {label: [col[a] for a in nx.ancestors(graph, label)] for label in labels}
    X_rows: list[list[float]] = []
    Y_rows: list[np.ndarray] = []
    for raw in it:
        lineno += 1
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        if line.startswith("{"):
            cells = _sparse_cells(line, attrs, class_index, f"{name}:{lineno}")
        else:
            cells = next(csv.reader([line], quotechar="'", skipinitialspace=True))
        if len(cells) != len(attrs):
            raise DataError(f"{name}:{lineno}: {len(cells)} values, {len(attrs)} attributes")
        row: list[float] = []
        y = np.zeros(len(labels), dtype=np.float32)
        for i, ((attr, values), cell) in enumerate(zip(attrs, cells)):
            cell = cell.strip()
            if i == class_index:
                for label in cell.split("@"):
                    if label in ("", "?"):
                        continue
                    if label not in col:
                        raise DataError(f"{name}:{lineno}: label {label!r} is not declared "
                                        "in the class hierarchy")
                    y[col[label]] = 1
                    y[ancestors[label]] = 1
            elif values is None:
                try:
                    row.append(np.nan if cell == "?" else float(cell))
                except ValueError:
                    raise DataError(f"{name}:{lineno}: attribute {attr!r}: {cell!r} is not "
                                    "a number") from None
            else:
                if cell == "?":
                    row += [np.nan] * len(values)
                elif cell.strip("'\"") in values:
                    k = values.index(cell.strip("'\""))
                    row += [1.0 if j == k else 0.0 for j in range(len(values))]
                else:
                    raise DataError(f"{name}:{lineno}: attribute {attr!r}: {cell!r} is not one "
                                    f"of {{{','.join(values)}}}")
        X_rows.append(row)
        Y_rows.append(y)
    X = np.asarray(X_rows, dtype=np.float32).reshape(len(X_rows), len(feature_names))
    Y = np.stack(Y_rows) if Y_rows else np.zeros((0, len(labels)), dtype=np.float32)
    return ArffData(X, Y, labels, edges, feature_names, kind, relation)


def _sparse_cells(line: str, attrs: list[tuple[str, list[str] | None]], class_index: int,
                  where: str) -> list[str]:
    """A sparse row ``{i v, j w, ...}`` as the dense row of cells it stands for.

    Example:
        >>> _sparse_cells("{1 2.5, 3 01/01}", [("a", None), ("b", None), ("c", ["x", "y"]),
        ...                                    ("class", None)], 3, "f:9")
        ['0', '2.5', 'x', '01/01']
    """
    if not line.endswith("}"):
        raise DataError(f"{where}: a sparse row must end with '}}'")
    cells = [("" if i == class_index else "0" if values is None else values[0])
             for i, (_, values) in enumerate(attrs)]
    inner = line[1:-1].strip()
    seen: set[int] = set()
    for pair in (next(csv.reader([inner], quotechar="'", skipinitialspace=True))
                 if inner else []):
        index, _, value = pair.strip().partition(" ")
        try:
            i = int(index)
        except ValueError:
            raise DataError(f"{where}: sparse entry {pair.strip()!r} is not 'index value'"
                            ) from None
        if not 0 <= i < len(attrs) or not value.strip():
            raise DataError(f"{where}: sparse entry {pair.strip()!r}: expected an attribute "
                            f"index in 0..{len(attrs) - 1} and a value")
        if i in seen:
            raise DataError(f"{where}: sparse entry for attribute {i} given twice")
        seen.add(i)
        cells[i] = value.strip()
    return cells


def read_arff(path: str | os.PathLike) -> ArffData:
    """Read an HMC ARFF file (``.arff`` or ``.arff.gz``)."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
            return parse_arff(text, name=path)
    except (OSError, EOFError, UnicodeDecodeError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise DataError(f"{path}: cannot read ({type(err).__name__}: {err})") from None


def hierarchy_from_arff(data: ArffData, *, name: str | None = None, coherent: bool = True):
    """A schema-v1 :class:`~taskgraph.hierarchy.Hierarchy` of binary label tasks."""
    from taskgraph.hierarchy import load_hierarchy

    parents: dict[str, list[str]] = {label: [] for label in data.labels}
    for parent, child in data.edges:
        parents[child].append(parent)
    tasks = {label: ({"type": "binary", "parents": ps} if ps else {"type": "binary"})
             for label, ps in parents.items()}
    return load_hierarchy({
        "taskgraph": 1, "name": name or data.relation or "hmc",
        "description": f"{len(data.labels)} labels imported from an HMC ARFF file "
                       f"({'paths, a tree' if data.kind == 'tree' else 'parent/child pairs, a DAG'}).",
        "model": {"coherent": coherent}, "tasks": tasks})
