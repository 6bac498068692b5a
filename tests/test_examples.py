"""Every script in examples/ runs with ``--quick`` and writes what it promises.

The selected examples are started together, each in its own process with one thread,
when the module's first test needs them; each test then waits for its own example.
An example whose data is absent is skipped, the missing data named in the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

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


@dataclass
class Case:
    script: str
    files: list[str]  # expected under --out
    lines: list[str]  # substrings expected on stdout
    missing_data: object = None  # callable -> reason to skip, or None
    args: list[str] = field(default_factory=list)
    returncode: int = 0
    stderr: list[str] = field(default_factory=list)


CASES = {
    "stochastic_synapse": Case(
        "stochastic_synapse.py", ["synapse_histogram.png"],
        ["10000 draws per synapse", "gaussian", "bernoulli", "release rate"]),
    "noisy_updates_xor": Case(
        "noisy_updates_xor.py", ["xor_results.json"],
        ["plain", "grad_noise=0.5", "mean final loss", "predicted P(xor = 1)"]),
    "linear_hierarchy_sklearn": Case(
        "linear_hierarchy_sklearn.py", ["weight_sharing.png"],
        ["mean per-task test accuracy", "lipid_signaling", "three test genes",
         "coherence violations (child more likely than parent): 0"]),
    "images_hierarchy": Case(
        "images_hierarchy.py", ["item_accuracy.txt"],
        ["item test accuracy", "flat, item task", "hierarchical, kind + group + item"],
        missing_data=_missing_fashion),
    "text_hierarchy_lstm": Case(
        "text_hierarchy_lstm.py", ["report.md"],
        ["SYNTHETIC corpus", "# Evaluation report", "| emotion | multiclass",
         "predictions with uncertainty", "MI="]),
    "evaluate_and_plot": Case(
        "evaluate_and_plot.py", ["training_curves.png"],
        ["# Evaluation report", "| species | multiclass", "learned synapses", "wrote "]),
    "gene_ontology": Case(
        "gene_ontology.py", ["top_terms.txt"],
        ["GO terms", "coherence violations on the test set (a child term more probable "
         "than its parent): 0", "top 5 of 16 MC samples", "MI (nats)",
         "coherence violations in the sampled predictions of these genes: 0"],
        missing_data=_missing_hmc),
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


def test_every_example_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == {case.script for case in CASES.values()}
