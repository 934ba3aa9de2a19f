"""Input specs: text such as ``"eye:5"``, ``"1,2,3"`` or ``"@x.npy"`` → tensors.

Two steps, so that bad specs fail before torch is imported:

1. ``parse_spec(text)`` checks the text and returns a small ``Spec`` (pure Python);
2. ``materialize(spec, ...)`` makes the tensor (imports torch; reads files).

Grammar (SHAPE is ``5``, ``2x3`` or ``2x3x4``):

    2.5                  a number (a 0-dimensional tensor); nan and inf are accepted
    1,2,3  [[1,2],[3,4]] a flat list, or nested brackets
    eye:N  eye:NxM       identity matrix
    ones:SHAPE  zeros:SHAPE  full:SHAPE:VALUE
    arange:STOP  arange:START,STOP[,STEP]     torch.arange semantics
    linspace:START,STOP,N
    rand:SHAPE  randn:SHAPE                   reproducible through the seed
    @file.npy @file.pt @file.json @file.csv @file.txt   @- reads the text forms from stdin

For ``--v`` only: ``ones``, ``zeros``, ``rand``, ``randn`` without a shape take the output's
shape; ``onehot:I`` (flat index) and ``onehot:I,J`` (multi-index) give a one-hot tensor.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import sys
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Union

from jacli.errors import InputError, JacliError, ResourceError, ShapeError
from jacli.limits import (
    TEXT_FACTOR,
    check_budget,
    default_budget,
    format_bytes,
    format_count,
    format_integer,
    short_repr,
    text_cap,
)

MAX_NESTING = 32
"""Deepest bracket nesting accepted in a literal."""

MAX_AXES = 32
"""Most axes a constructor's shape may have (2x3x... with at most this many sizes)."""

CONSTRUCTORS = ("eye", "ones", "zeros", "full", "arange", "linspace", "rand", "randn")
OUTPUT_SHAPED = ("ones", "zeros", "rand", "randn")
"""Constructors that --v may give without a shape: they take the output's shape."""

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
    """``@path``; ``@-`` is standard input."""

    text: str
    path: str


@dataclass(frozen=True)
class OneHot:
    """``onehot:I`` or ``onehot:I,J`` (for --v): 1 at that index, 0 elsewhere."""

    text: str
    index: tuple[int, ...]


Spec = Union[Literal, Constructor, File, OneHot]


# -- parsing (no torch) -------------------------------------------------------------------------


def parse_input_option(text: str, option: str = "--input", for_v: bool = False) -> tuple[str | None, Spec]:
    """``"a=1,2,3"`` → ``("a", spec)``; ``"eye:5"`` → ``(None, spec)``.

    Args:
        option: the option's name for messages (``--input``, or ``--v`` for jvp and hvp).
        for_v: allow the --v forms (``ones`` without a shape, ``onehot:I``).

    Raises:
        InputError: naming the bad part.
    """
    match = re.fullmatch(r"\s*(\w+)\s*=(.*)", text, flags=re.DOTALL)
    # The names the expression parser takes: Python identifiers in any alphabet ("é"), no leading _.
    if match and match.group(1).isidentifier() and not match.group(1).startswith("_"):
        return match.group(1), parse_spec(match.group(2), for_v=for_v, option=f"{option} {text}")
    if re.match(r"\s*[^@=\s]*=", text):
        name = text.split("=", 1)[0].strip()
        raise InputError(
            f"{option} {shorten(text)!r}: {shorten(name)!r} is not a variable name; write NAME=SPEC, e.g. x=1,2,3"
        )
    return None, parse_spec(text, for_v=for_v, option=f"{option} {text}")


