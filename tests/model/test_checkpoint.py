"""taskgraph.save / taskgraph.load: round trips, user encoders, and refusing bad files."""

from __future__ import annotations

import os
import pickle
import random
import zipfile

import pytest
import torch
from torch import nn

import taskgraph as tg
from model_test_utils import hierarchy_path


def _outputs(model, x):
    with torch.no_grad():
        return {k: v.clone() for k, v in model(x).items()}


def _assert_same_outputs(a, b, x):
    oa, ob = _outputs(a, x), _outputs(b, x)
    assert set(oa) == set(ob)
    for name in oa:
        assert torch.equal(oa[name], ob[name]), name


def _perturb(model):
    """Move every parameter (and the regression target scaling) off its initial value,
    so that loading really matters."""
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    R = len(model.regression_outputs)
    model.set_target_scaling(torch.arange(R) * 10.0 + 3.0, torch.arange(R) + 2.0)


@pytest.fixture
def saved(tmp_path, small_model):
    model = small_model("animals").eval()
    _perturb(model)
    path = tmp_path / "model.pt"
    tg.save(model, path)
    return model, path


# -- round trips --------------------------------------------------------------------------
@pytest.mark.parametrize("name, overrides", [
    ("animals", {}),
    ("cell_functions", {}),
    ("sentiment", {"rounds": 1, "directions": ["up"]}),
    ("animals", {"rounds": 0, "stochastic": {"heads": True, "projections": True}}),
    ("cell_functions", {"synapse": {"kind": "fixed", "mean": 0.3}, "coherent": False}),
])
def test_round_trip_gives_identical_eval_outputs(tmp_path, small_model, name, overrides):
    model = small_model(name, **overrides)
    _perturb(model)
    model.eval()
    path = tmp_path / f"{name}.pt"
    tg.save(model, path)
    again = tg.load(path)
    assert isinstance(again, tg.TaskGraphModel)
    assert not again.training
    assert again.hierarchy == model.hierarchy
    assert again.config == model.config
    assert again.synapses() == model.synapses()
    _assert_same_outputs(model, again, torch.randn(6, 5))
    sa, sb = model.state_dict(), again.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_load_accepts_str_and_map_location(saved):
    model, path = saved
    again = tg.load(str(path), map_location="cpu")
    _assert_same_outputs(model, again, torch.randn(3, 5))


def test_extra_data_round_trip(tmp_path, small_model):
    from taskgraph.checkpoint import read_extra

    model = small_model("animals")
    tg.save(model, tmp_path / "m.pt", extra={"dataset": "zoo", "epochs": 3})
    assert read_extra(tmp_path / "m.pt") == {"dataset": "zoo", "epochs": 3}


def test_save_refuses_other_modules(tmp_path):
    with pytest.raises(TypeError):
        tg.save(nn.Linear(2, 2), tmp_path / "m.pt")


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 7), nn.Tanh())

    def forward(self, x):
        return self.net(x)


def test_user_encoder_needs_encoder_on_load(tmp_path):
    torch.manual_seed(0)
    model = tg.compile(hierarchy_path("animals"), encoder=Encoder(), task_dim=4)
    _perturb(model)
    model.eval()
    path = tmp_path / "m.pt"
    tg.save(model, path)
    with pytest.raises(tg.CheckpointError, match="encoder"):
        tg.load(path)
    fresh = Encoder()  # new random weights; the file's weights replace them
    again = tg.load(path, encoder=fresh)
    assert again.encoder.module is fresh
    assert torch.equal(fresh.net[0].weight, model.encoder.module.net[0].weight)
    _assert_same_outputs(model, again, torch.randn(4, 5))


def test_mlp_model_refuses_an_encoder_on_load(saved):
    _, path = saved
    with pytest.raises(tg.CheckpointError, match="encoder"):
        tg.load(path, encoder=Encoder())


def test_wrong_user_encoder_is_refused(tmp_path):
    torch.manual_seed(0)
    model = tg.compile(hierarchy_path("animals"), encoder=Encoder(), task_dim=4)
    tg.save(model, tmp_path / "m.pt")
    with pytest.raises(tg.CheckpointError):
        tg.load(tmp_path / "m.pt", encoder=nn.Sequential(nn.Linear(5, 7)))


