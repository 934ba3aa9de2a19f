"""The Jacobian's sparsity pattern, read exactly from the formula before anything runs.

For each input named in ``wrt``, ``patterns`` walks the SymPy tree (the same walk as
``jacli.shapes``) and gives every node the set of input elements each of its elements may depend
on. How a function moves dependencies is a field of the function table (``sparsity``), as its
shape rule is; the rules themselves live here, written with four primitives on CSR patterns:

* ``gather``: each output element is one operand element (broadcasting, indexing, transposing);
  the operand's rows are copied, O(output size + nnz).
* ``union``: several operands of one shape, row by row (elementwise functions, ``+ - * / **``).
* ``collect``: several operand elements fold into one output element (reductions).
* ``stack``: rows one after another (the list literal ``[a, b]``).

The pattern is global and conservative: it holds for every input value, so a dependency the
Jacobian has anywhere is in it. It ignores values (``x - x`` keeps its diagonal; ``A @ x``
depends on all of ``x`` even where a row of ``A`` happens to be zero).

Cost follows the pattern, never its bitmap: an elementwise expression of a million elements is a
million-entry diagonal. A pattern whose entries would pass ``max_nnz``, or that has every entry,
is kept as dense (``indptr`` None) and never spelled out.

Example:
    >>> from jacli.parse import parse
    >>> tridiagonal = parse("x[:-2] - 2*x[1:-1] + x[2:]").tree
    >>> p = patterns(tridiagonal, {"x": (5,)}, ["x"])["x"]
    >>> p.indptr.tolist(), p.indices.tolist()
    ([0, 3, 6, 9], [0, 1, 2, 1, 2, 3, 2, 3, 4])
    >>> patterns(parse("sin(x) * y").tree, {"x": (4,), "y": ()}, ["x", "y"])["y"].is_dense
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import sympy as sp

from jacli import nodes

Shape = tuple[int, ...]

DEFAULT_MAX_NNZ = 50_000_000
"""Past this many entries (400 MB of column indices) a pattern is kept as dense."""


@dataclass(frozen=True, eq=False)
class Pattern:
    """Which elements of one input each output element may depend on (flat, C-order indices).

    Attributes:
        output_shape: the expression's (or sub-expression's) shape.
        input_shape: the input's shape.
        indptr: CSR over output rows (int64, ``output_size + 1`` long); None for dense, where
            every output element may depend on every input element.
        indices: the input columns of each row, sorted and unique within a row; None for dense.

    Example:
        >>> p = Pattern.identity((3,))
        >>> p.is_diagonal, p.nnz, p.rows().tolist(), p.cols().tolist()
        (True, 3, [0, 1, 2], [0, 1, 2])
    """

    output_shape: Shape
    input_shape: Shape
    indptr: np.ndarray | None
    indices: np.ndarray | None

    @classmethod
    def identity(cls, shape: Shape) -> Pattern:
        """An input with respect to itself: element i depends on element i."""
        size = math.prod(shape)
        return cls(tuple(shape), tuple(shape), np.arange(size + 1, dtype=np.int64), np.arange(size, dtype=np.int64))

    @classmethod
    def zero(cls, output_shape: Shape, input_shape: Shape) -> Pattern:
        """No output element depends on the input."""
        return cls(
            tuple(output_shape), tuple(input_shape),
            np.zeros(math.prod(output_shape) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64),
        )

    @classmethod
    def dense(cls, output_shape: Shape, input_shape: Shape) -> Pattern:
        """Every output element may depend on every input element."""
        return cls(tuple(output_shape), tuple(input_shape), None, None)

    @property
    def output_size(self) -> int:
        return math.prod(self.output_shape)

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    @property
    def is_dense(self) -> bool:
        return self.indptr is None

    @property
    def nnz(self) -> int:
        """How many (output, input) pairs may be nonzero."""
        if self.indptr is None:
            return self.output_size * self.input_size
        return int(self.indptr[-1])

    @property
    def is_zero(self) -> bool:
        return self.nnz == 0

    @property
    def is_diagonal(self) -> bool:
        """Square, and output element i depends on input element i alone (an elementwise map)."""
        n = self.output_size
        if n != self.input_size:
            return False
        if self.indptr is None:
            return n <= 1
        return bool(
            self.nnz == n
            and np.array_equal(self.indptr, np.arange(n + 1))
            and np.array_equal(self.indices, np.arange(n))
        )

    def row_counts(self) -> np.ndarray:
        """How many input elements each output element may depend on."""
        if self.indptr is None:
            return np.full(self.output_size, self.input_size, dtype=np.int64)
        return np.diff(self.indptr)

    def rows(self) -> np.ndarray:
        """The output (row) index of each entry, in CSR order (not for dense patterns)."""
        self._sparse("rows")
        return np.repeat(np.arange(self.output_size, dtype=np.int64), np.diff(self.indptr))

    def cols(self) -> np.ndarray:
        """The input (column) index of each entry, in CSR order (not for dense patterns)."""
        self._sparse("cols")
        return self.indices

    def bandwidth(self) -> tuple[int, int]:
        """(lower, upper): how far below and above the diagonal entries reach (flat indices)."""
        self._sparse("bandwidth")
        if not self.nnz:
            return (0, 0)
        offset = self.cols() - self.rows()
        return (max(0, int(-offset.min())), max(0, int(offset.max())))

    def to_mask(self) -> np.ndarray:
        """The pattern as an ``output_size x input_size`` boolean array (for tests and small cases)."""
        mask = np.zeros((self.output_size, self.input_size), dtype=bool)
        if self.indptr is None:
            mask[:] = True
        else:
            mask[self.rows(), self.cols()] = True
        return mask

    def _sparse(self, what: str) -> None:
        if self.indptr is None:
            raise ValueError(f"Pattern.{what}: a dense pattern has no entry list; check is_dense first")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pattern):
            return NotImplemented
        if (self.output_shape, self.input_shape) != (other.output_shape, other.input_shape):
            return False
        if self.is_dense or other.is_dense:
            return self.is_dense == other.is_dense
        return np.array_equal(self.indptr, other.indptr) and np.array_equal(self.indices, other.indices)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        kind = "dense" if self.is_dense else f"nnz={self.nnz}"
        return f"Pattern(output_shape={self.output_shape}, input_shape={self.input_shape}, {kind})"


def patterns(
    tree: sp.Basic, shapes: Mapping[str, Shape], wrt: Sequence[str], *, max_nnz: int = DEFAULT_MAX_NNZ
) -> dict[str, Pattern]:
    """The sparsity pattern of the Jacobian of ``tree`` with respect to each input in ``wrt``.

    Args:
        tree: a parsed expression (``jacli.parse.parse(text).tree``).
        shapes: the shape of every input the tree uses.
        wrt: the inputs to differentiate with respect to.
        max_nnz: past this many entries a pattern is kept as dense rather than listed.

    Returns:
        One ``Pattern`` per name in ``wrt``: rows are the output's elements, columns the input's.

    Raises:
        ShapeError: the inputs' shapes do not fit the expression (named as ``jacli.shapes`` does).

    Example:
        >>> from jacli.parse import parse
        >>> patterns(parse("(x + 1)**2").tree, {"x": (4,)}, ["x"])["x"].is_diagonal
        True
    """
    from jacli.shapes import infer

    missing = [name for name in wrt if name not in shapes]
    if missing:
        raise ValueError(f"patterns: `wrt` names {', '.join(missing)}, which `shapes` does not give a shape")
    infer(tree, shapes)  # a mismatch is a ShapeError naming the sub-expression, before any work
    result = {}
    for name in dict.fromkeys(wrt):
        context = Context(tuple(shapes[name]), max_nnz)
        shape, pattern = _Walker(shapes, name, context).walk(tree)
        result[name] = pattern if pattern is not None else Pattern.zero(shape, context.input_shape)
    return result


class Operand(NamedTuple):
    """An operand as a sparsity rule sees it: its shape, and its pattern (None: no dependence)."""

    shape: Shape
    pattern: Pattern | None


class _Walker:
    """Patterns of every node with respect to one input; a shared sub-expression is read once."""

    def __init__(self, shapes: Mapping[str, Shape], name: str, context: Context):
        self.shapes, self.name, self.context = shapes, name, context
        self.seen: dict[sp.Basic, Operand] = {}

    def walk(self, tree: sp.Basic) -> Operand:
        if isinstance(tree, (sp.Number, sp.NumberSymbol)) or not (tree.args or isinstance(tree, sp.Symbol)):
            return Operand((), None)
        known = self.seen.get(tree)
        if known is None:
            known = self.seen[tree] = self._node(tree)
        return known

    def _node(self, tree: sp.Basic) -> Operand:
        from jacli.functions import BY_NODE
        from jacli.shapes import broadcast

        context = self.context
        if isinstance(tree, sp.Symbol):
            shape = tuple(self.shapes[tree.name])
            if tree.name != self.name:
                return Operand(shape, None)
            identity = Pattern.identity(shape)
            return Operand(shape, context.finish(shape, identity.indptr, identity.indices))  # 1 x 1: dense
        if isinstance(tree, nodes.Index):
            operand = self.walk(tree.args[0])
            taken = _positions(operand.shape)[tree.key()]
            return Operand(taken.shape, context.gather(operand, taken.reshape(-1), taken.shape))
        if isinstance(tree, (sp.Add, sp.Mul, sp.Pow)):
            operands = [self.walk(arg) for arg in tree.args]
            shape = broadcast([o.shape for o in operands])
            return Operand(shape, elementwise(context, shape, operands))
        if isinstance(tree, nodes.Components):
            operands = [self.walk(arg) for arg in tree.args]
            shape = (len(operands),) + broadcast([o.shape for o in operands])
            return Operand(shape, stack(context, shape, operands))
        entry = BY_NODE.get(tree.func)
        if entry is None:
            raise AssertionError(f"no table entry for {tree.func}")  # a bug: the parser makes only these
        arguments, literals, keywords = entry.arguments(tree.args)
        operands = [self.walk(arg) for arg in arguments]
        shape = entry.shape(*(o.shape for o in operands), *literals, **keywords)
        return Operand(shape, entry.sparsity(context, shape, operands, *literals, **keywords))


# -- the primitives ------------------------------------------------------------------------------


def _positions(shape: Shape) -> np.ndarray:
    """Each element's flat index, laid out in ``shape``: indexing it says which elements go where."""
    return np.arange(math.prod(shape), dtype=np.int64).reshape(shape)


