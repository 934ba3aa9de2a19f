"""jacli.engine.compressed against independent references.

Every compressed Jacobian is compared with torch.func.jacrev's dense one on the same function,
with the true pattern (written here by hand, or the mask a random function was built from)
given as the pattern. Colourings are checked for what makes them correct (no row holds two
columns of one colour), not for the particular colours a heuristic chose.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jacli.compile import compile_expression
from jacli.engine import compressed
from jacli.engine.compressed import (
    color_columns,
    color_rows,
    jacobian_compressed,
    jacobian_diagonal,
    to_coo,
    to_dense,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

RTOL, ATOL = 1e-12, 1e-14
DTYPE = torch.float64


@dataclasses.dataclass(frozen=True)
class Pattern:
    """A stand-in for jacli.structure.Pattern with the same attributes (CSR over flat indices)."""

    output_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    indptr: np.ndarray | None
    indices: np.ndarray | None

    @classmethod
    def from_mask(cls, mask: np.ndarray, output_shape=None, input_shape=None) -> "Pattern":
        mask = np.asarray(mask, dtype=bool)
        rows, cols = np.nonzero(mask)  # row-major: sorted by row, then column
        indptr = np.zeros(mask.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=mask.shape[0]), out=indptr[1:])
        return cls(
            tuple(output_shape or (mask.shape[0],)),
            tuple(input_shape or (mask.shape[1],)),
            indptr,
            cols.astype(np.int64),
        )

    @property
    def nnz(self) -> int:
        return math.prod(self.output_shape) * math.prod(self.input_shape) if self.indptr is None else len(self.indices)


def dense_reference(f, x: torch.Tensor) -> torch.Tensor:
    return torch.func.jacrev(f)(x)


def assert_compressed_matches(f, x: torch.Tensor, pattern: Pattern, **options) -> None:
    """Forward and reverse compressed evaluation agree with jacrev, and return f's own output."""
    reference = dense_reference(f, x)
    for mode in ("forward", "reverse"):
        output, values = jacobian_compressed(f, (x,), 0, pattern, mode, **options)
        assert values.shape == (pattern.nnz,)
        torch.testing.assert_close(output, f(x), rtol=0, atol=0)
        torch.testing.assert_close(to_dense(pattern, values), reference, rtol=RTOL, atol=ATOL)


def assert_valid_column_coloring(mask: np.ndarray, colors: np.ndarray, count: int) -> None:
    assert colors.dtype == np.int64 and colors.shape == (mask.shape[1],)
    if mask.shape[1]:
        assert colors.min() >= 0 and colors.max() == count - 1
    for row in mask:
        used = colors[row]
        assert len(np.unique(used)) == len(used), "two columns of one colour share a row"


# ---- the patterns, with functions whose Jacobians have exactly them --------------------------


def tridiagonal_pattern(n: int) -> Pattern:
    m = n - 2
    return Pattern((m,), (n,), np.arange(0, 3 * m + 1, 3, dtype=np.int64),
                   (np.arange(m)[:, None] + np.arange(3)).ravel().astype(np.int64))


def tridiagonal(x: torch.Tensor) -> torch.Tensor:
    return x[:-2] - 2 * x[1:-1] + x[2:] * torch.cos(x[2:])


def stencil_mask(rows: int, cols: int) -> np.ndarray:
    """Output (rows-2, cols-2) interior points, each on itself and its four neighbours."""
    mask = np.zeros(((rows - 2) * (cols - 2), rows * cols), dtype=bool)
    for k, (i, j) in enumerate(np.ndindex(rows - 2, cols - 2)):
        for a, b in ((i, j + 1), (i + 1, j), (i + 1, j + 1), (i + 1, j + 2), (i + 2, j + 1)):
            mask[k, a * cols + b] = True
    return mask


def stencil_pattern(rows: int, cols: int) -> Pattern:
    return Pattern.from_mask(stencil_mask(rows, cols), (rows - 2, cols - 2), (rows, cols))


def stencil(x: torch.Tensor) -> torch.Tensor:
    """A nonlinear 5-point Laplacian on the interior of a 2-D grid, written with slices."""
    u = torch.sin(x)
    return u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4 * x[1:-1, 1:-1] ** 2


