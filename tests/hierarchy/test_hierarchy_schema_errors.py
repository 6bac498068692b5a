"""Schema v1 validation: one clear message per problem, with file, line, column, key path.

Expected positions come from the YAML text written in each test (``loc`` finds a snippet
in it), so they are checked independently of the loader.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from taskgraph.errors import CycleError, HierarchyError, Problem, SchemaError, TaskGraphError
from taskgraph.hierarchy import load_hierarchy
from taskgraph.hierarchy.validate import DEFAULT_LIMIT, format_path, validate
from taskgraph.hierarchy.yaml_source import read_yaml


def loc(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """1-based (line, column) of the ``nth`` occurrence of ``needle`` in ``text``."""
    start = -1
    for _ in range(nth):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, column


def y(text: str) -> str:
    return textwrap.dedent(text)


def errors(source, cls: type[HierarchyError] = HierarchyError) -> HierarchyError:
    with pytest.raises(cls) as info:
        load_hierarchy(source)
    return info.value


def only(err: HierarchyError) -> Problem:
    assert len(err.problems) == 1, str(err)
    return err.problems[0]


def check(text: str, path: str, needle: str, *words: str, nth: int = 1,
          cls: type[HierarchyError] = SchemaError, tmp_path: Path | None = None) -> Problem:
    """Load ``text`` (from a file when ``tmp_path`` is given) and check its one problem."""
    source: str | Path = text
    name = "<string>"
    if tmp_path is not None:
        source = tmp_path / "h.yaml"
        source.write_text(text, encoding="utf-8")
        name = str(source)
    p = only(errors(source, cls))
    line, column = loc(text, needle, nth)
    assert (p.file, p.line, p.column, p.path) == (name, line, column, path), str(p)
    assert str(p).startswith(f"{name}:{line}:{column}: {path}: " if path
                             else f"{name}:{line}:{column}: ")
    for word in words:
        assert word in p.message, (word, p.message)
    assert p.kind == {SchemaError: "schema", CycleError: "cycle"}.get(cls, p.kind)
    return p


HEAD = "taskgraph: 1\n"


# -- unknown keys ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, path, needle, hint", [
    (HEAD + "taks:\n  a: {type: binary}\ntasks:\n  a: {type: binary}\n",
     "taks", "taks", "'tasks'"),
    (HEAD + "model:\n  round: 2\ntasks:\n  a: {type: binary}\n",
     "model.round", "round", "'rounds'"),
    (HEAD + "model:\n  encoder: {hiden: [3]}\ntasks:\n  a: {type: binary}\n",
     "model.encoder.hiden", "hiden", "'hidden'"),
    (HEAD + "model:\n  synapse: {knd: fixed}\ntasks:\n  a: {type: binary}\n",
     "model.synapse.knd", "knd", "'kind'"),
    (HEAD + "model:\n  stochastic: {head: true}\ntasks:\n  a: {type: binary}\n",
     "model.stochastic.head", "head", "'heads'"),
    (HEAD + "tasks:\n  a: {type: binary, wieght: 2}\n",
     "tasks.a.wieght", "wieght", "'weight'"),
    (HEAD + "tasks:\n  a: {type: binary}\n  b: {type: binary, parents: [a]}\n"
     "edges:\n  - {from: a, to: b, synapes: {kind: fixed}}\n",
     "edges[0].synapes", "synapes", "'synapse'"),
    (HEAD + "tasks:\n  a: {type: binary}\n  b: {type: binary, parents: [a]}\n"
     "edges:\n  - {from: a, to: b, synapse: {kind: fixed, maen: 2}}\n",
     "edges[0].synapse.maen", "maen", "'mean'"),
])
def test_unknown_key_with_suggestion(tmp_path, text, path, needle, hint):
    p = check(text, path, needle, f"unknown key {needle!r}", f"did you mean {hint}?",
              tmp_path=tmp_path)
    assert "allowed:" in p.message


def test_unknown_key_without_close_match_lists_allowed_keys():
    text = HEAD + "tasks:\n  a: {type: binary, zzzzzz: 1}\n"
    p = check(text, "tasks.a.zzzzzz", "zzzzzz", "unknown key 'zzzzzz'")
    assert "did you mean" not in p.message
    for key in ("type", "classes", "parents", "class_parents", "weight"):
        assert key in p.message


# -- schema version -----------------------------------------------------------------------------
def test_missing_schema_version(tmp_path):
    text = "name: x\ntasks:\n  a: {type: binary}\n"
    check(text, "", "name", "missing schema version", "taskgraph: 1", tmp_path=tmp_path)


@pytest.mark.parametrize("value, shown", [("2", "2"), ("'1'", "'1'"), ("true", "True"),
                                          ("[1]", "")])
def test_unsupported_schema_version(tmp_path, value, shown):
    text = f"taskgraph: {value}\ntasks:\n  a: {{type: binary}}\n"
    check(text, "taskgraph", value, "unsupported schema version", shown, tmp_path=tmp_path)


# -- tasks --------------------------------------------------------------------------------------
def test_unknown_task_type(tmp_path):
    text = HEAD + "tasks:\n  a: {type: binry}\n"
    check(text, "tasks.a.type", "binry", "'binry'", "did you mean 'binary'?",
          tmp_path=tmp_path)


def test_missing_task_type():
    text = HEAD + "tasks:\n  a: {weight: 2}\n"
    check(text, "tasks.a", "a:", "missing required key 'type'")


@pytest.mark.parametrize("body, shown", [("binary", "'binary'"), ("[binary]", ""),
                                         ("3", "3")])
def test_task_value_not_a_mapping(body, shown):
    text = HEAD + f"tasks:\n  a: {body}\n"
    check(text, "tasks.a", body, "expected a task", "mapping", shown)


@pytest.mark.parametrize("key, path", [("1", "tasks[1]"), ("null", "tasks[None]"),
                                       ("yes", "tasks[True]"), ("''", "tasks['']"),
                                       ("' '", "tasks[' ']")])
def test_task_name_not_a_string(tmp_path, key, path):
    text = HEAD + f"tasks:\n  b: {{type: binary}}\n  {key}: {{type: binary}}\n"
    check(text, path, key + ":", "task names must be non-empty strings", tmp_path=tmp_path)


@pytest.mark.parametrize("key", ["yes", "null", "on"])
def test_task_name_hint_quotes_what_was_written(key):
    # quoting the name as written keeps it; the hint must not suggest another name
    text = HEAD + f"tasks:\n  {key}: {{type: binary}}\n"
    p = only(errors(text, SchemaError))
    assert "quote it" in p.message
    assert f"'{key}'" in p.message, p.message


def test_no_tasks(tmp_path):
    text = HEAD + "tasks: {}\n"
    check(text, "tasks", "{}", "no tasks", tmp_path=tmp_path)


def test_tasks_missing(tmp_path):
    text = HEAD + "name: x\n"
    check(text, "", "taskgraph", "missing required key 'tasks'", tmp_path=tmp_path)


@pytest.mark.parametrize("value", ["[a, b]", "null", "3"])
def test_tasks_not_a_mapping(value):
    text = HEAD + f"tasks: {value}\n"
    check(text, "tasks", value, "expected a mapping of task name to task")


def test_description_and_name_must_be_strings():
    text = HEAD + "name: [x]\ndescription: {a: 1}\ntasks:\n  a: {type: binary, description: 5}\n"
    err = errors(text, SchemaError)
    assert [(p.path, (p.line, p.column)) for p in err.problems] == [
        ("name", loc(text, "[x]")), ("description", loc(text, "{a: 1}")),
        ("tasks.a.description", loc(text, "5"))]
    assert all("expected a string" in p.message for p in err.problems)


def test_outputs_only_for_regression():
    text = HEAD + "tasks:\n  a: {type: binary, outputs: 2}\n"
    check(text, "tasks.a.outputs", "outputs", "'outputs' applies to regression")
    h = load_hierarchy(HEAD + "tasks:\n  a: {type: regression, outputs: 3}\n")
    assert h["a"].outputs == 3 and h["a"].num_outputs == 3


# -- parents and cycles --------------------------------------------------------------------------
def test_unknown_parent_with_suggestion(tmp_path):
    text = HEAD + "tasks:\n  mammal: {type: binary}\n  diet: {type: binary, parents: [mamal]}\n"
    check(text, "tasks.diet.parents[0]", "mamal]", "unknown task 'mamal'",
          "did you mean 'mammal'?", tmp_path=tmp_path)


def test_unknown_parent_without_suggestion():
    text = HEAD + "tasks:\n  a: {type: binary}\n  b: {type: binary, parents: [a, qqqq]}\n"
    p = check(text, "tasks.b.parents[1]", "qqqq", "unknown task 'qqqq'")
    assert "did you mean" not in p.message


def test_self_parent(tmp_path):
    text = HEAD + "tasks:\n  a: {type: binary, parents: [a]}\n"
    check(text, "tasks.a.parents[0]", "a]", "'a'", "itself", tmp_path=tmp_path)


def test_parent_listed_twice(tmp_path):
    text = HEAD + "tasks:\n  a: {type: binary}\n  b: {type: binary, parents: [a, a]}\n"
    check(text, "tasks.b.parents[1]", "a]", "'a'", "twice", tmp_path=tmp_path)


def test_parents_not_a_list(tmp_path):
    text = HEAD + "tasks:\n  a: {type: binary}\n  b: {type: binary, parents: a}\n"
    check(text, "tasks.b.parents", "a}", "expected a list of task names", "'a'",
          tmp_path=tmp_path)


def test_parent_not_a_string():
    text = HEAD + "tasks:\n  a: {type: binary}\n  b: {type: binary, parents: [a, 7]}\n"
    check(text, "tasks.b.parents[1]", "7", "expected a task name")


def test_parent_with_an_invalid_type_is_not_reported_as_unknown():
    # 'a' is declared (with a misspelt type); 'b' naming it as a parent is not a second error
    text = HEAD + "tasks:\n  a: {type: binry}\n  b: {type: binary, parents: [a]}\n"
    err = errors(text, SchemaError)
    assert [p.path for p in err.problems] == ["tasks.a.type"], str(err)


def test_two_cycle(tmp_path):
    text = HEAD + "tasks:\n  a: {type: binary, parents: [b]}\n  b: {type: binary, parents: [a]}\n"
    check(text, "tasks.a.parents[0]", "b]", "cycle: a -> b -> a", cls=CycleError,
          tmp_path=tmp_path)


def test_three_cycle():
    text = y("""\
        taskgraph: 1
        tasks:
          a: {type: binary, parents: [c]}
          b: {type: binary, parents: [a]}
          c: {type: binary, parents: [b]}
        """)
    check(text, "tasks.a.parents[0]", "c]", "cycle: a -> b -> c -> a", cls=CycleError)


def test_two_separate_cycles_are_both_reported():
    text = y("""\
        taskgraph: 1
        tasks:
          root: {type: binary}
          a: {type: binary, parents: [root, b]}
          b: {type: binary, parents: [a]}
          c: {type: binary, parents: [e]}
          d: {type: binary, parents: [c]}
          e: {type: binary, parents: [d]}
        """)
    err = errors(text, CycleError)
    assert len(err.problems) == 2
    first, second = err.problems
    assert "a -> b -> a" in first.message
    assert "c -> d -> e -> c" in second.message
    assert (first.line, first.column) == loc(text, "b]")
    assert first.path == "tasks.a.parents[1]"
    assert (second.line, second.column) == loc(text, "e]")
    assert second.path == "tasks.c.parents[0]"
    assert all(p.kind == "cycle" for p in err.problems)


def test_cycle_with_other_problems_is_a_plain_hierarchy_error():
    text = HEAD + "tasks:\n  a: {type: binary, parents: [b]}\n  b: {type: binary, parents: [a], weight: 0}\n"
    err = errors(text)
    assert type(err) is HierarchyError
    assert {p.kind for p in err.problems} == {"cycle", "schema"}
    assert isinstance(err, ValueError)


# -- classes -------------------------------------------------------------------------------------
def test_multiclass_without_classes(tmp_path):
    text = HEAD + "tasks:\n  a: {type: multiclass}\n"
    check(text, "tasks.a", "a:", "multiclass", "needs 'classes'", tmp_path=tmp_path)


def test_multilabel_without_classes():
    check(HEAD + "tasks:\n  a: {type: multilabel}\n", "tasks.a", "a:", "needs 'classes'")


@pytest.mark.parametrize("classes", ["[x]", "1", "0", "-2", "[]"])
def test_multiclass_with_too_few_classes(tmp_path, classes):
    text = HEAD + f"tasks:\n  a: {{type: multiclass, classes: {classes}}}\n"
    check(text, "tasks.a.classes", classes + "}", "at least 2 classes", tmp_path=tmp_path)


def test_multilabel_with_one_class_is_fine():
    h = load_hierarchy(HEAD + "tasks:\n  a: {type: multilabel, classes: [x]}\n")
    assert h["a"].classes == ("x",)
    check(HEAD + "tasks:\n  a: {type: multilabel, classes: 0}\n", "tasks.a.classes", "0",
          "at least 1 class")


def test_multiclass_with_duplicate_classes(tmp_path):
    text = HEAD + "tasks:\n  a: {type: multiclass, classes: [x, y, x]}\n"
    check(text, "tasks.a.classes[2]", "x]", "duplicate class 'x'", tmp_path=tmp_path)


def test_class_names_must_be_strings():
    text = HEAD + "tasks:\n  a: {type: multiclass, classes: [x, 3, y]}\n"
    check(text, "tasks.a.classes[1]", "3", "class names must be non-empty strings")


@pytest.mark.parametrize("value", ["x", "2.5", "true"])
def test_classes_of_the_wrong_type(value):
    text = HEAD + f"tasks:\n  a: {{type: multiclass, classes: {value}}}\n"
    err = errors(text, SchemaError)
    wrong = [p for p in err.problems if p.path == "tasks.a.classes"]
    assert len(wrong) == 1
    assert (wrong[0].line, wrong[0].column) == loc(text, value)
    assert "expected a list of class names or a count" in wrong[0].message
    # 'classes' is there, with a wrong value: nothing may claim it is missing
    assert not any("needs 'classes'" in p.message for p in err.problems), str(err)


def test_classes_count():
    h = load_hierarchy(HEAD + "tasks:\n  a: {type: multiclass, classes: 3}\n")
    assert h["a"].classes == ("0", "1", "2") and h["a"].count_only
    assert h["a"].num_outputs == 3


@pytest.mark.parametrize("ttype", ["regression", "binary"])
def test_classes_on_a_task_without_classes(tmp_path, ttype):
    text = HEAD + f"tasks:\n  a: {{type: {ttype}, classes: [x, y]}}\n"
    check(text, "tasks.a.classes", "classes", f"a {ttype} task has no classes",
          tmp_path=tmp_path)


# -- class_parents -------------------------------------------------------------------------------
CP = y("""\
    taskgraph: 1
    tasks:
      diet: {type: multiclass, classes: [herbivore, carnivore, omnivore]}
      species:
        type: multiclass
        classes: [cat, dog, cow]
        parents: [diet]
        class_parents: {MAPPING}
    """)


def test_class_parents_unknown_child_class(tmp_path):
    text = CP.replace("{MAPPING}", "{cta: carnivore, cat: carnivore, dog: omnivore, cow: herbivore}")
    check(text, "tasks.species.class_parents.cta", "cta", "'cta' is not a class of 'species'",
          "did you mean 'cat'?", tmp_path=tmp_path)


def test_class_parents_unknown_parent_class(tmp_path):
    text = CP.replace("{MAPPING}", "{cat: carnivor, dog: omnivore, cow: herbivore}")
    check(text, "tasks.species.class_parents.cat", "carnivor,", "'carnivor'",
          "not a class of parent 'diet'", "did you mean 'carnivore'?", tmp_path=tmp_path)


def test_class_parents_not_covering_all_classes(tmp_path):
    text = CP.replace("{MAPPING}", "{cat: carnivore}")
    p = check(text, "tasks.species.class_parents", "class_parents", "without a parent class",
              "'diet'", tmp_path=tmp_path)
    assert "dog" in p.message and "cow" in p.message and "cat" not in p.message


def test_class_parents_into_a_binary_parent_flat_form():
    text = y("""\
        taskgraph: 1
        tasks:
          mammal: {type: binary}
          species:
            type: multiclass
            classes: [cat, dog]
            parents: [mammal]
            class_parents: {cat: yes_, dog: no_}
        """)
    check(text, "tasks.species.class_parents", "class_parents", "needs a multiclass parent",
          "mammal is binary")


def test_class_parents_into_a_binary_parent_nested_form():
    text = y("""\
        taskgraph: 1
        tasks:
          mammal: {type: binary}
          species:
            type: multiclass
            classes: [cat, dog]
            parents: [mammal]
            class_parents: {mammal: {cat: x, dog: y}}
        """)
    check(text, "tasks.species.class_parents.mammal", "mammal: {", "'mammal'", "binary",
          "not multiclass", nth=2)


def test_class_parents_keyed_by_a_non_parent():
    text = y("""\
        taskgraph: 1
        tasks:
          diet: {type: multiclass, classes: [herbivore, carnivore]}
          size: {type: multiclass, classes: [small, large]}
          species:
            type: multiclass
            classes: [cat, cow]
            parents: [diet]
            class_parents: {dite: {cat: carnivore, cow: herbivore}}
        """)
    check(text, "tasks.species.class_parents.dite", "dite", "'dite' is not a parent of 'species'",
          "did you mean 'diet'?")


def test_class_parents_keyed_by_a_task_that_is_not_a_parent():
    text = y("""\
        taskgraph: 1
        tasks:
          diet: {type: multiclass, classes: [herbivore, carnivore]}
          size: {type: multiclass, classes: [small, large]}
          species:
            type: multiclass
            classes: [cat, cow]
            parents: [diet]
            class_parents: {size: {cat: small, cow: large}}
        """)
    check(text, "tasks.species.class_parents.size", "size: {cat", "'size' is not a parent")


TWO_PARENTS = y("""\
    taskgraph: 1
    tasks:
      diet: {type: multiclass, classes: [herbivore, carnivore, omnivore]}
      size: {type: multiclass, classes: [small, large]}
      species:
        type: multiclass
        classes: [cat, dog, cow]
        parents: [diet, size]
        class_parents: MAPPING
    """)


def test_class_parents_flat_form_with_several_multiclass_parents():
    text = TWO_PARENTS.replace("MAPPING", "{cat: carnivore, dog: omnivore, cow: herbivore}")
    check(text, "tasks.species.class_parents", "class_parents", "several multiclass parents",
          "diet", "size", "key class_parents by parent name")


def test_class_parents_nested_form_with_two_multiclass_parents():
    text = TWO_PARENTS.replace("MAPPING", "\n" + textwrap.indent(y("""\
        diet: {cat: carnivore, dog: omnivore, cow: herbivore}
        size: {cat: small, dog: small, cow: large}
        """), " " * 6))
    h = load_hierarchy(text)
    spec = h["species"]
    assert spec.class_parent_map("diet") == {"cat": "carnivore", "dog": "omnivore",
                                             "cow": "herbivore"}
    assert spec.class_parent_map("size") == {"cat": "small", "dog": "small", "cow": "large"}
    assert spec.class_parent_map("nope") == {}
    assert h.graph.nodes["species"]["spec"] == spec
    assert load_hierarchy(h.to_yaml()) == h


def test_class_parents_nested_form_one_parent_incomplete():
    text = TWO_PARENTS.replace("MAPPING", "\n" + textwrap.indent(y("""\
        diet: {cat: carnivore, dog: omnivore, cow: herbivore}
        size: {cat: small, dog: smal}
        """), " " * 6))
    err = errors(text, SchemaError)
    messages = [(p.path, p.message) for p in err.problems]
    assert len(messages) == 2, messages
    assert messages[0][0] == "tasks.species.class_parents.size"
    assert "cow" in messages[0][1] and "without a parent class" in messages[0][1]
    assert messages[1][0] == "tasks.species.class_parents.size.dog"
    assert "did you mean 'small'?" in messages[1][1]
    assert (err.problems[1].line, err.problems[1].column) == loc(text, "smal}")


def test_class_parents_flat_form_with_one_multiclass_and_one_binary_parent():
    text = y("""\
        taskgraph: 1
        tasks:
          mammal: {type: binary}
          diet: {type: multiclass, classes: [herbivore, carnivore]}
          species:
            type: multiclass
            classes: [cat, cow]
            parents: [mammal, diet]
            class_parents: {cat: carnivore, cow: herbivore}
        """)
    h = load_hierarchy(text)
    assert h["species"].class_parent_map("diet") == {"cat": "carnivore", "cow": "herbivore"}
    assert h["species"].class_parent_map("mammal") == {}


@pytest.mark.parametrize("ttype", ["binary", "multilabel", "regression"])
def test_class_parents_on_a_task_that_is_not_multiclass(ttype):
    classes = ", classes: [a, b]" if ttype == "multilabel" else ""
    text = (HEAD + "tasks:\n  diet: {type: multiclass, classes: [x, y]}\n"
            f"  t: {{type: {ttype}{classes}, parents: [diet], class_parents: {{a: x}}}}\n")
    check(text, "tasks.t.class_parents", "class_parents", "applies to multiclass tasks",
          ttype)


# -- weights, synapses, edges, model numbers -----------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-1", "heavy", "true", ".nan", ".inf", "-.inf", "[1]",
                                   "null"])
def test_weight_must_be_a_positive_number(tmp_path, value):
    text = HEAD + f"tasks:\n  a: {{type: binary}}\n  b: {{type: binary, weight: {value}}}\n"
    check(text, "tasks.b.weight", value + "}", "expected a positive number", tmp_path=tmp_path)


def test_good_weights():
    h = load_hierarchy(HEAD + "tasks:\n  a: {type: binary, weight: 3}\n"
                       "  b: {type: binary, weight: 0.001}\n")
    assert h["a"].weight == 3.0 and isinstance(h["a"].weight, float)
    assert h["b"].weight == 0.001


def model_text(model: str) -> str:
    return HEAD + f"model:\n  {model}\ntasks:\n  a: {{type: binary}}\n  b: {{type: binary, parents: [a]}}\n"


def test_unknown_synapse_kind(tmp_path):
    text = model_text("synapse: {kind: bernouli}")
    check(text, "model.synapse.kind", "bernouli", "'bernouli'", "did you mean 'bernoulli'?",
          tmp_path=tmp_path)


@pytest.mark.parametrize("p", ["0", "1.5", "-0.5", ".nan", "yes"])
def test_bernoulli_p_out_of_range(p):
    text = model_text(f"synapse: {{kind: bernoulli, p: {p}}}")
    check(text, "model.synapse.p", p + "}", "expected a number in (0, 1]")


def test_bernoulli_p_of_one_is_fine():
    h = load_hierarchy(model_text("synapse: {kind: bernoulli, p: 1}"))
    assert h.model.synapse.p == 1.0 and h.model.synapse.kind == "bernoulli"


@pytest.mark.parametrize("pp", ["0", "1"])
def test_bernoulli_prior_p_is_open_interval(pp):
    text = model_text(f"synapse: {{kind: bernoulli, prior_p: {pp}}}")
    check(text, "model.synapse.prior_p", pp + "}", "(0, 1)")


@pytest.mark.parametrize("key", ["std", "prior_std"])
def test_negative_std(tmp_path, key):
    text = model_text(f"synapse: {{kind: gaussian, {key}: -0.1}}")
    check(text, f"model.synapse.{key}", "-0.1", "expected a positive number", tmp_path=tmp_path)


@pytest.mark.parametrize("synapse, key, kind", [
    ("{kind: bernoulli, std: 0.1}", "std", "bernoulli"),
    ("{kind: gaussian, p: 0.5}", "p", "gaussian"),
    ("{kind: fixed, prior_std: 2.0}", "prior_std", "fixed"),
    ("{p: 0.5}", "p", "gaussian"),  # the default kind is gaussian
])
def test_synapse_key_that_does_not_apply_to_its_kind(synapse, key, kind):
    text = model_text(f"synapse: {synapse}")
    check(text, f"model.synapse.{key}", f"{key}:", f"'{key}'", f"does not apply to a {kind}")


def test_edge_override_checked_against_the_default_kind():
    text = (model_text("synapse: {kind: bernoulli}")
            + "edges:\n  - {from: a, to: b, synapse: {std: 0.5}}\n")
    check(text, "edges[0].synapse.std", "std", "does not apply to a bernoulli")
    ok = (model_text("synapse: {kind: bernoulli}")
          + "edges:\n  - {from: a, to: b, synapse: {kind: gaussian, std: 0.5}}\n")
    h = load_hierarchy(ok)
    assert h.edge_synapse("a", "b") == h.model.synapse.replace(kind="gaussian", std=0.5)


def test_edge_override_naming_a_missing_task(tmp_path):
    text = (HEAD + "tasks:\n  mammal: {type: binary}\n  diet: {type: binary, parents: [mammal]}\n"
            "edges:\n  - {from: mamal, to: diet}\n")
    check(text, "edges[0].from", "mamal,", "unknown task 'mamal'", "did you mean 'mammal'?",
          tmp_path=tmp_path)


def test_edge_override_naming_a_missing_child():
    text = (HEAD + "tasks:\n  mammal: {type: binary}\n  diet: {type: binary, parents: [mammal]}\n"
            "edges:\n  - {from: mammal, to: deit}\n")
    check(text, "edges[0].to", "deit", "unknown task 'deit'", "did you mean 'diet'?")


def test_edge_override_for_a_pair_that_is_not_an_edge(tmp_path):
    text = (HEAD + "tasks:\n  a: {type: binary}\n  b: {type: binary, parents: [a]}\n"
            "  c: {type: binary}\nedges:\n  - {from: c, to: b}\n")
    check(text, "edges[0]", "{from: c", "c -> b is not an edge", "b's parents: a",
          tmp_path=tmp_path)


def test_edge_override_reversed_edge():
    text = (HEAD + "tasks:\n  a: {type: binary}\n  b: {type: binary, parents: [a]}\n"
            "edges:\n  - {from: b, to: a}\n")
    check(text, "edges[0]", "{from: b", "b -> a is not an edge")


def test_duplicate_edge_override(tmp_path):
    text = (HEAD + "tasks:\n  a: {type: binary}\n  b: {type: binary, parents: [a]}\n"
            "edges:\n  - {from: a, to: b, synapse: {mean: 2.0}}\n"
            "  - {from: a, to: b, direction: up}\n")
    check(text, "edges[1]", "{from: a, to: b, direction", "second override", "a -> b",
          "edges[0]", tmp_path=tmp_path)


def test_separate_up_and_down_overrides_are_fine():
    text = (HEAD + "tasks:\n  a: {type: binary}\n  b: {type: binary, parents: [a]}\n"
            "edges:\n  - {from: a, to: b, direction: down, synapse: {mean: 2.0}}\n"
            "  - {from: a, to: b, direction: up, synapse: {mean: 3.0}}\n")
    h = load_hierarchy(text)
    assert h.edge_synapse("a", "b", "down").mean == 2.0
    assert h.edge_synapse("a", "b", "up").mean == 3.0


def test_edge_override_missing_from_and_bad_direction():
    text = (HEAD + "tasks:\n  a: {type: binary}\n  b: {type: binary, parents: [a]}\n"
            "edges:\n  - {to: b}\n  - {from: a, to: b, direction: sideways}\n  - 3\n")
    err = errors(text, SchemaError)
    got = [(p.path, (p.line, p.column)) for p in err.problems]
    assert got == [("edges[0]", loc(text, "{to: b}")),
                   ("edges[1].direction", loc(text, "sideways")),
                   ("edges[2]", loc(text, "3\n", 1))]
    assert "missing required key 'from'" in err.problems[0].message
    assert "'sideways'" in err.problems[1].message


@pytest.mark.parametrize("model, path, needle", [
    ("rounds: 0", "model.rounds", "0"),
    ("rounds: -2", "model.rounds", "-2"),
    ("rounds: 1.5", "model.rounds", "1.5"),
    ("task_dim: 0", "model.task_dim", "0"),
    ("task_dim: -3", "model.task_dim", "-3"),
    ("task_dim: true", "model.task_dim", "true"),
])
def test_non_positive_model_integers(tmp_path, model, path, needle):
    text = model_text(model)
    check(text, path, needle + "\n", "expected a positive integer", tmp_path=tmp_path)


@pytest.mark.parametrize("hidden", ["[16, 0]", "[-4]", "[8, 2.5]", "16"])
def test_bad_encoder_hidden_sizes(hidden):
    text = model_text(f"encoder: {{hidden: {hidden}}}")
    check(text, "model.encoder.hidden", hidden, "expected a list of positive integers")


@pytest.mark.parametrize("model, path, needle, words", [
    ("dropout: 1.0", "model.dropout", "1.0", ("[0, 1)",)),
    ("directions: [down, sideways]", "model.directions", "[down", ("'down'", "'up'")),
    ("directions: [down, down]", "model.directions", "[down", ("distinct",)),
    ("message: atention", "model.message", "atention", ("did you mean 'attention'?",)),
    ("coherent: 1", "model.coherent", "1\ntasks", ("true or false",)),
    ("encoder: {activation: rleu}", "model.encoder.activation", "rleu", ("did you mean 'relu'?",)),
    ("stochastic: {heads: maybe}", "model.stochastic.heads", "maybe", ("true or false",)),
    ("encoder: 5", "model.encoder", "5", ("mapping",)),
])
def test_other_model_values(model, path, needle, words):
    check(model_text(model), path, needle, *words)


def test_directions_empty_turns_messages_off():
    h = load_hierarchy(model_text("directions: []"))
    assert h.model.directions == ()


# -- several problems, limit ---------------------------------------------------------------------
MANY = y("""\
    taskgraph: 1
    model:
      rounds: 0
    tasks:
      b: {type: binary, parents: [zz]}
      a: {type: binry}
      c: {type: binary, weight: -1}
    foo: 1
    """)


def test_all_problems_are_reported_in_one_pass_sorted_by_line(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(MANY, encoding="utf-8")
    err = errors(path, SchemaError)
    got = [(p.line, p.column, p.path) for p in err.problems]
    assert got == [
        (*loc(MANY, "0\n"), "model.rounds"),
        (*loc(MANY, "zz"), "tasks.b.parents[0]"),
        (*loc(MANY, "binry"), "tasks.a.type"),
        (*loc(MANY, "-1"), "tasks.c.weight"),
        (*loc(MANY, "foo"), "foo"),
    ]
    lines = str(err).splitlines()
    assert len(lines) == 5
    assert all(line.startswith(f"{path}:") for line in lines)
    assert err.truncated == 0


def test_limit_caps_the_problems_and_says_how_many_more():
    text = HEAD + "tasks:\n" + "".join(f"  t{i}: {{type: binary, weight: 0}}\n" for i in range(10))
    doc = read_yaml(text)
    with pytest.raises(SchemaError) as info:
        validate(doc, limit=3)
    err = info.value
    assert len(err.problems) == 3 and err.truncated == 7
    assert str(err).splitlines()[-1] == "... and 7 more problem(s) not shown"
    lines = [p.line for p in err.problems]
    assert lines == sorted(lines)
    with pytest.raises(SchemaError) as info:
        validate(doc)
    assert len(info.value.problems) == 10 and info.value.truncated == 0


def test_default_limit_is_100():
    assert DEFAULT_LIMIT == 100
    text = HEAD + "tasks:\n" + "".join(f"  t{i}: {{type: binary, weight: 0}}\n" for i in range(130))
    err = errors(text, SchemaError)
    assert len(err.problems) == 100 and err.truncated == 30
    assert "30 more problem(s)" in str(err)


def test_limit_zero_still_rejects_an_invalid_document():
    doc = read_yaml(HEAD + "tasks:\n  a: {type: binry}\n")
    with pytest.raises(HierarchyError) as info:
        validate(doc, limit=0)
    assert info.value.truncated == 1


# -- dict input: key paths without positions ------------------------------------------------------
def test_dict_input_has_key_path_but_no_file_or_line():
    data = {"taskgraph": 1, "tasks": {"a": {"type": "binary"},
                                      "b": {"type": "binary", "parents": ["aa"]},
                                      "c": {"type": "binry"}}}
    err = errors(data, SchemaError)
    assert all(p.file is None and p.line is None and p.column is None for p in err.problems)
    by_path = {p.path: str(p) for p in err.problems}
    assert set(by_path) == {"tasks.b.parents[0]", "tasks.c.type"}
    assert by_path["tasks.b.parents[0]"] == "tasks.b.parents[0]: unknown task 'aa' (did you mean 'a'?)"
    assert by_path["tasks.c.type"].startswith("tasks.c.type: unknown value 'binry'")
    assert "did you mean 'binary'?" in by_path["tasks.c.type"]


def test_format_path():
    assert format_path(("tasks", "diet", "parents", 0)) == "tasks.diet.parents[0]"
    assert format_path(("tasks", "my task", "type")) == "tasks['my task'].type"
    assert format_path(("tasks", 1)) == "tasks[1]"
    assert format_path(()) == ""


def test_errors_are_value_errors_and_taskgraph_errors():
    err = errors(HEAD + "tasks: {}\n")
    assert isinstance(err, ValueError) and isinstance(err, TaskGraphError)
