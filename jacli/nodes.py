"""SymPy node types that jacli adds to SymPy's own.

SymPy knows scalars. jacli's variables are tensors, so a few operations need nodes of their own:

* ``relu``, ``sigmoid``, ``softplus``: elementwise functions SymPy lacks, with exact derivatives
  (``fdiff``) so that SymPy can differentiate them like ``sin``.
* ``TensorOp`` subclasses (``sum``, ``mean``, ``reshape``, ``matmul`` ...): operations on whole
  tensors. They never evaluate; their trailing integer arguments (axis, shape) are SymPy Integers.
* ``Components``: a list literal ``[e1, e2]`` that stacks its components along a new first axis.
* ``Index`` and ``Slice``: ``x[0]``, ``x[1:3, -1]``.

Each node's ``_sympystr`` says how it prints (SymPy looks for it on the class), so ``str(tree)``
reads as jacli syntax for jacli's nodes. ``printing.to_text`` prints a whole tree as text that
parses back to the same tree. ``negated`` and ``reciprocal_base`` recognise how the parser writes
subtraction (``a + (-1)*b``) and division (``a * b**-1``), for the compiler and the printer alike.
"""

from __future__ import annotations

import builtins
import math
from fractions import Fraction

import sympy as sp
from sympy.core.symbol import Str

# A missing slice bound (the ``None`` of ``x[1:]``). SymPy nodes need SymPy arguments.
NONE = Str("None")


class relu(sp.Function):
    """max(x, 0); its derivative is Heaviside(x, 0), which matches torch's 0 at the kink."""


    def _eval_is_extended_real(self):
        return self.args[0].is_extended_real  # real for a real argument, as torch computes it
    @classmethod
    def eval(cls, x):
        if x.is_number and x.is_extended_real:
            return sp.Max(x, 0)
        return None

    def fdiff(self, argindex=1):
        return sp.Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return sp.Max(x, 0)


class sigmoid(sp.Function):
    """1 / (1 + exp(-x)); its derivative is sigmoid(x) * (1 - sigmoid(x))."""


    def _eval_is_extended_real(self):
        return self.args[0].is_extended_real  # real for a real argument, as torch computes it
    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return 1 / (1 + sp.exp(-x))
        return None

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))


class softplus(sp.Function):
    """log(1 + exp(x)); its derivative is sigmoid(x)."""


    def _eval_is_extended_real(self):
        return self.args[0].is_extended_real  # real for a real argument, as torch computes it
    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.log(1 + sp.exp(x))
        return None

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))


class _RealFunction(sp.Function):
    """A real function of real arguments that evaluates only on numbers (``_value``)."""

    def _eval_is_extended_real(self):
        return all(a.is_extended_real for a in self.args) or None

    @classmethod
    def eval(cls, *args):
        if all(a.is_number and a.is_extended_real for a in args):
            return cls._value(*args)
        return None

    @classmethod
    def _value(cls, *args):  # the function on real numbers, as an exact SymPy number
        return None


class log1p(_RealFunction):
    """log(1 + x), accurate for small x (torch.log1p); its derivative is 1/(1 + x)."""

    @classmethod
    def _value(cls, x):
        return sp.log(1 + x)

    def fdiff(self, argindex=1):
        return 1 / (1 + self.args[0])


class expm1(_RealFunction):
    """exp(x) - 1, accurate for small x (torch.expm1); its derivative is exp(x)."""

    @classmethod
    def _value(cls, x):
        return sp.exp(x) - 1

    def fdiff(self, argindex=1):
        return sp.exp(self.args[0])


class logsigmoid(_RealFunction):
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|; its derivative is sigmoid(-x)."""

    @classmethod
    def _value(cls, x):
        return -sp.log(1 + sp.exp(-x))

    def fdiff(self, argindex=1):
        return sigmoid(-self.args[0])


class cbrt(_RealFunction):
    """The real cube root, negative for negative x; its derivative is 1/(3 cbrt(x)**2)."""

    @classmethod
    def _value(cls, x):
        return sp.real_root(x, 3)

    def fdiff(self, argindex=1):
        return 1 / (3 * cbrt(self.args[0]) ** 2)


class hypot(_RealFunction):
    """sqrt(a**2 + b**2) without overflow (torch.hypot); its derivatives are a/hypot, b/hypot."""

    @classmethod
    def _value(cls, a, b):
        return sp.sqrt(a**2 + b**2)

    def fdiff(self, argindex=1):
        return self.args[argindex - 1] / self


class lgamma(_RealFunction):
    """log|Γ(x)| (torch.lgamma); its derivative is digamma(x) for every x off the poles."""

    @classmethod
    def _value(cls, x):
        return sp.log(sp.Abs(sp.gamma(x)))

    def fdiff(self, argindex=1):
        return sp.polygamma(0, self.args[0])


builtins_round = builtins.round


class _Step(_RealFunction):
    """A piecewise-constant function: torch's derivative is 0 everywhere (also at its jumps)."""

    def fdiff(self, argindex=1):
        return sp.S.Zero


