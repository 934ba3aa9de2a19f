"""jacli.render: JSON, plain text and the rich view, on Results built here by hand.

The values come from the test, never from jacli's computation, so every expected number below is
known independently of the code under test.
"""

from __future__ import annotations

import importlib.util as importlib_util
from pathlib import Path
import io
import json
import math
import re
import subprocess

import numpy as np
import pytest
import torch
from rich.cells import cell_len
from rich.console import Console

from jacli import render
from types import SimpleNamespace

from jacli.api import compute_jacobian
from jacli.problem import Problem
from jacli.result import (
    Block, DiagonalBlock, GradResult, HessianResult, JacobianBlock, JacobianResult, Result, SparseBlock, VJPResult,
)

F64 = torch.float64
TOP_LEVEL_KEYS = {"command", "expression", "method", "device", "dtype", "seed", "inputs", "output", "result"}


def make_result(
    values: dict,
    inputs: dict[str, torch.Tensor],
    output: torch.Tensor,
    *,
    command: str = "jacobian",
    expression: str = "f(x)",
    method: str = "reverse",
    v: torch.Tensor | None = None,
) -> Result:
    """A typed result of ``command`` holding ``values`` (Hessian keys may be written "a,b"; a
    Jacobian value may be a block of any layout, else it is a dense tensor)."""
    wrt = tuple(dict.fromkeys(k for key in values for k in (key.split(",") if command == "hessian" else [key])))
    compiled = SimpleNamespace(text=expression, variables=tuple(inputs), tree=None)
    problem = Problem(compiled, inputs, wrt, torch.device("cpu"), output.dtype, budget=10**9)
    if command == "jacobian":
        return JacobianResult(problem, method, output, blocks={n: t if isinstance(t, Block) else JacobianBlock(n, t) for n, t in values.items()})
    if command == "hessian":
        return HessianResult(problem, method, output, blocks={tuple(k.split(",")): t for k, t in values.items()})
    if command == "vjp":
        return VJPResult(problem, method, output, grads=values, v=v)
    if command == "grad":
        return GradResult(problem, method, output, grads=values)
    raise AssertionError(command)


def vjp_result(value: torch.Tensor, expression: str = "f(x)") -> Result:
    """A vjp Result whose x.grad is ``value`` (input shaped like it, a vector output)."""
    output = torch.zeros(3, dtype=value.dtype)
    return make_result({"x": value}, {"x": torch.zeros_like(value)}, output, command="vjp",
                       method="grad", expression=expression, v=torch.ones(3, dtype=value.dtype))


def strict_loads(text: str, **kwargs):
    def refuse(name: str):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse, **kwargs)


# -- JSON ---------------------------------------------------------------------------------------


def test_json_document_shape_and_values() -> None:
    # The polar Jacobian at r=2, t=0, by hand: d/dr = [1, 0], d/dt = [0, 2].
    result = make_result(
        {"r": torch.tensor([1.0, 0.0], dtype=F64), "t": torch.tensor([0.0, 2.0], dtype=F64)},
        {"r": torch.tensor(2.0, dtype=F64), "t": torch.tensor(0.0, dtype=F64)},
        torch.tensor([2.0, 0.0], dtype=F64),
        expression="[r*cos(t), r*sin(t)]",
    )
    text = render.to_json(result)
    assert text.endswith("\n") and text.count("\n") == 1
    document = strict_loads(text)
    assert set(document) == TOP_LEVEL_KEYS
    assert document["command"] == "jacobian"
    assert document["expression"] == "[r*cos(t), r*sin(t)]"
    assert document["method"] == "reverse"
    assert document["device"] == "cpu"
    assert document["dtype"] == "float64"
    # each input's values in full, and its spec where the problem knows it (none here)
    assert document["inputs"] == {"r": {"shape": [], "spec": None, "values": 2.0},
                                  "t": {"shape": [], "spec": None, "values": 0.0}}
    assert document["seed"] == 0
    assert document["output"] == {"shape": [2], "values": [2.0, 0.0]}
    assert document["result"] == {
        "r": {"shape": [2], "values": [1.0, 0.0]},
        "t": {"shape": [2], "values": [0.0, 2.0]},
    }


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 1, 2), (2, 2, 1, 2)])
def test_json_values_are_nested_lists(shape) -> None:
    values = torch.arange(1.0, 1.0 + math.prod(shape), dtype=F64).reshape(shape)
    document = strict_loads(render.to_json(vjp_result(values)))
    entry = document["result"]["x"]
    assert entry["shape"] == list(shape)
    assert np.array_equal(np.array(entry["values"], dtype=float), values.numpy())
    depth, item = 0, entry["values"]
    while isinstance(item, list):
        depth, item = depth + 1, item[0]
    assert depth == len(shape)


def test_json_nan_and_infinities_are_strings() -> None:
    values = torch.tensor([[float("nan"), float("inf")], [float("-inf"), 1.5]], dtype=F64)
    text = render.to_json(vjp_result(values))
    assert "NaN" not in text and "Infinity" not in text
    document = strict_loads(text)
    assert document["result"]["x"]["values"] == [["nan", "inf"], ["-inf", 1.5]]


def test_json_float64_round_trips_exactly() -> None:
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(50, dtype=F64, generator=generator) * torch.logspace(-300, 300, 50, dtype=F64)
    specials = torch.tensor([0.1, 1 / 3, 5e-324, 1.7976931348623157e308, -2.5e-310, 2.0**53 + 2], dtype=F64)
    values = torch.cat([values, specials])
    document = strict_loads(render.to_json(vjp_result(values)))
    written = document["result"]["x"]["values"]
    assert all(isinstance(w, float) for w in written)
    assert written == values.tolist()


def _significant_digits(token: str) -> int:
    mantissa = token.lower().lstrip("-").split("e")[0].replace(".", "")
    return len(mantissa.strip("0")) or 1


def _fewest_digits_float32(value: np.float32) -> int:
    """The fewest significant digits k for which rounding to k digits reads back as ``value``."""
    for k in range(1, 10):
        if np.float32(float(f"{float(value):.{k - 1}e}")) == value:
            return k
    raise AssertionError("float32 always round-trips with 9 digits")


@pytest.mark.parametrize(
    "value,token",
    [(0.1, "0.1"), (1 / 3, "0.33333334"), (16777217.0, "16777216.0"), (3.4028235e38, "3.4028235e+38"),
     (1e-45, "1e-45"), (123456.789, "123456.79"), (-2.5, "-2.5")],
)
def test_json_float32_shortest_by_hand(value: float, token: str) -> None:
    text = render.to_json(vjp_result(torch.tensor([value], dtype=torch.float32)))
    raw = strict_loads(text, parse_float=str, parse_int=str)
    assert raw["result"]["x"]["values"] == [token]


def test_json_float32_shortest_digits_random() -> None:
    generator = torch.Generator().manual_seed(1)
    values = (torch.randn(200, generator=generator, dtype=F64) * torch.logspace(-30, 30, 200, dtype=F64)).float()
    text = render.to_json(vjp_result(values))
    assert strict_loads(text)["dtype"] == "float32"
    tokens = strict_loads(text, parse_float=str, parse_int=str)["result"]["x"]["values"]
    for token, value in zip(tokens, values.numpy()):
        assert np.float32(float(token)) == value, token  # reads back to the same float32
        assert _significant_digits(token) <= _fewest_digits_float32(value), (token, value)


# -- plain --------------------------------------------------------------------------------------


def plain_sections(text: str) -> dict[str, tuple[str, str]]:
    """``# name shape`` header → (shape text, the lines below it)."""
    sections: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        match = re.fullmatch(r"# (\S+) (scalar|\d+(?:x\d+)*)", line)
        if match:
            current = match.group(1)
            sections[current] = (match.group(2), [])
        elif not line.startswith("#"):
            assert current is not None, f"numbers before any header: {line!r}"
            sections[current][1].append(line)
    return {name: (shape, "\n".join(lines)) for name, (shape, lines) in sections.items()}


def shape_from_text(shape: str) -> tuple[int, ...]:
    return () if shape == "scalar" else tuple(int(n) for n in shape.split("x"))


@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 3, 4), (2, 1, 3, 2)])
def test_plain_vjp_reads_back_with_loadtxt(shape) -> None:
    generator = torch.Generator().manual_seed(2)
    values = torch.randn(shape, dtype=F64, generator=generator) * 1e3
    text = render.to_plain(vjp_result(values))
    sections = plain_sections(text)
    assert list(sections) == ["x"]
    shape_text, body = sections["x"]
    assert shape_from_text(shape_text) == shape
    table = np.loadtxt(io.StringIO(body), ndmin=2)
    # Rows along the last axis: each line holds shape[-1] numbers (all of a 0-D or 1-D tensor).
    assert table.shape[1] == (shape[-1] if shape else 1)
    assert np.array_equal(table.reshape(shape), values.numpy())  # every digit: exact


@pytest.mark.parametrize(
    "output_shape,input_shape", [((), ()), ((3,), ()), ((2,), (3,)), ((2, 2), (2, 2)), ((2,), (3, 2))]
)
def test_plain_jacobian_blocks_read_back(output_shape, input_shape) -> None:
    shape = output_shape + input_shape
    values = torch.arange(math.prod(shape), dtype=F64).reshape(shape) / 7
    result = make_result(
        {"x": values, "y": -values}, {"x": torch.zeros(input_shape, dtype=F64), "y": torch.zeros(input_shape, dtype=F64)},
        torch.zeros(output_shape, dtype=F64),
    )
    sections = plain_sections(render.to_plain(result))
    assert list(sections) == ["x", "y"]
    for name, expected in (("x", values), ("y", -values)):
        shape_text, body = sections[name]
        assert shape_from_text(shape_text) == shape
        table = np.loadtxt(io.StringIO(body), ndmin=2)
        assert np.array_equal(table.reshape(shape), expected.numpy())
        # The same rule as every other result: rows along the last axis.
        assert len(body.splitlines()) == (math.prod(shape[:-1]) if shape else 1)
        assert table.shape[1] == (shape[-1] if shape else 1)


def test_plain_jacobian_layout_by_hand() -> None:
    # sum(x) at a 2x2 x: J = ones of shape () + (2, 2), written as the 2x2 its header says
    ones = torch.ones(2, 2, dtype=F64)
    result = make_result({"x": ones}, {"x": torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64)},
                         torch.tensor(10.0, dtype=F64), expression="sum(x)")
    assert render.to_plain(result) == "# x 2x2\n1.0 1.0\n1.0 1.0\n"
    # polar at r=2, t=0: each block has shape (2,) + () and is one line, like any vector
    result = make_result(
        {"r": torch.tensor([1.0, 0.0], dtype=F64), "t": torch.tensor([0.0, 2.0], dtype=F64)},
        {"r": torch.tensor(2.0, dtype=F64), "t": torch.tensor(0.0, dtype=F64)}, torch.tensor([2.0, 0.0], dtype=F64),
    )
    assert render.to_plain(result) == "# r 2\n1.0 0.0\n# t 2\n0.0 2.0\n"
    # [sum(x), prod(x)] at [[1,2],[3,4]]: shape (2,) + (2, 2), four lines of two; the classic
    # 2x4 matrix is a reshape away: rows d sum = 1 1 1 1 and d prod = 24/x = 24 12 8 6
    block = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[24.0, 12.0], [8.0, 6.0]]], dtype=F64)
    result = make_result({"x": block}, {"x": torch.zeros(2, 2, dtype=F64)}, torch.tensor([10.0, 24.0], dtype=F64))
    text = render.to_plain(result)
    assert text == "# x 2x2x2\n1.0 1.0\n1.0 1.0\n24.0 12.0\n8.0 6.0\n"
    body = text.split("\n", 1)[1]
    assert np.loadtxt(io.StringIO(body)).reshape(2, -1).tolist() == [[1, 1, 1, 1], [24, 12, 8, 6]]


