"""``--answer``: a learner's own Jacobian, checked entry by entry against jacli's.

The answer is numbers (``"[[4, 1]]"``, ``"4,1"``), a file (``"@J.npy"``, any input file form),
or formulas in the inputs' names (``"[2*x*y, x**2]"``), read by jacli's own parser (never
``eval``) and evaluated at the point. It is compared with the classic matrix (one row per output
element, one column per input element, the inputs side by side in ``wrt`` order); it may have
that matrix's shape, that shape without its axes of length 1 (``[4, 1]`` for a 1×2 matrix), or,
for one input, the block's shape ``output.shape + input.shape``.

An entry is right when ``|yours − correct| ≤ atol + rtol·|correct|``: with the defaults
(``ANSWER_RTOL`` = 0.5%, ``ANSWER_ATOL`` = 1e-6) any entry written to three significant digits,
correctly rounded, is right. Two NaNs agree; an infinity must be the same infinity.

Example:
    >>> from jacli.api import compute_jacobian
    >>> report = check_answer(compute_jacobian("x**2*y", {"x": 1.0, "y": 2.0}), "[[4, 2]]")
    >>> report.ok, [(w.column_label, w.yours, w.correct) for w in report.wrong]
    (False, [('y', 2.0, 1.0)])
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from jacli import teaching
from jacli.errors import ExpressionError, InputError, JacliError, ShapeError

ANSWER_RTOL = 5e-3
ANSWER_ATOL = 1e-6
SHOWN = 20
"""The pretty view lists this many wrong entries; plain and JSON list all."""


@dataclass
class WrongEntry:
    """One entry of the answer that is not right: where (matrix row and column, with labels),
    what the learner wrote, and jacli's value."""

    row: int
    column: int
    row_label: str
    column_label: str
    yours: float
    correct: float

    @property
    def derivative(self) -> str:
        return f"∂{self.row_label}/∂{self.column_label}"


