"""Constants and helpers shared by the model-layer tests."""

from __future__ import annotations

from pathlib import Path

HIERARCHIES = Path(__file__).resolve().parents[2] / "hierarchies"

#: keyword arguments that make any compiled model small and fast
SMALL = {"task_dim": 4, "encoder_spec": {"hidden": [16], "dropout": 0.0}}

#: one task of every type, two tasks in some head groups, and a two-output regression
MIXED = {
    "taskgraph": 1,
    "name": "mixed",
    "tasks": {
        "a": {"type": "binary"},
        "b": {"type": "binary", "parents": ["a"]},
        "c": {"type": "multiclass", "classes": 3, "parents": ["a"]},
        "d": {"type": "multiclass", "classes": 3, "parents": ["c"]},
        "e": {"type": "multilabel", "classes": 4, "parents": ["b", "c"]},
        "f": {"type": "regression", "outputs": 2, "parents": ["d"]},
        "g": {"type": "regression", "parents": ["a"], "weight": 3.0},
    },
}


def hierarchy_path(name: str) -> str:
    return str(HIERARCHIES / f"{name}.yaml")


