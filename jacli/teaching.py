"""What the teaching views (``jacli.accumulate``, ``jacli.graph``, ``jacli.answer``) share: how
they write a number and a small tensor in each format, and the interface the CLI calls.

A teaching result formats itself: ``print_pretty(console, precision)`` for a terminal,
``text(format, precision)`` for ``plain`` and ``json`` (and ``dot`` for the graph). These
results are small by nature (a learner's formula at a point), so they are formatted whole.
The numbers are written as jacli's renderers write them: every digit in plain and JSON,
``precision`` (default 6) significant ones in the pretty view, non-finite ones as strings in JSON.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

from jacli.errors import InputError

PRETTY_DIGITS = 6


def number(value: float, precision: int | None) -> str:
    """A number: every digit (``repr``) or ``precision`` significant ones; -0 as 0."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    value = 0.0 if value == 0 else float(value)
    if precision is None:
        text = repr(value)
        return text
    return f"{value:.{precision}g}"


def json_number(value: float) -> Any:
    """A number for JSON: non-finite ones as "nan", "inf", "-inf" (strict JSON has none)."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def json_tensor(tensor: Any) -> dict[str, Any]:
    """``{"shape": [...], "values": nested lists}``, as jacli's JSON writes a tensor."""
    values = tensor.detach().cpu().double()

    def nested(t: Any) -> Any:
        return json_number(t.item()) if t.dim() == 0 else [nested(row) for row in t]

    return {"shape": list(tensor.shape), "values": nested(values)}


def shape_text(shape: Any) -> str:
    """``(5, 5)``, ``(3,)``, ``()``."""
    shape = tuple(shape)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def plain_tensor(name: str, tensor: Any, precision: int | None) -> Iterator[str]:
    """``# name 5x5`` and one line per row (a vector on one line), as ``-f plain`` writes."""
    values = tensor.detach().cpu().double()
    shape = "x".join(map(str, values.shape)) or "scalar"
    yield f"# {name} {shape}\n"
    rows = values.reshape(1, -1) if values.dim() <= 1 else values.reshape(values.shape[0], -1)
    for row in rows:
        yield " ".join(number(v, precision) for v in row.tolist()) + "\n"


def pretty_tensor(tensor: Any, precision: int | None) -> Any:
    """A rich table of a scalar, vector or matrix (rows and columns numbered); a tensor of more
    axes as its rows, flattened after the first axis."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    digits = PRETTY_DIGITS if precision is None else precision
    values = tensor.detach().cpu().double()
    if values.dim() == 0:
        return Text(number(values.item(), digits))
    matrix = values.reshape(1, -1) if values.dim() == 1 else values.reshape(values.shape[0], -1)
    table = Table(box=box.HEAVY_HEAD, show_edge=False, pad_edge=False)
    table.add_column("")
    for column in range(matrix.shape[1]):
        table.add_column(str(column), justify="right")
    for index, row in enumerate(matrix.tolist()):
        table.add_row(str(index) if values.dim() > 1 else "", *(number(v, digits) for v in row))
    return table


def refuse_format(what: str, chosen: str, formats: str) -> InputError:
    """The error for a format a teaching view does not write (a usage error on the command line)."""
    return InputError(f"{what} is written as {formats}, not {chosen}; choose one of those with `format`",
                      param="format", usage=True)


class Unpadded:
    """A renderable printed line by line with no trailing spaces: rich pads a grid's cells and a
    table's rows to their width, and a line it wraps keeps the space it broke at; a pipe (or
    ``diff``, or a test) should see neither. Every pretty view prints through it (``render`` too).

    With ``keep_width``, it is laid out at least as wide as it needs, even beyond the console:
    rich would otherwise shrink a table's columns until its digits are cut off; the line is then
    longer than the terminal, which wraps it (or ``less -S`` scrolls)."""

    def __init__(self, renderable: Any, keep_width: bool = False) -> None:
        self.renderable = renderable
        self.keep_width = keep_width

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.measure import Measurement
        from rich.segment import Segment

        width = options.max_width
        if self.keep_width:
            needed = Measurement.get(console, options.update_width(1 << 20), self.renderable).maximum
            width = max(width, needed)
        for line in console.render_lines(self.renderable, options.update_width(width), pad=False):
            while line and not line[-1].control and not line[-1].text.rstrip():
                line.pop()
            if line and not line[-1].control:
                line[-1] = Segment(line[-1].text.rstrip(), line[-1].style)
            yield from line
            yield Segment.line()


def print_unpadded(console: Any, *renderables: Any) -> None:
    """``console.print`` of each renderable (none: an empty line) without trailing spaces."""
    from rich.text import Text

    for renderable in renderables or (Text(""),):
        console.print(Unpadded(renderable))
