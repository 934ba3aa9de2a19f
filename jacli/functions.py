"""THE function table: one entry per function a jacli expression may call.

Every stage reads its part of a function here and keeps no list of its own:

* the parser: ``tensors``, ``ints`` and ``split`` to check a call, ``make`` to build its node;
* the compiler: ``node`` to find the entry, ``split`` and ``torch`` to run it;
* the exact (SymPy) engine: ``split`` and ``expand`` to evaluate it on arrays of symbols, and
  ``elementwise`` to know a Jacobian is diagonal;
* ``check``: ``kinks`` to know where finite differences cannot see torch's convention;
* ``jacli.structure``: ``sparsity`` to read the Jacobian's pattern off the tree.

Adding a function is adding one entry here (and a test). An entry that is not elementwise must
name its expansion, shape rule and sparsity rule: without one the table refuses to load, rather
than a later stage guessing.

torch and numpy are imported lazily (see ``_Lazy``) so that parsing never pays for importing them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Sequence, TypeVar

import sympy as sp
from sympy.core.symbol import Str

from jacli import nodes, shapes


class _Lazy:
    """Stands in for a module until first used, then replaces itself in this module's globals."""

    def __init__(self, module: str, name: str):
        self._module, self._name = module, name

    def __getattr__(self, attribute: str) -> Any:
        import importlib

        real = importlib.import_module(self._module)
        globals()[self._name] = real
        return getattr(real, attribute)


torch: Any = _Lazy("torch", "torch")
np: Any = _Lazy("numpy", "np")

Argument = TypeVar("Argument")

# The symbolic side works on numpy object arrays of scalar SymPy expressions (0-dimensional for
# a scalar), so broadcasting, indexing, reshaping and ``@`` behave exactly as in torch.
Symbolic = Any
Expansion = Callable[..., Symbolic]
"""``expand(*operands, *ints)``: the function on object arrays, as torch computes it on tensors."""

@dataclass(frozen=True)
class Kinks:
    """Where a piecewise function changes piece: ``kinks(operands)`` gives expressions whose signs
    say on which piece a point is, each 0 exactly on a kink (``jacli check`` reads both).

    Attributes:
        arguments: ``arguments(operands)``: those expressions.
        places: what holds on the kink of each expression, said of the function, for messages
            ("its argument is 0"); one per expression ``arguments`` may give, in order.
        steps: the function is constant between its kinks (a comparison, floor, sign): a point
            away from its kinks is on no kink of a function that reads it as its condition.
    """

    arguments: Callable[[Sequence[sp.Basic]], list[sp.Basic]]
    places: tuple[str, ...]
    steps: bool = False

    def __call__(self, operands: Sequence[sp.Basic]) -> list[sp.Basic]:
        return self.arguments(operands)

Sparsity = Callable[..., Any]
"""``sparsity(context, output_shape, operands, *ints)``: the output's pattern with respect to one
input, from the operands' (``jacli.structure``: ``Context``, ``Operand``, ``Pattern``)."""


@dataclass(frozen=True)
class Function:
    """One callable name: every stage's view of it.

    Attributes:
        name: what the user types.
        summary: one line for ``--help`` and the README.
        torch: the torch side, called with the operand tensors then the integers.
        node: the SymPy side: the class calls produce (the compiler's lookup key); None when
            ``build`` produces plain arithmetic (``sqrt`` is a power).
        tensors: how many operands, i.e. expression arguments (min, max).
        ints: how many trailing integer-literal arguments are allowed (axis, shape). An entry
            that allows integers takes a fixed number of operands, so ``split`` is unambiguous.
        elementwise: applies entry by entry, so its Jacobian is diagonal.
        kinks: None for a function smooth wherever it is defined; for a piecewise one, the
            expressions (from its operands) whose sign picks the piece: the argument of relu,
            abs, sign, Heaviside; the pairwise differences of the arguments of max and min
            (a ``Kinks``, which also says in words what holds on each kink).
        expand: the symbolic expansion over object arrays of SymPy scalars. Elementwise entries
            get the rule "the SymPy side, entry by entry, broadcast"; every other entry must
            give its own.
        shape: the output's shape from the operands' shapes and the integers (``jacli.shapes``
            reads it before anything runs). Elementwise entries broadcast; every other entry must
            give its own rule.
        sparsity: which operand elements each output element depends on (``jacli.structure``
            reads it to find the Jacobian's pattern before anything runs). Elementwise entries
            get the broadcasting rule; every other entry must name its rule.
        build: makes the SymPy node from SymPy arguments; default ``node(*args, evaluate=False)``.
        code: the torch side as Python text, for the script ``show_code`` writes: a template
            formatted with the operands' code then the integers (``"torch.hypot({0}, {1})"``),
            or a function of them that returns the text. An operand the template uses twice is
            given as a name; one followed by ``.`` (a method) is parenthesized where needed.
        group: the kind of function, for the README and ``jacli functions``: one of ``GROUPS``.
            Elementwise entries default to "elementwise" (or "piecewise and comparison" with
            kinks); every other entry must name its group.
        constant: a constant tensor (``arange``, ``ones``, ``eye``): no operands; its arguments
            are numbers known when the formula is parsed (``10**6``, ``pi/2`` are fine), handed
            to ``torch`` (with ``like=``, a tensor whose dtype and device it takes), ``shape``
            (which refuses bad values, naming the argument) and ``expand`` as Python numbers:
            ints, ``Fraction`` for exact rationals, float otherwise. Its sparsity rule is
            ``constant``: nothing depends on any input.
        keywords: keyword arguments the call takes (cat's ``axis=``), each an integer literal;
            the node holds them as ``nodes.Keyword`` after the operands, and each stage gets them
            as keyword arguments (``Function.arguments``).
        subscripts: for einsum: the call's first argument is a string literal, checked by this
            function (given the text and the operand count; a ValueError says what is wrong) and
            kept, in the explicit form it returns, as the node's last argument.
    """

    name: str
    summary: str
    torch: Callable[..., Any]
    node: type | None
    tensors: tuple[int, int] = (1, 1)
    ints: tuple[int, ...] = (0,)
    elementwise: bool = False
    kinks: Kinks | None = None
    expand: Expansion | None = None
    shape: Callable[..., tuple[int, ...]] | None = None
    sparsity: Sparsity | None = None
    build: Callable[..., sp.Basic] | None = None
    code: str | Callable[..., str] | None = None
    group: str = ""
    constant: bool = False
    keywords: tuple[str, ...] = ()
    subscripts: Callable[[str, int], str] | None = None

    def __post_init__(self) -> None:
        low, high = self.tensors
        if not (0 if self.constant else 1) <= low <= high or (self.constant and high):
            raise TypeError(f"table entry {self.name}: tensors={self.tensors} is no (min, max) range")
        if self.constant and self.sparsity is None:
            object.__setattr__(self, "sparsity", _sparsity("constant"))
        if self.ints != (0,) and low != high:
            raise TypeError(
                f"table entry {self.name}: an entry taking integers needs a fixed operand count, "
                f"or split cannot tell operands from integers"
            )
        if self.expand is None:
            if not self.elementwise:
                raise TypeError(
                    f"table entry {self.name} is not elementwise and names no symbolic expansion; "
                    "give it expand=..., the function on object arrays of SymPy scalars"
                )
            scalar = self.node if self.node is not None else self.build
            object.__setattr__(self, "expand", _entry_by_entry(scalar))
        if self.shape is None:
            if not self.elementwise:
                raise TypeError(
                    f"table entry {self.name} is not elementwise and names no shape rule; "
                    "give it shape=..., the output's shape from its operands' shapes"
                )
            object.__setattr__(self, "shape", lambda *parts: shapes.broadcast(parts))
        if self.sparsity is None:
            if not self.elementwise:
                raise TypeError(
                    f"table entry {self.name} is not elementwise and names no sparsity rule; "
                    "give it sparsity=..., a rule of jacli.structure"
                )
            object.__setattr__(self, "sparsity", _sparsity("elementwise"))
        if not self.group:
            if not self.elementwise:
                raise TypeError(f"table entry {self.name} is not elementwise and names no group; give it group=...")
            object.__setattr__(self, "group", PIECEWISE if self.kinks is not None else ELEMENTWISE)
        if self.group not in GROUPS:
            raise TypeError(f"table entry {self.name}: group {self.group!r} is not one of {', '.join(GROUPS)}")

    def split(self, args: Sequence[Argument]) -> tuple[list[Argument], list[Argument]]:
        """A call's arguments as (operands, trailing integers): a parse tree's or a SymPy node's.

        Example:
            >>> from jacli.parse import parse
            >>> FUNCTIONS["sum"].split(parse("sum(x, 1)").tree.args)
            ([x], [1])
        """
        args = [a for a in args if not isinstance(a, nodes.Keyword)]
        if self.subscripts is not None and args and isinstance(args[-1], sp.Basic):
            return list(args[:-1]), list(args[-1:])  # a node: the subscripts come last
        count = len(args) if self.ints == (0,) else self.tensors[1]
        return list(args[:count]), list(args[count:])

    def arguments(self, args: Sequence[sp.Basic]) -> tuple[list[sp.Basic], list[Any], dict[str, Any]]:
        """A node's arguments as every stage takes them: (operands, literals, keywords), the
        literals and keyword values as Python values (see ``literal``).

        Example:
            >>> from jacli.parse import parse
            >>> FUNCTIONS["cat"].arguments(parse("cat(x, y, axis=1)").tree.args)
            ([x, y], [], {'axis': 1})
        """
        operands, literals = self.split(args)
        keywords = {a.name: literal(a.value) for a in args if isinstance(a, nodes.Keyword)}
        return operands, [literal(v) for v in literals], keywords

    def make(self, args: list[sp.Basic], ints: list[Any], keywords: dict[str, int] | None = None) -> sp.Basic:
        """The SymPy node for a call with these arguments (already checked by the parser): ``build``'s
        when the entry has one, except for a call with keywords, which only ``node`` holds."""
        if self.build is not None and not (keywords and self.node is not None):
            return self.build(*args, *ints)
        assert self.node is not None
        trailing = [nodes.text(i) if isinstance(i, str) else sp.sympify(i) for i in ints]
        trailing += [nodes.Keyword(nodes.text(k), sp.Integer(v)) for k, v in (keywords or {}).items()]
        return self.node(*args, *trailing, evaluate=False)


