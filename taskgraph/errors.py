"""The exceptions taskgraph raises, and the :class:`Problem` record they carry.

The hierarchy is shallow on purpose (as in networkx): catch :class:`TaskGraphError`
for "anything taskgraph rejected", or a subclass for one kind of problem.

.. code-block:: text

    TaskGraphError
    ├── HierarchyError (ValueError)      a hierarchy file, string or dict is invalid
    │   ├── YAMLSyntaxError              the text is not readable YAML
    │   ├── SchemaError                  a key, type or value breaks schema v1
    │   └── CycleError                   the task graph has a cycle
    │   └── HierarchyNotFoundError       the hierarchy file does not exist (FileNotFoundError)
    ├── CheckpointError (ValueError)     a saved model is truncated, corrupt or foreign
    ├── DataError (ValueError)           targets, labels or features are unusable
    └── ArgumentError (ValueError)       a Python argument has a value taskgraph rejects

Which one, by where the bad value came from (one rule for every module):

- the hierarchy (YAML text, a file, a dict, and the model keys of ``compile(...)``
  overrides, which are checked by the same schema): :class:`HierarchyError`;
- a file taskgraph saved (``tg.load``, ``--resume``): :class:`CheckpointError`;
- data: features, targets, labels, data files, loaders and batches: :class:`DataError`;
- any other argument of a public function (``fit(epochs=0)``, ``predict(samples=-1)``,
  ``evaluate(threshold=2)``): :class:`ArgumentError`; an argument of the wrong Python
  type may raise ``TypeError``.

Every message names where the problem is: ``FILE:LINE:COL: key.path: what is wrong``.

Example:
    >>> from taskgraph.errors import Problem, HierarchyError
    >>> p = Problem("unknown task 'mamal' (did you mean 'mammal'?)",
    ...             path="tasks.diet.parents[0]", file="animals.yaml", line=9, column=42)
    >>> str(p)
    "animals.yaml:9:42: tasks.diet.parents[0]: unknown task 'mamal' (did you mean 'mammal'?)"
    >>> isinstance(HierarchyError([p]), ValueError)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = [
    "TaskGraphError",
    "HierarchyError",
    "YAMLSyntaxError",
    "SchemaError",
    "CycleError",
    "HierarchyNotFoundError",
    "CheckpointError",
    "DataError",
    "ArgumentError",
    "Problem",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, with where it is.

    Args:
        message: what is wrong, and what was expected.
        path: the key path inside the document (``tasks.diet.parents[0]``), or ``""``.
        file: the file name, ``"<string>"`` for YAML text, ``None`` for a dict.
        line: 1-based line, when known.
        column: 1-based column, when known.
        kind: ``"syntax"``, ``"schema"`` or ``"cycle"``; picks the exception class.
    """

    message: str
    path: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None
    kind: str = "schema"

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        path = f"{self.path}: " if self.path else ""
        return f"{where}{path}{self.message}"

    def to_dict(self) -> dict:
        """A JSON-ready dict (used by ``taskgraph validate --json``)."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "kind": self.kind,
        }


class TaskGraphError(Exception):
    """Base class of every error taskgraph raises on purpose."""


class HierarchyError(TaskGraphError, ValueError):
    """A hierarchy is invalid. ``.problems`` lists every problem found in one pass.

    ``str(error)`` is one line per problem.
    """

    def __init__(self, problems: Sequence[Problem] | str, *, truncated: int = 0) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.truncated = truncated
        lines = [str(p) for p in self.problems]
        if truncated:
            lines.append(f"... and {truncated} more problem(s) not shown")
        super().__init__("\n".join(lines))

    @staticmethod
    def from_problems(problems: Iterable[Problem], *, truncated: int = 0) -> "HierarchyError":
        """The most specific subclass that covers every problem in ``problems``."""
        problems = list(problems)
        kinds = {p.kind for p in problems}
        cls: type[HierarchyError] = HierarchyError
        if kinds == {"syntax"}:
            cls = YAMLSyntaxError
        elif kinds == {"cycle"}:
            cls = CycleError
        elif kinds == {"schema"}:
            cls = SchemaError
        return cls(problems, truncated=truncated)


class YAMLSyntaxError(HierarchyError):
    """The input is not readable, safe, single-document YAML."""


class SchemaError(HierarchyError):
    """A key, type or value does not follow hierarchy schema v1."""


class CycleError(HierarchyError):
    """The task graph has a cycle; the message prints it (``a -> b -> a``)."""


class HierarchyNotFoundError(HierarchyError, FileNotFoundError):
    """A hierarchy file does not exist (also a ``FileNotFoundError``: it is no syntax error).

    >>> err = HierarchyNotFoundError("missing.yaml: no such file")
    >>> isinstance(err, FileNotFoundError), isinstance(err, HierarchyError)
    (True, True)
    """


class CheckpointError(TaskGraphError, ValueError):
    """A saved model is truncated, corrupt, tampered with, or for another hierarchy."""


class DataError(TaskGraphError, ValueError):
    """Targets, labels or features cannot be used (wrong shape, unknown class, NaN)."""


class ArgumentError(TaskGraphError, ValueError):
    """A Python argument of a public function has a value taskgraph rejects: the
    message names the function, the argument, what it expects and what it got.

    >>> str(ArgumentError("fit: epochs: expected a positive integer, got 0"))
    'fit: epochs: expected a positive integer, got 0'
    """
