"""The compiler: SymPy tree → torch function.

Derivatives are checked against SymPy's exact derivative of expressions written independently in
this file; values against the same text run by torch eagerly, bit for bit, or against torch
indexing and stacking written out here.
"""

from __future__ import annotations

import functools
import math

import pytest
import sympy as sp
import torch
from torch.autograd import gradcheck

import jacli
from jacli.compile import compile_expression
from jacli.errors import ShapeError

F64 = torch.float64
METHODS = ["reverse", "forward", "rows"]

s = sp.Symbol("s", real=True)

# -- elementwise Jacobians against SymPy's exact derivative -------------------------------------

POINTS = [-1.7, -0.8, -0.2, 0.3, 0.9, 1.6]
POSITIVE = [0.15, 0.4, 0.8, 1.3, 2.2, 3.9]

# (jacli text, the same function as a SymPy expression in s written independently, points)
ELEMENTWISE_CASES = [
    ("sin(x)*x", sp.sin(s) * s, POINTS),
    ("x^3 - 2*x + 1/x", s**3 - 2 * s + 1 / s, POINTS),
    ("exp(-x^2/2)*cos(3*x)", sp.exp(-(s**2) / 2) * sp.cos(3 * s), POINTS),
    ("log(1 + x^2) + sqrt(x^2 + 1)", sp.log(1 + s**2) + sp.sqrt(s**2 + 1), POINTS),
    ("tanh(x)/(1 + abs(x))", sp.tanh(s) / (1 + sp.Abs(s)), POINTS),
    (
        "sigmoid(x)*softplus(-x) + relu(x - 0.25)",
        1 / (1 + sp.exp(-s)) * sp.log(1 + sp.exp(-s)) + sp.Max(s - sp.Rational(1, 4), 0),
        POINTS,
    ),
    ("atan(x)^2 + asinh(x) - erf(x/2)", sp.atan(s) ** 2 + sp.asinh(s) - sp.erf(s / 2), POINTS),
    ("max(x, 0.5) * min(x, -0.5)", sp.Max(s, sp.Rational(1, 2)) * sp.Min(s, -sp.Rational(1, 2)), POINTS),
    ("log(x + 3, 2)", sp.log(s + 3) / sp.log(2), POINTS),
    ("(x + 2)^(x/3)", (s + 2) ** (s / 3), POINTS),
    ("e^x - pi*x", sp.exp(s) - sp.pi * s, POINTS),
    ("x^-0.5 + x^0.5 - x^-1", s ** sp.Rational(-1, 2) + sp.sqrt(s) - 1 / s, POSITIVE),
    ("acosh(x + 1) * asin(x/4) + atanh(x/5)", sp.acosh(s + 1) * sp.asin(s / 4) + sp.atanh(s / 5), POSITIVE),
    ("sign(x) * x^2 + cosh(x) - sinh(x)/tan(x + 2)", sp.sign(s) * s**2 + sp.cosh(s) - sp.sinh(s) / sp.tan(s + 2), POINTS),
    ("-(x - 1)^2 / 3", -((s - 1) ** 2) / 3, POINTS),
    ("x - x", s - s, POINTS),
    ("2*pi + 0*x", 2 * sp.pi + 0 * s, POINTS),
]


def _exact(expr: sp.Basic, point: float) -> float:
    return float(expr.subs(s, sp.Float(point, 40)).evalf(30))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("text, reference, points", ELEMENTWISE_CASES, ids=[c[0] for c in ELEMENTWISE_CASES])
def test_elementwise_jacobian_is_the_exact_derivative_on_the_diagonal(text, reference, points, method) -> None:
    x = torch.tensor(points, dtype=F64)
    jac = jacli.jacobian(text, {"x": x}, method=method)["x"]
    n = len(points)
    assert jac.shape == (n, n) and jac.dtype == F64
    off_diagonal = jac - torch.diag(torch.diagonal(jac))
    assert torch.count_nonzero(off_diagonal) == 0
    derivative = sp.diff(reference, s)
    for i, point in enumerate(points):
        assert float(jac[i, i]) == pytest.approx(_exact(derivative, point), rel=1e-12, abs=1e-14), (i, point)