class floor(_Step):
    """The largest integer ≤ x."""

    @classmethod
    def _value(cls, x):
        return sp.floor(x)


class ceil(_Step):
    """The smallest integer ≥ x."""

    @classmethod
    def _value(cls, x):
        return sp.ceiling(x)


class round(_Step):
    """The nearest integer, halves to even (as torch.round and Python round)."""

    @classmethod
    def _value(cls, x):
        exact = sp.Rational(x if x.is_Number else x.evalf(60))  # exact for Floats, so halves are halves
        return sp.Integer(builtins_round(Fraction(int(exact.p), int(exact.q))))


class _Comparison(_Step):
    """1 where the comparison holds, else 0 (no gradient flows through it, as in torch)."""

    symbol = ""
    test: staticmethod

    @classmethod
    def _value(cls, a, b):
        difference = a - b
        return sp.Integer(1 if cls.test(difference if difference.is_Rational else difference.evalf(60)) else 0)

    def _sympystr(self, printer):
        a, b = (printer._print(arg) for arg in self.args)
        return f"({a} {self.symbol} {b})"

    def _eval_rewrite_as_Piecewise(self, a, b, **kwargs):
        relation = {"<": sp.Lt, "<=": sp.Le, ">": sp.Gt, ">=": sp.Ge, "==": sp.Eq, "!=": sp.Ne}[self.symbol]
        return sp.Piecewise((1, relation(a, b)), (0, True))


class lt(_Comparison):
    """a < b"""
    symbol, test = "<", staticmethod(lambda d: d < 0)


class le(_Comparison):
    """a <= b"""
    symbol, test = "<=", staticmethod(lambda d: d <= 0)


class gt(_Comparison):
    """a > b"""
    symbol, test = ">", staticmethod(lambda d: d > 0)


class ge(_Comparison):
    """a >= b"""
    symbol, test = ">=", staticmethod(lambda d: d >= 0)


class eq(_Comparison):
    """a == b"""
    symbol, test = "==", staticmethod(lambda d: d == 0)


class ne(_Comparison):
    """a != b"""
    symbol, test = "!=", staticmethod(lambda d: d != 0)


class where(_RealFunction):
    """where(c, a, b): a where c is not 0, else b; no gradient flows to c (torch.where)."""

    @classmethod
    def _value(cls, c, a, b):
        return a if (c if c.is_Rational else c.evalf(60)) != 0 else b

    def _eval_rewrite_as_Piecewise(self, c, a, b, **kwargs):
        return sp.Piecewise((a, sp.Ne(c, 0)), (b, True))

    def fdiff(self, argindex=1):
        condition = self.args[0]
        return (sp.S.Zero, ne(condition, 0), eq(condition, 0))[argindex - 1]


class clamp(_RealFunction):
    """clamp(x, low, high): min(max(x, low), high). As torch: x's derivative is 1 on the closed
    interval [low, high], low's where x < low, high's where x > high."""

    @classmethod
    def _value(cls, x, low, high):
        return sp.Min(sp.Max(x, low), high)

    def _eval_rewrite_as_Piecewise(self, x, low, high, **kwargs):
        return sp.Piecewise((low, x < low), (high, x > high), (x, True))

    def fdiff(self, argindex=1):
        x, low, high = self.args
        return (ge(x, low) * le(x, high), lt(x, low), gt(x, high))[argindex - 1]


class held_max(sp.Function):
    """The largest of its arguments, held constant under differentiation (its derivative is 0).

    Only exact expansions use it: ``softmax`` and ``logsumexp`` are written as
    ``exp(x[i] - m) / Σ exp(x[j] - m)`` and ``m + log Σ exp(x[j] - m)`` with ``m = held_max(x...)``,
    so that their exact derivatives evaluate without overflow at large ``x``. Both functions are
    exactly invariant to ``m``, so treating it as a constant gives their true derivatives. See
    ``readable`` for the form shown to users.
    """

    @classmethod
    def eval(cls, *args):
        if all(a.is_number and a.is_extended_real for a in args):
            return sp.Max(*args)
        return None

    def fdiff(self, argindex=1):
        return sp.S.Zero

    def _sympystr(self, printer):
        return f"held_max({', '.join(printer._print(a) for a in self.args)})"


def readable(expression: sp.Basic) -> sp.Basic:
    """The expression with every ``held_max`` shift set to 0: the textbook form, equal in value
    (it is what the stable form means), shown to users."""
    shifts = expression.atoms(held_max)
    return expression.xreplace({shift: sp.S.Zero for shift in shifts}) if shifts else expression


