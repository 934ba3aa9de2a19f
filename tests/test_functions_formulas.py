"""The formulas scientists write (#12): constant tensors inside a formula, inputs held constant
(``const`` / ``--const``), einsum's checked subscripts, keyword ``axis=``, and a Moré–Garbow–
Hillstrom residual (Watson) against its Jacobian coded by hand from the paper's formulas.

References are independent of jacli: numpy, formulas worked by hand, or another of jacli's methods
(the table's torch side against SymPy's exact derivative).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import cli_runner

import jacli
from jacli.cli import app
from jacli.compile import compile_expression
from jacli.errors import ExpressionError, InputError, ResourceError
from jacli.parse import parse
from jacli.structure import patterns

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

F64 = torch.float64


def run(*args: str):
    result = cli_runner().invoke(app, list(args), env={"JACLI_DEBUG": None, "COLUMNS": "120"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a user error must never escape as an exception
    return result


def assert_user_error(result, *fragments: str) -> None:
    """Error: on stderr, one line (plus a caret picture), nothing on stdout, exit 1, no traceback."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


# -- constant tensors ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, reference", [
    ("arange(5)", np.arange(5)),
    ("arange(1, 16)/10", np.arange(1, 16) / 10),
    ("arange(0, 1, 0.1)", np.arange(0, 1, 0.1)),
    ("arange(6, 0, -2)", np.arange(6, 0, -2)),
    ("arange(0.5, 3)", np.arange(0.5, 3)),
    ("arange(3, 1)", np.arange(3, 1)),  # empty, as numpy
    ("arange(0, pi, pi/4)", np.arange(0, np.pi, np.pi / 4)),
    ("linspace(0, 1, 5)", np.linspace(0, 1, 5)),
    ("linspace(-2, 2, 1)", np.linspace(-2, 2, 1)),
    ("linspace(0, pi, 7)", np.linspace(0, np.pi, 7)),
    ("ones(2, 3)", np.ones((2, 3))),
    ("zeros(4)", np.zeros(4)),
    ("eye(3)", np.eye(3)),
    ("eye(2, 4)", np.eye(2, 4)),
    ("ones(10**2)", np.ones(100)),
    ("[1, 2.5, 3]", np.array([1, 2.5, 3])),
    ("[[1, 2], [3, 4]]", np.array([[1.0, 2.0], [3.0, 4.0]])),
])
def test_constant_tensors_match_numpy(text: str, reference: np.ndarray) -> None:
    value = compile_expression(text)()
    assert value.dtype == F64 and tuple(value.shape) == reference.shape
    np.testing.assert_allclose(value.numpy(), reference, rtol=1e-15, atol=1e-15)


def test_constant_tensors_take_the_inputs_dtype_and_depend_on_nothing() -> None:
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float32, requires_grad=True)
    out = compile_expression("x * arange(1, 4) + linspace(0, 1, 3) + eye(3)[0] + ones(3)")(x)
    assert out.dtype == torch.float32
    (slope,) = torch.autograd.grad(out.sum(), x)
    assert slope.tolist() == [1.0, 2.0, 3.0]  # by hand: d/dx_i of x_i * i
    # the sparsity rules read the constants as constants: x * arange(1, 4) is diagonal
    found = patterns(parse("x * arange(1, 4) - eye(3)[1]").tree, {"x": (3,)}, ["x"])["x"]
    assert found.is_diagonal


def test_a_least_squares_fit_with_its_abscissae_written_in_the_formula() -> None:
    """The issue's example: t = arange(1, 16)/10 inside the formula, y read as data and held
    constant. The gradient by hand: -2 Σ r_i (e_i, -x0 t_i e_i), r = y - x0 e, e = exp(-x1 t)."""
    t = np.arange(1, 16) / 10
    y = 2.0 * np.exp(-0.7 * t) + 0.01 * np.sin(np.arange(15))
    x = np.array([1.5, 0.4])
    gradient = jacli.grad("sum((y - x[0]*exp(-x[1]*arange(1, 16)/10))**2)", {"x": x, "y": y}, const=["y"])
    assert list(gradient) == ["x"]
    e = np.exp(-x[1] * t)
    r = y - x[0] * e
    expected = np.array([-2 * np.sum(r * e), 2 * np.sum(r * x[0] * t * e)])
    np.testing.assert_allclose(gradient["x"].numpy(), expected, rtol=1e-13)


