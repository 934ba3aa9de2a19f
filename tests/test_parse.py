"""The parser: the grammar it accepts, the constructs it refuses, and that it never runs code.

Expected trees are built here with SymPy's own constructors (``evaluate=False``, in the order the
text is written), expected columns are worked out by hand from the text, and expected values are
what the mathematics says, so nothing below is copied from jacli's output.
"""

from __future__ import annotations

import builtins
import re

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from jacli import nodes, printing
from jacli.errors import ExpressionError
from jacli.functions import FUNCTIONS
from jacli.parse import CARET_WIDTH, MAX_DEPTH, MAX_LENGTH, parse

x, y, z, a, b = (sp.Symbol(name, real=True) for name in "xyzab")


def add(*args):
    return sp.Add(*args, evaluate=False)


def mul(*args):
    return sp.Mul(*args, evaluate=False)


def pow_(base, exponent):
    return sp.Pow(base, exponent, evaluate=False)


def neg(term):
    return mul(sp.S.NegativeOne, term)


def div(numerator, denominator):
    return mul(numerator, pow_(denominator, sp.S.NegativeOne))


def value(tree: sp.Basic, **values: float) -> sp.Basic:
    """The tree evaluated exactly at the given values."""
    return tree.subs({sp.Symbol(k, real=True): v for k, v in values.items()}).doit()


# -- the accepted grammar -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3", sp.Integer(3)),
        ("0.1", sp.Rational(1, 10)),  # read exactly from the text, not via the float 0.1
        (".5", sp.Rational(1, 2)),
        ("2.5e-3", sp.Rational(1, 400)),
        ("1e3", sp.Integer(1000)),
        ("1_000", sp.Integer(1000)),
        ("x", x),
        ("x + 1", add(x, 1)),
        ("x - y", add(x, neg(y))),
        ("x * y", mul(x, y)),
        ("x / y", div(x, y)),
        ("x ** y", pow_(x, y)),
        ("x ^ y", pow_(x, y)),
        ("x^2+1", add(pow_(x, 2), 1)),  # ^ is a power with math precedence, not Python's xor
        ("2^3^2", pow_(2, pow_(3, 2))),  # right-associative
        ("-x^2", neg(pow_(x, 2))),  # -(x^2)
        ("(-x)^2", pow_(neg(x), 2)),
        ("-x", neg(x)),
        ("+x", x),
        ("x**-2", pow_(x, -2)),  # a negative literal exponent
        ("2*-x", mul(2, neg(x))),
        ("-3*x", mul(-3, x)),
        ("(x + 1) * 2", mul(add(x, 1), 2)),
        ("((x))", x),
        # chains of + and - (of * and /) are one flat node, in the order written
        ("x - y - z", add(x, neg(y), neg(z))),
        ("x - y + z", add(x, neg(y), z)),
        ("(x + y) + z", add(x, y, z)),  # the same sum as x + y + z, computed in the same order
        ("x + (y + z)", add(x, add(y, z))),
        ("x - (y - z)", add(x, neg(add(y, neg(z))))),
        ("x / y / z", mul(x, pow_(y, sp.S.NegativeOne), pow_(z, sp.S.NegativeOne))),
        ("x * y / z * 2", mul(x, y, pow_(z, sp.S.NegativeOne), 2)),
        ("x * y + z * x", add(mul(x, y), mul(z, x))),
        ("x - x", add(x, neg(x))),  # not collapsed to 0: it keeps x's shape
        ("x * y + z", add(mul(x, y), z)),
        ("x + y * z", add(x, mul(y, z))),
        ("a @ b", nodes.MatMul(a, b)),
        ("a @ b * 2", mul(nodes.MatMul(a, b), 2)),
        ("[x, 1]", nodes.Components(x, sp.Integer(1))),
        (
            "[[x, 1], [2, y]]",
            nodes.Components(nodes.Components(x, sp.Integer(1)), nodes.Components(sp.Integer(2), y)),
        ),
        ("pi", sp.pi),
        ("e", sp.E),
        ("e^x", pow_(sp.E, x)),
    ],
)
def test_grammar_builds_the_tree_as_written(text: str, expected: sp.Basic) -> None:
    assert parse(text).tree == expected


