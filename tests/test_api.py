"""The public Python API: jacli.jacobian, vjp, jvp, grad, hessian, hvp, det, and the Result behind them.

Expected values are worked out by hand (the derivative of each expression is written next to it)
or come from exact SymPy evaluation; errors must be JacliError subclasses with useful messages.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import warnings

import numpy as np
import pytest
import sympy as sp
import torch
from helpers import cli, cli_json, random, record_work

import jacli
from jacli import api
from jacli.errors import (
    DeviceError,
    ExpressionError,
    InputError,
    JacliError,
    JacliWarning,
    ResourceError,
    ShapeError,
)

# torch's first forward-mode pass loads decompositions through torch.jit.script, which warns
# DeprecationWarning (hidden by Python outside pytest).
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

F64 = torch.float64


def t64(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# -- inputs in every form -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        torch.tensor([1.0, 2.0, 3.0]),
        torch.tensor([1, 2, 3]),  # integers are converted to the requested dtype
        np.array([1.0, 2.0, 3.0]),
        [1, 2, 3],
        [1.0, 2.0, 3.0],
        "1,2,3",
        "[1,2,3]",
        "arange:1,4",
        "linspace:1,3,3",
    ],
    ids=["tensor", "int-tensor", "ndarray", "int-list", "list", "spec-list", "spec-brackets", "arange", "linspace"],
)

def test_jacobian_accepts_every_input_form(value) -> None:
    # d(x**2)/dx = diag(2x) = diag(2, 4, 6)
    result = jacli.jacobian("x**2", {"x": value})
    assert set(result) == {"x"}
    assert result["x"].dtype == F64
    assert torch.equal(result["x"], torch.diag(t64([2.0, 4.0, 6.0])))


def test_number_input_gives_a_zero_dimensional_block() -> None:
    # d(x**3)/dx at 2 = 3 * 4 = 12
    result = jacli.jacobian("x**3", {"x": 2})
    assert result["x"].shape == ()
    assert result["x"].item() == 12.0


def test_python_numbers_keep_float64_precision() -> None:
    # d(x**2)/dx at 0.1 is 2 * 0.1, exactly 0.2 in float64 (0.20000000298... if read as float32)
    assert jacli.jacobian("x**2", {"x": 0.1})["x"].item() == 0.2
    assert jacli.jacobian("x**2", {"x": [0.1, 0.3]})["x"].diagonal().tolist() == [0.2, 0.6]
    assert jacli.vjp("x", {"x": 1.0}, 0.1)["x"].item() == 0.1
    assert jacli.vjp("x", {"x": [1.0, 2.0]}, [0.1, 0.7])["x"].tolist() == [0.1, 0.7]


def test_nested_list_input_gives_output_shape_plus_input_shape() -> None:
    # y = 3*x elementwise on a 2x2 input: J[i,j,k,l] = 3 if (i,j) == (k,l)
    result = jacli.jacobian("3*x", {"x": [[1, 2], [3, 4]]})
    expected = torch.zeros(2, 2, 2, 2, dtype=F64)
    for i in range(2):
        for j in range(2):
            expected[i, j, i, j] = 3
    assert torch.equal(result["x"], expected)


def test_spec_string_eye() -> None:
    # (x+1)**2 at eye:2: the diagonal of J is 2(x+1): 4 where x = 1, 2 where x = 0
    block = jacli.jacobian("(x+1)**2", {"x": "eye:2"})["x"]
    assert block.shape == (2, 2, 2, 2)
    assert torch.equal(block.reshape(4, 4), torch.diag(t64([4.0, 2.0, 2.0, 4.0])))


def test_mixed_input_forms_and_names() -> None:
    # y = [r*cos(t), r*sin(t)]; dy/dr = [cos t, sin t]; dy/dt = [-r sin t, r cos t]
    result = jacli.jacobian("[r*cos(t), r*sin(t)]", {"r": torch.tensor(2.0), "t": "0.5"})
    assert list(result) == ["r", "t"]
    torch.testing.assert_close(result["r"], t64([math.cos(0.5), math.sin(0.5)]), rtol=1e-15, atol=0)
    torch.testing.assert_close(result["t"], t64([-2 * math.sin(0.5), 2 * math.cos(0.5)]), rtol=1e-15, atol=0)


def test_input_tensor_is_not_modified_and_may_require_grad() -> None:
    x = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = jacli.jacobian("x**2", {"x": x})
        grads = jacli.vjp("x**2", {"x": x}, [1.0, 1.0])
    assert torch.equal(result["x"], torch.diag(t64([2.0, 4.0])))
    assert torch.equal(grads["x"], t64([2.0, 4.0]))
    assert x.grad is None
    assert torch.equal(x.detach(), t64([1.0, 2.0]))


# -- dtype, device, method ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", torch.float32])
def test_dtype_by_name_or_torch_dtype(dtype) -> None:
    result = jacli.jacobian("x**2", {"x": [2.0, 3.0]}, dtype=dtype)
    assert result["x"].dtype == torch.float32
    assert torch.equal(result["x"], torch.diag(torch.tensor([4.0, 6.0])))


@pytest.mark.parametrize("dtype", ["float64", torch.float64])
def test_float64_is_the_default_and_accepted_by_name_or_dtype(dtype) -> None:
    assert jacli.jacobian("x", {"x": 1.0}, dtype=dtype)["x"].dtype == F64
    assert jacli.jacobian("x", {"x": 1.0})["x"].dtype == F64


def _exact(expr_fn, point: dict[str, float], names: list[str]) -> dict[str, np.ndarray]:
    """SymPy's exact derivative of a list of scalar expressions, at a point of scalar inputs."""
    symbols = {n: sp.Symbol(n, real=True) for n in names}
    outputs = expr_fn(**symbols)
    at = {symbols[n]: sp.Rational(v) for n, v in point.items()}
    return {
        n: np.array([float(sp.N(sp.diff(o, symbols[n]).xreplace(at), 30)) for o in outputs])
        for n in names
    }


