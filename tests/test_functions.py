"""The function table, entry by entry (the OpInfo idea): values against an independent reference,
derivatives by gradcheck/gradgradcheck in float64 and against SymPy's exact derivative.

References are written here: Python's ``math`` for elementwise values, SymPy expressions built in
this file for exact derivatives, numpy for the tensor functions.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from torch.autograd import gradcheck, gradgradcheck

from jacli import nodes, structure
from jacli.compile import compile_expression, compile_tree
from jacli.errors import ExpressionError
from jacli.functions import BY_NODE, CONSTANTS, FUNCTIONS, GROUPS, Function
from jacli.parse import parse
from jacli.engine.exact import element_symbols

F64 = torch.float64

# -- elementwise entries ------------------------------------------------------------------------

# The value of each elementwise function at a float, computed without torch or jacli.
MATH = {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "asinh": math.asinh,
    "acosh": math.acosh,
    "atanh": math.atanh,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "abs": abs,
    "sign": lambda v: math.copysign(1.0, v) if v != 0 else 0.0,
    "erf": math.erf,
    "relu": lambda v: max(v, 0.0),
    "sigmoid": lambda v: 1.0 / (1.0 + math.exp(-v)),
    "softplus": lambda v: math.log1p(math.exp(v)),
    "min": min,
    "max": max,
    "log1p": math.log1p,
    "expm1": math.expm1,
    "logsigmoid": lambda v: -math.log1p(math.exp(-v)),
    "cbrt": lambda v: math.copysign(abs(v) ** (1 / 3), v),
    "gamma": math.gamma,
    "lgamma": math.lgamma,
    "digamma": lambda v: float(mpmath.digamma(v)),
    "hypot": math.hypot,
    "atan2": math.atan2,
    "floor": math.floor,
    "ceil": math.ceil,
    "round": round,
    "clamp": lambda v, low, high: min(max(v, low), high),
    "where": lambda c, a, b: a if c != 0 else b,
}

# The same functions as SymPy expressions, written out in elementary form, for exact derivatives.
SYMPY = {
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "asin": sp.asin,
    "acos": sp.acos,
    "atan": sp.atan,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "asinh": sp.asinh,
    "acosh": sp.acosh,
    "atanh": sp.atanh,
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "abs": sp.Abs,
    "sign": sp.sign,
    "erf": sp.erf,
    "relu": lambda s: sp.Max(s, 0),
    "sigmoid": lambda s: 1 / (1 + sp.exp(-s)),
    "softplus": lambda s: sp.log(1 + sp.exp(s)),
    "min": sp.Min,
    "max": sp.Max,
    "log1p": lambda s: sp.log(1 + s),
    "expm1": lambda s: sp.exp(s) - 1,
    "logsigmoid": lambda s: -sp.log(1 + sp.exp(-s)),
    "cbrt": lambda s: sp.sign(s) * sp.Abs(s) ** sp.Rational(1, 3),
    "gamma": sp.gamma,
    "lgamma": lambda s: sp.log(sp.Abs(sp.gamma(s))),
    "digamma": lambda s: sp.polygamma(0, s),
    "hypot": lambda s, t: sp.sqrt(s**2 + t**2),
    "atan2": sp.atan2,
    "floor": sp.floor,
    "ceil": sp.ceiling,
    "round": lambda s: sp.floor(s + sp.S.Half),  # no test point is a half-integer
    "clamp": lambda s, low, high: sp.Min(sp.Max(s, low), high),
    "where": lambda c, a, b: sp.Piecewise((a, sp.Ne(c, 0)), (b, True)),
}

# Points inside each domain, away from kinks, poles and branch points.
GENERAL = [-1.3, -0.4, 0.25, 0.9, 1.7]
DOMAIN = {
    "asin": [-0.8, -0.3, 0.1, 0.6],
    "acos": [-0.8, -0.3, 0.1, 0.6],
    "atanh": [-0.8, -0.3, 0.1, 0.6],
    "acosh": [1.1, 1.6, 2.5, 7.0],
    "log": [0.2, 0.9, 1.7, 12.0],
    "log1p": [-0.8, -0.3, 0.25, 0.9, 4.0],
    # torch's trigamma (digamma's derivative) loses digits at negative x (1e-11 relative at -1.3)
    "digamma": [0.3, 0.9, 1.7, 4.5],
    "sqrt": [0.2, 0.9, 1.7, 12.0],
    "tan": [-1.2, -0.4, 0.3, 1.1],
}
# Second arguments for min and max: distinct from GENERAL everywhere, on both sides of it.
SECOND = [0.5, -1.0, -0.2, 1.1, 1.2]
# Third arguments (clamp's upper bound, where's second branch): above SECOND, and GENERAL falls
# below, inside and above [SECOND, THIRD], never on a bound.
THIRD = [1.5, 0.0, 0.6, 2.0, 1.4]

ELEMENTWISE = sorted(name for name, entry in FUNCTIONS.items() if entry.elementwise)

s, t, u = sp.symbols("s t u", real=True)


def _points(name: str) -> list[float]:
    return DOMAIN.get(name, GENERAL)


def _arguments(name: str) -> tuple[torch.Tensor, ...]:
    first = torch.tensor(_points(name), dtype=F64)
    return (first, torch.tensor(SECOND, dtype=F64), torch.tensor(THIRD, dtype=F64))[: FUNCTIONS[name].tensors[0]]


def _call_text(name: str) -> str:
    return f"{name}({', '.join('xyz'[: FUNCTIONS[name].tensors[0]])})"


# torch's own derivative is less accurate than 1e-13 here: digamma's derivative is
# torch.special.polygamma(1, x), whose float64 value is off by up to 5e-10 relative (measured
# against SymPy at 0.3 ... 4.5, torch 2.13 on the CPU).
LOOSE_DERIVATIVES = {"digamma": 1e-8}

# Piecewise-constant functions: SymPy cannot differentiate its own floor and ceiling; their
# derivative is 0 at every test point (none is on a jump), as torch defines it everywhere.
STEPS = {"floor", "ceil", "round"}


def _reference_derivative(name: str, symbols: list[sp.Symbol], k: int) -> sp.Basic:
    """d SYMPY[name] / d symbols[k], by SymPy (0 for the steps)."""
    return sp.S.Zero if name in STEPS else sp.diff(SYMPY[name](*symbols), symbols[k])


def test_every_elementwise_entry_has_a_reference_here() -> None:
    assert set(MATH) == set(ELEMENTWISE) == set(SYMPY)


def test_min_max_test_points_are_distinct() -> None:
    assert all(a != b for a, b in zip(GENERAL, SECOND))
    assert any(a < b for a, b in zip(GENERAL, SECOND)) and any(a > b for a, b in zip(GENERAL, SECOND))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_values_match_math(name: str) -> None:
    compiled = compile_expression(_call_text(name))
    args = _arguments(name)
    out = compiled(*args)
    assert out.shape == args[0].shape and out.dtype == F64
    for i in range(len(args[0])):
        expected = MATH[name](*(float(a[i]) for a in args))
        assert float(out[i]) == pytest.approx(expected, rel=1e-14, abs=1e-300), (name, i)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_sympy_node_matches_math(name: str) -> None:
    """The parser's SymPy node is the same function as the torch side (checked via math)."""
    parsed = parse(_call_text(name))
    tree = nodes.elementary(parsed.tree)
    symbols = [sp.Symbol(v, real=True) for v in parsed.variables]
    args = _arguments(name)
    for i in range(len(args[0])):
        point = {sym: sp.Float(float(a[i]), 40) for sym, a in zip(symbols, args)}
        exact = float(tree.subs(point).evalf(30))
        expected = MATH[name](*(float(a[i]) for a in args))
        assert exact == pytest.approx(expected, rel=1e-14, abs=1e-300), (name, i)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_gradient_matches_sympy_exact_derivative(name: str) -> None:
    values = _arguments(name)
    args = [a.clone().requires_grad_() for a in values]
    out = compile_expression(_call_text(name))(*args)
    # where's condition is not in the graph at all: its gradient is zero, as for a constant.
    grads = torch.autograd.grad(out.sum(), args, allow_unused=True, materialize_grads=True)
    symbols = [s, t, u][: len(args)]
    for k, symbol in enumerate(symbols):
        derivative = _reference_derivative(name, symbols, k)
        for i in range(len(values[0])):
            point = {sym: sp.Float(float(a[i]), 40) for sym, a in zip(symbols, values)}
            exact = float(derivative.subs(point).evalf(30))
            rel = LOOSE_DERIVATIVES.get(name, 1e-13)
            assert float(grads[k][i]) == pytest.approx(exact, rel=rel, abs=1e-15), (name, k, i)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_sympy_node_has_the_exact_derivative(name: str) -> None:
    """SymPy differentiates the parser's node (relu, sigmoid, softplus are jacli's) exactly."""
    parsed = parse(_call_text(name))
    own = [sp.Symbol(v, real=True) for v in parsed.variables]
    symbols = [s, t, u][: len(own)]
    args = _arguments(name)
    for k in range(len(own)):
        derivative = nodes.elementary(sp.diff(parsed.tree, own[k]))
        expected = _reference_derivative(name, symbols, k)
        for i in range(len(args[0])):
            values = [sp.Float(float(a[i]), 40) for a in args]
            got = float(derivative.subs(dict(zip(own, values))).evalf(30))
            want = float(expected.subs(dict(zip(symbols, values))).evalf(30))
            assert got == pytest.approx(want, rel=1e-15, abs=1e-300), (name, k, i)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_gradcheck_and_gradgradcheck(name: str) -> None:
    compiled = compile_expression(_call_text(name))
    args = tuple(a.clone().requires_grad_() for a in _arguments(name))
    assert gradcheck(compiled.function, args)
    assert gradgradcheck(compiled.function, args)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_entries_keep_the_shape(name: str) -> None:
    base = torch.tensor(_points(name), dtype=F64)
    x = base[torch.tensor([0, 1, 2, 3, 0, 2])].reshape(2, 3)
    args = (x, x.flip(0) * 0.5 + 0.3, x.flip(0) * 0.5 + 1.4)[: FUNCTIONS[name].tensors[0]]
    out = compile_expression(_call_text(name))(*args)
    assert out.shape == (2, 3)
    # Entry by entry: the (i, j) output depends on the (i, j) inputs alone.
    for i in range(2):
        for j in range(3):
            expected = MATH[name](*(float(a[i, j]) for a in args))
            assert float(out[i, j]) == pytest.approx(expected, rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("base_text, base_value", [("2", 2.0), ("10", 10.0), ("0.5", 0.5), ("e", math.e)])
def test_log_with_a_constant_base(base_text: str, base_value: float) -> None:
    x = torch.tensor([0.3, 1.0, 2.0, 8.0, 100.0], dtype=F64, requires_grad=True)
    compiled = compile_expression(f"log(x, {base_text})")
    out = compiled(x).detach()
    for i, v in enumerate(x.tolist()):
        assert float(out[i]) == pytest.approx(math.log(v, base_value), rel=1e-14, abs=1e-15)
    assert gradcheck(compiled.function, (x,))


def test_log_with_a_variable_base() -> None:
    x = torch.tensor([0.3, 2.0, 8.0], dtype=F64, requires_grad=True)
    b = torch.tensor([2.0, 3.0, 0.5], dtype=F64, requires_grad=True)
    compiled = compile_expression("log(x, b)")
    out = compiled(x, b).detach()
    for i in range(3):
        assert float(out[i]) == pytest.approx(math.log(x.tolist()[i], b.tolist()[i]), rel=1e-14)
    assert gradcheck(compiled.function, (x, b))
    assert gradgradcheck(compiled.function, (x, b))


def test_relu_and_sign_at_zero_follow_torch() -> None:
    """At the kink, relu'(0) = 0 (torch's choice), sign(0) = 0 and abs'(0) = 0."""
    x = torch.tensor([0.0], dtype=F64, requires_grad=True)
    for text, value, slope in [("relu(x)", 0.0, 0.0), ("sign(x)", 0.0, 0.0), ("abs(x)", 0.0, 0.0)]:
        out = compile_expression(text)(x)
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert out.item() == value and grad.item() == slope, text


# -- tensor entries ------------------------------------------------------------------------------

rng = np.random.default_rng(7)
M23 = rng.uniform(0.5, 1.5, (2, 3)) * np.array([[1, -1, 1], [-1, 1, 1]])
M234 = rng.uniform(-1, 1, (2, 3, 4))
M2312 = rng.uniform(-1, 1, (2, 3, 1, 2))
V4A, V4B = rng.uniform(-1, 1, 4), rng.uniform(-1, 1, 4)
M34 = rng.uniform(-1, 1, (3, 4))
V3 = rng.uniform(-1, 1, 3)
M33 = rng.uniform(-1, 1, (3, 3)) + 2 * np.eye(3)  # well conditioned
V3B = rng.uniform(-1, 1, 3)


def _softmax(a: np.ndarray, axis: int | None) -> np.ndarray:
    if axis is None:
        return np.exp(a) / np.exp(a).sum()
    return np.exp(a) / np.exp(a).sum(axis=axis, keepdims=True)


def _logsumexp(a: np.ndarray, axis: int | None) -> np.ndarray:
    return np.log(np.exp(a).sum(axis=axis))


# (expression, inputs in variable order, numpy reference on those inputs)
TENSOR_CASES = [
    ("sum(x)", [M23], lambda x: np.sum(x)),
    ("sum(x, 0)", [M23], lambda x: np.sum(x, axis=0)),
    ("sum(x, 1)", [M23], lambda x: np.sum(x, axis=1)),
    ("sum(x, -1)", [M234], lambda x: np.sum(x, axis=-1)),
    ("mean(x)", [M23], lambda x: np.mean(x)),
    ("mean(x, 1)", [M23], lambda x: np.mean(x, axis=1)),
    ("mean(x, -2)", [M234], lambda x: np.mean(x, axis=-2)),
    ("prod(x)", [M23], lambda x: np.prod(x)),
    ("prod(x, 0)", [M23], lambda x: np.prod(x, axis=0)),
    ("prod(x, 1)", [M23], lambda x: np.prod(x, axis=1)),
    ("norm(x)", [M23], lambda x: np.sqrt(np.sum(x * x))),
    ("norm(x, 0)", [M23], lambda x: np.sqrt(np.sum(x * x, axis=0))),
    ("norm(x, 1)", [M234], lambda x: np.sqrt(np.sum(x * x, axis=1))),
    ("dot(a, b)", [V4A, V4B], lambda a, b: np.sum(a * b)),
    ("softmax(x)", [M23], lambda x: _softmax(x, None)),
    ("softmax(x, 0)", [M23], lambda x: _softmax(x, 0)),
    ("softmax(x, 1)", [M23], lambda x: _softmax(x, 1)),
    ("softmax(x, -1)", [M234], lambda x: _softmax(x, -1)),
    ("logsumexp(x)", [M23], lambda x: _logsumexp(x, None)),
    ("log_softmax(x)", [M23], lambda x: np.log(_softmax(x, None))),
    ("cat(x, y, 2)", [V4A, V4B], lambda x, y: np.concatenate([x, y, [2.0]])),
    ("cat(x, 3*x)", [M23], lambda x: np.concatenate([x, 3 * x])),
    ("stack(x, 2*x)", [M23], lambda x: np.stack([x, 2 * x])),
    ("flip(x)", [M23], lambda x: np.flip(x)),
    ("flip(x, 1)", [M23], lambda x: np.flip(x, 1)),
    ("roll(x, 2)", [M23], lambda x: np.roll(x, 2)),
    ("roll(x, -1, 1)", [M23], lambda x: np.roll(x, -1, 1)),
    ("cumsum(x)", [M23], lambda x: np.cumsum(x)),
    ("cumsum(x, 1)", [M23], lambda x: np.cumsum(x, 1)),
    ("cumprod(x)", [M23], lambda x: np.cumprod(x)),
    ("cumprod(x, 0)", [M23], lambda x: np.cumprod(x, 0)),
    ("diff(x)", [M23], lambda x: np.diff(x)),
    ("det(x)", [M33], lambda x: np.linalg.det(x)),
    ("logdet(x @ transpose(x) + 1)", [M33], lambda x: np.log(np.linalg.det(x @ x.T + 1))),
    ("inv(x)", [M33], lambda x: np.linalg.inv(x)),
    ("solve(x, y)", [M33, V3], lambda x, y: np.linalg.solve(x, y)),
    ("trace(x)", [M23], lambda x: np.trace(x)),
    ("diag(x)", [V3], lambda x: np.diag(x)),
    ("diag(x)", [M23], lambda x: np.diag(x)),
    ("outer(x, y)", [V4A, V3], lambda x, y: np.outer(x, y)),
    ("tril(x)", [M34], lambda x: np.tril(x)),
    ("triu(x, 1)", [M34], lambda x: np.triu(x, 1)),
    ("tril(x, -1)", [M34], lambda x: np.tril(x, -1)),
    ("triu(x)", [M33], lambda x: np.triu(x)),
    ("solve(x, y)", [M33, M34], lambda x, y: np.linalg.solve(x, y)),
    ("diff(x, 0)", [M234], lambda x: np.diff(x, axis=0)),
    ("log_softmax(x, 1)", [M23], lambda x: np.log(_softmax(x, 1))),
    ("logsumexp(x, 0)", [M23], lambda x: _logsumexp(x, 0)),
    ("logsumexp(x, 1)", [M234], lambda x: _logsumexp(x, 1)),
    ("reshape(x, 3, 2)", [M23], lambda x: np.reshape(x, (3, 2))),
    ("reshape(x, -1)", [M23], lambda x: np.reshape(x, (-1,))),
    ("reshape(x, 1, -1, 2)", [M23], lambda x: np.reshape(x, (1, -1, 2))),
    ("reshape(x, 4, 3, 2)", [M234], lambda x: np.reshape(x, (4, 3, 2))),
    ("transpose(x)", [M23], lambda x: x.T),
    ("transpose(x)", [M234], lambda x: np.transpose(x, (2, 1, 0))),
    ("transpose(x)", [M2312], lambda x: np.transpose(x, (3, 2, 1, 0))),
    ("transpose(x, 0, 2)", [M234], lambda x: np.swapaxes(x, 0, 2)),
    ("transpose(x, -1, 1)", [M234], lambda x: np.swapaxes(x, -1, 1)),
    ("matmul(a, b)", [M23, M34], lambda a, b: a @ b),
    ("a @ b", [M23, M34], lambda a, b: a @ b),
    ("matmul(a, b)", [V3, M34], lambda a, b: a @ b),
    ("matmul(a, b)", [M23, V3], lambda a, b: a @ b),
    ("a @ b", [V4A, V4B], lambda a, b: np.sum(a * b)),
    ("sum(softmax(x, 1) * x, 1)", [M23], lambda x: np.sum(_softmax(x, 1) * x, axis=1)),
    # cat along another axis, pad, kron, cross, einsum, slogdet
    ("cat(x, 2*x, axis=1)", [M23], lambda x: np.concatenate([x, 2 * x], axis=1)),
    ("cat(x, y, axis=-1)", [M23, M34[:2]], lambda x, y: np.concatenate([x, y], axis=-1)),
    ("cat(x, y, axis=0)", [M23, M34[:, :3]], lambda x, y: np.concatenate([x, y])),
    # stack along a new axis elsewhere, the parts broadcast first
    ("stack(x, 2*x, axis=1)", [M23], lambda x: np.stack([x, 2 * x], axis=1)),
    ("stack(x, y, axis=-1)", [M23, V3], lambda x, y: np.stack(np.broadcast_arrays(x, y), axis=-1)),
    ("stack(x, y**2, x*y, axis=2)", [M23, V3], lambda x, y: np.stack(np.broadcast_arrays(x, y**2, x * y), axis=2)),
    ("stack(x, y, axis=-3)", [M23, V3], lambda x, y: np.stack(np.broadcast_arrays(x, y))),
    ("pad(x, 1, 2)", [M23], lambda x: np.pad(x, ((0, 0), (1, 2)))),
    ("pad(x, 2, 0, 0)", [M23], lambda x: np.pad(x, ((2, 0), (0, 0)))),
    ("pad(x, 0, 1)", [V3], lambda x: np.pad(x, (0, 1))),
    # shift: roll without the wrap-around, zeros coming in (numpy's pad and a slice as the reference)
    ("shift(x, 2)", [M23], lambda x: np.pad(x.reshape(-1), (2, 0))[:6].reshape(2, 3)),
    ("shift(x, -1, 1)", [M23], lambda x: np.pad(x, ((0, 0), (0, 1)))[:, 1:]),
    ("shift(x, 1, 0)", [M234], lambda x: np.pad(x, ((1, 0), (0, 0), (0, 0)))[:2]),
    ("shift(x, -2)", [V4A], lambda x: np.pad(x, (0, 2))[2:]),
    ("kron(x, y)", [M23, V3], lambda x, y: np.kron(x, y)),
    ("kron(x, y)", [V4A, V3], lambda x, y: np.kron(x, y)),
    ("cross(x, y)", [V3, V3B], lambda x, y: np.cross(x, y)),
    ("cross(x, y)", [M23, V3B], lambda x, y: np.cross(x, y)),
    ("einsum('ij,jk->ik', a, b)", [M23, M34], lambda a, b: a @ b),
    ("einsum('ij,jk', a, b)", [M23, M34], lambda a, b: a @ b),
    ("einsum('ii', x)", [M33], lambda x: np.trace(x)),
    ("einsum('ii->i', x)", [M33], lambda x: np.diag(x)),
    ("einsum('ij->ji', x)", [M23], lambda x: x.T),
    ("einsum('i,i', a, b)", [V4A, V4B], lambda a, b: np.dot(a, b)),
    ("einsum('ij,i->j', a, b)", [M34, V3], lambda a, b: b @ a),
    ("einsum('i,j->ij', a, b)", [V4A, V3], lambda a, b: np.outer(a, b)),
    ("slogdet(x)", [M33], lambda x: np.linalg.slogdet(x)[1]),
    ("slogdet(-x)", [M33], lambda x: np.linalg.slogdet(-x)[1]),  # det < 0: still finite
    # constant tensors inside a formula
    ("x * arange(1, 4)", [V3], lambda x: x * np.arange(1, 4)),
    ("x * arange(3)", [V3], lambda x: x * np.arange(3)),
    ("x * arange(6, 0, -2)", [V3], lambda x: x * np.arange(6, 0, -2)),
    ("sum(x * arange(0, 1, 1/4))", [V4A], lambda x: np.sum(x * np.arange(0, 1, 0.25))),
    ("x - linspace(0, 1, 3)", [V3], lambda x: x - np.linspace(0, 1, 3)),
    ("x @ (eye(3) + ones(3, 3))", [V3], lambda x: x @ (np.eye(3) + np.ones((3, 3)))),
    ("x + zeros(2, 3)", [M23], lambda x: x + np.zeros((2, 3))),
    ("x * ones(3) + zeros(3)", [V3], lambda x: x * np.ones(3) + np.zeros(3)),
    ("x * ones(1, 2, 3) - zeros(2, 1, 3)", [M23], lambda x: x * np.ones((1, 2, 3)) - np.zeros((2, 1, 3))),
    ("x * eye(3, 4)", [M34], lambda x: x * np.eye(3, 4)),
    ("x + [1, 2, 3]", [V3], lambda x: x + np.array([1.0, 2.0, 3.0])),
    ("sum((y - x[0]*exp(-x[1]*arange(1, 16)/10))**2)", [np.linspace(0.2, 3, 15), V3[:2]],
     lambda y, x: np.sum((y - x[0] * np.exp(-x[1] * np.arange(1, 16) / 10)) ** 2)),
]


def _case_id(case) -> str:
    text, inputs, _ = case
    return f"{text}:{'x'.join(str(n) for n in inputs[0].shape)}"


@pytest.mark.parametrize("case", TENSOR_CASES, ids=[_case_id(c) for c in TENSOR_CASES])
def test_tensor_function_values_match_numpy(case) -> None:
    text, inputs, reference = case
    compiled = compile_expression(text)
    out = compiled(*(torch.tensor(a, dtype=F64) for a in inputs))
    expected = np.asarray(reference(*inputs))
    assert tuple(out.shape) == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("case", TENSOR_CASES, ids=[_case_id(c) for c in TENSOR_CASES])
def test_tensor_function_gradcheck(case) -> None:
    text, inputs, _ = case
    compiled = compile_expression(text)
    args = tuple(torch.tensor(a, dtype=F64, requires_grad=True) for a in inputs)
    assert gradcheck(compiled.function, args)
    assert gradgradcheck(compiled.function, args)


def _integer_counts(tree: sp.Basic) -> dict[str, set[int]]:
    """For each table function called in the tree, how many integer arguments its calls have."""
    counts: dict[str, set[int]] = {}
    for node in sp.preorder_traversal(tree):
        entry = BY_NODE.get(getattr(node, "func", None))
        if entry is not None and not entry.elementwise:
            # einsum's subscripts are no integer
            counts.setdefault(entry.name, set()).add(len(entry.split(node.args)[1]) - bool(entry.subscripts))
    return counts


def test_tensor_functions_are_all_covered_with_each_integer_count() -> None:
    seen: dict[str, set[int]] = {}
    for text, _, _ in TENSOR_CASES:
        for name, counts in _integer_counts(parse(text).tree).items():
            seen.setdefault(name, set()).update(counts)
    for name, entry in FUNCTIONS.items():
        if entry.elementwise or entry.node is None:
            continue  # stack builds a list literal [a, b], covered by the list cases
        wanted = set(entry.ints) if name not in ("reshape", "ones", "zeros") else {1, 2, 3}
        assert wanted <= seen.get(name, set()), name


# -- the table itself ---------------------------------------------------------------------------


def test_table_names_and_nodes_are_consistent() -> None:
    for name, entry in FUNCTIONS.items():
        assert entry.name == name
        assert entry.summary.strip()
        assert name.isidentifier() and not name.startswith("_")
        assert name not in CONSTANTS
        if entry.node is not None:
            assert BY_NODE[entry.node] is entry
        low, high = entry.tensors
        assert (0 if entry.constant else 1) <= low <= high
        assert all(k >= 0 for k in entry.ints)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_compiler_knows_every_call_the_parser_accepts(name: str) -> None:
    entry = FUNCTIONS[name]
    for n in range(entry.tensors[0], entry.tensors[1] + 1):
        for k in entry.ints:
            # a constant's arguments are sizes and bounds: 1, not 0, which is no arange step
            arguments = ['x', 'y', 'z'][:n] + ['1' if entry.constant else '0'] * k
            if entry.subscripts is not None:  # einsum: "i,i,i" for three operands
                arguments.insert(0, repr(",".join("i" * min(n, 3))))
            text = f"{name}({', '.join(arguments)})"
            compiled = compile_expression(text)
            assert compiled.variables == ("x", "y", "z")[:n], text


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_function_name_alone_is_not_a_variable(name: str) -> None:
    with pytest.raises(ExpressionError, match=f"{name} is a function"):
        parse(f"1 + {name}")


# -- the table's fields, for every entry (derivative-only ones included) ----------------------

ENTRIES = sorted(set(FUNCTIONS.values()) | set(BY_NODE.values()), key=lambda entry: entry.name)
IDS = [entry.name for entry in ENTRIES]

# Functions defined piece by piece (the independent list the table's ``kinks`` must match).
PIECEWISE = {
    "abs", "sign", "relu", "max", "min", "heaviside", "diracdelta", "floor", "ceil", "round", "clamp",
    "where", "atan2", "lt", "le", "gt", "ge", "eq", "ne",
}

# A range inside each function's domain, for random inputs.
RANGES = {
    "asin": (-0.9, 0.9), "acos": (-0.9, 0.9), "atanh": (-0.9, 0.9), "acosh": (1.1, 5.0),
    "log": (0.1, 5.0), "sqrt": (0.1, 5.0), "tan": (-1.2, 1.2), "log1p": (-0.9, 5.0),
    "gamma": (0.2, 4.0), "lgamma": (0.2, 4.0), "digamma": (0.2, 4.0), "polygamma": (0.2, 4.0),
}

# For each entry, calls to try: (shape of each operand, the integers).
CALLS = {
    "sum": [([(2, 3)], []), ([(2, 3)], [0]), ([(2, 3)], [-1]), ([()], [])],
    "mean": [([(2, 3)], []), ([(2, 3)], [1]), ([(2, 3, 2)], [-2])],
    "prod": [([(2, 3)], []), ([(2, 3)], [0])],
    "norm": [([(2, 3)], []), ([(2, 3)], [1])],
    "softmax": [([(2, 3)], []), ([(2, 3)], [0]), ([(2, 3)], [-1])],
    "logsumexp": [([(2, 3)], []), ([(2, 3)], [1])],
    "dot": [([(4,), (4,)], [])],
    "reshape": [([(2, 3)], [3, 2]), ([(2, 3)], [-1]), ([(2, 3)], [1, 3, 2])],
    "transpose": [([(2, 3, 4)], []), ([(2, 3, 4)], [0, 2])],
    "matmul": [([(2, 3), (3, 4)], []), ([(3,), (3, 2)], [])],
    "log": [([(2, 3)], []), ([(2, 3), ()], [])],
    "heaviside": [([(2, 3)], []), ([(2, 3), ()], [])],
    "diracdelta": [([(2, 3)], [])],
    "log_softmax": [([(2, 3)], []), ([(2, 3)], [0]), ([(2, 3)], [-1])],
    "polygamma": [([(), (2, 3)], []), ([(), (2, 3)], [])],
    "cat": [([(2, 3), (1, 3)], []), ([(), (3,), ()], [])],
    "stack": [([(2, 3), (3,)], [])],
    "flip": [([(2, 3)], []), ([(2, 3)], [1])],
    "roll": [([(2, 3)], [2]), ([(2, 3)], [-1, 0])],
    "cumsum": [([(2, 3)], []), ([(2, 3)], [1])],
    "cumprod": [([(2, 3)], []), ([(2, 3)], [0])],
    "diff": [([(2, 3)], []), ([(2, 3)], [0])],
    "det": [([(3, 3)], []), ([(2, 2, 2)], [])],
    "logdet": [([(3, 3)], [])],
    "inv": [([(3, 3)], []), ([(2, 2, 2)], [])],
    "solve": [([(3, 3), (3,)], []), ([(2, 2), (2, 3)], [])],
    "trace": [([(3, 3)], []), ([(2, 3)], [])],
    "diag": [([(3,)], []), ([(2, 3)], [])],
    "outer": [([(3,), (2,)], [])],
    "tril": [([(3, 3)], []), ([(2, 3, 4)], [1])],
    "triu": [([(3, 3)], []), ([(3, 4)], [-1])],
    "held_max": [([(2, 3)], []), ([(2, 3), (2, 3), ()], [])],
    "pad": [([(2, 3)], [1, 2]), ([(2, 3)], [0, 1, 0])],
    "shift": [([(2, 3)], [2]), ([(2, 3)], [-1, 1]), ([(4,)], [5]), ([(2, 3)], [-2, 0])],
    "kron": [([(2, 3), (2,)], []), ([(2,), (3,)], [])],
    "cross": [([(3,), (3,)], []), ([(2, 3), (3,)], [])],
    "einsum": [([(2, 3), (3, 4)], ["ij,jk->ik"]), ([(3, 3)], ["ii->i"]), ([(3, 3)], ["ii->"]),
               ([(2, 3), (2,)], ["ij,i->ji"]), ([(2, 2, 3)], ["iij->j"])],
    "slogdet": [([(3, 3)], []), ([(2, 2, 2)], [])],
    "arange": [([], [5]), ([], [1, 4]), ([], [6, 0, -2])],
    "linspace": [([], [0, 1, 5]), ([], [2, -1, 1])],
    "ones": [([], [2, 3])],
    "zeros": [([], [3])],
    "eye": [([], [3]), ([], [2, 3])],
}


def _calls(entry: Function) -> list[tuple[list[tuple[int, ...]], list[int]]]:
    if entry.name in CALLS:
        return CALLS[entry.name]
    assert entry.elementwise and entry.ints == (0,), entry.name
    low, high = entry.tensors
    return [([(2, 3)] * n, []) for n in range(low, high + 1)]


def test_every_entry_is_in_the_calls_tried_here() -> None:
    for entry in ENTRIES:
        assert _calls(entry)
        for shapes, ints in _calls(entry):
            assert entry.tensors[0] <= len(shapes) <= entry.tensors[1]
            assert len(ints) - bool(entry.subscripts) in entry.ints


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_every_field_is_present_and_consistent(entry: Function) -> None:
    assert entry.name.isidentifier() and entry.summary.strip()
    assert callable(entry.torch) and callable(entry.expand) and callable(entry.shape)
    assert callable(entry.sparsity)  # a rule of jacli.structure (tests/test_structure.py checks each)
    assert callable(getattr(structure, entry.sparsity.__name__))
    assert (entry.sparsity.__name__ == "elementwise") == entry.elementwise
    assert entry.node is not None or entry.build is not None
    if entry.node is not None:
        assert BY_NODE[entry.node] is entry
    low, high = entry.tensors
    assert (0 if entry.constant else 1) <= low <= high and all(k >= 0 for k in entry.ints)
    assert entry.group in GROUPS
    assert entry.kinks is None or callable(entry.kinks)
    if entry.ints != (0,):
        assert low == high  # else split could not tell operands from integers
    assert (entry.kinks is not None) == (entry.name in PIECEWISE)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_split_takes_back_what_make_built(entry: Function) -> None:
    """The parser builds with ``make``; the compiler and SymPy engine split with ``split``."""
    if entry.node is None or entry.build is not None or entry.name not in FUNCTIONS:
        return  # built as plain arithmetic (sqrt, log), or never built by the parser
    for shapes, ints in _calls(entry):
        operands = list(sp.symbols(f"a0:{len(shapes)}", real=True))
        node = entry.make(operands, ints)
        assert isinstance(node, entry.node)
        literals = [nodes.text(i) if isinstance(i, str) else sp.Integer(i) for i in ints]
        assert entry.split(node.args) == (operands, literals)


def test_split_examples() -> None:
    x, b = sp.symbols("x b", real=True)
    assert FUNCTIONS["sum"].split(parse("sum(x, 1)").tree.args) == ([x], [1])
    assert FUNCTIONS["sum"].split(parse("sum(x)").tree.args) == ([x], [])
    assert FUNCTIONS["reshape"].split(parse("reshape(x, 2, -1)").tree.args) == ([x], [2, -1])
    assert FUNCTIONS["max"].split(parse("max(x, b)").tree.args) == (list(parse("max(x, b)").tree.args), [])
    assert BY_NODE[sp.Heaviside].split(sp.Heaviside(x, 0).args) == ([x, 0], [])
    # ast arguments too, as the parser splits them before building anything
    import ast

    call = ast.parse("transpose(x, 0, 2)", mode="eval").body
    operands, ints = FUNCTIONS["transpose"].split(call.args)
    assert [a.id for a in operands] == ["x"] and [a.value for a in ints] == [0, 2]


def _random(entry: Function, shape: tuple[int, ...], seed: int) -> np.ndarray:
    low, high = RANGES.get(entry.name, (-2.0, 2.0))
    return np.random.default_rng(seed).uniform(low, high, shape)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_the_expansion_agrees_with_the_torch_side_on_random_inputs(entry: Function) -> None:
    """``expand`` on arrays of symbols, evaluated at the inputs, against ``torch`` on tensors."""
    for case, (shapes, ints) in enumerate(_calls(entry)):
        values = [_random(entry, shape, seed=10 * case + k) for k, shape in enumerate(shapes)]
        if entry.name == "heaviside" and len(shapes) == 2:
            values[1] = np.array(0.0)  # the value at zero: H0 is 0 or 1/2 in jacli's derivatives
        if entry.name == "logdet":  # a positive determinant: A Aᵀ + I
            values[0] = values[0] @ values[0].T + np.eye(len(values[0]))
        if entry.name == "polygamma":
            values[0] = np.array(float(case + 1))  # the order: trigamma, then tetragamma
        names = [f"v{k}" for k in range(len(shapes))]
        symbols = [element_symbols(name, shape) for name, shape in zip(names, shapes)]
        expanded = entry.expand(*symbols, *ints)
        point = {}
        for array, value in zip(symbols, values):
            point.update({sym: sp.Float(float(v), 30) for sym, v in zip(array.reshape(-1), value.reshape(-1))})
        exact = np.vectorize(lambda e: float(sp.sympify(e).subs(point).evalf(30)), otypes=[float])(expanded)
        out = entry.torch(*(torch.tensor(v, dtype=F64) for v in values), *ints)
        assert tuple(out.shape) == exact.shape, (entry.name, shapes, ints)
        assert entry.shape(*shapes, *ints) == exact.shape, (entry.name, shapes, ints)  # the shape rule
        rtol = 1e-8 if entry.name == "polygamma" else 1e-13  # see LOOSE_DERIVATIVES
        np.testing.assert_allclose(out.numpy(), exact, rtol=rtol, atol=1e-15, err_msg=entry.name)


# SymPy writes none of these as a Piecewise (floor has infinitely many pieces; atan2's branch
# cut is inside SymPy), so their kinks are checked against torch's jumps instead.
NO_PIECEWISE_FORM = {"floor", "ceil", "round", "atan2"}


@pytest.mark.parametrize("text, jumps", [
    ("floor(x)", [-2.0, -1.0, 0.0, 1.0, 2.0]), ("ceil(x)", [-2.0, -1.0, 0.0, 1.0, 2.0]),
    ("round(x)", [-1.5, -0.5, 0.5, 1.5]), ("atan2(x, -1)", [0.0]),
])
def test_kinks_of_functions_sympy_cannot_write_piecewise(text: str, jumps: list[float]) -> None:
    """Between two grid points the torch side jumps exactly when a kink expression changes sign."""
    name = text.split("(")[0]
    entry = FUNCTIONS[name]
    grid = torch.linspace(-2.3, 2.3, 4601, dtype=F64)  # steps of 0.001, no point on a jump
    grid = grid[(grid.unsqueeze(1) - torch.tensor(jumps, dtype=F64)).abs().min(1).values > 1e-9]
    values = compile_expression(text)(grid)
    jumped = (values[1:] - values[:-1]).abs() > 0.5
    operands = [sp.Symbol("x", real=True), sp.Integer(-1)][: entry.tensors[0]]
    kinks = [sp.lambdify(operands[0], k, "math") for k in entry.kinks(operands)]
    signs = torch.tensor([[math.copysign(1.0, kink(float(v))) for kink in kinks] for v in grid])
    changed = (signs[1:] != signs[:-1]).any(1)
    assert jumped.any() and torch.equal(jumped, changed), text


@pytest.mark.parametrize("name, jumps", [
    ("floor", [-3.0, -1.0, 0.0, 1.0, 2.0, 1e6]), ("ceil", [-2.0, 1.0, 3.0]), ("round", [-2.5, -0.5, 0.5, 1.5, 1e6 + 0.5]),
])
def test_kinks_of_steps_are_exactly_zero_on_their_jumps_in_floating_point(name: str, jumps: list[float]) -> None:
    """check says a point is on a kink when the kink expression, computed by torch, is 0: on
    every jump it must be 0 exactly (sin(pi*1) is 1.2e-16), and nowhere else."""
    x = sp.Symbol("x", real=True)
    off = [j + d for j in jumps for d in (0.25, -0.25, 1e-9)]
    points = torch.tensor(jumps + off, dtype=F64)
    for kink in FUNCTIONS[name].kinks([x]):
        values = compile_tree(kink, lambda symbol: lambda args: args[0])((points,))
        assert torch.equal(values == 0, torch.arange(len(points)) < len(jumps)), (name, values)


def test_where_declares_a_kink_of_its_condition_unless_the_condition_is_a_step() -> None:
    x, y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
    kinks = FUNCTIONS["where"].kinks
    assert kinks([x - 1, x, y]) == [x - 1] and kinks([sp.Abs(x), x, y]) == [sp.Abs(x)]
    for step in ("x > 0", "(x > 0)*(y <= 1)", "floor(x)", "sign(x) + 1", "round(x - y)*2", "where(x > y, 1, 2)"):
        assert kinks([parse(step).tree, x, y]) == [], step  # the step declares its own kinks
    assert kinks([parse("(x > 0)*y").tree, x, y]) != []  # y varies between the comparison's kinks


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_kinks_are_where_the_sympy_side_changes_piece(entry: Function) -> None:
    """SymPy's own ``rewrite(Piecewise)`` is the reference: a function has kinks exactly when it
    rewrites to pieces, and the kinks are the expressions its pieces' conditions compare to 0."""
    if entry.name in NO_PIECEWISE_FORM:
        return  # test_kinks_of_functions_sympy_cannot_write_piecewise
    shapes, ints = _calls(entry)[0]
    shapes = [()] * len(shapes) if entry.elementwise else shapes
    symbols = [element_symbols(f"v{k}", shape) for k, shape in enumerate(shapes)]
    expanded = entry.expand(*symbols, *ints)
    pieces = [nodes.elementary(e).rewrite(sp.Piecewise) for e in expanded.reshape(-1)]
    assert any(p.has(sp.Piecewise) for p in pieces) == (entry.kinks is not None)
    if entry.kinks is None:
        return
    kinks = entry.kinks([array[()] for array in symbols])
    compared = {
        condition.lhs - condition.rhs
        for piecewise in pieces
        for piece in piecewise.atoms(sp.Piecewise)
        for _, condition in piece.args
        if isinstance(condition, sp.core.relational.Relational)
    }
    same = lambda a, b: sp.simplify(a - b) == 0 or sp.simplify(a + b) == 0  # noqa: E731
    assert all(any(same(c, k) for k in kinks) for c in compared), (compared, kinks)
    assert all(any(same(c, k) for c in compared) for k in kinks), (compared, kinks)


def test_a_tensor_entry_without_an_expansion_is_refused_when_the_table_loads() -> None:
    with pytest.raises(TypeError, match="names no symbolic expansion"):
        Function("trace", "sum of the diagonal", lambda x: x.trace(), nodes.tensor_op("trace"))
    with pytest.raises(TypeError, match="names no shape rule"):
        Function("trace", "sum of the diagonal", lambda x: x.trace(), nodes.tensor_op("trace"), expand=max)
    with pytest.raises(TypeError, match="names no sparsity rule"):
        Function("trace", "sum of the diagonal", lambda x: x.trace(), nodes.tensor_op("trace"), expand=max, shape=max)
    with pytest.raises(TypeError, match="fixed operand count"):
        Function("f", "f", lambda *a: a[0], nodes.tensor_op("f"), tensors=(1, 2), ints=(0, 1), expand=max)
    with pytest.raises(TypeError, match="names no group"):
        Function("trace", "sum of the diagonal", lambda x: x.trace(), nodes.tensor_op("trace"), expand=max, shape=max,
                 sparsity=max)
    with pytest.raises(TypeError, match="no \\(min, max\\) range"):  # only a constant takes no operand
        Function("f", "f", lambda: 1, nodes.tensor_op("f"), tensors=(0, 0), ints=(1,), expand=max, shape=max,
                 sparsity=max, group="constant tensors")


def test_an_elementwise_entry_expands_entry_by_entry_by_the_rule() -> None:
    entry = Function("sinc", "sin(x)/x", lambda x: torch.sinc(x / math.pi), sp.sinc, elementwise=True)
    x = element_symbols("x", (2, 2))
    expanded = entry.expand(x)
    assert expanded.shape == (2, 2)
    assert all(expanded[i] == sp.sinc(x[i]) for i in np.ndindex(2, 2))


# -- comparisons, where, clamp: values and torch's derivative conventions -----------------------

@pytest.mark.parametrize("text, reference", [
    ("x < y", lambda a, b: a < b), ("x <= y", lambda a, b: a <= b), ("x > y", lambda a, b: a > b),
    ("x >= y", lambda a, b: a >= b), ("x == y", lambda a, b: a == b), ("x != y", lambda a, b: a != b),
    ("0 <= x < y", lambda a, b: 0 <= a < b),
])
def test_comparisons_are_0_or_1_and_pass_no_gradient(text, reference) -> None:
    x = torch.tensor([-1.0, 0.5, 2.0, 3.0], dtype=F64, requires_grad=True)
    y = torch.tensor([0.0, 0.5, 1.0, 4.0], dtype=F64, requires_grad=True)
    out = compile_expression(text)(x, y)
    assert out.dtype == F64
    assert out.tolist() == [float(reference(a, b)) for a, b in zip(x.tolist(), y.tolist())]
    assert not out.requires_grad  # torch's comparisons are not differentiable: the gradient is 0


def test_where_and_clamp_follow_torchs_derivative_conventions() -> None:
    # Worked by hand: where(x > 0, x**2, -x) has slope 2x right of 0 and -1 left of (and at) 0;
    # clamp(x, -1, 1) has slope 1 on the closed interval [-1, 1], as torch.clamp defines it.
    x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0], dtype=F64, requires_grad=True)
    (slope,) = torch.autograd.grad(compile_expression("where(x > 0, x**2, -x)")(x).sum(), x)
    assert slope.tolist() == [-1.0, -1.0, -1.0, 1.0, 2.0, 6.0]
    (slope,) = torch.autograd.grad(compile_expression("clamp(x, -1, 1)")(x).sum(), x)
    assert slope.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    # the exact derivative (nodes.clamp.fdiff) has the same convention at the bounds
    import jacli

    exact = jacli.jacobian("clamp(x, -1, 1)", {"x": x.detach()}, method="symbolic")["x"]
    assert torch.diagonal(exact).tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_gamma_is_finite_with_a_finite_gradient_on_both_sides_of_zero() -> None:
    x = torch.tensor([-2.5, -1.3, -0.4, 0.3, 1.0, 4.5], dtype=F64, requires_grad=True)
    out = compile_expression("gamma(x)")(x)
    assert out.tolist() == pytest.approx([math.gamma(v) for v in x.tolist()], rel=1e-13)
    (slope,) = torch.autograd.grad(out.sum(), x)
    exact = [float(sp.diff(sp.gamma(s), s).subs(s, v).evalf(30)) for v in x.tolist()]
    assert slope.tolist() == pytest.approx(exact, rel=1e-8)  # through torch's digamma
