"""--explain: every number it states is checked against an independent reference here.

The einsum it prints is applied in the test to a Jacobian the test computes itself (SymPy's exact
entries, or torch.autograd.functional.jacobian), and must give the result within 1e-12 in
float64; the shapes it states are the shapes of the tensors jacli returned; the exact partials are
SymPy's own diff of the formula; its measured differences are shown to move when the result is
wrong.
"""

from __future__ import annotations

import json
import math

import pytest
import sympy as sp
import torch
from helpers import cli

from jacli import api
from jacli.errors import JacliWarning
from jacli.explain import MAX_CHECK_ENTRIES, einsum_jvp, einsum_vjp, explain

TOLERANCE = 1e-12


def _jacobian(expr: str, inputs: dict, name: str) -> torch.Tensor:
    """J for ``name``, shaped output + input, by torch.autograd.functional (not jacli's engine)."""
    from jacli.compile import compile_expression

    compiled = compile_expression(expr)
    args = [torch.as_tensor(inputs[n], dtype=torch.float64) for n in compiled.variables]
    position = compiled.variables.index(name)

    def f(x):
        return compiled.function(*args[:position], x, *args[position + 1:])

    return torch.autograd.functional.jacobian(f, args[position])


VJP_CASES = [
    # (expression, inputs, v): output ranks 0, 1, 2; input ranks 0, 1, 2; several inputs
    ("(x+1)**2", {"x": torch.eye(2, dtype=torch.float64)}, torch.tensor([[1.0, 0.5], [-2.0, 3.0]], dtype=torch.float64)),
    ("A@x", {"A": torch.arange(12.0, dtype=torch.float64).reshape(3, 4) / 7, "x": torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)},
     torch.tensor([0.1, 1.0, -3.0], dtype=torch.float64)),
    ("sum(sin(x)*y)", {"x": torch.tensor([0.3, 1.2, -0.7], dtype=torch.float64), "y": torch.tensor(2.5, dtype=torch.float64)},
     torch.tensor(1.7, dtype=torch.float64)),
    ("[r*cos(t), r*sin(t)]", {"r": torch.tensor(2.0, dtype=torch.float64), "t": torch.tensor(0.5, dtype=torch.float64)},
     torch.tensor([0.25, -4.0], dtype=torch.float64)),
]


@pytest.mark.parametrize("expr,inputs,v", VJP_CASES, ids=[c[0] for c in VJP_CASES])
def test_the_vjp_einsum_contracts_an_independent_jacobian_to_the_result(expr, inputs, v) -> None:
    result = api.compute_vjp(expr, inputs, v)
    product = explain(result).section("product")
    for name in result.wrt:
        jacobian = _jacobian(expr, inputs, name)
        rule = einsum_vjp(v.dim(), inputs[name].dim())
        stated = product.data["einsum"] if len(result.wrt) == 1 else product.data["einsum"][name]
        assert stated == f'torch.einsum("{rule}", v, J)'
        contracted = torch.einsum(rule, v, jacobian)
        assert (contracted - result.grads[name]).abs().max() <= TOLERANCE
    assert product.data["checked_with"] == "forward"
    assert product.data["max_difference"] <= TOLERANCE


def test_the_einsum_strings_for_known_ranks() -> None:
    """Hand-written: v (2, 2) against J (2, 2, 2, 2); J (3,) + (4,) against u (4,)."""
    assert einsum_vjp(2, 2) == "ab,abcd->cd"
    assert einsum_vjp(1, 0) == "a,a->"
    assert einsum_vjp(0, 1) == ",a->a"
    assert einsum_jvp(1, 1) == "ab,b->a"
    assert einsum_jvp(0, 2) == "ab,ab->"


def test_the_vjp_check_measures_a_real_difference() -> None:
    """A result made wrong by 1e-3 is reported as 1e-3 off: the figure is measured, not asserted."""
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    result = api.compute_vjp("x**3", {"x": x}, torch.ones(3, dtype=torch.float64))
    result.grads["x"] = result.grads["x"] + torch.tensor([0.0, 1e-3, 0.0], dtype=torch.float64)
    difference = explain(result).section("product").data["max_difference"]
    assert difference == pytest.approx(1e-3, rel=1e-9)


