"""jacli.check (jacli.verify): every method against a reference, with kinks excused only where a
finite-difference step crosses one, singular points named, and the CLI's exit codes and notes.

References are hand-computed blocks (``_hand_reference``) or SymPy's exact derivative; a wrong
reference must make the comparison fail.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch
from helpers import cli

import jacli
from jacli.errors import InputError

F64 = torch.float64


def test_check_agrees_on_smooth_expressions():
    report = jacli.check("softmax(x) * sin(x) + x @ x", {"x": "randn:4"})
    assert report.ok and report.reference == "symbolic"
    assert {m.method for m in report.methods} == {"reverse", "forward", "rows", "compressed", "structured", "finite differences"}
    assert all(m.max_abs < 1e-8 for m in report.methods if not m.skipped)  # structured skips softmax


def test_check_fails_with_a_wrong_reference():
    def wrong(f, args, wrt):
        return [torch.diag(2 * args[0]) * (1 + 1e-2)]

    report = jacli.check("x**2", {"x": "1,2,3"}, reference=wrong)
    assert not report.ok
    assert all(not m.ok for m in report.methods)
    assert all(m.max_rel == pytest.approx(1e-2 / 1.01, rel=1e-6) for m in report.methods)


def test_check_cli_exit_codes_and_kinks():
    ok = cli("check", "sin(x)*x", "-i", "randn:3", "--format", "json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True
    kink = cli("check", "relu(x)", "-i", "-1,0,1", "--format", "json")
    doc = json.loads(kink.stdout)
    assert kink.exit_code == 0 and doc["kinks"] and "[1]" in doc["kinks"][0]
    fd = next(m for m in doc["methods"] if m["method"] == "finite differences")
    assert fd["max_abs"] == pytest.approx(0.5) and "kink" in fd["note"]
    # no tolerance at all: rounding differences between methods must make check fail, exit 3
    strict = cli("check", "softmax(x)", "-i", "0.3,1.7,-0.2", "--rtol", "0", "--atol", "0", "--format", "json")
    assert strict.exit_code == 3 and json.loads(strict.stdout)["ok"] is False


def test_check_skips_symbolic_when_too_large_and_uses_reverse():
    report = jacli.check("x**2", {"x": "randn:500"})
    assert report.reference == "reverse"
    symbolic = next(m for m in report.methods if m.method == "symbolic")
    assert symbolic.skipped and "400" in symbolic.note


def _method(report, name):
    return next(m for m in report.methods if m.method == name)


def _hand_reference(*blocks):
    """A reference that returns these hand-computed blocks, whatever the expression."""
    return lambda f, args, wrt: [torch.tensor(b, dtype=F64) for b in blocks]


def test_check_kink_excuses_only_the_columns_whose_step_crosses_it():
    # 1/x + relu(y) at x = 0.5, y = 0: d/dx = -1/x² = -4, d/dy = relu'(0) = 0 (torch's convention);
    # central differences at y = 0 straddle the kink and give 1/2.
    right = jacli.check("1/x + relu(y)", {"x": 0.5, "y": 0.0}, reference=_hand_reference(-4.0, 0.0))
    fd = _method(right, "finite differences")
    assert right.ok and fd.ok and fd.excused == ["y"] and "relu(y)" in fd.note
    assert fd.max_abs == pytest.approx(0.5, abs=1e-9) and fd.max_rel == math.inf  # |1/2 - 0| / 0
    # wrong by 1% in the x column, away from the kink: every method, finite differences too, fails
    wrong_x = jacli.check("1/x + relu(y)", {"x": 0.5, "y": 0.0}, reference=_hand_reference(-4.04, 0.0))
    fd = _method(wrong_x, "finite differences")
    assert not wrong_x.ok and not fd.ok and fd.excused == ["y"] and "beyond tolerance at 1 entry" in fd.note
    assert all(not m.ok for m in wrong_x.methods if not m.skipped)  # structured skips scalars
    # wrong in the kink column: finite differences are excused there, the exact methods are not
    wrong_y = jacli.check("1/x + relu(y)", {"x": 0.5, "y": 0.0}, reference=_hand_reference(-4.0, 0.25))
    assert not wrong_y.ok and _method(wrong_y, "finite differences").ok
    assert not any(_method(wrong_y, m).ok for m in ("reverse", "forward", "rows", "symbolic"))


def test_check_kink_columns_are_those_of_the_elements_on_it():
    # relu(x) + x**2 at x = [0, 2]: the Jacobian is diag(relu'(x) + 2x) = diag(0, 5); finite
    # differences give 1/2 at [0, 0]. Only x[0]'s column is excused; a wrong x[1] column fails.
    report = jacli.check("relu(x) + x**2", {"x": "0,2"}, reference=_hand_reference([[0.0, 0.0], [0.0, 5.0]]))
    fd = _method(report, "finite differences")
    assert report.ok and fd.excused == ["x[0]"] and fd.max_abs == pytest.approx(0.5, abs=1e-9)
    report = jacli.check("relu(x) + x**2", {"x": "0,2"}, reference=_hand_reference([[0.0, 0.0], [0.0, 5.5]]))
    fd = _method(report, "finite differences")
    assert not fd.ok and fd.excused == ["x[0]"] and "beyond tolerance at 1 entry" in fd.note
    # a step that crosses a kink nearby (relu(x - 1e-5) at 0, step 7.4e-4) is excused the same way
    near = jacli.check("relu(x - 1e-5)", {"x": 0.0})
    fd = _method(near, "finite differences")
    assert near.ok and near.kinks == [] and fd.excused == ["x"] and fd.max_abs > 0.4


def test_check_max_rel_is_over_the_same_entries_as_max_abs():
    # the engines give diag(2x) = [[2, 0], [0, 4]] for x**2 at [1, 2]; hand-made references:
    report = jacli.check("x**2", {"x": "1,2"}, reference=_hand_reference([[2.0, 0.5], [0.0, 4.0]]))
    assert all(m.max_abs == pytest.approx(0.5, abs=1e-9) and m.max_rel == pytest.approx(1.0) for m in report.methods)
    report = jacli.check("x**2", {"x": "1,2"}, reference=_hand_reference([[0.0, 0.0], [0.0, 4.0]]))
    assert all(m.max_abs == pytest.approx(2.0, abs=1e-9) and m.max_rel == math.inf for m in report.methods)
    for m in jacli.check("relu(x)*x + sin(x)", {"x": "-1,0,2"}).methods:
        assert (m.max_abs == 0) == (m.max_rel == 0)


def test_check_singular_point_is_named_and_fails():
    # sqrt at 0: the exact derivative is inf at [0, 0]; reverse mode gives 0·inf = nan at [1, 0],
    # forward mode at [0, 1]; finite differences evaluate sqrt(-h) = nan.
    report = jacli.check("sqrt(x)", {"x": "0,1"})
    assert not report.ok and report.verdict == "singular"
    assert report.singular == ["the reference (symbolic) is inf at dy/dx[0, 0]"]
    assert _method(report, "reverse").nonfinite == ["nan at dy/dx[1, 0]", "inf at dy/dx[0, 0]"]
    assert _method(report, "forward").nonfinite == ["nan at dy/dx[0, 1]", "inf at dy/dx[0, 0]"]
    assert _method(report, "finite differences").nonfinite == ["nan at dy/dx[0, 0]"]
    for m in report.methods:  # the finite entries [0, 1] = 0 and [1, 1] = 1/2 agree exactly
        assert not m.ok and m.max_abs < 1e-9 and m.max_rel < 1e-9
    # norm at the origin: the exact derivative x/|x| is 0/0; autograd says 0 (torch's convention)
    report = jacli.check("norm(x)", {"x": "0,0"})
    assert report.singular == ["the reference (symbolic) is nan at dy/dx[0], dy/dx[1]"]
    ran = [m for m in report.methods if not m.skipped]
    assert all(not m.ok and math.isnan(m.max_abs) and math.isnan(m.max_rel) for m in ran)
    assert all("where the reference is not finite" in m.note for m in ran)


def test_check_cli_singular_point():
    result = cli("check", "sqrt(x)", "-i", "0,1")
    assert result.exit_code == 3 and result.stderr == ""  # not confirmed
    lines = result.stdout.splitlines()
    assert "# singular: the reference (symbolic) is inf at dy/dx[0, 0]" in lines
    assert "# reverse: not finite: nan at dy/dx[1, 0]; inf at dy/dx[0, 0]; " \
        "not confirmed at the 1 entry where the reference is not finite" in lines
    assert lines[-1].startswith("# NOT CONFIRMED") and "singularity" in lines[-1]
    doc = json.loads(cli("check", "norm(x)", "-i", "0,0", "--format", "json").stdout)
    assert doc["ok"] is False and doc["verdict"] == "singular" and doc["singular"]
    assert all(m["max_abs"] == "nan" and m["max_rel"] == "nan" for m in doc["methods"])
    pretty = cli("check", "norm(x)", "-i", "0,0", "--format", "pretty")
    assert pretty.exit_code == 3 and "singular: the reference" in pretty.stdout and "inf" not in pretty.stdout


def test_check_finite_differences_follow_a_small_input():
    # 1/x at 1e-7: d/dx = -1e14; a step not scaled to x jumped over the pole (a false alarm)
    result = cli("check", "1/x", "-i", "1e-7", "--format", "json")
    doc = json.loads(result.stdout)
    fd = next(m for m in doc["methods"] if m["method"] == "finite differences")
    assert result.exit_code == 0 and fd["ok"] and fd["max_rel"] < 1e-9


@pytest.mark.parametrize("option,value", [("--rtol", "-1"), ("--atol", "nan"), ("--atol", "inf"), ("--rtol", "-0.5")])
def test_check_refuses_bad_tolerances(option, value):
    result = cli("check", "x**2", "-i", "1", option, value)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {option} {value} is not a tolerance") and "finite number >= 0" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(InputError, match="`rtol` -1 is not a tolerance"):
        jacli.check("x**2", {"x": 1.0}, rtol=-1)


def test_check_plain_carries_the_notes():
    result = cli("check", "relu(x)", "-i", "-1,0,1", "--format", "plain")
    lines = result.stdout.splitlines()
    assert lines[lines.index("finite_differences 0.5 inf ok") + 1].startswith(
        "# finite_differences: differs at a kink, excused in the columns of x[1]"
    )
    result = cli("check", "x**2", "-i", "randn:401", "--format", "plain")
    lines = result.stdout.splitlines()
    assert lines[lines.index("symbolic nan nan skipped") + 1].startswith(
        "# symbolic: skipped: the symbolic method works entry by entry and handles at most 400"
    )
    assert np.loadtxt(io.StringIO(result.stdout.replace("skipped", "nan").replace(" ok", " 1")),
                      usecols=(1, 2), converters=None).shape == (6, 2)  # reverse, forward, rows, compressed, structured, fd




def test_check_names_the_output_f_when_an_input_is_called_y():
    # atan2's derivative at the origin is 0/0: NaN in both entries, which check names as df/d...
    result = cli("check", "atan2(y, x)", "-i", "y=0", "-i", "x=0")
    assert result.exit_code == 3
    assert "nan at df/dy, df/dx" in result.stdout and "dy/dy" not in result.stdout


def test_where_on_a_comparison_has_its_kink_where_the_sides_are_equal():
    # where(x > 0, x**2, -x): torch takes -x where x <= 0, so J = diag(2x) for x > 0, -1 else.
    # The piece changes at x = 0 only; at -1 and -2 the condition is 0 but nothing changes there.
    away = jacli.check("where(x > 0, x**2, -x)", {"x": "-1,-2,3,0.5"})
    assert away.ok and away.kinks == []
    fd = _method(away, "finite differences")
    assert fd.ok and fd.excused == [] and fd.note == ""
    on = jacli.check("where(x > 0, x**2, -x)", {"x": "0,1"}, reference=_hand_reference([[-1.0, 0.0], [0.0, 2.0]]))
    assert on.ok and on.kinks == ["(x > 0) at [0]: its two sides are equal"]
    assert _method(on, "finite differences").excused == ["x[0]"]
    # the excused column is the kink's only: a reference wrong in x[1]'s column fails there too
    wrong = jacli.check("where(x > 0, x**2, -x)", {"x": "0,1"}, reference=_hand_reference([[-1.0, 0.0], [0.0, 2.1]]))
    fd = _method(wrong, "finite differences")
    assert not wrong.ok and not fd.ok and fd.excused == ["x[0]"] and "beyond tolerance at 1 entry" in fd.note
    # a condition made of steps ((x > 0)*(y < 1)) changes only at the steps' own kinks
    both = jacli.check("where((x > 0)*(y < 1), x*y, y)", {"x": "-1,2", "y": "3,1"})
    assert both.kinks == ["(y < 1) at [1]: its two sides are equal"]
    # a condition that is no step changes piece where it crosses 0, and only there
    smooth = jacli.check("where(x - 1, x**2, -x)", {"x": "1,-1"})
    assert smooth.kinks == ["where(x - 1, x**2, -x) at [0]: its condition is 0"]
    assert _method(smooth, "finite differences").excused == ["x[0]"]


def test_kinks_of_comparisons_clamp_max_min_floor_and_round_are_named_where_they_are():
    # by hand: ties of max at x = 1; clamp at its bounds 0 and 1; floor and ceil at every integer,
    # 1 and 2 included (sin(pi*1) is 1.2e-16 in floating point, not 0); round at the halves
    assert jacli.check("max(x, 1) + min(x, y)", {"x": "1,2", "y": "3,2"}).kinks == [
        "max(1, x) at [0]: its two arguments are equal", "min(x, y) at [1]: its two arguments are equal"]
    assert jacli.check("clamp(x, 0, 1)", {"x": "0,1,0.5,2"}).kinks == [
        "clamp(x, 0, 1) at [0]: its first argument equals its lower bound",
        "clamp(x, 0, 1) at [1]: its first argument equals its upper bound"]
    assert jacli.check("floor(x)*x", {"x": "0,1,2,0.5,-3"}).kinks == [
        "floor(x) at [0], [1], [2], [4]: its argument is an integer"]
    assert jacli.check("ceil(x)*x", {"x": "3,0.25"}).kinks == ["ceil(x) at [0]: its argument is an integer"]
    assert jacli.check("round(x)*x", {"x": "0.5,1.5,1,-2.5"}).kinks == [
        "round(x) at [0], [1], [3]: its argument is halfway between two integers"]
    assert jacli.check("(x >= 1)*x", {"x": "1,2"}).kinks == ["(x >= 1) at [0]: its two sides are equal"]


def test_a_step_across_a_jump_is_excused_at_the_kink_not_left_as_unconfirmed():
    # floor(x)*x: J = diag(floor(x)) (floor' = 0, torch's convention); at x = 1 the differences
    # straddle the jump from 0 to 1 and give about 1/h. That column is the kink's; x = 0.5 is not.
    report = jacli.check("floor(x)*x", {"x": "1,0.5"}, reference=_hand_reference([[1.0, 0.0], [0.0, 0.0]]))
    fd = _method(report, "finite differences")
    assert report.ok and fd.excused == ["x[0]"] and fd.max_abs > 100
    assert "hardly confirms" not in fd.note and "crosses the kink of floor(x)" in fd.note
    wrong = jacli.check("floor(x)*x", {"x": "1,0.5"}, reference=_hand_reference([[1.0, 0.0], [0.0, 0.1]]))
    fd = _method(wrong, "finite differences")
    assert not fd.ok and fd.excused == ["x[0]"] and "beyond tolerance at 1 entry" in fd.note
