"""jvp, grad, hessian, hvp, exact (symbolic) derivatives, det and check — against SymPy's exact
derivatives built independently here, and against the identities that tie them together."""

from __future__ import annotations

import io
import json
import math
import shlex

import numpy as np
import pytest
import sympy as sp
import torch
from helpers import cli, cli_json, random

import jacli
from jacli.errors import InputError, ResourceError, ShapeError

F64 = torch.float64


# -- jvp ----------------------------------------------------------------------------------------

JVP_CASES = [
    ("sin(x)*x + x**2", {"x": (4,)}),
    ("[r*cos(t), r*sin(t)]", {"r": (), "t": ()}),
    ("a @ b + 1", {"a": (2, 3), "b": (3, 2)}),
    ("softmax(x) * sum(y)", {"x": (3,), "y": (2,)}),
    ("x[0]**2*x[1] + x[1]**3", {"x": (2,)}),
]


@pytest.mark.parametrize("expr,shapes", JVP_CASES)
def test_jvp_equals_jacobian_times_v_and_vjp_identity(expr, shapes):
    inputs = {name: random(shape, i) for i, (name, shape) in enumerate(shapes.items())}
    if "r" in inputs:
        inputs["r"] = inputs["r"].abs() + 0.5
    directions = {name: random(shape, 10 + i) for i, (name, shape) in enumerate(shapes.items())}
    jac = jacli.jacobian(expr, inputs)
    out_dims = jac[next(iter(jac))].dim() - inputs[next(iter(jac))].dim()
    expected = sum(
        torch.tensordot(jac[n], directions[n], dims=directions[n].dim()) for n in inputs
    )
    got = jacli.jvp(expr, inputs, directions)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # vᵀ (J u) = (vᵀ J) u
    v = random(got.shape, 99)
    left = (v * got).sum()
    vjp = jacli.vjp(expr, inputs, v)
    right = sum((vjp[n] * directions[n]).sum() for n in inputs)
    torch.testing.assert_close(left, right, rtol=1e-12, atol=1e-12)
    assert got.dim() == out_dims


def test_jvp_missing_direction_is_zero():
    # d/dt [r cos t, r sin t] at r=2, t=0.5, moving t only: r * [-sin t, cos t]
    got = jacli.jvp("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}, {"t": 1.0})
    torch.testing.assert_close(got, torch.tensor([-2 * math.sin(0.5), 2 * math.cos(0.5)], dtype=F64))


def test_jvp_cli_result_key_is_output():
    doc = cli_json("jvp", "x**2", "-i", "1,2,3", "--v", "1,0,0")
    assert list(doc["result"]) == ["output"]
    assert doc["result"]["output"]["values"] == [2.0, 0.0, 0.0]


def test_jvp_direction_errors():
    with pytest.raises(InputError, match="give `v` as {name: direction}"):
        jacli.jvp("a*b", {"a": 1.0, "b": 2.0}, [(None, "1")])
    with pytest.raises(InputError, match="did you mean a"):
        jacli.jvp("a*b", {"a": 1.0, "b": 2.0}, {"aa": 1.0})
    with pytest.raises(ShapeError, match="input x"):
        jacli.jvp("x**2", {"x": [1.0, 2.0]}, {"x": [1.0, 2.0, 3.0]})


# -- grad ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "reverse", "forward", "symbolic"])
def test_grad_must_reproduce(method):
    assert float(jacli.grad("x**2 + 3*x + 1", {"x": 2.0}, method=method)["x"]) == pytest.approx(7)
    g = jacli.grad("3*a + 2*b**2 + log(c)", {"a": 0.1, "b": 1.0, "c": 0.1}, method=method)
    assert [float(g[n]) for n in "abc"] == pytest.approx([3, 4, 10], rel=1e-12)
    g = jacli.grad("mean((x+1)**2)", {"x": "ones:2x2"}, method=method)["x"]
    torch.testing.assert_close(g, torch.ones(2, 2, dtype=F64))
    g = jacli.grad("sum(a @ b)", {"a": [[1, 2, 3]], "b": [[1], [2], [3]]}, method=method)
    torch.testing.assert_close(g["a"], torch.tensor([[1.0, 2, 3]], dtype=F64))
    torch.testing.assert_close(g["b"], torch.tensor([[1.0], [2], [3]], dtype=F64))


def test_grad_equals_backward():
    x = random((5,), 3)
    leaf = x.clone().requires_grad_()
    (torch.sin(leaf) * leaf.exp()).sum().backward()
    torch.testing.assert_close(jacli.grad("sum(sin(x)*exp(x))", {"x": x})["x"], leaf.grad, rtol=0, atol=0)


def test_grad_of_vector_explains_and_its_suggestions_work():
    result = cli("grad", "x*x", "-i", "1,2,3")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert "grad can be implicitly created only for scalar outputs" in result.stderr
    suggestions = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("jacli ")]
    assert any(" vjp " in s and "--v ones" in s for s in suggestions)
    assert any(" jacobian " in s for s in suggestions)
    for suggestion in suggestions:  # the commands it shows really work
        argv = shlex.split(suggestion)[1:]
        follow = cli(*argv, "--format", "json")
        assert follow.exit_code == 0, follow.stderr
    vjp = json.loads(cli(*shlex.split(suggestions[0])[1:], "--format", "json").stdout)
    assert vjp["result"]["x"]["values"] == [2.0, 4.0, 6.0]


