"""--show-code: the printed scripts, run in a separate Python, give jacli's numbers.

The reference is jacli's own result, computed by the library in this process; the script is
run by another interpreter (one subprocess for all scripts: importing torch once). jacli never
executes the text; this test does, as a user would.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from helpers import cli_runner

from jacli import api
from jacli.cli import app
from jacli.compile import compile_expression
from jacli.functions import _OPERATORS, FUNCTIONS
from jacli.showcode import expression_code, script

# (command, expression, inputs, options): every command, every method
CASES = [
    ("jacobian", "(x+1)**2", ["x=eye:3"], ["--method", "reverse"]),
    ("jacobian", "[r*cos(t), r*sin(t)]", ["r=2", "t=0.5"], ["--method", "forward"]),
    ("jacobian", "sin(a)*b + a**2/b", ["a=randn:3", "b=rand:3"], ["--method", "rows", "--seed", "7"]),
    ("jacobian", "(x+1)**2", ["x=eye:3"], ["--method", "compressed"]),
    ("jacobian", "x[:-2] - 2*x[1:-1] + x[2:]", ["x=randn:8"], ["--method", "compressed"]),
    ("jacobian", "tanh(x)*2 + x", ["x=linspace:0,1,4"], ["--method", "structured"]),
    ("jacobian", "x**2*y", ["x=1", "y=2"], ["--method", "symbolic"]),
    ("jacobian", "softmax(x)*x", ["x=randn:4"], ["--wrt", "x"]),
    ("jacobian", "a @ x + b", ["a=randn:3x2", "x=1,2", "b=arange:3"], ["--wrt", "x,a"]),
    ("jacobian", "x**3", ["x=randn:2"], ["--method", "reverse", "--dtype", "float32"]),
    ("vjp", "(x+1)**2", ["x=eye:5"], ["--v", "ones", "--method", "backward"]),
    ("vjp", "3*a + 2*b**2 + log(c)", ["a=1,2,3", "b=3,4,5", "c=6,7,8"], ["--v", "0.1,1,0.0001", "--method", "grad"]),
    ("vjp", "sin(x)*y", ["x=randn:2x3", "y=full:2x3:0.5"], ["--v", "randn", "--wrt", "x", "--seed", "3"]),
    ("jvp", "[r*cos(t), r*sin(t)]", ["r=2", "t=0.5"], ["--v", "t=1"]),
    ("jvp", "x**2 + sin(x)", ["x=1,2,3"], ["--v", "1,0,-1"]),
    ("grad", "x**2 + 3*x + 1", ["x=2"], ["--method", "reverse"]),
    ("grad", "sum(x**3) * y", ["x=randn:4", "y=1.5"], ["--method", "forward"]),
    ("grad", "3*a + 2*b**2 + log(c)", ["a=0.1", "b=1", "c=0.1"], ["--method", "symbolic"]),
    ("hessian", "x[0]**2*x[1] + x[1]**3", ["x=1,2"], ["--method", "forward"]),
    ("hessian", "a*b**2 + sin(a)", ["a=1", "b=2"], ["--method", "reverse"]),
    ("hessian", "logsumexp(x)", ["x=randn:3"], ["--method", "symbolic"]),
    ("hvp", "x[0]**2*x[1] + x[1]**3", ["x=1,2"], ["--v", "1,0"]),
    ("hvp", "a*b**2 + sum(c**2)", ["a=1", "b=2", "c=1,2"], ["--v", "a=1", "--v", "c=0.5,1"]),
]


def _jacli_numbers(command: str, argv: list[str]) -> dict:
    """jacli's result as JSON: ``output`` and ``result`` (dense, float64)."""
    run = cli_runner().invoke(app, [command, *argv, "-f", "json", "--layout", "dense"] if command == "jacobian"
                              else [command, *argv, "-f", "json"], env={"JACLI_NO_HISTORY": "1"})
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)


