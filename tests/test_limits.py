"""Memory budgets (jacli.limits): sizes people write, sizes shown to people, and the refusal."""

from __future__ import annotations

import os

import pytest

from jacli import limits
from jacli.errors import InputError, ResourceError
from jacli.limits import available_memory, check_budget, default_budget, format_bytes, parse_size


@pytest.mark.parametrize(
    "text,size",
    [
        ("500MB", 500_000_000),
        ("500M", 500_000_000),
        ("2GB", 2_000_000_000),
        ("2gb", 2_000_000_000),
        (" 2 GB ", 2_000_000_000),
        ("1.5GiB", 1_610_612_736),  # 1.5 * 1024**3 = 1.5 * 1,073,741,824
        ("1e9", 1_000_000_000),
        ("1E9B", 1_000_000_000),
        ("123", 123),
        ("123B", 123),
        ("4k", 4_000),
        ("4KiB", 4_096),
        ("0.5KiB", 512),
        (".5MB", 500_000),
        ("1T", 10**12),
        ("1TiB", 2**40),
        ("2.5e3MB", 2_500_000_000),
        ("2.01KB", 2_010),  # float arithmetic would give 2009.9999999999998
        ("4.35GB", 4_350_000_000),
        ("1.5", 1),  # whole bytes, rounded down
    ],
)
def test_parse_size(text, size) -> None:
    assert parse_size(text) == size
    assert isinstance(parse_size(text), int)


@pytest.mark.parametrize(
    "text", ["", "  ", "abc", "GB", "-1GB", "5XB", "5I", "5IB", "5 G B", "1.2.3", "1e", "nan", "inf", "2GBs", "1,000"]
)
def test_parse_size_refuses_what_is_not_a_size(text) -> None:
    with pytest.raises(InputError) as caught:
        parse_size(text)
    assert f"`max_memory` {text!r} is not a size" in str(caught.value)
    assert "2GB" in str(caught.value)  # shows a form that works


@pytest.mark.parametrize("text", ["0", "0B", "0.4", "1e-400"])
def test_parse_size_refuses_less_than_a_byte(text) -> None:
    with pytest.raises(InputError, match=f"`max_memory` '{text}' is too small"):
        parse_size(text)


@pytest.mark.parametrize("text", ["1e400", "1e30", "9.3e18", "10000000TB", "1e999999999"])
def test_parse_size_refuses_more_than_any_machine(text) -> None:
    # 2**63 - 1 bytes is the largest accepted size; all of these are larger
    with pytest.raises(InputError, match=f"`max_memory` '{text}' is too large"):
        parse_size(text)
    assert parse_size("9.2e18") == 9_200_000_000_000_000_000


@pytest.mark.parametrize(
    "size,text",
    [
        (0, "0 B"),
        (1, "1 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1536, "1.5 kB"),
        (999_949, "999.9 kB"),
        (999_999, "1.0 MB"),  # rounds up into the next unit, not "1000.0 kB"
        (512_000_000, "512.0 MB"),
        (1.5e9, "1.5 GB"),
        (8 * 10**12, "8.0 TB"),
        (2.5e15, "2.5 PB"),
        (-2048, "-2.0 kB"),
    ],
)
def test_format_bytes(size, text) -> None:
    assert format_bytes(size) == text


def test_format_bytes_beyond_float_range() -> None:
    # 8 * 10**400 bytes = 8 * 10**385 PB; int / 1000 would raise OverflowError
    assert format_bytes(8 * 10**400) == "8.00e+385 PB"
    assert format_bytes(3 * 10**18) == "3.00e+3 PB"


@pytest.mark.parametrize(
    "count,text",
    [(0, "0"), (1234567, "1,234,567"), (10**15 - 1, "999,999,999,999,999"), (10**15, "1.00e+15"),
     (10**8000 - 1, "1.00e+8000"), (123 * 10**5000, "1.23e+5002")],
    ids=lambda value: value if isinstance(value, str) else "",  # pytest's own id would be str(int)
)
def test_format_count(count, text) -> None:
    assert limits.format_count(count) == text


def test_check_budget_passes_up_to_the_budget() -> None:
    assert check_budget(1000, 1000, "x", "advice") is None
    assert check_budget(0, 1, "x", "advice") is None


def test_check_budget_refuses_with_both_sizes() -> None:
    with pytest.raises(ResourceError) as caught:
        check_budget(8 * 10**12, 2 * 10**9, "the Jacobian (10^12 elements)", "Try --method rows.")
    message = str(caught.value)
    assert message == (
        "the Jacobian (10^12 elements) would need 8.0 TB, over the memory budget of 2.0 GB. Try --method rows."
    )
    with pytest.raises(ResourceError, match="1.0 kB, over the memory budget of 999 B"):
        check_budget(1000, 999, "x", "")


def test_default_budget_is_half_of_available_memory(monkeypatch) -> None:
    budget = default_budget()
    assert 0 < budget <= available_memory()
    monkeypatch.setattr(limits, "available_memory", lambda: 10**10)
    monkeypatch.setattr(limits, "_READ", [])  # forget the last reading
    assert default_budget() == 5 * 10**9


def test_available_memory_is_read_at_most_once_a_second(monkeypatch) -> None:
    readings = iter([10**10, 4 * 10**9])
    clock = iter([100.0, 100.5, 101.6])
    monkeypatch.setattr(limits, "available_memory", lambda: next(readings))
    monkeypatch.setattr(limits, "_READ", [])
    monkeypatch.setattr("time.monotonic", lambda: next(clock))
    assert default_budget() == 5 * 10**9  # read at 100.0
    assert default_budget() == 5 * 10**9  # 100.5: the same reading
    assert default_budget() == 2 * 10**9  # 101.6: read again


def test_available_memory_is_at_most_physical_memory() -> None:
    available = available_memory()
    assert isinstance(available, int) and available > 0
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert available <= physical


def test_available_memory_without_proc_meminfo(monkeypatch) -> None:
    def no_file(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(limits, "open", no_file, raising=False)
    expected = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    # free pages move between the two reads: 64 MiB of slack
    assert abs(available_memory() - expected) < 2**20 * 64
