"""``taskgraph predict --confidence`` / ``--target-accuracy`` on a small trained model: the
climbed classes and label sets against a hand computation from the model's
probabilities, the thresholds chosen on ``--val`` against Clopper–Pearson and
Hoeffding–Bentkus bounds computed here, and clean errors."""

from __future__ import annotations

import csv
import importlib
import re

import numpy as np
import pytest
import torch
from scipy.stats import beta, binom

import taskgraph as tg

cli = importlib.import_module("taskgraph.cli.main")

SHOP = """\
taskgraph: 1
name: shop
tasks:
  kind: {type: multiclass, classes: [clothing, footwear]}
  group:
    type: multiclass
    classes: [upper, lower, shoe]
    parents: [kind]
    class_parents: {upper: clothing, lower: clothing, shoe: footwear}
  item:
    type: multiclass
    classes: [shirt, coat, trouser, sneaker, boot]
    parents: [group]
    class_parents: {shirt: upper, coat: upper, trouser: lower, sneaker: shoe, boot: shoe}
  sale: {type: binary}
  clearance: {type: binary, parents: [sale]}
"""
ITEMS = ["shirt", "coat", "trouser", "sneaker", "boot"]
GROUPS = ["upper", "lower", "shoe"]
KINDS = ["clothing", "footwear"]
GROUP_OF = [0, 0, 1, 2, 2]  # item -> group
KIND_OF = [0, 0, 1]  # group -> kind
CENTERS = np.array([[2, 0, 0, 0], [1.4, 1.4, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0],
                    [0, 0, 1.4, 1.4]])
GRID = np.arange(100, 0, -1) / 100


