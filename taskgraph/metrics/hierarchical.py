r"""Metrics of label hierarchies: hierarchical P/R/F1, AU(PRC)-bar, coherence violations.

Columns of the ``(N, T)`` arrays are the binary labels (tasks) of a DAG given as
``(parent, child)`` column pairs. In ``y_true`` a missing label is NaN or ``-1``.

**Hierarchical precision, recall and F1** (Kiritchenko et al., 2005). Per example
:math:`i`, the predicted set :math:`\hat P_i` (labels with :math:`p \ge` threshold) and the
true set :math:`\hat T_i` (labelled positives) are both augmented with all their ancestors,
then restricted to the labels evaluated for that example (labelled, not excluded):

.. math::
    hP = \frac{\sum_i |\hat P_i \cap \hat T_i|}{\sum_i |\hat P_i|}, \quad
    hR = \frac{\sum_i |\hat P_i \cap \hat T_i|}{\sum_i |\hat T_i|}, \quad
    hF = \frac{2\, hP\, hR}{hP + hR} = \frac{2 \sum_i |\hat P_i \cap \hat T_i|}
    {\sum_i |\hat P_i| + \sum_i |\hat T_i|}

**AU(PRC)-bar** (Vens et al., 2008) is the area under the micro-averaged
precision-recall curve, ``sklearn.metrics.average_precision_score(Y, P, average="micro")``,
over the labelled entries of the non-excluded columns (the benchmark excludes the roots).

**Coherence violation rate**: the fraction of (example, edge) pairs whose parent's
probability is below its child's by more than ``tol``.

Example:
    >>> import numpy as np
    >>> edges = [(0, 1), (0, 2)]                      # a -> b, a -> c
    >>> y = np.array([[1, 1, 0], [1, 0, 1]])
    >>> p = np.array([[.9, .2, .7], [.6, .1, .8]])
    >>> hierarchical_prf(y, p, edges)                 # predicted {a, c} twice
    {'precision': 0.75, 'recall': 0.75, 'f1': 0.75}
    >>> round(auprc_bar(y, p, exclude=[0]), 4), coherence_violation_rate(p, edges)
    (0.8333, 0.25)
"""

from __future__ import annotations

from typing import Any, Iterable

import networkx as nx
import numpy as np
from sklearn.metrics import average_precision_score

from taskgraph.errors import DataError

__all__ = ["hierarchical_prf", "auprc_bar", "coherence_violations", "coherence_violation_rate",
           "ancestor_closure", "label_matrix"]


def label_matrix(y_true: Any, name: str = "y_true") -> tuple[np.ndarray, np.ndarray]:
    """``(Y, known)``: a ``(N, T)`` float 0/1 matrix (0 where missing) and its mask.

    Raises:
        DataError: not 2-D, or a known label other than 0 or 1.
    """
    y = np.asarray(y_true, dtype=np.float64)
    if y.ndim != 2:
        raise DataError(f"{name}: expected an (N, T) label matrix, got shape {y.shape}")
    known = ~np.isnan(y) & (y != -1)
    bad = known & (y != 0) & (y != 1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"{name}: labels must be 0, 1, or -1/NaN for missing; got {y[i, j]:g} "
                        f"at row {i}, column {j}")
    return np.where(known, y, 0.0), known


def _edges(edges: Any, T: int) -> np.ndarray:
    e = np.asarray(list(edges) if not isinstance(edges, np.ndarray) else edges, dtype=np.int64)
    e = e.reshape(-1, 2) if e.size == 0 else e
    if e.ndim != 2 or e.shape[1] != 2:
        raise DataError(f"edges: expected (parent, child) column pairs of shape (E, 2), "
                        f"got shape {e.shape}")
    if e.size and (e.min() < 0 or e.max() >= T):
        raise DataError(f"edges: column indices must be in 0..{T - 1}, got {int(e.min())}.."
                        f"{int(e.max())}")
    return e


def _exclude_mask(exclude: Iterable[int] | None, T: int) -> np.ndarray:
    mask = np.zeros(T, dtype=bool)
    idx = np.asarray(list(() if exclude is None else exclude), dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= T):
        raise DataError(f"exclude: column indices must be in 0..{T - 1}")
    mask[idx] = True
    return mask


def ancestor_closure(members: Any, edges: Any) -> np.ndarray:
    """Each row's set of columns augmented with all their ancestors in the DAG ``edges``.

    Runs in O(E·N) with one vectorized OR per edge: edges are visited children-first (in
    reverse topological order), so a column's row already holds its descendants when it
    is pushed to its parents.

    Args:
        members: ``(N, T)`` boolean membership matrix.
        edges: ``(parent, child)`` column pairs.

    Returns:
        ``(N, T)`` boolean matrix.

    Raises:
        DataError: the edges have a cycle.

    Example:
        >>> ancestor_closure([[False, False, True]], [(0, 1), (1, 2)]).tolist()
        [[True, True, True]]
    """
    m = np.asarray(members, dtype=bool)
    T = m.shape[1]
    e = _edges(edges, T)
    if not len(e):
        return m.copy()
    graph = nx.DiGraph()
    graph.add_nodes_from(range(T))
    graph.add_edges_from(map(tuple, e.tolist()))
    try:
        order = list(nx.topological_sort(graph))
    except nx.NetworkXUnfeasible:
        raise DataError(f"edges: the label graph has a cycle "
                        f"({' -> '.join(str(u) for u, _ in nx.find_cycle(graph))})") from None
    position = np.empty(T, dtype=np.int64)
    position[order] = np.arange(T)
    e = e[np.argsort(-position[e[:, 1]], kind="stable")]  # deepest children first
    rows = np.ascontiguousarray(m.T)  # (T, N): one contiguous row per column
    for parent, child in e.tolist():
        np.bitwise_or(rows[parent], rows[child], out=rows[parent])
    return rows.T.copy()


