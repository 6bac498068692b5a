"""Strict YAML reading: syntax, encodings, documents, tags, duplicate keys, aliases, size.

Every expected line/column is worked out from the text written here (``loc`` finds a
snippet in that text), never taken from the loader's own output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from taskgraph.errors import (
    CycleError,
    HierarchyError,
    Problem,
    SchemaError,
    TaskGraphError,
    YAMLSyntaxError,
)
from taskgraph.hierarchy import load_hierarchy
from taskgraph.hierarchy.yaml_source import MAX_DEPTH, read_yaml

REPO = Path(__file__).resolve().parents[2]

VALID = "taskgraph: 1\ntasks:\n  a: {type: binary}\n"


# -- helpers -----------------------------------------------------------------------------
def loc(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """1-based (line, column) of the ``nth`` occurrence of ``needle`` in ``text``."""
    start = -1
    for _ in range(nth):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, column


def write(tmp_path: Path, text: str | bytes, name: str = "h.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def error_of(source, cls: type[HierarchyError] = HierarchyError, **kw) -> HierarchyError:
    with pytest.raises(cls) as info:
        load_hierarchy(source, **kw)
    return info.value


def only(err: HierarchyError) -> Problem:
    assert len(err.problems) == 1, str(err)
    return err.problems[0]


def assert_at(problem: Problem, file, line: int, column: int, path: str = "") -> None:
    assert (problem.file, problem.line, problem.column, problem.path) == (
        file, line, column, path), str(problem)
    prefix = f"{file}:{line}:{column}: " + (f"{path}: " if path else "")
    assert str(problem).startswith(prefix), (str(problem), prefix)


# -- exception classes ---------------------------------------------------------------------
def test_exception_hierarchy():
    for cls in (YAMLSyntaxError, SchemaError, CycleError):
        assert issubclass(cls, HierarchyError)
    assert issubclass(HierarchyError, TaskGraphError)
    assert issubclass(HierarchyError, ValueError)
    assert not issubclass(TaskGraphError, ValueError)


def test_problem_str_and_to_dict():
    p = Problem("boom", path="tasks.a", file="f.yaml", line=3, column=7, kind="schema")
    assert str(p) == "f.yaml:3:7: tasks.a: boom"
    assert p.to_dict() == {"file": "f.yaml", "line": 3, "column": 7, "path": "tasks.a",
                           "message": "boom", "kind": "schema"}
    assert str(Problem("boom", path="tasks.a")) == "tasks.a: boom"
    assert str(Problem("boom", file="f.yaml")) == "f.yaml: boom"
    err = HierarchyError([p, Problem("second")], truncated=4)
    assert str(err).splitlines() == ["f.yaml:3:7: tasks.a: boom", "second",
                                     "... and 4 more problem(s) not shown"]
    assert err.problems == (p, Problem("second"))


@pytest.mark.parametrize("kinds, cls", [
    (["syntax"], YAMLSyntaxError),
    (["schema", "schema"], SchemaError),
    (["cycle"], CycleError),
    (["cycle", "schema"], HierarchyError),
])
def test_from_problems_picks_the_most_specific_class(kinds, cls):
    err = HierarchyError.from_problems([Problem("x", kind=k) for k in kinds])
    assert type(err) is cls


# -- syntax ------------------------------------------------------------------------------
def test_bad_indentation_points_at_the_offending_key(tmp_path):
    text = "taskgraph: 1\ntasks:\n  a:\n    type: binary\n   b: 2\n"
    path = write(tmp_path, text)
    p = only(error_of(path, YAMLSyntaxError))
    assert_at(p, str(path), 5, 4)
    assert p.kind == "syntax"
    assert "YAML syntax error" in p.message


def test_mapping_value_inside_plain_scalar(tmp_path):
    text = "taskgraph: 1\nname: a: b\ntasks:\n  a: {type: binary}\n"
    path = write(tmp_path, text)
    p = only(error_of(path, YAMLSyntaxError))
    assert_at(p, str(path), *loc(text, ": b"))
    assert "mapping values are not allowed" in p.message


@pytest.mark.parametrize("text", [
    "taskgraph: 1\ntasks:\n  a: {type: binary\n",
    "taskgraph: 1\nname: \"abc\ntasks:\n  a: {type: binary}\n",
    "taskgraph: 1\ntasks: [a, b\n",
])
def test_unclosed_constructs_are_syntax_errors(text):
    p = only(error_of(text, YAMLSyntaxError))
    assert p.file == "<string>"
    assert p.line is not None and p.line >= 3
    assert "YAML syntax error" in p.message
    assert "Traceback" not in str(p)


@pytest.mark.parametrize("text, line, column", [
    ("taskgraph: 1\ntasks:\n\ta: {type: binary}\n", 3, 1),
    ("taskgraph: 1\ntasks:\n  \ta: {type: binary}\n", 3, 3),
])
def test_tab_in_indentation(tmp_path, text, line, column):
    path = write(tmp_path, text)
    p = only(error_of(path, YAMLSyntaxError))
    assert_at(p, str(path), line, column)
    assert "tab" in p.message and "indentation" in p.message


def test_tabs_inside_values_are_fine():
    h = load_hierarchy("taskgraph: 1\ndescription: \"a\\tb\"\ntasks:\n  a: {type: binary}\n")
    assert h.description == "a\tb"
    h = load_hierarchy("taskgraph: 1\ndescription: x\ty\ntasks:\n  a: {type: binary}\n")
    assert h.description == "x\ty"


def test_tab_after_indentation_inside_a_block_scalar_is_content():
    # YAML: in a literal block scalar the indentation is the two spaces; a tab after
    # them is part of the text, not indentation.
    text = ("taskgraph: 1\n"
            "description: |\n"
            "  Columns:\n"
            "  \tname\tvalue\n"
            "tasks:\n"
            "  a: {type: binary}\n")
    h = load_hierarchy(text)
    assert h.description == "Columns:\n\tname\tvalue\n"


def test_not_utf8(tmp_path):
    raw = b"taskgraph: 1\ntasks:\n  a: {type: binary, description: caf\xe9}\n"
    path = write(tmp_path, raw)
    p = only(error_of(path, YAMLSyntaxError))
    # the bad byte is right after "  a: {type: binary, description: caf" (36 bytes)
    assert_at(p, str(path), 3, 37)
    assert "UTF-8" in p.message and "0xe9" in p.message


def test_not_utf8_first_byte_of_file():
    p = only(error_of(b"\xff\xfet\x00a\x00", YAMLSyntaxError))
    assert (p.file, p.line, p.column) == ("<string>", 1, 1)
    assert "UTF-8" in p.message


def test_utf8_bom_and_crlf_are_accepted():
    raw = b"\xef\xbb\xbftaskgraph: 1\r\ntasks:\r\n  a: {type: binary}\r\n"
    assert load_hierarchy(raw).task_names == ("a",)


def test_crlf_positions():
    raw = b"taskgraph: 1\r\ntasks:\r\n  a: {type: binry}\r\n"
    p = only(error_of(raw, SchemaError))
    assert_at(p, "<string>", 3, 13, "tasks.a.type")


def test_nul_byte_is_refused():
    p = only(error_of("taskgraph: 1\ntasks:\n  a: {type: bin\x00ary}\n", YAMLSyntaxError))
    assert p.line == 3
    assert "NUL" in p.message


def test_lone_surrogate_in_text_is_a_taskgraph_error():
    # text decoded with errors="surrogateescape" keeps undecodable bytes as lone surrogates
    text = b"taskgraph: 1\nname: caf\xe9\ntasks:\n  a: {type: binary}\n".decode(
        "utf-8", errors="surrogateescape")
    err = error_of(text)
    assert err.problems and err.problems[0].line in (None, 2)


def test_several_documents(tmp_path):
    text = "taskgraph: 1\ntasks:\n  a: {type: binary}\n---\nfoo: 1\n"
    path = write(tmp_path, text)
    p = only(error_of(path, YAMLSyntaxError))
    assert p.file == str(path)
    assert p.line in (4, 5)  # the '---' or the start of the second document
    assert "several YAML documents" in p.message


def test_several_documents_with_explicit_start(tmp_path):
    text = "---\ntaskgraph: 1\ntasks:\n  a: {type: binary}\n---\ntaskgraph: 1\n"
    p = only(error_of(write(tmp_path, text), YAMLSyntaxError))
    assert p.line in (5, 6)
    assert "documents" in p.message


def test_explicit_document_markers_of_a_single_document_are_fine():
    assert load_hierarchy("---\n" + VALID + "...\n").task_names == ("a",)


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "---\n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path, text)
    p = only(error_of(path))
    assert p.file == str(path)
    assert "empty document" in p.message
    assert str(p).startswith(f"{path}")


@pytest.mark.parametrize("text, what", [
    ("- a\n- b\n", "got"),
    ("hello\n", "got 'hello'"),
    ("42\n", "got 42"),
])
def test_top_level_not_a_mapping(tmp_path, text, what):
    path = write(tmp_path, text)
    p = only(error_of(path, SchemaError))
    assert_at(p, str(path), 1, 1)
    assert "top level must be a mapping" in p.message
    assert what in p.message


# -- tags ----------------------------------------------------------------------------------
def test_python_object_apply_tag_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    text = ("taskgraph: 1\ntasks:\n"
            f"  a: !!python/object/apply:os.system ['touch {marker}']\n")
    p = only(error_of(write(tmp_path, text), YAMLSyntaxError))
    assert (p.line, p.column) == loc(text, "!!python")
    assert "unsupported YAML tag" in p.message
    assert "python/object/apply:os.system" in p.message
    assert not marker.exists()


def test_python_object_that_would_create_a_file(tmp_path):
    marker = tmp_path / "created.txt"
    text = ("taskgraph: 1\ntasks:\n  a: {type: binary}\n"
            f"description: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    p = only(error_of(text, YAMLSyntaxError))
    assert (p.line, p.column) == loc(text, "!!python")
    assert "unsupported YAML tag" in p.message
    assert not marker.exists()


@pytest.mark.parametrize("tagged, tag", [
    ("!!python/name:os.system ''", "python/name:os.system"),
    ("!!python/object/new:builtins.dict {}", "python/object/new:builtins.dict"),
    ("!!python/tuple [1, 2]", "python/tuple"),
    ("!foo bar", "!foo"),
    ("!foo {x: 1}", "!foo"),
    ("!!set {a, b}", "set"),
])
def test_unsafe_or_custom_tags(tagged, tag):
    text = f"taskgraph: 1\ntasks:\n  a: {{type: binary}}\ndescription: {tagged}\n"
    p = only(error_of(text, YAMLSyntaxError))
    assert (p.line, p.column) == (4, len("description: ") + 1)
    assert "unsupported YAML tag" in p.message and tag in p.message


def test_several_bad_tags_all_reported():
    text = "taskgraph: 1\nname: !a x\ndescription: !b y\ntasks:\n  a: {type: binary}\n"
    err = error_of(text, YAMLSyntaxError)
    assert [(p.line, p.column) for p in err.problems] == [loc(text, "!a"), loc(text, "!b")]


def test_standard_scalar_tags_are_fine():
    text = ("taskgraph: !!int 1\nname: !!str 123\ntasks:\n"
            "  a: {type: binary, weight: !!float 2}\n")
    h = load_hierarchy(text)
    assert h.name == "123"
    assert h["a"].weight == 2.0


@pytest.mark.parametrize("scalar", [
    "!!int abc", "!!int ''", "!!float abc", "!!bool maybe",   # explicit tag, wrong text
    "0x_", "0b_", "-0x_",                                    # plain scalars PyYAML reads as ints
])
def test_scalars_that_cannot_be_built_are_taskgraph_errors(scalar):
    text = f"taskgraph: 1\ntasks:\n  a: {{type: binary}}\ndescription: {scalar}\n"
    try:
        load_hierarchy(text)
    except TaskGraphError as err:
        assert err.problems[0].line == 4
    except Exception as err:  # noqa: BLE001
        pytest.fail(f"{scalar!r} raised {type(err).__name__}: {err}, not a TaskGraphError")
    else:
        pytest.fail(f"{scalar!r} was accepted as a description")


def test_dates_and_binary_stay_text():
    text = ("taskgraph: 1\nname: 2024-01-02\ndescription: !!binary aGVsbG8=\ntasks:\n"
            "  a: {type: binary}\n")
    h = load_hierarchy(text)
    assert h.name == "2024-01-02"
    assert isinstance(h.description, str)


# -- duplicate keys ------------------------------------------------------------------------
def test_duplicate_top_level_key(tmp_path):
    text = "taskgraph: 1\ntasks:\n  a: {type: binary}\ntaskgraph: 1\n"
    path = write(tmp_path, text)
    p = only(error_of(path, YAMLSyntaxError))
    assert_at(p, str(path), 4, 1)
    assert "duplicate key 'taskgraph'" in p.message
    assert "first at line 1" in p.message


def test_duplicate_key_in_a_task(tmp_path):
    text = "taskgraph: 1\ntasks:\n  a:\n    type: binary\n    weight: 1\n    type: regression\n"
    path = write(tmp_path, text)
    p = only(error_of(path, YAMLSyntaxError))
    assert_at(p, str(path), 6, 5)
    assert "duplicate key 'type'" in p.message and "first at line 4" in p.message


def test_duplicate_task_name():
    text = "taskgraph: 1\ntasks:\n  a: {type: binary}\n  b: {type: binary}\n  a: {type: regression}\n"
    p = only(error_of(text, YAMLSyntaxError))
    assert (p.line, p.column) == (5, 3)
    assert "duplicate key 'a'" in p.message and "first at line 3" in p.message


def test_duplicate_key_nested_in_model_synapse(tmp_path):
    text = ("taskgraph: 1\nmodel:\n  synapse:\n    kind: gaussian\n    std: 0.1\n"
            "    std: 0.2\ntasks:\n  a: {type: binary}\n")
    path = write(tmp_path, text)
    p = only(error_of(path, YAMLSyntaxError))
    assert_at(p, str(path), 6, 5)
    assert "duplicate key 'std'" in p.message and "first at line 5" in p.message


def test_duplicate_key_in_flow_mapping():
    text = "taskgraph: 1\ntasks:\n  a: {type: binary, type: regression}\n"
    p = only(error_of(text, YAMLSyntaxError))
    assert (p.line, p.column) == loc(text, "type", 2)


def test_every_duplicate_is_reported():
    text = ("taskgraph: 1\ntasks:\n  a: {type: binary, weight: 1, weight: 2}\n"
            "  b: {type: binary}\n  b: {type: binary}\n")
    err = error_of(text, YAMLSyntaxError)
    assert [(p.line, p.column) for p in err.problems] == [loc(text, "weight", 2), (5, 3)]


# -- anchors, aliases, merge keys ------------------------------------------------------------
def test_anchors_aliases_and_merge_keys():
    text = textwrap.dedent("""\
        taskgraph: 1
        tasks:
          base: &bin {type: binary, weight: 2.0}
          x: {<<: *bin, parents: [base]}
          y:
            <<: *bin
            type: regression
            parents: &p [base, x]
          z: {type: binary, parents: *p}
        """)
    h = load_hierarchy(text)
    assert h["x"].type == "binary" and h["x"].weight == 2.0 and h["x"].parents == ("base",)
    # keys written next to '<<' win over merged ones
    assert h["y"].type == "regression" and h["y"].weight == 2.0
    assert h["z"].parents == ("base", "x")


def test_merge_of_several_mappings_first_wins():
    text = textwrap.dedent("""\
        taskgraph: 1
        tasks:
          a: &one {type: binary, weight: 3.0}
          b: &two {type: regression, weight: 5.0, description: from b}
          c: {<<: [*one, *two]}
        """)
    h = load_hierarchy(text)
    assert (h["c"].type, h["c"].weight, h["c"].description) == ("binary", 3.0, "from b")
    h2 = load_hierarchy(text.replace("[*one, *two]", "[*two, *one]"))
    assert (h2["c"].type, h2["c"].weight, h2["c"].description) == ("regression", 5.0, "from b")


def test_merge_of_a_non_mapping():
    text = "taskgraph: 1\ntasks:\n  a: {type: binary, <<: [1, 2]}\n"
    err = error_of(text, YAMLSyntaxError)
    assert all("merges mappings only" in p.message for p in err.problems)
    assert err.problems[0].line == 3


def _bomb(levels: int, width: int = 10) -> str:
    lines = ['l0: &l0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return ("taskgraph: 1\ntasks:\n  a: {type: binary}\ndescription:\n  "
            + "\n  ".join(lines) + "\n")


@pytest.mark.parametrize("levels", [9, 10])
def test_billion_laughs_is_refused_quickly_and_without_memory(levels):
    text = _bomb(levels)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        err = error_of(text, YAMLSyntaxError)
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < 5
    assert peak < 50 * 2**20
    assert "expands to more than" in only(err).message


def test_wide_alias_fanout_is_refused_quickly():
    # one list of 10,000 items referred to 10,000 times: 10^8 nodes once expanded
    items = "[" + ", ".join(["x"] * 10_000) + "]"
    text = ("taskgraph: 1\ntasks:\n  a: {type: binary}\nname: &big " + items + "\n"
            "description: [" + ", ".join(["*big"] * 10_000) + "]\n")
    start = time.perf_counter()
    err = error_of(text, YAMLSyntaxError)
    assert time.perf_counter() - start < 5
    assert "expands to more than" in only(err).message


@pytest.mark.parametrize("text, needle", [
    ("a: &a [*a]\n", "&a"),
    ("a: &a {x: *a}\n", "&a"),
    ("a: &a {<<: *a}\n", "&a"),
    ("taskgraph: 1\ntasks:\n  a: {type: binary}\ndescription: &d [1, [2, *d]]\n", "&d"),
])
def test_recursive_aliases_are_refused(text, needle):
    start = time.perf_counter()
    p = only(error_of(text, YAMLSyntaxError))
    assert time.perf_counter() - start < 5
    assert (p.line, p.column) == loc(text, needle)
    assert "recursive" in p.message


def test_undefined_alias_is_a_syntax_error():
    p = only(error_of("taskgraph: 1\ntasks:\n  a: *nope\n", YAMLSyntaxError))
    assert p.line == 3
    assert "YAML" in p.message


def test_file_larger_than_max_bytes(tmp_path):
    path = write(tmp_path, VALID)
    size = len(VALID.encode())
    p = only(error_of(path, YAMLSyntaxError, max_bytes=size - 1))
    assert p.file == str(path)
    assert f"{size:,}" in p.message and f"{size - 1:,}" in p.message and "limit" in p.message
    assert load_hierarchy(path, max_bytes=size).task_names == ("a",)


@pytest.mark.parametrize("source", [VALID, VALID.encode()])
def test_text_larger_than_max_bytes(source):
    p = only(error_of(source, YAMLSyntaxError, max_bytes=10))
    assert "limit" in p.message and "10" in p.message


def test_nesting_deeper_than_the_limit_with_anchors():
    depth = MAX_DEPTH + 20
    text = ("taskgraph: 1\ntasks:\n  a: {type: binary}\ndescription: &d "
            + "[" * depth + "]" * depth + "\n")
    start = time.perf_counter()
    p = only(error_of(text, YAMLSyntaxError))
    assert time.perf_counter() - start < 5
    assert p.line == 4
    assert "nesting deeper" in p.message


@pytest.mark.parametrize("depth", [1_000, 5_000])
def test_deep_nesting_is_a_taskgraph_error(depth):
    text = ("taskgraph: 1\ntasks:\n  a: {type: binary}\ndescription: "
            + "[" * depth + "]" * depth + "\n")
    start = time.perf_counter()
    try:
        load_hierarchy(text)
    except TaskGraphError:
        pass
    except RecursionError as err:
        pytest.fail(f"{depth} nested lists raised {type(err).__name__}, not a TaskGraphError")
    else:
        pytest.fail("a 1,000-level list was accepted as a description")
    assert time.perf_counter() - start < 5


def _no_core_dump() -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def test_very_deep_nesting_does_not_crash_the_interpreter(tmp_path):
    # run in a child process: a crash there must not take the test run with it
    code = ("from taskgraph.errors import TaskGraphError\n"
            "from taskgraph.hierarchy import load_hierarchy\n"
            "n = 100_000\n"
            "try:\n"
            "    load_hierarchy('taskgraph: 1\\ndescription: ' + '[' * n + ']' * n)\n"
            "except TaskGraphError as err:\n"
            "    print('refused', type(err).__name__)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60, preexec_fn=_no_core_dump)
    assert proc.returncode == 0, f"exit status {proc.returncode}: {proc.stderr[-500:]}"
    assert proc.stdout.startswith("refused")


def test_moderate_nesting_reads_fine():
    doc = read_yaml("a: " + "[" * 30 + "1" + "]" * 30 + "\n")
    value = doc.data["a"]
    for _ in range(30):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == 1


# -- read_yaml marks ------------------------------------------------------------------------
def test_read_yaml_marks():
    text = "taskgraph: 1\ntasks:\n  a: {type: binary}\n  b:\n    parents: [a, c]\n"
    doc = read_yaml(text, name="x.yaml")
    assert doc.name == "x.yaml"
    assert doc.mark(("tasks", "a", "type")) == loc(text, "binary")
    assert doc.mark(("tasks", "a", "type"), key=True) == loc(text, "type")
    assert doc.mark(("tasks", "b", "parents", 1)) == loc(text, "c]")
    # a path that does not exist falls back to the nearest node that does
    assert doc.mark(("tasks", "b", "nope")) == loc(text, "parents")
    assert read_yaml("").data is None


def test_path_that_does_not_exist(tmp_path):
    path = tmp_path / "missing.yaml"
    p = only(error_of(path))
    assert p.file == str(path)
    assert p.message == "no such file"
    with pytest.raises(FileNotFoundError):  # a missing file is no syntax error
        load_hierarchy(path)
    p = only(error_of(str(path)))
    assert p.file == str(path)


def test_directory_instead_of_file(tmp_path):
    p = only(error_of(tmp_path))
    assert "cannot read file" in p.message
    assert os.fspath(tmp_path) == p.file
