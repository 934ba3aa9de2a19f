"""Result → text: ``pretty`` (rich tables for people), ``plain`` (numbers for awk and
numpy.loadtxt) and ``json`` (one strict JSON object for scripts).

Rendering only reads a typed result (``jacli.result``) or a ``CheckReport``; it computes
nothing. What differs between commands (titles, labels) is looked up in ``VOCABULARY``. User text (the expression, names) reaches
rich as ``Text`` objects, never as markup.

A Jacobian block in a structured layout (``diagonal``, ``sparse``) is written from what it
stores, in time and memory proportional to its nonzeros; it is never expanded with
``to_dense()``. Dense blocks are written exactly as before (no ``layout`` key or word).
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any, Iterator, Sequence

import numpy as np
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from jacli.result import Block, CheckReport, Key, key_text

DEFAULT_PRECISION = 6
"""Significant digits in the pretty view; plain and JSON print every digit unless told."""

ROW_EDGE, COLUMN_EDGE, BLOCK_EDGE, VECTOR_WIDTH = 8, 5, 4, 10
"""Summaries show this many rows, columns or blocks at each end (``--full`` shows all)."""

METHOD_NAMES = {
    "reverse": "reverse mode (torch.func.jacrev)",
    "forward": "forward mode (torch.func.jacfwd)",
    "rows": "rows (one torch.autograd.grad per output element)",
    "symbolic": "symbolic (SymPy's exact derivative, evaluated on torch)",
    "compressed": "compressed (one pass per colour of the formula's sparsity pattern)",
    "grad": "torch.autograd.grad({y}, {xs}, v)",
    "backward": "{y}.backward(v), then {grads}",
    ("grad", "reverse"): "reverse mode (torch.autograd.grad, as {y}.backward())",
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
    return tensor if isinstance(tensor, np.ndarray) else tensor.detach().cpu().numpy()


def _is_float32(array: np.ndarray) -> bool:
    return array.dtype == np.float32


def _shortest(value: float, float32: bool) -> float:
    """The shortest decimal that reads back as the same number in the tensor's own dtype."""
    return float(str(np.float32(value))) if float32 else float(value)


def _items(result: Any) -> Iterator[tuple[Key, Any]]:
    """``result.tensors()``, except that a Jacobian block in a structured layout comes as the
    block itself, for the writers that keep it structured."""
    if result.command != "jacobian":
        yield from result.tensors()
        return
    for name, block in result.blocks.items():
        yield name, block.to_dense() if block.layout == "dense" else block


def _structured(item: Any) -> bool:
    return isinstance(item, Block) and item.layout != "dense"


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


def _json_item(item: Any) -> dict[str, Any]:
    """A tensor as ``_json_tensor``; a structured block as its layout, shape and what it stores.

    ``diagonal``: ``values`` nested like the output, ∂y[i...]/∂x[i...]. ``sparse``: flat C-order
    ``rows`` (into the output) and ``cols`` (into the input) with their ``values``, and the two
    shapes: ``J = np.zeros((prod(output_shape), prod(input_shape))); J[rows, cols] = values``
    and ``J.reshape(shape)``; ``colors`` is the number of compressed passes, or null.
    """
    if not _structured(item):
        return _json_tensor(item)
    if item.layout == "diagonal":
        return {"layout": "diagonal", "shape": list(item.shape), "values": _json_values(item.diagonal)}
    rows, cols, values = item.coo()
    return {
        "layout": "sparse", "shape": list(item.shape), "output_shape": list(item.output_shape),
        "input_shape": list(item.input_shape), "nnz": item.nnz, "colors": item.colors,
        "rows": _numpy(rows).tolist(), "cols": _numpy(cols).tolist(), "values": _json_values(values),
    }


def to_json(result: Any) -> str:
    """One strict JSON object: NaN and infinities are the strings "nan", "inf", "-inf"."""
    if isinstance(result, CheckReport):
        return json.dumps(_check_document(result), allow_nan=False) + "\n"
    document = {
        "command": result.command,
        "expression": result.expression,
        "method": result.method,
        "device": result.device,
        "dtype": result.dtype,
        "inputs": {name: _json_tensor(t, with_values=False) for name, t in result.inputs.items()},
        "output": _json_tensor(result.output),
    }
    head = None
    if result.command == "hessian":  # its blocks are written as text from the one matrix
        head, document = json.dumps(document, allow_nan=False)[:-1], {}
    else:
        document["result"] = {key_text(key): _json_item(item) for key, item in _items(result)}
    if getattr(result, "how", None) is not None:
        document["how"] = result.how
    if getattr(result, "symbolic", None) is not None:
        from jacli.printing import to_strings

        document["symbolic"] = {key_text(key): to_strings(entries) for key, entries in result.symbolic.items()}
    if getattr(result, "det", None) is not None:
        document["det"] = _json_values(result.det)
        if result.det_symbolic is not None:
            document["det_symbolic"] = str(result.det_symbolic)
    if head is not None:
        tail = ", " + json.dumps(document, allow_nan=False)[1:] if document else "}"
        return head + ', "result": {' + "".join(_json_hessian(result)) + "}" + tail + "\n"
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

FILE_SUFFIXES = (".json", ".txt", ".npy", ".npz", ".pt")
"""What ``--output`` writes, by suffix: JSON, plain text, one dense (or diagonal) array, one
Jacobian as a scipy.sparse matrix (output size × input size), one torch tensor (sparse COO for a
structured Jacobian block)."""

