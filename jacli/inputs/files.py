"""Reading ``@file`` and ``@-``: .npy, .pt, .json, .csv and .txt, capped by the memory budget.

torch and numpy are imported inside the functions that read, so that importing this module
stays cheap.
"""

from __future__ import annotations

import difflib
import json
import re
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from jacli.errors import InputError, JacliError, JacliWarning, ResourceError
from jacli.inputs.spec import MAX_NESTING, File, Nested, Spec, nested_shape, read_float
from jacli.limits import TEXT_FACTOR, check_budget, default_budget, format_bytes, text_cap


def check_single_stdin(specs: dict[str, Spec]) -> None:
    """Standard input can be read once: at most one spec may be ``@-``."""
    readers = [name for name, spec in specs.items() if isinstance(spec, File) and spec.path == "-"]
    if len(readers) > 1:
        raise InputError(
            f"{' and '.join(readers)} all read @- (standard input), which can be read only once; "
            "put all but one in files",
            param="inputs",
        )


def read_file(spec: File, name: str, budget: int | None = None) -> Any:
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
        _check_regular(path, name)
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
                             "Use a smaller file, or raise `max_memory`.")
            return torch.from_numpy(numpy.array(array, dtype="float64"))
        if suffix == ".pt":
            with warnings.catch_warnings():  # torch's notes on pickle protocols are not for users
                warnings.simplefilter("ignore")
                try:  # mapped, not read: a tensor over the budget is refused before its data is read
                    loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError:  # a legacy (not zip) file cannot be mapped: its size must fit
                    if budget is not None:
                        check_budget(os.path.getsize(path), budget, f"{name} = @{path} (a legacy .pt file, read whole)",
                                     "Use a smaller file, save it again with torch.save, or raise `max_memory`.")
                    loaded = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(loaded, torch.Tensor) or loaded.is_complex():
                raise InputError(f"{name} = @{path}: does not hold one real tensor")
            check_dense(loaded, f"{name} = @{path}", saved=True)
            if budget is not None:  # before the copy: expand() saves 30000 x 30000 in 1.6 kB
                check_budget(loaded.numel() * 8, budget, f"{name} = @{path} ({loaded.numel():,} elements)",
                             "Use a smaller file, or raise `max_memory`.")
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
    return _from_text(text, f"@{path}", name, json_only=suffix == ".json", key=spec.key)


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


def _check_regular(path: str, name: str) -> None:
    """Only regular files are read: a FIFO would block forever and /dev/zero never ends (a
    symbolic link is followed to what it names). Standard input is ``@-``."""
    import stat

    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device or socket"
        raise InputError(
            f"{name} = @{path}: is {kind}, not a regular file; give a file, or pipe the numbers "
            "into standard input with @-", param="inputs",
        )


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
            "the .npy file, or raise `max_memory`."
        )
    return text


def _from_text(text: str, where: str, name: str, json_only: bool = False, key: str | None = None) -> Any:
    """JSON (numbers or nested lists, "nan"/"inf" strings allowed; or one tensor of jacli's own
    JSON result) or rows of numbers."""
    import torch

    stripped = text.strip()
    if json_only or stripped.startswith(("[", "{")):
        try:
            data = json.loads(
                stripped,
                parse_int=lambda digits: _json_int(digits, f"{name} = {where}"),
                parse_float=lambda digits: read_float(digits, f"{name} = {where}"),
            )
        except (json.JSONDecodeError, RecursionError) as error:
            if json_only or stripped.startswith("{"):
                raise InputError(f"{name} = {where}: not valid JSON ({error})") from None
        else:
            if isinstance(data, dict):
                data = _pick_result(data, key, name, where)
            elif key is not None:
                raise InputError(
                    f"{name} = {where}#{key}: '#' picks a result of jacli's JSON output, but this file "
                    f"holds {_json_kind(data) if not isinstance(data, list) else 'a list'}; leave out #{key}"
                )
            values = _json_numbers(data, f"{name} = {where}")
            shape = nested_shape(values, f"{name} = {where}")  # before torch.tensor, which raises ValueError
            return torch.tensor(values, dtype=torch.float64).reshape(shape)
    rows, line_numbers = [], []
    header: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        # Commas with optional spaces, or spaces alone: "1,,3" is a missing value, not "1,3".
        values = re.split(r"\s*,\s*|\s+", line)
        if not rows and header is None and _is_header(values):
            header = number  # column names, as spreadsheets and pandas write them: skipped, with a note
            continue
        row = []
        for column, value in enumerate(values, start=1):
            try:
                row.append(read_float(value, f"{name} = {where}: line {number}"))
            except ValueError:
                # What the file holds is not echoed: it may be anything (a key, a password).
                what = f"value {column}, {len(value)} character{'s' if len(value) != 1 else ''} long," if value else "an empty value"
                hint = (
                    "; if that line is a header, remove it (jacli skips a first line only when none of "
                    "its values is a number)" if not rows and header is None else ""
                )
                raise InputError(f"{name} = {where}: line {number}: {what} is not a number{hint}") from None
        rows.append(row)
        line_numbers.append(number)
    if not rows:
        what = f"no numbers below its header (line {header})" if header is not None else "no numbers"
        raise InputError(f"{name} = {where}: holds {what}")
    if header is not None:
        warnings.warn(
            f"{name} = {where}: skipped line {header}, a header ({len(rows[0])} names, not numbers); "
            "the numbers start on the next line",
            JacliWarning, stacklevel=2,
        )
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


