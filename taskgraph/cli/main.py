r"""``taskgraph`` entry point: sub-commands, and one policy for errors.

Bad input (any :class:`~taskgraph.errors.TaskGraphError`, a missing file) prints one
clear message per problem on stderr and exits with status 2, never a traceback.
Sub-commands live in their own modules and register themselves through ``COMMANDS``.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.yaml")
    >>> _ = open(path, "w").write("taskgraph: 1\ntasks:\n  a: {type: binary}\n")
    >>> main(["validate", path])  # doctest: +ELLIPSIS
    /...toy.yaml: OK
    0
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, NoReturn, Sequence

from taskgraph.errors import TaskGraphError

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_INVALID"]

EXIT_OK = 0
EXIT_INVALID = 2

# (module, function adding the sub-parser); modules are imported only when listed here,
# and each keeps its own heavy imports (torch, matplotlib) inside the command function.
COMMANDS: list[tuple[str, str]] = [
    ("taskgraph.cli.hierarchy_commands", "add_validate"),
    ("taskgraph.cli.hierarchy_commands", "add_info"),
    ("taskgraph.cli.train_commands", "add_train"),
    ("taskgraph.cli.train_commands", "add_evaluate"),
    ("taskgraph.cli.predict_command", "add_predict"),
    ("taskgraph.cli.import_commands", "add_import"),
    ("taskgraph.cli.demo_command", "add_demo"),
    ("taskgraph.cli.draw_commands", "add_draw"),
    ("taskgraph.cli.draw_commands", "add_report"),
]


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error: ``taskgraph train: error: argument --lr:
    expected a finite number > 0, got '-1' (see 'taskgraph train --help')``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one sub-parser per command."""
    import importlib

    from taskgraph import __version__

    parser = _Parser(
        prog="taskgraph",
        description="Hierarchical multi-task learning with stochastic synapses.")
    parser.add_argument("--version", action="version", version=f"taskgraph {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module, func in COMMANDS:
        adder: Callable = getattr(importlib.import_module(module), func)
        adder(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 invalid input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_INVALID
    try:
        return int(args.run(args) or EXIT_OK)
    except TaskGraphError as err:
        print(f"taskgraph {args.command}: error:", file=sys.stderr)
        print(str(err), file=sys.stderr)
        return EXIT_INVALID
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        print(f"taskgraph {args.command}: error: {err.filename}: {err.strerror}",
              file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # e.g. `taskgraph info big.yaml | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"taskgraph {args.command}: interrupted", file=sys.stderr)
        return 130


def console() -> None:  # pragma: no cover - the console-script shim
    sys.exit(main())
