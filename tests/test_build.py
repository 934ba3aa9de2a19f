"""Spec → tensor (jacli.inputs.build): constructors, random specs, the `v` forms and the memory
budget, against tensors built directly with torch; fit_to_output's suggestions are run back.
"""

from __future__ import annotations

import math
import re
import shlex
import zlib

import pytest
import torch
from hypothesis import given, settings
from input_helpers import F64, GRAMMAR_TEXT, assert_same, make

from jacli import inputs
from jacli.errors import InputError, ResourceError, ShapeError
from jacli.inputs import (
    Constructor,
    File,
    OneHot,
    fit_to_output,
    materialize,
    parse_spec,
    seed_for,
)
from jacli.inputs.build import check_python_numbers


def test_literals_follow_the_requested_dtype() -> None:
    assert_same(make("0.1,0.2", dtype=torch.float32), torch.tensor([0.1, 0.2], dtype=torch.float32))


# -- constructors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("eye:3", torch.eye(3, dtype=F64)),
        ("eye:1", torch.eye(1, dtype=F64)),
        ("eye:2x3", torch.eye(2, 3, dtype=F64)),
        ("EYE:3X2", torch.eye(3, 2, dtype=F64)),
        ("eye: 4 ", torch.eye(4, dtype=F64)),
        ("ones:5", torch.ones(5, dtype=F64)),
        ("ones:2x3", torch.ones(2, 3, dtype=F64)),
        ("ones:2x3x4", torch.ones(2, 3, 4, dtype=F64)),
        ("zeros:5", torch.zeros(5, dtype=F64)),
        ("zeros:2x3", torch.zeros(2, 3, dtype=F64)),
        ("zeros:2x3x4", torch.zeros(2, 3, 4, dtype=F64)),
        ("full:2x3:0.5", torch.full((2, 3), 0.5, dtype=F64)),
        ("full:4:-1e3", torch.full((4,), -1000.0, dtype=F64)),
        ("full:2x3x4:7", torch.full((2, 3, 4), 7.0, dtype=F64)),
        ("full:1:inf", torch.tensor([math.inf], dtype=F64)),
    ],
)
def test_shaped_constructors(text, expected) -> None:
    spec = parse_spec(text)
    assert isinstance(spec, Constructor) and spec.shape == tuple(expected.shape)
    assert_same(make(text), expected)


def test_full_accepts_nan() -> None:
    tensor = make("full:2x2:nan")
    assert tensor.shape == (2, 2) and torch.isnan(tensor).all()


@pytest.mark.parametrize(
    "text,args",
    [
        ("arange:5", (5.0,)),
        ("arange:2,7", (2.0, 7.0)),
        ("arange:0,1,0.1", (0.0, 1.0, 0.1)),
        ("arange:5,0,-1", (5.0, 0.0, -1.0)),
        ("arange:-8,8,0.1", (-8.0, 8.0, 0.1)),
        ("arange:0.5,3", (0.5, 3.0)),
        ("arange:1,2,0.3", (1.0, 2.0, 0.3)),
        ("arange: 0 , 10 , 3 ", (0.0, 10.0, 3.0)),
    ],
)
def test_arange_has_torch_semantics(text, args) -> None:
    reference = torch.arange(*args, dtype=F64)
    spec = parse_spec(text)
    # The shape is known before torch runs (it feeds the memory budget); it must be torch's.
    assert spec.shape == tuple(reference.shape)
    assert_same(make(text), reference)


def test_arange_minus_8_to_8_by_tenths_has_160_elements() -> None:
    tensor = make("arange:-8,8,0.1")
    assert tensor.shape == (160,)
    assert tensor[0] == -8.0
    assert tensor[-1] == pytest.approx(7.9, abs=1e-12)  # -8 + 159 * 0.1


@pytest.mark.parametrize(
    "text,args",
    [("linspace:0,1,5", (0.0, 1.0, 5)), ("linspace:-1,1,1", (-1.0, 1.0, 1)), ("linspace:3,-3,7", (3.0, -3.0, 7))],
)
def test_linspace(text, args) -> None:
    assert_same(make(text), torch.linspace(*args, dtype=F64))
    assert parse_spec(text).shape == (args[2],)


def test_linspace_values_by_hand() -> None:
    assert make("linspace:0,1,5").tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


# -- random specs --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,draw", [("rand", torch.rand), ("randn", torch.randn)])
@pytest.mark.parametrize("seed", [0, 7, 2**40])
def test_random_specs_follow_the_seed_and_name(kind, draw, seed) -> None:
    generator = torch.Generator().manual_seed(seed_for(seed, "w"))
    reference = draw((2, 3), generator=generator, dtype=F64)
    assert_same(make(f"{kind}:2x3", name="w", seed=seed), reference)
    # float32 is the float64 draw rounded, so both precisions see the same point
    assert_same(make(f"{kind}:2x3", name="w", seed=seed, dtype=torch.float32), reference.float())


