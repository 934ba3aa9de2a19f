"""Input specs (jacli.inputs): every form of the grammar, against tensors built directly with
torch and numpy in the test, and every bad form, against the part of the text it names.
"""

from __future__ import annotations

import io
import json
import math
import re
import shlex
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jacli import inputs
from jacli.errors import InputError, ResourceError, ShapeError
from jacli.inputs import (
    Constructor,
    File,
    Literal,
    OneHot,
    check_single_stdin,
    fit_to_output,
    materialize,
    parse_input_option,
    parse_spec,
    seed_for,
)

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


@pytest.mark.parametrize("shape_text,shape", [("5", (5,)), ("2x3", (2, 3)), ("2x3x4", (2, 3, 4)), ("1x1", (1, 1))])
def test_shape_forms(shape_text, shape) -> None:
    assert parse_spec(f"ones:{shape_text}").shape == shape
    assert_same(make(f"zeros:{shape_text}"), torch.zeros(shape, dtype=F64))


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


# -- files --------------------------------------------------------------------------------------


def test_npy_file(tmp_path) -> None:
    array = np.array([[1.5, -2.0, 3.0], [4.0, 5.0, np.inf]])
    np.save(tmp_path / "x.npy", array)
    assert_same(make(f"@{tmp_path / 'x.npy'}"), torch.tensor(array.tolist(), dtype=F64))


def test_npy_integers_and_float32_become_the_requested_dtype(tmp_path) -> None:
    np.save(tmp_path / "i.npy", np.arange(6, dtype=np.int32).reshape(2, 3))
    assert_same(make(f"@{tmp_path / 'i.npy'}"), torch.tensor([[0.0, 1, 2], [3, 4, 5]], dtype=F64))
    np.save(tmp_path / "s.npy", np.float32(0.1))
    assert_same(make(f"@{tmp_path / 's.npy'}", dtype=torch.float32), torch.tensor(0.1, dtype=torch.float32))


def test_object_npy_is_refused_without_unpickling(tmp_path) -> None:
    np.save(tmp_path / "o.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="o.npy"):
        make(f"@{tmp_path / 'o.npy'}")


def test_complex_npy_is_refused(tmp_path) -> None:
    np.save(tmp_path / "c.npy", np.array([1 + 2j]))
    with pytest.raises(InputError, match="complex128"):
        make(f"@{tmp_path / 'c.npy'}")


def test_pt_file(tmp_path) -> None:
    torch.save(torch.tensor([[1.0, 2.0], [3.0, 4.5]], dtype=torch.float32), tmp_path / "x.pt")
    assert_same(make(f"@{tmp_path / 'x.pt'}"), torch.tensor([[1.0, 2.0], [3.0, 4.5]], dtype=F64))


class NotATensor:
    """A pickled object that weights_only loading must not run."""

    def __reduce__(self):
        return (print, ("this must not run",))


@pytest.mark.parametrize(
    "payload,message",
    [
        ({"a": torch.ones(2)}, "does not hold one real tensor"),
        ([torch.ones(2)], "does not hold one real tensor"),
        (5, "does not hold one real tensor"),
        (torch.tensor([1 + 1j]), "does not hold one real tensor"),
        (NotATensor(), "not a tensor file jacli can load safely"),
    ],
)
def test_pt_file_that_is_not_one_real_tensor_is_refused(tmp_path, payload, message, capsys) -> None:
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(InputError) as caught:
        make(f"@{tmp_path / 'bad.pt'}")
    assert message in str(caught.value) and "bad.pt" in str(caught.value)
    assert "this must not run" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "text,expected",
    [
        ('[[1, 2.5], ["nan", "-inf"]]', [[1.0, 2.5], [math.nan, -math.inf]]),
        ("[1, 2, 3]", [1.0, 2.0, 3.0]),
        ('["inf", -1e300]', [math.inf, -1e300]),
        ("[NaN, Infinity]", [math.nan, math.inf]),  # Python's json accepts these constants
        ("3.5", 3.5),
        ('"inf"', math.inf),
    ],
)
def test_json_file(tmp_path, text, expected) -> None:
    (tmp_path / "x.json").write_text(text)
    assert_same(make(f"@{tmp_path / 'x.json'}"), torch.tensor(expected, dtype=F64))


