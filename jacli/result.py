"""Typed results: what each command computed, with everything needed to show and explain it.

Every result carries the ``Problem`` it answers (expression, inputs, device, dtype), the output,
and the method that ran. Then each kind holds its own numbers, keyed by what they are:

* ``JacobianResult.blocks``: input name → ``JacobianBlock`` (one per ``wrt`` input), shaped
  ``output.shape + input.shape``;
* ``VJPResult.grads``, ``GradResult.grads``, ``HVPResult.grads``: input name → tensor shaped
  like the input;
* ``JVPResult.value``: one tensor shaped like the output;
* ``HessianResult.blocks``: ``(a, b)`` → tensor shaped ``a.shape + b.shape``, views into the one
  n × n matrix ``HessianResult.values`` (the ``wrt`` inputs side by side).

``JacobianResult.matrix()`` and ``HessianResult.matrix()`` give the same numbers as the classic
matrix (``Matrix``): one row per output element, one column per input element, the ``wrt``
inputs side by side, each flattened in C order, with a label per row and column. ``as_matrix``
says whether the renderers write that matrix (the default when every ``wrt`` input is a scalar)
or the blocks.

Each Jacobian block has a ``layout``: ``JacobianBlock`` (``dense``) holds every entry;
``DiagonalBlock`` (``diagonal``) holds only ∂y[i...]/∂x[i...], shaped like the output;
``SparseBlock`` (``sparse``) holds the nonzeros as COO over flat C-order indices. All share
``shape`` (output.shape + input.shape), ``layout``, ``nnz``, ``density``, ``coo()`` (flat rows,
columns and values) and ``to_dense()``, so a caller that wants dense numbers never needs to know
which it holds; one that wants to stay O(nonzeros) reads ``layout`` and the block's own fields.

Example:
    >>> import jacli
    >>> result = jacli.compute_jacobian("x**2", {"x": [1.0, 2.0]})
    >>> result.command, result.method, result.blocks["x"].layout
    ('jacobian', 'compressed', 'diagonal')
"""

from __future__ import annotations

import bisect
import collections.abc
import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping, Sequence

if TYPE_CHECKING:
    import torch

    from jacli.problem import Problem

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-5
"""check's default tolerances: gradcheck's."""

Key = Any
"""What a result's numbers are keyed by: an input name, or an (a, b) pair of names (Hessian)."""


class Block:
    """What every Jacobian block shares, whatever its layout.

    Attributes:
        input: the input it differentiates with respect to.
        layout: ``dense``, ``diagonal`` or ``sparse``.
    """

    input: str
    output_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    layout: ClassVar[str] = ""

    @property
    def shape(self) -> tuple[int, ...]:
        """``output.shape + input.shape``, whatever the layout stores."""
        return tuple(self.output_shape) + tuple(self.input_shape)

    @property
    def nnz(self) -> int:
        """The entries the layout stores (explicit zeros included, as in scipy.sparse)."""
        raise NotImplementedError

    @property
    def density(self) -> float:
        """``nnz`` over the number of entries of the dense Jacobian (0 for an empty one)."""
        total = math.prod(self.shape)
        return self.nnz / total if total else 0.0

    def coo(self) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
        """``(rows, cols, values)``: flat C-order output and input indices (int64) of the stored
        entries and their values, in row-major order; the classic matrix is
        ``scipy.sparse.coo_matrix((values, (rows, cols)), shape=(output size, input size))``."""
        raise NotImplementedError

    def to_dense(self) -> "torch.Tensor":
        """The block as one dense tensor shaped ``output.shape + input.shape``."""
        raise NotImplementedError

    def to_sparse_coo(self) -> "torch.Tensor":
        """The block as a torch sparse COO tensor shaped ``output.shape + input.shape``."""
        import torch

        rows, cols, values = self.coo()
        indices = [*_unravel(rows, self.output_shape), *_unravel(cols, self.input_shape)]
        stacked = torch.stack(indices) if indices else rows.new_zeros((0, len(values)))
        return torch.sparse_coo_tensor(stacked, values, self.shape, is_coalesced=True, check_invariants=False)


