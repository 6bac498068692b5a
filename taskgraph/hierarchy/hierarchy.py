"""`Hierarchy`: validated task specs plus their networkx DAG (parent -> child).

A `Hierarchy` is immutable: specs are frozen dataclasses and ``.graph`` is a frozen
``nx.DiGraph`` whose nodes carry their :class:`TaskSpec` under ``"spec"``. Graph queries
are networkx algorithms; task order (the order of the file) is kept and is the column
order of label matrices and model outputs.

Example:
    >>> import networkx as nx
    >>> g = nx.DiGraph([("animal", "mammal"), ("mammal", "cat")])
    >>> h = Hierarchy.from_networkx(g, name="toy")
    >>> h.roots, h.leaves, h.depth("cat")
    (('animal',), ('cat',), 2)
    >>> sorted(h.ancestors("cat"))
    ['animal', 'mammal']
    >>> load_hierarchy(h.to_yaml()) == h
    True
"""

from __future__ import annotations

import contextlib
import gc
import os
import pathlib
from functools import cached_property
from typing import Any, Iterator, Mapping

import networkx as nx
import yaml

from taskgraph.atomic import write_text_atomic
from taskgraph.errors import HierarchyError, HierarchyNotFoundError, Problem
from taskgraph.hierarchy.specs import EdgeSpec, ModelSpec, SynapseSpec, TaskSpec, spec_to_dict
from taskgraph.hierarchy.validate import validate
from taskgraph.hierarchy.yaml_source import MAX_BYTES, YAMLDocument, read_yaml

__all__ = ["Hierarchy", "load_hierarchy"]

_Dumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class Hierarchy:
    """A validated task hierarchy. Build one with :func:`load_hierarchy`.

    Attributes:
        name: the hierarchy's name.
        description: free text.
        model: the :class:`ModelSpec` defaults for ``compile``.
        tasks: ``{name: TaskSpec}`` in file order (read-only).
        edges: per-edge synapse overrides (:class:`EdgeSpec`).
        graph: frozen ``nx.DiGraph``, parent -> child, node attribute ``"spec"``.
        source: the file it came from, if any.
    """

    def __init__(self, *, name: str, tasks: list[TaskSpec], graph: nx.DiGraph,
                 model: ModelSpec | None = None, edges: list[EdgeSpec] | None = None,
                 description: str = "", source: str | None = None) -> None:
        self.name = name
        self.description = description
        self.model = model if model is not None else ModelSpec()
        self.tasks: Mapping[str, TaskSpec] = _ReadOnlyDict((t.name, t) for t in tasks)
        self.edges: tuple[EdgeSpec, ...] = tuple(edges or ())
        self.graph: nx.DiGraph = nx.freeze(graph)
        self.source = source

    # -- container protocol -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[str]:
        return iter(self.tasks)

    def __contains__(self, name: object) -> bool:
        return name in self.tasks

    def __getitem__(self, name: str) -> TaskSpec:
        try:
            return self.tasks[name]
        except KeyError:
            raise KeyError(f"no task {name!r} in hierarchy {self.name!r}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hierarchy):
            return NotImplemented
        return (self.name == other.name and self.description == other.description
                and self.model == other.model and list(self.tasks.values())
                == list(other.tasks.values()) and self.edges == other.edges)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"Hierarchy({self.name!r}, tasks={len(self)}, edges="
                f"{self.graph.number_of_edges()}, roots={len(self.roots)})")

    # -- graph queries ----------------------------------------------------------------
    @property
    def task_names(self) -> tuple[str, ...]:
        """Task names in file order (the column order of label matrices)."""
        return tuple(self.tasks)

    @cached_property
    def index(self) -> dict[str, int]:
        """``{task name: position}`` in :attr:`task_names`."""
        return {name: i for i, name in enumerate(self.tasks)}

    @cached_property
    def topological_order(self) -> tuple[str, ...]:
        """Every parent before its children; ties broken by file order."""
        return tuple(nx.lexicographical_topological_sort(self.graph, key=self.index.__getitem__))

    def parents(self, task: str) -> tuple[str, ...]:
        return tuple(self[task].parents)

    def children(self, task: str) -> tuple[str, ...]:
        self[task]
        return tuple(self.graph.successors(task))

    def ancestors(self, task: str) -> set[str]:
        self[task]
        return nx.ancestors(self.graph, task)

    def descendants(self, task: str) -> set[str]:
        self[task]
        return nx.descendants(self.graph, task)

    @cached_property
    def roots(self) -> tuple[str, ...]:
        """Tasks without parents, in file order."""
        return tuple(n for n in self.tasks if self.graph.in_degree(n) == 0)

    @cached_property
    def leaves(self) -> tuple[str, ...]:
        """Tasks without children, in file order."""
        return tuple(n for n in self.tasks if self.graph.out_degree(n) == 0)

    @cached_property
    def depths(self) -> dict[str, int]:
        """Length of the longest path from a root to each task (roots have depth 0)."""
        depth: dict[str, int] = {}
        for node in self.topological_order:
            depth[node] = max((depth[p] + 1 for p in self.graph.predecessors(node)), default=0)
        return depth

    def depth(self, task: str) -> int:
        self[task]
        return self.depths[task]

    def edge_list(self) -> list[tuple[str, str]]:
        """Edges (parent, child), ordered by child then parent in file order."""
        return [(p, t.name) for t in self.tasks.values() for p in t.parents]

    def edge_synapse(self, parent: str, child: str, direction: str = "down", *,
                     default: SynapseSpec | None = None) -> SynapseSpec:
        """The synapse of edge ``parent -> child`` in ``direction``: the file's per-edge
        overrides applied on top of ``default`` (the ``model.synapse`` of the file)."""
        if not self.graph.has_edge(parent, child):
            raise KeyError(f"{parent} -> {child} is not an edge of {self.name!r}")
        spec = self.model.synapse if default is None else default
        for edge in self.edges:
            if edge.parent == parent and edge.child == child and edge.applies_to(direction):
                spec = edge.resolve(spec)
        return spec

    # -- conversion -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Schema-v1 data; ``load_hierarchy(h.to_dict()) == h``."""
        out: dict[str, Any] = {"taskgraph": 1, "name": self.name}
        if self.description:
            out["description"] = self.description
        model = spec_to_dict(self.model)
        if model:
            out["model"] = model
        out["tasks"] = {name: spec.to_dict() for name, spec in self.tasks.items()}
        if self.edges:
            out["edges"] = [e.to_dict() for e in self.edges]
        return out

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        """Schema-v1 YAML text; also written to ``path`` when given."""
        text = yaml.dump(self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                         default_flow_style=None, width=100)
        if path is not None:
            write_text_atomic(path, text)
        return text

    @classmethod
    def from_networkx(cls, graph: nx.DiGraph, *, name: str = "hierarchy",
                      model: Mapping[str, Any] | None = None,
                      default_type: str = "binary") -> "Hierarchy":
        """A hierarchy from a graph built in code (edges parent -> child).

        Each node may carry a ``"spec"`` (:class:`TaskSpec`) or schema-v1 task keys as
        attributes (``type``, ``classes``, ...); otherwise it becomes a ``default_type``
        task. The result is validated like a file.
        """
        tasks: dict[str, Any] = {}
        for node, attrs in graph.nodes(data=True):
            spec = attrs.get("spec")
            body = dict(spec.to_dict()) if isinstance(spec, TaskSpec) else {
                k: v for k, v in attrs.items() if k != "spec"}
            body.setdefault("type", default_type)
            parents = list(graph.predecessors(node))
            if parents:
                body["parents"] = parents
            else:
                body.pop("parents", None)
            tasks[node] = body
        data: dict[str, Any] = {"taskgraph": 1, "name": name, "tasks": tasks}
        if model:
            data["model"] = dict(model)
        return load_hierarchy(data)