@pytest.mark.parametrize(
    "text,fn",
    [
        ("[r*cos(t), r*sin(t)]", lambda r, t: [r * sp.cos(t), r * sp.sin(t)]),
        ("[exp(r)*t, log(r + t**2), tanh(r*t)]", lambda r, t: [sp.exp(r) * t, sp.log(r + t**2), sp.tanh(r * t)]),
        ("[sqrt(r)/t, sigmoid(r - t)]", lambda r, t: [sp.sqrt(r) / t, 1 / (1 + sp.exp(-(r - t)))]),
    ],
)
@pytest.mark.parametrize("method", ["reverse", "forward", "rows"])
def test_float32_agrees_with_float64_and_exact(text: str, fn, method: str) -> None:
    point = {"r": 1.25, "t": 0.75}
    exact = _exact(fn, point, ["r", "t"])
    r64 = jacli.jacobian(text, point, method=method, dtype="float64")
    r32 = jacli.jacobian(text, point, method=method, dtype="float32")
    for name in ("r", "t"):
        assert r32[name].dtype == torch.float32
        np.testing.assert_allclose(r64[name].numpy(), exact[name], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(r32[name].numpy(), exact[name], rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(r32[name].double().numpy(), r64[name].numpy(), rtol=2e-6, atol=1e-6)


def test_float32_vjp_agrees_with_float64() -> None:
    inputs = {"a": "linspace:0.5,2,7", "b": "linspace:1,3,7"}
    v = [0.1, 1, 0.01, -2, 3, 0.5, 1e-3]
    r64 = jacli.vjp("a*log(b) + softmax(a)*b", inputs, v)
    r32 = jacli.vjp("a*log(b) + softmax(a)*b", inputs, v, dtype="float32")
    for name in ("a", "b"):
        assert r32[name].dtype == torch.float32
        np.testing.assert_allclose(r32[name].double().numpy(), r64[name].numpy(), rtol=1e-5, atol=1e-6)


def test_device_as_torch_device() -> None:
    result = api.compute_jacobian("x**2", {"x": 3.0}, device=torch.device("cpu"))
    assert result.device == "cpu"
    assert result.blocks["x"].to_dense().item() == 6.0


@pytest.mark.parametrize("method", ["reverse", "forward", "rows", "auto"])
def test_jacobian_methods_give_the_hand_result(method: str) -> None:
    # y = x[0]**2*x[1] + x[1]**3 at (1, 2): dy/dx0 = 2 x0 x1 = 4, dy/dx1 = x0² + 3 x1² = 13
    result = jacli.jacobian("x[0]**2*x[1] + x[1]**3", {"x": [1.0, 2.0]}, method=method)
    assert torch.equal(result["x"], t64([4.0, 13.0]))


@pytest.mark.parametrize(
    "inputs,expr,expected",
    [
        ({"x": [1.0, 2.0]}, "x**2", "compressed"),  # diagonal: 1 VJP instead of 2 passes
        ({"x": "ones:40"}, "x*sum(x)", "reverse"),  # dense, 40 inputs, 40 outputs: not fewer inputs
        ({"x": 1.0, "c": "linspace:1,2,40"}, "x*c", "forward"),  # 1 input, 40 outputs
        # at most SMALL_OUTPUT outputs: the row loop, which needs no torch._dynamo (NOTE [small problems])
        ({"x": [1.0, 2.0]}, "x*sum(x)", "rows"),
        ({"x": 1.0}, "[x, x**2, x**3]", "rows"),
        ({"x": [1.0, 2.0, 3.0]}, "sum(x)", "rows"),  # 3 inputs, 1 output: one backward pass
    ],
)
def test_auto_method_is_resolved_and_reported(inputs, expr, expected) -> None:
    wrt = ["x"] if "c" in inputs else None
    assert api.compute_jacobian(expr, inputs, wrt=wrt).method == expected


@pytest.mark.parametrize("method", ["grad", "backward", "auto"])
def test_vjp_by_hand(method: str) -> None:
    # 3a + 2b² + log(c): vᵀJ is v*3, v*4b, v/c
    result = jacli.vjp(
        "3*a + 2*b**2 + log(c)", {"a": "1,2,3", "b": [3, 4, 5], "c": t64([6, 7, 8])}, [0.1, 1, 0.0001],
        method=method,
    )
    torch.testing.assert_close(result["a"], t64([0.3, 3, 0.0003]), rtol=1e-15, atol=0)
    torch.testing.assert_close(result["b"], t64([1.2, 16, 0.002]), rtol=1e-15, atol=0)
    torch.testing.assert_close(result["c"], t64([0.1 / 6, 1 / 7, 0.0001 / 8]), rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "v,expected",
    [
        ("ones", [2.0, 2.0, 2.0, 2.0]),
        ("onehot:2", [0.0, 0.0, 2.0, 0.0]),
        ([1, 0.1, 0.01, 0.001], [2.0, 0.2, 0.02, 0.002]),
        (t64([4, 3, 2, 1]), [8.0, 6.0, 4.0, 2.0]),
        ("1,-1,1,-1", [2.0, -2.0, 2.0, -2.0]),
    ],
)
def test_vjp_v_forms(v, expected) -> None:
    result = jacli.vjp("2*x", {"x": [1, 2, 3, 4]}, v)
    torch.testing.assert_close(result["x"], t64(expected), rtol=1e-15, atol=0)


def test_vjp_number_v_for_a_scalar_output() -> None:
    # mean((x+1)**2) over 4 ones: d/dx = 2(x+1)/4 = 1 everywhere
    result = jacli.vjp("mean((x+1)**2)", {"x": "ones:2x2"}, 1)
    assert torch.equal(result["x"], torch.ones(2, 2, dtype=F64))


def test_vjp_methods_bitwise_equal() -> None:
    inputs = {"W": "randn:3x4", "x": "randn:4"}
    a = jacli.vjp("tanh(W @ x)", inputs, "randn", method="grad")
    b = jacli.vjp("tanh(W @ x)", inputs, "randn", method="backward")
    for name in ("W", "x"):
        assert torch.equal(a[name], b[name])


# -- wrt ----------------------------------------------------------------------------------------


def test_wrt_selects_inputs() -> None:
    result = jacli.jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}, wrt=["t"])
    assert list(result) == ["t"]
    torch.testing.assert_close(result["t"], t64([-2 * math.sin(0.5), 2 * math.cos(0.5)]), rtol=1e-15, atol=0)


@pytest.mark.parametrize("wrt", [["a,c"], ["a", "c"], ["c", "a"], [" c , a "]])
def test_wrt_forms(wrt) -> None:
    # a*b + c**2: d/da = b = 5, d/dc = 2c = 6
    result = jacli.jacobian("a*b + c**2", {"a": 1.0, "b": 5.0, "c": 3.0}, wrt=wrt)
    assert set(result) == {"a", "c"}
    assert result["a"].item() == 5.0 and result["c"].item() == 6.0


@pytest.mark.parametrize("method", ["reverse", "forward", "rows"])
def test_wrt_input_without_effect_gives_zeros(method: str) -> None:
    # x (2,) + 0*y (1, 2) broadcasts to an output of shape (1, 2): J has shape (1, 2) + (1, 2)
    result = jacli.jacobian("x**2 + 0*y", {"x": [1.0, 2.0], "y": [[1.0, 2.0]]}, wrt=["y"], method=method)
    assert torch.equal(result["y"], torch.zeros(1, 2, 1, 2, dtype=F64))


def test_vjp_wrt() -> None:
    result = jacli.vjp("x*y", {"x": [1.0, 2.0], "y": [3.0, 4.0]}, "ones", wrt=["y"])
    assert list(result) == ["y"]
    assert torch.equal(result["y"], t64([1.0, 2.0]))


# -- errors -------------------------------------------------------------------------------------


def test_error_classes_are_jacli_errors() -> None:
    for cls in (ExpressionError, InputError, ShapeError, DeviceError, ResourceError):
        assert issubclass(cls, JacliError)
        assert getattr(jacli, cls.__name__) is cls
    assert issubclass(JacliWarning, Warning)


