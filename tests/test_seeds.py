"""The tutorials' "must reproduce" examples, through the CLI with --format json, against numbers
worked out by hand (each derivation is written next to its test). Every example runs with every
method that applies: jacobian with reverse, forward, rows (and auto); vjp with grad and backward
(and auto).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import cli_runner

from jacli.cli import app

# torch's first forward-mode pass loads decompositions through torch.jit.script, which warns
# DeprecationWarning (hidden by Python outside pytest).
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

JACOBIAN_METHODS = ["reverse", "forward", "rows", "auto"]
VJP_METHODS = ["grad", "backward", "auto"]


def run_json(command: str, expression: str, *args: str, method: str) -> dict:
    result = cli_runner().invoke(
        app, [command, expression, *args, "--method", method, "--format", "json"], env={"JACLI_DEBUG": None}
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""

    def refuse(name: str):
        raise AssertionError(f"non-standard JSON constant {name}")

    document = json.loads(result.stdout, parse_constant=refuse)
    assert document["command"] == command
    assert document["expression"] == expression
    if method != "auto":
        assert document["method"] == method
    return document


def block(document: dict, name: str) -> tuple[tuple[int, ...], np.ndarray]:
    entry = document["result"][name]
    return tuple(entry["shape"]), np.array(entry["values"], dtype=float)


# -- (x+1)**2 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_square_plus_one_at_eye_2(method: str) -> None:
    # y[i,j] = (x[i,j] + 1)**2, so dy[i,j]/dx[k,l] = 2 (x[i,j] + 1) when (i,j) == (k,l), else 0.
    # At eye:2 that is 4 on the diagonal entries (x = 1) and 2 off it (x = 0).
    document = run_json("jacobian", "(x+1)**2", "-i", "eye:2", method=method)
    shape, values = block(document, "x")
    assert shape == (2, 2, 2, 2)
    assert np.array_equal(values, [[[[4, 0], [0, 0]], [[0, 2], [0, 0]]], [[[0, 0], [2, 0]], [[0, 0], [0, 4]]]])
    assert document["output"]["values"] == [[4.0, 1.0], [1.0, 4.0]]


@pytest.mark.parametrize("method", VJP_METHODS)
def test_square_plus_one_at_eye_5_with_ones(method: str) -> None:
    # vᵀJ with v = ones is 2 (x + 1): 4 on the diagonal, 2 elsewhere.
    document = run_json("vjp", "(x+1)**2", "-i", "eye:5", "--v", "ones", method=method)
    shape, values = block(document, "x")
    assert shape == (5, 5)
    assert np.array_equal(values, np.full((5, 5), 2.0) + 2 * np.eye(5))


# -- x**2 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_square_at_2_3(method: str) -> None:
    # d(x**2)/dx = diag(2x) = diag(4, 6)
    shape, values = block(run_json("jacobian", "x**2", "-i", "2,3", method=method), "x")
    assert shape == (2, 2)
    assert np.array_equal(values, [[4, 0], [0, 6]])


# -- 2*x ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", VJP_METHODS)
def test_twice_x_with_weights(method: str) -> None:
    # J = 2 I, so vᵀJ = 2v; doubling a float is exact, so the numbers are exactly 2v.
    document = run_json("vjp", "2*x", "-i", "1,2,3,4", "--v", "1,0.1,0.01,0.001", method=method)
    shape, values = block(document, "x")
    assert shape == (4,)
    assert values.tolist() == [2, 0.2, 0.02, 0.002]


@pytest.mark.parametrize("method", VJP_METHODS)
def test_twice_x_with_one_hot(method: str) -> None:
    # v is 1 at [0, 1] only, so vᵀJ = 2 there and 0 elsewhere.
    document = run_json("vjp", "2*x", "-i", "[[1,2,3,4]]", "--v", "onehot:0,1", method=method)
    shape, values = block(document, "x")
    assert shape == (1, 4)
    assert values.tolist() == [[0, 2, 0, 0]]


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_twice_x_jacobian(method: str) -> None:
    shape, values = block(run_json("jacobian", "2*x", "-i", "1,2,3,4", method=method), "x")
    assert shape == (4, 4)
    assert np.array_equal(values, 2 * np.eye(4))


# -- 3*a + 2*b**2 + log(c) ----------------------------------------------------------------------


@pytest.mark.parametrize("method", VJP_METHODS)
def test_three_inputs_vjp(method: str) -> None:
    # Elementwise: dy/da = 3, dy/db = 4b, dy/dc = 1/c; vᵀJ multiplies each by v.
    document = run_json(
        "vjp", "3*a + 2*b**2 + log(c)", "-i", "a=1,2,3", "-i", "b=3,4,5", "-i", "c=6,7,8",
        "--v", "0.1,1,0.0001", method=method,
    )
    expected = {"a": [0.3, 3, 0.0003], "b": [1.2, 16, 0.002], "c": [0.1 / 6, 1 / 7, 0.0001 / 8]}
    assert list(document["result"]) == ["a", "b", "c"]
    for name, numbers in expected.items():
        shape, values = block(document, name)
        assert shape == (3,)
        np.testing.assert_allclose(values, numbers, rtol=1e-15, atol=0)


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_three_inputs_jacobian(method: str) -> None:
    document = run_json(
        "jacobian", "3*a + 2*b**2 + log(c)", "-i", "a=1,2,3", "-i", "b=3,4,5", "-i", "c=6,7,8", method=method,
    )
    expected = {"a": np.diag([3.0, 3, 3]), "b": np.diag([12.0, 16, 20]), "c": np.diag([1 / 6, 1 / 7, 1 / 8])}
    for name, numbers in expected.items():
        shape, values = block(document, name)
        assert shape == (3, 3)
        np.testing.assert_allclose(values, numbers, rtol=1e-15, atol=0)


# -- relu ---------------------------------------------------------------------------------------


def _arange() -> np.ndarray:
    """The tutorial's input, torch.arange(-8.0, 8.0, 0.1) in float64: 160 points.

    Not exactly -8 + 0.1 i: torch's arange gives 4.44e-16 (not 0) at i = 80, so the tutorial's own
    x.grad is 1 there. The expectation is stated on the input itself: relu' is 1 where x > 0.
    """
    return torch.arange(-8.0, 8.0, 0.1, dtype=torch.float64).numpy()


def _relu_expected() -> np.ndarray:
    x = _arange()
    assert x.shape == (160,)
    return (x > 0).astype(float)


@pytest.mark.parametrize("method", VJP_METHODS)
def test_relu_with_ones(method: str) -> None:
    document = run_json("vjp", "relu(x)", "-i", "arange:-8,8,0.1", "--v", "ones", method=method)
    shape, values = block(document, "x")
    assert shape == (160,)
    assert np.array_equal(values, _relu_expected())
    assert values.sum() == 80  # x[80:] > 0: 4.4e-16, 0.1, ..., 7.9
    # the output confirms the input: relu(x) = max(x, 0)
    assert np.array_equal(np.array(document["output"]["values"]), np.maximum(_arange(), 0))


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_relu_jacobian_is_the_diagonal(method: str) -> None:
    shape, values = block(run_json("jacobian", "relu(x)", "-i", "arange:-8,8,0.1", method=method), "x")
    assert shape == (160, 160)
    assert np.array_equal(values, np.diag(_relu_expected()))


# -- a @ b --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_matmul(method: str) -> None:
    # y[0,0] = sum_k a[0,k] b[k,0]: dy/da[0,k] = b[k,0] = (1, 2, 3); dy/db[k,0] = a[0,k] = (1, 2, 3)
    document = run_json("jacobian", "a @ b", "-i", "a=[[1,2,3]]", "-i", "b=[[1],[2],[3]]", method=method)
    assert document["output"] == {"shape": [1, 1], "values": [[14.0]]}
    shape, values = block(document, "a")
    assert shape == (1, 1, 1, 3)
    assert values.tolist() == [[[[1, 2, 3]]]]
    shape, values = block(document, "b")
    assert shape == (1, 1, 3, 1)
    assert values.tolist() == [[[[1], [2], [3]]]]


# -- mean((x+1)**2) -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", VJP_METHODS)
def test_mean_square_vjp(method: str) -> None:
    # d/dx mean((x+1)**2) = 2 (x + 1) / 4 = 1 at x = 1
    shape, values = block(run_json("vjp", "mean((x+1)**2)", "-i", "ones:2x2", "--v", "1", method=method), "x")
    assert shape == (2, 2)
    assert values.tolist() == [[1, 1], [1, 1]]


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_mean_square_jacobian(method: str) -> None:
    document = run_json("jacobian", "mean((x+1)**2)", "-i", "ones:2x2", method=method)
    assert document["output"] == {"shape": [], "values": 4.0}
    shape, values = block(document, "x")
    assert shape == (2, 2)
    assert values.tolist() == [[1, 1], [1, 1]]


# -- polar coordinates --------------------------------------------------------------------------


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_polar(method: str) -> None:
    # y = [r cos t, r sin t]: J = [[cos t, -r sin t], [sin t, r cos t]], columns r and t
    r, t = 2.0, 0.5
    document = run_json("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", method=method)
    if method == "auto":
        assert document["method"] == "rows"  # 2 outputs: a small problem, one backward pass per row
    shape_r, column_r = block(document, "r")
    shape_t, column_t = block(document, "t")
    assert shape_r == shape_t == (2,)
    jacobian = np.stack([column_r, column_t], axis=1)
    expected = [[math.cos(t), -r * math.sin(t)], [math.sin(t), r * math.cos(t)]]
    np.testing.assert_allclose(jacobian, expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("method", VJP_METHODS)
def test_polar_vjp_rows(method: str) -> None:
    # onehot:k picks row k of the same hand-derived J
    r, t = 2.0, 0.5
    rows = [[math.cos(t), -r * math.sin(t)], [math.sin(t), r * math.cos(t)]]
    for k in range(2):
        document = run_json("vjp", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--v", f"onehot:{k}", method=method)
        got = [block(document, "r")[1].item(), block(document, "t")[1].item()]
        np.testing.assert_allclose(got, rows[k], rtol=1e-15, atol=0)
