"""Expression text → SymPy tree, through Python's ``ast`` with an allow-list. Never ``eval``.

The text is parsed by ``ast.parse(mode="eval")`` (which only builds a syntax tree) and every
node is checked against the short list of constructs jacli accepts; the SymPy tree is then built
by hand with ``evaluate=False`` so that it mirrors the text: ``x - x`` stays ``x - x`` (a tensor of
zeros, shaped like ``x``) instead of collapsing to the scalar ``0``, and the compiled function
evaluates operations in the order they were written.

Example:
    >>> parse("(x+1)^2").tree
    (x + 1)**2
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import re
import sys
import warnings
from dataclasses import dataclass
from decimal import Decimal

import sympy as sp

from jacli import nodes, printing
from jacli.errors import ExpressionError
from jacli.functions import COMPARISONS, CONSTANTS, FUNCTIONS, Function

MAX_LENGTH = 10_000
"""Longest expression text accepted, in characters."""

MAX_DEPTH = 100
"""Deepest nesting of operations accepted (SymPy walks trees recursively)."""

MAX_NODES = 5_000
"""Most syntax-tree nodes accepted (numbers, names, operations, calls)."""

LARGEST_MAGNITUDE = math.log10(sys.float_info.max)
"""log10 of float64's largest number: constants estimated beyond it are refused, not computed."""

LARGEST_LITERAL = sys.float_info.max
"""Number literals beyond float64's range are refused rather than silently made infinite."""

# NUL, and the lone surrogates that undecodable bytes in argv become: no printable caret line.
_UNREADABLE = "[\0\ud800-\udfff]"

MAX_LITERAL_LENGTH = 400
"""Longest number literal read exactly, in characters (float64 keeps about 17 digits)."""


@dataclass(frozen=True)
class Parsed:
    """A parsed expression.

    Attributes:
        text: the expression as the user wrote it.
        tree: the SymPy tree; variables are real Symbols, jacli's tensor ops are ``nodes``.
        variables: the free names, in order of first appearance in the text.
    """

    text: str
    tree: sp.Basic
    variables: tuple[str, ...]


