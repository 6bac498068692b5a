"""Layer 4: training (``fit``), data sets and batches, distributed runs."""

from taskgraph.train.data import TaskDataset, make_loader, split_batch, target_columns
from taskgraph.train.distributed import init_distributed
from taskgraph.train.fit import EarlyStopping, fit
from taskgraph.train.history import History

__all__ = ["fit", "EarlyStopping", "History", "TaskDataset", "make_loader", "split_batch",
           "target_columns", "init_distributed"]