def _unravel(flat: "torch.Tensor", shape: tuple[int, ...]) -> list["torch.Tensor"]:
    """Flat C-order indices as one index tensor per axis of ``shape`` (none for a scalar)."""
    import torch

    return list(torch.unravel_index(flat, shape)) if shape else []


@dataclass(frozen=True)
class JacobianBlock(Block):
    """∂output/∂input for one input: a dense tensor shaped ``output.shape + input.shape``.

    Its ``nnz`` counts the nonzero values (what a sparse copy would store); its
    ``output_shape``/``input_shape`` split needs the input's number of axes, so they are not
    known from the tensor alone and dense callers use ``shape``.
    """

    input: str
    values: "torch.Tensor"
    layout: ClassVar[str] = "dense"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    @property
    def nnz(self) -> int:
        import torch

        return int(torch.count_nonzero(self.values))

    def coo(self) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
        raise TypeError("a dense block does not know where its output axes end; use coo_for(input_shape)")

    def coo_for(self, input_shape: tuple[int, ...]) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
        """``coo()`` of the nonzero entries, given the input's shape (which splits ``shape``)."""
        columns = math.prod(input_shape)
        matrix = self.values.reshape(-1, columns) if columns else self.values.reshape(math.prod(self.shape), 0)
        rows, cols = matrix.nonzero(as_tuple=True)
        return rows, cols, matrix[rows, cols]

    def to_dense(self) -> "torch.Tensor":
        """The block as one dense tensor."""
        return self.values


@dataclass(frozen=True)
class DiagonalBlock(Block):
    """A Jacobian that is zero off its diagonal: ∂y[m...]/∂x[i...] = 0 unless (m...) = (i...).

    Only for an output shaped like the input. ``diagonal[i...]`` is ∂y[i...]/∂x[i...], a tensor
    shaped like the output; the dense block (``to_dense()``) is that many times larger.

    Example:
        >>> import torch
        >>> block = DiagonalBlock("x", torch.tensor([4.0, 2.0]), (2,), (2,))
        >>> block.shape, block.nnz, block.to_dense().tolist()
        ((2, 2), 2, [[4.0, 0.0], [0.0, 2.0]])
    """

    input: str
    diagonal: "torch.Tensor"
    output_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    layout: ClassVar[str] = "diagonal"

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_shape", tuple(self.output_shape))
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        if not (self.output_shape == self.input_shape == tuple(self.diagonal.shape)):
            raise ValueError(
                f"DiagonalBlock({self.input!r}): the diagonal {tuple(self.diagonal.shape)}, output "
                f"{self.output_shape} and input {self.input_shape} must have one shape"
            )

    @property
    def nnz(self) -> int:
        return self.diagonal.numel()

    def coo(self) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
        import torch

        flat = torch.arange(self.diagonal.numel(), device=self.diagonal.device)
        return flat, flat.clone(), self.diagonal.reshape(-1)

    def to_dense(self) -> "torch.Tensor":
        """The dense block: ``numel²`` entries, so only for small results or when asked."""
        import torch

        return torch.diag(self.diagonal.reshape(-1)).reshape(self.shape)


