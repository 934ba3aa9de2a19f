"""Continuing a problem (jacli.history and the CLI's no-EXPR path): from jacli's own JSON output on
a pipe, from the last problem kept in the user's cache folder, and the expression from a file.

Every run here keeps its history in a temporary folder (XDG_CACHE_HOME, HOME); the values are
checked against derivatives worked by hand and against the same problem typed out in full.
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import cli_runner

from jacli import history
from jacli.cli import app

PROBLEM = ["3*a + 2*b**2 + log(c)", "-i", "a=1,2,3", "-i", "b=3,4,5", "-i", "c=6,7,8"]
V = [0.1, 1.0, 0.0001]
# vᵀJ of 3a + 2b² + log(c), worked by hand: 3v, 4b·v, v/c
BY_HAND = {
    "a": [3 * v for v in V],
    "b": [4 * b * v for b, v in zip([3, 4, 5], V)],
    "c": [v / c for c, v in zip([6, 7, 8], V)],
}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh cache folder of the user's own; returns where the last problem is kept."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "jacli" / "last-problem.json"


def run(*argv: str, stdin: str = "", env: dict | None = None):
    """jacli in-process; standard input is ``stdin`` (empty: nothing piped in)."""
    return cli_runner().invoke(app, list(argv), input=stdin, env={"JACLI_DEBUG": "", **(env or {})})


def strict_json(text: str) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def assert_close(actual, expected) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=1e-15, atol=0)


# -- the last problem -------------------------------------------------------------------------------


def test_vjp_without_an_expression_continues_the_last_problem(cache) -> None:
    assert run("jacobian", *PROBLEM).exit_code == 0
    result = run("vjp", "--v", "0.1,1,0.0001", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "jacli: continuing the last problem: jacli jacobian '3*a + 2*b**2 + log(c)' -i a=1,2,3 -i b=3,4,5 -i c=6,7,8\n"
    )
    document = strict_json(result.stdout)
    assert document["expression"] == PROBLEM[0]
    for name, values in BY_HAND.items():
        assert_close(document["result"][name]["values"], values)


def test_the_history_file_holds_specs_not_tensors_readable_by_the_user_only(cache) -> None:
    assert run("jacobian", *PROBLEM, "--wrt", "a,b", "--seed", "3").exit_code == 0
    assert json.loads(cache.read_text()) == {
        "version": 1, "command": "jacobian", "expression": PROBLEM[0],
        "inputs": [["a", "1,2,3"], ["b", "3,4,5"], ["c", "6,7,8"]], "wrt": ["a,b"],
        "dtype": "float64", "device": "cpu", "seed": 3,
    }
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert [p.name for p in cache.parent.iterdir()] == ["last-problem.json"]  # no temporary file left
    # an unnamed input is kept under the variable's name
    assert run("grad", "x**2", "-i", "3").exit_code == 0
    assert json.loads(cache.read_text())["inputs"] == [["x", "3"]]


def test_what_the_user_types_replaces_that_part_of_the_last_problem(cache) -> None:
    assert run("jacobian", *PROBLEM, "--dtype", "float32").exit_code == 0
    result = run("vjp", "-i", "b=1,1,1", "--wrt", "b,c", "--v", "0.1,1,0.0001", "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = strict_json(result.stdout)
    assert document["dtype"] == "float32"  # kept from the last problem
    assert list(document["result"]) == ["b", "c"]  # the typed --wrt
    assert document["inputs"]["b"]["spec"] == "1,1,1" and document["inputs"]["a"]["spec"] == "1,2,3"
    np.testing.assert_allclose(document["result"]["b"]["values"], [4 * v for v in V], rtol=1e-6)
    typed = run("vjp", "-i", "b=1,1,1", "--wrt", "b,c", "--v", "0.1,1,0.0001", "--dtype", "float64", "-f", "json")
    assert strict_json(typed.stdout)["dtype"] == "float64"  # a typed --dtype wins


def test_a_random_input_is_drawn_again_with_the_last_seed(cache) -> None:
    first = strict_json(run("jacobian", "x**2", "-i", "randn:4", "--seed", "7", "-f", "json").stdout)
    continued = run("vjp", "--v", "ones", "-f", "json")
    assert "-i x=randn:4 --seed 7" in continued.stderr
    document = strict_json(continued.stdout)
    x = first["inputs"]["x"]["values"]
    assert document["inputs"]["x"]["values"] == x
    assert_close(document["result"]["x"]["values"], [2 * value for value in x])  # vᵀJ of x² with v = 1


def test_file_inputs_are_kept_by_absolute_path(cache, tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "x.npy", np.array([1.0, 2.0]))
    monkeypatch.chdir(data)
    assert run("jacobian", "x**3", "-i", "@x.npy").exit_code == 0
    assert json.loads(cache.read_text())["inputs"] == [["x", f"@{data / 'x.npy'}"]]
    monkeypatch.chdir(tmp_path)  # another folder: the file is found all the same
    result = run("grad", "sum(x)", "-i", "1")  # a different problem, then back to the file one
    assert result.exit_code == 0
    assert run("jacobian", "x**3", "-i", f"@{data / 'x.npy'}").exit_code == 0
    continued = run("vjp", "--v", "ones", "-f", "json")
    assert continued.exit_code == 0, continued.stderr
    assert_close(strict_json(continued.stdout)["result"]["x"]["values"], [3.0, 12.0])  # 3x²


def test_a_problem_reading_standard_input_is_not_kept(cache) -> None:
    assert run("jacobian", *PROBLEM).exit_code == 0 and cache.exists()
    assert run("jacobian", "x**2", "-i", "@-", stdin="1 2\n").exit_code == 0
    assert not cache.exists()  # neither it nor the older one, which would be continued by surprise
    result = run("vjp", "--v", "ones")
    assert result.exit_code == 2 and result.stdout == ""
    assert "jacli has run no problem for you yet" in result.stderr


def test_with_nothing_to_continue_the_error_shows_a_whole_command_with_the_users_v(cache) -> None:
    result = run("vjp", "--v", "0.1,1,0.0001")
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr == (
        "Error: jacli vjp needs a formula (EXPR); for example: jacli vjp \"3*a + 2*b**2 + log(c)\" -i a=1,2,3 "
        "-i b=3,4,5 -i c=6,7,8 --v 0.1,1,0.0001 (there is no problem to continue: nothing is piped in, and "
        "jacli has run no problem for you yet)\n"
    )
    command = result.stderr.split("for example: ", 1)[1].split(" (there is", 1)[0]
    import shlex

    suggested = run(*shlex.split(command)[1:], "-f", "json")  # the suggestion runs, and is right
    assert suggested.exit_code == 0
    for name, values in BY_HAND.items():
        assert_close(strict_json(suggested.stdout)["result"][name]["values"], values)


@pytest.mark.parametrize(
    "argv, command",
    [
        (["vjp", "--v", "1,0.5", "-i", "a=1,2"], 'jacli vjp "a**2" -i a=1,2 --v 1,0.5'),
        (["jvp", "--v", "t=1", "-i", "r=2", "-i", "t=0.5"], 'jacli jvp "r**2 + t**2" -i r=2 -i t=0.5 --v t=1'),
        (["jacobian"], 'jacli jacobian "(x+1)**2" --input eye:2'),
    ],
)
def test_the_suggested_command_uses_what_was_typed_and_runs(cache, argv, command) -> None:
    import shlex

    result = run(*argv)
    assert result.exit_code == 2
    assert f"needs a formula (EXPR); for example: {command} (there is no problem" in result.stderr
    assert run(*shlex.split(command)[1:]).exit_code == 0


def test_jacli_no_history_turns_it_off_both_ways(cache) -> None:
    assert run("jacobian", *PROBLEM).exit_code == 0
    kept = cache.read_text()
    off = {"JACLI_NO_HISTORY": "1"}
    assert run("grad", "x**2", "-i", "3", env=off).exit_code == 0
    assert cache.read_text() == kept  # not written
    result = run("vjp", "--v", "ones", env=off)  # not read
    assert result.exit_code == 2 and "JACLI_NO_HISTORY is set" in result.stderr
    assert run("vjp", "--v", "ones", env={"JACLI_NO_HISTORY": "0"}).exit_code == 0


def test_untrusted_mode_neither_reads_nor_writes_the_history_nor_expression_files(cache, tmp_path) -> None:
    assert run("jacobian", *PROBLEM).exit_code == 0
    kept = cache.read_text()
    result = run("vjp", "--v", "ones", "--untrusted")
    assert result.exit_code == 2 and "untrusted mode continues no earlier problem" in result.stderr
    assert run("grad", "x**2", "-i", "3", env={"JACLI_UNTRUSTED": "1"}).exit_code == 0
    assert cache.read_text() == kept
    (tmp_path / "expr.txt").write_text("x**2\n")
    for expression in (f"@{tmp_path / 'expr.txt'}", "-"):
        refused = run("grad", expression, "-i", "3", "--untrusted", stdin="x**2\n")
        assert refused.exit_code == 1 and refused.stdout == ""
        assert "is refused in untrusted mode; give the expression itself" in refused.stderr


def test_a_damaged_history_file_is_ignored_with_a_warning(cache) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text('{"version": 1, "command": "jacobian", "expression": "x", "inputs": "__import__"}')
    result = run("vjp", "--v", "ones")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Warning: ignored the last problem in {cache} (not a problem jacli wrote)")
    assert run("grad", "x**2", "-i", "3").exit_code == 0
    assert json.loads(cache.read_text())["expression"] == "x**2"  # replaced by the next run


def test_a_failed_write_leaves_the_older_problem_and_no_temporary_file(cache, monkeypatch) -> None:
    assert run("jacobian", *PROBLEM).exit_code == 0
    kept = cache.read_text()

    def refuse(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    result = run("grad", "x**2", "-i", "3")
    assert result.exit_code == 0 and result.stderr == ""  # the result matters more than the history
    assert cache.read_text() == kept
    assert [p.name for p in cache.parent.iterdir()] == ["last-problem.json"]


def test_the_cache_folder_follows_the_platform(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert history.history_file() == tmp_path / "xdg" / "jacli" / "last-problem.json"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG rule: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "platform", "linux")
    assert history.cache_folder() == tmp_path / "home" / ".cache" / "jacli"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert history.cache_folder() == tmp_path / "home" / "Library" / "Caches" / "jacli"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert history.cache_folder() == tmp_path / "local" / "jacli" / "Cache"


# -- a result piped in --------------------------------------------------------------------------------


def test_json_output_names_each_inputs_spec_and_values_and_v(cache) -> None:
    document = strict_json(run("vjp", *PROBLEM, "--v", "0.1,1,0.0001", "-f", "json").stdout)
    assert document["inputs"]["b"] == {"shape": [3], "spec": "3,4,5", "values": [3.0, 4.0, 5.0]}
    assert document["v"] == {"shape": [3], "values": V}
    jvp = strict_json(run("jvp", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--v", "t=1", "-f", "json").stdout)
    assert jvp["u"]["t"]["values"] == 1.0 and jvp["inputs"]["t"]["spec"] == "0.5"
    # J·u along t of (r cos t, r sin t), worked by hand: (-r sin t, r cos t)
    assert_close(jvp["result"]["output"]["values"], [-2 * math.sin(0.5), 2 * math.cos(0.5)])


def test_a_piped_result_is_continued_with_its_exact_values(cache) -> None:
    first = run("jacobian", "sin(x)*y", "-i", "x=randn:5", "-i", "y=rand:5", "--seed", "11", "-f", "json")
    assert first.exit_code == 0
    cache.unlink()  # the pipe, not the history, carries the problem
    result = run("vjp", "--v", "ones", "-f", "json", stdin=first.stdout)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "jacli: continuing the problem piped in: jacli jacobian 'sin(x)*y' -i x=randn:5 -i y=rand:5\n"
    )
    document, given = strict_json(result.stdout), strict_json(first.stdout)
    x, y = (np.array(given["inputs"][n]["values"]) for n in "xy")
    assert document["inputs"]["x"]["values"] == list(x) and document["inputs"]["y"]["values"] == list(y)
    # vᵀJ with v = 1 of sin(x)·y, by hand: cos(x)·y and sin(x)
    assert_close(document["result"]["x"]["values"], np.cos(x) * y)
    assert_close(document["result"]["y"]["values"], np.sin(x))
    # and the problem is now the last one: the same values again, from the history
    again = strict_json(run("vjp", "--v", "ones", "-f", "json").stdout)
    assert again["inputs"]["x"]["values"] == list(x)


def test_a_piped_float32_result_is_continued_with_the_same_float32_values(cache) -> None:
    import torch

    first = run("jacobian", "x**2", "-i", "randn:6", "--seed", "5", "--dtype", "float32", "-f", "json")
    result = run("vjp", "--v", "ones", "-f", "json", stdin=first.stdout)
    assert result.exit_code == 0, result.stderr
    document = strict_json(result.stdout)
    assert document["dtype"] == "float32"
    # the reference: the same draw made directly in float32 from the same seed
    from jacli.inputs import materialize, parse_spec

    drawn = materialize(parse_spec("randn:6"), name="x", dtype=torch.float32, device="cpu", seed=5)
    assert torch.equal(torch.tensor(document["inputs"]["x"]["values"], dtype=torch.float32), drawn)
    assert torch.equal(torch.tensor(document["result"]["x"]["values"], dtype=torch.float32), 2 * drawn)


def test_a_real_pipe_between_two_processes(tmp_path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "JACLI_DEBUG": ""}
    command = (
        f"{sys.executable} -m jacli jacobian '3*a + 2*b**2 + log(c)' -i a=1,2,3 -i b=randn:3 -i c=6,7,8 "
        f"--seed 2 -f json | {sys.executable} -m jacli vjp --v 0.1,1,0.0001 -f json"
    )
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("jacli: continuing the problem piped in: jacli jacobian")
    document = strict_json(done.stdout)
    b = document["inputs"]["b"]["values"]
    assert_close(document["result"]["b"]["values"], [4 * bi * v for bi, v in zip(b, V)])
    # the same problem typed out in full, with its randn drawn from the seed again
    typed = subprocess.run(
        [sys.executable, "-m", "jacli", "vjp", *PROBLEM[:4], "b=randn:3", *PROBLEM[5:], "--seed", "2", "--v",
         "0.1,1,0.0001", "-f", "json"], capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert strict_json(typed.stdout)["result"] == document["result"]


@pytest.mark.parametrize(
    "piped, message",
    [
        ("1 2 3\n", "standard input is not jacli's JSON output (not valid JSON); pipe the output of a jacli "
                    "command run with --format json"),
        ('{"a": 1}', "standard input holds JSON without an expression and inputs"),
    ],
)
def test_what_is_piped_in_must_be_a_jacli_result(cache, piped, message) -> None:
    result = run("vjp", "--v", "ones", stdin=piped)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {message}")


def test_a_piped_check_report_says_it_holds_no_values(cache) -> None:
    report = run("check", "x**2", "-i", "1,2", "-f", "json")
    result = run("vjp", "--v", "ones", stdin=report.stdout)
    assert result.exit_code == 1
    assert result.stdout == "" and "the check output gives no values for input 'x'" in result.stderr


# -- the expression from a file or standard input --------------------------------------------------


def test_the_expression_from_a_file_or_standard_input(cache, tmp_path) -> None:
    (tmp_path / "expr.txt").write_text("3*a + 2*b**2 + log(c)\n")
    for expression, stdin in ((f"@{tmp_path / 'expr.txt'}", ""), ("-", "3*a + 2*b**2 + log(c)\n")):
        result = run("vjp", expression, *PROBLEM[1:], "--v", "0.1,1,0.0001", "-f", "json", stdin=stdin)
        assert result.exit_code == 0, result.stderr
        document = strict_json(result.stdout)
        assert document["expression"] == "3*a + 2*b**2 + log(c)"
        for name, values in BY_HAND.items():
            assert_close(document["result"][name]["values"], values)


@pytest.mark.parametrize(
    "expression, stdin, message",
    [
        ("@missing.txt", "", "the expression file missing.txt: cannot read it (No such file or directory)"),
        ("@", "", "'@' needs a file name holding the expression, like @expr.txt"),
        ("-", "  \n", "standard input (-) holds no expression (it is empty)"),
    ],
)
def test_an_unreadable_expression_is_named(cache, expression, stdin, message) -> None:
    result = run("grad", expression, "-i", "1", stdin=stdin)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"Error: {message}\n"


def test_the_expression_and_an_input_cannot_both_read_standard_input(cache) -> None:
    result = run("grad", "-", "-i", "@-", stdin="x**2")
    assert result.exit_code == 1
    assert "the expression is - (standard input), and so is an input or --v" in result.stderr


# -- what a piped result carries besides its inputs -------------------------------------------------


@pytest.mark.parametrize("chosen", [["--wrt", "x"], ["--const", "y"]])
def test_a_piped_result_keeps_its_wrt_and_const(cache, chosen) -> None:
    first = run("grad", "x*y", "-i", "x=2", "-i", "y=3", *chosen, "-f", "json")
    assert first.exit_code == 0, first.stderr
    cache.unlink()  # the pipe, not the history, carries the problem
    result = run("grad", "-f", "json", stdin=first.stdout)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "jacli: continuing the problem piped in: jacli grad 'x*y' -i x=2 -i y=3 --wrt x\n"
    assert strict_json(result.stdout)["result"] == {"x": {"shape": [], "values": 3.0}}  # ∂(xy)/∂x = y = 3
    # what is typed now wins: --wrt y, or --const x (which leaves y)
    for typed in (["--wrt", "y"], ["--const", "x"]):
        now = run("grad", *typed, "-f", "json", stdin=first.stdout)
        assert now.exit_code == 0, now.stderr
        assert strict_json(now.stdout)["result"] == {"y": {"shape": [], "values": 2.0}}  # ∂(xy)/∂y = x = 2


def test_a_piped_hessian_keeps_its_wrt_in_order(cache) -> None:
    first = run("hessian", "x*y*z", "-i", "x=2", "-i", "y=3", "-i", "z=5", "--wrt", "z,x", "-f", "json")
    assert first.exit_code == 0, first.stderr
    result = run("jacobian", "-f", "json", stdin=first.stdout)
    assert result.exit_code == 0, result.stderr
    # ∂(xyz)/∂z = xy = 6, ∂/∂x = yz = 15, in --wrt order
    document = strict_json(result.stdout)
    assert list(document["result"]) == ["z", "x"]
    assert [document["result"][n]["values"] for n in ("z", "x")] == [6.0, 15.0]


def test_a_piped_and_a_remembered_problem_keep_their_points(cache) -> None:
    first = run("grad", "sum(x*y)", "-i", "x=[[1,2],[3,4]]", "-i", "y=5,7", "--batch-axis", "0", "--batched", "x",
                "-f", "json")
    assert first.exit_code == 0, first.stderr
    for stdin in (first.stdout, ""):  # piped in, then the last problem from the history
        result = run("vjp", "--v", "1", "-f", "json", stdin=stdin)
        assert result.exit_code == 0, result.stderr
        assert "--batch-axis 0 --batched x" in result.stderr
        document = strict_json(result.stdout)
        assert {k: document["points"][k] for k in ("count", "axis", "inputs")} == {"count": 2, "axis": 0, "inputs": ["x"]}
        # per point, vᵀJ of sum(x·y) with v = 1 is y for x (shared y) and that point's x for y
        assert document["result"]["x"]["values"] == [[5.0, 7.0], [5.0, 7.0]]
        assert document["result"]["y"]["values"] == [[1.0, 2.0], [3.0, 4.0]]
    kept = json.loads(cache.read_text())
    assert (kept["batch_axis"], kept["batched"]) == (0, ["x"])
    one_point = run("hessian", stdin=first.stdout)
    assert one_point.exit_code == 1 and one_point.stdout == ""
    assert one_point.stderr == (
        "Error: the problem piped in has many points (--batch-axis 0), and jacli hessian computes one point; give "
        "one point's problem (EXPR and its inputs), or continue this one with jacobian, vjp, jvp or grad\n")


def test_a_repeat_list_is_continued_and_a_graph_says_it_cannot_be(cache) -> None:
    repeated = run("vjp", "x**2", "-i", "x=1,2", "--v", "ones", "--repeat", "2", "-f", "json")
    assert repeated.exit_code == 0, repeated.stderr
    assert isinstance(json.loads(repeated.stdout), list)
    cache.unlink()
    result = run("jacobian", "-f", "json", stdin=repeated.stdout)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "jacli: continuing the problem piped in: jacli vjp 'x**2' -i x=1,2\n"
    assert strict_json(result.stdout)["result"]["x"]["values"] == [[2.0, 0.0], [0.0, 4.0]]  # diag(2x)
    graph = run("graph", "x**2", "-i", "x=1,2", "-f", "json")
    assert graph.exit_code == 0, graph.stderr
    refused = run("grad", stdin=graph.stdout)
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.startswith("Error: standard input: the graph output gives no values for input 'x' (the "
                                     "JSON of graph describes the problem without its numbers, and cannot be continued)")


def test_explaining_a_continued_problem_of_many_points_says_to_give_one_point(cache) -> None:
    first = run("grad", "sum(x*y)", "-i", "x=[[1,2],[3,4]]", "-i", "y=5,7", "--batch-axis", "0", "-f", "json")
    assert first.exit_code == 0, first.stderr
    result = run("grad", "--explain", stdin=first.stdout)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "Error: --explain explains one point; with --batch-axis there is one result per point: give one point's "
        "problem instead (EXPR and its inputs): the continued one has many points")
