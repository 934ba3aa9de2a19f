"""The jacli command: exit codes, what goes to stdout and stderr, formats, help, start-up cost.

Most tests run the Typer app in-process with CliRunner, stdout and stderr kept apart
(``result.stdout`` / ``result.stderr``; see ``helpers.cli_runner``); a few run ``python -m jacli`` in a subprocess to
check the real process end to end. Expected numbers are worked out by hand.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import cli_runner, record_work

import jacli
from jacli.cli import app

# torch's first forward-mode pass loads decompositions through torch.jit.script, which warns
# DeprecationWarning (hidden by Python outside pytest).
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

CLEAN_ENV = {"JACLI_DEBUG": None, "COLUMNS": "120"}


def run(*args: str, env: dict | None = None, input: str | None = None):
    result = cli_runner().invoke(app, list(args), env={**CLEAN_ENV, **(env or {})}, input=input)
    # A JacliError must never escape as an exception unless --debug asked for it.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert "--debug" in args or (env or {}).get("JACLI_DEBUG"), repr(result.exception)
    return result


def strict_json(text: str):
    def refuse(name: str):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def subprocess_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "JACLI_DEBUG"}
    env.update(extra)
    return env


def run_process(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=subprocess_env(**env)
    )


def assert_user_error(result, *fragments: str) -> None:
    """Exit 1, nothing on stdout, exactly one ``Error: `` line-start on stderr, no traceback."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("Error:") == 1
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


# -- success: stdout carries the results -------------------------------------------------------


def test_plain_jacobian_by_hand() -> None:
    result = run("jacobian", "x**2", "-i", "2,3", "--method", "rows")
    assert result.exit_code == 0
    assert result.stdout == "# x 2x2\n4.0 0.0\n0.0 6.0\n"
    assert result.stderr == ""


def test_plain_layout_follows_the_shape_line() -> None:
    # d sum(x)/dx = ones, shape () + (2, 2): two lines of two, as "# x 2x2" says, like grad's
    jacobian = run("jacobian", "sum(x)", "-i", "[[1,2],[3,4]]", "-f", "plain")
    assert jacobian.stdout == "# x 2x2\n1.0 1.0\n1.0 1.0\n"
    assert run("grad", "sum(x)", "-i", "[[1,2],[3,4]]", "-f", "plain").stdout == jacobian.stdout
    # polar, scalar inputs: the classic matrix, one line per output element, as the pretty view
    # shows it: y[0] = (cos t, -r sin t) = (1, 0), y[1] = (sin t, r cos t) = (0, 2) at r=2, t=0
    polar = run("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0", "-f", "plain")
    assert polar.stdout == "# matrix 2x2; rows y[0]..y[1]; columns r, t\n1.0 0.0\n0.0 2.0\n"


def test_default_format_off_a_terminal_is_plain() -> None:
    plain = run("jacobian", "x**2", "-i", "2,3", "-f", "plain").stdout
    assert run("jacobian", "x**2", "-i", "2,3").stdout == plain


@pytest.mark.parametrize("columns", ["100", "40"])
def test_pretty_full_wide_matrix_shows_every_number(tmp_path, columns: str) -> None:
    # The review's case, 3x50: vjp of x**2/2 with v = ones is x itself; torch's backward is the
    # reference. Every number must appear whole under its own row and column index.
    x = torch.randn(3, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 100
    np.save(tmp_path / "x.npy", x.numpy())
    leaf = x.clone().requires_grad_(True)
    (leaf**2 / 2).backward(torch.ones(3, 50, dtype=torch.float64))
    result = run("vjp", "x**2/2", "-i", f"@{tmp_path / 'x.npy'}", "--v", "ones", "--full", "-f", "pretty",
                 env={"COLUMNS": columns})
    assert result.exit_code == 0, result.stderr
    cells, header = {}, None
    for line in result.stdout.splitlines():
        assert len(line) <= int(columns) and line == line.rstrip()
        if "┃" in line:
            header = [c.strip() for c in line.split("┃")[1:]]
        elif "│" in line:
            row, *values = (c.strip() for c in line.split("│"))
            cells.update({(int(row), int(j)): float(v) for j, v in zip(header, values)})
    assert sorted(cells) == [(i, j) for i in range(3) for j in range(50)]
    for (i, j), shown in cells.items():
        assert shown == pytest.approx(leaf.grad[i, j].item(), rel=1e-5)  # 6 significant digits
    assert "columns 0–" in result.stdout


def test_plain_output_loads_with_numpy() -> None:
    # (x+1)**2 at eye:3, v = ones: 2(x+1) → 4 on the diagonal, 2 elsewhere
    result = run("vjp", "(x+1)**2", "-i", "eye:3", "--v", "ones")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "# x 3x3"
    table = np.loadtxt(io.StringIO(result.stdout))
    assert np.array_equal(table, [[4, 2, 2], [2, 4, 2], [2, 2, 4]])


def test_plain_jacobian_blocks_load_and_reshape() -> None:
    # sum(x*y, 0) with x, y of shape (3, 2): d/dx[i,j] of out[k] = y[i,j] if j == k
    x = [[1, 2], [3, 4], [5, 6]]
    y = [[7, 8], [9, 10], [11, 12]]
    result = run("jacobian", "sum(x*y, 0)", "-i", f"x={json.dumps(x)}", "-i", f"y={json.dumps(y)}")
    assert result.exit_code == 0
    text = result.stdout
    parts = re.split(r"^# (\w+) (\S+)\n", text, flags=re.MULTILINE)[1:]
    blocks = {parts[i]: (parts[i + 1], parts[i + 2]) for i in range(0, len(parts), 3)}
    assert set(blocks) == {"x", "y"}
    for name, other in (("x", np.array(y, float)), ("y", np.array(x, float))):
        shape_text, body = blocks[name]
        assert shape_text == "2x3x2"
        expected = np.zeros((2, 3, 2))
        for k in range(2):
            expected[k, :, k] = other[:, k]
        assert np.array_equal(np.loadtxt(io.StringIO(body)).reshape(2, 3, 2), expected)


def test_json_output_is_strict_and_by_hand() -> None:
    result = run("vjp", "2*x", "-i", "[[1,2,3,4]]", "--v", "onehot:0,1", "-f", "json")
    assert result.exit_code == 0 and result.stderr == ""
    document = strict_json(result.stdout)
    assert set(document) == {"command", "expression", "method", "device", "dtype", "seed", "inputs", "v", "output", "result"}
    assert document["command"] == "vjp" and document["expression"] == "2*x"
    assert document["method"] == "grad" and document["device"] == "cpu" and document["dtype"] == "float64"
    assert document["inputs"] == {"x": {"shape": [1, 4], "spec": "[[1,2,3,4]]", "values": [[1.0, 2.0, 3.0, 4.0]]}}
    assert document["v"] == {"shape": [1, 4], "values": [[0.0, 1.0, 0.0, 0.0]]}  # onehot:0,1
    assert document["output"] == {"shape": [1, 4], "values": [[2.0, 4.0, 6.0, 8.0]]}
    assert document["result"] == {"x": {"shape": [1, 4], "values": [[0.0, 2.0, 0.0, 0.0]]}}


def test_json_nan_goes_to_strings_and_the_warning_to_stderr() -> None:
    # d(x**2)/dx = 2x; row 1 of the reverse-mode Jacobian is [0*nan, 2] → nan in column 0
    result = run("jacobian", "x**2", "-i", "nan,1", "-f", "json")
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert lines[0] == "Warning: input x holds 1 NaN or infinite number"
    assert all(line.startswith("Warning: ") for line in lines)
    document = strict_json(result.stdout)
    values = document["result"]["x"]["values"]
    assert values[0][0] == "nan" and values[1][1] == 2.0


@pytest.mark.filterwarnings("always::DeprecationWarning")
def test_deprecation_notices_stay_off_stderr(monkeypatch) -> None:
    """A test runner turns DeprecationWarnings on; users of the CLI still see only jacli's own."""
    import warnings

    from jacli import api

    original = api.compute_jacobian

    def noisy(*args, **kwargs):
        warnings.warn("some library API is deprecated", DeprecationWarning)
        return original(*args, **kwargs)

    monkeypatch.setattr(api, "compute_jacobian", noisy)
    result = run("jacobian", "x**2", "-i", "inf,1", "--wrt", "x", "-m", "forward")
    assert result.exit_code == 0
    assert "deprecated" not in result.stderr
    assert result.stderr.splitlines()[0] == "Warning: input x holds 1 NaN or infinite number"


def test_pretty_output_on_stdout_only() -> None:
    result = run("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "-f", "pretty")
    assert result.exit_code == 0 and result.stderr == ""
    for number in (f"{math.cos(0.5):.6g}", f"{-2 * math.sin(0.5):.6g}", f"{math.sin(0.5):.6g}", f"{2 * math.cos(0.5):.6g}"):
        assert number in result.stdout
    assert "∂/∂r" in result.stdout and "∂/∂t" in result.stdout


def test_pretty_escapes_the_expression() -> None:
    result = run("jacobian", "[x, y]", "-i", "x=1,2", "-i", "y=3,4", "-f", "pretty")
    assert result.exit_code == 0
    assert "[x, y]" in result.stdout


def test_precision_option() -> None:
    result = run("vjp", "3*a + 2*b**2 + log(c)", "-i", "a=1,2,3", "-i", "b=3,4,5", "-i", "c=6,7,8",
                 "--v", "0.1,1,0.0001", "--precision", "3")
    assert result.exit_code == 0
    # by hand: 3v = 0.3 3 0.0003; 4bv = 1.2 16 0.002; v/c = 0.0167 0.143 1.25e-05
    assert result.stdout == "# a 3\n0.3 3 0.0003\n# b 3\n1.2 16 0.002\n# c 3\n0.0167 0.143 1.25e-05\n"


def test_every_digit_by_default() -> None:
    result = run("vjp", "3*a", "-i", "a=1", "--v", "0.1")
    assert result.stdout.splitlines()[1] == repr(3 * 0.1)


def test_wrt_option() -> None:
    result = run("jacobian", "a*b + c**2", "-i", "a=1", "-i", "b=5", "-i", "c=3", "--wrt", "c,a", "-f", "json")
    assert result.exit_code == 0
    document = strict_json(result.stdout)
    assert document["result"] == {"a": {"shape": [], "values": 5.0}, "c": {"shape": [], "values": 6.0}}


def test_dtype_float32_option() -> None:
    result = run("vjp", "x**2", "-i", "0.1,0.2", "--v", "ones", "--dtype", "float32", "-f", "json")
    document = strict_json(result.stdout)
    assert document["dtype"] == "float32"
    # 2x in float32, written with the fewest digits that read back as that float32
    values = document["result"]["x"]["values"]
    assert [np.float32(v) for v in values] == [np.float32(2) * np.float32(0.1), np.float32(2) * np.float32(0.2)]
    assert values == [0.2, 0.4]


def test_input_from_stdin() -> None:
    result = run("jacobian", "x**2", "-i", "@-", input="1 2\n")
    assert result.exit_code == 0
    assert np.array_equal(np.loadtxt(io.StringIO(result.stdout)), [[2, 0], [0, 4]])


# -- user errors: exit 1 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["jacobian", "x**2", "-i", "y=1"], ["'y'", "x"]),
        (["jacobian", "x*y", "-i", "x=1"], ["no input for y"]),
        (["jacobian", "x*y", "-i", "1"], ["without a name"]),
        (["jacobian", "x", "-i", "x=1", "-i", "x=2"], ["twice"]),
        (["jacobian", "x", "-i", "x=bogus:3"], ["bogus"]),
        (["jacobian", "x", "-i", "x="], ["empty"]),
        (["jacobian", "x", "-i", "x=[[1,2],[3]]"], ["same shape"]),
        (["jacobian", "sine(x)", "-i", "1"], ["did you mean sin"]),
        (["jacobian", "x +", "-i", "1"], ["cannot parse"]),
        (["jacobian", "__import__('os')", "-i", "1"], ["not allowed"]),
        (["jacobian", "2 + 3"], ["no variables"]),
        (["jacobian", "x @ y", "-i", "x=ones:2x3", "-i", "y=ones:2x3"], ["(2, 3)"]),
        (["jacobian", "x*y", "-i", "x=1", "-i", "y=2", "--wrt", "z"], ["--wrt 'z'"]),
        (["jacobian", "x", "-i", "1", "--max-memory", "lots"], ["--max-memory 'lots'"]),
        (["jacobian", "x", "-i", "ones:10", "--max-memory", "500B"], ["960 B", "500 B"]),
        (["jacobian", "x", "-i", "1", "--device", "foo"], ["unknown device 'foo'", "cpu"]),
        (["jacobian", "x", "-i", "@/no/such/file.npy"], ["cannot read"]),
        (["vjp", "2*x", "-i", "1,2,3", "--v", "1,2"], ["(2,)", "(3,)"]),
        (["vjp", "2*x", "-i", "1,2,3", "--v", "onehot:7"], ["out of range"]),
        (["vjp", "x", "-i", "x=onehot:1", "--v", "1"], ["onehot"]),
    ],
)
def test_user_errors_exit_1(args, fragments) -> None:
    assert_user_error(run(*args), *fragments)


