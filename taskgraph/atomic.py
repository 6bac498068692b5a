"""Atomic file writes: write a temporary file beside the target, then rename it.

A crash or a full disk mid-write leaves the previous file (or none), never half a file.
Every file taskgraph writes (models, training checkpoints, reports, YAML, predictions)
goes through :func:`atomic_write`.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "note.txt")
    >>> write_text_atomic(path, "hello")
    >>> open(path).read(), sorted(os.listdir(os.path.dirname(path)))
    ('hello', ['note.txt'])
    >>> with atomic_write(path, "wb") as fh:
    ...     _ = fh.write(b"bytes")
    >>> open(path, "rb").read()
    b'bytes'
"""

from __future__ import annotations

import contextlib
import os
from typing import IO, Any, Iterator

__all__ = ["atomic_write", "write_text_atomic"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *,
                 encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` (``mode`` ``"w"`` or ``"wb"``); on a clean
    exit flush it to disk and rename it to ``path``; on an error remove it."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, mode, encoding=encoding if mode == "w" else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
