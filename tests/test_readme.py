"""The README stays true: its Python example runs and its schema reference is complete."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from taskgraph.hierarchy import schema

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_quick_start_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block is not None, "README has no python example"
    code = block.group(1).replace('"model.pt"', repr(str(tmp_path / "model.pt")))
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["pred"]["species"].probs.shape == (8, 4)


@pytest.mark.parametrize("table,section", [
    (schema.TOP, "**Top level**"), (schema.TASK, "**A task**"), (schema.MODEL, "**`model:`**"),
    (schema.ENCODER, "**`model.encoder`**"), (schema.SYNAPSE, "**`model.synapse`"),
    (schema.STOCHASTIC, "**`model.stochastic`**"), (schema.EDGE, "**An edge override**"),
])
def test_schema_reference_lists_every_key(table: dict, section: str) -> None:
    start = README.index(section)
    body = README[start:].split("\n\n", 2)[1]  # the table right after the heading
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", body, re.M))
    assert documented == set(table), f"{section}: README {sorted(documented)} vs schema {sorted(table)}"


def test_quick_start_commands_match_ci() -> None:
    quick = re.search(r"## Quick start\n\n```bash\n(.*?)```", README, re.S).group(1).splitlines()
    ci = (ROOT / ".ci" / "run").read_text()
    assert len(quick) == 2
    assert quick[1] in ci.splitlines(), "CI must run the README's test command"
    for part in quick[0].split(" && "):
        assert part.replace("python -m pip install", "").strip().split()[0] in ci


def test_everyday_run_is_documented_and_every_slow_entry_names_a_test() -> None:
    after = README.split("## Quick start", 1)[1]
    assert 'python -m pytest -m "not slow"' in after.split("\n\n", 3)[2], \
        "the sentence after the quick start names the everyday run"
    spec = importlib.util.spec_from_file_location("taskgraph_root_conftest", ROOT / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)  # by path: tests/ has other conftest.py
    spec.loader.exec_module(conftest)
    for pattern in conftest.SLOW:
        path, _, name = pattern.partition("::")
        function = re.escape(name.split("[")[0]).replace(r"\*", r"\w*")
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {function}\(", source, re.M), f"conftest.SLOW: {pattern!r}"
