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