def test_missing_input_lists_the_needed_names() -> None:
    with pytest.raises(InputError) as info:
        jacli.jacobian("x*y + z", {"x": 1.0})
    message = str(info.value)
    assert "y, z" in message
    assert "x, y, z" in message


def test_unused_input_suggests_the_close_name() -> None:
    with pytest.raises(InputError) as info:
        jacli.jacobian("alpha*x", {"alpah": 1.0, "x": 2.0})
    message = str(info.value)
    assert "'alpah'" in message and "did you mean alpha?" in message


def test_unused_input_without_close_name_lists_variables() -> None:
    with pytest.raises(InputError, match="Its variables are: x") as info:
        jacli.jacobian("x**2", {"x": 1.0, "zzz": 2.0})
    assert "did you mean" not in str(info.value)


def test_unnamed_input_with_several_variables() -> None:
    with pytest.raises(InputError) as info:
        api.compute_jacobian("a*b", [(None, 1.0)])
    message = str(info.value)
    assert "2 (a, b)" in message and "name each one in `inputs`" in message


def test_unnamed_input_binds_the_only_variable() -> None:
    result = api.compute_jacobian("x**2", [(None, "3")])
    assert result.blocks["x"].to_dense().item() == 6.0


@pytest.mark.parametrize("pairs", [[("x", 1.0), ("x", 2.0)], [(None, 1.0), ("x", 2.0)]])
def test_duplicated_input(pairs) -> None:
    with pytest.raises(InputError, match="'x' is given twice"):
        api.compute_jacobian("x**2", pairs)


@pytest.mark.parametrize("wrt,hint", [(["z"], None), (["yy"], "did you mean y?")])
def test_unknown_wrt(wrt, hint) -> None:
    with pytest.raises(InputError) as info:
        jacli.jacobian("x*y", {"x": 1.0, "y": 2.0}, wrt=wrt)
    message = str(info.value)
    assert repr(wrt[0]) in message and "x, y" in message
    if hint:
        assert hint in message


def test_empty_wrt_string() -> None:
    with pytest.raises(InputError, match="names no variable"):
        jacli.jacobian("x*y", {"x": 1.0, "y": 2.0}, wrt=[" , "])


@pytest.mark.parametrize("inputs", [{}, {"x": 1.0}])
def test_expression_without_variables(inputs) -> None:
    with pytest.raises(ExpressionError, match="no variables"):
        jacli.jacobian("2 + 3*pi", inputs)


def test_unknown_method() -> None:
    with pytest.raises(InputError, match="method 'bogus' is not a Jacobian method; Use auto, reverse") as caught:
        jacli.jacobian("x", {"x": 1.0}, method="bogus")
    assert caught.value.param == "method"
    with pytest.raises(InputError, match="method 'rows' is not a vjp method; Use auto, grad or backward"):
        jacli.vjp("x", {"x": 1.0}, 1.0, method="rows")
    with pytest.raises(InputError, match="'revers' is not a Jacobian method; did you mean reverse\\?"):
        jacli.jacobian("x", {"x": 1.0}, method="revers")


@pytest.mark.parametrize("dtype", ["float16", torch.float16, torch.int64])
def test_unsupported_dtype(dtype) -> None:
    with pytest.raises(DeviceError):
        jacli.jacobian("x", {"x": 1.0}, dtype=dtype)


def test_unknown_device() -> None:
    with pytest.raises(DeviceError, match="unknown device 'foo'"):
        jacli.jacobian("x", {"x": 1.0}, device="foo")


@pytest.mark.skipif(torch.version.cuda is not None, reason="this torch build has CUDA")
def test_cuda_on_a_cpu_build() -> None:
    with pytest.raises(DeviceError, match="no CUDA"):
        jacli.jacobian("x", {"x": 1.0}, device="cuda")


@pytest.mark.parametrize("value", [[[1, 2], [3]], [], "hello:3", "1,,2"])
def test_bad_input_values(value) -> None:
    with pytest.raises(InputError):
        jacli.jacobian("x", {"x": value})


@pytest.mark.parametrize(
    "value,fix",
    [(torch.eye(2).to_sparse(), "t.to_dense()"), (torch.empty(2, device="meta"), "one that holds numbers")],
    ids=["sparse", "meta"],
)
def test_tensors_without_dense_strided_data_are_refused(value, fix) -> None:
    with pytest.raises(InputError, match=f"dense, strided tensor of real numbers, so give {re.escape(fix)}"):
        jacli.jacobian("x", {"x": value})
    with pytest.raises(InputError, match="input v: holds"):
        jacli.vjp("x", {"x": [1.0, 2.0]}, value)


@pytest.mark.parametrize(
    "arguments,error,message",
    [
        ({"dtype": 5}, DeviceError, "dtype must be 'float64', 'float32' or a torch.dtype such as torch.float32, not 5"),
        ({"dtype": None}, DeviceError, "dtype must be"),
        ({"device": 5}, DeviceError, "device must be a name such as 'cpu', 'cuda:0' or 'auto', or a torch.device, not 5"),
        ({"max_memory": "1GB"}, InputError, "max_memory must be a number of bytes as an int, such as 2 * 10**9, not '1GB'; "
         "for a size such as '2GB', pass jacli.limits.parse_size('2GB')"),
        ({"max_memory": 1.5e9}, InputError, "max_memory must be a number of bytes as an int, such as 2 * 10**9, not 1500000000.0"),
        ({"max_memory": True}, InputError, "not True"),
        ({"max_memory": 0}, InputError, "max_memory must be at least 1 byte, not 0"),
        ({"max_memory": -10**400}, InputError, "not -1000000000...0000000000 (401 digits)"),
        ({"wrt": 5}, InputError, "wrt must be a variable name or a list of names, such as ['x', 'y'], not 5"),
        ({"wrt": ["x", b"y"]}, InputError, "wrt[1] must be a variable name (a str), not b'y'"),
        ({"inputs": {"x": 10**400}}, InputError, "inputs['x'] holds the integer 1000000000...0000000000 (401 digits), "
         "larger than float64 can hold (about 1.8e308); give a float, e.g. float('inf') for infinity"),
        ({"inputs": {"x": [1.0, [2, 9 * 10**5000]]}}, InputError, "inputs['x'] holds the integer 9000000000...0000000000 (5,001 digits)"),
    ],
    ids=["dtype", "dtype_none", "device", "max_memory_str", "max_memory_float", "max_memory_bool", "max_memory_0",
         "max_memory_huge", "wrt", "wrt_item", "int_10_400", "int_5001_digits"],
)
def test_wrong_arguments_are_jacli_errors_in_python_terms(arguments, error, message) -> None:
    arguments = dict(arguments)
    inputs = arguments.pop("inputs", {"x": [1.0, 2.0]})
    with pytest.raises(error) as info:
        api.compute_jacobian("x", inputs, **arguments)
    assert message in str(info.value)
    assert "--" not in str(info.value)  # the library names parameters, not command-line options


def test_a_python_int_beyond_float64_as_v_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"input v holds the integer 1000000000\.\.\.0000000000 \(401 digits\)"):
        jacli.vjp("x", {"x": [1.0]}, 10**400)