def table(path, n: int, seed: int):
    rng = np.random.default_rng(seed)
    k = rng.integers(5, size=n)
    x = CENTERS[k] + rng.normal(scale=0.6, size=(n, 4))
    sale = (x[:, 0] + x[:, 3] > 1.5).astype(int)
    clear = (x[:, 0] + x[:, 3] > 1.9).astype(int)  # only on sale
    lines = ["f0,f1,f2,f3,kind,group,item,sale,clearance"]
    for i in range(n):
        g = GROUP_OF[k[i]]
        lines.append(",".join(f"{v:.3f}" for v in x[i]) + f",{KINDS[KIND_OF[g]]},{GROUPS[g]},"
                     f"{ITEMS[k[i]]},{sale[i]},{clear[i]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path), x.astype(np.float32), k


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("selective")
    train, xt, kt = table(root / "train.csv", 500, 0)
    val, xv, kv = table(root / "val.csv", 300, 1)
    test, x, _ = table(root / "test.csv", 40, 2)
    torch.manual_seed(0)
    model = tg.compile(SHOP, in_features=4, task_dim=8, encoder_spec={"hidden": [16]})
    from taskgraph.datasets import read_table
    from taskgraph.train import make_loader

    tg.fit(model, make_loader(read_table(train, model.hierarchy), batch_size=50), epochs=12,
           lr=0.01, progress=False, seed=0)
    tg.save(model, root / "model.pt")
    return {"root": root, "model": str(root / "model.pt"), "val": val, "test": test, "x": x,
            "xv": xv, "kv": kv}


def run(capsys, *argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def rows_of(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def predicted(shop, x, samples=0, seed=0):
    model = tg.load(shop["model"])
    torch.manual_seed(seed)
    with torch.no_grad():
        return model.predict(torch.from_numpy(x), samples=samples)


def kappa_by_hand(pred):
    """(labels (N, 3), running-min confidences (N, 3)), row by row."""
    labels = np.stack([pred[t].label.numpy() for t in ("kind", "group", "item")], 1)
    probs = [pred[t].probs.numpy() for t in ("kind", "group", "item")]
    kappa = np.zeros(labels.shape)
    for i in range(len(labels)):
        running = 1.0
        for d in range(3):
            running = min(running, float(probs[d][i, labels[i, d]]))
            kappa[i, d] = running
    return labels, kappa.astype(np.float32)


def climbed_by_hand(pred, c):
    labels, kappa = kappa_by_hand(pred)
    names = [KINDS, GROUPS, ITEMS]
    out = []
    for i in range(len(labels)):
        depth = int((kappa[i] >= np.float32(c)).sum())
        out.append((names[depth - 1][labels[i, depth - 1]] if depth else "", depth))
    return out


def label_sets_by_hand(pred, tau, max_std=None):
    p_sale, p_clear = pred["sale"].probs.numpy(), pred["clearance"].probs.numpy()
    sets, withheld = [], []
    for i in range(len(p_sale)):
        keep_sale = max_std is None or pred["sale"].std[i] <= max_std
        keep_clear = max_std is None or pred["clearance"].std[i] <= max_std
        e_sale, e_clear = p_sale[i] * keep_sale, p_clear[i] * keep_clear
        s = [e_sale >= tau, min(e_sale, e_clear) >= tau]
        plain = [p_sale[i] >= tau, min(p_sale[i], p_clear[i]) >= tau]
        names = ["sale", "clearance"]
        sets.append(";".join(n for n, on in zip(names, s) if on))
        withheld.append(";".join(n for n, on, a in zip(names, s, plain) if a and not on))
    return sets, withheld


def test_confidence_adds_the_climbed_class_and_the_label_set(shop, capsys):
    out = shop["root"] / "p.csv"
    code, stdout, err = run(capsys, "predict", shop["model"], "--data", shop["test"], "-o", out,
                            "--confidence", "0.8", "--batch-size", "16")
    assert code == 0, err
    rows = rows_of(out)
    assert list(rows[0])[-4:] == ["item.selective", "item.selective_depth",
                                  "item.selective_confidence", "label_set"]
    pred = predicted(shop, shop["x"])
    climbed = climbed_by_hand(pred, 0.8)
    assert [(r["item.selective"], int(r["item.selective_depth"])) for r in rows] == climbed
    assert {d for _, d in climbed} >= {3} and len({d for _, d in climbed}) >= 2
    sets, _ = label_sets_by_hand(pred, 0.8)
    assert [r["label_set"] for r in rows] == sets
    assert "predicted 40 rows (21 columns, 5 tasks)" in stdout


def test_max_std_withholds_labels(shop, capsys):
    out = shop["root"] / "mc.npz"
    code, _, err = run(capsys, "predict", shop["model"], "--data", shop["test"], "-o", out,
                       "--confidence", "0.5", "--samples", "6", "--seed", "2",
                       "--max-std", "0.01")
    assert code == 0, err
    pred = predicted(shop, shop["x"], samples=6, seed=2)
    sets, withheld = label_sets_by_hand(pred, 0.5, max_std=0.01)
    with np.load(out) as z:
        assert z["label_set"].tolist() == sets
        assert z["label_set.withheld"].tolist() == withheld
        assert z["item.selective_depth"].dtype == np.int64
        assert [(a, int(b)) for a, b in zip(z["item.selective"], z["item.selective_depth"])] \
            == climbed_by_hand(pred, 0.5)
    assert any(withheld), "the bound should withhold something here"


def path_threshold_by_hand(shop, target, delta=0.05):
    """Smallest grid c whose Clopper-Pearson bound at delta / 100 is <= 1 - target."""
    pred = predicted(shop, shop["xv"])
    labels, kappa = kappa_by_hand(pred)
    item = shop["kv"]
    truth = np.stack([np.array(KIND_OF)[np.array(GROUP_OF)[item]], np.array(GROUP_OF)[item],
                      item], 1)
    chosen = None
    for c in GRID:
        accepted = errors = 0
        for i in range(len(labels)):
            depth = int((kappa[i] >= np.float32(c)).sum())
            if depth:
                accepted += 1
                errors += int(labels[i, depth - 1] != truth[i, depth - 1])
        bound = 1.0 if errors >= accepted else beta.ppf(1 - delta / 100, errors + 1,
                                                        accepted - errors)
        if bound <= 1 - target:
            chosen = c
    return chosen


def label_threshold_by_hand(shop, target, delta=0.05):
    """Smallest grid tau whose Hoeffding-Bentkus bound on the mean false-discovery
    proportion of the non-empty sets (clearance only: sale is a root) is <= 1 - target."""
    pred = predicted(shop, shop["xv"])
    rows = rows_of(shop["val"])
    y = np.array([int(r["clearance"]) for r in rows])
    s = np.minimum(pred["sale"].probs.numpy(), pred["clearance"].probs.numpy())
    a = np.linspace(1e-6, 1 - 1e-6, 20001)
    chosen = None
    for tau in GRID:
        on = s >= np.float32(tau)
        m = int(on.sum())
        if not m:
            continue
        mean = float((y[on] == 0).mean())  # one evaluated label: the proportion is 0 or 1
        q = np.minimum(mean, a)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where(q > 0, q * np.log(q / a), 0) + (1 - q) * np.log((1 - q) / (1 - a))
        p = np.minimum(np.exp(-m * h), np.e * binom.cdf(np.ceil(m * mean - 1e-9), m, a))
        ok = (a >= mean) & (p <= delta / 100)
        if ok.any() and a[np.argmax(ok)] <= 1 - target:
            chosen = tau
    return chosen


def test_target_accuracy_chooses_the_thresholds_on_val(shop, capsys):
    out = shop["root"] / "chosen.csv"
    code, stdout, err = run(capsys, "predict", shop["model"], "--data", shop["test"], "-o", out,
                            "--target-accuracy", "0.8", "--val", shop["val"])
    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[0].startswith("class path item (kind > group > item): on ")
    assert lines[1].startswith("label sets: on ")
    c = float(re.search(r"threshold ([0-9.]+):", lines[0]).group(1))
    tau = float(re.search(r"threshold ([0-9.]+):", lines[1]).group(1))
    assert c == path_threshold_by_hand(shop, 0.8)
    assert tau == label_threshold_by_hand(shop, 0.8)
    for words in ("with probability >= 0.95 over the 300 validation rows",
                  "is <= 0.2", "Clopper-Pearson", "bonferroni over 100 thresholds"):
        assert words in lines[0], words
    assert "Hoeffding-Bentkus" in lines[1]
    pred = predicted(shop, shop["x"])
    rows = rows_of(out)
    assert [(r["item.selective"], int(r["item.selective_depth"])) for r in rows] == \
        climbed_by_hand(pred, c)
    assert [r["label_set"] for r in rows] == label_sets_by_hand(pred, tau)[0]


def test_delta_changes_the_guarantee(shop, capsys):
    code, stdout, err = run(capsys, "predict", shop["model"], "--data", shop["test"], "-o",
                            shop["root"] / "d.csv", "--target-accuracy", "0.8", "--val",
                            shop["val"], "--delta", "0.2")
    assert code == 0, err
    c = float(re.search(r"threshold ([0-9.]+):", stdout.splitlines()[0]).group(1))
    assert c == path_threshold_by_hand(shop, 0.8, delta=0.2)
    assert "with probability >= 0.8 over" in stdout


def test_an_unreachable_target_is_a_clean_error(shop, capsys):
    out = shop["root"] / "none.csv"
    code, _, err = run(capsys, "predict", shop["model"], "--data", shop["test"], "-o", out,
                       "--target-accuracy", "0.999", "--val", shop["val"])
    assert code == 2 and "Traceback" not in err
    assert "--target-accuracy 0.999" in err and "class path item" in err
    assert "no threshold of the 100 candidates" in err and not out.exists()


def test_a_hierarchy_without_paths_or_dag_is_a_clean_error(tmp_path, capsys):
    model = tg.compile("taskgraph: 1\ntasks:\n  a: {type: binary}\n  b: {type: regression}\n",
                       in_features=2, task_dim=4)
    tg.save(model, tmp_path / "m.pt")
    (tmp_path / "x.csv").write_text("f0,f1\n0.1,0.2\n", encoding="utf-8")
    code, _, err = run(capsys, "predict", tmp_path / "m.pt", "--data", tmp_path / "x.csv", "-o",
                       tmp_path / "p.csv", "--confidence", "0.5")
    assert code == 2 and "no class path" in err and "no label DAG" in err
