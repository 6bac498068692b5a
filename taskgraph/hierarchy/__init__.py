"""Layer 1: task specs, strict YAML loading and validation, the networkx graph.

Nothing here imports torch, so ``taskgraph validate`` stays fast.
"""

from taskgraph.hierarchy.hierarchy import Hierarchy, load_hierarchy
from taskgraph.hierarchy.specs import (
    DIRECTIONS,
    SYNAPSE_KINDS,
    TASK_TYPES,
    EdgeSpec,
    EncoderSpec,
    ModelSpec,
    StochasticSpec,
    SynapseSpec,
    TaskSpec,
)

__all__ = [
    "Hierarchy",
    "load_hierarchy",
    "TaskSpec",
    "SynapseSpec",
    "EncoderSpec",
    "StochasticSpec",
    "ModelSpec",
    "EdgeSpec",
    "TASK_TYPES",
    "SYNAPSE_KINDS",
    "DIRECTIONS",
]
