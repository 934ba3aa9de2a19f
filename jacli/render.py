"""Result → text: ``pretty`` (rich tables for people), ``plain`` (numbers for awk and
numpy.loadtxt) and ``json`` (one strict JSON object for scripts).

Rendering only reads a ``Result``; it computes nothing. User text (the expression, names) reaches
rich as ``Text`` objects, never as markup.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any, Iterator, Sequence

import numpy as np
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

FORMATS = ("pretty", "plain", "json")

DEFAULT_PRECISION = 6
"""Significant digits in the pretty view; plain and JSON print every digit unless told."""

ROW_EDGE, COLUMN_EDGE, BLOCK_EDGE, VECTOR_WIDTH = 8, 5, 4, 10
"""Summaries show this many rows, columns or blocks at each end (``--full`` shows all)."""

METHOD_NAMES = {
    "reverse": "reverse mode (torch.func.jacrev)",
    "forward": "forward mode (torch.func.jacfwd)",
    "rows": "rows (one torch.autograd.grad per output element)",
    "grad": "torch.autograd.grad(y, x, v)",
    "backward": "y.backward(v), then x.grad",
}


# -- shared helpers -----------------------------------------------------------------------------


def shape_text(shape: Sequence[int]) -> str:
    """``(2, 3)`` as jacli writes shapes: ``2x3``; a 0-dimensional shape is ``scalar``."""
    return "x".join(str(n) for n in shape) if len(shape) else "scalar"


def _numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _is_float32(array: np.ndarray) -> bool:
    return array.dtype == np.float32


def _shortest(value: float, float32: bool) -> float:
    """The shortest decimal that reads back as the same number in the tensor's own dtype."""
    return float(str(np.float32(value))) if float32 else float(value)