@pytest.mark.parametrize("text, fragments", [
    ("x * arange(n)", ["arange's argument 1 must be a number known before any input is read", "not a formula of n"]),
    ("x * ones(2.5)", ["ones: each size must be a whole number >= 0, got 2.5"]),
    ("x * arange(1, 2, 0)", ["arange: the step is 0"]),
    ("x * linspace(0, 1, -3)", ["linspace: the count n (linspace(start, stop, n)) must be a whole number >= 0, got -3"]),
    ("x * eye(3, 1/2)", ["eye: the size m must be a whole number >= 0, got 0.5"]),
    ("x * arange(log(-1))", ["arange's argument 1 is log(-1), not a finite real number known before"]),
    ("x * ones(sum(arange(3)))", ["ones's argument 1 is sum(arange(3)), not a finite real number"]),
    ("x * ones(10**400)", ["beyond float64's range"]),
    ("x * ones()", ["ones takes 1 to 8 numbers, got 0"]),
])
def test_a_constant_tensors_bad_argument_is_named(text: str, fragments: list[str]) -> None:
    assert_user_error(run("jacobian", text, "-i", "x=1,2,3"), *fragments)
    with pytest.raises(ExpressionError):
        parse(text)


def test_a_huge_constant_tensor_is_refused_by_the_memory_guard_in_one_line() -> None:
    for text in ("x * ones(10**12)", "sum(arange(10**12)) * x", "x + eye(10**6)[0]"):
        result = run("jacobian", text, "-i", "x=1")
        assert_user_error(result, "over the memory budget")
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_symbolic_method_refuses_a_large_constant_before_expanding_it() -> None:
    with pytest.raises(ResourceError, match="intermediate results of at most 100,000 elements"):
        jacli.jacobian("sum(ones(10**6)) * x", {"x": 1.0}, method="symbolic")
    # a small one is expanded exactly: d/dx of x * sum(arange(4)) is 0 + 1 + 2 + 3
    assert jacli.jacobian("x * sum(arange(4))", {"x": 1.0}, method="symbolic")["x"].item() == 6.0


# -- const: inputs held constant ------------------------------------------------------------------

