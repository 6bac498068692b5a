"""Every script in examples/ runs with ``--quick``, and what it prints and writes is read
back: the numbers parsed and checked against their range, against each other and against
what the script's arguments say they must be (a sample mean within 5 standard errors of
its analytic value), the files decoded (PNG at its stated size, JSON with its keys).

The selected examples are started together, each in its own process with one thread,
when the module's first test needs them; each test then waits for its own example.
An example whose data is absent is skipped, the missing data named in the reason.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from PIL import Image

from taskgraph.vocabulary import TASK_TYPES

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
FASHION = Path("/usr/share/datasets/fashion-mnist")
HMC = REPO.parent / "shared" / "data" / "hmc"
TIMEOUT = 300  # seconds per example, a generous bound on a loaded machine


def _missing_fashion() -> str | None:
    files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    if all((FASHION / f).exists() for f in files):
        return None
    return f"Fashion-MNIST not installed in {FASHION} (apt-get install dataset-fashion-mnist)"


def _missing_hmc() -> str | None:
    if all((HMC / f"cellcycle_GO.{s}.arff.gz").exists() for s in ("train", "valid", "test")):
        return None
    return f"HMC data set cellcycle_GO not found in {HMC}"


NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(NUMBER, text)]


def png_size(path: Path) -> tuple[int, int]:
    """The size of a PNG file after decoding it in full (a truncated file fails)."""
    with Image.open(path) as image:
        assert image.format == "PNG", path
        image.load()
        assert len(image.getcolors(1 << 16) or range(257)) > 2, f"{path.name} is blank"
        return image.size


def report_rows(markdown: str) -> dict[str, dict]:
    """The task table of ``Report.to_markdown()``, with every value checked for its range,
    and the printed overall score checked against the mean of the task scores."""
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[1] not in TASK_TYPES:
            continue
        name, kind, n, score, metrics, calibration = cells
        row = {"type": kind, "n": int(n.replace(",", "")), "score": float(score)}
        for part in filter(None, (metrics + ", " + calibration).split(", ")):
            label, value = part.rsplit(" ", 1)
            row[label] = float(value) if value != "–" else math.nan
        rows[name] = row
        assert row["n"] > 0 and row["score"] <= 1.0, line
        for label in ("acc", "F1", "F1 macro", "F1 micro", "F1 weighted", "AP", "AP micro",
                      "AUROC", "top-3 acc", "ECE"):  # NaN (printed "–") where undefined
            assert not 0 > row.get(label, 0.0) and not row.get(label, 0.0) > 1, line
        for label in ("NLL", "Brier", "entropy", "MI"):
            assert not row.get(label, 0.0) < 0, line
        primary = {"binary": "AP", "multiclass": "acc", "multilabel": "F1 micro"}.get(kind)
        if primary is not None:  # the score is the task type's primary metric
            assert row["score"] == row[primary], line
        else:  # regression: R² clipped to [-1, 1]
            assert row["score"] == min(max(row["R²"], -1.0), 1.0), line
    overall = re.search(r"overall \*\*(" + NUMBER + r")\*\* \(mean score over (\d+) of",
                        markdown)
    assert overall and rows, markdown
    scores = [r["score"] for r in rows.values()]
    assert int(overall.group(2)) == len(scores)
    assert float(overall.group(1)) == pytest.approx(sum(scores) / len(scores), abs=1e-3)
    return rows


def check_stochastic_synapse(stdout: str, out: Path) -> None:
    # the script's defaults: 10,000 draws, mean 1, gaussian std 0.3, release p 0.7
    n, mean, std, p = 10_000, 1.0, 0.3, 0.7
    analytic = {"gaussian": (mean, std), "bernoulli": (mean * p, mean * math.sqrt(p * (1 - p)))}
    for kind, (m, s) in analytic.items():
        line = next(ln for ln in stdout.splitlines() if ln.startswith(kind + " "))
        sample_mean, shown_m, sample_std, shown_s, eval_w = numbers(line)
        assert (shown_m, shown_s, eval_w) == pytest.approx((m, s, m), abs=1e-4), line
        # 5 standard errors: s / sqrt(n) for the mean, at most s / sqrt(n) for the std
        assert abs(sample_mean - m) < 5 * s / math.sqrt(n), line
        assert abs(sample_std - s) < 5 * s / math.sqrt(n), line
    rate = float(re.search(r"release rate: (" + NUMBER + ")", stdout).group(1))
    assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert png_size(out / "synapse_histogram.png") == (8 * 120, round(3.2 * 120))  # figsize, dpi


def check_noisy_updates_xor(stdout: str, out: Path) -> None:
    results = json.loads((out / "xor_results.json").read_text(encoding="utf-8"))
    assert list(results) == ["plain", "grad_noise=0.5"]
    for label, rows in results.items():
        assert [r["seed"] for r in rows] == [0, 1, 2]  # --quick: 3 seeds
        for r in rows:
            assert set(r) == {"seed", "final_loss", "probs", "corners_right"}
            assert 0 < r["final_loss"] < 10 and len(r["probs"]) == 4
            assert all(0 <= q <= 1 for q in r["probs"])
            assert r["corners_right"] == sum((q > 0.5) == y for q, y in zip(r["probs"],
                                                                           [0, 1, 1, 0]))
        shown_mean, solved, seeds = map(float, re.search(
            re.escape(label) + r"\s+mean final loss (" + NUMBER + r")\s+seeds with all 4 "
            r"corners right: (\d+)/(\d+)", stdout).groups())
        assert shown_mean == pytest.approx(sum(r["final_loss"] for r in rows) / 3, abs=1e-4)
        assert (solved, seeds) == (sum(r["corners_right"] == 4 for r in rows), 3)
    per_seed = re.findall(r"^\s+(\d)\s+(" + NUMBER + r")\s+(" + NUMBER + r")$", stdout, re.M)
    assert [(int(k), float(a), float(b)) for k, a, b in per_seed] == [
        (k, pytest.approx(results["plain"][k]["final_loss"], abs=6e-5),
         pytest.approx(results["grad_noise=0.5"][k]["final_loss"], abs=6e-5)) for k in range(3)]
    table = stdout.split("predicted P(xor = 1), seed 0", 1)[1].splitlines()[2:6]
    for i, line in enumerate(table):  # x1 x2 xor, then P for plain and noisy, seed 0
        x1, x2, y, *probs = numbers(line)
        assert [x1, x2, y] == ([0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0])[i]
        assert probs == pytest.approx([results[k][0]["probs"][i] for k in results], abs=6e-4)


def check_linear_hierarchy_sklearn(stdout: str, out: Path) -> None:
    import taskgraph as tg

    h = tg.load_hierarchy(REPO / "hierarchies" / "cell_functions.yaml")
    score = float(re.search(r"mean per-task test accuracy \(score\): (" + NUMBER + ")",
                            stdout).group(1))
    rows = {}
    for line in stdout.splitlines():
        name, *values = line.split() or [""]
        if name in h.tasks and len(values) == 2:
            rows[name] = tuple(map(float, values))  # positives, accuracy
    assert set(rows) == set(h.task_names)
    assert score == pytest.approx(sum(a for _, a in rows.values()) / len(rows), abs=1e-3)
    for name, (positives, accuracy) in rows.items():
        assert 0 <= positives <= 1 and 0.5 <= accuracy <= 1, name
        for parent in h.parents(name):  # a gene with a function has its parents' too
            assert positives <= rows[parent][0] + 1e-9, (name, parent)
    genes = re.findall(r"gene \d: (.*)", stdout)
    assert len(genes) == 3
    for cells in genes:
        prob = {}
        for cell in cells.split(", "):
            name, value = cell.split()
            p, label = value.split("/")
            assert 0 <= float(p) <= 1 and label in ("0", "1"), cell
            prob[name] = float(p)
        for parent, child in h.graph.edges:  # coherent, up to the printed rounding
            assert prob[child] <= prob[parent] + 0.01, (parent, child, cells)
    width, height = png_size(out / "weight_sharing.png")
    assert min(width, height) > 300


def check_text_hierarchy_lstm(stdout: str, out: Path) -> None:
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert markdown in stdout  # the printed report is the file
    rows = report_rows(markdown)
    assert {n: r["type"] for n, r in rows.items()} == {
        "sentiment": "multiclass", "emotion": "multiclass", "aspects": "multilabel"}
    assert rows["sentiment"]["n"] == 120  # --quick: 600 reviews, 20 % held out
    assert rows["emotion"]["n"] < 120  # a neutral review has no emotion
    shown = re.findall(r"^    (sentiment|emotion)\s+(\w+)\s+p=(\S+) std=(\S+) MI=(\S+)$",
                       stdout, re.M)
    assert len(shown) == 8  # the 2 most and 2 least certain reviews, two tasks each
    for _, _, p, std, mi in shown:  # a probability's std is at most 0.5
        assert 0 <= float(p) <= 1 and 0 <= float(std) <= 0.5 and float(mi) >= 0


def check_evaluate_and_plot(stdout: str, out: Path) -> None:
    import taskgraph as tg

    h = tg.load_hierarchy(REPO / "hierarchies" / "animals.yaml")
    train, val, test, loss, val_loss = map(float, re.search(
        r"(\d+) train / (\d+) validation / (\d+) test .* training loss (" + NUMBER +
        r"), validation loss (" + NUMBER + ")", stdout).groups())
    assert (train, val, test) == (560, 120, 120)  # --quick: 800 animals split 70/15/15
    assert 0 < loss < 100 and 0 < val_loss < 100
    rows = report_rows(stdout)
    assert {n: r["type"] for n, r in rows.items()} == {t: h[t].type for t in h.task_names}
    assert rows["species"]["n"] < rows["mammal"]["n"] == test  # 30 % of species unknown
    synapses = re.findall(r"^\s+(\w+) -> (\w+)\s+(down|up)\s+(\w+)\s+mean (\S+)\s+std (\S+)"
                          r"\s+p (\S+)$", stdout, re.M)
    # animals.yaml: messages down and up every edge; mammal -> diet is a bernoulli synapse
    # with release probability 0.9, the others gaussian
    assert sorted((a, b, d) for a, b, d, *_ in synapses) == sorted(
        (a, b, d) for a, b in h.graph.edges for d in ("down", "up"))
    for a, b, _, kind, mean, std, p in synapses:
        assert kind == ("bernoulli" if (a, b) == ("mammal", "diet") else "gaussian")
        assert float(std) >= 0 and 0 < float(p) <= 1 and (kind == "bernoulli") == (float(p) < 1)
        if kind == "bernoulli":  # std = |a| sqrt(p (1 - p)) and mean = a p, a the amplitude
            amp, q = float(mean) / float(p), float(p)
            assert float(std) == pytest.approx(abs(amp) * math.sqrt(q * (1 - q)), abs=3e-3)
    for name in ("training_curves.png", "reliability.png", "task_graph.png", "synapses.png"):
        assert min(png_size(out / name)) > 200, name


def check_gene_ontology(stdout: str, out: Path) -> None:
    terms, edges, train, valid, test = numbers(re.search(
        r"(\d+) GO terms, (\d+) edges; (\d+) train / (\d+) valid / (\d+) test", stdout).group(0))
    assert (train, valid, test) == (512, 200, 300) and edges >= terms - 1 > 1000
    valid_auprc, test_auprc = numbers(stdout.split("AU(PRC)-bar:", 1)[1].splitlines()[0])
    assert 0 < valid_auprc < 1 and 0 < test_auprc < 1
    text = (out / "top_terms.txt").read_text(encoding="utf-8")
    assert text.strip() in stdout
    blocks = re.findall(r"test gene \d \((\d+) true terms\): top 5 of 16 MC samples\n.*\n"
                        r"((?:  GO\d+ .*\n){5})", text)
    assert len(blocks) == 3
    for true_terms, block in blocks:
        assert block.count(" yes\n") <= int(true_terms)
        probs = []
        for line in block.splitlines():
            _, p, std, mi, true = line.split()
            assert 0 <= float(p) <= 1 and float(std) >= 0 and float(mi) >= 0
            assert true in ("yes", "no")
            probs.append(float(p))
        assert probs == sorted(probs, reverse=True)


def check_images_hierarchy(stdout: str, out: Path) -> None:
    text = (out / "item_accuracy.txt").read_text(encoding="utf-8")
    chance = float(re.search(r"chance (" + NUMBER + ")", text).group(1))
    assert chance == pytest.approx(0.1)  # ten articles
    flat, hier = (float(v) for v in re.findall(r":\s+(" + NUMBER + r")$", text, re.M))
    assert 0 <= flat <= 1 and 0 <= hier <= 1


@dataclass
class Case:
    script: str
    files: list[str]  # expected under --out
    lines: list[str]  # substrings expected on stdout
    missing_data: object = None  # callable -> reason to skip, or None
    args: list[str] = field(default_factory=list)
    returncode: int = 0
    stderr: list[str] = field(default_factory=list)
    check: Callable[[str, Path], None] | None = None  # reads the printed and written output


CASES = {
    "stochastic_synapse": Case(
        "stochastic_synapse.py", ["synapse_histogram.png"],
        ["10000 draws per synapse"], check=check_stochastic_synapse),
    "noisy_updates_xor": Case(
        "noisy_updates_xor.py", ["xor_results.json"], [], check=check_noisy_updates_xor),
    "linear_hierarchy_sklearn": Case(
        "linear_hierarchy_sklearn.py", ["weight_sharing.png"],
        ["coherence violations (child more likely than parent): 0"],
        check=check_linear_hierarchy_sklearn),
    "images_hierarchy": Case(
        "images_hierarchy.py", ["item_accuracy.txt"], ["hierarchical, kind + group + item"],
        missing_data=_missing_fashion, check=check_images_hierarchy),
    "text_hierarchy_lstm": Case(
        "text_hierarchy_lstm.py", ["report.md"], ["SYNTHETIC corpus"],
        check=check_text_hierarchy_lstm),
    "evaluate_and_plot": Case(
        "evaluate_and_plot.py", ["training_curves.png"], [], check=check_evaluate_and_plot),
    "gene_ontology": Case(
        "gene_ontology.py", ["top_terms.txt"],
        ["coherence violations on the test set (a child term more probable than its "
         "parent): 0", "coherence violations in the sampled predictions of these genes: 0"],
        missing_data=_missing_hmc, check=check_gene_ontology),
    # without their data, the data-set examples say how to get it and exit with status 2
    "images_hierarchy_no_data": Case(
        "images_hierarchy.py", [], [], args=["--data", "{out}/nothing"], returncode=2,
        stderr=["apt-get install dataset-fashion-mnist"]),
    "gene_ontology_no_data": Case(
        "gene_ontology.py", [], [], args=["--root", "{out}/nothing"], returncode=2,
        stderr=["is not in", "--root DIR"]),
}


class Run:
    def __init__(self, case: Case, out: Path) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
        args = [a.replace("{out}", str(out)) for a in case.args]
        self.stdout, self.stderr = open(out / "stdout.txt", "w+"), open(out / "stderr.txt", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / case.script), "--quick", "--out", str(out), *args],
            cwd=REPO, env=env, stdout=self.stdout, stderr=self.stderr)

    def wait(self) -> tuple[int, str, str]:
        try:
            code = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"timed out after {TIMEOUT} s")
        self.stdout.seek(0)
        self.stderr.seek(0)
        return code, self.stdout.read(), self.stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stdout.close()
        self.stderr.close()


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """Start every selected example with its data present, all at once."""
    selected = [item.callspec.params["name"] for item in request.session.items
                if getattr(item, "module", None) is request.module and hasattr(item, "callspec")]
    started = {}
    for name in dict.fromkeys(selected):
        case = CASES[name]
        if case.missing_data is None or case.missing_data() is None:
            started[name] = Run(case, tmp_path_factory.mktemp(name))
    yield started
    for run in started.values():
        run.close()


@pytest.mark.parametrize("name", list(CASES))
def test_example(name, runs):
    case = CASES[name]
    reason = case.missing_data() if case.missing_data is not None else None
    if reason:
        pytest.skip(reason)
    run = runs[name]
    code, stdout, stderr = run.wait()
    assert code == case.returncode, f"exit status {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    for line in case.lines:
        assert line in stdout, f"{line!r} not printed; stdout:\n{stdout}\nstderr:\n{stderr}"
    for line in case.stderr:
        assert line in stderr, f"{line!r} not in stderr:\n{stderr}"
    if case.returncode != 0:
        assert "Traceback" not in stderr
    for name in case.files:
        path = run.out / name
        assert path.exists() and path.stat().st_size > 0, f"{name} was not written"
    if case.check is not None:
        case.check(stdout, run.out)


def test_every_example_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == {case.script for case in CASES.values()}