def literal(value: Any) -> Any:
    """A literal argument of a node as a Python value: an Integer as int, a Rational as an exact
    ``Fraction``, a string as str, any other number (``2*pi``) as the nearest float."""
    if isinstance(value, (int, float, str, Fraction)):
        return value
    if isinstance(value, sp.Integer):
        return int(value)
    if isinstance(value, sp.Rational):
        return Fraction(int(value.p), int(value.q))
    if isinstance(value, Str):
        return value.name
    return float(value)


def exact_number(value: Any) -> sp.Basic:
    """A literal (``literal``'s Python value) as an exact SymPy number, for the expansions."""
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    return sp.Integer(value) if isinstance(value, int) else sp.Float(value, 30)


ELEMENTWISE, SPECIAL, PIECEWISE = "elementwise", "special functions", "piecewise and comparison"
REDUCTIONS, SHAPE, LINEAR_ALGEBRA = "reductions and softmax", "shape and shift", "linear algebra"
CONSTANT = "constant tensors"
GROUPS = (ELEMENTWISE, SPECIAL, PIECEWISE, REDUCTIONS, SHAPE, LINEAR_ALGEBRA, CONSTANT)
"""The kinds of function, in the order the README and ``jacli functions`` list them."""


# -- object arrays: the symbolic side ---------------------------------------------------------


def symbolic_array(value: Any) -> Symbolic:
    """A SymPy expression or an object array, as an object array."""
    if isinstance(value, np.ndarray):
        return value.astype(object, copy=False)
    result = np.empty((), dtype=object)
    result[()] = sp.sympify(value)
    return result


def entrywise(fn: Callable[..., sp.Basic], *arrays: Symbolic) -> Symbolic:
    """A scalar SymPy function applied entry by entry, broadcasting the arguments."""
    return symbolic_array(np.vectorize(fn, otypes=[object])(*arrays))


def _entry_by_entry(scalar: Callable[..., sp.Basic]) -> Expansion:
    """The expansion of an elementwise entry: its SymPy side on each entry."""
    return lambda *operands: entrywise(scalar, *operands)


def _reduce(fn: Callable[[Symbolic, int | None], Any], x: Symbolic, axis: int | None) -> Symbolic:
    if x.ndim == 0 and axis in (None, 0, -1):
        return x
    return symbolic_array(fn(x, axis))


def _sum_expansion(x: Symbolic, axis: int | None = None) -> Symbolic:
    if axis is None:
        # One Add of every term: numpy's sum adds them one by one, and SymPy re-sorts the growing
        # Add each time (quadratic: 4 s for a sum over 1,000 data points).
        return symbolic_array(sp.Add(*x.reshape(-1)) if x.size else sp.S.Zero)
    return _reduce(lambda a, ax: np.sum(a, axis=ax) if a.size else sp.S.Zero, x, axis)


def _mean_expansion(x: Symbolic, axis: int | None = None) -> Symbolic:
    count = x.size if axis is None else (x.shape[axis] if x.ndim else 1)
    return symbolic_array(_sum_expansion(x, axis) / sp.Integer(count))


def _prod_expansion(x: Symbolic, axis: int | None = None) -> Symbolic:
    return _reduce(lambda a, ax: np.prod(a, axis=ax), x, axis)


def _norm_expansion(x: Symbolic, axis: int | None = None) -> Symbolic:
    return entrywise(sp.sqrt, _sum_expansion(symbolic_array(x * x), axis))


def _dot_expansion(a: Symbolic, b: Symbolic) -> Symbolic:
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"dot needs two vectors of the same length, got shapes {a.shape} and {b.shape}")
    return _sum_expansion(symbolic_array(a * b))


def _held_max(x: Symbolic, axis: int | None) -> Symbolic:
    """The shift of a stable softmax/logsumexp: the held maximum over all of ``x`` or along
    ``axis`` (kept as a size-1 axis, so it broadcasts against ``x``)."""
    if axis is None or not x.ndim:
        return symbolic_array(nodes.held_max(*x.reshape(-1)))
    moved = np.moveaxis(x, axis, -1)
    shifts = np.empty(moved.shape[:-1], dtype=object)
    for index in np.ndindex(*shifts.shape):
        shifts[index] = nodes.held_max(*moved[index])
    return symbolic_array(np.expand_dims(shifts, axis))


def _softmax_expansion(x: Symbolic, axis: int | None = None) -> Symbolic:
    # exp(x - m) / sum(exp(x - m)) with m the held maximum: the same function for every m, so
    # its exact derivative is the true one, and it evaluates without overflow at large x (#12).
    exps = entrywise(sp.exp, symbolic_array(x - _held_max(x, axis)))
    if axis is None:
        return symbolic_array(exps / _sum_expansion(exps)[()])
    if not x.ndim:
        return symbolic_array(exps / exps)
    return symbolic_array(exps / np.sum(exps, axis=axis, keepdims=True))


def _logsumexp_expansion(x: Symbolic, axis: int | None = None) -> Symbolic:
    # m + log(sum(exp(x - m))): see _softmax_expansion.
    shift = _held_max(x, axis)
    sums = _sum_expansion(entrywise(sp.exp, symbolic_array(x - shift)), axis)
    if axis is not None and x.ndim:
        shift = np.squeeze(shift, axis)
    elif x.ndim:
        shift = shift.reshape(())
    return symbolic_array(shift + entrywise(sp.log, sums))


def _log_softmax_expansion(x: Symbolic, axis: int | None = None) -> Symbolic:
    # x - logsumexp(x), with logsumexp's stable form kept along the axis.
    shift = _held_max(x, axis)
    exps = entrywise(sp.exp, symbolic_array(x - shift))
    sums = _sum_expansion(exps) if axis is None or not x.ndim else np.sum(exps, axis=axis, keepdims=True)
    return symbolic_array(x - shift - entrywise(sp.log, symbolic_array(sums)))


