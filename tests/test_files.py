"""Reading files and standard input (jacli.inputs.files): every format, against numpy and torch
reading the same data, and every bad file, against the part of it the message names.
"""

from __future__ import annotations

import io
import math
import sys

import numpy as np
import pytest
import torch
from input_helpers import F64, assert_same, input_error, make

from jacli.errors import InputError, ResourceError
from jacli.inputs import files
from jacli.inputs import (
    File,
    check_single_stdin,
    materialize,
    parse_spec,
)


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
    with pytest.raises(InputError, match="a and b") as caught:
        check_single_stdin({"a": parse_spec("@-"), "b": parse_spec("@-"), "c": parse_spec("@x.npy")})
    assert caught.value.param == "inputs"


@pytest.mark.parametrize(
    "suffix,text,named",
    [
        (".csv", "1,2\n3,x\n", ["line 2: value 2, 1 character long, is not a number"]),
        # a first line with a number in it is data with a typo, not a header: refused, with the hint
        (".csv", "a,1\n1,2\n", ["line 1: value 1,", "if that line is a header, remove it"]),
        (".csv", "a,b\n", ["holds no numbers below its header (line 1)"]),
        (".csv", "1,2,3\n4,5\n", ["line 1 has 3 numbers", "line 2 has 2"]),
        (".txt", "# comment\n1 2 3\n\n4 5 6 7\n", ["line 2 has 3 numbers", "line 4 has 4"]),
        (".csv", "1,,3\n4,,6\n", ["line 1", "empty value"]),  # a missing value, not the row 1,3
        (".csv", "1,2,\n", ["line 1", "empty value"]),
        (".csv", "# nothing\n\n", ["holds no numbers"]),
        (".json", "[1, 2", ["not valid JSON"]),
        (".json", "", ["not valid JSON"]),
        (".json", '{"a": 1}', ["holds an object with 1 key where a number or a list of numbers belongs"]),
        (".json", "[1, null]", ["holds null where"]),
        (".json", "[true]", ["holds true where"]),
        (".json", '["one"]', ["holds a string of 3 characters where a number belongs"]),
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
    assert caught.value.param == "inputs"
    with pytest.raises(InputError) as caught:  # the same file given as v
        make(f"@{path}", for_v=True, name="v", output_shape=(2,))
    assert str(caught.value).startswith(f"v = @{path}") and caught.value.param == "v"


def test_bad_stdin_names_standard_input(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("1 2\n3 four\n"))
    with pytest.raises(InputError, match="x = standard input: line 2: value 2, 4 characters long, is not a number"):
        make("@-")
    monkeypatch.setattr(sys, "stdin", io.StringIO("[1, 2"))  # not JSON, so read as rows
    with pytest.raises(InputError, match=r"line 1: value 1, 2 characters long, is not a number"):
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


def test_integers_that_fit_float64_still_read_and_infinity_is_written_as_such(tmp_path) -> None:
    # 309 digits just under the largest float64 still read; infinity is read where it is written
    # as "inf" (a JSON string, or a word in text)
    (tmp_path / "ok.json").write_text(f'[{10**308}, "inf", "-Infinity"]')
    assert_same(make(f"@{tmp_path / 'ok.json'}"), torch.tensor([1e308, math.inf, -math.inf], dtype=F64))
    (tmp_path / "ok.txt").write_text("1.7976931348623157e308 inf\n")
    assert_same(make(f"@{tmp_path / 'ok.txt'}"), torch.tensor([sys.float_info.max, math.inf], dtype=F64))
    assert "integer" in input_error("1," + NINES[:400])


@pytest.mark.parametrize("suffix,text", [(".json", "[1, 1e400]"), (".txt", "1 -2.5e400\n"), (".csv", "1,1E999\n")])
def test_floats_beyond_float64_in_files_are_refused_by_name(tmp_path, suffix, text) -> None:
    """float() reads 1e400 as infinity without a word; jacli refuses it, naming the number."""
    path = tmp_path / f"big{suffix}"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        make(f"@{path}")
    number = text.strip("[]\n").split(",")[-1].split()[-1]
    assert float(number) in (math.inf, -math.inf)  # the reference: Python makes it infinite
    message = str(caught.value)
    assert message.startswith(f"x = @{path}") and f"the number {number} is larger than float64" in message
    assert "overflow" in message and "write inf" in message


# -- a header row ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["a,b,c\n1,2,3\n4,5,6\n", "# made by pandas\n\"x0\", \"x1\", \"x2\"\n1,2,3\n4,5,6\n"])
def test_a_header_row_of_names_is_skipped_with_a_note(tmp_path, text) -> None:
    path = tmp_path / "h.csv"
    path.write_text(text)
    with pytest.warns(UserWarning) as caught:
        tensor = make(f"@{path}")
    expected = np.loadtxt(path, delimiter=",", skiprows=text.count("\n") - 2)  # numpy, told to skip it
    assert_same(tensor, torch.tensor(expected, dtype=F64))
    [note] = [str(w.message) for w in caught]
    line = 2 if text.startswith("#") else 1
    assert note.startswith(f"x = @{path}: skipped line {line}, a header (3 names, not numbers)")


def test_only_the_first_row_may_be_a_header(tmp_path) -> None:
    (tmp_path / "h.csv").write_text("1,2\na,b\n")
    with pytest.raises(InputError, match=r"line 2: value 1, 1 character long, is not a number$"):
        make(f"@{tmp_path / 'h.csv'}")


# -- jacli's own JSON output as an input ---------------------------------------------------------


def _jacli_json(tmp_path, *argv: str, name: str = "g.json"):
    from helpers import cli

    result = cli(*argv, "--format", "json")
    assert result.exit_code == 0, result.stderr
    (tmp_path / name).write_text(result.stdout)
    return tmp_path / name


def test_jacli_json_output_with_one_result_is_read_as_that_tensor(tmp_path) -> None:
    path = _jacli_json(tmp_path, "jacobian", "x**2", "-i", "x=1,2,3")
    # the reference: the Jacobian of x**2 is diag(2x), worked by hand
    assert_same(make(f"@{path}"), torch.diag(torch.tensor([2.0, 4.0, 6.0], dtype=F64)))
    assert_same(make(f"@{path}#x"), torch.diag(torch.tensor([2.0, 4.0, 6.0], dtype=F64)))


def test_jacli_json_output_with_several_results_says_how_to_pick_one(tmp_path) -> None:
    path = _jacli_json(tmp_path, "vjp", "a*b", "-i", "a=1,2", "-i", "b=3,4", "--v", "1,10")
    with pytest.raises(InputError) as caught:
        make(f"@{path}")
    assert str(caught.value) == (
        f"x = @{path}: is jacli's vjp output and holds 2 results (a, b); pick one by its name after "
        f"'#', like @{path}#a"
    )
    # vᵀJ of a*b: for a it is v*b, for b it is v*a
    assert_same(make(f"@{path}#a"), torch.tensor([3.0, 40.0], dtype=F64))
    assert_same(make(f"@{path}#b"), torch.tensor([1.0, 20.0], dtype=F64))
    with pytest.raises(InputError, match=r"#c: jacli's vjp output has no result 'c'; it holds: a, b$"):
        make(f"@{path}#c")


def test_what_cannot_be_picked_from_a_json_file_is_named(tmp_path) -> None:
    check = _jacli_json(tmp_path, "check", "x**2", "-i", "1,2", name="c.json")
    with pytest.raises(InputError, match="is jacli's check report, which holds no tensor"):
        make(f"@{check}")
    (tmp_path / "l.json").write_text("[1, 2]")
    with pytest.raises(InputError, match=r"#x: '#' picks a result of jacli's JSON output, but this file holds a list"):
        make(f"@{tmp_path / 'l.json'}#x")
    with pytest.raises(InputError, match="'#' needs the name of a result to pick"):
        parse_spec("@g.json#")
    assert parse_spec("@g.json#a,b") == File("@g.json#a,b", "g.json", "a,b")  # a Hessian's pair


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
    assert message.endswith("or raise `max_memory`.") and caught.value.param == "inputs"
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


def test_budget_applies_to_files(tmp_path) -> None:
    np.save(tmp_path / "big.npy", np.zeros(100))
    with pytest.raises(ResourceError, match=r"100 elements.*Use a smaller file, or raise `max_memory`\.$"):
        make(f"@{tmp_path / 'big.npy'}", budget=799)
    assert_same(make(f"@{tmp_path / 'big.npy'}", budget=800), torch.zeros(100, dtype=F64))


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


# -- files that are not what their names say --------------------------------------------------


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


# -- only regular files, and budgets before copies (issue 10 item 4) ------------------------------


def test_a_fifo_is_refused_instead_of_waiting_forever(tmp_path) -> None:
    import os

    from jacli.inputs.files import read_file
    from jacli.inputs.spec import File

    fifo = tmp_path / "numbers.txt"
    os.mkfifo(fifo)  # nobody writes to it: opening it would block forever
    with pytest.raises(InputError, match=r"is a pipe \(FIFO\), not a regular file.*@-"):
        read_file(File(f"@{fifo}", str(fifo)), "x", budget=10**6)


def test_a_link_to_a_device_is_refused(tmp_path) -> None:
    from jacli.inputs.files import read_file
    from jacli.inputs.spec import File

    link = tmp_path / "zeros.txt"
    link.symlink_to("/dev/zero")
    with pytest.raises(InputError, match="is a device or socket, not a regular file"):
        read_file(File(f"@{link}", str(link)), "x", budget=10**6)


def test_an_expanded_pt_tensor_is_sized_before_it_is_copied(tmp_path) -> None:
    from jacli.inputs.files import read_file
    from jacli.inputs.spec import File

    path = tmp_path / "big.pt"
    torch.save(torch.ones(1, dtype=F64).expand(30000, 30000), path)  # 1.5 kB on disk, 7.2 GB dense
    assert path.stat().st_size < 10_000
    with pytest.raises(ResourceError, match=r"900,000,000 elements\) would need 7.2 GB, over the memory budget of 1.0 GB"):
        read_file(File(f"@{path}", str(path)), "x", budget=10**9)
    small = tmp_path / "small.pt"
    torch.save(torch.ones(1, dtype=F64).expand(2, 3), small)
    assert torch.equal(read_file(File(f"@{small}", str(small)), "x", budget=10**9), torch.ones(2, 3, dtype=F64))


def test_a_files_contents_are_never_echoed(tmp_path) -> None:
    """jacli may run behind a web form: an error about a file names where, never what it holds."""
    for suffix, text in ((".json", '{"password": "hunter2"}'), (".json", '["hunter2"]'), (".txt", "1 hunter2\n")):
        path = tmp_path / f"secret{suffix}"
        path.write_text(text)
        with pytest.raises(InputError) as caught:
            make(f"@{path}")
        assert "hunter2" not in str(caught.value) and "secret" in str(caught.value)


def test_a_legacy_pt_file_over_the_budget_is_refused_before_it_is_read(tmp_path) -> None:
    # A legacy (non-zip) .pt file cannot be memory-mapped, so torch.load would read all of it:
    # its size is checked against the budget first. A zip file is mapped and checked by elements.
    legacy, mapped = tmp_path / "legacy.pt", tmp_path / "mapped.pt"
    torch.save(torch.arange(200_000, dtype=torch.float64), legacy, _use_new_zipfile_serialization=False)
    torch.save(torch.arange(200_000, dtype=torch.float64), mapped)
    with pytest.raises(ResourceError, match="legacy .pt file, read whole"):
        files.read_file(File(f"@{legacy}", str(legacy)), "x", budget=1_000_000)
    with pytest.raises(ResourceError, match="200,000 elements"):
        files.read_file(File(f"@{mapped}", str(mapped)), "x", budget=1_000_000)
    assert torch.equal(files.read_file(File(f"@{legacy}", str(legacy)), "x", budget=10**9), torch.arange(200_000, dtype=torch.float64))