def test_the_input_is_validated_before_the_expression_is_compiled() -> None:
    # Both are wrong; the cheap spec check answers first, with one error only.
    assert_user_error(run("jacobian", "x +", "-i", "x=bogus:3"), "bogus")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is available here")
def test_cuda_device_without_cuda() -> None:
    assert_user_error(run("jacobian", "x**2", "-i", "1,2", "--device", "cuda"), "CUDA", "--device cpu")


def test_memory_budget_is_refused_before_any_work(monkeypatch) -> None:
    work = record_work(monkeypatch)
    result = run("jacobian", "(x+1)**2", "-i", "eye:1000")
    # (10**6 outputs) * (10**6 inputs) = 10**12 numbers; * 8 bytes = 8.0 TB
    assert_user_error(result, "1,000,000,000,000", "8.0 TB", "vjp with --v")
    assert work == []  # refused from shapes: eye:1000 never built, nothing evaluated
    # (the time it takes is measured by benchmarks/bench_refusals.py, not asserted here)


@pytest.mark.parametrize("suffix", [".json", ".txt"])
def test_a_5000_digit_integer_in_a_file_or_on_stdin_is_an_error_line(tmp_path, suffix) -> None:
    text = "[1, " + "9" * 5000 + "]"
    (tmp_path / f"big{suffix}").write_text(text)
    for result in (run("jacobian", "x", "-i", f"@{tmp_path / f'big{suffix}'}"),
                   run("jacobian", "x", "-i", "@-", input=text)):
        assert_user_error(result, "9999999999...9999999999 (5,000 digits)", "larger than float64", "write inf")
        assert len(result.stderr) < 300


def test_a_shape_of_8000_digit_elements_is_an_error_line() -> None:
    nines = "9" * 4000
    result = run("jacobian", "x", "-i", f"ones:{nines}x{nines}")
    assert_user_error(result, "1.00e+8000 elements", "over the memory budget", "Use a smaller shape")
    assert len(result.stderr) < 400


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch: sparse CSR and nested tensors are beta
@pytest.mark.parametrize(
    "make_tensor,what,fix",
    [
        (lambda: torch.empty(3, device="meta"), "a meta tensor", "one that holds numbers"),
        (lambda: torch.eye(3).to_sparse(), "a sparse COO tensor", "t.to_dense()"),
        (lambda: torch.eye(3).to_sparse_csr(), "a sparse CSR tensor", "t.to_dense()"),
        (lambda: torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]), "a nested tensor", "t.to_padded_tensor(0.0)"),
    ],
    ids=["meta", "sparse_coo", "sparse_csr", "nested"],
)
def test_a_pt_file_without_a_dense_strided_tensor_is_an_error_line(tmp_path, make_tensor, what, fix) -> None:
    path = tmp_path / "t.pt"
    torch.save(make_tensor(), path)
    result = run("jacobian", "x", "-i", f"@{path}")
    assert_user_error(result, f"x = @{path}: holds {what}", "dense, strided tensor of real numbers", f"save {fix}")