def test_const_is_every_input_but_those(tmp_path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("1.0\n2.5\n3.0\n")
    formula = "sum((y - x[0]*exp(-x[1]*arange(1, 4)/10))**2)"
    held = run("grad", formula, "-i", "x=1,2", "-i", f"y=@{data}", "--const", "y")
    chosen = run("grad", formula, "-i", "x=1,2", "-i", f"y=@{data}", "--wrt", "x")
    assert held.exit_code == 0 and held.stderr == ""
    assert held.stdout == chosen.stdout and held.stdout.startswith("# x 2\n")
    api = jacli.jacobian("a*x + b", {"a": 2.0, "x": 3.0, "b": 1.0}, const="a,b")
    assert {name: value.item() for name, value in api.items()} == {"x": 2.0}


def test_const_typed_on_a_continued_problem_replaces_its_wrt(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # a fresh last problem
    first = run("grad", "x * y**2", "-i", "x=2", "-i", "y=3", "--const", "y")
    assert first.exit_code == 0 and first.stdout.startswith("# x scalar\n9")  # d/dx x y² = y² = 9
    again = run("grad", "--const", "x")  # continues: --wrt x was the last problem's, not typed now
    assert again.exit_code == 0, again.stderr
    assert again.stdout.startswith("# y scalar\n12")  # d/dy x y² = 2 x y = 12


@pytest.mark.parametrize("arguments, fragments", [
    (["--const", "z"], ["--const 'z' is not a variable of the expression", "Its variables are: y, x"]),
    (["--const", "Y"], ["did you mean y?"]),
    (["--const", "x,y"], ["--const holds every variable (y, x), so nothing is left to differentiate"]),
])
def test_const_errors_name_the_input_and_say_what_to_do(arguments: list[str], fragments: list[str]) -> None:
    assert_user_error(run("jacobian", "y * x", "-i", "x=1", "-i", "y=2", *arguments), *fragments)


def test_wrt_and_const_naming_one_input_is_a_usage_error() -> None:
    """Two options that contradict each other: exit 2, one line, as every clash of options."""
    result = run("jacobian", "y * x", "-i", "x=1", "-i", "y=2", "--const", "y", "--wrt", "y")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("Error: 'y' is both in --wrt (differentiate) and in --const (hold constant)")


def test_the_library_speaks_of_const_and_wrt_never_of_flags() -> None:
    with pytest.raises(InputError, match=r"^'x' is both in `wrt` \(differentiate\) and in `const`") as caught:
        jacli.hessian("x**2 * y", {"x": 1.0, "y": 2.0}, wrt=["x"], const=["x"])
    assert "--" not in str(caught.value) and caught.value.param == "const"
    assert jacli.vjp("x * y", {"x": 2.0, "y": 3.0}, 1.0, const=["x"]) == {"y": torch.tensor(2.0, dtype=F64)}


def test_const_is_offered_exactly_where_wrt_is() -> None:
    for command in ("jacobian", "vjp", "grad", "hessian", "check", "jvp", "hvp"):
        text = run(command, "--help").stdout
        assert ("--const" in text) == ("--wrt" in text), command


# -- einsum: the subscripts are data, checked -------------------------------------------------------

@pytest.mark.parametrize("text, fragment", [
    ('einsum("ij,jk->iq", a, a)', "the output's q is in no input"),
    ('einsum("ij,jk->ii", a, a)', "the output 'ii' repeats i"),
    ('einsum("ij,jk", a)', "they name 2 operands and the call gives 1"),
    ('einsum("i1,jk", a, a)', "'1' is not a letter"),
    ('einsum("...i->i", a)', "'...' (broadcasting) is not supported"),
    ('einsum("i->i->i", a)', "it may have one '->'"),
    ("einsum(\"__import__('os').system('true')\", a)", "'_' is not a letter"),
    ("einsum(a, a)", 'takes its subscripts first, as a string: einsum("ij,jk->ik", a, b)'),
])
def test_einsum_subscripts_are_checked_and_never_run(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert fragment in str(caught.value)
    assert_user_error(run("jacobian", text, "-i", "a=eye:2"), fragment)


def test_einsum_shapes_are_checked_against_the_letters() -> None:
    assert_user_error(run("jacobian", 'einsum("ij,jk->ik", a, b)', "-i", "a=ones:2x3", "-i", "b=ones:2x2"),
                      "einsum's letter j is 3 in one place and 2 in another (operand 2)")
    assert_user_error(run("jacobian", 'einsum("ijk->i", a)', "-i", "a=ones:2x3"),
                      "einsum's operand 1 has shape (2, 3), 2 axes, but its subscripts 'ijk' name 3")


def test_a_shift_past_the_end_leaves_zeros_and_a_tuple_of_integers_gets_the_form_to_write() -> None:
    x = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    assert compile_expression("shift(x, 3)")(x).tolist() == [0.0, 0.0, 0.0]
    assert compile_expression("shift(x, -5)")(x).tolist() == [0.0, 0.0, 0.0]
    assert compile_expression("shift(x, 1) + shift(x, -1)")(x).tolist() == [2.0, 4.0, 2.0]  # by hand
    with pytest.raises(ExpressionError, match=r"pad takes its integers one by one, not as a tuple: write pad\(x, 1, 2\)"):
        parse("pad(x, (1, 2))")
    assert_user_error(run("jacobian", "shift(x, 1)", "-i", "2"), "shift needs at least one dimension, got a scalar")


def test_strings_are_refused_everywhere_else_and_keywords_where_not_taken() -> None:
    with pytest.raises(ExpressionError, match="a string is not allowed"):
        parse("sin('x')")
    with pytest.raises(ExpressionError, match="sum takes no keyword axis="):
        parse("sum(x, axis=1)")
    with pytest.raises(ExpressionError, match="cat takes no keyword dim=; cat takes axis="):
        parse("cat(x, y, dim=1)")
    with pytest.raises(ExpressionError, match="cat's axis must be an integer literal"):
        parse("cat(x, y, axis=x)")


def test_cat_along_an_axis_and_its_shape_errors() -> None:
    a, b = torch.ones(2, 2, dtype=F64), torch.zeros(2, 3, dtype=F64)
    assert compile_expression("cat(a, b, axis=1)")(a, b).tolist() == [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0]]
    assert_user_error(run("jacobian", "cat(a, b, axis=0)", "-i", "a=ones:2x2", "-i", "b=ones:2x3"),
                      "cat joins along the first axis and needs the other axes to agree")
    assert_user_error(run("jacobian", "cat(a, b, axis=2)", "-i", "a=ones:2x2", "-i", "b=ones:2x3"),
                      "axis 2 is out of range for 2 dimensions")


def test_stack_along_an_axis_and_its_range() -> None:
    a, b = torch.ones(2, 3, dtype=F64), torch.zeros(3, dtype=F64)
    # the new axis in the middle: out[i, j, k] is part j at (i, k), b broadcast to a's shape
    assert compile_expression("stack(a, b, axis=1)")(a, b).tolist() == [[[1, 1, 1], [0, 0, 0]]] * 2
    assert compile_expression("stack(a, b, axis=-1)")(a, b).tolist() == [[[1, 0]] * 3] * 2
    # without axis= (or with axis=0) it is the list literal
    assert parse("stack(a, b)").tree == parse("[a, b]").tree
    assert compile_expression("stack(a, b, axis=0)")(a, b).tolist() == [[[1, 1, 1]] * 2, [[0, 0, 0]] * 2]
    assert_user_error(run("jacobian", "stack(a, b, axis=3)", "-i", "a=ones:2x3", "-i", "b=ones:3"),
                      "stack's axis 3 is out of range for its result of 3 dimensions; use -3 to 2")
    assert_user_error(run("jacobian", "stack(a, b, axis=-4)", "-i", "a=ones:2x3", "-i", "b=ones:3"),
                      "stack's axis -4 is out of range")


# -- linear algebra by hand -------------------------------------------------------------------------

def test_slogdet_is_log_abs_det_with_the_inverse_transpose_as_its_derivative() -> None:
    a = np.array([[0.5, 2.0, -1.0], [1.0, 0.3, 0.2], [0.1, -0.4, 1.5]])
    assert np.linalg.det(a) < 0  # where logdet is NaN, slogdet is finite
    for method in ("reverse", "symbolic"):
        jac = jacli.jacobian("slogdet(A)", {"A": a}, method=method)["A"].numpy()
        np.testing.assert_allclose(jac, np.linalg.inv(a).T, rtol=1e-12)
    value = compile_expression("sign(det(A)) * exp(slogdet(A))")(torch.tensor(a))
    np.testing.assert_allclose(value.item(), np.linalg.det(a), rtol=1e-13)


def test_cross_and_its_jacobian_the_skew_matrix() -> None:
    a, b = np.array([1.0, 2.0, 3.0]), np.array([-0.5, 0.25, 2.0])
    assert compile_expression("cross(a, b)")(torch.eye(3, dtype=F64)[0], torch.eye(3, dtype=F64)[1]).tolist() == [0, 0, 1]
    jac = jacli.jacobian("cross(a, b)", {"a": a, "b": b})
    skew = lambda v: np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])  # noqa: E731
    np.testing.assert_allclose(jac["a"].numpy(), -skew(b))  # a × b = -[b]ₓ a
    np.testing.assert_allclose(jac["b"].numpy(), skew(a))  # a × b = [a]ₓ b


