"""Writing a ``PointsResult`` (many points, ``batch_axis``): JSON, plain, CSV and pretty.

JSON is one document: the header ``--format json`` writes for one point, ``"points"`` (how many,
along which axis of which inputs), then the output and each result with the points on their
leading axis. Plain text follows plain's one rule (``# name shape``, then rows along the last
axis), the shape starting with the number of points. CSV is one row per point: a ``point``
column, then that point's numbers, its results side by side (the header names them ``x[0,1]``:
element [0, 1] of the result for x at that point). Pretty shows the first points as the command
shows one point, and says how many more there are.

``point_documents`` writes each point as ``--format json`` writes that point computed alone, one
line each, without formatting a document per point (what ``jacli batch`` prints).
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from rich.console import Console
from rich.text import Text

from jacli.render import (
    _json_pieces,
    _json_tensor,
    _number_texts,
    _Numbers,
    _numpy,
    _plain_matrix,
    _plain_pieces,
    json_document,
    json_header,
    print_pretty as print_one,
    shape_text,
)
from jacli.result import Labels, PointsResult, key_text

SHOWN_POINTS = 3
"""Points the pretty view shows without ``full``."""


def _points_entry(result: PointsResult) -> dict[str, Any]:
    batch = result.batch
    entry: dict[str, Any] = {"count": batch.size, "axis": batch.axis, "inputs": list(batch.names)}
    if result.command == "vjp":
        entry["v_per_point"] = result.v_batched
    if result.command == "jvp":
        entry["u_per_point"] = [name for name, each in result.directions_batched.items() if each]
    return entry


def json_chunks(result: PointsResult) -> Iterator[str]:
    """The one JSON document, in pieces (the numbers streamed as they are formatted)."""
    document = {
        **json_header(result),
        "points": _points_entry(result),
        "output": _json_tensor(result.output),
        "result": {key_text(key): _json_tensor(tensor) for key, tensor in result.tensors()},
    }
    if result.matrix_asked:
        whole, rows, columns = result.matrices()
        document["matrix"] = {"rows": list(rows), "columns": list(columns), **_json_tensor(whole)}
    yield from _json_pieces(document)
    yield "\n"


def plain_lines(result: PointsResult, precision: int | None = None) -> Iterator[str]:
    """``# name shape`` and the rows of each result; the shape starts with the points. With
    ``matrix`` asked, each point's classic matrix instead, as ``--matrix`` writes one point's."""
    if result.matrix_asked:
        whole, rows, columns = result.matrices()
        array = _numpy(whole)
        yield f"# matrix {shape_text(array.shape)}; rows {rows.summary()}; columns {columns.summary()}\n"
        yield from _plain_pieces(_plain_matrix(array), precision)
        return
    for key, tensor in result.tensors():
        array = _numpy(tensor)
        yield f"# {key_text(key)} {shape_text(array.shape)}\n"
        yield from _plain_pieces(_plain_matrix(array), precision)


def csv_lines(result: PointsResult, precision: int | None = None) -> Iterator[str]:
    """A header row, then one row per point: its index, then its numbers."""
    import csv
    import io

    def row(fields: Sequence[Any]) -> str:
        text = io.StringIO()
        csv.writer(text, lineterminator="\r\n").writerow(fields)
        return text.getvalue()

    items = list(result.tensors())
    labels = Labels([(key_text(key), tuple(tensor.shape[1:])) for key, tensor in items])
    yield row(["point", *labels])
    size = result.points
    flat = np.concatenate([_numpy(tensor).reshape(size, -1) for _, tensor in items], axis=1)
    index = np.arange(size, dtype=flat.dtype).reshape(-1, 1)
    for start in range(0, size, 1024):
        for line in _plain_pieces(np.concatenate([index[start:start + 1024], flat[start:start + 1024]], axis=1),
                                  precision):
            yield _point_index(line).replace(" ", ",").replace("\n", "\r\n")


def _point_index(line: str) -> str:
    """The point's index as an integer (it went through the float formatting with the numbers)."""
    first, _, rest = line.partition(" ")
    return f"{int(float(first))} {rest}" if rest else f"{int(float(first))}\n"


def print_pretty(result: PointsResult, console: Console, precision: int | None = None, full: bool = False) -> None:
    """A line on the points, then the first points as the command shows one point."""
    batch = result.batch
    size = batch.size
    names = ", ".join(batch.names)
    console.print(Text.assemble(
        (f"{size:,} point{'s' if size != 1 else ''}", "bold"),
        f" along axis {batch.axis} of {names}", (f"; {result.how}" if result.how else "", "dim"),
    ), crop=False)
    shown = range(size) if full else range(min(size, SHOWN_POINTS))
    for index in shown:
        console.print(Text(""))
        console.rule(Text(f"point {index}", style="bold"), align="left")
        print_one(result.point(index), console, precision, full)
    if len(shown) < size:
        console.print(Text(""))
        console.print(Text(f"… {size - len(shown):,} more points (--full shows all; -f plain, json or csv writes "
                           "every number)", style="dim"), crop=False)


