"""Property tests: any input gives a Hierarchy or a TaskGraphError; valid DAGs round-trip."""

from __future__ import annotations

import networkx as nx
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from taskgraph.errors import TaskGraphError
from taskgraph.hierarchy import Hierarchy, SynapseSpec, load_hierarchy
from taskgraph.hierarchy.specs import SYNAPSE_KEYS

SETTINGS = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DAG_SETTINGS = settings(SETTINGS, max_examples=100)  # costlier examples, fewer of them


def load_or_taskgraph_error(source):
    """``load_hierarchy(source)``; anything but a TaskGraphError fails the test."""
    try:
        return load_hierarchy(source)
    except TaskGraphError as err:
        assert err.problems, "a TaskGraphError without problems"
        for p in err.problems:
            assert p.message
            assert p.kind in ("syntax", "schema", "cycle")
        return None
    except Exception as err:  # noqa: BLE001
        raise AssertionError(f"{type(err).__name__}: {err} for input {source!r:.300}") from err


# -- any input ---------------------------------------------------------------------------------
YAML_ALPHABET = "abt01:-[]{},'\"!&*<>|#?%@`~ \n\t.x_e+"


@SETTINGS
@given(st.text())
@example("taskgraph: 1\ntasks:\n  a: {type: binary}\n")
@example("taskgraph: 1\ntasks: {a: {type: binary, parents: [a]}}")
@example("[[[[[[[[[[]]]]]]]]]]")
def test_random_text_gives_a_hierarchy_or_a_taskgraph_error(text):
    load_or_taskgraph_error(text)


@SETTINGS
@given(st.text(alphabet=YAML_ALPHABET, max_size=60))
def test_random_yaml_like_text(text):
    load_or_taskgraph_error(text)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes(raw):
    load_or_taskgraph_error(raw)


WORDS = ["taskgraph", "tasks", "model", "edges", "name", "description", "type", "classes",
         "parents", "class_parents", "weight", "outputs", "binary", "multiclass", "multilabel",
         "regression", "from", "to", "direction", "synapse", "kind", "mean", "std", "p",
         "prior_p", "prior_std", "gaussian", "bernoulli", "fixed", "encoder", "hidden",
         "rounds", "task_dim", "directions", "up", "down", "both", "stochastic", "a", "b", "c"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.floats(),
                    st.sampled_from(WORDS), st.text(max_size=6))
keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=4), st.integers(-2, 2), st.none(),
                 st.booleans())
trees = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=15)
task_bodies = st.dictionaries(st.sampled_from(WORDS), trees, max_size=5)
shaped = st.fixed_dictionaries(
    {"taskgraph": st.one_of(st.just(1), scalars),
     "tasks": st.one_of(st.dictionaries(st.sampled_from(WORDS), task_bodies, max_size=5), trees)},
    optional={"model": st.one_of(st.dictionaries(st.sampled_from(WORDS), trees, max_size=4),
                                 trees),
              "edges": st.one_of(st.lists(st.dictionaries(st.sampled_from(WORDS), trees,
                                                          max_size=4), max_size=3), trees),
              "name": scalars, "description": scalars})


@DAG_SETTINGS
@given(st.one_of(trees, st.dictionaries(keys, trees, max_size=6), shaped))
def test_random_data_gives_a_hierarchy_or_a_taskgraph_error(data):
    load_or_taskgraph_error(data)
    if isinstance(data, (dict, list)):
        load_or_taskgraph_error(yaml.safe_dump(data, allow_unicode=True))


# -- valid hierarchies ---------------------------------------------------------------------------
names = st.text(min_size=1, max_size=8).filter(lambda s: s.strip() != "")
finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def synapses(draw, kind=None):
    kind = kind or draw(st.sampled_from(sorted(SYNAPSE_KEYS)))
    values = {"kind": kind}
    pool = {
        "mean": st.floats(-10, 10, **finite),
        "std": st.floats(1e-6, 10, **finite),
        "prior_std": st.floats(1e-6, 10, **finite),
        "p": st.floats(0, 1, exclude_min=True, **finite),
        "prior_p": st.floats(0, 1, exclude_min=True, exclude_max=True, **finite),
    }
    for key in SYNAPSE_KEYS[kind][1:]:
        if draw(st.booleans()):
            values[key] = draw(pool[key])
    return values


@st.composite
def models(draw):
    model = {}
    if draw(st.booleans()):
        model["task_dim"] = draw(st.integers(1, 512))
    if draw(st.booleans()):
        model["rounds"] = draw(st.integers(1, 6))
    if draw(st.booleans()):
        model["directions"] = draw(st.sampled_from([[], ["down"], ["up"], ["up", "down"]]))
    if draw(st.booleans()):
        model["message"] = draw(st.sampled_from(["sum", "attention"]))
    if draw(st.booleans()):
        model["dropout"] = draw(st.floats(0, 1, exclude_max=True, **finite))
    if draw(st.booleans()):
        model["coherent"] = draw(st.booleans())
    if draw(st.booleans()):
        model["encoder"] = {"hidden": draw(st.lists(st.integers(1, 64), max_size=3)),
                            "activation": draw(st.sampled_from(["relu", "gelu", "tanh", "silu"]))}
    if draw(st.booleans()):
        model["synapse"] = draw(synapses())
    if draw(st.booleans()):
        model["stochastic"] = {"heads": draw(st.booleans()),
                               "prior_std": draw(st.floats(0.01, 5, **finite))}
    return model