@pytest.mark.parametrize("text, inputs", [
    ("x * arange(1, 4) + sum(eye(3) @ x)", {"x": [0.3, -0.7, 1.1]}),
    ("cat(reshape(x, 2, 2), ones(2, 1) * x[0], axis=1)", {"x": [1.0, 2.0, 3.0, 4.0]}),
    ("pad(sin(x), 1, 2)", {"x": [0.3, -0.7, 1.1]}),
    ("stack(sin(x), x**2, axis=1)", {"x": [0.3, -0.7, 1.1]}),
    ("stack(reshape(x, 2, 2), y**3, axis=-1)", {"x": [0.3, -0.7, 0.4, -1.0], "y": [1.1, 0.2]}),
    ("kron(x, y**2)", {"x": [0.3, -0.7], "y": [1.1, 0.2, 0.5]}),
    ("cross(x, sin(y))", {"x": [0.3, -0.7, 0.4], "y": [1.1, 0.2, 0.5]}),
    ("einsum('ij,j->i', reshape(x, 2, 3), y)", {"x": [0.3, -0.7, 0.4, 1, 2, 3], "y": [1.1, 0.2, 0.5]}),
    ("einsum('ii', outer(x, x))", {"x": [0.3, -0.7, 0.4]}),
    ("slogdet(reshape(x, 2, 2))", {"x": [0.3, -0.7, 0.4, -1.0]}),
    ("x - linspace(0, 1, 3)**2", {"x": [0.3, -0.7, 0.4]}),
])
def test_every_method_agrees_with_the_exact_derivative(text: str, inputs: dict) -> None:
    exact = jacli.jacobian(text, inputs, method="symbolic")
    for method in ("reverse", "forward", "rows", "compressed", "auto"):
        found = jacli.jacobian(text, inputs, method=method)
        for name in exact:
            np.testing.assert_allclose(found[name].numpy(), exact[name].numpy(), rtol=1e-12, atol=1e-14,
                                       err_msg=f"{text} {method} {name}")