@dataclass
class AnswerReport:
    """The verdict on an answer: ``ok`` when every entry is right, else the ``wrong`` ones."""

    command = "jacobian"
    result: Any
    answer: str
    correct: Any
    yours: Any
    rtol: float
    atol: float
    wrong: list[WrongEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.wrong

    @property
    def entries(self) -> int:
        return self.correct.numel()

    def _tolerance(self) -> str:
        return f"|yours − correct| ≤ {self.atol:g} + {self.rtol:g}·|correct|"

    def verdict(self) -> str:
        if self.ok:
            which = "the 1 entry of your Jacobian agrees" if self.entries == 1 else \
                f"all {self.entries} entries of your Jacobian agree"
            return f"Right: {which} with jacli's ({self._tolerance()})."
        count = len(self.wrong)
        which = "the 1 entry is" if self.entries == 1 else f"{count} of {self.entries} entries {'is' if count == 1 else 'are'}"
        return f"Not yet: {which} wrong (an entry is right when {self._tolerance()})."

    def print_pretty(self, console: Any, precision: int | None = None) -> None:
        from rich.table import Table
        from rich.text import Text

        digits = teaching.PRETTY_DIGITS if precision is None else precision
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold cyan", justify="right")
        grid.add_column(overflow="fold")
        grid.add_row("jacobian", Text(self.result.expression, style="bold"))
        grid.add_row("answer", Text(self.answer))
        rows, columns = self.correct.shape
        grid.add_row("compared", Text(f"the {rows}×{columns} matrix: rows {self.result.matrix().rows.summary()}; "
                                      f"columns {self.result.matrix().columns.summary()}"))
        teaching.print_unpadded(console, grid)
        teaching.print_unpadded(console)
        teaching.print_unpadded(console, Text(self.verdict(), style="bold green" if self.ok else "bold red"))
        if self.ok:
            return
        table = Table(show_edge=False, pad_edge=False)
        for name, justify in (("entry", "left"), ("row", "right"), ("column", "right"), ("yours", "right"),
                              ("correct", "right")):
            table.add_column(name, justify=justify)
        for entry in self.wrong[:SHOWN]:
            table.add_row(entry.derivative, str(entry.row), str(entry.column), teaching.number(entry.yours, digits),
                          teaching.number(entry.correct, digits))
        teaching.print_unpadded(console, table)
        if len(self.wrong) > SHOWN:
            teaching.print_unpadded(console, Text(f"… and {len(self.wrong) - SHOWN:,} more (-f plain or -f json lists all)", style="dim"))

    def text(self, chosen: str, precision: int | None = None) -> str:
        if chosen == "json":
            return json.dumps(self.document(), allow_nan=False) + "\n"
        if chosen != "plain":
            raise teaching.refuse_format("an answer's verdict", chosen, "pretty, plain or json")
        lines = [f"# {self.verdict()}\n"]
        if self.wrong:
            lines.append("# entry row column yours correct\n")
            lines += [f"{e.derivative} {e.row} {e.column} {teaching.number(e.yours, precision)} "
                      f"{teaching.number(e.correct, precision)}\n" for e in self.wrong]
        return "".join(lines)

    def document(self) -> dict[str, Any]:
        return {
            "command": "jacobian", "expression": self.result.expression, "answer": self.answer,
            "ok": self.ok, "rtol": self.rtol, "atol": self.atol, "entries": self.entries,
            "wrong": [{"entry": e.derivative, "row": e.row, "column": e.column,
                       "yours": teaching.json_number(e.yours), "correct": teaching.json_number(e.correct)}
                      for e in self.wrong],
            "correct": teaching.json_tensor(self.correct),
        }


def read_answer(answer: Any, problem: Any) -> Any:
    """The answer as a float64 tensor: numbers, ``@file``, or formulas evaluated at the inputs."""
    import torch

    from jacli import inputs as specs

    if not isinstance(answer, str):
        try:
            return torch.as_tensor(answer, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as error:
            raise InputError(f"`answer` cannot be read as numbers ({error})", param="answer") from None
    text = answer.strip()
    if not text:
        raise InputError("`answer` is empty; give your Jacobian, e.g. [[4, 1]] or [2*x*y, x**2]", param="answer")
    if text.startswith("@"):
        if problem.untrusted:
            raise InputError(f"`answer` {text!r} is a file, and untrusted mode reads no files; give the numbers",
                             param="answer")
        return _materialized(specs.parse_spec(text, param="answer"), problem)
    try:
        return _evaluate(text, problem)
    except ExpressionError as error:
        try:
            spec = specs.parse_spec(text, param="answer")
        except JacliError:
            raise InputError(f"`answer` {answer!r} is neither numbers nor a formula: {error}", param="answer") from None
        return _materialized(spec, problem)


def _materialized(spec: Any, problem: Any) -> Any:
    """A spec's tensor in float64; its errors name the parameter (`` `answer` @J.npy: ...``), not
    an input called answer (the input readers write ``NAME = @file``)."""
    import torch

    from jacli.problem import materialize

    try:
        return materialize(spec, "answer", problem).to(torch.float64)
    except JacliError as error:
        message = str(error)
        for prefix in ("answer = ", "input answer"):
            if message.startswith(prefix):
                raise type(error)("`answer`" + (" " if prefix.endswith("= ") else "") + message[len(prefix):],
                                  param="answer") from None
        raise


def _evaluate(text: str, problem: Any) -> Any:
    """A formula in the inputs' names, at the inputs (jacli's parser and compiler: nothing is eval-ed)."""
    import torch

    from jacli.compile import compile_expression

    compiled = compile_expression(text)
    unknown = [name for name in compiled.variables if name not in problem.inputs]
    if unknown:
        raise InputError(
            f"`answer` uses {', '.join(unknown)}, which {'is not an input' if len(unknown) == 1 else 'are not inputs'} "
            f"of the problem ({', '.join(problem.variables)}); write it in those names, or as numbers",
            param="answer",
        )
    value = compiled.checked(*(problem.inputs[name] for name in compiled.variables))
    return value.detach().to(torch.float64)


def _fit(yours: Any, correct: Any, result: Any) -> Any:
    """The answer laid out as the matrix, when its shape is one of those accepted."""
    rows, columns = correct.shape
    # the matrix's shape less any of its axes of length 1: [6] or 6 for a 1×1 matrix, [4, 1] for 1×2
    accepted = [(rows, columns), (rows,) if columns == 1 else None, (columns,) if rows == 1 else None,
                () if rows == columns == 1 else None]
    if len(result.wrt) == 1:
        name = result.wrt[0]
        accepted.append(tuple(result.output.shape) + tuple(result.inputs[name].shape))
    shape = tuple(yours.shape)
    if shape in accepted:
        return yours.reshape(rows, columns)
    y = result.matrix().rows.summary()
    raise ShapeError(
        f"`answer` has shape {teaching.shape_text(shape)}, but the Jacobian is a {rows}×{columns} matrix "
        f"(rows: {y}; columns: {result.matrix().columns.summary()}); give {rows} row{'s' if rows != 1 else ''} "
        f"of {columns} number{'s' if columns != 1 else ''}, e.g. {_example(rows, columns)}",
        param="answer",
    )


def _example(rows: int, columns: int) -> str:
    row = "[" + ", ".join(["0"] * min(columns, 4)) + (", ..." if columns > 4 else "") + "]"
    return "[" + ", ".join([row] * min(rows, 3)) + (", ..." if rows > 3 else "") + "]"


def check_answer(result: Any, answer: Any, *, rtol: float = ANSWER_RTOL, atol: float = ANSWER_ATOL) -> AnswerReport:
    """Compare ``answer`` with the Jacobian ``result`` (a ``JacobianResult``), entry by entry.

    Args:
        answer: text (numbers, ``@file``, formulas in the inputs' names) or a tensor/list.
        rtol, atol: an entry is right when ``|yours − correct| ≤ atol + rtol·|correct|``.

    Raises:
        InputError: an answer that cannot be read; ShapeError: one of the wrong shape.
    """
    import torch

    for value, name in ((rtol, "rtol"), (atol, "atol")):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise InputError(f"`{name}` {value!r} must be a number of at least 0", param=name)
    matrix = result.matrix()
    correct = matrix.to_dense().detach().to("cpu", torch.float64)
    yours = _fit(read_answer(answer, result.problem).to("cpu"), correct, result)
    both_nan = torch.isnan(yours) & torch.isnan(correct)
    same = yours == correct  # equal infinities, too
    close = (yours - correct).abs() <= atol + rtol * correct.abs()
    right = both_nan | same | close
    wrong = [
        WrongEntry(int(i), int(j), matrix.rows[int(i)], matrix.columns[int(j)], float(yours[i, j]), float(correct[i, j]))
        for i, j in (~right).nonzero().tolist()
    ]
    text = answer if isinstance(answer, str) else repr(answer)
    return AnswerReport(result, text, correct, yours, rtol, atol, wrong)


__all__ = ["ANSWER_ATOL", "ANSWER_RTOL", "AnswerReport", "WrongEntry", "check_answer", "read_answer"]