@dataclass(frozen=True)
class Context:
    """What a rule needs besides its operands: the input's shape and the dense threshold."""

    input_shape: Shape
    max_nnz: int = DEFAULT_MAX_NNZ

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    def dense(self, shape: Shape) -> Pattern:
        return Pattern.dense(shape, self.input_shape)

    def finish(self, shape: Shape, indptr: np.ndarray, indices: np.ndarray) -> Pattern:
        """A CSR pattern, or dense when it has every entry or more than ``max_nnz``."""
        nnz = int(indptr[-1])
        full = math.prod(shape) * self.input_size
        if nnz > self.max_nnz or (full and nnz == full):
            return self.dense(shape)
        return Pattern(tuple(shape), self.input_shape, indptr, indices)

    def gather(self, operand: Operand, taken: np.ndarray, shape: Shape) -> Pattern | None:
        """Output element k is operand element ``taken[k]``: the operand's rows, copied. Where
        ``taken[k]`` is -1, element k is a constant and depends on nothing (the zeros of diag(x),
        tril, triu)."""
        pattern = operand.pattern
        if pattern is None:
            return None
        kept = taken >= 0
        masked = not bool(kept.all())
        if pattern.is_dense:
            if not masked:
                return self.dense(shape)
            if int(kept.sum()) * self.input_size > self.max_nnz:
                return self.dense(shape)
            rows = np.repeat(np.flatnonzero(kept), self.input_size)
            cols = np.tile(np.arange(self.input_size, dtype=np.int64), int(kept.sum()))
            return self._from_pairs(shape, rows, cols)
        if masked:
            taken = np.where(kept, taken, 0)
        starts = pattern.indptr[taken]
        counts = pattern.indptr[taken + 1] - starts
        if masked:
            counts = np.where(kept, counts, 0)
        indptr = np.zeros(len(taken) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        if indptr[-1] > self.max_nnz:
            return self.dense(shape)
        # the j-th entry of output row k is entry starts[k] + j of the operand
        source = np.arange(indptr[-1], dtype=np.int64) + np.repeat(starts - indptr[:-1], counts)
        return self.finish(shape, indptr, pattern.indices[source])

    def broadcast(self, operand: Operand, shape: Shape) -> Pattern | None:
        """The operand broadcast to ``shape`` (torch's rule), as a gather."""
        if operand.pattern is None:
            return None
        if tuple(operand.shape) == tuple(shape):
            return operand.pattern
        copies = math.prod(shape) // max(math.prod(operand.shape), 1)  # broadcasting copies evenly
        if operand.pattern.nnz * copies > self.max_nnz:
            return self.dense(shape)  # before making an index map the size of a huge output
        taken = np.broadcast_to(_positions(operand.shape), shape).reshape(-1)
        return self.gather(operand, taken, shape)

    def reshape(self, operand: Operand, shape: Shape) -> Pattern | None:
        """The same elements in C order under another shape: the rows as they are."""
        pattern = operand.pattern
        if pattern is None:
            return None
        return Pattern(tuple(shape), pattern.input_shape, pattern.indptr, pattern.indices)

    def union(self, parts: Sequence[Pattern | None], shape: Shape) -> Pattern | None:
        """Row by row, every column any part has (the parts all have ``shape``)."""
        distinct: list[Pattern] = []
        for part in parts:
            if part is not None and not any(_same_rows(part, seen) for seen in distinct):
                distinct.append(part)
        if not distinct:
            return None
        if any(part.is_dense for part in distinct):
            return self.dense(shape)
        if len(distinct) == 1:
            return distinct[0]
        rows = np.concatenate([part.rows() for part in distinct])
        cols = np.concatenate([part.indices for part in distinct])
        return self._from_pairs(shape, rows, cols)

    def collect(self, operand: Operand, owner: np.ndarray, shape: Shape) -> Pattern | None:
        """Operand element k folds into output element ``owner[k]`` (a reduction)."""
        pattern = operand.pattern
        if pattern is None:
            return None
        if pattern.is_dense:
            return self.dense(shape)
        return self._from_pairs(shape, owner[pattern.rows()], pattern.indices)

    def stack(self, parts: Sequence[Pattern | None], shape: Shape, rows: Sequence[int] | None = None) -> Pattern | None:
        """The parts' rows one after another: each part a block of ``shape[1:]`` (a list literal),
        or of ``rows[i]`` rows (cat, whose parts differ in length)."""
        if all(part is None for part in parts):
            return None
        sizes = rows if rows is not None else [math.prod(shape[1:])] * len(parts)
        if all(part is not None and part.is_dense for part in parts):
            return self.dense(shape)
        spelled = sum(size * self.input_size if part.is_dense else part.nnz
                      for part, size in zip(parts, sizes) if part is not None)
        if spelled > self.max_nnz:
            return self.dense(shape)
        counts, columns = [], []
        for part, size in zip(parts, sizes):
            if part is None:
                counts.append(np.zeros(size, dtype=np.int64))
            elif part.is_dense:  # spelled out: the parts together stay under max_nnz
                counts.append(np.full(size, self.input_size, dtype=np.int64))
                columns.append(np.tile(np.arange(self.input_size, dtype=np.int64), size))
            else:
                counts.append(np.diff(part.indptr))
                columns.append(part.indices)
        indptr = np.zeros(math.prod(shape) + 1, dtype=np.int64)
        np.cumsum(np.concatenate(counts), out=indptr[1:])
        indices = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
        return self.finish(shape, indptr, indices)

    def _from_pairs(self, shape: Shape, rows: np.ndarray, cols: np.ndarray) -> Pattern:
        """CSR from (row, column) pairs, repeats dropped: one sort of row * n + column keys."""
        n = max(self.input_size, 1)
        size = math.prod(shape)
        if size * n < 2**62:
            # NOTE [sorting pairs]: a stable sort (timsort) merges the already sorted runs that
            # unions concatenate in linear time; np.unique would hash first, 20x slower here.
            keys = np.sort(rows * n + cols, kind="stable")
            if len(keys):
                keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
            rows, cols = keys // n, keys % n
        else:  # keys would overflow int64: sort the pairs themselves
            order = np.lexsort((cols, rows))
            rows, cols = rows[order], cols[order]
            keep = np.ones(len(rows), dtype=bool)
            keep[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
            rows, cols = rows[keep], cols[keep]
        indptr = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=size), out=indptr[1:])
        return self.finish(shape, indptr, cols.astype(np.int64, copy=False))


