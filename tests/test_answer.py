"""--answer: a learner's Jacobian checked entry by entry.

The reference for "right" and "wrong" is SymPy's exact derivative (jacli's symbolic method) and
hand-worked numbers: d(x**2*y)/dx = 2xy = 4, d/dy = x**2 = 1 at x = 1, y = 2.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import cli_runner

from jacli import api
from jacli.answer import ANSWER_RTOL, check_answer
from jacli.cli import app
from jacli.errors import InputError, ShapeError

POINT = ["-i", "x=1", "-i", "y=2"]


def _run(*argv: str):
    return cli_runner().invoke(app, ["jacobian", "x**2*y", *POINT, *argv], env={"JACLI_NO_HISTORY": "1"})


@pytest.mark.parametrize("answer", ["[[4, 1]]", "[4, 1]", "4,1", "[2*x*y, x**2]", "[[2*x*y, x**2]]"])
def test_a_right_answer_exits_0(answer: str) -> None:
    run = _run("--answer", answer, "-f", "json")
    assert run.exit_code == 0, run.stderr
    document = json.loads(run.stdout)
    assert document["ok"] is True and document["wrong"] == []
    assert document["correct"]["values"] == [[4.0, 1.0]]  # worked by hand


def test_a_wrong_answer_names_each_wrong_entry_and_exits_3() -> None:
    run = _run("--answer", "[[4, 2]]", "-f", "json")
    assert run.exit_code == 3
    document = json.loads(run.stdout)
    assert document["ok"] is False
    assert document["wrong"] == [{"entry": "∂f/∂y", "row": 0, "column": 1, "yours": 2.0, "correct": 1.0}]
    plain = _run("--answer", "[[4, 2]]", "-f", "plain")
    assert plain.exit_code == 3
    assert plain.stdout.splitlines()[-1] == "∂f/∂y 0 1 2.0 1.0"


def test_wrong_entries_against_sympys_exact_jacobian() -> None:
    """A formula answer with one slip (a sign), checked against the exact derivative."""
    expr, inputs = "[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}
    exact = api.compute_jacobian(expr, inputs, method="symbolic").matrix().to_dense()
    report = check_answer(api.compute_jacobian(expr, inputs), "[[cos(t), r*sin(t)], [sin(t), r*cos(t)]]")
    assert not report.ok
    assert [(w.row, w.column) for w in report.wrong] == [(0, 1)]  # ∂(r cos t)/∂t is −r sin t
    (wrong,) = report.wrong
    assert wrong.correct == pytest.approx(float(exact[0, 1]), rel=1e-15)
    assert wrong.yours == pytest.approx(-float(exact[0, 1]), rel=1e-15)
    assert wrong.derivative == "∂y[0]/∂t"
    fixed = check_answer(api.compute_jacobian(expr, inputs), "[[cos(t), -r*sin(t)], [sin(t), r*cos(t)]]")
    assert fixed.ok


def test_the_tolerance_takes_three_correct_digits() -> None:
    result = api.compute_jacobian("x/3", {"x": 1.0})
    assert check_answer(result, "0.333").ok  # 1/3 to three significant digits
    assert not check_answer(result, "0.33").ok
    assert check_answer(result, "0.33", rtol=0.02).ok
    assert ANSWER_RTOL == 5e-3


def test_block_shape_and_file_answers(tmp_path) -> None:
    result = api.compute_jacobian("(x+1)**2", {"x": "eye:2"}, layout="dense")
    block = 2 * (torch.eye(2, dtype=torch.float64) + 1)  # by hand: the diagonal of ∂y/∂x
    dense = torch.diag_embed(block.reshape(-1)).reshape(2, 2, 2, 2)
    assert check_answer(result, dense.tolist()).ok
    path = tmp_path / "J.npy"
    np.save(path, dense.reshape(4, 4).numpy())
    assert check_answer(result, f"@{path}").ok
    run = cli_runner().invoke(app, ["jacobian", "(x+1)**2", "-i", "eye:2", "--answer", f"@{path}"])
    assert run.exit_code == 0 and "Right: all 16 entries" in run.stdout


def test_malformed_and_misshapen_answers_are_errors() -> None:
    for answer, words in [("[1, 2, 3]", "has shape (3,), but the Jacobian is a 1×2 matrix"),
                          ("[2*x*z, 1]", "uses z, which is not an input"),
                          ("x**", "is neither numbers nor a formula"),
                          ("", "is empty")]:
        run = _run("--answer", answer)
        assert run.exit_code == 1, answer
        assert run.stdout == ""
        assert run.stderr.startswith("Error: --answer") and words in run.stderr and "Traceback" not in run.stderr
    with pytest.raises(ShapeError):
        check_answer(api.compute_jacobian("x**2*y", {"x": 1.0, "y": 2.0}), [[1.0], [2.0], [3.0]])
    with pytest.raises(InputError, match="untrusted mode reads no files"):
        check_answer(api.compute_jacobian("x*2", {"x": 1.0}, untrusted=True), "@J.npy")


def test_the_answer_is_never_executed_as_python(tmp_path) -> None:
    marker = tmp_path / "ran"
    run = _run("--answer", f"__import__('pathlib').Path({str(marker)!r}).touch()")
    assert run.exit_code == 1 and not marker.exists()


@pytest.mark.parametrize("answer", ["[6]", "6", "[[6]]", "2*x"])
def test_a_one_by_one_jacobian_takes_its_length_1_axes_left_out(answer: str) -> None:
    """d(x**2)/dx = 2x = 6 at x = 3, by hand: [6] leaves out one axis of length 1, 6 both."""
    run = cli_runner().invoke(app, ["jacobian", "x**2", "-i", "x=3", "--answer", answer, "-f", "plain"],
                              env={"JACLI_NO_HISTORY": "1"})
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("# Right: the 1 entry of your Jacobian agrees with jacli's")
    wrong = cli_runner().invoke(app, ["jacobian", "x**2", "-i", "x=3", "--answer", "[7]", "-f", "plain"],
                                env={"JACLI_NO_HISTORY": "1"})
    assert wrong.exit_code == 3
    assert wrong.stdout.splitlines()[0].startswith("# Not yet: the 1 entry is wrong")
    assert wrong.stdout.splitlines()[-1] == "∂y/∂x 0 0 7.0 6.0"
    # a 2×1 matrix ([x, 2x] by x): [1, 2] leaves out the columns' axis; [[1, 2]] is a 1×2, refused
    column = api.compute_jacobian("[x, 2*x]", {"x": 3.0})
    assert check_answer(column, "[1, 2]").ok and check_answer(column, "[[1], [2]]").ok
    with pytest.raises(ShapeError, match=r"has shape \(1, 2\), but the Jacobian is a 2×1 matrix"):
        check_answer(column, "[[1, 2]]")


def test_a_missing_answer_file_names_the_option(tmp_path) -> None:
    missing = tmp_path / "nope.npy"
    run = _run("--answer", f"@{missing}")
    assert run.exit_code == 1 and run.stdout == ""
    assert run.stderr == f"Error: --answer @{missing}: cannot read it (No such file or directory)\n"
    with pytest.raises(InputError, match=r"^`answer` @") as raised:
        check_answer(api.compute_jacobian("x**2*y", {"x": 1.0, "y": 2.0}), f"@{missing}")
    assert raised.value.param == "answer"