def elementary(tree: sp.Basic) -> sp.Basic:
    """The tree with relu, sigmoid and softplus written with Max, exp and log (for SymPy's evalf)."""
    return tree.replace(relu, lambda x: sp.Max(x, 0)).replace(
        sigmoid, lambda x: 1 / (1 + sp.exp(-x))
    ).replace(softplus, lambda x: sp.log(1 + sp.exp(x)))


class TensorOp(sp.Function):
    """An operation on whole tensors; it never evaluates symbolically."""

    @classmethod
    def eval(cls, *args):
        return None

    def _sympystr(self, printer):
        return f"{self.func.__name__}({', '.join(printer._print(a) for a in self.args)})"


_TENSOR_OPS: dict[str, type[TensorOp]] = {}


def tensor_op(name: str) -> type[TensorOp]:
    """The TensorOp subclass called ``name`` (one class per name, so trees compare equal)."""
    if name not in _TENSOR_OPS:
        _TENSOR_OPS[name] = type(name, (TensorOp,), {"__module__": __name__})
    return _TENSOR_OPS[name]


class MatMul(TensorOp):
    """``a @ b``: torch.matmul."""

    def _sympystr(self, printer):
        a, b = (printer.parenthesize(arg, 100) for arg in self.args)
        return f"{a} @ {b}"


class Components(TensorOp):
    """``[e1, e2, ...]``: the components, broadcast to one shape and stacked along a new axis 0."""

    def _sympystr(self, printer):
        return "[" + ", ".join(printer._print(a) for a in self.args) + "]"


class Keyword(sp.Basic):
    """``axis=1`` inside a call (``cat(a, b, axis=1)``): the name (a ``Str``) and its Integer value.

    It sits after the operands in the call's node; ``Function.arguments`` hands it to the stages
    as a keyword, and it prints as it was written."""

    @property
    def name(self) -> str:
        return self.args[0].name

    @property
    def value(self) -> sp.Basic:
        return self.args[1]

    def _sympystr(self, printer):
        return f"{self.name}={printer._print(self.value)}"


class einsum(TensorOp):
    """``einsum("ij,jk->ik", a, b)``: the operands, then the subscripts (a ``Str``, checked and
    written in explicit form by the parser); it prints with the subscripts first, as written."""

    def _sympystr(self, printer):
        *operands, subscripts = self.args
        return f"einsum({subscripts.name!r}, {', '.join(printer._print(a) for a in operands)})"


def text(value: str) -> Str:
    """A string literal inside a tree (einsum's subscripts)."""
    return Str(value)


class Slice(sp.Basic):
    """``start:stop:step`` inside an index; missing bounds are ``NONE``."""

    def as_slice(self) -> slice:
        return slice(*(None if a == NONE else int(a) for a in self.args))

    def _sympystr(self, printer):
        start, stop, step = ("" if a == NONE else str(a) for a in self.args)
        return f"{start}:{stop}" + (f":{step}" if step else "")


class Index(TensorOp):
    """``x[i, j:k]``: the first argument indexed by the rest (Integers and Slices)."""

    def key(self) -> tuple:
        return tuple(k.as_slice() if isinstance(k, Slice) else int(k) for k in self.args[1:])

    def _sympystr(self, printer):
        keys = ", ".join(printer._print(k) for k in self.args[1:])
        return f"{printer.parenthesize(self.args[0], 999)}[{keys}]"


def negated(term: sp.Basic) -> sp.Basic | None:
    """``t`` when ``term`` is ``-1 * t`` (how the parser writes subtraction), else None."""
    if isinstance(term, sp.Mul) and len(term.args) == 2 and term.args[0] == sp.S.NegativeOne:
        return term.args[1]
    return None


def reciprocal_base(factor: sp.Basic) -> sp.Basic | None:
    """``b`` when ``factor`` is ``b**-1`` (how the parser writes division), else None."""
    if isinstance(factor, sp.Pow) and factor.args[1] == sp.S.NegativeOne:
        return factor.args[0]
    return None


# Python ints inside int64 stay ints (exact integer powers such as x**3); larger ones would
# overflow torch's int64 scalars ("int too big to convert"), so they become the nearest float,
# which is what float64 arithmetic on them gives anyway.
_INT64_MAX = 2**63 - 1


def number(value: sp.Basic) -> float | int:
    """A SymPy number as the nearest Python number (small ints stay exact for integer powers).

    Beyond float64's range (a constant of an exact derivative such as 10**600) it is ±inf,
    as float64 arithmetic would make it.
    """
    if isinstance(value, sp.Integer):
        number = int(value)
        return number if abs(number) <= _INT64_MAX else _float(number, 1)
    if isinstance(value, sp.Rational):
        return _float(int(value.p), int(value.q))
    return float(value)


def _float(numerator: int, denominator: int) -> float:
    """numerator / denominator correctly rounded, or ±inf past float64's largest number."""
    try:
        return numerator / denominator  # int / int is correctly rounded
    except OverflowError:
        return math.inf if (numerator > 0) == (denominator > 0) else -math.inf