def _cat_expansion(*parts: Symbolic, axis: int = 0) -> Symbolic:
    return symbolic_array(np.concatenate([part.reshape(1) if not part.ndim else part for part in parts], axis=axis))


def _pad_expansion(x: Symbolic, before: int, after: int, axis: int = -1) -> Symbolic:
    position = axis % x.ndim
    shape = list(x.shape)
    shape[position] += before + after
    out = np.full(shape, sp.S.Zero, dtype=object)
    window = [slice(None)] * x.ndim
    window[position] = slice(before, before + x.shape[position])
    out[tuple(window)] = x
    return symbolic_array(out)


def _shifted(x: Any, shift: int, axis: int | None, fill: Any) -> Any:
    """numpy: ``x`` moved ``shift`` places (of the flattened elements, or along ``axis``), the
    vacated places ``fill``: roll without the wrap-around."""
    moved = x.reshape(-1) if axis is None else np.moveaxis(x, axis, -1)
    n = moved.shape[-1]
    out = np.full(moved.shape, fill, dtype=x.dtype)
    if 0 <= shift < n:
        out[..., shift:] = moved[..., : n - shift]
    elif -n < shift < 0:
        out[..., : n + shift] = moved[..., -shift:]
    return out.reshape(x.shape) if axis is None else np.moveaxis(out, -1, axis)


def _shift_expansion(x: Symbolic, shift: int, axis: int | None = None) -> Symbolic:
    return symbolic_array(_shifted(x, shift, axis, sp.S.Zero))


def _kron_expansion(a: Symbolic, b: Symbolic) -> Symbolic:
    n = max(a.ndim, b.ndim)
    return symbolic_array(np.kron(a.reshape((1,) * (n - a.ndim) + a.shape), b.reshape((1,) * (n - b.ndim) + b.shape)))


def _cross_expansion(a: Symbolic, b: Symbolic) -> Symbolic:
    a, b = np.broadcast_arrays(a, b)
    components = [a[..., (i + 1) % 3] * b[..., (i + 2) % 3] - a[..., (i + 2) % 3] * b[..., (i + 1) % 3] for i in range(3)]
    return symbolic_array(np.stack(components, axis=-1))


def _einsum_expansion(*args: Any) -> Symbolic:
    *operands, subscripts = args
    return symbolic_array(np.einsum(subscripts, *operands))  # numpy's einsum takes object arrays


def _slogdet_expansion(x: Symbolic) -> Symbolic:
    # log|det| as log(det**2)/2: the same value and derivative (det'/det), with no Abs, whose
    # derivative SymPy would write with sign(det)
    return entrywise(lambda d: sp.log(d**2) / 2, _det_expansion(x))


def _arange_expansion(*bounds: Any) -> Symbolic:
    start, _, step = shapes.arange_bounds(*bounds)
    (count,) = shapes.arange(*bounds)
    first, step = exact_number(start), exact_number(step)
    return symbolic_array(np.array([first + step * i for i in range(count)] or [], dtype=object).reshape(count))


def _linspace_expansion(start: Any, stop: Any, count: int) -> Symbolic:
    first, last = exact_number(start), exact_number(stop)
    values = [first] if count == 1 else [first + (last - first) * sp.Rational(i, count - 1) for i in range(count)]
    return symbolic_array(np.array(values[:count], dtype=object).reshape(count))


def _eye_expansion(n: int, m: int | None = None) -> Symbolic:
    out = np.full((n, n if m is None else m), sp.S.Zero, dtype=object)
    for i in range(min(out.shape)):
        out[i, i] = sp.S.One
    return symbolic_array(out)


def _flip_expansion(x: Symbolic, axis: int | None = None) -> Symbolic:
    return symbolic_array(np.flip(x, axis) if x.ndim else x)


def _roll_expansion(x: Symbolic, shift: int, axis: int | None = None) -> Symbolic:
    return symbolic_array(np.roll(x, shift, axis) if x.ndim else x)


# (The numpy functions are looked up when an expansion runs, not when the table is built: a
# parse error, which loads the table but neither torch nor numpy, stays quick.)
def _accumulation(operation: Callable[..., Any]) -> Expansion:
    def expand(x: Symbolic, axis: int | None = None) -> Symbolic:
        if axis is None or not x.ndim:
            x = x.reshape(-1) if axis is None else x
            return symbolic_array(operation(x, axis=0) if x.ndim else x)
        return symbolic_array(operation(x, axis=axis))

    return expand


def _diff_expansion(x: Symbolic, axis: int = -1) -> Symbolic:
    return symbolic_array(np.diff(x, axis=axis))


def _per_matrix(x: Symbolic, fn: Callable[[sp.Matrix], Any]) -> Symbolic:
    """``fn`` on each square matrix of a stack (the last two axes), as SymPy matrices."""
    batch = x.shape[:-2]
    results = [fn(sp.Matrix(x[index].tolist())) for index in np.ndindex(*batch)]
    if results and isinstance(results[0], sp.MatrixBase):
        return symbolic_array(np.array([np.array(r.tolist(), dtype=object) for r in results], dtype=object).reshape(x.shape))
    out = np.empty(batch, dtype=object)
    for index, value in zip(np.ndindex(*batch), results):
        out[index] = value
    return symbolic_array(out)


def _det_expansion(x: Symbolic) -> Symbolic:
    return _per_matrix(x, lambda m: m.det(method="berkowitz"))


def _logdet_expansion(x: Symbolic) -> Symbolic:
    return entrywise(sp.log, _det_expansion(x))


def _inv_expansion(x: Symbolic) -> Symbolic:
    return _per_matrix(x, lambda m: m.inv(method="LU"))


def _solve_expansion(a: Symbolic, b: Symbolic) -> Symbolic:
    solution = sp.Matrix(a.tolist()).LUsolve(sp.Matrix(b.reshape(b.shape[0], -1).tolist()))
    return symbolic_array(np.array(solution.tolist(), dtype=object).reshape(b.shape))


def _trace_expansion(x: Symbolic) -> Symbolic:
    return symbolic_array(sp.Add(*np.diagonal(x)) if min(x.shape) else sp.S.Zero)


def _diag_expansion(x: Symbolic) -> Symbolic:
    if x.ndim == 1:
        out = np.full((len(x), len(x)), sp.S.Zero, dtype=object)
        out[np.arange(len(x)), np.arange(len(x))] = x
        return symbolic_array(out)
    return symbolic_array(np.diagonal(x).copy())


def _outer_expansion(a: Symbolic, b: Symbolic) -> Symbolic:
    return symbolic_array(np.multiply.outer(a, b))


def _triangle_expansion(keep: Callable[..., Any]) -> Expansion:
    def expand(x: Symbolic, diagonal: int = 0) -> Symbolic:
        mask = np.broadcast_to(keep(np.ones(x.shape[-2:], dtype=bool), diagonal), x.shape)
        return symbolic_array(np.where(mask, x, sp.S.Zero))

    return expand


def _reshape_expansion(x: Symbolic, *shape: int) -> Symbolic:
    return symbolic_array(x.reshape(shape))


def _transpose_expansion(x: Symbolic, dim0: int | None = None, dim1: int | None = None) -> Symbolic:
    return symbolic_array(x.transpose() if dim0 is None else np.swapaxes(x, dim0, dim1))


def _matmul_expansion(a: Symbolic, b: Symbolic) -> Symbolic:
    return symbolic_array(np.matmul(a, b))


# -- sparsity ----------------------------------------------------------------------------------


def _sparsity(rule: str) -> Sparsity:
    """The sparsity rule ``jacli.structure.<rule>``, imported on first use (it needs numpy, which
    parsing never pays for)."""

    def apply(*args: Any, **keywords: Any) -> Any:
        from jacli import structure

        return getattr(structure, rule)(*args, **keywords)

    apply.__name__ = apply.__qualname__ = rule
    return apply


# -- kinks ----------------------------------------------------------------------------------


def _first(operands: Sequence[sp.Basic]) -> list[sp.Basic]:
    """relu, abs, sign, Heaviside: the piece is decided by the sign of the (first) argument."""
    return [operands[0]]


