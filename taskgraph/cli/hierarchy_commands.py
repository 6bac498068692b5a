"""``taskgraph validate`` and ``taskgraph info``: hierarchy files, no torch needed.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> add_validate(sub).prog.endswith("validate")
    True
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path  # a CLI argument is always a file, never YAML text
from typing import Any

from taskgraph.errors import HierarchyError, Problem
from taskgraph.hierarchy import Hierarchy, load_hierarchy

__all__ = ["add_validate", "add_info", "run_validate", "run_info", "hierarchy_summary"]


def add_validate(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("validate", help="check hierarchy YAML files",
                       description="Check hierarchy files: prints OK per valid file and "
                       "every problem of every invalid one. Exit 0 if all are valid, else 2.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(run=run_validate)
    return p


def add_info(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("info", help="describe a hierarchy",
                       description="Tasks with type, classes, parents and depth; roots, "
                       "leaves and edge count.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--all", action="store_true", help="list every task (default: first 50)")
    p.set_defaults(run=run_info)
    return p


def _check(path: str) -> list[Problem]:
    try:
        load_hierarchy(Path(path))
    except HierarchyError as err:
        problems = list(err.problems)
        if err.truncated:
            problems.append(Problem(f"... and {err.truncated} more problem(s)", file=path))
        return problems
    return []



def run_validate(args: argparse.Namespace) -> int:
    results = [(path, _check(path)) for path in args.files]
    if args.json:
        json.dump([{"file": path, "ok": not problems,
                    "problems": [p.to_dict() for p in problems]}
                   for path, problems in results], sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        for path, problems in results:
            if problems:
                for problem in problems:
                    print(problem, file=sys.stderr)
            else:
                print(f"{path}: OK")
    return 2 if any(problems for _, problems in results) else 0


def hierarchy_summary(h: Hierarchy) -> dict[str, Any]:
    """A JSON-ready description of ``h`` (what ``taskgraph info --json`` prints)."""
    depths = h.depths
    return {
        "name": h.name,
        "description": h.description,
        "tasks": len(h),
        "edges": h.graph.number_of_edges(),
        "roots": list(h.roots),
        "leaves": len(h.leaves),
        "max_depth": max(depths.values(), default=0),
        "types": {t: sum(1 for s in h.tasks.values() if s.type == t)
                  for t in sorted({s.type for s in h.tasks.values()})},
        "task_list": [{"name": s.name, "type": s.type, "classes": list(s.classes or []),
                       "parents": list(s.parents), "depth": depths[s.name]}
                      for s in h.tasks.values()],
    }


def run_info(args: argparse.Namespace) -> int:
    h = load_hierarchy(Path(args.file))
    info = hierarchy_summary(h)
    if args.json:
        json.dump(info, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    print(f"{info['name']}: {info['tasks']} tasks, {info['edges']} edges, "
          f"max depth {info['max_depth']}")
    if info["description"]:
        print(info["description"])
    print("types: " + ", ".join(f"{n} {t}" for t, n in info["types"].items()))
    roots = info["roots"]
    print(f"roots ({len(roots)}): {', '.join(roots[:20])}{' ...' if len(roots) > 20 else ''}")
    print(f"leaves: {info['leaves']}")
    rows = info["task_list"] if args.all else info["task_list"][:50]
    width = min(max((len(r["name"]) for r in rows), default=4), 40)
    print()
    print(f"{'task':<{width}}  {'type':<10}  depth  classes / parents")
    for r in rows:
        classes = ", ".join(r["classes"][:6]) + (" ..." if len(r["classes"]) > 6 else "")
        parents = ", ".join(r["parents"][:6]) + (" ..." if len(r["parents"]) > 6 else "")
        detail = "; ".join(x for x in (f"[{classes}]" if classes else "",
                                       f"<- {parents}" if parents else "") if x)
        print(f"{r['name']:<{width}}  {r['type']:<10}  {r['depth']:>5}  {detail}")
    if len(rows) < len(info["task_list"]):
        print(f"... {len(info['task_list']) - len(rows)} more tasks (--all lists them)")
    return 0