class _ReadOnlyDict(dict):
    """A dict that refuses changes (specs of a Hierarchy are immutable)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a Hierarchy is immutable; build a new one with load_hierarchy")

    def __reduce__(self) -> tuple:  # pickle / deepcopy rebuild it from its items
        return (type(self), (list(self.items()),))

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore


def _looks_like_path(source: str) -> bool:
    if "\n" in source or len(source) > 4096:
        return False
    return source.endswith((".yaml", ".yml")) or os.path.exists(source)


def load_hierarchy(source: str | os.PathLike | bytes | Mapping[str, Any], *,
                   max_bytes: int = MAX_BYTES) -> Hierarchy:
    """Load and validate a hierarchy.

    Args:
        source: a path (``str`` ending in ``.yaml``/``.yml``, an existing file, or
            ``os.PathLike``), YAML text (``str`` or ``bytes``), or a dict of schema-v1 data.
        max_bytes: larger inputs are refused before parsing.

    Returns:
        The validated :class:`Hierarchy`.

    Raises:
        HierarchyError: (``YAMLSyntaxError``, ``SchemaError`` or ``CycleError``) listing
            every problem with file, line, column and key path.

    Example:
        >>> h = load_hierarchy("taskgraph: 1\\ntasks:\\n  a: {type: binary}\\n"
        ...                    "  b: {type: regression, parents: [a]}\\n")
        >>> h.task_names, h.children("a")
        (('a', 'b'), ('b',))
    """
    with _gc_paused():
        return _load(source, max_bytes)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects.

    Reading a 100,000-task file creates millions of YAML nodes; with the collector on,
    each generation-2 pass walks all of them and loading becomes quadratic (12 s instead
    of 2 s). Nothing built here forms reference cycles that need collecting.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(source: Any, max_bytes: int) -> Hierarchy:
    source_name: str | None = None
    if isinstance(source, Mapping):
        doc = YAMLDocument(dict(source), None)
    elif isinstance(source, (bytes, bytearray)):
        doc = read_yaml(bytes(source), max_bytes=max_bytes)
    elif isinstance(source, os.PathLike) or (isinstance(source, str)
                                             and _looks_like_path(source)):
        source_name = os.fspath(source)
        if not os.path.exists(source_name):
            raise HierarchyNotFoundError([Problem("no such file", file=source_name,
                                                  kind="syntax")])
        doc = read_yaml(pathlib.Path(source_name), name=source_name, max_bytes=max_bytes)
    elif isinstance(source, str):
        doc = read_yaml(source, max_bytes=max_bytes)
    else:
        raise HierarchyError([Problem(f"expected a path, YAML text or a dict, got "
                                      f"{type(source).__name__}")])
    parts = validate(doc)
    name = parts["name"]
    if name is None:
        name = (os.path.splitext(os.path.basename(source_name))[0] if source_name
                else "hierarchy")
    return Hierarchy(name=name, description=parts["description"], model=parts["model"],
                     tasks=parts["tasks"], graph=parts["graph"], edges=parts["edges"],
                     source=source_name)