SCIPY_MISSING = (
    "`output` {path}: .npz files are written with scipy, which is not installed; install it with "
    "pip install 'jacli[sparse]' (or pip install scipy), or write .pt (a torch sparse tensor) instead"
)


def _has_scipy() -> bool:
    """Whether scipy can be imported, without importing it (the check runs before any work)."""
    import importlib.util

    try:
        return importlib.util.find_spec("scipy") is not None
    except (ImportError, ValueError):
        return False


def file_suffix(path: Any) -> str:
    """What an output file's name ends in, lowercased: ``.json`` also for a file named ``.json``
    (where pathlib sees a hidden file without a suffix)."""
    name = str(path).replace("\\", "/").rsplit("/", 1)[-1]
    return name[name.rfind("."):].lower() if "." in name else ""


def check_file_suffix(path: Any) -> None:
    """Refuse --output names whose format jacli cannot tell, before any work is done."""
    from jacli.errors import InputError

    suffix = file_suffix(path)
    if suffix not in FILE_SUFFIXES:
        raise InputError(f"`output` {path}: cannot tell the format; use a name ending in {', '.join(FILE_SUFFIXES)}", param="output")
    if suffix == ".npz" and not _has_scipy():
        raise InputError(SCIPY_MISSING.format(path=path), param="output")


def to_chunks(result: Any, suffix: str, precision: int | None = None) -> Iterator[bytes]:
    """``to_bytes`` in pieces, for writing a large plain-text result as it is formatted."""
    if suffix == ".txt":
        for line in plain_lines(result, precision):
            yield line.encode("utf-8")
        return
    if suffix == ".npy":
        yield from _npy_chunks(result)
        return
    yield _file_bytes(result, suffix)


NPY_PIECE = 1 << 22
"""Bytes of a .npy file's data written per piece (never a second copy of the whole array)."""


def _npy_chunks(result: Any) -> Iterator[bytes]:
    """A .npy file in pieces: numpy's header, then the array's own bytes in slices."""
    import io

    import numpy.lib.format as npy_format

    array = np.require(_npy_array(result), requirements="C")  # (ascontiguousarray makes 0-d arrays 1-d)
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, npy_format.header_data_from_array_1_0(array))
    yield header.getvalue()
    data = memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b"")
    for start in range(0, len(data), NPY_PIECE):
        yield data[start : start + NPY_PIECE].tobytes()


def _npy_array(result: Any) -> np.ndarray:
    """The one array a .npy file holds (a diagonal block's diagonal), or an InputError."""
    from jacli.errors import InputError

    key, item = _single_item(result, ".npy")
    if _structured(item) and item.layout == "sparse":
        raise InputError(
            f"`output` .npy holds a dense array, but the Jacobian for {key_text(key)} is sparse "
            f"({item.nnz} of {math.prod(item.shape)} entries stored); write .npz (scipy.sparse) or .pt "
            "(torch sparse COO), or ask for `layout` dense", param="output",
        )
    return _numpy(item.diagonal if _structured(item) else item)


def _single_item(result: Any, suffix: str) -> tuple[Key, Any]:
    from jacli.errors import InputError

    items = [] if isinstance(result, CheckReport) else list(_items(result))
    if len(items) != 1:
        raise InputError(
            f"`output` {suffix} holds one tensor, but this result has "
            f"{'a table' if isinstance(result, CheckReport) else len(items)}; "
            "use .json or .txt, or pick one input with `wrt`", param="output",
        )
    return items[0]


def _file_bytes(result: Any, suffix: str) -> bytes:
    if suffix == ".json":
        return to_json(result).encode("utf-8")
    import io

    key, item = _single_item(result, suffix)
    buffer = io.BytesIO()
    if suffix == ".npz":
        _save_npz(buffer, result, key, item)
    elif suffix == ".pt":
        import torch

        tensor = item.to_sparse_coo() if _structured(item) else item
        # clone: torch.save writes a view's whole storage, not just the view
        torch.save(tensor.detach().cpu().clone(), buffer)
    return buffer.getvalue()


def _save_npz(buffer: Any, result: Any, key: Key, item: Any) -> None:
    """The Jacobian's classic matrix (output size × input size) as ``scipy.sparse.save_npz``
    writes a CSR matrix: flat C-order indices, as ``J.reshape(output size, -1)`` numbers them."""
    from jacli.errors import InputError

    if result.command != "jacobian":
        raise InputError(
            f"`output` .npz holds a Jacobian as a scipy.sparse matrix, but this is a {result.command} "
            "result; use .npy, .pt, .json or .txt", param="output",
        )
    try:
        import scipy.sparse
    except ImportError:
        raise InputError(SCIPY_MISSING.format(path="*.npz"), param="output") from None
    input_shape = tuple(result.inputs[key].shape)
    rows, cols, values = item.coo() if _structured(item) else result.blocks[key].coo_for(input_shape)
    size = (math.prod(result.output.shape), math.prod(input_shape))
    matrix = scipy.sparse.csr_matrix((_numpy(values), (_numpy(rows), _numpy(cols))), shape=size)
    scipy.sparse.save_npz(buffer, matrix, compressed=True)


# -- plain --------------------------------------------------------------------------------------


