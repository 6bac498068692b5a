"""Collecting problems with their positions: key paths, and a capped problem list.

Example:
    >>> format_path(("tasks", "diet", "parents", 0))
    'tasks.diet.parents[0]'
    >>> format_path(("tasks", "my task", "type"))
    "tasks['my task'].type"
"""

from __future__ import annotations

from typing import Any, Iterable

from taskgraph.errors import Problem
from taskgraph.hierarchy.yaml_source import YAMLDocument

__all__ = ["format_path", "ProblemReport"]


def format_path(path: Iterable[Any]) -> str:
    """``("tasks", "diet", "parents", 0)`` -> ``"tasks.diet.parents[0]"``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and part and all(c.isalnum() or c in "_-" for c in part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


class ProblemReport:
    """Problems of one document, each located from its key path; at most ``limit`` are
    kept and the rest counted in ``dropped``."""

    def __init__(self, doc: YAMLDocument, limit: int) -> None:
        self.doc, self.limit = doc, limit
        self.problems: list[Problem] = []
        self.dropped = 0

    def add(self, path: tuple, message: str, *, key: bool = False, kind: str = "schema") -> None:
        if len(self.problems) >= self.limit:
            self.dropped += 1
            return
        mark = self.doc.mark(path, key=key)
        self.problems.append(Problem(message, path=format_path(path), file=self.doc.name,
                                     line=mark[0] if mark else None,
                                     column=mark[1] if mark else None, kind=kind))