@pytest.mark.parametrize(
    "suffix,text,expected",
    [
        (".csv", "1,2,3\n4,5,6\n", [[1.0, 2, 3], [4, 5, 6]]),
        (".csv", "# a header comment\n1, 2, 3\n\n4,5,6  # trailing comment\n", [[1.0, 2, 3], [4, 5, 6]]),
        (".txt", "1 2 3\n4\t5\t6\n", [[1.0, 2, 3], [4, 5, 6]]),
        (".txt", "  1.5e0 , -2  3\r\n4 5,6\n", [[1.5, -2, 3], [4, 5, 6]]),
        (".csv", "nan,inf\n-inf,0\n", [[math.nan, math.inf], [-math.inf, 0]]),
        (".csv", "1,2,3\n", [1.0, 2, 3]),  # one row: 1-D
        (".txt", "1\n2\n# comment\n3\n", [1.0, 2, 3]),  # one column: 1-D as well
        (".txt", "\n# only one number\n  42  \n", 42.0),  # one value: 0-D
    ],
)
def test_csv_and_txt_files(tmp_path, suffix, text, expected) -> None:
    path = tmp_path / f"x{suffix}"
    path.write_text(text)
    assert_same(make(f"@{path}"), torch.tensor(expected, dtype=F64))


@pytest.mark.parametrize(
    "text",
    ["1 2 3\n4 5 6\n", "1 2 3\n", "1\n2\n3\n", "7\n", "1 2\n# note\n3 4\n5 6\n", "0.5\n-1e3\n"],
)
def test_text_files_read_as_numpy_loadtxt_reads_them(tmp_path, text) -> None:
    path = tmp_path / "x.txt"
    path.write_text(text)
    expected = np.loadtxt(path)  # the reference: shapes and values as numpy reads the same text
    got = make(f"@{path}")
    assert tuple(got.shape) == expected.shape
    assert np.array_equal(got.numpy(), expected)


def test_file_suffix_is_case_insensitive(tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.array([1.0, 2.0]))
    (tmp_path / "x.npy").rename(tmp_path / "X.NPY")
    assert_same(make(f"@{tmp_path / 'X.NPY'}"), torch.tensor([1.0, 2.0], dtype=F64))


@pytest.mark.parametrize(
    "text,expected",
    [
        ("[[1, 2], [3, 4]]\n", [[1.0, 2.0], [3.0, 4.0]]),
        ('["nan", 1]', [math.nan, 1.0]),
        ("1 2\n3 4\n", [[1.0, 2.0], [3.0, 4.0]]),
        ("1,2,3", [1.0, 2.0, 3.0]),
        ("5\n", 5.0),
    ],
)
def test_stdin(monkeypatch, text, expected) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    spec = parse_spec("@-")
    assert spec == File("@-", "-")
    assert_same(make("@-"), torch.tensor(expected, dtype=F64))


def test_stdin_can_be_read_by_one_input_only() -> None:
    check_single_stdin({"a": parse_spec("@-"), "b": parse_spec("1,2")})
    with pytest.raises(InputError, match="a and b"):
        check_single_stdin({"a": parse_spec("@-"), "b": parse_spec("@-"), "c": parse_spec("@x.npy")})


# -- --v forms ----------------------------------------------------------------------------------


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
    assert text in str(caught.value)


# -- parse_input_option -------------------------------------------------------------------------


def test_named_and_unnamed_options() -> None:
    name, spec = parse_input_option("x=1,2,3")
    assert name == "x" and isinstance(spec, Literal) and spec.values == [1.0, 2.0, 3.0]
    name, spec = parse_input_option("  W_2 = eye:2x3")
    assert name == "W_2" and spec == Constructor("eye:2x3", "eye", (2, 3))
    assert parse_input_option("eye:5") == (None, Constructor("eye:5", "eye", (5, 5)))
    assert parse_input_option("@data=1.npy") == (None, File("@data=1.npy", "data=1.npy"))
    # the expression parser takes names in any alphabet, so --input does too
    name, spec = parse_input_option("é=1,2")
    assert name == "é" and spec.values == [1.0, 2.0]
    name, spec = parse_input_option("v=onehot:1", option="--v", for_v=True)
    assert name == "v" and spec == OneHot("onehot:1", (1,))


