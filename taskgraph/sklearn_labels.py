"""Labels for :class:`~taskgraph.sklearn.TaskGraphClassifier`: ``y`` in, ``classes_``
and target columns out, and predicted codes back to the labels ``y`` used.

A one-task binary / multiclass hierarchy takes any labels (:func:`encode_label_vector`);
any other hierarchy takes the :func:`~taskgraph.model.targets.target_columns` matrix
(:func:`target_matrix`). In both, :func:`column_classes` / ``classes_`` remember the
labels each column was given in, so that ``predict`` answers in the same labels.

Example:
    >>> import taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> y = np.array([[1, "carnivore", "cat", 4.0], [0, None, "eagle", 2.5]], dtype=object)
    >>> Y, known = target_matrix(h, y, 2)
    >>> Y[:, :3].tolist(), known[:, 1].tolist()
    ([[1.0, 1.0, 0.0], [0.0, nan, 3.0]], [True, False])
    >>> classes = column_classes(h, y)
    >>> classes[0].tolist(), classes[2].tolist(), classes[3]
    ([0, 1], ['cat', 'dog', 'cow', 'eagle'], None)
    >>> decode_codes(classes[2], np.array([3, -1])).tolist()
    ['eagle', None]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import column_or_1d

from taskgraph.errors import DataError
from taskgraph.hierarchy import Hierarchy, TaskSpec
from taskgraph.model.labels import encode_labels
from taskgraph.model.targets import target_columns, target_slices
from taskgraph.model.task_types import TASK_TYPES

__all__ = ["label_task", "missing_labels", "encode_label_vector", "target_matrix",
           "column_classes", "decode_codes", "proba"]

#: a binary column given in words: each word's counterpart
_WORD_PAIRS = {"no": "yes", "yes": "no", "false": "true", "true": "false"}


def _class_column(spec: TaskSpec) -> bool:
    """Whether the task's one target column holds one of two or more class codes (binary,
    multiclass; not a multilabel task's 0/1 per label, nor values)."""
    kind = TASK_TYPES[spec.type]
    codes = kind.codes(spec)
    one_column = kind.target_width(kind.head_width(spec)) == 1
    return codes is not None and len(codes) >= 2 and one_column


def label_task(h: Hierarchy) -> TaskSpec | None:
    """The task of a one-task hierarchy whose target column holds classes (binary,
    multiclass): plain label mode. Else None."""
    spec = next(iter(h.tasks.values()))  # a hierarchy has at least one task
    return spec if len(h) == 1 and _class_column(spec) else None


def missing_labels(y: np.ndarray) -> np.ndarray:
    """NaN / None entries of a label vector (label mode)."""
    if y.dtype.kind != "O":
        return np.isnan(y) if y.dtype.kind == "f" else np.zeros(len(y), dtype=bool)
    return np.array([v is None or (isinstance(v, float) and v != v) for v in y], dtype=bool)