@pytest.mark.parametrize(
    "text, point, expected",
    [
        ("x^2+1", {"x": 3}, 10),
        ("2^3^2", {}, 512),
        ("-x^2", {"x": 3}, -9),
        ("-2^2", {}, -4),
        ("(-2)^2", {}, 4),
        ("2**-1", {}, sp.Rational(1, 2)),
        ("x - y - z", {"x": 10, "y": 3, "z": 2}, 5),
        ("x / y / z", {"x": 12, "y": 3, "z": 2}, 2),
        ("x / y * z", {"x": 12, "y": 3, "z": 2}, 8),
        ("2 * x ^ 2 - 3 * x / 4 + 1", {"x": 2}, sp.Rational(15, 2)),
        ("pi - e", {}, sp.pi - sp.E),
    ],
)
def test_precedence_gives_the_mathematical_value(text: str, point: dict, expected) -> None:
    assert sp.simplify(value(parse(text).tree, **point) - expected) == 0


def test_variables_in_order_of_first_appearance() -> None:
    parsed = parse("b*a + sin(c) - a*b + d[0]")
    assert parsed.variables == ("b", "a", "c", "d")


def test_constants_are_not_variables() -> None:
    parsed = parse("pi*x + e^y")
    assert parsed.variables == ("x", "y")
    assert parsed.tree == add(mul(sp.pi, x), pow_(sp.E, y))


def test_expression_without_variables() -> None:
    assert parse("2*pi").variables == ()


def _call(name: str, n_tensors: int, n_ints: int) -> str:
    entry = FUNCTIONS[name]
    tensors = ["x", "y", "z"][:n_tensors]
    subscripts = [repr(",".join("i" * len(tensors)))] if entry.subscripts is not None else []  # einsum's
    # a constant tensor's arguments are sizes and bounds (1: arange's step may not be 0)
    return f"{name}({', '.join(subscripts + tensors + [_literal(entry)] * n_ints)})"


def _literal(entry) -> str:
    return "1" if entry.constant else "0"


def _arities(name: str) -> list[tuple[int, int]]:
    entry = FUNCTIONS[name]
    low, high = entry.tensors
    return [(n, k) for n in range(low, high + 1) for k in entry.ints]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_table_function_parses_with_each_right_arity(name: str) -> None:
    entry = FUNCTIONS[name]
    for n_tensors, n_ints in _arities(name):
        text = _call(name, n_tensors, n_ints)
        parsed = parse(text)
        assert parsed.variables == ("x", "y", "z")[:n_tensors], text
        # an entry with a build makes its own tree (stack without axis= is the list [x, y])
        if entry.node is not None and entry.build is None and name != "log":
            assert parsed.tree.func is entry.node, text
            if entry.subscripts is None:
                assert parsed.tree.args[n_tensors:] == tuple(sp.Integer(_literal(entry)) for _ in range(n_ints))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_table_function_refuses_wrong_arities(name: str) -> None:
    high = FUNCTIONS[name].tensors[1]
    right = {n + k + (FUNCTIONS[name].subscripts is not None) for n, k in _arities(name)}
    for count in (m for m in range(0, 11) if m not in right):
        args = ["x", "y", "z"][: min(count, high)] + ["0"] * (count - min(count, high))
        if len(args) != count:
            continue  # three names for more operands: not the count meant (einsum checks its string first)
        text = f"1 + {name}({', '.join(args)})"
        with pytest.raises(ExpressionError) as info:
            parse(text)
        message = str(info.value)
        assert f"{name} takes" in message and f"got {len(args)}" in message, text
        assert f"(column {text.index(name) + 1})" in message, text


def test_specific_function_nodes() -> None:
    assert parse("sqrt(x)").tree == pow_(x, sp.S.Half)
    assert parse("log(x)").tree == sp.log(x, evaluate=False)
    assert parse("log(x, 2)").tree == div(sp.log(x, evaluate=False), sp.log(2, evaluate=False))
    assert sp.simplify(value(parse("log(x, 2)").tree, x=8) - 3) == 0
    assert parse("sum(x, -1)").tree == nodes.tensor_op("sum")(x, sp.Integer(-1))
    assert parse("reshape(x, 2, -1)").tree == nodes.tensor_op("reshape")(x, 2, -1)
    assert parse("matmul(a, b)").tree == nodes.MatMul(a, b)
    assert parse("relu(x)").tree == nodes.relu(x, evaluate=False)


