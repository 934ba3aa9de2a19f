"""Where a problem comes from when it is not all typed out: the last problem, a piped result, a file.

A learner continues a problem (``jacli vjp --v 0.1,1,0.0001`` after a ``jacli jacobian``) from

1. jacli's own JSON output on standard input (``document``): it carries the expression and each
   input's spec and values, so the values (a ``randn`` draw included) are reproduced exactly;
2. the last problem jacli ran for this user (``load``/``save``): a small JSON file in the
   user's cache folder holding the expression, the input specs, ``wrt``, dtype, device and seed.
   Never tensors, never code: the specs are text that the spec grammar reads again, and file
   inputs are kept by their absolute path (``@-`` is not kept: it cannot be read again).

``JACLI_NO_HISTORY=1`` turns the history file off, both ways. The expression itself may come
from a file (``@expr.txt``) or from standard input (``-``): ``expression``.

Pure Python: importing this module imports neither torch nor SymPy.

Example:
    >>> from jacli import history
    >>> history.document('{"command": "jacobian", "expression": "x**2", "inputs": {"x": '
    ...                  '{"shape": [2], "spec": "1,2", "values": [1.0, 2.0]}}}').expression
    'x**2'
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jacli.errors import ExpressionError, InputError, JacliWarning

FILE_NAME = "last-problem.json"
VERSION = 1
"""The history file's format; a file of another version is ignored."""

MAX_EXPRESSION_FILE = 40_000
"""Most characters read from an expression file (the parser takes at most 10,000)."""


@dataclass(frozen=True)
class Earlier:
    """A problem to continue.

    Attributes:
        command: the command that ran it (``jacobian``).
        expression: the expression text.
        inputs: (name, spec text) for each input, as the user gave it.
        wrt, dtype, device, seed: as that run had them (a piped result's ``wrt`` is read off the
            names its ``result`` is keyed by: the inputs differentiated, ``--const`` ones left out).
        batch_axis, batched: the axis of the points and the inputs that hold them, for a problem
            of many points (``--batch-axis``); None and () for one point.
        source: ``"history"`` (the last problem) or ``"stdin"`` (a piped jacli result).
        values: for a piped result, name → the input's values (a ``Literal`` spec), which are
            used instead of making the spec again.
    """

    command: str
    expression: str
    inputs: tuple[tuple[str, str], ...]
    wrt: tuple[str, ...] = ()
    dtype: str = "float64"
    device: str = "cpu"
    seed: int = 0
    source: str = "history"
    values: dict[str, Any] = field(default_factory=dict, repr=False)
    batch_axis: int | None = None
    batched: tuple[str, ...] = ()


def enabled() -> bool:
    """False when ``JACLI_NO_HISTORY`` is set to anything but empty, 0, false, no or off."""
    return os.environ.get("JACLI_NO_HISTORY", "").strip().lower() in ("", "0", "false", "no", "off")


