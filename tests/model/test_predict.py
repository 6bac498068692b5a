"""model.predict: shapes, probabilities, uncertainty, Monte-Carlo agreement, mode handling."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import taskgraph as tg
from model_test_utils import MIXED


def _check_prediction(model, pred, B):
    """Shapes and ranges every prediction must satisfy."""
    assert set(pred) == set(model.hierarchy.task_names) and len(pred) == len(model.hierarchy)
    for name in model.hierarchy.task_names:
        spec, p = model.hierarchy[name], pred[name]
        assert p.kind == spec.type
        if spec.type == "regression":
            shape = (B,) if spec.outputs == 1 else (B, spec.outputs)
            assert p.value.shape == shape and p.variance.shape == shape
            assert (p.variance >= 0).all()
            assert p.probs is None
            continue
        K = spec.num_outputs
        shape = (B,) if spec.type == "binary" else (B, K)
        assert p.probs.shape == shape and p.std.shape == shape
        assert ((p.probs >= 0) & (p.probs <= 1)).all()
        assert (p.std >= 0).all()
        info_shape = (B, K) if spec.type == "multilabel" else (B,)
        assert p.entropy.shape == info_shape and p.mutual_info.shape == info_shape
        assert (p.mutual_info >= 0).all()
        assert (p.mutual_info <= p.entropy + 1e-5).all()
        if spec.type == "multiclass":
            torch.testing.assert_close(p.probs.sum(-1), torch.ones(B))
            assert p.label.shape == (B,)
            # -1: not applicable (the decoded parent class has no child classes)
            assert ((p.label >= -1) & (p.label < K)).all()
            if not spec.class_parents:
                assert (p.label >= 0).all()
            assert p.classes == spec.classes
        elif spec.type == "binary":
            assert torch.equal(p.label, (p.probs > 0.5).long())
        else:
            assert torch.equal(p.label, (p.probs > 0.5).long())


@pytest.mark.parametrize("samples", [0, 6])
def test_shapes_and_ranges_for_every_task_type(small_model, samples):
    model = small_model(copy.deepcopy(MIXED), stochastic={"heads": True})
    torch.manual_seed(0)
    pred = model.predict(torch.randn(5, 5), samples=samples)
    assert pred.samples == samples
    _check_prediction(model, pred, 5)
    with pytest.raises(KeyError):
        pred["nope"]


def test_samples_zero_is_the_eval_forward_without_uncertainty(small_model):
    model = small_model(copy.deepcopy(MIXED), stochastic={"heads": True, "projections": True})
    x = torch.randn(4, 5)
    pred = model.predict(x, samples=0)
    model.eval()
    with torch.no_grad():
        out = model(x)
    for name in model.hierarchy.task_names:
        spec, p = model.hierarchy[name], pred[name]
        if spec.type == "regression":
            torch.testing.assert_close(p.value, out[name])
            assert torch.count_nonzero(p.variance) == 0
            continue
        probs = out[name].softmax(-1) if spec.type == "multiclass" else out[name].sigmoid()
        torch.testing.assert_close(p.probs, probs)
        assert torch.count_nonzero(p.std) == 0
        torch.testing.assert_close(p.mutual_info, torch.zeros_like(p.mutual_info),
                                   atol=1e-6, rtol=0)
        # predictive entropy of the probabilities, by hand
        for b in range(4):
            if spec.type == "binary":
                q = float(probs[b])
                h = -(q * math.log(q) + (1 - q) * math.log(1 - q))
                assert float(p.entropy[b]) == pytest.approx(h, abs=1e-5)
            elif spec.type == "multiclass":
                h = -sum(float(q) * math.log(float(q)) for q in probs[b])
                assert float(p.entropy[b]) == pytest.approx(h, abs=1e-5)


def test_stochastic_layers_give_uncertainty(small_model):
    # no message passing: the stochastic projections and heads are the only noise
    model = small_model("animals", rounds=0, stochastic={"projections": True, "heads": True})
    assert model.edge_synapses is None
    with torch.no_grad():  # make the stochastic layers clearly noisy
        for module in [model.projections, *model.heads]:
            module.weight_rho.fill_(0.0)
    torch.manual_seed(1)
    pred = model.predict(torch.randn(6, 5), samples=16)
    _check_prediction(model, pred, 6)
    assert (pred["mammal"].std > 0).all()
    assert (pred["diet"].mutual_info > 0).all()
    assert (pred["weight_kg"].variance > 0).all()


def test_mc_mean_matches_repeated_sampling_forwards(small_model):
    model = small_model("cell_functions", coherent=False).eval()
    x = torch.randn(3, 5)
    K = 400
    torch.manual_seed(2)
    pred = model.predict(x, samples=K)
    torch.manual_seed(3)
    # 4 separate sampling forwards, each on 100 copies of the batch (a draw per row)
    with torch.no_grad():
        probs = torch.cat([torch.stack([o.sigmoid().view(100, 3) for o in
                                        model(x.repeat(100, 1), sample=True).values()], 1)
                           for _ in range(K // 100)])  # (K, T, B)
    mean, std = probs.mean(0), probs.std(0)
    for t, name in enumerate(model.hierarchy.task_names):
        p = pred[name]
        tol = 5 * std[t] * math.sqrt(2 / K) + 1e-4
        assert ((p.probs - mean[t]).abs() <= tol).all(), name
        torch.testing.assert_close(p.std, std[t], atol=0.03, rtol=0.3)


def test_regression_variance_matches_repeated_sampling(small_model):
    model = small_model("animals", stochastic={"heads": True}).eval()
    with torch.no_grad():
        model.heads[-1].weight_rho.fill_(0.0)
    x = torch.randn(3, 5)
    K = 400
    torch.manual_seed(4)
    pred = model.predict(x, samples=K)
    with torch.no_grad():
        values = torch.cat([model(x.repeat(100, 1), sample=True)["weight_kg"].view(100, 3)
                            for _ in range(K // 100)])  # (K, B)
    assert (values.var(0) > 0).all()
    torch.testing.assert_close(pred["weight_kg"].variance, values.var(0), rtol=0.35, atol=1e-4)
    sem = values.std(0) * math.sqrt(2 / K)
    assert ((pred["weight_kg"].value - values.mean(0)).abs() <= 5 * sem + 1e-5).all()


def test_deterministic_model_gives_the_same_prediction_for_any_samples(small_model):
    model = small_model(copy.deepcopy(MIXED), rounds=0)
    x = torch.randn(4, 5)
    a = model.predict(x, samples=0)
    b = model.predict(x, samples=5)
    c = model.predict(x, samples=5, chunk_size=1)
    for name in model.hierarchy.task_names:
        for field in ("probs", "std", "entropy", "mutual_info", "value", "variance", "label"):
            va, vb, vc = (getattr(p[name], field) for p in (a, b, c))
            if va is None:
                assert vb is None and vc is None
            else:
                torch.testing.assert_close(vb, va)
                torch.testing.assert_close(vc, va)


@pytest.mark.parametrize("stochastic", [{}, {"encoder": True}, {"projections": True},
                                        {"heads": True}])
def test_chunking_keeps_shapes_and_ranges(small_model, stochastic):
    model = small_model("sentiment", stochastic=stochastic)
    torch.manual_seed(0)
    x = torch.randn(3, 5)
    pred = model.predict(x, samples=7, chunk_size=2)
    _check_prediction(model, pred, 3)
    assert (pred["aspects"].std > 0).any()


def test_predict_restores_the_training_flag(small_model):
    model = small_model("animals")
    x = torch.randn(2, 5)
    assert model.training
    model.predict(x, samples=3)
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    model.predict(x, samples=3)
    assert not model.training and not any(m.training for m in model.modules())


def test_predict_restores_each_submodule_flag(small_model):
    """A frozen encoder kept in eval mode while the rest trains stays in eval mode."""
    model = small_model("animals", encoder_spec={"hidden": [16], "batch_norm": True})
    model.train()
    model.encoder.eval()
    model.predict(torch.randn(4, 5), samples=2)
    assert model.training
    assert not model.encoder.training
    assert not any(m.training for m in model.encoder.modules())


def test_predict_does_not_track_gradients(small_model):
    model = small_model("animals")
    pred = model.predict(torch.randn(2, 5), samples=2)
    assert not pred["diet"].probs.requires_grad


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_invalid_samples(small_model, bad):
    model = small_model("animals")
    with pytest.raises(tg.ArgumentError, match="predict: samples: expected an integer >= 0"):
        model.predict(torch.randn(2, 5), samples=bad)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_invalid_chunk_size(small_model, bad):
    model = small_model("animals")
    with pytest.raises(tg.ArgumentError, match="predict: chunk_size"):
        model.predict(torch.randn(2, 5), samples=2, chunk_size=bad)


def test_multiclass_labels_follow_class_parents(small_model):
    model = small_model("animals")
    with torch.no_grad():
        model.heads[2].bias.normal_(std=3.0)  # varied species predictions
    torch.manual_seed(7)
    pred = model.predict(torch.randn(64, 5) * 3, samples=4)
    species = model.hierarchy["species"]
    parent_of = {species.classes.index(c): model.hierarchy["diet"].classes.index(p)
                 for c, p in species.class_parent_map("diet").items()}
    for b in range(64):
        assert parent_of[int(pred["species"].label[b])] == int(pred["diet"].label[b])
