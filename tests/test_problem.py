"""jacli.problem.prepare: inputs bound to variables, wrt in variable order, inputs made in the
asked dtype and device, the plan's output shape equal to the real output, and the helpers the
commands use (require_scalar, make_v, directions) with their errors."""

from __future__ import annotations

import pytest
import torch

from jacli.errors import InputError, ShapeError
from jacli.problem import prepare

F32, F64 = torch.float32, torch.float64


# -- binding -------------------------------------------------------------------------------------


def test_inputs_are_bound_in_the_expressions_variable_order() -> None:
    problem = prepare("a*b + c", {"c": 1.0, "a": "1,2", "b": [[3.0]]})
    assert problem.variables == ("a", "b", "c") and list(problem.inputs) == ["a", "b", "c"]
    assert [t.tolist() for t in problem.args] == [[1.0, 2.0], [[3.0]], 1.0]
    assert problem.shapes == {"a": (2,), "b": (1, 1), "c": ()}
    assert problem.given == {"a": "1,2", "b": "[[3.0]]", "c": "1.0"}


def test_an_unnamed_input_binds_the_only_variable() -> None:
    problem = prepare("x*x", [(None, "1,2,3")])
    assert problem.inputs["x"].tolist() == [1.0, 2.0, 3.0]


def test_an_unnamed_input_with_several_variables_says_to_name_them() -> None:
    with pytest.raises(InputError) as caught:
        prepare("x*y", [(None, "1")])
    assert "this one has 2 (x, y), so name each one in `inputs`" in str(caught.value)
    assert caught.value.param == "inputs" and "--input x=1,2,3" in caught.value.cli_message


@pytest.mark.parametrize("name,close", [("xx", "x"), ("X", "x")])
def test_an_unused_input_gets_a_did_you_mean(name: str, close: str) -> None:
    with pytest.raises(InputError) as caught:
        prepare("x**2", {"x": 1.0, name: 2.0})
    assert str(caught.value) == (
        f"input {name!r} is not used by the expression; did you mean {close}? Its variables are: x"
    )
    assert caught.value.param == "inputs"


@pytest.mark.parametrize("name,value", [("e", "2.718282"), ("pi", "3.141593")])
def test_an_input_named_like_a_constant_is_told_it_is_a_constant(name: str, value: str) -> None:
    import math

    assert f"{getattr(math, name):.6f}" == value  # the reference: Python's own constants
    with pytest.raises(InputError) as caught:
        prepare(f"x*{name}", {"x": 1.0, name: 2.0})
    assert str(caught.value) == (
        f"input {name!r} is not used by the expression: in an expression {name} is the constant "
        f"{value}..., not a variable. Name the variable something else, such as {name}1 (the "
        "expression's variables are: x)"
    )
    assert caught.value.param == "inputs"
    with pytest.raises(Exception, match=f"no variables \\({name} is a constant there\\)"):
        prepare(f"{name}**2", {name: 2.0})


def test_missing_and_repeated_inputs() -> None:
    with pytest.raises(InputError, match="no input for y; the expression needs x, y"):
        prepare("x*y", {"x": 1.0})
    with pytest.raises(InputError, match="input 'x' is given twice"):
        prepare("x**2", [("x", 1.0), ("x", 2.0)])


def test_missing_and_repeated_inputs_name_the_inputs_parameter() -> None:
    for inputs in ({}, [("x", 1.0), ("x", 2.0)]):
        with pytest.raises(InputError) as caught:
            prepare("x**2", inputs)
        assert caught.value.param == "inputs"


# -- wrt -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrt,expected",
    [
        (None, ("a", "b", "c")), ([], ("a", "b", "c")), (["c", "a"], ("a", "c")),
        (["c, a", "a"], ("a", "c")), (["b"], ("b",)),
    ],
)
def test_wrt_is_in_variable_order_without_repeats(wrt, expected) -> None:
    problem = prepare("a*b + c", {"a": 1.0, "b": 2.0, "c": 3.0}, wrt=wrt)
    assert problem.wrt == expected
    assert problem.wrt_positions == tuple("abc".index(n) for n in expected)


def test_an_unknown_wrt_gets_a_did_you_mean() -> None:
    with pytest.raises(InputError) as caught:
        prepare("alpha*beta", {"alpha": 1.0, "beta": 2.0}, wrt=["alpah"])
    assert str(caught.value) == ("`wrt` 'alpah' is not a variable of the expression; did you mean alpha? "
                                 "Its variables are: alpha, beta")
    assert caught.value.param == "wrt"


def test_a_wrt_of_only_commas_names_nothing() -> None:
    with pytest.raises(InputError, match="`wrt` names no variable; its variables are: x") as caught:
        prepare("x", {"x": 1.0}, wrt=[" , "])
    assert caught.value.param == "wrt"