def cache_folder() -> Path:
    """jacli's folder in the user's cache: ``$XDG_CACHE_HOME/jacli`` where that is set (on any
    system), else ``~/Library/Caches/jacli`` on macOS, ``%LOCALAPPDATA%\\jacli\\Cache`` on
    Windows, ``~/.cache/jacli`` elsewhere."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):  # the XDG rule: a relative path is ignored
        return Path(xdg) / "jacli"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "jacli"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "jacli" / "Cache"
    return Path.home() / ".cache" / "jacli"


def history_file() -> Path:
    return cache_folder() / FILE_NAME


# -- the last problem ----------------------------------------------------------------------------


def save(
    command: str,
    expression: str,
    inputs: list[tuple[str | None, str]],
    *,
    variables: tuple[str, ...],
    wrt: list[str] | tuple[str, ...] = (),
    dtype: str = "float64",
    device: str = "cpu",
    seed: int = 0,
    batch_axis: int | None = None,
    batched: list[str] | tuple[str, ...] = (),
) -> bool:
    """Keep this problem as the last one (atomically), unless the history is off.

    Args:
        inputs: (name or None, spec text) as given; an unnamed input is named after the only
            variable in ``variables``.

    Returns:
        Whether it was kept. A problem that reads standard input (``@-``) is not: it could not
        be read again, so the older problem is removed too rather than continued by surprise.
        A cache folder that cannot be written is passed over in silence: the result the user
        asked for matters more than the history.
    """
    if not enabled():
        return False
    from jacli.inputs.spec import File, parse_spec

    kept: list[list[str]] = []
    for name, text in inputs:
        try:
            spec = parse_spec(text)
        except InputError:
            spec = None  # a value the API was given (a tensor), not a spec: nothing to keep
        if spec is None or (isinstance(spec, File) and spec.path == "-"):
            forget()
            return False
        if isinstance(spec, File):  # by absolute path, so that it reads from any folder
            text = "@" + os.path.abspath(spec.path) + (f"#{spec.key}" if spec.key is not None else "")
        if name is None:
            if len(variables) != 1:
                return False
            name = variables[0]
        kept.append([name, text])
    record = {
        "version": VERSION, "command": command, "expression": expression, "inputs": kept,
        "wrt": list(wrt), "dtype": dtype, "device": device, "seed": seed,
        **({"batch_axis": batch_axis, "batched": list(batched)} if batch_axis is not None else {}),
    }
    return _write_atomically(history_file(), json.dumps(record, ensure_ascii=False) + "\n")


def forget() -> None:
    """Remove the last problem, if there is one."""
    try:
        history_file().unlink()
    except OSError:
        pass


def load() -> Earlier | None:
    """The last problem, or None where there is none (or the history is off).

    A file that is not what ``save`` writes (another version, edited by hand) is ignored with a
    warning naming it; its contents are never run, only read as text.
    """
    if not enabled():
        return None
    path = history_file()
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1_000_000)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        _ignored(path, getattr(error, "strerror", None) or "not text")
        return None
    try:
        record = json.loads(text)
        earlier = _from_record(record)
    except (ValueError, TypeError, KeyError):
        _ignored(path, "not a problem jacli wrote")
        return None
    return earlier


def _from_record(record: Any) -> Earlier:
    if not isinstance(record, dict) or record.get("version") != VERSION:
        raise ValueError("another format")
    inputs = record["inputs"]
    if not (isinstance(inputs, list) and all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair) for pair in inputs
    )):
        raise ValueError("inputs")
    wrt = record.get("wrt", [])
    strings = [record["command"], record["expression"], record.get("dtype", "float64"), record.get("device", "cpu")]
    names = isinstance(wrt, list) and all(isinstance(w, str) for w in wrt)
    if not all(isinstance(s, str) for s in strings) or not names:
        raise ValueError("fields")
    seed = record.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError("seed")
    axis, batched = record.get("batch_axis"), record.get("batched", [])
    if axis is not None and (not isinstance(axis, int) or isinstance(axis, bool)):
        raise ValueError("batch_axis")
    if not (isinstance(batched, list) and all(isinstance(b, str) for b in batched)):
        raise ValueError("batched")
    return Earlier(
        command=record["command"], expression=record["expression"],
        inputs=tuple((name, text) for name, text in inputs), wrt=tuple(wrt),
        dtype=strings[2], device=strings[3], seed=seed, batch_axis=axis, batched=tuple(batched),
    )


def _ignored(path: Path, why: str) -> None:
    import warnings

    warnings.warn(f"ignored the last problem in {path} ({why}); the next run replaces it", JacliWarning, stacklevel=3)


def _write_atomically(path: Path, text: str) -> bool:
    """Write beside ``path`` and rename into place (readable by the user only), or return False."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=".last-problem-", suffix=".tmp", delete=False
        )
    except OSError:
        return False
    try:
        with handle:
            handle.write(text)
        os.replace(handle.name, path)  # NamedTemporaryFile makes it 0600
    except OSError:
        try:
            os.unlink(handle.name)
        except OSError:
            pass
        return False
    return True


# -- a piped result --------------------------------------------------------------------------------


def piped(stream: TextIO | None = None) -> bool:
    """Whether standard input is a pipe or a file (not a terminal, not closed, not /dev/null)."""
    import stat

    stream = sys.stdin if stream is None else stream
    if stream is None or stream.closed:
        return False
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):  # a stream with no descriptor: a test's text
        return not stream.isatty()
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


def read_stdin(budget: int | None = None) -> str:
    """All of standard input as text, bounded by the memory budget (as ``@-`` is)."""
    from jacli.inputs.files import _read_text

    try:
        return _read_text(sys.stdin, budget, "standard input")
    except UnicodeDecodeError:
        raise InputError(
            "standard input is not text (not UTF-8); pipe the output of a jacli command run with `format` json"
        ) from None