def _scripts(argvs: list[tuple[str, list[str]]]) -> list[str]:
    texts = []
    for command, argv in argvs:
        run = cli_runner().invoke(app, [command, *argv, "--show-code"], env={"JACLI_NO_HISTORY": "1"})
        assert run.exit_code == 0, run.stderr
        assert run.stderr == ""
        texts.append(run.stdout)
    return texts


DRIVER = r"""
import json, runpy, sys, contextlib, io
out = []
for path in sys.argv[1:]:
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        names = runpy.run_path(path)
    out.append({"printed": printed.getvalue(),
                "output": names["y"].detach().double().tolist(),
                "result": {k: v.detach().double().tolist() for k, v in names["result"].items()}})
print(json.dumps(out))
"""


def _run_scripts(texts: list[str], tmp_path) -> list[dict]:
    """Each script run by a fresh Python (one process for all: torch is imported once)."""
    paths = []
    for index, text in enumerate(texts):
        path = tmp_path / f"script{index}.py"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    done = subprocess.run([sys.executable, "-c", DRIVER, *paths], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _close(a, b, rtol: float, atol: float, dtype: torch.dtype = torch.float64) -> None:
    """Equal within the tolerances in ``dtype`` (jacli's JSON writes float32 numbers shortest)."""
    a, b = torch.tensor(a, dtype=torch.float64).to(dtype), torch.tensor(b, dtype=torch.float64).to(dtype)
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol, equal_nan=True)


def test_every_command_and_method_reproduces_jaclis_numbers(tmp_path) -> None:
    argvs = [(command, [expr, *sum((["-i", i] for i in inputs), []), *options]) for command, expr, inputs, options in CASES]
    texts = _scripts(argvs)
    ran = _run_scripts(texts, tmp_path)
    for (command, argv), text, got in zip(argvs, texts, ran):
        expected = _jacli_numbers(command, argv)
        exact = "--method" in argv and argv[argv.index("--method") + 1] in ("reverse", "forward", "rows", "backward", "grad")
        exact = exact or command in ("jvp", "hvp", "vjp")
        # The same torch calls give the same bits; a method plain torch lacks (compressed,
        # structured, symbolic, packed Hessians) agrees to rounding.
        rtol, atol = (0, 0) if exact else (1e-12, 1e-12)
        dtype = torch.float32 if "float32" in argv else torch.float64
        _close(got["output"], expected["output"]["values"], rtol, atol, dtype)
        assert set(got["result"]) == set(expected["result"]), text
        for key, values in got["result"].items():
            _close(values, expected["result"][key]["values"], rtol, atol, dtype)


def test_the_tutorial_script_reads_as_torch() -> None:
    """The script for (x+1)**2 with y.backward(v): the calls a reader looks for, in order."""
    (text,) = _scripts([("vjp", ["(x+1)**2", "-i", "eye:5", "--v", "ones", "--method", "backward"])])
    expected = [
        "x = torch.eye(5, 5, dtype=dtype, device=device)",
        "def f(x):\n    return (x + 1) ** 2",
        "x.requires_grad_(True)",
        "y = f(x)",
        "v = torch.ones_like(y)",
        "\ny.backward(v)\n",
        "'x': x.grad",
        "print('x.grad =', result['x'])",
    ]
    positions = [text.index(piece) for piece in expected]
    assert positions == sorted(positions)


def test_a_random_input_is_made_with_jaclis_generator_and_seed(tmp_path) -> None:
    (text,) = _scripts([("grad", ["sum(w**2)", "-i", "w=randn:3x4", "--seed", "11"])])
    assert "torch.randn((3, 4), generator=" in text
    (got,) = _run_scripts([text], tmp_path)
    expected = api.compute_grad("sum(w**2)", {"w": "randn:3x4"}, seed=11)
    assert torch.equal(torch.tensor(got["result"]["w"], dtype=torch.float64), expected.grads["w"])


