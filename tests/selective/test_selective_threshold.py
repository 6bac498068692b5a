"""Choosing the confidence threshold on validation rows: the Clopper–Pearson bound and
the choice computed here by hand with scipy, Bonferroni and fixed-sequence testing, no
threshold when the data cannot support the target, and the guarantee itself checked by
simulation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import beta, binom

import taskgraph as tg
from taskgraph.selective import (PathOutcomes, choose_confidence, clopper_pearson_upper,
                                 hoeffding_bentkus_upper)


def hand_made_rows() -> PathOutcomes:
    """A two-level path on 240 validation rows.

    - 120 rows at (0.95, 0.85): 2 wrong at the leaf (right at the root).
    - 40 rows at (0.85, 0.75): all wrong at the root.
    - 80 rows at (0.75, 0.55): right at the root, 8 wrong at the leaf.
    """
    conf, wrong = [], []
    for i in range(120):
        conf.append((.95, .85))
        wrong.append((False, i < 2))
    for _ in range(40):
        conf.append((.85, .75))
        wrong.append((True, True))
    for i in range(80):
        conf.append((.75, .55))
        wrong.append((False, i < 8))
    return PathOutcomes("leaf", confidence=np.float32(conf), wrong=np.array(wrong))


def counts_by_hand(rows: PathOutcomes, c: float) -> tuple[int, int]:
    """(accepted, errors) at threshold c, row by row."""
    accepted = errors = 0
    for kappa, wrong in zip(rows.confidence, rows.wrong):
        depth = sum(1 for k in kappa if k >= np.float32(c))
        if depth:
            accepted += 1
            errors += int(wrong[depth - 1])
    return accepted, errors


def cp(k: int, m: int, level: float) -> float:
    return 1.0 if k >= m else float(beta.ppf(1 - level, k + 1, m - k))


GRID = [0.9, 0.8, 0.7, 0.6, 0.5]


def test_bonferroni_choice_by_hand():
    rows = hand_made_rows()
    choice = rows.choose(target_accuracy=0.9, delta=0.05, grid=GRID)
    level = 0.05 / len(GRID)
    bounds = [cp(*reversed(counts_by_hand(rows, c)), level) for c in GRID]
    # c = .9: the first 120 rows at depth 1, none wrong; .8: they reach depth 2 (2 wrong),
    # the next 40 depth 1 (all wrong); .7 and .6: the last 80 at depth 1 (right), the 40
    # at depth 2 (wrong); .5: the last 80 at depth 2 (8 wrong)
    assert [counts_by_hand(rows, c) for c in GRID] == [(120, 0), (160, 42), (240, 42),
                                                        (240, 42), (240, 50)]
    np.testing.assert_allclose(choice.bounds, bounds, rtol=1e-10)
    passing = [c for c, b in zip(GRID, bounds) if b <= 0.1]
    assert passing == [0.9]  # 42/240 = 0.175 > 0.1 everywhere below
    assert choice.threshold == 0.9 and choice.accepted == 120 and choice.risk == 0.0
    assert choice.bound == pytest.approx(1 - level ** (1 / 120))
    assert choice.level == pytest.approx(0.01) and choice.method == "bonferroni"
    assert choice.coverage == pytest.approx(0.5) and choice.n == 240


def test_a_lower_target_reaches_further_down_with_bonferroni_not_with_fixed_sequence():
    rows = hand_made_rows()
    target = 0.75  # alpha = 0.25: .8 fails (42/160), .7 and .6 pass (42/240)
    bonf = rows.choose(target_accuracy=target, delta=0.05, grid=GRID)
    level = 0.05 / len(GRID)
    assert cp(42, 240, level) <= 0.25 < cp(42, 160, level)
    assert cp(50, 240, level) > 0.25  # .5 fails: the last passing threshold is .6
    assert bonf.threshold == 0.6 and bonf.accepted == 240
    assert bonf.risk == pytest.approx(42 / 240)
    assert bonf.bound == pytest.approx(cp(42, 240, level))
    fixed = rows.choose(target_accuracy=target, delta=0.05, grid=GRID, method="fixed_sequence")
    assert fixed.level == 0.05
    assert fixed.threshold == 0.9  # it stops at .8, the first to fail
    assert fixed.bound == pytest.approx(cp(0, 120, 0.05))
    assert "fixed sequence over 5 thresholds" in fixed.guarantee


def test_no_threshold_when_the_rows_cannot_support_the_target():
    rows = hand_made_rows()
    choice = rows.choose(target_accuracy=0.99, delta=0.05, grid=GRID)
    # even 120 right of 120 only give 1 - 0.01 ** (1/120) = 0.0377 > 0.01
    assert choice.threshold is None and not choice.guaranteed
    assert choice.bound == pytest.approx(1 - 0.01 ** (1 / 120))
    assert "no threshold of the 5 candidates" in choice.guarantee
    assert str(choice).startswith("no threshold")


def test_the_guarantee_text_says_what_is_guaranteed():
    choice = hand_made_rows().choose(target_accuracy=0.9, delta=0.05, grid=GRID)
    text = choice.guarantee
    for words in ("with probability >= 0.95", "240 validation rows",
                  "error rate of the accepted climbed predictions of leaf",
                  "threshold 0.9 is <= 0.1", "Clopper-Pearson", "bonferroni over 5",
                  "i.i.d."):
        assert words in text, words


def test_the_default_grid_is_the_hundredths():
    choice = hand_made_rows().choose(target_accuracy=0.9)
    np.testing.assert_allclose(choice.candidates, np.arange(100, 0, -1) / 100)
    assert choice.level == pytest.approx(0.05 / 100)
    # 0.86..0.95 accept only the 120 first rows, all right at the root: 0.86 is the lowest
    assert choice.threshold == 0.86


def test_clopper_pearson_and_hoeffding_bentkus_against_their_definitions():
    for k, m, level in [(0, 10, 0.05), (3, 50, 0.01), (49, 50, 0.1), (7, 1000, 0.001)]:
        u = float(clopper_pearson_upper(k, m, level))
        assert u == pytest.approx(float(beta.ppf(1 - level, k + 1, m - k)), rel=1e-12)
        assert binom.cdf(k, m, u) == pytest.approx(level, rel=1e-6)  # the duality
    assert float(clopper_pearson_upper(5, 5, 0.05)) == 1.0
    for mean, m, level in [(0.0, 50, 0.05), (0.1, 200, 0.01), (0.3, 40, 0.1)]:
        u = float(hoeffding_bentkus_upper(mean, m, level))

        def p(a):  # the Hoeffding-Bentkus p-value, written out
            q = min(mean, a)
            h = (q * np.log(q / a) if q > 0 else 0.0) + (1 - q) * np.log((1 - q) / (1 - a))
            return min(np.exp(-m * h), np.e * binom.cdf(np.ceil(m * mean - 1e-9), m, a))

        assert p(u) <= level + 1e-12 and p(u - 1e-6) > level
        assert u >= float(clopper_pearson_upper(round(mean * m), m, level)) - 1e-9
    assert float(hoeffding_bentkus_upper(0.5, 0, 0.05)) == 1.0


@pytest.mark.parametrize("method", ["bonferroni", "fixed_sequence"])
def test_the_guarantee_holds_in_simulation(method):
    """Rows whose root is wrong with probability 1 - kappa (one level, calibrated), kappa
    ~ U(0.5, 1): the true risk at c >= 0.5 is the mean of 1 - kappa over kappa >= c,
    (1 - c) / 2. The chosen threshold's true risk may exceed alpha in at most ~delta of
    the validation draws."""
    rng = np.random.default_rng(0)
    alpha, delta, trials, exceed, chosen = 0.2, 0.2, 300, 0, 0
    grid = np.arange(98, 49, -2) / 100  # 0.98 ... 0.50; the risk crosses alpha at 0.6
    for _ in range(trials):
        kappa = rng.uniform(0.5, 1.0, 400).astype(np.float32)
        wrong = rng.uniform(size=400) > kappa
        rows = PathOutcomes("p", confidence=kappa[:, None], wrong=wrong[:, None])
        choice = rows.choose(target_accuracy=1 - alpha, delta=delta, grid=grid, method=method)
        if choice.threshold is not None:
            chosen += 1
            exceed += (1 - choice.threshold) / 2 > alpha
    assert chosen >= 0.9 * trials
    # at most delta, with 3 binomial standard deviations of slack
    assert exceed / trials <= delta + 3 * np.sqrt(delta * (1 - delta) / trials)


@pytest.mark.parametrize("kwargs, words", [
    ({"target_accuracy": 1.0}, ["target_accuracy", "(0, 1)", "1.0"]),
    ({"target_accuracy": 0}, ["target_accuracy", "0"]),
    ({"delta": float("nan")}, ["delta", "nan"]),
    ({"grid": 0}, ["grid", "0"]),
    ({"grid": [0.5, 1.2]}, ["grid", "(0, 1]", "1.2"]),
    ({"grid": []}, ["grid"]),
    ({"method": "holm"}, ["method", "'bonferroni'", "'holm'"]),
])
def test_bad_choice_arguments_are_argument_errors(kwargs, words):
    model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4)
    loader = [(torch.randn(4, 3), torch.tensor([[1, 1, 0, 4.]] * 4))]
    with pytest.raises(tg.ArgumentError) as err:
        choose_confidence(model, loader, **kwargs)
    assert str(err.value).startswith("choose_confidence: ")
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_choose_confidence_on_a_model_matches_the_outcomes():
    """The model-level call is the outcomes' choice (same rows, same bound)."""
    from taskgraph.selective import path_outcomes

    torch.manual_seed(0)
    model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4)
    Y = torch.tensor([[1, 1, 0, 4.], [1, 0, 2, 600], [0, 1, 3, 5], [1, 2, 1, 20]] * 10)
    loader = [(torch.randn(40, 3), Y)]
    choice = choose_confidence(model, loader, target_accuracy=0.05, grid=[0.9, 0.5, 0.3])
    rows = path_outcomes(model, loader)["species"]
    level = 0.05 / 3
    bounds = [cp(counts_by_hand(rows, c)[1], counts_by_hand(rows, c)[0], level)
              for c in (0.9, 0.5, 0.3)]
    np.testing.assert_allclose(choice["species"].bounds, bounds, rtol=1e-10)