@st.composite
def hierarchies(draw):
    """Schema-v1 data for a random valid DAG, and its edges (parent, child)."""
    task_names = draw(st.lists(names, min_size=1, max_size=8, unique=True))
    order = draw(st.permutations(task_names))  # file order differs from the DAG's order
    rank = {n: i for i, n in enumerate(task_names)}  # parents come earlier in this ranking
    tasks: dict = {}
    classes_of: dict = {}
    for name in task_names:
        ttype = draw(st.sampled_from(["binary", "multiclass", "multilabel", "regression"]))
        body: dict = {"type": ttype}
        if ttype in ("multiclass", "multilabel"):
            if draw(st.booleans()):
                count = draw(st.integers(2 if ttype == "multiclass" else 1, 5))
                body["classes"] = count
                classes_of[name] = [str(i) for i in range(count)]
            else:
                least = 2 if ttype == "multiclass" else 1
                body["classes"] = draw(st.lists(names, min_size=least, max_size=5, unique=True))
                classes_of[name] = body["classes"]
        earlier = task_names[: rank[name]]
        parents = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        if parents:
            body["parents"] = parents
        if ttype == "multiclass":
            multi = [p for p in parents if tasks[p]["type"] == "multiclass"]
            if multi and draw(st.booleans()):
                nested = {p: {c: draw(st.sampled_from(classes_of[p])) for c in classes_of[name]}
                          for p in multi}
                flat = len(multi) == 1 and draw(st.booleans())
                body["class_parents"] = nested[multi[0]] if flat else nested
        if draw(st.booleans()):
            body["weight"] = draw(st.floats(1e-3, 1e3, **finite))
        if ttype == "regression" and draw(st.booleans()):
            body["outputs"] = draw(st.integers(1, 4))
        if draw(st.booleans()):
            body["description"] = draw(st.text(max_size=40))
        tasks[name] = body
    data: dict = {"taskgraph": 1, "tasks": {n: tasks[n] for n in order}}
    if draw(st.booleans()):
        data["name"] = draw(st.text(max_size=12))
    if draw(st.booleans()):
        data["description"] = draw(st.text(max_size=80))
    model = draw(models())
    if model:
        data["model"] = model
    edges = [(p, n) for n in task_names for p in tasks[n].get("parents", [])]
    if edges and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(edges), unique=True, max_size=3))
        data["edges"] = []
        for parent, child in chosen:
            item = {"from": parent, "to": child}
            direction = draw(st.sampled_from([None, "down", "up", "both"]))
            if direction:
                item["direction"] = direction
            if draw(st.booleans()):
                item["synapse"] = draw(synapses())
            data["edges"].append(item)
    return data, edges


def expected_depths(data) -> dict:
    depth: dict = {}

    def d(name):
        if name not in depth:
            parents = data["tasks"][name].get("parents", [])
            depth[name] = 1 + max(d(p) for p in parents) if parents else 0
        return depth[name]

    for name in data["tasks"]:
        d(name)
    return depth


@DAG_SETTINGS
@given(hierarchies())
def test_valid_hierarchies_load_and_match_their_edges(generated):
    data, edges = generated
    h = load_hierarchy(data)
    assert h.task_names == tuple(data["tasks"])
    assert set(h.graph.edges) == set(edges)
    assert h.graph.number_of_edges() == len(edges)
    for name, body in data["tasks"].items():
        spec = h[name]
        assert spec.type == body["type"]
        assert spec.parents == tuple(body.get("parents", ()))
        assert spec.weight == body.get("weight", 1.0)
        assert h.graph.nodes[name]["spec"] == spec
        cp = body.get("class_parents")
        if cp is not None:
            nested = cp if all(isinstance(v, dict) for v in cp.values()) else None
            if nested is None:
                multi = [p for p in spec.parents if data["tasks"][p]["type"] == "multiclass"]
                nested = {multi[0]: cp}
            for parent, mapping in nested.items():
                assert spec.class_parent_map(parent) == mapping
    assert h.roots == tuple(n for n in data["tasks"] if not data["tasks"][n].get("parents"))
    children = {p for p, _ in edges}
    assert h.leaves == tuple(n for n in data["tasks"] if n not in children)
    assert h.depths == expected_depths(data)
    order = h.topological_order
    assert sorted(order) == sorted(h.task_names)
    for parent, child in edges:
        assert order.index(parent) < order.index(child)
        assert parent in h.ancestors(child) and child in h.descendants(parent)
    model = data.get("model", {})
    if "synapse" in model:
        default = SynapseSpec(**model["synapse"])
        assert h.model.synapse == default
    else:
        default = SynapseSpec()
    for item in data.get("edges", []):
        for direction in ("down", "up"):
            if item.get("direction", "both") in ("both", direction):
                expected = default.replace(**item.get("synapse", {}))
                assert h.edge_synapse(item["from"], item["to"], direction) == expected


@DAG_SETTINGS
@given(hierarchies())
def test_valid_hierarchies_round_trip(generated):
    data, _ = generated
    h = load_hierarchy(data)
    text = h.to_yaml()
    again = load_hierarchy(text)
    assert again == h
    assert set(again.graph.edges) == set(h.graph.edges)
    assert again.to_yaml() == text
    assert load_hierarchy(h.to_dict()) == h
    assert load_hierarchy(text.encode("utf-8")) == h


@DAG_SETTINGS
@given(hierarchies())
def test_from_networkx_of_generated_graphs(generated):
    data, edges = generated
    g = nx.DiGraph()
    g.add_nodes_from(data["tasks"])
    g.add_edges_from(edges)
    h = Hierarchy.from_networkx(g)
    assert set(h.graph.edges) == set(edges)
    assert all(h[n].type == "binary" for n in h)
    assert load_hierarchy(h.to_yaml()) == h

