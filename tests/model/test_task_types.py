"""The task-type registry: every type of the vocabulary has one, and each type's parts
(widths, activation, loss, entropy, decision, the target check, label cells, output
columns) against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import taskgraph as tg
from taskgraph.hierarchy import TaskSpec
from taskgraph.model.task_types import TASK_TYPES, TaskType
from taskgraph.vocabulary import TASK_TYPES as NAMES

NAN = float("nan")
BINARY, MULTICLASS = TASK_TYPES["binary"], TASK_TYPES["multiclass"]
MULTILABEL, REGRESSION = TASK_TYPES["multilabel"], TASK_TYPES["regression"]
DIET = TaskSpec("diet", "multiclass", classes=("herbivore", "carnivore", "omnivore"))
TAGS = TaskSpec("tags", "multilabel", classes=("round", "red"))
POS = TaskSpec("pos", "regression", outputs=2)
FLAG = TaskSpec("flag", "binary")


def test_every_vocabulary_type_has_one_registered_type_in_order():
    assert tuple(TASK_TYPES) == NAMES
    for name, kind in TASK_TYPES.items():
        assert isinstance(kind, TaskType) and kind.name == name
        assert type(kind).__dict__.get("head_width") is not None  # each says its width


def test_widths():
    assert [BINARY.head_width(FLAG), MULTICLASS.head_width(DIET), MULTILABEL.head_width(TAGS),
            REGRESSION.head_width(POS)] == [1, 3, 2, 2]
    assert [BINARY.target_width(1), MULTICLASS.target_width(3), MULTILABEL.target_width(2),
            REGRESSION.target_width(2)] == [1, 1, 2, 2]


def test_activations_entropies_and_decisions_by_hand():
    logits = torch.tensor([0.0, math.log(3.0)])  # p = 1/2, 3/4
    p = BINARY.activation(logits)
    assert p.tolist() == pytest.approx([0.5, 0.75])
    h = [-(q * math.log(q) + (1 - q) * math.log(1 - q)) for q in (0.5, 0.75)]
    assert BINARY.entropy(p).tolist() == pytest.approx(h, abs=1e-6)
    assert BINARY.decision(p).tolist() == [0, 1]  # 0.5 is not above the threshold
    q = MULTICLASS.activation(torch.log(torch.tensor([[1.0, 2.0, 1.0]])))  # 1/4, 1/2, 1/4
    assert q.tolist() == [pytest.approx([0.25, 0.5, 0.25])]
    assert MULTICLASS.entropy(q).item() == pytest.approx(1.5 * math.log(2))
    assert MULTICLASS.decision(q).tolist() == [1]
    assert REGRESSION.activation(torch.tensor([2.5])).tolist() == [2.5]
    assert REGRESSION.entropy(torch.ones(1)) is None and REGRESSION.decision(torch.ones(1)) is None
    assert not REGRESSION.probabilistic and all(
        TASK_TYPES[k].probabilistic for k in ("binary", "multiclass", "multilabel"))


def test_losses_by_hand():
    # binary: one task, three examples, the last unlabelled
    loss, labelled = BINARY.loss(torch.tensor([[0.0], [math.log(3.0)], [5.0]]),
                                 torch.tensor([[[1.0]], [[0.0]], [[-1.0]]]))
    assert loss[:, 0].tolist() == pytest.approx([math.log(2), math.log(4), 0.0])
    assert labelled[:, 0].tolist() == [True, True, False]
    # multiclass: logits log(1, 2, 1): -log p(class 0) = log 4
    loss, labelled = MULTICLASS.loss(torch.log(torch.tensor([[[1.0, 2.0, 1.0]]] * 2)),
                                     torch.tensor([[[0.0]], [[NAN]]]))
    assert loss[:, 0].tolist() == pytest.approx([math.log(4), 0.0])
    assert labelled[:, 0].tolist() == [True, False]
    # multilabel: the sum of the BCEs of an example's labelled labels (independent labels)
    loss, labelled = MULTILABEL.loss(torch.zeros(2, 1, 3),
                                     torch.tensor([[[1.0, -1.0, 0.0]], [[-1.0, -1.0, NAN]]]))
    assert loss[:, 0].tolist() == pytest.approx([2 * math.log(2), 0.0])
    assert labelled[:, 0].tolist() == [True, False]
    # regression: half the squared error summed over the known outputs (a unit-variance
    # gaussian NLL without its constant); -1 is a value
    loss, labelled = REGRESSION.loss(torch.tensor([[[1.0, 2.0]], [[0.0, 0.0]]]),
                                     torch.tensor([[[-1.0, NAN]], [[NAN, NAN]]]))
    assert loss[:, 0].tolist() == pytest.approx([2.0, 0.0])
    assert labelled[:, 0].tolist() == [True, False]


@pytest.mark.parametrize("kind, width, values, soft, hard", [
    ("binary", 1, [0, 1, -1, NAN, 0.3, 2, -0.5], [0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 1, 1]),
    ("multilabel", 2, [1, 0.5, math.inf], [0, 0, 1], [0, 1, 1]),
    ("multiclass", 3, [0, 2, -1, NAN, 3, 1.5, -2, math.inf], [0, 0, 0, 0, 1, 1, 1, 1],
     [0, 0, 0, 0, 1, 1, 1, 1]),
    ("regression", 1, [-1, 7.5, NAN, math.inf, -math.inf], [0, 0, 0, 1, 1], [0, 0, 0, 1, 1]),
])
def test_the_target_check_on_torch_and_numpy_alike(kind, width, values, soft, hard):
    typ = TASK_TYPES[kind]
    for as_array in (torch.tensor, np.array):
        y = as_array(values)
        assert [bool(b) for b in typ.bad_targets(y, width)] == [bool(s) for s in soft]
        assert [bool(b) for b in typ.bad_targets(y, width, hard=True)] == [bool(h) for h in hard]


def test_the_one_target_message():
    assert BINARY.expected(1) == "a label in [0, 1], or -1 / NaN for missing"
    assert BINARY.expected(1, hard=True) == "0 or 1, or -1 / NaN for missing"
    assert MULTICLASS.expected(4) == "a class index in 0..3, or -1 / NaN for missing"
    assert REGRESSION.expected(2) == "a finite value, or NaN for missing"


def test_label_cells():
    read = BINARY.word_reader(FLAG)
    assert [read(w) for w in ("Yes", "no", "TRUE", "1", "maybe")] == [1.0, 0.0, 1.0, 1.0, None]
    assert MULTICLASS.word_reader(DIET)("omnivore") == 2.0
    assert MULTICLASS.word_reader(DIET)("Omnivore") is None  # class names are exact
    assert MULTICLASS.cell_problem(DIET, "carnivor", NAN) == (
        "multiclass task 'diet' expects a class name (herbivore, carnivore, omnivore) or an "
        "integer index 0..2, got 'carnivor' (did you mean 'carnivore'?)")
    assert MULTICLASS.cell_problem(DIET, 7, 7.0).endswith("got 7")  # no hint for a number
    assert REGRESSION.cell_problem(POS, "inf", math.inf) == (
        "regression task 'pos' expects a finite number (blank or NaN for missing), got 'inf'")
    assert MULTILABEL.column_label(TAGS, 1) == "class 'red'" and \
        REGRESSION.column_label(POS, 1) == "output 1"
    count = TaskSpec("k", "multiclass", classes=("0", "1", "2"), count_only=True)
    assert MULTICLASS.cell_expectation(count) == "a class index 0..2"


def test_task_views_of_group_blocks():
    assert BINARY.task_view(torch.arange(6.0).view(3, 2), 1).tolist() == [1.0, 3.0, 5.0]
    block = torch.arange(12.0).view(2, 3, 2)  # (B, T_g, 2)
    assert MULTICLASS.task_view(block, 2).tolist() == [[4.0, 5.0], [10.0, 11.0]]
    one = torch.arange(6.0).view(2, 3, 1)
    assert REGRESSION.task_view(one, 1).tolist() == [1.0, 4.0]  # one output: (B,)
    assert MULTILABEL.task_view(one, 1).tolist() == [[1.0], [4.0]]  # one label stays (B, 1)
    assert REGRESSION.task_view(one.numpy(), 1).tolist() == [1.0, 4.0]  # NumPy too


def test_calibration_events():
    # binary / multilabel: every labelled entry is an event
    outcome, conf = MULTILABEL.calibration_events(np.array([[0.9, 0.2], [0.4, 0.7]]),
                                                  np.array([[1.0, -1.0], [0.0, 1.0]]))
    assert outcome.tolist() == [1.0, 0.0, 1.0] and conf.tolist() == [0.9, 0.4, 0.7]
    # multiclass: top-label confidence and whether the top label is right
    outcome, conf = MULTICLASS.calibration_events(
        np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1]]),
        np.array([[0.0], [1.0], [NAN]]))
    assert outcome.tolist() == [1.0, 0.0] and conf.tolist() == [0.6, 0.5]


def test_output_columns_of_each_type():
    model = tg.compile("hierarchies/sentiment.yaml", in_features=3, task_dim=4)
    pred = model.predict(torch.randn(2, 3), samples=2)
    h = model.hierarchy
    aspects = [c for c, _ in TASK_TYPES["multilabel"].output_columns(h["aspects"],
                                                                     pred["aspects"], False)]
    first = h["aspects"].classes[0]
    assert aspects[:2] == [f"aspects.{first}", f"aspects.{first}.prob"]
    assert len(aspects) == 2 * len(h["aspects"].classes)
    cols = dict(TASK_TYPES["multiclass"].output_columns(h["sentiment"], pred["sentiment"], True))
    assert set(cols) == {"sentiment", "sentiment.entropy", "sentiment.mutual_info"} | {
        f"sentiment.{f}.{c}" for f in ("prob", "std") for c in h["sentiment"].classes}
    assert all(v.shape == (2,) for v in cols.values())
