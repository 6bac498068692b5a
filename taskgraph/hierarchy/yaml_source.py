"""Read YAML strictly: safe tags only, no duplicate keys, one document, marks kept.

PyYAML's ``safe_load`` silently keeps the last of two equal keys, reports some errors
without a position, and expands aliases without a bound. This module composes the
document into YAML nodes (the C parser when libyaml is there; it keeps line and column
marks), then turns the nodes into plain Python data itself and keeps the nodes, so that
validation messages can say ``FILE:LINE:COL`` for any key path.

Example:
    >>> doc = read_yaml("tasks:\\n  a: {type: binary}\\n", name="<string>")
    >>> doc.data
    {'tasks': {'a': {'type': 'binary'}}}
    >>> doc.mark(("tasks", "a", "type"))
    (2, 13)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import yaml

from taskgraph.errors import Problem

try:  # the C parser is ~10x faster and keeps marks
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

__all__ = ["YAMLDocument", "read_yaml", "MAX_BYTES", "MAX_NODES", "MAX_DEPTH"]

#: Largest input read, in bytes (a 100,000-task hierarchy is ~5 MB).
MAX_BYTES = 256 * 1024 * 1024
#: Largest number of nodes after alias expansion (stops "billion laughs" documents).
MAX_NODES = 20_000_000
#: Deepest nesting accepted (schema v1 needs 5 levels).
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("null", "bool", "int", "float", "str")}
_TEXT_TAGS = {_TAG + "timestamp", _TAG + "binary"}  # date-like plain words stay text
_STR, _SEQ, _MAP, _MERGE = (_TAG + t for t in ("str", "seq", "map", "merge"))

Path = tuple  # a key path: ("tasks", "diet", "parents", 0)


@dataclass
class YAMLDocument:
    """Plain data read from YAML, and the composed node tree for positions.

    Positions are looked up only when a message needs one (:meth:`mark`), so reading a
    large valid file pays nothing for them.
    """

    data: Any
    name: str | None
    root: yaml.Node | None = None

    def mark(self, path: Path, *, key: bool = False) -> tuple[int, int] | None:
        """1-based (line, column) of the value at ``path`` (or of its key, ``key=True``).

        Falls back to the nearest enclosing node that exists.
        """
        node, where = self.root, None
        if node is None:
            return None
        where = node.start_mark
        for i, part in enumerate(path):
            found = _child(node, part)
            if found is None:
                break
            key_node, node = found
            last = i == len(path) - 1
            where = (key_node.start_mark if key and last and key_node is not None
                     else node.start_mark)
        return where.line + 1, where.column + 1


    def raw_key(self, path: Path) -> str | None:
        """The key's text as written in the file (``yes``, not ``True``), if known."""
        node = self.root
        key_node = None
        for part in path:
            found = _child(node, part) if node is not None else None
            if found is None:
                return None
            key_node, node = found
        return key_node.value if isinstance(key_node, yaml.ScalarNode) else None


def _child(node: yaml.Node, part: Any) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.SequenceNode):
        if isinstance(part, int) and 0 <= part < len(node.value):
            return None, node.value[part]
        return None
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if (isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE
                    and _Converter.scalar_value(key_node) == part):
                return key_node, value_node
    return None


