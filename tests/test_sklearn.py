"""TaskGraphClassifier: scikit-learn's estimator checks, and multi-task use on the
example hierarchies (animals: binary, multiclass with class_parents, regression;
cell_functions: a coherent binary DAG)."""

import pathlib
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import taskgraph as tg
from taskgraph import load_hierarchy
from taskgraph.sklearn import TaskGraphClassifier

HIERARCHIES = pathlib.Path(__file__).resolve().parents[1] / "hierarchies"
ONE_TASK = {"taskgraph": 1, "tasks": {"y": {"type": "multiclass", "classes": 4}}}
SMALL = dict(hidden=(32,), task_dim=16, batch_size=32, lr=0.01)

#: Checks that cannot pass, with the reason. Empty: every generated check passes (the
#: module docstring of taskgraph/sklearn.py says why none is skipped).
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # the models here are tiny: thread start-up would cost more than the arithmetic
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# scikit-learn's own type_of_target casts the infinite y of check_supervised_y_no_nan
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@parametrize_with_checks(
    [TaskGraphClassifier(ONE_TASK, hidden=(16,), task_dim=8, epochs=3, lr=0.01,
                         batch_size=32, random_state=0)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- data with a known rule ------------------------------------------------------------------
def animals_data(n=300, seed=0):
    """species = argmax of the first 4 features; the rest follows from it."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    species = X[:, :4].argmax(axis=1)  # cat, dog, cow, eagle
    diet = np.array([1, 2, 0, 1])[species]  # class_parents: carnivore, omnivore, herbivore
    mammal = (species != 3).astype(float)
    weight = np.array([0.4, 3.0, 6.0, 0.5])[species] + 0.1 * rng.normal(size=n)
    Y = np.column_stack([mammal, diet, species, weight]).astype(float)
    Y[rng.random(n) < 0.2, 1] = -1  # some diets unknown
    Y[rng.random(n) < 0.2, 3] = np.nan  # some weights unknown
    return X, Y


def cells_data(n=300, seed=1):
    """Coherent labels: a function implies its ancestors; glycolysis is rarely labelled."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    b = X > 0
    metabolism, signaling = b[:, 0], b[:, 1]
    lipid = metabolism & b[:, 2]
    carbohydrate = metabolism & b[:, 3]
    Y = np.column_stack([metabolism, signaling, lipid, carbohydrate, carbohydrate & b[:, 4],
                         signaling & b[:, 5], lipid & signaling]).astype(float)
    Y[12:, 4] = -1  # glycolysis: only 12 labelled rows
    return X, Y


@pytest.fixture(scope="module")
def animals():
    X, Y = animals_data()
    est = TaskGraphClassifier(str(HIERARCHIES / "animals.yaml"), epochs=25, random_state=0,
                              **SMALL).fit(X, Y)
    return est, X, Y


@pytest.fixture(scope="module")
def cells():
    X, Y = cells_data()
    est = TaskGraphClassifier(str(HIERARCHIES / "cell_functions.yaml"), epochs=25,
                              random_state=0, **SMALL).fit(X, Y)
    return est, X, Y


# -- multi-task hierarchies ------------------------------------------------------------------
def test_animals_shapes_and_classes(animals):
    est, X, Y = animals
    assert est.n_features_in_ == 6 and est.hierarchy_.task_names == (
        "mammal", "diet", "species", "weight_kg")
    assert [None if c is None else c.tolist() for c in est.classes_] == [
        [0, 1], [0, 1, 2], [0, 1, 2, 3], None]
    pred = est.predict(X[:7])
    assert pred.shape == (7, 4) and pred.dtype == np.float64
    proba = est.predict_proba(X[:7])
    assert [None if p is None else p.shape for p in proba] == [(7, 2), (7, 3), (7, 4), None]
    for p in proba[:3]:
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    assert len(est.history_["epoch"]) == 25


def test_animals_learns_the_rule(animals):
    est, X, Y = animals
    pred = est.predict(X)
    for column in range(3):
        known = Y[:, column] != -1
        assert (pred[known, column] == Y[known, column]).mean() > 0.85, column
    # decoded classes follow class_parents: the predicted diet is the species' diet
    assert (np.array([1, 2, 0, 1])[pred[:, 2].astype(int)] == pred[:, 1]).all()
    assert est.score(X, Y) > 0.85
    known = ~np.isnan(Y[:, 3])
    assert np.corrcoef(pred[known, 3], Y[known, 3])[0, 1] > 0.8


def test_score_skips_missing_labels_and_regression(animals):
    est, X, _ = animals
    Y = est.predict(X)
    assert est.score(X, Y) == 1.0
    Y[:, 3] += 100  # regression is not scored
    Y[::2, 1] = -1  # missing labels are not scored
    assert est.score(X, Y) == 1.0
    Y[:, 0] = 1 - Y[:, 0]
    assert est.score(X, Y) == pytest.approx(2 / 3)


def test_predict_uncertainty(animals):
    est, X, _ = animals
    unc = est.predict_uncertainty(X[:5], samples=4)
    assert sorted(unc) == ["diet", "mammal", "species", "weight_kg"]
    assert sorted(unc["diet"]) == ["entropy", "mutual_info"]
    assert unc["diet"]["entropy"].shape == unc["diet"]["mutual_info"].shape == (5,)
    assert list(unc["weight_kg"]) == ["variance"] and (unc["weight_kg"]["variance"] > 0).all()
    assert (unc["species"]["mutual_info"] > 0).all()  # the synapses are stochastic
    assert (unc["species"]["entropy"] >= unc["species"]["mutual_info"]).all()


def test_cells_learns_coherently_with_a_rarely_labelled_task(cells):
    est, X, Y = cells
    pred = est.predict(X)
    assert pred.shape == (300, 7) and pred.dtype == np.int64
    assert [p.shape for p in est.predict_proba(X[:3])] == [(3, 2)] * 7
    assert est.score(X, Y) > 0.8
    names = est.hierarchy_.task_names
    for parent, child in est.hierarchy_.edge_list():  # coherent: a child implies its parent
        assert (pred[:, names.index(child)] <= pred[:, names.index(parent)]).all()


def test_pickle_gives_identical_predictions(cells):
    est, X, _ = cells
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
    for a, b in zip(again.predict_proba(X), est.predict_proba(X)):
        np.testing.assert_array_equal(a, b)
    assert again.hierarchy_ == est.hierarchy_


def test_pickle_and_clone_with_a_hierarchy_object():
    h = load_hierarchy(HIERARCHIES / "cell_functions.yaml")
    est = TaskGraphClassifier(h, epochs=2, random_state=0, **SMALL)
    twin = clone(est)
    assert twin.hierarchy is h and twin.get_params() == est.get_params()
    X, Y = cells_data(60)
    est.fit(X, Y)
    again = pickle.loads(pickle.dumps(est))
    assert isinstance(again.hierarchy, type(h)) and again.hierarchy == h
    np.testing.assert_array_equal(again.predict_proba(X)[3], est.predict_proba(X)[3])


# -- the estimator protocol ------------------------------------------------------------------
def test_params_round_trip():
    est = TaskGraphClassifier(ONE_TASK, epochs=7, hidden=[8, 4], random_state=3)
    params = est.get_params()
    assert params["hierarchy"] is ONE_TASK and params["epochs"] == 7
    twin = clone(est)
    assert twin.get_params() == params and twin.hierarchy is not ONE_TASK
    assert est.set_params(epochs=2, lr=0.1) is est and (est.epochs, est.lr) == (2, 0.1)
    assert TaskGraphClassifier(**params).get_params() == params
    assert repr(TaskGraphClassifier(ONE_TASK, epochs=2)).startswith("TaskGraphClassifier(")


def test_random_state_reproducible_and_global_rngs_untouched():
    X, Y = cells_data(80)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    a = TaskGraphClassifier(HIERARCHIES / "cell_functions.yaml", epochs=3, random_state=5,
                            **SMALL).fit(X, Y)
    b = clone(a).fit(X, Y)
    np.testing.assert_array_equal(a.predict_proba(X)[0], b.predict_proba(X)[0])
    assert (np.random.get_state()[1] == np_state).all()
    assert torch.equal(torch.get_rng_state(), torch_state)
    c = clone(a).set_params(random_state=6).fit(X, Y)
    assert not np.array_equal(a.predict_proba(X)[0], c.predict_proba(X)[0])
    sampled = a.set_params(samples=8)
    np.testing.assert_array_equal(sampled.predict_proba(X)[6], sampled.predict_proba(X)[6])


def test_one_task_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = np.where(X[:, 0] > 0, 1, -1)  # -1 is a label in a one-task hierarchy
    binary = {"taskgraph": 1, "tasks": {"y": {"type": "binary"}}}
    est = TaskGraphClassifier(binary, epochs=15, random_state=0, **SMALL).fit(X, y)
    assert est.classes_.tolist() == [-1, 1] and est.score(X, y) > 0.9
    y_missing = y.astype(float)
    y_missing[:30] = np.nan  # NaN is a missing label
    est.fit(X, y_missing)
    assert est.classes_.tolist() == [-1, 1] and est.predict(X).shape == (120,)
    assert est.score(X, y_missing) > 0.9
    named = {"taskgraph": 1, "tasks": {"pet": {"type": "multiclass",
                                                "classes": ["dog", "cat", "cow"]}}}
    names = np.array(["dog", "cat"])[(X[:, 1] > 0).astype(int)]
    est = TaskGraphClassifier(named, epochs=5, random_state=0, **SMALL).fit(X, names)
    assert est.classes_.tolist() == ["dog", "cat", "cow"]  # the task's classes, in order
    assert est.predict_proba(X).shape == (120, 3)


def test_dataframe_feature_names():
    pd = pytest.importorskip("pandas")
    X, Y = cells_data(40)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    est = TaskGraphClassifier(HIERARCHIES / "cell_functions.yaml", epochs=1, **SMALL)
    assert est.fit(frame, Y).feature_names_in_.tolist() == list(frame.columns)
    frame.iloc[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN at row 3, column 2 \('f2'\)"):
        est.predict(frame)


@pytest.mark.parametrize("params, message", [
    ({"epochs": 0}, "TaskGraphClassifier: epochs: expected a positive integer, got 0"),
    ({"lr": -1.0}, "TaskGraphClassifier: lr: expected a positive number, got -1.0"),
    ({"weighting": "equal"}, "weighting: expected one of 'static', 'uncertainty', 'pcgrad'"),
    ({"hidden": [8, 0]}, r"hidden: expected a list of positive integers or None, got \[8, 0\]"),
])
def test_parameter_errors(params, message):
    X, Y = cells_data(20)
    est = TaskGraphClassifier(HIERARCHIES / "cell_functions.yaml", **params)
    with pytest.raises(tg.ArgumentError, match=message):  # a ValueError, as sklearn's
        est.fit(X, Y)


def test_data_errors():
    X, Y = animals_data(30)
    est = TaskGraphClassifier(HIERARCHIES / "animals.yaml", epochs=1, **SMALL)
    bad = Y.copy()
    bad[4, 2] = 7
    with pytest.raises(tg.DataError, match=r"row 4 \(0-based\): multiclass task 'species' "
                       r"expects a class name \(cat, dog, cow, eagle\) or an integer index "
                       r"0..3, got 7.0"):  # the labels' one check (taskgraph.model.labels)
        est.fit(X, bad)
    with pytest.raises(ValueError, match=r"expected shape \(30, 4\)"):
        est.fit(X, Y[:, :3])
    X[2, 1] = np.inf
    with pytest.raises(ValueError, match="inf .*at row 2, column 1"):
        est.fit(X, Y)
    with pytest.raises(ValueError, match="no labels"):
        est.fit(np.ones((5, 6)), np.full((5, 4), np.nan))


# -- predict answers in the labels y was given in ----------------------------------------
@pytest.mark.parametrize("labels", [np.array(["ham", "spam", "eggs"]), np.array([30, 10, 20])])
def test_one_task_predict_returns_the_fitted_labels(labels):
    X = np.random.default_rng(2).normal(size=(150, 3))
    y = labels[X[:, :3].argmax(axis=1)]  # an easy rule: the largest of three features
    task = {"taskgraph": 1, "tasks": {"y": {"type": "multiclass", "classes": 3}}}
    est = TaskGraphClassifier(task, epochs=20, random_state=0, **SMALL).fit(X, y)
    assert est.classes_.tolist() == sorted(labels.tolist())
    pred = est.predict(X)
    assert pred.dtype.kind == labels.dtype.kind and set(pred.tolist()) <= set(labels.tolist())
    assert (pred == y).mean() > 0.9  # the labels are not permuted
    np.testing.assert_array_equal(pred, np.sort(labels)[est.predict_proba(X).argmax(axis=1)])


def test_multi_task_predict_returns_class_names():
    X, Y = animals_data(120)
    numeric = TaskGraphClassifier(HIERARCHIES / "animals.yaml", epochs=6, random_state=0,
                                  **SMALL).fit(X, Y)
    diets = ["herbivore", "carnivore", "omnivore"]  # the YAML's class order
    species = ["cat", "dog", "cow", "eagle"]
    named = np.empty(Y.shape, dtype=object)
    named[:, 0] = np.where(Y[:, 0] == 1, "yes", "no")
    named[:, 1] = [None if d == -1 else diets[int(d)] for d in Y[:, 1]]
    named[:, 2] = [species[int(s)] for s in Y[:, 2]]
    named[:, 3] = Y[:, 3]
    est = clone(numeric).fit(X, named)
    assert [c.tolist() for c in est.classes_[:3]] == [["no", "yes"], diets, species]
    assert est.classes_[3] is None
    pred, codes = est.predict(X[:40]), numeric.predict(X[:40])
    # the same targets after encoding, the same seed: the numeric fit's codes, named
    assert pred.dtype == object and pred.shape == (40, 4)
    assert pred[:, 0].tolist() == [["no", "yes"][int(c)] for c in codes[:, 0]]
    assert pred[:, 1].tolist() == [diets[int(c)] if c >= 0 else None for c in codes[:, 1]]
    assert pred[:, 2].tolist() == [species[int(c)] for c in codes[:, 2]]
    np.testing.assert_array_equal(pred[:, 3].astype(float), codes[:, 3])
    assert est.score(X, named) == numeric.score(X, Y)
    assert est.score(X[:40], pred) == 1.0  # predictions read back as labels


def test_binary_words_keep_their_spelling():
    X = np.random.default_rng(3).normal(size=(40, 6))
    _, Y = cells_data(40)
    y = Y.astype(object)
    y[:, 0] = np.where(Y[:, 0] == 1, "True", None)  # only one side given
    est = TaskGraphClassifier(HIERARCHIES / "cell_functions.yaml", epochs=1, **SMALL)
    assert est.fit(X, y).classes_[0].tolist() == ["False", "True"]
    assert set(est.predict(X)[:, 0].tolist()) <= {"False", "True"}
    assert [c.tolist() for c in est.classes_[1:]] == [[0, 1]] * 6


def test_same_random_state_same_model_whatever_the_global_seed():
    # animals: dropout, gaussian and bernoulli synapses: every random draw must be seeded
    X, Y = animals_data(60)
    est = TaskGraphClassifier(HIERARCHIES / "animals.yaml", epochs=2, random_state=7, **SMALL)
    torch.manual_seed(1)
    a = clone(est).fit(X, Y)
    torch.manual_seed(2)
    state = torch.get_rng_state()
    b = clone(est).fit(X, Y)
    assert torch.equal(torch.get_rng_state(), state)  # fork_rng: the global state is kept
    for (name, p), q in zip(a.model_.state_dict().items(), b.model_.state_dict().values()):
        assert torch.equal(p, q), name
    for p, q in zip(a.predict_proba(X)[:3], b.predict_proba(X)[:3]):
        np.testing.assert_array_equal(p, q)
    c = clone(est).set_params(random_state=8).fit(X, Y)
    assert not np.array_equal(a.predict_proba(X)[2], c.predict_proba(X)[2])
