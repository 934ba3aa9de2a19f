"""Exact (symbolic) derivatives, jacli.engine.exact, through method="symbolic" and --symbolic:
equal to autograd on every function jacli knows, shown as formulas, real where the function is
real, refused when too large or when jacli cannot evaluate the exact form.
"""

from __future__ import annotations

import pytest
import torch
from helpers import cli, cli_json, random

import jacli
from jacli.errors import ResourceError


SYMBOLIC_CASES = [
    ("sin(x)*cos(x) + tan(x/3) + exp(-x) + log(x + 3) + sqrt(x + 4)", (4,)),
    ("asin(x/2) + acos(x/3) + atan(x) + sinh(x) + cosh(x) + tanh(x)", (3,)),
    ("asinh(x) + acosh(x + 3) + atanh(x/2) + erf(x) + sigmoid(x) + softplus(x)", (3,)),
    ("abs(x) + sign(x) + relu(x) + min(x, 0.5) + max(x, -0.5) + log(x + 5, 2)", (4,)),
    ("sum(x) * mean(x) + prod(x) + norm(x) + logsumexp(x)", (3,)),
    ("softmax(x) + softmax(reshape(x, 3, 2), 0)[0, 0] + dot(x, x)", (6,)),
    ("transpose(reshape(x, 2, 3)) @ reshape(x, 2, 3)", (6,)),
    ("[x[0]*x[1], x[1:]**2, 3]", (2,)),
    ("x - x + x ^ 2 - e ** x * pi", (2, 2)),
]


@pytest.mark.parametrize("expr,shape", SYMBOLIC_CASES)
def test_symbolic_method_equals_autograd(expr, shape):
    x = random(shape, 7) * 0.8
    exact = jacli.jacobian(expr, {"x": x}, method="symbolic")["x"]
    torch.testing.assert_close(exact, jacli.jacobian(expr, {"x": x}, method="reverse")["x"], rtol=1e-10, atol=1e-12)


def test_symbolic_display_elementwise_and_polar():
    result = cli("jacobian", "(x+1)**2", "-i", "eye:2", "--symbolic", "--format", "pretty")
    assert result.exit_code == 0
    assert "2⋅x + 2" in result.stdout
    doc = cli_json("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--symbolic")
    assert doc["symbolic"] == {"r": ["cos(t)", "sin(t)"], "t": ["-r*sin(t)", "r*cos(t)"]}
    pretty = cli("jacobian", "[r*cos(t), r*sin(t)]", "-i", "r=2", "-i", "t=0.5", "--symbolic", "-f", "pretty").stdout
    assert "-r⋅sin(t)" in pretty and "r⋅cos(t)" in pretty


def test_symbolic_too_large_is_refused():
    with pytest.raises(ResourceError, match="symbolic"):
        jacli.jacobian("x**2", {"x": "ones:1000"}, method="symbolic")


def test_exact_derivatives_of_jacli_functions_stay_real():
    """relu, sigmoid and softplus are real for real arguments, so SymPy's derivative of
    abs(sigmoid(x)) is sign(s)·s·(1 - s), not a formula in re() and im()."""
    x = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    s = torch.sigmoid(x)
    for text in ("sum(abs(sigmoid(x)))", "sum(abs(softplus(x)) + abs(relu(x)))"):
        exact = jacli.grad(text, {"x": x}, method="symbolic")["x"]
        torch.testing.assert_close(exact, jacli.grad(text, {"x": x})["x"], rtol=1e-13, atol=0)
    torch.testing.assert_close(jacli.grad("sum(abs(sigmoid(x)))", {"x": x}, method="symbolic")["x"], s * (1 - s))


def test_an_exact_form_jacli_cannot_evaluate_is_a_user_error_and_check_skips_it():
    # SymPy cannot prove asin(x) real (it is not, for |x| > 1): its derivative of abs(asin(x))
    # holds re and im (and atan2), and re and im have no torch side in jacli's table.
    with pytest.raises(jacli.ExpressionError, match=r"holds (re|im)\(\.\.\.\).*`method` reverse or forward"):
        jacli.grad("sum(abs(asin(x)))", {"x": [-0.5, 0.2]}, method="symbolic")
    report = jacli.check("abs(asin(x))", {"x": [-0.5, 0.2]})
    assert report.ok and report.reference == "reverse"
    symbolic = next(m for m in report.methods if m.method == "symbolic")
    assert symbolic.skipped and ("re(" in symbolic.note or "im(" in symbolic.note)


LARGE = torch.tensor([1000.0, 1001.5, 998.0, 1000.7], dtype=torch.float64)


@pytest.mark.parametrize("expr,shape", [
    ("softmax(x)", (4,)), ("logsumexp(x)", (4,)), ("softmax(reshape(x, 2, 2), 1)", (4,)),
    ("logsumexp(reshape(x, 2, 2), 0)", (4,)), ("softmax(x)[1] * logsumexp(x)", (4,)),
])
def test_symbolic_softmax_and_logsumexp_do_not_overflow_at_large_inputs(expr, shape):
    # The exact form exp(x[i]) / sum(exp(x)) overflows at x = 1000; the stable form, shifted by a
    # maximum held constant, is the same function and must give autograd's finite numbers.
    x = LARGE.reshape(shape)
    exact = jacli.jacobian(expr, {"x": x}, method="symbolic")["x"]
    assert torch.isfinite(exact).all()
    torch.testing.assert_close(exact, jacli.jacobian(expr, {"x": x}, method="reverse")["x"], rtol=1e-10, atol=1e-14)


def test_symbolic_hessian_of_logsumexp_at_large_inputs_equals_the_closed_form():
    # The Hessian of logsumexp is diag(p) - p p^T with p = softmax(x), worked out by hand.
    hessian = jacli.hessian("logsumexp(x)", {"x": LARGE}, method="symbolic")[("x", "x")]
    p = torch.softmax(LARGE, 0)
    torch.testing.assert_close(hessian, torch.diag(p) - torch.outer(p, p), rtol=1e-10, atol=1e-14)


def test_exact_forms_shown_to_users_are_the_textbook_ones():
    result = jacli.compute_grad("logsumexp(x)", {"x": LARGE[:2]}, symbolic=True)
    shown = [str(entry) for entry in result.symbolic["x"].reshape(-1)]
    assert shown == ["exp(x[0])/(exp(x[0]) + exp(x[1]))", "exp(x[1])/(exp(x[0]) + exp(x[1]))"]
    assert "held_max" not in str(jacli.compute_jacobian("softmax(x)", {"x": LARGE}, symbolic=True).symbolic)


def test_check_confirms_softmax_at_large_inputs_instead_of_calling_it_singular():
    result = cli("check", "softmax(x)", "-i", "1000,1001.5,998,1000.7")
    assert result.exit_code == 0, result.stdout
    assert "singular" not in result.stdout and "all agree" in result.stdout


def test_the_deadline_comes_again_when_its_first_alarm_is_swallowed():
    # Python ignores an exception raised inside a gc callback, so the first alarm can be lost
    # while SymPy runs on; the alarm repeats until one lands. Here the first one is swallowed.
    import time

    from jacli.engine import exact

    swallowed = 0
    give_up = time.monotonic() + 10  # a safety net only: the repeated alarm ends the loop
    with pytest.raises(ResourceError, match="longer than its limit of 0.1 s"):
        with exact.deadline(0.1):
            while time.monotonic() < give_up:
                try:
                    sum(range(1000))
                except exact._Expired:
                    swallowed += 1
                    if swallowed > 1:
                        raise
    assert swallowed == 2
