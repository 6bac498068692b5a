"""model.loss: masking, per-task parts and total by hand, target forms, errors, and the KL."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

import taskgraph as tg
from model_test_utils import MIXED

NAN = float("nan")


# -- references ---------------------------------------------------------------------------
def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _bce(logit: float, y: float) -> float:
    p = _sigmoid(logit)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def _ce(row: list[float], label: int) -> float:
    m = max(row)
    return -(row[label] - m - math.log(sum(math.exp(v - m) for v in row)))


def _missing(v: float) -> bool:
    return math.isnan(v) or v == -1


def _reference(hierarchy, out, targets, *, sums=False):
    """Per-task mean negative log-likelihoods over labelled examples, by explicit loops
    (None: no labels); with ``sums``, ``{task: (sum over examples, labelled count)}``.
    Multilabel: the sum of its labels' BCEs; regression: half the summed squared error."""
    per_task, totals = {}, {}
    for name in hierarchy.task_names:
        spec = hierarchy[name]
        if name not in targets:
            per_task[name] = None
            totals[name] = (0.0, 0)
            continue
        logits = out[name].detach().double().tolist()
        t = torch.as_tensor(targets[name], dtype=torch.float64).tolist()
        losses = []
        for b, y in enumerate(t):
            if spec.type == "binary":
                if not _missing(y):
                    losses.append(_bce(logits[b], y))
            elif spec.type == "multiclass":
                if not _missing(y):
                    losses.append(_ce(logits[b], int(y)))
            elif spec.type == "multilabel":
                terms = [_bce(logits[b][k], yk) for k, yk in enumerate(y) if not _missing(yk)]
                if terms:
                    losses.append(sum(terms))
            else:  # regression
                ys = y if isinstance(y, list) else [y]
                ps = logits[b] if isinstance(logits[b], list) else [logits[b]]
                terms = [(p - v) ** 2 for p, v in zip(ps, ys) if not math.isnan(v)]
                if terms:
                    losses.append(0.5 * sum(terms))
        per_task[name] = sum(losses) / len(losses) if losses else None
        totals[name] = (sum(losses), len(losses))
    return totals if sums else per_task


def _elbo_data(hierarchy, out, targets, weights=None):
    """The data term Σ_b Σ_t w_t ℓ_bt / (B · W), W the sum of all task weights."""
    totals = _reference(hierarchy, out, targets, sums=True)
    w = weights or {n: hierarchy[n].weight for n in hierarchy.task_names}
    B = next(iter(out.values())).shape[0]
    return sum(w[n] * totals[n][0] for n in hierarchy.task_names) / (B * sum(w.values()))


ANIMAL_TARGETS = {
    "mammal": torch.tensor([1.0, 0.0, -1.0, 1.0, NAN, 0.0]),
    "diet": torch.tensor([0, 2, -1, 1, 1, -1]),
    "species": torch.tensor([3, -1, -1, 0, 2, 1]),
    "weight_kg": torch.tensor([1.5, NAN, NAN, -2.0, 0.25, NAN]),
}


@pytest.fixture
def animals(small_model):
    model = small_model("animals", rounds=1).eval()
    torch.manual_seed(5)
    return model, torch.randn(6, 5)


# -- the data term ------------------------------------------------------------------------
def test_per_task_losses_and_total_by_hand(animals):
    model, x = animals
    out = model(x)
    res = model.loss(out, ANIMAL_TARGETS)
    ref = _reference(model.hierarchy, out, ANIMAL_TARGETS)
    assert res.names == model.hierarchy.task_names
    for t, name in enumerate(res.names):
        assert res.per_task[t].item() == pytest.approx(ref[name], rel=1e-5)
    assert res.labelled.tolist() == [4, 4, 4, 3]
    # species has weight 2.0 in the YAML
    assert model.hierarchy["species"].weight == 2.0
    # Σ over labelled examples (n_t · mean), weighted, over B = 6 examples and W = 5
    expected = (4 * ref["mammal"] + 4 * ref["diet"] + 2 * 4 * ref["species"]
                + 3 * ref["weight_kg"]) / (6 * 5)
    assert res.data.item() == pytest.approx(expected, rel=1e-5)
    assert res.total.item() == pytest.approx(expected, rel=1e-5)  # no dataset_size: no KL
    assert res.item() == pytest.approx(expected, rel=1e-5)
    assert res.per_task_dict() == pytest.approx(ref, rel=1e-5)


