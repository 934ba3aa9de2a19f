"""Result → text: ``pretty`` (rich tables for people), ``plain`` (numbers for awk and
numpy.loadtxt), ``json`` (one strict JSON object for scripts) and ``csv`` (one table with a
header row); and files: .npy, .npz, .pt. plain, csv and JSON are written in pieces as they are
formatted (``plain_lines``, ``csv_lines``, ``json_chunks``), so none holds a second copy of the
result; the pretty view's big tables are laid out by ``_Grid``, not rich's Table.

A Jacobian or Hessian with ``as_matrix`` set is written in every format as the same classic
matrix (``result.matrix()``): one row per output element, one column per input element, the
inputs side by side; its dense rows are streamed from the blocks, never copied whole.

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
from typing import Any, Callable, Iterator, Sequence

from typing import TYPE_CHECKING

import numpy as np

from jacli.result import Block, CheckReport, Key, Labels, key_text, output_symbol
from jacli.teaching import Unpadded as _Lines, json_number

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType


class _FromRich:
    """A name from rich, imported where the pretty view first uses it: plain, JSON and CSV
    output (what scripts read) never import rich, 30 ms of a small call. It then replaces
    itself in this module, so later calls use rich's own object."""

    def __init__(self, module: str, name: str):
        self._module, self._name = module, name

    def _real(self) -> Any:
        import importlib

        real = getattr(importlib.import_module(self._module), self._name)
        globals()[self._name] = real
        return real

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._real(), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._real()(*args, **kwargs)


cell_len: Any = _FromRich("rich.cells", "cell_len")
Group: Any = _FromRich("rich.console", "Group")
Measurement: Any = _FromRich("rich.measure", "Measurement")
Segment: Any = _FromRich("rich.segment", "Segment")
Table: Any = _FromRich("rich.table", "Table")
Text: Any = _FromRich("rich.text", "Text")

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


def number_count(result: Any) -> int:
    """How many numbers plain, JSON and files write for the result's tensors (what a structured
    block stores, not its dense size); 0 for a check report."""
    if isinstance(result, CheckReport):
        return 0
    if result.command == "hessian":
        return result.values.numel()  # one matrix: its k² blocks are views, never made for a count
    count = 0
    for _, item in _items(result):
        count += item.nnz if _structured(item) else item.numel()
    return count


def _structured(item: Any) -> bool:
    return isinstance(item, Block) and item.layout != "dense"


def _matrix_on(result: Any) -> bool:
    """Whether the result is written as its classic matrix (see the module's docstring)."""
    return not isinstance(result, CheckReport) and bool(getattr(result, "as_matrix", False))


MATRIX_SLICE = 1 << 16
"""Numbers of a matrix's dense rows assembled per slice when it is streamed. Small on purpose:
measured on a 3000x6000 matrix, slices of 2^20 numbers (8 MB, above glibc's adaptive mmap
threshold once one is freed) left the heap fragmented and the peak RSS 82 MB higher; slices of
2^16 (512 kB) added 8 MB."""


