"""jacli.result: the Jacobian layouts (dense, diagonal, sparse), built here by hand.

Every expected number is worked out by hand; the dense tensor written out in full is the
reference each structured layout must agree with.
"""

from __future__ import annotations

import math

import pytest
import torch

from jacli.result import Block, DiagonalBlock, JacobianBlock, SparseBlock

F64 = torch.float64


def eye_square_jacobian(n: int = 5) -> torch.Tensor:
    """d/dx of (x+1)**2 at x = eye(n), by hand: 2*(x+1) on the diagonal, i.e. 4 where x is 1
    and 2 elsewhere, shaped (n, n) + (n, n)."""
    dense = torch.zeros(n, n, n, n, dtype=F64)
    for i in range(n):
        for j in range(n):
            dense[i, j, i, j] = 4.0 if i == j else 2.0
    return dense


def test_diagonal_block_by_hand() -> None:
    x = torch.eye(5, dtype=F64)
    block = DiagonalBlock("x", 2 * (x + 1), (5, 5), (5, 5))
    assert block.layout == "diagonal"
    assert block.shape == (5, 5, 5, 5)
    assert block.nnz == 25
    assert block.density == 25 / 625
    assert torch.equal(block.to_dense(), eye_square_jacobian())


def test_diagonal_block_scalar_and_vector() -> None:
    assert torch.equal(DiagonalBlock("x", torch.tensor(3.0, dtype=F64), (), ()).to_dense(), torch.tensor(3.0, dtype=F64))
    block = DiagonalBlock("x", torch.tensor([1.0, -2.0, 0.0], dtype=F64), [3], [3])
    assert block.output_shape == (3,) and block.input_shape == (3,)
    assert block.to_dense().tolist() == [[1.0, 0.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, 0.0]]
    assert block.nnz == 3  # stored entries: a zero on the diagonal is still stored


@pytest.mark.parametrize("diagonal,output_shape,input_shape", [
    (torch.ones(3), (3,), (2,)), (torch.ones(3), (3,), (3, 1)), (torch.ones(2), (3,), (3,)),
])
def test_diagonal_block_needs_one_shape(diagonal, output_shape, input_shape) -> None:
    with pytest.raises(ValueError, match="one shape"):
        DiagonalBlock("x", diagonal, output_shape, input_shape)


def test_sparse_block_by_hand() -> None:
    # J of [x[2], 5*x[0]] w.r.t. x of shape (3,): entries (0, 2) = 1 and (1, 0) = 5
    block = SparseBlock("x", torch.tensor([0, 1]), torch.tensor([2, 0]), torch.tensor([1.0, 5.0], dtype=F64), (2,), (3,),
                        colors=1)
    assert block.layout == "sparse" and block.shape == (2, 3) and block.nnz == 2 and block.colors == 1
    assert block.density == 2 / 6
    assert block.to_dense().tolist() == [[0.0, 0.0, 1.0], [5.0, 0.0, 0.0]]


def test_sparse_block_is_kept_in_row_major_order_with_duplicates_summed() -> None:
    block = SparseBlock("x", torch.tensor([1, 0, 1, 1]), torch.tensor([2, 1, 0, 2]),
                        torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64), (2,), (3,))
    assert block.rows.tolist() == [0, 1, 1]
    assert block.cols.tolist() == [1, 0, 2]
    assert block.values.tolist() == [2.0, 3.0, 5.0]
    assert block.rows.dtype == torch.int64
    assert block.to_dense().tolist() == [[0.0, 2.0, 0.0], [3.0, 0.0, 5.0]]


def test_sparse_block_multi_axis_flat_indices() -> None:
    # output (2, 2), input (2, 2): flat row 3 is y[1, 1], flat column 2 is x[1, 0]
    block = SparseBlock("x", torch.tensor([3]), torch.tensor([2]), torch.tensor([7.0], dtype=F64), (2, 2), (2, 2))
    dense = torch.zeros(2, 2, 2, 2, dtype=F64)
    dense[1, 1, 1, 0] = 7.0
    assert torch.equal(block.to_dense(), dense)
    assert torch.equal(block.to_sparse_coo().to_dense(), dense)


@pytest.mark.parametrize("rows,cols,values", [
    ([0, 1], [0], [1.0, 2.0]), ([2], [0], [1.0]), ([0], [3], [1.0]), ([-1], [0], [1.0]),
])
def test_sparse_block_refuses_bad_coordinates(rows, cols, values) -> None:
    with pytest.raises(ValueError):
        SparseBlock("x", torch.tensor(rows), torch.tensor(cols), torch.tensor(values), (2,), (3,))


def test_empty_sparse_block() -> None:
    empty = torch.zeros(0, dtype=torch.int64)
    block = SparseBlock("x", empty, empty, torch.zeros(0, dtype=F64), (2,), (3,))
    assert block.nnz == 0 and block.density == 0.0
    assert torch.equal(block.to_dense(), torch.zeros(2, 3, dtype=F64))
    assert torch.equal(block.to_sparse_coo().to_dense(), torch.zeros(2, 3, dtype=F64))