@pytest.mark.parametrize(
    "text, key",
    [
        ("x[1]", (1,)),
        ("x[-1]", (-1,)),
        ("x[1, 2]", (1, 2)),
        ("x[1, -2]", (1, -2)),
        ("x[1:3]", (slice(1, 3, None),)),
        ("x[-3:-1]", (slice(-3, -1, None),)),
        ("x[1:]", (slice(1, None, None),)),
        ("x[:-1]", (slice(None, -1, None),)),
        ("x[::2]", (slice(None, None, 2),)),
        ("x[-4:-1:2]", (slice(-4, -1, 2),)),
        ("x[:, 0]", (slice(None, None, None), 0)),
        ("x[1:, -1]", (slice(1, None, None), -1)),
    ],
)
def test_indexing_and_slicing(text: str, key: tuple) -> None:
    tree = parse(text).tree
    assert isinstance(tree, nodes.Index)
    assert tree.args[0] == x
    assert tree.key() == key


def test_indexing_applies_to_any_expression() -> None:
    tree = parse("(x + y)[0][1]").tree
    assert isinstance(tree, nodes.Index) and tree.key() == (1,)
    inner = tree.args[0]
    assert isinstance(inner, nodes.Index) and inner.key() == (0,)
    assert inner.args[0] == add(x, y)


# -- the refused constructs ---------------------------------------------------------------------

# (text, words the message must contain, the text at which the reported column must point)
REFUSED = [
    ("1 + x.real", ["attribute"], "x.real"),
    ('x + "s"', ["string"], '"s"'),
    ("x + b'1'", ["string"], "b'1'"),
    ("x + (lambda: 1)", ["lambda"], "lambda"),
    ("2 * [i for i in x]", ["comprehension"], "[i for"),
    ("2 * {i for i in x}", ["comprehension"], "{i for"),
    ("2 * {i: i for i in x}", ["comprehension"], "{i:"),
    ("sum((i for i in x))", ["generator"], "(i for"),
    ("sin(x, k=2)", ["keyword"], "k=2"),
    ("cat(x, y, axis=1, axis=0)", ["axis= twice", "give it once"], "axis=0"),  # Python's ast keeps both
    ("x + _y", ["'_'", "_y"], "_y"),
    ("x * __import__('os')", ["'_'", "__import__"], "__import__"),
    ("x * __builtins__", ["'_'"], "__builtins__"),
    ("2 * (x in y)", ["'in'", "compare numbers with <"], "x in y"),
    ("2 * (x is y)", ["'is'", "compare numbers with <"], "x is y"),
    ("x + (x and y)", ["'and'/'or'"], "x and"),
    ("x + (x or y)", ["'and'/'or'"], "x or"),
    ("x + (not y)", ["'not'"], "not"),
    ("x + (1 if y else 2)", ["conditional"], "1 if"),
    ("x + {1: 2}", ["dictionary"], "{1"),
    ("x + {1, 2}", ["set"], "{1"),
    ("x + (1, 2)", ["tuple"], "(1, 2)"),
    ('x + f"{x}"', ["f-string"], 'f"'),
    ("sin(*x)", ["'*' unpacking"], "*x"),
    ("[x, *y]", ["'*' unpacking"], "*y"),
    ("x + (y := 2)", ["':='"], "y :="),
    ("x + 2 // 3", ["'//'"], "2 //"),
    ("x + 2 % 3", ["'%'"], "2 %"),
    ("x + (y | z)", ["'|'"], "y |"),
    ("x + (y & z)", ["'&'"], "y &"),
    ("x + (y << 1)", ["'<<'"], "y <<"),
    ("x + (y >> 1)", ["'>>'"], "y >>"),
    ("x + ~y", ["'~'"], "~y"),
    ("2 * sinn(x)", ["unknown function 'sinn'", "did you mean sin"], "sinn"),
    ("2 * qqq(x)", ["unknown function 'qqq'", "Known functions: sin"], "qqq"),
    ("x + sin", ["sin is a function"], "sin"),
    ("x + sin(x)(y)", ["called by name"], "sin(x)(y)"),
    ("x + sum(x, 1.5)", ["integer"], "1.5"),
    ("x + sum(x, y)", ["integer"], "y)"),
    ("reshape(x, 2, z)", ["integer"], "z)"),
    ("x + x[y]", ["integer"], "y]"),
    ("x + x[0:1.5]", ["integer"], "1.5"),
    ("x + [[1, 2], [3]]", ["different lengths"], "[[1"),
    ("x + [x, [y]]", ["mixes"], "[x, [y"),
    ("x + []", ["empty list"], "[]"),
    ("x[::-1]", ["slice step"], "::-1"),
    ("x[1:3:0]", ["slice step"], "1:3:0"),
    ("x + 2j", ["complex"], "2j"),
    ("x * 1e309", ["1e309", "larger than float64"], "1e309"),
    ("x * 2e400", ["larger than float64"], "2e400"),
    ("x * 1e-400", ["1e-400", "smaller than float64"], "1e-400"),
    ("x + " + "9" * 400, ["larger than float64"], "9"),
    ("x + " + "9" * 5000, ["larger than float64"], "9"),  # CPython itself refuses this literal
    ("x + 1." + "5" * 500, ["characters"], "1.5"),
    ("x + True", ["True"], "True"),
    ("x + None", ["None"], "None"),
    ("x + ...", ["Ellipsis"], "..."),
    ("x +\x00 1", ["U+0000"], "\x00"),
    ("x + \udcff", ["U+DCFF"], "\udcff"),  # what an undecodable byte in argv becomes
    ("é + 'é'", ["string"], "'é'"),  # columns count characters, not UTF-8 bytes
    ("   x + 's'", ["string"], "'s'"),  # leading spaces count
    ("x^2^2 + y.z", ["attribute"], "y.z"),  # '^' becoming '**' does not shift the column
]


