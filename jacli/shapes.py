"""The shape of every sub-expression, read off the tree before anything runs (pure Python).

The planner needs the output's shape (to size a Jacobian, to pick forward or reverse mode) and
the sizes of the intermediate results (autograd keeps them for the backward pass; vmap keeps one
per basis vector). Both follow from the input shapes alone, by torch's rules: broadcasting for
arithmetic and elementwise functions, the function table's rule for the rest. No torch import,
no allocation: ``sum(x_col * y_row)`` with two 100,000-element inputs is sized in microseconds.

A shape mismatch is found here too, and named by its sub-expression, before any input is made.

Example:
    >>> from jacli.parse import parse
    >>> infer(parse("tanh(A @ x)").tree, {"A": (3, 4), "x": (4,)}).output
    (3,)
    >>> infer(parse("A @ x + x").tree, {"A": (3, 4), "x": (4,)}).output
    Traceback (most recent call last):
    ...
    jacli.errors.ShapeError: cannot evaluate A @ x + x, from A @ x of shape (3,) and x of shape (4,): shapes (3,) and (4,) do not broadcast. Change the expression or the shapes of inputs A and x so that they fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import sympy as sp

from jacli import nodes
from jacli.errors import ShapeError
from jacli.printing import to_text

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Shapes:
    """What the tree makes from inputs of given shapes.

    Attributes:
        output: the output's shape.
        intermediates: the elements of every tensor the evaluation makes, the output included,
            added up (what autograd may keep alive for the backward pass).
        largest: the elements of the largest single tensor the evaluation makes.
        largest_constant: the largest constant tensor the formula makes (``ones(10**12)``) and
            its elements, for a refusal to name; None when it makes none.
    """

    output: Shape
    intermediates: int
    largest: int
    largest_constant: tuple[sp.Basic, int] | None = None


def infer(tree: sp.Basic, shapes: Mapping[str, Shape]) -> Shapes:
    """The output's shape and the sizes of the intermediate results.

    Raises:
        ShapeError: a sub-expression whose operands do not fit, named as the user wrote it.
    """
    walker = _Walker(shapes)
    output = walker.shape(tree)
    return Shapes(output, walker.total, walker.largest, walker.largest_constant)


def broadcast(shapes: Sequence[Shape]) -> Shape:
    """torch's broadcasting rule; ``ValueError`` when the shapes do not broadcast."""
    ndim = max((len(s) for s in shapes), default=0)
    result = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            raise ValueError("shapes " + " and ".join(map(str, shapes)) + " do not broadcast")
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