def test_inputs_named_like_the_scripts_own_names_are_renamed(tmp_path) -> None:
    texts = _scripts([("grad", ["torch*y + f*range", "-i", "torch=2", "-i", "y=3", "-i", "f=1", "-i", "range=5"])])
    (got,) = _run_scripts(texts, tmp_path)
    assert all(f"{name}_ = " in texts[0] for name in ("torch", "y", "f", "range"))
    # d/d torch = y, d/dy = torch, d/df = range, d/d range = f
    assert got["result"] == {"torch": 3.0, "y": 2.0, "f": 5.0, "range": 1.0}


def test_shared_sub_expressions_are_computed_once() -> None:
    assert expression_code("sin(x)*sin(x) + sin(x)") == (
        "def f(x):\n    shared1 = torch.sin(x)\n    return shared1 * shared1 + shared1"
    )


# One call of every function in the table (and every comparison), with inputs in its domain.
CALLS = {
    "sin": "sin(x)", "cos": "cos(x)", "tan": "tan(x)", "asin": "asin(x/4)", "acos": "acos(x/4)", "atan": "atan(x)",
    "sinh": "sinh(x)", "cosh": "cosh(x)", "tanh": "tanh(x)", "asinh": "asinh(x)", "acosh": "acosh(p + 1)",
    "atanh": "atanh(x/4)", "exp": "exp(x)", "log": "log(p) + log(p, 3)", "sqrt": "sqrt(p)", "abs": "abs(x)",
    "sign": "sign(x)", "erf": "erf(x)", "relu": "relu(x)", "sigmoid": "sigmoid(x)", "softplus": "softplus(x)",
    "log1p": "log1p(p)", "expm1": "expm1(x)", "logsigmoid": "logsigmoid(x)", "cbrt": "cbrt(x - 1)",
    "gamma": "gamma(x)", "lgamma": "lgamma(p)", "digamma": "digamma(p)", "hypot": "hypot(x, p)",
    "atan2": "atan2(x, p)", "floor": "floor(x*3)", "ceil": "ceil(x*3)", "round": "round(x*3)",
    "clamp": "clamp(x, -0.5, 0.5)", "where": "where(x > 0, x, -x)", "min": "min(x, p)", "max": "max(x, p)",
    "sum": "sum(m) + sum(m, 0)", "mean": "mean(m) + mean(m, 1)", "prod": "prod(m) + prod(m, 0)",
    "norm": "norm(m) + norm(m, 1)", "dot": "dot(x, p)", "softmax": "softmax(m) + softmax(m, 0)",
    "log_softmax": "log_softmax(m) + log_softmax(m, 1)", "logsumexp": "logsumexp(m) + logsumexp(m, 0)",
    "cat": "cat(x, p, 2)", "stack": "stack(x, p)", "flip": "flip(m) + flip(m, 1)", "roll": "roll(m, 1) + roll(m, 1, 0)",
    "cumsum": "cumsum(m) + reshape(cumsum(m, 1), 4)", "cumprod": "cumprod(m) + reshape(cumprod(m, 0), 4)",
    "diff": "diff(m) + transpose(diff(m, 0))", "det": "det(m)", "logdet": "logdet(m @ transpose(m) + 1)",
    "inv": "inv(m)", "solve": "solve(m, p[:2])", "trace": "trace(m)", "diag": "diag(m) + diag(diag(m))[0]",
    "outer": "outer(x, p)", "tril": "tril(m) + tril(m, -1)", "triu": "triu(m) + triu(m, 1)",
    "reshape": "reshape(x, 2, 2)", "transpose": "transpose(m) + transpose(m, 0, 1)", "matmul": "matmul(m, m)",
    "pad": "pad(x, 1, 2) + pad(x, 3, 0, 0)", "shift": "shift(x, 1) + shift(x, -2) + shift(x, 5) + reshape(shift(m, 1, 1), 4)",
    "kron": "kron(m, m)", "cross": "cross(x[:3], p[1:])", "einsum": 'einsum("ij,jk->ik", m, m) + einsum("ii", m)',
    "slogdet": "slogdet(m) + slogdet(-m @ m)", "arange": "x * arange(4) + arange(1, 9, 2) / 10 + arange(0.5, 2.5, 0.5)",
    "linspace": "x * linspace(0, 1, 4) + linspace(1/3, 2, 4)", "ones": "x * ones(4) + sum(m * ones(2, 2))",
    "zeros": "x + zeros(4)", "eye": "m * eye(2) + sum(eye(2, 3))",
}
CALLS["cat"] = "cat(x, p, 2)[:8] + reshape(cat(m, m, axis=1), 8)"
CALLS["stack"] = "reshape(stack(x, p), 8) + reshape(stack(m, p[:2], axis=1), 8) + reshape(stack(x, p, axis=-1), 8)"
COMPARISONS = "(x < p) + (x <= p) + (x > p) + (x >= p) + (x == p) + (x != p)"


