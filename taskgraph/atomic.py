"""Atomic file writes: write a temporary file beside the target, then rename it.

A crash or a full disk mid-write leaves the previous file (or none), never half a file.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "note.txt")
    >>> write_text_atomic(path, "hello")
    >>> open(path).read(), sorted(os.listdir(os.path.dirname(path)))
    ('hello', ['note.txt'])
"""

from __future__ import annotations

import os

__all__ = ["write_text_atomic"]


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