def document(text: str) -> Earlier:
    """The problem in jacli's own JSON output: its expression, and each input's values.

    Raises:
        InputError: text that is not such a document, saying what it is and what works.
    """
    from jacli.inputs.files import _json_numbers
    from jacli.inputs.spec import Literal, nested_shape

    where = "standard input"
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise InputError(
            f"{where} is not jacli's JSON output (not valid JSON); pipe the output of a jacli "
            "command run with `format` json"
        ) from None
    if isinstance(data, list) and data and all(isinstance(call, dict) for call in data):
        data = data[0]  # vjp --repeat: one document per call, all of the same problem
    inputs = data.get("inputs") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("expression"), str) or not isinstance(inputs, dict):
        raise InputError(
            f"{where} holds JSON without an expression and inputs; pipe the output of a jacli "
            "command run with `format` json"
        )
    command = data.get("command") if isinstance(data.get("command"), str) else "jacli"
    values: dict[str, Any] = {}
    given: list[tuple[str, str]] = []
    for name, entry in inputs.items():
        if not isinstance(entry, dict) or "values" not in entry:
            raise InputError(
                f"{where}: the {command} output gives no values for input {name!r} (the JSON of {command} "
                "describes the problem without its numbers, and cannot be continued); pipe the JSON output "
                "of jacobian, vjp, jvp, grad, hessian or hvp (with `repeat` too)"
            )
        numbers = _json_numbers(entry["values"], f"{where}: input {name}")
        spec = entry.get("spec") if isinstance(entry.get("spec"), str) else "(values)"
        values[name] = Literal(spec, numbers, nested_shape(numbers, f"{where}: input {name}"))
        given.append((name, spec))
    seed = data.get("seed", 0)
    points = data.get("points") if isinstance(data.get("points"), dict) else {}
    axis = points.get("axis")
    batched = points.get("inputs") if isinstance(points.get("inputs"), list) else []
    return Earlier(
        command=command, expression=data["expression"], inputs=tuple(given), wrt=_wrt_of(data, values),
        dtype=data.get("dtype") if data.get("dtype") in ("float64", "float32") else "float64",
        device=data.get("device") if isinstance(data.get("device"), str) else "cpu",
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else 0,
        source="stdin", values=values,
        batch_axis=axis if isinstance(axis, int) and not isinstance(axis, bool) else None,
        batched=tuple(name for name in batched if name in values),
    )


def _wrt_of(data: dict[str, Any], inputs: dict[str, Any]) -> tuple[str, ...]:
    """The inputs a piped result differentiated by: the names its ``result`` is keyed by (``x``,
    or ``x,y`` for a Hessian's block), in that order (``wrt``'s); () where it does not say (jvp keys
    its one result ``output``: it is differentiated along ``u``, by no ``wrt`` of its own)."""
    result = data.get("result")
    if data.get("command") == "jvp" or not isinstance(result, dict) or not result:
        return ()
    named = tuple(dict.fromkeys(part for key in result for part in str(key).split(",")))
    if not set(named) <= set(inputs) or named == tuple(inputs):
        return ()  # not input names; or every input, as jacli's default wrt is anyway
    return named


# -- the expression from a file ----------------------------------------------------------------------


def expression(text: str, *, untrusted: bool = False) -> str:
    """The expression the user means: ``text`` itself, the contents of ``@FILE``, or standard
    input for ``-`` (surrounding blank space removed).

    Raises:
        ExpressionError: an unreadable file, or a file or stdin in untrusted mode.
    """
    if text != "-" and not text.startswith("@"):
        return text
    what = "standard input (-)" if text == "-" else f"the file {text}"
    if untrusted:
        raise ExpressionError(
            f"the expression from {what} is refused in untrusted mode; give the expression itself", param="expr"
        )
    if text == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise ExpressionError("the expression is - (standard input), but standard input is closed", param="expr")
        return _strip(sys.stdin.read(MAX_EXPRESSION_FILE + 1), what)
    path = text[1:].strip()
    if not path:
        raise ExpressionError("'@' needs a file name holding the expression, like @expr.txt", param="expr")
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ExpressionError(f"the expression file {path} is not a regular file", param="expr")
        with open(path, encoding="utf-8") as handle:
            return _strip(handle.read(MAX_EXPRESSION_FILE + 1), what)
    except OSError as error:
        raise ExpressionError(
            f"the expression file {path}: cannot read it ({error.strerror or error})", param="expr"
        ) from None
    except UnicodeDecodeError:
        raise ExpressionError(f"the expression file {path} is not text (not UTF-8)", param="expr") from None


def _strip(text: str, what: str) -> str:
    if len(text) > MAX_EXPRESSION_FILE:
        raise ExpressionError(
            f"{what} holds more than {MAX_EXPRESSION_FILE:,} characters; an expression is shorter", param="expr"
        )
    if not text.strip():
        raise ExpressionError(f"{what} holds no expression (it is empty)", param="expr")
    return text.strip()