@dataclass(frozen=True)
class SparseBlock(Block):
    """A Jacobian stored as its nonzeros: COO over flat C-order indices.

    ``rows[k]`` is the flat index into the output, ``cols[k]`` into the input, ``values[k]``
    the entry ∂y.flat[rows[k]]/∂x.flat[cols[k]]. The entries are kept in row-major order, each
    position once (a position given twice is summed, as scipy and torch do). ``colors``: how
    many compressed passes computed it, when known.

    Example:
        >>> import torch
        >>> block = SparseBlock("x", torch.tensor([1, 0]), torch.tensor([0, 2]), torch.tensor([5.0, 7.0]), (2,), (3,))
        >>> block.rows.tolist(), block.cols.tolist(), block.nnz, block.to_dense().tolist()
        ([0, 1], [2, 0], 2, [[0.0, 0.0, 7.0], [5.0, 0.0, 0.0]])
    """

    input: str
    rows: "torch.Tensor"
    cols: "torch.Tensor"
    values: "torch.Tensor"
    output_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    colors: int | None = None
    layout: ClassVar[str] = "sparse"

    def __post_init__(self) -> None:
        import torch

        object.__setattr__(self, "output_shape", tuple(self.output_shape))
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        if not (self.rows.dim() == self.cols.dim() == self.values.dim() == 1
                and len(self.rows) == len(self.cols) == len(self.values)):
            raise ValueError(f"SparseBlock({self.input!r}): rows, cols and values must be 1-D and of one length")
        rows, cols = self.rows.to(torch.int64), self.cols.to(torch.int64)
        columns = math.prod(self.input_shape)
        if len(rows) and (rows.min() < 0 or rows.max() >= math.prod(self.output_shape)
                          or cols.min() < 0 or cols.max() >= columns):
            raise ValueError(f"SparseBlock({self.input!r}): an index lies outside {self.output_shape} + {self.input_shape}")
        # NOTE [row-major COO]: one canonical order makes every writer (plain, JSON, .npz, .pt)
        # deterministic and lets torch take the tensor as coalesced without checking it.
        flat = rows * columns + cols
        if len(flat) > 1 and not bool((flat[1:] > flat[:-1]).all()):
            unique, inverse = torch.unique(flat, sorted=True, return_inverse=True)
            values = self.values.new_zeros(len(unique)).index_add_(0, inverse, self.values)
            rows, cols = unique // columns, unique % columns
            object.__setattr__(self, "values", values)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "cols", cols)

    @property
    def nnz(self) -> int:
        return len(self.values)

    def coo(self) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
        return self.rows, self.cols, self.values

    def to_dense(self) -> "torch.Tensor":
        """The dense block, zeros where nothing is stored."""
        dense = self.values.new_zeros((math.prod(self.output_shape), math.prod(self.input_shape)))
        dense[self.rows, self.cols] = self.values
        return dense.reshape(self.shape)


def output_symbol(names: Any) -> str:
    """The output's name in labels and views: ``y``, as in ``y.backward(v)``, unless an input is
    called ``y``; then the first of f, g, h, out, out2, ... that no input is called."""
    taken = set(names)
    candidates = itertools.chain(("y", "f", "g", "h", "out"), (f"out{k}" for k in itertools.count(2)))
    return next(name for name in candidates if name not in taken)