def to_plain(result: Any, precision: int | None = None) -> str:
    """A ``# name shape`` line per result, then its numbers: one row per line, space-separated.

    One rule for every result, so the ``# name shape`` line alone says how the numbers are laid
    out: rows along the last axis, what ``numpy.savetxt`` writes for
    ``t.reshape(-1, t.shape[-1])``. A scalar is one number, a vector one line, a matrix one line
    per row, and a tensor of shape (a, b, ..., n) has a·b·... lines of n numbers, in C order.
    ``numpy.loadtxt(...).reshape(shape)`` restores it; a Jacobian block of shape
    output.shape + input.shape becomes the classic matrix with ``.reshape(output.numel(), -1)``.

    Structured Jacobian blocks say their layout in the header, after the name:

    * ``# x diagonal 5x5x5x5``: the Jacobian's shape; below it the diagonal ∂y[i...]/∂x[i...],
      shaped like the output (the shape's first half), in the same rows-along-the-last-axis rule;
    * ``# x sparse 5x5x5x5 nnz 25 output 5x5 input 5x5``: then one line per stored entry, in
      row-major order: the output's multi-index, the input's multi-index, the value
      (``0 1 0 1 2.0`` is ∂y[0,1]/∂x[0,1] = 2). ``numpy.loadtxt(..., ndmin=2)`` reads the
      columns; a scalar output or input has no index columns.
    """
    return "".join(plain_lines(result, precision))


def plain_lines(result: Any, precision: int | None = None) -> Iterator[str]:
    """``to_plain`` in pieces (lines, and long rows in parts), so that a large result is written
    as it is formatted instead of being held twice, as numbers and as text."""
    if isinstance(result, CheckReport):
        yield _check_plain(result)
        return
    symbolic = getattr(result, "symbolic", None)
    if result.command == "hessian" and symbolic is None:
        yield from _plain_hessian(result, precision)
        return
    for key, item in _items(result):
        if _structured(item):
            yield from _plain_structured(key_text(key), item, precision)
        else:
            array = _numpy(item)
            yield f"# {key_text(key)} {shape_text(array.shape)}\n"
            yield from _plain_pieces(_plain_matrix(array), precision)
        if symbolic is not None and key in symbolic:
            for line in _symbolic_lines(result, key):
                yield f"# exact: {line}\n"
    if getattr(result, "det", None) is not None:
        yield "# det scalar\n"
        for row in _plain_rows(_numpy(result.det).reshape(1, 1), precision):
            yield row + "\n"
        if result.det_symbolic is not None:
            yield f"# exact: {result.det_symbolic}\n"


def _plain_structured(name: str, block: Any, precision: int | None) -> Iterator[str]:
    """A diagonal or sparse block in plain text (see ``to_plain``)."""
    if block.layout == "diagonal":
        yield f"# {name} diagonal {shape_text(block.shape)}\n"
        yield from _plain_pieces(_plain_matrix(_numpy(block.diagonal)), precision)
        return
    yield (f"# {name} sparse {shape_text(block.shape)} nnz {block.nnz} output {shape_text(block.output_shape)} "
           f"input {shape_text(block.input_shape)}\n")
    rows, cols, values = (_numpy(t) for t in block.coo())
    float32 = _is_float32(values)
    for start in range(0, len(values), PLAIN_PIECE):
        end = start + PLAIN_PIECE
        indices = _multi_indices(rows[start:end], block.output_shape) + _multi_indices(cols[start:end], block.input_shape)
        yield "".join(
            " ".join([*(str(int(axis[k])) for axis in indices), format_number(float(value), precision, float32)]) + "\n"
            for k, value in enumerate(values[start:end])
        )


def _multi_indices(flat: np.ndarray, shape: Sequence[int]) -> list[np.ndarray]:
    """Flat C-order indices as one array per axis of ``shape`` (none for a scalar)."""
    return list(np.unravel_index(flat, tuple(shape))) if len(shape) else []


def _plain_matrix(array: np.ndarray) -> np.ndarray:
    """The rows a tensor is written in (see ``to_plain``): its last axis along each line."""
    if array.ndim <= 1:
        return array.reshape(1 if array.size else 0, array.size)
    return array.reshape(math.prod(array.shape[:-1]), array.shape[-1])


def _plain_rows(matrix: np.ndarray, precision: int | None) -> Iterator[str]:
    float32 = _is_float32(matrix)
    for row in matrix:
        yield " ".join(format_number(float(v), precision, float32) for v in row)


PLAIN_PIECE = 4096
"""Numbers formatted per piece of plain output: a long row is written in pieces, not as one string."""


def _plain_pieces(matrix: np.ndarray, precision: int | None) -> Iterator[str]:
    """The rows of ``_plain_rows`` with their newlines, in pieces of at most PLAIN_PIECE numbers."""
    float32 = _is_float32(matrix)
    for row in matrix:
        for start in range(0, len(row), PLAIN_PIECE):
            piece = " ".join(format_number(float(v), precision, float32) for v in row[start : start + PLAIN_PIECE])
            end = "\n" if start + PLAIN_PIECE >= len(row) else " "
            yield piece + end


def _symbolic_lines(result: Any, key: Key) -> list[str]:
    """The exact derivative in one line per entry (or the diagonal, for elementwise expressions)."""
    diagonal = getattr(result, "diagonal", None)
    if diagonal is not None and key in diagonal:
        return [f"diagonal {diagonal[key]}"]
    entries = result.symbolic[key]
    return [str(e) for e in entries.reshape(-1)]


