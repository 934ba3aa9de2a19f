"""jacli batch: JSON Lines in and out, in input order; groups computed together equal jobs run
alone; failures are lines with their line numbers; --resume; standard input.

References: each job run alone through the command line (``jacli COMMAND ... -f json``), whose
numbers are tested against SymPy and gradcheck elsewhere, and derivatives worked out by hand.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import cli_runner

from jacli import batch
from jacli.cli import app

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def run(*args: str, input: str | None = None):
    return cli_runner().invoke(app, list(args), input=input, env={"JACLI_DEBUG": None, "COLUMNS": "100"})


def lines_of(jobs: list[dict | str]) -> list[str]:
    return [job if isinstance(job, str) else json.dumps(job) for job in jobs]


def sweep(count: int, command: str = "jacobian") -> list[dict]:
    return [{"id": f"p{k}", "command": command, "expr": "[r*cos(t), r*sin(t)]",
             "inputs": {"r": 1 + k / 7, "t": f"{k / 11}"}} for k in range(count)]


def numbers(document: dict) -> list[float]:
    """Every number of a result document (output, results, matrix), flattened in order."""
    found: list[float] = []
    for key in ("output", "result", "matrix"):
        if key in document:
            _flatten(document[key], found, skip={"shape", "rows", "columns"})
    return found


def _flatten(value, found: list[float], skip=frozenset()) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in skip:
                _flatten(item, found, skip)
    elif isinstance(value, list):
        for item in value:
            _flatten(item, found, skip)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        found.append(float(value))


def test_grouped_results_equal_each_job_run_alone():
    jobs = sweep(12)
    out = [json.loads(line) for line in batch.run(lines_of(jobs))]
    assert [d["id"] for d in out] == [job["id"] for job in jobs]
    assert all("for 12 points together (vmap)" in d["how"] for d in out)  # one group, one pass
    for job, document in zip(jobs, out):
        alone = json.loads(batch.run_group(batch.Group([batch.parse_job(json.dumps(job), 1)]))[0])
        assert "vmap" not in alone["how"]
        assert document["inputs"] == alone["inputs"]
        np.testing.assert_allclose(numbers(document), numbers(alone), rtol=1e-12, atol=1e-15)
        assert set(document) == set(alone)


def test_a_grouped_line_has_the_hand_worked_jacobian():
    (line,) = list(batch.run(lines_of(sweep(2))))[1:]
    document = json.loads(line)
    r, t = 1 + 1 / 7, 1 / 11
    expected = [[math.cos(t), -r * math.sin(t)], [math.sin(t), r * math.cos(t)]]
    np.testing.assert_allclose(document["matrix"]["values"], expected, rtol=1e-15)
    assert document["inputs"]["r"]["spec"] == json.dumps(1 + 1 / 7) and document["inputs"]["t"]["spec"] == "0.09090909090909091"


@pytest.mark.parametrize("command,extra", [
    ("vjp", {"v": "ones"}), ("vjp", {"v": [0.5, 2]}), ("grad", {}), ("jvp", {"v": {"x": "1,0"}}),
])
def test_every_grouped_command_equals_its_jobs_alone(command, extra, monkeypatch):
    together = []
    compute = batch._compute_together
    monkeypatch.setattr(batch, "_compute_together", lambda jobs: together.append(len(jobs)) or compute(jobs))
    expr = "sum(x**3)" if command == "grad" else "x**3 * sum(x)"
    jobs = [{"id": k, "command": command, "expr": expr, "inputs": {"x": [k + 1.0, 2.0 - k]}, **extra} for k in range(5)]
    if command == "vjp" and isinstance(extra["v"], list):
        for k, job in enumerate(jobs):
            job["v"] = [k, 1]  # a v of its own per job: stacked, one per point
    out = [json.loads(line) for line in batch.run(lines_of(jobs))]
    assert together == [5]  # one pass for the five jobs
    for job, document in zip(jobs, out):
        assert document.get("how", "together (vmap)").endswith("together (vmap)"), document
        alone = json.loads(batch.run_group(batch.Group([batch.parse_job(json.dumps(job), 1)]))[0])
        np.testing.assert_allclose(numbers(document), numbers(alone), rtol=1e-12, atol=1e-15)
        assert document.get("v") == alone.get("v") and document.get("u") == alone.get("u")


def test_a_job_alone_prints_what_the_command_prints_with_its_id():
    cases = [
        ({"command": "jacobian", "expr": "(x+1)**2", "inputs": {"x": "eye:2"}}, ["jacobian", "(x+1)**2", "-i", "x=eye:2"]),
        ({"command": "hessian", "expr": "a*b**2", "inputs": {"a": 1, "b": 2}}, ["hessian", "a*b**2", "-i", "a=1", "-i", "b=2"]),
        ({"command": "hvp", "expr": "sum(x**3)", "inputs": {"x": "1,2"}, "v": "1,0"},
         ["hvp", "sum(x**3)", "-i", "x=1,2", "--v", "1,0"]),
        ({"command": "jacobian", "expr": "x**2", "inputs": {"x": "randn:3"}, "seed": 4, "wrt": "x", "method": "rows"},
         ["jacobian", "x**2", "-i", "x=randn:3", "--seed", "4", "--wrt", "x", "--method", "rows"]),
    ]
    for job, argv in cases:
        (line,) = batch.run([json.dumps({"id": "j", **job})])
        cli = run(*argv, "-f", "json")
        assert cli.exit_code == 0, cli.stderr
        assert line == '{"id": "j", ' + cli.stdout.rstrip("\n")[1:]


def test_lines_come_in_input_order_whatever_order_groups_finish():
    jobs = sweep(3) + [{"id": "g", "command": "grad", "expr": "x**2", "inputs": {"x": 3}}] + sweep(6)[3:]
    jobs[5]["id"] = "p5"

    def backwards(function, groups):  # as a cluster may: the last group first
        for index in reversed(range(len(groups))):
            yield index, function(groups[index])

    out = [json.loads(line)["id"] for line in batch.run(lines_of(jobs), mapper=backwards)]
    assert out == [job["id"] for job in jobs]


def test_a_group_that_failed_on_a_cluster_gives_error_lines():
    """A cluster hands back the exception of a group it could not compute (a worker that died)."""
    jobs = sweep(2) + [{"id": "g", "command": "grad", "expr": "x**2", "inputs": {"x": 3}}]

    def dying(function, groups):
        for index, group in enumerate(groups):
            yield index, RuntimeError("worker died") if len(group.jobs) == 2 else function(group)

    failed: list[int] = []
    out = [json.loads(line) for line in batch.run(lines_of(jobs), mapper=dying, failed=failed)]
    assert out[0] == {"id": "p0", "line": 1, "error": "computing this job's group failed on the cluster "
                                                      "(RuntimeError: worker died)"}
    assert out[1]["line"] == 2 and out[2]["result"]["x"]["values"] == 6.0 and failed == [1, 2]
    with pytest.raises(RuntimeError, match="worker died"):
        list(batch.run(lines_of(jobs), mapper=dying, raise_errors=True))


def test_failures_are_lines_with_their_line_numbers_and_the_others_go_on():
    jobs = lines_of([
        {"id": "ok1", "command": "grad", "expr": "x**2", "inputs": {"x": 3}},
        "not json",
        {"id": "cmd", "command": "jacobain", "expr": "x"},
        "",
        {"id": "key", "command": "grad", "expr": "x", "inputs": {"x": 1}, "metod": "reverse"},
        {"id": "parse", "command": "grad", "expr": "x**", "inputs": {"x": 1}},
        {"id": "shape", "command": "jacobian", "expr": "A @ x", "inputs": {"A": "eye:2", "x": "ones:3"}},
        {"id": "ok2", "command": "grad", "expr": "x**2", "inputs": {"x": 4}},
        {"id": "ok1", "command": "grad", "expr": "x**2", "inputs": {"x": 5}},
        {"id": "opt", "command": "jvp", "expr": "x**2", "inputs": {"x": 5}, "v": "1", "method": "forward"},
    ])
    failed: list[int] = []
    out = [json.loads(line) for line in batch.run(jobs, failed=failed)]
    assert [d["id"] for d in out] == ["ok1", 2, "cmd", "key", "parse", "shape", "ok2", "ok1", "opt"]
    assert out[8]["error"].startswith('jvp takes no "method" (as jacli jvp has no such option)')
    assert out[0]["result"]["x"]["values"] == 6.0 and out[6]["result"]["x"]["values"] == 8.0
    errors = {d["id"]: d for d in out[1:6]}
    assert {d["line"] for d in errors.values()} == {2, 3, 5, 6, 7}
    assert failed == [2, 3, 5, 6, 7, 9, 10]
    assert "not JSON" in errors[2]["error"]
    assert "did you mean 'jacobian'" in errors["cmd"]["error"]
    assert "did you mean 'method'" in errors["key"]["error"]
    assert "cannot be multiplied" in errors["shape"]["error"]
    assert out[7] == {"id": "ok1", "line": 9, "error": out[7]["error"]} and "line 1" in out[7]["error"]
    for document in out[1:6]:
        assert set(document) == {"id", "line", "error"}


def test_a_failing_group_gives_each_job_its_own_line():
    """Jobs alike are grouped; when the group fails, each job is run alone for its own answer."""
    jobs = [{"id": k, "command": "jacobian", "expr": "x @ y", "inputs": {"x": "1,2", "y": "3,4"}} for k in range(3)]
    jobs[1]["inputs"] = {"x": "1,2", "z": "3,4"}  # a name the expression lacks: not in the group
    out = [json.loads(line) for line in batch.run(lines_of(jobs))]
    assert out[0]["result"]["x"]["values"] == [3.0, 4.0] and out[2]["result"]["y"]["values"] == [1.0, 2.0]
    assert "'z' is not used by the expression" in out[1]["error"]


def test_cli_exit_codes_and_streams(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(lines_of(sweep(3))) + "\n")
    result = run("batch", str(good))
    assert result.exit_code == 0 and result.stderr == ""
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["p0", "p1", "p2"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + "{oops\n")
    result = run("batch", str(bad))
    assert result.exit_code == batch.EXIT_SOME_FAILED == 4
    assert len(result.stdout.splitlines()) == 4
    assert "1 job failed (line 4)" in result.stderr
    missing = run("batch", str(tmp_path / "none.jsonl"))
    assert missing.exit_code == 1 and missing.stdout == "" and missing.stderr.startswith("Error: no such file")


def test_standard_input_with_a_dash_or_nothing():
    text = "\n".join(lines_of(sweep(2))) + "\n"
    for argv in (["batch", "-"], ["batch"]):
        result = run(*argv, input=text)
        assert result.exit_code == 0, result.stderr
        assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["p0", "p1"]


def test_no_jobs_is_said_on_stderr_and_exits_0(tmp_path):
    empty, blank = tmp_path / "empty.jsonl", tmp_path / "blank.jsonl"
    empty.write_text("")
    blank.write_text("\n  \n")
    for argv, text, where in ((["batch", str(empty)], None, str(empty)), (["batch", str(blank)], None, str(blank)),
                              (["batch"], "", "standard input"), (["batch", "-"], "\n", "standard input")):
        result = run(*argv, input=text)
        assert result.exit_code == 0 and result.stdout == ""
        assert result.stderr == f"jacli: no jobs in {where} (it is empty or blank); nothing to do\n", argv
    assert run("batch", str(empty), "-q").stderr == ""
    target = tmp_path / "out.jsonl"
    result = run("batch", str(empty), "-o", str(target))
    assert result.exit_code == 0 and target.read_text() == ""
    assert result.stderr == f"jacli: no jobs in {empty} (it is empty or blank); wrote an empty {target}\n"


def test_output_file_is_noted_with_its_lines_and_errors(tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(lines_of(sweep(2) + ["{oops"])) + "\n")
    target = tmp_path / "out.jsonl"
    result = run("batch", str(jobs), "-o", str(target))
    written = target.read_text().splitlines()
    assert result.exit_code == 4 and result.stdout == "" and len(written) == 3
    assert sum('"error"' in line for line in written) == 1
    assert result.stderr.splitlines()[0] == f"jacli: wrote {target} (3 lines, 1 error)"
    jobs.write_text(lines_of(sweep(1))[0] + "\n")
    one = run("batch", str(jobs), "-o", str(target))
    assert one.exit_code == 0 and one.stderr == f"jacli: wrote {target} (1 line)\n"
    assert len(target.read_text().splitlines()) == 1
    assert run("batch", str(jobs), "-o", str(target), "-q").stderr == ""


def test_resume_skips_what_was_written_and_appends(tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(lines_of(sweep(5) + ["not json"])) + "\n")
    full = run("batch", str(jobs)).stdout.splitlines()
    out = tmp_path / "out.jsonl"
    out.write_text(full[0] + "\n" + full[1] + "\n" + full[2][:40])  # a crash cut the third line
    result = run("batch", str(jobs), "--resume", str(out))
    assert result.exit_code == 4  # the line that is not JSON fails again
    assert result.stdout == ""
    assert "dropped the last line" in result.stderr and "2 jobs already in" in result.stderr
    written = out.read_text().splitlines()
    assert [json.loads(line)["id"] for line in written] == ["p0", "p1", "p2", "p3", "p4", 6]
    def without_how(line: str) -> dict:  # "how" counts the points computed together
        document = json.loads(line)
        document.pop("how")
        return document

    assert [without_how(line) for line in written[2:5]] == [without_how(line) for line in full[2:5]]
    again = run("batch", str(jobs), "--resume", str(out))
    # nothing left to run, but job 6's error line is still there: not a finished run
    assert again.exit_code == 4 and again.stdout == "" and out.read_text().splitlines() == written
    assert "6 jobs already in" in again.stderr and "1 of them is an error: delete that line" in again.stderr


def test_resume_exits_4_while_the_file_holds_error_lines(tmp_path):
    """A second --resume runs nothing new; it exits 4 while errors remain, and 0 once they are deleted and rerun."""
    good = [{"id": k, "command": "grad", "expr": "sum(x**3)", "inputs": {"x": [k, k + 1.0]}} for k in range(3)]
    bad = [{"id": "b1", "command": "grad", "expr": "x**", "inputs": {"x": 1}},
           {"id": "b2", "command": "grad", "expr": "x", "inputs": {"x": [1, 2]}}]  # x is not one number
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(lines_of([good[0], bad[0], good[1], bad[1], good[2]])) + "\n")
    out = tmp_path / "r.jsonl"
    first = run("batch", str(jobs), "-o", str(out))
    assert first.exit_code == 4 and "2 jobs failed (lines 2, 4)" in first.stderr
    written = out.read_text()
    second = run("batch", str(jobs), "--resume", str(out))
    assert second.exit_code == 4 and second.stdout == "" and out.read_text() == written  # nothing rerun
    assert ("jacli: 5 jobs already in " in second.stderr
            and "skipped; 2 of them are errors: delete those lines to run them again" in second.stderr)
    assert "still holds 2 error lines from before (the jobs on lines 2, 4)" in second.stderr
    # deleting the error lines and fixing the jobs finishes the run: exit 0, the gradients 3x² by hand
    kept = [line for line in written.splitlines() if '"error"' not in line]
    out.write_text("\n".join(kept) + "\n")
    bad[0]["expr"], bad[1]["expr"] = "x**2", "sum(x**2)"
    jobs.write_text("\n".join(lines_of([good[0], bad[0], good[1], bad[1], good[2]])) + "\n")
    third = run("batch", str(jobs), "--resume", str(out))
    assert third.exit_code == 0, third.stderr
    results = {json.loads(line)["id"]: json.loads(line)["result"]["x"]["values"] for line in out.read_text().splitlines()}
    assert results == {0: [0.0, 3.0], 1: [3.0, 12.0], 2: [12.0, 27.0], "b1": 2.0, "b2": [2.0, 4.0]}


def test_output_file_and_usage_errors(tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(lines_of(sweep(2))))
    target = tmp_path / "out.jsonl"
    result = run("batch", str(jobs), "-o", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    assert len(target.read_text().splitlines()) == 2
    both = run("batch", str(jobs), "-o", str(target), "--resume", str(target))
    assert both.exit_code == 2 and both.stdout == "" and "give one of them" in both.stderr
    clusters = run("batch", str(jobs), "--scheduler", "tcp://127.0.0.1:8786", "--workers", "2")
    assert clusters.exit_code == 2 and clusters.stdout == ""
    assert clusters.stderr == ("Error: --scheduler uses a running cluster and --workers starts a local one; "
                               "give one of them\n")


def test_nan_in_a_group_names_its_job_on_stderr():
    jobs = [{"id": k, "command": "grad", "expr": "log(x)", "inputs": {"x": x}} for k, x in enumerate([1.0, 0.0, 2.0])]
    with pytest.warns(Warning, match=r'job 1 \(line 2\)'):
        out = [json.loads(line) for line in batch.run(lines_of(jobs))]
    assert out[0]["result"]["x"]["values"] == 1.0 and out[2]["result"]["x"]["values"] == 0.5
    assert out[1]["result"]["x"]["values"] == "inf"


def test_groups_are_split_at_the_limit(monkeypatch):
    monkeypatch.setattr(batch, "GROUP_LIMIT", 4)
    jobs = [batch.parse_job(line, k + 1) for k, line in enumerate(lines_of(sweep(10)))]
    assert [len(group.jobs) for group in batch.groups_of(jobs)] == [4, 4, 2]


def test_jobs_with_large_inputs_are_grouped_fewer_at_a_time(monkeypatch):
    monkeypatch.setattr(batch, "GROUP_BYTES", 3 * 1000 * 8)  # three jobs of 1,000 float64 numbers
    jobs = [batch.parse_job(json.dumps({"command": "grad", "expr": "sum(x)", "inputs": {"x": "ones:1000"}}), k + 1)
            for k in range(7)]
    assert [len(group.jobs) for group in batch.groups_of(jobs)] == [3, 3, 1]


def test_a_group_over_the_budget_is_split_and_gives_the_same_lines(monkeypatch):
    """Eight Jacobians of 10 x 10 with one point's working set pass 11.5 kB; four fit."""
    jobs = [{"id": k, "command": "jacobian", "expr": "x * sum(x)", "inputs": {"x": f"full:10:{k + 1}"},
             "max_memory": 11_500} for k in range(8)]
    sizes = []
    compute = batch._compute_together
    monkeypatch.setattr(batch, "_compute_together", lambda group: sizes.append(len(group)) or compute(group))
    out = [json.loads(line) for line in batch.run(lines_of(jobs))]
    assert sizes == [8, 4, 4]
    assert "for 4 points together" in out[0]["how"]
    for k, document in enumerate(out):
        x = np.full(10, k + 1.0)
        np.testing.assert_allclose(document["result"]["x"]["values"], np.diag(np.full(10, x.sum())) + x[:, None],
                                   rtol=1e-15)


