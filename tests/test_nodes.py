"""jacli's SymPy nodes (nodes.py) and how trees print (printing.py).

References: Python's ``math`` and SymPy's own elementary functions for relu, sigmoid and
softplus; Python's own indexing for ``Index``; literal expected strings for printing.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import sympy as sp

from jacli import nodes, printing
from jacli.parse import parse

x, y = sp.symbols("x y", real=True)

# -- the elementwise nodes SymPy lacks ----------------------------------------------------------

# (node, the same function in SymPy's elementary terms, the same in math)
ELEMENTARY = [
    (nodes.relu, lambda v: sp.Max(v, 0), lambda v: max(v, 0.0)),
    (nodes.sigmoid, lambda v: 1 / (1 + sp.exp(-v)), lambda v: 1 / (1 + math.exp(-v))),
    (nodes.softplus, lambda v: sp.log(1 + sp.exp(v)), lambda v: math.log1p(math.exp(v))),
]
IDS = [node.__name__ for node, _, _ in ELEMENTARY]


@pytest.mark.parametrize("node, elementary, reference", ELEMENTARY, ids=IDS)
def test_numbers_evaluate_to_the_function_value(node, elementary, reference) -> None:
    for value in (-2.5, -0.5, 0.0, 0.75, 3.0):
        number = sp.Rational(Fraction(value))
        assert float(node(number).evalf(30)) == pytest.approx(reference(value), rel=1e-15, abs=1e-300)
    assert isinstance(node(x), node)  # a symbol stays a node


@pytest.mark.parametrize("node, elementary, reference", ELEMENTARY, ids=IDS)
def test_the_exact_derivative_is_that_of_the_elementary_form(node, elementary, reference) -> None:
    derivative = nodes.elementary(sp.diff(node(x), x))
    expected = sp.diff(elementary(x), x)
    for value in (-1.7, -0.3, 0.4, 2.2):  # away from relu's kink
        point = {x: sp.Float(value, 40)}
        assert float(derivative.subs(point).evalf(30)) == pytest.approx(
            float(expected.subs(point).evalf(30)), rel=1e-15
        )


def test_relu_derivative_is_zero_at_the_kink_as_in_torch() -> None:
    assert sp.diff(nodes.relu(x), x) == sp.Heaviside(x, 0)
    assert sp.Heaviside(0, 0) == 0


def test_elementary_removes_every_jacli_function() -> None:
    tree = nodes.relu(x) + nodes.sigmoid(y) * nodes.softplus(x * y)
    plain = nodes.elementary(tree)
    assert not plain.has(nodes.relu, nodes.sigmoid, nodes.softplus)
    point = {x: sp.Rational(-1, 3), y: sp.Rational(5, 4)}
    expected = 0 + 1 / (1 + math.exp(-1.25)) * math.log1p(math.exp(-5 / 12))
    assert float(plain.subs(point).evalf(30)) == pytest.approx(expected, rel=1e-15)


# -- tensor nodes ------------------------------------------------------------------------------


def test_tensor_ops_are_one_class_per_name_and_never_evaluate() -> None:
    assert nodes.tensor_op("sum") is nodes.tensor_op("sum")
    assert nodes.tensor_op("sum") is not nodes.tensor_op("mean")
    assert nodes.tensor_op("sum")(x, 1) == nodes.tensor_op("sum")(x, 1)
    assert nodes.tensor_op("sum")(sp.Integer(3)).args == (3,)  # not evaluated to a number
    assert nodes.MatMul(x, y).args == (x, y)


class _Keys:
    """Hands back Python's own key for ``k[...]``: the reference for ``Index.key``."""

    def __getitem__(self, key):
        return key if isinstance(key, tuple) else (key,)


k = _Keys()

INDEXED = [
    ("x[1]", k[1]), ("x[-1]", k[-1]), ("x[1:3]", k[1:3]), ("x[::2]", k[::2]),
    ("x[:-1, 0]", k[:-1, 0]), ("x[2:, 1:3:2]", k[2:, 1:3:2]),
]


@pytest.mark.parametrize("text, key", INDEXED, ids=[i[0] for i in INDEXED])
def test_index_key_is_pythons_own_key(text: str, key: tuple) -> None:
    tree = parse(text).tree
    assert isinstance(tree, nodes.Index)
    assert tree.key() == key


# -- how the parser writes subtraction and division ---------------------------------------------


def test_negated_recognises_the_parsers_subtraction_only() -> None:
    minus_y = parse("x - y").tree.args[1]
    assert nodes.negated(minus_y) == y
    assert nodes.negated(sp.Mul(-2, y, evaluate=False)) is None
    assert nodes.negated(sp.Mul(-1, x, y, evaluate=False)) is None
    assert nodes.negated(x) is None


def test_reciprocal_base_recognises_the_parsers_division_only() -> None:
    over_y = parse("x / y").tree.args[1]
    assert nodes.reciprocal_base(over_y) == y
    assert nodes.reciprocal_base(sp.Pow(y, -2, evaluate=False)) is None
    assert nodes.reciprocal_base(y) is None


# -- printing ------------------------------------------------------------------------------------

PRINTED = [
    ("y + x*y - e^x", "y + x*y - e**x"),
    ("abs(x) + max(x, y)", "abs(x) + max(x, y)"),
    ("x - 0.1", "x - 0.1"),
    ("x - (y - 1)", "x - (y - 1)"),
    ("-x^2", "-x**2"),
    ("-(x*y)", "-(x*y)"),  # -x*y would parse as (-x)*y
    ("x/(y*2)", "x/(y*2)"),
    ("sqrt(x)/y", "sqrt(x)/y"),
    ("(a @ b) * 2", "(a @ b)*2"),
    ("sum(x, -1) + reshape(x, 2, 3)[0, 1:]", "sum(x, -1) + (reshape(x, 2, 3))[0, 1:]"),
    ("[[x, 1], [2, y]]", "[[x, 1], [2, y]]"),
    ("x * 1e-300", "x*1E-300"),
    ("x + 1/3", "x + 1/3"),
]


@pytest.mark.parametrize("text, printed", PRINTED, ids=[p[0] for p in PRINTED])
def test_to_text_writes_jacli_syntax_that_parses_back(text: str, printed: str) -> None:
    tree = parse(text).tree
    assert printing.to_text(tree) == printed
    assert parse(printing.to_text(tree)).tree == tree


@pytest.mark.parametrize(
    "number, literal",
    [(sp.Rational(1, 10), "0.1"), (sp.Rational(3, 8), "0.375"), (sp.Rational(-5, 4), "-1.25"),
     (sp.Rational(1, 3), "(1/3)"), (sp.Rational(1, 10**300), "1E-300")],
)
def test_rationals_print_as_the_decimal_they_came_from(number: sp.Rational, literal: str) -> None:
    assert printing._decimal(number) == literal
    if not literal.startswith("("):
        assert sp.Rational(Fraction(literal)) == number


def test_str_of_jacli_nodes_is_jacli_syntax() -> None:
    assert str(parse("x[1:3, -1] @ y").tree) == "(x[1:3, -1]) @ y"
    assert str(parse("[x, sum(y, 0)]").tree) == "[x, sum(y, 0)]"