# -- atomic writes ------------------------------------------------------------------------
def test_save_leaves_only_the_checkpoint(tmp_path, small_model):
    model = small_model("animals")
    tg.save(model, tmp_path / "a.pt")
    tg.save(model, tmp_path / "a.pt")  # overwrite
    tg.save(model, tmp_path / "b.pt")
    assert sorted(os.listdir(tmp_path)) == ["a.pt", "b.pt"]


def test_failed_save_keeps_the_previous_file(tmp_path, small_model, monkeypatch):
    old = small_model("animals", seed=1).eval()
    new = small_model("animals", seed=2).eval()
    path = tmp_path / "m.pt"
    tg.save(old, path)
    real_save = torch.save

    def broken_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(100)  # a write cut short
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        tg.save(new, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.pt"]
    _assert_same_outputs(old, tg.load(path), torch.randn(3, 5))


# -- bad files ----------------------------------------------------------------------------
def test_truncated_files(tmp_path, saved):
    _, path = saved
    data = path.read_bytes()
    bad = tmp_path / "cut.pt"
    for n in sorted({0, 1, 4, 30, 100, len(data) // 3, len(data) // 2, len(data) - 200,
                     len(data) - 22, len(data) - 1}):
        bad.write_bytes(data[:n])
        with pytest.raises(tg.CheckpointError):
            tg.load(bad)


def _load_or_error(path):
    """'ok' (a model), 'refused' (CheckpointError), or the unexpected exception's name."""
    try:
        return "ok", tg.load(path)
    except tg.CheckpointError:
        return "refused", None
    except Exception as err:  # noqa: BLE001 - the test reports what escaped
        return f"{type(err).__name__}: {err}", None


def test_first_byte_flipped(tmp_path, saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(tg.CheckpointError):
        tg.load(bad)


def test_flipped_bytes_are_refused_or_harmless(tmp_path, saved):
    """One flipped byte anywhere: CheckpointError, or (in bytes the archive does not read)
    the very same model; never another exception and never a different model."""
    model, path = saved
    data = path.read_bytes()
    bad = tmp_path / "flipped.pt"
    x = torch.randn(3, 5)
    reference = _outputs(model, x)
    escaped, refused = [], 0
    positions = sorted(set(range(0, len(data), len(data) // 60)) | set(range(0, 4)))
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 0x01
        bad.write_bytes(bytes(flipped))
        outcome, loaded = _load_or_error(bad)
        if outcome == "ok":
            out = _outputs(loaded, x)
            assert all(torch.equal(out[k], reference[k]) for k in reference), pos
        elif outcome == "refused":
            refused += 1
        else:
            escaped.append((pos, outcome[:80]))
    assert refused > len(positions) // 4
    assert not escaped, escaped[:5]


def _member_range(path, suffix):
    """(start, end) of a stored zip member's bytes in the file."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(suffix))
    head = info.header_offset
    name_len = int.from_bytes(data[head + 26:head + 28], "little")
    extra_len = int.from_bytes(data[head + 28:head + 30], "little")
    start = head + 30 + name_len + extra_len
    return start, start + info.compress_size


def test_flipped_bytes_in_the_pickle(tmp_path, saved):
    """The pickle (structure, tensor names, strides, storage keys) is the fragile part:
    every flip there must end in CheckpointError or the very same model."""
    model, path = saved
    data = path.read_bytes()
    start, end = _member_range(path, "data.pkl")
    assert 0 < start < end <= len(data)
    bad = tmp_path / "flipped.pt"
    x = torch.randn(3, 5)
    reference = _outputs(model, x)
    escaped = []
    first = data.index(b"state_dict", start)  # the weights' part of the pickle
    for pos in range(first, end, 7):
        flipped = bytearray(data)
        flipped[pos] ^= 0x01
        bad.write_bytes(bytes(flipped))
        outcome, loaded = _load_or_error(bad)
        if outcome == "ok":
            out = _outputs(loaded, x)
            assert all(torch.equal(out[k], reference[k]) for k in reference), pos
        elif outcome != "refused":
            escaped.append((pos - start, outcome[:80]))
    assert not escaped, escaped[:5]


def test_flipped_tensor_bytes_fail_the_checksum(tmp_path, saved):
    _, path = saved
    start, end = _member_range(path, "/data/0")
    assert end - start >= 16
    data = bytearray(path.read_bytes())
    data[start + 5] ^= 0x10
    bad = tmp_path / "tensor.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(tg.CheckpointError, match="checksum"):
        tg.load(bad)


def test_tensor_with_unusual_strides_in_the_file(tmp_path, saved):
    """A (4, 1) tensor whose last stride is 0 is contiguous for torch, so it reaches the
    checksum as is; the file must still be refused cleanly."""
    _, path = saved
    payload = torch.load(path, weights_only=True)
    odd = torch.zeros(4, 1).as_strided((4, 1), (1, 0))
    assert odd.is_contiguous() and odd.stride() == (1, 0)
    payload["state_dict"]["task_embedding"] = odd
    bad = tmp_path / "strides.pt"
    torch.save(payload, bad)
    with pytest.raises(tg.CheckpointError):
        tg.load(bad)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"\x00" * 64, b".", b"G",
                                     b"Q", b"PK\x03\x04" + b"\x00" * 40])
def test_short_garbage_files(tmp_path, content):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(content)
    with pytest.raises(tg.CheckpointError):
        tg.load(bad)


def test_random_bytes_files(tmp_path):
    rng = random.Random(0)
    bad = tmp_path / "random.pt"
    escaped = []
    for i in range(60):
        content = bytes(rng.randrange(256) for _ in range(rng.choice([1, 10, 100, 2000])))
        bad.write_bytes(content)
        outcome, _ = _load_or_error(bad)
        assert outcome != "ok"
        if outcome != "refused":
            escaped.append((i, content[:4], outcome[:60]))
    assert not escaped, escaped[:5]


@pytest.mark.parametrize("obj", [{"a": 1}, torch.zeros(3), [1, 2, 3],
                                 {"meta_json": "{}", "state_dict": {}, "sha256": "0"},
                                 {"meta_json": "[", "state_dict": {}, "sha256": "0"}])
def test_other_torch_files(tmp_path, obj):
    path = tmp_path / "other.pt"
    torch.save(obj, path)
    with pytest.raises(tg.CheckpointError):
        tg.load(path)


class _WritesMarker:
    """Unpickling this runs ``open(marker, "w")``: code execution from a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_malicious_pickles_never_run(tmp_path, saved):
    _, good = saved
    marker = tmp_path / "pwned"
    evil_zip = tmp_path / "evil_zip.pt"
    torch.save({"meta_json": "{}", "state_dict": {}, "sha256": "0",
                "payload": _WritesMarker(str(marker))}, evil_zip)
    evil_raw = tmp_path / "evil_raw.pt"
    evil_raw.write_bytes(pickle.dumps(_WritesMarker(str(marker)), protocol=2))
    for path in (evil_zip, evil_raw):
        with pytest.raises(tg.CheckpointError):
            tg.load(path)
        assert not marker.exists()
    # the payload is live: an ordinary unpickler would have run it
    pickle.loads(evil_raw.read_bytes())
    assert marker.exists()


def test_weights_of_another_hierarchy(tmp_path, small_model):
    animals = small_model("animals")
    cell = small_model("cell_functions")
    # a file that describes cell_functions but holds the animals weights
    animals.hierarchy, real = cell.hierarchy, animals.hierarchy
    animals.config, real_config = cell.config, animals.config
    try:
        tg.save(animals, tmp_path / "mixed.pt")
    finally:
        animals.hierarchy, animals.config = real, real_config
    with pytest.raises(tg.CheckpointError, match="do not fit"):
        tg.load(tmp_path / "mixed.pt")


def test_weights_of_another_size(tmp_path, small_model):
    model = small_model("animals", task_dim=4)
    bigger = small_model("animals", task_dim=6)
    model.config = bigger.config  # the file claims task_dim 6, the weights are 4 wide
    tg.save(model, tmp_path / "m.pt")
    with pytest.raises(tg.CheckpointError):
        tg.load(tmp_path / "m.pt")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        tg.load(tmp_path / "nope.pt")