def unnamed_v(text: str) -> str:
    """vjp's --v text, refused with an explanation when written NAME=SPEC (as jvp's is)."""
    match = re.match(r"\s*(\w+)\s*=", text)
    if match and match.group(1).isidentifier():
        raise InputError(
            f"--v {shorten(text)!r}: vjp's v is one tensor shaped like the output (vᵀJ sums over the "
            "output), so it takes no NAME=; give e.g. --v ones. NAME=SPEC is for jvp and hvp, "
            "whose v is shaped like each input"
        )
    return text


def parse_spec(text: str, *, for_v: bool = False, option: str | None = None) -> Spec:
    """Check a spec and return what it describes, without making the tensor.

    Args:
        text: the spec, e.g. ``"eye:5"``.
        for_v: allow the --v forms (``ones`` without a shape, ``onehot:I``).
        option: how to name the spec in errors, e.g. ``"--input x=eye:5"``.

    Raises:
        InputError: naming the bad part and showing a form that works.
    """
    where = shorten(option or ("--v " + text if for_v else text), 80)
    spec = text.strip()
    if not spec:
        raise InputError(f"{where}: the spec is empty; give numbers like 1,2,3 or a form like ones:3")
    if spec.startswith("@"):
        path = spec[1:].strip()
        if not path:
            raise InputError(f"{where}: '@' needs a file name, like @x.npy, or @- for stdin")
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
        raise InputError(f"{where}: onehot is for --v only (it takes the output's shape)")
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
        shaped = " (only --v may leave out the shape)" if kind in OUTPUT_SHAPED else ""
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
        return _float(text.strip(), where)
    except ValueError:
        raise InputError(f"{where}: {shorten(text.strip())!r} is not a number") from None


FLOAT64_MAX = "1.8e308"
"""The largest float64, as messages write it."""