def _same_rows(a: Pattern, b: Pattern) -> bool:
    """The same arrays (``x - x``, or the same operand twice): cheap, by identity only."""
    return a.indptr is b.indptr and a.indices is b.indices


def _fibre_owner(shape: Shape, axis: int | None) -> tuple[np.ndarray, Shape]:
    """For a reduction over all (``axis`` None) or along ``axis``: each element's output element,
    and the output's shape."""
    if axis is None or not shape:
        return np.zeros(math.prod(shape), dtype=np.int64), ()
    axis %= len(shape)
    reduced = shape[:axis] + shape[axis + 1 :]
    owner = np.expand_dims(_positions(reduced), axis)
    return np.broadcast_to(owner, shape).reshape(-1), reduced


# -- the rules the function table names (its ``sparsity`` field) -----------------------------------


def elementwise(context: Context, shape: Shape, operands: Sequence[Operand], *ints: int) -> Pattern | None:
    """Entry by entry after broadcasting: each output element depends on the operand elements
    broadcast onto it (``+ - * / **``, ``sin``, ``max(a, b)``...)."""
    return context.union([context.broadcast(operand, shape) for operand in operands], shape)


def reduction(context: Context, shape: Shape, operands: Sequence[Operand], axis: int | None = None) -> Pattern | None:
    """Over all elements, or along ``axis``: each output element depends on its whole fibre."""
    (operand,) = operands
    owner, _ = _fibre_owner(operand.shape, axis)
    return context.collect(operand, owner, shape)