def test_wrt_as_one_string_is_one_name() -> None:
    # not its letters: "ab" used to be read as ["a", "b"]
    assert set(jacli.jacobian("ab*c", {"ab": 2.0, "c": 3.0}, wrt="ab")) == {"ab"}


def test_shape_mismatch_is_a_shape_error() -> None:
    with pytest.raises(ShapeError, match=r"x of shape \(2, 3\) and y of shape \(2, 3\)"):
        jacli.jacobian("x @ y", {"x": "ones:2x3", "y": "ones:2x3"})


def test_v_shape_mismatch() -> None:
    with pytest.raises(ShapeError) as info:
        jacli.vjp("2*x", {"x": [1, 2, 3]}, [1, 2])
    assert "(2,)" in str(info.value) and "(3,)" in str(info.value)


def test_jacobian_over_the_memory_budget_is_refused_before_any_work(monkeypatch) -> None:
    # (1000*1000 outputs) * (1000*1000 inputs) = 10**12 numbers * 8 bytes = 8.0 TB
    work = record_work(monkeypatch)
    with pytest.raises(ResourceError) as info:
        jacli.jacobian("(x+1)**2", {"x": "eye:1000"})
    message = str(info.value)
    assert "1,000,000,000,000" in message
    assert "8.0 TB" in message
    assert "vjp with `v`" in message  # what to do instead
    assert work == []  # refused from shapes: eye:1000 never built, (x+1)**2 never evaluated
    # (how long the refusal takes is measured in benchmarks/bench_refusals.py, not asserted here)
    jacli.jacobian("(x+1)**2", {"x": "eye:2"})  # the recorder does see work when there is some
    assert work[:2] == ["input x", "evaluate (x+1)**2"]


def test_explicit_memory_budget() -> None:
    # 10 outputs x 10 inputs x 8 bytes = 800 B, beside the input (80 B) and output (80 B): 960 B
    with pytest.raises(ResourceError, match="960 B"):
        api.compute_jacobian("x", {"x": "ones:10"}, max_memory=959, layout="dense")
    result = api.compute_jacobian("x", {"x": "ones:10"}, max_memory=960, layout="dense")
    assert torch.equal(result.blocks["x"].to_dense(), torch.eye(10, dtype=F64))


def test_inputs_are_budgeted_together() -> None:
    # each input is 8,000 B and fits 10,000 B alone; together they need 16,000 B
    with pytest.raises(ResourceError, match=r"inputs together .*16\.0 kB"):
        api.compute_vjp("x*y", {"x": "ones:1000", "y": "ones:1000"}, "ones", max_memory=10_000)
    # a tensor input and a file input are counted as well
    with pytest.raises(ResourceError, match="inputs together"):
        api.compute_vjp("x*y", {"x": torch.ones(1000, dtype=F64), "y": [1.0] * 1000}, "ones", max_memory=10_000)


def test_intermediate_results_are_budgeted_before_they_are_computed(monkeypatch) -> None:
    # x (1000, 1) * y (1, 1000) broadcasts to 1,000,000 numbers = 8 MB, though the output is 8 B
    work = record_work(monkeypatch)
    with pytest.raises(ResourceError, match=r"evaluating sum\(x\*y\).*8\.0 MB"):
        api.compute_grad("sum(x*y)", {"x": "ones:1000x1", "y": "ones:1x1000"}, max_memory=1_000_000)
    assert work == []  # refused from shapes: neither input built, sum(x*y) never evaluated
    grad = api.compute_grad("sum(x*y)", {"x": "ones:1000x1", "y": "ones:1x1000"}, max_memory=10**8)
    assert torch.equal(grad.grads["x"], torch.full((1000, 1), 1000.0, dtype=F64))
    assert work[:3] == ["input x", "input y", "evaluate sum(x*y)"]


def test_a_jacobian_over_the_budget_is_refused_before_its_input_is_allocated(monkeypatch) -> None:
    import jacli.inputs.build

    def no_allocation(*args, **kwargs):
        raise AssertionError("the input was allocated before the Jacobian was refused")

    monkeypatch.setattr(jacli.inputs.build, "_construct", no_allocation)
    with pytest.raises(ResourceError, match="Jacobian"):
        api.compute_jacobian("sum(x)", {"x": "rand:1000000"}, max_memory=10_000_000)
    with pytest.raises(ResourceError, match="Hessian"):
        api.compute_hessian("sum(x)", {"x": "rand:10000"}, max_memory=10_000_000)


@pytest.mark.parametrize(
    "expr, spec", [("x[3:]", "1,2,3"), ("x[1:1]", "ones:4"), ("reshape(x[3:], 0, 2)", "ones:3")]
)
def test_an_output_without_numbers_is_an_error(expr, spec) -> None:
    with pytest.raises(ShapeError, match=r"no numbers \(shape \(0"):
        api.compute_jacobian(expr, {"x": spec})
    with pytest.raises(ShapeError, match="no numbers"):
        api.compute_jvp(expr, {"x": spec}, {"x": "ones"})


def test_an_empty_file_input_is_an_error(tmp_path) -> None:
    np.save(tmp_path / "e.npy", np.zeros(0))
    with pytest.raises(InputError, match=r"x = @.*e\.npy has no numbers"):
        api.compute_vjp("x*2", {"x": f"@{tmp_path / 'e.npy'}"}, "ones")


# -- warnings -----------------------------------------------------------------------------------