@pytest.mark.parametrize("command", ["jacobian", "grad", "vjp"])
def test_plain_layout_is_the_same_for_every_command(command: str) -> None:
    # The gradient of sum(x**2) at a 2x3 x is 2x: grad, vjp with v = 1 and the Jacobian of the
    # one-number output all have shape (2, 3) and are written alike, as two lines of three.
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=F64)
    result = make_result({"x": 2 * x}, {"x": x}, torch.tensor(91.0, dtype=F64), command=command)
    assert render.to_plain(result) == "# x 2x3\n2.0 4.0 6.0\n8.0 10.0 12.0\n"


def test_plain_hessian_blocks_by_hand() -> None:
    # x[0]**2*y at x = (1, 2), y = 3: the x,y block has shape (2,) + () = [2*x[0], 0] = [2, 0],
    # one line like any vector; the y,y block is 0
    inputs = {"x": torch.tensor([1.0, 2.0], dtype=F64), "y": torch.tensor(3.0, dtype=F64)}
    values = {"x,x": torch.tensor([[6.0, 0.0], [0.0, 0.0]], dtype=F64), "x,y": torch.tensor([2.0, 0.0], dtype=F64),
              "y,x": torch.tensor([2.0, 0.0], dtype=F64), "y,y": torch.tensor(0.0, dtype=F64)}
    result = make_result(values, inputs, torch.tensor(3.0, dtype=F64), command="hessian")
    assert render.to_plain(result) == (
        "# x,x 2x2\n6.0 0.0\n0.0 0.0\n# x,y 2\n2.0 0.0\n# y,x 2\n2.0 0.0\n# y,y scalar\n0.0\n"
    )


def test_plain_shape_lines_by_hand() -> None:
    text = render.to_plain(vjp_result(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=F64)))
    assert text == "# x 2x3\n1.0 2.0 3.0\n4.0 5.0 6.0\n"
    text = render.to_plain(vjp_result(torch.tensor(0.5, dtype=F64)))
    assert text == "# x scalar\n0.5\n"


def test_plain_nan_and_inf_read_back() -> None:
    values = torch.tensor([float("nan"), float("inf"), float("-inf"), -0.25], dtype=F64)
    _, body = plain_sections(render.to_plain(vjp_result(values)))["x"]
    assert body.split() == ["nan", "inf", "-inf", "-0.25"]
    np.testing.assert_array_equal(np.loadtxt(io.StringIO(body)), values.numpy())


def test_plain_float32_shortest_round_trip() -> None:
    values = torch.tensor([0.1, 1 / 3, 123456.789, -7.25e-12], dtype=torch.float32)
    _, body = plain_sections(render.to_plain(vjp_result(values)))["x"]
    assert body.split() == ["0.1", "0.33333334", "123456.79", "-7.25e-12"]
    assert np.array_equal(np.loadtxt(io.StringIO(body), dtype=np.float32), values.numpy())


def test_plain_precision() -> None:
    values = torch.tensor([math.pi, 2 / 3, 12345.678, -0.0, 1e-7, 0.0, -1 / 3], dtype=F64)
    text = render.to_plain(vjp_result(values), precision=3)
    assert text == "# x 7\n3.14 0.667 1.23e+04 0 1e-07 0 -0.333\n"
    text = render.to_plain(vjp_result(values), precision=1)
    assert text.splitlines()[1].split() == ["3", "0.7", "1e+04", "0", "1e-07", "0", "-0.3"]


def test_plain_default_prints_every_digit() -> None:
    # 3 * 0.1 in binary floating point, the README's example
    text = render.to_plain(vjp_result(torch.tensor([3 * 0.1], dtype=F64)))
    assert text.splitlines()[1] == "0.30000000000000004"


# -- pretty -------------------------------------------------------------------------------------


def pretty(result: Result, precision: int | None = None, full: bool = False) -> str:
    console = Console(record=True, width=120, file=io.StringIO())
    render.print_pretty(result, console, precision, full)
    return console.export_text()


def distinct_values(shape) -> torch.Tensor:
    """Values whose printed forms are all 4 digits, so no one is a substring of another."""
    return (1000 + torch.arange(math.prod(shape), dtype=F64)).reshape(shape)


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 2, 3), (2, 2, 2, 2)])
def test_pretty_vjp_shows_every_value(shape) -> None:
    values = distinct_values(shape)
    text = pretty(vjp_result(values))
    for value in values.reshape(-1).tolist():
        assert str(int(value)) in text
    assert "x.grad" in text


@pytest.mark.parametrize(
    "output_shape,input_shape", [((), (3,)), ((2,), (3,)), ((2,), (2, 2)), ((2, 2), (2, 2))]
)
def test_pretty_jacobian_blocks(output_shape, input_shape) -> None:
    shape = output_shape + input_shape
    values = distinct_values(shape)
    result = make_result({"x": values}, {"x": torch.zeros(input_shape, dtype=F64)}, torch.zeros(output_shape, dtype=F64))
    text = pretty(result)
    for value in values.reshape(-1).tolist():
        assert str(int(value)) in text
    assert f"shape {shape}" in text  # a tuple's repr is how the title writes shapes
    if len(shape) == 4:
        for label in ("J[0, 0, :, :]", "J[0, 1, :, :]", "J[1, 0, :, :]", "J[1, 1, :, :]"):
            assert label in text


def test_pretty_zero_dimensional_jacobian() -> None:
    # d(x**2)/dx at x=3 is 6: a 1x1 classic matrix
    result = make_result({"x": torch.tensor(6.0, dtype=F64)}, {"x": torch.tensor(3.0, dtype=F64)},
                         torch.tensor(9.0, dtype=F64), expression="x**2")
    text = pretty(result)
    rows = [line for line in text.splitlines() if re.search(r"\by\b", line) and "6" in line]
    assert rows, text
    assert "∂/∂x" in text


def test_pretty_classic_matrix_for_scalar_inputs() -> None:
    r, t = 2.0, 0.5
    jacobian = {"r": [math.cos(t), math.sin(t)], "t": [-r * math.sin(t), r * math.cos(t)]}
    result = make_result(
        {name: torch.tensor(column, dtype=F64) for name, column in jacobian.items()},
        {"r": torch.tensor(r, dtype=F64), "t": torch.tensor(t, dtype=F64)},
        torch.tensor([r * math.cos(t), r * math.sin(t)], dtype=F64),
        expression="[r*cos(t), r*sin(t)]",
    )
    text = pretty(result)
    lines = text.splitlines()
    header = next(line for line in lines if "∂/∂r" in line)
    assert header.index("∂/∂r") < header.index("∂/∂t")
    for i in range(2):
        row = next(line for line in lines if f"y[{i}]" in line)
        cells = [c.strip() for c in re.split(r"[│┃|]", row) if c.strip()]
        assert cells == [f"y[{i}]", f"{jacobian['r'][i]:.6g}", f"{jacobian['t'][i]:.6g}"]
    # by hand: cos .5 = 0.877583, -2 sin .5 = -0.958851, sin .5 = 0.479426, 2 cos .5 = 1.75517
    for number in ("0.877583", "-0.958851", "0.479426", "1.75517"):
        assert number in text


def test_pretty_classic_matrix_from_a_real_computation() -> None:
    result = compute_jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5})
    text = pretty(result, precision=4)
    assert "∂/∂r" in text and "∂/∂t" in text
    # 4 digits, by hand: 0.8776, -0.9589, 0.4794, 1.755
    for number in ("0.8776", "-0.9589", "0.4794", "1.755"):
        assert number in text


@pytest.mark.parametrize("expression", ["[x, y]", "[red]", "[bold]x[/bold]", "[link=file:///etc]x"])
def test_pretty_escapes_markup_in_user_text(expression: str) -> None:
    result = make_result(
        {"x": torch.eye(2, dtype=F64)}, {"x": torch.zeros(2, dtype=F64), "y": torch.zeros(2, dtype=F64)},
        torch.zeros(2, dtype=F64), expression=expression,
    )
    text = pretty(result)
    assert expression in text


def test_pretty_escapes_markup_in_names() -> None:
    result = make_result(
        {"red": torch.tensor([1.0, 2.0], dtype=F64), "b": torch.tensor([3.0, 4.0], dtype=F64)},
        {"red": torch.tensor(0.0, dtype=F64), "b": torch.tensor(0.0, dtype=F64)},
        torch.zeros(2, dtype=F64), expression="[red, b]",
    )
    text = pretty(result)
    assert "[red, b]" in text and "∂/∂red" in text


def test_pretty_precision() -> None:
    text = pretty(vjp_result(torch.tensor([math.pi, -1 / 3, 2 / 3], dtype=F64)), precision=3)
    for number in ("3.14", "-0.333", "0.667"):
        assert number in text
    assert "3.142" not in text


def test_pretty_nan_and_inf() -> None:
    text = pretty(vjp_result(torch.tensor([float("nan"), float("inf"), float("-inf")], dtype=F64)))
    for word in ("nan", "inf", "-inf"):
        assert re.search(rf"(?<![\w-]){re.escape(word)}\b", text)


def test_pretty_large_matrix_is_summarized_and_full_shows_all() -> None:
    rows, columns = 30, 14
    values = torch.zeros(rows, columns, dtype=F64)
    values[:, 0] = 7
    result = make_result({"x": values}, {"x": torch.zeros(columns, dtype=F64)}, torch.zeros(rows, dtype=F64))
    summary = pretty(result)
    assert "⋮" in summary and "…" in summary
    labels = {int(m) for m in re.findall(r"^\s*(\d+) [│|]", summary, flags=re.MULTILINE)}
    assert labels == set(range(8)) | set(range(rows - 8, rows))
    everything = pretty(result, full=True)
    body = everything.split("\n\n", 1)[1]  # the header summarizes y even with full: it is not the result
    assert "⋮" not in body and "…" not in body
    labels = {int(m) for m in re.findall(r"^\s*(\d+) [│|]", everything, flags=re.MULTILINE)}
    assert labels == set(range(rows))
    assert everything.count("7") >= rows


def test_pretty_long_vector_is_summarized_and_full_shows_all() -> None:
    values = distinct_values((100,))
    summary = pretty(vjp_result(values))
    assert "⋮" in summary
    assert "1000" in summary and "1099" in summary and "1050" not in summary
    everything = pretty(vjp_result(values), full=True)
    assert "⋮" not in everything.split("\n\n", 1)[1]
    for value in values.tolist():
        assert str(int(value)) in everything


def test_pretty_many_blocks_are_summarized_and_full_shows_all() -> None:
    values = distinct_values((10, 2, 2))  # a 3-D result: 10 blocks of 2x2
    summary = pretty(vjp_result(values))
    assert "… 2 more blocks" in summary
    assert "x.grad[3, :, :]" in summary and "x.grad[4, :, :]" not in summary
    everything = pretty(vjp_result(values), full=True)
    assert "more blocks" not in everything
    for i in range(10):
        assert f"x.grad[{i}, :, :]" in everything
    for value in values.reshape(-1).tolist():
        assert str(int(value)) in everything