def test_closed_stdout_is_an_error_line() -> None:
    """jacli ... >&- : Python starts with sys.stdout None; the result has nowhere to go."""
    process = subprocess.run(
        [sys.executable, "-m", "jacli", "jacobian", "x", "-i", "1"], stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, timeout=120, env=subprocess_env(), preexec_fn=lambda: os.close(1),
    )
    assert process.returncode == 1
    assert process.stderr.startswith("Error: standard output is closed") and process.stderr.count("\n") == 1
    assert "--output FILE" in process.stderr and "Traceback" not in process.stderr


def test_closed_stdin_is_an_error_line(monkeypatch) -> None:
    # jacli ... -i @- <&- : sys.stdin is None (CliRunner always gives a stdin, so set it inside)
    from jacli.inputs import files

    real = files.read_file

    def closed_stdin(*args, **kwargs):
        monkeypatch.setattr(sys, "stdin", None)
        return real(*args, **kwargs)

    monkeypatch.setattr(files, "read_file", closed_stdin)
    assert_user_error(run("jacobian", "x", "-i", "@-"), "x = @- (standard input): standard input is closed")


# -- usage errors: exit 2, one line in jacli's words ------------------------------------------------


def assert_usage_error(result, *fragments: str) -> str:
    """Exit 2, nothing on stdout, one ``Error:`` line on stderr (no click usage block), no traceback."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Usage:" not in result.stderr and "Traceback" not in result.stderr
    assert "Value error" not in result.stderr and "Input should be" not in result.stderr  # pydantic's words
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result.stderr.strip()


@pytest.mark.parametrize(
    "args,line",
    [
        (["jacobian", "x", "-i", "1", "-m", "revers"],
         "Error: --method 'revers' is not one of its choices; did you mean 'reverse'? The choices: auto, "
         "reverse, forward, rows, compressed, structured or symbolic"),
        (["jacobian", "x", "-i", "1", "--method=revers"], "did you mean 'reverse'?"),
        (["vjp", "x", "-i", "1", "--v", "1", "--method", "rows"], "--method 'rows' is not one of its choices; choose auto, grad or backward"),
        (["jacobian", "x", "-i", "1", "--format", "xml"], "--format 'xml' is not one of its choices; choose pretty, plain, json or csv"),
        (["jacobian", "x", "-i", "1", "--dtype", "float16"], "did you mean 'float64'?"),
        (["jacobian", "x", "-i", "1", "--layout", "diag"], "did you mean 'diagonal'?"),
        (["jacobian", "x", "-i", "1", "--precision", "0"],
         "Error: --precision 0 is out of range; give a whole number from 1 to 17"),
        (["jacobian", "x", "-i", "1", "--precision", "18"], "--precision 18 is out of range"),
        (["jacobian", "x", "-i", "1", "--precision", "six"], "--precision 'six' is not a whole number"),
        (["jacobian", "x", "-i", "1", "--seed", "x"], "--seed 'x' is not a whole number; give a whole number, e.g. --seed 0"),
        (["check", "x", "-i", "1", "--rtol", "tight"], "--rtol 'tight' is not a number; give a number, e.g. --rtol 0.001"),
        (["jacobian", "x", "-i", "1", "--inptu", "2"], "Error: jacli jacobian has no option --inptu; did you mean --input?"),
        (["jacobian", "x", "-i", "1", "--bogus"], "Error: jacli jacobian has no option --bogus; 'jacli jacobian --help' lists its options"),
        (["jacobian", "x", "-I", "1"], "Error: jacli jacobian has no option -I; did you mean -i?"),
        (["jacobian", "x", "-i", "1", "--v", "1"], "jacli vjp, jacli jvp or jacli hvp take it"),
        (["jacobian", "x", "-i", "1", "-v", "1"], "jacli jacobian has no option -v; jacli vjp, jacli jvp or jacli hvp take it"),
        (["jacobian", "x", "-i", "1", "-qz"], "Error: jacli jacobian has no option -z; 'jacli jacobian --help' lists its options"),
        (["jacobian", "x", "y", "-i", "1"], "takes one formula, and 'y' came after it; quote a formula that has spaces"),
        (["jacobain", "x"], "Error: jacli has no command 'jacobain'; did you mean 'jacobian'? (the commands: jacobian, vjp,"),
        (["--bogus"], "Error: jacli has no option --bogus; 'jacli --help' lists its options"),
        (["-"], "Error: jacli has no command '-'; the commands are jacobian, vjp, jvp, grad, hessian, hvp, check, graph, functions"),
        (["jacobian", "x", "-i", "1", "--full=1"], "Error: --full takes no value; write --full alone"),
        (["jacobian", "x", "-i", "1", "--max-memory"], "Error: --max-memory needs a value (SIZE); 'jacli jacobian --help' says what it takes"),
        (["jacobian", "x", "-i", "1", "--rtol", "0.1"], "Error: jacli jacobian has no option --rtol; jacli check takes it"),
        (["batch", "a.jsonl", "b.jsonl"], "Error: jacli batch takes one jobs file, and 'b.jsonl' came after it; give one"),
        (["jacobian", "x", "-i", "1", "--no-colour"], "did you mean --no-color?"),
    ],
)
def test_usage_errors_are_one_line_in_jacli_words(args, line) -> None:
    assert_usage_error(run(*args), line)


def test_a_missing_v_shows_a_complete_command_that_runs() -> None:
    message = assert_usage_error(run("vjp", "x", "-i", "1"), "Error: jacli vjp needs --v SPEC; for example: jacli vjp ")
    suggested = shlex.split(message.split("for example: ", 1)[1])
    result = run(*suggested[1:])
    # vjp of 3a + 2b² + log c with v = (0.1, 1, 1e-4): 3v, 4bv, v/c, by hand
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(np.loadtxt(io.StringIO(result.stdout)),
                               [[0.3, 3, 3e-4], [1.2, 16, 4 * 5 * 1e-4], [0.1 / 6, 1 / 7, 1e-4 / 8]], rtol=1e-12)


def test_a_missing_formula_and_a_missing_value_show_an_example() -> None:
    assert_usage_error(run("jacobian"), "Error: jacli jacobian needs a formula (EXPR); for example: jacli jacobian \"(x+1)**2\"")
    assert_usage_error(run("jacobian", "x", "-i"), "Error: -i needs a value (NAME=SPEC); for example: jacli jacobian ")


@pytest.mark.parametrize("args", [["jacobian", "-x**2", "-i", "2"], ["jacobian", "-i", "2", "-x**2"]])
def test_a_formula_starting_with_minus_gets_the_double_dash_hint_that_works(args) -> None:
    message = assert_usage_error(run(*args), "jacli jacobian has no option -x; if '-x**2' is the formula, put -- before it: ")
    fixed = message.split("put -- before it: ", 1)[1]
    assert fixed == 'jacli jacobian -i 2 -- "-x**2"'
    result = run(*shlex.split(fixed)[1:])
    assert result.exit_code == 0 and result.stdout == "# matrix 1x1; rows y; columns x\n-4.0\n"  # -2x = -4 at 2


def test_choices_are_case_insensitive() -> None:
    lower = run("jacobian", "x**2", "-i", "1,2", "-f", "json", "-m", "reverse", "--dtype", "float32", "--layout", "dense")
    upper = run("jacobian", "x**2", "-i", "1,2", "-f", "JSON", "-m", "Reverse", "--dtype", "FLOAT32", "--layout", "Dense")
    assert upper.exit_code == 0, upper.stderr
    assert upper.stdout == lower.stdout
    document = strict_json(upper.stdout)
    assert document["method"] == "reverse" and document["dtype"] == "float32"
    assert document["result"]["x"]["values"] == [[2.0, 0.0], [0.0, 4.0]]  # 2x at (1, 2)


@pytest.mark.parametrize("command,v", [("vjp", "1,10"), ("jvp", "1,10"), ("hvp", "1,10")])
def test_short_v_is_the_same_as_long_v(command: str, v: str) -> None:
    expression = "sum(x**3)" if command == "hvp" else "x**3"
    short = run(command, expression, "-i", "1,2", "-v", v)
    assert short.exit_code == 0, short.stderr
    assert short.stdout == run(command, expression, "-i", "1,2", "--v", v).stdout
    # 3x² = (3, 12) for the first derivative; 6x = (6, 12) for the Hessian's diagonal; times v
    expected = {"vjp": [3.0, 120.0], "jvp": [3.0, 120.0], "hvp": [6.0, 120.0]}[command]
    assert np.loadtxt(io.StringIO(short.stdout)).tolist() == expected


@pytest.mark.parametrize("command", ["jacobian", "vjp", "jvp", "grad", "hessian", "hvp", "check"])
def test_usage_line_names_the_formula_as_expr(command: str) -> None:
    first = run(command, "--help").stdout.splitlines()[0]
    assert first.endswith(f" {command} [OPTIONS] [EXPR]"), first  # optional: it may continue a problem


# -- check: 0 agree, 3 disagree or not confirmed, 1 user error, 2 usage ------------------------------


def test_check_exit_codes_tell_a_wrong_derivative_from_a_typo(monkeypatch) -> None:
    assert run("check", "x**2", "-i", "1,2").exit_code == 0
    not_confirmed = run("check", "sqrt(x)", "-i", "0,1")  # d√x/dx = inf at 0: nothing can confirm it
    assert not_confirmed.exit_code == 3 and "NOT CONFIRMED" in not_confirmed.stdout
    assert_user_error(run("check", "sine(x)", "-i", "1"), "did you mean sin")
    assert_usage_error(run("check", "x", "-i", "1", "--rtol", "x"))

    # a reference that is wrong in one entry: d(x²)/dx = diag(2, 4) at (1, 2), here diag(2, 4.5)
    from jacli import verify

    real = verify.check
    wrong = lambda f, args, positions: [torch.tensor([[2.0, 0.0], [0.0, 4.5]], dtype=torch.float64)]  # noqa: E731
    monkeypatch.setattr(verify, "check", lambda *a, **k: real(*a, reference=wrong, **k))
    disagree = run("check", "x**2", "-i", "1,2")
    assert disagree.exit_code == 3, disagree.stderr
    assert disagree.stderr == "" and "FAIL" in disagree.stdout


def test_check_help_documents_its_exit_codes() -> None:
    text = " ".join(run("check", "--help").stdout.split())
    assert "0 when all agree" in text and "3 when a method disagrees" in text and "1 for an error" in text


# -- --debug, --version, --help -----------------------------------------------------------------


def test_debug_option_raises_the_error() -> None:
    result = run("jacobian", "x**2", "-i", "y=1", "--debug")
    assert result.exit_code == 1
    assert isinstance(result.exception, jacli.InputError)
    assert "Error:" not in result.stderr


@pytest.mark.parametrize("value", ["1", "yes"])
def test_debug_environment_variable_raises_the_error(value: str) -> None:
    result = run("jacobian", "x**2", "-i", "y=1", env={"JACLI_DEBUG": value})
    assert isinstance(result.exception, jacli.InputError)


def test_debug_environment_variable_zero_is_off() -> None:
    assert_user_error(run("jacobian", "x**2", "-i", "y=1", env={"JACLI_DEBUG": "0"}))


def test_debug_shows_a_traceback_in_a_real_process() -> None:
    process = run_process("-m", "jacli", "jacobian", "x", "-i", "x=bogus:3", JACLI_DEBUG="1")
    assert process.returncode == 1
    assert process.stdout == ""
    assert "Traceback (most recent call last)" in process.stderr
    assert "jacli.errors.InputError" in process.stderr
    process = run_process("-m", "jacli", "jacobian", "x", "-i", "x=bogus:3", "--debug")
    assert process.returncode == 1 and "Traceback" in process.stderr
    process = run_process("-m", "jacli", "jacobian", "x", "-i", "x=bogus:3")
    assert process.returncode == 1 and "Traceback" not in process.stderr
    assert process.stderr.startswith("Error: ") and process.stderr.count("Error:") == 1


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    result = run(flag)
    assert result.exit_code == 0
    assert re.fullmatch(r"jacli \d+\.\d+\.\d+\S*\n", result.stdout)
    assert result.stdout == f"jacli {jacli.__version__}\n"


def command_names() -> list[str]:
    return [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]


def test_the_two_core_commands_exist() -> None:
    assert {"jacobian", "vjp"} <= set(command_names())


@pytest.mark.parametrize("name", command_names())
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_has_help_with_an_example(name: str, flag: str) -> None:
    result = run(name, flag)
    assert result.exit_code == 0 and result.stderr == ""
    assert re.search(rf"^\s+jacli {name}( \S|$)", result.stdout, flags=re.MULTILINE), result.stdout


def test_top_level_help_lists_commands_with_an_example() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in command_names():
        assert re.search(rf"^\s+{name}\s", result.stdout, flags=re.MULTILINE)
    assert re.search(r"jacli jacobian \S", result.stdout), result.stdout


def click_group():
    import typer.main

    return typer.main.get_command(app)


def test_every_command_and_every_option_has_help_text() -> None:
    """sqlite-utils' rule: nothing a user can type is undocumented."""
    group = click_group()
    assert [p for p in group.params if not (p.help or "").strip()] == []
    assert set(group.commands) == set(command_names())
    for name, command in group.commands.items():
        assert (command.help or "").strip() and (command.short_help or "").strip(), name
        undocumented = [p.name for p in command.params if not (p.help or "").strip()]
        assert undocumented == [], (name, undocumented)


