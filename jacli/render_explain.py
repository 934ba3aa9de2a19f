"""How ``--explain`` and ``--trace`` are shown: a rich panel and table on a terminal, plain text
otherwise, JSON-ready objects for ``-f json`` (which the CLI puts into the result's document under
``explanation`` and ``trace``, so stdout stays one JSON document). Formatting only: the facts are
worked out by ``jacli.explain`` and ``jacli.trace``.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

DEFAULT_DIGITS = 6
"""Significant digits of the trace's numbers (a table read by hand), unless ``precision`` says."""


def _number(value: float, digits: int) -> str:
    return f"{float(value) + 0.0:.{digits}g}"  # + 0.0: no -0


def _inline(tensor: Any, digits: int) -> str:
    """A small tensor as nested lists: ``[[1, 0], [0, 1]]``."""

    def nested(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(nested(v) for v in value) + "]"
        return _number(value, digits)

    return nested(tensor.detach().cpu().tolist())


def _json_numbers(tensor: Any) -> Any:
    """Nested lists of floats; NaN and infinities as jacli's JSON writes them ("nan", "inf")."""
    import math

    def clean(value: Any) -> Any:
        if isinstance(value, list):
            return [clean(v) for v in value]
        value = float(value) + 0.0
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value

    return clean(tensor.detach().cpu().tolist())


# -- the explanation ---------------------------------------------------------------------------------

def explanation_lines(explanation: Any) -> Iterator[str]:
    """The plain text: a heading line per section, its lines indented."""
    yield f"# explanation: {explanation.command} {explanation.expression}\n"
    for section in explanation.sections:
        yield f"{section.title}:\n"
        for line in section.lines:
            yield f"  {line}\n"


def explanation_json(explanation: Any) -> dict[str, Any]:
    """``Explanation.to_dict``, strict JSON: a NaN or infinite figure as "nan", "inf", "-inf"."""
    import math

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        if isinstance(value, float) and not math.isfinite(value):
            return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
        return value

    return clean(explanation.to_dict())


def print_explanation(explanation: Any, console: Any) -> None:
    """A rich panel: each section's title in bold, its lines below."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.text import Text

    parts: list[Any] = []
    for section in explanation.sections:
        parts.append(Text(section.title, style="bold"))
        parts += [Padding(Text(line), (0, 0, 0, 2)) for line in section.lines]  # wrapped lines keep the indent
    console.print(Panel(Group(*parts), title=Text(f"explanation: {explanation.command}", style="bold"), title_align="left",
                        expand=False))


# -- the trace ---------------------------------------------------------------------------------------

HEADERS = ("node", "expression", "computed as", "value", "tangent", "adjoint")


def _rows(trace: Any, digits: int) -> list[tuple[str, ...]]:
    rows = []
    for node in trace.nodes:
        local = "input" if node.is_input else node.local
        label = node.label + (f" = {trace.output}" if node is trace.nodes[-1] else "")
        rows.append((label, node.text, local, _inline(node.value, digits), _inline(node.tangent, digits),
                     _inline(node.adjoint, digits)))
    return rows


def _legend(trace: Any) -> list[str]:
    return [
        f"tangent: forward mode along {trace.direction_text}; a node's tangent is Σ ∂node/∂child · tangent(child)",
        f"adjoint: reverse mode from {trace.seed_text}; a node's adjoint is Σ adjoint(user) · ∂user/∂node, "
        "over the nodes that use it",
    ]


def trace_lines(trace: Any, precision: int | None = None) -> Iterator[str]:
    """The plain table, columns aligned, with the legend below."""
    digits = precision or DEFAULT_DIGITS
    rows = [HEADERS, *_rows(trace, digits)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    yield f"# trace: {trace.expression}\n"
    for row in rows:
        yield "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n"
    for line in _legend(trace):
        yield f"# {line}\n"


def trace_json(trace: Any) -> dict[str, Any]:
    return {
        "output": trace.output,
        "direction": {name: _json_numbers(t) for name, t in trace.direction.items()},
        "direction_text": trace.direction_text,
        "seed": _json_numbers(trace.seed),
        "seed_text": trace.seed_text,
        "nodes": [
            {"label": n.label, "expression": n.text, "computed_as": n.local, "children": list(n.children),
             "value": _json_numbers(n.value), "tangent": _json_numbers(n.tangent), "adjoint": _json_numbers(n.adjoint)}
            for n in trace.nodes
        ],
    }


def print_trace(trace: Any, console: Any, precision: int | None = None) -> None:
    """A rich table with the legend as its caption."""
    from rich.table import Table
    from rich.text import Text

    digits = precision or DEFAULT_DIGITS
    table = Table(title=Text(f"evaluation trace: {trace.expression}", style="bold"), title_justify="left",
                  caption=Text("\n".join(_legend(trace))), caption_justify="left")
    for header in HEADERS:
        table.add_column(header, justify="right" if header in ("value", "tangent", "adjoint") else "left")
    for row in _rows(trace, digits):
        table.add_row(*(Text(cell) for cell in row))
    from jacli.teaching import print_unpadded

    print_unpadded(console, table)  # a table's title and caption are padded to its width


# -- both, after the result --------------------------------------------------------------------------

def as_json(taught: dict[str, Any]) -> dict[str, Any]:
    """``explanation`` and ``trace`` as JSON-ready objects (keys of the result's document)."""
    found: dict[str, Any] = {}
    if "explanation" in taught:
        found["explanation"] = explanation_json(taught["explanation"])
    if "trace" in taught:
        found["trace"] = trace_json(taught["trace"])
    return found


def write(taught: dict[str, Any], chosen: str, stream: Any, console: Callable[[], Any],
          precision: int | None = None) -> None:
    """Write what ``jacli.explain.teach`` gave: pretty (on ``console()``), plain, or, when a file
    took the result, one JSON document of its own (``chosen`` json)."""
    if chosen == "pretty" or (chosen not in ("plain", "json") and stream.isatty()):
        shown = console()
        if "explanation" in taught:
            print_explanation(taught["explanation"], shown)
        if "trace" in taught:
            print_trace(taught["trace"], shown, precision)
    elif chosen == "json":
        stream.write(json.dumps(as_json(taught), allow_nan=False) + "\n")
    else:
        if "explanation" in taught:
            stream.writelines(explanation_lines(taught["explanation"]))
        if "trace" in taught:
            stream.writelines(trace_lines(taught["trace"], precision))
    stream.flush()


__all__ = ["as_json", "write", "explanation_lines", "explanation_json", "print_explanation", "trace_lines", "trace_json", "print_trace"]
