"""Immutable specs: what a validated hierarchy file says, as frozen dataclasses.

The specs hold plain Python values only (no torch), so they hash, compare, pickle and
print; :mod:`taskgraph.hierarchy.validate` builds them, ``Hierarchy.to_dict`` turns them
back into schema-v1 data.

Example:
    >>> t = TaskSpec("diet", "multiclass", classes=("herbivore", "carnivore"), parents=("mammal",))
    >>> t.num_outputs
    2
    >>> SynapseSpec(kind="bernoulli", p=0.9).replace(p=0.5).p
    0.5
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from taskgraph.vocabulary import DIRECTIONS, SYNAPSE_KINDS, TASK_TYPES

__all__ = [
    "TASK_TYPES",
    "SYNAPSE_KINDS",
    "DIRECTIONS",
    "SynapseSpec",
    "EncoderSpec",
    "StochasticSpec",
    "ModelSpec",
    "TaskSpec",
    "EdgeSpec",
]


#: Which synapse keys mean something for which kind.
SYNAPSE_KEYS = {
    "gaussian": ("kind", "mean", "std", "prior_std"),
    "bernoulli": ("kind", "mean", "p", "prior_p"),
    "fixed": ("kind", "mean"),
}


class _Spec:
    def replace(self, **changes: Any):
        """A copy with ``changes`` applied (specs are immutable)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SynapseSpec(_Spec):
    """A stochastic synapse's distribution.

    ``gaussian``: w = mean + std·ε, prior N(mean, prior_std²). ``bernoulli``: w = mean·r,
    r ~ Bernoulli(p) (release probability), prior Bernoulli(prior_p). ``fixed``: w = mean.
    """

    kind: str = "gaussian"
    mean: float = 1.0
    std: float = 0.1
    p: float = 0.9
    prior_std: float = 1.0
    prior_p: float = 0.5


@dataclass(frozen=True)
class EncoderSpec(_Spec):
    """The MLP encoder used for tabular inputs when no encoder module is passed."""

    type: str = "mlp"
    hidden: tuple[int, ...] = (256, 256)
    dropout: float = 0.0
    activation: str = "relu"
    batch_norm: bool = False


@dataclass(frozen=True)
class StochasticSpec(_Spec):
    """Which dense layers are stochastic synapses too (local reparameterization)."""

    encoder: bool = False
    projections: bool = False
    heads: bool = False
    prior_std: float = 1.0
    init_std: float = 1e-3


@dataclass(frozen=True)
class ModelSpec(_Spec):
    """Defaults for ``taskgraph.compile``; its keyword arguments override them."""

    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    task_dim: int = 64
    projection_rank: int | str = "auto"
    rounds: int = 2
    directions: tuple[str, ...] = DIRECTIONS
    message: str = "sum"
    send: str = "embedding"
    dropout: float = 0.0
    coherent: bool = False
    synapse: SynapseSpec = field(default_factory=SynapseSpec)
    stochastic: StochasticSpec = field(default_factory=StochasticSpec)


@dataclass(frozen=True)
class TaskSpec(_Spec):
    """One task (a node of the hierarchy).

    Args:
        name: the task's name (any non-empty string).
        type: one of ``binary``, ``multiclass``, ``multilabel``, ``regression``.
        classes: class names (``multiclass``, ``multilabel``).
        parents: parent task names, in file order.
        class_parents: per multiclass parent, a map child class -> parent class,
            as ``((parent, ((cls, parent_cls), ...)), ...)``.
        weight: the task's loss weight (> 0).
        outputs: number of outputs of a ``regression`` task.
        description: free text.
        count_only: ``classes`` was given as a count; class names are ``"0"``, ``"1"``, ...
    """

    name: str
    type: str
    classes: tuple[str, ...] | None = None
    parents: tuple[str, ...] = ()
    class_parents: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    weight: float = 1.0
    outputs: int = 1
    description: str = ""
    count_only: bool = False

    @property
    def num_outputs(self) -> int:
        """Width of the task's head: 1 for binary, K classes, or ``outputs``."""
        if self.type == "binary":
            return 1
        if self.type in ("multiclass", "multilabel"):
            return len(self.classes or ())
        return self.outputs

    def class_parent_map(self, parent: str) -> dict[str, str]:
        """``{child class: parent class}`` towards ``parent`` ({} if none declared)."""
        for name, pairs in self.class_parents:
            if name == parent:
                return dict(pairs)
        return {}

    def to_dict(self) -> dict:
        """Schema-v1 data for this task (defaults left out)."""
        out: dict[str, Any] = {"type": self.type}
        if self.classes is not None:
            out["classes"] = len(self.classes) if self.count_only else list(self.classes)
        if self.parents:
            out["parents"] = list(self.parents)
        if self.class_parents:
            out["class_parents"] = {p: dict(pairs) for p, pairs in self.class_parents}
        if self.weight != 1.0:
            out["weight"] = self.weight
        if self.type == "regression" and self.outputs != 1:
            out["outputs"] = self.outputs
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class EdgeSpec(_Spec):
    """Per-edge synapse overrides for the edge ``parent -> child``.

    ``direction`` is ``down`` (parent to child messages), ``up``, or ``both``;
    ``synapse`` holds only the keys the file sets, as sorted ``(key, value)`` pairs.
    """

    parent: str
    child: str
    synapse: tuple[tuple[str, Any], ...] = ()
    direction: str = "both"

    def applies_to(self, direction: str) -> bool:
        return self.direction in ("both", direction)

    def resolve(self, default: SynapseSpec) -> SynapseSpec:
        """The synapse for this edge: ``default`` with this override applied."""
        return default.replace(**dict(self.synapse))

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"from": self.parent, "to": self.child}
        if self.direction != "both":
            out["direction"] = self.direction
        if self.synapse:
            out["synapse"] = dict(self.synapse)
        return out


def spec_to_dict(spec: Any, defaults: Any | None = None) -> dict:
    """A dataclass spec as a dict, nested specs included, leaving out default values."""
    defaults = defaults if defaults is not None else type(spec)()
    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        value, default = getattr(spec, f.name), getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            sub = spec_to_dict(value, default)
            if sub:
                out[f.name] = sub
        elif value != default:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def freeze_mapping(mapping: Mapping[str, Mapping[str, str]]) -> tuple:
    """``{parent: {cls: pcls}}`` -> the nested-tuple form stored in :class:`TaskSpec`."""
    return tuple((p, tuple(m.items())) for p, m in mapping.items())
