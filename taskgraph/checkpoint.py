"""Save and load a compiled model: hierarchy, config and weights in one file.

The file is an ordinary ``torch.save`` archive holding only tensors and plain data, so
it is read with ``torch.load(..., weights_only=True)``: nothing in it can run code. A
SHA-256 digest of the contents is stored beside them and checked on load, so a
truncated, corrupt or edited file is refused with a clear message. Writing goes to a
temporary file first and is renamed into place: an interrupted save never leaves half
a checkpoint under the final name.

Example:
    >>> import os, tempfile, torch, taskgraph as tg
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4).eval()
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
    >>> tg.save(model, path)
    >>> again = tg.load(path)
    >>> x = torch.randn(2, 6)
    >>> torch.equal(model(x)["diet"], again(x)["diet"])
    True
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import torch
from torch import nn

from taskgraph.atomic import atomic_write
from taskgraph.errors import CheckpointError, HierarchyError

__all__ = ["save", "load", "read_extra", "FORMAT", "FORMAT_VERSION"]

FORMAT = "taskgraph-model"
FORMAT_VERSION = 1


def _digest(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, ensure_ascii=False).encode())
    for name in sorted(state):
        t = state[name].detach().cpu().reshape(-1).clone()  # dense bytes, whatever the strides
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save(model: nn.Module, path: str | os.PathLike, *, extra: dict[str, Any] | None = None) -> None:
    """Write ``model`` (a :class:`TaskGraphModel`) to ``path`` atomically.

    Args:
        model: the model; a user encoder's weights are saved, its class is not (pass
            the module again to :func:`load`).
        path: the destination file.
        extra: plain JSON-able data to keep beside the model (e.g. a data-set name).
    """
    from taskgraph.model.model import TaskGraphModel

    if not isinstance(model, TaskGraphModel):
        raise TypeError(f"save: expected a TaskGraphModel, got {type(model).__name__}")
    meta = {"format": FORMAT, "version": FORMAT_VERSION,
            "hierarchy": model.hierarchy.to_dict(), "config": model.config.to_dict(),
            "extra": extra or {}}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"meta_json": json.dumps(meta, ensure_ascii=False), "state_dict": state,
               "sha256": _digest(meta, state)}
    with atomic_write(path, "wb") as fh:
        torch.save(payload, fh)


def _read(path: str) -> dict[str, Any]:
    from taskgraph.train.state import safe_torch_load

    payload = safe_torch_load(path, "taskgraph checkpoint")
    if not isinstance(payload, dict) or not {"meta_json", "state_dict", "sha256"} <= set(payload):
        raise CheckpointError(f"{path}: not a taskgraph checkpoint (no taskgraph metadata)")
    try:
        meta = json.loads(payload["meta_json"])
    except (TypeError, ValueError):
        raise CheckpointError(f"{path}: the checkpoint's metadata is damaged") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a taskgraph model checkpoint "
                              f"(format {meta.get('format')!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta.get('version')!r}; "
                              f"this taskgraph reads version {FORMAT_VERSION}")
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: the checkpoint's weights are damaged")
    try:
        digest = _digest(meta, state)
    except Exception:  # a tensor whose bytes cannot be read back: damaged
        digest = None
    if digest != payload["sha256"]:
        raise CheckpointError(f"{path}: checksum mismatch: the file was changed or damaged "
                              "after it was saved")
    return {"meta": meta, "state": state}


def load(path: str | os.PathLike, *, encoder: nn.Module | None = None,
         map_location: str | torch.device | None = None) -> nn.Module:
    """Rebuild a model saved with :func:`save` (in eval mode).

    Args:
        path: the checkpoint file.
        encoder: the encoder module, required when the model was compiled with a user
            encoder (its weights come from the file).
        map_location: device for the weights (default: CPU).

    Raises:
        CheckpointError: the file is truncated, corrupt, tampered with, of another
            format, or its weights do not fit the model it describes.
    """
    from taskgraph.hierarchy import load_hierarchy
    from taskgraph.model.config import ModelConfig
    from taskgraph.model.model import TaskGraphModel

    path = os.fspath(path)
    data = _read(path)
    meta = data["meta"]
    try:
        hierarchy = load_hierarchy(meta["hierarchy"])
        config = ModelConfig.from_dict(meta["config"])
    except (HierarchyError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: the saved hierarchy or config is invalid: {err}") from None
    if config.custom_encoder and encoder is None:
        raise CheckpointError(f"{path}: this model was compiled with a custom encoder; "
                              "pass the same module: taskgraph.load(path, encoder=module)")
    if not config.custom_encoder and encoder is not None:
        raise CheckpointError(f"{path}: this model uses the YAML MLP encoder; "
                              "do not pass encoder=")
    model = TaskGraphModel(hierarchy, config, encoder=encoder)
    try:
        model.load_state_dict(data["state"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the model "
                              f"({str(err).splitlines()[0][:300]})") from None
    if map_location is not None:
        model.to(map_location)
    return model.eval()


def read_extra(path: str | os.PathLike) -> dict[str, Any]:
    """The ``extra`` data saved with a checkpoint (verified like :func:`load`)."""
    return _read(os.fspath(path))["meta"].get("extra", {})