def _differences(operands: Sequence[sp.Basic]) -> list[sp.Basic]:
    """max, min, comparisons: the piece is decided by the sign of a - b, for each pair of arguments."""
    return [sp.Add(a, -b, evaluate=False) for a, b in itertools.combinations(operands, 2)]


def constant_between_kinks(tree: sp.Basic) -> bool:
    """Whether ``tree`` changes only by jumps, at kinks of the steps in it (``x > 0``,
    ``floor(x)*(y < 1)``, a number): every path from it to a variable passes through a step."""
    if isinstance(tree, sp.Symbol):
        return False
    entry = BY_NODE.get(tree.func)
    if entry is not None and entry.kinks is not None and entry.kinks.steps:
        return True
    return all(constant_between_kinks(argument) for argument in tree.args)


def _condition(operands: Sequence[sp.Basic]) -> list[sp.Basic]:
    """where(c, a, b): the piece changes where c crosses 0, unless c is a step (``x > 0``):
    then c is 0 on whole intervals, and changes piece only at the step's own kinks (x = 0),
    which the step declares."""
    return [] if constant_between_kinks(operands[0]) else [operands[0]]


_AT_ZERO = Kinks(_first, ("its argument is 0",))
_STEP_AT_ZERO = Kinks(_first, ("its argument is 0",), steps=True)
_AT_TIES = Kinks(_differences, ("its two arguments are equal",))
_AT_CONDITION = Kinks(_condition, ("its condition is 0",))
_SIDES_EQUAL = Kinks(_differences, ("its two sides are equal",), steps=True)


# -- torch sides ----------------------------------------------------------------------------


def _elementwise(
    name: str, summary: str, node: type, torch_fn: Callable[..., Any], kinks: Kinks | None = None,
    code: str | None = None, group: str = "",
) -> Function:
    """An elementwise function of one tensor; its code is ``torch.<name>(x)`` unless given."""
    return Function(name, summary, torch_fn, node, elementwise=True, kinks=kinks, code=code or f"torch.{name}({{0}})",
                    group=group)


def _axis_code(whole: str, along: str) -> Callable[..., str]:
    """The code of a function with an optional axis: ``whole`` without it, ``along`` with it."""
    return lambda x, axis=None: whole.format(x) if axis is None else along.format(x, axis)


def _log(x: sp.Basic, base: sp.Basic | None = None) -> sp.Basic:
    if base is None:
        return sp.log(x, evaluate=False)
    return sp.Mul(
        sp.log(x, evaluate=False), sp.Pow(sp.log(base, evaluate=False), -1, evaluate=False),
        evaluate=False,
    )


def _over_all_or_axis(whole: Callable[[Any], Any], along: Callable[[Any, int], Any]):
    """A reduction over every element, or along ``axis`` when one is given."""

    def reduce(x: Any, axis: int | None = None) -> Any:
        return whole(x) if axis is None else along(x, axis)

    return reduce


def _softmax_all(x: Any) -> Any:
    if x.dim() == 1:  # no reshape: under vmap its backward costs a third more (jacrev, n = 1000)
        return torch.softmax(x, 0)
    return torch.softmax(x.reshape(-1), 0).reshape(x.shape)


def _largest(values: Sequence[Any]) -> Any:
    """The elementwise maximum of tensors and numbers, in the tensors' dtype."""
    like = next((v for v in values if isinstance(v, torch.Tensor)), None)
    tensors = [torch.as_tensor(v, dtype=None if like is None else like.dtype,
                               device=None if like is None else like.device) for v in values]
    return torch.stack(torch.broadcast_tensors(*tensors)).amax(0)