@pytest.mark.parametrize(
    "text,name", [("1x=3", "'1x'"), ("_a=1", "'_a'"), ("x-y=2", "'x-y'"), ("=3", "''"), ("²=1", "'²'")]
)
def test_bad_names(text, name) -> None:
    with pytest.raises(InputError) as caught:
        parse_input_option(text)
    message = str(caught.value)
    assert f"{name} is not a variable name" in message and "NAME=SPEC" in message


def test_option_errors_name_the_option_and_the_bad_part() -> None:
    with pytest.raises(InputError) as caught:
        parse_input_option("x=ones:2y3")
    assert "--input x=ones:2y3" in str(caught.value) and "'2y3'" in str(caught.value)
    with pytest.raises(InputError, match="--v only"):
        parse_input_option("x=onehot:1")
    with pytest.raises(InputError, match=r"^--v w=ones:0"):
        parse_input_option("w=ones:0", option="--v", for_v=True)


# -- bad specs ----------------------------------------------------------------------------------


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
        ("ones", ["ones:2x3", "only --v"]),
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
        ("onehot:1", ["onehot", "--v only"]),
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
    assert message.startswith("--v ")


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


@pytest.mark.parametrize(
    "suffix,text,named",
    [
        (".csv", "1,2\n3,x\n", ["line 2", "'x' is not a number"]),
        (".csv", "a,b\n1,2\n", ["line 1", "'a'"]),
        (".csv", "1,2,3\n4,5\n", ["line 1 has 3 numbers", "line 2 has 2"]),
        (".txt", "# comment\n1 2 3\n\n4 5 6 7\n", ["line 2 has 3 numbers", "line 4 has 4"]),
        (".csv", "1,,3\n4,,6\n", ["line 1", "empty value"]),  # a missing value, not the row 1,3
        (".csv", "1,2,\n", ["line 1", "empty value"]),
        (".csv", "# nothing\n\n", ["holds no numbers"]),
        (".json", "[1, 2", ["not valid JSON"]),
        (".json", "", ["not valid JSON"]),
        (".json", '{"a": 1}', ['{"a": 1} is not a number']),
        (".json", "[1, null]", ["null is not a number"]),
        (".json", "[true]", ["true is not a number"]),
        (".json", '["one"]', ["'one' is not a number"]),
        (".json", "[]", ["empty list"]),
        (".json", "[[1, 2], [3]]", ["item 1 has shape (1,)"]),
        (".json", "[[1, 2], 3]", ["item 1 has shape ()"]),
        (".json", "[" * 40 + "1" + "]" * 40, ["deeper than 32"]),
        (".json", "[" * 600 + "1" + "]" * 600, ["deeper than 32"]),
    ],
)
def test_bad_file_contents(tmp_path, suffix, text, named) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        make(f"@{path}")
    message = str(caught.value)
    assert message.startswith(f"x = @{path}")
    for part in named:
        assert part in message, (part, message)


def test_bad_stdin_names_standard_input(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("1 2\n3 four\n"))
    with pytest.raises(InputError, match="x = standard input: line 2: 'four' is not a number"):
        make("@-")
    monkeypatch.setattr(sys, "stdin", io.StringIO("[1, 2"))  # not JSON, so read as rows
    with pytest.raises(InputError, match=r"line 1: '\[1' is not a number"):
        make("@-")


NINES = "9" * 5000
"""An integer of 5,000 digits: json's int() refuses it (over 4,300 digits), float() makes it inf."""