def jacli_warnings(call) -> list[str]:
    """The messages of the warnings ``call()`` raises; all of them must be JacliWarnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    assert caught, "no warning"
    assert all(issubclass(w.category, JacliWarning) for w in caught), [w.category for w in caught]
    return [str(w.message) for w in caught]


def test_nan_input_warns() -> None:
    results = []
    messages = jacli_warnings(lambda: results.append(jacli.jacobian("x**2", {"x": [float("nan"), 1.0]})))
    assert "input x holds 1 NaN or infinite number" in messages
    assert results[0]["x"][1, 1].item() == 2.0


def test_infinite_inputs_warn_with_the_count() -> None:
    messages = jacli_warnings(lambda: jacli.jacobian("x", {"x": "inf,-inf,1"}))
    assert "input x holds 2 NaN or infinite numbers" in messages


def test_nan_v_warns() -> None:
    messages = jacli_warnings(lambda: jacli.vjp("x", {"x": [1.0, 2.0]}, [float("nan"), 1.0]))
    assert any(m.startswith("`v` holds 1 NaN") for m in messages)


def test_finite_inputs_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", JacliWarning)  # a warning fails the test
        result = jacli.jacobian("x**2", {"x": [1.0, 2.0]})
    assert torch.equal(result["x"], torch.diag(t64([2.0, 4.0])))  # d(x²)/dx = 2x on the diagonal


# -- the Result ---------------------------------------------------------------------------------


def test_compute_jacobian_result_fields() -> None:
    result = api.compute_jacobian("(x+1)**2", {"x": [1.0, 2.0]}, method="rows")
    assert result.command == "jacobian"
    assert result.expression == "(x+1)**2"
    assert result.variables == ("x",) and result.wrt == ("x",)
    assert result.method == "rows"
    assert result.device == "cpu" and result.dtype == "float64"
    assert torch.equal(result.inputs["x"], t64([1.0, 2.0]))
    assert torch.equal(result.output, t64([4.0, 9.0]))
    assert torch.equal(result.blocks["x"].to_dense(), torch.diag(t64([4.0, 6.0])))


def test_compute_vjp_result_fields() -> None:
    result = api.compute_vjp("x*y", {"x": [1.0, 2.0], "y": [3.0, 4.0]}, "onehot:1", method="backward")
    assert result.command == "vjp" and result.method == "backward"
    assert torch.equal(result.v, t64([0.0, 1.0]))
    assert torch.equal(result.grads["x"], t64([0.0, 4.0]))  # v * y
    assert torch.equal(result.grads["y"], t64([0.0, 2.0]))  # v * x


@pytest.mark.parametrize("bad", [[1, 2], "x=1", 5, [("x",)], [(1, 2)]])
def test_inputs_that_are_not_a_mapping_are_a_jacli_error(bad) -> None:
    with pytest.raises(InputError, match="inputs must"):
        jacli.jacobian("x", bad)


@pytest.mark.parametrize("option", ["input", "wrt"])
def test_a_name_in_another_case_gets_a_did_you_mean(option) -> None:
    with pytest.raises(InputError, match="'X'.*did you mean x\\?"):
        if option == "input":
            jacli.jacobian("x*y", {"X": 1, "y": 2})
        else:
            jacli.jacobian("x*y", {"x": 1, "y": 2}, wrt=["X"])


def test_symbolic_display_of_a_large_problem_is_skipped_with_a_warning() -> None:
    x = torch.linspace(-1, 1, 500, dtype=F64)
    with pytest.warns(JacliWarning, match="`symbolic` skipped: .* 500 and 250,000; the numbers below are from reverse"):
        result = api.compute_jacobian("sin(x)", {"x": x}, symbolic=True, method="reverse")
    assert result.symbolic is None
    assert torch.equal(result.blocks["x"].to_dense(), torch.diag(torch.cos(x)))
    with pytest.warns(JacliWarning, match="`symbolic` skipped"):
        grad = api.compute_grad("sum(sin(x))", {"x": x}, symbolic=True)
    assert torch.equal(grad.grads["x"], torch.cos(x))
    # asked for as the method, the size limit stays an error
    with pytest.raises(ResourceError, match="at most 400 input elements"):
        api.compute_jacobian("sin(x)", {"x": x}, method="symbolic")


# -- one forward pass per call ------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: api.compute_jacobian("tanh(A @ x)", {"A": "randn:4x3", "x": "randn:3"}, wrt=["x"], method="reverse"),
        lambda: api.compute_jacobian("[x*y, x + y, x - y]", {"x": 1.0, "y": 2.0}),  # auto: forward
        lambda: api.compute_jacobian("(x+1)**2", {"x": "eye:3"}, method="forward"),
        lambda: api.compute_jacobian("(x+1)**2", {"x": "eye:3"}, method="rows"),
        lambda: api.compute_jacobian("(x+1)**2", {"x": "eye:3"}, method="symbolic"),
        lambda: api.compute_vjp("x**2", {"x": "1,2"}, "ones"),
        lambda: api.compute_vjp("x**2", {"x": "1,2"}, "ones", method="backward"),
        lambda: api.compute_jvp("x**2", {"x": "1,2"}, "ones"),
        lambda: api.compute_grad("sum(x**3)", {"x": "1,2"}),
        lambda: api.compute_grad("sum(x**3)", {"x": "1,2"}, method="forward"),
        lambda: api.compute_hessian("sum(x**3)", {"x": "1,2"}),
        lambda: api.compute_hvp("sum(x**3)", {"x": "1,2"}, "1,0"),
    ],
)
def test_each_call_evaluates_the_expression_once(call, monkeypatch) -> None:
    """The output comes from the same forward pass as the derivatives (counted, with the real
    compiled functions wrapped), and the derivatives are still right (checked against the
    uncounted functions by the rest of the suite)."""
    import dataclasses

    from jacli import compile as compile_module

    calls = []
    real = compile_module.compile_expression

    def counting(text):
        compiled = real(text)

        def counted(fn):
            def run(*args):
                calls.append(text)
                return fn(*args)

            return run

        return dataclasses.replace(compiled, function=counted(compiled.function), checked=counted(compiled.checked))

    monkeypatch.setattr(compile_module, "compile_expression", counting)
    result = call()
    assert len(calls) == 1
    assert result.output.numel() >= 1 and torch.isfinite(result.output).all()


# -- layouts: the formula's pattern decides what is stored -------------------------------------------


def test_layout_diagonal_by_hand() -> None:
    from jacli.result import DiagonalBlock

    # (x+1)**2 at eye(5): 2*(x+1), 4 where x is 1 and 2 elsewhere
    result = api.compute_jacobian("(x+1)**2", [(None, "eye:5")], layout="diagonal")
    block = result.blocks["x"]
    assert isinstance(block, DiagonalBlock) and block.shape == (5, 5, 5, 5)
    expected = torch.full((5, 5), 2.0, dtype=torch.float64).fill_diagonal_(4.0)
    assert torch.equal(block.diagonal, expected)
    dense = api.compute_jacobian("(x+1)**2", [(None, "eye:5")], method="reverse", layout="dense")
    assert torch.equal(block.to_dense(), dense.blocks["x"].to_dense())
    assert result.method == "compressed" and result.how.startswith("diagonal: 1 VJP")


def test_layout_sparse_by_hand() -> None:
    from jacli.result import SparseBlock

    # [x[0]*x[1], 3*x[2]] at (1, 2, 5): row 0 = (2, 1, 0), row 1 = (0, 0, 3)
    block = api.compute_jacobian("[x[0]*x[1], 3*x[2]]", {"x": [1.0, 2.0, 5.0]}, layout="sparse",
                                 method="compressed").blocks["x"]
    assert isinstance(block, SparseBlock) and block.colors == 1  # no input element feeds two rows
    assert block.rows.tolist() == [0, 0, 1] and block.cols.tolist() == [0, 1, 2]
    assert block.values.tolist() == [2.0, 1.0, 3.0]
    # computed densely by reverse mode, the same entries are kept: the pattern's, not the numbers'
    dense = api.compute_jacobian("[x[0]*x[1], 3*x[2]]", {"x": [0.0, 2.0, 5.0]}, layout="sparse", method="reverse")
    assert dense.blocks["x"].rows.tolist() == [0, 0, 1] and dense.blocks["x"].values.tolist() == [2.0, 0.0, 3.0]


def test_layout_auto_follows_the_formula_and_dense_stays_dense() -> None:
    assert api.compute_jacobian("x**2", {"x": [1.0, 2.0]}).blocks["x"].layout == "diagonal"
    assert api.compute_jacobian("x*sum(x)", {"x": [1.0, 2.0]}).blocks["x"].layout == "dense"
    # a quarter or less of the entries: sparse (tridiagonal, 3 of 20 per row)
    assert api.compute_jacobian("x[:-2] - 2*x[1:-1] + x[2:]", {"x": "ones:20"}).blocks["x"].layout == "sparse"
    result = api.compute_jacobian("x**2", {"x": [1.0, 2.0]}, layout="dense")
    assert result.blocks["x"].layout == "dense"
    assert torch.equal(result.blocks["x"].to_dense(), torch.diag(t64([2.0, 4.0])))  # 2x, by hand


def test_layout_diagonal_refuses_what_is_not_diagonal() -> None:
    with pytest.raises(ShapeError, match="the Jacobian for x is not diagonal .* use `layout` sparse") as raised:
        api.compute_jacobian("[x[0], x[0], x[0], x[3]]", {"x": [1.0, 2.0, 3.0, 4.0]}, layout="diagonal")
    assert raised.value.param == "layout"
    with pytest.raises(ShapeError, match="use `layout` dense"):
        api.compute_jacobian("x*sum(x)", {"x": [1.0, 2.0]}, layout="diagonal")
    with pytest.raises(ShapeError, match="the Jacobian for x is not diagonal"):
        api.compute_jacobian("sum(x)", {"x": [1.0, 2.0]}, layout="diagonal")
    # the structure comes from the formula, not from the numbers: x*y at y = 0 is still diagonal in x
    block = api.compute_jacobian("x*y", {"x": [1.0, 2.0], "y": [0.0, 0.0]}, wrt=["x"], layout="diagonal").blocks["x"]
    assert torch.equal(block.diagonal, t64([0.0, 0.0]))


def test_layout_is_parsed_with_a_suggestion() -> None:
    with pytest.raises(InputError, match="layout 'diag' is not a Jacobian layout; did you mean diagonal") as raised:
        api.compute_jacobian("x", {"x": [1.0]}, layout="diag")
    assert raised.value.param == "layout"


def test_jacobian_function_layouts() -> None:
    dense = api.jacobian("x**2", {"x": [1.0, 2.0]})["x"]
    assert dense.layout == torch.strided
    for layout in ("diagonal", "sparse"):
        stored = api.jacobian("x**2", {"x": [1.0, 2.0]}, layout=layout)["x"]
        assert stored.layout == torch.sparse_coo and torch.equal(stored.to_dense(), dense)


def test_the_nan_report_finds_the_first_places_without_listing_all() -> None:
    from jacli.problem import _first_places

    mask = torch.zeros(4, 5, 6, dtype=torch.bool)
    mask[1, 2, 3] = mask[0, 4, 5] = mask[3, 0, 0] = mask[2, 2, 2] = True
    expected = [tuple(i) for i in mask.nonzero().tolist()]  # torch's own order, C order
    assert _first_places(mask, 5) == expected
    assert _first_places(mask, 2, piece=7) == expected[:2]  # found across several pieces
    assert _first_places(torch.zeros(3, dtype=torch.bool), 5) == []


# -- the exact method's deadline (issue 10 item 6) -----------------------------------------------

SLOW_EXACT = "sum(x@x@x@x@x@x)"  # 25 elements; SymPy's expansion takes minutes


def test_the_exact_method_is_refused_past_its_deadline(monkeypatch) -> None:
    import signal

    from jacli.engine import exact

    monkeypatch.setattr(exact, "SECONDS", 0.5)
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(ResourceError, match=r"took longer than its limit of 0.5 s.*`method` reverse") as raised:
        api.compute_grad(SLOW_EXACT, {"x": "randn:5x5"}, method="symbolic")
    assert raised.value.param == "method"
    assert signal.getsignal(signal.SIGALRM) == before and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    # shown beside the numbers, it is skipped with a note and the numbers come
    with pytest.warns(JacliWarning, match="`symbolic` skipped: the symbolic method took longer"):
        result = api.compute_grad(SLOW_EXACT, {"x": "randn:5x5"}, symbolic=True)
    assert result.symbolic is None and result.grads["x"].shape == (5, 5)
    # check skips it as its reference and uses reverse mode
    report = jacli.check(SLOW_EXACT, {"x": "randn:5x5"})
    assert report.reference == "reverse" and report.ok
    assert any(m.method == "symbolic" and m.skipped and "took longer" in m.note for m in report.methods)


def test_a_fast_exact_derivative_is_not_disturbed_by_the_deadline(monkeypatch) -> None:
    from jacli.engine import exact

    monkeypatch.setattr(exact, "SECONDS", 30)
    grad = api.compute_grad("sum(x**3)", {"x": [1.0, 2.0]}, method="symbolic").grads["x"]
    assert torch.equal(grad, t64([3.0, 12.0]))  # 3x², by hand


# -- jvp (jacli.jvp) ----------------------------------------------------------------------------

JVP_CASES = [
    ("sin(x)*x + x**2", {"x": (4,)}),
    ("[r*cos(t), r*sin(t)]", {"r": (), "t": ()}),
    ("a @ b + 1", {"a": (2, 3), "b": (3, 2)}),
    ("softmax(x) * sum(y)", {"x": (3,), "y": (2,)}),
    ("x[0]**2*x[1] + x[1]**3", {"x": (2,)}),
]


@pytest.mark.parametrize("expr,shapes", JVP_CASES)
def test_jvp_equals_jacobian_times_v_and_vjp_identity(expr, shapes):
    inputs = {name: random(shape, i) for i, (name, shape) in enumerate(shapes.items())}
    if "r" in inputs:
        inputs["r"] = inputs["r"].abs() + 0.5
    directions = {name: random(shape, 10 + i) for i, (name, shape) in enumerate(shapes.items())}
    jac = jacli.jacobian(expr, inputs)
    out_dims = jac[next(iter(jac))].dim() - inputs[next(iter(jac))].dim()
    expected = sum(
        torch.tensordot(jac[n], directions[n], dims=directions[n].dim()) for n in inputs
    )
    got = jacli.jvp(expr, inputs, directions)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # vᵀ (J u) = (vᵀ J) u
    v = random(got.shape, 99)
    left = (v * got).sum()
    vjp = jacli.vjp(expr, inputs, v)
    right = sum((vjp[n] * directions[n]).sum() for n in inputs)
    torch.testing.assert_close(left, right, rtol=1e-12, atol=1e-12)
    assert got.dim() == out_dims


def test_jvp_missing_direction_is_zero():
    # d/dt [r cos t, r sin t] at r=2, t=0.5, moving t only: r * [-sin t, cos t]
    got = jacli.jvp("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}, {"t": 1.0})
    torch.testing.assert_close(got, torch.tensor([-2 * math.sin(0.5), 2 * math.cos(0.5)], dtype=F64))


def test_jvp_cli_result_key_is_output():
    doc = cli_json("jvp", "x**2", "-i", "1,2,3", "--v", "1,0,0")
    assert list(doc["result"]) == ["output"]
    assert doc["result"]["output"]["values"] == [2.0, 0.0, 0.0]


def test_jvp_direction_errors():
    with pytest.raises(InputError, match="give `v` as {name: direction}"):
        jacli.jvp("a*b", {"a": 1.0, "b": 2.0}, [(None, "1")])
    with pytest.raises(InputError, match="did you mean a"):
        jacli.jvp("a*b", {"a": 1.0, "b": 2.0}, {"aa": 1.0})
    with pytest.raises(ShapeError, match="input x"):
        jacli.jvp("x**2", {"x": [1.0, 2.0]}, {"x": [1.0, 2.0, 3.0]})


# -- grad (jacli.grad) --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "reverse", "forward", "symbolic"])
def test_grad_must_reproduce(method):
    assert float(jacli.grad("x**2 + 3*x + 1", {"x": 2.0}, method=method)["x"]) == pytest.approx(7)
    g = jacli.grad("3*a + 2*b**2 + log(c)", {"a": 0.1, "b": 1.0, "c": 0.1}, method=method)
    assert [float(g[n]) for n in "abc"] == pytest.approx([3, 4, 10], rel=1e-12)
    g = jacli.grad("mean((x+1)**2)", {"x": "ones:2x2"}, method=method)["x"]
    torch.testing.assert_close(g, torch.ones(2, 2, dtype=F64))
    g = jacli.grad("sum(a @ b)", {"a": [[1, 2, 3]], "b": [[1], [2], [3]]}, method=method)
    torch.testing.assert_close(g["a"], torch.tensor([[1.0, 2, 3]], dtype=F64))
    torch.testing.assert_close(g["b"], torch.tensor([[1.0], [2], [3]], dtype=F64))


def test_grad_equals_backward():
    x = random((5,), 3)
    leaf = x.clone().requires_grad_()
    (torch.sin(leaf) * leaf.exp()).sum().backward()
    torch.testing.assert_close(jacli.grad("sum(sin(x)*exp(x))", {"x": x})["x"], leaf.grad, rtol=0, atol=0)


def test_grad_of_vector_explains_and_its_suggestions_work():
    result = cli("grad", "x*x", "-i", "1,2,3")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert "grad can be implicitly created only for scalar outputs" in result.stderr
    suggestions = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("jacli ")]
    assert any(" vjp " in s and "--v ones" in s for s in suggestions)
    assert any(" jacobian " in s for s in suggestions)
    for suggestion in suggestions:  # the commands it shows really work
        argv = shlex.split(suggestion)[1:]
        follow = cli(*argv, "--format", "json")
        assert follow.exit_code == 0, follow.stderr
    vjp = json.loads(cli(*shlex.split(suggestions[0])[1:], "--format", "json").stdout)
    assert vjp["result"]["x"]["values"] == [2.0, 4.0, 6.0]


# -- hessian and hvp (jacli.hessian, jacli.hvp) -------------------------------------------------


def sympy_hessian(expr_of_symbols, symbols, point):
    h = sp.hessian(expr_of_symbols, symbols)
    return torch.tensor([[float(h[i, j].subs(point)) for j in range(len(symbols))] for i in range(len(symbols))], dtype=F64)


@pytest.mark.parametrize("method", ["auto", "forward", "reverse", "symbolic"])
def test_hessian_must_reproduce_and_matches_sympy(method):
    h = jacli.hessian("x[0]**2*x[1] + x[1]**3", {"x": [1.0, 2.0]}, method=method)["x", "x"]
    torch.testing.assert_close(h, torch.tensor([[4.0, 2.0], [2.0, 12.0]], dtype=F64))
    a, b, c = sp.symbols("a b c", real=True)
    point = {a: 0.3, b: -1.2, c: 0.7}
    expected = sympy_hessian(sp.sin(a * b) + sp.exp(c) * a**2 + sp.log(1 + b**2) * c, [a, b, c], point)
    got = jacli.hessian(
        "sin(a*b) + exp(c)*a**2 + log(1 + b**2)*c", {"a": 0.3, "b": -1.2, "c": 0.7}, method=method
    )
    names = "abc"
    table = torch.stack([torch.stack([got[p, q] for q in names]) for p in names])
    torch.testing.assert_close(table, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(table, table.T, rtol=0, atol=1e-14)  # symmetric


def test_hessian_blocks_shapes_and_symmetry():
    inputs = {"x": random((3,), 1), "w": random((2, 3), 2)}
    h = jacli.hessian("sum(tanh(w @ x)**2)", inputs)
    assert h["x", "x"].shape == (3, 3) and h["w", "w"].shape == (2, 3, 2, 3) and h["x", "w"].shape == (3, 2, 3)
    torch.testing.assert_close(h["x", "w"], h["w", "x"].permute(2, 0, 1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h["x", "x"], h["x", "x"].T, rtol=1e-12, atol=1e-12)


def test_hvp_equals_hessian_times_v():
    inputs = {"x": random((3,), 1), "w": random((2, 3), 2)}
    u = {"x": random((3,), 5), "w": random((2, 3), 6)}
    h = jacli.hessian("sum(tanh(w @ x)**2)", inputs)
    hv = jacli.hvp("sum(tanh(w @ x)**2)", inputs, u)
    for a in inputs:
        expected = sum(torch.tensordot(h[a, b], u[b], dims=u[b].dim()) for b in inputs)
        torch.testing.assert_close(hv[a], expected, rtol=1e-12, atol=1e-12)


def test_hessian_of_vector_output_is_an_error():
    with pytest.raises(ShapeError, match="single number"):
        jacli.hessian("x**2", {"x": [1.0, 2.0]})


def test_hessian_cli_keys():
    doc = cli_json("hessian", "a*b**2", "-i", "a=1", "-i", "b=2")
    assert set(doc["result"]) == {"a,a", "a,b", "b,a", "b,b"}
    # d²(a b²): aa 0, ab 2b = 4, bb 2a = 2
    assert [doc["result"][k]["values"] for k in ("a,a", "a,b", "b,b")] == [0.0, 4.0, 2.0]


# -- det (compute_jacobian(det=True), jacobian --det) -------------------------------------------


def test_det_of_polar_is_r():
    doc = cli_json("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--det", "--symbolic")
    assert doc["det"] == pytest.approx(2.0, rel=1e-15)
    assert doc["det_symbolic"] == "r"
    # spherical coordinates: det = r² sin(θ)
    r, th, ph = 1.5, 0.7, 0.3
    doc = cli_json(
        "jacobian", "[r*sin(th)*cos(ph), r*sin(th)*sin(ph), r*cos(th)]",
        "-i", f"r={r}", "-i", f"th={th}", "-i", f"ph={ph}", "--det",
    )
    assert doc["det"] == pytest.approx(r**2 * math.sin(th), rel=1e-12)


def test_det_needs_square():
    result = cli("jacobian", "[x*y, x+y, x-y]", "-i", "x=1", "-i", "y=2", "--det")
    assert result.exit_code == 1 and "square" in result.stderr and result.stdout == ""


def test_structured_accumulation_evaluates_the_formula_in_its_own_single_walk(monkeypatch) -> None:
    """The structured method computes values and Jacobians in one walk of the tree; it never
    calls the compiled function, so the formula is still evaluated once."""
    from jacli import compile as compile_module

    calls = []
    real = compile_module.compile_expression

    def counting(text):
        compiled = real(text)
        import dataclasses

        def counted(*args):
            calls.append(text)
            return compiled.function(*args)

        return dataclasses.replace(compiled, function=counted, checked=counted)

    monkeypatch.setattr(compile_module, "compile_expression", counting)
    # (40 outputs: more than a small problem's SMALL_OUTPUT, which the row loop computes)
    result = api.compute_jacobian("tanh(A @ x)", {"A": "randn:40x3", "x": "randn:3"}, wrt=["x"])
    assert result.method == "structured" and calls == []


def test_structured_asked_for_with_a_structured_layout_says_what_fits() -> None:
    with pytest.raises(ShapeError, match="`method` structured builds a dense Jacobian; ask for `layout` dense"):
        api.compute_jacobian("tanh(A @ x)", {"A": "randn:3x3", "x": "randn:3"}, wrt=["x"], method="structured",
                             layout="sparse")


# -- the classic matrix (issue 11, item 1) --------------------------------------------------------


def _flat_reference(function, inputs: dict, wrt: list[str]):
    """torch.func.jacrev of the function of all ``wrt`` inputs flattened and concatenated: the
    classic matrix computed independently of jacli's blocks."""
    sizes = [inputs[name].numel() for name in wrt]

    def flat_function(flat):
        pieces = dict(inputs)
        for name, piece in zip(wrt, torch.split(flat, sizes)):
            pieces[name] = piece.reshape(inputs[name].shape)
        return function(**pieces).reshape(-1)

    return torch.func.jacrev(flat_function)(torch.cat([inputs[name].reshape(-1) for name in wrt]))