def hierarchical_prf(y_true: Any, y_prob: Any, edges: Any, *, threshold: float = 0.5,
                     exclude: Iterable[int] | None = None) -> dict[str, float | None]:
    """Hierarchical precision, recall and F1 (micro over examples; see the module docstring).

    Args:
        y_true: ``(N, T)`` labels: 1, 0, or -1 / NaN for missing.
        y_prob: ``(N, T)`` probabilities (or 0/1 predictions).
        edges: ``(parent, child)`` column pairs of the label DAG.
        threshold: a label is predicted when its probability is ``>= threshold``.
        exclude: columns not evaluated (e.g. the roots); they still pass ancestry on.

    Returns:
        ``{"precision", "recall", "f1"}``; ``None`` where the denominator is 0
        (precision: nothing predicted; recall: no positives; F1: neither).

    Raises:
        DataError: mismatched shapes, labels other than 0/1/missing, bad edges.

    Example:
        >>> # a -> b, a -> c, b -> d, c -> d: d has two parents
        >>> edges = [(0, 1), (0, 2), (1, 3), (2, 3)]
        >>> hierarchical_prf([[0, 0, 0, 1]], [[0, 1, 0, 0]], edges)  # T={a,b,c,d}, P={a,b}
        {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666}
    """
    y, known = label_matrix(y_true)
    p = np.asarray(y_prob, dtype=np.float64)
    if p.shape != y.shape:
        raise DataError(f"y_prob: expected shape {y.shape} like y_true, got {p.shape}")
    evaluated = known & ~_exclude_mask(exclude, y.shape[1])[None, :]
    pred = ancestor_closure(p >= threshold, edges) & evaluated
    true = ancestor_closure(y == 1, edges) & evaluated
    both = float((pred & true).sum())
    n_pred, n_true = float(pred.sum()), float(true.sum())
    return {"precision": both / n_pred if n_pred else None,
            "recall": both / n_true if n_true else None,
            "f1": 2 * both / (n_pred + n_true) if n_pred + n_true else None}


def auprc_bar(y_true: Any, y_prob: Any, *, exclude: Iterable[int] | None = None) -> float | None:
    """AU(PRC)-bar: micro-averaged average precision over labelled, non-excluded entries.

    Equals ``average_precision_score(Y[:, keep], P[:, keep], average="micro")`` when no
    label is missing.

    Args:
        y_true: ``(N, T)`` labels: 1, 0, or -1 / NaN for missing.
        y_prob: ``(N, T)`` probabilities.
        exclude: columns not evaluated (the benchmark passes the roots).

    Returns:
        The score, or ``None`` when the evaluated entries hold only one class.

    Raises:
        DataError: mismatched shapes or labels other than 0/1/missing.

    Example:
        >>> auprc_bar([[1, 1], [1, 0], [1, float("nan")]], [[.9, .8], [.9, .3], [.9, .9]],
        ...           exclude=[0])
        1.0
    """
    y, known = label_matrix(y_true)
    p = np.asarray(y_prob, dtype=np.float64)
    if p.shape != y.shape:
        raise DataError(f"y_prob: expected shape {y.shape} like y_true, got {p.shape}")
    keep = known & ~_exclude_mask(exclude, y.shape[1])[None, :]
    flat_y, flat_p = y[keep], p[keep]
    if flat_y.size == 0 or flat_y.min() == flat_y.max():
        return None
    return float(average_precision_score(flat_y, flat_p))


def coherence_violations(y_prob: Any, edges: Any, *, tol: float = 1e-6) -> int:
    """Number of (example, edge) pairs with ``p[parent] < p[child] - tol``.

    Args:
        y_prob: ``(N, T)`` probabilities.
        edges: ``(parent, child)`` column pairs.
        tol: slack for rounding.

    Example:
        >>> coherence_violations([[.5, .6, .4], [.9, .1, .95]], [(0, 1), (0, 2)])
        2
    """
    p = np.asarray(y_prob, dtype=np.float64)
    if p.ndim != 2:
        raise DataError(f"y_prob: expected an (N, T) matrix, got shape {p.shape}")
    e = _edges(edges, p.shape[1])
    violations = 0
    step = max(1, (1 << 22) // max(len(e), 1))  # bound the (rows, E) temporaries
    for start in range(0, p.shape[0], step) if len(e) else ():
        chunk = p[start:start + step]
        violations += int((chunk[:, e[:, 0]] < chunk[:, e[:, 1]] - tol).sum())
    return violations


def coherence_violation_rate(y_prob: Any, edges: Any, *, tol: float = 1e-6) -> float | None:
    """Fraction of (example, edge) pairs with ``p[parent] < p[child] - tol``
    (:func:`coherence_violations` over ``N * E``).

    Args:
        y_prob: ``(N, T)`` probabilities.
        edges: ``(parent, child)`` column pairs.
        tol: slack for rounding.

    Returns:
        The rate in ``[0, 1]``, or ``None`` without edges or examples.

    Example:
        >>> coherence_violation_rate([[.5, .6, .4], [.9, .1, .2]], [(0, 1), (0, 2)])
        0.25
    """
    count = coherence_violations(y_prob, edges, tol=tol)
    p = np.asarray(y_prob)
    E = _edges(edges, p.shape[1]).shape[0]
    if not E or not p.shape[0]:
        return None
    return count / (p.shape[0] * E)