def _comparison(test: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """A comparison as 0/1 in the operands' floating dtype (no gradient flows through it)."""
    return lambda a, b: test(a, b).to(torch.promote_types(a.dtype, b.dtype))


def _cbrt(x: Any) -> Any:
    return torch.sign(x) * torch.abs(x).pow(1 / 3)


def _gamma(x: Any) -> Any:
    # Γ(x) = exp(lgamma(x)) for x > 0 and, by reflection, π / (sin(πx) Γ(1 - x)) below. Each
    # branch sees only arguments it is finite at, so neither leaks a NaN into the other's gradient.
    positive = x > 0
    right = torch.where(positive, x, torch.ones_like(x))
    left = torch.where(positive, torch.full_like(x, 0.5), x)
    reflected = math.pi / (torch.sin(math.pi * left) * torch.exp(torch.lgamma(1 - left)))
    return torch.where(positive, torch.exp(torch.lgamma(right)), reflected)


# NOTE [kinks exactly at 0]
# The piece of floor changes where sin(πx) changes sign, but in floating point sin(π·1) is
# 1.2e-16, not 0, so a point on the kink x = 1 would not be seen to be on it. The expressions
# below change sign at the same places and are exactly 0 there: (-1)^n (x - n) with n = round(x)
# is sin(πx)'s sign between the half-integers, and x - n is exact at an integer; likewise
# (-1)^m (x - m - 1/2) with m = floor(x) is -cos(πx)'s sign, exact at a half-integer.


def _alternating(x: sp.Basic, n: sp.Basic, offset: sp.Basic) -> sp.Basic:
    """cos(πn)·(x - n - offset): (-1)^n times the distance from n + offset."""
    distance = sp.Add(x, sp.Mul(-1, n, evaluate=False), evaluate=False)
    if offset != 0:
        distance = sp.Add(distance, -offset, evaluate=False)
    return sp.Mul(sp.cos(sp.Mul(sp.pi, n, evaluate=False), evaluate=False), distance, evaluate=False)


def _integers(operands: Sequence[sp.Basic]) -> list[sp.Basic]:
    """floor, ceil: the piece changes where x crosses an integer (NOTE [kinks exactly at 0])."""
    x = operands[0]
    return [_alternating(x, nodes.round(x, evaluate=False), sp.S.Zero)]


def _halves(operands: Sequence[sp.Basic]) -> list[sp.Basic]:
    """round: the piece changes where x crosses a half-integer (NOTE [kinks exactly at 0])."""
    x = operands[0]
    return [_alternating(x, nodes.floor(x, evaluate=False), sp.S.Half)]


def _bounds(operands: Sequence[sp.Basic]) -> list[sp.Basic]:
    """clamp: the piece changes where x crosses either bound."""
    x, low, high = operands
    return [sp.Add(x, -low, evaluate=False), sp.Add(x, -high, evaluate=False)]


_AT_INTEGERS = Kinks(_integers, ("its argument is an integer",), steps=True)
_AT_HALVES = Kinks(_halves, ("its argument is halfway between two integers",), steps=True)
_AT_BOUNDS = Kinks(_bounds, ("its first argument equals its lower bound", "its first argument equals its upper bound"))


def _cat(*parts: Any, axis: int = 0) -> Any:
    return torch.cat([part.reshape(1) if not part.dim() else part for part in parts], dim=axis)


def _pad(x: Any, before: int, after: int, axis: int = -1) -> Any:
    return torch.nn.functional.pad(x.movedim(axis, -1), (before, after)).movedim(-1, axis)


def _shift(x: Any, shift: int, axis: int | None = None) -> Any:
    moved = x.reshape(-1) if axis is None else x.movedim(axis, -1)
    if abs(shift) >= moved.shape[-1]:
        out = torch.zeros_like(moved)
    else:  # a negative pad crops: (shift, -shift) moves the elements shift places
        out = torch.nn.functional.pad(moved, (shift, -shift))
    return out.reshape(x.shape) if axis is None else out.movedim(-1, axis)


def _slogdet(x: Any) -> Any:
    # log|det| as the sum of log|U_ii| of an LU factorization (what slogdet computes), through
    # lu_factor_ex, which never raises: at a singular matrix the value is -inf and the derivative
    # NaN (jacli's non-finite report), where slogdet's backward would raise from its solve
    lu, _, _ = torch.linalg.lu_factor_ex(x)
    return lu.diagonal(dim1=-2, dim2=-1).abs().log().sum(-1)


def _nonsingular(name: str, operation: Callable[..., Any]) -> Callable[..., Any]:
    """``operation``, with torch's error at a singular matrix as the user's error it is."""

    def call(*args: Any) -> Any:
        try:
            return operation(*args)
        except torch.linalg.LinAlgError as error:
            from jacli.errors import InputError

            reason = str(error).strip().splitlines()[0]
            raise InputError(
                f"{name} needs an invertible matrix, and this one is singular ({reason}); give a matrix "
                "with a nonzero determinant"
            ) from None

    return call


def check_subscripts(subscripts: str, count: int) -> str:
    """einsum's subscripts, checked against the operand count, in explicit form (``"ij,jk->ik"``;
    without ``->`` the output is the letters used once, in alphabetical order, as numpy).

    Raises:
        ValueError: what is wrong with them, for the parser to show.

    Example:
        >>> check_subscripts("ij, jk", 2)
        'ij,jk->ik'
    """
    text = "".join(subscripts.split())
    if "..." in text:
        raise ValueError("'...' (broadcasting) is not supported; give every axis a letter")
    if text.count("->") > 1 or ("-" in text.replace("->", "")) or (">" in text.replace("->", "")):
        raise ValueError("it may have one '->', between the inputs and the output")
    inputs, arrow, output = text.partition("->")
    terms = inputs.split(",")
    for term in terms + ([output] if arrow else []):
        odd = [c for c in term if not ("a" <= c <= "z" or "A" <= c <= "Z")]
        if odd:
            raise ValueError(f"{odd[0]!r} is not a letter; name each axis with a letter a-z or A-Z")
    if len(terms) != count:
        raise ValueError(f"they name {len(terms)} operand{'s' if len(terms) != 1 else ''} and the call gives {count}")
    used = "".join(terms)
    if not arrow:
        output = "".join(sorted(c for c in set(used) if used.count(c) == 1))
    for letter in output:
        if output.count(letter) > 1:
            raise ValueError(f"the output {output!r} repeats {letter}")
        if letter not in used:
            raise ValueError(f"the output's {letter} is in no input")
    return f"{','.join(terms)}->{output}"


def _like(like: Any) -> dict[str, Any]:
    """The dtype and device of a constant tensor: those of ``like`` (an input), else float64."""
    if like is None:
        return {"dtype": torch.float64}
    return {"dtype": like.dtype if like.is_floating_point() else torch.float64, "device": like.device}


def _shift_code(x: str, shift: int, axis: int | None = None) -> str:
    """``shift`` as plain torch: roll, then zeros where the elements wrapped around."""
    moved = f"{x}.reshape(-1)" if axis is None else f"{x}.movedim({axis}, -1)"
    kept = f"torch.arange({moved}.shape[-1], device=device)"
    kept = f"({kept} >= {shift}) & ({kept} < {moved}.shape[-1] + {shift})"
    out = f"torch.where({kept}, torch.roll({moved}, {shift}, -1), 0)"
    return f"{out}.reshape({x}.shape)" if axis is None else f"{out}.movedim(-1, {axis})"


def _arange_code(*bounds: Any) -> str:
    """arange as the torch side computes it: start + step * arange(count), in float."""
    start, _, step = shapes.arange_bounds(*bounds)
    (count,) = shapes.arange(*bounds)
    return f"({float(start)!r} + {float(step)!r} * torch.arange({count}, dtype=dtype, device=device))"


def _arange(*bounds: Any, like: Any = None) -> Any:
    start, _, step = shapes.arange_bounds(*bounds)
    (count,) = shapes.arange(*bounds)
    return float(start) + float(step) * torch.arange(count, **_like(like))


def _linspace(start: Any, stop: Any, count: int, like: Any = None) -> Any:
    return torch.linspace(float(start), float(stop), count, **_like(like))


def _eye(n: int, m: int | None = None, like: Any = None) -> Any:
    return torch.eye(n, n if m is None else m, **_like(like))


def _flip(x: Any, axis: int | None = None) -> Any:
    if not x.dim():
        return x
    return torch.flip(x, tuple(range(x.dim())) if axis is None else (axis,))


def _roll(x: Any, shift: int, axis: int | None = None) -> Any:
    if not x.dim():
        return x
    return torch.roll(x, shift) if axis is None else torch.roll(x, shift, axis)


def _accumulate(name: str) -> Callable[..., Any]:
    def accumulate(x: Any, axis: int | None = None) -> Any:
        if axis is None:
            return getattr(torch, name)(x.reshape(-1), 0)
        return getattr(torch, name)(x, axis) if x.dim() else x

    return accumulate


def _transpose(x: Any, dim0: int | None = None, dim1: int | None = None) -> Any:
    if dim0 is None:
        return x.permute(*reversed(range(x.dim())))
    return x.transpose(dim0, dim1)


_TABLE = [
    _elementwise("sin", "sine", sp.sin, lambda x: torch.sin(x)),
    _elementwise("cos", "cosine", sp.cos, lambda x: torch.cos(x)),
    _elementwise("tan", "tangent", sp.tan, lambda x: torch.tan(x)),
    _elementwise("asin", "inverse sine", sp.asin, lambda x: torch.asin(x)),
    _elementwise("acos", "inverse cosine", sp.acos, lambda x: torch.acos(x)),
    _elementwise("atan", "inverse tangent", sp.atan, lambda x: torch.atan(x)),
    _elementwise("sinh", "hyperbolic sine", sp.sinh, lambda x: torch.sinh(x)),
    _elementwise("cosh", "hyperbolic cosine", sp.cosh, lambda x: torch.cosh(x)),
    _elementwise("tanh", "hyperbolic tangent", sp.tanh, lambda x: torch.tanh(x)),
    _elementwise("asinh", "inverse hyperbolic sine", sp.asinh, lambda x: torch.asinh(x)),
    _elementwise("acosh", "inverse hyperbolic cosine", sp.acosh, lambda x: torch.acosh(x)),
    _elementwise("atanh", "inverse hyperbolic tangent", sp.atanh, lambda x: torch.atanh(x)),
    _elementwise("exp", "e to the power x", sp.exp, lambda x: torch.exp(x)),
    Function(
        "log", "natural logarithm; log(x, b) is the logarithm to base b",
        # The parser builds log(x, b) as log(x)/log(b), so trees hold one-argument logs only;
        # the torch side takes the base anyway, to be the same function as the SymPy side.
        lambda x, base=None: torch.log(x) if base is None else torch.log(x) / torch.log(base),
        sp.log, tensors=(1, 2), elementwise=True, build=_log, code="torch.log({0})",
    ),
    Function(
        "sqrt", "square root", lambda x: torch.sqrt(x), None, elementwise=True, code="torch.sqrt({0})",
        build=lambda x: sp.Pow(x, sp.S.Half, evaluate=False),
    ),
    _elementwise("abs", "absolute value", sp.Abs, lambda x: torch.abs(x), _AT_ZERO),
    _elementwise("sign", "-1, 0 or 1", sp.sign, lambda x: torch.sign(x), _STEP_AT_ZERO),
    _elementwise("erf", "error function", sp.erf, lambda x: torch.special.erf(x),
                 code="torch.special.erf({0})", group=SPECIAL),
    _elementwise("relu", "max(x, 0)", nodes.relu, lambda x: torch.relu(x), _AT_ZERO),
    _elementwise("sigmoid", "1 / (1 + exp(-x))", nodes.sigmoid, lambda x: torch.sigmoid(x)),
    _elementwise(
        "softplus", "log(1 + exp(x))", nodes.softplus,
        lambda x: torch.nn.functional.softplus(x), code="torch.nn.functional.softplus({0})",
    ),
    _elementwise("log1p", "log(1 + x), accurate for small x", nodes.log1p, lambda x: torch.log1p(x)),
    _elementwise("expm1", "exp(x) - 1, accurate for small x", nodes.expm1, lambda x: torch.expm1(x)),
    _elementwise(
        "logsigmoid", "log(sigmoid(x)), stable for large |x|", nodes.logsigmoid,
        lambda x: torch.nn.functional.logsigmoid(x), code="torch.nn.functional.logsigmoid({0})",
    ),
    _elementwise("cbrt", "real cube root (negative for negative x)", nodes.cbrt, _cbrt,
                 code="(torch.sign({0}) * torch.abs({0}).pow(1 / 3))"),
    _elementwise("gamma", "the gamma function Γ(x)", sp.gamma, _gamma, group=SPECIAL, code=(
        "torch.where({0} > 0, torch.exp(torch.lgamma(torch.where({0} > 0, {0}, torch.ones_like({0})))), "
        "math.pi / (torch.sin(math.pi * torch.where({0} > 0, torch.full_like({0}, 0.5), {0}))"
        " * torch.exp(torch.lgamma(1 - torch.where({0} > 0, torch.full_like({0}, 0.5), {0})))))")),
    _elementwise("lgamma", "log|Γ(x)|", nodes.lgamma, lambda x: torch.lgamma(x), group=SPECIAL),
    Function(
        "digamma", "d/dx lgamma(x)", lambda x: torch.special.digamma(x), None, elementwise=True, group=SPECIAL,
        code="torch.special.digamma({0})",
        build=lambda x: sp.polygamma(0, x, evaluate=False),
    ),
    Function(
        "hypot", "sqrt(a**2 + b**2) without overflow", lambda a, b: torch.hypot(a, b), nodes.hypot,
        tensors=(2, 2), elementwise=True, code="torch.hypot({0}, {1})",
    ),
    Function(
        "atan2", "atan2(y, x): the angle of the point (x, y), in (-pi, pi]", lambda y, x: torch.atan2(y, x),
        sp.atan2, tensors=(2, 2), elementwise=True, kinks=_AT_ZERO, code="torch.atan2({0}, {1})",
    ),
    _elementwise("floor", "the largest integer <= x (derivative 0, as torch)", nodes.floor,
                 lambda x: torch.floor(x), _AT_INTEGERS),
    _elementwise("ceil", "the smallest integer >= x (derivative 0, as torch)", nodes.ceil,
                 lambda x: torch.ceil(x), _AT_INTEGERS),
    _elementwise("round", "the nearest integer, halves to even (derivative 0, as torch)", nodes.round,
                 lambda x: torch.round(x), _AT_HALVES),
    Function(
        "clamp", "clamp(x, low, high): x limited to [low, high]; derivative 1 on the closed interval, as torch",
        lambda x, low, high: torch.clamp(x, low, high), nodes.clamp, tensors=(3, 3), elementwise=True,
        kinks=_AT_BOUNDS, code="torch.clamp({0}, {1}, {2})",
    ),
    Function(
        "where", "where(c, a, b): a where c is not 0, else b (c is often a comparison: x > 0)",
        lambda c, a, b: torch.where(c != 0, a, b), nodes.where, tensors=(3, 3), elementwise=True,
        kinks=_AT_CONDITION, code="torch.where({0} != 0, {1}, {2})",
    ),
    Function(
        "min", "elementwise minimum of two tensors", lambda a, b: torch.minimum(a, b), sp.Min,
        tensors=(2, 2), elementwise=True, kinks=_AT_TIES, code="torch.minimum({0}, {1})",
    ),
    Function(
        "max", "elementwise maximum of two tensors", lambda a, b: torch.maximum(a, b), sp.Max,
        tensors=(2, 2), elementwise=True, kinks=_AT_TIES, code="torch.maximum({0}, {1})",
    ),
    Function(
        "sum", "sum of all elements; sum(x, axis) along one axis",
        _over_all_or_axis(lambda x: x.sum(), lambda x, axis: x.sum(axis)),
        nodes.tensor_op("sum"), ints=(0, 1), expand=_sum_expansion, shape=shapes.reduced,
        group=REDUCTIONS, sparsity=_sparsity("reduction"),
        code=_axis_code("torch.sum({})", "torch.sum({}, {})"),
    ),
    Function(
        "mean", "mean of all elements; mean(x, axis) along one axis",
        _over_all_or_axis(lambda x: x.mean(), lambda x, axis: x.mean(axis)),
        nodes.tensor_op("mean"), ints=(0, 1), expand=_mean_expansion, shape=shapes.reduced,
        group=REDUCTIONS, sparsity=_sparsity("reduction"),
        code=_axis_code("torch.mean({})", "torch.mean({}, {})"),
    ),
    Function(
        "prod", "product of all elements; prod(x, axis) along one axis",
        _over_all_or_axis(lambda x: x.prod(), lambda x, axis: x.prod(axis)),
        nodes.tensor_op("prod"), ints=(0, 1), expand=_prod_expansion, shape=shapes.reduced,
        group=REDUCTIONS, sparsity=_sparsity("reduction"),
        code=_axis_code("torch.prod({})", "torch.prod({}, {})"),
    ),
    Function(
        "norm", "Euclidean norm of all elements; norm(x, axis) along one axis",
        _over_all_or_axis(
            lambda x: torch.linalg.vector_norm(x), lambda x, axis: torch.linalg.vector_norm(x, dim=axis)
        ),
        nodes.tensor_op("norm"), ints=(0, 1), expand=_norm_expansion, shape=shapes.reduced,
        group=REDUCTIONS, sparsity=_sparsity("reduction"),
        code=_axis_code("torch.linalg.vector_norm({})", "torch.linalg.vector_norm({}, dim={})"),
    ),
    Function(
        "dot", "inner product of two vectors of the same length",
        lambda a, b: torch.dot(a, b), nodes.tensor_op("dot"), tensors=(2, 2),
        expand=_dot_expansion, shape=shapes.dot, group=LINEAR_ALGEBRA, sparsity=_sparsity("dot"),
        code="torch.dot({0}, {1})",
    ),
    Function(
        "softmax", "exp(x) / sum(exp(x)) over all elements; softmax(x, axis) along one axis",
        _over_all_or_axis(_softmax_all, lambda x, axis: torch.softmax(x, axis)),
        nodes.tensor_op("softmax"), ints=(0, 1), expand=_softmax_expansion, shape=shapes.same,
        group=REDUCTIONS, sparsity=_sparsity("along_axis"),
        code=_axis_code("torch.softmax({0}.reshape(-1), 0).reshape({0}.shape)", "torch.softmax({0}, {1})"),
    ),
    Function(
        "log_softmax", "x - logsumexp(x), stable; log_softmax(x, axis) along one axis",
        _over_all_or_axis(
            lambda x: torch.log_softmax(x.reshape(-1), 0).reshape(x.shape), lambda x, axis: torch.log_softmax(x, axis)
        ),
        nodes.tensor_op("log_softmax"), ints=(0, 1), expand=_log_softmax_expansion, shape=shapes.same,
        group=REDUCTIONS, sparsity=_sparsity("along_axis"),
        code=_axis_code("torch.log_softmax({0}.reshape(-1), 0).reshape({0}.shape)", "torch.log_softmax({0}, {1})"),
    ),
    Function(
        "logsumexp", "log(sum(exp(x))) over all elements; logsumexp(x, axis) along one axis",
        _over_all_or_axis(
            lambda x: torch.logsumexp(x.reshape(-1), 0), lambda x, axis: torch.logsumexp(x, axis)
        ),
        nodes.tensor_op("logsumexp"), ints=(0, 1), expand=_logsumexp_expansion, shape=shapes.reduced,
        group=REDUCTIONS, sparsity=_sparsity("reduction"),
        code=_axis_code("torch.logsumexp({0}.reshape(-1), 0)", "torch.logsumexp({0}, {1})"),
    ),
    Function(
        "cat", "cat(a, b, ...): joined along the first axis (a scalar counts as one element); cat(a, b, axis=1) along another",
        _cat, nodes.tensor_op("cat"), tensors=(1, 256), expand=_cat_expansion, shape=shapes.concatenated,
        keywords=("axis",),
        group=SHAPE, sparsity=_sparsity("concatenate"),
        code=lambda *parts, axis=0: "torch.cat([" + ", ".join(f"torch.atleast_1d({p})" for p in parts) + f"], dim={axis})",
    ),
    Function(
        "stack", "stack(a, b, ...): the same as [a, b, ...], broadcast to one shape along a new first axis; "
        "stack(a, b, axis=1) along a new axis there",
        lambda *parts, axis=0: torch.stack(torch.broadcast_tensors(*parts), dim=axis), nodes.tensor_op("stack"),
        tensors=(1, 256), keywords=("axis",),
        elementwise=False, expand=lambda *parts, axis=0: symbolic_array(np.stack(np.broadcast_arrays(*parts), axis=axis)),
        shape=shapes.stacked, group=SHAPE, sparsity=_sparsity("stack"),
        # without axis= it is the list literal [a, b, ...], which every stage knows (``make``)
        build=lambda *parts: nodes.Components(*parts),
        code=lambda *parts, axis=0: f"torch.stack(torch.broadcast_tensors({', '.join(parts)}), dim={axis})",
    ),
    Function(
        "flip", "flip(x): reversed along every axis; flip(x, axis) along one",
        _flip, nodes.tensor_op("flip"), ints=(0, 1), expand=_flip_expansion, shape=shapes.flipped,
        group=SHAPE, sparsity=_sparsity("flip"),
        code=_axis_code("torch.flip({0}, tuple(range({0}.dim())))", "torch.flip({0}, ({1},))"),
    ),
    Function(
        "roll", "roll(x, shift): elements moved shift places, wrapping around (flattened); roll(x, shift, axis)",
        _roll, nodes.tensor_op("roll"), ints=(1, 2), expand=_roll_expansion, shape=shapes.rolled,
        group=SHAPE, sparsity=_sparsity("roll"),
        code=lambda x, shift, axis=None: f"torch.roll({x}, {shift})" if axis is None else f"torch.roll({x}, {shift}, {axis})",
    ),
    Function(
        "pad", "pad(x, before, after): zeros added before and after, along the last axis; pad(x, before, after, axis)",
        _pad, nodes.tensor_op("pad"), ints=(2, 3), expand=_pad_expansion, shape=shapes.padded,
        group=SHAPE, sparsity=_sparsity("pad"),
        code=lambda x, before, after, axis=-1: f"torch.nn.functional.pad({x}.movedim({axis}, -1), ({before}, {after})).movedim(-1, {axis})",
    ),
    Function(
        "shift", "shift(x, k): elements moved k places, zeros coming in (roll without wrap-around, flattened); shift(x, k, axis)",
        _shift, nodes.tensor_op("shift"), ints=(1, 2), expand=_shift_expansion, shape=shapes.shifted,
        group=SHAPE, sparsity=_sparsity("shift"),
        code=_shift_code,
    ),
    Function(
        "cumsum", "cumsum(x): running sum of the flattened elements; cumsum(x, axis) along one axis",
        _accumulate("cumsum"), nodes.tensor_op("cumsum"), ints=(0, 1), expand=_accumulation(lambda *a, **k: np.cumsum(*a, **k)),
        shape=shapes.accumulated, group=SHAPE, sparsity=_sparsity("prefix"),
        code=_axis_code("torch.cumsum({0}.reshape(-1), 0)", "torch.cumsum({0}, {1})"),
    ),
    Function(
        "cumprod", "cumprod(x): running product of the flattened elements; cumprod(x, axis) along one axis",
        _accumulate("cumprod"), nodes.tensor_op("cumprod"), ints=(0, 1), expand=_accumulation(lambda *a, **k: np.cumprod(*a, **k)),
        shape=shapes.accumulated, group=SHAPE, sparsity=_sparsity("prefix"),
        code=_axis_code("torch.cumprod({0}.reshape(-1), 0)", "torch.cumprod({0}, {1})"),
    ),
    Function(
        "diff", "diff(x): x[1:] - x[:-1] along the last axis; diff(x, axis) along another",
        lambda x, axis=-1: torch.diff(x, dim=axis), nodes.tensor_op("diff"), ints=(0, 1),
        expand=_diff_expansion, shape=shapes.differenced, group=SHAPE, sparsity=_sparsity("difference"),
        code=_axis_code("torch.diff({}, dim=-1)", "torch.diff({}, dim={})"),
    ),
    Function(
        "det", "determinant of a square matrix (or of each matrix of a stack)",
        lambda x: torch.linalg.det(x), nodes.tensor_op("det"), expand=_det_expansion, shape=shapes.determinant,
        group=LINEAR_ALGEBRA, sparsity=_sparsity("per_matrix"),
        code="torch.linalg.det({0})",
    ),
    Function(
        "logdet", "log(det(A)): NaN where det(A) < 0, as torch.logdet",
        lambda x: torch.logdet(x), nodes.tensor_op("logdet"), expand=_logdet_expansion, shape=shapes.log_determinant,
        group=LINEAR_ALGEBRA, sparsity=_sparsity("per_matrix"),
        code="torch.logdet({0})",
    ),
    Function(
        "slogdet", "log|det(A)|, finite where det(A) < 0 too (its sign is sign(det(A)))",
        _slogdet, nodes.tensor_op("slogdet"), expand=_slogdet_expansion, shape=shapes.signed_log_determinant,
        group=LINEAR_ALGEBRA, sparsity=_sparsity("per_matrix"),
        code="torch.linalg.lu_factor_ex({0})[0].diagonal(dim1=-2, dim2=-1).abs().log().sum(-1)",
    ),
    Function(
        "inv", "inverse of a square matrix (or of each matrix of a stack)",
        _nonsingular("inv", lambda x: torch.linalg.inv(x)), nodes.tensor_op("inv"), expand=_inv_expansion, shape=shapes.inverse,
        group=LINEAR_ALGEBRA, sparsity=_sparsity("per_matrix"),
        code="torch.linalg.inv({0})",
    ),
    Function(
        "solve", "solve(A, b): x with A @ x = b, for a square A and a vector or matrix b",
        _nonsingular("solve", lambda a, b: torch.linalg.solve(a, b)), nodes.tensor_op("solve"), tensors=(2, 2),
        expand=_solve_expansion, shape=shapes.solved, group=LINEAR_ALGEBRA, sparsity=_sparsity("solve"),
        code="torch.linalg.solve({0}, {1})",
    ),
    Function(
        "trace", "sum of a matrix's diagonal", lambda x: torch.trace(x), nodes.tensor_op("trace"),
        expand=_trace_expansion, shape=shapes.traced, group=LINEAR_ALGEBRA, sparsity=_sparsity("trace"),
        code="torch.trace({0})",
    ),
    Function(
        "diag", "diag(v): the diagonal matrix of a vector; diag(A): the diagonal of a matrix",
        lambda x: torch.diag(x), nodes.tensor_op("diag"), expand=_diag_expansion, shape=shapes.diagonal,
        group=LINEAR_ALGEBRA, sparsity=_sparsity("diag"),
        code="torch.diag({0})",
    ),
    Function(
        "outer", "outer(a, b): the matrix a[i] * b[j] of two vectors", lambda a, b: torch.outer(a, b),
        nodes.tensor_op("outer"), tensors=(2, 2), expand=_outer_expansion, shape=shapes.outer,
        group=LINEAR_ALGEBRA, sparsity=_sparsity("outer"),
        code="torch.outer({0}, {1})",
    ),
    Function(
        "kron", "kron(a, b): the Kronecker product, every a[i] * b (torch.kron)", lambda a, b: torch.kron(a, b),
        nodes.tensor_op("kron"), tensors=(2, 2), expand=_kron_expansion, shape=shapes.kron,
        group=LINEAR_ALGEBRA, sparsity=_sparsity("kron"),
        code="torch.kron({0}, {1})",
    ),
    Function(
        "cross", "cross(a, b): the cross product of 3-vectors (of each pair along the last axis, broadcast)",
        lambda a, b: torch.linalg.cross(*torch.broadcast_tensors(a, b), dim=-1), nodes.tensor_op("cross"),
        tensors=(2, 2), expand=_cross_expansion, shape=shapes.cross, group=LINEAR_ALGEBRA, sparsity=_sparsity("cross"),
        code="torch.linalg.cross(*torch.broadcast_tensors({0}, {1}), dim=-1)",
    ),
    Function(
        "einsum", "einsum(\"ij,jk->ik\", a, b): sums of products named by letters (torch.einsum)",
        lambda *args: torch.einsum(args[-1], *args[:-1]), nodes.einsum, tensors=(1, 8),
        expand=_einsum_expansion, shape=shapes.einsum, group=LINEAR_ALGEBRA, sparsity=_sparsity("einsum"),
        subscripts=check_subscripts,
        code=lambda *args: f"torch.einsum({args[-1]!r}, {', '.join(args[:-1])})",
    ),
    Function(
        "tril", "tril(A): the lower triangle, zeros above; tril(A, k) from the k-th diagonal",
        lambda x, k=0: torch.tril(x, k), nodes.tensor_op("tril"), ints=(0, 1),
        expand=_triangle_expansion(lambda *a: np.tril(*a)), shape=shapes.triangle, group=LINEAR_ALGEBRA, sparsity=_sparsity("lower"),
        code=_axis_code("torch.tril({}, 0)", "torch.tril({}, {})"),
    ),
    Function(
        "triu", "triu(A): the upper triangle, zeros below; triu(A, k) from the k-th diagonal",
        lambda x, k=0: torch.triu(x, k), nodes.tensor_op("triu"), ints=(0, 1),
        expand=_triangle_expansion(lambda *a: np.triu(*a)), shape=shapes.triangle, group=LINEAR_ALGEBRA, sparsity=_sparsity("upper"),
        code=_axis_code("torch.triu({}, 0)", "torch.triu({}, {})"),
    ),
    Function(
        "reshape", "reshape(x, 2, 3): the same elements in a new shape (one size may be -1)",
        lambda x, *shape: x.reshape(shape), nodes.tensor_op("reshape"), ints=tuple(range(1, 9)),
        expand=_reshape_expansion, shape=shapes.reshaped,
        group=SHAPE, sparsity=_sparsity("reshape"),
        code=lambda x, *shape: f"torch.reshape({x}, ({', '.join(map(str, shape))}{',' if len(shape) == 1 else ''}))",
    ),
    Function(
        "transpose", "axes reversed; transpose(x, i, j) swaps axes i and j",
        _transpose, nodes.tensor_op("transpose"), ints=(0, 2), expand=_transpose_expansion, shape=shapes.transposed,
        group=SHAPE, sparsity=_sparsity("transpose"),
        code=lambda x, dim0=None, dim1=None: f"{x}.permute(*reversed(range({x}.dim())))" if dim0 is None
        else f"torch.transpose({x}, {dim0}, {dim1})",
    ),
    Function(
        "matmul", "matrix product, the same as a @ b", lambda a, b: torch.matmul(a, b),
        nodes.MatMul, tensors=(2, 2), expand=_matmul_expansion, shape=shapes.matmul,
        group=LINEAR_ALGEBRA, sparsity=_sparsity("matmul"),
        code="torch.matmul({0}, {1})",
    ),
    Function(
        "arange", "arange(stop), arange(start, stop), arange(start, stop, step): start, start + step, ... below stop",
        _arange, nodes.tensor_op("arange"), tensors=(0, 0), ints=(1, 2, 3), expand=_arange_expansion,
        shape=shapes.arange, group=CONSTANT, constant=True,
        code=_arange_code,
    ),
    Function(
        "linspace", "linspace(start, stop, n): n evenly spaced numbers from start to stop",
        _linspace, nodes.tensor_op("linspace"), tensors=(0, 0), ints=(3,), expand=_linspace_expansion,
        shape=shapes.linspace, group=CONSTANT, constant=True,
        code=lambda start, stop, count: f"torch.linspace({float(start)!r}, {float(stop)!r}, {count}, dtype=dtype, device=device)",
    ),
    Function(
        "ones", "ones(n), ones(m, n), ...: a tensor of ones", lambda *shape, like=None: torch.ones(shape, **_like(like)),
        nodes.tensor_op("ones"), tensors=(0, 0), ints=tuple(range(1, 9)),
        expand=lambda *shape: symbolic_array(np.full(shape, sp.S.One, dtype=object)),
        shape=shapes.filled, group=CONSTANT, constant=True,
        code=lambda *shape: f"torch.ones({shape!r}, dtype=dtype, device=device)",
    ),
    Function(
        "zeros", "zeros(n), zeros(m, n), ...: a tensor of zeros", lambda *shape, like=None: torch.zeros(shape, **_like(like)),
        nodes.tensor_op("zeros"), tensors=(0, 0), ints=tuple(range(1, 9)),
        expand=lambda *shape: symbolic_array(np.full(shape, sp.S.Zero, dtype=object)),
        shape=shapes.filled, group=CONSTANT, constant=True,
        code=lambda *shape: f"torch.zeros({shape!r}, dtype=dtype, device=device)",
    ),
    Function(
        "eye", "eye(n): the n x n identity matrix; eye(n, m): n x m, ones on the diagonal",
        _eye, nodes.tensor_op("eye"), tensors=(0, 0), ints=(1, 2), expand=_eye_expansion,
        shape=shapes.eye, group=CONSTANT, constant=True,
        code=lambda n, m=None: f"torch.eye({n}, {n if m is None else m}, dtype=dtype, device=device)",
    ),
]

# Nodes that appear in exact derivatives (relu' is Heaviside(x, 0), sign' is 2*DiracDelta(x),
# max' is Heaviside(a - b)) but that users do not call. Their torch sides match torch's own
# derivatives: relu'(0) = 0, max splits ties 1/2 : 1/2, sign' = 0.
_DERIVATIVE_ONLY = [
    Function(
        "heaviside", "0 below zero, 1 above, H0 at zero (SymPy's default H0 is 1/2)",
        lambda x, at_zero=None: torch.heaviside(
            x, torch.full_like(x, 0.5) if at_zero is None else at_zero.to(x.dtype).expand_as(x)
        ),
        sp.Heaviside, tensors=(1, 2), elementwise=True, kinks=_STEP_AT_ZERO,
    ),
    Function(
        "polygamma", "polygamma(n, x): the n-th derivative of digamma (torch.special.polygamma)",
        lambda n, x: torch.special.polygamma(int(n.item()), x), sp.polygamma, tensors=(2, 2), elementwise=True,
        code="torch.special.polygamma(int({0}.item()), {1})",  # digamma(x) is polygamma(0, x) in a tree
    ),
    Function(
        "held_max", "the largest argument, held constant (the shift of a stable softmax)",
        lambda *xs: _largest(xs).detach(),
        nodes.held_max, tensors=(1, 1 << 30), elementwise=True,
    ),
    Function(
        "diracdelta", "zero away from zero (torch's derivative of sign)",
        lambda x, *order: torch.zeros_like(x), sp.DiracDelta, tensors=(1, 2), elementwise=True,
        kinks=_STEP_AT_ZERO,
    ),
]

# Nodes the parser builds from operators (a < b, a == b ...), not from calls: 1 where the
# comparison holds, else 0, with no gradient (torch's comparisons are not differentiable).
_OPERATORS = [
    Function(node.__name__, f"a {node.symbol} b: 1 where it holds, else 0", _comparison(test), node,
             tensors=(2, 2), elementwise=True, kinks=_SIDES_EQUAL, code=f"torch.{node.__name__}({{0}}, {{1}}).to({{0}}.dtype)")
    for node, test in [
        (nodes.lt, lambda a, b: torch.lt(a, b)), (nodes.le, lambda a, b: torch.le(a, b)),
        (nodes.gt, lambda a, b: torch.gt(a, b)), (nodes.ge, lambda a, b: torch.ge(a, b)),
        (nodes.eq, lambda a, b: torch.eq(a, b)), (nodes.ne, lambda a, b: torch.ne(a, b)),
    ]
]

COMPARISONS: dict[str, type] = {
    node: entry.node for node, entry in zip(["Lt", "LtE", "Gt", "GtE", "Eq", "NotEq"], _OPERATORS)
}
"""The comparison node for each ``ast`` comparison operator's class name (the parser's lookup)."""

FUNCTIONS: dict[str, Function] = {f.name: f for f in sorted(_TABLE, key=lambda f: GROUPS.index(f.group))}
"""Every callable name, by group (``GROUPS``' order), in table order within a group."""

BY_NODE: dict[type, Function] = {
    f.node: f for f in _TABLE + _OPERATORS + _DERIVATIVE_ONLY if f.node is not None
}
"""The table entry behind each SymPy node class (the compiler's lookup)."""

CONSTANTS: dict[str, sp.Basic] = {"pi": sp.pi, "e": sp.E}
"""Names that stand for numbers rather than variables."""