class _Stop(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _decode(raw: bytes, name: str | None) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        before = raw[: err.start]
        line = before.count(b"\n") + 1
        col = err.start - (before.rfind(b"\n") + 1) + 1
        raise _Stop(Problem(
            f"not UTF-8: byte 0x{raw[err.start]:02x} cannot be decoded; save the file as UTF-8",
            file=name, line=line, column=col, kind="syntax")) from None


def _tab_at(text: str, line: int) -> int | None:
    """Column (1-based) of a tab in the indentation of ``line`` (1-based), if any."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return None
    row = lines[line - 1]
    indent = row[: len(row) - len(row.lstrip(" \t"))]
    return indent.index("\t") + 1 if "\t" in indent else None


def _flow_depth(text: str) -> int:
    """Deepest nesting of flow brackets, ignoring quoting (a cheap upper bound)."""
    depth = deepest = 0
    for match in re.finditer(r"[\[\]{}]", text):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


def _too_deep(text: str) -> tuple[int, int] | None:
    """Where nesting first exceeds MAX_DEPTH, from the parser's event stream (iterative,
    so a pathological document cannot overflow the stack), or ``None``."""
    loader = _Loader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    return event.start_mark.line + 1, event.start_mark.column + 1
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        pass  # the composer reports syntax errors with their positions
    finally:
        loader.dispose()
    return None


def _compose(text: str, name: str | None) -> yaml.Node | None:
    try:
        loader = _Loader(text)
    except (UnicodeError, ValueError) as err:
        raise _Stop(Problem(f"unreadable text: {err}", file=name, kind="syntax")) from None
    try:
        if not loader.check_node():
            return None
        node = loader.get_node()
        if loader.check_node():
            extra = loader.get_node()
            mark = extra.start_mark if extra is not None else None
            raise _Stop(Problem(
                "several YAML documents in one file ('---'); a hierarchy is one document",
                file=name, line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None, kind="syntax"))
        return node
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        tab = _tab_at(text, line) if line else None
        if tab is not None:
            raise _Stop(Problem("tab character in indentation; YAML indents with spaces only",
                                file=name, line=line, column=tab, kind="syntax")) from None
        what = err.problem or err.context or "invalid YAML"
        if err.context and err.problem:
            what = f"{err.problem} ({err.context})"
        raise _Stop(Problem(
            f"YAML syntax error: {what}", file=name, line=line,
            column=mark.column + 1 if mark else None, kind="syntax")) from None
    except yaml.YAMLError as err:
        raise _Stop(Problem(f"YAML error: {err}", file=name, kind="syntax")) from None
    except (UnicodeError, ValueError) as err:
        raise _Stop(Problem(f"unreadable text: {err}", file=name, kind="syntax")) from None
    except RecursionError:
        raise _Stop(Problem("YAML nesting is too deep", file=name, kind="syntax")) from None
    finally:
        loader.dispose()


def _expanded_size(root: yaml.Node, name: str | None) -> int:
    """Number of nodes once aliases are expanded, without expanding them."""
    sizes: dict[int, int] = {}
    on_stack: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_stack:
            _raise_at(node, "a YAML alias refers to a node that contains it (recursive data)", name)
        if depth > MAX_DEPTH:
            _raise_at(node, f"nesting deeper than {MAX_DEPTH} levels", name)
        on_stack.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item, depth + 1)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k, depth + 1) + size(v, depth + 1)
        on_stack.discard(key)
        sizes[key] = min(total, MAX_NODES + 1)
        return sizes[key]

    return size(root, 0)


def _raise_at(node: yaml.Node, message: str, name: str | None, kind: str = "syntax") -> None:
    mark = node.start_mark
    raise _Stop(Problem(message, file=name, line=mark.line + 1, column=mark.column + 1, kind=kind))


class _Converter:
    """Turns composed nodes into dicts, lists and scalars; rejects unsafe tags and
    duplicate keys."""

    _scalars = yaml.SafeLoader("")  # used only for its scalar constructors
    _build = {tag: yaml.SafeLoader.yaml_constructors[tag] for tag in _SCALAR_TAGS}

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.problems: list[Problem] = []

    def problem(self, node: yaml.Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(message, file=self.name, line=mark.line + 1,
                                     column=mark.column + 1, kind="syntax"))

    @classmethod
    def scalar_value(cls, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag in cls._build:
            return cls._build[tag](cls._scalars, node)
        return node.value

    def convert(self, node: yaml.Node, depth: int = 0) -> Any:
        if isinstance(node, yaml.ScalarNode):
            tag = node.tag
            if tag == _STR:
                return node.value
            if tag not in _SCALAR_TAGS and tag not in _TEXT_TAGS:
                self.problem(node, f"unsupported YAML tag {tag!r}; only plain YAML is read "
                                   "(tags that build Python objects are never run)")
                return node.value
            try:
                return self.scalar_value(node)
            except (ValueError, KeyError, IndexError, TypeError):
                self.problem(node, f"cannot read {node.value!r} as "
                                   f"{tag.rsplit(':', 1)[-1]}; quote it to make it text")
                return node.value
        if depth >= MAX_DEPTH:
            self.problem(node, f"nesting deeper than {MAX_DEPTH} levels")
            return None
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self.problem(node, f"unsupported YAML tag {node.tag!r}; only plain YAML is read")
            return [self.convert(item, depth + 1) for item in node.value]
        if node.tag != _MAP:
            self.problem(node, f"unsupported YAML tag {node.tag!r}; only plain YAML is read")
        return self.mapping(node, depth)

    def mapping(self, node: yaml.MappingNode, depth: int = 0) -> dict:
        result: dict = {}
        first_line: dict = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, "a mapping key must be a plain scalar, not a list or mapping")
                continue
            key = self.convert(key_node)
            if key in result:
                self.problem(key_node, f"duplicate key {key!r} (first at line "
                                       f"{first_line[key]}); YAML keeps only one, so remove "
                                       "or rename the other")
                continue
            first_line[key] = key_node.start_mark.line + 1
            result[key] = self.convert(value_node, depth + 1)
        for value_node in merged:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.problem(source, "'<<' merges mappings only")
                    continue
                for k, v in self.mapping(source, depth + 1).items():
                    result.setdefault(k, v)
        return result


def read_yaml(source: str | bytes | os.PathLike, *, name: str | None = None,
              max_bytes: int = MAX_BYTES) -> YAMLDocument:
    """Read one YAML document strictly.

    Args:
        source: YAML text, raw bytes, or a path (``os.PathLike``; a ``str`` is text).
        name: the file name used in messages (default: the path, or ``"<string>"``).
        max_bytes: larger inputs are refused before parsing.

    Returns:
        A :class:`YAMLDocument`; ``data`` is ``None`` for an empty document.

    Raises:
        HierarchyError: (a ``YAMLSyntaxError``) naming file, line and column.
    """
    from taskgraph.errors import HierarchyError

    try:
        if isinstance(source, os.PathLike):
            name = name if name is not None else os.fspath(source)
            try:
                size = os.path.getsize(source)
                if size > max_bytes:
                    raise _Stop(Problem(f"file is {size:,} bytes; the limit is {max_bytes:,}",
                                        file=name, kind="syntax"))
                with open(source, "rb") as fh:
                    raw = fh.read()
            except OSError as err:
                raise _Stop(Problem(f"cannot read file: {err.strerror or err}", file=name,
                                    kind="syntax")) from None
        else:
            raw = source
            name = name if name is not None else "<string>"
        if len(raw) > max_bytes:
            raise _Stop(Problem(f"input is {len(raw):,} bytes; the limit is {max_bytes:,}",
                                file=name, kind="syntax"))
        text = _decode(raw, name) if isinstance(raw, bytes) else raw
        if "\x00" in text:
            line = text[: text.index("\x00")].count("\n") + 1
            raise _Stop(Problem("NUL byte in input: this is not a text file", file=name,
                                line=line, kind="syntax"))
        deep = _too_deep(text) if _flow_depth(text) > MAX_DEPTH else None
        if deep is not None:
            raise _Stop(Problem(f"nesting deeper than {MAX_DEPTH} levels", file=name,
                                line=deep[0], column=deep[1], kind="syntax"))
        node = _compose(text, name)
        if node is None:
            return YAMLDocument(None, name)
        total = _expanded_size(node, name) if "&" in text else 0
        if total > MAX_NODES:
            _raise_at(node, f"the document expands to more than {MAX_NODES:,} nodes "
                            "(aliases that multiply, a 'billion laughs' document?)", name)
        conv = _Converter(name)
        data = conv.convert(node)
        if conv.problems:
            raise HierarchyError.from_problems(conv.problems)
        return YAMLDocument(data, name, node)
    except _Stop as stop:
        raise HierarchyError.from_problems([stop.problem]) from None
