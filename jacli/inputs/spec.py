"""The spec grammar: text such as ``"eye:5"``, ``"1,2,3"`` or ``"@x.npy"`` → a small ``Spec``.

Pure Python (no torch, no numpy), so that a bad spec fails before torch is imported; making the
tensor is ``jacli.inputs.build``'s job, reading a file ``jacli.inputs.files``'.

Grammar (SHAPE is ``5``, ``2x3`` or ``2x3x4``):

    2.5                  a number (a 0-dimensional tensor); nan and inf are accepted
    1,2,3  [[1,2],[3,4]] a flat list, or nested brackets
    eye:N  eye:NxM       identity matrix
    ones:SHAPE  zeros:SHAPE  full:SHAPE:VALUE
    arange:STOP  arange:START,STOP[,STEP]     torch.arange semantics
    linspace:START,STOP,N
    rand:SHAPE  randn:SHAPE                   reproducible through the seed
    @file.npy @file.pt @file.json @file.csv @file.txt   @- reads the text forms from stdin
    @g.json#x            the result x of jacli's own JSON output (#x only where it holds several)

Messages name the parameter a spec was given as in backticks (`` `inputs` ``, `` `v` ``); the CLI
writes each as its flag (``jacli.errors.flagged``).

For ``v`` only: ``ones``, ``zeros``, ``rand``, ``randn`` without a shape take the output's
shape; ``onehot:I`` (flat index) and ``onehot:I,J`` (multi-index) give a one-hot tensor.

Example:
    >>> parse_spec("ones:2x3")
    Constructor(text='ones:2x3', kind='ones', shape=(2, 3), params=())
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Union

from jacli.errors import InputError, JacliError
from jacli.limits import check_budget, format_count, short_repr

MAX_NESTING = 32
"""Deepest bracket nesting accepted in a literal."""

MAX_AXES = 32
"""Most axes a constructor's shape may have (2x3x... with at most this many sizes)."""

CONSTRUCTORS = ("eye", "ones", "zeros", "full", "arange", "linspace", "rand", "randn")
OUTPUT_SHAPED = ("ones", "zeros", "rand", "randn")
"""Constructors that ``v`` may give without a shape: they take the output's shape."""

FILE_SUFFIXES = (".npy", ".pt", ".json", ".csv", ".txt")

Nested = Union[float, list]


@dataclass(frozen=True)
class Literal:
    """Numbers written out: ``2.5``, ``1,2,3``, ``[[1,2],[3,4]]``."""

    text: str
    values: Nested
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Constructor:
    """``eye:3``, ``ones:2x3``, ``arange:0,1,0.1`` ...; ``shape`` None means the output's."""

    text: str
    kind: str
    shape: tuple[int, ...] | None
    params: tuple[float, ...] = ()


@dataclass(frozen=True)
class File:
    """``@path``; ``@-`` is standard input. ``key`` picks one tensor of a jacli JSON result
    (``@g.json#x``)."""

    text: str
    path: str
    key: str | None = None


@dataclass(frozen=True)
class OneHot:
    """``onehot:I`` or ``onehot:I,J`` (for ``v``): 1 at that index, 0 elsewhere."""

    text: str
    index: tuple[int, ...]


Spec = Union[Literal, Constructor, File, OneHot]


# -- parsing (no torch) -------------------------------------------------------------------------


@contextmanager
def naming(param: str) -> Iterator[None]:
    """Give ``param`` to the JacliErrors raised inside that name none: the helpers that raise them
    know only the text they quote (``where``), not the parameter it was given as."""
    try:
        yield
    except JacliError as error:
        if error.param is None:
            error.param = param
        raise


def parse_input_option(text: str, param: str = "inputs", for_v: bool = False) -> tuple[str | None, Spec]:
    """``"a=1,2,3"`` → ``("a", spec)``; ``"eye:5"`` → ``(None, spec)``.

    Args:
        param: the parameter the text was given as, named in messages (``inputs``, or ``v``
            for jvp and hvp).
        for_v: allow the ``v`` forms (``ones`` without a shape, ``onehot:I``).

    Raises:
        InputError: naming the bad part.
    """
    match = re.fullmatch(r"\s*(\w+)\s*=(.*)", text, flags=re.DOTALL)
    # The names the expression parser takes: Python identifiers in any alphabet ("é"), no leading _.
    if match and match.group(1).isidentifier() and not match.group(1).startswith("_"):
        # NFKC, as Python (and so the expression parser) reads identifiers: ｘ is x.
        name = unicodedata.normalize("NFKC", match.group(1))
        return name, _parse_spec(match.group(2), for_v, f"`{param}` {text}", param)
    if re.match(r"\s*[^@=\s]*=", text):
        name = text.split("=", 1)[0].strip()
        raise InputError(
            f"`{param}` {shorten(text)!r}: {shorten(name)!r} is not a variable name; write NAME=SPEC, e.g. x=1,2,3",
            param=param,
        )
    return None, _parse_spec(text, for_v, f"`{param}` {text}", param)