@pytest.mark.parametrize("text, reference, points", ELEMENTWISE_CASES, ids=[c[0] for c in ELEMENTWISE_CASES])
def test_elementwise_values_are_the_exact_values(text, reference, points) -> None:
    x = torch.tensor(points, dtype=F64)
    out = compile_expression(text)(x)
    assert out.shape == x.shape
    for i, point in enumerate(points):
        assert float(out[i]) == pytest.approx(_exact(reference, point), rel=1e-13, abs=1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_two_variable_elementwise_jacobian(method: str) -> None:
    sx, sy = sp.symbols("sx sy", real=True)
    reference = sx * sy + sp.sin(sx - sy) / (1 + sy**2)
    x = torch.tensor([0.3, -1.1, 2.0], dtype=F64)
    y = torch.tensor([1.5, 0.2, -0.7], dtype=F64)
    blocks = jacli.jacobian("x*y + sin(x - y)/(1 + y^2)", {"x": x, "y": y}, method=method)
    for name, symbol in (("x", sx), ("y", sy)):
        derivative = sp.diff(reference, symbol)
        expected = [
            float(derivative.subs({sx: sp.Float(a, 40), sy: sp.Float(b, 40)}).evalf(30))
            for a, b in zip(x.tolist(), y.tolist())
        ]
        torch.testing.assert_close(blocks[name], torch.diag(torch.tensor(expected, dtype=F64)), rtol=1e-12, atol=1e-14)


# -- shapes, division, order of evaluation ------------------------------------------------------


def test_x_minus_x_keeps_the_shape_of_x() -> None:
    x = torch.randn(2, 3, dtype=F64)
    out = compile_expression("x - x")(x)
    assert out.shape == (2, 3) and torch.count_nonzero(out) == 0
    jac = jacli.jacobian("x - x", {"x": x}, method="reverse")["x"]
    assert jac.shape == (2, 3, 2, 3) and torch.count_nonzero(jac) == 0
    assert compile_expression("0*x")(x).shape == (2, 3)


def _data(dtype: torch.dtype, n: int = 2000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(n, generator=generator, dtype=F64).to(dtype)
    b = (torch.rand(n, generator=generator, dtype=F64) + 0.5).to(dtype)
    return a, b


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_division_is_a_division(dtype: torch.dtype) -> None:
    a, b = _data(dtype)
    # The data can tell a division from a multiplication by the reciprocal.
    assert (a * (1 / b) != a / b).any()
    out = compile_expression("a/b")(a, b)
    assert out.dtype == dtype
    assert torch.equal(out, a / b)


# (text, the same text as a Python function run by torch eagerly)
EAGER_CASES = [
    ("(x+1)**2/3 - x*0.1", lambda x, y: (x + 1) ** 2 / 3 - x * 0.1),
    ("x*y - y/x + 2", lambda x, y: x * y - y / x + 2),
    ("(x - y)*(x + y)/(1 + x*x)", lambda x, y: (x - y) * (x + y) / (1 + x * x)),
    ("-x**2 + x**3/7 - 0.3", lambda x, y: -(x**2) + x**3 / 7 - 0.3),
    ("x + y + x*y + 0.1 + 0.2", lambda x, y: x + y + x * y + 0.1 + 0.2),
    ("x/y/3 - 2/x", lambda x, y: x / y / 3 - 2 / x),
    ("sin(x)*cos(y) + exp(-x) - tanh(x*y)", lambda x, y: torch.sin(x) * torch.cos(y) + torch.exp(-x) - torch.tanh(x * y)),
    ("y**-1 + y**-0.5 + y**0.5 - x**-2", lambda x, y: y**-1 + y**-0.5 + y**0.5 - x**-2),
    ("2**x - 0.5**y + x**3", lambda x, y: 2**x - 0.5**y + x**3),
    ("x - 3 + -x - (-2)", lambda x, y: x - 3 + -x - (-2)),
    ("x*y/3*x/y*2 - x/y/x + 1 - y", lambda x, y: x * y / 3 * x / y * 2 - x / y / x + 1 - y),
    ("-1*x*y - x", lambda x, y: -1 * x * y - x),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("text, eager", EAGER_CASES, ids=[c[0] for c in EAGER_CASES])
def test_evaluation_order_matches_torch_eager_bit_for_bit(text, eager, dtype) -> None:
    x, y = _data(dtype, seed=1)
    compiled = compile_expression(text)
    args = {"x": x, "y": y}
    out = compiled(*(args[name] for name in compiled.variables))
    expected = eager(x, y)
    assert out.dtype == expected.dtype == dtype
    assert torch.equal(out, expected)


def test_the_order_of_a_sum_matters_on_this_data() -> None:
    """A compiler that reordered ``x + y + x*y`` would fail the eager comparison above."""
    x, y = _data(torch.float64, seed=1)
    assert not torch.equal(x + y + x * y, x * y + y + x)
    assert torch.equal(compile_expression("x + y + x*y")(x, y), x + y + x * y)
    assert torch.equal(compile_expression("x*y + y + x")(x, y), x * y + y + x)


def test_a_sum_of_eight_hundred_terms_runs_and_differentiates() -> None:
    """A long sum is one flat node; evaluating it loops instead of recursing once per term."""
    n = 800
    text = "+".join(f"x[{i}]*{i % 7 + 1}" if i % 2 else f"x[{i}]" for i in range(n))
    x = torch.linspace(-1, 1, n, dtype=torch.float64)
    weights = torch.tensor([float(i % 7 + 1) if i % 2 else 1.0 for i in range(n)], dtype=torch.float64)
    compiled = compile_expression(text)
    expected = x[0].clone()
    for i in range(1, n):  # the same left-to-right order, by hand
        expected = expected + x[i] * weights[i] if i % 2 else expected + x[i]
    assert torch.equal(compiled(x), expected)
    (gradient,) = jacli.jacobian(text, {"x": x}, method="reverse").values()
    assert torch.equal(gradient, weights)
    assert torch.equal(jacli.jacobian(text, {"x": x}, method="forward")["x"], weights)


# -- constants ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("1/3", 1 / 3), ("0.1", 0.1), ("pi", math.pi), ("e", math.e), ("2^10", 1024.0), ("-2^2", -4.0), ("1e-300", 1e-300)],
)
def test_constants(text: str, expected: float) -> None:
    x = torch.tensor([0.5, -2.0], dtype=F64)
    out = compile_expression(f"{text} * x")(x)
    assert torch.equal(out, expected * x)
    alone = compile_expression(text)()  # no variables: a float64 scalar
    assert alone.dtype == F64 and alone.shape == () and alone.item() == expected


def test_pure_constant_subexpressions() -> None:
    x = torch.tensor([0.5, -2.0, 3.0], dtype=F64)
    assert torch.equal(compile_expression("x * (2 + 3)^2")(x), x * 25)
    assert torch.equal(compile_expression("x + 1/3 - 0.1")(x), x + 1 / 3 - 0.1)
    expected = x + torch.sin(torch.tensor(math.pi, dtype=F64) / 6)
    assert torch.equal(compile_expression("x + sin(pi/6)")(x), expected)
    assert torch.equal(compile_expression("[1, 2.5, pi]")(), torch.tensor([1.0, 2.5, math.pi], dtype=F64))


def test_constants_take_the_dtype_of_the_inputs() -> None:
    x = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float32)
    for text, eager in [("x + 0.1", lambda v: v + 0.1), ("x * pi", lambda v: v * math.pi), ("x + sin(1)", None)]:
        out = compile_expression(text)(x)
        assert out.dtype == torch.float32, text
        if eager is not None:
            assert torch.equal(out, eager(x)), text
    out = compile_expression("[x, 1/3]")(x)
    assert out.dtype == torch.float32 and torch.equal(out[1], torch.full((3,), 1 / 3, dtype=torch.float32))


def test_constant_terms_have_zero_derivative() -> None:
    x = torch.tensor([0.5, -2.0], dtype=F64)
    jac = jacli.jacobian("x*0 + pi^2 + e", {"x": x}, method="reverse")["x"]
    assert torch.count_nonzero(jac) == 0 and jac.shape == (2, 2)


# -- component lists ----------------------------------------------------------------------------


def test_components_broadcast_and_stack() -> None:
    x = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    y = torch.tensor([[0.5, -0.5, 2.0], [1.5, 2.5, 3.5]], dtype=F64)
    a, b = torch.tensor(2.0, dtype=F64), torch.tensor(-3.0, dtype=F64)

    out = compile_expression("[x, 1]")(x)
    assert out.shape == (2, 3)
    assert torch.equal(out, torch.stack([x, torch.ones(3, dtype=F64)]))

    out = compile_expression("[[x, 1], [2, x^2]]")(x)
    assert out.shape == (2, 2, 3)
    assert torch.equal(out[0, 0], x) and torch.equal(out[1, 1], x**2)
    assert torch.equal(out[0, 1], torch.ones(3, dtype=F64)) and torch.equal(out[1, 0], torch.full((3,), 2.0, dtype=F64))

    out = compile_expression("[a, b, a*b]")(a, b)
    assert torch.equal(out, torch.tensor([2.0, -3.0, -6.0], dtype=F64))

    out = compile_expression("[x, y]")(x, y)  # x broadcast to y's shape (2, 3)
    assert out.shape == (2, 2, 3)
    assert torch.equal(out[0], x.expand(2, 3)) and torch.equal(out[1], y)


def test_components_jacobian_by_hand() -> None:
    x = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    for method in METHODS:
        jac = jacli.jacobian("[x, 1]", {"x": x}, method=method)["x"]
        assert jac.shape == (2, 3, 3)
        assert torch.equal(jac[0], torch.eye(3, dtype=F64)) and torch.count_nonzero(jac[1]) == 0
        # d/dr, d/dt of the polar map at (r, t) = (2, 0.5), worked out by hand.
        blocks = jacli.jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}, method=method)
        torch.testing.assert_close(blocks["r"], torch.tensor([math.cos(0.5), math.sin(0.5)], dtype=F64), rtol=1e-15, atol=0)
        torch.testing.assert_close(
            blocks["t"], torch.tensor([-2 * math.sin(0.5), 2 * math.cos(0.5)], dtype=F64), rtol=1e-15, atol=0
        )


