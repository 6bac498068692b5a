r"""Coherent thresholded label sets on a label DAG, with uncertain labels withheld.

The *label DAG* of a hierarchy is its binary tasks and the edges between them (the HMC
hierarchies: FunCat, Gene Ontology). A label set is *coherent* (closed upward) when
every predicted label's ancestors are predicted too. With :math:`p_t` the probability
of label :math:`t` (the Monte-Carlo mean with ``samples > 0``) and :math:`u_t` its
uncertainty (``"std"``: the standard deviation of the sampled probabilities, or
``"mutual_info"``), a label is withheld when :math:`u_t > u_{\max}`. Its *score* is the
smallest kept probability on the way down to it,

.. math::
    e_t = \begin{cases} p_t & u_t \le u_{\max} \\ 0 & \text{otherwise} \end{cases},
    \qquad s_t = \min_{a \in \mathrm{anc}(t) \cup \{t\}} e_a,

and the label set at threshold :math:`\tau \in (0, 1]` is :math:`\{t : s_t \ge \tau\}`.
It is closed upward for any probabilities: :math:`s_{\text{parent}} \ge s_{\text{child}}`.
A withheld label takes its descendants out with it. When the model is coherent
(``coherent: true``: parents' probabilities never below their children's) and nothing is
withheld, :math:`s = p` and the set is simply :math:`\{t : p_t \ge \tau\}`;
:attr:`LabelSetPrediction.incoherent` counts the labels the minimum removed from that
plain set (0 for a coherent model). :math:`s` is computed generation by generation of
the DAG (one scatter-min per generation, :math:`O(B \cdot (T + E))` in all).

Example:
    >>> import torch, taskgraph as tg
    >>> from taskgraph.model.predict import TaskPrediction
    >>> h = tg.load_hierarchy("taskgraph: 1\ntasks:\n  a: {type: binary}\n"
    ...                       "  b: {type: binary, parents: [a]}\n")
    >>> pred = {"a": TaskPrediction("binary", probs=torch.tensor([0.6, 0.9])),
    ...         "b": TaskPrediction("binary", probs=torch.tensor([0.8, 0.7]))}
    >>> out = label_sets(h, pred, threshold=0.65)
    >>> out.sets(), out.incoherent             # b (0.8) needs a (0.6 < 0.65): not predicted
    ([[], ['a', 'b']], 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from taskgraph.errors import ArgumentError
from taskgraph.hierarchy import Hierarchy

__all__ = ["LabelDag", "LabelSetPrediction", "label_sets", "label_set_predict",
           "UNCERTAINTIES"]

#: the uncertainty scores that can withhold a label, and the TaskPrediction field of each
UNCERTAINTIES = {"std": "std", "mutual_info": "mutual_info"}
_BLOCK_KEY = {"std": "std", "mutual_info": "mi"}


class LabelDag:
    """The binary tasks of a hierarchy (in its order) and the edges between them.

    >>> import taskgraph as tg
    >>> dag = LabelDag(tg.load_hierarchy("hierarchies/cell_functions.yaml"))
    >>> len(dag), dag.num_edges, dag.generations
    (7, 6, 3)
    """

    def __init__(self, hierarchy: Hierarchy) -> None:
        self.names = tuple(t for t in hierarchy.task_names if hierarchy[t].type == "binary")
        index = {name: i for i, name in enumerate(self.names)}
        pairs = [(index[p], index[c]) for p, c in hierarchy.edge_list()
                 if p in index and c in index]
        self.edges = np.array(pairs, dtype=np.int64).reshape(-1, 2)  # (E, 2) parent, child
        layers = list(nx.topological_generations(hierarchy.graph.subgraph(self.names)))
        layer = {name: g for g, names in enumerate(layers) for name in names}
        self.generations = len(layers)
        self._steps = []  # per generation below the first: the edges into it
        for g in range(1, len(layers)):
            into = [(p, c) for p, c in pairs if layer[self.names[c]] == g]
            self._steps.append((torch.tensor([p for p, _ in into]),
                                torch.tensor([c for _, c in into])))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[0])

    def __repr__(self) -> str:
        return f"LabelDag({len(self)} labels, {self.num_edges} edges)"

    def closure(self, e: Tensor) -> Tensor:
        """``(B, T)`` :math:`s_t = \\min` of ``e`` over ``t`` and its ancestors."""
        s = e.clone()
        for parents, children in self._steps:  # parents' values are final: earlier layers
            parents, children = parents.to(s.device), children.to(s.device)
            s = s.scatter_reduce(1, children.expand(s.shape[0], -1), s[:, parents],
                                 reduce="amin", include_self=True)
        return s

    def violations(self, labels: Tensor) -> int:
        """The (example, edge) pairs whose child is in the set and whose parent is not."""
        if not self.num_edges:
            return 0
        e = torch.as_tensor(self.edges, device=labels.device)
        return int((labels[:, e[:, 1]] & ~labels[:, e[:, 0]]).sum())

    def columns(self, pred: Mapping[str, Any], field: str) -> Tensor:
        """``(B, T)`` a field (``probs``, ``std``, ``mutual_info``) of the binary tasks of
        ``pred``: one block read for a ``model.predict`` result, else one task at a time."""
        layout = getattr(pred, "layout", None)
        if layout is not None and layout.binary_group is not None \
                and layout.groups[layout.binary_group].names == self.names:
            key = {"probs": "mean", **_BLOCK_KEY}[field]
            return pred.blocks[layout.binary_group][key]
        out = []
        for name in self.names:
            value = getattr(pred[name], field, None) if name in pred else None
            if value is None:
                raise ArgumentError(f"label_sets: pred: no {field} for binary task {name!r}"
                                    + (" (predict with samples > 0)" if field != "probs"
                                       else ""))
            out.append(value)
        return torch.stack(out, 1)

    def scores(self, pred: Mapping[str, Any], *, max_uncertainty: float | None = None,
               uncertainty: str = "std") -> tuple[Tensor, Tensor, Tensor]:
        """``(p, s without withholding, s)``, each ``(B, T)`` (module docstring)."""
        p = self.columns(pred, "probs").float()
        plain = self.closure(p)
        if max_uncertainty is None:
            return p, plain, plain
        u = self.columns(pred, UNCERTAINTIES[uncertainty]).float()
        return p, plain, self.closure(torch.where(u <= max_uncertainty, p,
                                                  torch.zeros_like(p)))


@dataclass(frozen=True)
class LabelSetPrediction:
    """Coherent label sets for a batch (module docstring).

    Attributes:
        names: the binary tasks, the columns of the tensors.
        threshold: :math:`\\tau`.
        max_uncertainty: :math:`u_{\\max}` (``None``: nothing withheld).
        labels: ``(B, T)`` True where the label is in the set.
        withheld: ``(B, T)`` True where it would be in the set but for the uncertainty of
            it or of an ancestor.
        score: ``(B, T)`` :math:`s`.
        incoherent: labels with :math:`p_t \\ge \\tau` left out because an ancestor is not.
    """

    names: tuple[str, ...]
    threshold: float
    max_uncertainty: float | None
    labels: Tensor
    withheld: Tensor
    score: Tensor
    incoherent: int

    def sets(self) -> list[list[str]]:
        """Each example's label set, as task names in hierarchy order."""
        return [[self.names[j] for j in np.flatnonzero(row)]
                for row in self.labels.cpu().numpy()]

    def joined(self, sep: str = ";", withheld: bool = False) -> np.ndarray:
        """``(B,)`` each set (or the withheld labels) as one string, names joined by ``sep``."""
        rows = (self.withheld if withheld else self.labels).cpu().numpy()
        return np.array([sep.join(self.names[j] for j in np.flatnonzero(row)) for row in rows],
                        dtype=str)


