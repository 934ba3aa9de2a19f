"""Shapes read off the tree (jacli.shapes), against torch itself: the real output's shape and the
bytes of every intermediate result as the compiled expression makes them on meta tensors."""

from __future__ import annotations

import re

import pytest
import torch

from jacli.compile import compile_expression, measure
from jacli.errors import ShapeError
from jacli.parse import parse
from jacli.shapes import broadcast, infer

F64 = torch.float64


@pytest.mark.parametrize(
    "expr, shapes",
    [
        ("sum(x*y)", {"x": (100, 1), "y": (1, 100)}),
        ("[x, y, x*y, 1]", {"x": (3,), "y": (3,)}),
        ("reshape(x, 2, 6) @ reshape(y, 6, 2)", {"x": (12,), "y": (3, 4)}),
        ("softmax(x @ y, 0) * 2 - x[0, 0]", {"x": (4, 5), "y": (5, 3)}),
        ("x[1:] * y[0] + sin(x)[1:] / 3", {"x": (5, 2), "y": (2,)}),
        ("dot(x, y) + norm(x) * mean(y)", {"x": (7,), "y": (7,)}),
        ("transpose(x) @ x + 1", {"x": (6, 2)}),
        ("tanh(A @ x)", {"A": (3, 4), "x": (4,)}),
        ("x @ y", {"x": (4, 2, 5), "y": (5,)}),
        ("x @ y", {"x": (5,), "y": (3, 5, 2)}),
        ("transpose(x, 0, 2) + logsumexp(x, 1)[0, 0]", {"x": (2, 3, 4)}),
        ("e**x + sqrt(x) - 2**x + x**y", {"x": (2, 1), "y": (3,)}),
        ("max(x, y) * min(x, 0.5) + prod(x, 0)", {"x": (3, 1), "y": (4,)}),
        ("sum(x) + sum(x, 0) + mean(x, -1) + x[::2][-1]", {"x": (5,)}),
        ("sum(x, 0) + softmax(x, -1)", {"x": ()}),
        ("1/x * y / (x - y) - x / 2", {"x": (3,), "y": (2, 1)}),
    ],
)
def test_inferred_shapes_are_torchs(expr, shapes) -> None:
    compiled = compile_expression(expr)
    inferred = infer(parse(expr).tree, shapes)
    args = [torch.empty(shapes[n], dtype=F64, device="meta") for n in compiled.variables]
    output, total_bytes = measure(expr, *args)
    assert inferred.output == tuple(output.shape)
    assert inferred.intermediates * 8 == total_bytes
    real = compiled(*[torch.ones(shapes[n], dtype=F64) for n in compiled.variables])
    assert tuple(real.shape) == inferred.output


@pytest.mark.parametrize(
    "expr, shapes, named",
    [
        ("x + y", {"x": (2,), "y": (3,)}, "x + y"),
        ("sin(x @ y)", {"x": (2, 3), "y": (2, 3)}, "x @ y"),
        ("x[5] * 2", {"x": (3,)}, "x[5]"),
        ("sum(x, 2)", {"x": (3,)}, "sum(x, 2)"),
        ("reshape(x, 4, -1)", {"x": (6,)}, "reshape(x, 4, -1)"),
        ("dot(x, y)", {"x": (3,), "y": (4,)}, "dot(x, y)"),
        ("[x, y]", {"x": (3,), "y": (2,)}, "[x, y]"),
    ],
)
def test_shape_mismatches_are_named_by_their_subexpression(expr, shapes, named) -> None:
    with pytest.raises(ShapeError, match="cannot evaluate " + re.escape(named)):
        infer(parse(expr).tree, shapes)
    compiled = compile_expression(expr)
    with pytest.raises(Exception):  # and torch refuses the same shapes
        compiled(*[torch.ones(shapes[n], dtype=F64) for n in compiled.variables])


@pytest.mark.parametrize(
    "shapes", [[(3, 1), (4,)], [(), (2, 2)], [(5, 1, 3), (4, 1)], [(1,), (1,)], [(2, 3), (2, 3)]]
)
def test_broadcast_is_torchs(shapes) -> None:
    assert broadcast(shapes) == tuple(torch.broadcast_shapes(*shapes))


@pytest.mark.parametrize("name", ["det", "logdet", "slogdet", "inv"])
def test_a_matrix_function_of_a_vector_is_named_by_its_own_name(name) -> None:
    # torch refuses the same: none of these takes a vector
    with pytest.raises((RuntimeError, IndexError)):
        compile_expression(f"{name}(x)")(torch.ones(2, dtype=F64))
    with pytest.raises(ShapeError) as info:
        infer(parse(f"{name}(x)").tree, {"x": (2,)})
    assert str(info.value).startswith(f"cannot evaluate {name}(x), from x of shape (2,): {name} needs a square matrix")
    assert "Check the shape of the input x" in str(info.value)


@pytest.mark.parametrize("expr, shapes, operands, advice", [
    # the operands' shapes, worked by hand: arange(0) has 0 elements, pad(x, 1, 1) two more than x
    ("x*arange(0)", {"x": (2,)}, "x of shape (2,) and arange(0) of shape (0,)",
     "Change the constant arange(0) or the shape of input x so that they fit."),
    ("pad(x, 1, 1) - shift(x, 1)", {"x": (2,)}, "pad(x, 1, 1) of shape (4,) and shift(x, 1) of shape (2,)",
     "Change the expression or the shape of input x so that they fit."),
    ("eye(2) @ ones(3) + x", {"x": (2,)}, "eye(2) of shape (2, 2) and ones(3) of shape (3,)",
     "Change the constants eye(2) and ones(3) so that they fit."),
    ("x @ y", {"x": (2,), "y": (3,)}, "x of shape (2,) and y of shape (3,)",
     "Check the shapes of the inputs x and y against the expression."),
])
def test_a_mismatch_names_its_operands_shapes_and_what_to_change(expr, shapes, operands, advice) -> None:
    with pytest.raises(ShapeError) as info:
        infer(parse(expr).tree, shapes)
    message = str(info.value)
    assert f", from {operands}: " in message and message.endswith(advice)
    assert "input shapes" not in message and "\n" not in message