def _matrix_rows(matrix: Any) -> Iterator[np.ndarray]:
    """A dense matrix's rows as numpy arrays, a slice of about MATRIX_SLICE numbers at a time."""
    for rows in matrix.row_slices(max(1, MATRIX_SLICE // max(1, matrix.shape[1]))):
        yield _numpy(rows)


def format_number(value: float, precision: int | None, float32: bool = False) -> str:
    """Every digit needed to read the number back (default), or ``precision`` significant ones.

    Zero is always written without a sign: a derivative that is -0.0 (``x**-1`` off the diagonal)
    is no different from 0 to a reader, and ``-0.0`` only looks like a tiny negative number."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        value = 0.0
    if precision is None:
        return repr(_shortest(value, float32))
    return f"{value:.{precision}g}"


_JSON_STRINGS = {"nan": '"nan"', "inf": '"inf"', "-inf": '"-inf"'}


def _number_texts(numbers: np.ndarray, precision: int | None, json_strings: bool = False) -> list[str]:
    """``format_number`` of each number of a 1-D array (integers as integers); with
    ``json_strings``, NaN and infinities as the JSON strings "nan", "inf" and "-inf"."""
    if numbers.dtype.kind in "iub":
        return [str(int(v)) for v in numbers.tolist()]
    float32 = _is_float32(numbers)
    values = (numbers + 0.0).tolist()  # + 0.0 turns -0.0 into 0.0 (IEEE 754), here in C
    if precision is None and not float32 and np.isfinite(numbers).all():
        return list(map(repr, values))  # the common case, fast: repr is format_number's shortest
    texts = [format_number(v, precision, float32) for v in values]
    return [_JSON_STRINGS.get(t, t) for t in texts] if json_strings else texts


# -- json ---------------------------------------------------------------------------------------
#
# NOTE [streamed JSON]
# A JSON document is assembled as a dict whose numeric leaves are the tensors themselves (as
# ``_Numbers``), never as Python lists: ``json_chunks`` walks the dict and writes each tensor row
# by row, in pieces of about PLAIN_PIECE numbers, as plain text is written. So the document never
# exists whole in memory, the small keys (the header) come first, and a reader that stops early
# (``| head -c 50``) gets its bytes at once. To add a key, add it to ``json_document``; a tensor
# (or ``_json_values(tensor)``) placed anywhere in it is streamed.


class _Numbers:
    """A tensor's values in a JSON document, nested like the tensor; NaN and infinities as the
    strings "nan", "inf", "-inf"; float32 with the fewest digits that read back to the float32."""

    def __init__(self, tensor: Any) -> None:
        self.array = tensor if isinstance(tensor, np.ndarray) else _numpy(tensor)

    def pieces(self) -> Iterator[str]:
        array = self.array
        if array.ndim == 0:
            yield _number_texts(array.reshape(1), None, json_strings=True)[0]
            return
        if array.size == 0:
            yield json.dumps(array.tolist())
            return
        leading = array.shape[:-1]
        rows = array.reshape(-1, array.shape[-1])
        # a new row starts t inner lists anew when its index is a multiple of the sizes below
        sizes = [math.prod(leading[k:]) for k in range(1, len(leading))]
        buffered: list[str] = ["[" * (len(leading) + 1)]
        numbers = 0
        for r, row in enumerate(rows):
            if r:
                depth = sum(1 for size in sizes if r % size == 0)
                buffered.append("]" * (depth + 1) + ", " + "[" * (depth + 1))
            for start in range(0, len(row), PLAIN_PIECE):
                if start:
                    buffered.append(", ")
                buffered.append(", ".join(_number_texts(row[start : start + PLAIN_PIECE], None, json_strings=True)))
                numbers += min(PLAIN_PIECE, len(row) - start)
                if numbers >= PLAIN_PIECE:
                    yield "".join(buffered)
                    buffered, numbers = [], 0
        buffered.append("]" * (len(leading) + 1))
        yield "".join(buffered)


def _json_values(tensor: Any) -> _Numbers:
    return _Numbers(tensor)


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
        "rows": _json_values(rows), "cols": _json_values(cols), "values": _json_values(values),
    }


class _Raw(_Numbers):
    """JSON text made elsewhere, in pieces, between ``start`` and ``end``."""

    def __init__(self, pieces: Callable[[], Iterator[str]], start: str = "", end: str = "") -> None:
        self.make, self.start, self.end = pieces, start, end

    def pieces(self) -> Iterator[str]:
        yield self.start
        yield from self.make()
        yield self.end


class _MatrixRows(_Numbers):
    """A dense classic matrix's rows, streamed a slice at a time from its blocks (the matrix is
    never assembled): a JSON list of rows."""

    def __init__(self, matrix: Any) -> None:
        self.matrix = matrix

    def pieces(self) -> Iterator[str]:
        yield "["
        first = True
        for rows in _matrix_rows(self.matrix):
            for row in rows:
                if not first:
                    yield ", "
                first = False
                yield from _Numbers(row).pieces()
        yield "]"


def _json_matrix(result: Any) -> dict[str, Any]:
    """The classic matrix with its labels: ``values`` row by row (dense, streamed), or a sparse
    one's stored entries as ``i`` (rows), ``j`` (columns) and ``values``."""
    matrix = result.matrix()
    entry: dict[str, Any] = {"rows": list(matrix.rows), "columns": list(matrix.columns), "shape": list(matrix.shape)}
    if matrix.layout == "dense":
        entry["values"] = _MatrixRows(matrix)
        return entry
    rows, cols, values = matrix.coo()
    entry.update(layout="sparse", nnz=len(values), i=_json_values(rows), j=_json_values(cols),
                 values=_json_values(values))
    return entry


def json_header(result: Any) -> dict[str, Any]:
    """The keys written before the result's numbers: what was computed, how, and from what."""
    header: dict[str, Any] = {
        "command": result.command,
        "expression": result.expression,
        "method": result.method,
        "device": result.device,
        "dtype": result.dtype,
        **_json_problem(result),
    }
    if getattr(result, "how", None) is not None:
        header["how"] = result.how
    if getattr(result, "symbolic", None) is not None:
        from jacli.printing import to_strings

        header["symbolic"] = {key_text(key): to_strings(entries) for key, entries in result.symbolic.items()}
    if getattr(result, "det", None) is not None:
        header["det"] = _json_values(result.det)
        if result.det_symbolic is not None:
            header["det_symbolic"] = str(result.det_symbolic)
    return header


def json_document(result: Any) -> dict[str, Any]:
    """The whole document, the header first; its tensors stay tensors until ``json_chunks``."""
    document = {
        **json_header(result),
        "output": _json_tensor(result.output),
        # a Hessian's k² blocks are written a row of blocks at a time from its one matrix
        "result": _Raw(lambda: _json_hessian(result), "{", "}") if result.command == "hessian" and result.symbolic is None
        else {key_text(key): _json_item(item) for key, item in _items(result)},
    }
    if _matrix_on(result):
        document["matrix"] = _json_matrix(result)
    return document


def json_chunks(result: Any, extra: dict[str, Any] | None = None) -> Iterator[str]:
    """``to_json`` in pieces: the header at once, then the numbers as they are formatted;
    ``extra`` keys (``--explain``'s explanation) come after the result's own."""
    if isinstance(result, CheckReport):
        yield json.dumps(_check_document(result), allow_nan=False) + "\n"
        return
    yield from _json_pieces({**json_document(result), **(extra or {})})
    yield "\n"


def _json_pieces(value: Any) -> Iterator[str]:
    """``json.dumps(value)`` in pieces, with each tensor in it streamed (see NOTE [streamed JSON])."""
    if _lazy(value):
        yield from (value if isinstance(value, _Numbers) else _Numbers(value)).pieces()
    elif isinstance(value, dict):
        text = "{"
        for index, (key, item) in enumerate(value.items()):
            text += (", " if index else "") + json.dumps(str(key) if key is not None else "null") + ": "
            if isinstance(item, (dict, list, tuple)) or _lazy(item):
                yield text
                yield from _json_pieces(item)
                text = ""
            else:
                text += json.dumps(item, allow_nan=False)
        yield text + "}"
    elif isinstance(value, (list, tuple)) and any(isinstance(i, (dict, list, tuple)) or _lazy(i) for i in value):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ", "
            yield from _json_pieces(item)
        yield "]"
    else:
        yield json.dumps(value, allow_nan=False)


def _lazy(value: Any) -> bool:
    """Numbers that ``_json_pieces`` streams: ``_Numbers``, a numpy array or a torch tensor."""
    return isinstance(value, (_Numbers, np.ndarray)) or hasattr(value, "detach")


def to_json(result: Any) -> str:
    """One strict JSON object: NaN and infinities are the strings "nan", "inf", "-inf"."""
    return "".join(json_chunks(result))


def _json_problem(result: Any) -> dict[str, Any]:
    """What the result answers, complete enough to run it again (``jacli vjp --v ones`` reads it
    from a pipe): each input's spec as the user gave it and its values, the seed, and ``v``
    (vjp) or the directions ``u`` (jvp, hvp). Values in full: a randn input is reproduced exactly."""
    given = getattr(result.problem, "given", {})
    problem: dict[str, Any] = {
        "seed": getattr(result.problem, "seed", 0),
        "inputs": {
            name: {"shape": list(t.shape), "spec": given.get(name), "values": _json_values(t)}
            for name, t in result.inputs.items()
        },
    }
    if getattr(result, "v", None) is not None:
        problem["v"] = _json_tensor(result.v)
    if getattr(result, "directions", None):
        problem["u"] = {name: _json_tensor(t) for name, t in result.directions.items()}
    return problem


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
            {"method": m.method, "max_abs": json_number(m.max_abs), "max_rel": json_number(m.max_rel),
             "ok": m.ok, "skipped": m.skipped, "note": m.note, "nonfinite": m.nonfinite,
             "excused": m.excused}
            for m in report.methods
        ],
    }


