"""Resource guards: hostile sizes are refused with a clear error, before any work is done."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch
from helpers import cli_runner

import jacli
import jacli.compile
from jacli.cli import app
from jacli.errors import ExpressionError, ResourceError
from jacli.parse import MAX_DEPTH, MAX_LENGTH, MAX_NODES, parse


def cli(*argv: str, **kwargs):
    return cli_runner().invoke(app, list(argv), env={"JACLI_DEBUG": ""}, **kwargs)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("9**9**9**9", "9**(9**9)"),
        ("((9**9)**9999)**9999", "(9**9)**9999"),
        ("10**10**10", "10**(10**10)"),
        ("x**(10**400)", "10**400"),
        ("1e300*1e300 + x", "10^602"),
        ("(-2)**1025 * x", "(-2)**1025"),
        ("2**(2**(2**(2**(2**2))))", "10^19728"),  # 2**65536
    ],
)
def test_huge_constants_are_refused_not_computed(text, needle):
    with pytest.raises(ExpressionError, match="float64") as error:
        parse(text)
    assert needle.replace("(", "").replace(")", "") in str(error.value).replace("(", "").replace(")", "")


@pytest.mark.parametrize(
    "text, x, exact",
    [
        # the value worked out exactly with Fraction, then rounded once to float64
        ("2**-5000 + x", 1.5, Fraction(2) ** -5000 + Fraction(3, 2)),  # 1.5
        ("(1/3)**1000 * x", 1.5, Fraction(1, 3) ** 1000 * Fraction(3, 2)),  # underflows to 0
        ("10**308 + x", 1.5, 10**308 + Fraction(3, 2)),  # 1e308
        ("x**(9**9)", -1.0, Fraction(-1) ** (9**9)),  # an odd power: -1
        ("0**(10**5) * x", 1.5, Fraction(0)),
    ],
)
def test_large_but_representable_constants_are_accepted(text, x, exact):
    value = jacli.compile.compile_expression(text).checked(torch.tensor(x, dtype=torch.float64))
    assert float(value) == float(exact)


def test_power_of_a_huge_base_is_refused_even_with_a_small_exponent():
    # log10(9**9**9) is about 3.7e8 digits: refused before the outer power is considered
    with pytest.raises(ExpressionError, match="beyond float64"):
        parse("(9**9**9)**(1/1000000000)")


@pytest.mark.parametrize(
    "text,limit",
    [
        ("(" * 10000 + "x" + ")" * 10000, f"{MAX_LENGTH:,}"),
        ("-" * 100000 + "x", f"{MAX_LENGTH:,}"),
        ("sin(" * (MAX_DEPTH + 5) + "x" + ")" * (MAX_DEPTH + 5), str(MAX_DEPTH)),
        ("-" * (MAX_DEPTH + 5) + "x", str(MAX_DEPTH)),
        ("+".join(["x"] * 3000), f"{MAX_NODES:,}"),  # 5,999 parts
        ("[" + ",".join(["-x"] * 3000) + "]", f"{MAX_NODES:,}"),  # 6,001 parts
    ],
)
def test_size_and_depth_caps(text, limit):
    with pytest.raises(ExpressionError) as error:
        parse(text)
    assert limit in str(error.value)


def test_cli_guards_exit_1_without_traceback():
    for argv in (
        ["jacobian", "9**9**9**9*x", "-i", "1"],
        ["jacobian", "(" * 10000 + "x" + ")" * 10000, "-i", "1"],
        ["jacobian", "x", "-i", "ones:100000x100000"],
        ["vjp", "x", "-i", "1,2", "--v", "ones:100000x100000"],
    ):
        result = cli(*argv)
        assert result.exit_code == 1, argv
        assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
        assert result.stdout == ""


def test_input_over_budget_names_its_size():
    result = cli("jacobian", "x", "-i", "ones:100000x100000")
    assert "10,000,000,000 elements" in result.stderr and "80.0 GB" in result.stderr


OUTER = "reshape(x, 100000000, 1) @ reshape(x, 1, 100000000)"  # 10^16 numbers from 10^8


def test_intermediate_results_over_the_budget_are_refused_from_shapes():
    with pytest.raises(ResourceError, match=r"evaluating .* would need 80\.0 PB"):
        jacli.jacobian(OUTER, {"x": "ones:100000000"})


def test_intermediate_out_of_memory_is_a_resource_error():
    # a budget larger than the machine lets the plan pass; torch's own allocation failure
    # (8 TB for the outer product of 10^6 numbers) is still a clean error
    from jacli import api

    outer = "sum(reshape(x, 1000000, 1) @ reshape(x, 1, 1000000))"
    with pytest.raises(ResourceError, match="ran out of memory"):
        api.compute_grad(outer, {"x": "ones:1000000"}, max_memory=10**18)


def test_nan_in_inputs_and_results_is_reported_on_stderr_and_json_stays_strict():
    result = cli("jacobian", "log(x)", "-i", "0,1,-1", "-f", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert document["output"]["values"] == ["-inf", 0.0, "nan"]
    assert "the output holds 2 NaN or infinite numbers at [0], [2]" in result.stderr
    result = cli("vjp", "x", "-i", "1,2", "--v", "nan,1", "-f", "json")
    assert "--v holds 1 NaN" in result.stderr


def test_ctrl_c_exits_130_with_one_line(monkeypatch):
    from jacli.engine import autodiff

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(autodiff, "jacobian", interrupted)
    result = cli("jacobian", "x*sum(x)", "-i", "1,2")  # dense: torch.func's jacrev runs
    assert result.exit_code == 130
    assert result.stderr == "Interrupted.\n" and result.stdout == ""


def test_ctrl_c_during_output_leaves_no_file(monkeypatch, tmp_path):
    from jacli import render

    target = tmp_path / "j.json"
    target.write_text("old")

    def interrupted(*args, **kwargs):  # the header written, then Ctrl-C among the numbers
        yield '{"command": "jacobian"'
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "json_chunks", interrupted)
    result = cli("jacobian", "x**2", "-i", "1,2", "-o", str(target))
    assert result.exit_code == 130
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_output_file_mode_follows_the_umask_or_the_replaced_file(tmp_path, umask):
    target = tmp_path / "j.json"
    old = os.umask(umask)
    try:
        assert cli("jacobian", "x**2", "-i", "1,2", "-o", str(target)).exit_code == 0
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    target.chmod(0o640)
    assert cli("jacobian", "x**2", "-i", "1,2", "-o", str(target)).exit_code == 0
    assert target.stat().st_mode & 0o777 == 0o640
    assert json.loads(target.read_text())["result"]["x"]["values"] == [[2.0, 0.0], [0.0, 4.0]]


@pytest.mark.parametrize(
    "name, fmt, fragment",
    [("j.txt", "json", "a .txt file is written as plain"), ("j.json", "plain", "a .json file is written as json"),
     ("j.json", "pretty", "pretty is for the terminal"), ("j.npy", "json", "a .npy file is written as npy")],
)
def test_format_that_contradicts_the_output_file_is_refused(tmp_path, name, fmt, fragment):
    result = cli("jacobian", "x**2", "-i", "1,2", "-o", str(tmp_path / name), "-f", fmt)
    assert result.exit_code == 1 and result.stdout == "" and fragment in result.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything is written


def test_format_that_agrees_with_the_output_file_is_fine(tmp_path):
    result = cli("jacobian", "x**2", "-i", "1,2", "-o", str(tmp_path / "j.txt"), "-f", "plain")
    assert result.exit_code == 0 and (tmp_path / "j.txt").read_text().startswith("# x 2x2\n")


def test_output_to_a_folder_is_refused(tmp_path):
    result = cli("jacobian", "x**2", "-i", "1,2", "-o", str(tmp_path))
    assert result.exit_code == 1 and "is a folder" in result.stderr and result.stdout == ""


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_endless_stdin_is_refused_at_a_cap_from_the_budget():
    """-i @- < /dev/zero used to read until MemoryError (or the kernel's OOM killer)."""
    with open("/dev/zero", "rb") as zero:
        done = subprocess.run(
            [sys.executable, "-m", "jacli", "jacobian", "x", "-i", "@-", "--max-memory", "1MB"],
            stdin=zero, capture_output=True, text=True, timeout=120, env={**os.environ, "JACLI_DEBUG": ""},
        )
    assert done.returncode == 1 and done.stdout == ""
    # 1 MB / 20 (TEXT_FACTOR) = 50 kB
    assert done.stderr.startswith("Error: x = @- (standard input): holds more than 50.0 kB of text")
    assert "memory budget of 1.0 MB" in done.stderr and "--max-memory" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_out_of_memory_anywhere_is_an_error_line(monkeypatch):
    from jacli.engine import autodiff

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(autodiff, "jacobian", exhausted)
    result = cli("jacobian", "x*sum(x)", "-i", "1,2")  # dense: torch.func's jacrev runs
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        "Error: ran out of memory; use smaller inputs, or a lower --max-memory so that jacli refuses "
        "before allocating\n"
    )


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_on_stdout_is_an_error_line():
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "jacli", "vjp", "x*2", "-i", "ones:200x50", "--v", "ones"],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
            env={**os.environ, "JACLI_DEBUG": ""},
        )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: cannot write the result to standard output (No space left on device)")
    assert "Traceback" not in done.stderr


