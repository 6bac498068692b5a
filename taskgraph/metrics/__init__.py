"""Layer 4: evaluation — per-task, calibration and label-hierarchy metrics.

Example:
    >>> import numpy as np
    >>> from taskgraph.metrics import expected_calibration_error, hierarchical_prf
    >>> round(expected_calibration_error([1, 0], [0.9, 0.2]), 3)
    0.15
    >>> hierarchical_prf(np.array([[1, 1]]), np.array([[0.9, 0.1]]), [(0, 1)])["recall"]
    0.5
    >>> from taskgraph.metrics import aurc, error_detection_auroc
    >>> aurc([0, 1], [0.1, 0.9]), error_detection_auroc([0, 1], [0.1, 0.9])
    (0.25, 1.0)
"""

from taskgraph.metrics.calibration import (calibration_bins, expected_calibration_error,
                                           multiclass_brier_score)
from taskgraph.metrics.evaluate import evaluate
from taskgraph.metrics.hierarchical import (ancestor_closure, auprc_bar, coherence_violation_rate,
                                            coherence_violations, hierarchical_prf)
from taskgraph.metrics.report import PRIMARY, Report, level_rows
from taskgraph.metrics.selective import aurc, error_detection_auroc, risk_coverage

__all__ = [
    "evaluate",
    "Report",
    "PRIMARY",
    "expected_calibration_error",
    "calibration_bins",
    "multiclass_brier_score",
    "risk_coverage",
    "aurc",
    "error_detection_auroc",
    "level_rows",
    "hierarchical_prf",
    "auprc_bar",
    "coherence_violations",
    "coherence_violation_rate",
    "ancestor_closure",
]