def test_pretty_header_names_the_method_and_inputs() -> None:
    result = make_result({"x": torch.eye(2, dtype=F64)}, {"x": torch.zeros(2, dtype=F64), "y": torch.zeros(2, dtype=F64)},
                         torch.zeros(2, dtype=F64), method="rows")
    text = pretty(result)
    assert "one torch.autograd.grad per output element" in text
    assert "y: shape (2,) = [0, 0]  (held constant)" in text
    assert "cpu, float64" in text


def pretty_at(result: Result, width: int, full: bool = False, precision: int | None = None) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    render.print_pretty(result, console, precision, full)
    return console.export_text()


def matrix_cells(text: str) -> dict[tuple[int, int], str]:
    """(row, column) → the text in that cell, from every borderless matrix table in ``text``:
    a header line ``  ┃ 0 ┃ 1`` names the columns of the rows ``i │ a │ b`` below it."""
    cells: dict[tuple[int, int], str] = {}
    columns: list[str] | None = None
    for line in text.splitlines():
        if "┃" in line:
            columns = [c.strip() for c in line.split("┃")[1:]]
        elif "│" in line and columns is not None:
            label, *values = (c.strip() for c in line.split("│"))
            assert len(values) == len(columns), line
            for column, value in zip(columns, values):
                if label.isdigit() and column.isdigit():
                    assert (int(label), int(column)) not in cells, "a cell shown twice"
                    cells[(int(label), int(column))] = value
    return cells


def wide_values(rows: int, columns: int) -> torch.Tensor:
    """Numbers of 6 to 9 characters at 6 significant digits, every one different."""
    generator = torch.Generator().manual_seed(5)
    return torch.randn(rows, columns, dtype=F64, generator=generator) * 1000


@pytest.mark.parametrize("width", [100, 80, 40, 24])
def test_pretty_full_wide_matrix_keeps_every_digit(width: int) -> None:
    values = wide_values(3, 50)
    text = pretty_at(vjp_result(values), width, full=True)
    expected = {(i, j): f"{values[i, j].item():.6g}" for i in range(3) for j in range(50)}
    assert matrix_cells(text) == expected  # each number whole, under its own row and column
    assert max(cell_len(line) for line in text.splitlines()) <= width
    captions = [(int(a), int(b or a)) for a, b in
                re.findall(r"^columns (\d+)(?:–(\d+))? of 50$", text, flags=re.MULTILINE)]
    assert len(captions) >= 2 and captions[0][0] == 0 and captions[-1][1] == 49
    for (_, end), (start, _) in zip(captions, captions[1:]):
        assert start == end + 1  # blocks are consecutive, none skipped or repeated


@pytest.mark.parametrize("width", [120, 80, 40, 24])
def test_pretty_summary_never_squeezes_numbers(width: int) -> None:
    values = wide_values(20, 50)
    text = pretty_at(vjp_result(values), width)
    cells = matrix_cells(text)
    for (i, j), shown in cells.items():
        assert shown == f"{values[i, j].item():.6g}"
    assert {i for i, _ in cells} == set(range(8)) | set(range(12, 20))  # ROW_EDGE rows at each end
    assert (0, 0) in cells and (19, 49) in cells  # both edges of the columns, at any width
    assert "…" in text and "⋮" in text
    assert max(cell_len(line) for line in text.splitlines()) <= width


def test_pretty_summary_at_120_columns_shows_five_columns_each_side() -> None:
    cells = matrix_cells(pretty_at(vjp_result(wide_values(3, 50)), 120))
    assert {j for _, j in cells} == {0, 1, 2, 3, 4, 45, 46, 47, 48, 49}


def test_pretty_column_too_wide_for_the_console_is_not_cut() -> None:
    # -1234.57 and its row labels cannot fit in 8 cells: the table is printed wider, never cut
    values = torch.tensor([[-1234.5678, 98765.4321], [0.000123456789, -5.5]], dtype=F64)
    text = pretty_at(vjp_result(values), 8)
    assert matrix_cells(text) == {(0, 0): "-1234.57", (0, 1): "98765.4", (1, 0): "0.000123457", (1, 1): "-5.5"}


@pytest.mark.parametrize("width", [100, 40, 20])
def test_pretty_long_vector_fits_the_width_with_every_digit(width: int) -> None:
    values = wide_values(1, 57).reshape(-1)
    text = pretty_at(vjp_result(values), width, full=True)
    found: dict[int, str] = {}
    offsets: list[int] = []
    for line in text.splitlines():
        if "┃" in line:
            offsets = [int(c.strip().lstrip("+")) for c in line.split("┃")[1:]]
        elif "│" in line:
            start, *cells = (c.strip() for c in line.split("│"))
            for offset, cell in zip(offsets, cells):
                if cell:
                    found[int(start) + offset] = cell
    assert found == {k: f"{values[k].item():.6g}" for k in range(57)}
    assert max(cell_len(line) for line in text.splitlines()) <= width


def test_pretty_classic_matrix_with_many_variables_is_split_not_squeezed() -> None:
    names = [f"a{k}" for k in range(12)]
    inputs = {name: torch.tensor(float(k), dtype=F64) for k, name in enumerate(names)}
    # the Jacobian of [a0*a1*...] style outputs does not matter here: column k is 1000 + k + 0.125
    values = {name: torch.tensor([1000 + k + 0.125, -(1000 + k + 0.125)], dtype=F64) for k, name in enumerate(names)}
    text = pretty_at(make_result(values, inputs, torch.zeros(2, dtype=F64)), 60)
    assert max(cell_len(line) for line in text.splitlines()) <= 60
    for k, name in enumerate(names):
        assert f"∂/∂{name}" in text
        assert f"{1000 + k + 0.125:.6g}" in text and f"{-(1000 + k + 0.125):.6g}" in text


def _pretty_samples() -> list[Result]:
    polar = make_result(
        {"r": torch.tensor([0.5, 0.25], dtype=F64), "t": torch.tensor([-1.5, 3.0], dtype=F64)},
        {"r": torch.tensor(2.0, dtype=F64), "t": torch.tensor(0.5, dtype=F64)}, torch.tensor([1.0, 2.0], dtype=F64),
        expression="[r*cos(t), r*sin(t)]",
    )
    return [polar, vjp_result(distinct_values((3,))), vjp_result(distinct_values((2, 3, 4))),
            vjp_result(wide_values(3, 50)), vjp_result(distinct_values((100,)))]


@pytest.mark.parametrize("index", range(5))
def test_pretty_lines_have_no_trailing_spaces(index: int) -> None:
    result = _pretty_samples()[index]
    for width in (120, 40):
        lines = pretty_at(result, width).splitlines()
        assert lines[0].split()[0] == result.command  # the header's first line
        assert [line for line in lines if line != line.rstrip()] == []


def test_pretty_output_name_never_clashes_with_an_input() -> None:
    # vjp of 2*y at y = (1, 2) with v = ones: y.grad = (2, 2), by hand
    result = make_result({"y": torch.tensor([2.0, 2.0], dtype=F64)}, {"y": torch.tensor([1.0, 2.0], dtype=F64)},
                         torch.tensor([2.0, 4.0], dtype=F64), command="vjp", method="backward",
                         expression="2*y", v=torch.ones(2, dtype=F64))
    text = pretty_at(result, 100)
    assert "y.grad = vᵀ·∂f/∂y" in text
    assert "output  f: shape (2,) = [2, 4]" in text
    assert "method  f.backward(v), then y.grad" in text
    assert "∂y/∂y" not in text and "x.grad" not in text
    result.method = "grad"
    assert "torch.autograd.grad(f, y, v)" in pretty_at(result, 100)
    # with inputs y and f the output is g; without a y it stays y
    both = make_result({"y": torch.tensor(3.0, dtype=F64), "f": torch.tensor(2.0, dtype=F64)},
                       {"y": torch.tensor(2.0, dtype=F64), "f": torch.tensor(3.0, dtype=F64)},
                       torch.tensor(6.0, dtype=F64), command="grad", expression="y*f")
    text = pretty_at(both, 100)
    assert "y.grad = ∂g/∂y" in text and "f.grad = ∂g/∂f" in text and "output  g: shape () = 6" in text
    assert "as g.backward()" in text


def test_pretty_method_names_every_input() -> None:
    # vjp of a + b at a = b = (1, 2) with v = ones: both grads are ones
    ones = torch.ones(2, dtype=F64)
    result = make_result({"a": ones, "b": ones}, {"a": ones, "b": ones}, 2 * ones, command="vjp",
                         method="backward", expression="a + b", v=ones)
    assert "method  y.backward(v), then a.grad, b.grad" in pretty_at(result, 100)
    result.method = "grad"
    assert "method  torch.autograd.grad(y, (a, b), v)" in pretty_at(result, 100)


def test_pretty_det_says_which_is_exact() -> None:
    import sympy as sp

    # polar coordinates at r = 2: det J = r = 2
    r = sp.Symbol("r")
    result = _pretty_samples()[0]
    result.det, result.det_symbolic = torch.tensor(2.0, dtype=F64), r
    lines = pretty_at(result, 100).splitlines()
    assert lines[-2:] == ["det J = 2", "det J = r  (exact)"]
    result.det_symbolic = r / 2 + 1  # pretty-printed on three lines
    lines = pretty_at(result, 100).splitlines()
    assert lines[-5:] == ["det J = 2", "det J, exact (SymPy):", "r", "─ + 1", "2"]


def test_shape_text() -> None:
    assert render.shape_text((2, 3)) == "2x3"
    assert render.shape_text((5,)) == "5"
    assert render.shape_text(()) == "scalar"


@pytest.mark.parametrize("shape", [(render.PLAIN_PIECE * 2 + 5,), (3, render.PLAIN_PIECE), (2, render.PLAIN_PIECE + 1)])
def test_plain_output_comes_in_pieces_and_reads_back(shape) -> None:
    """Long rows are formatted and written in pieces, never as one string per row, and the text
    is the same numbers in the same layout (numpy.loadtxt is the reference reader)."""
    values = torch.randn(shape, dtype=F64, generator=torch.Generator().manual_seed(3))
    pieces = list(render.plain_lines(vjp_result(values)))
    assert max(len(piece.split()) for piece in pieces[1:]) == render.PLAIN_PIECE
    text = "".join(pieces)
    assert text == render.to_plain(vjp_result(values))
    assert text.count("\n") == 1 + (shape[0] if len(shape) == 2 else 1)
    read = np.loadtxt(io.StringIO(text))
    assert np.array_equal(read.reshape(shape), values.numpy())  # every digit: exact round trip


# -- structured layouts: diagonal and sparse ----------------------------------------------------


