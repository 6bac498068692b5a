"""Layer 5: data files and data sets (tabular CSV / NPZ)."""

from taskgraph.datasets.tabular import (
    LABEL_MODES,
    MissingLabelsWarning,
    read_table,
    target_column_names,
)

__all__ = ["read_table", "target_column_names", "MissingLabelsWarning", "LABEL_MODES"]