# -- files --------------------------------------------------------------------------------------

FILE_SUFFIXES = (".json", ".txt", ".csv", ".npy", ".npz", ".pt")
"""What ``--output`` writes, by suffix: JSON, plain text, CSV, one dense array (.npy: the
classic matrix, one result, or a diagonal block's diagonal), every result by name (.npz, .pt)."""

TEXT_FORMATS = {".json": ("json",), ".txt": ("plain", "csv"), ".csv": ("csv",)}
"""The text formats a file's suffix allows (the first unless ``--format`` picks another)."""

SCIPY_MISSING = (
    "`output` {path}: .npz files are written with scipy, which is not installed; install it with "
    "pip install 'jacli[sparse]' (or pip install scipy), or write .pt (torch tensors by name) instead"
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


def file_format(suffix: str, wanted: str | None) -> str:
    """What a file named ``*suffix`` holds: its text format (``json``, ``plain``, ``csv``; one
    that ``wanted`` picks where the suffix allows it) or the suffix (``.npy``, ``.npz``, ``.pt``).
    Raises ValueError naming what the suffix allows when ``wanted`` contradicts it."""
    allowed = TEXT_FORMATS.get(suffix, ())
    if wanted is None:
        return allowed[0] if allowed else suffix
    if wanted not in allowed:
        raise ValueError(", ".join(allowed) if allowed else "")
    return wanted


def to_chunks(result: Any, suffix: str, precision: int | None = None) -> Iterator[bytes]:
    """The bytes of a file (``.json``, ``.txt``, ``.csv``, ``.npy``, ``.npz``, ``.pt``) or of a
    text format (``json``, ``plain``, ``csv``), in pieces: a large result is written as it is
    formatted, never held twice."""
    kind = {".txt": "plain", ".json": "json", ".csv": "csv"}.get(suffix, suffix)
    if kind == "plain":
        lines: Iterator[str] = plain_lines(result, precision)
    elif kind == "csv":
        lines = csv_lines(result, precision)
    elif kind == "json":
        lines = json_chunks(result)
    elif kind == ".npy":
        yield from _npy_chunks(result)
        return
    else:
        yield _file_bytes(result, kind)
        return
    for line in lines:
        yield line.encode("utf-8")


NPY_PIECE = 1 << 22
"""Bytes of a .npy file's data written per piece (never a second copy of the whole array)."""


def _npy_chunks(result: Any) -> Iterator[bytes]:
    """A .npy file in pieces: numpy's header, then the array's own bytes in slices (the classic
    matrix's rows as they are assembled from the blocks)."""
    import io

    import numpy.lib.format as npy_format

    if _matrix_on(result):
        matrix = result.matrix()
        if matrix.layout != "dense":
            from jacli.errors import InputError

            raise InputError(
                f"`output` .npy holds a dense array, but this Jacobian is {_layouts(result)} "
                f"({matrix.nnz} of {math.prod(matrix.shape)} entries stored); write .npz (scipy.sparse) "
                "or .pt (torch sparse COO), or ask for `layout` dense", param="output",
            )
        yield from _matrix_npy_pieces(matrix, result.output.dtype)
        return
    array = np.require(_npy_array(result), requirements="C")  # (ascontiguousarray makes 0-d arrays 1-d)
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, npy_format.header_data_from_array_1_0(array))
    yield header.getvalue()
    data = memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b"")
    for start in range(0, len(data), NPY_PIECE):
        yield data[start : start + NPY_PIECE].tobytes()


def _matrix_npy_pieces(matrix: Any, dtype: Any) -> Iterator[bytes]:
    """A dense matrix as a .npy file: numpy's header, then its rows as they are assembled."""
    import io

    import numpy.lib.format as npy_format

    header = io.BytesIO()
    descr = npy_format.dtype_to_descr(np.dtype(str(dtype).replace("torch.", "")))
    npy_format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": matrix.shape})
    yield header.getvalue()
    for rows in _matrix_rows(matrix):
        yield np.ascontiguousarray(rows).tobytes()


def _layouts(result: Any) -> str:
    return " and ".join(sorted({block.layout for block in result.blocks.values() if block.layout != "dense"}))


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

    if isinstance(result, CheckReport):
        raise InputError(CHECK_IS_A_TABLE.format(suffix=suffix), param="output")
    items = list(_items(result))
    if len(items) != 1:
        matrix = ", or ask for the classic matrix with `matrix`" if result.command in ("jacobian", "hessian") else ""
        raise InputError(
            f"`output` {suffix} holds one tensor, but this result has {len(items)}; use .npz, .pt, "
            f".json or .txt, or pick one input with `wrt`{matrix}", param="output",
        )
    return items[0]


CHECK_IS_A_TABLE = "`output` {suffix} holds tensors, but check's report is a table; use .json, .txt or .csv"


def _file_bytes(result: Any, suffix: str) -> bytes:
    import io

    from jacli.errors import InputError

    if isinstance(result, CheckReport):
        raise InputError(CHECK_IS_A_TABLE.format(suffix=suffix), param="output")
    buffer = io.BytesIO()
    if suffix == ".npz":
        _save_npz(buffer, result)
    elif suffix == ".pt":
        import torch

        torch.save(_named_tensors(result), buffer)
    return buffer.getvalue()


def _wrt_order(result: Any) -> list[str]:
    """The inputs in the order of the results (and of the classic matrix's columns)."""
    if result.command == "jacobian":
        return list(result.blocks)
    if result.command == "hessian":
        return list(dict.fromkeys(a for a, _ in result.blocks))
    return list(result.wrt)