def help_examples(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("jacli ")]


@pytest.mark.parametrize("name", command_names())
def test_help_examples_are_whole_commands_at_any_width(name: str) -> None:
    """At 40, 80 and 200 columns, each example in --help is the whole command line of the
    docstring, never wrapped mid-command; and each one runs."""
    written = help_examples(click_group().commands[name].help)
    assert written
    for columns in ("40", "80", "200"):
        shown = run(name, "--help", env={"COLUMNS": columns}).stdout
        assert help_examples(shown) == [*written, "jacli functions"][: len(help_examples(shown))]
        assert set(written) <= set(help_examples(shown)), (columns, shown)
    for example in written:
        result = run(*shlex.split(example)[1:])
        assert result.exit_code == 0, (example, result.stderr)
        assert result.stdout


@pytest.mark.parametrize("columns", ["40", "80", "200"])
def test_top_level_help_shows_each_summary_whole(columns: str) -> None:
    text = run("--help", env={"COLUMNS": columns}).stdout
    commands = text.split("Commands:", 1)[1]
    assert "..." not in commands
    flowing = " ".join(commands.split())  # a summary may wrap, never be cut
    for name, command in click_group().commands.items():
        assert f"{name} {command.short_help}" in flowing, (name, commands)
    assert help_examples(text) == [
        'jacli jacobian "(x+1)**2" --input eye:2', 'jacli vjp "3*a + 2*b**2" -i a=1,2 -i b=3,4 --v 1,1', "jacli functions"]
    # the vjp example by hand: v·∂(3a + 2b²) = (3·1, 3·1) for a and (4b·1) = (12, 16) for b
    assert run(*shlex.split(help_examples(text)[1])[1:]).stdout == "# a 2\n3.0 3.0\n# b 2\n12.0 16.0\n"


@pytest.mark.parametrize("name", ["jacobian", "vjp", "jvp", "grad", "hessian", "hvp", "check"])
def test_command_help_lists_the_spec_forms_and_the_functions(name: str) -> None:
    text = run(name, "--help", env={"COLUMNS": "80"}).stdout
    for form in ("eye:3", "ones:2x3", "randn:3x4", "linspace:0,1,5", "@x.npy", "@x.csv", "@-", "onehot:0"):
        assert form in text, form
    assert re.search(r"^\s+jacli functions$", text, flags=re.MULTILINE)