# -- the Hessian, read from its one matrix ---------------------------------------------------------
# k inputs have k² blocks (1,600 scalars: 2.56 million); the writers slice the one n × n matrix
# (numpy views, no tensor per block) and write a run of scalar blocks from one row of floats.


def _hessian_rows(result: Any) -> Iterator[tuple[str, list[str], list[Any]]]:
    """For each input ``a``, in order: ``(a, names, blocks)``, the blocks ∂²y/∂a∂b for each
    input ``b`` in ``names``: a float where a and b are scalars, else a numpy view shaped
    ``a.shape + b.shape``."""
    matrix = _numpy(result.values)
    parts = result.blocks.parts
    names = list(parts)
    for a, (shape_a, a0, a1) in parts.items():
        row = matrix[a0].tolist() if not shape_a else None
        yield a, names, [
            row[b0] if row is not None and not shape_b else matrix[a0:a1, b0:b1].reshape(shape_a + shape_b)
            for shape_b, b0, b1 in parts.values()
        ]


def _formatted(values: list[float], precision: int | None, float32: bool) -> list[str]:
    """``format_number`` of each value; repr directly where that is what it gives (float64)."""
    if precision is None and not float32:
        return list(map(repr, values))  # nan, inf, -inf and -0.0 included
    return [format_number(v, precision, float32) for v in values]


def _plain_hessian(result: Any, precision: int | None) -> Iterator[str]:
    """The Hessian's blocks in plain text, as ``plain_lines`` writes any result; a row of scalar
    blocks is formatted at once and written as one piece."""
    float32 = str(result.values.dtype) == "torch.float32"
    for a, names, blocks in _hessian_rows(result):
        if all(isinstance(block, float) for block in blocks):
            texts = _formatted(blocks, precision, float32)
            yield "".join(f"# {a},{b} scalar\n{text}\n" for b, text in zip(names, texts))
            continue
        for b, block in zip(names, blocks):
            if isinstance(block, float):
                yield f"# {a},{b} scalar\n{format_number(block, precision, float32)}\n"
            else:
                yield f"# {a},{b} {shape_text(block.shape)}\n"
                yield from _plain_pieces(_plain_matrix(block), precision)


def _json_hessian(result: Any) -> Iterator[str]:
    """The members of a Hessian's JSON ``result`` object as text, a row of blocks per piece:
    ``"a,b": {"shape": [...], "values": ...}``, what ``_json_tensor`` gives each block."""
    float32 = str(result.values.dtype) == "torch.float32"
    escaped = {name: json.dumps(name)[1:-1] for name in result.blocks.parts}
    for index, (a, names, blocks) in enumerate(_hessian_rows(result)):
        texts = []
        scalars = [block for block in blocks if isinstance(block, float)]
        numbers = iter(_formatted(scalars, None, float32))
        for b, block in zip(names, blocks):
            if isinstance(block, float):
                value = next(numbers)
                value = f'"{value}"' if "n" in value else value  # only nan, inf and -inf hold an n
                texts.append(f'"{escaped[a]},{escaped[b]}": {{"shape": [], "values": {value}}}')
            else:
                texts.append(f'"{escaped[a]},{escaped[b]}": ' + json.dumps(_json_tensor(block), allow_nan=False))
        yield (", " if index else "") + ", ".join(texts)


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
    """The header (expression, inputs, method, device), then each result as tables.

    Tables never squeeze numbers: a matrix wider than the console is split into blocks of
    columns, each captioned with its column range; one too wide for any console is printed at its
    own width rather than cut. Lines carry no trailing spaces.
    """
    if isinstance(result, CheckReport):
        _print_check(result, console)
        return
    digits = DEFAULT_PRECISION if precision is None else precision
    width = console.width
    parts: list[RenderableType | None] = [_header(result)]
    if getattr(result, "symbolic", None) is not None:
        parts += [None, _Lines(_symbolic_view(result), keep_width=True)]
    parts.append(None)
    structured = result.command == "jacobian" and any(_structured(block) for block in result.blocks.values())
    if result.command in ("jacobian", "hessian") and not structured and all(t.dim() == 0 for t in result.inputs.values()):
        parts += _classic_matrix(result, digits, width, full)
    else:
        words = VOCABULARY[result.command]
        items = _hessian_shown(result, full) if result.command == "hessian" else _items(result)
        for index, (key, item) in enumerate(items):
            if index:
                parts.append(None)
            if isinstance(item, _Hidden):
                parts.append(Text(f"… {item.count:,} more blocks (--full shows all)", style="dim"))
                continue
            parts.append(words.title(result, key, item))
            if _structured(item):
                parts += _structured_view(result, key, item, digits, full, width)
            else:
                parts += _tensor_view(item, digits, full, words.label(key), width)
    if getattr(result, "det", None) is not None:
        parts += [None, Text.assemble(("det J", "bold"), f" = {format_number(float(result.det), digits)}")]
        if result.det_symbolic is not None:
            exact = _pretty_sympy(result.det_symbolic)
            if "\n" in exact.plain:
                parts.append(Text.assemble(("det J", "bold"), ", exact (SymPy):\n", exact))
            else:
                parts.append(Text.assemble(("det J", "bold"), " = ", exact, ("  (exact)", "dim")))
    for part in parts:
        console.print(Text("") if part is None else part if isinstance(part, _Lines) else _Lines(part), crop=False)