def _named_tensors(result: Any) -> dict[str, Any]:
    """What .pt holds: ``output``, ``inputs`` (name → tensor), ``result`` (key → tensor, sparse
    COO for a structured Jacobian block), ``matrix`` (the classic matrix, sparse COO when
    structured), ``det``, ``v``, ``wrt``; what ``torch.load(weights_only=True)`` reads back."""
    import torch

    def cpu(tensor: Any) -> Any:
        # torch.save writes a view's whole storage, not just the view: a view of part of a
        # storage is cloned; a tensor that covers its storage (a block, and a one-input matrix
        # that is a view of it) is saved as it is, and a storage two of them share only once
        tensor = tensor.detach().cpu()
        if tensor.layout != torch.strided:
            return tensor
        whole = tensor.is_contiguous() and tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
        return tensor if whole else tensor.clone()

    named: dict[str, Any] = {
        "command": result.command,
        "expression": result.expression,
        "wrt": _wrt_order(result),
        "output": cpu(result.output),
        "inputs": {name: cpu(tensor) for name, tensor in result.inputs.items()},
        "result": {key_text(key): cpu(item.to_sparse_coo() if _structured(item) else item) for key, item in _items(result)},
    }
    if result.command in ("jacobian", "hessian"):
        matrix = result.matrix()
        named["matrix"] = cpu(matrix.to_dense() if matrix.layout == "dense" else matrix.to_sparse_coo())
    for extra in ("det", "v"):
        value = getattr(result, extra, None)
        if value is not None:
            named[extra] = cpu(value)
    directions = getattr(result, "directions", None)
    if directions:
        named["directions"] = {name: cpu(tensor) for name, tensor in directions.items()}
    return named