def test_random_specs_are_reproducible_and_independent() -> None:
    first = make("randn:4x4", name="a", seed=3)
    assert torch.equal(first, make("randn:4x4", name="a", seed=3))
    assert not torch.equal(first, make("randn:4x4", name="b", seed=3))
    assert not torch.equal(first, make("randn:4x4", name="a", seed=4))
    uniform = make("rand:1000", name="a", seed=3)
    assert ((uniform >= 0) & (uniform < 1)).all()


def test_seed_for_is_stable_across_processes() -> None:
    # crc32, not hash(): PYTHONHASHSEED must not change the values. crc32(b"x") = 0x8CDC1683.
    assert zlib.crc32(b"x") == 0x8CDC1683
    assert seed_for(0, "x") == 0x8CDC1683
    assert seed_for(1, "x") == 1_000_003 + 0x8CDC1683
    assert 0 <= seed_for(-5, "x") < 2**63


# -- v forms ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,build", [("ones", torch.ones), ("zeros", torch.zeros)])
def test_v_without_shape_takes_the_output_shape(kind, build) -> None:
    spec = parse_spec(kind, for_v=True)
    assert spec == Constructor(kind, kind, None)
    assert_same(make(kind, for_v=True, name="v", output_shape=(2, 3)), build((2, 3), dtype=F64))
    assert_same(make(kind, for_v=True, name="v", output_shape=()), build((), dtype=F64))


@pytest.mark.parametrize("kind,draw", [("rand", torch.rand), ("randn", torch.randn)])
def test_random_v_without_shape(kind, draw) -> None:
    reference = draw((3, 2), generator=torch.Generator().manual_seed(seed_for(11, "v")), dtype=F64)
    assert_same(make(kind, for_v=True, name="v", seed=11, output_shape=(3, 2)), reference)


def test_shapeless_v_needs_an_output_shape() -> None:
    with pytest.raises(InputError, match="output's shape"):
        make("ones", for_v=True, name="v")


def onehot_reference(shape, index) -> torch.Tensor:
    tensor = torch.zeros(shape, dtype=F64)
    tensor[index] = 1.0
    return tensor


@pytest.mark.parametrize(
    "text,shape,index",
    [
        ("onehot:4", (2, 3), (1, 1)),  # flat index 4 = row 1, column 1 in row-major order
        ("onehot:0", (2, 3), (0, 0)),
        ("onehot:5", (2, 3), (1, 2)),
        ("onehot:-1", (2, 3), (1, 2)),
        ("onehot:-6", (2, 3), (0, 0)),
        ("onehot:13", (2, 3, 4), (1, 0, 1)),  # 13 = 1*12 + 0*4 + 1
        ("onehot:1,2", (2, 3), (1, 2)),
        ("onehot:-1,0", (2, 3), (1, 0)),
        ("onehot: 0 , -1 ", (2, 3), (0, 2)),
        ("onehot:2", (4,), (2,)),
        ("onehot:-4", (4,), (0,)),
        ("onehot:1,0,3", (2, 3, 4), (1, 0, 3)),
        ("onehot:0", (), ()),
    ],
)
def test_onehot(text, shape, index) -> None:
    spec = parse_spec(text, for_v=True)
    assert isinstance(spec, OneHot)
    assert_same(make(text, for_v=True, name="v", output_shape=shape), onehot_reference(shape, index))


@pytest.mark.parametrize(
    "text,shape,named",
    [
        ("onehot:6", (2, 3), ["6", "(2, 3)", "6 elements"]),
        ("onehot:-7", (2, 3), ["-7", "(2, 3)"]),
        ("onehot:2,0", (2, 3), ["index 2", "(2, 3)"]),
        ("onehot:0,3", (2, 3), ["index 3", "(2, 3)"]),
        ("onehot:0,-4", (2, 3), ["index -4", "(2, 3)"]),
        ("onehot:4", (4,), ["index 4", "(4,)"]),
        ("onehot:0,0,0", (2, 3), ["(2, 3)", "2 indices"]),
        ("onehot:1", (), ["1", "()"]),
    ],
)
def test_onehot_out_of_range(text, shape, named) -> None:
    with pytest.raises(ShapeError) as caught:
        make(text, for_v=True, name="v", output_shape=shape)
    for part in named:
        assert part in str(caught.value)
    assert str(caught.value).startswith(f"`v` {text}: ") and caught.value.param == "v"


# -- the memory budget --------------------------------------------------------------------------


@pytest.fixture
def no_construction(monkeypatch):
    """Fail the test if materialize gets as far as building a constructor's tensor."""

    def refuse(*args, **kwargs):
        raise AssertionError("allocated before checking the budget")

    monkeypatch.setattr(inputs.build, "_construct", refuse)