class Labels(Sequence[str]):
    """The labels of a matrix's rows or columns, made on demand (there may be millions): one per
    element of each named part, parts side by side, each in flat C order: ``r``, ``x[0]``,
    ``A[1,0]``.

    Example:
        >>> labels = Labels([("r", ()), ("x", (2,))])
        >>> list(labels), len(labels), labels.summary()
        (['r', 'x[0]', 'x[1]'], 3, 'r, x[0]..x[1]')
    """

    def __init__(self, parts: Sequence[tuple[str, Sequence[int]]]) -> None:
        self.parts = [(name, tuple(shape)) for name, shape in parts]
        self.offsets = [0]
        for _, shape in self.parts:
            self.offsets.append(self.offsets[-1] + math.prod(shape))

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        part = bisect.bisect_right(self.offsets, index) - 1
        name, shape = self.parts[part]
        return _label(name, shape, index - self.offsets[part])

    def __iter__(self) -> Iterator[str]:
        for name, shape in self.parts:
            if not shape:
                yield name
                continue
            for index in itertools.product(*(range(n) for n in shape)):
                yield f"{name}[{','.join(map(str, index))}]"

    def __repr__(self) -> str:
        return f"Labels({len(self):,}: {self.summary()})"

    def summary(self, most: int = 8) -> str:
        """Each part as its name (a scalar), its only element, or its first and last labels; of
        more than ``most`` parts, the first and last few around "…" (1,600 scalar inputs)."""
        parts = list(self.parts)
        if len(parts) > most:
            parts = parts[: most // 2] + [("…", None)] + parts[-(most // 2 - 1):]
        texts = []
        for name, shape in parts:
            if shape is None:
                texts.append(f"… {len(self.parts) - most + 1:,} more …")
                continue
            size = math.prod(shape)
            if size == 0:
                texts.append(f"{name} (empty)")
            elif size == 1:
                texts.append(_label(name, shape, 0))
            else:
                texts.append(f"{_label(name, shape, 0)}..{_label(name, shape, size - 1)}")
        return ", ".join(texts)


def _label(name: str, shape: tuple[int, ...], flat: int) -> str:
    if not shape:
        return name
    index = []
    for n in reversed(shape):
        flat, i = divmod(flat, n)
        index.append(i)
    return f"{name}[{','.join(map(str, reversed(index)))}]"


@dataclass(frozen=True)
class Matrix:
    """The classic matrix of a Jacobian (or Hessian): one row per output element, one column per
    input element, the inputs side by side in ``wrt`` order, each flattened in C order.

    It is assembled from the blocks on demand, never stored twice: ``row_slices`` gives dense
    rows a few at a time (for writers), ``coo`` the stored entries of a structured one, and
    ``to_dense``/``to_sparse_coo`` the whole matrix as one tensor.

    Attributes:
        rows, columns: the labels (``y[0]``, ``r``, ``x[1,2]``).
        pieces: each input's block, with the input's shape, in column order.
        layout: ``dense`` when every block is dense, else ``sparse`` (stored as COO).

    Example:
        >>> import jacli
        >>> matrix = jacli.compute_jacobian("[r*t, r + t**2]", {"r": 2.0, "t": 3.0}).matrix()
        >>> list(matrix.rows), list(matrix.columns), matrix.to_dense().tolist()
        (['y[0]', 'y[1]'], ['r', 't'], [[3.0, 2.0], [1.0, 6.0]])
    """

    rows: Labels
    columns: Labels
    pieces: tuple[tuple[Block, tuple[int, ...]], ...]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.columns)

    @property
    def layout(self) -> str:
        return "dense" if all(block.layout == "dense" for block, _ in self.pieces) else "sparse"

    @property
    def nnz(self) -> int:
        """Stored entries: every entry of a dense matrix, the stored ones of a structured one."""
        return math.prod(self.shape) if self.layout == "dense" else len(self.coo()[2])

    def _flat(self, block: Block, input_shape: tuple[int, ...]) -> "torch.Tensor":
        return block.to_dense().reshape(self.shape[0], math.prod(input_shape))

    def row_slices(self, rows_per_slice: int) -> Iterator["torch.Tensor"]:
        """Consecutive dense rows, ``rows_per_slice`` at a time (a dense matrix only): the
        writers' way to stream a matrix without a second copy of the Jacobian."""
        import torch

        flats = [self._flat(block, shape) for block, shape in self.pieces]
        for start in range(0, self.shape[0], max(1, rows_per_slice)):
            stop = start + max(1, rows_per_slice)
            parts = [flat[start:stop] for flat in flats]
            yield parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def coo(self) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
        """``(rows, cols, values)`` of the stored entries (the nonzeros of a dense block), in
        row-major order: ``scipy.sparse.coo_matrix((values, (rows, cols)), shape)`` is the matrix."""
        import torch

        rows, cols, values = [], [], []
        for (block, shape), offset in zip(self.pieces, self.columns.offsets):
            r, c, v = block.coo_for(shape) if block.layout == "dense" else block.coo()
            rows.append(r)
            cols.append(c + offset)
            values.append(v)
        if len(self.pieces) == 1:
            return rows[0], cols[0], values[0]
        r, c, v = torch.cat(rows), torch.cat(cols), torch.cat(values)
        order = torch.argsort(r * self.shape[1] + c, stable=True)
        return r[order], c[order], v[order]

    def to_dense(self) -> "torch.Tensor":
        """The matrix as one dense tensor (a view of the block when there is one dense block)."""
        if self.layout == "dense":
            return next(self.row_slices(self.shape[0] or 1)) if self.shape[0] else self._empty()
        rows, cols, values = self.coo()
        dense = values.new_zeros(self.shape)
        dense[rows, cols] = values
        return dense

    def _empty(self) -> "torch.Tensor":
        block = self.pieces[0][0].to_dense() if self.pieces else None
        import torch

        return torch.zeros(self.shape, dtype=block.dtype if block is not None else torch.float64)

    def to_sparse_coo(self) -> "torch.Tensor":
        """The matrix as a 2-D torch sparse COO tensor (coalesced)."""
        import torch

        rows, cols, values = self.coo()
        return torch.sparse_coo_tensor(
            torch.stack([rows, cols]), values, self.shape, is_coalesced=True, check_invariants=False
        )