def block_diagonal_case(blocks: int, size: int):
    g = torch.Generator().manual_seed(1)
    A = torch.randn(blocks, size, size, dtype=DTYPE, generator=g) + 3  # no zero entries
    mask = np.kron(np.eye(blocks, dtype=bool), np.ones((size, size), dtype=bool))
    f = lambda x: torch.einsum("bij,bj->bi", A, torch.tanh(x.reshape(blocks, size))).reshape(-1)  # noqa: E731
    return f, Pattern.from_mask(mask)


def arrowhead(x: torch.Tensor) -> torch.Tensor:
    """Row 0 dense, column 0 dense, and the diagonal."""
    y = x * torch.sin(x[0])
    return torch.cat([(y[0] + (x**3).sum()).reshape(1), y[1:]])


def arrowhead_mask(n: int) -> np.ndarray:
    mask = np.eye(n, dtype=bool)
    mask[0, :] = mask[:, 0] = True
    return mask


def masked_matmul(mask: np.ndarray, seed: int):
    """y = (W ⊙ mask) @ sin(x) with W bounded away from 0: its Jacobian's pattern is the mask."""
    g = torch.Generator().manual_seed(seed)
    W = (torch.rand(mask.shape, dtype=DTYPE, generator=g) + 0.5) * torch.where(
        torch.rand(mask.shape, generator=g) < 0.5, -1.0, 1.0).to(DTYPE)
    M = W * torch.as_tensor(mask)
    return lambda x: M @ torch.sin(x)  # noqa: E731  (x in [-1, 1]: cos(x) > 0)


def inputs(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, dtype=DTYPE, generator=g) * 2 - 1


# ---- colour counts -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 4, 5, 10, 101, 10_000])
def test_a_tridiagonal_takes_three_colours_whatever_n(n: int) -> None:
    pattern = tridiagonal_pattern(n)
    colors, count = color_columns(pattern)
    assert count == 3
    assert colors.tolist()[:6] == [0, 1, 2, 0, 1, 2][:n]
    assert color_rows(pattern)[1] == min(3, n - 2)


@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_a_diagonal_takes_one_colour(n: int) -> None:
    pattern = Pattern.from_mask(np.eye(n, dtype=bool))
    for colorer in (color_columns, color_rows):
        colors, count = colorer(pattern)
        assert count == 1 and (colors == 0).all()


@pytest.mark.parametrize("shape", [(3, 3), (5, 5), (6, 9), (30, 40), (100, 100)])
def test_a_5_point_stencil_takes_at_most_five_colours(shape: tuple[int, int]) -> None:
    pattern = stencil_pattern(*shape)
    colors, count = color_columns(pattern)
    assert count <= 5
    assert_valid_column_coloring(stencil_mask(*shape), colors, count)
    assert color_rows(pattern)[1] <= 5


def test_dsatur_gives_five_where_natural_greedy_gives_more() -> None:
    """Why 'auto' runs DSATUR: the natural order alone needs more colours on a stencil."""
    pattern = stencil_pattern(30, 30)
    assert color_columns(pattern, strategy="natural")[1] > 5
    assert color_columns(pattern, strategy="dsatur")[1] == 5


def test_a_dense_pattern_takes_one_colour_per_column_or_row() -> None:
    dense = Pattern((2, 3), (4,), None, None)
    assert color_columns(dense)[1] == 4 and color_rows(dense)[1] == 6


def test_an_unknown_strategy_is_named() -> None:
    with pytest.raises(ValueError, match="'greedy'"):
        color_columns(tridiagonal_pattern(5), strategy="greedy")


masks = st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(0, 4)).flatmap(
    lambda t: hnp.arrays(np.int64, (t[0], t[1]), elements=st.integers(0, t[2])).map(lambda a: a == 0)
)
"""Random boolean masks up to 12 x 12, from dense (every entry 0) to about one entry in five."""


@settings(max_examples=150, deadline=None)
@given(mask=masks, strategy=st.sampled_from(compressed.STRATEGIES))
def test_colourings_never_put_two_columns_of_a_row_in_one_colour(mask: np.ndarray, strategy: str) -> None:
    pattern = Pattern.from_mask(mask)
    assert_valid_column_coloring(mask, *color_columns(pattern, strategy=strategy))
    assert_valid_column_coloring(mask.T, *color_rows(pattern, strategy=strategy))


# ---- compressed evaluation against jacrev ------------------------------------------------------


def test_elementwise_compiled_expression() -> None:
    f = compile_expression("(x+1)**2 + x*sin(x)").function
    x = inputs(50)
    assert_compressed_matches(f, x, Pattern.from_mask(np.eye(50, dtype=bool)))