@functools.lru_cache(maxsize=256)
def parse(text: str) -> Parsed:
    """Parse jacli expression text (cached: the result depends on the text alone).

    Args:
        text: e.g. ``"3*a + 2*b**2 + log(c)"`` or ``"[r*cos(t), r*sin(t)]"``.

    Returns:
        The SymPy tree and the variables in order of appearance.

    Raises:
        ExpressionError: naming the rejected construct and its column.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"the expression must be text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(text):,} characters long; the limit is {MAX_LENGTH:,} "
            f"(everything from column {MAX_LENGTH + 1} on is too much)"
        )
    if not text.strip():
        raise ExpressionError("the expression is empty; write a formula such as 'x**2'")
    # Python cannot compile these at all (and older versions raise ValueError, not SyntaxError).
    unreadable = re.search(_UNREADABLE, text)
    if unreadable:
        index = unreadable.start()
        raise ExpressionError(
            f"the character U+{ord(text[index]):04X} cannot be part of an expression "
            f"({_location(text, index)})" + _caret(re.sub(_UNREADABLE, "?", text), index)
        )
    source, columns = _caret_to_power(text)
    try:
        with warnings.catch_warnings():
            # Python warns about some malformed text ("0is": invalid decimal literal); as an
            # error it becomes a SyntaxError with a column, instead of a stray warning line.
            warnings.simplefilter("error", SyntaxWarning)
            syntax = ast.parse(source.strip(), mode="eval")
    except SyntaxError as error:
        raise _syntax_error(text, source, columns, error) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            "the expression is too long or nested too deeply to parse; the limits are "
            f"{MAX_NODES:,} parts and {MAX_DEPTH} levels of nesting"
        ) from None
    except ValueError as error:
        raise ExpressionError(f"cannot parse the expression: {error}") from None
    builder = _Builder(text, source.strip(), columns, len(source) - len(source.lstrip()))
    builder.check_depth(syntax.body)
    tree = builder.build(syntax.body)
    check_magnitudes(tree, text)
    return Parsed(text=text, tree=tree, variables=tuple(builder.variables))


def check_magnitudes(tree: sp.Basic, text: str) -> None:
    """Refuse constant sub-expressions too large for float64, such as ``9**9**9**9``.

    SymPy would compute such towers exactly and never finish (sympy#6835), and a cap on each
    literal's exponent is bypassed by ``((9**9)**9999)**9999``. Instead an upper bound of
    log10|value| is carried up the tree — a sum for products, exponent × log10|base| for powers —
    without ever computing the value; an exponent is evaluated only once its own bound is known
    to be within float64's range.
    """
    memo: dict[sp.Basic, float | None] = {}

    def magnitude(node: sp.Basic) -> float | None:
        """An upper bound of log10|node| for constants; None where it is not tracked."""
        if node in memo:
            return memo[node]
        result: float | None = None
        if node.is_Number:
            result = -math.inf if node == 0 else _log10(abs(node))
        elif isinstance(node, sp.NumberSymbol):
            result = math.log10(float(node))
        elif isinstance(node, (sp.Add, sp.Mul, sp.Pow)):
            children = [magnitude(arg) for arg in node.args]
            if all(m is not None for m in children):
                if isinstance(node, sp.Add):
                    result = max(children) + math.log10(len(children))
                elif isinstance(node, sp.Mul):
                    result = sum(children)
                else:
                    result = _power_magnitude(node, children[0], children[1])
        elif node.args:
            for arg in node.args:
                magnitude(arg)
        if result is not None and result > LARGEST_MAGNITUDE:
            shown = printing.to_text(node)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ExpressionError(
                f"the constant {shown} is about 10^{_format_exponent(result)}, beyond float64's range "
                f"(about 1.8e308); jacli refuses it rather than computing it. Write a smaller constant."
            )
        memo[node] = result
        return result

    magnitude(tree)


def _power_magnitude(node: sp.Pow, base: float, exponent: float) -> float | None:
    """log10|b**e| from the bound of b and the value of e (safe to evaluate: |e| < 1e308).

    None (not tracked) where the value is not a finite real number, such as 0**-1 or
    (-8)**(1/3): torch decides those (inf, nan), not the estimate.
    """
    if base == -math.inf:
        return None
    try:
        value = float(node.args[1].evalf(20))
    except (TypeError, ValueError):
        return None
    if math.isinf(value) or math.isnan(value):
        return None if math.isnan(value) else math.inf
    return value * base


def _log10(number: sp.Basic) -> float:
    """log10 of a positive SymPy number, exact enough for a bound, for any size."""
    if number.is_Integer:
        digits = len(str(int(number)))
        return math.log10(int(number)) if digits < 300 else digits
    p, q = number.as_numer_denom()
    return _log10(sp.Integer(abs(p))) - _log10(sp.Integer(abs(q))) if p != 0 else -math.inf


def _format_exponent(value: float) -> str:
    return "infinity" if math.isinf(value) else (f"{value:.3g}" if value >= 1e6 else f"{value:.0f}")


def _caret_to_power(text: str) -> tuple[str, list[int]]:
    """Replace ``^`` with ``**``; also return, for each source index, the index in ``text``.

    Done on characters, not Python's ``^`` operator, because ``^`` binds looser than ``+`` in
    Python while mathematicians mean ``x^2 + 1`` as ``(x^2) + 1``.
    """
    pieces: list[str] = []
    columns: list[int] = []
    for index, char in enumerate(text):
        if char == "^":
            pieces.append("**")
            columns += [index, index]
        else:
            pieces.append(char)
            columns.append(index)
    columns.append(len(text))
    return "".join(pieces), columns


CARET_WIDTH = 76
"""Longest stretch of the expression shown above the ``^`` in an error message."""


def _caret(text: str, index: int) -> str:
    """Two lines: the expression's line holding ``index``, and a ``^`` under that character.

    A line longer than CARET_WIDTH is cut to a window around ``index``, marked with "...".
    """
    line_start = text.rfind("\n", 0, index) + 1
    line_end = text.find("\n", index)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    column = index - line_start
    if len(line) > CARET_WIDTH:
        start = min(max(column - CARET_WIDTH // 2, 0), len(line) - CARET_WIDTH)
        shown = line[start : start + CARET_WIDTH]
        prefix = "..." if start > 0 else ""
        suffix = "..." if start + CARET_WIDTH < len(line) else ""
        line, column = prefix + shown + suffix, column - start + len(prefix)
    return f"\n  {line}\n  {' ' * column}^"


def _location(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}" if "\n" in text else f"column {column}"


def _syntax_error(text: str, source: str, columns: list[int], error: SyntaxError) -> ExpressionError:
    lines = source.strip().splitlines() or [""]
    offset = len(source) - len(source.lstrip())
    line_number = min(max(error.lineno or 1, 1), len(lines))
    # SyntaxError.offset counts characters from 1 on its line.
    index = offset + sum(len(line) + 1 for line in lines[: line_number - 1])
    reason = (error.msg or "invalid syntax").replace("'**'", "'^' or '**'")
    digits = re.search(r"[0-9](?:_?[0-9]){4300,}", text)
    if not error.offset and "digits" in reason and digits:
        # CPython refuses integer literals of more than 4300 digits, at offset 0.
        index = digits.start()
        return ExpressionError(
            f"the number {text[index:index + 20]}... is larger than float64 can hold "
            f"({_location(text, index)})" + _caret(text, index)
        )
    if not error.offset:  # CPython reports an early end of input at offset 0
        original = len(text.rstrip())
        reason = "the expression ends too early"
    else:
        original = columns[min(index + error.offset - 1, len(columns) - 1)]
    return ExpressionError(
        f"cannot parse the expression: {reason}{_ascii_hint(text)}{_keyword_hint(text)} "
        f"({_location(text, original)})" + _caret(text, original)
    )


def _keyword_hint(text: str) -> str:
    """Python's reserved words (``as``, ``in``, ``lambda`` ...) cannot be variable names."""
    import keyword

    # whole names only: the "is" of "0is" is part of a number's text, not a name
    words = [w for w in dict.fromkeys(re.findall(r"(?<![\w.])[A-Za-z_]\w*", text)) if keyword.iskeyword(w)]
    if not words:
        return ""
    listed = ", ".join(repr(w) for w in words[:3])
    return (f"; {listed} {'is a reserved word' if len(words) == 1 else 'are reserved words'} of the "
            f"expression syntax and cannot name a variable: rename it (e.g. {words[0]}1)")


# NOTE [ASCII suggestions]
# Text pasted from a paper or typed as on paper (x², √x, 2x, x − 1) is not Python syntax. jacli
# does not guess what such text means; it refuses it, and suggests the ASCII form, checked to
# parse, for the user to confirm by typing it.
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_CHARACTERS = {
    "−": ("-", "the minus sign is the ASCII '-'"), "–": ("-", "the minus sign is the ASCII '-'"),
    "—": ("-", "the minus sign is the ASCII '-'"), "×": ("*", "multiply with '*'"),
    "·": ("*", "multiply with '*'"), "⋅": ("*", "multiply with '*'"), "∗": ("*", "multiply with '*'"),
    "÷": ("/", "divide with '/'"), "∕": ("/", "divide with '/'"),
}
_NUMBER_THEN_NAME = re.compile(r"(?<![\w.])(\d+\.?\d*|\.\d+)(?![eE][+-]?\d)(?=[^\W\d]|\()")
"""A number written right before a name or '(' (``2x``, ``3(x+1)``), not an exponent (``1e5``)."""


def ascii_form(text: str) -> str:
    """``text`` with the math characters of papers in jacli's ASCII: ``x²`` → ``x**2``,
    ``√x`` → ``sqrt(x)``, ``x − 1`` → ``x - 1``, ``2x`` → ``2*x``."""
    text = re.sub(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+", lambda m: "**" + m.group(0).translate(_SUPERSCRIPTS), text)
    text = re.sub(r"√\s*([^\W\d]\w*(?!\w)(?!\s*\()|\d+\.?\d*)", r"sqrt(\1)", text)  # √x, √2
    text = re.sub(r"√(?=\s*\()", "sqrt", text)  # √(x + 1); a √ left (√√x, √sin(x)) means no suggestion
    text = "".join(_CHARACTERS.get(char, (char,))[0] for char in text)
    return _NUMBER_THEN_NAME.sub(r"\1*", text)


def _ascii_hint(text: str) -> str:
    """"; powers are written ** or ^: did you mean x**2?" when ``ascii_form`` makes text that parses."""
    suggestion = ascii_form(text)
    if suggestion == text:
        return ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", SyntaxWarning)  # as parse() does: a warning is a failure
            ast.parse(_caret_to_power(suggestion)[0].strip(), mode="eval")
    except (SyntaxError, SyntaxWarning, ValueError, RecursionError, MemoryError):
        return ""
    reasons = []
    for char in text:
        if char in "⁰¹²³⁴⁵⁶⁷⁸⁹⁻":
            reasons.append("powers are written ** or ^")
        elif char == "√":
            reasons.append("square roots are written sqrt(x)")
        elif char in _CHARACTERS:
            reasons.append(_CHARACTERS[char][1])
    if _NUMBER_THEN_NAME.search(text):
        reasons.append("multiplication needs '*'")
    reasons = list(dict.fromkeys(reasons))
    return f"; {', '.join(reasons)}: did you mean {_shorten(suggestion)}?"


def _shorten(text: str, limit: int = 80) -> str:
    """Long text cut in the middle for a message."""
    return text if len(text) <= limit else text[: limit // 2 - 2] + "..." + text[-(limit // 2 - 1):]


_BINARY_NAMES = {
    ast.FloorDiv: "'//'", ast.Mod: "'%'", ast.LShift: "'<<'", ast.RShift: "'>>'",
    ast.BitOr: "'|'", ast.BitAnd: "'&'",
}

_REJECTED = {
    ast.Attribute: "attribute access",
    ast.Lambda: "lambda",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "conditional expression",
    ast.Dict: "dictionary",
    ast.Set: "set",
    ast.Tuple: "tuple (use [a, b] for a list of components)",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dictionary comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.Starred: "'*' unpacking",
    ast.NamedExpr: "':=' assignment",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slice outside an index",
}


class _Builder:
    """Walks the checked ``ast`` and builds the SymPy tree, collecting variables."""

    def __init__(self, text: str, source: str, columns: list[int], lead: int):
        self.text = text
        self.source_lines = source.splitlines()
        self.columns = columns
        self.lead = lead
        self.variables: list[str] = []

    # -- errors ---------------------------------------------------------------------------------

    def _index(self, node: ast.AST) -> int:
        line = getattr(node, "lineno", 1)
        byte_col = getattr(node, "col_offset", 0)
        # ast columns are UTF-8 byte offsets; turn them into character offsets.
        line_text = self.source_lines[line - 1] if line - 1 < len(self.source_lines) else ""
        char_col = len(line_text.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))
        index = self.lead + sum(len(s) + 1 for s in self.source_lines[: line - 1]) + char_col
        return self.columns[min(index, len(self.columns) - 1)]

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        index = self._index(node)
        return ExpressionError(f"{message} ({_location(self.text, index)})" + _caret(self.text, index))

    def segment(self, node: ast.AST) -> str:
        start = self._index(node)
        end_node = ast.Constant(0)
        end_node.lineno = getattr(node, "end_lineno", node.lineno)
        end_node.col_offset = getattr(node, "end_col_offset", node.col_offset)
        return self.text[start : self._index(end_node)]

    # -- checks ---------------------------------------------------------------------------------

    def check_depth(self, root: ast.AST) -> None:
        """Refuse trees nested deeper than MAX_DEPTH, without recursing."""
        stack = [(root, 1)]
        count = 0
        while stack:
            node, depth = stack.pop()
            if isinstance(node, (ast.expr_context, ast.operator, ast.unaryop)):
                continue  # markers on their parent node (Load, Add, USub), not parts of their own
            count += 1
            if count > MAX_NODES:
                raise self.fail(
                    root, f"the expression has more than {MAX_NODES:,} parts (numbers, names, operations)"
                )
            if depth > MAX_DEPTH:
                raise self.fail(
                    node, f"the expression is nested more than {MAX_DEPTH} levels deep"
                )
            chain = _chain(node)
            for child in ast.iter_child_nodes(node):
                # a + b + c is one level, not two: the parser builds it as one flat sum.
                same_chain = chain is not None and child is node.left and _chain(child) is chain
                stack.append((child, depth if same_chain else depth + 1))

    # -- building -------------------------------------------------------------------------------

    def build(self, node: ast.AST) -> sp.Basic:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            what = _REJECTED.get(type(node), type(node).__name__)
            raise self.fail(node, f"{what} is not allowed in a jacli expression")
        return method(node)

    def _Constant(self, node: ast.Constant) -> sp.Basic:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
            kind = "a string" if isinstance(value, (str, bytes)) else repr(value)
            raise self.fail(node, f"{kind} is not allowed; only numbers and names are")
        if isinstance(value, complex):
            raise self.fail(node, "complex numbers are not supported")
        literal = self.segment(node).replace("_", "")
        if isinstance(value, int):
            if abs(value) > LARGEST_LITERAL:
                raise self.fail(node, f"the number {literal[:20]} is larger than float64 can hold")
            return sp.Integer(value)
        if len(literal) > MAX_LITERAL_LENGTH:
            raise self.fail(
                node,
                f"the number {literal[:20]}... has {len(literal):,} characters; jacli reads at most "
                f"{MAX_LITERAL_LENGTH} (float64 keeps about 17 significant digits)",
            )
        if math.isinf(value):
            raise self.fail(node, f"the number {literal[:20]} is larger than float64 can hold")
        exact = Decimal(literal)
        if value == 0 and exact != 0:
            raise self.fail(
                node,
                f"the number {literal[:20]} is smaller than float64 can hold (it would be 0); "
                "write 0 if you mean zero",
            )
        # The literal's own text, read exactly: 0.1 is 1/10, rounded once when evaluated.
        return sp.Rational(*exact.as_integer_ratio())

    def _Name(self, node: ast.Name) -> sp.Basic:
        name = node.id
        if name.startswith("_"):
            raise self.fail(node, f"names starting with '_' are not allowed: {name!r}")
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            raise self.fail(node, f"{name} is a function; call it like {name}(x)")
        if name not in self.variables:
            self.variables.append(name)
        return sp.Symbol(name, real=True)

    def _BinOp(self, node: ast.BinOp) -> sp.Basic:
        op = type(node.op)
        if op in _BINARY_NAMES:
            raise self.fail(node, f"the operator {_BINARY_NAMES[op]} is not allowed")
        chain = _chain(node)
        if chain is not None:
            return self._chain(node, chain)
        left, right = self.build(node.left), self.build(node.right)
        if op in (ast.Pow, ast.BitXor):  # BitXor cannot occur ('^' became '**'), kept for safety
            return sp.Pow(left, right, evaluate=False)
        if op is ast.MatMult:
            return nodes.MatMul(left, right)
        raise self.fail(node, f"the operator {type(node.op).__name__} is not allowed")

    def _chain(self, node: ast.BinOp, chain: type) -> sp.Basic:
        """``a - b + c`` as one flat Add (``a * b / c`` as one Mul), in the order written.

        Python nests these to the left, one level per operator; a flat node keeps every later
        stage (SymPy, the compiler) from recursing once per term, so long sums are fine.
        """
        links = []
        while isinstance(node, ast.BinOp) and _chain(node) is chain:
            links.append(node)
            node = node.left
        terms = self._factors(node, chain)
        for link in reversed(links):
            op = type(link.op)
            if op is ast.Mult:
                terms.extend(self._factors(link.right, chain))
                continue
            right = self.build(link.right)
            if op is ast.Sub:
                right = sp.Mul(sp.S.NegativeOne, right, evaluate=False)
            elif op is ast.Div:
                right = sp.Pow(right, sp.S.NegativeOne, evaluate=False)
            terms.append(right)
        return (sp.Add if chain is sp.Add else sp.Mul)(*terms, evaluate=False)

    def _factors(self, node: ast.AST, chain: type) -> list[sp.Basic]:
        """A term of a chain; a comparison chain ``a < b < c`` inside a product gives its links as
        factors of that product, so the tree is the one its printed form ``(a < b)*(b < c)`` parses to."""
        built = self.build(node)
        if chain is sp.Mul and isinstance(node, ast.Compare) and isinstance(built, sp.Mul):
            return list(built.args)
        return [built]

    def _UnaryOp(self, node: ast.UnaryOp) -> sp.Basic:
        if isinstance(node.op, ast.UAdd):
            return self.build(node.operand)
        if isinstance(node.op, ast.USub):
            operand = self.build(node.operand)
            if isinstance(node.operand, ast.Constant):
                return -operand  # a negative literal, so x**-2 has the exponent -2
            return sp.Mul(sp.S.NegativeOne, operand, evaluate=False)
        symbol = {ast.Not: "'not'", ast.Invert: "'~'"}.get(type(node.op), "this operator")
        raise self.fail(node, f"{symbol} is not allowed")

    def _Compare(self, node: ast.Compare) -> sp.Basic:
        """``a < b`` as 0/1; a chain ``a < b <= c`` is the product of its links, as in Python."""
        terms = [node.left, *node.comparators]
        links = []
        for op, left, right in zip(node.ops, terms, terms[1:]):
            comparison = COMPARISONS.get(type(op).__name__)
            if comparison is None:
                symbol = {ast.Is: "'is'", ast.IsNot: "'is not'", ast.In: "'in'", ast.NotIn: "'not in'"}
                raise self.fail(node, f"{symbol.get(type(op), 'this comparison')} is not allowed; "
                                      "compare numbers with <, <=, >, >=, == or !=")
            links.append(comparison(self.build(left), self.build(right), evaluate=False))
        return links[0] if len(links) == 1 else sp.Mul(*links, evaluate=False)

    def _List(self, node: ast.List) -> sp.Basic:
        if not node.elts:
            raise self.fail(node, "an empty list has no components; write [a, b, ...]")
        lists = [e for e in node.elts if isinstance(e, ast.List)]
        if lists and len(lists) != len(node.elts):
            raise self.fail(node, "a list mixes sub-lists and single components; make every row a list")
        if lists and len({len(e.elts) for e in lists}) > 1:
            lengths = ", ".join(str(len(e.elts)) for e in lists)
            raise self.fail(node, f"the rows of this list have different lengths ({lengths})")
        return nodes.Components(*(self.build(e) for e in node.elts))

    def _Call(self, node: ast.Call) -> sp.Basic:
        if isinstance(node.func, ast.Attribute):
            raise self.fail(node.func, "attribute access is not allowed in a jacli expression")
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Constant) and not node.keywords and len(node.args) == 1:
                # 2(x + 1): a number before parentheses, as on paper
                number, operand = self.segment(node.func), self.segment(node.args[0])
                raise self.fail(
                    node.func, f"a number cannot be called like a function; multiplication needs '*': "
                    f"did you mean {number}*({operand})?",
                )
            raise self.fail(node.func, "only functions called by name, like sin(x), are allowed")
        name = node.func.id
        if name.startswith("_"):
            raise self.fail(node.func, f"names starting with '_' are not allowed: {name!r}")
        entry = FUNCTIONS.get(name)
        if entry is None and name in _OTHER_NAMES and not node.keywords:
            raise self.fail(node.func, _other_name_message(name, [self.segment(a) for a in node.args]))
        if entry is None:
            raise self.fail(node.func, unknown_function_message(name))
        keywords = self._keywords(node, entry)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail(arg, "'*' unpacking is not allowed")
        args = list(node.args)
        subscripts = None
        if entry.subscripts is not None:
            if not entry.tensors[0] <= len(args) - 1 <= entry.tensors[1]:
                raise self.fail(node, f"{name} takes {_arity(entry)}, got {len(args)}")
            subscripts = self._subscripts(node, entry, args)
            args = args[1:]
        tuples = [a for a in args if isinstance(a, ast.Tuple)]
        if tuples and entry.ints != (0,):  # numpy's pad(x, (1, 2)): jacli's integers come one by one
            listed = ", ".join(self.segment(a) for a in args[: args.index(tuples[0])])
            inside = ", ".join(self.segment(e) for e in tuples[0].elts)
            raise self.fail(tuples[0], f"{name} takes its integers one by one, not as a tuple: write {name}({listed}, {inside})")
        operands, integers = entry.split(args)
        if not entry.tensors[0] <= len(operands) <= entry.tensors[1] or len(integers) not in entry.ints:
            raise self.fail(node, f"{name} takes {_arity(entry)}, got {len(args)}")
        if entry.constant:
            return entry.make([], self._constants(node, entry, integers))
        tensors = [self.build(a) for a in operands]
        ints = [self._integer(a, f"{name}'s integer argument") for a in integers]
        return entry.make(tensors, ints + ([subscripts] if subscripts is not None else []), keywords)

    def _keywords(self, node: ast.Call, entry: Function) -> dict[str, int]:
        """``axis=1``: the keyword arguments the entry takes, each an integer literal."""
        name, found = entry.name, {}
        for keyword in node.keywords:
            if keyword.arg not in entry.keywords:
                taken = " or ".join(f"{k}=" for k in entry.keywords)
                what = "keyword arguments are not allowed" if keyword.arg is None else f"{name} takes no keyword {keyword.arg}="
                raise self.fail(
                    keyword, f"{what}; " + (f"{name} takes {taken}" if taken else f"call {name}(x, ...) with positions")
                )
            if keyword.arg in found:
                raise self.fail(keyword, f"{name} got the keyword {keyword.arg}= twice; give it once")
            found[keyword.arg] = self._integer(keyword.value, f"{name}'s {keyword.arg}")
        return found

    def _subscripts(self, node: ast.Call, entry: Function, args: list[ast.AST]) -> str:
        """einsum's first argument: a string literal, checked (it is data: only its letters are read)."""
        first = args[0] if args else node
        if not args or not isinstance(first, ast.Constant) or not isinstance(first.value, str):
            raise self.fail(first, f'{entry.name} takes its subscripts first, as a string: {entry.name}("ij,jk->ik", a, b)')
        assert entry.subscripts is not None
        try:
            return entry.subscripts(first.value, len(args) - 1)
        except ValueError as error:
            raise self.fail(first, f"{entry.name}'s subscripts {first.value!r}: {error}") from None

    def _constants(self, node: ast.Call, entry: Function, args: list[ast.AST]) -> list[sp.Basic]:
        """A constant tensor's arguments: numbers known now (``10**6``, ``pi/2``), exact, checked
        by the entry's shape rule, which names a bad one."""
        from jacli.functions import literal

        values = []
        for position, arg in enumerate(args, start=1):
            built = self.build(arg)
            if built.free_symbols:
                names = ", ".join(sorted(str(s) for s in built.free_symbols))
                raise self.fail(
                    arg, f"{entry.name}'s argument {position} must be a number known before any input is read, "
                    f"not a formula of {names}; write a number such as {entry.name}(5)",
                )
            check_magnitudes(built, self.text)
            value = built.doit()
            if not (value.is_number and value.is_extended_real and value.is_finite):
                raise self.fail(
                    arg, f"{entry.name}'s argument {position} is {printing.to_text(built)}, not a finite real number "
                    "known before any input is read; write a number, or numbers with + - * / ** and pi, e",
                )
            values.append(value)
        try:
            entry.shape(*(literal(v) for v in values))
        except ValueError as error:
            raise self.fail(node, f"{entry.name}: {error}") from None
        return values

    def _Subscript(self, node: ast.Subscript) -> sp.Basic:
        value = self.build(node.value)
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        keys: list[sp.Basic] = []
        for item in items:
            if isinstance(item, ast.Slice):
                bounds = [
                    nodes.NONE if part is None else sp.Integer(self._integer(part, "a slice bound"))
                    for part in (item.lower, item.upper, item.step)
                ]
                if bounds[2] != nodes.NONE and int(bounds[2]) <= 0:
                    raise self.fail(item, "a slice step must be a positive integer")
                keys.append(nodes.Slice(*bounds))
            else:
                keys.append(sp.Integer(self._integer(item, "an index")))
        return nodes.Index(value, *keys)

    def _integer(self, node: ast.AST, what: str) -> int:
        """An integer literal, possibly negative (axes, shapes, indices)."""
        sign, inner = 1, node
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            sign, inner = -1, node.operand
        if (
            isinstance(inner, ast.Constant)
            and isinstance(inner.value, int)
            and not isinstance(inner.value, bool)
        ):
            if abs(inner.value) > 2**62:
                raise self.fail(node, f"{what} {inner.value} is too large")
            return sign * inner.value
        raise self.fail(node, f"{what} must be an integer literal such as 0 or -1")


_CHAINS = {ast.Add: sp.Add, ast.Sub: sp.Add, ast.Mult: sp.Mul, ast.Div: sp.Mul}


def _chain(node: ast.AST) -> type | None:
    """sp.Add for ``+``/``-``, sp.Mul for ``*``/``/``: operators that chain into one flat node."""
    return _CHAINS.get(type(node.op)) if isinstance(node, ast.BinOp) else None


def _arity(entry: Function) -> str:
    if entry.constant:
        counts = list(entry.ints)
        if len(counts) > 3 and counts == list(range(counts[0], counts[-1] + 1)):
            listed = f"{counts[0]} to {counts[-1]}"  # "1 to 8", not "1, 2, 3, 4, 5, 6, 7 or 8"
        else:
            listed = str(counts[0]) if len(counts) == 1 else ", ".join(map(str, counts[:-1])) + f" or {counts[-1]}"
        return f"{listed} number{'s' if entry.ints != (1,) else ''}"
    low, high = entry.tensors
    if entry.subscripts is not None:
        return f"its subscripts (a string) and {low} to {high} operands"
    # a range: "1 or 2" arguments, but "1 to 256" (cat takes any number up to 256, not 1 or 256)
    count = f"{low}" if low == high else f"{low} or {high}" if high == low + 1 else f"{low} to {high}"
    noun = "argument" if high == 1 else "arguments"
    text = f"{count} {noun}"
    extra = [n for n in entry.ints if n]
    if extra:
        text += " and " + " or ".join(map(str, extra)) + " integer" + ("s" if max(extra) > 1 else "")
    return text


_OTHER_NAMES: dict[str, tuple[str, int]] = {
    "ln": ("log({0})", 1), "log10": ("log({0})/log(10)", 1), "log2": ("log({0})/log(2)", 1),
    "pow": ("{0}**{1}", 2), "power": ("{0}**{1}", 2), "square": ("{0}**2", 1),
    "arcsin": ("asin({0})", 1), "arccos": ("acos({0})", 1), "arctan": ("atan({0})", 1),
    "arcsinh": ("asinh({0})", 1), "arccosh": ("acosh({0})", 1), "arctanh": ("atanh({0})", 1),
}
"""Names other tools (NumPy, C, calculators) give functions that jacli writes another way: the
form to write, with the call's arguments in place, and how many arguments the call has."""


def _other_name_message(name: str, arguments: list[str]) -> str:
    """'ln is not a jacli function; write log(x)' with the call's own arguments."""
    form, count = _OTHER_NAMES[name]
    if len(arguments) != count:
        arguments = ["x", "y"][:count]
    # An argument that is more than a name or a number is bracketed where the form needs it.
    shown = [
        a if re.fullmatch(r"\s*[\w.]+\s*", a) or form.startswith(("log(", "a")) else f"({a})"
        for a in arguments
    ]
    return f"{name} is not a jacli function; write {form.format(*(a.strip() for a in shown))}"


def unknown_function_message(name: str) -> str:
    """'unknown function', a 'did you mean' for near misses, and the known names."""
    close = difflib.get_close_matches(name, FUNCTIONS, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else "."
    return f"unknown function {name!r}{hint} Known functions: {', '.join(FUNCTIONS)}"
