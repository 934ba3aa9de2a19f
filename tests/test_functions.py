"""The function table, entry by entry (the OpInfo idea): values against an independent reference,
derivatives by gradcheck/gradgradcheck in float64 and against SymPy's exact derivative.

References are written here: Python's ``math`` for elementwise values, SymPy expressions built in
this file for exact derivatives, numpy for the tensor functions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from torch.autograd import gradcheck, gradgradcheck

from jacli import nodes
from jacli.compile import compile_expression
from jacli.errors import ExpressionError
from jacli.functions import BY_NODE, CONSTANTS, FUNCTIONS
from jacli.parse import parse

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
}

# Points inside each domain, away from kinks, poles and branch points.
GENERAL = [-1.3, -0.4, 0.25, 0.9, 1.7]
DOMAIN = {
    "asin": [-0.8, -0.3, 0.1, 0.6],
    "acos": [-0.8, -0.3, 0.1, 0.6],
    "atanh": [-0.8, -0.3, 0.1, 0.6],
    "acosh": [1.1, 1.6, 2.5, 7.0],
    "log": [0.2, 0.9, 1.7, 12.0],
    "sqrt": [0.2, 0.9, 1.7, 12.0],
    "tan": [-1.2, -0.4, 0.3, 1.1],
}
# Second arguments for min and max: distinct from GENERAL everywhere, on both sides of it.
SECOND = [0.5, -1.0, -0.2, 1.1, 1.2]

ELEMENTWISE = sorted(name for name, entry in FUNCTIONS.items() if entry.elementwise)

s, t = sp.symbols("s t", real=True)


def _points(name: str) -> list[float]:
    return DOMAIN.get(name, GENERAL)


def _arguments(name: str) -> tuple[torch.Tensor, ...]:
    first = torch.tensor(_points(name), dtype=F64)
    if FUNCTIONS[name].tensors[0] == 2:
        return first, torch.tensor(SECOND, dtype=F64)
    return (first,)


def _call_text(name: str) -> str:
    return f"{name}(x, y)" if FUNCTIONS[name].tensors[0] == 2 else f"{name}(x)"


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
    grads = torch.autograd.grad(out.sum(), args)
    symbols = [s, t][: len(args)]
    reference = SYMPY[name](*symbols)
    for k, symbol in enumerate(symbols):
        derivative = sp.diff(reference, symbol)
        for i in range(len(values[0])):
            point = {sym: sp.Float(float(a[i]), 40) for sym, a in zip(symbols, values)}
            exact = float(derivative.subs(point).evalf(30))
            assert float(grads[k][i]) == pytest.approx(exact, rel=1e-13, abs=1e-15), (name, k, i)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_sympy_node_has_the_exact_derivative(name: str) -> None:
    """SymPy differentiates the parser's node (relu, sigmoid, softplus are jacli's) exactly."""
    parsed = parse(_call_text(name))
    own = [sp.Symbol(v, real=True) for v in parsed.variables]
    symbols = [s, t][: len(own)]
    reference = SYMPY[name](*symbols)
    args = _arguments(name)
    for k in range(len(own)):
        derivative = nodes.elementary(sp.diff(parsed.tree, own[k]))
        expected = sp.diff(reference, symbols[k])
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
    args = (x, x.flip(0) * 0.5 + 0.3) if FUNCTIONS[name].tensors[0] == 2 else (x,)
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
            counts.setdefault(entry.name, set()).add(len(node.args) - entry.tensors[1])
    return counts


def test_tensor_functions_are_all_covered_with_each_integer_count() -> None:
    seen: dict[str, set[int]] = {}
    for text, _, _ in TENSOR_CASES:
        for name, counts in _integer_counts(parse(text).tree).items():
            seen.setdefault(name, set()).update(counts)
    for name, entry in FUNCTIONS.items():
        if entry.elementwise:
            continue
        wanted = set(entry.ints) if name != "reshape" else {1, 2, 3}
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
        assert 1 <= low <= high
        assert all(k >= 0 for k in entry.ints)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_compiler_knows_every_call_the_parser_accepts(name: str) -> None:
    entry = FUNCTIONS[name]
    for n in range(entry.tensors[0], entry.tensors[1] + 1):
        for k in entry.ints:
            text = f"{name}({', '.join(['x', 'y'][:n] + ['0'] * k)})"
            compiled = compile_expression(text)
            assert compiled.variables == ("x", "y")[:n], text


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_function_name_alone_is_not_a_variable(name: str) -> None:
    with pytest.raises(ExpressionError, match=f"{name} is a function"):
        parse(f"1 + {name}")
