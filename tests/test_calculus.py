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