# -- the plan against the real output ------------------------------------------------------------


@pytest.mark.parametrize(
    "expr,inputs",
    [
        ("x**2", {"x": "ones:2x3"}),
        ("a @ b + 1", {"a": "ones:2x3", "b": "ones:3x4"}),
        ("sum(x)", {"x": "ones:5"}),
        ("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}),
        ("x[1:, 0] * y", {"x": "ones:4x3", "y": 2.0}),
        ("transpose(reshape(x, 2, 3)) @ reshape(x, 2, 3)", {"x": "arange:6"}),
        ("softmax(x, 0) * mean(y)", {"x": "ones:3x2", "y": "ones:4"}),
        ("[x[0]*x[1], x[1:]**2, 3]", {"x": "1,2"}),
    ],
)
def test_the_plans_output_shape_is_the_real_output_shape(expr: str, inputs: dict) -> None:
    problem = prepare(expr, inputs)
    output = problem.compiled.function(*problem.args)
    assert tuple(problem.plan.output_shape) == tuple(output.shape)


def test_an_output_without_numbers_is_refused() -> None:
    with pytest.raises(ShapeError, match="has no numbers"):
        prepare("x[3:]", {"x": "1,2"})


# -- dtype and device ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,expected", [("float64", F64), ("float32", F32), (F32, F32)])
def test_inputs_are_made_in_the_asked_dtype_on_the_cpu(dtype, expected) -> None:
    problem = prepare("x*y*z", {"x": torch.tensor([1, 2]), "y": 0.1, "z": "eye:2"}, dtype=dtype)
    assert problem.dtype is expected and problem.device == torch.device("cpu")
    for tensor in problem.inputs.values():
        assert tensor.dtype is expected and tensor.device == torch.device("cpu")
    assert problem.inputs["y"].item() == torch.tensor(0.1, dtype=expected).item()
    assert problem.inputs["z"].tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_a_python_float_keeps_float64_precision() -> None:
    assert prepare("x", {"x": 0.1}).inputs["x"].item() == 0.1  # not float32's 0.10000000149


def test_the_given_tensor_is_detached_and_left_alone() -> None:
    given = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    problem = prepare("x**2", {"x": given})
    assert not problem.inputs["x"].requires_grad
    assert given.requires_grad and given.tolist() == [1.0, 2.0]


# -- require_scalar, make_v, directions ------------------------------------------------------------


def test_require_scalar_passes_one_number() -> None:
    assert prepare("sum(x)", {"x": "1,2"}).require_scalar("grad") is None
    assert prepare("x", {"x": [[5.0]]}).require_scalar("hessian") is None  # shape (1, 1): one number


def test_require_scalar_explains_and_gives_what_works() -> None:
    problem = prepare("x*x", [(None, "1,2,3")])
    with pytest.raises(ShapeError) as caught:
        problem.require_scalar("grad")
    message = str(caught.value)
    assert message.startswith("grad needs an expression with a single number as output, but this output "
                              "has shape (3,) (3 numbers).")
    assert "jacli.vjp(expr, inputs, v='ones')" in message and message.endswith("for the whole Jacobian")
    assert "  jacli vjp 'x*x' -i x=1,2,3 --v ones\n" in caught.value.cli_message
    assert "  jacli jacobian 'x*x' -i x=1,2,3\n" in caught.value.cli_message
    with pytest.raises(ShapeError, match=r"wrap the expression in sum\(...\) or mean\(...\)$"):
        problem.require_scalar("hessian")


def test_make_v_is_shaped_like_the_output() -> None:
    problem = prepare("a @ b", {"a": "ones:2x3", "b": "ones:3x4"})  # output (2, 4)
    assert problem.make_v("ones").tolist() == [[1.0] * 4] * 2
    onehot = problem.make_v("onehot:5")  # flat index 5 of a (2, 4) output: [1, 1]
    assert onehot.shape == (2, 4) and onehot.sum() == 1 and onehot[1, 1] == 1
    v = problem.make_v([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert v.dtype is F64 and v.tolist() == [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]


@pytest.mark.parametrize("v", ["1,2", "ones:2", "2"])
def test_make_v_of_another_shape_is_a_shape_error(v: str) -> None:
    problem = prepare("x*x", {"x": "1,2,3"})
    with pytest.raises(ShapeError, match=r"but the output has shape \(3,\); v must match the output") as caught:
        problem.make_v(v)
    assert caught.value.param == "v"


def test_directions_in_variable_order_only_for_inputs_that_move() -> None:
    problem = prepare("a*b + c", {"c": 1.0, "a": "1,2", "b": 3.0})
    directions = problem.directions({"b": 2.0, "a": "1,-1"}, "jvp")
    assert list(directions) == ["a", "b"]
    assert directions["a"].tolist() == [1.0, -1.0] and directions["b"].tolist() == 2.0
    assert all(t.dtype is F64 for t in directions.values())
    assert list(problem.directions([("c", "1")], "hvp")) == ["c"]


def test_an_unnamed_direction_fits_one_variable() -> None:
    assert prepare("x*x", {"x": "1,2"}).directions("3,4", "jvp")["x"].tolist() == [3.0, 4.0]
    with pytest.raises(InputError) as caught:
        prepare("a*b", {"a": 1.0, "b": 2.0}).directions("1", "jvp")
    assert "give `v` as {name: direction}" in str(caught.value) and caught.value.param == "v"
    assert "write --v NAME=SPEC" in caught.value.cli_message


def test_direction_errors() -> None:
    problem = prepare("a*b", {"a": "1,2", "b": 2.0})
    with pytest.raises(InputError, match=r"direction for 'aa', .*; did you mean a\? Its variables are: a, b") as caught:
        problem.directions({"aa": 1.0}, "jvp")
    assert caught.value.param == "v"
    with pytest.raises(InputError, match="direction for 'a' twice"):
        problem.directions([("a", "1,1"), ("a", "1,1")], "jvp")
    with pytest.raises(ShapeError, match=r"but input a has shape \(2,\)"):
        problem.directions({"a": "1,2,3"}, "jvp")


# -- prepared again: the same names and shapes skip the checks already passed, never a guard ----


def test_a_problem_prepared_again_has_the_new_numbers() -> None:
    first = prepare("x*y", {"x": torch.tensor([1.0, 2.0]), "y": torch.tensor(3.0)}, wrt=["x"])
    again = prepare("x*y", {"x": torch.tensor([5.0, 7.0], dtype=F32), "y": torch.tensor(0.5)}, wrt=["x"])
    assert again is not first and again.plan is first.plan  # sized once
    assert again.inputs["x"].dtype == F64 and again.inputs["x"].tolist() == [5.0, 7.0]
    assert again.args[1].item() == 0.5 and again.given == {"x": "5.0,7.0", "y": "0.5"}
    assert again.wrt == ("x",) and first.inputs["x"].tolist() == [1.0, 2.0]


def test_a_problem_prepared_again_still_warns_about_nan_and_inf() -> None:
    from jacli.api import compute_jacobian
    from jacli.errors import JacliWarning

    compute_jacobian("sqrt(x)", {"x": torch.tensor([1.0, 4.0], dtype=F64)})  # remembered: all finite
    with pytest.warns(JacliWarning) as caught:
        result = compute_jacobian("sqrt(x)", {"x": torch.tensor([float("nan"), -1.0], dtype=F64)})
    messages = [str(w.message) for w in caught]
    assert "input x holds 1 NaN or infinite number" in messages
    assert "the output holds 2 NaN or infinite numbers at [0], [1]" in messages
    assert any(m.startswith("the result for x holds 2 NaN") for m in messages), messages
    assert torch.isnan(result.output).all()


def test_a_problem_prepared_again_is_refused_when_the_budget_shrinks(monkeypatch) -> None:
    from jacli import problem as problem_module
    from jacli.errors import ResourceError

    x = torch.ones(1000, dtype=F64)
    prepare("x*2", {"x": x}, result="jacobian")  # 8 MB: fits the default budget
    prepare("x*2", {"x": x}, result="jacobian")
    with pytest.raises(ResourceError, match="over the memory budget of 1.0 MB"):
        prepare("x*2", {"x": x}, result="jacobian", max_memory=10**6)
    monkeypatch.setattr(problem_module, "default_budget", lambda: 10**6)  # less memory available now
    with pytest.raises(ResourceError, match="over the memory budget of 1.0 MB"):
        prepare("x*2", {"x": x}, result="jacobian")


def test_a_refusal_is_never_remembered() -> None:
    from jacli.errors import ResourceError

    x = torch.ones(1000, dtype=F64)
    for _ in range(2):
        with pytest.raises(ResourceError):
            prepare("x*2", {"x": x}, result="jacobian", max_memory=10**6)
    prepare("x*2", {"x": torch.ones(3, dtype=F64)})  # remembered; each input is still checked
    with pytest.raises(InputError, match="real numbers"):
        prepare("x*2", {"x": torch.ones(3, dtype=torch.complex128)})
    with pytest.raises(InputError, match="sparse"):
        prepare("x*2", {"x": torch.ones(3, dtype=F64).to_sparse()})
