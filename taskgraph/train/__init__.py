"""Layer 4: training (``fit``), data sets and batches, distributed runs."""

from taskgraph.train.data import TaskDataset, make_loader, split_batch, target_columns
from taskgraph.train.distributed import init_distributed
from taskgraph.train.fit import Callback, EarlyStopping, fit
from taskgraph.train.history import History
from taskgraph.train.state import TrainingState
from taskgraph.train.weighting import PCGrad, Static, Uncertainty, Weighting

__all__ = ["fit", "EarlyStopping", "Callback", "History", "TrainingState", "Weighting",
           "Static", "Uncertainty", "PCGrad", "TaskDataset", "make_loader", "split_batch",
           "target_columns", "init_distributed"]
