"""The spec grammar (jacli.inputs.spec): every form, against the values and shapes written out
or built directly with torch, and every bad form, against the part of the text it names; hypothesis
properties for literals and for any text at all.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from input_helpers import F64, GRAMMAR_TEXT, assert_same, input_error, make

from jacli import inputs
from jacli.errors import InputError
from jacli.inputs import (
    Constructor,
    File,
    Literal,
    OneHot,
    parse_input_option,
    parse_spec,
)


# -- numbers and literals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,value",
    [("2.5", 2.5), ("-3", -3.0), ("0", 0.0), ("1e-3", 0.001), ("-2.5E2", -250.0), ("+4", 4.0),
     ("  7  ", 7.0), ("inf", math.inf), ("-inf", -math.inf), ("Infinity", math.inf), ("INF", math.inf)],
)
def test_a_number_is_a_0d_tensor(text, value) -> None:
    spec = parse_spec(text)
    assert isinstance(spec, Literal) and spec.shape == ()
    assert_same(make(text), torch.tensor(value, dtype=F64))


@pytest.mark.parametrize("text", ["nan", "NaN", "-nan"])
def test_nan_is_a_number(text) -> None:
    tensor = make(text)
    assert tensor.shape == () and torch.isnan(tensor)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1,2,3", [1.0, 2.0, 3.0]),
        ("[1,2,3]", [1.0, 2.0, 3.0]),
        ("-1.5,2e1", [-1.5, 20.0]),
        ("[5]", [5.0]),
        ("[[1,2],[3,4]]", [[1.0, 2.0], [3.0, 4.0]]),
        ("[1,2],[3,4]", [[1.0, 2.0], [3.0, 4.0]]),  # outer brackets may be left out
        ("[[[1],[2]],[[3],[4]],[[5],[6]]]", [[[1.0], [2.0]], [[3.0], [4.0]], [[5.0], [6.0]]]),
        ("[[nan, inf], [-inf, 0]]", [[math.nan, math.inf], [-math.inf, 0.0]]),
    ],
)
def test_lists_and_nested_brackets(text, expected) -> None:
    spec = parse_spec(text)
    reference = torch.tensor(expected, dtype=F64)
    assert isinstance(spec, Literal) and spec.shape == tuple(reference.shape)
    assert_same(make(text), reference)


@pytest.mark.parametrize(
    "text", [" [ [ 1 , 2 ] ,\n [3,\t4] ] ", "[[1,2],[3,4]]", "\t[[1,2],\r\n[3,4]]\n"]
)
def test_whitespace_is_ignored(text) -> None:
    assert_same(make(text), torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64))


@pytest.mark.parametrize("shape_text,shape", [("5", (5,)), ("2x3", (2, 3)), ("2x3x4", (2, 3, 4)), ("1x1", (1, 1))])
def test_shape_forms(shape_text, shape) -> None:
    assert parse_spec(f"ones:{shape_text}").shape == shape
    assert_same(make(f"zeros:{shape_text}"), torch.zeros(shape, dtype=F64))


# -- parse_input_option -------------------------------------------------------------------------


def test_named_and_unnamed_options() -> None:
    name, spec = parse_input_option("x=1,2,3")
    assert name == "x" and isinstance(spec, Literal) and spec.values == [1.0, 2.0, 3.0]
    name, spec = parse_input_option("  W_2 = eye:2x3")
    assert name == "W_2" and spec == Constructor("eye:2x3", "eye", (2, 3))
    assert parse_input_option("eye:5") == (None, Constructor("eye:5", "eye", (5, 5)))
    assert parse_input_option("@data=1.npy") == (None, File("@data=1.npy", "data=1.npy"))
    # the expression parser takes names in any alphabet, so `inputs` does too
    name, spec = parse_input_option("é=1,2")
    assert name == "é" and spec.values == [1.0, 2.0]
    name, spec = parse_input_option("v=onehot:1", param="v", for_v=True)
    assert name == "v" and spec == OneHot("onehot:1", (1,))


@pytest.mark.parametrize(
    "text,name", [("1x=3", "'1x'"), ("_a=1", "'_a'"), ("x-y=2", "'x-y'"), ("=3", "''"), ("²=1", "'²'")]
)
def test_bad_names(text, name) -> None:
    with pytest.raises(InputError) as caught:
        parse_input_option(text)
    message = str(caught.value)
    assert f"{name} is not a variable name" in message and "NAME=SPEC" in message
    assert message.startswith(f"`inputs` {text!r}: ") and caught.value.param == "inputs"


def test_option_errors_name_the_parameter_and_the_bad_part() -> None:
    # the parameter in backticks, which the CLI writes as its flag (--input, --v)
    with pytest.raises(InputError) as caught:
        parse_input_option("x=ones:2y3")
    assert str(caught.value).startswith("`inputs` x=ones:2y3: ") and "'2y3'" in str(caught.value)
    assert caught.value.param == "inputs"
    with pytest.raises(InputError, match="`v` only") as caught:
        parse_input_option("x=onehot:1")
    assert caught.value.param == "inputs"
    with pytest.raises(InputError, match=r"^`v` w=ones:0") as caught:
        parse_input_option("w=ones:0", param="v", for_v=True)
    assert caught.value.param == "v"


@pytest.mark.parametrize(
    "options,start,param",
    [({}, "ones:0: ", "inputs"), ({"for_v": True}, "`v` ones:0: ", "v"), ({"param": "inputs"}, "`inputs` ones:0: ", "inputs")],
)
def test_parse_spec_errors_name_the_parameter(options, start, param) -> None:
    with pytest.raises(InputError) as caught:
        parse_spec("ones:0", **options)
    assert str(caught.value).startswith(start) and caught.value.param == param


# -- bad specs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text,number", [("1e400", "1e400"), ("x=-1E999,2", "-1E999"), ("full:2:1e309", "1e309"),
                                         ("[[1,2],[3,4e400]]", "4e400"), ("arange:0,1e400", "1e400")])
def test_numbers_beyond_float64_are_refused_by_name_not_made_infinite(text, number) -> None:
    assert float(number) in (math.inf, -math.inf)  # the reference: what float() would make of it
    message = input_error(text) if "=" not in text else _option_error(text)
    assert f"the number {number} is larger than float64 can hold (about 1.8e308)" in message
    assert "overflow" in message and "write inf if you mean infinity" in message


def _option_error(text: str) -> str:
    with pytest.raises(InputError) as caught:
        parse_input_option(text)
    assert caught.value.param == "inputs"
    return str(caught.value)


def test_the_number_just_under_float64s_largest_is_kept() -> None:
    import sys

    assert make("1.7976931348623157e308").item() == sys.float_info.max
    assert make("1e-400").item() == 0.0  # too small is zero, as in numpy: only overflow is refused


def test_a_jacli_json_result_key_is_part_of_a_file_spec() -> None:
    assert parse_spec("@out/g.json#x") == File("@out/g.json#x", "out/g.json", "x")
    assert parse_spec("@g.JSON#dy") == File("@g.JSON#dy", "g.JSON", "dy")
    assert "cannot tell the format" in input_error("@g.npy#x")  # only JSON holds named results


@pytest.mark.parametrize(
    "text,named",
    [
        ("", ["empty"]),
        ("   ", ["empty"]),
        ("onse:3", ["'onse'", "did you mean ones?"]),
        ("lnspace:0,1,5", ["'lnspace'", "did you mean linspace?"]),
        ("zzz:3", ["'zzz'", "eye:..."]),
        ("ones:2y3", ["'2y3'", "2x3"]),
        ("ones:", ["''"]),
        ("ones:2x", ["'2x'"]),
        ("ones:-2", ["'-2'"]),
        ("ones:2.5", ["'2.5'"]),
        ("ones:2x0", ["'2x0'", "no elements"]),
        ("eye:0", ["'0'", "no elements"]),
        ("eye:2x3x4", ["eye:2x3x4", "NxM"]),
        ("ones", ["ones:2x3", "only `v`"]),
        ("eye", ["eye:3"]),
        ("full:2x3", ["full:2x3:0.5"]),
        ("full:2x3:abc", ["'abc' is not a number"]),
        ("[[1,2],[3,4]", ["found the end"]),
        ("[1,2]]", ["unexpected ']'"]),
        ("[1,2", ["found the end"]),
        ("]", ["found ']'"]),
        ("[[1,2],[3]]", ["item 0 has shape (2,)", "item 1 has shape (1,)"]),
        ("[1,[2,3]]", ["item 1 has shape (2,)"]),
        ("1,,2", ["found ','"]),
        ("1,2,", ["found ']'"]),
        ("[]", ["empty list"]),
        ("[[1],[]]", ["empty list"]),
        ("1,abc", ["'abc' is not a number"]),
        ("1 2", ["unexpected '2'"]),
        ("[" * 40 + "1" + "]" * 40, ["deeper than 32"]),
        ("arange:5,0", ["from 5 to 0 by 1 is empty"]),
        ("arange:0,1,-0.5", ["from 0 to 1 by -0.5 is empty"]),
        ("arange:0,1,0", ["non-zero step"]),
        ("arange:0,inf", ["finite"]),
        ("arange:1,2,3,4", ["START,STOP[,STEP]"]),
        ("arange:a", ["'a' is not a number"]),
        ("arange:-1e308,1e308", ["too many elements"]),
        ("arange:0,1,5e-324", ["too many elements"]),
        ("linspace:0,1", ["START,STOP,N"]),
        ("linspace:0,1,0", ["not '0'"]),
        ("linspace:0,1,2.5", ["not '2.5'"]),
        ("linspace:0,1,-3", ["not '-3'"]),
        ("onehot:1", ["onehot", "`v` only"]),
        ("@", ["file name"]),
        ("@data.xlsx", ["'data.xlsx'", ".npy"]),
        ("@noext", ["'noext'"]),
        ("ones:" + "9" * 5000, ["too large"]),
    ],
)
def test_bad_specs_name_the_bad_part(text, named) -> None:
    message = input_error(text)
    for part in named:
        assert part in message, (part, message)


@pytest.mark.parametrize(
    "text,named",
    [
        ("onehot:a", ["'a' is not an integer index"]),
        ("onehot:1.5", ["'1.5'"]),
        ("onehot:", ["''"]),
        ("onehot", ["onehot:0"]),
        ("eye", ["eye:3"]),
        ("onehot:" + "9" * 5000, ["too large"]),
    ],
)
def test_bad_v_specs(text, named) -> None:
    message = input_error(text, for_v=True)
    for part in named:
        assert part in message, (part, message)
    assert message.startswith("`v` ")


def test_bad_specs_fail_before_torch_is_imported() -> None:
    bad = ["", "onse:3", "ones:2y3", "ones:2x0", "[[1,2],[3]]", "[1,2", "1,,2", "arange:5,0", "linspace:0,1",
           "onehot:1", "@x.xlsx", "full:2:x"]
    good = ["1,2,3", "eye:3", "@x.npy", "arange:-8,8,0.1", "randn:2x3"]
    script = (
        "import sys\n"
        "from jacli.inputs import parse_spec\n"
        "from jacli.errors import InputError\n"
        f"for text in {bad!r}:\n"
        "    try:\n"
        "        parse_spec(text)\n"
        "    except InputError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit('accepted ' + repr(text))\n"
        f"for text in {good!r}:\n"
        "    parse_spec(text)\n"
        "parse_spec('onehot:1,2', for_v=True)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip() == "ok"


# -- properties of the literal grammar ----------------------------------------------------------

SPACES = st.sampled_from(["", " ", "  ", "\t", "\n", " \r\n "])
FINITE = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def nested_lists(draw):
    """(shape, nested list of finite floats of that shape)."""
    shape = tuple(draw(st.lists(st.integers(1, 4), max_size=4)))
    flat = draw(st.lists(FINITE, min_size=math.prod(shape), max_size=math.prod(shape)))
    values = iter(flat)

    def build(dims):
        return next(values) if not dims else [build(dims[1:]) for _ in range(dims[0])]

    return shape, build(shape)


def format_number(draw, x: float) -> str:
    return draw(SPACES) + draw(st.sampled_from([repr(x), f"{x:.17g}", f"{x:.17e}".upper()])) + draw(SPACES)


def format_list(draw, values) -> str:
    if not isinstance(values, list):
        return format_number(draw, values)
    items = ("," + draw(SPACES)).join(format_list(draw, item) for item in values)
    return draw(SPACES) + "[" + draw(SPACES) + items + draw(SPACES) + "]" + draw(SPACES)


def flatten(values):
    return [x for item in values for x in flatten(item)] if isinstance(values, list) else [values]


@settings(deadline=None, max_examples=150)
@given(case=nested_lists(), data=st.data())
def test_formatted_lists_parse_back_exactly(case, data) -> None:
    shape, values = case
    text = format_list(data.draw, values)
    if len(shape) == 1 and shape[0] >= 2 and data.draw(st.booleans()):
        text = ",".join(format_number(data.draw, x) for x in values)  # "1,2,3"
    spec = parse_spec(text)
    assert isinstance(spec, Literal)
    assert spec.shape == shape
    parsed = flatten(spec.values)
    expected = flatten(values)
    assert parsed == expected
    assert [math.copysign(1.0, x) for x in parsed] == [math.copysign(1.0, x) for x in expected]  # -0.0
    assert torch.equal(make(text), torch.tensor(values, dtype=F64))


@settings(deadline=None, max_examples=300)
@given(text=st.one_of(st.text(), GRAMMAR_TEXT), for_v=st.booleans())
def test_any_text_is_a_spec_or_an_input_error(text, for_v) -> None:
    try:
        spec = parse_spec(text, for_v=for_v)
    except InputError as error:
        assert str(error)
    else:
        assert isinstance(spec, (Literal, Constructor, File, OneHot))
        assert spec.text == text.strip()
    try:
        parse_input_option(text, for_v=for_v)
    except InputError:
        pass


def test_json_dumps_output_is_a_literal_spec() -> None:
    """A list as json.dumps writes it (spaces after commas, exponents, -0.0) is a literal spec."""
    values = [[0.1, -2.5e-300], [1e300, -0.0]]
    assert torch.equal(make(json.dumps(values)), torch.tensor(values, dtype=F64))


def test_shapes_have_at_most_32_axes() -> None:
    assert make("ones:" + "x".join(["1"] * 32)).shape == (1,) * 32
    with pytest.raises(InputError, match="has 33 axes; jacli takes at most 32"):
        parse_spec("ones:" + "x".join(["1"] * 33))


def test_vjp_v_with_a_name_explains_the_difference_from_jvp() -> None:
    with pytest.raises(InputError, match="vjp's v is one tensor shaped like the output.*jvp and hvp") as caught:
        inputs.unnamed_v("x=1,2,3")
    assert str(caught.value).startswith("`v` 'x=1,2,3': ") and "give e.g. `v` ones." in str(caught.value)
    assert caught.value.param == "v"
    assert inputs.unnamed_v("ones") == "ones" and inputs.unnamed_v("onehot:1,2") == "onehot:1,2"