# -- indexing -----------------------------------------------------------------------------------

M = torch.arange(20, dtype=F64).reshape(4, 5) * 0.5 - 3

INDEX_CASES = [
    ("x[1]", lambda x: x[1]),
    ("x[-1]", lambda x: x[-1]),
    ("x[1, 2]", lambda x: x[1, 2]),
    ("x[-1, -2]", lambda x: x[-1, -2]),
    ("x[1:3]", lambda x: x[1:3]),
    ("x[:, 1]", lambda x: x[:, 1]),
    ("x[::2]", lambda x: x[::2]),
    ("x[1:, -1]", lambda x: x[1:, -1]),
    ("x[-3:-1, ::2]", lambda x: x[-3:-1, ::2]),
    ("x[:, 1:4:2]", lambda x: x[:, 1:4:2]),
    ("x[0][1]", lambda x: x[0][1]),
    ("x[3:1]", lambda x: x[3:1]),
    ("x[1:100]", lambda x: x[1:100]),
    ("(2*x)[1:3, 0] + 1", lambda x: (2 * x)[1:3, 0] + 1),
    ("transpose(x)[1]", lambda x: x.T[1]),
]


@pytest.mark.parametrize("text, index", INDEX_CASES, ids=[c[0] for c in INDEX_CASES])
def test_indexing_matches_torch(text, index) -> None:
    out = compile_expression(text)(M)
    expected = index(M)
    assert out.shape == expected.shape
    assert torch.equal(out, expected)