class _OfProblem:
    """What a result reads off the problem it answers (``self.problem``)."""

    problem: "Problem"

    @property
    def expression(self) -> str:
        return self.problem.expression

    @property
    def variables(self) -> tuple[str, ...]:
        return self.problem.variables

    @property
    def wrt(self) -> tuple[str, ...]:
        return self.problem.wrt

    @property
    def inputs(self) -> dict[str, "torch.Tensor"]:
        return self.problem.inputs

    @property
    def device(self) -> str:
        return str(self.problem.device)

    @property
    def dtype(self) -> str:
        return str(self.problem.dtype).replace("torch.", "")


@dataclass
class Result(_OfProblem):
    """What every command's result shares.

    Attributes:
        problem: the problem it answers (expression, inputs, wrt, device, dtype).
        method: the method that ran (never ``auto``).
        output: the expression's value at the inputs.
    """

    command: ClassVar[str] = ""

    problem: "Problem" = field(repr=False)
    method: str
    output: "torch.Tensor"

    @property
    def tree(self) -> Any:
        return self.problem.compiled.tree

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        """Each computed tensor with its key, in order (what plain, JSON and files write)."""
        raise NotImplementedError


@dataclass
class JacobianResult(Result):
    """The Jacobian: one block per input in ``wrt``.

    Attributes:
        symbolic: input name → exact derivative entries (numpy object arrays of SymPy
            expressions), when asked for.
        diagonal: for elementwise expressions, input name → the one scalar derivative on the
            diagonal (with ``symbolic``).
        det, det_symbolic: the Jacobian determinant (``det=True``) and its exact form.
        how: how the blocks were computed, when it is more than ``method`` says (e.g.
            ``"diagonal: 1 VJP"``, ``"sparse: 3 colours"``).
        as_matrix: whether the renderers write the classic matrix (``matrix()``) instead of
            the blocks.
    """

    command: ClassVar[str] = "jacobian"

    blocks: dict[str, Block] = field(default_factory=dict)
    symbolic: dict[str, Any] | None = field(default=None, repr=False)
    diagonal: dict[str, Any] | None = field(default=None, repr=False)
    det: Any = None
    det_symbolic: Any = field(default=None, repr=False)
    how: str | None = None
    as_matrix: bool = False

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        for name, block in self.blocks.items():
            yield name, block.to_dense()

    def matrix(self) -> Matrix:
        """The classic m×n matrix: row ``i`` is output element ``i`` (flat), the columns are the
        ``wrt`` inputs' elements side by side; ``∂y.flat[i]/∂x.flat[j]`` is in column
        ``offset(x) + j``."""
        y = output_symbol(self.inputs)
        rows = Labels([(y, tuple(self.output.shape))])
        shapes = {name: tuple(self.inputs[name].shape) for name in self.blocks}
        columns = Labels(list(shapes.items()))
        return Matrix(rows, columns, tuple((block, shapes[name]) for name, block in self.blocks.items()))


@dataclass
class VJPResult(Result):
    """vᵀJ per input: what ``y.backward(v)`` leaves in ``x.grad``; ``v`` is shaped like the output."""

    command: ClassVar[str] = "vjp"

    grads: dict[str, "torch.Tensor"] = field(default_factory=dict)
    v: Any = None

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        yield from self.grads.items()