def test_the_jvp_einsum_contracts_an_independent_jacobian_to_the_result() -> None:
    A = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.25]], dtype=torch.float64)
    x = torch.tensor([0.7, -1.3], dtype=torch.float64)
    u = torch.tensor([2.0, -0.5], dtype=torch.float64)
    result = api.compute_jvp("tanh(A@x)", {"A": A, "x": x}, {"x": u})
    product = explain(result).section("product")
    jacobian = _jacobian("tanh(A@x)", {"A": A, "x": x}, "x")
    assert product.data["einsum"] == 'torch.einsum("ab,b->a", J, u)'
    assert (torch.einsum("ab,b->a", jacobian, u) - result.value).abs().max() <= TOLERANCE
    assert product.data["checked_with"] == "reverse" and product.data["max_difference"] <= TOLERANCE


def test_the_hvp_check_against_the_full_hessian() -> None:
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    result = api.compute_hvp("x[0]**2*x[1] + x[1]**3", {"x": x}, {"x": torch.tensor([1.0, 0.0], dtype=torch.float64)})
    # by hand: H = [[2 x1, 2 x0], [2 x0, 6 x1]] = [[4, 2], [2, 12]]; H·[1, 0] = [4, 2]
    assert result.grads["x"].tolist() == [4.0, 2.0]
    assert explain(result).section("product").data["max_difference"] <= TOLERANCE


def test_the_shapes_stated_are_the_shapes_returned() -> None:
    x = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    result = api.compute_jacobian("sum(x, 0)*y", {"x": x, "y": torch.tensor(2.0, dtype=torch.float64)})
    shape = explain(result).section("shape")
    for name, block in result.blocks.items():
        assert tuple(shape.data["jacobian"][name]) == tuple(block.to_dense().shape)
    assert "J for x is output.shape + input.shape = (3,) + (2, 3) = (3, 2, 3)" in shape.lines
    assert "J for y is output.shape + input.shape = (3,) + () = (3,)" in shape.lines
    assert "as the classic matrix: 3 rows (output elements) × 7 columns (input elements)" in shape.lines


def test_the_exact_partials_are_sympys() -> None:
    result = api.compute_jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5})
    derivatives = explain(result).section("derivatives").data["entries"]
    r, t = sp.symbols("r t", real=True)
    y = [r * sp.cos(t), r * sp.sin(t)]
    expected = {f"∂y[{i}]/∂{s}": str(sp.diff(y[i], s)) for i in range(2) for s in (r, t)}
    assert derivatives == expected


def test_the_structure_of_an_elementwise_formula_and_its_diagonal() -> None:
    result = api.compute_vjp("(x+1)**2", {"x": "eye:2"}, "ones")
    structure = explain(result).section("structure")
    x = sp.Symbol("x", real=True)
    assert structure.data["x"]["kind"] == "diagonal"
    assert structure.data["x"]["diagonal"] == str(sp.diff((x + 1) ** 2, x))
    assert "∂y[m, n]/∂x[i, j] = 0 unless (m, n) = (i, j)" in structure.lines[0]
    # the diagonal really is all there is: the independent J's nonzeros are its diagonal
    jacobian = _jacobian("(x+1)**2", {"x": torch.eye(2, dtype=torch.float64)}, "x").reshape(4, 4)
    assert torch.equal(jacobian != 0, torch.eye(4, dtype=torch.bool))


def test_the_structure_counts_the_nonzeros_that_can_be() -> None:
    torch.manual_seed(0)
    A, x = torch.randn(3, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    result = api.compute_vjp("A@x", {"A": A, "x": x}, torch.ones(3, dtype=torch.float64))
    structure = explain(result).section("structure")
    nonzeros = int((_jacobian("A@x", {"A": A, "x": x}, "A") != 0).sum())  # random: every possible one is
    assert structure.data["A"] == {"kind": "sparse", "nonzeros": nonzeros, "entries": 36}
    assert structure.data["x"]["kind"] == "dense"


@pytest.mark.parametrize("v,said", [("ones", "ones: the result is J's column sums"),
                                    ("onehot:1", "onehot:1: the result is row 1 of J")])
def test_ones_and_onehot_are_named_and_mean_what_they_say(v: str, said: str) -> None:
    A = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]], dtype=torch.float64)
    result = api.compute_vjp("A@x", {"A": A, "x": [1.0, 1.0]}, v, wrt=["x"])
    assert any(said in line for line in explain(result).section("product").lines)
    expected = A.sum(0) if v == "ones" else A[1]  # J for x is A
    assert torch.equal(result.grads["x"], expected)


def test_grad_says_why_it_needs_one_number_and_checks_the_other_mode() -> None:
    result = api.compute_grad("x**2 + 3*x + 1", {"x": 2.0})
    product = explain(result).section("product")
    assert "one-number output" in product.lines[0]
    assert product.data["checked_with"] == "forward" and product.data["max_difference"] <= TOLERANCE
    assert result.grads["x"].item() == 7.0  # 2x + 3 at 2, by hand


