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
    "symbolic": "symbolic (SymPy's exact derivative, evaluated on torch)",
    "grad": "torch.autograd.grad(y, x, v)",
    "backward": "y.backward(v), then x.grad",
    ("grad", "reverse"): "reverse mode (torch.autograd.grad, as y.backward())",
    ("grad", "forward"): "forward mode (torch.func.jacfwd)",
    ("hessian", "forward"): "forward-over-reverse (torch.func.jacfwd of jacrev)",
    ("hessian", "reverse"): "reverse-over-reverse (torch.func.jacrev of jacrev)",
    ("jvp", "forward"): "forward mode (torch.func.jvp)",
    ("hvp", "forward-over-reverse"): "forward-over-reverse (torch.func.jvp of torch.func.grad)",
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
    if result.command == "check":
        return json.dumps(_check_document(result), allow_nan=False) + "\n"
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
    if result.symbolic is not None:
        from jacli.symbolic import to_strings

        document["symbolic"] = {name: to_strings(entries) for name, entries in result.symbolic.items()}
    if result.det is not None:
        document["det"] = _json_values(result.det)
        if result.det_symbolic is not None:
            document["det_symbolic"] = str(result.det_symbolic)
    return json.dumps(document, allow_nan=False) + "\n"


def _json_float(value: float) -> Any:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _check_document(report: Any) -> dict[str, Any]:
    return {
        "command": "check",
        "expression": report.expression,
        "inputs": {name: {"shape": list(shape)} for name, shape in report.inputs.items()},
        "output": {"shape": list(report.output_shape)},
        "reference": report.reference,
        "rtol": report.rtol,
        "atol": report.atol,
        "ok": report.ok,
        "verdict": report.verdict,
        "kinks": report.kinks,
        "singular": report.singular,
        "methods": [
            {"method": m.method, "max_abs": _json_float(m.max_abs), "max_rel": _json_float(m.max_rel),
             "ok": m.ok, "skipped": m.skipped, "note": m.note, "nonfinite": m.nonfinite,
             "excused": m.excused}
            for m in report.methods
        ],
    }


# -- files --------------------------------------------------------------------------------------

FILE_SUFFIXES = (".json", ".txt", ".npy")


def check_file_suffix(path: Any) -> None:
    """Refuse --output names whose format jacli cannot tell, before any work is done."""
    from jacli.errors import InputError

    suffix = str(path)[str(path).rfind("."):].lower() if "." in str(path) else ""
    if suffix not in FILE_SUFFIXES:
        raise InputError(f"--output {path}: cannot tell the format; use a name ending in {', '.join(FILE_SUFFIXES)}")


def to_bytes(result: Any, suffix: str, precision: int | None = None) -> bytes:
    """The file contents for --output: JSON, plain text, or one tensor as .npy."""
    if suffix == ".json":
        return to_json(result).encode("utf-8")
    if suffix == ".txt":
        return to_plain(result, precision).encode("utf-8")
    import io

    from jacli.errors import InputError

    if result.command == "check" or len(result.values) != 1:
        raise InputError(
            "--output .npy holds one tensor, but this result has "
            f"{'a table' if result.command == 'check' else len(result.values)}; "
            "use .json or .txt, or pick one input with --wrt"
        )
    buffer = io.BytesIO()
    np.save(buffer, _numpy(next(iter(result.values.values()))), allow_pickle=False)
    return buffer.getvalue()


# -- plain --------------------------------------------------------------------------------------