def along_axis(context: Context, shape: Shape, operands: Sequence[Operand], axis: int | None = None) -> Pattern | None:
    """Same shape, each element depending on its whole fibre (softmax): a reduction, broadcast back."""
    (operand,) = operands
    owner, reduced = _fibre_owner(operand.shape, axis)
    fibres = Operand(reduced, context.collect(operand, owner, reduced))
    return context.gather(fibres, owner, shape)


def dot(context: Context, shape: Shape, operands: Sequence[Operand]) -> Pattern | None:
    """The inner product: everything either vector depends on."""
    return context.union([reduction(context, (), [operand]) for operand in operands], ())


def matmul(context: Context, shape: Shape, operands: Sequence[Operand]) -> Pattern | None:
    """torch.matmul: output (..., i, j) depends on row i of ``a`` and column j of ``b`` (in their
    broadcast batch). The union over k of a[i, k] and b[k, j] is the union of the row's and the
    column's, so no (i, k, j) product is ever made."""
    from jacli.shapes import broadcast

    a, b = operands
    left = (1,) + a.shape if len(a.shape) == 1 else a.shape  # torch's promotion of vectors
    right = b.shape + (1,) if len(b.shape) == 1 else b.shape
    full = broadcast([left[:-2], right[:-2]]) + (left[-2], right[-1])  # ``shape`` before squeezing
    rows_of_a = Operand(left[:-1], reduction(context, a.shape[:-1], [a], -1))
    columns = b.shape[:-2] + b.shape[-1:]
    columns_of_b = Operand(right[:-2] + right[-1:], reduction(context, columns, [b], -2 % len(b.shape)))
    parts = [
        context.gather(rows_of_a, np.broadcast_to(_positions(left[:-1] + (1,)), full).reshape(-1), shape),
        context.gather(columns_of_b, np.broadcast_to(_positions(right[:-2] + (1, right[-1])), full).reshape(-1), shape),
    ]
    return context.union(parts, shape)


