"""--trace: the evaluation trace's values, tangents and adjoints, against hand-worked numbers and
against SymPy: each node's tangent is the chain rule over its children's tangents, each node's
adjoint the chain rule over its users' adjoints, with SymPy's local derivatives, and the ends of
the chains are SymPy's Jacobian."""

from __future__ import annotations

import json

import pytest
import sympy as sp
import torch
from helpers import cli

from jacli import api
from jacli.problem import prepare
from jacli.trace import LIMIT, trace, trace_of

TOLERANCE = 1e-12


def _column(t, field: str) -> list:
    return [getattr(node, field).tolist() for node in t.nodes]


def test_x_plus_1_squared_by_hand() -> None:
    """y = (x+1)**2 at x = 2: v1 = x + 1 = 3, y = v1² = 9. Tangents along u = 1: 1, 1, 2·v1·1 = 6.
    Adjoints from 1: ȳ = 1, v̄1 = 2·v1·ȳ = 6, x̄ = v̄1 = 6."""
    t = trace(prepare("(x+1)**2", {"x": 2.0}))
    assert [n.text for n in t.nodes] == ["x", "x + 1", "(x + 1)**2"]
    assert [n.local for n in t.nodes] == ["x", "x + 1", "v1**2"]
    assert [n.children for n in t.nodes] == [(), ("x",), ("v1",)]
    assert _column(t, "value") == [2.0, 3.0, 9.0]
    assert _column(t, "tangent") == [1.0, 1.0, 6.0]
    assert _column(t, "adjoint") == [6.0, 6.0, 1.0]


def test_x_plus_1_squared_at_the_tutorials_eye_with_v_ones() -> None:
    """PyTorch's tutorial: x = eye(2), y = (x+1)**2, y.backward(ones): x.grad = 2(x+1) = [[4, 2], [2, 4]]."""
    result = api.compute_vjp("(x+1)**2", {"x": "eye:2"}, "ones")
    t = trace_of(result)
    assert t.nodes[0].adjoint.tolist() == [[4.0, 2.0], [2.0, 4.0]]
    assert torch.equal(t.nodes[0].adjoint, result.grads["x"])
    assert t.nodes[1].value.tolist() == [[2.0, 1.0], [1.0, 2.0]]
    # the default tangent: one-hot on x[0, 0]; only y[0, 0] moves, by 2(x[0,0] + 1) = 4
    assert t.nodes[-1].tangent.tolist() == [[4.0, 0.0], [0.0, 0.0]]
    assert t.direction_text == "one-hot on x[0, 0]" and t.seed_text == "v = [[1, 1], [1, 1]]"


FORMULA = "sin(x*y) + x*y - x/y"
POINT = {"x": 0.7, "y": -1.9}


def _symbols(t) -> dict[str, sp.Symbol]:
    return {node.label: sp.Symbol(node.label, real=True) for node in t.nodes}


def test_the_chain_rule_with_sympys_local_derivatives() -> None:
    """Every node's tangent is Σ ∂local/∂child · tangent(child) and every node's adjoint is
    Σ adjoint(user) · ∂local(user)/∂node, with ∂local from SymPy at the trace's values."""
    t = trace(prepare(FORMULA, POINT), direction={"x": torch.tensor(0.3, dtype=torch.float64),
                                                  "y": torch.tensor(-1.1, dtype=torch.float64)})
    symbols = _symbols(t)
    by_label = {node.label: node for node in t.nodes}
    values = {symbols[label]: float(node.value) for label, node in by_label.items()}
    adjoints_by_chain = {label: 0.0 for label in by_label}
    adjoints_by_chain[t.nodes[-1].label] = 1.0
    for node in t.nodes:
        if not node.children:
            continue
        local = sp.sympify(node.local, locals=symbols)
        assert float(local.subs(values)) == pytest.approx(float(node.value), abs=TOLERANCE)
        tangent = sum(float(sp.diff(local, symbols[c]).subs(values)) * float(by_label[c].tangent) for c in node.children)
        assert float(node.tangent) == pytest.approx(tangent, abs=TOLERANCE)
    for node in reversed(t.nodes):
        for child in node.children:
            local = sp.sympify(node.local, locals=symbols)
            adjoints_by_chain[child] += float(node.adjoint) * float(sp.diff(local, symbols[child]).subs(values))
    for label, node in by_label.items():
        assert float(node.adjoint) == pytest.approx(adjoints_by_chain[label], abs=TOLERANCE), label
    assert len(t.nodes) > 5  # the chain is really a chain: x*y is one node used twice


def test_the_ends_of_the_chains_are_sympys_jacobian() -> None:
    u = {"x": 0.3, "y": -1.1}
    t = trace(prepare(FORMULA, POINT), direction={n: torch.tensor(v, dtype=torch.float64) for n, v in u.items()})
    x, y = sp.symbols("x y", real=True)
    f = sp.sin(x * y) + x * y - x / y
    at = {x: POINT["x"], y: POINT["y"]}
    gradient = {"x": float(sp.diff(f, x).subs(at)), "y": float(sp.diff(f, y).subs(at))}
    assert float(t.nodes[-1].tangent) == pytest.approx(gradient["x"] * u["x"] + gradient["y"] * u["y"], abs=TOLERANCE)
    by_label = {node.label: node for node in t.nodes}
    assert float(by_label["x"].adjoint) == pytest.approx(gradient["x"], abs=TOLERANCE)
    assert float(by_label["y"].adjoint) == pytest.approx(gradient["y"], abs=TOLERANCE)
    assert sum(1 for node in t.nodes if node.text == "x*y") == 1  # the shared node is one node