def to_plain(result: Any, precision: int | None = None) -> str:
    """A ``# name shape`` line per result, then its numbers: one row per line, space-separated.

    One rule for every result, so the ``# name shape`` line alone says how the numbers are laid
    out: rows along the last axis, what ``numpy.savetxt`` writes for
    ``t.reshape(-1, t.shape[-1])``. A scalar is one number, a vector one line, a matrix one line
    per row, and a tensor of shape (a, b, ..., n) has a·b·... lines of n numbers, in C order.
    ``numpy.loadtxt(...).reshape(shape)`` restores it; a Jacobian block of shape
    output.shape + input.shape becomes the classic matrix with ``.reshape(output.numel(), -1)``.
    """
    if result.command == "check":
        return _check_plain(result)
    lines: list[str] = []
    for name, tensor in result.values.items():
        array = _numpy(tensor)
        lines.append(f"# {name} {shape_text(array.shape)}")
        lines += _plain_rows(_plain_matrix(array), precision)
        if result.symbolic is not None and name in result.symbolic:
            lines += [f"# exact: {line}" for line in _symbolic_lines(result, name)]
    if result.det is not None:
        lines.append("# det scalar")
        lines += _plain_rows(_numpy(result.det).reshape(1, 1), precision)
        if result.det_symbolic is not None:
            lines.append(f"# exact: {result.det_symbolic}")
    return "\n".join(lines) + "\n"


def _plain_matrix(array: np.ndarray) -> np.ndarray:
    """The rows a tensor is written in (see ``to_plain``): its last axis along each line."""
    if array.ndim <= 1:
        return array.reshape(1 if array.size else 0, array.size)
    return array.reshape(math.prod(array.shape[:-1]), array.shape[-1])


def _plain_rows(matrix: np.ndarray, precision: int | None) -> list[str]:
    float32 = _is_float32(matrix)
    return [" ".join(format_number(float(v), precision, float32) for v in row) for row in matrix]


def _symbolic_lines(result: Any, name: str) -> list[str]:
    """The exact derivative in one line per entry (or the diagonal, for elementwise expressions)."""
    if result.diagonal is not None and name in result.diagonal:
        return [f"diagonal {result.diagonal[name]}"]
    entries = result.symbolic[name]
    return [str(e) for e in entries.reshape(-1)]


CHECK_VERDICTS = {
    "agree": "all agree",
    "mismatch": "MISMATCH: some method differs beyond tolerance",
    "singular": "NOT CONFIRMED: the reference is not finite here, a singularity of the derivative; "
    "no method can be checked at those entries",
}


def _check_plain(report: Any) -> str:
    lines = [f"# check {report.expression} reference {report.reference} rtol {report.rtol} atol {report.atol}"]
    lines += [f"# kink: {k}" for k in report.kinks]
    lines += [f"# singular: {s}" for s in report.singular]
    lines.append("# method max_abs max_rel ok")
    for m in report.methods:
        status = "skipped" if m.skipped else ("ok" if m.ok else "FAIL")
        name = m.method.replace(" ", "_")
        lines.append(f"{name} {format_number(m.max_abs, None)} {format_number(m.max_rel, None)} {status}")
        if m.note:
            lines.append(f"# {name}: {m.note}")
    lines.append(f"# {CHECK_VERDICTS[report.verdict]}")
    return "\n".join(lines) + "\n"


# -- pretty -------------------------------------------------------------------------------------


def print_pretty(result: Any, console: Console, precision: int | None = None, full: bool = False) -> None:
    """The header (expression, inputs, method, device), then each result as tables."""
    if result.command == "check":
        _print_check(result, console)
        return
    digits = DEFAULT_PRECISION if precision is None else precision
    console.print(_header(result))
    if result.symbolic is not None:
        console.print()
        console.print(_symbolic_view(result))
    console.print()
    if result.command in ("jacobian", "hessian") and all(t.dim() == 0 for t in result.inputs.values()):
        console.print(_classic_matrix(result, digits))
    else:
        for index, (name, tensor) in enumerate(result.values.items()):
            if index:
                console.print()
            console.print(_title(result, name, tensor))
            console.print(_tensor_view(tensor, digits, full, _block_label(result, name)))
    if result.det is not None:
        console.print()
        console.print(Text.assemble(("det J", "bold"), f" = {format_number(float(result.det), digits)}"))
        if result.det_symbolic is not None:
            console.print(Text.assemble(("det J", "bold"), " = ", _pretty_sympy(result.det_symbolic)))