class _Lines:
    """A renderable printed line by line with trailing spaces removed (rich pads grid cells and
    table rows to their width). With ``keep_width``, it is laid out at least as wide as it needs,
    even beyond the console: rich would otherwise shrink a table's columns until its digits are
    cut off; the line is then longer than the terminal, which wraps it (or ``less -S`` scrolls)."""

    def __init__(self, renderable: RenderableType, keep_width: bool = False) -> None:
        self.renderable = renderable
        self.keep_width = keep_width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        width = options.max_width
        if self.keep_width:
            needed = Measurement.get(console, options.update_width(1 << 20), self.renderable).maximum
            width = max(width, needed)
        for line in console.render_lines(self.renderable, options.update_width(width), pad=False):
            while line and not line[-1].control and not line[-1].text.rstrip():
                line.pop()
            if line and not line[-1].control:
                last = line[-1]
                line[-1] = Segment(last.text.rstrip(), last.style)
            yield from line
            yield Segment.line()


def _output_symbol(result: Any) -> str:
    """The output's name in the pretty view: ``y``, as in ``y.backward(v)``, unless an input is
    called ``y``; then the first of f, g, h, out, out2, ... that no input is called."""
    taken = set(result.inputs)
    candidates = itertools.chain(("y", "f", "g", "h", "out"), (f"out{k}" for k in itertools.count(2)))
    return next(name for name in candidates if name not in taken)


def _method_text(result: Any) -> str:
    template = METHOD_NAMES.get((result.command, result.method)) or METHOD_NAMES.get(result.method, result.method)
    wrt = list(result.wrt)
    return template.format(
        y=_output_symbol(result),
        xs=wrt[0] if len(wrt) == 1 else "(" + ", ".join(wrt) + ")",
        grads=", ".join(f"{name}.grad" for name in wrt),
    ) if "{" in template else template


def _header(result: Any) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", justify="right")
    grid.add_column(overflow="fold")  # a narrow console folds long words; it never hides them
    grid.add_row(result.command, Text(result.expression, style="bold"))
    for name, tensor in result.inputs.items():
        mark = "" if name in result.wrt else "  (held constant)"
        grid.add_row("input", Text(f"{name}: shape {_shape_tuple(tensor.shape)}{mark}"))
    grid.add_row("output", Text(f"{_output_symbol(result)}: shape {_shape_tuple(result.output.shape)}"))
    for name, direction in getattr(result, "directions", {}).items():
        grid.add_row("v", Text(f"{name}: shape {_shape_tuple(direction.shape)} (like {name})"))
    if getattr(result, "v", None) is not None:
        grid.add_row("v", Text(f"shape {_shape_tuple(result.v.shape)} (like the output)"))
    grid.add_row("method", Text(_method_text(result)))
    if getattr(result, "how", None) is not None:
        grid.add_row("how", Text(result.how))
    grid.add_row("on", Text(f"{result.device}, {result.dtype}"))
    return grid