@pytest.mark.usefixtures("no_construction")
def test_budget_refuses_before_allocating() -> None:
    # 100000 * 100000 = 10**10 elements * 8 bytes = 8 * 10**10 bytes = 80.0 GB
    with pytest.raises(ResourceError) as caught:
        make("ones:100000x100000", budget=10**9)
    message = str(caught.value)
    assert "ones:100000x100000" in message and "10,000,000,000 elements" in message
    assert "80.0 GB" in message and "1.0 GB" in message
    assert message.endswith("Use a smaller shape, or raise `max_memory`.") and caught.value.param == "max_memory"
    # float32: 4 bytes each, 40.0 GB
    with pytest.raises(ResourceError, match="40.0 GB"):
        make("randn:100000x100000", budget=10**9, dtype=torch.float32)
    # a shapeless v takes the output's shape, and is checked too: 10**6 * 8 bytes = 8.0 MB
    with pytest.raises(ResourceError, match="8.0 MB") as caught:
        make("rand", for_v=True, name="v", budget=10**6, output_shape=(1000, 1000))
    assert caught.value.param == "max_memory"  # what to raise, as for any budget
    # 10**400 elements: the message is still written, not an OverflowError
    with pytest.raises(ResourceError, match=r"e\+385 PB"):
        make("ones:" + "1" + "0" * 400, budget=10**9)


@pytest.mark.usefixtures("no_construction")
def test_element_counts_beyond_4300_digits_are_written_in_scientific_notation() -> None:
    # 4,000 nines times 4,000 nines: a count of 8,000 digits, which f"{n:,}" cannot write
    nines = "9" * 4000
    with pytest.raises(ResourceError) as caught:
        make(f"ones:{nines}x{nines}", budget=10**9)
    message = str(caught.value)
    assert "(1.00e+8000 elements) would need 8.00e+7985 PB, over the memory budget of 1.0 GB" in message
    assert len(message) < 300


def test_budget_boundary() -> None:
    # ones:125 in float64 is exactly 1000 bytes
    assert_same(make("ones:125", budget=1000), torch.ones(125, dtype=F64))
    with pytest.raises(ResourceError, match="1.0 kB.*999 B"):
        make("ones:125", budget=999)
    with pytest.raises(ResourceError, match="24 B.*23 B"):
        make("1,2,3", budget=23)


# -- fit_to_output ------------------------------------------------------------------------------


def test_equal_shapes_pass_unchanged() -> None:
    v = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64)
    assert fit_to_output(v, (2, 2), "[[1,2],[3,4]]") is v


@pytest.mark.parametrize("v_shape,output_shape", [((), (1,)), ((), (1, 1)), ((1,), ()), ((1, 1), (1,))])
def test_one_element_v_fits_a_one_element_output(v_shape, output_shape) -> None:
    fitted = fit_to_output(torch.full(v_shape, 2.5, dtype=F64), output_shape, "2.5")
    assert_same(fitted, torch.full(output_shape, 2.5, dtype=F64))


@pytest.mark.parametrize("output_shape", [(), (1,), (3,), (2, 2), (2, 3), (2, 3, 2), (20,), (4, 5), (1, 1), (5, 1)])
def test_mismatch_suggests_specs_that_fit(output_shape) -> None:
    v = torch.ones(7, dtype=F64)
    with pytest.raises(ShapeError) as caught:
        fit_to_output(v, output_shape, "1,2,3,4,5,6,7")
    message = str(caught.value)
    shown = "() (a scalar)" if output_shape == () else str(output_shape)
    assert "`v` 1,2,3,4,5,6,7 has shape (7,)" in message and f"the output has shape {shown}" in message
    assert caught.value.param == "v"
    match = re.search(r"Try `v` (.+) \(or `v` (\S+), `v` (\S+)\)$", message)
    assert match, message
    for suggestion in match.groups():
        # what the shell passes on: the suggestion quotes brackets
        (text,) = shlex.split(suggestion)
        tensor = make(text, for_v=True, name="v", output_shape=output_shape)
        assert tensor.numel() == math.prod(output_shape)
        assert fit_to_output(tensor, output_shape, text).shape == output_shape
    (literal,) = shlex.split(match.group(1))
    if math.prod(output_shape) > 1:
        assert make(literal).shape == output_shape


def test_python_integers_beyond_float64_are_refused_by_name() -> None:
    check_python_numbers([("x", [1, 2**1023 - 1]), (None, 2.5)])  # the largest int that fits passes
    with pytest.raises(InputError) as caught:
        check_python_numbers([("x", [1.0, (2, 10**400)])])
    assert str(caught.value).startswith("inputs['x'] holds the integer 1000000000...0000000000 (401 digits), ")
    assert caught.value.param == "inputs"


def test_mismatch_names_what_v_must_match() -> None:
    with pytest.raises(ShapeError, match="but input w has shape \\(2,\\); v must match input w"):
        fit_to_output(torch.ones(3, dtype=F64), (2,), "1,2,3", what="input w")


@settings(deadline=None, max_examples=100)
@given(text=GRAMMAR_TEXT)
def test_parsed_shapes_are_what_materialize_builds(text) -> None:
    """Whatever parses and fits in 10 kB builds a tensor of the shape the spec announced."""
    try:
        spec = parse_spec(text)
    except InputError:
        return
    if isinstance(spec, File):
        return
    try:
        tensor = materialize(spec, name="x", dtype=F64, device="cpu", budget=10_000)
    except ResourceError:
        return
    assert tuple(tensor.shape) == spec.shape