def _point() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    x = torch.tensor([-1.5, -0.25, 0.75, 2.0], dtype=torch.float64)
    return {"x": x, "p": torch.rand(4, generator=generator, dtype=torch.float64) + 0.5,
            "m": torch.randn(2, 2, generator=generator, dtype=torch.float64) + 2 * torch.eye(2, dtype=torch.float64)}


def test_every_function_of_the_table_is_written_as_torch_code() -> None:
    assert set(CALLS) == set(FUNCTIONS)
    assert all(entry.code is not None for entry in _OPERATORS)
    point = _point()
    for name, text in [*CALLS.items(), ("comparisons", COMPARISONS)]:
        compiled = compile_expression(text)
        args = [point[v] for v in compiled.variables]
        expected = compiled.function(*args)
        namespace = {"torch": torch, "math": math, "dtype": torch.float64, "device": "cpu"}
        exec(expression_code(text), namespace)  # the test runs the text; jacli never does
        got = namespace["f"](*args)
        assert torch.equal(got, expected) or torch.allclose(got, expected, rtol=0, atol=0, equal_nan=True), name


def test_show_code_replaces_the_result_and_refuses_other_outputs() -> None:
    run = cli_runner().invoke(app, ["jacobian", "x**2", "-i", "1,2", "--show-code", "-o", "j.json"])
    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr.startswith("Error: --show-code prints a script on stdout") and "--output" in run.stderr


def test_a_big_literal_is_refused_with_advice() -> None:
    result = api.compute_vjp("x*2", {"x": torch.arange(20_001, dtype=torch.float64)}, "ones")
    from jacli.errors import ResourceError

    with pytest.raises(ResourceError, match=r"`show_code` writes input x as a literal .* randn:20001"):
        script(result)


def test_the_repeat_script_accumulates_as_jacli_showed(tmp_path) -> None:
    argv = ["(x+1)**2", "-i", "eye:5", "--v", "ones", "--repeat", "3", "--zero-grad-after", "2"]
    (text,) = _scripts([("vjp", argv)])
    path = tmp_path / "repeat.py"
    path.write_text(text, encoding="utf-8")
    driver = ("import json, runpy, sys, contextlib, io\n"
              "with contextlib.redirect_stdout(io.StringIO()):\n"
              "    names = runpy.run_path(sys.argv[1])\n"
              "print(json.dumps({k: v['x'].tolist() for k, v in names['result'].items()}))\n")
    done = subprocess.run([sys.executable, "-c", driver, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    run = cli_runner().invoke(app, ["vjp", *argv, "-f", "json"], env={"JACLI_NO_HISTORY": "1"})
    shown = [entry["result"]["x"]["values"] for entry in json.loads(run.stdout)]
    assert [got[str(k)] for k in (1, 2, 3)] == shown