ROW_STARTED = "-- the row loop has done row 1 --"


def test_sigint_to_a_real_row_loop_exits_130():
    """A real Ctrl-C (SIGINT) while the row loop runs: exit 130, one line, no traceback.

    No fixed delays: the child reports on stderr when the CLI's progress callback has seen the
    first of 2 rows, then holds the loop there (up to 60 s) until the parent's SIGINT arrives, so
    the loop can neither finish first nor run forever.
    """
    code = (
        "import os, sys, time\n"
        "from jacli import cli\n"
        "real = cli._RowProgress.__call__\n"
        "def first_row(self, done, total):\n"
        "    real(self, done, total)\n"
        "    if done == 1:\n"
        f"        sys.stderr.write({ROW_STARTED!r} + '\\n'); sys.stderr.flush()\n"
        "        deadline = time.monotonic() + 60\n"
        "        while time.monotonic() < deadline:\n"
        "            time.sleep(0.01)\n"
        "        os._exit(3)  # no SIGINT came\n"
        "cli._RowProgress.__call__ = first_row\n"
        "sys.argv = ['jacli', 'jacobian', 'x**2', '-i', '1,2', '--method', 'rows']\n"
        "cli.main()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "JACLI_DEBUG": ""})
    try:
        ready, _, _ = select.select([child.stderr], [], [], 120)
        first = child.stderr.readline() if ready else "(nothing within 120 s)"
        assert first == ROW_STARTED + "\n", first + child.stderr.read() if ready else first
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, stderr
    assert stderr == "Interrupted.\n" and stdout == ""


@pytest.mark.parametrize(
    "hooked",
    [
        # before Typer's own handler: a bare KeyboardInterrupt out of app()
        "typer.main.get_command",
        # inside it, while the options are parsed: Typer makes it a silent exit 130
        "typer.core.TyperGroup.make_context",
    ],
)
def test_ctrl_c_while_typer_dispatches_exits_130(hooked):
    """Ctrl-C in the first moments, before a command runs: the process sends itself SIGINT from
    inside Typer's start-up, so the interrupt lands there for certain, with no timing involved."""
    owner, attribute = hooked.rsplit(".", 1)
    code = (
        "import os, signal, sys\n"
        "import typer.core, typer.main\n"
        "from jacli.cli import main\n"
        f"real = {hooked}\n"
        "def interrupt(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(*args, **kwargs)\n"
        f"setattr({owner}, {attribute!r}, interrupt)\n"
        "sys.argv = ['jacli', 'jacobian', 'x', '-i', '1']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "JACLI_DEBUG": ""})
    assert done.returncode == 130
    assert done.stderr == "Interrupted.\n" and done.stdout == ""


def test_python_syntax_warnings_become_jacli_errors_not_stray_lines():
    """Found by the deep fuzz run: "0is" made Python print a SyntaxWarning before the error."""
    result = cli("jacobian", "-i", "1", "--", "0is")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot parse the expression: invalid decimal literal (column 1)")


@pytest.mark.parametrize(
    "argv",
    [
        ["jacobian", "9**9**9**9*x", "-i", "1"],
        ["jacobian", "sine(x)", "-i", "1"],
        ["jacobian", "x", "-i", "ones:100000x100000"],
        ["vjp", "x*y", "-i", "x=1", "--v", "1"],
    ],
)
def test_expression_and_spec_errors_answer_before_torch_is_imported(argv):
    """What makes these errors answer at once: torch (seconds to import) is never loaded."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from jacli.cli import app\n"
        f"result = CliRunner().invoke(app, {argv!r})\n"
        "assert result.exit_code == 1, result.output\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    "args",
    [
        ("jacobian", "x", "-i", "ones:2x\x1b]0;pwned\x07\nError: fake"),
        ("jacobian", "x\x1b[31m", "-i", "1"),
        ("jacobian", "x", "-i", "@/nonexistent/a\x1b[2Jb.json"),
        ("vjp", "x", "-i", "1,2", "--v", "1\x07,2"),
    ],
)
def test_control_characters_never_reach_the_terminal(args):
    """What the user typed is quoted in messages with its escape sequences, bells and newlines
    written as escapes: one Error line, which no input can turn into two or into a terminal command."""
    result = cli(*args)
    assert result.exit_code == 1 and result.stdout == ""
    assert not any(ord(ch) < 32 and ch != "\n" for ch in result.stderr), repr(result.stderr)
    lines = result.stderr.splitlines()  # the expression's caret display adds lines of its own
    assert lines[0].startswith("Error: ") and not any(line.startswith("Error") for line in lines[1:])
    assert "\\x1b" in result.stderr or "\\x07" in result.stderr


def test_ctrl_c_while_the_cli_is_imported_is_one_line():
    """The interrupt lands while Python imports Typer (a meta-path hook raises it there, the
    moment the import happens): the entry point still answers 'Interrupted.' and 130."""
    code = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'typer':\n"
        "            raise KeyboardInterrupt\n"
        "        return None\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from jacli.__main__ import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130
    assert done.stderr == "Interrupted.\n" and done.stdout == ""


# -- untrusted mode (issue 10 item 9) ------------------------------------------------------------


def test_untrusted_mode_refuses_files_and_stdin(tmp_path):
    path = tmp_path / "n.txt"
    path.write_text("1 2\n")
    for args in (["jacobian", "x", "-i", f"@{path}"], ["jacobian", "x", "-i", "@-"],
                 ["vjp", "x", "-i", "1,2", "--v", f"@{path}"], ["check", "x", "-i", f"@{path}"]):
        result = cli(*args, "--untrusted")
        assert result.exit_code == 1 and result.stdout == "", args
        assert "files and standard input are refused in untrusted mode" in result.stderr
    with pytest.raises(jacli.InputError, match="refused in untrusted mode") as caught:
        jacli.compute_jacobian("x", {"x": f"@{path}"}, untrusted=True)
    assert caught.value.param == "inputs"
    # numbers typed in are fine, and give the same Jacobian
    assert torch.equal(jacli.compute_jacobian("x**2", {"x": [1.0, 2.0]}, untrusted=True).blocks["x"].to_dense(),
                       torch.diag(torch.tensor([2.0, 4.0], dtype=torch.float64)))


def test_untrusted_mode_holds_the_budget_and_the_exact_deadline(monkeypatch):
    from jacli.problem import UNTRUSTED_BUDGET

    problem = jacli.prepare("x", {"x": [1.0]}, max_memory=10**12, untrusted=True)
    assert problem.budget == UNTRUSTED_BUDGET
    monkeypatch.setenv("JACLI_UNTRUSTED", "1")  # the environment switches it on for the API too
    assert jacli.prepare("x", {"x": [1.0]}).budget == UNTRUSTED_BUDGET
    monkeypatch.delenv("JACLI_UNTRUSTED")
    monkeypatch.setattr("jacli.api.UNTRUSTED_SECONDS", 0.3)
    with pytest.raises(jacli.ResourceError, match="longer than its limit of 0.3 s"):
        jacli.compute_grad("sum(x@x@x@x@x@x)", {"x": "randn:5x5"}, method="symbolic", untrusted=True)


def test_untrusted_mode_gives_every_sympy_step_its_short_deadline(monkeypatch):
    """The exact Jacobian and the exact determinant (--symbolic --det) both run under
    UNTRUSTED_SECONDS, not the default 20 s; recorded at the call, so nothing has to time out."""
    from jacli.engine import exact
    from jacli.problem import UNTRUSTED_SECONDS

    given: list[float | None] = []
    real = exact.deadline

    def recording(seconds=None):
        given.append(seconds)
        return real(seconds)

    monkeypatch.setattr(exact, "deadline", recording)
    result = jacli.compute_jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}, symbolic=True, det=True, untrusted=True)
    assert str(result.det_symbolic) == "r" and float(result.det) == pytest.approx(2.0)
    assert given == [UNTRUSTED_SECONDS, UNTRUSTED_SECONDS]
    given.clear()
    jacli.compute_jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}, symbolic=True, det=True)
    assert given == [None, None]  # the default, exact.SECONDS


# -- the reliability review's commands (issue #10), each run as the user runs it ------------------
# Peak memory is measured from outside the process (tests/memory.py). What the budget bounds is
# what grows with the problem: each command may peak at most its budget above the same command
# on a tiny input (the interpreter, torch, SymPy and torch.func's imports), measured here too.

_FLOORS: dict[str, int] = {}


def _floor(kind: str) -> int:
    """Peak RSS of a tiny problem of this kind, measured once per session."""
    from memory import jacli as measured

    tiny = {
        "grad": ["grad", "sum(x)", "-i", "randn:2", "--method", "forward"],
        "check": ["check", "sum(x)", "-i", "randn:2"],
        "jacobian": ["jacobian", "x*2", "-i", "randn:2", "-f", "plain"],
        "pretty": ["jacobian", "x*2", "-i", "ones:2x1x1", "-f", "pretty"],
    }[kind]
    if kind not in _FLOORS:
        run = measured(*tiny)
        assert run.returncode == 0, run.stderr
        _FLOORS[kind] = run.peak
    return _FLOORS[kind]


def _outer_sum_jacobian(x: torch.Tensor) -> torch.Tensor:
    """∂/∂x of sum(x_col * x_row, 0), i.e. y_j = x_j Σx: J = Σx·I + x_j, by hand."""
    return x.sum() * torch.eye(len(x), dtype=x.dtype) + x.reshape(-1, 1)


ISSUE_COMMANDS = {
    # issue item 3: the vectorized passes were not budgeted (3.43 GB, 12.8 GB, 3.47 GB, 3.70 GB)
    "grad-forward-20000": ("grad", 100, ["grad", "sum(x)", "-i", "randn:20000", "--method", "forward"]),
    "grad-forward-40000": ("grad", 100, ["grad", "sum(x)", "-i", "randn:40000", "--method", "forward"]),
    "check-20000": ("check", 100, ["check", "sum(x)", "-i", "randn:20000", "-f", "plain"]),
    "outer-product-600": ("jacobian", 100, ["jacobian", "sum(reshape(x,-1,1)*reshape(x,1,-1), 0)", "-i", "randn:600", "-f", "plain"]),
    # item 5: a shape error found only after a 3.44 GB allocation
    "shape-error-20000": ("jacobian", 100, ["jacobian", "[reshape(x,-1,1)*reshape(x,1,-1), y]", "-i", "x=randn:20000", "-i", "y=1,2"]),
    # item 7: the NaN report listed every bad index (1.85 GB); the pretty summary listed 12.25
    # million leading indices (1.48 GB)
    "nan-report-3000": ("jacobian", 200, ["jacobian", "x*sqrt(-1)", "-i", "ones:3000", "-f", "plain", "--method", "reverse"]),
    "pretty-3500x1x1": ("pretty", 300, ["jacobian", "x", "-i", "ones:3500x1x1", "-f", "pretty", "--layout", "dense"]),
}


@pytest.mark.parametrize("case", list(ISSUE_COMMANDS))
def test_the_reviews_commands_peak_within_their_budget(case):
    from memory import MB, jacli as measured

    kind, budget, argv = ISSUE_COMMANDS[case]
    run = measured(*argv, "--max-memory", f"{budget}MB")
    assert "Traceback" not in run.stderr
    assert run.peak <= _floor(kind) + budget * MB, (case, run.peak / MB, _floor(kind) / MB)
    text = run.stdout.decode()
    if case.startswith("grad"):
        n = int(argv[3].split(":")[1])
        assert run.returncode == 0 and text.split() == ["#", "x", str(n)] + ["1.0"] * n  # ∂Σx/∂x = 1
    elif case == "check-20000":
        assert run.returncode == 0 and text.rstrip().endswith("# all agree")
    elif case == "outer-product-600":
        x = jacli.prepare("x", {"x": "randn:600"}).inputs["x"]  # the same seeded input, made here
        numbers = np.loadtxt(io.StringIO(text), comments="#")
        np.testing.assert_allclose(numbers, _outer_sum_jacobian(x).numpy(), rtol=1e-12, atol=1e-12)
    elif case == "shape-error-20000":
        assert run.returncode == 1 and text == "" and len(run.stderr.splitlines()) == 1
        assert run.stderr.startswith("Error:") and "shapes (20000, 20000) and (2,) do not broadcast" in run.stderr
    elif case == "nan-report-3000":  # one warning, its count that of the NaN written, 5 places named
        count = text.count("nan")
        warnings_ = [line for line in run.stderr.splitlines() if "result for x" in line]
        assert run.returncode == 0 and count >= 3000 and len(warnings_) == 1
        assert f"holds {count} NaN or infinite numbers at [0, 0], " in warnings_[0]
        assert warnings_[0].endswith(f"and {count - 5} more")
    else:  # the pretty summary: 4 + 4 of the 12,250,000 leading index blocks, each one number
        assert run.returncode == 0 and "… 12249992 more blocks (--full shows all)" in text


@pytest.mark.parametrize(
    "argv,expected",
    [
        # issue item 6: each ran for minutes or without end inside the size limits
        (["hessian", "prod(x)", "-i", "randn:100", "--method", "symbolic"], "took longer than its limit of 0.5 s"),
        (["grad", "sum(x@x@x@x@x@x)", "-i", "randn:5x5", "--method", "symbolic"], "took longer than its limit of 0.5 s"),
    ],
)
def test_the_reviews_symbolic_commands_are_refused_at_the_deadline(monkeypatch, argv, expected):
    from jacli.engine import exact

    monkeypatch.setattr(exact, "SECONDS", 0.5)
    result = cli(*argv)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: ") and expected in result.stderr and len(result.stderr.splitlines()) == 1


def _product_of_scalars(k: int) -> list[str]:
    argv = ["*".join(f"x{i}" for i in range(k))]
    for i in range(k):
        argv += ["-i", f"x{i}=1.01"]
    return argv


@pytest.mark.parametrize(
    "argv,note",
    [
        # the exact Jacobian or, past it, the determinant's simplify gives up: either is one note
        (["jacobian", "softmax(x)", "-i", "randn:6", "--symbolic", "--det"], "took longer than its limit of 0.5 s"),
        (["jacobian", *_product_of_scalars(400), "--symbolic"], "--symbolic skipped: the symbolic method took longer"),
        (["check", "sum(x@x@x@x@x@x)", "-i", "randn:5x5"], None),
    ],
    ids=["softmax-det", "product-of-400", "check"],
)
def test_the_reviews_symbolic_displays_are_skipped_with_a_note(monkeypatch, argv, note):
    """--symbolic, --det's exact form and check's reference give up at the deadline and keep the
    numbers, which are checked against torch here."""
    from jacli.engine import exact

    monkeypatch.setattr(exact, "SECONDS", 0.5)
    result = cli(*argv, "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    if note is None:  # check: the symbolic reference is skipped, reverse mode takes its place
        assert document["reference"] == "reverse" and document["ok"]
        assert any(m["method"] == "symbolic" and m["skipped"] and "took longer" in m["note"] for m in document["methods"])
        return
    assert note in result.stderr and "skipped" in result.stderr and len(result.stderr.splitlines()) == 1
    if argv[1] == "softmax(x)":
        x = jacli.prepare("x", {"x": "randn:6"}).inputs["x"]
        expected = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, 0), x)
        np.testing.assert_allclose(document["result"]["x"]["values"], expected.numpy(), rtol=1e-12, atol=1e-15)
        assert document["det"] == pytest.approx(float(torch.linalg.det(expected)), abs=1e-15)
        assert "det_symbolic" not in document
    else:  # ∂/∂x_i of Π x_j = Π_{j≠i} x_j = 1.01**399
        assert all(block["values"] == pytest.approx(1.01**399, rel=1e-12) for block in document["result"].values())
