"""Structured accumulation (jacli.engine.structured): the dense Jacobian built through the chain
rule with each intermediate kept as zero, diagonal or dense, against torch.func.jacrev on the
same compiled function."""

from __future__ import annotations

import pytest
import torch

from jacli import api
from jacli.compile import compile_expression
from jacli.engine.structured import accumulate

F64 = torch.float64


def _inputs(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.rand(shape, dtype=F64, generator=g) + 0.5 for name, shape in shapes.items()}


COVERED = [
    ("tanh(A @ x)", {"A": (4, 3), "x": (3,)}),
    ("tanh(A @ x + b)", {"A": (4, 3), "x": (3,), "b": (4,)}),
    ("sin(x)*y + x/y - 3*x**2", {"x": (5,), "y": (5,)}),
    ("exp(A @ sin(x)) * 2 + 1/x", {"A": (3, 3), "x": (3,)}),
    ("-x*y + s*x - x/s", {"x": (4,), "y": (4,), "s": ()}),
    ("sqrt(x) * e**x - 2 - x", {"x": (4,)}),
    ("A @ (A @ x) * x", {"A": (3, 3), "x": (3,)}),
    ("softmax(x)", {"x": (6,)}),  # diag(s) - s sᵀ, from a diagonal J_u
    ("softmax(x, 0) * y", {"x": (5,), "y": (5,)}),
    ("softmax(A @ x - x**2)", {"A": (4, 4), "x": (4,)}),  # from a dense J_u
    ("log(softmax(3*s*x) + 1)", {"x": (4,), "s": ()}),
    ("x[0]", {"x": (3,)}),  # not covered (indexing): must fall back, returning None
]


@pytest.mark.parametrize("text, shapes", COVERED[:-1])
@pytest.mark.parametrize("seed", [0, 1])
def test_structured_equals_jacrev(text, shapes, seed) -> None:
    compiled = compile_expression(text)
    inputs = _inputs(shapes, seed)
    args = tuple(inputs[name] for name in compiled.variables)
    position = compiled.variables.index("x")
    output, jac = accumulate(compiled.tree, inputs, "x")
    torch.testing.assert_close(output, compiled.function(*args), rtol=1e-14, atol=1e-14)
    reference = torch.func.jacrev(compiled.function, argnums=position)(*args)
    torch.testing.assert_close(jac, reference, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    "text, shapes, wrt",
    [("x[0]", {"x": (3,)}, "x"), ("sum(x)", {"x": (3,)}, "x"), ("A @ x", {"A": (2, 2), "x": (2,)}, "A"),
     ("x @ A", {"A": (3, 3), "x": (3,)}, "x"), ("max(x, y)", {"x": (2,), "y": (2,)}, "x"),
     ("softmax(x[0] * x)", {"x": (3,)}, "x"), ("softmax(A @ x)", {"A": (2, 2), "x": (2,)}, "A")],
)
def test_what_is_not_covered_falls_back(text, shapes, wrt) -> None:
    assert accumulate(compile_expression(text).tree, _inputs(shapes), wrt) is None


def test_auto_uses_it_for_a_constant_matrix_and_says_so() -> None:
    inputs = _inputs({"A": (64, 64), "x": (64,)})
    result = api.compute_jacobian("tanh(A @ x)", inputs, wrt=["x"], layout="dense")
    assert result.method == "structured" and "chain rule" in result.how
    reference = torch.func.jacrev(lambda x: torch.tanh(inputs["A"] @ x))(inputs["x"])
    torch.testing.assert_close(result.blocks["x"].to_dense(), reference, rtol=1e-13, atol=1e-13)
    # asked for where it does not apply, it says what it covers
    with pytest.raises(api.ShapeError, match="`method` structured covers"):
        api.compute_jacobian("sum(x)*x", {"x": [1.0, 2.0]}, method="structured")


def test_a_budget_too_small_for_its_dense_forms_falls_back_or_refuses() -> None:
    # softmax at n = 300: the Jacobian is 720 kB; structured accumulation may hold 3 such forms
    # (2.16 MB), jacrev splits its passes to fit a 1.5 MB budget
    x = _inputs({"x": (300,)})["x"]
    reference = torch.func.jacrev(lambda x: torch.softmax(x, 0))(x)
    roomy = api.compute_jacobian("softmax(x)", {"x": x}, layout="dense")
    assert roomy.method == "structured"
    tight = api.compute_jacobian("softmax(x)", {"x": x}, layout="dense", max_memory=1_500_000)
    assert tight.method == "reverse" and "at a time (the memory budget)" in tight.how
    for result in (roomy, tight):
        torch.testing.assert_close(result.blocks["x"].to_dense(), reference, rtol=1e-13, atol=1e-15)
    with pytest.raises(api.ResourceError, match=r"structured accumulation for softmax\(x\).*2\.2 MB.*`method` reverse"):
        api.compute_jacobian("softmax(x)", {"x": x}, layout="dense", max_memory=1_500_000, method="structured")