def test_a_vector_output_seeds_row_0_and_vjp_seeds_its_v() -> None:
    t = trace(prepare("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}))
    by_label = {node.label: node for node in t.nodes}
    # row 0 of J = [cos t, -r sin t]
    assert float(by_label["r"].adjoint) == pytest.approx(float(torch.cos(torch.tensor(0.5, dtype=torch.float64))), abs=TOLERANCE)
    assert float(by_label["t"].adjoint) == pytest.approx(-2 * float(torch.sin(torch.tensor(0.5, dtype=torch.float64))), abs=TOLERANCE)
    result = api.compute_vjp("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}, [0.25, -4.0])
    seeded = {node.label: node for node in trace_of(result).nodes}
    for name in ("r", "t"):
        assert float(seeded[name].adjoint) == pytest.approx(float(result.grads[name]), abs=TOLERANCE)


def test_jvp_traces_along_its_v() -> None:
    result = api.compute_jvp("x**2 + sum(x)", {"x": [1.0, 2.0]}, {"x": [3.0, -1.0]})
    t = trace_of(result)
    assert torch.allclose(t.nodes[-1].tangent, result.value, atol=TOLERANCE, rtol=0)
    assert t.direction_text == "u: x = [3, -1]"


def test_subtraction_and_division_are_nodes_the_user_wrote() -> None:
    t = trace(prepare("a - b/c", {"a": 1.0, "b": 2.0, "c": 4.0}))
    assert [n.text for n in t.nodes[3:]] == ["b/c", "a - b/c"]
    assert [n.local for n in t.nodes[3:]] == ["b/c", "a - v1"]
    assert "Backward" not in " ".join(n.text + n.local for n in t.nodes)


def test_a_problem_too_large_is_refused_in_one_line_with_nothing_on_stdout() -> None:
    result = cli("jacobian", "sin(x)", "-i", f"randn:{LIMIT}", "--trace")
    assert result.exit_code == 1 and result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("Error: the trace of sin(x) would show more than 60 numbers per column")
    assert "--trace" in line and "--input" in line and "\n" not in line and "Traceback" not in result.stderr


def test_the_cli_trace_in_json_and_plain() -> None:
    result = cli("grad", "(x+1)**2", "-i", "2", "--trace", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    nodes = document["trace"]["nodes"]
    assert [(n["expression"], n["value"], n["tangent"], n["adjoint"]) for n in nodes] == [
        ("x", 2.0, 1.0, 6.0), ("x + 1", 3.0, 1.0, 6.0), ("(x + 1)**2", 9.0, 6.0, 1.0)]
    assert document["result"]["x"]["values"] == 6.0
    plain = cli("grad", "(x+1)**2", "-i", "2", "--trace")
    assert plain.exit_code == 0 and "\x1b" not in plain.stdout
    assert "v2 = y  (x + 1)**2  v1**2        9      6        1" in plain.stdout


def test_a_constant_node_has_no_tangent_and_is_not_an_input() -> None:
    t = trace(prepare("x + pi/2", {"x": [1.0, 2.0]}))
    constant = t.nodes[1]
    assert constant.text == "pi/2" and not constant.is_input and constant.children == ()
    assert float(constant.value) == pytest.approx(torch.pi / 2, abs=TOLERANCE) and float(constant.tangent) == 0.0
    assert [n.is_input for n in t.nodes] == [True, False, False]


def test_the_output_is_called_f_when_an_input_is_called_y() -> None:
    """The node the output is must not read ``= y`` beside the input ``y``: it takes the header's name."""
    plain = cli("grad", "sum(x*y)", "-i", "x=1,2", "-i", "y=3,4", "--trace", "--format", "plain")
    assert plain.exit_code == 0, plain.stderr
    rows = {line.split()[0]: line.split() for line in plain.stdout.splitlines() if line[:1] in "xyv"}
    # sum(x*y) at x = (1, 2), y = (3, 4) is 1*3 + 2*4 = 11; along x[0] it moves by y[0] = 3; adjoint 1
    assert rows["v2"][:3] == ["v2", "=", "f"] and rows["v2"][-3:] == ["11", "3", "1"]
    assert not any(line.startswith("v") and "= y" in line for line in plain.stdout.splitlines())
    document = json.loads(cli("grad", "sum(x*y)", "-i", "x=1,2", "-i", "y=3,4", "--trace", "-f", "json").stdout)
    assert document["trace"]["output"] == "f"
    vector = trace(prepare("x*y", {"x": [1.0, 2.0], "y": [3.0, 4.0]}))
    assert vector.output == "f" and vector.seed_text.startswith("one-hot on f[0]")
    assert trace(prepare("x*z", {"x": [1.0, 2.0], "z": [3.0, 4.0]})).output == "y"