def test_matrix_of_several_non_scalar_inputs_equals_jacrev_of_the_flattened_function() -> None:
    inputs = {"A": random((2, 3), seed=1), "x": random((3,), seed=2), "s": torch.tensor(0.7, dtype=torch.float64)}
    reference = _flat_reference(lambda A, x, s: torch.tanh(A @ x) * s + x[0] * A[:, 1], inputs, ["A", "x", "s"])
    result = api.compute_jacobian("tanh(A @ x) * s + x[0] * A[:, 1]", inputs, matrix=True)
    assert result.as_matrix
    matrix = result.matrix()
    assert matrix.shape == (2, 10) and reference.shape == (2, 10)
    torch.testing.assert_close(matrix.to_dense(), reference, rtol=1e-12, atol=1e-14)
    assert list(matrix.columns)[:3] == ["A[0,0]", "A[0,1]", "A[0,2]"] and list(matrix.columns)[-1] == "s"
    assert list(matrix.rows) == ["y[0]", "y[1]"]
    # the API returns the same tensor; wrt picks and orders the columns
    torch.testing.assert_close(api.jacobian("tanh(A @ x) * s + x[0] * A[:, 1]", inputs, matrix=True), reference)
    swapped = api.jacobian("tanh(A @ x) * s + x[0] * A[:, 1]", inputs, wrt=["s", "x"], matrix=True)
    torch.testing.assert_close(swapped, torch.cat([reference[:, 9:], reference[:, 6:9]], dim=1))


