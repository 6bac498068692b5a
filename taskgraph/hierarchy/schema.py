"""Schema v1 as declared tables: every key, what it accepts, its default and meaning.

Validation (:mod:`taskgraph.hierarchy.validate`) checks values against these tables and
words every rejection the same way: ``expected <what>, got <value>``. The README's schema
reference documents exactly these keys (a test keeps the two in step).

Example:
    >>> MODEL["rounds"].check(2)
    >>> MODEL["rounds"].check(0)
    'expected a positive integer, got 0 (to turn message passing off, set directions: [])'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from taskgraph.vocabulary import (
    ACTIVATIONS,
    DIRECTIONS,
    MESSAGE_KINDS,
    SEND_KINDS,
    SYNAPSE_KINDS,
    TASK_TYPES,
    suggest,
)

__all__ = ["Key", "TOP", "MODEL", "ENCODER", "SYNAPSE", "STOCHASTIC", "TASK", "EDGE",
           "SCHEMA_VERSION", "describe"]

SCHEMA_VERSION = 1


def describe(value: Any) -> str:
    """A short, quoted rendering of a user value for messages."""
    text = repr(value)
    if isinstance(value, (dict, list)) and len(text) > 60:
        return f"a {'mapping' if isinstance(value, dict) else 'list'} of {len(value)} items"
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Key:
    """One schema key: a test, the words for what it expects, a default and a meaning."""

    expected: str
    test: Callable[[Any], bool]
    default: Any = None
    doc: str = ""
    required: bool = False
    hint: str = ""
    choices: tuple[str, ...] = ()

    def check(self, value: Any) -> str | None:
        """``None`` when ``value`` is acceptable, else the message."""
        try:
            ok = self.test(value)
        except (TypeError, ValueError):
            ok = False
        if ok:
            return None
        hint = f" ({self.hint})" if self.hint else ""
        if self.choices and isinstance(value, str):
            return f"unknown value {value!r}{suggest(value, self.choices)}; expected {self.expected}"
        return f"expected {self.expected}, got {describe(value)}{hint}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


def _positive(v: Any) -> bool:
    return _is_number(v) and v > 0


def _fraction(v: Any) -> bool:  # [0, 1)
    return _is_number(v) and 0 <= v < 1


def _probability(v: Any) -> bool:  # (0, 1]
    return _is_number(v) and 0 < v <= 1


def _open_probability(v: Any) -> bool:  # (0, 1)
    return _is_number(v) and 0 < v < 1


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _choice(options: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in options


def _choices(options: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: (isinstance(v, list) and all(isinstance(x, str) and x in options for x in v)
                      and len(set(v)) == len(v))


def _sizes(v: Any) -> bool:
    return isinstance(v, list) and all(_positive_int(x) for x in v)


def _mapping(v: Any) -> bool:
    return isinstance(v, dict)


def _one_of(options: tuple[str, ...]) -> str:
    return "one of " + ", ".join(repr(o) for o in options)


def _pick(options: tuple[str, ...], default: Any, doc: str, **kw: Any) -> Key:
    """A key whose value is one of ``options`` (unknown values get a suggestion)."""
    return Key(_one_of(options), _choice(options), default, doc, choices=options, **kw)


TOP = {
    "taskgraph": Key("schema version 1", lambda v: _is_int(v) and v == SCHEMA_VERSION, 1,
                     "Schema version; must be 1.", required=True),
    "name": Key("a string", _is_str, None, "The hierarchy's name (default: the file name)."),
    "description": Key("a string", _is_str, "", "Free text."),
    "model": Key("a mapping", _mapping, {}, "Defaults for compile(); see the model keys."),
    "tasks": Key("a mapping of task name to task", _mapping, None,
                 "The tasks, keyed by name, in order.", required=True),
    "edges": Key("a list of edge overrides", lambda v: isinstance(v, list), [],
                 "Per-edge synapse overrides."),
}

MODEL = {
    "encoder": Key("a mapping", _mapping, {}, "The MLP encoder for tabular inputs."),
    "task_dim": Key("a positive integer", _positive_int, 64,
                    "Width F of each task embedding."),
    "projection_rank": Key("'auto', 'full' or a positive integer",
                           lambda v: v in ("auto", "full") if isinstance(v, str)
                           else _positive_int(v), "auto",
                           "Per-task projections: full = each task reads the whole encoder "
                           "output (T*D*F weights); r = a shared D->r layer first (T*r*F); "
                           "auto = full unless T*D*F exceeds 2**24, then the smallest r >= F "
                           "that fits."),
    "rounds": Key("a positive integer", _positive_int, 2,
                  "Rounds of message passing between task embeddings.",
                  hint="to turn message passing off, set directions: []"),
    "directions": Key("a list of distinct values from " + ", ".join(repr(d) for d in DIRECTIONS),
                      _choices(DIRECTIONS), ["down", "up"],
                      "Message directions: down = parent to child, up = child to parent; "
                      "[] turns message passing off."),
    "message": _pick(MESSAGE_KINDS, "sum",
                   "sum: synapse-weighted mean of neighbour messages; attention: also "
                   "weighted by per-example GATv2-style attention."),
    "send": _pick(SEND_KINDS, "embedding",
                  "embedding: a task sends its embedding; prediction: it sends what its "
                  "own head predicts (probabilities, or values), embedded per class."),
    "dropout": Key("a number in [0, 1)", _fraction, 0.0, "Dropout on messages."),
    "coherent": Key("true or false", _is_bool, False,
                    "Binary label hierarchies: a parent's probability is never below a "
                    "child's (max over descendants), trained with the MC loss."),
    "synapse": Key("a mapping", _mapping, {}, "The default synapse of every edge."),
    "stochastic": Key("a mapping", _mapping, {},
                      "Which dense layers are stochastic synapses too."),
}

ENCODER = {
    "type": _pick(("mlp",), "mlp",
                "Encoder kind declared in YAML; other encoders are passed in code."),
    "hidden": Key("a list of positive integers", _sizes, [256, 256], "Hidden layer widths."),
    "dropout": Key("a number in [0, 1)", _fraction, 0.0, "Dropout after each hidden layer."),
    "activation": _pick(ACTIVATIONS, "relu", "Activation."),
    "batch_norm": Key("true or false", _is_bool, False, "BatchNorm after each hidden layer."),
}

SYNAPSE = {
    "kind": _pick(SYNAPSE_KINDS, "gaussian",
                "gaussian: w = mean + std*eps; bernoulli: w = mean * r, r ~ Bernoulli(p); "
                "fixed: w = mean."),
    "mean": Key("a finite number", _is_number, 1.0,
                "Initial mean weight (gaussian, fixed) or amplitude (bernoulli)."),
    "std": Key("a positive number", _positive, 0.1, "Initial std of a gaussian synapse."),
    "p": Key("a number in (0, 1]", _probability, 0.9,
             "Initial release probability of a bernoulli synapse."),
    "prior_std": Key("a positive number", _positive, 1.0,
                     "Std of a gaussian synapse's prior N(mean, prior_std^2)."),
    "prior_p": Key("a number in (0, 1)", _open_probability, 0.5,
                   "Release probability of a bernoulli synapse's prior."),
}

STOCHASTIC = {
    "encoder": Key("true or false", _is_bool, False, "Bayesian MLP encoder layers."),
    "projections": Key("true or false", _is_bool, False, "Bayesian task projections."),
    "heads": Key("true or false", _is_bool, False, "Bayesian task heads."),
    "prior_std": Key("a positive number", _positive, 1.0, "Prior std N(0, prior_std^2)."),
    "init_std": Key("a positive number", _positive, 1e-3,
                    "Initial posterior std of every weight of the stochastic layers."),
}

TASK = {
    "type": _pick(TASK_TYPES, None, "The task type.", required=True),
    "classes": Key("a list of class names or a count", lambda v: isinstance(v, (list, int))
                   and not isinstance(v, bool), None,
                   "multiclass (>= 2) and multilabel (>= 1): class names, or their count."),
    "parents": Key("a list of task names", lambda v: isinstance(v, list), [],
                   "Parent tasks (the hierarchy is a DAG)."),
    "class_parents": Key("a mapping", _mapping, {},
                         "multiclass: each class's class in the multiclass parent; "
                         "with several multiclass parents, keyed by parent name first."),
    "weight": Key("a positive number", _positive, 1.0, "Loss weight."),
    "outputs": Key("a positive integer", _positive_int, 1, "regression: number of outputs."),
    "description": Key("a string", _is_str, "", "Free text."),
}

EDGE = {
    "from": Key("a task name", _is_str, None, "The parent task.", required=True),
    "to": Key("a task name", _is_str, None, "The child task.", required=True),
    "direction": _pick(("both",) + DIRECTIONS, "both",
                     "Which synapse of the edge to override: down, up or both."),
    "synapse": Key("a mapping", _mapping, {}, "Synapse keys to override for this edge."),
}