def _check(threshold: Any, max_uncertainty: Any, uncertainty: Any, who: str) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not math.isfinite(threshold) or not 0 < threshold <= 1:
        raise ArgumentError(f"{who}: threshold: expected a number in (0, 1], got {threshold!r}")
    if max_uncertainty is not None and (
            isinstance(max_uncertainty, bool) or not isinstance(max_uncertainty, (int, float))
            or not math.isfinite(max_uncertainty) or max_uncertainty < 0):
        raise ArgumentError(f"{who}: max_uncertainty: expected a number >= 0 or None, got "
                            f"{max_uncertainty!r}")
    if uncertainty not in UNCERTAINTIES:
        raise ArgumentError(f"{who}: uncertainty: expected one of "
                            f"{', '.join(map(repr, UNCERTAINTIES))}, got {uncertainty!r}")


def _label_dag(hierarchy: Hierarchy | LabelDag, who: str) -> LabelDag:
    """``hierarchy``'s :class:`LabelDag` (or the one given); at least one binary task."""
    dag = hierarchy if isinstance(hierarchy, LabelDag) else LabelDag(hierarchy)
    if not len(dag):
        raise ArgumentError(f"{who}: hierarchy {getattr(hierarchy, 'name', '')!r} has no "
                            "binary task, so no label set")
    return dag


