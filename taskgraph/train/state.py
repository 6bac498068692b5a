"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the model and optimizer (and scheduler, loss-weighting and
early-stopping) states, the history, and every random-number state that affects
training: torch's (CPU and CUDA), numpy's, Python's, the data loader's generator and
the gradient-noise generator. It contains only tensors and plain data and is read with
``weights_only=True``. Files are written to a temporary name and renamed, so a run
killed mid-write leaves the previous checkpoint intact.

Example:
    >>> rng = capture_rng()
    >>> import torch; a = torch.rand(1); restore_rng(rng); b = torch.rand(1)
    >>> bool(a == b)
    True
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from taskgraph.atomic import atomic_write
from taskgraph.errors import CheckpointError

__all__ = ["capture_rng", "restore_rng", "write_atomic", "read_checkpoint", "safe_torch_load"]


def capture_rng(*generators: torch.Generator | None) -> dict[str, Any]:
    """The current random states (plus those of ``generators``) as plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, state, gauss = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "cached": cached},
        "python": {"version": version, "state": list(state), "gauss": gauss},
        "generators": [g.get_state() if g is not None else None for g in generators],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any], *generators: torch.Generator | None) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    for g, s in zip(generators, state.get("generators", [])):
        if g is not None and s is not None:
            g.set_state(s)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_atomic(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`taskgraph.atomic.atomic_write` (fsync, then rename)."""
    with atomic_write(path, "wb") as fh:
        torch.save(payload, fh)


def safe_torch_load(path: str | os.PathLike, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` with one clear message for a bad file.

    ``what`` names the expected file in messages (``"taskgraph checkpoint"``). An empty
    file, a file that is not a torch archive (text, say), a damaged archive and one that
    holds objects other than tensors and plain data (which taskgraph never unpickles)
    each raise a :class:`CheckpointError` naming the file.

    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/notes.pt"
    >>> _ = open(path, "w").write("hello")
    >>> safe_torch_load(path, "taskgraph checkpoint")
    Traceback (most recent call last):
    ...
    taskgraph.errors.CheckpointError: .../notes.pt: not a taskgraph checkpoint: not a torch archive (it starts with 'hello', text)
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:  # a missing file stays a FileNotFoundError
        head = fh.read(16)
    if not head:
        raise CheckpointError(f"{path}: not a {what}: the file is empty")
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # zip / legacy pickle
        text = head.decode("utf-8", "replace")
        kind = ", text" if text.isprintable() else ""
        raise CheckpointError(f"{path}: not a {what}: not a torch archive (it starts with "
                              f"{text[:8]!r}{kind})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged archive fails in many ways; all mean "damaged"
        message = str(err).strip()
        if "weights_only" in message or "Unsupported global" in message:
            reason = ("it holds Python objects other than tensors and plain data, which "
                      "taskgraph does not load")
        else:
            first = message.splitlines()[0][:200] if message else ""
            reason = f"truncated or corrupt ({type(err).__name__}{': ' + first if first else ''})"
        raise CheckpointError(f"{path}: not a readable {what}: {reason}") from None


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a training checkpoint safely (``weights_only=True``).

    Raises:
        CheckpointError: the file is unreadable or not a taskgraph training checkpoint.
    """
    payload = safe_torch_load(path, "taskgraph training checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != "taskgraph-training":
        raise CheckpointError(f"{os.fspath(path)}: not a taskgraph training checkpoint")
    return payload