@pytest.mark.parametrize("held", ["", ",", " "])
def test_an_empty_const_is_refused_as_an_empty_wrt_is(held: str) -> None:
    """--const "" holds nothing: not silently every input differentiated, but --wrt ""'s error."""
    args = ["jacobian", "x*y", "-i", "x=1,2", "-i", "y=3"]
    empty_wrt, empty_const = run(*args, "--wrt", held), run(*args, "--const", held)
    assert empty_wrt.stderr == "Error: --wrt names no variable; its variables are: x, y\n"
    assert empty_const.stderr == "Error: --const names no variable; its variables are: x, y\n"
    assert empty_wrt.exit_code == empty_const.exit_code == 1 and empty_const.stdout == ""
    # an empty item beside a name is no error, as with --wrt: ∂(xy)/∂x = 3·I by hand
    assert run(*args, "--const", "y,", "-f", "plain").stdout == "# x 2x2\n3.0 0.0\n0.0 3.0\n"


def test_functions_lists_what_the_parser_knows() -> None:
    result = run("functions")
    assert result.exit_code == 0 and result.stderr == ""
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    # the parser's own list, from its unknown-function error
    known = run("jacobian", "nosuch(x)", "-i", "1").stderr.split("Known functions: ", 1)[1].split(" (column")[0]
    assert listed == known.split(", ") + ["pi", "e"]
    assert "softmax" in result.stdout and "the constant 3.14159" in result.stdout
    # each listed function is callable: a one-argument call of the elementwise ones computes
    for name in ("sin", "relu", "sigmoid", "softplus", "erf"):
        assert run("grad", f"sum({name}(x))", "-i", "0.5").exit_code == 0, name


def test_functions_as_json_for_scripts() -> None:
    result = run("functions", "-f", "json")
    assert result.exit_code == 0 and result.stderr == ""
    document = json.loads(result.stdout)
    entries = {entry["name"]: entry for entry in document["functions"]}
    listed = [line.split()[0] for line in run("functions").stdout.splitlines()]
    assert list(entries) + list(document["constants"]) == listed
    assert document["constants"] == {"pi": math.pi, "e": math.e}
    # facts known by hand: sin is smooth and elementwise; abs has a kink; softmax couples its axis;
    # clamp takes three operands; sum takes an optional axis
    assert entries["sin"]["elementwise"] and not entries["sin"]["kinks"]
    assert entries["abs"]["kinks"] and not entries["softmax"]["elementwise"]
    assert entries["clamp"]["operands"] == {"min": 3, "max": 3} and entries["sum"]["integers"] == [0, 1]
    assert run("functions", "-f", "xml").exit_code == 2


def test_functions_looks_up_the_names_given() -> None:
    everything = {line.split()[0]: line for line in run("functions").stdout.splitlines()}
    result = run("functions", "softmax", "sum", "pi", "softmax")
    assert result.exit_code == 0 and result.stderr == ""
    rows = result.stdout.splitlines()
    # the rows of the full list, in the order asked (once each), aligned among themselves
    assert [row.split()[0] for row in rows] == ["softmax", "sum", "pi"]
    assert [" ".join(row.split()) for row in rows] == [" ".join(everything[n].split()) for n in ("softmax", "sum", "pi")]
    assert "the constant 3.14159" in rows[2] and len({row.index(row.split()[1]) for row in rows}) == 1
    document = json.loads(run("functions", "relu", "e", "-f", "json").stdout)
    full = {entry["name"]: entry for entry in json.loads(run("functions", "-f", "json").stdout)["functions"]}
    assert document == {"functions": [full["relu"]], "constants": {"e": math.e}}
    assert full["relu"]["kinks"] and full["relu"]["elementwise"]  # relu has a kink at 0, by hand


@pytest.mark.parametrize("name,hint", [("sinn", "did you mean sin or sinh or sign?"), ("SIN", "did you mean sin?"),
                                       ("qqqq", "")])
def test_functions_refuses_an_unknown_name_with_the_near_misses(name: str, hint: str) -> None:
    result = run("functions", "sin", name)  # nothing printed, not even the known one
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (f"Error: {name!r} is not a jacli function or constant; {hint}{' ' if hint else ''}"
                             "'jacli functions' lists them all\n")


# -- colour and noise (clig.dev) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "terminal,flag,environ,expected",
    [
        (True, False, {}, True),
        (False, False, {}, False),
        (True, True, {}, False),
        (True, False, {"NO_COLOR": "1"}, False),
        (True, False, {"NO_COLOR": ""}, True),  # NO_COLOR counts only when not empty (no-color.org)
        (True, False, {"TERM": "dumb"}, False),
        (False, False, {"FORCE_COLOR": "1"}, True),
        (False, False, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
        (False, True, {"FORCE_COLOR": "1"}, False),
    ],
)
def test_colour_rules(terminal, flag, environ, expected) -> None:
    from jacli.cli import colour_wanted

    assert colour_wanted(terminal, flag, environ) is expected


def run_on_a_terminal(monkeypatch, *args: str, env: dict | None = None) -> str:
    """Run the app in-process with stdout a real pseudo-terminal; returns what it showed."""
    import pty
    import threading

    from jacli.cli import main

    for name in ("NO_COLOR", "FORCE_COLOR", "TERM", "JACLI_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "100")
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    leader, follower = pty.openpty()
    pieces: list[bytes] = []

    def drain() -> None:  # read while jacli writes, so a long output never fills the pty and blocks
        while True:
            try:
                piece = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: everything has been read
                return
            if not piece:
                return
            pieces.append(piece)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    with open(follower, "w", encoding="utf-8", closefd=True) as terminal:
        monkeypatch.setattr(sys, "stdout", terminal)
        monkeypatch.setattr(sys, "argv", ["jacli", *args])
        with pytest.raises(SystemExit) as done:
            main()
        terminal.flush()
    reader.join(timeout=60)
    os.close(leader)
    assert done.value.code == 0
    return b"".join(pieces).decode()


PRETTY = ("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5")


def test_colour_on_a_terminal_and_off_by_flag_or_environment(monkeypatch) -> None:
    coloured = run_on_a_terminal(monkeypatch, *PRETTY)
    assert "\x1b[" in coloured and f"{math.cos(0.5):.6g}" in coloured  # pretty, by default, in colour
    for args, env in ((["--no-color"], {}), ([], {"NO_COLOR": "1"}), ([], {"TERM": "dumb"})):
        plain = run_on_a_terminal(monkeypatch, *PRETTY, *args, env=env)
        assert "\x1b" not in plain, (args, env)
        assert f"{math.cos(0.5):.6g}" in plain and "∂/∂r" in plain  # still the pretty view


def test_force_color_colours_a_pipe() -> None:
    forced = run(*PRETTY, "-f", "pretty", env={"FORCE_COLOR": "1"})
    assert forced.exit_code == 0 and "\x1b[" in forced.stdout  # the scan below can see colour
    assert "\x1b" not in run(*PRETTY, "-f", "pretty", "--no-color", env={"FORCE_COLOR": "1"}).stdout
    assert "\x1b" not in run(*PRETTY, "-f", "json", env={"FORCE_COLOR": "1"}).stdout  # never in JSON


EVERY_COMMAND = [
    ["jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--symbolic"],
    ["vjp", "x**2", "-i", "nan,2", "--v", "ones"],  # with a warning on stderr
    ["jvp", "x**2", "-i", "1,2", "--v", "1,0"],
    ["grad", "sum(x**2)", "-i", "1,2", "--symbolic"],
    ["hessian", "sum(x**3)", "-i", "1,2"],
    ["hvp", "sum(x**3)", "-i", "1,2", "--v", "1,0"],
    ["check", "relu(x)", "-i", "-1,0,1"],
]


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=lambda a: a[0])
@pytest.mark.parametrize("form", ["pretty", "plain", "json"])
def test_no_ansi_escape_in_piped_output(args, form: str) -> None:
    result = run(*args, "-f", form)
    assert result.exit_code == 0, result.stderr
    assert result.stdout and "\x1b" not in result.stdout and "\x1b" not in result.stderr
    if form == "json":
        strict_json(result.stdout)


def test_no_ansi_escape_in_help_errors_or_lists() -> None:
    for args in (["--help"], ["jacobian", "--help"], ["functions"], ["jacobian", "x", "-m", "revers"],
                 ["jacobian", "sine(x)", "-i", "1"]):
        result = run(*args)
        assert "\x1b" not in result.stdout + result.stderr, args


