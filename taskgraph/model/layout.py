"""`TaskLayout`: the index plan that turns a hierarchy into batched tensor operations.

Tasks are grouped by head shape (type and width). Each group is one batched head and
one block of the output; a task is addressed by ``(group, position)``. Edges become one
``edge_index`` over task positions, and the binary tasks get their own sub-graph for
coherence. Everything here is computed once, at compile time, in O(T + E).

Example:
    >>> from taskgraph.hierarchy import load_hierarchy
    >>> h = load_hierarchy("taskgraph: 1\\ntasks:\\n  a: {type: binary}\\n"
    ...                    "  b: {type: multiclass, classes: 3, parents: [a]}\\n"
    ...                    "  c: {type: binary, parents: [a]}\\n")
    >>> layout = TaskLayout(h)
    >>> [(g.kind, g.width, g.names) for g in layout.groups]
    [('binary', 1, ('a', 'c')), ('multiclass', 3, ('b',))]
    >>> layout.edge_index.tolist()
    [[0, 0], [1, 2]]
    >>> layout.binary_edge_index.tolist()
    [[0], [1]]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from taskgraph.hierarchy import Hierarchy, SynapseSpec
from taskgraph.model.task_types import TASK_TYPES, TaskType

__all__ = ["TaskLayout", "HeadGroup", "edge_synapses", "end_to_end"]


@dataclass(frozen=True)
class HeadGroup:
    """Tasks sharing one batched head: same ``kind`` and output ``width``.

    ``tasks`` holds their positions in the hierarchy's task order.
    """

    kind: str
    width: int
    names: tuple[str, ...]
    tasks: tuple[int, ...]

    @property
    def key(self) -> str:
        return f"{self.kind}{self.width}"

    @property
    def task_type(self) -> TaskType:
        """The :class:`~taskgraph.model.task_types.TaskType` of the group's tasks."""
        return TASK_TYPES[self.kind]


class TaskLayout:
    """Index structures for a hierarchy (no parameters, plain tensors and tuples).

    Attributes:
        names: task names in hierarchy order; ``index[name]`` is a task's position.
        groups: the :class:`HeadGroup` list, in :data:`taskgraph.vocabulary.TASK_TYPES`
            order, then by width.
        where: ``{name: (group number, position in group)}``.
        edge_index: ``(2, E)`` parent -> child task positions, in ``h.edge_list()`` order.
        binary_edge_index: ``(2, E_b)`` edges between binary tasks, in positions of the
            binary group (for coherence).
        weights: ``(T,)`` task loss weights.
    """

    def __init__(self, hierarchy: Hierarchy) -> None:
        self.names = hierarchy.task_names
        self.index = hierarchy.index
        order = list(TASK_TYPES)
        buckets: dict[tuple[int, int], list[int]] = {}
        for i, spec in enumerate(hierarchy.tasks.values()):
            key = (order.index(spec.type), TASK_TYPES[spec.type].head_width(spec))
            buckets.setdefault(key, []).append(i)
        self.groups: list[HeadGroup] = []
        self.where: dict[str, tuple[int, int]] = {}
        for (kind_i, width), members in sorted(buckets.items()):
            g = len(self.groups)
            names = tuple(self.names[i] for i in members)
            self.groups.append(HeadGroup(order[kind_i], width, names, tuple(members)))
            self.where.update((name, (g, j)) for j, name in enumerate(names))
        self.edges: list[tuple[str, str]] = hierarchy.edge_list()
        parents = [self.index[p] for p, _ in self.edges]
        children = [self.index[c] for _, c in self.edges]
        self.edge_index = torch.tensor([parents, children], dtype=torch.long).reshape(2, -1)
        self.weights = torch.tensor([s.weight for s in hierarchy.tasks.values()],
                                    dtype=torch.float32)
        self.binary_group = next((g for g, grp in enumerate(self.groups)
                                  if grp.kind == "binary"), None)
        local = ({self.names[t]: j for j, t in enumerate(self.groups[self.binary_group].tasks)}
                 if self.binary_group is not None else {})
        pairs = [(local[p], local[c]) for p, c in self.edges if p in local and c in local]
        self.binary_edge_index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t()

    @property
    def num_tasks(self) -> int:
        return len(self.names)

    @property
    def num_edges(self) -> int:
        return len(self.edges)


def edge_synapses(hierarchy: Hierarchy, edges: list[tuple[str, str]],
                  directions: tuple[str, ...], default: SynapseSpec) -> list[SynapseSpec]:
    """One spec per (direction, edge), directions outer, resolved by the hierarchy
    (:meth:`Hierarchy.edge_synapse`) over ``default``: a ``compile(synapse=...)`` replaces
    the YAML's default, and the file's per-edge overrides still apply on top of it.

    Example:
        >>> from taskgraph.hierarchy import load_hierarchy
        >>> h = load_hierarchy("hierarchies/animals.yaml")  # mammal -> diet: bernoulli
        >>> [s.kind for s in edge_synapses(h, h.edge_list(), ("down",), h.model.synapse)]
        ['bernoulli', 'gaussian', 'gaussian']
        >>> fixed = h.model.synapse.replace(kind="fixed")
        >>> [s.kind for s in edge_synapses(h, h.edge_list(), ("up",), fixed)]
        ['bernoulli', 'fixed', 'fixed']
    """
    overridden = {(e.parent, e.child) for e in hierarchy.edges}
    return [hierarchy.edge_synapse(p, c, d, default=default) if (p, c) in overridden
            else default for d in directions for p, c in edges]


def end_to_end(parts: list[Tensor | None]) -> tuple[Tensor, list[tuple | None]]:
    """Index tensors flattened and laid end to end, and where each sits:
    ``(start, end, shape)``, ``None`` for a missing part (the model's group and target
    index buffers).

    >>> flat, where = end_to_end([torch.tensor([2, 0]), None, torch.tensor([[1], [3]])])
    >>> flat.tolist(), where
    ([2, 0, 1, 3], [(0, 2, (2,)), None, (2, 4, (2, 1))])
    """
    flat, where, start = [], [], 0
    for part in parts:
        if part is None:
            where.append(None)
            continue
        flat.append(part.reshape(-1).long())
        where.append((start, start + part.numel(), tuple(part.shape)))
        start += part.numel()
    return (torch.cat(flat) if flat else torch.zeros(0, dtype=torch.long)), where
