"""Layer 3: ``compile`` a hierarchy into a :class:`TaskGraphModel`; loss and predict."""

from taskgraph.model.compile import compile
from taskgraph.model.config import ModelConfig
from taskgraph.model.model import TaskGraphModel
from taskgraph.model.outputs import TaskOutputs

__all__ = ["compile", "ModelConfig", "TaskGraphModel", "TaskOutputs"]
