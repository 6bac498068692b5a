"""The loader's sources, the `Hierarchy` object, its graph queries and its round trips."""

from __future__ import annotations

import dataclasses
import pathlib
import textwrap

import networkx as nx
import pytest

from taskgraph.errors import HierarchyError, SchemaError, TaskGraphError
from taskgraph.hierarchy import (
    EdgeSpec,
    EncoderSpec,
    Hierarchy,
    StochasticSpec,
    SynapseSpec,
    TaskSpec,
    load_hierarchy,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
HIERARCHIES = sorted((REPO / "hierarchies").glob("*.y*ml"))
ANIMALS = REPO / "hierarchies" / "animals.yaml"
CELLS = REPO / "hierarchies" / "cell_functions.yaml"

# DESIGN.md section 2, as written there
DESIGN_YAML = """\
taskgraph: 1                     # schema version, required
name: animals
description: Is it a mammal, what does it eat, which species is it.
model:                           # optional defaults for compile()
  encoder: {type: mlp, hidden: [256, 256], dropout: 0.1}
  task_dim: 64
  rounds: 2
  directions: [down, up]
  synapse: {kind: gaussian, mean: 1.0, std: 0.1, prior_std: 1.0}
tasks:
  mammal:   {type: binary}
  diet:     {type: multiclass, classes: [herbivore, carnivore, omnivore], parents: [mammal]}
  species:
    type: multiclass
    classes: [cat, dog, cow, eagle]
    parents: [diet]
    class_parents: {cat: carnivore, dog: omnivore, cow: herbivore, eagle: carnivore}
    weight: 2.0                  # loss weight
  weight_kg: {type: regression, parents: [species]}
edges:                           # optional per-edge synapse overrides
  - {from: mammal, to: diet, synapse: {kind: bernoulli, p: 0.9}}
"""


def test_there_are_example_hierarchies():
    assert {p.name for p in HIERARCHIES} >= {"animals.yaml", "cell_functions.yaml"}


@pytest.mark.parametrize("path", HIERARCHIES, ids=lambda p: p.name)
def test_every_shipped_hierarchy_validates_and_round_trips(path):
    h = load_hierarchy(path)
    assert len(h) >= 1
    assert h.source == str(path)
    assert nx.is_directed_acyclic_graph(h.graph)
    assert load_hierarchy(h.to_yaml()) == h
    assert load_hierarchy(h.to_dict()) == h
    assert load_hierarchy(str(path)) == h
    # every declared parent is an edge, and nothing else is
    assert set(h.graph.edges) == {(p, t.name) for t in h.tasks.values() for p in t.parents}
    assert set(h.edge_list()) == set(h.graph.edges)


# -- DESIGN.md's example -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def animals() -> Hierarchy:
    return load_hierarchy(ANIMALS)


def test_design_yaml_is_the_shipped_animals_file(animals):
    assert load_hierarchy(DESIGN_YAML) == animals


def test_animals_tasks(animals):
    h = animals
    assert h.name == "animals"
    assert h.description == "Is it a mammal, what does it eat, which species is it."
    assert h.task_names == ("mammal", "diet", "species", "weight_kg")
    assert [h[n].type for n in h] == ["binary", "multiclass", "multiclass", "regression"]
    assert h["mammal"].classes is None and h["mammal"].parents == ()
    assert h["diet"].classes == ("herbivore", "carnivore", "omnivore")
    assert h["diet"].parents == ("mammal",)
    assert h["species"].classes == ("cat", "dog", "cow", "eagle")
    assert h["species"].parents == ("diet",)
    assert h["species"].class_parent_map("diet") == {
        "cat": "carnivore", "dog": "omnivore", "cow": "herbivore", "eagle": "carnivore"}
    assert h["species"].class_parent_map("mammal") == {}
    assert h["species"].weight == 2.0
    assert [h[n].weight for n in ("mammal", "diet", "weight_kg")] == [1.0, 1.0, 1.0]
    assert h["weight_kg"].parents == ("species",)
    assert [h[n].num_outputs for n in h] == [1, 3, 4, 1]
    assert h["diet"].class_parents == ()


def test_animals_model_defaults(animals):
    m = animals.model
    assert m.encoder == EncoderSpec(type="mlp", hidden=(256, 256), dropout=0.1)
    assert (m.task_dim, m.rounds, m.directions) == (64, 2, ("down", "up"))
    assert m.synapse == SynapseSpec(kind="gaussian", mean=1.0, std=0.1, prior_std=1.0)
    # keys the file leaves out keep their defaults
    assert (m.message, m.dropout, m.coherent) == ("sum", 0.0, False)
    assert m.stochastic == StochasticSpec()


def test_animals_edge_override(animals):
    h = animals
    assert h.edges == (EdgeSpec("mammal", "diet", (("kind", "bernoulli"), ("p", 0.9))),)
    s = h.edge_synapse("mammal", "diet")
    assert (s.kind, s.p, s.mean, s.prior_p) == ("bernoulli", 0.9, 1.0, 0.5)
    assert h.edge_synapse("mammal", "diet", "up") == s  # direction 'both'
    for parent, child in (("diet", "species"), ("species", "weight_kg")):
        for direction in ("down", "up"):
            assert h.edge_synapse(parent, child, direction) == SynapseSpec(
                kind="gaussian", mean=1.0, std=0.1, prior_std=1.0)
    with pytest.raises(KeyError):
        h.edge_synapse("mammal", "species")
    with pytest.raises(KeyError):
        h.edge_synapse("diet", "mammal")


def test_cell_functions_edge_override_applies_to_one_direction():
    h = load_hierarchy(CELLS)
    default = SynapseSpec(kind="bernoulli", mean=1.0, p=0.9, prior_p=0.5)
    assert h.model.synapse == default
    assert h.model.coherent is True and h.model.task_dim == 16
    assert h.edge_synapse("signaling", "lipid_signaling", "down") == default
    assert h.edge_synapse("signaling", "lipid_signaling", "up") == default.replace(
        kind="gaussian", mean=0.5, std=0.2)
    assert h.edge_synapse("lipid_metabolism", "lipid_signaling", "up") == default


def test_animals_graph(animals):
    g = animals.graph
    assert isinstance(g, nx.DiGraph)
    assert set(g.edges) == {("mammal", "diet"), ("diet", "species"), ("species", "weight_kg")}
    for name in animals:
        assert g.nodes[name]["spec"] == animals[name]
    assert animals.topological_order == ("mammal", "diet", "species", "weight_kg")
    assert animals.roots == ("mammal",) and animals.leaves == ("weight_kg",)
    assert animals.depths == {"mammal": 0, "diet": 1, "species": 2, "weight_kg": 3}


# -- sources -----------------------------------------------------------------------------------
SMALL = "taskgraph: 1\ntasks:\n  a: {type: binary}\n  b: {type: regression, parents: [a]}\n"


def test_sources_str_path_pathlib_text_bytes_dict(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    by_path = load_hierarchy(path)
    by_str = load_hierarchy(str(path))
    by_text = load_hierarchy(SMALL)
    by_bytes = load_hierarchy(SMALL.encode())
    by_bytearray = load_hierarchy(bytearray(SMALL.encode()))
    by_dict = load_hierarchy({"taskgraph": 1, "tasks": {
        "a": {"type": "binary"}, "b": {"type": "regression", "parents": ["a"]}}})
    # the name comes from the file, else "hierarchy"
    assert by_path.name == by_str.name == "small"
    assert by_text.name == by_bytes.name == by_dict.name == by_bytearray.name == "hierarchy"
    assert by_path == by_str
    assert by_text == by_bytes == by_dict == by_bytearray
    assert by_path.source == by_str.source == str(path)
    assert by_text.source is None and by_dict.source is None
    for h in (by_path, by_text, by_dict):
        assert h.task_names == ("a", "b") and h.children("a") == ("b",)


def test_str_path_without_yaml_suffix(tmp_path):
    path = tmp_path / "hier.txt"
    path.write_text(SMALL, encoding="utf-8")
    h = load_hierarchy(str(path))
    assert h.name == "hier" and h.source == str(path)


def test_name_in_file_wins_over_file_name(tmp_path):
    path = tmp_path / "file_name.yaml"
    path.write_text("taskgraph: 1\nname: inner\ntasks:\n  a: {type: binary}\n", encoding="utf-8")
    assert load_hierarchy(path).name == "inner"


def test_dict_input_is_not_mutated():
    data = {"taskgraph": 1, "tasks": {"a": {"type": "binary"}}}
    before = repr(data)
    load_hierarchy(data)
    assert repr(data) == before


@pytest.mark.parametrize("source", [123, None, 1.5, ["taskgraph: 1"]])
def test_unsupported_source_types(source):
    with pytest.raises(HierarchyError) as info:
        load_hierarchy(source)
    assert "expected a path, YAML text or a dict" in str(info.value)


# -- the Hierarchy object -----------------------------------------------------------------------
# A multi-parent DAG, declared so that file order is not a topological order:
#
#   r2 -> b, r2 -> e, r1 -> a, r1 -> b, a -> c, b -> c, c -> d
DAG = textwrap.dedent("""\
    taskgraph: 1
    name: dag
    tasks:
      c: {type: binary, parents: [a, b]}
      d: {type: regression, parents: [c]}
      b: {type: binary, parents: [r1, r2]}
      a: {type: binary, parents: [r1]}
      e: {type: binary, parents: [r2]}
      r2: {type: binary}
      r1: {type: multiclass, classes: [x, y]}
    """)


@pytest.fixture(scope="module")
def dag() -> Hierarchy:
    return load_hierarchy(DAG)


def test_dag_structure(dag):
    assert dag.task_names == ("c", "d", "b", "a", "e", "r2", "r1")
    assert dag.index == {"c": 0, "d": 1, "b": 2, "a": 3, "e": 4, "r2": 5, "r1": 6}
    assert set(dag.graph.edges) == {("r2", "b"), ("r2", "e"), ("r1", "a"), ("r1", "b"),
                                    ("a", "c"), ("b", "c"), ("c", "d")}
    assert len(dag) == 7 and "a" in dag and "zz" not in dag and list(dag) == list(dag.task_names)


def test_dag_parents_children(dag):
    assert dag.parents("c") == ("a", "b")
    assert dag.parents("b") == ("r1", "r2")
    assert dag.parents("r1") == ()
    assert set(dag.children("r1")) == {"a", "b"}
    assert set(dag.children("r2")) == {"b", "e"}
    assert dag.children("d") == () and dag.children("e") == ()
    assert dag.children("c") == ("d",)


def test_dag_ancestors_descendants(dag):
    assert dag.ancestors("d") == {"c", "a", "b", "r1", "r2"}
    assert dag.ancestors("c") == {"a", "b", "r1", "r2"}
    assert dag.ancestors("a") == {"r1"}
    assert dag.ancestors("r2") == set()
    assert dag.descendants("r1") == {"a", "b", "c", "d"}
    assert dag.descendants("r2") == {"b", "c", "d", "e"}
    assert dag.descendants("b") == {"c", "d"}
    assert dag.descendants("d") == set()


def test_dag_roots_leaves_depth(dag):
    assert dag.roots == ("r2", "r1")  # file order
    assert dag.leaves == ("d", "e")
    expected = {"r1": 0, "r2": 0, "a": 1, "b": 1, "e": 1, "c": 2, "d": 3}
    assert dag.depths == expected
    for name, depth in expected.items():
        assert dag.depth(name) == depth


def test_dag_topological_order(dag):
    order = dag.topological_order
    assert sorted(order) == sorted(dag.task_names)
    for parent, child in dag.graph.edges:
        assert order.index(parent) < order.index(child)
    # ready tasks are taken in file order: r2 (e becomes ready, before r1 in the file)
    assert order == ("r2", "e", "r1", "b", "a", "c", "d")


def test_dag_edge_list(dag):
    assert dag.edge_list() == [("a", "c"), ("b", "c"), ("c", "d"), ("r1", "b"), ("r2", "b"),
                               ("r1", "a"), ("r2", "e")]


@pytest.mark.parametrize("query", ["parents", "children", "ancestors", "descendants", "depth",
                                   "__getitem__"])
def test_unknown_task_in_a_query(dag, query):
    with pytest.raises(KeyError) as info:
        getattr(dag, query)("nope")
    assert "nope" in str(info.value)


def test_graph_is_frozen(dag):
    g = dag.graph
    assert nx.is_frozen(g)
    for change in (lambda: g.add_node("x"), lambda: g.add_edge("a", "e"),
                   lambda: g.remove_node("a"), lambda: g.remove_edge("a", "c"),
                   lambda: g.add_edges_from([("e", "a")]), lambda: g.clear()):
        with pytest.raises(nx.NetworkXError):
            change()
    assert g.number_of_nodes() == 7 and g.number_of_edges() == 7


def test_graph_nodes_carry_specs(dag):
    for name in dag:
        spec = dag.graph.nodes[name]["spec"]
        assert isinstance(spec, TaskSpec) and spec == dag[name]
    assert dag.graph.nodes["r1"]["spec"].classes == ("x", "y")


def test_tasks_are_read_only():
    dag = load_hierarchy(DAG)  # its own copy: a failure here must not leak into other tests
    tasks = dag.tasks
    spec = TaskSpec("x", "binary")
    for change in (lambda: tasks.__setitem__("x", spec), lambda: tasks.__delitem__("a"),
                   lambda: tasks.update(x=spec), lambda: tasks.pop("a"), tasks.popitem,
                   tasks.clear, lambda: tasks.setdefault("x", spec)):
        with pytest.raises(TypeError):
            change()
    assert dag.task_names == ("c", "d", "b", "a", "e", "r2", "r1")


def test_tasks_refuse_in_place_union():
    h = load_hierarchy(DAG)  # its own copy: a failure here must not leak into other tests
    tasks = h.tasks
    with pytest.raises(TypeError):
        tasks |= {"x": TaskSpec("x", "binary")}
    assert "x" not in h.tasks and "x" not in h


def test_specs_are_frozen(dag):
    with pytest.raises(dataclasses.FrozenInstanceError):
        dag["a"].weight = 3.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        dag.model.rounds = 5  # type: ignore[misc]


def test_hierarchy_equality_and_hash(dag):
    assert dag == load_hierarchy(DAG)
    assert dag != load_hierarchy(DAG.replace("name: dag", "name: other"))
    assert dag != load_hierarchy(DAG.replace("d: {type: regression", "d: {type: binary"))
    assert (dag == 3) is False
    with pytest.raises(TypeError):
        hash(dag)


def test_repr(dag):
    text = repr(dag)
    assert "dag" in text and "7" in text


# -- round trips ---------------------------------------------------------------------------------
def test_dag_round_trips(dag, tmp_path):
    assert load_hierarchy(dag.to_yaml()) == dag
    assert load_hierarchy(dag.to_dict()) == dag
    out = tmp_path / "out.yaml"
    text = dag.to_yaml(out)
    assert out.read_text(encoding="utf-8") == text
    assert load_hierarchy(out) == dag
    assert not list(tmp_path.glob("*.tmp"))


def test_to_dict_leaves_defaults_out(animals):
    d = animals.to_dict()
    assert d["taskgraph"] == 1 and d["name"] == "animals"
    assert d["tasks"]["mammal"] == {"type": "binary"}
    assert d["tasks"]["species"]["weight"] == 2.0
    assert "weight" not in d["tasks"]["diet"]
    assert d["model"] == {"encoder": {"dropout": 0.1}}
    assert d["edges"] == [{"from": "mammal", "to": "diet",
                           "synapse": {"kind": "bernoulli", "p": 0.9}}]


def test_round_trip_of_every_setting():
    text = textwrap.dedent("""\
        taskgraph: 1
        name: everything
        description: "all the keys, with non-default values: \\u00e9 \\t tab"
        model:
          encoder: {type: mlp, hidden: [32, 16, 8], dropout: 0.25, activation: gelu, batch_norm: true}
          task_dim: 12
          rounds: 3
          directions: [up]
          message: attention
          dropout: 0.5
          coherent: true
          synapse: {kind: bernoulli, mean: -0.5, p: 0.3, prior_p: 0.2}
          stochastic: {encoder: true, projections: true, heads: true, prior_std: 0.5}
        tasks:
          a: {type: multiclass, classes: 3, weight: 0.5, description: counted}
          b: {type: multilabel, classes: [p, q], parents: [a]}
          c: {type: regression, outputs: 4, parents: [a, b]}
          d: {type: multiclass, classes: [u, v], parents: [a], class_parents: {u: '0', v: '2'}}
        edges:
          - {from: a, to: b, direction: down, synapse: {kind: fixed, mean: 2.0}}
          - {from: b, to: c, synapse: {kind: gaussian, std: 0.3, prior_std: 2}}
          - {from: a, to: c}
        """)
    h = load_hierarchy(text)
    assert h["a"].count_only and h["a"].classes == ("0", "1", "2")
    assert h["d"].class_parent_map("a") == {"u": "0", "v": "2"}
    assert h.model.directions == ("up",) and h.model.message == "attention"
    assert h.model.stochastic == StochasticSpec(True, True, True, 0.5)
    assert h.edge_synapse("b", "c").prior_std == 2.0
    assert h.edge_synapse("a", "c") == h.model.synapse
    again = load_hierarchy(h.to_yaml())
    assert again == h
    assert again.to_yaml() == h.to_yaml()
    assert load_hierarchy(h.to_dict()) == h


@pytest.mark.parametrize("names", [("猫", "café"), ("yes", "null"), ("1", "2.5"),
                                   ("a b", "a.b"), ("<<", "- x"), ("#x", "&y"),
                                   ("ü" * 3, "𝔘𝔫𝔦")])
def test_awkward_and_unicode_names_round_trip(tmp_path, names):
    parent, child = names
    data = {"taskgraph": 1, "name": f"{parent}/{child}", "tasks": {
        parent: {"type": "multiclass", "classes": [child, parent]},
        child: {"type": "multiclass", "classes": [parent, child], "parents": [parent],
                "class_parents": {parent: child, child: parent}}}}
    h = load_hierarchy(data)
    text = h.to_yaml()
    assert load_hierarchy(text) == h
    path = tmp_path / "u.yaml"
    h.to_yaml(path)
    again = load_hierarchy(path)
    assert again == h and again.name == f"{parent}/{child}"
    assert again.task_names == (parent, child)
    assert again.parents(child) == (parent,)
    assert again[child].class_parent_map(parent) == {parent: child, child: parent}


def test_unicode_file_on_disk(tmp_path):
    path = tmp_path / "tiere.yaml"
    path.write_bytes("taskgraph: 1\ntasks:\n  猫: {type: binary}\n  café: {type: binary, parents: [猫]}\n"
                     .encode("utf-8"))
    h = load_hierarchy(path)
    assert h.task_names == ("猫", "café") and h.children("猫") == ("café",)
    assert load_hierarchy(h.to_yaml()) == h


def test_unicode_names_in_messages(tmp_path):
    text = "taskgraph: 1\ntasks:\n  猫: {type: binary}\n  café: {type: binary, parents: [猫猫]}\n"
    with pytest.raises(SchemaError) as info:
        load_hierarchy(text)
    p = info.value.problems[0]
    assert p.path == "tasks.café.parents[0]"
    assert "'猫猫'" in p.message
    # columns count characters
    assert (p.line, p.column) == (4, len("  café: {type: binary, parents: [") + 1)


# -- from_networkx -------------------------------------------------------------------------------
def test_from_networkx_plain_nodes_are_binary():
    g = nx.DiGraph([("animal", "mammal"), ("mammal", "cat"), ("animal", "bird"), ("bird", "cat")])
    h = Hierarchy.from_networkx(g, name="toy")
    assert h.name == "toy"
    assert h.task_names == ("animal", "mammal", "cat", "bird")
    assert all(h[n].type == "binary" for n in h)
    assert set(h.graph.edges) == set(g.edges)
    assert set(h.parents("cat")) == {"mammal", "bird"}
    assert h.roots == ("animal",) and h.leaves == ("cat",)
    assert h.depth("cat") == 2
    assert load_hierarchy(h.to_yaml()) == h


def test_from_networkx_with_attributes_and_model():
    g = nx.DiGraph()
    g.add_node("diet", type="multiclass", classes=["herbivore", "carnivore"])
    g.add_node("species", type="multiclass", classes=["cow", "cat"],
               class_parents={"cow": "herbivore", "cat": "carnivore"}, weight=2.0)
    g.add_node("kg", type="regression", outputs=2)
    g.add_node("flag")
    g.add_edges_from([("diet", "species"), ("species", "kg")])
    h = Hierarchy.from_networkx(g, model={"task_dim": 8, "synapse": {"kind": "fixed"}})
    assert h["diet"].classes == ("herbivore", "carnivore")
    assert h["species"].class_parent_map("diet") == {"cow": "herbivore", "cat": "carnivore"}
    assert h["species"].weight == 2.0
    assert h["kg"].type == "regression" and h["kg"].outputs == 2
    assert h["flag"].type == "binary" and h["flag"].parents == ()
    assert h.model.task_dim == 8 and h.model.synapse.kind == "fixed"
    assert load_hierarchy(h.to_yaml()) == h
    assert load_hierarchy(h.to_dict()) == h


def test_from_networkx_default_type_and_spec_attribute():
    g = nx.DiGraph([("a", "b")])
    g.nodes["a"]["spec"] = TaskSpec("a", "multilabel", classes=("x", "y"))
    h = Hierarchy.from_networkx(g, default_type="regression")
    assert h["a"].type == "multilabel" and h["a"].classes == ("x", "y")
    assert h["b"].type == "regression" and h["b"].parents == ("a",)


def test_from_networkx_with_a_cycle_or_bad_attributes():
    from taskgraph.errors import CycleError
    with pytest.raises(CycleError):
        Hierarchy.from_networkx(nx.DiGraph([("a", "b"), ("b", "a")]))
    g = nx.DiGraph()
    g.add_node("a", type="multiclass")
    with pytest.raises(SchemaError) as info:
        Hierarchy.from_networkx(g)
    assert info.value.problems[0].path == "tasks.a"
    assert isinstance(info.value, TaskGraphError)


def test_from_networkx_round_trip_of_a_loaded_graph(dag):
    again = Hierarchy.from_networkx(nx.DiGraph(dag.graph), name="dag")
    assert set(again.graph.edges) == set(dag.graph.edges)
    assert {n: again[n].type for n in again} == {n: dag[n].type for n in dag}
    assert again.depths == dag.depths