# -- a Moré–Garbow–Hillstrom residual: Watson (problem 20), m = 31 ---------------------------------

def watson_text(n: int) -> str:
    """Watson's residual with t_i = i/29 written in the formula (no selector inputs)."""
    t = "reshape(arange(1, 30)/29, 29, 1)"
    return (f"cat({t}**arange({n - 1}) @ (arange(1, {n})*x[1:]) - ({t}**arange({n}) @ x)**2 - 1, "
            f"x[0], x[1] - x[0]**2 - 1)")


def watson_jacobian(x: np.ndarray) -> np.ndarray:
    """By hand from the paper: f_i = Σ_{j≥2} (j-1) x_j t^(j-2) - (Σ_j x_j t^(j-1))² - 1 for
    i = 1..29, f_30 = x_1, f_31 = x_2 - x_1² - 1 (1-based j)."""
    n = len(x)
    jac = np.zeros((31, n))
    for i in range(1, 30):
        t = i / 29
        inner = sum(x[j] * t**j for j in range(n))  # 0-based: x_j t^j
        for j in range(n):
            jac[i - 1, j] = (j * t ** (j - 1) if j else 0.0) - 2 * inner * t**j
    jac[29, 0] = 1.0
    jac[30, 0], jac[30, 1] = -2 * x[0], 1.0
    return jac