@dataclass
class GradResult(Result):
    """The gradient of a single-element output, per input; ``symbolic`` as for the Jacobian."""

    command: ClassVar[str] = "grad"

    grads: dict[str, "torch.Tensor"] = field(default_factory=dict)
    symbolic: dict[str, Any] | None = field(default=None, repr=False)

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        yield from self.grads.items()


@dataclass
class JVPResult(Result):
    """J·u, shaped like the output; ``directions`` holds u, input name → tensor."""

    command: ClassVar[str] = "jvp"

    value: Any = None
    directions: dict[str, "torch.Tensor"] = field(default_factory=dict)

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        yield None, self.value


class HessianBlocks(collections.abc.Mapping):
    """A Hessian's blocks, ``(a, b)`` → ∂²y/∂a∂b shaped ``a.shape + b.shape``, each made on
    demand as a view into the one n × n matrix (k inputs have k² blocks: 1,600 scalars would be
    2.56 million tensors held at once).

    Example:
        >>> import torch
        >>> blocks = HessianBlocks(torch.tensor([[0.0, 4.0], [4.0, 2.0]]), [("a", ()), ("b", ())])
        >>> list(blocks), blocks["a", "b"].item()
        ([('a', 'a'), ('a', 'b'), ('b', 'a'), ('b', 'b')], 4.0)
    """

    def __init__(self, matrix: "torch.Tensor", parts: Sequence[tuple[str, Sequence[int]]]) -> None:
        self.matrix = matrix
        self.parts: dict[str, tuple[tuple[int, ...], int, int]] = {}
        """name → (shape, first row, row after the last) of its rows and columns in ``matrix``."""
        start = 0
        for name, shape in parts:
            size = math.prod(shape)
            self.parts[name] = (tuple(shape), start, start + size)
            start += size

    def __getitem__(self, key: tuple[str, str]) -> "torch.Tensor":
        try:
            a, b = key
            (shape_a, a0, a1), (shape_b, b0, b1) = self.parts[a], self.parts[b]
        except (KeyError, TypeError, ValueError):
            raise KeyError(key) from None
        return self.matrix[a0:a1, b0:b1].reshape(shape_a + shape_b)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((a, b) for a in self.parts for b in self.parts)

    def __len__(self) -> int:
        return len(self.parts) ** 2

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 2 and key[0] in self.parts and key[1] in self.parts

    def locate(self, row: int, column: int) -> tuple[tuple[str, str], tuple[int, ...]]:
        """The block and the index within it of the matrix entry at ``(row, column)``."""
        index: list[int] = []
        names = []
        for flat in (row, column):
            for name, (shape, start, stop) in self.parts.items():
                if start <= flat < stop:
                    names.append(name)
                    index += _unravel_int(flat - start, shape)
                    break
        return (names[0], names[1]), tuple(index)


def _unravel_int(flat: int, shape: tuple[int, ...]) -> list[int]:
    """A flat C-order index as one index per axis of ``shape`` (none for a scalar)."""
    index = []
    for n in reversed(shape):
        flat, i = divmod(flat, n)
        index.append(i)
    return index[::-1]