def unnamed_v(text: str) -> str:
    """vjp's ``v`` text, refused with an explanation when written NAME=SPEC (as jvp's is)."""
    match = re.match(r"\s*(\w+)\s*=", text)
    if match and match.group(1).isidentifier():
        raise InputError(
            f"`v` {shorten(text)!r}: vjp's v is one tensor shaped like the output (vᵀJ sums over the "
            "output), so it takes no NAME=; give e.g. `v` ones. NAME=SPEC is for jvp and hvp, "
            "whose v is shaped like each input",
            param="v",
        )
    return text


def parse_spec(text: str, *, for_v: bool = False, param: str | None = None) -> Spec:
    """Check a spec and return what it describes, without making the tensor.

    Args:
        text: the spec, e.g. ``"eye:5"``.
        for_v: allow the ``v`` forms (``ones`` without a shape, ``onehot:I``).
        param: the parameter the spec was given as (``"inputs"``, ``"v"``); messages then start
            with it in backticks. Without it they start with the spec alone, or with `` `v` ``
            for ``for_v``; the error's ``param`` is ``"v"`` or ``"inputs"`` all the same.

    Raises:
        InputError: naming the bad part and showing a form that works.

    Example:
        >>> parse_spec("1,2,3")
        Literal(text='1,2,3', values=[1.0, 2.0, 3.0], shape=(3,))
    """
    if param is not None:
        where = f"`{param}` {text}"
    else:
        where = f"`v` {text}" if for_v else text
    return _parse_spec(text, for_v, where, param or ("v" if for_v else "inputs"))


def _parse_spec(text: str, for_v: bool, where: str, param: str) -> Spec:
    """parse_spec, naming the spec ``where`` in messages and ``param`` on its errors."""
    with naming(param):
        return _parse_text(text, for_v, shorten(where, 80))


def _parse_text(text: str, for_v: bool, where: str) -> Spec:
    spec = text.strip()
    if not spec:
        raise InputError(f"{where}: the spec is empty; give numbers like 1,2,3 or a form like ones:3")
    if spec.startswith("@"):
        path = spec[1:].strip()
        if not path:
            raise InputError(f"{where}: '@' needs a file name, like @x.npy, or @- for stdin")
        picked = re.fullmatch(r"(.+\.json)#(.*)", path, flags=re.IGNORECASE | re.DOTALL)
        if picked:  # @g.json#x: the tensor x of a jacli JSON result
            if not picked.group(2).strip():
                raise InputError(f"{where}: '#' needs the name of a result to pick, like @g.json#x")
            return File(spec, picked.group(1), picked.group(2).strip())
        if path != "-" and Path(path).suffix.lower() not in FILE_SUFFIXES:
            raise InputError(
                f"{where}: cannot tell the format of {path!r}; "
                f"use a file ending in {', '.join(FILE_SUFFIXES)}"
            )
        return File(spec, path)
    head, colon, body = spec.partition(":")
    head = head.strip().lower()
    if re.fullmatch(r"[a-z]+", head) and head not in ("nan", "inf", "infinity"):
        return _parse_named(spec, head, body if colon else None, for_v, where)
    return _parse_literal(spec, where)


