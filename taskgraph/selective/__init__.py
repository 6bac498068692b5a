"""Selective prediction on hierarchies: say less, or nothing, when unsure — with a
threshold chosen on validation data to meet a target, and a stated guarantee.

- Class paths (multiclass tasks linked by ``class_parents``): climb from the predicted
  class towards the root until the confidence reaches a threshold; reject where even
  the root does not (:mod:`~taskgraph.selective.class_paths`,
  :mod:`~taskgraph.selective.path_outcomes`).
- Label DAGs (binary tasks): coherent label sets at a threshold, uncertain labels
  withheld with their descendants (:mod:`~taskgraph.selective.label_sets`,
  :mod:`~taskgraph.selective.label_outcomes`).
- Risk–coverage curves and their area (:mod:`~taskgraph.selective.sweep`); threshold
  choice with Clopper–Pearson or Hoeffding–Bentkus bounds, Bonferroni or fixed-sequence
  testing (:mod:`~taskgraph.selective.threshold`, :mod:`~taskgraph.selective.bounds`).

Example:
    >>> import torch, taskgraph as tg
    >>> from taskgraph.selective import choose_confidence, selective_predict
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4)
    >>> Y = torch.tensor([[1., 1., 0., 4.]]).repeat(20, 1)           # 20 cats
    >>> choice = choose_confidence(model, [(torch.randn(20, 3), Y)])["species"]
    >>> choice.threshold is None      # an untrained model on 20 rows: no guarantee
    True
    >>> selective_predict(model, torch.randn(2, 3), confidence=0.3)["species"].depth.shape
    torch.Size([2])
"""

from taskgraph.selective.bounds import clopper_pearson_upper, hoeffding_bentkus_upper
from taskgraph.selective.class_paths import (ClassPath, SelectivePrediction, class_paths, climb,
                                             path_confidence, selective_predict)
from taskgraph.selective.label_outcomes import (LabelOutcomes, choose_label_threshold,
                                                label_outcomes, label_set_risk_coverage)
from taskgraph.selective.label_sets import (LabelDag, LabelSetPrediction, label_set_predict,
                                            label_sets)
from taskgraph.selective.path_outcomes import (PathOutcomes, choose_confidence,
                                               hierarchical_risk_coverage, path_outcomes)
from taskgraph.selective.sweep import RiskCoverage, Sweep
from taskgraph.selective.threshold import METHODS, ThresholdChoice, choose_threshold

__all__ = [
    "selective_predict",
    "climb",
    "class_paths",
    "path_confidence",
    "ClassPath",
    "SelectivePrediction",
    "path_outcomes",
    "PathOutcomes",
    "choose_confidence",
    "hierarchical_risk_coverage",
    "label_set_predict",
    "label_sets",
    "LabelDag",
    "LabelSetPrediction",
    "label_outcomes",
    "LabelOutcomes",
    "choose_label_threshold",
    "label_set_risk_coverage",
    "RiskCoverage",
    "Sweep",
    "ThresholdChoice",
    "choose_threshold",
    "METHODS",
    "clopper_pearson_upper",
    "hoeffding_bentkus_upper",
]