@pytest.mark.parametrize("text, words, at", REFUSED)
def test_refused_construct_names_it_and_its_column(text: str, words: list[str], at: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    message = str(info.value)
    for word in words:
        assert word in message
    column = text.index(at) + 1
    assert re.search(rf"\(column {column}\)", message), message
    # The last line puts a caret under that column.
    assert message.splitlines()[-1] == "  " + " " * (column - 1) + "^"


@pytest.mark.parametrize(
    "text, column",
    [
        ("x + * 2", 5),  # the '*' that cannot start an operand
        ("x^^2", 3),  # the second '^', although the parser saw '****'
        ("sin(x))", 7),  # the unmatched ')'
        ("(x + 1", 1),  # the '(' that is never closed
        ("2 +", 4),  # just past the end
        ("x + $", 5),
        ("yield x", 1),
    ],
)
def test_syntax_errors_show_the_column(text: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith("cannot parse the expression")
    assert f"(column {column})" in message


def test_errors_on_a_later_line_give_line_and_column() -> None:
    with pytest.raises(ExpressionError, match=r"attribute access .*\(line 2, column 2\)"):
        parse("(x +\n y.real)")


def test_too_long_text() -> None:
    text = "x+" * (MAX_LENGTH // 2) + "x"
    assert len(text) == MAX_LENGTH + 1
    with pytest.raises(ExpressionError, match=rf"{MAX_LENGTH + 1:,} characters.*column {MAX_LENGTH + 1}\b"):
        parse(text)


def test_too_deep_nesting_points_into_the_nest() -> None:
    levels = MAX_DEPTH + 20
    text = "sin(" * levels + "x" + ")" * levels
    with pytest.raises(ExpressionError, match=f"more than {MAX_DEPTH} levels") as info:
        parse(text)
    column = int(re.search(r"\(column (\d+)\)", str(info.value)).group(1))
    # The column points at one of the calls nested deeper than the limit.
    assert text[column - 1 : column + 3] == "sin("
    assert (column - 1) // 4 + 1 > MAX_DEPTH - 5


@pytest.mark.parametrize(
    "text",
    [
        "x" + "+(x" * (MAX_DEPTH + 5) + ")" * (MAX_DEPTH + 5),
        "-" * (MAX_DEPTH + 5) + "x",
        "-" * 5000 + "x",  # deeper than CPython's own parser goes
        "x" + "[0]" * (MAX_DEPTH + 5),
        "(" * 300 + "x" + ")" * 300,
    ],
)
def test_deep_nesting_is_an_expression_error(text: str) -> None:
    with pytest.raises(ExpressionError, match="nest"):
        parse(text)


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_long_chains_are_one_level_not_one_per_term(op: str) -> None:
    # Python nests a + b + c ... one level per operator; jacli builds one flat node, so a sum
    # of many terms is not "nested too deeply" (and nothing downstream recurses per term).
    terms = 2 * MAX_DEPTH
    tree = parse(op.join(["x"] * terms)).tree
    assert isinstance(tree, sp.Add if op in "+-" else sp.Mul)
    assert len(tree.args) == terms


def test_nesting_up_to_the_limit_is_fine() -> None:
    text = "sin(" * (MAX_DEPTH - 2) + "x" + ")" * (MAX_DEPTH - 2)
    tree = parse(text).tree
    depth = 0
    while tree != x:
        assert tree.func is sp.sin
        tree, depth = tree.args[0], depth + 1
    assert depth == MAX_DEPTH - 2


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_expression(text: str) -> None:
    with pytest.raises(ExpressionError, match="empty"):
        parse(text)


def test_non_text_is_refused() -> None:
    with pytest.raises(ExpressionError, match="text"):
        parse(3)  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------------------------

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters jacli's grammar uses, so that generated text reaches far past the tokenizer.
GRAMMAR_CHARS = "xyz+-*/^()[]:,.@_0123456789e jsinlogqrtmaxpu%<>=!&|~\"'{}\n\t"


def _parse_or_expression_error(text: str) -> None:
    try:
        parsed = parse(text)
    except ExpressionError as error:
        assert str(error)  # a message, never an empty one
    else:
        assert isinstance(parsed.tree, sp.Basic)


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text_parses_or_raises_expression_error(text: str) -> None:
    _parse_or_expression_error(text)


@SETTINGS
@given(st.text(alphabet=GRAMMAR_CHARS, max_size=60))
def test_grammar_like_text_parses_or_raises_expression_error(text: str) -> None:
    _parse_or_expression_error(text)


NEVER_EVAL_SAMPLES = [
    "x^2 + 1", "[[x, 1], [2, y]]", "sum(x, 0) + 0.1", "x[1:-1:2] @ y", "log(x, 2) - pi*e",
    "__import__('os').system('true')", "eval('1')", "exec('x=1')", "(lambda: 1)()", "x.__class__",
    "open('/etc/passwd')", "1e309", "x + [i for i in y]",
]


def test_parse_never_calls_eval_or_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    for text in NEVER_EVAL_SAMPLES:  # once unpatched, so lazy imports have happened
        _parse_or_expression_error(text)
    calls: list[str] = []

    def refuse(name: str):
        def called(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"parse called {name}")

        return called

    monkeypatch.setattr(builtins, "eval", refuse("eval"))
    monkeypatch.setattr(builtins, "exec", refuse("exec"))
    results = []
    for text in NEVER_EVAL_SAMPLES:
        try:
            results.append(parse(text).tree)
        except ExpressionError:
            results.append(None)
    monkeypatch.undo()
    assert calls == []
    assert results[0] == add(pow_(x, 2), 1)
    assert results[5:] == [None] * (len(NEVER_EVAL_SAMPLES) - 5)


# A strategy for well-formed expressions from the elementwise table entries.
ELEMENTWISE = sorted(name for name, entry in FUNCTIONS.items() if entry.elementwise)
LEAVES = st.one_of(
    st.sampled_from(["x", "y", "pi", "e"]),
    st.integers(0, 20).map(str),
    st.sampled_from(["0.5", "0.1", "2.25", "1e-3", "1.5e3", "0.0"]),
)


def _maybe_parenthesized(draw, text: str) -> str:
    return f"({text})" if draw(st.booleans()) else text


@st.composite
def _call_of(draw, children) -> str:
    name = draw(st.sampled_from(ELEMENTWISE))
    entry = FUNCTIONS[name]
    n = draw(st.integers(entry.tensors[0], entry.tensors[1]))
    return f"{name}({', '.join(draw(children) for _ in range(n))})"


@st.composite
def _binary(draw, children) -> str:
    op = draw(st.sampled_from(["+", "-", "*", "/"]))
    left = _maybe_parenthesized(draw, draw(children))
    right = _maybe_parenthesized(draw, draw(children))
    return f"{left} {op} {right}"


@st.composite
def _power(draw, children) -> str:
    base = _maybe_parenthesized(draw, draw(children))
    exponent = draw(st.integers(-3, 3))
    op = draw(st.sampled_from(["**", "^"]))
    return f"{base}{op}{exponent}" if exponent >= 0 else f"{base}{op}({exponent})"


@st.composite
def _negation(draw, children) -> str:
    return "-" + _maybe_parenthesized(draw, draw(children))


EXPRESSIONS = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        _call_of(children), _binary(children), _power(children), _negation(children),
        children.map(lambda t: f"({t})"),
    ),
    max_leaves=12,
)


@SETTINGS
@given(EXPRESSIONS)
def test_printed_tree_parses_back_to_the_same_tree(text: str) -> None:
    try:
        tree = parse(text).tree
    except ExpressionError as error:  # a rare draw nested deeper than jacli allows
        assert "nested" in str(error)
        reject()
    printed = printing.to_text(tree)
    assert parse(printed).tree == tree, (text, printed)


@pytest.mark.parametrize(
    "text",
    [
        "y + x*y - e^x", "x - x", "x - y - x", "x - (y - x)", "-(x*y)", "-x*y", "-(-x)", "x - 3",
        "x + -3", "x - -3", "-2**2", "(-2)**2", "x**-1", "1/x", "x**-0.5", "sqrt(x)", "x*0.1",
        "1e-300*x", "min(x, y)", "max(y, 1)", "abs(x)", "x@y@z", "x@(y@z)", "-(x@y)", "(x*y)@z",
        "[x, -1]", "[[x, 1], [-2, y]]", "(x + y)[0][1]", "-x[0]", "x[1:-1:2]", "x[:, ::2]",
        "sum(x, -1)", "reshape(x*2, 2, -1)", "transpose(-x, 0, 1)", "log(x, 2)", "pi*e - e**pi",
        "x/(y*z)", "x*(y/z)", "x/y*z", "(x - 1)**-1", "sqrt(x)**2", "2**x**-1", "softmax(x) @ y",
    ],
)
def test_printed_tree_parses_back_for_tricky_cases(text: str) -> None:
    tree = parse(text).tree
    assert parse(printing.to_text(tree)).tree == tree


def test_printing_keeps_the_written_order_and_jacli_names() -> None:
    # SymPy's str() sorts terms and writes Abs/Max/E; jacli's printer writes what was typed.
    assert printing.to_text(parse("y + x*y - e^x").tree) == "y + x*y - e**x"
    assert printing.to_text(parse("abs(x) + max(x, y)").tree) == "abs(x) + max(x, y)"
    assert printing.to_text(parse("x - 0.1").tree) == "x - 0.1"


@pytest.mark.parametrize("before, after", [(0, 400), (400, 0), (400, 400), (10, 10)])
def test_errors_in_long_expressions_show_a_window_around_the_column(before: int, after: int) -> None:
    text = "x+" * before + "foo(x)" + "+x" * after
    with pytest.raises(ExpressionError, match="unknown function 'foo'") as info:
        parse(text)
    *_, line, caret = str(info.value).splitlines()
    assert len(line) <= 2 + 3 + CARET_WIDTH + 3
    assert line.startswith("  ...") == (before == 400)
    assert line.endswith("...") == (after == 400)
    # the caret stands under the f of foo
    assert caret.endswith("^") and line[len(caret) - 1 : len(caret) + 5] == "foo(x)"


@pytest.mark.parametrize("text, nodes_in_order", [
    ("x < 1", ["lt"]), ("x <= y", ["le"]), ("x > 1", ["gt"]), ("x >= y", ["ge"]), ("x == 2", ["eq"]),
    ("x != y", ["ne"]), ("0 <= x < 1", ["le", "lt"]), ("0 < x < y <= 1", ["lt", "lt", "le"]),
])
def test_comparisons_parse_to_their_nodes_and_chains_to_products(text, nodes_in_order) -> None:
    tree = parse(text).tree
    links = list(tree.args) if len(nodes_in_order) > 1 else [tree]
    if len(nodes_in_order) > 1:
        assert isinstance(tree, sp.Mul)
    assert [type(link).__name__ for link in links] == nodes_in_order
    assert parse(printing.to_text(tree)).tree == tree


# -- text written as on paper: refused, with the ASCII form that parses -------------------------


@pytest.mark.parametrize(
    "text, suggestion, reason",
    [
        ("x²", "x**2", "powers are written ** or ^"),
        ("(x+1)³ + y", "(x+1)**3 + y", "powers are written ** or ^"),
        ("x⁻¹", "x**-1", "powers are written ** or ^"),
        ("√x", "sqrt(x)", "square roots are written sqrt(x)"),
        ("√(x + 1)", "sqrt(x + 1)", "square roots are written sqrt(x)"),
        ("2x", "2*x", "multiplication needs '*'"),
        ("3x² − 2.5y", "3*x**2 - 2.5*y", "the minus sign is the ASCII '-'"),
        ("x−1", "x-1", "the minus sign is the ASCII '-'"),
        ("x – 1", "x - 1", "the minus sign is the ASCII '-'"),
        ("x × y", "x * y", "multiply with '*'"),
        ("x ÷ 2", "x / 2", "divide with '/'"),
    ],
)
def test_paper_math_gets_the_ascii_form_as_a_suggestion(text: str, suggestion: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    message = str(info.value)
    assert f"{reason}" in message and f"did you mean {suggestion}?" in message, message
    # The suggestion is real: it parses to the tree the formula means, written independently.
    meant = {"x²": x**2, "(x+1)³ + y": (x + 1)**3 + y, "x⁻¹": 1 / x, "√x": sp.sqrt(x), "√(x + 1)": sp.sqrt(x + 1),
             "2x": 2 * x, "3x² − 2.5y": 3 * x**2 - sp.Rational(5, 2) * y, "x−1": x - 1, "x – 1": x - 1,
             "x × y": x * y, "x ÷ 2": x / 2}[text]
    assert sp.simplify(parse(suggestion).tree.doit() - meant) == 0


def test_an_exponent_is_not_taken_for_implicit_multiplication() -> None:
    assert parse("1e5*x").tree.doit() == 100000 * sp.Symbol("x", real=True)
    with pytest.raises(ExpressionError) as info:
        parse("x2y+")  # a name with digits in it stays one name; the real error is the end
    assert "did you mean" not in str(info.value)


def test_a_number_before_parentheses_suggests_multiplication() -> None:
    with pytest.raises(ExpressionError) as info:
        parse("2(x + 1)")
    assert "multiplication needs '*': did you mean 2*(x + 1)? (column 1)" in str(info.value)


@pytest.mark.parametrize(
    "text, written",
    [
        ("ln(x)", "log(x)"),
        ("ln(x + 1)", "log(x + 1)"),
        ("pow(x, 2)", "x**2"),
        ("pow(x + 1, y)", "(x + 1)**y"),
        ("log10(x)", "log(x)/log(10)"),
        ("arctan(x)", "atan(x)"),
        ("square(2*x)", "(2*x)**2"),
    ],
)
def test_names_from_other_tools_get_jaclis_form(text: str, written: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    name = text.split("(")[0]
    assert str(info.value).startswith(f"{name} is not a jacli function; write {written} (column 1)")
    # The suggestion computes the function the other tool means, written here with SymPy.
    meant = {"ln(x)": sp.log(x), "ln(x + 1)": sp.log(x + 1), "pow(x, 2)": x**2, "pow(x + 1, y)": (x + 1)**y,
             "log10(x)": sp.log(x, 10), "arctan(x)": sp.atan(x), "square(2*x)": 4 * x**2}[text]
    assert sp.simplify(parse(written).tree.doit() - meant) == 0


@pytest.mark.parametrize("text", ["√", "√√x", "√sin(x)"])
def test_no_suggestion_rather_than_a_wrong_one(text: str) -> None:
    """Where the ASCII form is not clear (what √ applies to), the message suggests nothing."""
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert "did you mean" not in str(info.value) and "U+221A" in str(info.value)


def test_a_reserved_word_as_a_name_says_so() -> None:
    with pytest.raises(ExpressionError) as info:
        parse("as*2 + x")
    assert "'as' is a reserved word of the expression syntax and cannot name a variable: rename it (e.g. as1)" in str(info.value)
    assert parse("as1*2 + x").variables == ("as1", "x")  # the suggested name parses


def test_a_keyword_inside_a_number_is_not_called_a_name() -> None:
    with pytest.raises(ExpressionError) as info:
        parse("0is + x")
    assert "reserved word" not in str(info.value)


def test_stack_with_an_axis_is_its_own_node_and_without_one_the_list() -> None:
    from jacli.functions import FUNCTIONS as TABLE

    with_axis = parse("stack(x, y, axis=-1)").tree
    assert with_axis.func is TABLE["stack"].node
    operands, literals, keywords = TABLE["stack"].arguments(with_axis.args)
    assert [str(o) for o in operands] == ["x", "y"] and literals == [] and keywords == {"axis": -1}
    assert parse("stack(x, y)").tree == parse("[x, y]").tree
