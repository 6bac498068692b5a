"""The words of taskgraph, defined once: task types, synapse kinds, message directions
and kinds, encoder activations, and the "did you mean" helper every message uses.

Torch-free and import-free (like :mod:`taskgraph.errors`): every layer may import it.

Example:
    >>> TASK_TYPES
    ('binary', 'multiclass', 'multilabel', 'regression')
    >>> suggest("gausian", SYNAPSE_KINDS)
    " (did you mean 'gaussian'?)"
"""

from __future__ import annotations

import difflib
from typing import Any

__all__ = ["TASK_TYPES", "SYNAPSE_KINDS", "DIRECTIONS", "MESSAGE_KINDS", "SEND_KINDS",
           "ACTIVATIONS", "suggest"]

#: Task types, in the order head groups are laid out.
TASK_TYPES: tuple[str, ...] = ("binary", "multiclass", "multilabel", "regression")
#: Kinds of stochastic synapse on an edge.
SYNAPSE_KINDS: tuple[str, ...] = ("gaussian", "bernoulli", "fixed")
#: Message directions: parent -> child and child -> parent.
DIRECTIONS: tuple[str, ...] = ("down", "up")
#: How a task combines its incoming messages.
MESSAGE_KINDS: tuple[str, ...] = ("sum", "attention")
#: What a task sends along its edges: its embedding, or what its head predicts.
SEND_KINDS: tuple[str, ...] = ("embedding", "prediction")
#: Activations of the YAML MLP encoder.
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "tanh", "silu")


def suggest(word: Any, candidates: Any) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ``""``.

    >>> suggest("mamal", ["mammal", "diet"])
    " (did you mean 'mammal'?)"
    """
    if not isinstance(word, str):
        return ""
    candidates = list(candidates)
    lower = {c.lower(): c for c in candidates if isinstance(c, str)}
    if word.lower() in lower:
        return f" (did you mean {lower[word.lower()]!r}?)"
    if len(candidates) > 2000:  # keep look-ups fast on 100,000-task hierarchies
        candidates = [c for c in candidates if abs(len(c) - len(word)) <= 2][:2000]
    best = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {best[0]!r}?)" if best else ""