def test_polar_matrix_equals_sympys_exact_jacobian() -> None:
    r, t = sp.symbols("r t")
    exact = sp.Matrix([r * sp.cos(t), r * sp.sin(t)]).jacobian([r, t]).subs({r: 2, t: sp.Rational(1, 2)})
    reference = torch.tensor(np.array(exact.evalf(30).tolist(), dtype=float))
    result = api.compute_jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5})
    assert result.as_matrix  # every input is a scalar: the matrix is the default
    torch.testing.assert_close(result.matrix().to_dense(), reference, rtol=1e-15, atol=1e-15)
    assert list(result.matrix().columns) == ["r", "t"]


def test_matrix_is_the_default_only_for_scalar_inputs() -> None:
    assert not api.compute_jacobian("x**2", {"x": [1.0, 2.0]}).as_matrix
    assert api.compute_jacobian("x**2", {"x": [1.0, 2.0]}, matrix=True).as_matrix
    assert not api.compute_jacobian("[r, t]", {"r": 1.0, "t": 2.0}, matrix=False).as_matrix
    assert api.compute_hessian("a*b**2", {"a": 1.0, "b": 2.0}).as_matrix
    assert not api.compute_hessian("sum(x**3)", {"x": [1.0, 2.0]}).as_matrix


@pytest.mark.parametrize("layout", ["diagonal", "sparse"])
def test_matrix_from_a_structured_layout_is_sparse_and_exact(layout: str) -> None:
    # (x+1)**2 at x = 1, 2, 3: the diagonal 2(x+1) = 4, 6, 8, by hand
    matrix = api.jacobian("(x+1)**2", {"x": [1.0, 2.0, 3.0]}, layout=layout, matrix=True)
    assert matrix.layout == torch.sparse_coo and matrix.shape == (3, 3)
    assert matrix.to_dense().tolist() == [[4.0, 0, 0], [0, 6.0, 0], [0, 0, 8.0]]


