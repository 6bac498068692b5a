"""benchmarks/shared_sample.py runs end to end on a tiny model and writes its table."""

from __future__ import annotations

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))

from shared_sample import main, quartiles  # noqa: E402


def test_quartiles_name_the_median_and_its_spread():
    # quantiles of 1, 2, 3, 4, 5 (exclusive method): 1.5, 3, 4.5
    assert quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == "3.000 (1.500-4.500)"
    assert quartiles([1.25]) == "1.250"


def test_the_benchmark_writes_both_passes(tmp_path):
    out = tmp_path / "shared.md"
    assert main(["--tasks", "30", "--batch", "4", "--task-dim", "4", "--repeat", "3",
                 "--out", str(out)]) == 0
    text = out.read_text()
    for name in ("forward + backward", "forward, no grad"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        ratio = row.split("|")[-2]
        assert re.fullmatch(r" \d+\.\d{3} \(\d+\.\d{3}-\d+\.\d{3}\) ", ratio), row
    assert "30 tasks" in text and "B=4" in text