def _is_header(values: list[str]) -> bool:
    """A row of names: no value is a number (nor nan or inf), and each starts like a word."""
    for value in values:
        try:
            float(value)
            return False
        except ValueError:
            if not re.match(r"[^\W\d]|\"", value):  # a letter (or a quoted name) first
                return False
    return True


def _pick_result(document: dict, key: str | None, name: str, where: str) -> Any:
    """One tensor of jacli's own JSON output: its only result, or the one ``key`` names."""
    source, where = where, f"{name} = {where}" + (f"#{key}" if key is not None else "")
    results = document.get("result")
    if document.get("command") == "check":
        raise InputError(f"{where}: is jacli's check report, which holds no tensor; give a jacobian, vjp ... result")
    if not isinstance(results, dict) or "command" not in document:
        raise InputError(
            f"{where}: holds {_json_kind(document)} where a number or a list of numbers belongs "
            "(or jacli's own JSON output, with its \"result\")"
        )
    command = document["command"] if isinstance(document["command"], str) else "a"
    shown = ", ".join(str(k) for k in results) or "none"
    if key is None and len(results) != 1:
        first = next(iter(results), "x")
        how = f"like {source}#{first}" if source.startswith("@") else f"in a file, like @g.json#{first}"
        raise InputError(
            f"{where}: is jacli's {command} output and holds {len(results)} results ({shown}); pick one "
            f"by its name after '#', {how}"
        )
    if key is not None and key not in results:
        close = difflib.get_close_matches(key, [str(k) for k in results], n=1)
        hint = f"did you mean #{close[0]}? " if close else ""
        raise InputError(f"{where}: jacli's {command} output has no result {key!r}; {hint}it holds: {shown}")
    item = results[key if key is not None else next(iter(results))]
    if not isinstance(item, dict) or "values" not in item:
        raise InputError(f"{where}: this result holds no tensor of numbers")
    layout = item.get("layout", "dense")
    if layout != "dense":
        raise InputError(
            f"{where}: this result is stored in the {layout} layout (only some of its entries); "
            "write it with `layout` dense to read it back as a tensor"
        )
    return item["values"]


def _json_int(digits: str, where: str) -> int:
    """JSON integers, checked by read_float first: json's int() refuses more than 4,300 digits with
    a ValueError, and float() of a shorter one beyond float64 raises OverflowError."""
    read_float(digits, where)
    return int(digits)


def _json_numbers(data: Any, where: str, depth: int = 0) -> Nested:
    if isinstance(data, list):
        if not data:
            raise InputError(f"{where}: an empty list has no numbers")
        if depth >= MAX_NESTING:  # as for literals; torch.tensor takes at most 64 dimensions
            raise InputError(f"{where}: lists nested deeper than {MAX_NESTING}")
        return [_json_numbers(item, where, depth + 1) for item in data]
    if isinstance(data, bool) or not isinstance(data, (int, float, str)):
        raise InputError(f"{where}: holds {_json_kind(data)} where a number or a list of numbers belongs")
    try:
        return read_float(data, where) if isinstance(data, str) else float(data)
    except (ValueError, OverflowError):
        raise InputError(f"{where}: holds {_json_kind(data)} where a number belongs") from None


def _json_kind(data: Any) -> str:
    """What a JSON value is, without quoting it (a file's contents are not echoed)."""
    if isinstance(data, dict):
        return f"an object with {len(data)} key{'s' if len(data) != 1 else ''}"
    if isinstance(data, str):
        return f"a string of {len(data)} character{'s' if len(data) != 1 else ''}"
    if isinstance(data, bool):
        return "true" if data else "false"
    if data is None:
        return "null"
    return "a number too large for float64" if isinstance(data, int) else f"a {type(data).__name__}"
