"""A scikit-learn estimator for a task hierarchy: :class:`TaskGraphClassifier`.

**One binary or multiclass task**: an ordinary classifier. ``y`` is 1-D (or one column)
of any labels; ``classes_`` is the sorted distinct labels, or the task's class names when
every label is one of them. NaN or None is a missing label (``-1`` is a label, as in
every scikit-learn classifier). With fewer distinct labels than the task has classes,
the model's first ``len(classes_)`` classes are used, their probabilities renormalised.

**Any other hierarchy**: ``y`` holds the :func:`~taskgraph.model.targets.target_columns`
in hierarchy order: one column per binary (0/1, or yes/no, true/false), multiclass (class
index or name) or regression task, K 0/1 columns per multilabel task; -1, NaN or None is
a missing label (only NaN for regression). ``classes_`` has one entry per task, the
labels its column was given in (:func:`~taskgraph.sklearn_labels.column_classes`):
``[0, 1]`` or e.g. ``['no', 'yes']`` (binary), the class names or ``arange(K)``
(multiclass), ``arange(K)`` (multilabel), ``None`` (regression). ``predict`` returns
those columns in those labels (multiclass classes decoded consistently with
``class_parents``; a class that fits no parent class is -1, or None among names): an
int or float array, an object array when some column holds names. ``predict_proba`` a
list aligned with ``classes_``: ``(n, 2)`` binary, ``(n, K)`` multiclass, ``(n, K)``
independent label probabilities for multilabel, ``None`` for regression (its values come
from ``predict``). ``score``: the mean over classification tasks of each task's accuracy
on its labelled entries.

Estimator checks skipped
------------------------
No check is an expected failure: ``tests/test_sklearn.py`` runs every check of
``parametrize_with_checks`` on a one-task multiclass hierarchy with an empty
``expected_failed_checks``. scikit-learn itself skips ``check_array_api_input`` (only run
with ``SCIPY_ARRAY_API=1``; the model computes in torch, not the array API). The
multi-output and multilabel checks are not generated (the tags say one target column):
they invent a number of outputs that a given hierarchy does not have.

Example:
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(80, 3))
    >>> y = np.where(X[:, 0] > 0, "up", "down")
    >>> clf = TaskGraphClassifier({"taskgraph": 1, "tasks": {"y": {"type": "binary"}}},
    ...                           hidden=(16,), epochs=5, random_state=0).fit(X, y)
    >>> clf.classes_.tolist(), clf.predict(X[:2]).shape, clf.predict_proba(X[:2]).shape
    (['down', 'up'], (2,), (2, 2))
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length, check_is_fitted, validate_data

from taskgraph.errors import DataError
from taskgraph.hierarchy import Hierarchy, load_hierarchy
from taskgraph.model.compile import compile as compile_model
from taskgraph.model.config import ModelConfig
from taskgraph.model.model import TaskGraphModel
from taskgraph.model.targets import target_columns, target_slices
from taskgraph.sklearn_labels import (column_classes, decode_codes, encode_label_vector,
                                      label_task, missing_labels, proba, target_matrix)
from taskgraph.sklearn_params import check_parameters, is_int, private_rng
from taskgraph.train.data import TaskDataset, make_loader
from taskgraph.train.fit import fit as train_model

__all__ = ["TaskGraphClassifier"]

_CHUNK = 4096  # rows per call of model.predict
_FIELDS = ("probs", "label", "value", "entropy", "mutual_info", "variance")


class TaskGraphClassifier(ClassifierMixin, BaseEstimator):
    """Compile a hierarchy for tabular data and train it: ``fit`` / ``predict``.

    Parameters:
        hierarchy: a :class:`Hierarchy`, a path, YAML text or a dict (loaded in ``fit``).
        task_dim, rounds, hidden: task embedding width, message-passing rounds, hidden
            widths of the MLP encoder (``None``: the YAML's).
        epochs, batch_size, lr, weight_decay: training length, batch size, Adam settings.
        weighting, grad_noise, kl_weight: as in :func:`taskgraph.fit`.
        samples: Monte-Carlo draws of the synapses in ``predict`` / ``predict_proba``
            (0: their expected weights, deterministic).
        coherent: force the coherence constraint on or off (``None``: the YAML's).
        random_state: seeds weights, batch order and synapse noise; an int makes ``fit``
            and sampled predictions reproducible. Global RNG states are left alone.
        verbose: a progress bar while training (on a terminal).

    Attributes:
        model_: the trained :class:`TaskGraphModel` (eval mode); hierarchy_: the loaded
        :class:`Hierarchy`; history_: the training :class:`History`; classes_: see the
        module docstring; n_features_in_, feature_names_in_: as usual.
    """

    def __init__(self, hierarchy: Any, *, task_dim: int | None = None,
                 rounds: int | None = None, hidden: Any = None, epochs: int = 50,
                 batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0,
                 weighting: str = "static", grad_noise: float = 0.0, kl_weight: float = 1.0,
                 samples: int = 0, coherent: bool | None = None, random_state: Any = None,
                 verbose: bool = False) -> None:
        self.hierarchy = hierarchy
        self.task_dim = task_dim
        self.rounds = rounds
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.weighting = weighting
        self.grad_noise = grad_noise
        self.kl_weight = kl_weight
        self.samples = samples
        self.coherent = coherent
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Any, y: Any) -> "TaskGraphClassifier":
        """Train a freshly compiled model on ``X`` (n, d) and the targets ``y``.

        Raises:
            ValueError: an invalid parameter (:class:`~taskgraph.errors.ArgumentError`),
                hierarchy, feature value or label (:class:`~taskgraph.errors.DataError`).
        """
        check_parameters(self, type(self).__name__)
        h = self.hierarchy if isinstance(self.hierarchy, Hierarchy) \
            else load_hierarchy(self.hierarchy)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the "
                             f"target y is None.")
        X = self._check_X(X, reset=True)
        check_consistent_length(X, y)
        task = label_task(h)
        if task is not None:
            self.classes_, targets = encode_label_vector(task, y)
        else:
            targets, known = target_matrix(h, y, len(X))
            if not known.any():
                raise DataError("y has no labels: every entry is missing (-1 or NaN)")
            self.classes_ = column_classes(h, y)
        overrides = {k: getattr(self, k) for k in ("task_dim", "rounds")
                     if getattr(self, k) is not None}
        if self.hidden is not None:
            overrides["encoder_spec"] = {"hidden": list(self.hidden)}
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        data = TaskDataset(torch.from_numpy(X), targets, h)
        with private_rng(seed):
            model = compile_model(h, in_features=X.shape[1], coherent=self.coherent, **overrides)
            history = train_model(
                model, make_loader(data, batch_size=self.batch_size, seed=seed),
                epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay,
                weighting=self.weighting, grad_noise=self.grad_noise,
                kl_weight=self.kl_weight, progress=bool(self.verbose), seed=seed)
        self.hierarchy_, self.model_, self.history_ = h, model.eval(), history
        return self

    def _check_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """``X`` as a private float32 array; a non-finite value is named by row and column."""
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32],
                           ensure_all_finite=False)
        Xf = np.array(X, dtype=np.float32)
        bad = ~np.isfinite(Xf)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            v, names = X[r, c], getattr(self, "feature_names_in_", None)
            what = "NaN" if np.isnan(v) else f"{v:g} (not a finite float32)"
            where = f" ({names[c]!r})" if names is not None else ""
            raise DataError(f"Input X contains {what} at row {r}, column {c}{where}; "
                            f"impute or drop it first")
        return Xf

    def _predict_tasks(self, X: Any, samples: int) -> dict[str, dict[str, np.ndarray]]:
        """Per task the fields of the model's prediction (probs, label, value, ...)."""
        check_is_fitted(self)
        x = torch.from_numpy(self._check_X(X, reset=False))
        seeded = samples > 0 and is_int(self.random_state, 0)
        with private_rng(self.random_state) if seeded else contextlib.nullcontext():
            parts = [self.model_.predict(x[i:i + _CHUNK], samples=samples)
                     for i in range(0, len(x), _CHUNK)]
        out = {}
        for name in self.hierarchy_.task_names:
            preds = [p[name] for p in parts]
            out[name] = {f: np.concatenate([getattr(q, f).numpy() for q in preds])
                         for f in _FIELDS if getattr(preds[0], f) is not None}
        return out

    def _label_proba(self, pred: dict[str, np.ndarray]) -> np.ndarray:
        full = proba(pred["probs"])[:, :len(self.classes_)]
        return full / np.maximum(full.sum(axis=1, keepdims=True), 1e-300)

    def _predict_codes(self, pred: dict[str, dict[str, np.ndarray]]) -> list[np.ndarray]:
        """Per task its predicted target columns as numbers: ``(n, width)`` each."""
        out = []
        for name in self.hierarchy_.task_names:
            column = pred[name]["value"] if "value" in pred[name] else pred[name]["label"]
            out.append(column.reshape(len(column), -1))
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Labels (one-task hierarchy: 1-D), or the ``(n, C)`` target columns in the labels
        ``y`` had (an object array when a column was given as class names)."""
        pred = self._predict_tasks(X, self.samples)
        task = label_task(self.hierarchy_)
        if task is not None:
            return self.classes_[self._label_proba(pred[task.name]).argmax(axis=1)]
        codes = self._predict_codes(pred)
        if any(c is not None and c.dtype == object for c in self.classes_):
            # labels as given: class names (None: no class fits), ints, floats
            parts = []
            for classes, block in zip(self.classes_, codes):
                if classes is None:  # values
                    parts.append(block.astype(np.float64).astype(object))
                elif classes.dtype == object:  # names
                    parts.append(decode_codes(classes, block[:, 0])[:, None])
                else:
                    parts.append(block.astype(np.int64).astype(object))
            out = np.concatenate(parts, axis=1)
        else:
            values = any("value" in p for p in pred.values())
            out = np.concatenate(codes, axis=1).astype(np.float64 if values else np.int64)
        return out[:, 0] if out.shape[1] == 1 else out

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities: one array (one-task hierarchy) or a list, one per task,
        ``None`` for a regression task. Raises ValueError if all tasks are regression."""
        pred = self._predict_tasks(X, self.samples)
        task = label_task(self.hierarchy_)
        if task is not None:
            return self._label_proba(pred[task.name])
        out = [proba(p["probs"]) if "probs" in p else None for p in pred.values()]
        if all(p is None for p in out):
            raise ValueError("predict_proba: every task of this hierarchy is a regression "
                             "task; use predict")
        return out[0] if len(out) == 1 else out

    def predict_uncertainty(self, X: Any, samples: int = 32) -> dict[str, dict[str, np.ndarray]]:
        """``{task: {"entropy": ..., "mutual_info": ...}}`` from ``samples`` draws of the
        synapses: predictive entropy and its epistemic part in nats, ``(n,)`` (``(n, K)``
        for multilabel); ``{task: {"variance": ...}}`` for a regression task."""
        keep = ("entropy", "mutual_info", "variance")
        return {name: {k: v for k, v in p.items() if k in keep}
                for name, p in self._predict_tasks(X, samples).items()}

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean over classification tasks of each task's accuracy on its labelled entries
        (one-task hierarchy: the plain accuracy, NaN / None labels skipped)."""
        check_is_fitted(self)
        if label_task(self.hierarchy_) is not None:
            pred = self.predict(X)
            check_consistent_length(pred, y)
            w = np.ones(len(pred)) if sample_weight is None else np.asarray(sample_weight, float)
            y = np.asarray(y).reshape(len(pred))
            known = ~missing_labels(y)
            return float(np.average(pred[known] == y[known], weights=w[known]))
        P = np.concatenate(self._predict_codes(self._predict_tasks(X, self.samples)), axis=1)
        check_consistent_length(P, y)
        w = np.ones(len(P)) if sample_weight is None else np.asarray(sample_weight, float)
        Y, labelled = target_matrix(self.hierarchy_, y, len(P))  # names -> class codes
        w = np.broadcast_to(w[:, None], Y.shape)
        scores = []
        for classes, (name, cols) in zip(self.classes_, target_slices(self.hierarchy_)):
            k = labelled[:, cols]
            if classes is not None and k.any():  # classes (not values): an accuracy
                hit = P[:, cols][k] == Y[:, cols][k]
                scores.append(np.average(hit, weights=w[:, cols][k]))
        if not scores:
            raise ValueError("score: y has no labelled entry of a classification task")
        return float(np.mean(scores))

    # -- the scikit-learn protocol ---------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        h = getattr(self, "hierarchy_", self.hierarchy)
        try:
            h = h if isinstance(h, Hierarchy) else load_hierarchy(h)
        except (ValueError, TypeError, OSError):
            return tags
        tags.target_tags.multi_output = sum(w for _, w in target_columns(h)) > 1
        task = label_task(h)
        tags.classifier_tags.multi_class = task is None or task.type == "multiclass"
        return tags

    def __sklearn_clone__(self) -> "TaskGraphClassifier":
        if not isinstance(self.hierarchy, Hierarchy):
            return super().__sklearn_clone__()
        # a Hierarchy is immutable: clones share it rather than deep-copy it
        return type(self)(**{k: v if k == "hierarchy" else clone(v, safe=False)
                             for k, v in self.get_params(deep=False).items()})

    def __getstate__(self) -> dict[str, Any]:
        # hierarchies and the model travel as plain data and tensors
        state = dict(super().__getstate__())
        plain = {k: v.to_dict() for k, v in state.items() if isinstance(v, Hierarchy)}
        if isinstance(state.get("model_"), TaskGraphModel):
            plain["model_"] = (state["model_"].config.to_dict(), state["model_"].state_dict())
        return {**state, **dict.fromkeys(plain), "_plain": plain}

    def __setstate__(self, state: dict[str, Any]) -> None:
        plain = state.pop("_plain", {})
        state.update({k: load_hierarchy(v) for k, v in plain.items() if k != "model_"})
        if "model_" in plain:
            config, weights = plain["model_"]
            model = TaskGraphModel(state["hierarchy_"], ModelConfig.from_dict(config))
            model.load_state_dict(weights)
            state["model_"] = model.eval()
        super().__setstate__(state)
