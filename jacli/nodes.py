"""SymPy node types that jacli adds to SymPy's own.

SymPy knows scalars. jacli's variables are tensors, so a few operations need nodes of their own:

* ``relu``, ``sigmoid``, ``softplus``: elementwise functions SymPy lacks, with exact derivatives
  (``fdiff``) so that SymPy can differentiate them like ``sin``.
* ``TensorOp`` subclasses (``sum``, ``mean``, ``reshape``, ``matmul`` ...): operations on whole
  tensors. They never evaluate; their trailing integer arguments (axis, shape) are SymPy Integers.
* ``Components``: a list literal ``[e1, e2]`` that stacks its components along a new first axis.
* ``Index`` and ``Slice``: ``x[0]``, ``x[1:3, -1]``.

All of them print back as jacli syntax. ``to_text(tree)`` prints a whole parsed tree as jacli text
that parses back to the same tree; ``str(tree)`` is SymPy's own printing, which sorts terms and
writes ``Abs``, ``Min``, ``Max`` and ``E``, so it does not always parse back.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import sympy as sp
from sympy.core.symbol import Str
from sympy.printing.str import StrPrinter

# A missing slice bound (the ``None`` of ``x[1:]``). SymPy nodes need SymPy arguments.
NONE = Str("None")


class relu(sp.Function):
    """max(x, 0); its derivative is Heaviside(x, 0), which matches torch's 0 at the kink."""

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

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.log(1 + sp.exp(x))
        return None

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))


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


class _JacliPrinter(StrPrinter):
    """SymPy's printer, made to write jacli syntax in the order the tree holds its arguments.

    The parser builds ``a - b`` as ``a + (-1)*b`` and ``a / b`` as ``a * b**-1``; printed back they
    read ``a - b`` and ``a/b`` again. Parentheses are added wherever Python's precedence would
    otherwise regroup the text, so ``parse(to_text(tree)).tree == tree``.
    """

    _default_settings = {**StrPrinter._default_settings, "order": "none"}

    def _operand(self, expr: sp.Basic) -> str:
        """``expr`` printed, in parentheses unless it is a name, a call or a non-negative number."""
        text = self._print(expr)
        atomic = (
            isinstance(expr, (sp.Symbol, sp.NumberSymbol, sp.Function, Components, Index))
            and not isinstance(expr, MatMul)
        ) or (expr.is_Number and not text.startswith("-")) or (
            isinstance(expr, sp.Pow) and expr.exp == sp.S.Half  # printed as sqrt(...)
        )
        return text if atomic else f"({text})"

    def _print_Add(self, expr, order=None):
        first, *rest = expr.args
        text = self._print(first)
        for term in rest:
            negated = _negated(term)
            if negated is not None:
                right = self._print(negated)
                if isinstance(negated, sp.Add) or right.startswith("-"):
                    right = f"({right})"
                text += f" - {right}"
            else:
                right = self._print(term)
                if isinstance(term, sp.Add) or right.startswith("-"):
                    right = f"({right})"
                text += f" + {right}"
        return text

    def _print_Mul(self, expr):
        negated = _negated(expr)
        if negated is not None:
            if negated.is_Number and negated >= 0:
                return f"-1*{self._print(negated)}"  # "-3" would read back as the literal -3
            if isinstance(negated, sp.Pow):  # -x**2 reads as -(x**2)
                return f"-{self._print(negated)}"
            return f"-{self._operand(negated)}"
        first, *rest = expr.args
        text = self._print(first)
        if isinstance(first, (sp.Add, MatMul)):
            text = f"({text})"
        for factor in rest:
            if isinstance(factor, sp.Pow) and factor.exp == sp.S.NegativeOne:
                text += f"/{self._factor(factor.base)}"
            else:
                text += f"*{self._factor(factor)}"
        return text

    def _factor(self, expr: sp.Basic) -> str:
        """A right operand of ``*`` or ``/``: powers bind tighter, everything else is grouped."""
        return self._print(expr) if isinstance(expr, sp.Pow) else self._operand(expr)

    def _print_Pow(self, expr, rational=False):
        base, exponent = expr.args
        if exponent == sp.S.Half:
            return f"sqrt({self._print(base)})"
        return f"{self._operand(base)}**{self._operand(exponent)}"

    def _print_Rational(self, expr):
        return _decimal(expr)

    def _print_Exp1(self, expr):
        return "e"

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Min(self, expr):
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Max(self, expr):
        return f"max({', '.join(self._print(a) for a in expr.args)})"


def _negated(term: sp.Basic) -> sp.Basic | None:
    """``t`` when ``term`` is ``-1 * t`` (how the parser writes subtraction), else None."""
    if isinstance(term, sp.Mul) and len(term.args) == 2 and term.args[0] == sp.S.NegativeOne:
        return term.args[1]
    return None


def _decimal(number: sp.Rational) -> str:
    """A rational as the decimal literal it came from (0.1, 1E-300), or ``(p/q)`` if it has none."""
    p, q = int(number.p), int(number.q)
    twos, fives = (q & -q).bit_length() - 1, 0
    rest = q >> twos
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    if rest != 1:
        return f"({p}/{q})"
    with localcontext() as context:
        context.prec = p.bit_length() // 3 + max(twos, fives) + 2  # enough digits to be exact
        return str(Decimal(p) / Decimal(q))


def to_text(tree: sp.Basic) -> str:
    """The tree as jacli text that parses back to the same tree (unlike SymPy's ``str``).

    Example:
        >>> from jacli.parse import parse
        >>> to_text(parse("y + x*y - e^x").tree)
        'y + x*y - e**x'
    """
    return _JacliPrinter().doprint(tree)