@pytest.mark.parametrize("n", [6, 9])
def test_watson_jacobian_matches_the_hand_coded_one(n: int) -> None:
    rng = np.random.default_rng(n)
    for x in (np.zeros(n), rng.uniform(-1, 1, n)):  # the standard starting point, and another
        jac = jacli.jacobian(watson_text(n), {"x": x})["x"].numpy()
        np.testing.assert_allclose(jac, watson_jacobian(x), rtol=1e-12, atol=1e-14)
    x = rng.uniform(-1, 1, n)
    exact = jacli.jacobian(watson_text(n), {"x": x}, method="symbolic")["x"].numpy()
    np.testing.assert_allclose(exact, watson_jacobian(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("text", [
    "slogdet(A)", "sum(einsum('ij,jk->ik', A, A))", "sum(cross(A[0], A[1])**2)",
    "sum(kron(A, A)) + sum(pad(A, 1, 1)**3) + sum(cat(A, A**2, axis=1) * arange(6))",
])
def test_hessians_agree_with_the_exact_ones(text: str) -> None:
    a = [[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [1.0, 1.0, 3.0]]
    exact = jacli.hessian(text, {"A": a}, method="symbolic", matrix=True)
    np.testing.assert_allclose(jacli.hessian(text, {"A": a}, matrix=True).numpy(), exact.numpy(), rtol=1e-11, atol=1e-12)


def test_a_singular_matrix_is_the_users_error_and_slogdet_reports_it_as_not_finite() -> None:
    for text in ("inv(A)", "solve(A, [1, 2])"):
        assert_user_error(run("jacobian", text, "-i", "A=[[1,1],[1,1]]"),
                          f"{text[:text.index('(')]} needs an invertible matrix, and this one is singular")
    result = run("jacobian", "slogdet(A)", "-i", "A=[[1,1],[1,1]]", "-f", "plain")
    assert result.exit_code == 0 and "NaN or infinite" in result.stderr  # log|det| = -inf there


def test_jacli_functions_lists_each_function_with_its_group() -> None:
    import json

    from jacli.functions import GROUPS

    document = json.loads(run("functions", "-f", "json").stdout)
    groups = {entry["name"]: entry["group"] for entry in document["functions"]}
    assert set(groups.values()) == set(GROUPS)
    # by hand: where each of #12's functions belongs
    assert {name: groups[name] for name in ("arange", "eye", "pad", "kron", "cross", "einsum", "slogdet", "gamma", "clamp")} == {
        "arange": "constant tensors", "eye": "constant tensors", "pad": "shape and shift", "kron": "linear algebra",
        "cross": "linear algebra", "einsum": "linear algebra", "slogdet": "linear algebra", "gamma": "special functions",
        "clamp": "piecewise and comparison",
    }
    # the plain list is grouped in GROUPS' order, each line naming its group
    lines = run("functions").stdout.splitlines()
    order = [GROUPS.index(groups[line.split()[0]]) for line in lines if line.split()[0] in groups]
    assert order == sorted(order)
    assert any(line.split()[:3] == ["einsum", "linear", "algebra"] for line in lines)


def test_a_constant_too_large_for_the_budget_is_named_with_its_size() -> None:
    # ones(10**12) holds 10**12 float64 numbers: 8.0 TB, whatever the inputs
    for text, constant in (("x * ones(10**12)", "ones(10**12)"), ("sum(arange(10**12)) * x", "arange(10**12)"),
                           ("x + eye(10**6)[0]", "eye(10**6)")):
        result = run("grad" if "sum" in text else "jacobian", text, "-i", "x=1")
        assert_user_error(result, f"Its constant {constant} alone has 1,000,000,000,000 elements (8.0 TB): "
                                  "make it smaller, or raise --max-memory.")
        assert "smaller inputs" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(ResourceError, match=r"Its constant ones\(10\*\*12\) .* or raise `max_memory`"):
        jacli.grad("x * ones(10**12)", {"x": 1.0})
    # an input larger than the constant is what to make smaller: x (960 kB) fits a 1 MB budget,
    # x and x * ones(3) together do not
    result = run("jacobian", "x * ones(3)", "-i", "x=ones:40000x3", "--max-memory", "1M")
    assert_user_error(result, "Use smaller inputs, or raise --max-memory.")


def test_argument_counts_are_ranges_in_words() -> None:
    assert_user_error(run("jacobian", "cat()", "-i", "x=1"), "cat takes 1 to 256 arguments, got 0")
    assert_user_error(run("jacobian", "stack()", "-i", "x=1"), "stack takes 1 to 256 arguments, got 0")
    assert_user_error(run("jacobian", "log(x, 2, 3)", "-i", "x=1"), "log takes 1 or 2 arguments, got 3")
    assert_user_error(run("jacobian", "x * arange()", "-i", "x=1"), "arange takes 1, 2 or 3 numbers, got 0")
