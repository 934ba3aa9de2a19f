"""batch_axis: one result per point, computed together, equal to a loop of one-point calls.

The reference for every batched result is the same API called once per point (itself tested
against SymPy and gradcheck elsewhere), and, for a few, a derivative worked out by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import cli_runner

import jacli
from jacli import api, render
from jacli.cli import app
from jacli.errors import InputError, ResourceError, ShapeError

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

TOLERANCE = 1e-12


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64)


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, rtol=TOLERANCE, atol=TOLERANCE), (a - b).abs().max()


# Expressions, the points' inputs and the shared ones: reductions, matrix products, indexing,
# softmax, a linear solve, broadcasting.
CASES = [
    ("[r*cos(t), r*sin(t)]", {"r": _randn(7, seed=1), "t": _randn(7, seed=2)}, {}),
    ("tanh(A @ x)", {"x": _randn(6, 3, seed=3)}, {"A": _randn(4, 3, seed=4)}),
    ("sum(x**2) * mean(sin(x))", {"x": _randn(5, 4, seed=5)}, {}),
    ("softmax(x) * x", {"x": _randn(5, 6, seed=6)}, {}),
    ("A @ B + x[0]*A", {"A": _randn(3, 2, 2, seed=7), "B": _randn(3, 2, 2, seed=8)}, {"x": _randn(2, seed=9)}),
    ("solve(A, x)", {"x": _randn(4, 3, seed=10)}, {"A": _randn(3, 3, seed=11) + 3 * torch.eye(3, dtype=torch.float64)}),
    ("logsumexp(x) + a*x[1]", {"x": _randn(8, 3, seed=12), "a": _randn(8, seed=13)}, {}),
]


def _point(batched: dict, shared: dict, i: int) -> dict:
    return {**{name: t[i] for name, t in batched.items()}, **shared}


@pytest.mark.parametrize("method", ["auto", "reverse", "forward"])
@pytest.mark.parametrize("expr,batched,shared", CASES, ids=[c[0] for c in CASES])
def test_jacobian_per_point_equals_a_loop(expr, batched, shared, method):
    got = jacli.jacobian(expr, {**batched, **shared}, batch_axis=0, batched=list(batched), method=method)
    points = next(iter(batched.values())).shape[0]
    assert set(got) == set(batched) | set(shared)
    for name in got:
        loop = torch.stack([jacli.jacobian(expr, _point(batched, shared, i), method=method)[name] for i in range(points)])
        _close(got[name], loop)


@pytest.mark.parametrize("expr,batched,shared", CASES[2:4] + CASES[6:], ids=lambda c: str(c)[:20])
def test_grad_per_point_equals_a_loop(expr, batched, shared):
    scalar = f"sum({expr})"
    got = jacli.grad(scalar, {**batched, **shared}, batch_axis=0, batched=list(batched))
    points = next(iter(batched.values())).shape[0]
    for name in got:
        _close(got[name], torch.stack([jacli.grad(scalar, _point(batched, shared, i))[name] for i in range(points)]))


def test_grad_by_hand():
    """d/dx sum(x**3) = 3x², per point (the reference worked by hand)."""
    x = _randn(10, 4)
    _close(jacli.grad("sum(x**3)", {"x": x}, batch_axis=0)["x"], 3 * x**2)


@pytest.mark.parametrize("per_point_v", [False, True])
def test_vjp_per_point_equals_a_loop(per_point_v):
    A, x = _randn(4, 3, seed=1), _randn(6, 3, seed=2)
    v = _randn(6, 4, seed=3) if per_point_v else _randn(4, seed=3)
    got = jacli.vjp("tanh(A @ x)", {"A": A, "x": x}, v, batch_axis=0, batched=["x"])
    for name in ("A", "x"):
        loop = torch.stack([jacli.vjp("tanh(A @ x)", {"A": A, "x": x[i]}, v[i] if per_point_v else v)[name]
                            for i in range(6)])
        _close(got[name], loop)


def test_vjp_with_ones_spec_takes_one_points_output_shape():
    x = _randn(5, 3)
    got = jacli.vjp("x**2", {"x": x}, "ones", batch_axis=0)["x"]
    _close(got, 2 * x)


def test_jvp_per_point_and_shared_directions():
    x = _randn(5, 3)
    shared = jacli.jvp("x**3", {"x": x}, {"x": [1.0, 0.0, 2.0]}, batch_axis=0)
    _close(shared, 3 * x**2 * torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64))
    u = _randn(5, 3, seed=4)
    per_point = jacli.jvp("x**3", {"x": x}, {"x": u}, batch_axis=0)
    _close(per_point, torch.stack([jacli.jvp("x**3", {"x": x[i]}, {"x": u[i]}) for i in range(5)]))


def test_a_later_axis_holds_the_points():
    """batch_axis 1: the points run along the second axis; results still lead with them."""
    x = _randn(3, 5)  # 5 points of 3 numbers, as columns
    got = jacli.jacobian("x**2 + sum(x)", {"x": x}, batch_axis=1)["x"]
    loop = torch.stack([jacli.jacobian("x**2 + sum(x)", {"x": x[:, i]})["x"] for i in range(5)])
    _close(got, loop)
    _close(jacli.jacobian("x**2 + sum(x)", {"x": x}, batch_axis=-1)["x"], loop)


def test_shapes_lead_with_the_points():
    got = jacli.jacobian("A @ x", {"A": _randn(2, 3), "x": _randn(7, 3)}, batch_axis=0, batched="x")
    assert got["x"].shape == (7, 2, 3) and got["A"].shape == (7, 2, 2, 3)
    matrix = jacli.jacobian("[r*cos(t), r*sin(t)]", {"r": _randn(4), "t": _randn(4, seed=1)}, batch_axis=0, matrix=True)
    assert matrix.shape == (4, 2, 2)


def test_a_tiny_budget_splits_the_points_and_gives_the_same_numbers():
    x = _randn(200, 20)
    whole = api.compute_jacobian("tanh(x) * sum(x)", {"x": x}, batch_axis=0)
    chunked = api.compute_jacobian("tanh(x) * sum(x)", {"x": x}, batch_axis=0, max_memory=2_000_000)
    assert "points at a time" not in whole.how
    assert "points at a time (the memory budget)" in chunked.how, chunked.how
    assert torch.equal(whole.values["x"], chunked.values["x"])
    _close(chunked.values["x"][17], jacli.jacobian("tanh(x) * sum(x)", {"x": x[17]})["x"])


def test_a_budget_too_small_for_the_results_is_refused():
    with pytest.raises(ResourceError, match="at 1,000 points"):
        api.compute_jacobian("x * sum(x)", {"x": _randn(1000, 30)}, batch_axis=0, max_memory=2_000_000)


def test_point_results_are_the_one_point_results():
    r, t = _randn(3), _randn(3, seed=1)
    result = api.compute_jacobian("[r*cos(t), r*sin(t)]", {"r": r, "t": t}, batch_axis=0)
    alone = api.compute_jacobian("[r*cos(t), r*sin(t)]", {"r": r[2], "t": t[2]}, layout="dense")
    point = result.point(2)
    assert point.as_matrix and alone.as_matrix
    _close(point.matrix().to_dense(), alone.matrix().to_dense())
    _close(point.output, alone.output)


# -- errors: one line, naming the value and the fix ------------------------------------------


def test_different_numbers_of_points_are_refused():
    with pytest.raises(ShapeError) as caught:
        jacli.jacobian("A @ x", {"A": _randn(2, 3), "x": _randn(7, 3)}, batch_axis=0)
    message = str(caught.value)
    assert "different numbers of points" in message and "A" in message and ": 7" in message
    assert "`batched`" in message


def test_an_axis_out_of_range_is_refused():
    with pytest.raises(ShapeError, match="no input has an axis 2"):
        jacli.jacobian("x**2", {"x": _randn(3, 2)}, batch_axis=2)
    with pytest.raises(ShapeError, match="has no axis 0"):
        jacli.jacobian("x*y", {"x": _randn(3), "y": 2.0}, batch_axis=0, batched=["y"])


def test_bad_batched_names_and_axis_types():
    with pytest.raises(InputError, match="did you mean x"):
        jacli.jacobian("x**2", {"x": _randn(3)}, batch_axis=0, batched=["X"])
    with pytest.raises(InputError, match="axis number"):
        jacli.jacobian("x**2", {"x": _randn(3)}, batch_axis="0")


def test_one_point_options_are_refused_with_the_fix():
    with pytest.raises(InputError, match="use auto, reverse or forward"):
        api.compute_jacobian("x**2", {"x": _randn(3, 2)}, batch_axis=0, method="compressed")
    with pytest.raises(ShapeError, match="`symbolic` works on one point"):
        api.compute_jacobian("x**2", {"x": _randn(3, 2)}, batch_axis=0, symbolic=True)
    with pytest.raises(InputError, match="`layout` dense"):
        api.compute_jacobian("x**2", {"x": _randn(3, 2)}, batch_axis=0, layout="sparse")


# -- the command line --------------------------------------------------------------------------


def run(*args: str):
    return cli_runner().invoke(app, list(args), env={"JACLI_DEBUG": None, "COLUMNS": "100"})


def test_cli_json_is_one_document_with_the_points_leading():
    result = run("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=1,2,3", "-i", "t=0.5", "--batch-axis", "0", "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["points"] == {"count": 3, "axis": 0, "inputs": ["r"]}
    assert document["result"]["t"]["shape"] == [3, 2]
    t = np.array(document["result"]["t"]["values"])
    r = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(t, np.stack([-r * np.sin(0.5), r * np.cos(0.5)], axis=1), rtol=1e-15)


def test_cli_plain_and_csv_read_back():
    args = ["grad", "sum(x**2)", "-i", "x=[[1,2],[3,4],[5,6]]", "--batch-axis", "0"]
    plain = run(*args, "-f", "plain")
    assert plain.exit_code == 0 and plain.stdout.splitlines()[0] == "# x 3x2"
    np.testing.assert_array_equal(np.loadtxt(plain.stdout.splitlines()), [[2, 4], [6, 8], [10, 12]])
    csv = run(*args, "-f", "csv")
    lines = csv.stdout.splitlines()
    assert lines[0] == "point,x[0],x[1]" and lines[1] == "0,2.0,4.0" and lines[3] == "2,10.0,12.0"


def test_cli_pretty_shows_the_first_points():
    result = run("jacobian", "x**2", "-i", "x=arange:10", "--batch-axis", "0", "-f", "pretty")
    assert result.exit_code == 0, result.stderr
    assert "10 points along axis 0 of x" in result.stdout
    assert "point 2" in result.stdout and "point 3" not in result.stdout
    assert "7 more points" in result.stdout


def test_cli_errors_are_one_line_with_flags():
    result = run("jacobian", "A @ x", "-i", "A=eye:2", "-i", "x=ones:3x2", "--batch-axis", "0")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: --batch-axis 0: the inputs hold different numbers of points")
    assert "--batched" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    alone = run("jacobian", "x", "-i", "1,2", "--batched", "x")
    assert alone.exit_code == 2 and alone.stdout == "" and "give --batch-axis too" in alone.stderr


def test_cli_file_output(tmp_path):
    target = tmp_path / "points.pt"
    result = run("vjp", "x**2", "-i", "x=[[1,2],[3,4]]", "--v", "ones", "--batch-axis", "0", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    saved = torch.load(target, weights_only=True)
    _close(saved["result"]["x"], torch.tensor([[2.0, 4.0], [6.0, 8.0]], dtype=torch.float64))
    assert saved["points"]["count"] == 2


@pytest.mark.filterwarnings("ignore::jacli.JacliWarning")
def test_the_one_point_json_of_each_point_is_the_commands():
    """point_documents (the fast writer of jacli batch) writes each point as to_json does."""
    from jacli.render_points import point_documents

    cases = [
        api.compute_jacobian("[r*cos(t), r*sin(t)]", {"r": _randn(4), "t": _randn(4, seed=1)}, batch_axis=0),
        api.compute_jacobian("A @ x", {"A": _randn(4, 2, 3), "x": _randn(4, 3)}, batch_axis=0),
        api.compute_vjp("x**2", {"x": _randn(4, 3)}, _randn(4, 3, seed=5), batch_axis=0),
        api.compute_vjp("x**2", {"x": _randn(4, 3)}, "ones", batch_axis=0),
        api.compute_grad("sum(x**2)", {"x": _randn(4, 2, 2)}, batch_axis=0),
        api.compute_jvp("x**2", {"x": _randn(4, 3)}, {"x": _randn(4, 3, seed=2)}, batch_axis=0),
        api.compute_jacobian("x**2", {"x": _randn(4, 2).float()}, batch_axis=0, dtype="float32"),
        api.compute_jacobian("log(x)", {"x": torch.tensor([[1.0, 0.0], [2.0, -1.0]], dtype=torch.float64)},
                             batch_axis=0),
    ]
    for result in cases:
        given = [{name: f"spec {i} of {name}" for name in result.inputs} for i in range(result.points)]
        for i, line in enumerate(point_documents(result, given)):
            assert line == render.to_json(result.point(i, given[i])).rstrip("\n")


def test_cli_matrix_is_each_points_classic_matrix():
    result = run("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=1,2", "-i", "t=0.5", "--batch-axis", "0", "--matrix",
                 "-f", "json")
    assert result.exit_code == 0, result.stderr
    matrix = json.loads(result.stdout)["matrix"]
    assert matrix["rows"] == ["y[0]", "y[1]"] and matrix["columns"] == ["r", "t"] and matrix["shape"] == [2, 2, 2]
    for i, r in enumerate((1.0, 2.0)):
        alone = jacli.jacobian("[r*cos(t), r*sin(t)]", {"r": r, "t": 0.5}, matrix=True)
        np.testing.assert_allclose(matrix["values"][i], alone.numpy(), rtol=1e-15)
    plain = run("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=1,2", "-i", "t=0.5", "--batch-axis", "0", "--matrix",
                "-f", "plain")
    assert plain.stdout.splitlines()[0] == "# matrix 2x2x2; rows y[0]..y[1]; columns r, t"
    np.testing.assert_allclose(np.loadtxt(plain.stdout.splitlines()).reshape(2, 2, 2), matrix["values"], rtol=1e-15)


def test_the_budget_holds_the_peak_memory_down():
    """Measured from outside (peak RSS of a child, above a 2-point run): the gradient of
    sum(sin(outer(x, x))) holds a 200 x 200 intermediate per point, about 650 MB for 500 points
    at once; under a 100 MB budget the points go in chunks and the peak stays within it."""
    from memory import MB, jacli as measured

    args = ["grad", "sum(sin(outer(x, x)))", "--batch-axis", "0", "-f", "plain", "-q"]
    floor = measured(*args, "-i", "x=randn:2x200").peak
    # an explicit budget: the default one follows the memory free at the time
    whole = measured(*args, "-i", "x=randn:500x200", "--max-memory", "20GB")
    chunked = measured(*args, "-i", "x=randn:500x200", "--max-memory", "100MB")
    assert whole.returncode == chunked.returncode == 0, chunked.stderr
    assert whole.stdout == chunked.stdout  # the same numbers, to the last digit
    assert whole.peak - floor > 300 * MB, (whole.peak - floor) / MB
    assert chunked.peak - floor < 100 * MB, (chunked.peak - floor) / MB


def _table_expressions() -> list[str]:
    """Each function of the table on a 3 x 3 matrix: f(x), f(x, x), or with the integer
    arguments 0 and 1 where it takes them (those one point accepts are kept in the test)."""
    from jacli.functions import FUNCTIONS

    found = []
    for name, entry in FUNCTIONS.items():
        low, high = entry.tensors
        if entry.ints:
            found += [f"{name}(x, 0)", f"{name}(x, 1)", f"{name}(x, 0, 1)", f"{name}(x, x, 0)"]
        elif low == 1:
            found.append(f"{name}(x)")
        elif low <= 2 <= (high or 2):
            found.append(f"{name}(x, x)")
    return found


@pytest.mark.filterwarnings("ignore::jacli.JacliWarning")
@pytest.mark.parametrize("method", ["reverse", "forward"])
def test_every_function_of_the_table_batched_equals_a_loop(method):
    """vmap over the points is a torch transform like any other: some ops' batching rules have
    been wrong (NOTE [forward mode over points]); every function is checked against a loop."""
    x = torch.rand(3, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x = x + 0.5 + 3 * torch.eye(3, dtype=torch.float64)  # invertible, positive: every function defined
    checked = 0
    for expr in _table_expressions():
        try:
            alone = [jacli.jacobian(expr, {"x": x[i]}, method=method)["x"] for i in range(3)]
        except jacli.JacliError:
            continue  # not a formula one point takes (an integer argument it does not have)
        got = jacli.jacobian(expr, {"x": x}, batch_axis=0, method=method)["x"]
        assert torch.allclose(got, torch.stack(alone), rtol=1e-10, atol=1e-12, equal_nan=True), expr
        checked += 1
    assert checked >= 40  # of the table's 64 functions, those that take one 3 x 3 matrix


@pytest.mark.parametrize("extra, named", [
    (["--explain"], "--explain"), (["--trace"], "--trace"), (["--show-code"], "--show-code"),
    (["--answer", "[[1, 0]]"], "--answer"),
])
def test_one_point_teaching_refuses_points_in_one_line(extra, named):
    run = cli_runner().invoke(app, ["jacobian", "x**2", "-i", "1,2,3", "--batch-axis", "0", *extra],
                              env={"JACLI_DEBUG": None})
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr.startswith(f"Error: {named} ") and "--batch-axis" in run.stderr and "Traceback" not in run.stderr


def test_repeat_refuses_points_in_one_line():
    run = cli_runner().invoke(app, ["vjp", "(x+1)**2", "-i", "eye:2", "--v", "ones", "--method", "backward",
                                    "--repeat", "2", "--batch-axis", "0"], env={"JACLI_DEBUG": None})
    assert run.exit_code == 2 and run.stdout == "" and run.stderr.startswith("Error: --repeat ")