def test_unlabelled_and_absent_tasks_add_nothing(animals):
    """The ELBO sums over the labels there are: a task without labels adds 0 to the data
    term, and the normalization W (all task weights) stays what it is."""
    model, x = animals
    out = model(x)
    targets = {"diet": torch.tensor([0, 1, 2, -1, -1, 0]),
               "species": torch.full((6,), -1),  # present but all missing
               "weight_kg": torch.tensor([NAN, 1.0, NAN, NAN, NAN, 3.0])}
    res = model.loss(out, targets)  # mammal absent
    ref = _reference(model.hierarchy, out, targets)
    assert ref["species"] is None and ref["mammal"] is None
    assert res.data.item() == pytest.approx((4 * ref["diet"] + 2 * ref["weight_kg"]) / (6 * 5),
                                            rel=1e-5)
    assert sorted(res.per_task_dict()) == ["diet", "weight_kg"]
    assert res.labelled.tolist() == [0, 4, 0, 2]
    assert res.per_task[0].item() == 0.0 and res.per_task[2].item() == 0.0


def test_no_labels_at_all_gives_zero_data_loss(animals):
    model, x = animals
    res = model.loss(model(x), {"mammal": torch.full((6,), -1.0)})
    assert res.data.item() == 0.0 and torch.isfinite(res.total)


def test_mixed_task_types_by_hand(small_model):
    model = small_model(copy.deepcopy(MIXED), rounds=1).eval()
    x = torch.randn(5, 5)
    out = model(x)
    targets = {
        "a": torch.tensor([1.0, 0.0, -1.0, 1.0, 0.0]),
        "b": torch.tensor([NAN, 1.0, 1.0, 0.0, -1.0]),
        "c": torch.tensor([2, 0, -1, 1, 1]),
        "d": torch.tensor([-1, -1, 2, 0, NAN]),
        "e": torch.tensor([[1.0, 0.0, -1.0, 1.0], [-1.0, -1.0, -1.0, -1.0],
                           [0.0, 0.0, 0.0, 1.0], [1.0, NAN, 1.0, 1.0],
                           [0.0, 1.0, 0.0, 0.0]]),
        "g": torch.tensor([0.5, NAN, -1.0, 2.0, NAN]),
    }
    res = model.loss(out, targets)
    ref = _reference(model.hierarchy, out, targets)
    for t, name in enumerate(res.names):
        if ref[name] is None:
            assert res.labelled[t].item() == 0
        else:
            assert res.per_task[t].item() == pytest.approx(ref[name], rel=1e-5), name
    assert res.labelled.tolist() == [4, 3, 4, 2, 4, 0, 3]
    assert res.data.item() == pytest.approx(_elbo_data(model.hierarchy, out, targets), rel=1e-5)


def test_multi_output_regression_is_half_the_summed_squared_error(small_model):
    """A k-output regression task's loss is a unit-variance gaussian NLL: half the sum of
    squared errors over its labelled outputs, averaged over labelled examples."""
    model = small_model({"taskgraph": 1, "tasks": {"r": {"type": "regression", "outputs": 3}}})
    model.eval()
    out = model(torch.randn(4, 5))
    y = torch.tensor([[1.0, 2.0, 3.0], [0.0, NAN, 1.0], [NAN, NAN, NAN], [-1.0, 0.5, 2.0]])
    res = model.loss(out, {"r": y})
    ref = _reference(model.hierarchy, out, {"r": y})["r"]
    assert res.labelled.tolist() == [3]
    assert res.per_task[0].item() == pytest.approx(ref, rel=1e-5)


def test_task_weights_argument_replaces_yaml_weights(animals):
    model, x = animals
    out = model(x)
    ref = _reference(model.hierarchy, out, ANIMAL_TARGETS)
    w = torch.tensor([0.5, 1.0, 0.0, 3.0])
    res = model.loss(out, ANIMAL_TARGETS, task_weights=w)
    expected = (0.5 * 4 * ref["mammal"] + 4 * ref["diet"] + 3.0 * 3 * ref["weight_kg"]) \
        / (6 * 4.5)
    assert res.data.item() == pytest.approx(expected, rel=1e-5)


# -- target forms -------------------------------------------------------------------------
def test_target_matrix_equals_mapping(animals):
    model, x = animals
    out = model(x)
    matrix = torch.stack([ANIMAL_TARGETS[n].float() for n in model.hierarchy.task_names], 1)
    a = model.loss(out, ANIMAL_TARGETS)
    b = model.loss(out, matrix)  # (B, T)
    torch.testing.assert_close(a.total, b.total)
    torch.testing.assert_close(a.per_task, b.per_task)
    assert torch.equal(a.labelled, b.labelled)
    c = model.loss(out, matrix.numpy())  # array-like works too
    torch.testing.assert_close(a.total, c.total)