def _save_npz(buffer: Any, result: Any) -> None:
    """Every result by name, as ``numpy.load`` reads them: ``output``, ``input.x``, ``result.x``
    (a dense block; a structured one as ``result.x.diagonal`` or ``result.x.rows``/``.cols``/
    ``.values``), ``matrix`` (a dense classic matrix), ``det``, ``v``, ``wrt`` (the columns'
    order). For a Jacobian or Hessian the file is also what ``scipy.sparse.save_npz`` writes for
    the classic matrix as CSR (keys ``data``, ``indices``, ``indptr``, ``shape``, ``format``), so
    ``scipy.sparse.load_npz`` reads the matrix."""
    import zipfile

    import numpy.lib.format as npy_format

    arrays: list[tuple[str, Any]] = []
    if result.command in ("jacobian", "hessian"):
        from jacli.errors import InputError

        try:
            import scipy.sparse
        except ImportError:
            raise InputError(SCIPY_MISSING.format(path="*.npz"), param="output") from None
        matrix = result.matrix()
        rows, cols, values = (_numpy(t) for t in matrix.coo())
        scipy.sparse.save_npz(buffer, scipy.sparse.csr_matrix((values, (rows, cols)), shape=matrix.shape), compressed=True)
        del rows, cols, values
    arrays.append(("wrt", np.array(_wrt_order(result), dtype=str)))
    arrays.append(("output", result.output))
    arrays += [(f"input.{name}", tensor) for name, tensor in result.inputs.items()]
    for key, item in _items(result):
        name = f"result.{key_text(key)}"
        if not _structured(item):
            arrays.append((name, item))
        elif item.layout == "diagonal":
            arrays.append((f"{name}.diagonal", item.diagonal))
        else:
            arrays += [(f"{name}.rows", item.rows), (f"{name}.cols", item.cols), (f"{name}.values", item.values)]
    for extra in ("det", "v"):
        if getattr(result, extra, None) is not None:
            arrays.append((extra, getattr(result, extra)))
    for name, tensor in (getattr(result, "directions", None) or {}).items():
        arrays.append((f"direction.{name}", tensor))
    with zipfile.ZipFile(buffer, mode="a", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        if result.command in ("jacobian", "hessian") and matrix.layout == "dense":
            with archive.open("matrix.npy", mode="w", force_zip64=True) as member:
                for piece in _matrix_npy_pieces(matrix, result.output.dtype):
                    member.write(piece)
        for name, value in arrays:
            array = value if isinstance(value, np.ndarray) else _numpy(value)
            with archive.open(f"{name}.npy", mode="w", force_zip64=True) as member:
                npy_format.write_array(member, np.asanyarray(array), allow_pickle=False)


# -- csv ----------------------------------------------------------------------------------------


def to_csv(result: Any, precision: int | None = None) -> str:
    """One RFC 4180 table: a header row naming the columns, then rows of numbers.

    A Jacobian or Hessian is its classic matrix (one row per output element; the header names
    the columns ``r``, ``x[0]``, ``A[0,1]``); any other result is one row, its tensors side by
    side (``a[0],a[1],b``). ``numpy.loadtxt(f, delimiter=",", skiprows=1)`` reads the numbers.
    """
    return "".join(csv_lines(result, precision))


def csv_lines(result: Any, precision: int | None = None) -> Iterator[str]:
    """``to_csv`` in pieces (a row, or a part of a long row, at a time)."""
    import csv
    import io

    def row(fields: Sequence[Any]) -> str:
        text = io.StringIO()
        csv.writer(text, lineterminator="\r\n").writerow(fields)
        return text.getvalue()

    if isinstance(result, CheckReport):
        yield row(["method", "max_abs", "max_rel", "ok", "skipped", "note"])
        for m in result.methods:
            yield row([m.method, format_number(m.max_abs, None), format_number(m.max_rel, None), m.ok, m.skipped, m.note])
        return
    if result.command in ("jacobian", "hessian"):
        matrix = result.matrix()
        if matrix.layout != "dense":
            from jacli.errors import InputError

            raise InputError(
                f"CSV holds a dense table, but this Jacobian is {_layouts(result)} ({matrix.nnz} of "
                f"{math.prod(matrix.shape)} entries stored); write it as .npz or .pt, or ask for `layout` dense",
            )
        yield row(list(matrix.columns))
        for rows in _matrix_rows(matrix):
            for line in _plain_pieces(rows, precision):
                yield line.replace(" ", ",").replace("\n", "\r\n")
        return
    from jacli.result import Labels

    items = list(result.tensors())
    yield row(list(Labels([(key_text(key), tuple(tensor.shape)) for key, tensor in items])))
    values = [_numpy(tensor).reshape(-1) for _, tensor in items]
    for line in _plain_pieces(np.concatenate(values).reshape(1, -1), precision):
        yield line.replace(" ", ",").replace("\n", "\r\n")


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
    if _matrix_on(result):
        yield from _plain_matrix_lines(result.matrix(), precision)
        if symbolic is not None:
            for line in _symbolic_matrix_lines(result):
                yield f"# exact {line}\n"
    elif result.command == "hessian" and symbolic is None:
        yield from _plain_hessian(result, precision)
        return
    for key, item in [] if _matrix_on(result) else _items(result):
        if _structured(item):
            yield from _plain_structured(key_text(key), item, precision)
        else:
            array = _numpy(item)
            yield f"# {key_text(key)} {shape_text(array.shape)}\n"
            yield from _plain_pieces(_plain_matrix(array), precision)
        if symbolic is not None and key in symbolic:
            for line in _symbolic_lines(result, key):
                yield f"# exact {line}\n"
    if getattr(result, "det", None) is not None:
        yield "# det scalar\n"
        for row in _plain_rows(_numpy(result.det).reshape(1, 1), precision):
            yield row + "\n"
        if result.det_symbolic is not None:
            yield f"# exact det J: {result.det_symbolic}\n"


def _matrix_header(matrix: Any) -> str:
    layout = "" if matrix.layout == "dense" else f" {matrix.layout}"
    nnz = "" if matrix.layout == "dense" else f" nnz {matrix.nnz}"
    return (f"matrix{layout} {shape_text(matrix.shape)}{nnz}; rows {matrix.rows.summary()}; "
            f"columns {matrix.columns.summary()}")


def _plain_matrix_lines(matrix: Any, precision: int | None) -> Iterator[str]:
    """``# matrix 2x2; rows y[0]..y[1]; columns r, t``, then one line per row (dense), or one
    line per stored entry: row, column, value (sparse)."""
    yield f"# {_matrix_header(matrix)}\n"
    if matrix.layout == "dense":
        for rows in _matrix_rows(matrix):
            yield from _plain_pieces(rows, precision)
        return
    rows, cols, values = (_numpy(t) for t in matrix.coo())
    float32 = _is_float32(values)
    for start in range(0, len(values), PLAIN_PIECE):
        end = start + PLAIN_PIECE
        yield "".join(
            f"{int(i)} {int(j)} {format_number(float(v), precision, float32)}\n"
            for i, j, v in zip(rows[start:end], cols[start:end], values[start:end])
        )


def _symbolic_matrix_lines(result: Any) -> list[str]:
    """The exact derivative entry by entry in the matrix's row-major order, each labelled as the
    pretty view labels it: ``∂y[0]/∂x[1]: 0`` (or the diagonal, for elementwise expressions)."""
    diagonal = getattr(result, "diagonal", None)
    if diagonal is not None:
        return [_diagonal_line(result, name, derivative) for name, derivative in diagonal.items()]
    symbolic = result.symbolic
    if result.command == "hessian":
        names = list(dict.fromkeys(a for a, _ in result.blocks))
        rows = [np.concatenate([symbolic[a, b].reshape(result.inputs[a].numel(), -1) for b in names], axis=1)
                for a in names]
        entries = np.concatenate(rows, axis=0)
    else:
        count = math.prod(result.output.shape)
        entries = np.concatenate([symbolic[name].reshape(count, -1) for name in result.blocks], axis=1)
    matrix = result.matrix()
    labels = (_entry_label(result, row, column) for row in matrix.rows for column in matrix.columns)
    return [f"{label}: {e}" for label, e in zip(labels, entries.reshape(-1))]


def _entry_label(result: Any, row: str, column: str) -> str:
    """One entry's derivative: ``∂y[0]/∂x[1]``, or ``∂²y/∂a∂b[1]`` in a Hessian (whose rows and
    columns are both inputs' elements)."""
    if result.command == "hessian":
        y = _output_symbol(result)
        return f"∂²{y}/∂{row}²" if row == column else f"∂²{y}/∂{row}∂{column}"
    return f"∂{row}/∂{column}"


def _diagonal_line(result: Any, name: str, derivative: Any) -> str:
    """An elementwise block's one exact form, as the pretty view says it: ``∂y[i]/∂x[i]: 2*x[i]``."""
    y = _output_symbol(result)
    return f"∂{y}[i]/∂{name}[i]: {derivative}"


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
    for row in matrix:
        yield " ".join(_number_texts(row, precision))


PLAIN_PIECE = 4096
"""Numbers formatted per piece of plain output: a long row is written in pieces, not as one string."""


def _plain_pieces(matrix: np.ndarray, precision: int | None) -> Iterator[str]:
    """The rows of ``_plain_rows`` with their newlines, in pieces of at most PLAIN_PIECE numbers."""
    for row in matrix:
        for start in range(0, len(row), PLAIN_PIECE):
            piece = " ".join(_number_texts(row[start : start + PLAIN_PIECE], precision))
            end = "\n" if start + PLAIN_PIECE >= len(row) else " "
            yield piece + end


def _symbolic_lines(result: Any, key: Key) -> list[str]:
    """The exact derivative in one line per entry (or the diagonal, for elementwise expressions)."""
    diagonal = getattr(result, "diagonal", None)
    if diagonal is not None and key in diagonal:
        return [_diagonal_line(result, key, diagonal[key])]
    entries = result.symbolic[key]
    if isinstance(key, tuple):  # a Hessian block: its rows are a's elements, its columns b's
        a, b = key
        rows, columns = Labels([(a, result.inputs[a].shape)]), Labels([(b, result.inputs[b].shape)])
    else:
        rows, columns = Labels([(_output_symbol(result), result.output.shape)]), Labels([(key, result.inputs[key].shape)])
    labels = (_entry_label(result, row, column) for row in rows for column in columns)
    return [f"{label}: {e}" for label, e in zip(labels, entries.reshape(-1))]


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
    values = [v + 0.0 for v in values]  # no -0.0: zeros are written without a sign
    if precision is None and not float32:
        return list(map(repr, values))  # nan, inf and -inf included
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
                texts.append(f'"{escaped[a]},{escaped[b]}": ' + "".join(_json_pieces(_json_tensor(block))))
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
    parts: list[RenderableType | None] = [_header(result, digits)]
    if getattr(result, "symbolic", None) is not None:
        parts += [None, _Lines(_symbolic_view(result), keep_width=True)]
    parts.append(None)
    # a Hessian's blocks are views made on demand: only a Jacobian's can be structured
    structured = result.command == "jacobian" and any(_structured(block) for block in result.blocks.values())
    scalars = all(t.dim() == 0 for t in result.inputs.values())
    if result.command in ("jacobian", "hessian") and not structured and (scalars or _matrix_on(result)):
        parts += _classic_matrix(result, digits, width, full)
    elif structured and _matrix_on(result):
        parts += _sparse_matrix_view(result, digits, full)
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
        console.print(Text("") if part is None else part if isinstance(part, (_Lines, _Grid)) else _Lines(part), crop=False)


def _output_symbol(result: Any) -> str:
    """The output's name in the pretty view: ``y``, as in ``y.backward(v)``, unless an input is
    called ``y``; then the first of f, g, h, out, out2, ... that no input is called."""
    return output_symbol(result.inputs)


def _method_text(result: Any) -> str:
    template = METHOD_NAMES.get((result.command, result.method)) or METHOD_NAMES.get(result.method, result.method)
    wrt = list(result.wrt)
    return template.format(
        y=_output_symbol(result),
        xs=wrt[0] if len(wrt) == 1 else "(" + ", ".join(wrt) + ")",
        grads=", ".join(f"{name}.grad" for name in wrt),
    ) if "{" in template else template


def _header(result: Any, digits: int = DEFAULT_PRECISION) -> Table:
    """What was computed, from what: the inputs, the output ``y`` and ``v`` with their shapes and
    values (summarized when big, see ``_inline``), the method and where it ran."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", justify="right")
    grid.add_column(overflow="fold")  # a narrow console folds long words; it never hides them
    grid.add_row(result.command, Text(result.expression, style="bold"))
    for name, tensor in result.inputs.items():
        mark = "" if name in result.wrt else "  (held constant)"
        grid.add_row("input", Text(f"{name}: shape {_shape_tuple(tensor.shape)} = {_inline(tensor, digits)}{mark}"))
    grid.add_row("output", Text(
        f"{_output_symbol(result)}: shape {_shape_tuple(result.output.shape)} = {_inline(result.output, digits)}"))
    for name, direction in getattr(result, "directions", {}).items():
        grid.add_row("v", Text(f"{name}: shape {_shape_tuple(direction.shape)} (like {name}) = {_inline(direction, digits)}"))
    if getattr(result, "v", None) is not None:
        grid.add_row("v", Text(f"shape {_shape_tuple(result.v.shape)} (like the output) = {_inline(result.v, digits)}"))
    grid.add_row("method", Text(_method_text(result)))
    if getattr(result, "how", None) is not None:
        grid.add_row("how", Text(result.how))
    grid.add_row("on", Text(f"{result.device}, {result.dtype}"))
    return grid


INLINE_SIZE = 10
"""Tensors of up to this many numbers are shown whole in the header; larger ones by their ends."""


def _inline(tensor: Any, digits: int) -> str:
    """A tensor on one line, nested like Python lists: ``[[1, 2], [3, 4]]``; a large one by the
    ends of each axis (2 numbers at each end of the last, 1 of the others) with ``…`` between,
    as torch and numpy summarize, short enough for one line. One notation for all shown."""
    array = _numpy(tensor) if not isinstance(tensor, np.ndarray) else tensor
    if array.ndim == 0:
        return _column_texts(array.reshape(1), digits)[0]
    summarize = array.size > INLINE_SIZE
    edges = [2 if axis == array.ndim - 1 else 1 for axis in range(array.ndim)]
    kept = [_edges(n, edge, not summarize) for n, edge in zip(array.shape, edges)]
    shown = array[np.ix_(*[[i for i in axis if i is not None] for axis in kept])]
    texts = iter(_column_texts(shown.reshape(-1), digits))

    def nested(axis: int) -> str:
        if axis == array.ndim - 1:
            return "[" + ", ".join("…" if i is None else next(texts) for i in kept[axis]) + "]"
        return "[" + ", ".join("…" if i is None else nested(axis + 1) for i in kept[axis]) + "]"

    return nested(0)


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
        columns = [result.symbolic[name].reshape(-1, 1) for name in result.blocks]  # the matrix's column order
        parts.append(_pretty_sympy(sp.Matrix(np.concatenate(columns, axis=1).tolist())))
    elif result.command == "hessian" and scalars:
        names = list(dict.fromkeys(a for a, _ in result.blocks))  # the matrix's order
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
    """One number on its own (a scalar, a determinant)."""
    return _column_cells([value], digits, rich_text=True)[0]


def _column_cells(values: Any, digits: int, rich_text: bool = False) -> list[Any]:
    """``_column_texts`` as cells: zeros dimmed, NaN and infinities red; ``_Styled`` strings
    for a ``_Grid``, or rich ``Text`` for a rich Table."""
    values = np.asarray(values, dtype=float).reshape(-1)
    texts = _column_texts(values, digits)
    zero = (values == 0).tolist()
    cells: list[Any] = []
    for text, is_zero in zip(texts, zero):
        style = "red" if text in ("nan", "inf", "-inf") else "dim" if is_zero else ""
        cells.append(Text(text, style=style) if rich_text else _Styled(text, style) if style else text)
    return cells


def _column_texts(values: np.ndarray, digits: int) -> list[str]:
    """Numbers that are read together (a column, a vector) in one notation, at ``digits``
    significant digits: fixed when each of them is, else all scientific (``1.5e+00``), never a
    mix of ``0.001`` and ``1e-07`` in one column. Zero is ``0`` in either."""
    texts = [format_number(v, digits) for v in np.asarray(values, dtype=float).reshape(-1).tolist()]
    if not any("e" in t for t in texts if t not in ("nan", "inf", "-inf")):
        return texts
    return [t if t in ("nan", "inf", "-inf", "0") else _scientific(float(t), digits) for t in texts]


def _scientific(value: float, digits: int) -> str:
    """``value`` as ``1.23457e+03``: ``digits`` significant digits, trailing zeros dropped."""
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}"


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
    """The classic m×n Jacobian (or n×n Hessian) matrix (``result.matrix()``), one labelled row
    per output element and one labelled column per input element (split into blocks of columns
    when there are more than fit). With a non-scalar input, a matrix too big to list is
    summarized by index, with a line that says which labels the rows and columns run through."""
    y = _output_symbol(result)
    matrix = result.matrix()
    names = ", ".join(_edge_names([name for name, _ in matrix.columns.parts], COLUMN_EDGE, full))
    hessian = result.command == "hessian"
    title = f"Hessian: ∂²{y}/∂({names})²" if hessian else f"Jacobian: ∂{y}/∂({names})"
    m, n = matrix.shape
    scalars = all(not shape for _, shape in matrix.columns.parts)
    big = m > 2 * ROW_EDGE + 1 or n > 2 * COLUMN_EDGE + 1
    # a Jacobian of scalars keeps every labelled column (split into blocks); a Hessian of many
    # scalars (n² entries) and any non-scalar matrix are summarized by index
    if not full and big and (not scalars or (hessian and n > 2 * COLUMN_EDGE + 1)):
        return [
            Text(f"{title}  {m}x{n}: rows {matrix.rows.summary()}; columns {matrix.columns.summary()}"),
            *_matrix_tables(_numpy(matrix.to_dense()), digits, full, width),
        ]
    values = _numpy(matrix.to_dense()) if m * n else np.zeros((m, n))
    labels = [f"∂/∂{label}" for label in matrix.rows] if hessian else list(matrix.rows)
    headers = [f"∂/∂{label}" for label in matrix.columns]
    columns = [_column_cells(values[:, j], digits, rich_text=True) for j in range(n)]  # one notation each
    cells = [list(row) for row in zip(*columns)] if n else [[] for _ in range(m)]
    label_width = max([1] + [cell_len(label) for label in labels])
    widths = [max([cell_len(h)] + [c.cell_len for c in column]) for h, column in zip(headers, columns)]
    parts: list[RenderableType] = []
    for block in _column_blocks(label_width, widths, width, boxed=True):
        table = Table(title=Text(title) if not parts else None, title_justify="left")
        table.add_column("", style="bold", no_wrap=True)
        for j in block:
            table.add_column(Text(headers[j]), justify="right", no_wrap=True)
        for label, row in zip(labels, cells):
            table.add_row(Text(label), *(row[j] for j in block))
        parts.append(_Lines(table, keep_width=True))
    return parts


def _sparse_matrix_view(result: Any, digits: int, full: bool) -> list[RenderableType]:
    """A structured Jacobian's classic matrix: how many entries are stored, then the first of
    them as (row, column, value), labelled as the matrix's rows and columns."""
    matrix = result.matrix()
    names = ", ".join(name for name, _ in matrix.columns.parts)
    m, n = matrix.shape
    rows, cols, values = matrix.coo()
    parts: list[RenderableType] = [Text.assemble(
        (f"Jacobian: ∂{_output_symbol(result)}/∂({names})", "bold"),
        f"  {m}x{n}, sparse: nnz {len(values)} of {m * n} entries; rows {matrix.rows.summary()}; "
        f"columns {matrix.columns.summary()}",
    )]
    shown = len(values) if full else min(len(values), SPARSE_ENTRIES)
    if not shown:
        return parts
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("row", justify="left", no_wrap=True)
    table.add_column("column", justify="left", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    cells = _column_cells(_numpy(values[:shown]), digits, rich_text=True)  # one notation for the column
    for i, j, cell in zip(_numpy(rows[:shown]), _numpy(cols[:shown]), cells):
        table.add_row(Text(matrix.rows[int(i)]), Text(matrix.columns[int(j)]), cell)
    parts.append(_Lines(table, keep_width=True))
    if shown < len(values):
        parts.append(Text(f"… {len(values) - shown} more entries (--full shows all)", style="dim"))
    return parts


class _Styled(str):
    """A cell's text with a rich style name (``dim`` zeros, ``red`` NaN); plain cells are str."""

    style: str = ""

    def __new__(cls, text: str, style: str) -> "_Styled":
        cell = super().__new__(cls, text)
        cell.style = style
        return cell


def _width(text: str) -> int:
    return len(text) if text.isascii() else cell_len(text)


class _Grid:
    """A borderless table drawn as rich draws ``Table(show_edge=False, pad_edge=False)`` with
    every column ``no_wrap``: the same characters, line for line, with no trailing spaces.

    NOTE [fast tables]: rich measures and wraps every cell of a Table, which for a 600x600
    ``--full`` matrix took about 35 s; a matrix's cells never wrap, so their widths are known,
    each row is joined as one string, and only styled cells (dim zeros, red NaN) split it into
    Segments. ``test_render`` checks that rich's Table gives the same text.

    ``columns``: (header, cells, justify) per column; cells are str (or ``_Styled``); the first
    ``labels`` columns are bold.
    """

    def __init__(self, columns: Sequence[tuple[str, Sequence[str], str]], labels: int = 1) -> None:
        self.columns = columns
        self.labels = labels
        self.widths = [max([_width(header)] + [_width(c) for c in cells]) for header, cells, _ in columns]

    @property
    def width(self) -> int:
        return _table_width(self.widths)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def _padded(self, k: int, text: str) -> str:
        pad = " " * (self.widths[k] - _width(text))
        return pad + text if self.columns[k][2] == "right" else text + pad

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        from rich.style import Style

        bold = Style(bold=True)
        styles: dict[str, Any] = {}
        count = len(self.columns)
        labels = min(self.labels, count)

        def line(cells: Sequence[str], header: bool) -> Iterator[Segment]:
            texts = [self._padded(k, c) for k, c in enumerate(cells)]
            texts[-1] = texts[-1].rstrip()
            rule = " ┃ " if header else " │ "
            if header:
                runs = [(text, bold) for text in texts]
            else:
                runs = [(text, bold if k < labels else None) for k, text in enumerate(texts)]
                for k in range(labels, count):
                    style = getattr(cells[k], "style", "")
                    if style:
                        if style not in styles:
                            styles[style] = console.get_style(style)
                        runs[k] = (texts[k], styles[style])
            # runs of one style joined: a row of plain numbers is one Segment after its label
            start = 0
            for k in range(1, count + 1):
                if k == count or runs[k][1] is not runs[start][1]:
                    yield Segment(rule.join(t for t, _ in runs[start:k]), runs[start][1])
                    if k < count:
                        yield Segment(rule)
                    start = k
            yield Segment.line()

        yield from line([header for header, _, _ in self.columns], True)
        last = count - 1
        yield Segment("╇".join("━" * (width + (k > 0) + (k < last)) for k, width in enumerate(self.widths)))
        yield Segment.line()
        for cells in zip(*(cells for _, cells, _ in self.columns)):
            yield from line(cells, False)


def _plain(cell: Text | str) -> str:
    return cell if isinstance(cell, str) else cell.plain


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
    columns = [
        ("output", [_bracket(y, [str(int(axis[k])) for axis in outputs]) for k in range(shown)], "left"),
        ("input", [_bracket(name, [str(int(axis[k])) for axis in inputs]) for k in range(shown)], "left"),
        (_derivative(result, key), _column_cells(values, digits), "right"),
    ]
    parts.append(_Grid(columns, labels=0))
    if shown < block.nnz:
        parts.append(Text(f"… {block.nnz - shown} more entries (--full shows all)", style="dim"))
    return parts


def _tensor_view(tensor: Any, digits: int, full: bool, label: str, width: int) -> list[RenderableType]:
    array = _numpy(tensor)
    if array.ndim == 0:
        return [_cell(float(array), digits)]
    if array.ndim == 1:
        return _vector_table(array, digits, full, width)
    if array.ndim == 2:
        return _matrix_tables(array, digits, full, width)
    return list(_blocks(array, digits, full, label, width))


def _vector_table(array: np.ndarray, digits: int, full: bool, width: int) -> list[RenderableType]:
    """A vector in rows of ``VECTOR_WIDTH`` (fewer, if the console is too narrow for that many):
    column headers are offsets, row labels start indices; one notation for all its numbers."""
    summarized = not full and len(array) > 2 * 3 * VECTOR_WIDTH
    shown = np.concatenate([array[: 3 * VECTOR_WIDTH], array[-3 * VECTOR_WIDTH :]]) if summarized else array
    probe = _column_texts(shown, digits)
    cell_width = max(cell_len(t) for t in probe)
    per_row = min(len(array), VECTOR_WIDTH)
    while per_row > 1:
        wrapped = len(array) > per_row
        labels = [len(str(len(array) - 1))] if wrapped else []
        header = len(f"+{per_row - 1}") if wrapped else len(str(per_row - 1))
        if _table_width(labels + [max(cell_width, header)] * per_row) <= width:
            break
        per_row -= 1
    wrapped = len(array) > per_row
    rows = math.ceil(len(array) / per_row)
    edge = math.ceil(3 * VECTOR_WIDTH / per_row)  # about as many numbers as 3 rows of VECTOR_WIDTH
    row_indices = _edges(rows, edge, full)
    kept = [i for i in row_indices if i is not None]
    starts = [row * per_row for row in kept]
    values = np.concatenate([array[s : s + per_row] for s in starts]) if kept else array[:0]
    cells = iter(_column_cells(values, digits))
    grid_rows: list[list[Text | str]] = []
    for row in row_indices:
        if row is None:
            grid_rows.append(["⋮"] * (per_row + wrapped))
            continue
        start = row * per_row
        count = min(per_row, len(array) - start)
        line: list[Text | str] = [next(cells) for _ in range(count)] + [""] * (per_row - count)
        grid_rows.append(([str(start)] if wrapped else []) + line)
    headers = ([""] if wrapped else []) + [f"+{offset}" if wrapped else str(offset) for offset in range(per_row)]
    columns = [(header, [r[k] for r in grid_rows], "right") for k, header in enumerate(headers)]
    parts: list[RenderableType] = [_Grid(columns, labels=1 if wrapped else 0)]
    hidden = len(array) - len(values)
    if hidden:
        parts.append(_hidden_note(f"{hidden:,} of {len(array):,} values"))
    return parts


def _hidden_note(what: str) -> Text:
    return Text(f"… {what} not shown; --full shows all", style="dim")


def _matrix_tables(array: np.ndarray, digits: int, full: bool, width: int) -> list[RenderableType]:
    """A matrix with row and column indices. Summarized, it shows up to ``COLUMN_EDGE`` columns
    at each end (fewer on a narrow console); whatever does not fit the console's width is split
    into blocks of columns, each captioned with the columns it holds. Each column is in one
    notation (``_column_texts``); a summary says how many rows and columns it leaves out."""
    rows, columns = array.shape
    row_indices = _edges(rows, ROW_EDGE, full)
    kept_rows = [i for i in row_indices if i is not None]
    label_width = max([1] + [len(str(i)) for i in kept_rows])
    texts: dict[int, list[Text | str]] = {}

    def column_width(j: int | None) -> int:
        if j is None:
            return 1
        if j not in texts:
            cells = iter(_column_cells(array[kept_rows, j], digits))
            texts[j] = ["⋮" if i is None else next(cells) for i in row_indices]
        return max([len(str(j))] + [_width(t) for t in texts[j]])

    edges = [COLUMN_EDGE] if full else range(COLUMN_EDGE, 0, -1)
    for edge in edges:
        column_indices = _edges(columns, edge, full)
        widths = [column_width(j) for j in column_indices]
        if _table_width([label_width, *widths]) <= width:
            break
    gaps = [k for k, j in enumerate(column_indices) if j is None]
    blocks = _column_blocks(label_width, widths, width, sticky=gaps)
    labels = ["⋮" if i is None else str(i) for i in row_indices]
    parts: list[RenderableType] = []
    for block in blocks:
        shown = [column_indices[k] for k in block]
        if len(blocks) > 1:
            parts.append(Text(f"columns {_ranges_text(shown)} of {columns}", style="dim"))
        grid_columns = [("", labels, "right")] + [
            ("…", ["⋮" if i is None else "…" for i in row_indices], "right") if j is None else (str(j), texts[j], "right")
            for j in shown
        ]
        parts.append(_Grid(grid_columns))
    hidden_rows, hidden_columns = rows - len(kept_rows), columns - sum(j is not None for j in column_indices)
    if hidden_rows or hidden_columns:
        counted = [f"{hidden:,} of {total:,} {what}" for hidden, total, what in
                   ((hidden_rows, rows, "rows"), (hidden_columns, columns, "columns")) if hidden]
        parts.append(_hidden_note(", ".join(counted)))
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
