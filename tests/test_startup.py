"""What a CLI call imports: the rules that keep jacli's start-up close to torch's own.

Times are measured by benchmarks/bench_scale.py, never here; these tests pin which modules a
call imports, read from ``python -X importtime`` in a child process (every import, with its
place in the import tree, on stderr), and check that the faster paths give the same numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sympy as sp
import torch

import jacli
from jacli import api
from jacli.engine.methods import SMALL_OUTPUT, JacobianMethod

HEAVY = {"torch", "sympy", "numpy", "rich", "pydantic", "scipy", "matplotlib", "dask", "distributed"}
"""Packages a light call must not import at all."""

NEVER_FOR_SMALL = {"torch._dynamo", "torch.fx.experimental.symbolic_shapes", "rich", "pydantic", "scipy",
                   "matplotlib", "dask", "distributed", "typer._adapters"}
"""Modules a small jacobian, vjp or grad (plain output, on a pipe) must not import."""


def imported(*argv: str) -> tuple[set[str], subprocess.CompletedProcess]:
    """The modules ``jacli ARGV`` imports, and the finished run."""
    environ = dict(os.environ, JACLI_NO_HISTORY="1")
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jacli", *argv],
        capture_output=True, text=True, env=environ, timeout=300,
    )
    modules = {
        line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines()
        if line.startswith("import time:") and "self [us]" not in line
    }
    assert modules, run.stderr  # -X importtime did report
    return modules, run


def _packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["jacobian", "--help"], ["vjp", "--help"]])
def test_help_and_version_import_nothing_heavy(argv: list[str]) -> None:
    modules, run = imported(*argv)
    assert run.returncode == 0 and run.stdout
    assert not _packages(modules) & HEAVY


@pytest.mark.parametrize("argv,says", [
    (["jacobian", "x", "-i", "x=eye:"], "eye"),  # a spec error: nothing of SymPy either
    (["jacobian", "x", "-i", "x=1,2", "--max-memory", "lots"], "lots"),
    (["jacobian", "x", "-i", "1", "--device", "gpu"], "gpu"),
])
def test_spec_errors_import_neither_torch_nor_sympy(argv: list[str], says: str) -> None:
    modules, run = imported(*argv)
    assert run.returncode == 1 and run.stdout == "" and says in run.stderr
    assert not _packages(modules) & HEAVY


@pytest.mark.parametrize("argv", [["jacobian", "x**", "-i", "1"], ["grad", "sin(x", "-i", "1"],
                                  ["vjp", "x + y", "-i", "x=1", "-i", "z=2", "--v", "1"]])
def test_parse_errors_never_import_torch(argv: list[str]) -> None:
    modules, run = imported(*argv)
    assert run.returncode == 1 and run.stdout == "" and "Error:" in run.stderr
    assert "torch" not in modules and not _packages(modules) & (HEAVY - {"sympy"})


@pytest.mark.parametrize("argv,expected", [
    (["jacobian", "x**2", "-i", "1,2"], "# x 2x2\n2.0 0.0\n0.0 4.0\n"),
    (["jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0"], "# matrix 2x2; rows y[0]..y[1]; columns r, t\n1.0 0.0\n0.0 2.0\n"),
    (["grad", "sum(x**2)", "-i", "1,2"], "# x 2\n2.0 4.0\n"),
    (["jacobian", "x*sum(x)", "-i", "1,2", "-f", "json"], None),
    (["jacobian", "softmax(x)*x", "-i", "randn:16", "-f", "json"], None),  # structured accumulation
])
def test_a_small_call_imports_no_dynamo_no_rich_no_pydantic(argv: list[str], expected: str | None) -> None:
    modules, run = imported(*argv)
    assert run.returncode == 0, run.stderr
    if expected is not None:  # the numbers by hand: d(x²)/dx = 2x; the polar map at (2, 0)
        assert run.stdout == expected
    assert not modules & NEVER_FOR_SMALL, sorted(modules & NEVER_FOR_SMALL)


def test_a_small_vjp_imports_no_dynamo_no_rich_no_pydantic() -> None:
    modules, run = imported("vjp", "x**2", "-i", "1,2", "--v", "1,-1")
    assert run.returncode == 0 and run.stdout == "# x 2\n2.0 -4.0\n"  # vᵀ diag(2x)
    # (torch.autograd.grad(y, x, v) checks v's size with torch.fx's symbolic shapes: what the
    # `grad` method is, it keeps)
    allowed = {"torch.fx.experimental.symbolic_shapes"}
    assert not modules & (NEVER_FOR_SMALL - allowed), sorted(modules & NEVER_FOR_SMALL)


SMALL_CASES = [
    ("x*sum(x)", {"x": [1.0, -2.0, 0.5]}),
    ("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}),
    ("softmax(x)", {"x": [0.1, 0.2, 0.3, 0.4]}),
    ("A @ tanh(x)", {"A": [[1.0, 2.0], [3.0, 4.0], [5.0, -6.0]], "x": [0.3, -0.7]}),
    ("[x[0]*x[1], 3*x[2]]", {"x": [1.0, 2.0, 5.0]}),
]


@pytest.mark.parametrize("expr,inputs", SMALL_CASES)
def test_the_small_problem_method_gives_the_numbers_of_jacrev_and_jacfwd(expr: str, inputs: dict) -> None:
    auto = api.compute_jacobian(expr, inputs, layout="dense")
    # at most SMALL_OUTPUT outputs, not diagonal: the row loop, unless structured accumulation
    # covers the formula (softmax of a vector: diag(s) - s sᵀ), which needs no torch._dynamo either
    assert auto.method == ("structured" if expr == "softmax(x)" else "rows")
    for method in ("reverse", "forward"):
        other = api.compute_jacobian(expr, inputs, method=method, layout="dense")
        for name in auto.blocks:
            torch.testing.assert_close(auto.blocks[name].to_dense(), other.blocks[name].to_dense(), rtol=1e-15, atol=1e-15)
    # and against SymPy's exact derivative, evaluated at the point
    exact = api.compute_jacobian(expr, inputs, method="symbolic", layout="dense")
    for name in auto.blocks:
        torch.testing.assert_close(auto.blocks[name].to_dense(), exact.blocks[name].to_dense(), rtol=1e-13, atol=1e-13)


def test_the_small_problem_method_stops_at_small_output() -> None:
    x = torch.linspace(0.1, 1.0, SMALL_OUTPUT + 1, dtype=torch.float64)
    assert api.compute_jacobian("x*sum(x)", {"x": x[:SMALL_OUTPUT]}).method == "rows"
    assert api.compute_jacobian("x*sum(x)", {"x": x}).method == "reverse"
    # a diagonal Jacobian keeps its single VJP
    assert api.compute_jacobian("sin(x)", {"x": x[:3]}).method == "compressed"
    # and a method asked for is the method run
    assert api.compute_jacobian("x*sum(x)", {"x": x[:3]}, method="reverse").method == JacobianMethod.reverse.value


def test_grad_and_vjp_of_a_small_problem_agree_with_sympy() -> None:
    # grad of sum(sin(x)**2) is 2 sin(x) cos(x) = sin(2x); vᵀJ of x*sum(x) is v*sum(x) + (v·x)
    x = [0.3, -1.2, 2.0]
    grad = jacli.grad("sum(sin(x)**2)", {"x": x})["x"]
    torch.testing.assert_close(grad, torch.tensor([float(sp.sin(2 * sp.Float(v))) for v in x], dtype=torch.float64),
                               rtol=1e-15, atol=1e-15)
    v = [1.0, 0.5, -2.0]
    vjp = jacli.vjp("x*sum(x)", {"x": x}, v)["x"]
    by_hand = [vi * sum(x) + sum(a * b for a, b in zip(v, x)) for vi in v]
    torch.testing.assert_close(vjp, torch.tensor(by_hand, dtype=torch.float64), rtol=1e-15, atol=1e-15)


def _typer_coercion(param):
    from typer._coercion import build_runtime_param

    return build_runtime_param(param.type_descriptor)


def test_quick_option_values_are_what_typer_makes_of_them() -> None:
    pytest.importorskip("typer._coercion", reason="a typer that coerces through pydantic")
    import typer.main

    from jacli import cli

    group = typer.main.get_command(cli.app)
    samples = {
        str: ["x**2", "cpu", ""], int: ["0", "3", "17", "18", "-1", "x", "1.5", 0, 5],
        "list": [[], ["x=1,2", "y=eye:3"], ("a",)],
    }
    checked = 0
    for command in [group, *group.commands.values()]:
        for param in command.params:
            if not hasattr(param, "type_descriptor"):
                continue
            quick = cli._QuickValues(param)
            kind = param.type_descriptor.annotation
            values = [None, param.default]
            if isinstance(kind, type) and issubclass(kind, cli.Enum):
                values += [m.value for m in kind] + [m.value.upper() for m in kind] + ["nonsense"]
            values += samples.get(kind, samples["list"] if param.multiple else [])
            for value in values:
                found = quick.quick(value)
                if found is cli._DOUBTFUL:
                    continue  # typer's own coercion decides (and words the error)
                with cli.typer.Context(command) as ctx:
                    expected = _typer_coercion(param).coerce(value, param=param, ctx=ctx)
                assert found == expected and type(found) is type(expected), (param.name, value)
                checked += 1
    assert checked > 100


# -- the quick exit (NOTE [quick exit] in jacli/__main__.py) ----------------------------------------


def _jacli(*argv: str, full_exit: bool = False, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    environ = dict(os.environ, JACLI_NO_HISTORY="1")
    if full_exit:
        environ["JACLI_FULL_EXIT"] = "1"
    else:
        environ.pop("JACLI_FULL_EXIT", None)
    return subprocess.run([sys.executable, "-m", "jacli", *argv], capture_output=True, env=environ, timeout=300,
                          input=stdin)


@pytest.mark.parametrize("argv,code", [
    (["jacobian", "x**2", "-i", "ones:40", "-f", "plain"], 0),  # 1,600 numbers through the pipe
    (["vjp", "x*sum(x)", "-i", "1,2", "--v", "1,-1", "-f", "json"], 0),
    (["jacobian", "x**", "-i", "1"], 1),
    (["jacobian", "x", "--bogus"], 2),
    (["check", "sqrt(x)", "-i", "0,1"], 3),
])
def test_the_quick_exit_keeps_every_byte_and_the_exit_code(argv: list[str], code: int) -> None:
    quick, full = _jacli(*argv), _jacli(*argv, full_exit=True)
    assert quick.returncode == full.returncode == code
    assert quick.stdout == full.stdout and quick.stderr == full.stderr
    if code == 0:
        assert quick.stdout.endswith(b"\n") and len(quick.stdout) > 20


def test_the_quick_exit_writes_the_output_file_whole(tmp_path) -> None:
    quick, full = tmp_path / "quick.json", tmp_path / "full.json"
    assert _jacli("jacobian", "x*sum(x)", "-i", "ones:30", "-o", str(quick)).returncode == 0
    assert _jacli("jacobian", "x*sum(x)", "-i", "ones:30", "-o", str(full), full_exit=True).returncode == 0
    assert quick.read_bytes() == full.read_bytes() and len(quick.read_bytes()) > 900 * 3


def test_the_quick_exit_runs_atexit_handlers_and_steps_aside_for_a_tracer() -> None:
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('handler ran', flush=True))\n"
        "sys.argv = ['jacli', 'grad', 'sum(x**2)', '-i', '1,2']\n"
        "if {traced}:\n"
        "    sys.settrace(lambda *a: None)\n"
        "from jacli.__main__ import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    print('normal exit', done.code)\n"
    )
    environ = dict(os.environ, JACLI_NO_HISTORY="1")
    environ.pop("JACLI_FULL_EXIT", None)
    quick = subprocess.run([sys.executable, "-c", script.format(traced=False)], capture_output=True, text=True,
                           env=environ, timeout=300)
    assert quick.returncode == 0 and quick.stdout == "# x 2\n2.0 4.0\nhandler ran\n"  # d(x²)/dx = 2x
    traced = subprocess.run([sys.executable, "-c", script.format(traced=True)], capture_output=True, text=True,
                            env=environ, timeout=300)
    assert traced.returncode == 0 and traced.stdout == "# x 2\n2.0 4.0\nnormal exit 0\nhandler ran\n"


def test_a_broken_pipe_ends_as_before() -> None:
    argv = [sys.executable, "-m", "jacli", "jacobian", "x**2", "-i", "ones:200", "-f", "plain"]
    results = []
    for full_exit in (False, True):
        environ = dict(os.environ, JACLI_NO_HISTORY="1", **({"JACLI_FULL_EXIT": "1"} if full_exit else {}))
        if not full_exit:
            environ.pop("JACLI_FULL_EXIT", None)
        reader = subprocess.Popen(["head", "-c", "100"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        writer = subprocess.Popen(argv, stdout=reader.stdin, stderr=subprocess.PIPE, env=environ)
        reader.stdin.close()  # (the writer holds the pipe now)
        head = reader.stdout.read()
        reader.wait(timeout=300)
        _, errors = writer.communicate(timeout=300)
        results.append((writer.returncode, errors, head))
    assert results[0] == results[1]
    assert results[0][2].startswith(b"# x 200x200\n2.0 0.0")