def test_random_and_float32_inputs_grouped_equal_alone():
    jobs = [{"id": k, "command": "jacobian", "expr": "sin(x) * y", "inputs": {"x": "randn:3", "y": k + 0.5},
             "dtype": "float32", "seed": 7} for k in range(4)]
    out = list(batch.run(lines_of(jobs)))
    for job, line in zip(jobs, out):
        alone = batch.run_group(batch.Group([batch.parse_job(json.dumps(job), 1)]))[0]
        grouped, single = json.loads(line), json.loads(alone)
        assert grouped["inputs"] == single["inputs"]
        np.testing.assert_allclose(numbers(grouped), numbers(single), rtol=1e-6)


def test_groups_and_job_lines_are_picklable():
    import pickle

    jobs = [batch.parse_job(line, k + 1) for k, line in enumerate(lines_of(sweep(3)))]
    (group,) = batch.groups_of(jobs)
    again = pickle.loads(pickle.dumps(group))
    assert pickle.loads(pickle.dumps(batch.run_group)) is batch.run_group
    assert batch.run_group(again) == batch.run_group(group)


def test_no_dask_without_the_cluster_options(tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(lines_of(sweep(2))))
    code = ("import sys, runpy; sys.argv = ['jacli', 'batch', sys.argv[1]]\n"
            "try:\n    runpy.run_module('jacli', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('DASK' if any(m == 'dask' or m.startswith(('dask.', 'distributed')) for m in sys.modules) else 'NO DASK')")
    process = subprocess.run([sys.executable, "-c", code, str(jobs)], capture_output=True, text=True, timeout=300,
                             # JACLI_FULL_EXIT: the normal exit (SystemExit), so the line after it runs
                             env={**{k: v for k, v in os.environ.items() if k != "JACLI_DEBUG"}, "JACLI_FULL_EXIT": "1"})
    assert process.stdout.strip().splitlines()[-1] == "NO DASK", process.stderr