def _float(text: str, where: str) -> float:
    """float() of a number's text, refusing integers beyond float64 instead of reading them as inf.

    Raises ValueError for text that is not a number (callers word that message), and InputError
    for an integer such as 10**400 written out: the expression parser and the API refuse those
    too. 1e400 stays infinity, as "inf" and "nan" are accepted.
    """
    value = float(text)
    if math.isinf(value) and re.fullmatch(r"\s*[+-]?[0-9_]+\s*", text):
        raise InputError(
            f"{where}: the integer {_show_digits(text)} is larger than float64 can hold (about "
            f"{FLOAT64_MAX}); write inf if you mean infinity"
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
    return Literal(spec, values, _nested_shape(values, where))


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


def _nested_shape(values: Nested, where: str) -> tuple[int, ...]:
    """The shape of rectangular nested lists; ragged ones are an error naming the row."""
    if not isinstance(values, list):
        return ()
    shapes = [_nested_shape(v, where) for v in values]
    for i, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise InputError(
                f"{where}: the rows are not all the same shape: item 0 has shape {shapes[0]}, "
                f"item {i} has shape {shape}"
            )
    return (len(values), *shapes[0])


# -- making tensors -----------------------------------------------------------------------------


def seed_for(seed: int, name: str) -> int:
    """Each random input draws from its own generator, so adding an input changes no other."""
    return (seed * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % (2**63)


def materialize(
    spec: Spec,
    *,
    name: str,
    dtype: Any,
    device: Any,
    seed: int = 0,
    budget: int | None = None,
    output_shape: tuple[int, ...] | None = None,
) -> Any:
    """Make the tensor a spec describes.

    Args:
        spec: from ``parse_spec``.
        name: the variable (or ``"v"``); seeds random specs and names errors.
        dtype, device: of the result.
        seed: the run's seed (``--seed``).
        budget: refuse specs whose tensor would exceed this many bytes, before allocating.
        output_shape: the output's shape, for --v forms without a shape.

    Raises:
        InputError: unreadable files, non-numeric data.
        ResourceError: sizes over the budget.
        ShapeError: a onehot index outside the output's shape.
    """
    import torch

    itemsize = torch.empty((), dtype=dtype).element_size()
    if isinstance(spec, (Constructor, OneHot)) and (getattr(spec, "shape", None) is None):
        if output_shape is None:
            raise InputError(f"{spec.text!r} takes the output's shape, which is only known for --v")
    if isinstance(spec, OneHot):
        return _onehot(spec, output_shape or (), dtype, device)
    shape = spec.shape if isinstance(spec, (Literal, Constructor)) else None
    if isinstance(spec, Constructor) and shape is None:
        shape = output_shape
    if shape is not None and budget is not None:
        check_spec_budget(spec, name, itemsize, budget, shape)
    if isinstance(spec, Literal):
        return torch.tensor(spec.values, dtype=torch.float64).to(dtype=dtype, device=device)
    if isinstance(spec, Constructor):
        return _construct(spec, shape, name, seed, dtype, device)
    tensor = _read_file(spec, name, budget)
    if budget is not None:
        check_budget(tensor.numel() * itemsize, budget, f"{name} = {spec.text} ({tensor.numel():,} elements)",
                     "Use a smaller file, or raise --max-memory.")
    return tensor.to(dtype=dtype, device=device)


def shorten(text: str, limit: int = 60) -> str:
    """Text as it goes into a message: long specs and expressions are cut in the middle (their
    start and end, such as a file's name, stay), not echoed whole."""
    text = str(text)
    if len(text) <= limit:
        return text
    head = (limit - 3) // 2
    return text[:head] + "..." + text[len(text) - (limit - 3 - head):]


def label(name: str | None, text: str) -> str:
    """How a message names an input: ``x = ones:3``, or ``the input ones:3`` when unnamed."""
    return f"{name} = {shorten(text)}" if name else f"the input {shorten(text)}"


def check_spec_budget(
    spec: Spec, name: str | None, itemsize: int, budget: int, shape: tuple[int, ...] | None = None
) -> None:
    """Refuse a spec whose tensor would exceed ``budget`` bytes; pure Python, before any allocation.

    Specs whose size is not known from the text (files, output-shaped --v forms) pass here and
    are checked when they are read.
    """
    shape = shape if shape is not None else getattr(spec, "shape", None)
    if shape is None:
        return
    count = math.prod(shape)
    check_budget(
        count * itemsize, budget,
        f"{label(name, spec.text)} ({format_count(count)} element{'s' if count != 1 else ''})",
        "Use a smaller shape, or raise --max-memory.",
    )


def _construct(spec: Constructor, shape: tuple[int, ...], name: str, seed: int, dtype: Any, device: Any) -> Any:
    import torch

    kind = spec.kind
    if kind == "eye":
        return torch.eye(*shape, dtype=dtype, device=device)
    if kind == "ones":
        return torch.ones(shape, dtype=dtype, device=device)
    if kind == "zeros":
        return torch.zeros(shape, dtype=dtype, device=device)
    if kind == "full":
        return torch.full(shape, spec.params[0], dtype=dtype, device=device)
    if kind == "arange":
        return torch.arange(*spec.params, dtype=dtype, device=device)
    if kind == "linspace":
        return torch.linspace(*spec.params, shape[0], dtype=dtype, device=device)
    # rand / randn: drawn on the CPU from a local generator, so values match on every device.
    generator = torch.Generator(device="cpu").manual_seed(seed_for(seed, name))
    draw = torch.rand if kind == "rand" else torch.randn
    return draw(shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)


def _onehot(spec: OneHot, shape: tuple[int, ...], dtype: Any, device: Any) -> Any:
    import torch

    numel = math.prod(shape)
    tensor = torch.zeros(shape, dtype=dtype, device=device)
    index = spec.index
    if len(index) == 1 and len(shape) != 1:
        if not -numel <= index[0] < numel:
            raise ShapeError(
                f"--v {spec.text}: flat index {index[0]} is out of range for the output's "
                f"{numel} elements (shape {shape}); use 0 to {numel - 1}"
            )
        tensor.view(-1)[index[0]] = 1
        return tensor
    if len(index) != len(shape):
        raise ShapeError(
            f"--v {spec.text}: the output has shape {shape}, so give one flat index or "
            f"{len(shape)} indices, like onehot:{','.join('0' * len(shape)) or '0'}"
        )
    for i, size in zip(index, shape):
        if not -size <= i < size:
            raise ShapeError(f"--v {spec.text}: index {i} is out of range for the output's shape {shape}")
    tensor[index] = 1
    return tensor


def check_single_stdin(specs: dict[str, Spec]) -> None:
    """Standard input can be read once: at most one spec may be ``@-``."""
    readers = [name for name, spec in specs.items() if isinstance(spec, File) and spec.path == "-"]
    if len(readers) > 1:
        raise InputError(
            f"{' and '.join(readers)} all read @- (standard input), which can be read only once; "
            "put all but one in files"
        )


def _read_file(spec: File, name: str, budget: int | None = None) -> Any:
    import torch

    path = spec.path
    if path == "-":
        where = f"{name} = @- (standard input)"
        if sys.stdin is None:  # started with stdin closed (<&-)
            raise InputError(f"{where}: standard input is closed; pipe the numbers in, or give a file")
        try:
            text = _read_text(sys.stdin, budget, where)
        except UnicodeDecodeError:
            raise InputError(f"{where}: is not text (not UTF-8); give numbers as text, or a .npy file") from None
        return _from_text(text, "standard input", name)
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".npy":
            import numpy

            with open(path, "rb") as handle:
                if handle.read(6) != b"\x93NUMPY":
                    raise InputError(
                        f"{name} = @{path}: not a .npy file (it does not start with NumPy's header); "
                        "save an array with numpy.save, or name a text file .csv or .txt"
                    )

            # Memory-mapped first: the header gives dtype and shape, so a file over the budget is
            # refused before its data is read.
            try:
                array = numpy.load(path, mmap_mode="r", allow_pickle=False)
            except ValueError:  # object arrays cannot be mapped; refused below, unpickled never
                array = numpy.load(path, allow_pickle=False)
            if array.dtype.kind not in "biuf":
                raise InputError(f"{name} = @{path}: holds {array.dtype} data; jacli needs real numbers")
            if budget is not None:
                check_budget(array.size * 8, budget, f"{name} = @{path} ({array.size:,} elements)",
                             "Use a smaller file, or raise --max-memory.")
            return torch.from_numpy(numpy.array(array, dtype="float64"))
        if suffix == ".pt":
            with warnings.catch_warnings():  # torch's notes on pickle protocols are not for users
                warnings.simplefilter("ignore")
                loaded = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(loaded, torch.Tensor) or loaded.is_complex():
                raise InputError(f"{name} = @{path}: does not hold one real tensor")
            check_dense(loaded, f"{name} = @{path}", saved=True)
            return loaded.detach().to(torch.float64)
        with open(path, encoding="utf-8") as handle:
            text = _read_text(handle, budget, f"{name} = @{path}")
    except OSError as error:
        raise InputError(f"{name} = @{path}: cannot read it ({error.strerror or error})") from None
    except Exception as error:  # torch.load's unpickling errors have no common base class
        if isinstance(error, JacliError):
            raise
        if suffix == ".pt":
            raise InputError(
                f"{name} = @{path}: not a tensor file jacli can load safely (it holds Python "
                "objects other than tensors, or is not a .pt file; jacli never unpickles "
                "them). Save one tensor with torch.save(tensor, path)"
            ) from None
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "pickle" in reason.lower():
            reason = "it holds Python objects (pickled data), which jacli never loads"
        raise InputError(f"{name} = @{path}: not a readable {suffix} file ({reason})") from None
    return _from_text(text, f"@{path}", name, json_only=suffix == ".json")


def _read_text(handle: Any, budget: int | None, where: str) -> str:
    """All of a text stream, or a ResourceError once it passes what the budget allows.

    A bounded read: ``@- < /dev/zero`` or a huge pipe would otherwise grow one string until
    the process runs out of memory, and parsing text takes many times its size (TEXT_FACTOR).
    """
    budget = budget if budget is not None else default_budget()
    cap = text_cap(budget)
    text = handle.read(cap + 1)
    if len(text) > cap:
        raise ResourceError(
            f"{where}: holds more than {format_bytes(cap)} of text, the most jacli reads as numbers "
            f"under the memory budget of {format_bytes(budget)} (numbers as text take up to "
            f"{TEXT_FACTOR} times their size while read). Save the numbers with numpy.save and give "
            "the .npy file, or raise --max-memory."
        )
    return text


def _from_text(text: str, where: str, name: str, json_only: bool = False) -> Any:
    """JSON (numbers or nested lists, "nan"/"inf" strings allowed) or rows of numbers."""
    import torch

    stripped = text.strip()
    if json_only or stripped.startswith("["):
        try:
            data = json.loads(stripped, parse_int=lambda digits: _json_int(digits, f"{name} = {where}"))
        except (json.JSONDecodeError, RecursionError) as error:
            if json_only:
                raise InputError(f"{name} = {where}: not valid JSON ({error})") from None
        else:
            values = _json_numbers(data, f"{name} = {where}")
            shape = _nested_shape(values, f"{name} = {where}")  # before torch.tensor, which raises ValueError
            return torch.tensor(values, dtype=torch.float64).reshape(shape)
    rows, line_numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        row = []
        # Commas with optional spaces, or spaces alone: "1,,3" is a missing value, not "1,3".
        for value in re.split(r"\s*,\s*|\s+", line):
            try:
                row.append(_float(value, f"{name} = {where}: line {number}"))
            except ValueError:
                what = repr(value[:40]) if value else "an empty value"
                raise InputError(f"{name} = {where}: line {number}: {what} is not a number") from None
        rows.append(row)
        line_numbers.append(number)
    if not rows:
        raise InputError(f"{name} = {where}: holds no numbers")
    for row, number in zip(rows, line_numbers):
        if len(row) != len(rows[0]):
            raise InputError(
                f"{name} = {where}: the rows have different lengths: line {line_numbers[0]} has "
                f"{len(rows[0])} numbers, line {number} has {len(row)}"
            )
    # As numpy.loadtxt reads text: one row or one column is a vector, one number a scalar.
    tensor = torch.tensor(rows, dtype=torch.float64)
    if len(rows) == 1:
        return tensor[0] if len(rows[0]) > 1 else tensor[0, 0]
    return tensor[:, 0] if len(rows[0]) == 1 else tensor


def _json_int(digits: str, where: str) -> int:
    """JSON integers, checked by _float first: json's int() refuses more than 4,300 digits with
    a ValueError, and float() of a shorter one beyond float64 raises OverflowError."""
    _float(digits, where)
    return int(digits)


def _json_numbers(data: Any, where: str, depth: int = 0) -> Nested:
    if isinstance(data, list):
        if not data:
            raise InputError(f"{where}: an empty list has no numbers")
        if depth >= MAX_NESTING:  # as for literals; torch.tensor takes at most 64 dimensions
            raise InputError(f"{where}: lists nested deeper than {MAX_NESTING}")
        return [_json_numbers(item, where, depth + 1) for item in data]
    if isinstance(data, bool) or not isinstance(data, (int, float, str)):
        raise InputError(f"{where}: {shorten(json.dumps(data), 40)} is not a number")
    try:
        return _float(data, where) if isinstance(data, str) else float(data)
    except (ValueError, OverflowError):
        raise InputError(f"{where}: {shorten(repr(data), 40)} is not a number") from None


def check_dense(tensor: Any, where: str, saved: bool = False) -> None:
    """Refuse tensors that hold no plain array of numbers: meta (no data), sparse, nested,
    quantized. torch.func and the formulas need a dense, strided tensor; converting silently
    could allocate far more than the file's size (a sparse tensor's dense form), so the user
    converts, knowing the cost.

    Args:
        where: how messages name the tensor, e.g. ``x = @x.pt`` or ``inputs['x']``.
        saved: the tensor came from a file, so the advice is to convert it before saving.
    """
    import torch

    if tensor.is_meta:
        what, fix = "a meta tensor (a shape without numbers)", "one that holds numbers"
    elif tensor.is_nested:
        what, fix = "a nested tensor", "t.to_padded_tensor(0.0), or each of its tensors on its own"
    elif tensor.layout != torch.strided:
        layout = str(tensor.layout).replace("torch.", "")
        kind = f"sparse {layout[len('sparse_'):].upper()}" if layout.startswith("sparse_") else layout
        what, fix = f"a {kind} tensor", "t.to_dense()"
    elif tensor.is_quantized:
        what, fix = "a quantized tensor", "t.dequantize()"
    else:
        return
    raise InputError(
        f"{where}: holds {what}; jacli needs a dense, strided tensor of real numbers, so "
        f"{'save' if saved else 'give'} {fix} instead"
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
        raise InputError(f"wrt must be a variable name or a list of names, such as ['x', 'y'], not {short_repr(wrt)}")
    names = list(wrt)
    for i, item in enumerate(names):
        if not isinstance(item, str):
            raise InputError(f"wrt[{i}] must be a variable name (a str), not {short_repr(item)}; e.g. wrt=['x']")
    return names


def check_python_numbers(given: Iterable[tuple[str | None, Any]]) -> None:
    """``check_python_number`` for each of the API's inputs, named ``inputs['x']``."""
    for name, value in given:
        check_python_number(value, f"inputs[{name!r}]" if name is not None else "an input")


def check_python_number(value: Any, where: str) -> None:
    """Refuse Python ints too large for float64 (``10**400``) before anything converts or prints
    them: float() raises OverflowError, and str() a ValueError beyond 4,300 digits. Only ints and
    lists or tuples are walked; tensors and arrays cannot hold such numbers."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif type(item) is int and not -(2**1023) < item < 2**1023:
            try:
                float(item)
            except OverflowError:
                raise InputError(
                    f"{where} holds the integer {format_integer(item)}, larger than float64 can hold "
                    f"(about {FLOAT64_MAX}); give a float, e.g. float('inf') for infinity"
                ) from None


def fit_to_output(v: Any, output_shape: tuple[int, ...], spec_text: str, what: str = "the output") -> Any:
    """Check --v's shape against the output's (or an input's, ``what``); a single number fits a
    one-element target."""
    shape = tuple(v.shape)
    if shape == output_shape:
        return v
    if v.numel() == 1 and math.prod(output_shape) == 1:
        return v.reshape(output_shape)
    raise ShapeError(
        f"--v {spec_text} has shape {_show(shape)} but {what} has shape {_show(output_shape)}; "
        f"v must match {what}. Try --v {_example(output_shape)} (or --v ones, --v onehot:"
        f"{','.join('0' for _ in output_shape) or '0'})"
    )


def _show(shape: tuple[int, ...]) -> str:
    return "() (a scalar)" if not shape else str(shape)


def _example(shape: tuple[int, ...]) -> str:
    """A literal spec of that shape, counting 1, 2, 3 ... (abbreviated when large)."""
    if not shape:
        return "1"
    if math.prod(shape) > 12:
        return "ones:" + "x".join(map(str, shape))
    counter = iter(range(1, math.prod(shape) + 1))

    def build(dims: tuple[int, ...]) -> str:
        if len(dims) == 1:
            return ",".join(str(next(counter)) for _ in range(dims[0]))
        return ",".join(f"[{build(dims[1:])}]" for _ in range(dims[0]))

    text = build(shape)
    return text if len(shape) == 1 else f"'[{text}]'"