@pytest.mark.parametrize("n", [3, 4, 37])
def test_tridiagonal(n: int) -> None:
    assert_compressed_matches(tridiagonal, inputs(n), tridiagonal_pattern(n))


@pytest.mark.parametrize("shape", [(3, 3), (6, 9), (12, 12)])
def test_5_point_stencil_on_a_grid(shape: tuple[int, int]) -> None:
    assert_compressed_matches(stencil, inputs(*shape), stencil_pattern(*shape))


def test_block_diagonal() -> None:
    f, pattern = block_diagonal_case(blocks=5, size=4)
    assert color_columns(pattern)[1] == 4
    assert_compressed_matches(f, inputs(20), pattern)


def test_arrowhead_needs_every_colour_but_is_still_right() -> None:
    pattern = Pattern.from_mask(arrowhead_mask(9))
    assert color_columns(pattern)[1] == 9 and color_rows(pattern)[1] == 9
    assert_compressed_matches(arrowhead, inputs(9), pattern)


@settings(max_examples=60, deadline=None)
@given(mask=masks, seed=st.integers(0, 2**31 - 1))
def test_random_patterns(mask: np.ndarray, seed: int) -> None:
    f = masked_matmul(mask, seed)
    assert_compressed_matches(f, inputs(mask.shape[1], seed=seed), Pattern.from_mask(mask))


def test_a_dense_pattern_is_a_plain_jacobian() -> None:
    mask = np.ones((3, 5), dtype=bool)
    f = masked_matmul(mask, 3)
    assert_compressed_matches(f, inputs(5), Pattern((3,), (5,), None, None))