def test_a_real_pipe_carries_no_ansi_escape() -> None:
    process = run_process("-m", "jacli", *PRETTY, "-f", "pretty", TERM="xterm-256color")
    assert process.returncode == 0 and "∂/∂r" in process.stdout
    assert "\x1b" not in process.stdout + process.stderr


def _piped(*args: str, code: int = 0) -> list[str]:
    """The lines a command writes to a real pipe, 80 columns wide (rich's width off a terminal)."""
    process = run_process("-m", "jacli", *args, "-f", "pretty", COLUMNS="80")
    assert process.returncode == code, process.stderr
    return process.stdout.splitlines()


def test_no_line_written_to_a_pipe_ends_in_spaces() -> None:
    """rich pads grid cells and table rows to the width, and keeps the space where it wraps."""
    repeated = _piped("vjp", "(x+1)**2", "-i", "eye:2", "--v", "ones", "--method", "backward", "--repeat", "2")
    answered = _piped("jacobian", "x**2*y", "-i", "x=2", "-i", "y=2", "--answer", "[2*x*y, x]", code=3)
    graph = _piped("graph", "sin(x)*y + exp(x)*cos(y)", "-i", "x=1", "-i", "y=2")
    traced = _piped("jacobian", "sin(x)*y", "-i", "x=1,2", "-i", "y=3", "--trace")
    for lines in (repeated, answered, graph, traced):
        assert [line for line in lines if line != line.rstrip()] == []
    # the views still say what they said. vᵀJ of (x+1)² with v = 1 is 2(x+1) = [[4, 2], [2, 4]]
    # by hand at eye:2, and .grad doubles on the second call
    rows = [[float(cell) for cell in line.split("│")[1:]] for line in repeated if re.match(r"^\d │", line)]
    assert rows == [[4, 2], [2, 4], [8, 4], [4, 8]]
    # ∂(x²y)/∂y = x² = 4 at x = 2, where the answer says x = 2; its ∂/∂x = 2xy = 8 is right
    wrong = [[cell.strip() for cell in line.split("│")] for line in answered if line.startswith("∂f/∂")]
    assert wrong == [["∂f/∂y", "0", "1", "2", "4"]]
    # the graph's nodes are torch's own grad_fn names for the same formula
    x, y = torch.tensor(1.0, requires_grad=True), torch.tensor(2.0, requires_grad=True)
    out = torch.sin(x) * y + torch.exp(x) * torch.cos(y)
    names = {out.grad_fn.name()} | {f.name() for f, _ in out.grad_fn.next_functions if f is not None}
    assert all(any(name in line for line in graph) for name in names) and names >= {"AddBackward0", "MulBackward0"}
    assert f"{math.sin(1) * 3:.6g}" in "\n".join(traced)  # the output sin(x)·y at x[0] = 1, y = 3


