"""The plan (jacli.plan): sizes from shapes, budgets, the method auto picks, chunk sizes."""

from __future__ import annotations

import math

import pytest
import torch

from jacli.errors import ResourceError, ShapeError
from jacli.parse import parse
from jacli.plan import WORKING_SET_FACTOR, make_plan


def _plan(text: str, shapes: dict, wrt=None, budget: int = 10**9, result=None):
    return make_plan(parse(text).tree, text, shapes, tuple(wrt or shapes), budget=budget, itemsize=8, result=result)


@pytest.mark.parametrize(
    "inputs,outputs,expected",
    [(1, 2, "forward"), (1, 1000, "forward"), (999, 1000, "forward"), (2, 2, "reverse"),
     (3, 2, "reverse"), (1000, 1, "reverse"), (1, 1, "reverse")],
)
def test_auto_picks_the_mode_with_fewer_passes(inputs: int, outputs: int, expected: str) -> None:
    # x[0:1] * ones(outputs): output of `outputs` elements from an input of `inputs` elements
    plan = _plan("sum(x) * y", {"x": (inputs,), "y": (outputs,)}, wrt=["x"])
    assert (plan.wrt_elements, plan.output_elements) == (inputs, outputs)
    assert plan.jacobian_method() == expected


def test_chunking_only_when_the_vectorized_pass_would_not_fit() -> None:
    # tanh(A @ x), A 1024 x 1024: the Jacobian wrt x is 8 MB; 1024 basis vectors of 4096
    # numbers each are 32 MB more. Everything fits 1 GB, so nothing is chunked.
    shapes = {"A": (1024, 1024), "x": (1024,)}
    plan = _plan("tanh(A @ x)", shapes, wrt=["x"])
    assert plan.reverse_chunk() is None and plan.forward_chunk() is None
    held = (1024 * 1024 + 1024 + 1024 + 2 * 1024) * 8  # inputs, output, intermediates
    result = 1024 * 1024 * 8
    per_vector = (1024 + WORKING_SET_FACTOR * 2 * 1024 + 1024) * 8
    budget = held + 2 * result + 100 * per_vector + 5  # chunked, the result is held twice (concatenated)
    tight = _plan("tanh(A @ x)", shapes, wrt=["x"], budget=budget)
    assert tight.reverse_chunk() == 100
    # a forward direction also carries the input's tangent beside its basis vector: 1024 more
    forward_vector = (2 * 1024 + WORKING_SET_FACTOR * 2 * 1024 + 1024) * 8
    assert tight.forward_chunk() == (100 * per_vector + 5) // forward_vector == 88


def test_a_result_that_does_not_fit_is_refused_with_its_size() -> None:
    with pytest.raises(ResourceError, match=r"1,000,000 output elements × 1,000,000 input elements"):
        _plan("(x+1)**2", {"x": (1000, 1000)}, result="jacobian")
    with pytest.raises(ResourceError, match=r"Hessian \(1,000,000 × 1,000,000"):
        _plan("sum(x)", {"x": (1000, 1000)}, result="hessian")


def test_shape_errors_come_from_shapes() -> None:
    with pytest.raises(ShapeError, match=r"x \+ y, from x of shape \(2,\) and y of shape \(3,\)"):
        _plan("x + y", {"x": (2,), "y": (3,)})