def reshape(context: Context, shape: Shape, operands: Sequence[Operand], *sizes: int) -> Pattern | None:
    """The same elements in C order: each row as it was."""
    return context.reshape(operands[0], shape)


def transpose(context: Context, shape: Shape, operands: Sequence[Operand], *dims: int) -> Pattern | None:
    """Axes reversed, or two swapped: a gather of the operand's elements."""
    (operand,) = operands
    positions = _positions(operand.shape)
    moved = positions.transpose() if not dims else np.swapaxes(positions, *dims) if positions.ndim else positions
    return context.gather(operand, moved.reshape(-1), shape)


def stack(context: Context, shape: Shape, operands: Sequence[Operand], axis: int = 0) -> Pattern | None:
    """A list literal: the components broadcast to one shape, one block of rows each; stack's
    ``axis=`` elsewhere: those blocks gathered so the new axis sits at ``axis``."""
    position = axis % len(shape)
    first = (shape[position],) + shape[:position] + shape[position + 1:]
    blocks = context.stack([context.broadcast(operand, first[1:]) for operand in operands], first)
    if position == 0:
        return blocks
    taken = np.moveaxis(_positions(first), 0, position)
    return context.gather(Operand(first, blocks), taken.reshape(-1), shape)


def concatenate(context: Context, shape: Shape, operands: Sequence[Operand], axis: int = 0) -> Pattern | None:
    """cat: each operand's rows, one block after another (a scalar is one row); along another
    axis, those blocks gathered into the joined order."""
    sizes = [math.prod(o.shape) for o in operands]
    if axis % len(shape) == 0:
        return context.stack([o.pattern for o in operands], shape, rows=sizes)
    blocks = Operand((sum(sizes),), context.stack([o.pattern for o in operands], (sum(sizes),), rows=sizes))
    offsets = np.cumsum([0] + sizes[:-1])
    taken = np.concatenate([offset + _positions(o.shape or (1,)) for offset, o in zip(offsets, operands)], axis=axis)
    return context.gather(blocks, taken.reshape(-1), shape)