def encode_label_vector(spec: TaskSpec, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``classes_`` and the class codes (NaN where missing) of a label vector."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim != 1:
        raise ValueError(f"y: expected shape (n,) or (n, 1) for the one task {spec.name!r}, "
                         f"got {y.shape}")
    missing = missing_labels(y)
    seen = y[~missing]
    if seen.size == 0:
        raise ValueError("y has no labels: every entry is missing (NaN or None)")
    check_classification_targets(seen)
    kind = TASK_TYPES[spec.type]
    names = spec.classes if kind.class_names and not spec.count_only else ()
    if names and seen.dtype.kind in "OU" and set(np.unique(seen).tolist()) <= set(names):
        classes = np.asarray(names, dtype=object)
    else:
        classes = unique_labels(seen)
        K = len(kind.codes(spec))
        if len(classes) > K:
            raise ValueError(f"y has {len(classes)} classes, but task {spec.name!r} has {K}: "
                             f"{classes[:10].tolist()}")
    order = np.argsort(classes)
    codes = np.full(len(y), np.nan)
    codes[~missing] = order[np.searchsorted(classes, seen, sorter=order)]
    return classes, codes


def _as_matrix(h: Hierarchy, y: Any) -> np.ndarray:
    y = np.asarray(y)
    return y[:, None] if y.ndim == 1 and sum(w for _, w in target_columns(h)) == 1 else y


def target_matrix(h: Hierarchy, y: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``y`` as a float matrix of target columns and its labelled entries (not NaN, and
    not -1 outside regression); every column is read as labels of its task
    (:func:`~taskgraph.model.labels.encode_labels`: class names, words, checked values).

    Raises:
        DataError: a wrong shape, or every unusable label (one line each).
    """
    columns = target_columns(h)
    width = sum(w for _, w in columns)
    y = _as_matrix(h, y)
    if y.shape != (n, width):
        names = ", ".join(name for name, _ in columns)[:200]
        raise DataError(f"y: expected shape ({n}, {width}), one column per target "
                        f"({names}), got {y.shape}")
    out, known = np.empty((n, width)), np.empty((n, width), dtype=bool)
    for name, cols in target_slices(h):
        block = y[:, cols] if cols.stop - cols.start > 1 else y[:, cols.start]
        out[:, cols] = encode_labels(h, name, block).reshape(n, -1)
        known[:, cols] = TASK_TYPES[h[name].type].known(out[:, cols])
    return out, known


def _counterpart(word: str) -> str:
    other = _WORD_PAIRS[word.lower()]
    return other.upper() if word.isupper() else other.title() if word.istitle() else other


def _named_classes(spec: TaskSpec, column: np.ndarray) -> np.ndarray | None:
    """The class labels a column was given in, when they are words; else None."""
    if column.dtype.kind not in "OUS":
        return None
    given = [v for v in column.tolist() if not (v is None or (isinstance(v, float) and v != v)
                                                 or (isinstance(v, str) and v in ("", "-1")))]
    if not given or not all(isinstance(v, str) for v in given):
        return None  # numbers (or no label at all): the codes are the labels
    if TASK_TYPES[spec.type].class_names:
        return np.asarray(spec.classes, dtype=object) if set(given) <= set(spec.classes or ()) \
            else None
    words = [v.strip() for v in given]
    lower = {w.lower() for w in words}
    if not (lower <= {"no", "yes"} or lower <= {"false", "true"}):
        return None  # 0/1 written as text
    spelled = {}
    for word in words:  # the first spelling of each side wins
        spelled.setdefault(word.lower() in ("yes", "true"), word)
    one = spelled.get(True) or _counterpart(spelled[False])
    return np.asarray([spelled.get(False) or _counterpart(one), one], dtype=object)


def column_classes(h: Hierarchy, y: Any) -> list[np.ndarray | None]:
    """``classes_`` of a multi-task fit: per task the labels its column was given in.

    Binary ``[0, 1]``, or the words of a column written ``no``/``yes`` or
    ``false``/``true`` (``['no', 'yes']``); multiclass the task's class names when the
    column holds names, else ``arange(K)``; multilabel ``arange(K)``; regression None.
    """
    y, out = _as_matrix(h, y), []
    for name, cols in target_slices(h):
        spec = h[name]
        named = _named_classes(spec, y[:, cols.start]) if _class_column(spec) else None
        out.append(named if named is not None else TASK_TYPES[spec.type].codes(spec))
    return out


def decode_codes(classes: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Predicted class codes (n,) in the labels of ``classes``: for object ``classes``
    the names (None for the code -1, 'no class fits'), else the codes unchanged."""
    if classes.dtype != object:
        return codes
    out = np.full(len(codes), None, dtype=object)
    valid = codes >= 0
    out[valid] = classes[codes[valid].astype(np.int64)]
    return out


def proba(p: np.ndarray) -> np.ndarray:
    """Probabilities as float64 columns: a binary task's ``(n,)`` becomes ``(n, 2)``."""
    return np.stack([1 - p, p], axis=1).astype(np.float64) if p.ndim == 1 else p.astype(np.float64)