@pytest.mark.parametrize("text", ["x[1:3]", "x[:, 1] * x[-1, 0]", "x[::2, 1:4:2]"])
def test_indexing_gradcheck(text: str) -> None:
    x = M.clone().requires_grad_()
    assert gradcheck(compile_expression(text).function, (x,))


# -- shape errors -------------------------------------------------------------------------------

SHAPE_ERRORS = [
    ("x + y", [(3,), (2,)], "x + y"),
    ("sin(x + y) * 2", [(3,), (2,)], "x + y"),
    ("2*x - y", [(3,), (2,)], "2*x - y"),
    ("x * y", [(3,), (2,)], "x*y"),
    ("dot(x, y)", [(3,), (2,)], "dot(x, y)"),
    ("x @ y", [(3,), (2,)], "x @ y"),
    ("min(x, y)", [(3,), (2,)], "min(x, y)"),
    ("[x, y]", [(3,), (2,)], "[x, y]"),
    ("reshape(x, 2, 2)", [(3,)], "reshape(x, 2, 2)"),
    ("sum(x, 1)", [(3,)], "sum(x, 1)"),
    ("transpose(x, 0, 1)", [(3,)], "transpose(x, 0, 1)"),
    ("x[5]", [(3,)], "x[5]"),
    ("x[0, 1]", [(3,)], "x[0, 1]"),
]


