"""Import the WordNet noun hierarchy (``data.noun``, Debian ``wordnet-base``).

Every noun synset becomes a binary task named ``FIRSTWORD.OFFSET`` (e.g.
``dog.02084071``); hypernym (``@``) and instance-hypernym (``@i``) pointers become
parent links, so a synset may have several parents (a DAG).

Example:
    >>> lines = [
    ...   "  1 This software and database is being provided to you, the LICENSEE, by",
    ...   "00001740 03 n 01 entity 0 000 | that which is perceived",
    ...   "00002137 03 n 02 abstraction 0 abstract_entity 0 001 @ 00001740 n 0000 | a concept",
    ... ]
    >>> h = parse_wordnet(lines)
    >>> h.task_names, h.parents("abstraction.00002137")
    (('entity.00001740', 'abstraction.00002137'), ('entity.00001740',))
"""

from __future__ import annotations

import os
from typing import Iterable

from taskgraph.errors import DataError

__all__ = ["parse_wordnet", "import_wordnet", "DEFAULT_PATH"]

DEFAULT_PATH = "/usr/share/wordnet/data.noun"


def parse_wordnet(lines: Iterable[str], *, name: str = "wordnet_nouns", where: str = "<wordnet>"):
    """A :class:`~taskgraph.hierarchy.Hierarchy` from ``data.noun`` lines."""
    from taskgraph.hierarchy import load_hierarchy

    names: dict[str, str] = {}
    parents: dict[str, list[str]] = {}
    glosses: dict[str, str] = {}
    for lineno, line in enumerate(lines, 1):
        if not line or line.startswith(" "):
            continue  # the licence header
        fields, _, gloss = line.partition("|")
        parts = fields.split()
        try:
            # parts[1] is the lexicographer file number, not used
            offset, pos, count = parts[0], parts[2], int(parts[3], 16)
            word = parts[4]
            at = 4 + 2 * count
            n_ptr = int(parts[at])
            ptrs = [parts[at + 1 + 4 * k: at + 5 + 4 * k] for k in range(n_ptr)]
        except (IndexError, ValueError):
            raise DataError(f"{where}:{lineno}: not a WordNet data line") from None
        if pos != "n":
            continue
        names[offset] = f"{word.lower()}.{offset}"
        parents[offset] = [target for symbol, target, tpos, _ in ptrs
                           if symbol in ("@", "@i") and tpos == "n"]
        glosses[offset] = gloss.strip()[:120]
    if not names:
        raise DataError(f"{where}: no noun synsets found")
    tasks = {}
    for offset, task in names.items():
        body: dict = {"type": "binary"}
        ps = list(dict.fromkeys(names[p] for p in parents[offset] if p in names))
        if ps:
            body["parents"] = ps
        tasks[task] = body
    return load_hierarchy({"taskgraph": 1, "name": name,
                           "description": f"{len(tasks)} WordNet noun synsets; parents are "
                                          "hypernyms and instance hypernyms.",
                           "model": {"coherent": True}, "tasks": tasks})


def import_wordnet(path: str | os.PathLike = DEFAULT_PATH, *, name: str = "wordnet_nouns"):
    """Read WordNet's ``data.noun``; a clear message when it is not installed."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "WordNet's data.noun is not there; install Debian's "
                                   "wordnet-base (apt-get install wordnet-base) or pass its path",
                                path)
    with open(path, encoding="utf-8", errors="replace") as fh:
        return parse_wordnet(fh, name=name, where=path)