def constant(context: Context, shape: Shape, operands: Sequence[Operand], *values: object) -> Pattern | None:
    """arange, linspace, ones, zeros, eye: constants, depending on no input."""
    return None


def pad(context: Context, shape: Shape, operands: Sequence[Operand], before: int, after: int, axis: int = -1) -> Pattern | None:
    """Zeros before and after along an axis: a gather, the added elements constant."""
    (operand,) = operands
    widths = [(0, 0)] * len(operand.shape)
    widths[axis % len(operand.shape)] = (before, after)
    taken = np.pad(_positions(operand.shape), widths, constant_values=-1)
    return context.gather(operand, taken.reshape(-1), shape)


def shift(context: Context, shape: Shape, operands: Sequence[Operand], places: int, *axis: int) -> Pattern | None:
    """Moved ``places`` places, zeros coming in: a gather, the vacated elements constant."""
    (operand,) = operands
    positions = _positions(operand.shape)
    moved = positions.reshape(-1) if not axis else np.moveaxis(positions, axis[0], -1)
    n = moved.shape[-1]
    taken = np.full(moved.shape, -1, dtype=np.int64)
    if 0 <= places < n:
        taken[..., places:] = moved[..., : n - places]
    elif -n < places < 0:
        taken[..., : n + places] = moved[..., -places:]
    taken = taken.reshape(operand.shape) if not axis else np.moveaxis(taken, -1, axis[0])
    return context.gather(operand, taken.reshape(-1), shape)


def kron(context: Context, shape: Shape, operands: Sequence[Operand]) -> Pattern | None:
    """kron(a, b): each output element is one element of ``a`` times one of ``b`` (numpy's kron
    of the operands' positions says which)."""
    a, b = operands
    n = len(shape)
    left, right = ((1,) * (n - len(o.shape)) + tuple(o.shape) for o in (a, b))
    taken_a = np.kron(_positions(a.shape).reshape(left), np.ones(right, dtype=np.int64))
    taken_b = np.kron(np.ones(left, dtype=np.int64), _positions(b.shape).reshape(right))
    return context.union(
        [context.gather(a, taken_a.reshape(-1), shape), context.gather(b, taken_b.reshape(-1), shape)], shape
    )


def cross(context: Context, shape: Shape, operands: Sequence[Operand]) -> Pattern | None:
    """cross(a, b)[..., i] = a[..., i+1] b[..., i+2] - a[..., i+2] b[..., i+1] (indices mod 3):
    the other two components of each vector, after broadcasting."""
    parts = []
    for operand in operands:
        spread = Operand(shape, context.broadcast(operand, shape))
        for offset in (-1, -2):
            parts.append(context.gather(spread, np.roll(_positions(shape), offset, axis=-1).reshape(-1), shape))
    return context.union(parts, shape)