@pytest.mark.parametrize("text, shapes, named", SHAPE_ERRORS, ids=[c[0] for c in SHAPE_ERRORS])
def test_shape_mismatch_names_the_subexpression(text, shapes, named) -> None:
    compiled = compile_expression(text)
    args = [torch.ones(shape, dtype=F64) for shape in shapes]
    with pytest.raises(ShapeError) as info:
        compiled.checked(*args)
    message = str(info.value)
    assert f"cannot evaluate {named}, from " in message
    for shape in shapes:
        assert str(shape) in message


@pytest.mark.parametrize("text, shapes, operands, advice", [
    ("x + y", [(3,), (2,)], "x of shape (3,) and y of shape (2,)", "Check the shapes of the inputs x and y"),
    ("x*arange(0)", [(2,)], "x of shape (2,) and arange(0) of shape (0,)",
     "Change the constant arange(0) or the shape of input x so that they fit."),
    ("pad(x, 1, 1) - shift(x, 1)", [(2,)], "pad(x, 1, 1) of shape (4,) and shift(x, 1) of shape (2,)",
     "Change the expression or the shape of input x so that they fit."),
    ("x + y - z", [(2,), (2,), (3,)], "x + y of shape (2,) and z of shape (3,)", "Change the expression"),
])
def test_a_shape_error_names_the_operands_it_means(text, shapes, operands, advice) -> None:
    """The shapes in the message are the operands' (torch's own, for these tensors), each named:
    an operand may be an intermediate result or a constant, not an input."""
    compiled = compile_expression(text)
    with pytest.raises(ShapeError) as info:
        compiled.checked(*[torch.ones(shape, dtype=F64) for shape in shapes])
    message = str(info.value)
    assert f"cannot evaluate {text}, from {operands}: " in message and advice in message
    assert "input shapes" not in message and "\n" not in message


def test_unchecked_function_raises_torch_errors() -> None:
    """``function`` is for torch.func: it raises torch's own error, not a ShapeError."""
    compiled = compile_expression("x + y")
    with pytest.raises(RuntimeError) as info:
        compiled.function(torch.ones(3), torch.ones(2))
    assert not isinstance(info.value, ShapeError)