def test_the_hessian_is_symmetric_and_its_exact_entries_are_sympys() -> None:
    result = api.compute_hessian("x[0]**2*x[1] + x[1]**3", {"x": [1.0, 2.0]})
    explanation = explain(result)
    assert explanation.section("product").data["max_asymmetry"] == 0.0
    entries = explanation.section("derivatives").data["entries"]
    assert entries["∂²y/∂x[0]∂x[1]"] == "2*x[0]" and entries["∂²y/∂x[1]∂x[1]"] == "6*x[1]"


def test_the_cost_is_the_measured_engine_time_and_the_passes() -> None:
    result = api.compute_vjp("x**2", {"x": [1.0, 2.0]}, "ones")
    cost = explain(result).section("cost")
    assert cost.data["seconds"] == result.problem.seconds > 0
    assert cost.data["passes"].startswith("1 VJP")
    forward = api.compute_jacobian("x**2 + sum(x)", {"x": [1.0, 2.0, 3.0]}, method="forward")
    assert explain(forward).section("cost").data["passes"].startswith("3 JVPs")


def test_a_big_problem_is_summarized() -> None:
    n = math.isqrt(MAX_CHECK_ENTRIES) + 1
    result = api.compute_jacobian("sin(x)", {"x": torch.linspace(0, 1, n, dtype=torch.float64)})
    explanation = explain(result)
    assert explanation.section("derivatives").data["entries"] is None
    product = explanation.section("product")
    assert product.data["max_difference"] is None and "not checked" in product.data["skipped"]
    assert explanation.section("structure").data["x"]["diagonal"] == "cos(x)"  # the structure still speaks


# -- the command line ---------------------------------------------------------------------------------

