"""Validate schema-v1 data and build the specs, reporting every problem in one pass.

Each problem names its key path and, for YAML input, the file, line and column. Problems
are collected (up to ``limit``) rather than raised one at a time, so a user fixes a file
in one round.

Example:
    >>> from taskgraph.hierarchy.yaml_source import read_yaml
    >>> doc = read_yaml("taskgraph: 1\\ntasks:\\n  a: {type: binary}\\n  b: {type: binary, parents: [aa]}\\n")
    >>> try:
    ...     validate(doc)
    ... except Exception as err:
    ...     print(err)
    <string>:4:31: tasks.b.parents[0]: unknown task 'aa' (did you mean 'a'?)
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from taskgraph.errors import HierarchyError
from taskgraph.hierarchy import schema
from taskgraph.hierarchy.report import ProblemReport as _Report
from taskgraph.hierarchy.report import format_path
from taskgraph.hierarchy.specs import (
    SYNAPSE_KEYS,
    EdgeSpec,
    EncoderSpec,
    ModelSpec,
    StochasticSpec,
    SynapseSpec,
    TaskSpec,
    freeze_mapping,
)
from taskgraph.hierarchy.yaml_source import YAMLDocument
from taskgraph.vocabulary import suggest

__all__ = ["validate", "format_path"]

DEFAULT_LIMIT = 100


def validate(doc: YAMLDocument, *, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """Check ``doc.data`` against schema v1.

    Returns:
        ``{"name", "description", "model", "tasks", "edges", "graph"}``: a
        :class:`ModelSpec`, a list of :class:`TaskSpec`, a list of :class:`EdgeSpec` and
        the ``nx.DiGraph`` (parent -> child).

    Raises:
        HierarchyError: every problem found (up to ``limit``).
    """
    return _Validator(doc, limit).run()


class _Validator:
    def __init__(self, doc: YAMLDocument, limit: int) -> None:
        self.doc = doc
        self.report = _Report(doc, limit)
        self.declared: set[str] = set()  # task names in the file, valid or not
        # class_parents of each task, checked once every task is known
        self._pending: dict[str, tuple[Any, tuple]] = {}

    def fail(self) -> HierarchyError:
        """Every problem, in file order (those without a line last)."""
        problems = sorted(self.report.problems, key=lambda p: (
            p.line is None, p.line or 0, p.column or 0))
        return HierarchyError.from_problems(problems, truncated=self.report.dropped)

    # -- generic helpers ---------------------------------------------------------------
    def section(self, data: Any, path: tuple, table: dict[str, schema.Key],
                what: str) -> dict[str, Any]:
        """Check a mapping against ``table``: unknown keys, required keys, value tests."""
        if not isinstance(data, dict):
            self.report.add(path, f"expected {what} (a mapping), got {schema.describe(data)}")
            return {}
        good: dict[str, Any] = {}
        for key, value in data.items():
            if key not in table:
                self.report.add(path + (key,), f"unknown key {key!r} in {what}"
                                f"{suggest(key, table)}; allowed: {', '.join(table)}", key=True)
                continue
            message = table[key].check(value)
            if message:
                self.report.add(path + (key,), message)
            else:
                good[key] = value
        for key, spec in table.items():
            if spec.required and key not in data:
                self.report.add(path, f"missing required key {key!r} in {what}", key=True)
        return good

    # -- top level -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        data = self.doc.data
        if data is None:
            self.report.add((), "empty document: a hierarchy needs 'taskgraph: 1' and 'tasks:'")
            raise self.fail()
        if not isinstance(data, dict):
            self.report.add((), f"the top level must be a mapping with 'taskgraph' and 'tasks', "
                                f"got {schema.describe(data)}")
            raise self.fail()
        if "taskgraph" not in data:
            self.report.add((), "missing schema version: add 'taskgraph: 1' as the first line")
        elif data["taskgraph"] != 1 or isinstance(data["taskgraph"], bool):
            self.report.add(("taskgraph",), f"unsupported schema version "
                            f"{schema.describe(data['taskgraph'])}; this taskgraph reads version 1")
        top = self.section({k: v for k, v in data.items() if k != "taskgraph"}, (),
                           {k: v for k, v in schema.TOP.items() if k != "taskgraph"},
                           "the hierarchy")
        model = self.model(top.get("model", {}), ("model",))
        tasks = self.tasks(top.get("tasks"), ("tasks",)) if "tasks" in top else []
        graph = self.graph(tasks) if tasks else nx.DiGraph()
        if tasks:
            self.class_parents(tasks, graph)
        edges = self.edges(top.get("edges", []), ("edges",), graph, model.synapse)
        if self.report.problems or self.report.dropped:
            raise self.fail()
        return {"name": top.get("name"), "description": top.get("description", ""),
                "model": model, "tasks": tasks, "edges": edges, "graph": graph}

    # -- model ---------------------------------------------------------------------------
    def model(self, data: Any, path: tuple) -> ModelSpec:
        good = self.section(data, path, schema.MODEL, "model")
        kw: dict[str, Any] = {}
        for key in ("task_dim", "projection_rank", "rounds", "message", "send", "dropout",
                    "coherent"):
            if key in good:
                kw[key] = float(good[key]) if key == "dropout" else good[key]
        if "directions" in good:
            kw["directions"] = tuple(good["directions"])
        if "encoder" in good:
            enc = self.section(good["encoder"], path + ("encoder",), schema.ENCODER, "encoder")
            if "hidden" in enc:
                enc["hidden"] = tuple(enc["hidden"])
            if "dropout" in enc:
                enc["dropout"] = float(enc["dropout"])
            kw["encoder"] = EncoderSpec(**enc)
        if "stochastic" in good:
            sto = self.section(good["stochastic"], path + ("stochastic",), schema.STOCHASTIC,
                               "stochastic")
            kw["stochastic"] = StochasticSpec(**{k: float(v) if k in ("prior_std", "init_std")
                                                 else v for k, v in sto.items()})
        if "synapse" in good:
            values = self.synapse(good["synapse"], path + ("synapse",), SynapseSpec())
            kw["synapse"] = SynapseSpec().replace(**values)
        return ModelSpec(**kw)

    def synapse(self, data: Any, path: tuple, default: SynapseSpec) -> dict[str, Any]:
        good = self.section(data, path, schema.SYNAPSE, "synapse")
        kind = good.get("kind", default.kind if "kind" not in data else None)
        if kind in SYNAPSE_KEYS:
            for key in good:
                if key not in SYNAPSE_KEYS[kind]:
                    self.report.add(path + (key,), f"key {key!r} does not apply to a {kind} "
                                    f"synapse (its keys: {', '.join(SYNAPSE_KEYS[kind])})",
                                    key=True)
        return {k: float(v) if k != "kind" else v for k, v in good.items()}

    # -- tasks ---------------------------------------------------------------------------
    def tasks(self, data: dict, path: tuple) -> list[TaskSpec]:
        if not data:
            self.report.add(path, "no tasks: a hierarchy needs at least one task")
            return []
        specs = []
        self.declared = {name for name in data if isinstance(name, str)}
        for name, body in data.items():
            tpath = path + (name,)
            if not isinstance(name, str) or not name.strip():
                raw = self.doc.raw_key(tpath)
                hint = f" (quote it: '{raw}')" if raw else ""
                self.report.add(tpath, f"task names must be non-empty strings, got "
                                f"{schema.describe(name)}{hint}", key=True)
                continue
            if not isinstance(body, dict):
                self.report.add(tpath, f"expected a task (a mapping with 'type'), got "
                                f"{schema.describe(body)}")
                continue
            spec = self.task(name, body, tpath)
            if spec is not None:
                specs.append(spec)
        return specs

    def task(self, name: str, body: dict, path: tuple) -> TaskSpec | None:
        good = self.section(body, path, schema.TASK, f"task {name!r}")
        ttype = good.get("type")
        if ttype is None:
            return None
        kw: dict[str, Any] = {"name": name, "type": ttype}
        if "classes" in good:
            kw.update(self.classes(ttype, good["classes"], path + ("classes",)))
        elif "classes" in body:
            pass  # present but malformed: already reported
        elif ttype == "multiclass":
            self.report.add(path, f"multiclass task {name!r} needs 'classes' "
                            "(a list of names or a count >= 2)", key=True)
        elif ttype == "multilabel":
            self.report.add(path, f"multilabel task {name!r} needs 'classes'", key=True)
        if "outputs" in good and ttype != "regression":
            self.report.add(path + ("outputs",), f"'outputs' applies to regression tasks, "
                            f"not {ttype}", key=True)
        elif "outputs" in good:
            kw["outputs"] = good["outputs"]
        if "weight" in good:
            kw["weight"] = float(good["weight"])
        if "description" in good:
            kw["description"] = good["description"]
        if "parents" in good:
            kw["parents"] = self.parents(name, good["parents"], path + ("parents",))
        if "class_parents" in good and ttype != "multiclass":
            self.report.add(path + ("class_parents",), f"'class_parents' applies to multiclass "
                            f"tasks, not {ttype}", key=True)
        spec = TaskSpec(**kw)
        if "class_parents" in good and ttype == "multiclass":
            # checked once every task is known; keep the raw mapping meanwhile
            self._pending[name] = (good["class_parents"], path + ("class_parents",))
        return spec

    def classes(self, ttype: str, value: Any, path: tuple) -> dict[str, Any]:
        least = 2 if ttype == "multiclass" else 1
        if ttype in ("binary", "regression"):
            self.report.add(path, f"a {ttype} task has no classes; remove 'classes' or "
                            "change the type to multiclass", key=True)
            return {}
        if isinstance(value, int):
            if value < least:
                self.report.add(path, f"a {ttype} task needs at least {least} classes, "
                                f"got {value}")
                return {}
            return {"classes": tuple(str(i) for i in range(value)), "count_only": True}
        names = []
        seen: set[str] = set()
        for i, cls in enumerate(value):
            if not isinstance(cls, str) or not cls:
                self.report.add(path + (i,), f"class names must be non-empty strings, got "
                                f"{schema.describe(cls)} (quote it)")
            elif cls in seen:
                self.report.add(path + (i,), f"duplicate class {cls!r}")
            else:
                seen.add(cls)
                names.append(cls)
        if len(value) < least:
            self.report.add(path, f"a {ttype} task needs at least {least} classes, "
                            f"got {len(value)}")
        return {"classes": tuple(names)}

    def parents(self, name: str, value: list, path: tuple) -> tuple[str, ...]:
        out: list[str] = []
        for i, parent in enumerate(value):
            if not isinstance(parent, str):
                self.report.add(path + (i,), f"expected a task name, got {schema.describe(parent)}")
            elif parent == name:
                self.report.add(path + (i,), f"task {name!r} lists itself as a parent")
            elif parent in out:
                self.report.add(path + (i,), f"parent {parent!r} is listed twice")
            else:
                out.append(parent)
        return tuple(out)

    # -- graph ---------------------------------------------------------------------------
    def graph(self, tasks: list[TaskSpec]) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_nodes_from((t.name, {"spec": t}) for t in tasks)
        names = graph.nodes
        for t in tasks:
            for i, parent in enumerate(t.parents):
                if parent in names:
                    graph.add_edge(parent, t.name)
                elif parent in self.declared:
                    pass  # declared but invalid: its own problem is reported
                else:
                    self.report.add(("tasks", t.name, "parents", i), f"unknown task {parent!r}"
                                    f"{suggest(parent, names)}")
        if not nx.is_directed_acyclic_graph(graph):
            order = {t.name: i for i, t in enumerate(tasks)}
            for comp in nx.strongly_connected_components(graph):
                if len(comp) < 2:
                    continue
                start = min(comp, key=order.__getitem__)
                cycle = nx.find_cycle(graph.subgraph(comp), source=start)
                names_ = [u for u, _ in cycle] + [cycle[-1][1]]
                last_parent, child = cycle[-1]
                i = graph.nodes[child]["spec"].parents.index(last_parent)
                self.report.add(("tasks", child, "parents", i),
                                "cycle: " + " -> ".join(names_), kind="cycle")
        return graph

    def class_parents(self, tasks: list[TaskSpec], graph: nx.DiGraph) -> None:
        pending = self._pending
        for index, t in enumerate(tasks):
            if t.name not in pending:
                continue
            raw, path = pending[t.name]
            tasks[index] = t.replace(class_parents=self.class_parent_map(t, raw, path, graph))
            graph.nodes[t.name]["spec"] = tasks[index]

    def class_parent_map(self, t: TaskSpec, raw: dict, path: tuple,
                         graph: nx.DiGraph) -> tuple:
        specs = {p: graph.nodes[p]["spec"] for p in t.parents if p in graph.nodes}
        multi = [p for p, s in specs.items() if s.type == "multiclass"]
        nested = bool(raw) and all(isinstance(v, dict) for v in raw.values())
        if not nested:
            if len(multi) != 1:
                if not multi:
                    bad = ", ".join(f"{p} is {s.type}" for p, s in specs.items()) or "no parents"
                    self.report.add(path, f"'class_parents' needs a multiclass parent ({bad})",
                                    key=True)
                else:
                    self.report.add(path, f"task {t.name!r} has several multiclass parents "
                                    f"({', '.join(multi)}): key class_parents by parent name, "
                                    f"e.g. {{{multi[0]}: {{class: parent_class}}}}", key=True)
                return ()
            raw, base = {multi[0]: raw}, path
        else:
            base = None
        result = {}
        for parent, mapping in raw.items():
            ppath = base if base is not None else path + (parent,)
            if parent not in specs:
                self.report.add(ppath, f"{parent!r} is not a parent of {t.name!r}"
                                f"{suggest(parent, specs)}", key=True)
                continue
            if specs[parent].type != "multiclass":
                self.report.add(ppath, f"'class_parents' points into parent {parent!r}, which is "
                                f"{specs[parent].type}, not multiclass", key=True)
                continue
            result[parent] = self.class_pairs(t, mapping, specs[parent], ppath)
        return freeze_mapping(result)

    def class_pairs(self, t: TaskSpec, mapping: dict, parent: TaskSpec,
                    path: tuple) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for cls, pcls in mapping.items():
            if cls not in (t.classes or ()):
                self.report.add(path + (cls,), f"{cls!r} is not a class of {t.name!r}"
                                f"{suggest(cls, t.classes or ())}", key=True)
            elif pcls not in (parent.classes or ()):
                self.report.add(path + (cls,), f"{schema.describe(pcls)} is not a class of parent "
                                f"{parent.name!r}{suggest(pcls, parent.classes or ())}")
            else:
                pairs[cls] = pcls
        missing = [c for c in (t.classes or ()) if c not in mapping]
        if missing:
            self.report.add(path, f"classes without a parent class in {parent.name!r}: "
                            f"{', '.join(missing)}", key=True)
        return pairs

    # -- edges ---------------------------------------------------------------------------
    def edges(self, data: list, path: tuple, graph: nx.DiGraph,
              default: SynapseSpec) -> list[EdgeSpec]:
        out: list[EdgeSpec] = []
        seen: dict[tuple[str, str, str], int] = {}
        for i, item in enumerate(data):
            epath = path + (i,)
            good = self.section(item, epath, schema.EDGE, "edge override")
            if "from" not in good or "to" not in good:
                continue
            values = self.synapse(good.get("synapse", {}), epath + ("synapse",), default)
            parent, child = good["from"], good["to"]
            known = True
            for key, name in (("from", parent), ("to", child)):
                if name not in graph.nodes:
                    known = False
                    self.report.add(epath + (key,), f"unknown task {name!r}"
                                    f"{suggest(name, graph.nodes)}")
            if known and not graph.has_edge(parent, child):
                parents = ", ".join(graph.predecessors(child)) or "none"
                self.report.add(epath, f"{parent} -> {child} is not an edge of the hierarchy "
                                f"({child}'s parents: {parents})")
                continue
            direction = good.get("direction", "both")
            for d in (("down", "up") if direction == "both" else (direction,)):
                if (parent, child, d) in seen:
                    self.report.add(epath, f"a second override for {parent} -> {child} ({d}); "
                                    f"the first is edges[{seen[parent, child, d]}]")
                seen[parent, child, d] = i
            out.append(EdgeSpec(parent, child, tuple(sorted(values.items())), direction))
        return out