@pytest.mark.parametrize(
    "suffix,text",
    [
        (".json", f"[{NINES}, 1]"),
        (".json", f'["{NINES}"]'),  # a number written as a string
        (".txt", f"[1, {NINES}]"),  # a text file read as JSON
        (".txt", f"1 {NINES}\n"),  # rows of numbers
        (".csv", f"{NINES},1\n"),
    ],
)
def test_integers_beyond_float64_in_files_are_refused_by_name(tmp_path, suffix, text, monkeypatch) -> None:
    path = tmp_path / f"big{suffix}"
    path.write_text(text)
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    for spec, where in ((f"@{path}", f"x = @{path}"), ("@-", "x = standard input")):
        with pytest.raises(InputError) as caught:
            make(spec)
        message = str(caught.value)
        assert message.startswith(where)
        assert "the integer 9999999999...9999999999 (5,000 digits) is larger than float64" in message
        assert "write inf" in message and len(message) < 300  # no dump of the digits


def test_integers_that_fit_float64_and_float_overflow_are_unchanged(tmp_path) -> None:
    # 309 digits just under the largest float64 still read; 1e400 is written as a float, so
    # it stays infinity as "inf" does
    (tmp_path / "ok.json").write_text(f"[{10**308}, 1e400]")
    assert_same(make(f"@{tmp_path / 'ok.json'}"), torch.tensor([1e308, math.inf], dtype=F64))
    assert "integer" in input_error("1," + NINES[:400])


class Endless:
    """Standard input that never ends (like /dev/zero); reading all of it is a test failure."""

    def read(self, size: int = -1) -> str:
        assert size is not None and size >= 0, "an unbounded read of an endless stream"
        return "1" * size


def test_text_is_read_up_to_a_cap_from_the_budget(monkeypatch, tmp_path) -> None:
    # a budget of 2,000 B allows 2,000 / TEXT_FACTOR (20) = 100 characters of text
    monkeypatch.setattr(sys, "stdin", Endless())
    with pytest.raises(ResourceError) as caught:
        make("@-", budget=2000)
    message = str(caught.value)
    assert message.startswith("x = @- (standard input): holds more than 100 B of text")
    assert "memory budget of 2.0 kB" in message and "numpy.save" in message
    (tmp_path / "x.txt").write_text("1 " * 50)  # exactly 100 characters: read
    assert make(f"@{tmp_path / 'x.txt'}", budget=2000).shape == (50,)
    (tmp_path / "x.txt").write_text("1 " * 50 + "\n")
    with pytest.raises(ResourceError, match=r"x = @.*x\.txt: holds more than 100 B of text"):
        make(f"@{tmp_path / 'x.txt'}", budget=2000)


@pytest.mark.parametrize("suffix", [".npy", ".pt", ".json", ".csv", ".txt"])
def test_missing_file(tmp_path, suffix) -> None:
    path = tmp_path / f"nope{suffix}"
    with pytest.raises(InputError) as caught:
        make(f"@{path}")
    assert f"nope{suffix}" in str(caught.value) and "cannot read it" in str(caught.value)


@pytest.mark.parametrize(
    "suffix, message", [(".npy", r"not a \.npy file"), (".pt", "not a tensor file jacli can load safely")]
)
def test_garbage_binary_file(tmp_path, suffix, message) -> None:
    (tmp_path / f"junk{suffix}").write_bytes(b"\x00not a real file\xff" * 4)
    with pytest.raises(InputError, match=f"junk\\{suffix}: {message}"):
        make(f"@{tmp_path / f'junk{suffix}'}")


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
    # float32: 4 bytes each, 40.0 GB
    with pytest.raises(ResourceError, match="40.0 GB"):
        make("randn:100000x100000", budget=10**9, dtype=torch.float32)
    # a shapeless --v takes the output's shape, and is checked too: 10**6 * 8 bytes = 8.0 MB
    with pytest.raises(ResourceError, match="8.0 MB"):
        make("rand", for_v=True, name="v", budget=10**6, output_shape=(1000, 1000))
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