def test_library_reports_shape_errors() -> None:
    with pytest.raises(ShapeError, match=r"x \+ y"):
        jacli.jacobian("x + y", {"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0]})


# -- the compiled object ------------------------------------------------------------------------


def test_compile_expression_is_cached() -> None:
    first = compile_expression("x*y + 1")
    assert compile_expression("x*y + 1") is first
    assert compile_expression("x*y + 2") is not first


def test_variables_are_positional_in_order_of_appearance() -> None:
    compiled = compile_expression("b - a*c")
    assert compiled.variables == ("b", "a", "c")
    a, b, c = (torch.tensor([v], dtype=F64) for v in (2.0, 10.0, 3.0))
    assert compiled(b, a, c).item() == 10.0 - 2.0 * 3.0


def test_compiled_function_gradcheck_on_a_mixed_expression() -> None:
    compiled = compile_expression("sum(softmax(x @ w, 1) * [y, 1][0], 0) + norm(x[0]) * dot(y, y)")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, generator=g, dtype=F64, requires_grad=True)
    w = torch.randn(3, 4, generator=g, dtype=F64, requires_grad=True)
    y = torch.randn(4, generator=g, dtype=F64, requires_grad=True)
    args = {"x": x, "w": w, "y": y}
    assert gradcheck(compiled.function, tuple(args[n] for n in compiled.variables))


# -- constants beyond int64 and float64 ---------------------------------------------------------

# Everyday scientific constants used to crash: an integer beyond int64 overflowed torch's scalar
# ("int too big to convert"). Each reference is the constant as Python's float reads the text.
@pytest.mark.parametrize(
    "text, derivative",
    [("6.022e23*x", float("6.022e23")), ("x*1e20", 1e20), ("x - 1e300", 1.0), ("1e300*x", 1e300)],
)
@pytest.mark.parametrize("method", ["reverse", "forward", "rows", "symbolic"])
def test_large_constants_are_the_nearest_float(text: str, derivative: float, method: str) -> None:
    jac = jacli.jacobian(text, {"x": [1.0, 2.0]}, method=method)["x"]
    assert torch.equal(jac, torch.diag(torch.tensor([derivative, derivative], dtype=F64)))


def test_a_power_beyond_int64_is_a_float_power() -> None:
    # x**1e39 at x = 1: the value is 1 and the derivative 1e39 * 1**(1e39 - 1) = 1e39.
    assert jacli.grad("x**1e39", {"x": 1.0})["x"].item() == 1e39
    assert torch.equal(compile_expression("x**1e39")(torch.tensor(1.0, dtype=F64)), torch.tensor(1.0, dtype=F64))


def test_exact_derivatives_with_huge_integer_coefficients() -> None:
    # d/dx (2x)^70 = 140 (2x)^69, which is 140 at x = 0.5; SymPy writes it as 70 * 2**70 * x**69.
    for method in ("symbolic", "reverse"):
        assert jacli.grad("(2*x)**70", {"x": 0.5}, method=method)["x"].item() == 140.0
    # d/dx exp(10**300 x) = 10**300 exp(10**300 x): 1e300 at 0; the second derivative is 1e600,
    # past float64's range, so inf, as float64 arithmetic gives it in reverse mode too.
    assert jacli.grad("exp(10**300*x)", {"x": 0.0}, method="symbolic")["x"].item() == 1e300
    with pytest.warns(jacli.JacliWarning, match="infinite"):
        exact = jacli.hessian("-exp(10**300*x)", {"x": 0.0}, method="symbolic")["x", "x"].item()
        autodiff = jacli.hessian("-exp(10**300*x)", {"x": 0.0})["x", "x"].item()
    assert exact == -math.inf == autodiff


def test_check_keeps_its_exact_reference_for_huge_coefficients() -> None:
    report = jacli.check("(2*x)**70", {"x": 0.5})
    assert report.reference == "symbolic" and report.ok


# -- shared sub-expressions: computed once per call ----------------------------------------------


def _counting(real):
    """``real``, counting its calls in ``.calls`` (a function, as torch's own modules expect)."""

    @functools.wraps(real)
    def counted(*args, **kwargs):
        counted.calls += 1
        return real(*args, **kwargs)

    counted.calls = 0
    return counted


@pytest.fixture
def counted_sin(monkeypatch):
    """torch.sin, counted: the table's torch side for ``sin`` looks it up on each call."""
    counting = _counting(torch.sin)
    monkeypatch.setattr(torch, "sin", counting)
    return counting


REAL_SIN, REAL_EXP = torch.sin, torch.exp


def test_a_repeated_subexpression_calls_torch_once_per_call(counted_sin) -> None:
    x, _ = _data(F64)
    compiled = compile_expression("sin(x)*sin(x) + sin(x)")
    out = compiled(x)
    assert counted_sin.calls == 1
    assert torch.equal(out, REAL_SIN(x) * REAL_SIN(x) + REAL_SIN(x))  # torch eager on the same text
    compiled(x)
    assert counted_sin.calls == 2  # once per call: nothing is remembered between calls
    assert torch.equal(compiled.checked(x), out) and counted_sin.calls == 3


def test_shared_subexpressions_nest(monkeypatch) -> None:
    exp = _counting(torch.exp)
    monkeypatch.setattr(torch, "exp", exp)
    x, y = _data(F64)
    out = compile_expression("exp(-x)*sin(exp(-x)) + exp(-x)/y")(x, y)
    assert exp.calls == 1
    assert torch.equal(out, REAL_EXP(-x) * REAL_SIN(REAL_EXP(-x)) + REAL_EXP(-x) / y)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gradients_through_a_shared_subexpression_are_torchs(dtype, counted_sin) -> None:
    """Bit for bit what torch gives for the same formula written with a variable for sin(x); a
    formula that recomputes sin(x) three times sums three gradients instead, equal up to rounding."""
    x = _data(dtype)[0].requires_grad_()
    (grad,) = torch.autograd.grad(compile_expression("sin(x)*sin(x) + sin(x)")(x).sum(), x)
    assert counted_sin.calls == 1
    s = REAL_SIN(x)
    (shared,) = torch.autograd.grad((s * s + s).sum(), x)
    assert torch.equal(grad, shared)
    (repeated,) = torch.autograd.grad((REAL_SIN(x) * REAL_SIN(x) + REAL_SIN(x)).sum(), x)
    eps = torch.finfo(dtype).eps  # |gradient| <= 3: a few roundings of that size apart
    torch.testing.assert_close(grad, repeated, rtol=4 * eps, atol=12 * eps)


@pytest.mark.parametrize(
    "transform",
    [
        torch.func.vmap,
        torch.func.jacrev,
        torch.func.jacfwd,
        lambda f: torch.func.jacrev(torch.func.jacrev(f)),
        lambda f: torch.func.vmap(torch.func.jacfwd(f)),
    ],
    ids=["vmap", "jacrev", "jacfwd", "hessian", "vmap-jacfwd"],
)
def test_shared_subexpressions_under_torch_func_transforms(transform, counted_sin) -> None:
    x = torch.linspace(-2, 2, 12, dtype=F64).reshape(3, 4)
    got = transform(compile_expression("sin(x)*sin(x) + sin(x)").function)(x)
    assert counted_sin.calls == 1

    def eager(v):
        s = REAL_SIN(v)
        return s * s + s

    assert torch.equal(got, transform(eager)(x))


def test_measure_counts_a_shared_subexpression_once(counted_sin) -> None:
    from jacli.compile import measure

    n = 1000
    x = torch.empty(n, dtype=F64, device="meta")
    output, total = measure("sin(x)*sin(x) + sin(x)", x)
    assert counted_sin.calls == 1 and output.shape == (n,)
    assert total == 3 * n * 8  # sin, the product, the sum: one float64 tensor of n each


def test_no_intermediate_value_outlives_the_call(monkeypatch) -> None:
    import weakref

    made = []

    def sin(v):
        value = REAL_SIN(v)
        made.append(weakref.ref(value))
        return value

    monkeypatch.setattr(torch, "sin", sin)
    out = compile_expression("sin(x)*sin(x) + sin(x)")(torch.randn(5, dtype=F64))
    assert out.shape == (5,) and len(made) == 1
    assert made[0]() is None  # freed when the call returned: the memo went with it