def test_json_is_one_document_with_the_explanation_inside() -> None:
    result = cli("vjp", "(x+1)**2", "-i", "eye:2", "--v", "ones", "--explain", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["result"]["x"]["values"] == [[4.0, 2.0], [2.0, 4.0]]  # 2(x+1) summed by columns
    assert document["explanation"]["product"]["einsum"] == 'torch.einsum("ab,abcd->cd", v, J)'
    assert document["explanation"]["shape"]["jacobian"]["x"] == [2, 2, 2, 2]


def test_plain_output_has_the_explanation_after_the_numbers_and_no_ansi() -> None:
    result = cli("jvp", "x**2", "-i", "1,2", "--v", "1,0", "--explain")
    assert result.exit_code == 0, result.stderr
    numbers, _, explanation = result.stdout.partition("# explanation: jvp x**2\n")
    assert numbers.splitlines()[-1].split() == ["2.0", "0.0"]
    assert "torch.einsum(\"ab,b->a\", J, u)" in explanation
    assert "\x1b" not in result.stdout + result.stderr


def test_pretty_output_is_a_panel() -> None:
    result = cli("grad", "x**2", "-i", "3", "--explain", "--format", "pretty", "--no-color")
    assert result.exit_code == 0, result.stderr
    assert "explanation: grad" in result.stdout and "╭" in result.stdout and "\x1b" not in result.stdout


def test_csv_refuses_the_explanation_before_any_work() -> None:
    result = cli("jacobian", "x**2", "-i", "1,2", "--explain", "--format", "csv")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("Error: --explain cannot go into a CSV table")


def test_with_an_output_file_the_explanation_comes_on_stdout(tmp_path) -> None:
    target = tmp_path / "h.json"
    result = cli("hessian", "sum(x**3)", "-i", "1,2", "--explain", "-o", str(target), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(target.read_text())["result"]["x,x"]["values"] == [[6.0, 0.0], [0.0, 12.0]]
    assert json.loads(result.stdout)["explanation"]["shape"]["hessian"] == {"x,x": [2, 2]}


def test_a_result_with_infinity_still_gives_one_strict_json_document() -> None:
    """sqrt at 0: the VJP is inf there and forward mode gives NaN (inf·0) off the diagonal: the
    check says it cannot compare, and the JSON stays strict."""
    result = cli("vjp", "sqrt(x)", "-i", "0,1", "--v", "ones", "--explain", "--format", "json")
    assert result.exit_code == 0, result.stderr
    def refuse(token: str):
        raise AssertionError(f"{token} in the JSON")

    document = json.loads(result.stdout, parse_constant=refuse)  # Python's json would take NaN
    assert document["explanation"]["product"]["max_difference"] == "nan"
    assert any("not comparable" in line for line in document["explanation"]["product"]["text"])


def test_a_pole_both_modes_see_agrees() -> None:
    with pytest.warns(JacliWarning, match="NaN or infinite"):
        result = api.compute_grad("sqrt(x)", {"x": 0.0})
    assert result.grads["x"].item() == float("inf")
    assert explain(result).section("product").data["max_difference"] == 0.0  # inf in both: alike


def test_a_small_vjp_shows_its_full_jacobian_row_by_row() -> None:
    """(x+1)**2 at eye(2): J is diagonal with 2(x+1) = 4, 2, 2, 4 on it (by hand)."""
    result = api.compute_vjp("(x+1)**2", {"x": "eye:2"}, "ones")
    lines = explain(result).section("product").lines
    start = lines.index("J for x, as a 4×4 matrix (a row per element of y, a column per element of x):")
    assert lines[start + 1:start + 5] == ["  [4, 0, 0, 0]", "  [0, 2, 0, 0]", "  [0, 0, 2, 0]", "  [0, 0, 0, 4]"]
    big = api.compute_vjp("(x+1)**2", {"x": "eye:3"}, "ones")  # 81 entries: not shown, still checked
    product = explain(big).section("product")
    assert not any(line.startswith("J for x, as a") for line in product.lines)
    assert product.data["max_difference"] <= TOLERANCE


@pytest.mark.parametrize("args, replaced", [
    (["jacobian", "x**2*y", "-i", "x=1", "-i", "y=2", "--answer", "[[4, 1]]", "--explain"], "--answer"),
    (["jacobian", "x**2*y", "-i", "x=1", "-i", "y=2", "--show-code", "--trace"], "--show-code"),
    (["vjp", "(x+1)**2", "-i", "eye:2", "--v", "ones", "--method", "backward", "--repeat", "2", "--explain"], "--repeat"),
])
def test_explain_refuses_the_options_that_replace_the_result(args, replaced) -> None:
    run = cli(*args)
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr.startswith("Error: ") and replaced in run.stderr and "Traceback" not in run.stderr


def test_the_output_is_called_f_everywhere_when_an_input_is_called_y() -> None:
    """An input named ``y`` renames the output in every sentence, as the pretty header does."""
    expr = "sum((y - x[0]*exp(-x[1]*arange(1, 6)/10))**2)"
    result = cli("grad", expr, "-i", "x=2,0.5", "-i", "y=1.9,1.8,1.7,1.6,1.5", "--const", "y", "--explain", "-f", "json")
    assert result.exit_code == 0, result.stderr
    explanation = json.loads(result.stdout)["explanation"]
    assert explanation["function"]["output"] == "f"
    assert explanation["function"]["text"][0] == f"f = {expr}"
    assert explanation["function"]["text"][-1].startswith("f: shape () = ")
    # the entries are SymPy's own derivative of the formula, under f's name
    x0, x1 = sp.symbols("x0 x1")
    ys = [1.9, 1.8, 1.7, 1.6, 1.5]
    f = sum((ys[k] - x0 * sp.exp(-x1 * (k + 1) / 10)) ** 2 for k in range(5))
    entries = explanation["derivatives"]["entries"]
    assert set(entries) == {"∂f/∂x[0]", "∂f/∂x[1]"}
    at = {x0: 2.0, x1: 0.5}
    for name, symbol in (("∂f/∂x[0]", x0), ("∂f/∂x[1]", x1)):
        text = entries[name].replace("x[0]", "x0").replace("x[1]", "x1")
        for k, value in enumerate(ys):
            text = text.replace(f"y[{k}]", repr(value))
        stated = sp.sympify(text, locals={"x0": x0, "x1": x1})
        assert float(stated.subs(at)) == pytest.approx(float(sp.diff(f, symbol).subs(at)), abs=TOLERANCE)
    text = "\n".join(line for section in explanation.values() if isinstance(section, dict) for line in section["text"])
    assert "f.backward()" in text and "∂f/∂x" in text
    assert "y.backward" not in text and "∂y/" not in text and "∂y[" not in text and "y has one element" not in text


def test_the_vjp_sentence_names_f_backward_when_an_input_is_called_y() -> None:
    result = cli("vjp", "x*y", "-i", "x=1,2", "-i", "y=3,4", "--wrt", "x", "-v", "ones", "--explain", "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    # vᵀJ with v = ones for x*y by x is y itself: (3, 4)
    assert document["result"]["x"]["values"] == [3.0, 4.0]
    lines = document["explanation"]["product"]["text"] + document["explanation"]["shape"]["text"]
    assert any("this is exactly f.backward(v), then x.grad" in line for line in lines)
    assert any(line.startswith("v is shaped like f, (2,)") for line in lines)
    assert any("a row per element of f" in line for line in lines)
    assert not any("y.backward" in line or "like y," in line for line in lines)