class _Walker:
    def __init__(self, shapes: Mapping[str, Shape]):
        self.inputs = shapes
        self.total = 0
        self.largest = 0
        self.largest_constant: tuple[sp.Basic, int] | None = None

    def made(self, shape: Shape) -> Shape:
        size = math.prod(shape)
        self.total += size
        self.largest = max(self.largest, size)
        return shape

    def shape(self, tree: sp.Basic) -> Shape:
        if isinstance(tree, sp.Symbol):
            return tuple(self.inputs[tree.name])
        if isinstance(tree, (sp.Number, sp.NumberSymbol)) or not tree.args:
            return ()
        if isinstance(tree, nodes.Index):
            return self.apply(tree, [tree.args[0]], lambda x: _index(x, tree.key()))
        if isinstance(tree, (sp.Add, sp.Mul, sp.Pow)):
            return self.fold(tree)
        if isinstance(tree, nodes.Components):
            return self.apply(tree, list(tree.args), lambda *parts: (len(parts),) + broadcast(parts))
        from jacli.functions import BY_NODE

        entry = BY_NODE.get(tree.func)
        if entry is None:
            raise AssertionError(f"no table entry for {tree.func}")  # a bug: the parser makes only these
        operands, literals, keywords = entry.arguments(tree.args)
        rule = entry.shape
        shape = self.apply(tree, operands, lambda *parts: rule(*parts, *literals, **keywords))
        if entry.constant and (self.largest_constant is None or math.prod(shape) > self.largest_constant[1]):
            self.largest_constant = (tree, math.prod(shape))
        return shape

    def fold(self, tree: sp.Basic) -> Shape:
        """A flat sum, product or power, folded left to right as compile does: a subtracted term
        ``-1*t`` is ``t`` subtracted and a divisor ``b**-1`` is ``b`` divided by, each step one
        broadcast result; a negation on its own (``-t``) makes one tensor more."""
        operands = [arg if i == 0 and isinstance(tree, sp.Mul) else _operand(tree, arg) for i, arg in enumerate(tree.args)]
        if isinstance(tree, sp.Mul) and len(tree.args) == 2 and tree.args[0] == sp.S.NegativeOne:
            return self.negated(tree.args[1])
        parts = []
        for position, (arg, operand) in enumerate(zip(tree.args, operands)):
            first_negated = isinstance(tree, sp.Add) and position == 0 and operand is not arg
            parts.append(self.negated(operand) if first_negated else self.shape(operand))
        tensor = _makes_tensor(tree.args[0])  # constants alone stay Python numbers
        try:
            shape = parts[0]
            for arg, part in zip(tree.args[1:], parts[1:]):
                shape = broadcast([shape, part])
                tensor = tensor or _makes_tensor(arg)
                if tensor:
                    self.made(shape)
        except ValueError as error:
            raise mismatch(tree, [tree.args[0], *operands[1:]], parts, str(error)) from None
        if len(parts) == 1 and tensor:  # e**x: one tensor made
            self.made(shape)
        return shape

    def negated(self, inner: sp.Basic) -> Shape:
        shape = self.shape(inner)
        return self.made(shape) if inner.free_symbols else shape

    def apply(self, tree: sp.Basic, operands: list[sp.Basic], rule: Callable[..., Shape]) -> Shape:
        parts = [self.shape(arg) for arg in operands]
        try:
            return self.made(rule(*parts))
        except (ValueError, IndexError) as error:
            raise mismatch(tree, operands, parts, str(error)) from None


def _makes_tensor(tree: sp.Basic) -> bool:
    """A tensor when evaluated: it reads an input, or holds a constant tensor such as arange(3)."""
    if tree.free_symbols:
        return True
    from jacli.functions import BY_NODE

    return any(getattr(BY_NODE.get(getattr(node, "func", None)), "constant", False) for node in sp.preorder_traversal(tree))


def _operand(tree: sp.Basic, arg: sp.Basic) -> sp.Basic:
    """What compile evaluates for one argument of a sum or product (see ``_Walker.fold``)."""
    if isinstance(tree, sp.Add) and isinstance(arg, sp.Mul) and len(arg.args) == 2 and arg.args[0] == sp.S.NegativeOne:
        return arg.args[1]
    if isinstance(tree, sp.Mul) and isinstance(arg, sp.Pow) and arg.args[1] == sp.S.NegativeOne:
        return arg.args[0]
    return arg


def mismatch(tree: sp.Basic, operands: Sequence[sp.Basic], parts: Sequence[Shape], reason: str) -> ShapeError:
    """The error for ``tree``, whose ``operands`` (of shapes ``parts``) do not fit: it names each
    operand with its shape, and says what to change: the inputs, when the operands are inputs;
    else the constant tensors or the expression, and the inputs the operands read."""
    listed = _joined([f"{to_text(operand)} of shape {shape}" for operand, shape in zip(operands, parts)])
    inputs = sorted({symbol.name for operand in operands for symbol in operand.free_symbols})
    named = _joined(inputs)
    constant = [not operand.free_symbols and _makes_tensor(operand) for operand in operands]
    if all(isinstance(operand, sp.Symbol) or not (operand.free_symbols or tensor)
           for operand, tensor in zip(operands, constant)):
        plural = "s" if len(inputs) > 1 else ""
        advice = f"Check the shape{plural} of the input{plural} {named} against the expression."
    else:
        constants = [to_text(operand) for operand, tensor in zip(operands, constant) if tensor]
        changes = [f"the constant{'s' if len(constants) > 1 else ''} {_joined(constants)}" if constants else "the expression"]
        if inputs:
            changes.append(f"the shape{'s of inputs' if len(inputs) > 1 else ' of input'} {named}")
        advice = f"Change {' or '.join(changes)} so that {'they fit' if len(operands) > 1 else 'it fits'}."
    return ShapeError(f"cannot evaluate {to_text(tree)}, from {listed}: {reason}. {advice}")


