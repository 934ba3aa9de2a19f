"""jacli.errors: the error classes keep message, param and cli_message; ``flagged`` rewrites
only the backticked parameters it is given flags for, and nothing else in the message."""

from __future__ import annotations

import pytest

from jacli.errors import (
    DeviceError,
    ExpressionError,
    InputError,
    JacliError,
    JacliWarning,
    ResourceError,
    ShapeError,
    flagged,
)

FLAGS = {"wrt": "--wrt", "max_memory": "--max-memory", "v": "--v"}


def test_flagged_writes_each_known_parameter_as_its_flag() -> None:
    assert flagged("`wrt` 'z' is not a variable", FLAGS) == "--wrt 'z' is not a variable"
    assert flagged("raise `max_memory`, or give `wrt`", FLAGS) == "raise --max-memory, or give --wrt"
    assert flagged("`v` 1,2 and `v` ones", FLAGS) == "--v 1,2 and --v ones"


@pytest.mark.parametrize(
    "message",
    [
        "`layout` diagonal does not fit",  # a parameter without a flag here stays as written
        "wrt and max_memory without backticks",  # bare words are not parameters
        "`Wrt` in capitals",  # not a Python parameter name
        "`x**2` is the expression",  # code in backticks, not a name
        "`wrt-x` with a dash",
        "an unclosed `wrt",
        "",
    ],
)
def test_flagged_leaves_everything_else_alone(message: str) -> None:
    assert flagged(message, FLAGS) == message


def test_flagged_with_no_flags_is_the_identity() -> None:
    assert flagged("`wrt` and `v`", {}) == "`wrt` and `v`"


@pytest.mark.parametrize("cls", [ExpressionError, InputError, ShapeError, DeviceError, ResourceError])
def test_every_error_is_a_jacli_error_keeping_its_fields(cls) -> None:
    error = cls("`wrt` 'z' is wrong", param="wrt", cli_message="run jacli --help")
    assert isinstance(error, JacliError) and isinstance(error, Exception)
    assert str(error) == "`wrt` 'z' is wrong" and error.args == ("`wrt` 'z' is wrong",)
    assert error.param == "wrt" and error.cli_message == "run jacli --help"
    with pytest.raises(cls, match="'z' is wrong"):
        raise error


def test_param_and_cli_message_default_to_none_and_are_keyword_only() -> None:
    error = InputError("bad")
    assert error.param is None and error.cli_message is None
    with pytest.raises(TypeError):
        InputError("bad", "wrt")  # type: ignore[misc]


def test_the_error_classes_are_distinct() -> None:
    classes = [ExpressionError, InputError, ShapeError, DeviceError, ResourceError]
    for a in classes:
        for b in classes:
            assert issubclass(a, b) == (a is b)


def test_jacli_warning_is_a_user_warning_not_an_error() -> None:
    assert issubclass(JacliWarning, UserWarning) and not issubclass(JacliWarning, JacliError)
    with pytest.warns(JacliWarning, match="NaN"):
        import warnings

        warnings.warn("input x holds 1 NaN", JacliWarning)