def test_target_matrix_with_multilabel_columns(small_model):
    model = small_model("sentiment", rounds=1).eval()
    out = model(torch.randn(4, 5))
    mapping = {"sentiment": torch.tensor([0, 2, -1, 1]),
               "emotion": torch.tensor([3, -1, 0, 5]),
               "aspects": torch.tensor([[1.0, 0, 0, 1, -1], [0, 0, 0, 0, 0],
                                        [1, 1, 1, 1, 1], [-1, -1, 0, 1, 0]])}
    matrix = torch.cat([mapping["sentiment"][:, None].float(),
                        mapping["emotion"][:, None].float(), mapping["aspects"]], 1)  # (4, 7)
    torch.testing.assert_close(model.loss(out, mapping).total, model.loss(out, matrix).total)
    with pytest.raises(tg.DataError, match="7"):
        model.loss(out, matrix[:, :3])  # one column per task is not enough here


def test_missing_labels_give_finite_gradients(animals):
    model, x = animals
    model.train()
    res = model.loss(model(x), ANIMAL_TARGETS, dataset_size=100)
    res.backward()
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), name


def test_example_without_labels_does_not_change_the_loss(animals):
    model, x = animals
    targets = copy.deepcopy(ANIMAL_TARGETS)
    # example 2 has no label for any task
    assert all(_missing(float(targets[n][2])) for n in targets)
    base = model.loss(model(x), targets)
    for new_row in (torch.full((5,), 100.0), -x[2], torch.full((5,), NAN)):
        x2 = x.clone()
        x2[2] = new_row
        res = model.loss(model(x2), targets)
        assert torch.equal(res.total, base.total)
        assert torch.equal(res.per_task, base.per_task)
    # and it gets no gradient
    xg = x.clone().requires_grad_(True)
    model.loss(model(xg), targets).total.backward()
    assert torch.count_nonzero(xg.grad[2]) == 0
    assert xg.grad[0].abs().sum() > 0


# -- errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("targets, words", [
    ({"diet": torch.tensor([0, 3, 1, 0, 0, 0])}, ["diet", "3"]),
    ({"diet": torch.tensor([0, 1.5, 1, 0, 0, 0])}, ["diet", "1.5"]),
    ({"diet": torch.tensor([0, -2, 1, 0, 0, 0])}, ["diet", "-2"]),
    ({"mammal": torch.tensor([0.0, 1.0, 2.0, 0.0, 1.0, 1.0])}, ["mammal", "2"]),
    ({"weight_kg": torch.tensor([0.0, float("inf"), 1.0, 0, 0, 0])}, ["weight_kg", "inf"]),
    ({"weight_kg": torch.tensor([0.0, -float("inf"), 1.0, 0, 0, 0])}, ["weight_kg", "inf"]),
    ({"mammal": torch.zeros(7)}, ["mammal", "(6,)", "(7,)"]),
    ({"diet": torch.zeros(6, 3)}, ["diet", "(6,)"]),
    ({"mamal": torch.zeros(6)}, ["mamal", "did you mean 'mammal'"]),
    ({"diet": ["a", "b", "c", "d", "e", "f"]}, ["diet"]),
])
def test_bad_targets_raise_data_error(animals, targets, words):
    model, x = animals
    out = model(x)
    with pytest.raises(tg.DataError) as info:
        model.loss(out, targets)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_bad_target_matrix_shape(animals):
    model, x = animals
    out = model(x)
    for bad in (torch.zeros(6, 3), torch.zeros(5, 4), torch.zeros(6), torch.zeros(6, 4, 1)):
        with pytest.raises(tg.DataError, match="matrix"):
            model.loss(out, bad)


def test_transposed_multilabel_targets_are_rejected(small_model):
    """A (K, B) multilabel target is a wrong shape, not a (B, K) one to reshape."""
    model = small_model("sentiment", rounds=1).eval()
    out = model(torch.randn(4, 5))
    y = torch.randint(0, 2, (4, 5)).float()  # (B, K)
    with pytest.raises(tg.DataError, match="aspects"):
        model.loss(out, {"aspects": y.t().contiguous()})  # (K, B)


def test_transposed_multi_output_regression_targets_are_rejected(small_model):
    model = small_model(copy.deepcopy(MIXED)).eval()
    out = model(torch.randn(6, 5))
    with pytest.raises(tg.DataError, match="'f'"):
        model.loss(out, {"f": torch.randn(2, 6)})  # (k, B) instead of (B, k)


@pytest.mark.parametrize("size", [0, -5, 2.5, True])
def test_bad_dataset_size(animals, size):
    model, x = animals
    with pytest.raises(tg.ArgumentError, match="loss: dataset_size: expected a positive"):
        model.loss(model(x), ANIMAL_TARGETS, dataset_size=size)


