"""Import an ontology in OBO format (Gene Ontology, HPO) as a label hierarchy.

Each non-obsolete ``[Term]`` becomes a binary task named by its id; ``is_a`` lines (and
``relationship: part_of`` when asked) become parent links. Other stanzas
(``[Typedef]``, ``[Instance]``) are skipped. Parents that are obsolete or not defined in
the file are dropped (their count is reported in the hierarchy's description).

Example:
    >>> text = '''format-version: 1.2
    ... [Term]
    ... id: GO:0008150
    ... name: biological_process
    ...
    ... [Term]
    ... id: GO:0009987
    ... name: cellular process
    ... is_a: GO:0008150 ! biological_process
    ...
    ... [Term]
    ... id: GO:0000001
    ... is_obsolete: true
    ... '''
    >>> h = parse_obo(text.splitlines(), name="go_slice")
    >>> h.task_names, h.parents("GO:0009987")
    (('GO:0008150', 'GO:0009987'), ('GO:0008150',))
"""

from __future__ import annotations

import gzip
import io
import os
from typing import Iterable

from taskgraph.errors import DataError

__all__ = ["parse_obo", "import_obo"]


def parse_obo(lines: Iterable[str], *, name: str = "ontology", part_of: bool = False,
              where: str = "<obo>"):
    """A :class:`~taskgraph.hierarchy.Hierarchy` from OBO text lines."""
    from taskgraph.hierarchy import load_hierarchy

    terms: dict[str, dict] = {}
    current: dict | None = None
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("!"):
            continue
        if line.startswith("["):
            current = {"parents": [], "obsolete": False, "line": lineno} if line == "[Term]" else None
            if current is not None:
                terms.setdefault("\0pending", current)
            continue
        if current is None or ":" not in line:
            continue
        key, value = line.split(":", 1)
        value = value.split(" ! ", 1)[0].strip()
        if key == "id":
            terms.pop("\0pending", None)
            if value in terms:
                raise DataError(f"{where}:{lineno}: term {value!r} is defined twice")
            terms[value] = current
        elif key == "is_a":
            current["parents"].append(value.split()[0])
        elif key == "relationship" and part_of:
            rel, *rest = value.split()
            if rel == "part_of" and rest:
                current["parents"].append(rest[0])
        elif key == "is_obsolete" and value.lower() == "true":
            current["obsolete"] = True
        elif key == "name":
            current["name"] = value
    terms.pop("\0pending", None)
    live = {t: v for t, v in terms.items() if not v["obsolete"]}
    if not live:
        raise DataError(f"{where}: no [Term] stanzas with an id")
    dropped = 0
    tasks = {}
    for term, info in live.items():
        parents = list(dict.fromkeys(p for p in info["parents"] if p in live and p != term))
        dropped += len(set(info["parents"])) - len(parents)
        body: dict = {"type": "binary"}
        if parents:
            body["parents"] = parents
        if info.get("name"):
            body["description"] = info["name"]
        tasks[term] = body
    return load_hierarchy({
        "taskgraph": 1, "name": name,
        "description": f"{len(tasks)} terms imported from OBO ({'is_a, part_of' if part_of else 'is_a'}"
                       f"; {len(terms) - len(live)} obsolete terms and {dropped} links to "
                       "undefined or obsolete terms skipped).",
        "model": {"coherent": True}, "tasks": tasks})


def import_obo(path: str | os.PathLike, *, part_of: bool = False, name: str | None = None):
    """Read an ``.obo`` (or ``.obo.gz``) file; see :func:`parse_obo`."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
        base = os.path.basename(path).split(".")[0]
        return parse_obo(text, name=name or base, part_of=part_of, where=path)
