"""Every task type is scored, and each scorer's primary metric, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from taskgraph.metrics import PRIMARY
from taskgraph.metrics.task_scores import SCORERS, TaskScores
from taskgraph.model.batches import GroupPredictions
from taskgraph.model.layout import HeadGroup
from taskgraph.model.task_types import TASK_TYPES


def test_every_task_type_has_a_scorer():
    assert set(SCORERS) == set(TASK_TYPES)
    assert all(isinstance(s, TaskScores) and s.description for s in SCORERS.values())
    assert PRIMARY == {k: s.description for k, s in SCORERS.items()}


def test_primary_metrics():
    assert SCORERS["binary"].primary({"average_precision": None}) is None
    assert SCORERS["multilabel"].primary({"f1_micro": 0.4}) == 0.4
    assert SCORERS["regression"].primary({"r2": -7.0}) == -1.0  # clipped to [-1, 1]
    assert SCORERS["regression"].primary({"r2": 0.3}) == 0.3
    assert SCORERS["regression"].primary({"r2": None}) is None


def test_binary_scores_by_hand():
    group = HeadGroup("binary", 1, ("a", "b"), (0, 1))
    P = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.1], [0.2, 0.3]])
    Y = np.array([[1, 0], [0, 0], [1, -1], [0, np.nan]])[..., None]  # b: one class only
    scores, single = SCORERS["binary"].score(GroupPredictions(group, P, Y), 0.5)
    a, b = scores["a"], scores["b"]
    assert a["n"] == 4 and a["accuracy"] == 1.0 and a["f1"] == 1.0
    assert a["auroc"] == 1.0 and a["average_precision"] == 1.0
    assert a["brier"] == pytest.approx((0.01 + 0.16 + 0.16 + 0.04) / 4)
    assert b["n"] == 2 and b["accuracy"] == 0.5  # 0.7 >= 0.5 is a false positive
    assert b["auroc"] is None and b["average_precision"] is None and single == ["b"]