def to_chunks(result: PointsResult, suffix: str, precision: int | None = None) -> Iterator[bytes]:
    """A file's bytes: ``.json``, ``.txt`` (plain), ``.csv``, ``.npy`` (the one result), ``.npz``
    or ``.pt`` (``output``, the inputs and each result by name, the points on the leading axis)."""
    import io

    kind = {".txt": "plain", ".json": "json", ".csv": "csv"}.get(suffix, suffix)
    if kind in ("plain", "csv", "json"):
        lines = {"plain": plain_lines, "csv": csv_lines}[kind](result, precision) if kind != "json" else json_chunks(result)
        for line in lines:
            yield line.encode("utf-8")
        return
    items = [(key_text(key), tensor.detach().cpu()) for key, tensor in result.tensors()]
    buffer = io.BytesIO()
    if kind == ".npy":
        from jacli.errors import InputError

        if len(items) != 1:
            raise InputError(
                f".npy holds one array, and these points have {len(items)} results ({', '.join(k for k, _ in items)}); "
                "write .npz or .pt for all of them, or pick one input with `wrt`", param="output",
            )
        np.save(buffer, items[0][1].numpy())
    elif kind == ".npz":
        arrays = {"output": result.output.detach().cpu().numpy(),
                  **{f"input.{name}": t.detach().cpu().numpy() for name, t in result.inputs.items()},
                  **{f"result.{key}": t.numpy() for key, t in items}}
        if result.v is not None:
            arrays["v"] = result.v.detach().cpu().numpy()
        np.savez(buffer, **arrays)
    else:
        import torch

        torch.save({
            "command": result.command, "expression": result.expression, "points": _points_entry(result),
            "output": result.output.detach().cpu(),
            "inputs": {name: t.detach().cpu() for name, t in result.inputs.items()},
            "result": dict(items), **({"v": result.v.detach().cpu()} if result.v is not None else {}),
        }, buffer)
    yield buffer.getvalue()


# -- one line per point (jacli batch) -------------------------------------------------------------
#
# NOTE [a template per group]
# A group of jobs differs only in its numbers (and the specs they were written as), so point 0's
# document is made once by the one-point renderer, with a numbered slot where each point's own
# text goes, and split into a template. Every point then costs joins of numbers formatted for
# the whole group at once: about 10 µs a line, where rendering a document costs 200 µs.
# test_batch checks every line against ``to_json`` of ``result.point(i)``.


class _Slot(_Numbers):
    """A place in the template: ``\\x00k\\x00``."""

    def __init__(self, index: int) -> None:
        self.index = index

    def pieces(self) -> Iterator[str]:
        yield f"\x00{self.index}\x00"


def _nested(texts: Sequence[str], shape: tuple[int, ...]) -> str:
    """Number texts in C order as JSON nested lists of ``shape`` (what ``_Numbers`` writes)."""
    if not shape:
        return texts[0]
    if len(shape) == 1:
        return "[" + ", ".join(texts) + "]"
    step = len(texts) // shape[0]
    return "[" + ", ".join(_nested(texts[k * step:(k + 1) * step], shape[1:]) for k in range(shape[0])) + "]"


def _per_point(tensor: Any, size: int) -> list[str]:
    """Each point's numbers of ``tensor`` (points on its leading axis) as JSON, formatted at once."""
    array = _numpy(tensor)
    shape = tuple(array.shape[1:])
    count = int(np.prod(shape)) if shape else 1
    texts = _number_texts(array.reshape(-1), None, json_strings=True)
    if not shape:
        return texts
    if len(shape) == 1:
        return ["[" + ", ".join(texts[i * count:(i + 1) * count]) + "]" for i in range(size)]
    if len(shape) == 2:  # a matrix: its rows first, then each point's list of rows
        width = shape[1]
        rows = ["[" + ", ".join(texts[k:k + width]) + "]" for k in range(0, len(texts), width)]
        return ["[" + ", ".join(rows[i * shape[0]:(i + 1) * shape[0]]) + "]" for i in range(size)]
    return [_nested(texts[i * count:(i + 1) * count], shape) for i in range(size)]


def _json_string(text: Any) -> str:
    """``json.dumps(text)``, without its call for the plain ASCII of most specs."""
    if isinstance(text, str) and text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


def point_documents(result: PointsResult, given: Sequence[Mapping[str, str]]) -> list[str]:
    """Each point's JSON document as ``--format json`` writes that point's result, one line
    each (no newline); ``given[i]`` says how each input of point i was written."""
    size = result.points
    first = result.point(0, given[0])
    document = json_document(first)
    columns: list[list[str]] = []

    def slot(column: list[str]) -> _Slot:
        columns.append(column)
        return _Slot(len(columns) - 1)

    batched = result.batch.axes
    for name, entry in document["inputs"].items():
        if name in batched:
            entry["values"] = slot(_per_point(result.inputs[name].movedim(batched[name], 0), size))
        entry["spec"] = slot([_json_string(each.get(name)) for each in given])
    if result.v is not None and result.v_batched:
        document["v"]["values"] = slot(_per_point(result.v, size))
    for name, each in result.directions_batched.items():
        if each:
            document["u"][name]["values"] = slot(_per_point(result.directions[name], size))
    document["output"]["values"] = slot(_per_point(result.output, size))
    for key, tensor in result.tensors():
        document["result"][key_text(key)]["values"] = slot(_per_point(tensor, size))
    if "matrix" in document:
        rows = first.matrix().shape[0]
        whole = np.concatenate([_numpy(t).reshape(size, rows, -1) for _, t in result.tensors()], axis=2)
        document["matrix"]["values"] = slot(_per_point(whole, size))
    pieces = "".join(_json_pieces(document)).split("\x00")
    interleaved: list[Any] = [itertools.repeat(pieces[0])]
    for k, text in zip(pieces[1::2], pieces[2::2]):
        interleaved += [columns[int(k)], itertools.repeat(text)]
    return list(map("".join, zip(*interleaved)))


__all__ = ["json_chunks", "plain_lines", "csv_lines", "print_pretty", "to_chunks", "point_documents"]
