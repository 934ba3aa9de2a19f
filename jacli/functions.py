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
from typing import Any, Callable, Sequence, TypeVar

import sympy as sp

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

Kinks = Callable[[Sequence[sp.Basic]], list[sp.Basic]]
"""``kinks(operands)``: expressions whose signs say on which piece of the function a point is."""

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
            abs, sign, Heaviside; the pairwise differences of the arguments of max and min.
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

    def __post_init__(self) -> None:
        low, high = self.tensors
        if not 1 <= low <= high:
            raise TypeError(f"table entry {self.name}: tensors={self.tensors} is no (min, max) range")
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

    def split(self, args: Sequence[Argument]) -> tuple[list[Argument], list[Argument]]:
        """A call's arguments as (operands, trailing integers): a parse tree's or a SymPy node's.

        Example:
            >>> from jacli.parse import parse
            >>> FUNCTIONS["sum"].split(parse("sum(x, 1)").tree.args)
            ([x], [1])
        """
        count = len(args) if self.ints == (0,) else self.tensors[1]
        return list(args[:count]), list(args[count:])

    def make(self, args: list[sp.Basic], ints: list[int]) -> sp.Basic:
        """The SymPy node for a call with these arguments (already checked by the parser)."""
        if self.build is not None:
            return self.build(*args, *ints)
        assert self.node is not None
        return self.node(*args, *(sp.Integer(i) for i in ints), evaluate=False)


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


def _cat_expansion(*parts: Symbolic) -> Symbolic:
    return symbolic_array(np.concatenate([part.reshape(1) if not part.ndim else part for part in parts]))


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

    def apply(*args: Any) -> Any:
        from jacli import structure

        return getattr(structure, rule)(*args)

    apply.__name__ = apply.__qualname__ = rule
    return apply


# -- kinks ----------------------------------------------------------------------------------


def _kink_at_zero(operands: Sequence[sp.Basic]) -> list[sp.Basic]:
    """relu, abs, sign, Heaviside: the piece is decided by the sign of the (first) argument."""
    return [operands[0]]


def _kink_at_ties(operands: Sequence[sp.Basic]) -> list[sp.Basic]:
    """max, min: the piece is decided by the sign of a - b, for each pair of arguments."""
    return [sp.Add(a, -b, evaluate=False) for a, b in itertools.combinations(operands, 2)]


# -- torch sides ----------------------------------------------------------------------------


def _elementwise(
    name: str, summary: str, node: type, torch_fn: Callable[..., Any], kinks: Kinks | None = None
) -> Function:
    return Function(name, summary, torch_fn, node, elementwise=True, kinks=kinks)


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


def _kink_at_integers(operands: Sequence[sp.Basic]) -> list[sp.Basic]:
    """floor, ceil: the piece changes where x crosses an integer, where sin(πx) changes sign."""
    return [sp.sin(sp.pi * operands[0], evaluate=False)]


def _kink_at_halves(operands: Sequence[sp.Basic]) -> list[sp.Basic]:
    """round: the piece changes where x crosses a half-integer, where cos(πx) changes sign."""
    return [sp.cos(sp.pi * operands[0], evaluate=False)]


def _kink_at_bounds(operands: Sequence[sp.Basic]) -> list[sp.Basic]:
    """clamp: the piece changes where x crosses either bound."""
    x, low, high = operands
    return [sp.Add(x, -low, evaluate=False), sp.Add(x, -high, evaluate=False)]