@dataclass
class HessianResult(Result):
    """The Hessian of a single-element output, held as one n × n matrix.

    Attributes:
        values: the matrix: the ``wrt`` inputs flattened (C order) and side by side, as rows and
            as columns: ∂²y/∂a.flat[i]∂b.flat[j] is at (offset(a) + i, offset(b) + j).
        blocks: ``(a, b)`` → block shaped ``a.shape + b.shape``, views into ``values`` made on
            demand (``HessianBlocks``). Given as a dict instead (the exact method builds its
            blocks one by one), the matrix is assembled from it.
    """

    command: ClassVar[str] = "hessian"

    blocks: Mapping[tuple[str, str], "torch.Tensor"] = field(default_factory=dict)
    symbolic: dict[tuple[str, str], Any] | None = field(default=None, repr=False)
    as_matrix: bool = False
    values: "torch.Tensor | None" = field(default=None, repr=False)
    order: Sequence[str] | None = field(default=None, repr=False)
    """The inputs' order as rows and columns (``wrt`` as the user gave it); default ``wrt``."""

    def __post_init__(self) -> None:
        import torch

        names = tuple(self.order or self.wrt)
        parts = [(name, tuple(self.inputs[name].shape)) for name in names]
        sizes = {name: math.prod(shape) for name, shape in parts}
        if self.values is None:
            rows = [torch.cat([self.blocks[a, b].reshape(sizes[a], sizes[b]) for b in names], dim=1) for a in names]
            self.values = torch.cat(rows) if rows else self.output.new_zeros((0, 0))
        elif names != tuple(self.wrt):  # the engine's matrix is in wrt's order: move its segments
            starts = dict(zip(self.wrt, itertools.accumulate((sizes[n] for n in self.wrt), initial=0)))
            index = torch.cat([torch.arange(starts[n], starts[n] + sizes[n]) for n in names]).to(self.values.device)
            self.values = self.values[index][:, index]
        self.blocks = HessianBlocks(self.values, parts)

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        yield from self.blocks.items()

    def matrix(self) -> Matrix:
        """The n×n Hessian matrix: rows and columns are the ``wrt`` inputs' elements side by
        side, ``∂²y/∂a.flat[i]∂b.flat[j]`` at row ``offset(a) + i``, column ``offset(b) + j``."""
        names = tuple(self.order or self.wrt)
        labels = Labels([(name, tuple(self.inputs[name].shape)) for name in names])
        return Matrix(labels, labels, ((JacobianBlock("hessian", self.values), (len(labels),)),))


@dataclass
class HVPResult(Result):
    """H·u per input, shaped like the input; ``directions`` holds u."""

    command: ClassVar[str] = "hvp"

    grads: dict[str, "torch.Tensor"] = field(default_factory=dict)
    directions: dict[str, "torch.Tensor"] = field(default_factory=dict)

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        yield from self.grads.items()