def test_other_inputs_are_held_fixed() -> None:
    f = compile_expression("a*x**2 + sin(x)").function  # variables in order: a, x
    a, x = inputs(6, seed=1), inputs(6, seed=2)
    pattern = Pattern.from_mask(np.eye(6, dtype=bool))
    reference = torch.func.jacrev(f, argnums=1)(a, x)
    for mode in ("forward", "reverse"):
        output, values = jacobian_compressed(f, (a, x), 1, pattern, mode)
        torch.testing.assert_close(output, f(a, x), rtol=0, atol=0)
        torch.testing.assert_close(to_dense(pattern, values), reference, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("chunk_size", [1, 2, 4])
def test_chunked_equals_unchunked(chunk_size: int) -> None:
    x = inputs(7, 8)
    pattern = stencil_pattern(7, 8)
    for mode in ("forward", "reverse"):
        output, values = jacobian_compressed(stencil, (x,), 0, pattern, mode)
        chunked_output, chunked = jacobian_compressed(stencil, (x,), 0, pattern, mode, chunk_size=chunk_size)
        assert torch.equal(chunked_output, output) and torch.equal(chunked, values)


def test_a_coloring_made_earlier_is_reused() -> None:
    pattern, x = tridiagonal_pattern(20), inputs(20)
    _, values = jacobian_compressed(tridiagonal, (x,), 0, pattern, "forward", coloring=color_columns(pattern))
    torch.testing.assert_close(to_dense(pattern, values), dense_reference(tridiagonal, x), rtol=RTOL, atol=ATOL)


def test_a_coloring_for_the_other_mode_is_refused() -> None:
    pattern, x = tridiagonal_pattern(20), inputs(20)
    with pytest.raises(ValueError, match=r"colours 20 elements, the output has 18; reverse mode needs color_rows"):
        jacobian_compressed(tridiagonal, (x,), 0, pattern, "reverse", coloring=color_columns(pattern))


def test_an_empty_pattern_gives_no_values_and_the_output() -> None:
    pattern = Pattern.from_mask(np.zeros((2, 3), dtype=bool))
    f = lambda x: torch.zeros(2, dtype=DTYPE) + x.sum().detach()  # noqa: E731
    for mode in ("forward", "reverse"):
        output, values = jacobian_compressed(f, (inputs(3),), 0, pattern, mode)
        assert values.shape == (0,) and torch.equal(output, f(inputs(3)))


def test_shapes_that_disagree_with_the_pattern_are_named() -> None:
    with pytest.raises(ValueError, match=r"input 0 has shape \(6,\).*\(5,\)"):
        jacobian_compressed(tridiagonal, (inputs(6),), 0, tridiagonal_pattern(5), "forward")
    wrong_output = Pattern((9,), (5,), None, None)
    with pytest.raises(ValueError, match=r"output has shape \(3,\)"):
        jacobian_compressed(tridiagonal, (inputs(5),), 0, wrong_output, "reverse")
    with pytest.raises(ValueError, match="'sideways'"):
        jacobian_compressed(tridiagonal, (inputs(5),), 0, tridiagonal_pattern(5), "sideways")


# ---- the diagonal shortcut and the layouts -----------------------------------------------------


def test_diagonal_of_an_elementwise_expression() -> None:
    f = compile_expression("(x+1)**2 + x*sin(x)").function
    x = inputs(4, 5)
    output, diagonal = jacobian_diagonal(f, (x,), 0)
    reference = dense_reference(f, x).reshape(20, 20).diagonal().reshape(4, 5)
    torch.testing.assert_close(output, f(x), rtol=0, atol=0)
    torch.testing.assert_close(diagonal, reference, rtol=RTOL, atol=ATOL)


def test_diagonal_through_broadcasting() -> None:
    f = lambda x, s: (x + 1) ** 2 * s  # noqa: E731
    x, s = inputs(2, 3), inputs(1, 3, seed=5)
    output, diagonal = jacobian_diagonal(f, (x, s), 0)
    reference = torch.func.jacrev(f)(x, s).reshape(6, 6).diagonal().reshape(2, 3)
    torch.testing.assert_close(diagonal, reference, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(output, f(x, s), rtol=0, atol=0)


def test_diagonal_refuses_a_shape_change() -> None:
    with pytest.raises(ValueError, match="jacobian_diagonal"):
        jacobian_diagonal(lambda x, s: x * s, (inputs(3), inputs(2, 1)), 0)


def test_several_diagonals_from_one_backward_pass() -> None:
    f = compile_expression("a*sin(b) + c**2*b").function
    a, b, c = inputs(7), inputs(7, seed=2), inputs(7, seed=3)
    output, diagonals = compressed.jacobian_diagonals(f, (a, b, c), (0, 1, 2))
    references = torch.func.jacrev(f, argnums=(0, 1, 2))(a, b, c)
    torch.testing.assert_close(output, f(a, b, c), rtol=0, atol=0)
    for diagonal, reference in zip(diagonals, references):
        torch.testing.assert_close(diagonal, reference.diagonal(), rtol=RTOL, atol=ATOL)
    # an input the output does not depend on has a zero diagonal
    _, (unused,) = compressed.jacobian_diagonals(lambda x, y: y * 2, (a, b), (0,))
    assert unused.tolist() == [0.0] * 7


@pytest.mark.parametrize(
    "text, shapes",
    [("reshape(x, -1, 1) * w", {"x": (4,), "w": (4, 3)}),  # tall: each row holds one column
     ("[x[0], x[2], 1] * 3 + 1", {"x": (3,)}),
     ("sin(x) * w + 1", {"x": (2, 3), "w": (3,)})],
)
def test_one_colour_by_double_backward_equals_jacfwd(text, shapes) -> None:
    from jacli.structure import patterns

    compiled = compile_expression(text)
    args = tuple(inputs(*shapes[name], seed=i) for i, name in enumerate(compiled.variables))
    position = compiled.variables.index("x")
    pattern = patterns(compiled.tree, shapes, ["x"])["x"]
    coloring = color_columns(pattern)
    assert coloring[1] == 1
    output, values = jacobian_compressed(compiled.function, args, position, pattern, "forward", coloring=coloring)
    reference = torch.func.jacfwd(compiled.function, argnums=position)(*args)
    torch.testing.assert_close(output, compiled.function(*args), rtol=0, atol=0)
    torch.testing.assert_close(to_dense(pattern, values), reference, rtol=RTOL, atol=ATOL)


def test_coo_and_dense_agree() -> None:
    pattern, x = stencil_pattern(5, 6), inputs(5, 6)
    _, values = jacobian_compressed(stencil, (x,), 0, pattern, "forward")
    rows, cols, coo_values = to_coo(pattern, values)
    assert rows.dtype == cols.dtype == torch.int64
    sparse = torch.sparse_coo_tensor(torch.stack([rows, cols]), coo_values, (12, 30), check_invariants=True)
    assert torch.equal(sparse.to_dense().reshape(3, 4, 5, 6), to_dense(pattern, values))
    assert (rows.diff() >= 0).all()  # CSR order: by row
