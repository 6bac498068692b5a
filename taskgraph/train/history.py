"""`History`: what ``fit`` measured, one record per epoch.

Example:
    >>> h = History()
    >>> h.append({"epoch": 1, "loss": 0.9, "val_loss": 1.0})
    >>> h.append({"epoch": 2, "loss": 0.5, "val_loss": 0.8})
    >>> h["loss"], h.best("val_loss")
    ([0.9, 0.5], 2)
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from taskgraph.atomic import write_text_atomic

__all__ = ["History"]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class History:
    """Per-epoch records: ``epoch``, ``loss``, ``data``, ``kl``, ``per_task``,
    ``val_loss`` and validation metrics, ``lr``, ``time``."""

    def __init__(self, records: list[dict[str, Any]] | None = None) -> None:
        self.records: list[dict[str, Any]] = list(records or [])
        self.stopped_early = False
        self.best_epoch: int | None = None

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[Any]:
        """The values of one field over the epochs (``None`` where absent)."""
        return [r.get(key) for r in self.records]

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def best(self, key: str, mode: str = "min") -> int | None:
        """The epoch number with the best value of ``key``."""
        values = [(r[key], r["epoch"]) for r in self.records
                  if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        if not values:
            return None
        return (min(values) if mode == "min" else max(values))[1]

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": _clean(self.records), "stopped_early": self.stopped_early,
                "best_epoch": self.best_epoch}

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if path is not None:
            write_text_atomic(path, text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "History":
        h = cls(data.get("epochs", []))
        h.stopped_early = bool(data.get("stopped_early", False))
        h.best_epoch = data.get("best_epoch")
        return h

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else {}
        return f"History(epochs={len(self)}, last_loss={last.get('loss')})"
