"""How jacli's SymPy trees print as jacli text.

``to_text(tree)`` writes a parsed tree back as jacli syntax, in the order the tree holds its
arguments, so that ``parse(to_text(tree)).tree == tree``. ``str(tree)`` is SymPy's own printing,
which sorts terms and writes ``Abs``, ``Min``, ``Max`` and ``E``, so it does not always parse back.
"""

from __future__ import annotations

from typing import Any

from decimal import Decimal, localcontext

import sympy as sp
from sympy.printing.str import StrPrinter

from jacli import nodes


def _log_with_base(expr: sp.Mul) -> tuple[sp.Basic, sp.Basic] | None:
    """``(x, b)`` when ``expr`` is the product that ``log(x, b)`` builds, else None."""
    if len(expr.args) != 2:
        return None
    for numerator, denominator in (expr.args, expr.args[::-1]):
        base = nodes.reciprocal_base(denominator)
        if isinstance(numerator, sp.log) and isinstance(base, sp.log):
            return numerator.args[0], base.args[0]
    return None


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
            isinstance(expr, (sp.Symbol, sp.NumberSymbol, sp.Function, nodes.Components, nodes.Index))
            and not isinstance(expr, nodes.MatMul)
        ) or (expr.is_Number and not text.startswith("-")) or (
            isinstance(expr, sp.Pow) and expr.exp == sp.S.Half  # printed as sqrt(...)
        )
        return text if atomic else f"({text})"

    def _print_Add(self, expr, order=None):
        first, *rest = expr.args
        text = self._print(first)
        for term in rest:
            negated = nodes.negated(term)
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
        based = _log_with_base(expr)
        if based is not None:  # log(x, b) is built as log(x) * log(b)**-1; print it as written
            return f"log({self._print(based[0])}, {self._print(based[1])})"
        negated = nodes.negated(expr)
        if negated is not None:
            if negated.is_Number and negated >= 0:
                return f"-1*{self._print(negated)}"  # "-3" would read back as the literal -3
            if isinstance(negated, sp.Pow):  # -x**2 reads as -(x**2)
                return f"-{self._print(negated)}"
            return f"-{self._operand(negated)}"
        first, *rest = expr.args
        text = self._print(first)
        if isinstance(first, (sp.Add, nodes.MatMul)):
            text = f"({text})"
        for factor in rest:
            base = nodes.reciprocal_base(factor)
            if base is not None:
                text += f"/{self._factor(base)}"
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

    def _print_polygamma(self, expr):
        order, x = expr.args
        if order == 0:
            return f"digamma({self._print(x)})"  # the only order a user writes
        return f"polygamma({self._print(order)}, {self._print(x)})"

    def _print_Min(self, expr):
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Max(self, expr):
        return f"max({', '.join(self._print(a) for a in expr.args)})"


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


def to_strings(entries: Any) -> Any:
    """An object array of SymPy expressions as nested lists of strings, one per entry (for JSON)."""
    import numpy as np

    return np.vectorize(str, otypes=[object])(entries).tolist() if entries.shape else str(entries[()])
