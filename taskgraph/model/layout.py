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

__all__ = ["TaskLayout", "HeadGroup", "GROUP_ORDER"]

GROUP_ORDER = ("binary", "multiclass", "multilabel", "regression")


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


class TaskLayout:
    """Index structures for a hierarchy (no parameters, plain tensors and tuples).

    Attributes:
        names: task names in hierarchy order; ``index[name]`` is a task's position.
        groups: the :class:`HeadGroup` list, in :data:`GROUP_ORDER` then width.
        where: ``{name: (group number, position in group)}``.
        edge_index: ``(2, E)`` parent -> child task positions, in ``h.edge_list()`` order.
        binary_edge_index: ``(2, E_b)`` edges between binary tasks, in positions of the
            binary group (for coherence).
        weights: ``(T,)`` task loss weights.
    """

    def __init__(self, hierarchy: Hierarchy) -> None:
        self.names = hierarchy.task_names
        self.index = hierarchy.index
        buckets: dict[tuple[int, int], list[int]] = {}
        for i, spec in enumerate(hierarchy.tasks.values()):
            key = (GROUP_ORDER.index(spec.type), spec.num_outputs)
            buckets.setdefault(key, []).append(i)
        self.groups: list[HeadGroup] = []
        self.where: dict[str, tuple[int, int]] = {}
        for (kind_i, width), members in sorted(buckets.items()):
            g = len(self.groups)
            names = tuple(self.names[i] for i in members)
            self.groups.append(HeadGroup(GROUP_ORDER[kind_i], width, names, tuple(members)))
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

    def group_of(self, kind: str) -> list[int]:
        """Numbers of the groups of one kind."""
        return [g for g, grp in enumerate(self.groups) if grp.kind == kind]


def edge_synapse_specs(hierarchy: Hierarchy, edges: list[tuple[str, str]],
                       directions: tuple[str, ...],
                       default: SynapseSpec | None = None) -> list[SynapseSpec]:
    """One :class:`SynapseSpec` per (direction, edge), directions outer, in O(E + overrides).

    ``default`` replaces the hierarchy's default synapse (a ``compile`` override);
    per-edge overrides from the file still apply on top of it.
    """
    base = default if default is not None else hierarchy.model.synapse
    overrides: dict[tuple[str, str, str], SynapseSpec] = {}
    for edge in hierarchy.edges:
        for d in directions:
            if edge.applies_to(d):
                key = (edge.parent, edge.child, d)
                overrides[key] = edge.resolve(overrides.get(key, base))
    return [overrides.get((p, c, d), base) for d in directions for p, c in edges]


def gather_rows(values: Tensor, rows: Tensor) -> Tensor:
    """``values[rows]`` for an index tensor (kept as a function for shape comments)."""
    return values.index_select(0, rows)