def _joined(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


# -- the shape rules the function table names (its ``shape`` field) -------------------------------


def _axis(shape: Shape, axis: int) -> int:
    """``axis`` as a non-negative position in ``shape`` (a 0-d tensor has axes 0 and -1)."""
    ndim = max(len(shape), 1)
    if not -ndim <= axis < ndim:
        raise IndexError(f"axis {axis} is out of range for {len(shape)} dimensions")
    return axis % ndim


def reduced(x: Shape, axis: int | None = None) -> Shape:
    """A reduction: over everything (a scalar), or along ``axis``."""
    if axis is None:
        return ()
    position = _axis(x, axis)
    return x[:position] + x[position + 1 :] if x else ()


def same(x: Shape, axis: int | None = None) -> Shape:
    """The operand's own shape (softmax), with ``axis`` checked."""
    if axis is not None:
        _axis(x, axis)
    return x


def dot(a: Shape, b: Shape) -> Shape:
    """The inner product of two vectors of one length: a scalar."""
    if len(a) != 1 or len(b) != 1 or a != b:
        raise ValueError(f"dot needs two vectors of the same length, got shapes {a} and {b}")
    return ()


def reshaped(x: Shape, *shape: int) -> Shape:
    """The new shape, its -1 worked out; the element count must not change."""
    size = math.prod(x)
    unknown = [i for i, n in enumerate(shape) if n == -1]
    if len(unknown) > 1 or any(n < -1 for n in shape):
        raise ValueError(f"shape {shape} is invalid: give sizes >= 0 and at most one -1")
    known = math.prod(n for n in shape if n != -1)
    if unknown:
        if known == 0 or size % known:
            raise ValueError(f"shape {shape} is invalid for input of size {size}")
        shape = tuple(size // known if n == -1 else n for n in shape)
    if math.prod(shape) != size:
        raise ValueError(f"shape {shape} is invalid for input of size {size}")
    return tuple(shape)


def transposed(x: Shape, dim0: int | None = None, dim1: int | None = None) -> Shape:
    """Axes reversed, or ``dim0`` and ``dim1`` swapped."""
    if dim0 is None:
        return tuple(reversed(x))
    if not x:
        _axis(x, dim0), _axis(x, dim1)
        return x
    i, j = _axis(x, dim0), _axis(x, dim1)
    swapped = list(x)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    return tuple(swapped)


def matmul(a: Shape, b: Shape) -> Shape:
    """torch.matmul's rule: vectors are promoted to matrices and the added axis removed again."""
    if not a or not b:
        raise ValueError(f"both arguments to matmul need at least 1 dimension, got shapes {a} and {b}")
    left = (1,) + a if len(a) == 1 else a
    right = b + (1,) if len(b) == 1 else b
    if left[-1] != right[-2]:
        raise ValueError(f"shapes {a} and {b} cannot be multiplied ({left[-1]} != {right[-2]})")
    batch = broadcast([left[:-2], right[:-2]])
    shape = batch + (left[-2], right[-1])
    if len(a) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(b) == 1:
        shape = shape[:-1]
    return shape


def concatenated(*parts: Shape, axis: int = 0) -> Shape:
    """cat(a, b, ..., axis=0): along ``axis``, a scalar counting as a vector of one element; the
    parts must have as many axes, and the other axes must agree (torch.cat does not broadcast)."""
    promoted = [part or (1,) for part in parts]
    listed = ", ".join(str(part) for part in parts)
    if len({len(part) for part in promoted}) > 1:
        raise ValueError(f"cat needs parts with the same number of axes; got shapes {listed}")
    position = _axis(promoted[0], axis)
    rest = {part[:position] + part[position + 1:] for part in promoted}
    if len(rest) > 1:
        where = "the first axis" if position == 0 else f"axis {axis}"
        raise ValueError(f"cat joins along {where} and needs the other axes to agree; got shapes {listed}")
    first = promoted[0]
    return first[:position] + (sum(part[position] for part in promoted),) + first[position + 1:]


def stacked(*parts: Shape, axis: int = 0) -> Shape:
    """stack(a, b, ..., axis=0): the parts broadcast to one shape, with a new axis of
    ``len(parts)`` at ``axis`` (counted in the result's axes, so -1 puts it last)."""
    shape = broadcast(parts)
    ndim = len(shape) + 1
    if not -ndim <= axis < ndim:
        raise IndexError(f"stack's axis {axis} is out of range for its result of {ndim} dimensions; use {-ndim} to {ndim - 1}")
    position = axis % ndim
    return shape[:position] + (len(parts),) + shape[position:]


def padded(x: Shape, before: int, after: int, axis: int = -1) -> Shape:
    """pad: ``before`` and ``after`` more elements along ``axis`` (the last by default)."""
    if not x:
        raise ValueError("pad needs at least one dimension, got a scalar")
    if before < 0 or after < 0:
        raise ValueError(f"pad adds elements: before and after must be >= 0, got {before} and {after} (slice to remove some)")
    position = _axis(x, axis)
    return x[:position] + (x[position] + before + after,) + x[position + 1:]


def shifted(x: Shape, shift: int, axis: int | None = None) -> Shape:
    """shift: the operand's shape (at least one dimension; ``axis`` checked)."""
    if not x:
        raise ValueError("shift needs at least one dimension, got a scalar")
    return same(x, axis)


def kron(a: Shape, b: Shape) -> Shape:
    """kron(a, b): the Kronecker product; the shorter shape gets leading 1s, then sizes multiply."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(p * q for p, q in zip(a, b))


def cross(a: Shape, b: Shape) -> Shape:
    """cross(a, b): 3-vectors along the last axis, the other axes broadcast."""
    if not a or not b or a[-1] != 3 or b[-1] != 3:
        raise ValueError(f"cross needs 3-vectors (a last axis of size 3), got shapes {a} and {b}")
    return broadcast([a, b])


def einsum_terms(subscripts: str) -> tuple[list[str], str]:
    """The explicit subscripts ``"ij,jk->ik"`` as (["ij", "jk"], "ik")."""
    inputs, output = subscripts.split("->")
    return inputs.split(","), output


def einsum(*parts: Any) -> Shape:
    """einsum(a, b, ..., subscripts): each operand has one axis per letter of its term, a letter
    has one size everywhere, and the output has the sizes of its letters."""
    *shapes, subscripts = parts
    terms, output = einsum_terms(subscripts)
    sizes: dict[str, int] = {}
    for k, (term, shape) in enumerate(zip(terms, shapes), start=1):
        if len(term) != len(shape):
            raise ValueError(
                f"einsum's operand {k} has shape {shape}, {len(shape)} axes, but its subscripts {term!r} "
                f"name {len(term)}"
            )
        for letter, size in zip(term, shape):
            if sizes.setdefault(letter, size) != size:
                raise ValueError(f"einsum's letter {letter} is {sizes[letter]} in one place and {size} in another (operand {k})")
    return tuple(sizes[letter] for letter in output)


# -- constant tensors: their arguments are numbers known when parsing ---------------------------


def _whole(value: Any, what: str) -> int:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number >= 0, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{float(value):g}"


def arange_bounds(*values: Any) -> tuple[Any, Any, Any]:
    """arange(stop), arange(start, stop), arange(start, stop, step) as (start, stop, step)."""
    if len(values) == 1:
        return 0, values[0], 1
    start, stop, *step = values
    return start, stop, step[0] if step else 1


def arange(*values: Any) -> Shape:
    """arange: ceil((stop - start) / step) elements (none when that is negative), as numpy."""
    start, stop, step = arange_bounds(*values)
    if step == 0:
        raise ValueError("the step is 0; give a step other than 0, as in arange(0, 1, 1/10)")
    return (max(math.ceil((stop - start) / step), 0),)


def linspace(start: Any, stop: Any, count: Any) -> Shape:
    """linspace(start, stop, n): n elements."""
    return (_whole(count, "the count n (linspace(start, stop, n))"),)


def filled(*sizes: Any) -> Shape:
    """ones, zeros: the shape given."""
    return tuple(_whole(size, "each size") for size in sizes)


def eye(n: Any, m: Any = None) -> Shape:
    """eye(n), eye(n, m): an n x n (n x m) matrix."""
    return (_whole(n, "the size n"), _whole(n if m is None else m, "the size m"))


def flipped(x: Shape, axis: int | None = None) -> Shape:
    """flip: the operand's shape (``axis`` checked)."""
    return same(x, axis)


def rolled(x: Shape, shift: int, axis: int | None = None) -> Shape:
    """roll: the operand's shape (``axis`` checked)."""
    return same(x, axis)


def accumulated(x: Shape, axis: int | None = None) -> Shape:
    """cumsum, cumprod: along ``axis``, the same shape; over everything, the flattened vector."""
    return (math.prod(x),) if axis is None else same(x, axis)


def differenced(x: Shape, axis: int = -1) -> Shape:
    """diff: one element fewer along ``axis`` (the last by default)."""
    if not x:
        raise ValueError("diff needs at least one dimension, got a scalar")
    position = _axis(x, axis)
    if x[position] == 0:
        raise ValueError(f"diff needs at least one element along axis {axis}, got shape {x}")
    return x[:position] + (x[position] - 1,) + x[position + 1 :]


def _square(x: Shape, name: str) -> int:
    if len(x) < 2 or x[-1] != x[-2]:
        raise ValueError(f"{name} needs a square matrix (or a stack of them, shape (..., n, n)), got shape {x}")
    return x[-1]


def determinant(x: Shape) -> Shape:
    """det: one number per square matrix."""
    _square(x, "det")
    return x[:-2]


def log_determinant(x: Shape) -> Shape:
    """logdet: one number per square matrix."""
    _square(x, "logdet")
    return x[:-2]


def signed_log_determinant(x: Shape) -> Shape:
    """slogdet: one number per square matrix."""
    _square(x, "slogdet")
    return x[:-2]


def inverse(x: Shape) -> Shape:
    """inv: the same shape, square."""
    _square(x, "inv")
    return x


def solved(a: Shape, b: Shape) -> Shape:
    """solve(A, b): A square (n, n); b a vector (n,) or a matrix (n, k)."""
    n = _square(a, "solve")
    if len(a) != 2 or len(b) not in (1, 2) or b[0] != n:
        raise ValueError(f"solve(A, b) needs A of shape (n, n) and b of shape (n,) or (n, k), got {a} and {b}")
    return b


def traced(x: Shape) -> Shape:
    """trace: the sum of a matrix's diagonal."""
    if len(x) != 2:
        raise ValueError(f"trace needs a matrix, got shape {x}")
    return ()


def diagonal(x: Shape) -> Shape:
    """diag: a vector becomes the diagonal matrix, a matrix gives its diagonal."""
    if len(x) == 1:
        return (x[0], x[0])
    if len(x) == 2:
        return (min(x),)
    raise ValueError(f"diag needs a vector or a matrix, got shape {x}")


def outer(a: Shape, b: Shape) -> Shape:
    """outer(a, b): vectors of lengths m and n give an m x n matrix."""
    if len(a) != 1 or len(b) != 1:
        raise ValueError(f"outer needs two vectors, got shapes {a} and {b}")
    return (a[0], b[0])


def triangle(x: Shape, diagonal: int = 0) -> Shape:
    """tril, triu: the same shape, at least a matrix."""
    if len(x) < 2:
        raise ValueError(f"tril and triu need a matrix (or a stack of them), got shape {x}")
    return x


def _index(x: Shape, key: tuple) -> Shape:
    """numpy's basic indexing on a zero-stride array of shape ``x``: no memory, the same rule as torch."""
    import numpy as np

    return np.broadcast_to(np.empty((), dtype=bool), x)[key].shape