def label_sets(hierarchy: Hierarchy | LabelDag, pred: Mapping[str, Any], *, threshold: float,
               max_uncertainty: float | None = None, uncertainty: str = "std"
               ) -> LabelSetPrediction:
    """Coherent label sets from a prediction (module docstring).

    Args:
        hierarchy: the hierarchy, or its :class:`LabelDag` (reused across batches).
        pred: task -> :class:`~taskgraph.model.predict.TaskPrediction` (``model.predict``),
            with ``probs`` for every binary task, and ``std`` / ``mutual_info`` when
            ``max_uncertainty`` is given.
        threshold: :math:`\\tau` in (0, 1].
        max_uncertainty: withhold labels whose uncertainty exceeds it (``None``: none).
        uncertainty: ``"std"`` or ``"mutual_info"``.

    Raises:
        ArgumentError: a bad argument, no binary task, or a field missing in ``pred``.

    Example:
        >>> import taskgraph as tg
        >>> from taskgraph.model.predict import TaskPrediction
        >>> h = tg.load_hierarchy("hierarchies/cell_functions.yaml")
        >>> pred = {n: TaskPrediction("binary", probs=torch.tensor([0.9])) for n in h}
        >>> pred["metabolism"] = TaskPrediction("binary", probs=torch.tensor([0.2]))
        >>> label_sets(h, pred, threshold=0.5).sets()   # all of metabolism's line goes
        [['signaling', 'receptor_signaling']]
    """
    _check(threshold, max_uncertainty, uncertainty, "label_sets")
    dag = _label_dag(hierarchy, "label_sets")
    p, plain, s = dag.scores(pred, max_uncertainty=max_uncertainty, uncertainty=uncertainty)
    kept = plain >= threshold
    labels = s >= threshold
    return LabelSetPrediction(dag.names, float(threshold), max_uncertainty, labels,
                              kept & ~labels, s, int(((p >= threshold) & ~kept).sum()))


def label_set_predict(model: Any, x: Any, *, threshold: float, samples: int = 0,
                      dropout: bool | None = None, max_uncertainty: float | None = None,
                      uncertainty: str = "std") -> LabelSetPrediction:
    """Predict ``x`` and return coherent label sets (module docstring).

    Args:
        model: a :class:`~taskgraph.TaskGraphModel` with binary tasks.
        x: a batch of inputs for its encoder.
        threshold: :math:`\\tau` in (0, 1] (e.g. from
            :func:`~taskgraph.selective.choose_label_threshold`).
        samples: Monte-Carlo samples; ``max_uncertainty`` needs ``samples > 0``.
        dropout: what the samples are, as for ``predict`` (default: MC dropout where
            the model has dropout).
        max_uncertainty, uncertainty: as for :func:`label_sets`.

    Raises:
        ArgumentError: a bad argument, or ``max_uncertainty`` without samples.

    Example:
        >>> import torch, taskgraph as tg
        >>> model = tg.compile("hierarchies/cell_functions.yaml", in_features=4, task_dim=4)
        >>> out = label_set_predict(model, torch.randn(8, 4), threshold=0.5, samples=4,
        ...                         max_uncertainty=0.05)
        >>> out.labels.shape, out.incoherent     # the model is coherent
        (torch.Size([8, 7]), 0)
    """
    _check(threshold, max_uncertainty, uncertainty, "label_set_predict")
    if max_uncertainty is not None and samples == 0:
        raise ArgumentError("label_set_predict: max_uncertainty needs samples > 0 (with the "
                            "expected weights there is no uncertainty)")
    dag = _label_dag(model.hierarchy, "label_set_predict")
    with torch.no_grad():
        pred = model.predict(x, samples=samples, dropout=dropout)
    return label_sets(dag, pred, threshold=threshold, max_uncertainty=max_uncertainty,
                      uncertainty=uncertainty)
