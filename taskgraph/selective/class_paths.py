r"""Hierarchical selective prediction on class paths: climb back towards the root when
unsure.

A *class path* is a chain of multiclass tasks linked by ``class_parents``, from a task
with no class-linked parent (the root, depth 1) down to one with no class-linked child
(its name is the path's name): ``diet -> species`` in ``animals.yaml``, ``kind -> group
-> item`` in ``fashion.yaml``. Where a task has several class-linked parents the chain
follows the first. The model's decoded classes (``model.predict(x).label``, consistent
with ``class_parents``) give each example a predicted path :math:`\hat c_1, \dots,
\hat c_L`; it ends early where a class has no child classes (``-1`` below it).

**Confidence of a node.** With :math:`p_d` the probability the model gives the decoded
class :math:`\hat c_d` of the path's :math:`d`-th task (the Monte-Carlo mean with
``samples > 0``),

.. math::
    \kappa_d = \min_{k \le d} p_k(\hat c_k) .

Why the running minimum: when the true labels follow ``class_parents``, node
:math:`d` is on the true path exactly when :math:`\hat c_d` is the true class of task
:math:`d` — and then every node above it is on the path too. So :math:`p_d(\hat c_d)`
estimates the probability that node :math:`d` is right, and the probability of a
deeper node can never exceed that of a node above it. The running minimum is the
largest such non-increasing sequence below the model's probabilities (it equals them
where they already fall with depth). The product :math:`\prod_k p_k` is not used: the
heads give marginal, not conditional, probabilities, so a product counts the shared
evidence once per level.

**Climbing** at threshold :math:`c \in (0, 1]` returns the deepest node with
:math:`\kappa_d \ge c`; as :math:`\kappa` never grows with depth this is the path cut at
its first node below :math:`c` (Goren et al., "Hierarchical Selective Classification",
NeurIPS 2024). An example whose root confidence :math:`\kappa_1 < c` is rejected:
depth 0, no node.

Example:
    >>> import torch, taskgraph as tg
    >>> from taskgraph.model.predict import TaskPrediction
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> pred = {"diet": TaskPrediction("multiclass", probs=torch.tensor([[.1, .8, .1]]),
    ...                                label=torch.tensor([1])),                 # carnivore
    ...         "species": TaskPrediction("multiclass", probs=torch.tensor([[.3, .1, 0, .6]]),
    ...                                   label=torch.tensor([3]))}               # eagle
    >>> chosen = climb(h, pred, confidence=0.7)["species"]
    >>> chosen.depth.tolist(), chosen.class_names().tolist()   # eagle is at 0.6 < 0.7
    ([1], ['carnivore'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from taskgraph.errors import ArgumentError
from taskgraph.hierarchy import Hierarchy
from taskgraph.model.decode import class_links
from taskgraph.vocabulary import suggest

__all__ = ["ClassPath", "SelectivePrediction", "class_paths", "path_confidence", "climb",
           "selective_predict"]


@dataclass(frozen=True)
class ClassPath:
    """One chain of class-linked multiclass tasks (module docstring).

    Attributes:
        name: the deepest task's name.
        tasks: the tasks, root first.
        classes: each task's class names.
        parent: for each task below the root, the index of the parent task's class above
            each of its classes (``parent[d - 1][j]``: class ``j`` of ``tasks[d]``).
    """

    name: str
    tasks: tuple[str, ...]
    classes: tuple[tuple[str, ...], ...]
    parent: tuple[tuple[int, ...], ...]

    @property
    def depth(self) -> int:
        """The number of levels."""
        return len(self.tasks)

    def has_children(self, d: int) -> np.ndarray:
        """``(K_d,)`` whether each class of ``tasks[d]`` has a child class in the path."""
        out = np.zeros(len(self.classes[d]), dtype=bool)
        if d + 1 < self.depth:
            out[list(self.parent[d])] = True
        return out


def class_paths(hierarchy: Hierarchy) -> tuple[ClassPath, ...]:
    """The class paths of ``hierarchy``, in the order of their deepest tasks.

    >>> import taskgraph as tg
    >>> [p.tasks for p in class_paths(tg.load_hierarchy("hierarchies/fashion.yaml"))]
    [('kind', 'group', 'item')]
    """
    links = class_links(hierarchy)  # child -> [(parent, parent class of each class)]
    above = {parent for pairs in links.values() for parent, _ in pairs}
    paths = []
    for leaf in hierarchy.task_names:
        if leaf not in links or leaf in above:
            continue
        tasks, parent, task = [leaf], [], leaf
        while task in links:
            task, pi = links[task][0]
            tasks.append(task)
            parent.append(tuple(pi))
        tasks.reverse()
        parent.reverse()
        paths.append(ClassPath(leaf, tuple(tasks),
                               tuple(tuple(hierarchy[t].classes or ()) for t in tasks),
                               tuple(parent)))
    return tuple(paths)


def path_confidence(probs: Sequence[Tensor], labels: Tensor) -> Tensor:
    """The confidences :math:`\\kappa` (module docstring) of a decoded path, ``(B, L)``.

    Args:
        probs: per level the task's class probabilities ``(B, K_d)``.
        labels: ``(B, L)`` the decoded class of each level, ``-1`` past the path's end
            (confidence 0 there).

    Example:
        >>> p = [torch.tensor([[.3, .7]]), torch.tensor([[.1, .9, 0]]), torch.tensor([[.6, .4]])]
        >>> path_confidence(p, torch.tensor([[1, 1, 0]])).tolist()   # .7, min(.7, .9), .6
        [[0.699999988079071, 0.699999988079071, 0.6000000238418579]]
    """
    chosen = torch.stack([p.gather(1, labels[:, d:d + 1].clamp_min(0))[:, 0]
                          for d, p in enumerate(probs)], 1)  # (B, L)
    chosen = chosen.masked_fill(labels < 0, 0.0)
    return torch.cummin(chosen, dim=1).values


@dataclass(frozen=True)
class SelectivePrediction:
    """The climbed prediction of one class path for a batch.

    Attributes:
        path: the :class:`ClassPath`.
        threshold: the confidence threshold :math:`c`.
        depth: ``(B,)`` levels kept: 0 rejected, 1 the root task, ..., ``path.depth``.
        label: ``(B,)`` the class index in task ``path.tasks[depth - 1]``; -1 if rejected.
        confidence: ``(B,)`` :math:`\\kappa` of the returned node (of the root if rejected).
        path_labels: ``(B, L)`` the decoded path (-1 past its end).
        path_confidence: ``(B, L)`` :math:`\\kappa` of each of its nodes (0 past its end).
    """

    path: ClassPath
    threshold: float
    depth: Tensor
    label: Tensor
    confidence: Tensor
    path_labels: Tensor
    path_confidence: Tensor

    @property
    def rejected(self) -> Tensor:
        """``(B,)`` True where no node reaches the threshold."""
        return self.depth == 0

    def class_names(self) -> np.ndarray:
        """``(B,)`` the returned class names, ``""`` where rejected."""
        return self._names(self.path.classes, self.label.cpu().numpy())

    def task_names(self) -> np.ndarray:
        """``(B,)`` the task of the returned node, ``""`` where rejected."""
        return self._names([(t,) for t in self.path.tasks],
                           np.zeros(len(self.depth), dtype=np.int64))

    def _names(self, table: Sequence[Sequence[str]], index: np.ndarray) -> np.ndarray:
        depth = self.depth.cpu().numpy()
        out = np.full(len(depth), "", dtype=object)
        for d, names in enumerate(table):  # one vectorized pick per level
            here = depth == d + 1
            out[here] = np.asarray(names, dtype=object)[index[here]]
        return out.astype(str)


def _check_confidence(paths: Sequence[ClassPath], confidence: Any, who: str) -> dict[str, float]:
    """``{path name: c}`` from one number or a mapping path name -> number, each in (0, 1]."""

    def number(value: Any, what: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or not 0 < value <= 1:
            raise ArgumentError(f"{who}: {what}: expected a number in (0, 1], got {value!r}")
        return float(value)

    names = [p.name for p in paths]
    if not isinstance(confidence, Mapping):
        c = number(confidence, "confidence")
        return {name: c for name in names}
    for key in confidence:
        if key not in names:
            raise ArgumentError(f"{who}: confidence: no class path {key!r}"
                                f"{suggest(str(key), names)}; the paths are "
                                f"{', '.join(names)}")
    missing = [name for name in names if name not in confidence]
    if missing:
        raise ArgumentError(f"{who}: confidence: no threshold for class path(s) "
                            f"{', '.join(missing)}")
    return {name: number(confidence[name], f"confidence[{name!r}]") for name in names}


def _paths(hierarchy: Hierarchy, who: str) -> tuple[ClassPath, ...]:
    paths = class_paths(hierarchy)
    if not paths:
        raise ArgumentError(f"{who}: hierarchy {hierarchy.name!r} has no class path "
                            "(multiclass tasks linked by class_parents)")
    return paths


def _climb_path(path: ClassPath, pred: Mapping[str, Any], c: float, who: str
                ) -> SelectivePrediction:
    probs, labels = [], []
    for task in path.tasks:
        if task not in pred or getattr(pred[task], "probs", None) is None \
                or getattr(pred[task], "label", None) is None:
            raise ArgumentError(f"{who}: pred: no class probabilities and labels for task "
                                f"{task!r}")
        probs.append(pred[task].probs)
        labels.append(pred[task].label)
    path_labels = torch.stack(labels, 1).long()  # (B, L)
    kappa = path_confidence(probs, path_labels)  # (B, L)
    depth = (kappa >= c).sum(1)  # (B,): kappa never grows along the path
    at = (depth - 1).clamp_min(0)[:, None]
    label = torch.where(depth > 0, path_labels.gather(1, at)[:, 0],
                        torch.full_like(depth, -1))
    return SelectivePrediction(path, c, depth, label, kappa.gather(1, at)[:, 0], path_labels,
                               kappa)


def climb(hierarchy: Hierarchy, pred: Mapping[str, Any], *,
          confidence: float | Mapping[str, float]) -> dict[str, SelectivePrediction]:
    """Climb every class path of ``hierarchy`` in ``pred`` (module docstring).

    Args:
        hierarchy: gives the class paths.
        pred: task -> :class:`~taskgraph.model.predict.TaskPrediction` with ``probs``
            ``(B, K)`` and decoded ``label`` ``(B,)`` (``model.predict(x)``).
        confidence: the threshold :math:`c` in (0, 1], or one per path name.

    Returns:
        ``{path name: SelectivePrediction}``.

    Raises:
        ArgumentError: no class path, a bad ``confidence``, or a path task missing in
            ``pred``.

    Example:
        >>> import taskgraph as tg
        >>> model = tg.compile("hierarchies/sentiment.yaml", in_features=2, task_dim=4)
        >>> pred = model.predict(torch.randn(4, 2))
        >>> out = climb(model.hierarchy, pred, confidence={"emotion": 1.0})
        >>> out["emotion"].depth.tolist()      # nothing is that sure: all rejected
        [0, 0, 0, 0]
    """
    paths = _paths(hierarchy, "climb")
    cs = _check_confidence(paths, confidence, "climb")
    return {p.name: _climb_path(p, pred, cs[p.name], "climb") for p in paths}


def selective_predict(model: Any, x: Any, *, confidence: float | Mapping[str, float],
                      samples: int = 0, dropout: bool | None = None
                      ) -> dict[str, SelectivePrediction]:
    """Predict ``x`` and climb every class path (module docstring).

    Args:
        model: a :class:`~taskgraph.TaskGraphModel` with class paths.
        x: a batch of inputs for its encoder.
        confidence: the threshold :math:`c` in (0, 1], or one per path name (e.g. from
            :func:`~taskgraph.selective.choose_confidence`).
        samples: Monte-Carlo samples (0: the expected weights).
        dropout: what the samples are, as for ``predict`` (default: MC dropout where
            the model has dropout).

    Returns:
        ``{path name: SelectivePrediction}``.

    Raises:
        ArgumentError: no class path, a bad ``confidence`` or ``samples``.

    Example:
        >>> import torch, taskgraph as tg
        >>> model = tg.compile("hierarchies/fashion.yaml", in_features=4, task_dim=4)
        >>> out = selective_predict(model, torch.randn(3, 4), confidence=0.2)
        >>> out["item"].path.tasks, out["item"].depth.shape
        (('kind', 'group', 'item'), torch.Size([3]))
    """
    paths = _paths(model.hierarchy, "selective_predict")
    cs = _check_confidence(paths, confidence, "selective_predict")
    with torch.no_grad():
        pred = model.predict(x, samples=samples, dropout=dropout)
    return {p.name: _climb_path(p, pred, cs[p.name], "selective_predict") for p in paths}