def _parse_named(spec: str, kind: str, body: str | None, for_v: bool, where: str) -> Spec:
    known = CONSTRUCTORS + (("onehot",) if for_v else ())
    if kind == "onehot" and not for_v:
        raise InputError(f"{where}: onehot is for `v` only (it takes the output's shape)")
    if kind not in known:
        close = difflib.get_close_matches(kind, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise InputError(
            f"{where}: unknown spec {kind!r}; {hint}known forms: numbers like 1,2,3, "
            f"[[1,2],[3,4]], {', '.join(k + ':...' for k in known)}, @file"
        )
    if body is None:
        if for_v and kind in OUTPUT_SHAPED:
            return Constructor(spec, kind, None)
        example = {"eye": "eye:3", "full": "full:2x3:0.5", "arange": "arange:5",
                   "linspace": "linspace:0,1,5", "onehot": "onehot:0"}.get(kind, f"{kind}:2x3")
        shaped = " (only `v` may leave out the shape)" if kind in OUTPUT_SHAPED else ""
        raise InputError(f"{where}: {kind} needs more, like {example}{shaped}")
    if kind == "eye":
        shape = _shape(body, where)
        if len(shape) > 2:
            raise InputError(f"{where}: eye makes a matrix; give N or NxM, like eye:3 or eye:2x3")
        return Constructor(spec, kind, shape * 2 if len(shape) == 1 else shape)
    if kind in ("ones", "zeros", "rand", "randn"):
        return Constructor(spec, kind, _shape(body, where))
    if kind == "full":
        shape_text, colon, value = body.partition(":")
        if not colon:
            raise InputError(f"{where}: full needs a shape and a value, like full:2x3:0.5")
        return Constructor(spec, kind, _shape(shape_text, where), (_number(value, where),))
    if kind == "arange":
        params = tuple(_number(p, where) for p in body.split(","))
        if not 1 <= len(params) <= 3:
            raise InputError(f"{where}: arange takes STOP or START,STOP[,STEP], like arange:0,1,0.1")
        start, stop, step = (0.0, params[0], 1.0) if len(params) == 1 else (*params[:2], params[2] if len(params) == 3 else 1.0)
        if step == 0 or not all(math.isfinite(p) for p in (start, stop, step)):
            raise InputError(f"{where}: arange needs finite bounds and a non-zero step")
        span = (stop - start) / step
        if not math.isfinite(span):  # e.g. arange:-1e308,1e308 or a step of 1e-320
            raise InputError(f"{where}: arange from {start:g} to {stop:g} by {step:g} has too many elements")
        length = math.ceil(span)
        if length <= 0:
            raise InputError(f"{where}: arange from {start:g} to {stop:g} by {step:g} is empty")
        return Constructor(spec, kind, (length,), (start, stop, step))
    if kind == "linspace":
        parts = body.split(",")
        if len(parts) != 3:
            raise InputError(f"{where}: linspace takes START,STOP,N, like linspace:0,1,5")
        start, stop = _number(parts[0], where), _number(parts[1], where)
        count = _positive_int(parts[2], where, "the number of points")
        return Constructor(spec, kind, (count,), (start, stop))
    # onehot
    index = tuple(_int(p, where) for p in body.split(","))
    return OneHot(spec, index)


def _shape(text: str, where: str) -> tuple[int, ...]:
    parts = re.split(r"[xX×]", text.strip())
    if not text.strip() or not all(re.fullmatch(r"\s*\d+\s*", p) for p in parts):
        raise InputError(f"{where}: bad shape {shorten(text)!r}; write it like 5 or 2x3 or 2x3x4")
    if len(parts) > MAX_AXES:
        raise InputError(f"{where}: shape {shorten(text)!r} has {len(parts)} axes; jacli takes at most {MAX_AXES}")
    shape = tuple(_digits(p, where) for p in parts)
    if any(n == 0 for n in shape):
        raise InputError(f"{where}: shape {shorten(text)!r} has no elements; every size must be at least 1")
    return shape


def _number(text: str, where: str) -> float:
    try:
        return read_float(text.strip(), where)
    except ValueError:
        raise InputError(f"{where}: {shorten(text.strip())!r} is not a number") from None


FLOAT64_MAX = "1.8e308"
"""The largest float64, as messages write it."""


def read_float(text: str, where: str) -> float:
    """float() of a number's text, refusing integers beyond float64 instead of reading them as inf.

    Raises ValueError for text that is not a number (callers word that message), and InputError
    for a number beyond float64 written out, such as an integer of 400 digits or 1e400: float()
    would make it infinity silently, and the expression parser refuses those too. Infinity is
    accepted where it is written as such ("inf", "-Infinity"), as is "nan".
    """
    value = float(text)
    if math.isinf(value) and not re.fullmatch(r"\s*[+-]?inf(inity)?\s*", text, flags=re.IGNORECASE):
        kind = "integer" if re.fullmatch(r"\s*[+-]?[0-9_]+\s*", text) else "number"
        raise InputError(
            f"{where}: the {kind} {_show_digits(text)} is larger than float64 can hold (about "
            f"{FLOAT64_MAX}), so it would overflow to infinity; write inf if you mean infinity"
        )
    return value


def _show_digits(text: str) -> str:
    """An integer's text for a message, shortened without int() (Python refuses int() of more
    than 4,300 digits)."""
    text = text.strip()
    return text if len(text) <= 20 else f"{text[:10]}...{text[-10:]} ({len(text.lstrip('+-')):,} digits)"


def _digits(text: str, where: str) -> int:
    """int() of checked digits; Python refuses more than 4,300 of them with a ValueError."""
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{where}: {text.strip()[:20]!r}... is too large a number") from None


def _int(text: str, where: str) -> int:
    if not re.fullmatch(r"\s*-?\d+\s*", text):
        raise InputError(f"{where}: {text.strip()!r} is not an integer index")
    return _digits(text, where)


def _positive_int(text: str, where: str, what: str) -> int:
    if not re.fullmatch(r"\s*\d+\s*", text) or _digits(text, where) < 1:
        raise InputError(f"{where}: {what} must be a positive integer, not {text.strip()!r}")
    return _digits(text, where)


_TOKEN = re.compile(r"\s*(?:(\[)|(\])|(,)|([^\[\],\s]+))")


def _top_level_comma(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            return True
    return False


def _parse_literal(spec: str, where: str) -> Literal:
    """Numbers, comma lists and nested brackets; no eval."""
    # A comma outside all brackets means a list whose outer brackets were left out: 1,2,3 or
    # [1,2],[3,4].
    text = f"[{spec}]" if _top_level_comma(spec) else spec
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            break
        tokens.append(match.group(0).strip())
        position = match.end()
    tokens = [t for t in tokens if t]
    values, rest = _parse_tokens(tokens, 0, where, 0)
    if rest != len(tokens):
        raise InputError(f"{where}: unexpected {tokens[rest]!r} after the end of the list")
    return Literal(spec, values, nested_shape(values, where))


def _parse_tokens(tokens: list[str], i: int, where: str, depth: int) -> tuple[Nested, int]:
    if i >= len(tokens):
        raise InputError(f"{where}: the list ends too early; check the brackets")
    token = tokens[i]
    if token == "[":
        if depth >= MAX_NESTING:
            raise InputError(f"{where}: brackets nested deeper than {MAX_NESTING}")
        items: list[Nested] = []
        i += 1
        while True:
            if i < len(tokens) and tokens[i] == "]" and not items:
                raise InputError(f"{where}: an empty list [] has no numbers")
            item, i = _parse_tokens(tokens, i, where, depth + 1)
            items.append(item)
            if i < len(tokens) and tokens[i] == ",":
                i += 1
                continue
            if i < len(tokens) and tokens[i] == "]":
                return items, i + 1
            found = repr(tokens[i]) if i < len(tokens) else "the end"
            raise InputError(f"{where}: expected ',' or ']' but found {found}")
    if token in ("]", ","):
        raise InputError(f"{where}: expected a number but found {token!r}")
    return _number(token, where), i + 1


def nested_shape(values: Nested, where: str) -> tuple[int, ...]:
    """The shape of rectangular nested lists; ragged ones are an error naming the row."""
    if not isinstance(values, list):
        return ()
    shapes = [nested_shape(v, where) for v in values]
    for i, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise InputError(
                f"{where}: the rows are not all the same shape: item 0 has shape {shapes[0]}, "
                f"item {i} has shape {shape}"
            )
    return (len(values), *shapes[0])


def shorten(text: str, limit: int = 60) -> str:
    """Text as it goes into a message: long specs and expressions are cut in the middle (their
    start and end, such as a file's name, stay), not echoed whole, and every character that is
    not printable (escape sequences, bells, newlines) written as an escape, so that what the
    user typed can neither drive the terminal nor forge a second message line."""
    text = printable(str(text))
    if len(text) <= limit:
        return text
    head = (limit - 3) // 2
    return text[:head] + "..." + text[len(text) - (limit - 3 - head):]


def printable(text: str, keep_newlines: bool = False) -> str:
    """``text`` with each non-printable character as its escape (``\\x1b``, ``\\n``)."""
    return "".join(
        ch if ch.isprintable() or (keep_newlines and ch == "\n") else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def label(name: str | None, text: str) -> str:
    """How a message names an input: ``x = ones:3``, or ``the input ones:3`` when unnamed."""
    return f"{name} = {shorten(text)}" if name else f"the input {shorten(text)}"


def check_spec_budget(
    spec: Spec, name: str | None, itemsize: int, budget: int, shape: tuple[int, ...] | None = None
) -> None:
    """Refuse a spec whose tensor would exceed ``budget`` bytes; pure Python, before any allocation.

    Specs whose size is not known from the text (files, output-shaped ``v`` forms) pass here and
    are checked when they are read.
    """
    shape = shape if shape is not None else getattr(spec, "shape", None)
    if shape is None:
        return
    count = math.prod(shape)
    check_budget(
        count * itemsize, budget,
        f"{label(name, spec.text)} ({format_count(count)} element{'s' if count != 1 else ''})",
        "Use a smaller shape, or raise `max_memory`.",
    )


def check_wrt(wrt: Any) -> list[str] | None:
    """The API's ``wrt``: None (all inputs), one name, or a list of names ("a,b" items split later).

    A bare string is one name, not its letters; anything else that is not a list of strings is
    an InputError naming the item.
    """
    if wrt is None:
        return None
    if isinstance(wrt, str):
        return [wrt]
    if isinstance(wrt, (bytes, dict)) or not isinstance(wrt, Iterable):
        raise InputError(
            f"wrt must be a variable name or a list of names, such as ['x', 'y'], not {short_repr(wrt)}", param="wrt"
        )
    names = list(wrt)
    for i, item in enumerate(names):
        if not isinstance(item, str):
            raise InputError(
                f"wrt[{i}] must be a variable name (a str), not {short_repr(item)}; e.g. wrt=['x']", param="wrt"
            )
    return names
