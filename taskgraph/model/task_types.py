r"""Task types: what ``binary``, ``multiclass``, ``multilabel`` and ``regression`` mean,
each in one small stateless class, and :data:`TASK_TYPES`, the registry others ask.

Consumers loop over head groups (tasks of one type and width) and ask the group's type:
the model (head widths, a task's view of a block), the loss (the target check, the
per-example loss), ``predict`` (probabilities, entropy, labels), the label readers
(cells such as ``"yes"``; no model needed), ``taskgraph predict`` (output columns) and
the reliability diagrams (calibration events). The target check runs on torch tensors
and NumPy arrays alike.

A new type (say ``ordinal``) subclasses :class:`TaskType`, sets ``name`` and the flags
that differ, and implements ``head_width`` / ``target_width``, ``activation`` and
``loss`` (a probabilistic type also ``entropy`` and ``decision``), the target check
``bad_targets`` with its message ``expected``, ``cell_expectation`` (and ``word_reader``
when labels may be words), ``output_columns``, and ``calibration_events`` and ``codes``
for class types. It is registered here and in :data:`taskgraph.vocabulary.TASK_TYPES`
(the schema reads that), and scored in :data:`taskgraph.metrics.task_scores.SCORERS` (the
metrics layer, above this one); the task-type tests fail for a type missing from either.

Example:
    >>> import torch
    >>> binary = TASK_TYPES["binary"]
    >>> binary.activation(torch.tensor([0.0])).tolist(), binary.decision(torch.tensor([0.7]))
    ([0.5], tensor([1]))
    >>> per_example, labelled = TASK_TYPES["multiclass"].loss(torch.zeros(1, 1, 4),
    ...                                                       torch.tensor([[[2.0]]]))
    >>> round(per_example.item(), 4), labelled.tolist()  # log 4: four equal logits
    (1.3863, [[True]])
    >>> TASK_TYPES["multiclass"].expected(3)
    'a class index in 0..2, or -1 / NaN for missing'
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from taskgraph.hierarchy import TaskSpec
from taskgraph.vocabulary import TASK_TYPES as TYPE_NAMES
from taskgraph.vocabulary import suggest

__all__ = ["TaskType", "Binary", "Multiclass", "Multilabel", "Regression", "TASK_TYPES",
           "show_label"]

Columns = list[tuple[str, np.ndarray]]


def show_label(value: Any) -> str:
    """A label as the user wrote it, for messages: ``'heavy'``, ``1.5``.

    >>> show_label("heavy"), show_label(np.float64(1.5))
    ("'heavy'", '1.5')
    """
    return repr(value.item() if isinstance(value, np.generic) else value)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


class TaskType:
    """What one task type means. Subclasses override what differs (module docstring).

    Attributes:
        name: the type's name in the hierarchy YAML.
        probabilistic: outputs are probabilities (with entropy, mutual information and a
            std over samples); otherwise values with a variance.
        squeeze: one logit per task: the group's block is ``(B, T_g)``, not ``(B, T_g, 1)``.
        class_axis: one output per class: a task's view keeps its last axis even at K = 1.
        standardized: targets are standardized per output (the model's ``target_loc`` and
            ``target_scale``); the loss works in those units and ``predict`` undoes them.
        class_names: label cells may be class names that look like numbers (``"2"``).
        joint_decoding: labels are decoded jointly along ``class_parents``, so scoring
            uses the model's labels rather than a threshold.
    """

    name: str = ""
    probabilistic: bool = True
    squeeze: bool = False
    class_axis: bool = False
    standardized: bool = False
    class_names: bool = False
    joint_decoding: bool = False

    # -- widths ----------------------------------------------------------------------------
    def head_width(self, spec: TaskSpec) -> int:
        """Logits per task."""
        raise NotImplementedError

    def target_width(self, width: int) -> int:
        """Target columns of a task whose head is ``width`` wide
        (:func:`~taskgraph.model.targets.target_columns`)."""
        return width

    # -- numeric targets (torch or NumPy) --------------------------------------------------
    def known(self, y: Any) -> Any:
        """Labelled entries: not NaN and not -1."""
        return (y == y) & (y != -1)

    def bad_targets(self, y: Any, width: int, *, hard: bool = False) -> Any:
        """Entries no target of this type may hold. ``hard``: scoring, where a class
        label must be 0 or 1 (training takes soft labels in ``[0, 1]``)."""
        raise NotImplementedError

    def expected(self, width: int, *, hard: bool = False) -> str:
        """What :meth:`bad_targets` accepts, in words, for the one error message."""
        raise NotImplementedError

    # -- outputs (torch) -------------------------------------------------------------------
    def block(self, out: Tensor) -> Tensor:
        """A head's ``(B, T_g, W)`` output as the group's block."""
        return out.squeeze(-1) if self.squeeze else out

    def task_view(self, block: Any, j: int) -> Any:
        """Task ``j``'s slice of a group block (torch or NumPy): ``(B,)`` for one output,
        else ``(B, W)``."""
        if block.ndim == 3 and block.shape[-1] == 1 and not self.class_axis:
            return block[:, j, 0]
        return block[:, j]

    def activation(self, logits: Tensor) -> Tensor:
        """Logits -> probabilities (or values), same shape."""
        return logits

    def loss(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Per-example loss ``(B, T_g)`` of a group, 0 where unlabelled, and the
        ``(B, T_g)`` mask of labelled examples. ``target``: ``(B, T_g, w)``, checked."""
        raise NotImplementedError

    def entropy(self, probs: Tensor) -> Tensor | None:
        """Predictive entropy (nats) of probabilities; ``None`` for values."""
        return None

    def decision(self, probs: Tensor) -> Tensor | None:
        """Probabilities -> labels; ``None`` for values."""
        return None

    # -- label cells (NumPy, no model needed) ----------------------------------------------
    def cell_expectation(self, spec: TaskSpec) -> str:
        """What a label cell of ``spec``'s task may hold, in words."""
        raise NotImplementedError

    def word_reader(self, spec: TaskSpec) -> Callable[[str], float | None]:
        """``read(text) -> number`` for label words (``None``: not a word of this task)."""
        return lambda text: None

    def cell_problem(self, spec: TaskSpec, value: Any, number: float) -> str:
        """The message for an unusable cell ``value`` (``number``: NaN if unreadable)."""
        return (f"{self.name} task {spec.name!r} expects {self.cell_expectation(spec)}, "
                f"got {show_label(value)}")

    def column_label(self, spec: TaskSpec, j: int) -> str:
        """Names target column ``j`` of a task with several, in messages."""
        return f"output {j}"

    def codes(self, spec: TaskSpec) -> np.ndarray | None:
        """The codes of a task's classes (one per output), ``None`` for values."""
        return np.arange(self.head_width(spec)) if self.probabilistic else None

    # -- presentation ----------------------------------------------------------------------
    def output_columns(self, spec: TaskSpec, p: Any, uncertainty: bool) -> Columns:
        """``taskgraph predict``'s columns of one task: ``[(name, (B,) array)]``; ``p`` is
        its :class:`~taskgraph.model.predict.TaskPrediction`."""
        raise NotImplementedError

    def calibration_events(self, probs: np.ndarray, target: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
        """``(outcome, confidence)`` of the labelled events of one task (reliability
        diagrams): ``probs`` is the task's view, ``target`` its ``(N, w)`` columns."""
        y, p = target.reshape(-1), probs.reshape(-1)
        known = self.known(y)
        return y[known].astype(np.float64), p[known].astype(np.float64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _masked_bce(logits: Tensor, t: Tensor, known: Tensor) -> Tensor:
    """BCE with logits, 0 where unlabelled (and a finite gradient there)."""
    bce = F.binary_cross_entropy_with_logits(logits, torch.where(known, t, torch.zeros_like(t)),
                                             reduction="none")
    return torch.where(known, bce, torch.zeros_like(bce))


class _Bernoulli(TaskType):
    """Labels that are 0 or 1 (soft labels in ``[0, 1]`` for training): sigmoids."""

    def bad_targets(self, y: Any, width: int, *, hard: bool = False) -> Any:
        ok = (y != y) | (y == -1) | (((y == 0) | (y == 1)) if hard else ((y >= 0) & (y <= 1)))
        return ~ok

    def expected(self, width: int, *, hard: bool = False) -> str:
        return ("0 or 1" if hard else "a label in [0, 1]") + ", or -1 / NaN for missing"

    def activation(self, logits: Tensor) -> Tensor:
        return logits.sigmoid()

    def entropy(self, probs: Tensor) -> Tensor:
        p = probs.clamp(1e-7, 1 - 1e-7)
        return -(p * p.log() + (1 - p) * (1 - p).log())

    def decision(self, probs: Tensor) -> Tensor:
        return (probs > 0.5).long()


class Binary(_Bernoulli):
    """One yes/no label per task: a logit, a sigmoid, binary cross-entropy."""

    name = "binary"
    squeeze = True

    def head_width(self, spec: TaskSpec) -> int:
        return 1

    def loss(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        t = target[..., 0]  # (B, T_g)
        known = self.known(t)
        return _masked_bce(logits, t, known), known

    def cell_expectation(self, spec: TaskSpec) -> str:
        return "0/1, true/false or yes/no"

    def codes(self, spec: TaskSpec) -> np.ndarray:
        return np.array([0, 1])

    def word_reader(self, spec: TaskSpec) -> Callable[[str], float | None]:
        truth = {"1": 1.0, "true": 1.0, "yes": 1.0, "0": 0.0, "false": 0.0, "no": 0.0}
        return lambda text: truth.get(text.lower())

    def output_columns(self, spec: TaskSpec, p: Any, uncertainty: bool) -> Columns:
        name = spec.name
        cols = [(name, _np(p.label).astype(np.int64)), (f"{name}.prob", _np(p.probs))]
        if uncertainty:
            cols += [(f"{name}.{f}", _np(getattr(p, f))) for f in ("std", "entropy",
                                                                  "mutual_info")]
        return cols


class Multiclass(TaskType):
    """One of K classes per task: K logits, a softmax, cross-entropy; labels decoded
    along ``class_parents``."""

    name = "multiclass"
    class_axis = True
    class_names = True
    joint_decoding = True

    def head_width(self, spec: TaskSpec) -> int:
        return len(spec.classes or ())

    def target_width(self, width: int) -> int:
        return 1

    def bad_targets(self, y: Any, width: int, *, hard: bool = False) -> Any:
        index = (y >= 0) & (y < width) & (y == y.round())
        return ~((y != y) | (y == -1) | index)

    def expected(self, width: int, *, hard: bool = False) -> str:
        return f"a class index in 0..{width - 1}, or -1 / NaN for missing"

    def activation(self, logits: Tensor) -> Tensor:
        return logits.softmax(-1)

    def loss(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        t = target[..., 0]  # (B, T_g)
        known = self.known(t)
        K = logits.shape[-1]
        index = torch.where(known, t, torch.zeros_like(t)).long()
        ce = F.cross_entropy(logits.reshape(-1, K), index.reshape(-1),
                             reduction="none").reshape(t.shape)  # (B, T_g)
        return torch.where(known, ce, torch.zeros_like(ce)), known

    def entropy(self, probs: Tensor) -> Tensor:
        return -(probs * probs.clamp_min(1e-12).log()).sum(-1)

    def decision(self, probs: Tensor) -> Tensor:
        return probs.argmax(-1)

    def cell_expectation(self, spec: TaskSpec) -> str:
        classes = spec.classes or ()
        if spec.count_only:
            return f"a class index 0..{len(classes) - 1}"
        shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
        return f"a class name ({shown}) or an integer index 0..{len(classes) - 1}"

    def word_reader(self, spec: TaskSpec) -> Callable[[str], float | None]:
        return {c: float(i) for i, c in enumerate(spec.classes or ())}.get

    def cell_problem(self, spec: TaskSpec, value: Any, number: float) -> str:
        unreadable = isinstance(value, str) and number != number
        hint = suggest(value.strip(), spec.classes or ()) if unreadable else ""
        return super().cell_problem(spec, value, number) + hint

    def output_columns(self, spec: TaskSpec, p: Any, uncertainty: bool) -> Columns:
        name, classes = spec.name, list(spec.classes or ())
        label = _np(p.label)
        names = np.array(classes + [""])[np.where(label < 0, len(classes), label)]  # -1: ""
        probs = _np(p.probs)  # (B, K)
        cols = [(name, names)] + [(f"{name}.prob.{c}", probs[:, k])
                                  for k, c in enumerate(classes)]
        if uncertainty:
            std = _np(p.std)
            cols += [(f"{name}.entropy", _np(p.entropy)),
                     (f"{name}.mutual_info", _np(p.mutual_info))]
            cols += [(f"{name}.std.{c}", std[:, k]) for k, c in enumerate(classes)]
        return cols

    def calibration_events(self, probs: np.ndarray, target: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Top-label events: confidence ``max_k p_k``, outcome ``argmax_k p_k == y``."""
        y = target[:, 0]
        known = self.known(y)
        outcome = (probs.argmax(1) == y).astype(np.float64)
        return outcome[known], probs.max(1)[known].astype(np.float64)


class Multilabel(_Bernoulli):
    """Any subset of K labels per task: K independent sigmoids; a task's loss is the
    mean BCE over its labelled labels."""

    name = "multilabel"
    class_axis = True

    def head_width(self, spec: TaskSpec) -> int:
        return len(spec.classes or ())

    def loss(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        known = self.known(target)  # (B, T_g, K)
        bce = _masked_bce(logits, target, known)
        return bce.sum(-1), known.any(-1)  # independent labels: their NLLs add up

    def cell_expectation(self, spec: TaskSpec) -> str:
        return "0 or 1"

    def column_label(self, spec: TaskSpec, j: int) -> str:
        return f"class {(spec.classes or ())[j]!r}"

    def output_columns(self, spec: TaskSpec, p: Any, uncertainty: bool) -> Columns:
        fields = {"": _np(p.label).astype(np.int64), ".prob": _np(p.probs)}  # (B, K) each
        if uncertainty:
            fields.update({f".{f}": _np(getattr(p, f)) for f in ("std", "entropy",
                                                                 "mutual_info")})
        return [(f"{spec.name}.{c}{suffix}", values[:, k])
                for k, c in enumerate(spec.classes or ()) for suffix, values in fields.items()]


class Regression(TaskType):
    """k real outputs per task, standardized per output; a task's loss is the mean
    squared error over its known outputs."""

    name = "regression"
    probabilistic = False
    standardized = True

    def head_width(self, spec: TaskSpec) -> int:
        return spec.outputs

    def known(self, y: Any) -> Any:
        return y == y  # -1 is a value

    def bad_targets(self, y: Any, width: int, *, hard: bool = False) -> Any:
        return abs(y) == float("inf")

    def expected(self, width: int, *, hard: bool = False) -> str:
        return "a finite value, or NaN for missing"

    def loss(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        known = self.known(target)  # (B, T_g, k)
        err = (logits - torch.where(known, target, torch.zeros_like(target))) ** 2
        err = torch.where(known, err, torch.zeros_like(err))
        return 0.5 * err.sum(-1), known.any(-1)  # unit-variance gaussian NLL, no constant

    def cell_expectation(self, spec: TaskSpec) -> str:
        return "a number"

    def cell_problem(self, spec: TaskSpec, value: Any, number: float) -> str:
        if abs(number) == float("inf"):
            return (f"regression task {spec.name!r} expects a finite number (blank or NaN "
                    f"for missing), got {show_label(value)}")
        return super().cell_problem(spec, value, number)

    def output_columns(self, spec: TaskSpec, p: Any, uncertainty: bool) -> Columns:
        name, value, std = spec.name, _np(p.value), np.sqrt(_np(p.variance))
        if value.ndim == 1:
            return [(name, value)] + ([(f"{name}.std", std)] if uncertainty else [])
        cols = []
        for i in range(value.shape[1]):
            cols.append((f"{name}.{i}", value[:, i]))
            if uncertainty:
                cols.append((f"{name}.{i}.std", std[:, i]))
        return cols


#: Task type name -> its :class:`TaskType`, in :data:`taskgraph.vocabulary.TASK_TYPES` order.
_ALL = {t.name: t for t in (Binary(), Multiclass(), Multilabel(), Regression())}
TASK_TYPES: dict[str, TaskType] = {name: _ALL[name] for name in TYPE_NAMES}
