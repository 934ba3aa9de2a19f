"""The Jacobian's sparsity pattern read off the tree (jacli.structure), against independent references:

* the dense Jacobian of the compiled function (``torch.func.jacrev``) at several random points: the
  pattern must hold every nonzero (it is global and conservative);
* SymPy: the expression expanded over arrays of element symbols (``jacli.engine.exact.expand``,
  or a table entry's own ``expand``); the free symbols of each output element are its structural
  dependencies, which the pattern must equal wherever SymPy cancels nothing;
* patterns worked out by hand (tridiagonal, a 5-point stencil, broadcasting, stacking).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import assume, given, note
from test_fuzz import EXPRESSIONS, POINTS, _inputs
from test_functions import ENTRIES, IDS, RANGES, _calls

from jacli.compile import compile_expression, compile_tree
from jacli.engine.exact import element_symbols, expand
from jacli.errors import ShapeError
from jacli.functions import FUNCTIONS
from jacli.parse import parse
from jacli.structure import Pattern, patterns

F64 = torch.float64


# -- references ---------------------------------------------------------------------------------


def _jacobian_masks(function, shapes: list[tuple[int, ...]], seed: int, ranges=(-2.0, 2.0)) -> list[np.ndarray]:
    """Where the dense Jacobian (jacrev) is nonzero, with respect to each argument, at one random point."""
    generator = np.random.default_rng(seed)
    args = [torch.tensor(generator.uniform(*ranges, shape), dtype=F64) for shape in shapes]
    blocks = torch.func.jacrev(function, argnums=tuple(range(len(args))))(*args)
    masks = []
    for arg, block in zip(args, blocks):
        assert torch.isfinite(block).all()
        out_size = block.numel() // max(arg.numel(), 1)
        masks.append(block.reshape(out_size, arg.numel()).numpy() != 0)
    return masks


def _free_symbol_mask(expanded: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """Which element symbols each output element's SymPy expression contains."""
    column = {symbol: k for k, symbol in enumerate(symbols.reshape(-1))}
    outputs = np.asarray(expanded, dtype=object).reshape(-1)
    mask = np.zeros((len(outputs), len(column)), dtype=bool)
    for row, expression in enumerate(outputs):
        for symbol in sp.sympify(expression).free_symbols:
            if symbol in column:
                mask[row, column[symbol]] = True
    return mask


def _contains(pattern: Pattern, nonzero: np.ndarray) -> bool:
    return bool((nonzero <= pattern.to_mask()).all())


# -- every table entry ----------------------------------------------------------------------------


def _entry_tree(entry, count: int, ints: list[int]) -> tuple[sp.Basic, list[sp.Symbol]]:
    symbols = [sp.Symbol(f"v{k}", real=True) for k in range(count)]
    return entry.make(symbols, ints), symbols


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_each_entry_pattern_equals_the_dependencies_of_its_expansion(entry) -> None:
    """The entry's own symbolic expansion (SymPy on element symbols) is the exact structural pattern."""
    for shapes, ints in _calls(entry):
        tree, symbols = _entry_tree(entry, len(shapes), ints)
        names = [s.name for s in symbols]
        found = patterns(tree, dict(zip(names, shapes)), names)
        arrays = [element_symbols(name, shape) for name, shape in zip(names, shapes)]
        expanded = entry.expand(*arrays, *ints)
        for name, array in zip(names, arrays):
            pattern = found[name]
            assert pattern.output_shape == expanded.shape and pattern.input_shape == array.shape
            expected = _free_symbol_mask(expanded, array)
            assert np.array_equal(pattern.to_mask(), expected), (entry.name, shapes, ints, name)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.name in FUNCTIONS], ids=lambda e: e.name)
def test_each_entry_pattern_holds_every_nonzero_of_the_dense_jacobian(entry) -> None:
    for shapes, ints in _calls(entry):
        if not shapes:
            continue  # a constant tensor: no input (test_constant_tensors_depend_on_no_input)
        tree, symbols = _entry_tree(entry, len(shapes), ints)
        names = [s.name for s in symbols]
        found = patterns(tree, dict(zip(names, shapes)), names)
        node = compile_tree(tree, lambda symbol: (lambda args, k=names.index(symbol.name): args[k]))
        for seed in range(3):
            ranges = RANGES.get(entry.name, (-2.0, 2.0))
            masks = _jacobian_masks(lambda *args: node(args), shapes, seed, ranges)
            for name, mask in zip(names, masks):
                assert _contains(found[name], mask), (entry.name, shapes, ints, name, seed)