def _cat(*parts: Any) -> Any:
    return torch.cat([part.reshape(1) if not part.dim() else part for part in parts])


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
        sp.log, tensors=(1, 2), elementwise=True, build=_log,
    ),
    Function(
        "sqrt", "square root", lambda x: torch.sqrt(x), None, elementwise=True,
        build=lambda x: sp.Pow(x, sp.S.Half, evaluate=False),
    ),
    _elementwise("abs", "absolute value", sp.Abs, lambda x: torch.abs(x), _kink_at_zero),
    _elementwise("sign", "-1, 0 or 1", sp.sign, lambda x: torch.sign(x), _kink_at_zero),
    _elementwise("erf", "error function", sp.erf, lambda x: torch.special.erf(x)),
    _elementwise("relu", "max(x, 0)", nodes.relu, lambda x: torch.relu(x), _kink_at_zero),
    _elementwise("sigmoid", "1 / (1 + exp(-x))", nodes.sigmoid, lambda x: torch.sigmoid(x)),
    _elementwise(
        "softplus", "log(1 + exp(x))", nodes.softplus,
        lambda x: torch.nn.functional.softplus(x),
    ),
    _elementwise("log1p", "log(1 + x), accurate for small x", nodes.log1p, lambda x: torch.log1p(x)),
    _elementwise("expm1", "exp(x) - 1, accurate for small x", nodes.expm1, lambda x: torch.expm1(x)),
    _elementwise(
        "logsigmoid", "log(sigmoid(x)), stable for large |x|", nodes.logsigmoid,
        lambda x: torch.nn.functional.logsigmoid(x),
    ),
    _elementwise("cbrt", "real cube root (negative for negative x)", nodes.cbrt, _cbrt),
    _elementwise("gamma", "the gamma function Γ(x)", sp.gamma, _gamma),
    _elementwise("lgamma", "log|Γ(x)|", nodes.lgamma, lambda x: torch.lgamma(x)),
    Function(
        "digamma", "d/dx lgamma(x)", lambda x: torch.special.digamma(x), None, elementwise=True,
        build=lambda x: sp.polygamma(0, x, evaluate=False),
    ),
    Function(
        "hypot", "sqrt(a**2 + b**2) without overflow", lambda a, b: torch.hypot(a, b), nodes.hypot,
        tensors=(2, 2), elementwise=True,
    ),
    Function(
        "atan2", "atan2(y, x): the angle of the point (x, y), in (-pi, pi]", lambda y, x: torch.atan2(y, x),
        sp.atan2, tensors=(2, 2), elementwise=True, kinks=_kink_at_zero,
    ),
    _elementwise("floor", "the largest integer <= x (derivative 0, as torch)", nodes.floor,
                 lambda x: torch.floor(x), _kink_at_integers),
    _elementwise("ceil", "the smallest integer >= x (derivative 0, as torch)", nodes.ceil,
                 lambda x: torch.ceil(x), _kink_at_integers),
    _elementwise("round", "the nearest integer, halves to even (derivative 0, as torch)", nodes.round,
                 lambda x: torch.round(x), _kink_at_halves),
    Function(
        "clamp", "clamp(x, low, high): x limited to [low, high]; derivative 1 on the closed interval, as torch",
        lambda x, low, high: torch.clamp(x, low, high), nodes.clamp, tensors=(3, 3), elementwise=True,
        kinks=_kink_at_bounds,
    ),
    Function(
        "where", "where(c, a, b): a where c is not 0, else b (c is often a comparison: x > 0)",
        lambda c, a, b: torch.where(c != 0, a, b), nodes.where, tensors=(3, 3), elementwise=True,
        kinks=_kink_at_zero,
    ),
    Function(
        "min", "elementwise minimum of two tensors", lambda a, b: torch.minimum(a, b), sp.Min,
        tensors=(2, 2), elementwise=True, kinks=_kink_at_ties,
    ),
    Function(
        "max", "elementwise maximum of two tensors", lambda a, b: torch.maximum(a, b), sp.Max,
        tensors=(2, 2), elementwise=True, kinks=_kink_at_ties,
    ),
    Function(
        "sum", "sum of all elements; sum(x, axis) along one axis",
        _over_all_or_axis(lambda x: x.sum(), lambda x, axis: x.sum(axis)),
        nodes.tensor_op("sum"), ints=(0, 1), expand=_sum_expansion, shape=shapes.reduced,
        sparsity=_sparsity("reduction"),
    ),
    Function(
        "mean", "mean of all elements; mean(x, axis) along one axis",
        _over_all_or_axis(lambda x: x.mean(), lambda x, axis: x.mean(axis)),
        nodes.tensor_op("mean"), ints=(0, 1), expand=_mean_expansion, shape=shapes.reduced,
        sparsity=_sparsity("reduction"),
    ),
    Function(
        "prod", "product of all elements; prod(x, axis) along one axis",
        _over_all_or_axis(lambda x: x.prod(), lambda x, axis: x.prod(axis)),
        nodes.tensor_op("prod"), ints=(0, 1), expand=_prod_expansion, shape=shapes.reduced,
        sparsity=_sparsity("reduction"),
    ),
    Function(
        "norm", "Euclidean norm of all elements; norm(x, axis) along one axis",
        _over_all_or_axis(
            lambda x: torch.linalg.vector_norm(x), lambda x, axis: torch.linalg.vector_norm(x, dim=axis)
        ),
        nodes.tensor_op("norm"), ints=(0, 1), expand=_norm_expansion, shape=shapes.reduced,
        sparsity=_sparsity("reduction"),
    ),
    Function(
        "dot", "inner product of two vectors of the same length",
        lambda a, b: torch.dot(a, b), nodes.tensor_op("dot"), tensors=(2, 2),
        expand=_dot_expansion, shape=shapes.dot, sparsity=_sparsity("dot"),
    ),
    Function(
        "softmax", "exp(x) / sum(exp(x)) over all elements; softmax(x, axis) along one axis",
        _over_all_or_axis(_softmax_all, lambda x, axis: torch.softmax(x, axis)),
        nodes.tensor_op("softmax"), ints=(0, 1), expand=_softmax_expansion, shape=shapes.same,
        sparsity=_sparsity("along_axis"),
    ),
    Function(
        "log_softmax", "x - logsumexp(x), stable; log_softmax(x, axis) along one axis",
        _over_all_or_axis(
            lambda x: torch.log_softmax(x.reshape(-1), 0).reshape(x.shape), lambda x, axis: torch.log_softmax(x, axis)
        ),
        nodes.tensor_op("log_softmax"), ints=(0, 1), expand=_log_softmax_expansion, shape=shapes.same,
        sparsity=_sparsity("along_axis"),
    ),
    Function(
        "logsumexp", "log(sum(exp(x))) over all elements; logsumexp(x, axis) along one axis",
        _over_all_or_axis(
            lambda x: torch.logsumexp(x.reshape(-1), 0), lambda x, axis: torch.logsumexp(x, axis)
        ),
        nodes.tensor_op("logsumexp"), ints=(0, 1), expand=_logsumexp_expansion, shape=shapes.reduced,
        sparsity=_sparsity("reduction"),
    ),
    Function(
        "cat", "cat(a, b, ...): joined along the first axis (a scalar counts as one element)",
        _cat, nodes.tensor_op("cat"), tensors=(1, 256), expand=_cat_expansion, shape=shapes.concatenated,
        sparsity=_sparsity("concatenate"),
    ),
    Function(
        "stack", "stack(a, b, ...): the same as [a, b, ...], broadcast to one shape along a new first axis",
        lambda *parts: torch.stack(torch.broadcast_tensors(*parts)), None, tensors=(1, 256),
        elementwise=False, expand=lambda *parts: symbolic_array(np.stack(np.broadcast_arrays(*parts))),
        shape=lambda *parts: (len(parts),) + shapes.broadcast(parts), sparsity=_sparsity("stack"),
        build=lambda *parts: nodes.Components(*parts),
    ),
    Function(
        "flip", "flip(x): reversed along every axis; flip(x, axis) along one",
        _flip, nodes.tensor_op("flip"), ints=(0, 1), expand=_flip_expansion, shape=shapes.flipped,
        sparsity=_sparsity("flip"),
    ),
    Function(
        "roll", "roll(x, shift): elements moved shift places, wrapping around (flattened); roll(x, shift, axis)",
        _roll, nodes.tensor_op("roll"), ints=(1, 2), expand=_roll_expansion, shape=shapes.rolled,
        sparsity=_sparsity("roll"),
    ),
    Function(
        "cumsum", "cumsum(x): running sum of the flattened elements; cumsum(x, axis) along one axis",
        _accumulate("cumsum"), nodes.tensor_op("cumsum"), ints=(0, 1), expand=_accumulation(lambda *a, **k: np.cumsum(*a, **k)),
        shape=shapes.accumulated, sparsity=_sparsity("prefix"),
    ),
    Function(
        "cumprod", "cumprod(x): running product of the flattened elements; cumprod(x, axis) along one axis",
        _accumulate("cumprod"), nodes.tensor_op("cumprod"), ints=(0, 1), expand=_accumulation(lambda *a, **k: np.cumprod(*a, **k)),
        shape=shapes.accumulated, sparsity=_sparsity("prefix"),
    ),
    Function(
        "diff", "diff(x): x[1:] - x[:-1] along the last axis; diff(x, axis) along another",
        lambda x, axis=-1: torch.diff(x, dim=axis), nodes.tensor_op("diff"), ints=(0, 1),
        expand=_diff_expansion, shape=shapes.differenced, sparsity=_sparsity("difference"),
    ),
    Function(
        "det", "determinant of a square matrix (or of each matrix of a stack)",
        lambda x: torch.linalg.det(x), nodes.tensor_op("det"), expand=_det_expansion, shape=shapes.determinant,
        sparsity=_sparsity("per_matrix"),
    ),
    Function(
        "logdet", "log(det(A)): NaN where det(A) < 0, as torch.logdet",
        lambda x: torch.logdet(x), nodes.tensor_op("logdet"), expand=_logdet_expansion, shape=shapes.determinant,
        sparsity=_sparsity("per_matrix"),
    ),
    Function(
        "inv", "inverse of a square matrix (or of each matrix of a stack)",
        lambda x: torch.linalg.inv(x), nodes.tensor_op("inv"), expand=_inv_expansion, shape=shapes.inverse,
        sparsity=_sparsity("per_matrix"),
    ),
    Function(
        "solve", "solve(A, b): x with A @ x = b, for a square A and a vector or matrix b",
        lambda a, b: torch.linalg.solve(a, b), nodes.tensor_op("solve"), tensors=(2, 2),
        expand=_solve_expansion, shape=shapes.solved, sparsity=_sparsity("solve"),
    ),
    Function(
        "trace", "sum of a matrix's diagonal", lambda x: torch.trace(x), nodes.tensor_op("trace"),
        expand=_trace_expansion, shape=shapes.traced, sparsity=_sparsity("trace"),
    ),
    Function(
        "diag", "diag(v): the diagonal matrix of a vector; diag(A): the diagonal of a matrix",
        lambda x: torch.diag(x), nodes.tensor_op("diag"), expand=_diag_expansion, shape=shapes.diagonal,
        sparsity=_sparsity("diag"),
    ),
    Function(
        "outer", "outer(a, b): the matrix a[i] * b[j] of two vectors", lambda a, b: torch.outer(a, b),
        nodes.tensor_op("outer"), tensors=(2, 2), expand=_outer_expansion, shape=shapes.outer,
        sparsity=_sparsity("outer"),
    ),
    Function(
        "tril", "tril(A): the lower triangle, zeros above; tril(A, k) from the k-th diagonal",
        lambda x, k=0: torch.tril(x, k), nodes.tensor_op("tril"), ints=(0, 1),
        expand=_triangle_expansion(lambda *a: np.tril(*a)), shape=shapes.triangle, sparsity=_sparsity("lower"),
    ),
    Function(
        "triu", "triu(A): the upper triangle, zeros below; triu(A, k) from the k-th diagonal",
        lambda x, k=0: torch.triu(x, k), nodes.tensor_op("triu"), ints=(0, 1),
        expand=_triangle_expansion(lambda *a: np.triu(*a)), shape=shapes.triangle, sparsity=_sparsity("upper"),
    ),
    Function(
        "reshape", "reshape(x, 2, 3): the same elements in a new shape (one size may be -1)",
        lambda x, *shape: x.reshape(shape), nodes.tensor_op("reshape"), ints=tuple(range(1, 9)),
        expand=_reshape_expansion, shape=shapes.reshaped,
        sparsity=_sparsity("reshape"),
    ),
    Function(
        "transpose", "axes reversed; transpose(x, i, j) swaps axes i and j",
        _transpose, nodes.tensor_op("transpose"), ints=(0, 2), expand=_transpose_expansion, shape=shapes.transposed,
        sparsity=_sparsity("transpose"),
    ),
    Function(
        "matmul", "matrix product, the same as a @ b", lambda a, b: torch.matmul(a, b),
        nodes.MatMul, tensors=(2, 2), expand=_matmul_expansion, shape=shapes.matmul,
        sparsity=_sparsity("matmul"),
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
        sp.Heaviside, tensors=(1, 2), elementwise=True, kinks=_kink_at_zero,
    ),
    Function(
        "polygamma", "polygamma(n, x): the n-th derivative of digamma (torch.special.polygamma)",
        lambda n, x: torch.special.polygamma(int(n.item()), x), sp.polygamma, tensors=(2, 2), elementwise=True,
    ),
    Function(
        "held_max", "the largest argument, held constant (the shift of a stable softmax)",
        lambda *xs: _largest(xs).detach(),
        nodes.held_max, tensors=(1, 1 << 30), elementwise=True,
    ),
    Function(
        "diracdelta", "zero away from zero (torch's derivative of sign)",
        lambda x, *order: torch.zeros_like(x), sp.DiracDelta, tensors=(1, 2), elementwise=True,
        kinks=_kink_at_zero,
    ),
]

# Nodes the parser builds from operators (a < b, a == b ...), not from calls: 1 where the
# comparison holds, else 0, with no gradient (torch's comparisons are not differentiable).
_OPERATORS = [
    Function(node.__name__, f"a {node.symbol} b: 1 where it holds, else 0", _comparison(test), node,
             tensors=(2, 2), elementwise=True, kinks=_kink_at_ties)
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

FUNCTIONS: dict[str, Function] = {f.name: f for f in _TABLE}
"""Every callable name, in table order."""

BY_NODE: dict[type, Function] = {
    f.node: f for f in _TABLE + _OPERATORS + _DERIVATIVE_ONLY if f.node is not None
}
"""The table entry behind each SymPy node class (the compiler's lookup)."""

CONSTANTS: dict[str, sp.Basic] = {"pi": sp.pi, "e": sp.E}
"""Names that stand for numbers rather than variables."""
