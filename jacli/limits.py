"""Memory budgets: how much jacli may allocate, and sizes written for people.

Large requests are refused before allocation with the estimate in the message, instead of
letting the operating system kill the process. Pure Python: no torch.
"""

from __future__ import annotations

import math
import os
import re
from decimal import Decimal
from typing import Any

from jacli.errors import InputError, ResourceError

BUDGET_FRACTION = 0.5
"""The default budget is this fraction of the memory available when jacli starts."""

MAX_SIZE = 2**63 - 1
"""The largest size ``parse_size`` accepts (bytes): more than any machine has."""

TEXT_FACTOR = 20
"""Bytes of memory per byte of text while numbers are read from text (JSON, CSV, stdin): "1,"
is 2 bytes of text but a 24-byte Python float and an 8-byte list slot while parsed, and 8 bytes
in the tensor. Text longer than the budget / TEXT_FACTOR is refused before it is parsed."""

_UNITS = {"": 1, "B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}


def available_memory() -> int:
    """Bytes of RAM available now (MemAvailable on Linux; physical memory elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 10**9


_READ: list[tuple[float, int]] = []
"""The last reading of available memory and when it was made (see ``default_budget``)."""

REREAD_SECONDS = 1.0


def default_budget() -> int:
    """The default memory budget in bytes: half of what is available.

    Read at most once a second: a loop of library calls would otherwise read /proc/meminfo for
    each (a tenth of a millisecond, as much as a small Jacobian), and what is available does not
    change that fast in a way a budget could follow anyway.
    """
    import time

    now = time.monotonic()
    if not _READ or now - _READ[0][0] > REREAD_SECONDS:
        _READ[:] = [(now, available_memory())]
    return int(_READ[0][1] * BUDGET_FRACTION)


def parse_size(text: str) -> int:
    """``"2GB"``, ``"500M"``, ``"1.5GiB"``, ``"1e9"`` → bytes.

    Raises:
        InputError: naming the text when it is not a size.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGT]?I?)B?\s*", text.upper())
    if not match or match.group(2) not in _UNITS:
        raise InputError(f"`max_memory` {text!r} is not a size; write it like 500MB, 2GB or 1.5GiB", param="max_memory")
    if float(match.group(1)) * _UNITS[match.group(2)] > MAX_SIZE:  # before Decimal makes 10**(10**9)
        raise InputError(f"`max_memory` {text!r} is too large; give at most {format_bytes(MAX_SIZE)}", param="max_memory")
    # Decimal, not float: "2.01KB" is 2010 bytes, where float arithmetic gives 2009.999...
    size = int(Decimal(match.group(1)) * _UNITS[match.group(2)])
    if size < 1:
        raise InputError(f"`max_memory` {text!r} is too small; give at least 1 byte", param="max_memory")
    return size


def check_max_memory(value: Any) -> int | None:
    """The API's ``max_memory`` argument: None (the default budget) or a positive int of bytes.

    Raises:
        InputError: for strings ("2GB"), floats, bools, zero or negative numbers, naming the value.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        # A float would silently truncate (1.5 bytes); a string is what --max-memory takes.
        hint = "; for a size such as '2GB', pass jacli.limits.parse_size('2GB')" if isinstance(value, str) else ""
        raise InputError(
            f"max_memory must be a number of bytes as an int, such as 2 * 10**9, not "
            f"{short_repr(value)}{hint}", param="max_memory",
        )
    if value < 1:
        raise InputError(f"max_memory must be at least 1 byte, not {format_integer(value)}", param="max_memory")
    return value


def text_cap(budget: int) -> int:
    """The most characters of text read as numbers under a memory budget (see ``TEXT_FACTOR``)."""
    return max(budget // TEXT_FACTOR, 1)


def format_count(count: int) -> str:
    """Element counts for people: ``1,000,000``; beyond 10**15, ``1.00e+8000``.

    ``f"{n:,}"`` calls str(int), which Python refuses beyond 4,300 digits (a shape such as
    ``ones:<4000 nines>x<4000 nines>`` has 8,000), and such counts are unreadable anyway.
    """
    if abs(count) < 10**15:
        return f"{count:,}"
    return f"{Decimal(count):.2e}"  # Decimal(int) is exact and has no digit limit


def format_integer(value: int, keep: int = 10) -> str:
    """A user's integer in a message: whole when short, else its first and last digits and
    the count, ``1234567890...4567890123 (5,000 digits)``, without str(int) on all of it."""
    magnitude = abs(value)
    if magnitude < 10 ** (2 * keep):
        return str(value)
    digits = int(math.log10(magnitude)) + 1  # a float estimate: correct it by one either way
    if 10 ** (digits - 1) > magnitude:
        digits -= 1
    elif 10**digits <= magnitude:
        digits += 1
    head = magnitude // 10 ** (digits - keep)
    tail = f"{magnitude % 10**keep:0{keep}d}"
    return f"{'-' if value < 0 else ''}{head}...{tail} ({digits:,} digits)"


def short_repr(value: Any, limit: int = 40) -> str:
    """A wrong argument as a message shows it: its repr cut short (it could be a whole array),
    and ints through ``format_integer`` (str() refuses more than 4,300 digits)."""
    text = format_integer(value) if type(value) is int else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_bytes(size: float) -> str:
    """Bytes for people: ``8.0 TB``, ``512.0 MB``."""
    if abs(size) >= 10**18:  # Decimal: a shape like 10**400 elements is too large for a float
        return f"{Decimal(size) / 10**15:.2e} PB"
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        # Compare after rounding, so that 999,999 bytes is "1.0 MB", not "1000.0 kB".
        if round(abs(size), 0 if unit == "B" else 1) < 1000 or unit == "PB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def check_budget(needed: int, budget: int, what: str, advice: str) -> None:
    """Raise ``ResourceError`` when ``needed`` bytes exceed ``budget``.

    Args:
        needed: the estimate, in bytes.
        budget: the limit, in bytes.
        what: what would be built, with its element count, e.g. "the Jacobian (10^12 elements)".
        advice: what the user can do instead.
    """
    if needed > budget:
        need, have = format_bytes(needed), format_bytes(budget)
        if need == have:  # "100.0 MB, over the budget of 100.0 MB": say it to the byte
            need, have = f"{needed:,} bytes", f"{budget:,} bytes"
        raise ResourceError(
            f"{what} would need {need}, over the memory budget of {have}. {advice}", param="max_memory",
        )