def _shape_tuple(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _derivative(result: Any, key: Key) -> str:
    """``∂y/∂x`` for a Jacobian block (or a gradient), ``∂²y/∂a∂b`` for a Hessian block."""
    y = _output_symbol(result)
    if isinstance(key, tuple):
        a, b = key
        return f"∂²{y}/∂{a}∂{b}" if a != b else f"∂²{y}/∂{a}²"
    return f"∂{y}/∂{key}"


def _jacobian_title(result: Any, name: str, shape: str) -> Text:
    return Text.assemble(
        (_derivative(result, name), "bold"),
        f"  shape {shape} = output {_shape_tuple(result.output.shape)} + {name} "
        f"{_shape_tuple(result.inputs[name].shape)}",
    )


def _hessian_title(result: Any, key: tuple[str, str], shape: str) -> Text:
    a, b = key
    return Text.assemble(
        (_derivative(result, key), "bold"),
        f"  shape {shape} = {a} {_shape_tuple(result.inputs[a].shape)} + {b} "
        f"{_shape_tuple(result.inputs[b].shape)}",
    )


def _jvp_title(result: Any, key: None, shape: str) -> Text:
    y = _output_symbol(result)
    moved = " + ".join(f"∂{y}/∂{n}·v_{n}" for n in result.directions) if result.directions else "0"
    return Text.assemble(("J·v", "bold"), f" = {moved}  shape {shape}, like the output")


class _Words:
    """How one command names its blocks: a title above each, a label for its sub-tables."""

    def __init__(self, title: Any, label: Any) -> None:
        self._title, self.label = title, label

    def title(self, result: Any, key: Key, tensor: Any) -> Text:
        return self._title(result, key, _shape_tuple(tensor.shape))


VOCABULARY: dict[str, _Words] = {
    "jacobian": _Words(_jacobian_title, lambda key: "J"),
    "hessian": _Words(_hessian_title, lambda key: f"H[{key_text(key)}]"),
    "jvp": _Words(_jvp_title, lambda key: "Jv"),
    "hvp": _Words(
        lambda result, name, shape: Text.assemble((f"(H·v) for {name}", "bold"), f"  shape {shape}, like {name}"),
        lambda key: f"Hv[{key}]",
    ),
    "grad": _Words(
        lambda result, name, shape: Text.assemble(
            (f"{name}.grad = ∂{_output_symbol(result)}/∂{name}", "bold"), f"  shape {shape}, like {name}"),
        lambda key: f"{key}.grad",
    ),
    "vjp": _Words(
        lambda result, name, shape: Text.assemble(
            (f"{name}.grad = vᵀ·∂{_output_symbol(result)}/∂{name}", "bold"), f"  shape {shape}, like {name}"),
        lambda key: f"{key}.grad",
    ),
}
"""Per command: the title above each result tensor and the label of its sub-tables."""


def _pretty_sympy(expression: Any) -> Text:
    import sympy as sp

    return Text(sp.pretty(expression, use_unicode=True))


def _symbolic_view(result: Any) -> RenderableType:
    """SymPy's exact derivative: the diagonal of an elementwise Jacobian, the classic matrix
    for scalar inputs, else each block (small ones in full)."""
    import sympy as sp

    y = _output_symbol(result)
    parts: list[RenderableType] = [Text("exact derivative (SymPy)", style="bold cyan")]
    scalars = all(t.dim() == 0 for t in result.inputs.values())
    diagonal = getattr(result, "diagonal", None)
    if diagonal is not None:
        for name, derivative in diagonal.items():
            parts.append(Text.assemble(
                f"∂{y}/∂{name} is diagonal: ∂{y}[i]/∂{name}[i] = ", _pretty_sympy(derivative)
            ))
    elif result.command == "jacobian" and scalars:
        columns = [result.symbolic[name].reshape(-1, 1) for name in result.symbolic]
        parts.append(_pretty_sympy(sp.Matrix(np.concatenate(columns, axis=1).tolist())))
    elif result.command == "hessian" and scalars:
        names = list(result.inputs)
        rows = [[result.symbolic[a, b][()] for b in names] for a in names]
        parts.append(_pretty_sympy(sp.Matrix(rows)))
    else:
        for key, entries in result.symbolic.items():
            label = _derivative(result, key)
            if entries.size > 64:
                parts.append(Text(f"{label}: {entries.size} entries (--format json lists them)"))
            elif entries.ndim == 0:
                parts.append(Text.assemble(f"{label} = ", _pretty_sympy(entries[()])))
            elif entries.ndim <= 2:
                matrix = entries.reshape(entries.shape[0], -1) if entries.ndim == 2 else entries.reshape(1, -1)
                parts.append(Text.assemble(f"{label} =", "\n", _pretty_sympy(sp.Matrix(matrix.tolist()))))
            else:
                parts.append(Text.assemble(f"{label} =", "\n", _pretty_sympy(sp.Array(entries.tolist()))))
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


# Table geometry, in terminal cells: a borderless table (show_edge=False, pad_edge=False) puts
# " │ " between columns; a boxed one adds "│ " and " │" at the edges.
_BETWEEN = 3


def _table_width(widths: Sequence[int], boxed: bool = False) -> int:
    return sum(widths) + _BETWEEN * (len(widths) - 1) + (4 if boxed else 0)


def _column_blocks(
    label_width: int, widths: Sequence[int], room: int, boxed: bool = False, sticky: Sequence[int] = ()
) -> list[range]:
    """Split columns (their widths) into consecutive blocks that each fit in ``room`` cells
    beside the row labels; a column too wide for any block gets one of its own, and a ``sticky``
    column (the … of a summary) stays with the one before it."""
    blocks: list[range] = []
    start = 0
    for j in range(1, len(widths) + 1):
        if j == len(widths) or (
            j not in sticky and _table_width([label_width, *widths[start : j + 1]], boxed) > room
        ):
            blocks.append(range(start, j))
            start = j
    return blocks


def _ranges_text(indices: Sequence[int | None]) -> str:
    """``[0, 1, 2, None, 9]`` as ``0–2, …, 9``."""
    runs: list[str] = []
    for gap, group in itertools.groupby(indices, key=lambda i: i is None):
        if gap:
            runs.append("…")
            continue
        members = list(group)
        runs.append(str(members[0]) if len(members) == 1 else f"{members[0]}–{members[-1]}")
    return ", ".join(runs)


class _Hidden:
    """Blocks left out of a summary: ``count`` of them."""

    def __init__(self, count: int) -> None:
        self.count = count


def _hessian_shown(result: Any, full: bool) -> Iterator[tuple[Key, Any]]:
    """The Hessian's blocks for the pretty view: all, or ``ROW_EDGE`` at each end and a
    ``_Hidden`` between (k inputs have k² blocks; only the shown ones are made)."""
    names = list(result.blocks.parts)
    for position in _edges(len(names) ** 2, ROW_EDGE, full):
        if position is None:
            yield None, _Hidden(len(names) ** 2 - 2 * ROW_EDGE)
            continue
        key = (names[position // len(names)], names[position % len(names)])
        yield key, result.blocks[key]


def _classic_matrix(result: Any, digits: int, width: int, full: bool = False) -> list[RenderableType]:
    """All inputs scalar: the m×n Jacobian (or n×n Hessian) matrix, one labelled column per
    variable (split into blocks of columns when there are more than fit). A Hessian summary
    shows ``ROW_EDGE`` rows and ``COLUMN_EDGE`` columns at each end (``--full`` shows all)."""
    y = _output_symbol(result)
    if result.command == "hessian":
        names = list(result.blocks.parts)
        n = len(names)
        title = f"Hessian: ∂²{y}/∂(" + ", ".join(_edge_names(names, COLUMN_EDGE, full)) + ")²"
        matrix = _numpy(result.values)
        shown, row_indices = _edges(n, COLUMN_EDGE, full), _edges(n, ROW_EDGE, full)
        rows = [
            ("⋮", [None] * len(shown)) if i is None
            else (f"∂/∂{names[i]}", [None if j is None else float(matrix[i, j]) for j in shown])
            for i in row_indices
        ]
        rows_shown, columns_shown = (sum(i is not None for i in indices) for indices in (row_indices, shown))
        note = None if rows_shown == columns_shown == n else (
            f"showing {rows_shown:,} of {n:,} rows and {columns_shown:,} of {n:,} columns (--full shows all)")
        sticky = [k for k, j in enumerate(shown) if j is None]
        names = ["…" if j is None else names[j] for j in shown]
    else:
        note, sticky = None, []
        names = list(result.blocks)
        title = f"Jacobian: ∂{y}/∂(" + ", ".join(names) + ")"
        output_shape = tuple(result.output.shape)
        arrays = {name: _numpy(block.to_dense()).reshape(-1) for name, block in result.blocks.items()}
        rows = [
            (f"{y}[{_index_label(index)}]" if output_shape else y, [float(arrays[n][flat]) for n in names])
            for flat, index in enumerate(itertools.product(*(range(n) for n in output_shape)))
        ]
    headers = ["…" if name == "…" and result.command == "hessian" else f"∂/∂{name}" for name in names]
    cells = [[Text("⋮" if label == "⋮" else "…") if v is None else _cell(v, digits) for v in values] for label, values in rows]
    label_width = max(cell_len(label) for label, _ in rows)
    widths = [max([cell_len(h)] + [c.cell_len for c in column]) for h, column in zip(headers, zip(*cells))]
    parts: list[RenderableType] = []
    for block in _column_blocks(label_width, widths, width, boxed=True, sticky=sticky):
        table = Table(title=Text(title) if not parts else None, title_justify="left")
        table.add_column("", style="bold", no_wrap=True)
        for j in block:
            table.add_column(Text(headers[j]), justify="right", no_wrap=True)
        for (label, _), row in zip(rows, cells):
            table.add_row(Text(label), *(row[j] for j in block))
        parts.append(_Lines(table, keep_width=True))
    if note:
        parts.append(Text(note, style="dim"))
    return parts


def _edge_names(names: Sequence[str], edge: int, full: bool) -> list[str]:
    """``names``, or ``edge`` of them at each end around a "…"."""
    return ["…" if i is None else names[i] for i in _edges(len(names), edge, full)]


SPARSE_ENTRIES = 2 * ROW_EDGE
"""Stored entries of a sparse block listed in the pretty view (``--full`` lists all)."""


def _axis_letters(first: str, count: int) -> list[str]:
    """Index names for ``count`` axes: ``i, j, k, l`` (or ``m, n, p, q``), numbered past four."""
    letters = {"i": "ijkl", "m": "mnpq"}[first]
    return list(letters[:count]) if count <= len(letters) else [f"{first}{a}" for a in range(1, count + 1)]


def _bracket(symbol: str, names: Sequence[str]) -> str:
    return f"{symbol}[{','.join(names)}]" if names else symbol


def _structured_view(
    result: Any, key: Key, block: Any, digits: int, full: bool, width: int
) -> list[RenderableType]:
    """A diagonal block: what is zero, then the diagonal shaped like the output. A sparse block:
    how many entries are stored, then the first of them as (output index, input index, value)."""
    y, name = _output_symbol(result), key_text(key)
    total = math.prod(block.shape)
    if block.layout == "diagonal":
        ndim = len(block.output_shape)
        if ndim == 0:
            return [Text(f"∂{y}/∂{name} is diagonal: a single entry"), _cell(float(_numpy(block.diagonal)), digits)]
        outer, inner = _axis_letters("m", ndim), _axis_letters("i", ndim)
        same = (f"{outer[0]} = {inner[0]}" if ndim == 1
                else f"({','.join(outer)}) = ({','.join(inner)})")
        return [
            Text.assemble(
                (f"∂{y}/∂{name} is diagonal", "bold"), f": {_bracket('∂' + y, outer)}/{_bracket('∂' + name, inner)} = 0 unless {same}; "
                f"{block.nnz} of {total} entries stored",
            ),
            Text(f"{_bracket('∂' + y, inner)}/{_bracket('∂' + name, inner)}, shaped like {y}:"),
            *_tensor_view(block.diagonal, digits, full, "diagonal", width),
        ]
    colours = "" if block.colors is None else (
        f"; {block.colors} colour{'s' if block.colors != 1 else ''} (compressed passes)")
    density = f"{100 * block.density:.3g}%"
    parts: list[RenderableType] = [Text.assemble(
        (f"∂{y}/∂{name} is sparse", "bold"), f": nnz {block.nnz} of {total} entries (density {density}){colours}"
    )]
    if not block.nnz:
        return parts
    shown = block.nnz if full else min(block.nnz, SPARSE_ENTRIES)
    rows, cols, values = (_numpy(t[:shown]) for t in block.coo())
    outputs, inputs = _multi_indices(rows, block.output_shape), _multi_indices(cols, block.input_shape)
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("output", justify="left", no_wrap=True)
    table.add_column("input", justify="left", no_wrap=True)
    table.add_column(_derivative(result, key), justify="right", no_wrap=True)
    for k in range(shown):
        table.add_row(
            Text(_bracket(y, [str(int(axis[k])) for axis in outputs])),
            Text(_bracket(name, [str(int(axis[k])) for axis in inputs])),
            _cell(float(values[k]), digits),
        )
    parts.append(_Lines(table, keep_width=True))
    if shown < block.nnz:
        parts.append(Text(f"… {block.nnz - shown} more entries (--full shows all)", style="dim"))
    return parts


def _tensor_view(tensor: Any, digits: int, full: bool, label: str, width: int) -> list[RenderableType]:
    array = _numpy(tensor)
    if array.ndim == 0:
        return [_cell(float(array), digits)]
    if array.ndim == 1:
        return [_vector_table(array, digits, full, width)]
    if array.ndim == 2:
        return _matrix_tables(array, digits, full, width)
    return list(_blocks(array, digits, full, label, width))


def _vector_table(array: np.ndarray, digits: int, full: bool, width: int) -> RenderableType:
    """A vector in rows of ``VECTOR_WIDTH`` (fewer, if the console is too narrow for that many):
    column headers are offsets, row labels start indices."""
    shown = array if full or len(array) <= 2 * 3 * VECTOR_WIDTH else np.concatenate(
        [array[: 3 * VECTOR_WIDTH], array[-3 * VECTOR_WIDTH :]])
    cell_width = max(_cell(float(v), digits).cell_len for v in shown)
    per_row = min(len(array), VECTOR_WIDTH)
    while per_row > 1:
        wrapped = len(array) > per_row
        labels = [len(str(len(array) - 1))] if wrapped else []
        header = len(f"+{per_row - 1}") if wrapped else len(str(per_row - 1))
        if _table_width(labels + [max(cell_width, header)] * per_row) <= width:
            break
        per_row -= 1
    wrapped = len(array) > per_row
    table = Table(show_edge=False, pad_edge=False)
    if wrapped:
        table.add_column("", style="bold", justify="right", no_wrap=True)
    for offset in range(per_row):
        table.add_column(f"+{offset}" if wrapped else str(offset), justify="right", style="", no_wrap=True)
    rows = math.ceil(len(array) / per_row)
    edge = math.ceil(3 * VECTOR_WIDTH / per_row)  # about as many numbers as 3 rows of VECTOR_WIDTH
    for row in _edges(rows, edge, full):
        if row is None:
            table.add_row(*(["⋮"] * (per_row + wrapped)))
            continue
        start = row * per_row
        cells = [_cell(float(v), digits) for v in array[start : start + per_row]]
        cells += [Text("")] * (per_row - len(cells))
        table.add_row(*([Text(str(start))] if wrapped else []), *cells)
    return _Lines(table, keep_width=True)


def _matrix_tables(array: np.ndarray, digits: int, full: bool, width: int) -> list[RenderableType]:
    """A matrix with row and column indices. Summarized, it shows up to ``COLUMN_EDGE`` columns
    at each end (fewer on a narrow console); whatever does not fit the console's width is split
    into blocks of columns, each captioned with the columns it holds."""
    rows, columns = array.shape
    row_indices = _edges(rows, ROW_EDGE, full)
    label_width = max([1] + [len(str(i)) for i in row_indices if i is not None])
    texts: dict[int, list[Text]] = {}

    def column_width(j: int | None) -> int:
        if j is None:
            return 1
        if j not in texts:
            texts[j] = [Text("⋮") if i is None else _cell(float(array[i, j]), digits) for i in row_indices]
        return max([len(str(j))] + [t.cell_len for t in texts[j]])

    edges = [COLUMN_EDGE] if full else range(COLUMN_EDGE, 0, -1)
    for edge in edges:
        column_indices = _edges(columns, edge, full)
        widths = [column_width(j) for j in column_indices]
        if _table_width([label_width, *widths]) <= width:
            break
    gaps = [k for k, j in enumerate(column_indices) if j is None]
    blocks = _column_blocks(label_width, widths, width, sticky=gaps)
    parts: list[RenderableType] = []
    for block in blocks:
        shown = [column_indices[k] for k in block]
        if len(blocks) > 1:
            parts.append(Text(f"columns {_ranges_text(shown)} of {columns}", style="dim"))
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("", style="bold", justify="right", no_wrap=True)
        for j in shown:
            table.add_column("…" if j is None else str(j), justify="right", no_wrap=True)
        for position, i in enumerate(row_indices):
            if i is None:
                table.add_row(*(["⋮"] * (len(shown) + 1)))
                continue
            table.add_row(Text(str(i)), *(Text("…") if j is None else texts[j][position] for j in shown))
        parts.append(_Lines(table, keep_width=True))
    return parts


def _blocks(array: np.ndarray, digits: int, full: bool, label: str, width: int) -> Iterator[RenderableType]:
    """3-D and higher: one labelled 2-D table per index of the leading axes."""
    leading = array.shape[:-2]
    count = math.prod(leading)  # the leading indices are numbered, never listed: there may be millions
    for position in _edges(count, BLOCK_EDGE, full):
        if position is None:
            hidden = count - 2 * BLOCK_EDGE
            yield Text(f"… {hidden} more blocks (--full shows all)", style="dim")
            continue
        index = tuple(int(i) for i in np.unravel_index(position, leading))
        yield Text(f"{label}[{_index_label(index)}, :, :]", style="bold")
        yield from _matrix_tables(array[index], digits, full, width)


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
