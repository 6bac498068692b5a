"""``taskgraph validate``: OK lines, every problem on stderr with FILE:LINE:COL, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskgraph.cli.main import EXIT_INVALID, EXIT_OK, main

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(str(p) for p in (REPO / "hierarchies").glob("*.yaml"))
GOOD = "taskgraph: 1\ntasks:\n  a: {type: binary}\n  b: {type: regression, parents: [a]}\n"
BAD = ("taskgraph: 1\n"
       "model:\n"
       "  rounds: 0\n"
       "tasks:\n"
       "  mammal: {type: binary}\n"
       "  diet: {type: binary, parents: [mamal]}\n"
       "  cow: {type: binry}\n")
# positions counted in BAD by hand
BAD_PROBLEMS = [(3, 11, "model.rounds"), (6, 34, "tasks.diet.parents[0]"), (7, 15, "tasks.cow.type")]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_codes_are_0_and_2():
    assert (EXIT_OK, EXIT_INVALID) == (0, 2)


def test_good_files_print_ok(capsys):
    code, out, err = run(capsys, "validate", *SHIPPED)
    assert code == 0
    assert out.splitlines() == [f"{p}: OK" for p in SHIPPED]
    assert err == ""


def test_bad_file_prints_every_problem_on_stderr(capsys, tmp_path):
    path = write(tmp_path, "bad.yaml", BAD)
    code, out, err = run(capsys, "validate", path)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == len(BAD_PROBLEMS), err
    for line, (lineno, col, key) in zip(lines, BAD_PROBLEMS):
        assert line.startswith(f"{path}:{lineno}:{col}: {key}: "), line
    assert "did you mean 'mammal'?" in lines[1]
    assert "did you mean 'binary'?" in lines[2]
    assert "Traceback" not in err


def test_mixed_good_and_bad(capsys, tmp_path):
    good = write(tmp_path, "good.yaml", GOOD)
    bad = write(tmp_path, "bad.yaml", BAD)
    code, out, err = run(capsys, "validate", good, bad, good)
    assert code == 2
    assert out.splitlines() == [f"{good}: OK", f"{good}: OK"]
    assert len(err.splitlines()) == len(BAD_PROBLEMS)
    assert all(line.startswith(f"{bad}:") for line in err.splitlines())


@pytest.mark.parametrize("text, where", [
    ("taskgraph: 1\ntasks:\n  a: {type: binary}\ntaskgraph: 1\n", ":4:1: "),           # duplicate
    ("taskgraph: 1\ntasks:\n\ta: {type: binary}\n", ":3:1: "),                          # tab
    ("taskgraph: 1\ntasks:\n  a: {type: binary, parents: [b]}\n"
     "  b: {type: binary, parents: [a]}\n", ":3:31: tasks.a.parents[0]: cycle: a -> b -> a"),
    ("taskgraph: 1\ntasks:\n  a: !!python/object/apply:os.system ['true']\n", ":3:6: "),
    ("", ": empty document"),
])
def test_each_kind_of_problem_reaches_stderr(capsys, tmp_path, text, where):
    path = write(tmp_path, "x.yaml", text)
    code, out, err = run(capsys, "validate", path)
    assert code == 2 and out == ""
    assert f"{path}{where}" in err
    assert "Traceback" not in err


def test_json_report(capsys, tmp_path):
    good = write(tmp_path, "good.yaml", GOOD)
    bad = write(tmp_path, "bad.yaml", BAD)
    code, out, err = run(capsys, "validate", "--json", good, bad)
    assert code == 2
    report = json.loads(out)
    assert [(r["file"], r["ok"]) for r in report] == [(good, True), (bad, False)]
    assert report[0]["problems"] == []
    problems = report[1]["problems"]
    assert [(p["line"], p["column"], p["path"]) for p in problems] == BAD_PROBLEMS
    for p in problems:
        assert p["file"] == bad and p["kind"] == "schema" and p["message"]
    assert "unknown task 'mamal'" in problems[1]["message"]


def test_json_report_all_good(capsys):
    code, out, _ = run(capsys, "validate", "--json", *SHIPPED)
    assert code == 0
    assert json.loads(out) == [{"file": p, "ok": True, "problems": []} for p in SHIPPED]


def test_json_keeps_unicode(capsys, tmp_path):
    path = write(tmp_path, "u.yaml", "taskgraph: 1\ntasks:\n  猫: {type: binary, parents: [犬]}\n")
    code, out, _ = run(capsys, "validate", "--json", path)
    assert code == 2
    assert "犬" in out  # not \uXXXX escapes
    assert "'犬'" in json.loads(out)[0]["problems"][0]["message"]


def test_missing_file(capsys, tmp_path):
    missing = str(tmp_path / "nope.yaml")
    code, out, err = run(capsys, "validate", missing)
    assert code == 2
    assert out == ""
    assert missing in err
    assert "cannot read" in err.lower() or "no such file" in err.lower()
    assert "Traceback" not in err


def test_missing_file_json(capsys, tmp_path):
    missing = str(tmp_path / "nope.yaml")
    code, out, _ = run(capsys, "validate", "--json", missing)
    assert code == 2
    (entry,) = json.loads(out)
    assert entry["file"] == missing and entry["ok"] is False
    assert entry["problems"] and entry["problems"][0]["file"] == missing


def test_directory_argument(capsys, tmp_path):
    code, _, err = run(capsys, "validate", str(tmp_path))
    assert code == 2
    assert str(tmp_path) in err and "Traceback" not in err


def test_many_problems_are_capped_with_a_count(capsys, tmp_path):
    text = "taskgraph: 1\ntasks:\n" + "".join(f"  t{i}: {{type: binary, weight: 0}}\n"
                                           for i in range(130))
    path = write(tmp_path, "many.yaml", text)
    code, _, err = run(capsys, "validate", path)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 101
    assert lines[0].startswith(f"{path}:3:")  # t0's weight, on line 3
    assert "30 more problem" in lines[-1]
    code, out, _ = run(capsys, "validate", "--json", path)
    problems = json.loads(out)[0]["problems"]
    assert len(problems) == 101 and "30 more problem" in problems[-1]["message"]


def test_unreadable_scalar_is_reported_not_raised(capsys, tmp_path):
    # PyYAML reads '0x_' as an int it then cannot build
    path = write(tmp_path, "hex.yaml", "taskgraph: 1\ntasks:\n  a: {type: binary}\ndescription: 0x_\n")
    try:
        code, out, err = run(capsys, "validate", path)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"taskgraph validate raised {type(exc).__name__}: {exc}")
    assert code == 2
    assert f"{path}:4:" in err


def test_usage_errors_exit_2_with_one_line(capsys):
    for argv in ([], ["validate"], ["frobnicate"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "--help" in err, err


def test_subprocess_validate_and_no_torch(tmp_path):
    good = write(tmp_path, "good.yaml", GOOD)
    bad = write(tmp_path, "bad.yaml", BAD)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "taskgraph", "validate", good, bad],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == [f"{good}: OK"]
    assert [line.split(": ")[0] for line in proc.stderr.splitlines()] == [
        f"{bad}:{line}:{col}" for line, col, _ in BAD_PROBLEMS]
    assert "Traceback" not in proc.stderr
    code = ("import sys\n"
            "from taskgraph.cli.main import main\n"
            f"status = main(['validate', {good!r}])\n"
            "print(status, 'torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{good}: OK", "0 False"]
