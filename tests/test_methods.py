"""jacli.engine.methods: each enum's parse takes its members by name and refuses anything else
with an InputError that names the parameter (method, or layout), the choices and a close name."""

from __future__ import annotations

import pytest

from jacli.engine.methods import GradMethod, HessianMethod, JacobianMethod, Layout, VJPMethod
from jacli.errors import InputError

MEMBERS = {
    JacobianMethod: ["auto", "reverse", "forward", "rows", "compressed", "structured", "symbolic"],
    VJPMethod: ["auto", "grad", "backward"],
    GradMethod: ["auto", "reverse", "forward", "symbolic"],
    HessianMethod: ["auto", "forward", "reverse", "symbolic"],
    Layout: ["auto", "dense", "diagonal", "sparse"],
}
ENUMS = list(MEMBERS)


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_members_are_the_documented_names_in_order(enum) -> None:
    assert list(enum.__members__) == MEMBERS[enum]
    assert [m.value for m in enum] == MEMBERS[enum]  # str values equal to the names


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_parse_takes_every_member_by_name_and_as_itself(enum) -> None:
    for name in MEMBERS[enum]:
        member = enum.parse(name)
        assert member is enum[name] and member == name
        assert enum.parse(member) is member


def test_parse_takes_a_member_of_another_enum_with_the_same_name() -> None:
    # GradMethod.reverse is the str "reverse", which names JacobianMethod.reverse too
    assert JacobianMethod.parse(GradMethod.reverse) is JacobianMethod.reverse


@pytest.mark.parametrize(
    "enum,typo,close,param,kind",
    [
        (JacobianMethod, "revers", "reverse", "method", "Jacobian method"),
        (JacobianMethod, "symbolc", "symbolic", "method", "Jacobian method"),
        (VJPMethod, "backwards", "backward", "method", "vjp method"),
        (GradMethod, "forwad", "forward", "method", "gradient method"),
        (HessianMethod, "reverse_", "reverse", "method", "Hessian method"),
        (Layout, "diag", "diagonal", "layout", "Jacobian layout"),
        (Layout, "sparce", "sparse", "layout", "Jacobian layout"),
    ],
)
def test_a_near_name_gets_a_did_you_mean_and_the_choices(enum, typo, close, param, kind) -> None:
    with pytest.raises(InputError) as caught:
        enum.parse(typo)
    names = MEMBERS[enum]
    choices = f"Use {', '.join(names[:-1])} or {names[-1]}"
    assert str(caught.value) == f"{param} {typo!r} is not a {kind}; did you mean {close}? {choices}"
    assert caught.value.param == param


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_a_far_name_lists_the_choices_without_a_guess(enum) -> None:
    with pytest.raises(InputError) as caught:
        enum.parse("zzzzzz")
    message = str(caught.value)
    assert "did you mean" not in message
    assert message.endswith(f"or {MEMBERS[enum][-1]}")
    assert all(name in message for name in MEMBERS[enum])
    assert caught.value.param == ("layout" if enum is Layout else "method")


def test_names_are_case_sensitive_and_a_case_slip_is_suggested() -> None:
    with pytest.raises(InputError, match="did you mean reverse"):
        JacobianMethod.parse("Reverse")


@pytest.mark.parametrize("value", [None, 3, 1.5, ["reverse"]])
def test_a_value_that_is_not_a_name_is_an_input_error(value) -> None:
    with pytest.raises(InputError) as caught:
        JacobianMethod.parse(value)
    assert caught.value.param == "method" and "did you mean" not in str(caught.value)
    assert str(caught.value).startswith(f"method {value!r} is not a Jacobian method")


def test_vjp_methods_are_not_jacobian_methods() -> None:
    with pytest.raises(InputError, match="'grad' is not a Jacobian method"):
        JacobianMethod.parse("grad")
    with pytest.raises(InputError, match="'rows' is not a vjp method"):
        VJPMethod.parse("rows")