def test_every_layout_shares_shape_nnz_and_to_dense() -> None:
    dense = eye_square_jacobian(3)
    blocks: list[Block] = [
        JacobianBlock("x", dense),
        DiagonalBlock("x", 2 * (torch.eye(3, dtype=F64) + 1), (3, 3), (3, 3)),
        SparseBlock("x", *JacobianBlock("x", dense).coo_for((3, 3)), (3, 3), (3, 3)),
    ]
    for block in blocks:
        assert block.shape == (3, 3, 3, 3)
        assert block.nnz == 9
        assert torch.equal(block.to_dense(), dense), block.layout
    for block in blocks[1:]:
        rows, cols, values = block.coo()
        assert torch.equal(rows, torch.arange(9)) and torch.equal(cols, torch.arange(9))
        assert torch.equal(block.to_sparse_coo().to_dense(), dense)
    with pytest.raises(TypeError, match="coo_for"):
        blocks[0].coo()


def test_dense_coo_for_keeps_nan() -> None:
    # NaN is not zero: a sparse copy must keep it
    dense = torch.tensor([[0.0, float("nan")], [2.0, 0.0]], dtype=F64)
    rows, cols, values = JacobianBlock("x", dense).coo_for((2,))
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    assert math.isnan(values[0]) and values[1] == 2.0


# -- the classic matrix -------------------------------------------------------------------------

from jacli.result import Labels, Matrix  # noqa: E402


def test_labels_are_made_on_demand_and_agree_with_iteration() -> None:
    labels = Labels([("r", ()), ("x", (2,)), ("A", (2, 3)), ("e", (0,))])
    listed = list(labels)
    # by hand: r, then x's 2 and A's 6 elements in C order, e none
    assert listed == ["r", "x[0]", "x[1]", "A[0,0]", "A[0,1]", "A[0,2]", "A[1,0]", "A[1,1]", "A[1,2]"]
    assert len(labels) == 9 and [labels[i] for i in range(9)] == listed and labels[-1] == "A[1,2]"
    assert labels[2:4] == ["x[1]", "A[0,0]"]
    assert labels.summary() == "r, x[0]..x[1], A[0,0]..A[1,2], e (empty)"
    with pytest.raises(IndexError):
        labels[9]


def test_matrix_of_mixed_layouts_is_the_blocks_side_by_side() -> None:
    # output (2,); inputs: x (3,) sparse, s () dense, z (2,) diagonal; the reference is each
    # block's own dense tensor, reshaped to (2, n) and put side by side by hand
    sparse = SparseBlock("x", torch.tensor([1, 0]), torch.tensor([2, 0]), torch.tensor([5.0, 7.0], dtype=F64), (2,), (3,))
    dense = JacobianBlock("s", torch.tensor([1.5, -2.0], dtype=F64))
    diagonal = DiagonalBlock("z", torch.tensor([3.0, 4.0], dtype=F64), (2,), (2,))
    matrix = Matrix(Labels([("y", (2,))]), Labels([("x", (3,)), ("s", ()), ("z", (2,))]),
                    ((sparse, (3,)), (dense, ()), (diagonal, (2,))))
    expected = torch.tensor([[7.0, 0, 0, 1.5, 3.0, 0], [0, 0, 5.0, -2.0, 0, 4.0]], dtype=F64)
    assert matrix.shape == (2, 6) and matrix.layout == "sparse"
    assert torch.equal(matrix.to_dense(), expected)
    assert torch.equal(matrix.to_sparse_coo().to_dense(), expected)
    rows, cols, values = matrix.coo()
    flat = (rows * 6 + cols).tolist()
    assert flat == sorted(flat) and matrix.nnz == 6  # row-major, the dense block's nonzeros included
    assert torch.equal(values, expected[rows, cols])


def test_dense_matrix_streams_the_same_rows() -> None:
    blocks = (JacobianBlock("a", torch.arange(12.0, dtype=F64).reshape(3, 2, 2)), JacobianBlock("b", torch.ones(3, dtype=F64)))
    matrix = Matrix(Labels([("y", (3,))]), Labels([("a", (2, 2)), ("b", ())]), ((blocks[0], (2, 2)), (blocks[1], ())))
    whole = torch.cat([blocks[0].values.reshape(3, 4), blocks[1].values.reshape(3, 1)], dim=1)
    assert matrix.layout == "dense" and torch.equal(matrix.to_dense(), whole)
    for per_slice in (1, 2, 3, 10):
        assert torch.equal(torch.cat(list(matrix.row_slices(per_slice))), whole)


def test_one_dense_blocks_matrix_is_a_view_not_a_copy() -> None:
    values = torch.arange(6.0, dtype=F64).reshape(3, 2)
    matrix = Matrix(Labels([("y", (3,))]), Labels([("x", (2,))]), ((JacobianBlock("x", values), (2,)),))
    assert matrix.to_dense().data_ptr() == values.data_ptr()