def test_a_long_input_streams_through_in_windows(monkeypatch):
    """Read, grouped and written a window at a time: the order, the ids seen and the numbers hold."""
    monkeypatch.setattr(batch, "WINDOW", 4)
    jobs = sweep(9)
    jobs[6]["id"] = "p1"  # the id of a line in the first window
    failed: list[int] = []
    out = [json.loads(line) for line in batch.run(iter(lines_of(jobs)), failed=failed)]
    assert [d["id"] for d in out] == [job["id"] for job in jobs]
    assert out[6]["error"].startswith('id "p1" is also the id of line 2') and failed == [7]
    whole = [json.loads(line) for line in batch.run(lines_of(sweep(9)))]
    for k in (0, 5, 8):
        np.testing.assert_allclose(numbers(out[k]), numbers(whole[k]), rtol=1e-12)


def test_const_holds_inputs_constant_as_on_the_command_line():
    """"const" is the command line's --const: the gradient with respect to the others only, by hand."""
    jobs = [{"id": k, "command": "grad", "expr": "sum((y - a*exp(-b*t))**2)", "const": ["y", "t"],
             "inputs": {"a": 2.0 + k, "b": 0.5, "y": "1,2,3", "t": "0.1,0.2,0.3"}} for k in range(3)]
    jobs.append({"id": "bad", "command": "grad", "expr": "x*y", "inputs": {"x": 1, "y": 2}, "const": "z"})
    out = [json.loads(line) for line in batch.run(lines_of(jobs))]
    y, t = np.array([1.0, 2, 3]), np.array([0.1, 0.2, 0.3])
    for k, document in enumerate(out[:3]):
        a, b = 2.0 + k, 0.5
        residual = y - a * np.exp(-b * t)
        assert set(document["result"]) == {"a", "b"}
        np.testing.assert_allclose(document["result"]["a"]["values"], np.sum(-2 * residual * np.exp(-b * t)), rtol=1e-12)
        np.testing.assert_allclose(document["result"]["b"]["values"], np.sum(2 * residual * a * t * np.exp(-b * t)), rtol=1e-12)
    assert out[3]["id"] == "bad" and out[3]["line"] == 4 and "'z' is not a variable" in out[3]["error"]