def test_elementwise_entries_are_diagonal() -> None:
    for name, entry in FUNCTIONS.items():
        if entry.elementwise and entry.tensors[0] == 1:
            assert patterns(parse(f"{name}(x)").tree, {"x": (4, 5)}, ["x"])["x"].is_diagonal, name


# -- composite expressions ------------------------------------------------------------------------


def _rows(out_size: int, in_size: int, columns) -> np.ndarray:
    """A mask from ``columns(row) -> iterable of columns``: the hand-worked reference."""
    mask = np.zeros((out_size, in_size), dtype=bool)
    for row in range(out_size):
        for column in columns(row):
            mask[row, column] = True
    return mask


STENCIL = " - ".join(
    ["4*reshape(x, 5, 5)[1:-1, 1:-1]"]
    + [f"reshape(x, 5, 5)[{key}]" for key in (":-2, 1:-1", "2:, 1:-1", "1:-1, :-2", "1:-1, 2:")]
)

# (expression, shapes, {input: hand-worked mask, or None: dense}); inputs not listed are checked
# against the references only.
COMPOSITES = [
    ("x[:-2] - 2*x[1:-1] + x[2:]", {"x": (8,)}, {"x": _rows(6, 8, lambda i: [i, i + 1, i + 2])}),
    (STENCIL, {"x": (25,)}, {"x": _rows(9, 25, lambda r: [
        c + d for c in [(r // 3 + 1) * 5 + r % 3 + 1] for d in (0, -5, 5, -1, 1)])}),
    ("tanh(A @ x)", {"A": (3, 4), "x": (4,)}, {"A": _rows(3, 12, lambda i: range(4 * i, 4 * i + 4)), "x": None}),
    ("softmax(x)", {"x": (2, 3)}, {"x": None}),
    ("softmax(x, 1)", {"x": (2, 3)}, {"x": _rows(6, 6, lambda i: range(3 * (i // 3), 3 * (i // 3) + 3))}),
    ("softmax(x, 0) * y", {"x": (2, 3), "y": (3,)}, {
        "x": _rows(6, 6, lambda i: [i % 3, i % 3 + 3]), "y": _rows(6, 3, lambda i: [i % 3])}),
    ("x * y", {"x": (3, 1), "y": (4,)}, {"x": _rows(12, 3, lambda k: [k // 4]), "y": _rows(12, 4, lambda k: [k % 4])}),
    ("[x[0]*y, sum(x)]", {"x": (3,), "y": (3,)}, {
        "x": _rows(6, 3, lambda k: [0] if k < 3 else [0, 1, 2]), "y": _rows(6, 3, lambda k: [k] if k < 3 else [])}),
    ("sin(x) * cos(y) + exp(z)", {"x": (4,), "y": (4,), "z": ()}, {
        "x": _rows(4, 4, lambda i: [i]), "y": _rows(4, 4, lambda i: [i]), "z": None}),
    ("transpose(reshape(x, 2, 3))", {"x": (6,)}, {"x": _rows(6, 6, lambda k: [(k % 2) * 3 + k // 2])}),
    ("reshape(transpose(x, 0, 1), -1)", {"x": (2, 3)}, {"x": _rows(6, 6, lambda k: [(k % 2) * 3 + k // 2])}),
    ("x[1, ::2] + x[-1:, 0][0]", {"x": (3, 4)}, {"x": _rows(2, 12, lambda k: sorted({4 + 2 * k, 8}))}),
    ("x[1:, 2]", {"x": (3, 4)}, {"x": _rows(2, 12, lambda k: [4 * (k + 1) + 2])}),
    ("sum(x, 1) * prod(x, 0)[0]", {"x": (3, 4)}, {
        "x": _rows(3, 12, lambda i: sorted({*range(4 * i, 4 * i + 4), 0, 4, 8}))}),
    ("dot(x, y) * x", {"x": (3,), "y": (3,)}, {"x": None, "y": None}),
    ("x @ y", {"x": (2, 3, 4), "y": (4,)}, {"x": _rows(6, 24, lambda k: range(4 * k, 4 * k + 4)), "y": None}),
    ("x @ y", {"x": (5,), "y": (2, 5, 3)}, {"x": None, "y": _rows(6, 30, lambda k: [
        (k // 3) * 15 + j * 3 + k % 3 for j in range(5)])}),
    ("x @ y", {"x": (2, 1, 2, 3), "y": (4, 3, 2)}, {}),
    ("x - x", {"x": (5,)}, {"x": _rows(5, 5, lambda i: [i])}),  # structural: the diagonal stays
    ("max(x, y[0]) + min(x, 1)", {"x": (4,), "y": (2,)}, {
        "x": _rows(4, 4, lambda i: [i]), "y": _rows(4, 2, lambda i: [0])}),
    ("x**y / (1 + x^2) - log(x, 2) + sqrt(x)", {"x": (3,), "y": ()}, {"x": _rows(3, 3, lambda i: [i]), "y": None}),
    ("logsumexp(x, 0) + norm(x, 0) + mean(x, -2)", {"x": (2, 3)}, {"x": _rows(3, 6, lambda j: [j, j + 3])}),
    ("sum(reshape(x, 3, 1) @ reshape(y, 1, 3), 0)", {"x": (3,), "y": (3,)}, {
        "x": None, "y": _rows(3, 3, lambda j: [j])}),
    ("[1, 2] * x[0]", {"x": (3,)}, {"x": _rows(2, 3, lambda k: [0])}),
    ("[x, 2*x, 1]", {"x": (2,)}, {"x": _rows(6, 2, lambda k: [k % 2] if k < 4 else [])}),
    ("e**x + pi", {"x": (2, 2)}, {"x": _rows(4, 4, lambda i: [i])}),
    ("sum(x) + 0*y", {"x": (3,), "y": ()}, {"x": None, "y": None}),
    # constant tensors depend on nothing: only x's own elements appear
    ("x * arange(1, 4) + linspace(0, 1, 3) - ones(3)", {"x": (3,)}, {"x": _rows(3, 3, lambda i: [i])}),
    ("(eye(3) + ones(3, 3)) * x", {"x": (3,)}, {"x": _rows(9, 3, lambda k: [k % 3])}),
    ("sum(x * zeros(2, 3), 1) + [1, 2]", {"x": (3,)}, {"x": None}),  # every element of x, by value-blind structure
    # cat along axis 1: row i of the result is row i of a, then row i of b
    ("cat(reshape(x, 2, 2), reshape(y, 2, 1), axis=1)", {"x": (4,), "y": (2,)}, {
        "x": _rows(6, 4, lambda k: [] if k % 3 == 2 else [2 * (k // 3) + k % 3]),
        "y": _rows(6, 2, lambda k: [k // 3] if k % 3 == 2 else [])}),
    ("cat(x, 2*x, axis=-1)", {"x": (2, 2)}, {"x": _rows(8, 4, lambda k: [2 * (k // 4) + k % 2])}),
    # stack along the last axis: element k of the result is part k % 2 at x[k // 2]
    ("stack(x, 2*x, axis=-1)", {"x": (3,)}, {"x": _rows(6, 3, lambda k: [k // 2])}),
    # along axis 1 of a (2, 2, 2) result: out[i, j, k] (flat 4i + 2j + k) is x[i, k] for j = 0, y[k] for j = 1
    ("stack(reshape(x, 2, 2), y, axis=1)", {"x": (4,), "y": (2,)}, {
        "x": _rows(8, 4, lambda k: [2 * (k // 4) + k % 2] if (k // 2) % 2 == 0 else []),
        "y": _rows(8, 2, lambda k: [k % 2] if (k // 2) % 2 == 1 else [])}),
    # pad: zeros before and after; a shift is a pad and a slice
    ("pad(x, 1, 2)", {"x": (3,)}, {"x": _rows(6, 3, lambda k: [k - 1] if 1 <= k <= 3 else [])}),
    ("pad(x, 1, 0)[:-1] - x", {"x": (4,)}, {"x": _rows(4, 4, lambda k: [k - 1, k] if k else [0])}),
    ("pad(x, 1, 0, 0)", {"x": (2, 2)}, {"x": _rows(6, 4, lambda k: [k - 2] if k >= 2 else [])}),
    ("shift(x, 2) - x", {"x": (5,)}, {"x": _rows(5, 5, lambda k: [k - 2, k] if k >= 2 else [k])}),
    ("shift(x, -1, 1)", {"x": (2, 3)}, {"x": _rows(6, 6, lambda k: [k + 1] if k % 3 < 2 else [])}),
    # kron(a, b)[i*3 + k] = a[i] b[k]
    ("kron(a, b)", {"a": (2,), "b": (3,)}, {"a": _rows(6, 2, lambda k: [k // 3]), "b": _rows(6, 3, lambda k: [k % 3])}),
    # cross: component i uses the other two components of each vector
    ("cross(a, b)", {"a": (3,), "b": (3,)}, {
        "a": _rows(3, 3, lambda i: sorted({(i + 1) % 3, (i + 2) % 3})), "b": _rows(3, 3, lambda i: sorted({(i + 1) % 3, (i + 2) % 3}))}),
    ("cross(a, b)", {"a": (2, 3), "b": (3,)}, {"a": _rows(6, 6, lambda k: sorted({3 * (k // 3) + (k + 1) % 3, 3 * (k // 3) + (k + 2) % 3}))}),
    # einsum: a matrix product, a trace, a diagonal, a transpose, a batched product
    ("einsum('ij,jk->ik', a, b)", {"a": (2, 3), "b": (3, 2)}, {
        "a": _rows(4, 6, lambda k: range(3 * (k // 2), 3 * (k // 2) + 3)), "b": _rows(4, 6, lambda k: [k % 2, 2 + k % 2, 4 + k % 2])}),
    ("einsum('ii', a)", {"a": (3, 3)}, {"a": _rows(1, 9, lambda k: [0, 4, 8])}),
    ("einsum('ii->i', a)", {"a": (3, 3)}, {"a": _rows(3, 9, lambda k: [4 * k])}),
    ("einsum('ij->ji', a)", {"a": (2, 3)}, {"a": _rows(6, 6, lambda k: [(k % 2) * 3 + k // 2])}),
    ("einsum('bij,bj->bi', a, v)", {"a": (2, 2, 3), "v": (2, 3)}, {
        "a": _rows(4, 12, lambda k: range(3 * k, 3 * k + 3)), "v": _rows(4, 6, lambda k: range(3 * (k // 2), 3 * (k // 2) + 3))}),
    ("einsum('i,j->ij', a, a)", {"a": (2,)}, {"a": _rows(4, 2, lambda k: sorted({k // 2, k % 2}))}),
    ("slogdet(x)", {"x": (2, 3, 3)}, {"x": _rows(2, 18, lambda b: range(9 * b, 9 * b + 9))}),
]


def _composite_id(case) -> str:
    text, shapes, _ = case
    return f"{text[:40]}:{','.join(map(str, shapes.values()))}"


@pytest.mark.parametrize("case", COMPOSITES, ids=[_composite_id(c) for c in COMPOSITES])
def test_composite_patterns_hold_every_nonzero_and_equal_the_known_ones(case) -> None:
    text, shapes, known = case
    compiled = compile_expression(text)
    names = list(compiled.variables)
    found = patterns(compiled.tree, shapes, names)
    for seed in range(3):
        masks = _jacobian_masks(compiled.function, [shapes[n] for n in names], seed, (0.2, 1.5))
        for name, mask in zip(names, masks):
            assert found[name].output_shape == tuple(compiled.function(
                *[torch.ones(shapes[n], dtype=F64) for n in names]).shape)
            assert _contains(found[name], mask), (text, name, seed)
    expanded = expand(compiled.tree, shapes)
    for name in names:
        structural = _free_symbol_mask(expanded, element_symbols(name, shapes[name]))
        assert _contains(found[name], structural), (text, name)
        if name in known:
            expected = known[name]
            if expected is None:
                assert found[name].is_dense, (text, name, found[name])
            else:
                assert np.array_equal(found[name].to_mask(), expected), (text, name)
                assert not found[name].is_dense


def test_the_tridiagonal_pattern_is_banded() -> None:
    pattern = patterns(parse("x[:-2] - 2*x[1:-1] + x[2:]").tree, {"x": (10,)}, ["x"])["x"]
    assert pattern.bandwidth() == (0, 2) and pattern.nnz == 24
    assert pattern.row_counts().tolist() == [3] * 8


def test_an_input_the_expression_does_not_use_has_an_empty_pattern() -> None:
    found = patterns(parse("sin(x)").tree, {"x": (3,), "y": (2,)}, ["x", "y"])
    assert found["y"].is_zero and not found["y"].is_dense and found["y"].output_shape == (3,)
    assert found["y"].to_mask().shape == (3, 2) and not found["y"].to_mask().any()


def test_shape_mismatches_and_unknown_names_are_refused() -> None:
    with pytest.raises(ShapeError, match="cannot evaluate x \\+ y"):
        patterns(parse("x + y").tree, {"x": (2,), "y": (3,)}, ["x"])
    with pytest.raises(ValueError, match="`wrt` names z"):
        patterns(parse("x").tree, {"x": (2,)}, ["z"])


# -- the representation: dense, cost, API -----------------------------------------------------------


def test_past_max_nnz_a_pattern_is_dense_and_a_complete_one_too() -> None:
    tree = parse("x[:-2] - 2*x[1:-1] + x[2:]").tree
    assert patterns(tree, {"x": (100,)}, ["x"], max_nnz=293)["x"].is_dense
    assert patterns(tree, {"x": (100,)}, ["x"], max_nnz=294)["x"].nnz == 294
    complete = patterns(parse("x * sum(x)").tree, {"x": (4,)}, ["x"])["x"]
    assert complete.is_dense and complete.nnz == 16 and complete.to_mask().all()


def test_a_million_element_diagonal_is_a_million_entries() -> None:
    n = 10**6
    pattern = patterns(parse("(x+1)**2").tree, {"x": (n,)}, ["x"])["x"]
    assert pattern.is_diagonal and pattern.nnz == n
    assert pattern.indptr.shape == (n + 1,) and pattern.indices.shape == (n,)


def test_a_million_element_tridiagonal_is_three_million_entries() -> None:
    n = 10**6
    pattern = patterns(parse("x[:-2] - 2*x[1:-1] + x[2:]").tree, {"x": (n,)}, ["x"])["x"]
    assert pattern.nnz == 3 * (n - 2) and pattern.indices.shape == (3 * (n - 2),)
    assert pattern.bandwidth() == (0, 2)
    assert pattern.indices[:6].tolist() == [0, 1, 2, 1, 2, 3]


def test_a_dense_pattern_is_never_spelled_out() -> None:
    n = 10**6
    pattern = patterns(parse("softmax(x) + sum(x)").tree, {"x": (n,)}, ["x"])["x"]
    assert pattern.is_dense and pattern.indptr is None and pattern.nnz == n * n
    with pytest.raises(ValueError, match="check is_dense"):
        pattern.rows()


def test_a_broadcast_past_max_nnz_is_dense_before_any_index_map_is_made() -> None:
    """x_col * y_row at n = 10**4 has 10**8 elements: not even an index map of that size is made."""
    import tracemalloc

    tracemalloc.start()
    try:
        found = patterns(parse("x * y").tree, {"x": (10**4, 1), "y": (10**4,)}, ["x", "y"], max_nnz=10**7)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found["x"].is_dense and found["y"].is_dense
    assert peak < 10**7  # bytes; a map of the output would be 8 * 10**8


def test_pattern_api() -> None:
    pattern = patterns(parse("x[1:] * x[0]").tree, {"x": (3,)}, ["x"])["x"]
    assert (pattern.output_size, pattern.input_size, pattern.nnz) == (2, 3, 4)
    assert pattern.indptr.dtype == np.int64 and pattern.indices.dtype == np.int64
    assert pattern.rows().tolist() == [0, 0, 1, 1] and pattern.cols().tolist() == [0, 1, 0, 2]
    assert not pattern.is_diagonal and not pattern.is_zero and not pattern.is_dense
    assert pattern == Pattern((2,), (3,), np.array([0, 2, 4]), np.array([0, 1, 0, 2]))
    assert pattern != Pattern.dense((2,), (3,))
    assert Pattern.identity((2, 2)).is_diagonal and Pattern.dense((1,), (1,)).is_diagonal


# -- property: never a missed nonzero -----------------------------------------------------------------


@given(EXPRESSIONS, POINTS)
def test_generated_expressions_never_miss_a_nonzero(expression, point) -> None:
    text, _shape = expression
    inputs = _inputs(text, point)
    assume(inputs)
    note(f"expression: {text}")
    compiled = compile_expression(text)
    args = [inputs[name] for name in compiled.variables]
    blocks = torch.func.jacrev(compiled.function, argnums=tuple(range(len(args))))(*args)
    assume(all(torch.isfinite(block).all() for block in blocks))
    found = patterns(compiled.tree, {name: tuple(t.shape) for name, t in inputs.items()}, list(compiled.variables))
    for name, arg, block in zip(compiled.variables, args, blocks):
        pattern = found[name]
        assert pattern.output_shape + pattern.input_shape == tuple(block.shape)
        nonzero = block.reshape(pattern.output_size, pattern.input_size).numpy() != 0
        assert _contains(pattern, nonzero), (text, name)