# -- hessian and hvp ----------------------------------------------------------------------------


def sympy_hessian(expr_of_symbols, symbols, point):
    h = sp.hessian(expr_of_symbols, symbols)
    return torch.tensor([[float(h[i, j].subs(point)) for j in range(len(symbols))] for i in range(len(symbols))], dtype=F64)


@pytest.mark.parametrize("method", ["auto", "forward", "reverse", "symbolic"])
def test_hessian_must_reproduce_and_matches_sympy(method):
    h = jacli.hessian("x[0]**2*x[1] + x[1]**3", {"x": [1.0, 2.0]}, method=method)["x", "x"]
    torch.testing.assert_close(h, torch.tensor([[4.0, 2.0], [2.0, 12.0]], dtype=F64))
    a, b, c = sp.symbols("a b c", real=True)
    point = {a: 0.3, b: -1.2, c: 0.7}
    expected = sympy_hessian(sp.sin(a * b) + sp.exp(c) * a**2 + sp.log(1 + b**2) * c, [a, b, c], point)
    got = jacli.hessian(
        "sin(a*b) + exp(c)*a**2 + log(1 + b**2)*c", {"a": 0.3, "b": -1.2, "c": 0.7}, method=method
    )
    names = "abc"
    table = torch.stack([torch.stack([got[p, q] for q in names]) for p in names])
    torch.testing.assert_close(table, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(table, table.T, rtol=0, atol=1e-14)  # symmetric


def test_hessian_blocks_shapes_and_symmetry():
    inputs = {"x": random((3,), 1), "w": random((2, 3), 2)}
    h = jacli.hessian("sum(tanh(w @ x)**2)", inputs)
    assert h["x", "x"].shape == (3, 3) and h["w", "w"].shape == (2, 3, 2, 3) and h["x", "w"].shape == (3, 2, 3)
    torch.testing.assert_close(h["x", "w"], h["w", "x"].permute(2, 0, 1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h["x", "x"], h["x", "x"].T, rtol=1e-12, atol=1e-12)


def test_hvp_equals_hessian_times_v():
    inputs = {"x": random((3,), 1), "w": random((2, 3), 2)}
    u = {"x": random((3,), 5), "w": random((2, 3), 6)}
    h = jacli.hessian("sum(tanh(w @ x)**2)", inputs)
    hv = jacli.hvp("sum(tanh(w @ x)**2)", inputs, u)
    for a in inputs:
        expected = sum(torch.tensordot(h[a, b], u[b], dims=u[b].dim()) for b in inputs)
        torch.testing.assert_close(hv[a], expected, rtol=1e-12, atol=1e-12)


def test_hessian_of_vector_output_is_an_error():
    with pytest.raises(ShapeError, match="single number"):
        jacli.hessian("x**2", {"x": [1.0, 2.0]})


def test_hessian_cli_keys():
    doc = cli_json("hessian", "a*b**2", "-i", "a=1", "-i", "b=2")
    assert set(doc["result"]) == {"a,a", "a,b", "b,a", "b,b"}
    # d²(a b²): aa 0, ab 2b = 4, bb 2a = 2
    assert [doc["result"][k]["values"] for k in ("a,a", "a,b", "b,b")] == [0.0, 4.0, 2.0]


# -- symbolic -----------------------------------------------------------------------------------

SYMBOLIC_CASES = [
    ("sin(x)*cos(x) + tan(x/3) + exp(-x) + log(x + 3) + sqrt(x + 4)", (4,)),
    ("asin(x/2) + acos(x/3) + atan(x) + sinh(x) + cosh(x) + tanh(x)", (3,)),
    ("asinh(x) + acosh(x + 3) + atanh(x/2) + erf(x) + sigmoid(x) + softplus(x)", (3,)),
    ("abs(x) + sign(x) + relu(x) + min(x, 0.5) + max(x, -0.5) + log(x + 5, 2)", (4,)),
    ("sum(x) * mean(x) + prod(x) + norm(x) + logsumexp(x)", (3,)),
    ("softmax(x) + softmax(reshape(x, 3, 2), 0)[0, 0] + dot(x, x)", (6,)),
    ("transpose(reshape(x, 2, 3)) @ reshape(x, 2, 3)", (6,)),
    ("[x[0]*x[1], x[1:]**2, 3]", (2,)),
    ("x - x + x ^ 2 - e ** x * pi", (2, 2)),
]


@pytest.mark.parametrize("expr,shape", SYMBOLIC_CASES)
def test_symbolic_method_equals_autograd(expr, shape):
    x = random(shape, 7) * 0.8
    exact = jacli.jacobian(expr, {"x": x}, method="symbolic")["x"]
    torch.testing.assert_close(exact, jacli.jacobian(expr, {"x": x}, method="reverse")["x"], rtol=1e-10, atol=1e-12)


def test_symbolic_display_elementwise_and_polar():
    result = cli("jacobian", "(x+1)**2", "-i", "eye:2", "--symbolic", "--format", "pretty")
    assert result.exit_code == 0
    assert "2⋅x + 2" in result.stdout
    doc = cli_json("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--symbolic")
    assert doc["symbolic"] == {"r": ["cos(t)", "sin(t)"], "t": ["-r*sin(t)", "r*cos(t)"]}
    pretty = cli("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--symbolic", "-f", "pretty").stdout
    assert "-r⋅sin(t)" in pretty and "r⋅cos(t)" in pretty


def test_symbolic_too_large_is_refused():
    with pytest.raises(ResourceError, match="symbolic"):
        jacli.jacobian("x**2", {"x": "ones:1000"}, method="symbolic")


# -- det ----------------------------------------------------------------------------------------


def test_det_of_polar_is_r():
    doc = cli_json("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--det", "--symbolic")
    assert doc["det"] == pytest.approx(2.0, rel=1e-15)
    assert doc["det_symbolic"] == "r"
    # spherical coordinates: det = r² sin(θ)
    r, th, ph = 1.5, 0.7, 0.3
    doc = cli_json(
        "jacobian", "[r*sin(th)*cos(ph), r*sin(th)*sin(ph), r*cos(th)]",
        "-i", f"r={r}", "-i", f"th={th}", "-i", f"ph={ph}", "--det",
    )
    assert doc["det"] == pytest.approx(r**2 * math.sin(th), rel=1e-12)


def test_det_needs_square():
    result = cli("jacobian", "[x*y, x+y, x-y]", "-i", "x=1", "-i", "y=2", "--det")
    assert result.exit_code == 1 and "square" in result.stderr and result.stdout == ""


# -- check --------------------------------------------------------------------------------------


def test_check_agrees_on_smooth_expressions():
    report = jacli.check("softmax(x) * sin(x) + x @ x", {"x": "randn:4"})
    assert report.ok and report.reference == "symbolic"
    assert {m.method for m in report.methods} == {"reverse", "forward", "rows", "compressed", "finite differences"}
    assert all(m.max_abs < 1e-8 for m in report.methods)


def test_check_fails_with_a_wrong_reference():
    def wrong(f, args, wrt):
        return [torch.diag(2 * args[0]) * (1 + 1e-2)]

    report = jacli.check("x**2", {"x": "1,2,3"}, reference=wrong)
    assert not report.ok
    assert all(not m.ok for m in report.methods)
    assert all(m.max_rel == pytest.approx(1e-2 / 1.01, rel=1e-6) for m in report.methods)


def test_check_cli_exit_codes_and_kinks():
    ok = cli("check", "sin(x)*x", "-i", "randn:3", "--format", "json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True
    kink = cli("check", "relu(x)", "-i", "-1,0,1", "--format", "json")
    doc = json.loads(kink.stdout)
    assert kink.exit_code == 0 and doc["kinks"] and "[1]" in doc["kinks"][0]
    fd = next(m for m in doc["methods"] if m["method"] == "finite differences")
    assert fd["max_abs"] == pytest.approx(0.5) and "kink" in fd["note"]
    # no tolerance at all: rounding differences between methods must make check fail, exit 1
    strict = cli("check", "softmax(x)", "-i", "0.3,1.7,-0.2", "--rtol", "0", "--atol", "0", "--format", "json")
    assert strict.exit_code == 1 and json.loads(strict.stdout)["ok"] is False


def test_check_skips_symbolic_when_too_large_and_uses_reverse():
    report = jacli.check("x**2", {"x": "randn:500"})
    assert report.reference == "reverse"
    symbolic = next(m for m in report.methods if m.method == "symbolic")
    assert symbolic.skipped and "400" in symbolic.note


def _method(report, name):
    return next(m for m in report.methods if m.method == name)


def _hand_reference(*blocks):
    """A reference that returns these hand-computed blocks, whatever the expression."""
    return lambda f, args, wrt: [torch.tensor(b, dtype=F64) for b in blocks]


def test_check_kink_excuses_only_the_columns_whose_step_crosses_it():
    # 1/x + relu(y) at x = 0.5, y = 0: d/dx = -1/x² = -4, d/dy = relu'(0) = 0 (torch's convention);
    # central differences at y = 0 straddle the kink and give 1/2.
    right = jacli.check("1/x + relu(y)", {"x": 0.5, "y": 0.0}, reference=_hand_reference(-4.0, 0.0))
    fd = _method(right, "finite differences")
    assert right.ok and fd.ok and fd.excused == ["y"] and "relu(y)" in fd.note
    assert fd.max_abs == pytest.approx(0.5, abs=1e-9) and fd.max_rel == math.inf  # |1/2 - 0| / 0
    # wrong by 1% in the x column, away from the kink: every method, finite differences too, fails
    wrong_x = jacli.check("1/x + relu(y)", {"x": 0.5, "y": 0.0}, reference=_hand_reference(-4.04, 0.0))
    fd = _method(wrong_x, "finite differences")
    assert not wrong_x.ok and not fd.ok and fd.excused == ["y"] and "beyond tolerance at 1 entry" in fd.note
    assert all(not m.ok for m in wrong_x.methods)
    # wrong in the kink column: finite differences are excused there, the exact methods are not
    wrong_y = jacli.check("1/x + relu(y)", {"x": 0.5, "y": 0.0}, reference=_hand_reference(-4.0, 0.25))
    assert not wrong_y.ok and _method(wrong_y, "finite differences").ok
    assert not any(_method(wrong_y, m).ok for m in ("reverse", "forward", "rows", "symbolic"))


def test_check_kink_columns_are_those_of_the_elements_on_it():
    # relu(x) + x**2 at x = [0, 2]: the Jacobian is diag(relu'(x) + 2x) = diag(0, 5); finite
    # differences give 1/2 at [0, 0]. Only x[0]'s column is excused; a wrong x[1] column fails.
    report = jacli.check("relu(x) + x**2", {"x": "0,2"}, reference=_hand_reference([[0.0, 0.0], [0.0, 5.0]]))
    fd = _method(report, "finite differences")
    assert report.ok and fd.excused == ["x[0]"] and fd.max_abs == pytest.approx(0.5, abs=1e-9)
    report = jacli.check("relu(x) + x**2", {"x": "0,2"}, reference=_hand_reference([[0.0, 0.0], [0.0, 5.5]]))
    fd = _method(report, "finite differences")
    assert not fd.ok and fd.excused == ["x[0]"] and "beyond tolerance at 1 entry" in fd.note
    # a step that crosses a kink nearby (relu(x - 1e-5) at 0, step 7.4e-4) is excused the same way
    near = jacli.check("relu(x - 1e-5)", {"x": 0.0})
    fd = _method(near, "finite differences")
    assert near.ok and near.kinks == [] and fd.excused == ["x"] and fd.max_abs > 0.4


def test_check_max_rel_is_over_the_same_entries_as_max_abs():
    # the engines give diag(2x) = [[2, 0], [0, 4]] for x**2 at [1, 2]; hand-made references:
    report = jacli.check("x**2", {"x": "1,2"}, reference=_hand_reference([[2.0, 0.5], [0.0, 4.0]]))
    assert all(m.max_abs == pytest.approx(0.5, abs=1e-9) and m.max_rel == pytest.approx(1.0) for m in report.methods)
    report = jacli.check("x**2", {"x": "1,2"}, reference=_hand_reference([[0.0, 0.0], [0.0, 4.0]]))
    assert all(m.max_abs == pytest.approx(2.0, abs=1e-9) and m.max_rel == math.inf for m in report.methods)
    for m in jacli.check("relu(x)*x + sin(x)", {"x": "-1,0,2"}).methods:
        assert (m.max_abs == 0) == (m.max_rel == 0)


def test_check_singular_point_is_named_and_fails():
    # sqrt at 0: the exact derivative is inf at [0, 0]; reverse mode gives 0·inf = nan at [1, 0],
    # forward mode at [0, 1]; finite differences evaluate sqrt(-h) = nan.
    report = jacli.check("sqrt(x)", {"x": "0,1"})
    assert not report.ok and report.verdict == "singular"
    assert report.singular == ["the reference (symbolic) is inf at dy/dx[0, 0]"]
    assert _method(report, "reverse").nonfinite == ["nan at dy/dx[1, 0]", "inf at dy/dx[0, 0]"]
    assert _method(report, "forward").nonfinite == ["nan at dy/dx[0, 1]", "inf at dy/dx[0, 0]"]
    assert _method(report, "finite differences").nonfinite == ["nan at dy/dx[0, 0]"]
    for m in report.methods:  # the finite entries [0, 1] = 0 and [1, 1] = 1/2 agree exactly
        assert not m.ok and m.max_abs < 1e-9 and m.max_rel < 1e-9
    # norm at the origin: the exact derivative x/|x| is 0/0; autograd says 0 (torch's convention)
    report = jacli.check("norm(x)", {"x": "0,0"})
    assert report.singular == ["the reference (symbolic) is nan at dy/dx[0], dy/dx[1]"]
    assert all(not m.ok and math.isnan(m.max_abs) and math.isnan(m.max_rel) for m in report.methods)
    assert all("where the reference is not finite" in m.note for m in report.methods)


def test_check_cli_singular_point():
    result = cli("check", "sqrt(x)", "-i", "0,1")
    assert result.exit_code == 1 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert "# singular: the reference (symbolic) is inf at dy/dx[0, 0]" in lines
    assert "# reverse: not finite: nan at dy/dx[1, 0]; inf at dy/dx[0, 0]; " \
        "not confirmed at the 1 entry where the reference is not finite" in lines
    assert lines[-1].startswith("# NOT CONFIRMED") and "singularity" in lines[-1]
    doc = json.loads(cli("check", "norm(x)", "-i", "0,0", "--format", "json").stdout)
    assert doc["ok"] is False and doc["verdict"] == "singular" and doc["singular"]
    assert all(m["max_abs"] == "nan" and m["max_rel"] == "nan" for m in doc["methods"])
    pretty = cli("check", "norm(x)", "-i", "0,0", "--format", "pretty")
    assert pretty.exit_code == 1 and "singular: the reference" in pretty.stdout and "inf" not in pretty.stdout


def test_check_finite_differences_follow_a_small_input():
    # 1/x at 1e-7: d/dx = -1e14; a step not scaled to x jumped over the pole (a false alarm)
    result = cli("check", "1/x", "-i", "1e-7", "--format", "json")
    doc = json.loads(result.stdout)
    fd = next(m for m in doc["methods"] if m["method"] == "finite differences")
    assert result.exit_code == 0 and fd["ok"] and fd["max_rel"] < 1e-9


@pytest.mark.parametrize("option,value", [("--rtol", "-1"), ("--atol", "nan"), ("--atol", "inf"), ("--rtol", "-0.5")])
def test_check_refuses_bad_tolerances(option, value):
    result = cli("check", "x**2", "-i", "1", option, value)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {option} {value} is not a tolerance") and "finite number >= 0" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(InputError, match="`rtol` -1 is not a tolerance"):
        jacli.check("x**2", {"x": 1.0}, rtol=-1)


def test_check_plain_carries_the_notes():
    result = cli("check", "relu(x)", "-i", "-1,0,1", "--format", "plain")
    lines = result.stdout.splitlines()
    assert lines[lines.index("finite_differences 0.5 inf ok") + 1].startswith(
        "# finite_differences: differs at a kink, excused in the columns of x[1]"
    )
    result = cli("check", "x**2", "-i", "randn:401", "--format", "plain")
    lines = result.stdout.splitlines()
    assert lines[lines.index("symbolic nan nan skipped") + 1].startswith(
        "# symbolic: skipped: the symbolic method works entry by entry and handles at most 400"
    )
    assert np.loadtxt(io.StringIO(result.stdout.replace("skipped", "nan").replace(" ok", " 1")),
                      usecols=(1, 2), converters=None).shape == (5, 2)  # reverse, forward, rows, compressed, fd


# -- --output -----------------------------------------------------------------------------------


def test_output_files(tmp_path):
    target = tmp_path / "j.npy"
    assert cli("jacobian", "x**2", "-i", "1,2", "-o", str(target)).exit_code == 0
    np.testing.assert_array_equal(np.load(target), np.array([[2.0, 0.0], [0.0, 4.0]]))
    target = tmp_path / "j.txt"
    assert cli("jacobian", "x**2", "-i", "1,2", "-o", str(target)).exit_code == 0
    np.testing.assert_array_equal(np.loadtxt(target), np.array([[2.0, 0.0], [0.0, 4.0]]))


def test_output_replaces_only_on_success(tmp_path):
    target = tmp_path / "j.json"
    target.write_text("previous")
    result = cli("jacobian", "x +* 2", "-i", "1", "-o", str(target))
    assert result.exit_code == 1
    assert target.read_text() == "previous"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind
    assert cli("jacobian", "x*2", "-i", "1", "-o", str(target)).exit_code == 0
    assert json.loads(target.read_text())["result"]["x"]["values"] == 2.0


def test_exact_derivatives_of_jacli_functions_stay_real():
    """relu, sigmoid and softplus are real for real arguments, so SymPy's derivative of
    abs(sigmoid(x)) is sign(s)·s·(1 - s), not a formula in re() and im()."""
    x = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    s = torch.sigmoid(x)
    for text in ("sum(abs(sigmoid(x)))", "sum(abs(softplus(x)) + abs(relu(x)))"):
        exact = jacli.grad(text, {"x": x}, method="symbolic")["x"]
        torch.testing.assert_close(exact, jacli.grad(text, {"x": x})["x"], rtol=1e-13, atol=0)
    torch.testing.assert_close(jacli.grad("sum(abs(sigmoid(x)))", {"x": x}, method="symbolic")["x"], s * (1 - s))


def test_an_exact_form_jacli_cannot_evaluate_is_a_user_error_and_check_skips_it():
    # SymPy cannot prove asin(x) real (it is not, for |x| > 1): its derivative of abs(asin(x))
    # holds atan2, re and im, which have no torch side in jacli's table.
    with pytest.raises(jacli.ExpressionError, match=r"holds atan2\(\.\.\.\).*`method` reverse or forward"):
        jacli.grad("sum(abs(asin(x)))", {"x": [-0.5, 0.2]}, method="symbolic")
    report = jacli.check("abs(asin(x))", {"x": [-0.5, 0.2]})
    assert report.ok and report.reference == "reverse"
    symbolic = next(m for m in report.methods if m.method == "symbolic")
    assert symbolic.skipped and "atan2" in symbolic.note
