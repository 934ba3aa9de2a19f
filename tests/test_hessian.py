"""The Hessian as one n × n matrix over the stacked inputs (engine, result, report, writers),
against SymPy's exact Hessian, torch.func.hessian of the flattened function, the per-block
writers, and a measured peak memory for many scalar inputs."""

from __future__ import annotations

import io
import json
import math
import warnings

import numpy as np
import pytest
import sympy as sp
import torch
from memory import MB, jacli as measured_jacli
from rich.console import Console

import jacli
from jacli import render
from jacli.engine import autodiff
from jacli.errors import JacliWarning
from jacli.result import HessianBlocks

F64 = torch.float64


def _chain(k: int) -> tuple[str, list[sp.Symbol], sp.Expr]:
    """A formula of k scalars whose Hessian is neither diagonal nor dense, as text and in SymPy."""
    symbols = sp.symbols(f"x0:{k}", real=True)
    exact = sum(sp.sin(a * b) for a, b in zip(symbols, symbols[1:])) + symbols[0] * symbols[-1] ** 2
    exact += sp.exp(symbols[k // 2]) * symbols[1]
    text = "+".join(f"sin(x{i}*x{i + 1})" for i in range(k - 1)) + f" + x0*x{k - 1}**2 + exp(x{k // 2})*x1"
    return text, list(symbols), exact


@pytest.mark.parametrize("method", ["auto", "reverse", "symbolic"])
def test_many_scalars_give_sympys_exact_hessian_as_one_matrix(method) -> None:
    k = 12
    text, symbols, exact = _chain(k)
    point = {s: 0.1 + 0.07 * i for i, s in enumerate(symbols)}
    result = jacli.compute_hessian(text, {str(s): v for s, v in point.items()}, method=method)
    expected = torch.tensor(np.array(sp.hessian(exact, symbols).subs(point).evalf(), dtype=float), dtype=F64)
    assert result.values.shape == (k, k)
    torch.testing.assert_close(result.values, expected, rtol=1e-12, atol=1e-12)
    # blocks are views into the one matrix, keyed by pairs of names in wrt order
    block = result.blocks["x3", "x4"]
    assert block.shape == () and float(block) == float(expected[3, 4])
    assert block.untyped_storage().data_ptr() == result.values.untyped_storage().data_ptr()
    assert list(result.blocks)[:3] == [("x0", "x0"), ("x0", "x1"), ("x0", "x2")] and len(result.blocks) == k * k


def test_mixed_shapes_are_the_hessian_of_the_flattened_concatenation() -> None:
    g = torch.Generator().manual_seed(7)
    w = torch.rand(2, 3, dtype=F64, generator=g)
    a = torch.rand((), dtype=F64, generator=g)
    v = torch.rand(4, dtype=F64, generator=g)
    f = lambda w, a, v: torch.tanh(w.sum(0) * a).sum() * v.prod() + (w**2).sum() * a**3  # noqa: E731
    stacked = torch.cat([w.reshape(-1), a.reshape(1), v])

    def of_stacked(z: torch.Tensor) -> torch.Tensor:
        return f(z[:6].reshape(2, 3), z[6], z[7:])

    reference = torch.func.hessian(of_stacked)(stacked)
    for method, chunk in (("forward", None), ("reverse", None), ("reverse", 3)):
        output, matrix = autodiff.hessian_matrix(f, (w, a, v), (0, 1, 2), method, chunk_size=chunk)
        torch.testing.assert_close(output, f(w, a, v))
        torch.testing.assert_close(matrix, reference, rtol=1e-12, atol=1e-12)
    # only some inputs, in the order asked: rows and columns of v, then w
    _, matrix = autodiff.hessian_matrix(f, (w, a, v), (2, 0), "forward")
    order = torch.cat([torch.arange(7, 11), torch.arange(0, 6)])
    torch.testing.assert_close(matrix, reference[order][:, order], rtol=1e-12, atol=1e-12)


def test_blocks_mapping_shapes_keys_and_positions() -> None:
    matrix = torch.arange(36, dtype=F64).reshape(6, 6)
    blocks = HessianBlocks(matrix, [("w", (2, 2)), ("a", ()), ("v", (1,))])
    assert list(blocks) == [(p, q) for p in "wav" for q in "wav"]
    assert blocks["w", "a"].shape == (2, 2) and blocks["a", "w"].shape == (2, 2) and blocks["a", "a"].shape == ()
    assert blocks["w", "v"].tolist() == [[[5.0], [11.0]], [[17.0], [23.0]]]  # rows 0-3, column 5
    assert float(blocks["a", "a"]) == 28.0 and ("a", "v") in blocks and ("a", "q") not in blocks
    with pytest.raises(KeyError):
        blocks["a", "q"]
    assert blocks.locate(3, 4) == (("w", "a"), (1, 1)) and blocks.locate(4, 5) == (("a", "v"), (0,))


def test_the_nan_report_is_one_warning_for_the_whole_matrix() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = jacli.compute_hessian("sqrt(a)*b + sum(x**2)*c", {"a": -1.0, "b": 2.0, "x": [1.0, 2.0], "c": 3.0})
    messages = [str(w.message) for w in caught if issubclass(w.category, JacliWarning) and "Hessian" in str(w.message)]
    bad = ~torch.isfinite(result.values)
    rows, columns = bad.nonzero(as_tuple=True)
    assert len(messages) == 1 and int(bad.sum()) > 0
    first = result.blocks.locate(int(rows[0]), int(columns[0]))
    assert messages[0].startswith(f"the Hessian holds {int(bad.sum())} NaN or infinite number")
    assert f" at {first[0][0]},{first[0][1]}" in messages[0]
    assert math.isfinite(float(result.blocks["c", "c"])) and float(result.blocks["x", "c"][1]) == 4.0


def _per_block_plain(result, precision) -> str:
    """The generic writer, block by block: what plain_lines gives any other result."""
    pieces = []
    for (a, b), block in result.blocks.items():
        array = block.numpy()
        pieces.append(f"# {a},{b} {render.shape_text(array.shape)}\n")
        pieces += render._plain_pieces(render._plain_matrix(array), precision)
    return "".join(pieces)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("precision", [None, 3])
@pytest.mark.parametrize(
    "expr,inputs",
    [
        ("(a+b+c)**2*sqrt(a) + exp(b)*c", {"a": -1.0, "b": 0.3, "c": 1e-7}),  # all scalars, some NaN
        ("sum(x**3)*a + a*b**2", {"x": [1.0, -2.0, 0.5], "a": 0.25, "b": 3.0}),  # mixed shapes
        ("sum(w @ x)**2", {"w": [[1.0, 2.0], [3.0, 4.0]], "x": [0.5, -1.0]}),  # no scalars
    ],
)
def test_writers_from_the_matrix_equal_the_per_block_writers(expr, inputs, dtype, precision) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JacliWarning)
        result = jacli.compute_hessian(expr, inputs, dtype=dtype, matrix=False)  # the blocks, not the matrix
    assert render.to_plain(result, precision) == _per_block_plain(result, precision)
    document = json.loads(render.to_json(result), parse_constant=lambda name: pytest.fail(name))
    per_block = {f"{a},{b}": json.loads("".join(render._json_pieces(render._json_tensor(block))))
                 for (a, b), block in result.blocks.items()}
    assert document["result"] == per_block
    assert list(document)[-1] == "result" and document["command"] == "hessian"


def test_json_keeps_the_symbolic_key_after_the_blocks() -> None:
    result = jacli.compute_hessian("a*b**2", {"a": 1.0, "b": 2.0}, symbolic=True, matrix=False)
    document = json.loads(render.to_json(result))
    assert list(document).index("symbolic") < list(document).index("result")  # small keys first
    assert document["result"]["a,b"] == {"shape": [], "values": 4.0} and document["symbolic"]["a,b"] == "2*b"


def test_pretty_summarizes_many_scalars_and_full_shows_all() -> None:
    k = 40
    text, symbols, _ = _chain(k)
    result = jacli.compute_hessian(text, {str(s): 0.1 for s in symbols})

    def shown(full: bool) -> str:
        console = Console(file=io.StringIO(), width=400, color_system=None)
        render.print_pretty(result, console, full=full)
        return console.file.getvalue()

    summary, everything = shown(False), shown(True)
    assert "… 24 of 40 rows, 30 of 40 columns not shown; --full shows all" in summary
    assert "∂/∂x20 " not in summary and "∂/∂x20 " in everything and "--full" not in everything
    assert "x0, x1, x2, x3, x4, …, x35, x36, x37, x38, x39" in summary  # the title's names, summarized
    # the summary's first row holds the matrix's first five and last five entries of row 0
    row = next(line for line in summary.splitlines() if line.startswith(" 0 │"))
    cells = [float(c) for c in row.split("│")[1:] if c.strip() != "…"]
    expected = [float(result.values[0, j]) for j in [*range(5), *range(k - 5, k)]]
    assert cells == pytest.approx(expected, rel=1e-5, abs=1e-12)


def _sum_of_scalars(k: int) -> list[str]:
    names = [f"x{i}" for i in range(k)]
    argv = ["hessian", "(" + "+".join(names) + ")**2"]
    for name in names:
        argv += ["-i", f"{name}=0.1"]
    return argv


def test_many_scalar_inputs_stay_within_the_budget() -> None:
    # 800 scalars: 640,000 blocks, a 5 MB matrix. Held as one tensor per block with a NaN report
    # each, this took 1.09 GB (and 60 s); now the peak is the tiny Hessian's plus at most the budget.
    small = measured_jacli(*_sum_of_scalars(2), "--max-memory", "100MB", "-f", "plain")
    big = measured_jacli(*_sum_of_scalars(800), "--max-memory", "100MB", "-f", "plain")
    assert small.returncode == 0 and big.returncode == 0, big.stderr
    assert big.peak <= small.peak + 100 * MB, (big.peak / MB, small.peak / MB)
    lines = big.stdout.decode().splitlines()  # the classic matrix: all inputs are scalars
    assert len(lines) == 1 + 800 and lines[0].startswith("# matrix 800x800; rows x0, x1, x2, x3, … 793 more …")
    assert all(line.split() == ["2.0"] * 800 for line in lines[1:])  # d²(Σx)²/dx_i dx_j = 2


def test_pretty_summarizes_many_blocks_and_full_shows_all() -> None:
    # five vector inputs: 25 blocks, 8 shown at each end, each one made only when shown
    inputs = {f"v{i}": [0.5 + i, -1.0] for i in range(5)}
    result = jacli.compute_hessian("sum(" + " + ".join(f"v{i}" for i in range(5)) + ")**2", inputs)

    def shown(full: bool) -> str:
        console = Console(file=io.StringIO(), width=200, color_system=None)
        render.print_pretty(result, console, full=full)
        return console.file.getvalue()

    summary, everything = shown(False), shown(True)
    assert "… 9 more blocks (--full shows all)" in summary and "more blocks" not in everything
    titles = [line.split()[0] for line in everything.splitlines() if line.startswith("∂²")]
    assert len(titles) == 25 and sum(line.startswith("∂²") for line in summary.splitlines()) == 16