def einsum(context: Context, shape: Shape, operands: Sequence[Operand], subscripts: str) -> Pattern | None:
    """einsum: output element (its letters' values) depends on each operand's elements whose
    shared letters have the same values, over every value of the letters summed away. Per
    operand: its diagonal where a letter repeats (a gather), the summed letters collected, then
    broadcast onto the output's letters (a gather); the operands' patterns united."""
    from jacli.shapes import einsum_terms

    terms, output = einsum_terms(subscripts)
    parts = []
    for term, operand in zip(terms, operands):
        if operand.pattern is None:
            continue
        letters = "".join(dict.fromkeys(term))  # each letter once, in order
        diagonal = np.einsum(f"{term}->{letters}", _positions(operand.shape)) if term else _positions(())
        unique = Operand(diagonal.shape, context.gather(operand, diagonal.reshape(-1), diagonal.shape))
        kept = "".join(letter for letter in letters if letter in output)
        kept_shape = tuple(diagonal.shape[letters.index(letter)] for letter in kept)
        reduced_positions = _positions(kept_shape)
        # kept is a subsequence of letters: the reduced positions, with 1s at the summed letters
        owner = reduced_positions.reshape(tuple(n if letter in kept else 1 for letter, n in zip(letters, diagonal.shape)))
        owner = np.broadcast_to(owner, diagonal.shape).reshape(-1)
        reduced = Operand(kept_shape, context.collect(unique, owner, kept_shape))
        order = "".join(letter for letter in output if letter in kept)
        onto = np.einsum(f"{kept}->{order}", reduced_positions) if kept else reduced_positions
        onto = onto.reshape(tuple(n if letter in kept else 1 for letter, n in zip(output, shape)))
        parts.append(context.gather(reduced, np.broadcast_to(onto, shape).reshape(-1), shape))
    return context.union(parts, shape)


def flip(context: Context, shape: Shape, operands: Sequence[Operand], *axis: int) -> Pattern | None:
    """Reversed along every axis, or one: a gather."""
    (operand,) = operands
    positions = _positions(operand.shape)
    moved = np.flip(positions, axis[0] % max(positions.ndim, 1)) if axis and positions.ndim else np.flip(positions)
    return context.gather(operand, np.ascontiguousarray(moved).reshape(-1), shape)


def roll(context: Context, shape: Shape, operands: Sequence[Operand], shift: int, *axis: int) -> Pattern | None:
    """Rolled (numpy's and torch's rule): a gather."""
    (operand,) = operands
    positions = _positions(operand.shape)
    moved = np.roll(positions, shift, axis[0]) if axis and positions.ndim else np.roll(positions, shift)
    return context.gather(operand, moved.reshape(-1), shape)