def format_number(value: float, precision: int | None, float32: bool = False) -> str:
    """Every digit needed to read the number back (default), or ``precision`` significant ones."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if precision is None:
        return repr(_shortest(value, float32))
    text = f"{value:.{precision}g}"
    return "0" if text in ("-0", "0") else text


# -- json ---------------------------------------------------------------------------------------


def _json_values(tensor: Any) -> Any:
    array = _numpy(tensor)
    float32 = _is_float32(array)

    def convert(item: Any) -> Any:
        if isinstance(item, list):
            return [convert(i) for i in item]
        if math.isnan(item):
            return "nan"
        if math.isinf(item):
            return "inf" if item > 0 else "-inf"
        return _shortest(item, float32)

    return convert(array.tolist())


def _json_tensor(tensor: Any, with_values: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"shape": list(tensor.shape)}
    if with_values:
        entry["values"] = _json_values(tensor)
    return entry


def to_json(result: Any) -> str:
    """One strict JSON object: NaN and infinities are the strings "nan", "inf", "-inf"."""
    document = {
        "command": result.command,
        "expression": result.expression,
        "method": result.method,
        "device": result.device,
        "dtype": result.dtype,
        "inputs": {name: _json_tensor(t, with_values=False) for name, t in result.inputs.items()},
        "output": _json_tensor(result.output),
        "result": {name: _json_tensor(t) for name, t in result.values.items()},
    }
    return json.dumps(document, allow_nan=False) + "\n"


# -- plain --------------------------------------------------------------------------------------


def to_plain(result: Any, precision: int | None = None) -> str:
    """A ``# name shape`` line per result, then its numbers: one row per line, space-separated.

    Tensors of three or more axes are written as rows along the last axis (what numpy.savetxt
    would write for ``t.reshape(-1, t.shape[-1])``).
    """
    lines: list[str] = []
    for name, tensor in result.values.items():
        array = _numpy(tensor)
        float32 = _is_float32(array)
        lines.append(f"# {name} {shape_text(array.shape)}")
        rows = array.reshape(1, -1) if array.ndim <= 1 else array.reshape(-1, array.shape[-1])
        for row in rows:
            lines.append(" ".join(format_number(float(v), precision, float32) for v in row))
    return "\n".join(lines) + "\n"


# -- pretty -------------------------------------------------------------------------------------


def print_pretty(result: Any, console: Console, precision: int | None = None, full: bool = False) -> None:
    """The header (expression, inputs, method, device), then each result as tables."""
    digits = DEFAULT_PRECISION if precision is None else precision
    console.print(_header(result))
    if result.command == "jacobian" and all(result.inputs[n].dim() == 0 for n in result.values):
        console.print(_classic_matrix(result, digits))
        return
    for name, tensor in result.values.items():
        console.print()
        console.print(_title(result, name, tensor))
        console.print(_tensor_view(tensor, digits, full, "J" if result.command == "jacobian" else f"{name}.grad"))


def _header(result: Any) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", justify="right")
    grid.add_column()
    grid.add_row(result.command, Text(result.expression, style="bold"))
    for name, tensor in result.inputs.items():
        mark = "" if name in result.wrt else "  (held constant)"
        grid.add_row("input", Text(f"{name}: shape {_shape_tuple(tensor.shape)}{mark}"))
    grid.add_row("output", Text(f"shape {_shape_tuple(result.output.shape)}"))
    if result.v is not None:
        grid.add_row("v", Text(f"shape {_shape_tuple(result.v.shape)} (like the output)"))
    grid.add_row("method", Text(METHOD_NAMES.get(result.method, result.method)))
    grid.add_row("on", Text(f"{result.device}, {result.dtype}"))
    return grid


def _shape_tuple(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _title(result: Any, name: str, tensor: Any) -> Text:
    shape = _shape_tuple(tensor.shape)
    if result.command == "jacobian":
        return Text.assemble(
            (f"∂y/∂{name}", "bold"),
            f"  shape {shape} = output {_shape_tuple(result.output.shape)} + {name} "
            f"{_shape_tuple(result.inputs[name].shape)}",
        )
    return Text.assemble((f"{name}.grad = vᵀ·∂y/∂{name}", "bold"), f"  shape {shape}, like {name}")


def _cell(value: float, digits: int) -> Text:
    text = format_number(value, digits)
    if text in ("nan", "inf", "-inf"):
        return Text(text, style="red")
    return Text(text, style="dim" if value == 0 else "")


def _index_label(index: Sequence[int]) -> str:
    return ", ".join(map(str, index))


def _edges(count: int, edge: int, full: bool) -> list[int | None]:
    """Indices to show: all, or ``edge`` at each end with None standing for the gap."""
    if full or count <= 2 * edge + 1:
        return list(range(count))
    return [*range(edge), None, *range(count - edge, count)]


def _classic_matrix(result: Any, digits: int) -> Table:
    """All inputs scalar: the m×n Jacobian matrix, one labelled column per variable."""
    names = list(result.values)
    table = Table(title=Text("Jacobian: ∂y/∂(" + ", ".join(names) + ")"), title_justify="left")
    table.add_column("", style="bold")
    for name in names:
        table.add_column(Text(f"∂/∂{name}"), justify="right")
    output_shape = tuple(result.output.shape)
    arrays = {name: _numpy(t).reshape(-1) for name, t in result.values.items()}
    for flat, index in enumerate(itertools.product(*(range(n) for n in output_shape))):
        label = f"y[{_index_label(index)}]" if output_shape else "y"
        table.add_row(Text(label), *(_cell(float(arrays[n][flat]), digits) for n in names))
    return table


def _tensor_view(tensor: Any, digits: int, full: bool, label: str) -> RenderableType:
    array = _numpy(tensor)
    if array.ndim == 0:
        return _cell(float(array), digits)
    if array.ndim == 1:
        return _vector_table(array, digits, full)
    if array.ndim == 2:
        return _matrix_table(array, digits, full)
    return Group(*_blocks(array, digits, full, label))


def _vector_table(array: np.ndarray, digits: int, full: bool) -> Table:
    """A vector in rows of ``VECTOR_WIDTH``: column headers are offsets, row labels start indices."""
    width = min(len(array), VECTOR_WIDTH)
    table = Table(show_edge=False, pad_edge=False)
    wrapped = len(array) > width
    if wrapped:
        table.add_column("", style="bold", justify="right")
    for offset in range(width):
        table.add_column(f"+{offset}" if wrapped else str(offset), justify="right", style="")
    rows = math.ceil(len(array) / width)
    for row in _edges(rows, 3, full):
        if row is None:
            table.add_row(*(["⋮"] * (width + wrapped)))
            continue
        start = row * width
        cells = [_cell(float(v), digits) for v in array[start : start + width]]
        cells += [Text("")] * (width - len(cells))
        table.add_row(*([Text(str(start))] if wrapped else []), *cells)
    return table


def _matrix_table(array: np.ndarray, digits: int, full: bool) -> Table:
    rows, columns = array.shape
    column_indices = _edges(columns, COLUMN_EDGE, full)
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("", style="bold", justify="right")
    for j in column_indices:
        table.add_column("…" if j is None else str(j), justify="right")
    for i in _edges(rows, ROW_EDGE, full):
        if i is None:
            table.add_row(*(["⋮"] * (len(column_indices) + 1)))
            continue
        cells = [Text("…") if j is None else _cell(float(array[i, j]), digits) for j in column_indices]
        table.add_row(Text(str(i)), *cells)
    return table


def _blocks(array: np.ndarray, digits: int, full: bool, label: str) -> Iterator[RenderableType]:
    """3-D and higher: one labelled 2-D table per index of the leading axes."""
    leading = array.shape[:-2]
    indices = list(itertools.product(*(range(n) for n in leading)))
    for position in _edges(len(indices), BLOCK_EDGE, full):
        if position is None:
            hidden = len(indices) - 2 * BLOCK_EDGE
            yield Text(f"… {hidden} more blocks (--full shows all)", style="dim")
            continue
        index = indices[position]
        yield Text(f"{label}[{_index_label(index)}, :, :]", style="bold")
        yield _matrix_table(array[index], digits, full)