def _header(result: Any) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", justify="right")
    grid.add_column()
    grid.add_row(result.command, Text(result.expression, style="bold"))
    for name, tensor in result.inputs.items():
        mark = "" if name in result.wrt else "  (held constant)"
        grid.add_row("input", Text(f"{name}: shape {_shape_tuple(tensor.shape)}{mark}"))
    grid.add_row("output", Text(f"shape {_shape_tuple(result.output.shape)}"))
    if isinstance(result.v, dict):
        for name, direction in result.v.items():
            grid.add_row("v", Text(f"{name}: shape {_shape_tuple(direction.shape)} (like {name})"))
    elif result.v is not None:
        grid.add_row("v", Text(f"shape {_shape_tuple(result.v.shape)} (like the output)"))
    method = METHOD_NAMES.get((result.command, result.method)) or METHOD_NAMES.get(result.method, result.method)
    grid.add_row("method", Text(method))
    grid.add_row("on", Text(f"{result.device}, {result.dtype}"))
    return grid


def _shape_tuple(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _title(result: Any, name: str, tensor: Any) -> Text:
    shape = _shape_tuple(tensor.shape)
    command = result.command
    if command == "jacobian":
        return Text.assemble(
            (f"∂y/∂{name}", "bold"),
            f"  shape {shape} = output {_shape_tuple(result.output.shape)} + {name} "
            f"{_shape_tuple(result.inputs[name].shape)}",
        )
    if command == "hessian":
        a, b = name.split(",")
        return Text.assemble(
            (f"∂²y/∂{a}∂{b}" if a != b else f"∂²y/∂{a}²", "bold"),
            f"  shape {shape} = {a} {_shape_tuple(result.inputs[a].shape)} + {b} "
            f"{_shape_tuple(result.inputs[b].shape)}",
        )
    if command == "jvp":
        moved = " + ".join(f"∂y/∂{n}·v_{n}" for n in result.v) if result.v else "0"
        return Text.assemble(("J·v", "bold"), f" = {moved}  shape {shape}, like the output")
    if command == "hvp":
        return Text.assemble((f"(H·v) for {name}", "bold"), f"  shape {shape}, like {name}")
    if command == "grad":
        return Text.assemble((f"{name}.grad = ∂y/∂{name}", "bold"), f"  shape {shape}, like {name}")
    return Text.assemble((f"{name}.grad = vᵀ·∂y/∂{name}", "bold"), f"  shape {shape}, like {name}")


def _block_label(result: Any, name: str) -> str:
    return {"jacobian": "J", "hessian": f"H[{name}]", "jvp": "Jv", "hvp": f"Hv[{name}]"}.get(
        result.command, f"{name}.grad"
    )


def _pretty_sympy(expression: Any) -> Text:
    import sympy as sp

    return Text(sp.pretty(expression, use_unicode=True))


def _symbolic_view(result: Any) -> RenderableType:
    """SymPy's exact derivative: the diagonal of an elementwise Jacobian, the classic matrix
    for scalar inputs, else each block (small ones in full)."""
    import sympy as sp

    parts: list[RenderableType] = [Text("exact derivative (SymPy)", style="bold cyan")]
    scalars = all(t.dim() == 0 for t in result.inputs.values())
    if result.diagonal is not None:
        for name, derivative in result.diagonal.items():
            parts.append(Text.assemble(
                f"∂y/∂{name} is diagonal: ∂y[i]/∂{name}[i] = ", _pretty_sympy(derivative)
            ))
    elif result.command == "jacobian" and scalars:
        columns = [result.symbolic[name].reshape(-1, 1) for name in result.symbolic]
        parts.append(_pretty_sympy(sp.Matrix(np.concatenate(columns, axis=1).tolist())))
    elif result.command == "hessian" and scalars:
        names = list(result.inputs)
        rows = [[result.symbolic[f"{a},{b}"][()] for b in names] for a in names]
        parts.append(_pretty_sympy(sp.Matrix(rows)))
    else:
        for key, entries in result.symbolic.items():
            label = _block_label(result, key) if result.command != "grad" else f"∂y/∂{key}"
            if entries.size > 64:
                parts.append(Text(f"{label}: {entries.size} entries (--format json lists them)"))
            elif entries.ndim == 0:
                parts.append(Text.assemble(f"{label} = ", _pretty_sympy(entries[()])))
            elif entries.ndim <= 2:
                matrix = entries.reshape(entries.shape[0], -1) if entries.ndim == 2 else entries.reshape(1, -1)
                parts.append(Text.assemble(f"{label} = ", "\n", _pretty_sympy(sp.Matrix(matrix.tolist()))))
            else:
                parts.append(Text.assemble(f"{label} = ", _pretty_sympy(sp.Array(entries.tolist()))))
    return Group(*parts)


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
    """All inputs scalar: the m×n Jacobian (or n×n Hessian) matrix, one labelled column per
    variable."""
    if result.command == "hessian":
        names = list(result.inputs)
        title = "Hessian: ∂²y/∂(" + ", ".join(names) + ")²"
        rows = [(Text(f"∂/∂{a}"), [float(_numpy(result.values[f"{a},{b}"])) for b in names]) for a in names]
    else:
        names = list(result.values)
        title = "Jacobian: ∂y/∂(" + ", ".join(names) + ")"
        output_shape = tuple(result.output.shape)
        arrays = {name: _numpy(t).reshape(-1) for name, t in result.values.items()}
        rows = [
            (Text(f"y[{_index_label(index)}]" if output_shape else "y"), [float(arrays[n][flat]) for n in names])
            for flat, index in enumerate(itertools.product(*(range(n) for n in output_shape)))
        ]
    table = Table(title=Text(title), title_justify="left")
    table.add_column("", style="bold")
    for name in names:
        table.add_column(Text(f"∂/∂{name}"), justify="right")
    for label, values in rows:
        table.add_row(label, *(_cell(v, digits) for v in values))
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


def _print_check(report: Any, console: Console) -> None:
    """The check table: each method's largest differences from the reference, and the verdict."""
    console.print(Text.assemble(("check  ", "bold cyan"), (report.expression, "bold")))
    shapes = ", ".join(f"{n}: {_shape_tuple(s)}" for n, s in report.inputs.items())
    console.print(Text(f"inputs {shapes}; output {_shape_tuple(report.output_shape)}; float64 on cpu"))
    console.print(Text(f"reference: {report.reference}; tolerance |a - r| ≤ {report.atol:g} + {report.rtol:g}·|r|"))
    for kink in report.kinks:
        console.print(Text(f"kink: {kink}; the derivative is not defined there (torch uses 0, or 1/2 at ties)", style="yellow"))
    for singular in report.singular:
        console.print(Text(f"singular: {singular}", style="bold red"))
    table = Table()
    table.add_column("method")
    table.add_column("max abs diff", justify="right")
    table.add_column("max rel diff", justify="right")
    table.add_column("result")
    for m in report.methods:
        if m.skipped:
            table.add_row(m.method, "", "", Text(m.note, style="dim"))
            continue
        verdict = Text("agrees" if m.ok else "DIFFERS", style="green" if m.ok else "bold red")
        if m.note:
            verdict.append(f" ({m.note})", style="yellow")
        table.add_row(m.method, _check_number(m.max_abs), _check_number(m.max_rel), verdict)
    console.print(table)
    ok = report.verdict == "agree"
    text = "all methods agree" if ok else CHECK_VERDICTS[report.verdict]
    console.print(Text(text, style="bold green" if ok else "bold red"))


def _check_number(value: float) -> str:
    """A difference in the check table; NaN (no entry to compare) as a dash."""
    return "–" if math.isnan(value) else f"{value:.3g}"
