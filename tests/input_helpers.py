"""Helpers shared by the tests of jacli.inputs (test_spec, test_build, test_files)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import strategies as st

from jacli.errors import InputError
from jacli.inputs import materialize, parse_spec

F64 = torch.float64


def make(text: str, *, name: str = "x", for_v: bool = False, **options) -> torch.Tensor:
    """parse_spec then materialize, in float64 on the CPU."""
    options.setdefault("dtype", F64)
    return materialize(parse_spec(text, for_v=for_v), name=name, device="cpu", **options)


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Same shape, dtype and values (NaN equal to NaN)."""
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    assert torch.equal(torch.nan_to_num(actual, nan=12345.0), torch.nan_to_num(expected, nan=12345.0))
    assert torch.equal(actual.isnan(), expected.isnan())


def input_error(text: str, **options) -> str:
    """The message of the InputError that parse_spec raises for ``text``."""
    with pytest.raises(InputError) as caught:
        parse_spec(text, **options)
    return str(caught.value)


GRAMMAR_TEXT = st.text(alphabet="0123456789.,-+e[]:x@ \nonesyzrlaigpdfuhtcv-=_", max_size=30)
"""Text close to the grammar, so that hypothesis reaches its corners quickly."""