# -- the KL term --------------------------------------------------------------------------
def test_total_adds_the_scaled_kl(animals):
    model, x = animals
    out = model(x)
    plain = model.loss(out, ANIMAL_TARGETS)
    assert torch.equal(plain.total, plain.data)
    res = model.loss(out, ANIMAL_TARGETS, dataset_size=250, kl_weight=0.3)
    kl = model.kl()
    assert kl.item() > 0
    torch.testing.assert_close(res.kl, kl)
    W = 5.0  # the animals' task weights: 1 + 1 + 2 + 1
    assert res.total.item() == pytest.approx(res.data.item() + 0.3 * kl.item() / (250 * W),
                                             rel=1e-6)
    torch.testing.assert_close(res.data, plain.data)


def _linear_kl(weight, rho, bias, bias_rho, prior_std):
    q_w = Normal(weight, torch.nn.functional.softplus(rho))
    kl = kl_divergence(q_w, Normal(torch.zeros_like(weight), prior_std)).sum()
    if bias is not None:
        q_b = Normal(bias, torch.nn.functional.softplus(bias_rho))
        kl = kl + kl_divergence(q_b, Normal(torch.zeros_like(bias), prior_std)).sum()
    return kl


def _edge_kl(model, priors):
    """KL of the edge synapses to ``priors``, one ``(kind, prior mean or p)`` per
    synapse, written out from the YAML (directions outer, edges in file order)."""
    syn = model.edge_synapses
    total = torch.zeros((), dtype=torch.float64)
    assert len(priors) == syn.mu.numel()
    for k, (kind, prior) in enumerate(priors):
        if kind == "gaussian":  # prior N(mean, prior_std = 1)
            q = Normal(syn.mu[k].double(), torch.nn.functional.softplus(syn.rho[k]).double())
            p = Normal(torch.tensor(prior, dtype=torch.float64),
                       torch.tensor(1.0, dtype=torch.float64))
        else:  # bernoulli, prior Bernoulli(prior_p)
            q = Bernoulli(logits=syn.p_logit[k].double())
            p = Bernoulli(probs=torch.tensor(prior, dtype=torch.float64))
        total = total + kl_divergence(q, p)
    return total


#: animals.yaml: edges mammal->diet (bernoulli, prior_p 0.5 by default), diet->species and
#: species->weight_kg (the default gaussian, mean 1.0), in both directions
ANIMAL_PRIORS = [("bernoulli", 0.5), ("gaussian", 1.0), ("gaussian", 1.0)] * 2
#: cell_functions.yaml: bernoulli synapses (prior_p 0.5) on its 6 edges, except the upward
#: signaling -> lipid_signaling one, the last edge: gaussian, mean 0.5
CELL_PRIORS = [("bernoulli", 0.5)] * 11 + [("gaussian", 0.5)]


def test_kl_by_hand_default_layers(small_model):
    model = small_model("animals")
    with torch.no_grad():  # move away from the prior so every term counts
        model.edge_synapses.mu.add_(torch.linspace(-0.5, 0.5, 6))
        model.edge_synapses.rho.add_(0.3)
        model.edge_synapses.p_logit.sub_(1.0)
    expected = _edge_kl(model, ANIMAL_PRIORS)
    assert model.kl().item() == pytest.approx(expected.item(), rel=1e-5)
    # the KL is the sum of its parts
    parts = model.edge_synapses.kl() + model.projections.kl() + \
        sum(h.kl() for h in model.heads) + model.encoder.kl()
    torch.testing.assert_close(model.kl(), parts)


def test_kl_with_stochastic_layers(small_model):
    base = small_model("cell_functions")
    model = small_model("cell_functions",
                        stochastic={"encoder": True, "projections": True, "heads": True,
                                    "prior_std": 0.5})
    assert model.projections.stochastic and all(h.stochastic for h in model.heads)
    enc_layers = [m for m in model.encoder.layers if hasattr(m, "weight_rho")]
    assert len(enc_layers) == 1
    expected = _edge_kl(model, CELL_PRIORS)
    p = model.projections
    expected = expected + _linear_kl(p.weight, p.weight_rho, p.bias, p.bias_rho, 0.5)
    for h in model.heads:
        expected = expected + _linear_kl(h.weight, h.weight_rho, h.bias, h.bias_rho, 0.5)
    for layer in enc_layers:
        expected = expected + _linear_kl(layer.weight, layer.weight_rho, layer.bias,
                                         layer.bias_rho, 0.5)
    assert model.kl().item() == pytest.approx(expected.item(), rel=1e-4)
    assert model.kl().item() > base.kl().item() + 1.0
    parts = model.edge_synapses.kl() + model.projections.kl() + \
        sum(h.kl() for h in model.heads) + model.encoder.kl()
    torch.testing.assert_close(model.kl(), parts)


def test_kl_without_any_stochastic_part_is_zero(small_model):
    model = small_model("animals", rounds=0)
    assert model.kl().item() == 0.0
    res = model.loss(model(torch.randn(3, 5)), {"mammal": torch.ones(3)}, dataset_size=10)
    torch.testing.assert_close(res.total, res.data)