def prefix(context: Context, shape: Shape, operands: Sequence[Operand], axis: int | None = None) -> Pattern | None:
    """cumsum, cumprod: element i of a fibre depends on elements 0..i of it (over everything, the
    fibre is the flattened operand)."""
    (operand,) = operands
    pattern = operand.pattern
    if pattern is None:
        return None
    if pattern.is_dense:
        return context.dense(shape)
    positions = _positions(operand.shape)
    if axis is None or not operand.shape:
        fibres = positions.reshape(1, -1)
    else:
        position = axis % len(operand.shape)
        fibres = np.moveaxis(positions, position, -1).reshape(-1, operand.shape[position])
    length = fibres.shape[1]
    per_row = max(pattern.nnz // max(math.prod(operand.shape), 1), 1)
    if fibres.shape[0] * length * (length + 1) // 2 * per_row > context.max_nnz:
        return context.dense(shape)
    # output element fibres[f, i] collects operand elements fibres[f, j] for every j <= i
    i, j = np.tril_indices(length)
    owners, sources = fibres[:, i].reshape(-1), fibres[:, j].reshape(-1)
    starts, counts = pattern.indptr[sources], np.diff(pattern.indptr)[sources]
    offsets = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = pattern.indices[np.repeat(starts, counts) + offsets]
    return context._from_pairs(shape, np.repeat(owners, counts), cols)


def difference(context: Context, shape: Shape, operands: Sequence[Operand], axis: int = -1) -> Pattern | None:
    """diff: element i along the axis depends on elements i and i + 1 of the operand."""
    (operand,) = operands
    position = axis % len(operand.shape)
    length = operand.shape[position]
    positions = _positions(operand.shape)
    parts = [
        context.gather(operand, np.take(positions, np.arange(k, k + length - 1), axis=position).reshape(-1), shape)
        for k in (0, 1)
    ]
    return context.union(parts, shape)


def per_matrix(context: Context, shape: Shape, operands: Sequence[Operand]) -> Pattern | None:
    """det, logdet, inv: each output element depends on every element of its own square matrix
    (the last two axes), none of the other matrices of a stack."""
    (operand,) = operands
    batch = operand.shape[:-2]
    owner = np.broadcast_to(_positions(batch)[..., None, None], operand.shape).reshape(-1)
    matrices = Operand(batch, context.collect(operand, owner, batch))
    size = math.prod(shape) // max(math.prod(batch), 1)
    taken = np.repeat(_positions(batch).reshape(-1), size)
    return context.gather(matrices, taken, shape)


def solve(context: Context, shape: Shape, operands: Sequence[Operand]) -> Pattern | None:
    """solve(A, b): every element of A, and the same column of b (all of a vector b)."""
    a, b = operands
    size = math.prod(shape)
    whole_a = context.gather(Operand((), reduction(context, (), [a])), np.zeros(size, dtype=np.int64), shape)
    if len(b.shape) == 1:
        column_of_b = context.gather(Operand((), reduction(context, (), [b])), np.zeros(size, dtype=np.int64), shape)
    else:
        columns = Operand(b.shape[1:], reduction(context, b.shape[1:], [b], 0))
        column_of_b = context.gather(columns, np.tile(np.arange(b.shape[1], dtype=np.int64), b.shape[0]), shape)
    return context.union([whole_a, column_of_b], shape)


def trace(context: Context, shape: Shape, operands: Sequence[Operand]) -> Pattern | None:
    """The sum of the diagonal: the diagonal's elements, collected."""
    (operand,) = operands
    n = min(operand.shape)
    diagonal = Operand((n,), context.gather(operand, np.diagonal(_positions(operand.shape)).copy(), (n,)))
    return context.collect(diagonal, np.zeros(n, dtype=np.int64), ())


def diag(context: Context, shape: Shape, operands: Sequence[Operand]) -> Pattern | None:
    """A vector onto a matrix's diagonal (zeros elsewhere), or a matrix's diagonal: gathers."""
    (operand,) = operands
    if len(operand.shape) == 1:
        n = operand.shape[0]
        taken = np.full((n, n), -1, dtype=np.int64)
        taken[np.arange(n), np.arange(n)] = np.arange(n)
        return context.gather(operand, taken.reshape(-1), shape)
    return context.gather(operand, np.diagonal(_positions(operand.shape)).copy(), shape)


def outer(context: Context, shape: Shape, operands: Sequence[Operand]) -> Pattern | None:
    """outer(a, b)[i, j] = a[i] * b[j]: a's column and b's row, broadcast and united."""
    a, b = operands
    m, n = shape
    left = context.gather(a, np.repeat(np.arange(m, dtype=np.int64), n), shape)
    right = context.gather(b, np.tile(np.arange(n, dtype=np.int64), m), shape)
    return context.union([left, right], shape)


def _triangle(context: Context, shape: Shape, operand: Operand, keep: np.ndarray) -> Pattern | None:
    positions = _positions(operand.shape)
    taken = np.where(np.broadcast_to(keep, operand.shape), positions, -1)
    return context.gather(operand, taken.reshape(-1), shape)


def lower(context: Context, shape: Shape, operands: Sequence[Operand], diagonal: int = 0) -> Pattern | None:
    """tril: the elements on and below the ``diagonal``-th diagonal; zeros above."""
    (operand,) = operands
    m, n = operand.shape[-2:]
    return _triangle(context, shape, operand, np.tril(np.ones((m, n), dtype=bool), diagonal))


def upper(context: Context, shape: Shape, operands: Sequence[Operand], diagonal: int = 0) -> Pattern | None:
    """triu: the elements on and above the ``diagonal``-th diagonal; zeros below."""
    (operand,) = operands
    m, n = operand.shape[-2:]
    return _triangle(context, shape, operand, np.triu(np.ones((m, n), dtype=bool), diagonal))


__all__ = [
    "Context", "Operand", "Pattern", "patterns",
    # the rules (functions.py names them in each entry's ``sparsity``)
    "along_axis", "concatenate", "constant", "cross", "diag", "einsum", "kron", "pad", "shift", "difference", "dot", "lower", "outer", "per_matrix",
    "solve", "trace", "upper", "elementwise", "flip", "matmul", "prefix", "reduction",
    "reshape", "roll", "stack", "transpose",
]
