"""taskgraph: hierarchical multi-task learning with stochastic synapses.

A task hierarchy is declared in YAML, validated, loaded into a networkx DAG and
compiled into a PyTorch model whose task embeddings exchange messages along the
hierarchy's edges; every edge is a stochastic synapse.

``import taskgraph`` is light: the hierarchy layer needs no torch, and the torch-based
parts load the first time one of their names is used.

Example:
    >>> import taskgraph as tg
    >>> h = tg.load_hierarchy("taskgraph: 1\\ntasks:\\n  a: {type: binary}\\n")
    >>> h.task_names
    ('a',)
"""

from __future__ import annotations

import importlib
from typing import Any

from taskgraph.errors import (
    ArgumentError,
    CheckpointError,
    CycleError,
    DataError,
    HierarchyError,
    HierarchyNotFoundError,
    SchemaError,
    TaskGraphError,
    YAMLSyntaxError,
)
from taskgraph.hierarchy import Hierarchy, load_hierarchy

__version__ = "0.1.0"

# name -> module that defines it; imported on first use (keeps torch out of the CLI's
# validate / info path and matplotlib out of everything but drawing).
_LAZY: dict[str, str] = {
    "compile": "taskgraph.model.compile",
    "TaskGraphModel": "taskgraph.model.model",
    "TaskOutputs": "taskgraph.model.outputs",
    "fit": "taskgraph.train.fit",
    "EarlyStopping": "taskgraph.train.fit",
    "History": "taskgraph.train.history",
    "TaskDataset": "taskgraph.train.data",
    "make_loader": "taskgraph.train.data",
    "TaskGraphClassifier": "taskgraph.sklearn",
    "evaluate": "taskgraph.metrics",
    "Report": "taskgraph.metrics",
    "draw": "taskgraph.viz",
    "write_report": "taskgraph.viz",
    "save": "taskgraph.checkpoint",
    "load": "taskgraph.checkpoint",
    "reuse_freed_memory": "taskgraph.memory",
    "calibrate": "taskgraph.model.temperature",
    "Ensemble": "taskgraph.model.ensemble",
    "risk_coverage": "taskgraph.metrics",
    "aurc": "taskgraph.metrics",
    "error_detection_auroc": "taskgraph.metrics",
    "selective_predict": "taskgraph.selective",
    "climb": "taskgraph.selective",
    "choose_confidence": "taskgraph.selective",
    "hierarchical_risk_coverage": "taskgraph.selective",
    "label_set_predict": "taskgraph.selective",
    "label_sets": "taskgraph.selective",
    "choose_label_threshold": "taskgraph.selective",
    "label_set_risk_coverage": "taskgraph.selective",
}

__all__ = [
    "Hierarchy",
    "load_hierarchy",
    "TaskGraphError",
    "HierarchyError",
    "HierarchyNotFoundError",
    "YAMLSyntaxError",
    "SchemaError",
    "CycleError",
    "CheckpointError",
    "DataError",
    "ArgumentError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'taskgraph' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