def test_budget_applies_to_files(tmp_path) -> None:
    np.save(tmp_path / "big.npy", np.zeros(100))
    with pytest.raises(ResourceError, match="100 elements"):
        make(f"@{tmp_path / 'big.npy'}", budget=799)
    assert_same(make(f"@{tmp_path / 'big.npy'}", budget=800), torch.zeros(100, dtype=F64))


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
    assert "--v 1,2,3,4,5,6,7 has shape (7,)" in message and f"the output has shape {shown}" in message
    match = re.search(r"Try --v (.+) \(or --v (\S+), --v (\S+)\)$", message)
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


def test_mismatch_names_what_v_must_match() -> None:
    with pytest.raises(ShapeError, match="but input w has shape \\(2,\\); v must match input w"):
        fit_to_output(torch.ones(3, dtype=F64), (2,), "1,2,3", what="input w")


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


GRAMMAR_TEXT = st.text(alphabet="0123456789.,-+e[]:x@ \nonesyzrlaigpdfuhtcv-=_", max_size=30)


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


def test_json_dumps_output_is_a_literal_spec() -> None:
    """A list as json.dumps writes it (spaces after commas, exponents, -0.0) is a literal spec."""
    values = [[0.1, -2.5e-300], [1e300, -0.0]]
    assert torch.equal(make(json.dumps(values)), torch.tensor(values, dtype=F64))


def test_npy_over_budget_is_refused_from_its_header(tmp_path, monkeypatch) -> None:
    """The .npy header gives the size: the data is never read into memory."""
    np.save(tmp_path / "big.npy", np.zeros((300, 400)))
    real_array = np.array

    def no_copy(*args, **kwargs):
        raise AssertionError("the data was read")

    monkeypatch.setattr(np, "array", no_copy)
    with pytest.raises(ResourceError, match="120,000 elements"):
        materialize(parse_spec(f"@{tmp_path / 'big.npy'}"), name="x", dtype=F64, device="cpu", budget=1000)
    monkeypatch.setattr(np, "array", real_array)


# -- files that are not what their names say, and shapes with too many axes ---------------------


def test_a_text_file_named_npy_is_not_called_pickled(tmp_path) -> None:
    (tmp_path / "bad.npy").write_text("1,2,3")
    with pytest.raises(InputError, match=r"not a \.npy file \(it does not start with NumPy's header\)") as info:
        make(f"@{tmp_path / 'bad.npy'}")
    assert "unsafely" not in str(info.value) and "\n" not in str(info.value)


def test_an_object_npy_is_refused_without_unsafe_advice(tmp_path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickled data.*never loads") as info:
        make(f"@{tmp_path / 'obj.npy'}")
    assert "trust" not in str(info.value) and "\n" not in str(info.value)


def test_a_pickle_payload_pt_is_refused_in_one_line_and_never_run(tmp_path, capsys) -> None:
    torch.save({"x": NotATensor()}, tmp_path / "evil.pt")
    with _no_warnings():
        with pytest.raises(InputError, match="not a tensor file jacli can load safely") as info:
            make(f"@{tmp_path / 'evil.pt'}")
    message = str(info.value)
    assert "\n" not in message and "weights_only" not in message and "False" not in message
    assert "this must not run" not in capsys.readouterr().out


def _no_warnings():
    import warnings

    class Guard:
        def __enter__(self):
            self.context = warnings.catch_warnings(record=True)
            self.caught = self.context.__enter__()
            warnings.simplefilter("always")

        def __exit__(self, *exc):
            self.context.__exit__(*exc)
            assert not self.caught, [str(w.message) for w in self.caught]

    return Guard()


def test_shapes_have_at_most_32_axes() -> None:
    assert make("ones:" + "x".join(["1"] * 32)).shape == (1,) * 32
    with pytest.raises(InputError, match="has 33 axes; jacli takes at most 32"):
        parse_spec("ones:" + "x".join(["1"] * 33))


def test_vjp_v_with_a_name_explains_the_difference_from_jvp() -> None:
    with pytest.raises(InputError, match="vjp's v is one tensor shaped like the output.*jvp and hvp"):
        inputs.unnamed_v("x=1,2,3")
    assert inputs.unnamed_v("ones") == "ones" and inputs.unnamed_v("onehot:1,2") == "onehot:1,2"
