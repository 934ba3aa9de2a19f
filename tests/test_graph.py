"""jacli graph: the grad_fn nodes it reports are the ones torch itself records.

The reference is torch: the test builds the same formula by hand and walks
``y.grad_fn.next_functions`` itself, depth first, and jacli's nodes must match it one for one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from helpers import cli_runner

from jacli.cli import app
from jacli.graph import Constant, compute_graph


def _torch_walk(y: torch.Tensor) -> list[tuple[str, list]]:
    """(class name, next entries) of every node reachable from y.grad_fn, depth first, each once;
    next entries are indices into the list, or None."""
    order: list = []
    index: dict = {}

    def visit(fn) -> int:
        if fn in index:
            return index[fn]
        index[fn] = len(order)
        slot = [type(fn).__name__, []]
        order.append(slot)
        slot[1] = [None if child is None else visit(child) for child, _ in fn.next_functions]
        return index[fn]

    visit(y.grad_fn)
    return [tuple(item) for item in order]


def _jacli_walk(result) -> list[tuple[str, list]]:
    return [(node.grad_fn, [None if isinstance(n, Constant) else n for n in node.next]) for node in result.nodes]


def test_the_tutorials_graph_is_torchs() -> None:
    x = torch.eye(5, dtype=torch.float64, requires_grad=True)
    expected = _torch_walk((x + 1) ** 2)
    result = compute_graph("(x+1)**2", {"x": "eye:5"})
    assert _jacli_walk(result) == expected
    assert [node.grad_fn for node in result.nodes] == ["PowBackward0", "AddBackward0", "AccumulateGrad"]
    power, add, leaf = result.nodes
    assert power.expression == "(x + 1)**2" and add.expression == "x + 1"
    assert leaf.leaf == "x" and leaf.shape == (5, 5)
    assert add.next[1] == Constant("1")  # the 1 of x + 1: no gradient flows to it


def test_shared_sub_expressions_and_held_inputs_are_torchs() -> None:
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor(2.0, dtype=torch.float64)
    sine = torch.sin(x)  # jacli computes a sub-expression written twice once
    expected = _torch_walk(sine * sine + y - torch.softmax(x, 0)[0] / 3)
    result = compute_graph("sin(x)*sin(x) + y - softmax(x)[0]/3", {"x": "1,2", "y": "2"}, wrt=["x"])
    assert _jacli_walk(result) == expected
    multiply = next(node for node in result.nodes if node.grad_fn == "MulBackward0")
    assert multiply.next[0] == multiply.next[1]  # sin(x) computed once, reached twice
    assert result.nodes[multiply.next[0]].expression == "sin(x)"
    assert [node.leaf for node in result.nodes if node.leaf] == ["x"]
    assert result.held == ["y"]


def test_json_and_dot() -> None:
    runner = cli_runner()
    run = runner.invoke(app, ["graph", "(x+1)**2", "-i", "eye:2", "-f", "json"])
    assert run.exit_code == 0, run.stderr
    document = json.loads(run.stdout)
    assert document["output"]["grad_fn"] == "PowBackward0"
    assert [n["grad_fn"] for n in document["nodes"]] == ["PowBackward0", "AddBackward0", "AccumulateGrad"]
    assert document["nodes"][1]["next"] == [2, {"constant": "1"}]
    dot = runner.invoke(app, ["graph", "(x+1)**2", "-i", "eye:2", "-f", "dot"])
    assert dot.exit_code == 0
    assert dot.stdout.startswith("digraph autograd {") and dot.stdout.rstrip().endswith("}")
    assert "n1 -> n0;" in dot.stdout and "n2 -> n1;" in dot.stdout  # x → x + 1 → (x + 1)**2
    assert '"PowBackward0\\n(x + 1)**2"' in dot.stdout


def test_the_tree_names_each_node_and_its_sub_expression() -> None:
    run = cli_runner().invoke(app, ["graph", "(x+1)**2", "-i", "eye:2", "-f", "plain"])
    assert run.exit_code == 0
    lines = run.stdout.splitlines()
    assert lines[1].endswith("PowBackward0  (x + 1)**2  shape (2, 2)")
    assert "AccumulateGrad  x: leaf, requires_grad=True" in run.stdout and "None  1: a constant" in run.stdout


def test_nothing_requires_grad_and_errors() -> None:
    result = compute_graph("x*2", {"x": "1,2"}, wrt=["x"])
    assert result.nodes[0].grad_fn == "MulBackward0"
    empty = compute_graph("where(x > 0, 1, 2)", {"x": "1,-1"})  # comparisons carry no gradient
    assert empty.nodes == [] and empty.document()["output"]["grad_fn"] is None
    run = cli_runner().invoke(app, ["graph", "x*", "-i", "1"])
    assert run.exit_code == 1 and run.stdout == "" and run.stderr.startswith("Error:")
    bad = cli_runner().invoke(app, ["graph", "x", "-i", "1", "-f", "csv"])
    assert bad.exit_code == 2 and bad.stderr.startswith("Error: --format 'csv'")


def test_constant_tensors_are_constant_nodes_as_torch_records_them() -> None:
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    cases = [
        ("x*arange(3)", x * torch.arange(3, dtype=torch.float64), "arange(3)"),
        ("eye(3) @ x", torch.eye(3, dtype=torch.float64) @ x, "eye(3)"),
        ("x*linspace(0,1,3)", x * torch.linspace(0, 1, 3, dtype=torch.float64), "linspace(0, 1, 3)"),
        ("sin(x)*ones(3) + zeros(3)", torch.sin(x) * torch.ones(3, dtype=torch.float64)
         + torch.zeros(3, dtype=torch.float64), "zeros(3)"),
    ]
    for text, reference, constant in cases:
        result = compute_graph(text, {"x": "1,2,3"})
        assert _jacli_walk(result) == _torch_walk(reference), text
        assert Constant(constant) in result.nodes[0].next, text
        torch.testing.assert_close(result.output, reference.detach())
    runner = cli_runner()
    for text, _, constant in cases[:3]:
        document = json.loads(runner.invoke(app, ["graph", text, "-i", "1,2,3", "-f", "json"]).stdout)
        assert {"constant": constant} in document["nodes"][0]["next"]
        dot = runner.invoke(app, ["graph", text, "-i", "1,2,3", "-f", "dot"])
        assert dot.exit_code == 0 and f'c0 [label="{constant}", shape=plaintext];' in dot.stdout
        plain = runner.invoke(app, ["graph", text, "-i", "1,2,3", "-f", "plain"])
        assert plain.exit_code == 0 and f"None  {constant}: a constant, no gradient flows" in plain.stdout


def test_other_views_of_a_formula_with_a_constant_tensor(tmp_path) -> None:
    """--trace, --explain, --show-code and check compile the same nodes; none may fail on a constant."""
    runner = cli_runner()
    run = runner.invoke(app, ["jacobian", "x*arange(3)", "-i", "1,2,3", "-f", "json", "--layout", "dense"])
    # J of x*arange(3) is diag(0, 1, 2), worked by hand
    assert json.loads(run.stdout)["result"]["x"]["values"] == [[0, 0, 0], [0, 1, 0], [0, 0, 2]]
    trace = runner.invoke(app, ["jacobian", "x*arange(3)", "-i", "1,2,3", "--trace"])
    assert trace.exit_code == 0, trace.exception
    assert any("arange(3)" in line and "[0, 1, 2]" in line for line in trace.stdout.splitlines())
    explain = runner.invoke(app, ["jacobian", "x*arange(3)", "-i", "1,2,3", "--explain"])
    assert explain.exit_code == 0, explain.exception
    code = runner.invoke(app, ["jacobian", "eye(3) @ x", "-i", "1,2,3", "--show-code"], env={"JACLI_NO_HISTORY": "1"})
    assert code.exit_code == 0, code.exception
    path = tmp_path / "script.py"
    path.write_text(code.stdout, encoding="utf-8")
    ran = subprocess.run([sys.executable, "-c", "import runpy, sys; print(runpy.run_path(sys.argv[1])['result']['x'].tolist())",
                          str(path)], capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[-1] == str(torch.eye(3, dtype=torch.float64).tolist())
    check = runner.invoke(app, ["check", "eye(3) @ x + x*linspace(0,1,3)", "-i", "1,2,3"])
    assert check.exit_code == 0, (check.stderr, check.exception)
    assert "# all agree" in check.stdout