def test_hessian_matrix_equals_torch_func_hessian_of_the_flattened_function() -> None:
    inputs = {"x": random((3,), seed=4), "a": torch.tensor(1.5, dtype=torch.float64)}
    sizes = [3, 1]

    def flat_function(flat):
        x, a = torch.split(flat, sizes)
        return torch.sum(x**3) * a[0] + a[0] ** 2 * x[0] * x[2]

    reference = torch.func.hessian(flat_function)(torch.cat([inputs["x"], inputs["a"].reshape(1)]))
    matrix = api.hessian("sum(x**3)*a + a**2*x[0]*x[2]", inputs, matrix=True)
    torch.testing.assert_close(matrix, reference, rtol=1e-12, atol=1e-14)
    labels = api.compute_hessian("sum(x**3)*a + a**2*x[0]*x[2]", inputs).matrix()
    assert list(labels.rows) == list(labels.columns) == ["x[0]", "x[1]", "x[2]", "a"]


def test_the_plan_sizes_the_matrix_of_several_inputs() -> None:
    # x, y of 1000: the Jacobian is 1000 x 2000 = 2e6 numbers, 16 MB; as one matrix beside its
    # blocks, 32 MB. A 24 MB budget holds the blocks but not both.
    inputs = {"x": "ones:1000", "y": "ones:1000"}
    budget = 24 * 10**6
    api.compute_jacobian("x*y + x", inputs, max_memory=budget, layout="dense", method="reverse")
    with pytest.raises(ResourceError, match="twice, as blocks and as one matrix"):
        api.compute_jacobian("x*y + x", inputs, max_memory=budget, layout="dense", method="reverse", matrix=True)
    # one input: its matrix is a view of its block, so the same budget holds it
    api.compute_jacobian("x*y + x", inputs, wrt=["x"], max_memory=budget, layout="dense", matrix=True)