def test_quiet_prints_only_the_result(tmp_path) -> None:
    noisy = run("jacobian", "log(x)", "-i", "0,1")
    assert noisy.stderr.startswith("Warning: ")
    quiet = run("jacobian", "log(x)", "-i", "0,1", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == noisy.stdout
    assert quiet.stdout == "# x 2x2\ninf 0.0\n0.0 1.0\n"  # d log x/dx = 1/x at (0, 1)
    target = tmp_path / "j.json"
    written = run("jacobian", "2*x", "-i", "1", "-o", str(target), "--quiet")
    assert written.exit_code == 0 and written.stderr == "" and written.stdout == ""
    assert strict_json(target.read_text())["result"]["x"]["values"] == 2.0
    assert run("jacobian", "2*x", "-i", "1", "-o", str(target)).stderr == f"jacli: wrote {target}\n"
    assert_user_error(run("jacobian", "x**2", "-i", "y=1", "-q"), "'y'")  # errors are never quiet


# -- shell completion ---------------------------------------------------------------------------------


def test_shell_completion_script_and_answers(monkeypatch) -> None:
    import typer.completion

    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")  # the shell jacli runs under
    runner = cli_runner()
    script = runner.invoke(app, ["--show-completion"], prog_name="jacli")
    assert script.exit_code == 0, script.output
    assert "_JACLI_COMPLETE=complete_bash" in script.stdout and "complete -o default -F _jacli_completion jacli" in script.stdout

    def complete(words: str) -> list[str]:
        answer = runner.invoke(app, [], prog_name="jacli", env={
            "_JACLI_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)})
        return answer.stdout.split()

    assert complete("jacli jac") == ["jacobian"]
    assert complete("jacli jacobian x --meth") == ["--method"]
    assert complete("jacli jacobian x --method r") == ["reverse", "rows"]


IMPORT_PROBE = """
import sys
from typer.testing import CliRunner
from jacli.cli import app

runner = CliRunner()
names = [c.name or c.callback.__name__ for c in app.registered_commands]
for args in [["--help"], ["--version"]] + [[n, "--help"] for n in names]:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sympy", "numpy"))
print(",".join(heavy) or "none")
"""


def test_help_and_version_import_neither_torch_nor_sympy() -> None:
    process = run_process("-c", IMPORT_PROBE)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == "none"


def _imported(stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.parametrize("args", [["--help"], ["jacobian", "--help"], ["vjp", "--help"], ["--version"]])
def test_python_m_jacli_help_imports_neither_torch_nor_sympy(args) -> None:
    process = run_process("-X", "importtime", "-m", "jacli", *args)
    assert process.returncode == 0
    imported = _imported(process.stderr)
    assert "jacli.cli" in imported  # the probe sees jacli's own imports
    heavy = {m for m in imported if m.split(".")[0] in ("torch", "sympy")}
    assert not heavy, sorted(heavy)[:5]


def test_console_script_is_installed() -> None:
    script = shutil.which("jacli")
    if script is None:
        pytest.skip("the jacli script is not on PATH")
    process = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60, env=subprocess_env())
    assert process.returncode == 0
    assert process.stdout == f"jacli {jacli.__version__}\n"


# -- end to end in a real process ---------------------------------------------------------------


def test_end_to_end_json() -> None:
    process = run_process("-m", "jacli", "jacobian", "(x+1)**2", "-i", "eye:2", "-f", "json")
    assert process.returncode == 0, process.stderr
    assert process.stderr == ""
    document = strict_json(process.stdout)
    expected = [[[[4, 0], [0, 0]], [[0, 2], [0, 0]]], [[[0, 0], [2, 0]], [[0, 0], [0, 4]]]]
    assert document["result"]["x"] == {"shape": [2, 2, 2, 2], "values": expected}


def test_end_to_end_memory_budget() -> None:
    # That the refusal comes before any work is test_memory_budget_is_refused_before_any_work's
    # job; here, that a real process answers it with one error line and exit 1.
    process = run_process("-m", "jacli", "jacobian", "(x+1)**2", "-i", "eye:1000", timeout=120)
    assert process.returncode == 1
    assert process.stdout == ""
    assert process.stderr.startswith("Error: the Jacobian") and process.stderr.count("Error:") == 1
    assert "1,000,000,000,000 numbers" in process.stderr and "8.0 TB" in process.stderr
    assert process.stderr.count("\n") == 1 and "Traceback" not in process.stderr


def test_end_to_end_unknown_device() -> None:
    # (--device cuda is checked in-process above; it needs torch, which costs seconds to start.)
    process = run_process("-m", "jacli", "jacobian", "x", "-i", "1", "--device", "foo")
    assert process.returncode == 1 and process.stdout == ""  # a user error, as in-process
    assert process.stderr.startswith("Error: unknown device 'foo'") and process.stderr.count("\n") == 1
    assert "cpu" in process.stderr and "Traceback" not in process.stderr


# -- --layout and the sparse file formats ------------------------------------------------------


def test_layout_diagonal_plain_by_hand() -> None:
    # (x+1)**2 at eye(2): the diagonal 2*(x+1) = [[4, 2], [2, 4]], shaped like the output
    result = run("jacobian", "(x+1)**2", "-i", "eye:2", "--layout", "diagonal")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "# x diagonal 2x2x2x2\n4.0 2.0\n2.0 4.0\n"


def test_layout_sparse_plain_by_hand() -> None:
    # [x[0]*x[1], 3*x[2]] at (1, 2, 5): ∂y[0]/∂x[0] = 2, ∂y[0]/∂x[1] = 1, ∂y[1]/∂x[2] = 3
    result = run("jacobian", "[x[0]*x[1], 3*x[2]]", "-i", "1,2,5", "--layout", "sparse")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "# x sparse 2x3 nnz 3 output 2 input 3\n0 0 2.0\n0 1 1.0\n1 2 3.0\n"


@pytest.mark.parametrize("layout", ["auto", "dense"])
def test_layout_auto_and_dense_print_the_dense_jacobian(layout: str) -> None:
    result = run("jacobian", "x**2", "-i", "2,3", "--layout", layout)
    assert result.stdout == "# x 2x2\n4.0 0.0\n0.0 6.0\n"


def test_layout_diagonal_pretty_headline() -> None:
    result = run("jacobian", "(x+1)**2", "--input", "eye:5", "--layout", "diagonal", "-f", "pretty")
    assert result.exit_code == 0, result.stderr
    assert "∂y/∂x  shape (5, 5, 5, 5)" in result.stdout
    assert "∂y/∂x is diagonal: ∂y[m,n]/∂x[i,j] = 0 unless (m,n) = (i,j)" in result.stdout
    assert "0 │ 4 │ 2 │ 2 │ 2 │ 2" in result.stdout and "4 │ 2 │ 2 │ 2 │ 2 │ 4" in result.stdout


def test_layout_diagonal_that_does_not_fit_names_the_one_that_does() -> None:
    assert_user_error(run("jacobian", "x*x[0]", "-i", "1,2,3,4", "--layout", "diagonal"),  # 7 of 16 nonzero
                      "--layout diagonal", "the Jacobian for x is not diagonal", "use --layout sparse")
    assert_user_error(run("jacobian", "sum(x)", "-i", "1,2", "--layout", "diagonal"),
                      "the Jacobian for x is not diagonal", "use --layout dense")


def test_layout_unknown_is_a_usage_error() -> None:
    result = run("jacobian", "x", "-i", "1,2", "--layout", "diag")
    assert result.exit_code == 2
    for choice in ("auto", "dense", "diagonal", "sparse"):
        assert choice in result.stderr


def test_layout_is_in_help() -> None:
    text = run("jacobian", "--help").stdout
    assert "--layout" in text and "diagonal" in text and ".npz" in text and ".pt" in text


def test_output_pt_of_a_sparse_jacobian(tmp_path) -> None:
    path = tmp_path / "j.pt"
    result = run("jacobian", "[x[0]*x[1], 3*x[2]]", "-i", "1,2,5", "--layout", "sparse", "-o", str(path))
    assert result.exit_code == 0, result.stderr
    loaded = torch.load(path, weights_only=True)["result"]["x"]
    assert loaded.layout == torch.sparse_coo
    assert loaded.to_dense().tolist() == [[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]


def test_output_npz_of_a_diagonal_jacobian(tmp_path) -> None:
    scipy_sparse = pytest.importorskip("scipy.sparse", reason="scipy is optional (pip install 'jacli[sparse]')")
    path = tmp_path / "j.npz"
    result = run("jacobian", "(x+1)**2", "-i", "eye:2", "--layout", "diagonal", "-o", str(path))
    assert result.exit_code == 0, result.stderr
    assert scipy_sparse.load_npz(path).toarray().tolist() == [
        [4.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0], [0, 0, 0, 4.0]]


def test_output_npz_without_scipy_fails_before_computing(tmp_path, monkeypatch) -> None:
    from jacli import render

    monkeypatch.setattr(render, "_has_scipy", lambda: False)
    work = record_work(monkeypatch)
    result = run("jacobian", "x", "-i", "1,2", "--layout", "sparse", "-o", str(tmp_path / "j.npz"))
    assert_user_error(result, "--output", "pip install 'jacli[sparse]'", ".pt")
    assert not work and not (tmp_path / "j.npz").exists()


def test_output_pt_does_not_match_a_text_format(tmp_path) -> None:
    assert_user_error(run("jacobian", "x", "-i", "1,2", "-f", "json", "-o", str(tmp_path / "j.pt")),
                      "a .pt file is written as pt")


# -- issue 10, item 10: the smaller failures ------------------------------------------------------


def test_a_file_named_dot_json_is_json(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("jacobian", "x", "-i", "1,2", "-o", ".json")
    assert result.exit_code == 0, result.stderr
    assert strict_json((tmp_path / ".json").read_text())["result"]["x"]["values"] == [[1.0, 0.0], [0.0, 1.0]]


def test_the_longest_valid_file_name_is_written(tmp_path) -> None:
    path = tmp_path / ("a" * 250 + ".json")  # 255 bytes: the usual limit of a name
    result = run("jacobian", "2*x", "-i", "1", "-o", str(path))
    assert result.exit_code == 0, result.stderr
    assert strict_json(path.read_text())["result"]["x"]["values"] == 2.0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_a_zero_width_terminal_still_shows_the_result() -> None:
    result = run("jacobian", "2*x", "-i", "1,3", "-f", "pretty", env={"COLUMNS": "0"})
    assert result.exit_code == 0 and "∂y/∂x" in result.stdout and "2" in result.stdout


def test_input_names_are_read_as_the_expression_reads_them() -> None:
    # the parser reads fullwidth ｘ as x (NFKC, as Python does); so are --input and --wrt names
    result = run("grad", "ｘ**2", "-i", "ｘ=3", "--wrt", "ｘ", "-f", "plain")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "# x scalar\n6.0\n"  # d(x²)/dx = 2x = 6 at 3


def test_a_closed_stderr_does_not_turn_a_warning_into_a_failure() -> None:
    done = subprocess.run(
        ["sh", "-c", f"{shlex.quote(sys.executable)} -m jacli jacobian 'log(x)' -i 0,1 -f plain 2>&-"],
        capture_output=False, stdout=subprocess.PIPE, text=True, timeout=120,
    )
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == "# x 2x2"  # the result, with its inf, still written


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path) -> None:
    """SIGTERM arrives once the first piece is written (the writer sends it itself): the
    temporary file is removed, the target is not created, and the exit code is 128 + 15."""
    target = tmp_path / "out.txt"
    code = (
        "import os, signal\n"
        "from pathlib import Path\n"
        "from jacli.cli import _write_atomically\n"
        "def pieces():\n"
        "    yield b'first\\n'\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    yield b'never\\n'\n"
        f"_write_atomically(Path({str(target)!r}), pieces())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 143, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_stdin_is_read_once_also_between_the_inputs_and_v() -> None:
    result = run("vjp", "x", "-i", "@-", "--v", "@-", input="1 2\n")
    assert_user_error(result, "x and --v all read @- (standard input)", "can be read only once")


# -- --output: files written whole, only on success ----------------------------------------------


def test_output_files(tmp_path):
    target = tmp_path / "j.npy"
    assert run("jacobian", "x**2", "-i", "1,2", "-o", str(target)).exit_code == 0
    np.testing.assert_array_equal(np.load(target), np.array([[2.0, 0.0], [0.0, 4.0]]))
    target = tmp_path / "j.txt"
    assert run("jacobian", "x**2", "-i", "1,2", "-o", str(target)).exit_code == 0
    np.testing.assert_array_equal(np.loadtxt(target), np.array([[2.0, 0.0], [0.0, 4.0]]))


def test_output_replaces_only_on_success(tmp_path):
    target = tmp_path / "j.json"
    target.write_text("previous")
    result = run("jacobian", "x +* 2", "-i", "1", "-o", str(target))
    assert result.exit_code == 1
    assert target.read_text() == "previous"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind
    assert run("jacobian", "x*2", "-i", "1", "-o", str(target)).exit_code == 0
    assert json.loads(target.read_text())["result"]["x"]["values"] == 2.0


# -- issue 11: one matrix everywhere, files and formats -------------------------------------------

POLAR = ("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5")
POLAR_MATRIX = [[math.cos(0.5), -2 * math.sin(0.5)], [math.sin(0.5), 2 * math.cos(0.5)]]
"""By hand: rows ∂y[i]/∂(r, t) of (r cos t, r sin t) at r = 2, t = 0.5."""


def test_the_issues_pipeline_loads_the_matrix_the_pretty_view_shows() -> None:
    piped = run_process("-m", "jacli", *POLAR)
    assert piped.returncode == 0, piped.stderr
    np.testing.assert_allclose(np.loadtxt(io.StringIO(piped.stdout)), POLAR_MATRIX, rtol=1e-15)
    shown = run(*POLAR, "-f", "pretty", "--precision", "15").stdout
    rows = [line for line in shown.splitlines() if line.startswith("│ y[")]
    numbers = [[float(cell) for cell in line.strip("│ ").split("│")[1:]] for line in rows]
    np.testing.assert_allclose(numbers, POLAR_MATRIX, rtol=1e-14)


def test_det_writes_the_matrix_to_npy_and_says_where_det_is(tmp_path) -> None:
    path = tmp_path / "d.npy"
    result = run(*POLAR, "--det", "-o", str(path))
    assert result.exit_code == 0 and result.stdout == "", result.stderr
    np.testing.assert_allclose(np.load(path), POLAR_MATRIX, rtol=1e-15)
    assert "2x2 matrix" in result.stderr and "det J is not in it" in result.stderr


def test_dash_output_is_standard_output() -> None:
    for fmt in ("plain", "json", "csv"):
        assert run(*POLAR, "-o", "-", "-f", fmt).stdout == run(*POLAR, "-f", fmt).stdout
    assert run(*POLAR, "-o", "-").stdout == run(*POLAR).stdout


def test_csv_on_stdout_and_in_files(tmp_path) -> None:
    text = run(*POLAR, "-f", "csv").stdout
    assert text.splitlines()[0] == "r,t"
    np.testing.assert_allclose(np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1), POLAR_MATRIX, rtol=1e-15)
    for name, extra in (("j.csv", ()), ("j.txt", ("-f", "csv"))):
        assert run(*POLAR, "-o", str(tmp_path / name), *extra).exit_code == 0
        # RFC 4180 line ends, \r\n (CliRunner reads stdout with universal newlines, as \n)
        assert (tmp_path / name).read_bytes() == text.replace("\n", "\r\n").encode()


def test_matrix_flag_gives_the_matrix_for_non_scalar_inputs(tmp_path) -> None:
    args = ("jacobian", "[sum(x*A), prod(x)]", "-i", "x=1,2", "-i", "A=3,4")
    by_hand = [[3.0, 4.0, 1.0, 2.0], [2.0, 1.0, 0.0, 0.0]]  # ∂/∂x = [[3,4],[2,1]], ∂/∂A = [[1,2],[0,0]]
    assert run(*args).stdout.startswith("# x 2x2\n")  # blocks stay the default here
    np.testing.assert_array_equal(np.loadtxt(io.StringIO(run(*args, "--matrix").stdout)), by_hand)
    document = strict_json(run(*args, "--matrix", "-f", "json").stdout)
    assert document["matrix"]["columns"] == ["x[0]", "x[1]", "A[0]", "A[1]"]
    np.testing.assert_array_equal(document["matrix"]["values"], by_hand)
    assert run(*args, "--matrix", "-o", str(tmp_path / "J.npy")).exit_code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "J.npy"), by_hand)
    pt = tmp_path / "J.pt"
    assert run(*args, "-o", str(pt)).exit_code == 0
    loaded = torch.load(pt, weights_only=True)
    assert loaded["matrix"].tolist() == by_hand and loaded["result"]["x"].tolist() == [[3.0, 4.0], [2.0, 1.0]]


def test_a_format_that_contradicts_the_file_name_is_refused_before_work(tmp_path, monkeypatch) -> None:
    work = record_work(monkeypatch)
    assert_user_error(run(*POLAR, "-f", "plain", "-o", str(tmp_path / "j.csv")),
                      "--format plain does not match", "a .csv file is written as csv")
    assert not work and not (tmp_path / "j.csv").exists()


def test_csv_says_where_det_and_structured_jacobians_go() -> None:
    # det J = r for polar coordinates; the CSV table is the matrix alone, and stderr says where det is
    result = run("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--det", "-f", "csv")
    assert result.exit_code == 0 and "det J is not in the CSV table" in result.stderr
    assert len(result.stdout.strip().splitlines()) == 3  # the header and two rows, no det
    refused = run("jacobian", "x**2", "-i", "1,2", "--layout", "diagonal", "-f", "csv")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.startswith("Error: CSV holds a dense table, but this Jacobian is diagonal (2 of 4")
    assert "--output" not in refused.stderr and "--layout dense" in refused.stderr


BASE_VJP = ("vjp", "(x+1)**2", "-i", "x=1,2", "--v", "ones")


@pytest.mark.parametrize("args,line", [
    ((*BASE_VJP, "--method", "grad", "--repeat", "2"),
     "Error: --repeat shows how x.grad accumulates over calls of y.backward(v), which --method grad"),
    ((*BASE_VJP, "--zero-grad-after", "1"), "Error: --zero-grad-after zeroes x.grad between repeated calls; give --repeat N"),
    ((*BASE_VJP, "--repeat", "2", "-f", "csv"), "Error: --repeat's list of results is written as pretty, plain or json"),
    (("jacobian", "x*y", "-i", "x=1,2", "-i", "y=3", "--batched", "x"),
     "Error: --batched names the inputs that hold points along --batch-axis; give --batch-axis too"),
    (("jacobian", "x**2", "-i", "x=[[1,2],[3,4]]", "--show-code", "--batch-axis", "0"),
     "Error: --show-code writes the script of one point; with --batch-axis there is one result per point"),
    (("jacobian", "x**2", "-i", "x=[[1,2],[3,4]]", "--method", "rows", "--batch-axis", "0"),
     "Error: --method rows computes one point at a time; with --batch-axis use auto, reverse or forward"),
    (("jacobian", "x**2", "-i", "x=[[1,2],[3,4]]", "--symbolic", "--batch-axis", "0"),
     "Error: --symbolic works on one point; leave it out with --batch-axis"),
    (("jacobian", "x**2", "-i", "x=3", "--answer", "[[6]]", "--show-code"),
     "Error: --show-code prints a script in place of jacli's result, and --answer checks your Jacobian"),
    (("jacobian", "x**2", "-i", "x=3", "--answer", "[[5]]", "--show-code"),
     "Error: --show-code prints a script in place of jacli's result, and --answer checks your Jacobian"),
    (("jacobian", "x**2", "-i", "x=1,2", "--method", "structured", "--layout", "sparse"),
     "Error: --method structured builds a dense Jacobian; ask for --layout dense"),
    (("grad", "sum(x**2)", "-i", "x=1,2", "--trace", "--answer", "[2,4]"), None),
])
def test_options_that_do_not_go_together_are_usage_errors(args, line) -> None:
    """Every clash of options is a usage error, whichever layer finds it: one Error line, exit 2, nothing on stdout."""
    result = run(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    if line is not None:
        assert lines[0].startswith(line), lines[0]


def test_batch_output_and_resume_together_is_a_usage_error(tmp_path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"command": "grad", "expr": "x**2", "inputs": {"x": 3}}\n')
    result = run("batch", str(jobs), "-o", str(tmp_path / "a.jsonl"), "--resume", str(tmp_path / "b.jsonl"))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == "Error: --output writes a new file and --resume appends to one; give one of them\n"
    assert not (tmp_path / "a.jsonl").exists() and not (tmp_path / "b.jsonl").exists()


def test_the_library_still_raises_jacli_errors_for_a_clash() -> None:
    """The API keeps its own error types; only the CLI turns a clash into exit 2."""
    from jacli import api
    from jacli.errors import InputError

    with pytest.raises(InputError, match="`method` rows computes one point at a time") as raised:
        api.compute_jacobian("x**2", {"x": torch.ones(2, 2, dtype=torch.float64)}, method="rows", batch_axis=0)
    assert raised.value.usage and raised.value.param == "method"
    # a bad value, not a clash, stays exit 1
    wrong = run("grad", "sum(x**2)", "-i", "x=1,2", "--wrt", "z")
    assert wrong.exit_code == 1 and wrong.stdout == "" and wrong.stderr.startswith("Error: ")