@dataclass
class PointsResult(_OfProblem):
    """One result per point, computed together (``batch_axis``): every tensor has the points on
    its leading axis, ``(points,) + `` what one point's result holds.

    Attributes:
        command: ``jacobian``, ``vjp``, ``grad`` or ``jvp``.
        problem: the problem with the whole inputs (``problem.batch`` says which hold points).
        method: the method that ran for each point.
        output: ``(points,) + output.shape``.
        values: key → ``(points,) + `` one point's result shape (a Jacobian block:
            ``output.shape + input.shape``; a VJP or gradient: the input's shape; J·u: ``None`` →
            the output's shape).
        how: how the points were computed.
        v: a VJP's v (one per point, or shared), or None.
        directions: jvp's directions, input name → tensor (one per point, or shared).
        v_batched, directions_batched: whether v, or each direction, has one per point.
    """

    command: str
    problem: "Problem" = field(repr=False)
    method: str
    output: "torch.Tensor"
    values: dict[Key, "torch.Tensor"] = field(default_factory=dict)
    how: str | None = None
    v: Any = None
    v_batched: bool = False
    directions: dict[str, "torch.Tensor"] = field(default_factory=dict)
    directions_batched: dict[str, bool] = field(default_factory=dict)
    symbolic: Any = None
    det: Any = None
    as_matrix: bool = False
    matrix_asked: bool = False
    """``matrix=True`` was asked: the renderers also write each point's classic matrix."""

    @property
    def points(self) -> int:
        return self.problem.batch.size

    @property
    def batch(self) -> Any:
        return self.problem.batch

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        """Each result with its key, the points on the leading axis."""
        yield from self.values.items()

    def matrices(self) -> tuple["torch.Tensor", Labels, Labels]:
        """Each point's classic matrix, ``(points, output size, inputs' size)``, with the row and
        column labels of one point's (a Jacobian only)."""
        import torch

        one = self.point(0).matrix()
        size, rows = self.points, one.shape[0]
        whole = torch.cat([value.reshape(size, rows, -1) for value in self.values.values()], dim=2)
        return whole, one.rows, one.columns

    def point_inputs(self, index: int) -> dict[str, "torch.Tensor"]:
        """The inputs at point ``index``: the batched ones sliced, the shared ones as they are."""
        axes = self.batch.axes
        return {name: t.select(axes[name], index) if name in axes else t for name, t in self.inputs.items()}

    def point(self, index: int, given: Mapping[str, str] | None = None) -> Result:
        """The result at point ``index``, as the command computes it for that point alone
        (``given``: how each input was written for it, for the renderers).

        Example:
            >>> import jacli
            >>> result = jacli.compute_jacobian("x**2", {"x": [[1.0], [2.0]]}, batch_axis=0)
            >>> result.point(1).blocks["x"].to_dense().tolist()
            [[4.0]]
        """
        import dataclasses

        from jacli.problem import spec_text

        inputs = self.point_inputs(index)
        if given is None:
            given = {name: spec_text(None, t) if name in self.batch.axes else self.problem.given.get(name, "")
                     for name, t in inputs.items()}
        problem = dataclasses.replace(self.problem, inputs=inputs, given=dict(given), batch=None)
        output = self.output[index]
        if self.command == "jacobian":
            blocks = {name: JacobianBlock(name, value[index]) for name, value in self.values.items()}
            return JacobianResult(problem, self.method, output, blocks=blocks, how=self.how, as_matrix=self.as_matrix)
        if self.command == "vjp":
            v = self.v[index] if self.v_batched else self.v
            return VJPResult(problem, self.method, output, grads={k: t[index] for k, t in self.values.items()}, v=v)
        if self.command == "grad":
            return GradResult(problem, self.method, output, grads={k: t[index] for k, t in self.values.items()})
        directions = {name: t[index] if self.directions_batched.get(name) else t for name, t in self.directions.items()}
        return JVPResult(problem, self.method, output, value=self.values[None][index], directions=directions)


@dataclass
class MethodCheck:
    """One method's agreement with the reference.

    Attributes:
        method: e.g. ``"forward"``, ``"finite differences"``.
        max_abs, max_rel: the largest absolute and relative differences from the reference, over
            the entries finite in both (NaN when there are none, or when skipped).
        ok: every entry finite and within ``atol + rtol * |reference|`` (or excused at a kink).
        note: why a method was skipped, or why it failed or was excused where it was.
        nonfinite: where this method's Jacobian is NaN or infinite, e.g. ``"nan at dy/dx[1, 0]"``.
        excused: the input elements (``"x[1]"``) whose finite-difference columns differ across a kink.
    """

    method: str
    max_abs: float = math.nan
    max_rel: float = math.nan
    ok: bool = True
    note: str = ""
    skipped: bool = False
    nonfinite: list[str] = field(default_factory=list)
    excused: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    """What ``check`` found; ``ok`` is what the exit code says."""

    expression: str
    reference: str
    rtol: float
    atol: float
    inputs: dict[str, tuple[int, ...]]
    output_shape: tuple[int, ...]
    methods: list[MethodCheck] = field(default_factory=list)
    kinks: list[str] = field(default_factory=list)
    singular: list[str] = field(default_factory=list)
    """Where the reference is NaN or infinite: the derivative has a singularity there."""

    @property
    def ok(self) -> bool:
        return not self.singular and all(m.ok for m in self.methods)

    @property
    def verdict(self) -> str:
        """``"agree"``, ``"singular"`` (the reference is not finite) or ``"mismatch"``."""
        if self.singular:
            return "singular"
        return "agree" if self.ok else "mismatch"


def key_text(key: Key) -> str:
    """A key as text: ``x``, ``a,b`` (a Hessian pair), ``output`` (J·u)."""
    if key is None:
        return "output"
    return ",".join(key) if isinstance(key, tuple) else key