def eye_square(n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """(x+1)**2 at x = eye(n), by hand: the diagonal 2*(x+1) (4 where x is 1, else 2) and the
    dense Jacobian, shaped (n, n) + (n, n), that it stands for."""
    diagonal = torch.full((n, n), 2.0, dtype=F64)
    diagonal.fill_diagonal_(4.0)
    dense = torch.zeros(n, n, n, n, dtype=F64)
    for i in range(n):
        for j in range(n):
            dense[i, j, i, j] = diagonal[i, j]
    return diagonal, dense


def diagonal_result(n: int = 5, how: str | None = None) -> JacobianResult:
    diagonal, _ = eye_square(n)
    x = torch.eye(n, dtype=F64)
    result = make_result({"x": DiagonalBlock("x", diagonal, (n, n), (n, n))}, {"x": x}, (x + 1) ** 2,
                         expression="(x+1)**2")
    result.how = how
    return result


def sparse_result(colors: int | None = None) -> JacobianResult:
    """[x[0,1]*x[1,0], 3*x[1,1]] at x = [[1, 2], [5, 7]], by hand: ∂y[0]/∂x[0,1] = x[1,0] = 5,
    ∂y[0]/∂x[1,0] = x[0,1] = 2, ∂y[1]/∂x[1,1] = 3; flat input indices 1, 2 and 3."""
    x = torch.tensor([[1.0, 2.0], [5.0, 7.0]], dtype=F64)
    block = SparseBlock("x", torch.tensor([0, 0, 1]), torch.tensor([1, 2, 3]), torch.tensor([5.0, 2.0, 3.0], dtype=F64),
                        (2,), (2, 2), colors=colors)
    return make_result({"x": block}, {"x": x}, torch.tensor([10.0, 21.0], dtype=F64),
                       expression="[x[0,1]*x[1,0], 3*x[1,1]]")


SPARSE_DENSE = torch.tensor([[[0.0, 5.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 3.0]]], dtype=F64)


def test_json_diagonal_block_round_trips_to_the_dense_jacobian() -> None:
    document = strict_loads(render.to_json(diagonal_result()))
    assert set(document) == TOP_LEVEL_KEYS  # no "how" when nothing says how
    entry = document["result"]["x"]
    assert set(entry) == {"layout", "shape", "values"}
    assert entry["layout"] == "diagonal" and entry["shape"] == [5, 5, 5, 5]
    diagonal = np.array(entry["values"])
    assert diagonal.shape == (5, 5)  # nested like the output
    matrix = np.zeros((25, 25))
    matrix[np.arange(25), np.arange(25)] = diagonal.reshape(-1)
    assert np.array_equal(matrix.reshape(entry["shape"]), eye_square()[1].numpy())


def test_json_sparse_block_round_trips_to_the_dense_jacobian() -> None:
    document = strict_loads(render.to_json(sparse_result(colors=2)))
    entry = document["result"]["x"]
    assert entry == {"layout": "sparse", "shape": [2, 2, 2], "output_shape": [2], "input_shape": [2, 2], "nnz": 3,
                     "colors": 2, "rows": [0, 0, 1], "cols": [1, 2, 3], "values": [5.0, 2.0, 3.0]}
    matrix = np.zeros((math.prod(entry["output_shape"]), math.prod(entry["input_shape"])))
    matrix[entry["rows"], entry["cols"]] = entry["values"]
    assert np.array_equal(matrix.reshape(entry["shape"]), SPARSE_DENSE.numpy())
    assert strict_loads(render.to_json(sparse_result()))["result"]["x"]["colors"] is None


def test_json_says_how_when_told() -> None:
    document = strict_loads(render.to_json(diagonal_result(how="diagonal: 1 VJP")))
    assert set(document) == TOP_LEVEL_KEYS | {"how"} and document["how"] == "diagonal: 1 VJP"


def test_json_nan_in_a_structured_block_is_a_string() -> None:
    block = SparseBlock("x", torch.tensor([0]), torch.tensor([1]), torch.tensor([float("nan")], dtype=F64), (2,), (2,))
    result = make_result({"x": block}, {"x": torch.zeros(2, dtype=F64)}, torch.zeros(2, dtype=F64))
    assert strict_loads(render.to_json(result))["result"]["x"]["values"] == ["nan"]


def test_plain_diagonal_by_hand_and_read_back() -> None:
    assert render.to_plain(diagonal_result(2)) == "# x diagonal 2x2x2x2\n4.0 2.0\n2.0 4.0\n"
    text = render.to_plain(diagonal_result())
    header, body = text.split("\n", 1)
    assert header == "# x diagonal 5x5x5x5"
    shape = shape_from_text(header.split()[3])
    diagonal = np.loadtxt(io.StringIO(body)).reshape(shape[: len(shape) // 2])  # shaped like the output
    assert np.array_equal(diagonal, eye_square()[0].numpy())


def test_plain_sparse_by_hand_and_read_back() -> None:
    text = render.to_plain(sparse_result())
    assert text == "# x sparse 2x2x2 nnz 3 output 2 input 2x2\n0 0 1 5.0\n0 1 0 2.0\n1 1 1 3.0\n"
    header, body = text.split("\n", 1)
    words = header.split()
    shape, output_shape = shape_from_text(words[3]), shape_from_text(words[7])
    table = np.loadtxt(io.StringIO(body), ndmin=2)
    dense = np.zeros(shape)
    for *index, value in table:
        dense[tuple(int(i) for i in index)] = value
    assert len(output_shape) == 1 and np.array_equal(dense, SPARSE_DENSE.numpy())


def test_plain_sparse_scalar_output_has_no_output_columns() -> None:
    # sum(x[1:]) at a 3-vector: ∂y/∂x = [0, 1, 1], a scalar output
    block = SparseBlock("x", torch.tensor([0, 0]), torch.tensor([1, 2]), torch.tensor([1.0, 1.0], dtype=F64), (), (3,))
    result = make_result({"x": block}, {"x": torch.zeros(3, dtype=F64)}, torch.tensor(0.0, dtype=F64))
    assert render.to_plain(result) == "# x sparse 3 nnz 2 output scalar input 3\n1 1.0\n2 1.0\n"
    assert render.to_plain(result, precision=3).splitlines()[1] == "1 1"


def test_plain_dense_beside_structured_is_unchanged() -> None:
    x = torch.eye(2, dtype=F64)
    diagonal, _ = eye_square(2)
    result = make_result({"x": DiagonalBlock("x", diagonal, (2, 2), (2, 2)), "y": torch.ones(2, 2, dtype=F64)},
                         {"x": x, "y": torch.tensor(0.0, dtype=F64)}, x)
    assert render.to_plain(result) == "# x diagonal 2x2x2x2\n4.0 2.0\n2.0 4.0\n# y 2x2\n1.0 1.0\n1.0 1.0\n"


def test_pretty_diagonal_says_what_is_zero_and_shows_the_diagonal() -> None:
    text = pretty(diagonal_result(how="diagonal: 1 VJP"))
    assert "∂y/∂x  shape (5, 5, 5, 5) = output (5, 5) + x (5, 5)" in text
    assert "∂y/∂x is diagonal: ∂y[m,n]/∂x[i,j] = 0 unless (m,n) = (i,j); 25 of 625 entries stored" in text
    assert "∂y[i,j]/∂x[i,j], shaped like y:" in text
    assert "     how  diagonal: 1 VJP" in text
    assert matrix_cells(text) == {(i, j): "4" if i == j else "2" for i in range(5) for j in range(5)}
    assert len(text.splitlines()) <= 20  # a few lines, not 625 entries


def test_pretty_diagonal_of_a_vector_and_a_scalar() -> None:
    block = DiagonalBlock("x", torch.tensor([2.0, 4.0, 6.0], dtype=F64), (3,), (3,))
    text = pretty(make_result({"x": block}, {"x": torch.tensor([1.0, 2.0, 3.0], dtype=F64)}, torch.zeros(3, dtype=F64)))
    assert "∂y[m]/∂x[i] = 0 unless m = i" in text and "∂y[i]/∂x[i], shaped like y:" in text
    assert re.search(r"2 │ 4 │ 6", text), text
    scalar = DiagonalBlock("x", torch.tensor(6.0, dtype=F64), (), ())
    text = pretty(make_result({"x": scalar}, {"x": torch.tensor(3.0, dtype=F64)}, torch.tensor(9.0, dtype=F64)))
    assert "∂y/∂x is diagonal: a single entry" in text and text.rstrip().endswith("6")


def test_pretty_diagonal_of_five_axes_numbers_the_indices() -> None:
    shape = (1, 1, 1, 1, 2)
    block = DiagonalBlock("x", torch.ones(shape, dtype=F64), shape, shape)
    text = pretty(make_result({"x": block}, {"x": torch.zeros(shape, dtype=F64)}, torch.zeros(shape, dtype=F64)))
    assert "∂y[m1,m2,m3,m4,m5]/∂x[i1,i2,i3,i4,i5] = 0 unless (m1,m2,m3,m4,m5) = (i1,i2,i3,i4,i5)" in text
    assert "diagonal[0, 0, 0, :, :]" in text


def test_pretty_sparse_summary_and_entries() -> None:
    text = pretty(sparse_result(colors=2))
    assert "∂y/∂x is sparse: nnz 3 of 8 entries (density 37.5%); 2 colours (compressed passes)" in text
    rows = [[c.strip() for c in line.split("│")] for line in text.splitlines() if "│" in line]
    assert rows == [["y[0]", "x[0,1]", "5"], ["y[0]", "x[1,0]", "2"], ["y[1]", "x[1,1]", "3"]]
    assert "colour" not in pretty(sparse_result())


def test_pretty_sparse_lists_the_first_entries_and_full_lists_all() -> None:
    n = 40  # 3*x at a 40-vector: 40 entries of 3 on the diagonal
    block = SparseBlock("x", torch.arange(n), torch.arange(n), torch.full((n,), 3.0, dtype=F64), (n,), (n,), colors=1)
    result = make_result({"x": block}, {"x": torch.zeros(n, dtype=F64)}, torch.zeros(n, dtype=F64))
    summary = pretty(result)
    assert "1 colour (compressed passes)" in summary
    listed = re.findall(r"^y\[(\d+)\] +│ x\[(\d+)\] +│ +3$", summary, flags=re.MULTILINE)
    assert listed == [(str(k), str(k)) for k in range(render.SPARSE_ENTRIES)]
    assert f"… {n - render.SPARSE_ENTRIES} more entries (--full shows all)" in summary
    everything = pretty(result, full=True)
    assert len(re.findall(r"^y\[\d+\] ", everything, flags=re.MULTILINE)) == n and "more entries" not in everything


def test_pretty_structured_scalar_inputs_skip_the_classic_matrix() -> None:
    # [2*r, 3*r] with r scalar stored sparse: the entries, not a classic matrix of zeros
    block = SparseBlock("r", torch.tensor([0, 1]), torch.tensor([0, 0]), torch.tensor([2.0, 3.0], dtype=F64), (2,), ())
    text = pretty(make_result({"r": block}, {"r": torch.tensor(1.0, dtype=F64)}, torch.tensor([2.0, 3.0], dtype=F64)))
    assert "∂/∂r" not in text
    rows = [[c.strip() for c in line.split("│")] for line in text.splitlines() if "│" in line]
    assert rows == [["y[0]", "r", "2"], ["y[1]", "r", "3"]]


@pytest.mark.parametrize("index", range(2))
def test_pretty_structured_lines_have_no_trailing_spaces(index: int) -> None:
    result = [diagonal_result(), sparse_result(colors=3)][index]
    for width in (120, 40):
        lines = pretty_at(result, width).splitlines()
        assert [line for line in lines if line != line.rstrip()] == []


def huge_sparse_result() -> JacobianResult:
    """A 10**6-element input and output with 3 nonzeros: its dense form (10**12 entries, 8 TB)
    could never be built, so every writer must work from the nonzeros."""
    n = 10**6
    block = SparseBlock("x", torch.tensor([0, 5, n - 1]), torch.tensor([n - 1, 5, 0]),
                        torch.tensor([1.5, -2.0, 4.0], dtype=F64), (n,), (n,), colors=3)
    return make_result({"x": block}, {"x": torch.zeros(n, dtype=F64)}, torch.zeros(n, dtype=F64))


def test_structured_writers_never_build_the_dense_jacobian(monkeypatch, tmp_path) -> None:
    def refuse(self):
        raise AssertionError("to_dense called while rendering")

    monkeypatch.setattr(SparseBlock, "to_dense", refuse)
    monkeypatch.setattr(DiagonalBlock, "to_dense", refuse)
    result = huge_sparse_result()
    assert render.to_plain(result).splitlines()[1:] == ["0 999999 1.5", "5 5 -2.0", "999999 0 4.0"]
    assert strict_loads(render.to_json(result))["result"]["x"]["values"] == [1.5, -2.0, 4.0]
    assert "nnz 3 of 1000000000000 entries (density 3e-10%); 3 colours" in pretty(result)
    assert b"".join(render.to_chunks(result, ".pt"))
    for small in (diagonal_result(), sparse_result()):
        render.to_plain(small), render.to_json(small), pretty(small), pretty(small, full=True)
        list(render.to_chunks(small, ".pt"))


# -- structured layouts: files ------------------------------------------------------------------


def write(result: Result, suffix: str, tmp_path):
    path = tmp_path / f"result{suffix}"
    path.write_bytes(b"".join(render.to_chunks(result, suffix)))
    return path


def test_npy_of_a_diagonal_block_is_the_diagonal(tmp_path) -> None:
    assert np.array_equal(np.load(write(diagonal_result(), ".npy", tmp_path)), eye_square()[0].numpy())


def test_npy_of_a_sparse_block_is_refused_with_the_alternatives() -> None:
    from jacli.errors import InputError

    with pytest.raises(InputError, match=r"sparse \(3 of 8 entries stored\); write \.npz .* or \.pt .*`layout` dense"):
        list(render.to_chunks(sparse_result(), ".npy"))


@pytest.mark.parametrize("make,dense", [
    (diagonal_result, eye_square()[1]), (sparse_result, SPARSE_DENSE),
    (lambda: make_result({"x": SPARSE_DENSE}, {"x": torch.zeros(2, 2, dtype=F64)}, torch.zeros(2, dtype=F64)), SPARSE_DENSE),
])
def test_pt_reads_back_with_torch_load(make, dense, tmp_path) -> None:
    result = make()
    loaded = torch.load(write(result, ".pt", tmp_path), weights_only=True)
    block = loaded["result"]["x"]
    assert block.shape == dense.shape and block.dtype == F64
    assert torch.equal(block.to_dense(), dense)
    # the classic matrix beside it: the same numbers, one row per output element
    assert torch.equal(loaded["matrix"].to_dense(), dense.reshape(result.output.numel(), -1))
    assert torch.equal(loaded["output"], result.output) and torch.equal(loaded["inputs"]["x"], result.inputs["x"])
    assert loaded["wrt"] == ["x"] and loaded["command"] == "jacobian"


def test_pt_of_a_view_holds_only_the_view(tmp_path) -> None:
    big = torch.arange(1000.0, dtype=F64)
    path = write(vjp_result(big[:3]), ".pt", tmp_path)
    assert path.stat().st_size < 4000  # the whole storage alone would be 8000 bytes
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(loaded["result"]["x"], big[:3]) and torch.equal(loaded["v"], torch.ones(3, dtype=F64))


@pytest.mark.parametrize("make,dense", [
    (diagonal_result, eye_square()[1]), (sparse_result, SPARSE_DENSE),
    (lambda: make_result({"x": SPARSE_DENSE}, {"x": torch.zeros(2, 2, dtype=F64)}, torch.zeros(2, dtype=F64)), SPARSE_DENSE),
])
def test_npz_reads_back_with_scipy_as_the_classic_matrix(make, dense, tmp_path) -> None:
    scipy_sparse = pytest.importorskip("scipy.sparse", reason="scipy is optional (pip install 'jacli[sparse]')")
    result = make()
    matrix = scipy_sparse.load_npz(write(result, ".npz", tmp_path))
    output_size = result.output.numel()
    assert matrix.shape == (output_size, dense.numel() // output_size)
    assert np.array_equal(matrix.toarray(), dense.reshape(output_size, -1).numpy())
    assert matrix.nnz == int(torch.count_nonzero(dense))


def test_npz_of_a_huge_sparse_block(tmp_path) -> None:
    scipy_sparse = pytest.importorskip("scipy.sparse", reason="scipy is optional (pip install 'jacli[sparse]')")
    matrix = scipy_sparse.load_npz(write(huge_sparse_result(), ".npz", tmp_path)).tocoo()
    assert matrix.shape == (10**6, 10**6)
    assert sorted(zip(matrix.row.tolist(), matrix.col.tolist(), matrix.data.tolist())) == [
        (0, 999999, 1.5), (5, 5, -2.0), (999999, 0, 4.0)]


def test_npz_of_a_vjp_holds_every_tensor_by_name(tmp_path) -> None:
    grads = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
    with np.load(write(vjp_result(grads), ".npz", tmp_path), allow_pickle=False) as loaded:
        assert set(loaded.files) == {"wrt", "output", "input.x", "result.x", "v"}
        np.testing.assert_array_equal(loaded["result.x"], grads.numpy())
        np.testing.assert_array_equal(loaded["v"], np.ones(3))
        assert loaded["wrt"].tolist() == ["x"]


def test_npz_without_scipy_says_how_to_install_it(monkeypatch) -> None:
    import sys

    from jacli.errors import InputError

    monkeypatch.setattr(render, "_has_scipy", lambda: False)
    with pytest.raises(InputError, match=r"pip install 'jacli\[sparse\]'") as raised:
        render.check_file_suffix("j.npz")
    assert raised.value.param == "output" and ".pt" in str(raised.value)
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(InputError, match=r"pip install 'jacli\[sparse\]'"):
        list(render.to_chunks(sparse_result(), ".npz"))


def test_has_scipy_answers_without_importing() -> None:
    import importlib.util

    assert render._has_scipy() == (importlib.util.find_spec("scipy") is not None)


@pytest.mark.parametrize("suffix", [".npz", ".pt"])
def test_new_suffixes_are_accepted(suffix: str, monkeypatch) -> None:
    monkeypatch.setattr(render, "_has_scipy", lambda: True)
    render.check_file_suffix(f"j{suffix}")


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (0,), (5, 1, 4)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_npy_pieces_are_numpys_own_file(shape, dtype, monkeypatch) -> None:
    """.npy is written header first, then the array's bytes in slices; the file is byte for byte
    what numpy.save writes (pieces made small here so that several are needed)."""
    import io

    monkeypatch.setattr(render, "NPY_PIECE", 7)
    values = torch.arange(math.prod(shape), dtype=dtype).reshape(shape) / 3
    result = vjp_result(values)
    written = b"".join(render.to_chunks(result, ".npy"))
    expected = io.BytesIO()
    np.save(expected, values.numpy(), allow_pickle=False)
    assert written == expected.getvalue()


# -- one matrix everywhere (issue 11, item 1) and the files people use ---------------------------


def _pretty_matrix(text: str) -> tuple[list[str], list[str], np.ndarray]:
    """Row labels, column labels and numbers of the boxed classic-matrix table in a pretty view."""
    lines = text.splitlines()
    header = next(line for line in lines if "∂/∂" in line and "┃" in line)
    columns = [c.strip() for c in header.split("┃") if c.strip()]
    rows, numbers = [], []
    for line in lines[lines.index(header) + 1:]:
        cells = [c.strip() for c in line.split("│") if c.strip()]
        if len(cells) == len(columns) + 1:
            rows.append(cells[0])
            numbers.append([float(c) for c in cells[1:]])
    return rows, columns, np.array(numbers)


def test_polar_matrix_is_the_same_in_every_format(tmp_path) -> None:
    """The issue's case: numpy.loadtxt of plain, JSON's matrix, .npy, CSV, .npz and .pt all hold
    the matrix the pretty view shows, and it is SymPy's exact Jacobian."""
    import sympy as sp

    result = compute_jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5})
    r, t = sp.symbols("r t")
    exact = np.array(sp.Matrix([r * sp.cos(t), r * sp.sin(t)]).jacobian([r, t]).subs({r: 2, t: 0.5}).evalf(20).tolist(),
                     dtype=float)
    rows, columns, shown = _pretty_matrix(pretty(result, precision=12))
    assert rows == ["y[0]", "y[1]"] and columns == ["∂/∂r", "∂/∂t"]
    np.testing.assert_allclose(shown, exact, rtol=1e-11)
    loaded = {
        "plain": np.loadtxt(io.StringIO(render.to_plain(result))),
        "json": np.array(strict_loads(render.to_json(result))["matrix"]["values"]),
        "csv": np.loadtxt(io.StringIO(render.to_csv(result)), delimiter=",", skiprows=1),
        ".npy": np.load(write(result, ".npy", tmp_path)),
        ".pt": torch.load(write(result, ".pt", tmp_path), weights_only=True)["matrix"].numpy(),
    }
    if importlib_util.find_spec("scipy") is not None:
        import scipy.sparse

        loaded[".npz"] = scipy.sparse.load_npz(write(result, ".npz", tmp_path)).toarray()
    for where, matrix in loaded.items():
        np.testing.assert_allclose(matrix, exact, rtol=1e-15, atol=1e-15, err_msg=where)
        np.testing.assert_allclose(matrix, shown, rtol=1e-11, err_msg=where)
    document = strict_loads(render.to_json(result))["matrix"]
    assert document["rows"] == ["y[0]", "y[1]"] and document["columns"] == ["r", "t"] and document["shape"] == [2, 2]


def several_inputs_result() -> JacobianResult:
    """[sum(x*A), prod(x)] at x = (1, 2), A = (3, 4), by hand: ∂/∂x = [[3, 4], [2, 1]],
    ∂/∂A = [[1, 2], [0, 0]]; the matrix is [[3, 4, 1, 2], [2, 1, 0, 0]]."""
    return compute_jacobian("[sum(x*A), prod(x)]", {"x": [1.0, 2.0], "A": [3.0, 4.0]}, matrix=True)


SEVERAL = np.array([[3.0, 4.0, 1.0, 2.0], [2.0, 1.0, 0.0, 0.0]])


def test_csv_is_rfc_4180_with_a_header_naming_the_columns() -> None:
    import csv

    result = compute_jacobian("sum(A)*x", {"A": [[1.0, 2.0], [3.0, 4.0]], "x": [1.0, 2.0]}, matrix=True)
    text = render.to_csv(result)
    assert "\r\n" in text and text.endswith("\r\n")
    table = list(csv.reader(io.StringIO(text)))
    # A's labels hold a comma, so they are quoted; the csv module reads them back whole
    assert table[0] == ["A[0,0]", "A[0,1]", "A[1,0]", "A[1,1]", "x[0]", "x[1]"]
    assert text.startswith('"A[0,0]","A[0,1]"')
    # by hand: y = sum(A)*x = (10, 20); dy[i]/dA[j,k] = x[i], dy[i]/dx[j] = 10 if i == j
    expected = [[1.0, 1, 1, 1, 10, 0], [2, 2, 2, 2, 0, 10]]
    assert [[float(v) for v in row] for row in table[1:]] == expected
    np.testing.assert_array_equal(np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1), expected)


def test_csv_of_a_vjp_is_one_row_of_every_gradient() -> None:
    result = make_result({"a": torch.tensor([0.5, 1.0], dtype=F64), "b": torch.tensor(2.0, dtype=F64)},
                         {"a": torch.zeros(2, dtype=F64), "b": torch.tensor(0.0, dtype=F64)}, torch.zeros(2, dtype=F64),
                         command="vjp", v=torch.ones(2, dtype=F64))
    assert render.to_csv(result) == "a[0],a[1],b\r\n0.5,1.0,2.0\r\n"


def test_csv_of_a_sparse_jacobian_says_what_to_write_instead() -> None:
    from jacli.errors import InputError

    result = sparse_result()
    result.as_matrix = True
    with pytest.raises(InputError, match=r"sparse .*write it as \.npz or \.pt, or ask for `layout` dense"):
        render.to_csv(result)


def test_plain_json_and_npy_of_several_inputs_hold_the_matrix(tmp_path) -> None:
    result = several_inputs_result()
    text = render.to_plain(result)
    assert text.splitlines()[0] == "# matrix 2x4; rows y[0]..y[1]; columns x[0]..x[1], A[0]..A[1]"
    np.testing.assert_array_equal(np.loadtxt(io.StringIO(text)), SEVERAL)
    document = strict_loads(render.to_json(result))
    assert document["matrix"]["columns"] == ["x[0]", "x[1]", "A[0]", "A[1]"]
    np.testing.assert_array_equal(document["matrix"]["values"], SEVERAL)
    np.testing.assert_array_equal(document["result"]["A"]["values"], SEVERAL[:, 2:])  # the blocks stay
    np.testing.assert_array_equal(np.load(write(result, ".npy", tmp_path)), SEVERAL)


def test_matrix_is_streamed_in_slices_byte_for_byte(monkeypatch) -> None:
    """.npy and plain are written a few rows at a time (one row per slice here), and still give
    exactly what numpy.save and one pass over the whole matrix give."""
    result = compute_jacobian("tanh(A @ x)", {"A": "randn:7x3", "x": "randn:3"}, matrix=True, seed=2)
    whole_npy, whole_plain = b"".join(render.to_chunks(result, ".npy")), render.to_plain(result)
    monkeypatch.setattr(render, "MATRIX_SLICE", 1)
    assert b"".join(render.to_chunks(result, ".npy")) == whole_npy and render.to_plain(result) == whole_plain
    expected = io.BytesIO()
    np.save(expected, result.matrix().to_dense().numpy(), allow_pickle=False)
    assert whole_npy == expected.getvalue()


def test_json_matrix_of_a_structured_layout_lists_its_entries() -> None:
    result = sparse_result()
    result.as_matrix = True
    entry = strict_loads(render.to_json(result))["matrix"]
    assert entry["layout"] == "sparse" and entry["shape"] == [2, 4] and entry["nnz"] == 3
    dense = np.zeros((2, 4))
    dense[entry["i"], entry["j"]] = entry["values"]
    np.testing.assert_array_equal(dense, SPARSE_DENSE.reshape(2, 4).numpy())
    assert entry["columns"] == ["x[0,0]", "x[0,1]", "x[1,0]", "x[1,1]"]
    assert render.to_plain(result).splitlines() == [
        "# matrix sparse 2x4 nnz 3; rows y[0]..y[1]; columns x[0,0]..x[1,1]", "0 1 5.0", "0 2 2.0", "1 3 3.0"]


def test_npz_holds_every_result_by_name_and_the_matrix_for_scipy(tmp_path) -> None:
    scipy_sparse = pytest.importorskip("scipy.sparse", reason="scipy is optional (pip install 'jacli[sparse]')")
    result = several_inputs_result()
    path = write(result, ".npz", tmp_path)
    np.testing.assert_array_equal(scipy_sparse.load_npz(path).toarray(), SEVERAL)
    with np.load(path, allow_pickle=False) as loaded:
        assert {"wrt", "output", "input.x", "input.A", "result.x", "result.A"} <= set(loaded.files)
        assert loaded["wrt"].tolist() == ["x", "A"]
        np.testing.assert_array_equal(loaded["output"], [11.0, 2.0])  # 1*3 + 2*4, 1*2
        np.testing.assert_array_equal(loaded["result.x"], SEVERAL[:, :2])
        np.testing.assert_array_equal(loaded["input.A"], [3.0, 4.0])
        np.testing.assert_array_equal(loaded["matrix"], SEVERAL)  # by name too, without scipy
    with np.load(write(diagonal_result(), ".npz", tmp_path), allow_pickle=False) as loaded:
        np.testing.assert_array_equal(loaded["result.x.diagonal"], eye_square()[0].numpy())
        assert "matrix" not in loaded.files  # a structured matrix is the CSR one only


def test_pt_saves_a_one_input_matrix_and_its_block_once(tmp_path) -> None:
    """The matrix of one dense block is a view of it: torch.save writes their storage once."""
    values = torch.arange(1000.0, dtype=F64).reshape(10, 100)
    result = make_result({"x": values}, {"x": torch.zeros(100, dtype=F64)}, torch.zeros(10, dtype=F64))
    path = write(result, ".pt", tmp_path)
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(loaded["matrix"], values) and torch.equal(loaded["result"]["x"], values)
    assert path.stat().st_size < 8000 + 800 + 80 + 4000  # one copy of the 8000 bytes, plus x, y and the rest


def test_hessian_matrix_in_plain_and_csv() -> None:
    # a*b**2 at a=1, b=2, by hand: H = [[0, 2b], [2b, 2a]] = [[0, 4], [4, 2]]
    result = make_result({"a,a": torch.tensor(0.0, dtype=F64), "a,b": torch.tensor(4.0, dtype=F64),
                          "b,a": torch.tensor(4.0, dtype=F64), "b,b": torch.tensor(2.0, dtype=F64)},
                         {"a": torch.tensor(1.0, dtype=F64), "b": torch.tensor(2.0, dtype=F64)},
                         torch.tensor(4.0, dtype=F64), command="hessian")
    result.as_matrix = True
    assert render.to_plain(result) == "# matrix 2x2; rows a, b; columns a, b\n0.0 4.0\n4.0 2.0\n"
    assert render.to_csv(result) == "a,b\r\n0.0,4.0\r\n4.0,2.0\r\n"


@pytest.mark.parametrize("suffix,wanted,written", [
    (".txt", None, "plain"), (".txt", "csv", "csv"), (".csv", None, "csv"), (".json", "json", "json"),
    (".npy", None, ".npy"), (".pt", None, ".pt"),
])
def test_the_suffix_decides_and_format_refines(suffix, wanted, written) -> None:
    assert render.file_format(suffix, wanted) == written


@pytest.mark.parametrize("suffix,wanted", [(".csv", "plain"), (".json", "csv"), (".npy", "json"), (".txt", "json")])
def test_a_format_that_contradicts_the_suffix_is_refused(suffix, wanted) -> None:
    with pytest.raises(ValueError):
        render.file_format(suffix, wanted)


def test_text_and_npy_writers_stream_the_matrix_without_assembling_it(monkeypatch) -> None:
    """Plain, CSV, JSON and .npy take the matrix's rows a slice at a time from the blocks; the
    whole matrix (a second copy of a several-input Jacobian) is never assembled."""
    from jacli.result import Matrix

    result = several_inputs_result()
    expected = {"plain": render.to_plain(result), "csv": render.to_csv(result), "json": render.to_json(result),
                ".npy": b"".join(render.to_chunks(result, ".npy"))}

    def refuse(self):
        raise AssertionError("the whole matrix was assembled")

    monkeypatch.setattr(Matrix, "to_dense", refuse)
    monkeypatch.setattr(render, "MATRIX_SLICE", 4)  # one row of 4 at a time
    assert render.to_plain(result) == expected["plain"] and render.to_csv(result) == expected["csv"]
    assert render.to_json(result) == expected["json"]
    assert b"".join(render.to_chunks(result, ".npy")) == expected[".npy"]


def test_check_report_goes_to_csv_and_its_table_is_refused_as_tensors() -> None:
    import csv

    from jacli.errors import InputError
    from jacli.result import CheckReport, MethodCheck

    report = CheckReport("x**2", "symbolic", 1e-3, 1e-5, {"x": (2,)}, (2,),
                         methods=[MethodCheck("reverse", 0.0, 0.0), MethodCheck("rows", 0.5, 0.25, ok=False, note="far")])
    table = list(csv.reader(io.StringIO(render.to_csv(report))))
    assert table == [["method", "max_abs", "max_rel", "ok", "skipped", "note"],
                     ["reverse", "0.0", "0.0", "True", "False", ""], ["rows", "0.5", "0.25", "False", "False", "far"]]
    for suffix in (".npy", ".npz", ".pt"):
        with pytest.raises(InputError, match=f"{suffix} holds tensors, but check's report is a table"):
            list(render.to_chunks(report, suffix))


def test_pretty_matrix_of_a_structured_layout_lists_labelled_entries() -> None:
    # sparse_result by hand: ∂y[0]/∂x[0,1] = 5, ∂y[0]/∂x[1,0] = 2, ∂y[1]/∂x[1,1] = 3
    result = sparse_result()
    result.as_matrix = True
    text = pretty(result)
    assert "2x4, sparse: nnz 3 of 8 entries; rows y[0]..y[1]; columns x[0,0]..x[1,1]" in text
    entries = [[c.strip() for c in line.split("│")] for line in text.splitlines() if line.startswith("y[")]
    assert entries == [["y[0]", "x[0,1]", "5"], ["y[0]", "x[1,0]", "2"], ["y[1]", "x[1,1]", "3"]]


MATRIX_RSS_SCRIPT = r"""
import os, resource, sys
from types import SimpleNamespace
import torch
from jacli import render
from jacli.problem import Problem
from jacli.result import JacobianBlock, JacobianResult

n = 3000  # two dense 3000x3000 blocks: 144 MB of Jacobian
blocks = {name: JacobianBlock(name, torch.randn(n, n, dtype=torch.float64)) for name in ("a", "b")}
inputs = {name: torch.zeros(n, dtype=torch.float64) for name in blocks}
problem = Problem(SimpleNamespace(text="f", variables=("a", "b"), tree=None), inputs, ("a", "b"),
                  torch.device("cpu"), torch.float64, budget=10**10)
result = JacobianResult(problem, "reverse", torch.zeros(n, dtype=torch.float64), blocks=blocks, as_matrix=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(os.devnull, "wb") as sink:
    for chunk in render.to_chunks(result, ".npy"):
        sink.write(chunk)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024)
"""


def test_npy_of_a_two_input_matrix_never_holds_a_second_copy() -> None:
    """Peak RSS (resource, in a fresh process) while .npy writes the 3000x6000 matrix of two
    3000x3000 blocks: the rows are streamed, so the peak grows by a few slices, far from the
    144 MB a concatenated copy would add."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(render.__file__).parents[1]),
                                                                       os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", MATRIX_RSS_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    grown = int(done.stdout.strip())
    assert grown < 32 * 2**20, f"peak RSS grew by {grown / 2**20:.0f} MiB while writing"


# -- streamed JSON, signless zeros, pipes -------------------------------------------------------


def expected_json(result: Result) -> str:
    """The document built the obvious way, with json.dumps of nested lists: the reference the
    streamed writer must match character for character."""
    def values(tensor: torch.Tensor):
        return (tensor + 0.0).tolist()  # + 0.0: zeros without a sign

    given = getattr(result.problem, "given", {})
    header = {"command": result.command, "expression": result.expression, "method": result.method,
              "device": "cpu", "dtype": result.dtype, "seed": getattr(result.problem, "seed", 0),
              "inputs": {n: {"shape": list(t.shape), "spec": given.get(n), "values": values(t)}
                         for n, t in result.inputs.items()}}
    if getattr(result, "v", None) is not None:
        header["v"] = {"shape": list(result.v.shape), "values": values(result.v)}
    header["output"] = {"shape": list(result.output.shape), "values": values(result.output)}
    header["result"] = {n: {"shape": list(t.shape), "values": values(t)} for n, t in result.tensors()}
    return json.dumps(header) + "\n"


@pytest.mark.parametrize(
    "shape", [(), (0,), (5,), (2, 0, 3), (2, 3, 4), (3, 1, 2, 2), (2, render.PLAIN_PIECE + 7), (render.PLAIN_PIECE * 2 + 1,)]
)
def test_streamed_json_is_the_document_json_dumps_writes(shape) -> None:
    values = torch.randn(shape, dtype=F64, generator=torch.Generator().manual_seed(11))
    result = vjp_result(values)
    text = render.to_json(result)
    assert text == expected_json(result)
    assert np.array_equal(np.array(strict_loads(text)["result"]["x"]["values"]).reshape(shape), values.numpy())


def test_streamed_json_writes_the_header_first_and_the_numbers_in_pieces() -> None:
    values = torch.randn(300, 300, dtype=F64, generator=torch.Generator().manual_seed(4))
    result = make_result({"x": values}, {"x": torch.zeros(300, dtype=F64)}, torch.zeros(300, dtype=F64))
    pieces = list(render.json_chunks(result))
    assert "".join(pieces) == expected_json(result)
    first = pieces[0]
    assert first.startswith('{"command": "jacobian", "expression": "f(x)"') and '"inputs"' in first
    assert not re.search(r"\d\.\d", first)  # no number of the result yet
    # no piece holds twice PLAIN_PIECE numbers: the document is never one string
    assert max(piece.count(",") for piece in pieces) < 2 * render.PLAIN_PIECE
    assert len(pieces) >= 300 * 300 // render.PLAIN_PIECE


def test_streamed_json_of_a_sparse_block_and_det_reads_back() -> None:
    result = sparse_result(colors=2)
    result.det = torch.tensor(-0.0, dtype=F64)
    document = strict_loads(render.to_json(result))
    entry = document["result"]["x"]
    assert (entry["rows"], entry["cols"], entry["values"]) == ([0, 0, 1], [1, 2, 3], [5.0, 2.0, 3.0])
    assert document["det"] == 0.0
    assert list(document)[:7] == ["command", "expression", "method", "device", "dtype", "seed", "inputs"]


def test_a_tensor_anywhere_in_the_document_is_streamed(monkeypatch) -> None:
    """What another key (v, the input values, a matrix) needs: put a tensor in json_document."""
    real = render.json_document
    v = torch.tensor([[1.5, float("nan")], [-0.0, 2.0]], dtype=F64)
    monkeypatch.setattr(render, "json_document", lambda result: {**real(result), "v": v, "more": {"v": [v, 1]}})
    document = strict_loads(render.to_json(vjp_result(torch.ones(2, dtype=F64))))
    assert document["v"] == [[1.5, "nan"], [0.0, 2.0]] and document["more"] == {"v": [[[1.5, "nan"], [0.0, 2.0]], 1]}


NEGATIVE_ZEROS = torch.tensor([[-0.0, -1.0], [-0.0, -0.25]], dtype=F64)  # what x**-1 gives off the diagonal


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_no_format_writes_a_negative_zero(dtype) -> None:
    result = vjp_result(NEGATIVE_ZEROS.to(dtype))
    texts = [render.to_plain(result), render.to_plain(result, precision=3), render.to_json(result),
             pretty(result), pretty(result, precision=2)]
    for text in texts:
        assert not re.search(r"-0(?![.\d]*[1-9])", text), text
    assert np.array_equal(np.loadtxt(io.StringIO(texts[0])), [[0.0, -1.0], [0.0, -0.25]])
    assert strict_loads(texts[2])["result"]["x"]["values"] == [[0.0, -1.0], [0.0, -0.25]]
    assert render.format_number(-0.0, None) == "0.0" and render.format_number(-0.0, 4) == "0"


def test_the_cli_writes_no_negative_zero_in_any_format() -> None:
    from helpers import cli

    for fmt in ("plain", "json", "pretty"):
        done = cli("jacobian", "x**-1", "-i", "1,2", "-m", "reverse", "--layout", "dense", "-f", fmt)
        assert done.exit_code == 0, done.stderr
        assert "-0" not in done.stdout.replace("-0.25", ""), done.stdout
        assert "-1" in done.stdout and "-0.25" in done.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--symbolic", "--det"],
        ["jacobian", "(x+1)**2", "-i", "eye:3", "--layout", "sparse"],
        ["vjp", "log(x)", "-i", "0,1,2", "--v", "ones"],
        ["jvp", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--v", "t=1"],
        ["grad", "sum(sqrt(x))", "-i", "0,4", "--symbolic"],
        ["hessian", "a*b**2", "-i", "a=1", "-i", "b=2"],
        ["hvp", "sum(x**3)", "-i", "1,2", "--v", "1,0"],
        ["check", "relu(x)", "-i", "-1,0,1"],
    ],
    ids=lambda argv: argv[0],
)
def test_piped_json_of_every_command_is_strict(argv) -> None:
    from helpers import cli

    done = cli(*argv, "-f", "json")
    assert done.exit_code == 0 or argv[0] == "check" and done.exit_code == 1, done.stderr
    assert "Error" not in done.stderr, done.stderr
    document = strict_loads(done.stdout)
    if argv[0] == "vjp":  # log(x) at 0: -inf, and its derivative 1/x: inf, as strings
        assert document["output"]["values"][0] == "-inf" and document["result"]["x"]["values"][0] == "inf"
    assert document["command"] == argv[0]
    assert done.stdout.endswith("}\n") and done.stdout.count("\n") == 1


PEAK_RSS = """
import resource, sys
from jacli.cli import main
sys.argv = ["jacli", *sys.argv[1:]]
try:
    main()
finally:
    sys.stderr.write(f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n")
"""


def run_jacli(*argv: str, **kwargs) -> subprocess.Popen:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "JACLI_DEBUG": "", "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", PEAK_RSS, *argv], env={**env, **kwargs.pop("env", {})}, **kwargs)


def test_json_peak_memory_is_that_of_plain_for_a_2000_by_2000_jacobian() -> None:
    import subprocess

    peaks = {}
    for fmt in ("plain", "json"):
        child = run_jacli("jacobian", "softmax(x)", "-i", "randn:2000", "-f", fmt,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, stderr = child.communicate(timeout=600)
        assert child.returncode == 0, stderr
        peaks[fmt] = int(re.search(r"^peak (\d+)$", stderr, flags=re.MULTILINE).group(1))
    # the Jacobian alone is 2000 * 2000 * 8 bytes = 32 MB; before streaming JSON took ~300 MB more
    assert peaks["json"] <= 1.2 * peaks["plain"], peaks


@pytest.mark.parametrize("fmt", ["plain", "json", "pretty"])
def test_a_reader_that_stops_early_ends_jacli_with_exit_0(fmt) -> None:
    """``jacli ... | head -c 50``: the first bytes come, the reader goes away, jacli exits 0
    without a word. The result is 600x600 numbers (several MB, far beyond a pipe's buffer), so
    jacli is still writing when the pipe closes."""
    import subprocess

    child = run_jacli("jacobian", "softmax(x)", "-i", "randn:600", "-f", fmt, "--full",
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = child.stdout.read(50)
        child.stdout.close()
        _, stderr = child.communicate(timeout=300)  # a safety net: the evidence is the exit itself
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert first.startswith(b"# x 600x600\n" if fmt == "plain" else b'{"command": "jacobian"' if fmt == "json" else b"jacobian")
    assert child.returncode == 0, stderr
    assert re.fullmatch(rb"peak \d+\n", stderr), stderr


# -- the pretty view: fast tables, one notation per column, what a summary leaves out -----------


def rich_table_text(grid) -> str:
    """What rich's own Table draws for a grid's columns: the reference for ``_Grid``."""
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, pad_edge=False)
    for header, _, justify in grid.columns:
        table.add_column(Text(header), justify=justify, no_wrap=True)
    for row in zip(*(cells for _, cells, _ in grid.columns)):
        table.add_row(*(Text(str(cell)) for cell in row))
    console = Console(record=True, width=10_000, file=io.StringIO())
    console.print(table)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def grid_text(grid) -> str:
    console = Console(record=True, width=40, file=io.StringIO())
    console.print(grid, crop=False)
    return console.export_text()


GRID_SAMPLES = [
    torch.tensor([[1.5, -0.0, float("nan")], [1e-7, 123456789.0, 2.0], [3, 4, float("-inf")]], dtype=F64),
    torch.randn(30, 20, dtype=F64, generator=torch.Generator().manual_seed(1)) * 1000,
    torch.eye(12, dtype=F64),
    torch.arange(100, dtype=F64) * 1.25,
    torch.tensor([7.0], dtype=F64),
    torch.randn(3, 57, dtype=F64, generator=torch.Generator().manual_seed(2)),
]


@pytest.mark.parametrize("index", range(len(GRID_SAMPLES)))
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("width", [120, 40])
def test_fast_tables_draw_what_richs_table_draws(index: int, full: bool, width: int) -> None:
    array = GRID_SAMPLES[index].numpy()
    parts = (render._vector_table if array.ndim == 1 else render._matrix_tables)(array, 6, full, width)
    grids = [part for part in parts if isinstance(part, render._Grid)]
    assert grids
    for grid in grids:
        assert grid_text(grid) == rich_table_text(grid)


def test_fast_sparse_entries_draw_what_richs_table_draws() -> None:
    result = sparse_result()
    parts = render._structured_view(result, "x", result.blocks["x"], 6, True, 80)
    grid = next(part for part in parts if isinstance(part, render._Grid))
    assert grid_text(grid) == rich_table_text(grid)
    assert "y[0]   │ x[0,1] │     5" in grid_text(grid)  # by hand: ∂y[0]/∂x[0,1] = x[1,0] = 5


def test_full_600_by_600_matrix_shows_every_number_under_its_row_and_column() -> None:
    values = torch.randn(600, 600, dtype=F64, generator=torch.Generator().manual_seed(8))
    result = make_result({"x": values}, {"x": torch.zeros(600, dtype=F64)}, torch.zeros(600, dtype=F64))
    text = pretty_at(result, 200, full=True)
    cells = matrix_cells(text)
    assert len(cells) == 600 * 600
    shown = np.array([[float(cells[i, j]) for j in range(600)] for i in range(600)])
    np.testing.assert_allclose(shown, values.numpy(), rtol=5e-6)  # 6 significant digits
    assert "not shown" not in text


@pytest.mark.parametrize(
    "column,expected",
    [
        ([1.5, 1e-7, 3.0], ["1.5e+00", "1e-07", "3e+00"]),
        ([0.0, 123456789.0, 4.0], ["0", "1.23457e+08", "4e+00"]),
        ([0.001, 2.5, -30.0], ["0.001", "2.5", "-30"]),
        ([float("nan"), 1e20, 0.0], ["nan", "1e+20", "0"]),
        ([999999.7, 1.0], ["1e+06", "1e+00"]),  # rounds up to 7 digits: scientific, and so is 1
    ],
)
def test_a_column_has_one_notation(column, expected) -> None:
    assert render._column_texts(np.array(column), 6) == expected


def test_the_pretty_view_never_mixes_notations_in_a_column() -> None:
    values = torch.tensor([[1.5, 2.0], [1e-7, 3.0], [3.0, 4.0]], dtype=F64)
    cells = matrix_cells(pretty(vjp_result(values)))
    assert [cells[i, 0] for i in range(3)] == ["1.5e+00", "1e-07", "3e+00"]
    assert [cells[i, 1] for i in range(3)] == ["2", "3", "4"]  # another column keeps its own


def test_a_summary_says_what_it_leaves_out_and_how_to_see_it() -> None:
    result = make_result({"x": torch.ones(30, 14, dtype=F64)}, {"x": torch.zeros(14, dtype=F64)}, torch.zeros(30, dtype=F64))
    text = pretty_at(result, 120)
    shown_rows = len({i for i, _ in matrix_cells(text)})
    shown_columns = len({j for _, j in matrix_cells(text)})
    assert f"… {30 - shown_rows} of 30 rows, {14 - shown_columns} of 14 columns not shown; --full shows all" in text
    assert (shown_rows, shown_columns) == (16, 10)
    narrow = pretty_at(result, 40)  # fewer columns fit: the count follows
    columns = len({j for _, j in matrix_cells(narrow)})
    assert f"{14 - columns} of 14 columns not shown" in " ".join(narrow.split()) and columns < 10
    assert "… 40 of 100 values not shown; --full shows all" in pretty(vjp_result(distinct_values((100,))))
    assert "not shown" not in pretty(result, full=True)
    assert "not shown" not in pretty(vjp_result(distinct_values((12, 10))))  # nothing left out


def test_the_header_shows_the_inputs_the_output_and_v() -> None:
    # vjp of 2*x at x = [[1, 2, 3, 4]] with v = onehot:0,1, by hand: y = [[2, 4, 6, 8]]
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=F64)
    v = torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=F64)
    result = make_result({"x": torch.tensor([[0.0, 2.0, 0.0, 0.0]], dtype=F64)}, {"x": x}, 2 * x,
                         command="vjp", method="grad", expression="2*x", v=v)
    lines = pretty(result).splitlines()
    assert " input  x: shape (1, 4) = [[1, 2, 3, 4]]" in lines
    assert "output  y: shape (1, 4) = [[2, 4, 6, 8]]" in lines
    assert "     v  shape (1, 4) (like the output) = [[0, 1, 0, 0]]" in lines


def test_the_header_summarizes_big_tensors_by_their_ends() -> None:
    assert render._inline(np.arange(5000.0), 6) == "[0, 1, …, 4998, 4999]"
    # x[i, j, :] starts at 24 i + 6 j: the corners (0, 0), (0, 3), (3, 0), (3, 3) start at 0, 18, 72, 90
    assert render._inline(np.arange(96.0).reshape(4, 4, 6), 6) == (
        "[[[0, 1, …, 4, 5], …, [18, 19, …, 22, 23]], …, [[72, 73, …, 76, 77], …, [90, 91, …, 94, 95]]]")
    assert render._inline(np.arange(20.0).reshape(4, 5), 6) == "[[0, 1, 2, 3, 4], …, [15, 16, 17, 18, 19]]"
    assert render._inline(np.arange(10.0).reshape(2, 5), 6) == "[[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]"  # 10: whole
    assert render._inline(np.array([1e-7, 1.5, -0.0]), 6) == "[1e-07, 1.5e+00, 0]"  # one notation, no -0
    assert render._inline(np.array(np.pi), 3) == "3.14"


def test_the_cli_header_shows_v_of_jvp_and_hvp() -> None:
    from helpers import cli

    done = cli("jvp", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--v", "t=1", "-f", "pretty")
    assert done.exit_code == 0, done.stderr
    # y = (2 cos .5, 2 sin .5) = (1.75517, 0.958851), by hand
    assert "output  y: shape (2,) = [1.75517, 0.958851]" in done.stdout
    assert "     v  t: shape () (like t) = 1" in done.stdout
    done = cli("hvp", "sum(x**3)", "-i", "1,2", "--v", "1,0", "-f", "pretty")
    assert "output  y: shape () = 9" in done.stdout and "v  x: shape (2,) (like x) = [1, 0]" in done.stdout


# -- signs of life on a terminal's stderr, never on a pipe --------------------------------------


def run_on_terminal(argv: list[str], tmp_path, typed: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Run jacli with stderr (and, with ``typed``, stdin) on a pseudo-terminal and stdout in a
    file; statuses show at once (JACLI_PROGRESS_DELAY=0). ``typed`` is written once jacli says
    it reads the terminal. Returns the exit code, stdout and all the terminal received."""
    import os
    import pty
    import select

    master, slave = pty.openpty()
    stdout_path = tmp_path / "stdout"
    with open(stdout_path, "wb") as stdout:
        child = run_jacli(*argv, stdout=stdout, stderr=slave, stdin=slave if typed is not None else None,
                          env={"JACLI_PROGRESS_DELAY": "0", "TERM": "xterm", "COLUMNS": "120"})
    os.close(slave)
    received = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 300)  # a safety net: evidence ends the wait
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal: it has exited
                break
            if not data:
                break
            received += data
            if typed is not None and b"Ctrl-D" in received:
                os.write(master, typed)
                typed = None
        child.wait(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    received = re.sub(rb"peak \d+\r\n$", b"", received)  # what the test's wrapper adds
    return child.returncode, stdout_path.read_bytes(), received


def test_symbolic_derivation_shows_a_transient_status_and_json_stays_clean(tmp_path) -> None:
    code, stdout, terminal = run_on_terminal(["jacobian", "sin(x)*x", "-i", "1,2", "-m", "symbolic", "-f", "json"], tmp_path)
    assert code == 0, terminal
    assert "deriving the Jacobian exactly with SymPy".encode() in terminal
    assert terminal.rstrip(b"\r\n").endswith(b"\x1b[2K")  # the last thing done: the line erased
    assert b"\x1b" not in stdout
    # d/dx x sin x = sin x + x cos x, by hand at 1 and 2
    values = strict_loads(stdout.decode())["result"]["x"]["values"]
    assert values[0][0] == pytest.approx(math.sin(1) + math.cos(1)) and values[1][1] == pytest.approx(math.sin(2) + 2 * math.cos(2))


def test_writing_many_numbers_shows_a_status(tmp_path) -> None:
    code, stdout, terminal = run_on_terminal(["jacobian", "x", "-i", "randn:300", "--layout", "dense"], tmp_path)
    assert code == 0, terminal
    assert b"writing 90,000 numbers to standard output" in terminal
    assert np.array_equal(np.loadtxt(io.BytesIO(stdout)), np.eye(300))  # d x / d x, and nothing else on stdout


def test_rows_progress_bar_takes_over_from_the_status(tmp_path) -> None:
    code, stdout, terminal = run_on_terminal(["jacobian", "x**2", "-i", "arange:0,40", "-m", "rows", "--layout", "dense"], tmp_path)
    assert code == 0, terminal
    assert b"computing the Jacobian" in terminal and b"Jacobian rows" in terminal
    assert np.array_equal(np.loadtxt(io.BytesIO(stdout)), np.diag(2.0 * np.arange(40)))  # 2x on the diagonal


def test_reading_the_terminal_says_so(tmp_path) -> None:
    code, stdout, terminal = run_on_terminal(["jacobian", "x**2", "-i", "@-"], tmp_path, typed=b"1,2\n\x04")
    assert code == 0, terminal
    assert b"from standard input (this terminal)" in terminal and b"press Ctrl-D" in terminal
    assert b"computing" not in terminal  # no spinner over what the user types
    assert np.array_equal(np.loadtxt(io.BytesIO(stdout)), [[2.0, 0.0], [0.0, 4.0]])


def test_no_status_on_a_pipe() -> None:
    import subprocess

    child = run_jacli("jacobian", "sin(x)*x", "-i", "randn:90", "-m", "symbolic", "--layout", "dense",
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                      env={"JACLI_PROGRESS_DELAY": "0", "TERM": "xterm"})
    stdout, stderr = child.communicate(timeout=300)
    assert child.returncode == 0
    assert re.fullmatch(rb"peak \d+\n", stderr), stderr  # only what the test's wrapper writes
    assert stdout.startswith(b"# x 90x90\n") and b"\x1b" not in stdout


def _exact_lines(text: str) -> dict[str, str]:
    """The ``# exact LABEL: FORM`` lines of plain output, label → form."""
    found = [re.fullmatch(r"# exact (.+?): (.*)", line) for line in text.splitlines() if line.startswith("# exact")]
    assert all(found), text
    return {match[1]: match[2] for match in found}


def test_plain_symbolic_lines_name_their_entry() -> None:
    """Each exact line says which entry it is (∂y[m]/∂x[i]); its form is SymPy's derivative,
    worked out here: y[m] = m·x[m], so ∂y[m]/∂x[i] = m where m = i, else 0."""
    import sympy as sp

    result = compute_jacobian("x*arange(3)", {"x": torch.tensor([1.0, 2.0, 3.0], dtype=F64)}, symbolic=True,
                              layout="dense")
    lines = _exact_lines(render.to_plain(result))
    xs = sp.symbols("x0:3")
    J = sp.Matrix([m * xs[m] for m in range(3)]).jacobian(xs)
    assert list(lines) == [f"∂y[{m}]/∂x[{i}]" for m in range(3) for i in range(3)]
    assert [sp.sympify(form) for form in lines.values()] == list(J)
    # the classic matrix: its rows and columns name them, several inputs side by side
    polar = compute_jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}, symbolic=True, det=True)
    r, t = sp.symbols("r t")
    J = sp.Matrix([r * sp.cos(t), r * sp.sin(t)]).jacobian([r, t])
    lines = _exact_lines(render.to_plain(polar))
    labels = [f"∂y[{m}]/∂{name}" for m in range(2) for name in "rt"]
    assert list(lines) == labels + ["det J"]
    assert [sp.simplify(sp.sympify(lines[label]) - J[k]) for k, label in enumerate(labels)] == [0] * 4
    assert sp.simplify(sp.sympify(lines["det J"]) - J.det()) == 0


def test_plain_symbolic_lines_of_a_hessian_and_a_diagonal() -> None:
    import sympy as sp

    from jacli.api import compute_hessian

    hessian = compute_hessian("sum(x**3)*y", {"x": torch.tensor([1.0, 2.0], dtype=F64), "y": 3.0}, symbolic=True)
    lines = _exact_lines(render.to_plain(hessian))
    x0, x1, y = sp.symbols("x0 x1 y")
    H = sp.hessian((x0**3 + x1**3) * y, (x0, x1, y))
    name = {x0: "x[0]", x1: "x[1]", y: "y"}
    expected = {}
    for a, b in [("x", "x"), ("x", "y"), ("y", "x"), ("y", "y")]:  # the blocks' order
        for i, u in enumerate((x0, x1, y)):
            for j, v in enumerate((x0, x1, y)):
                if name[u][0] == a and name[v][0] == b:
                    label = f"∂²f/∂{name[u]}²" if u == v else f"∂²f/∂{name[u]}∂{name[v]}"
                    expected[label] = H[i, j].subs({x0: sp.Symbol("x[0]"), x1: sp.Symbol("x[1]")})
    assert list(lines) == list(expected)  # the output is f: an input is called y
    to_symbols = {"x": sp.IndexedBase("x")}
    for label, form in lines.items():
        got = sp.sympify(form, locals=to_symbols).subs({sp.IndexedBase("x")[0]: sp.Symbol("x[0]"),
                                                        sp.IndexedBase("x")[1]: sp.Symbol("x[1]")})
        assert sp.simplify(got - expected[label]) == 0, label
    # an elementwise expression: one line for the diagonal, ∂y[i]/∂x[i] = 2(x+1)
    diagonal = compute_jacobian("(x+1)**2", {"x": torch.tensor([1.0, 2.0], dtype=F64)}, symbolic=True)
    (label, form), = _exact_lines(render.to_plain(diagonal)).items()
    x = sp.Symbol("x")
    assert label == "∂y[i]/∂x[i]" and sp.simplify(sp.sympify(form) - sp.diff((x + 1)**2, x)) == 0
