"""--repeat: y.backward(v) called again and again, x.grad read after each call.

The references: PyTorch's autograd tutorial's numbers for (x+1)**2 at eye with v = ones (worked
by hand: x.grad = v·2(x+1), so 4 on the diagonal and 2 elsewhere, doubled by a second call), and
k times a single VJP from torch.autograd.grad (jacli's grad method) for other formulas.
"""

from __future__ import annotations

import json

import torch
from helpers import cli_runner

from jacli import api
from jacli.accumulate import compute_accumulation
from jacli.cli import app


def _tutorial(diagonal: float, elsewhere: float, n: int = 5) -> torch.Tensor:
    return torch.full((n, n), elsewhere, dtype=torch.float64) + (diagonal - elsewhere) * torch.eye(n, dtype=torch.float64)


def test_the_tutorials_numbers() -> None:
    result = compute_accumulation("(x+1)**2", {"x": "eye:5"}, "ones", repeat=3, zero_grad_after=2)
    grads = [call.grads["x"] for call in result.calls]
    assert torch.equal(grads[0], _tutorial(4, 2))  # first call
    assert torch.equal(grads[1], _tutorial(8, 4))  # second call: added to the first
    assert torch.equal(grads[2], _tutorial(4, 2))  # after x.grad.zero_()
    assert result.zeroed == [False, True, False]
    assert result.since_zeroing() == [1, 2, 1]


def test_json_is_a_list_of_results_with_the_tutorials_numbers() -> None:
    run = cli_runner().invoke(app, ["vjp", "(x+1)**2", "-i", "eye:5", "--v", "ones", "--method", "backward",
                                    "--repeat", "3", "--zero-grad-after", "2", "-f", "json"])
    assert run.exit_code == 0, run.stderr
    document = json.loads(run.stdout)
    assert isinstance(document, list) and [entry["call"] for entry in document] == [1, 2, 3]
    expected = [_tutorial(4, 2), _tutorial(8, 4), _tutorial(4, 2)]
    for entry, grad in zip(document, expected):
        assert entry["method"] == "backward"
        assert torch.equal(torch.tensor(entry["result"]["x"]["values"], dtype=torch.float64), grad)
    assert [entry["zeroed_after"] for entry in document] == [False, True, False]


def test_each_call_adds_one_vjp_from_autograd_grad() -> None:
    inputs = {"a": "randn:3", "b": "randn:3"}
    single = api.compute_vjp("sin(a)*b + a**2", inputs, "randn", seed=4, method="grad")
    result = compute_accumulation("sin(a)*b + a**2", inputs, "randn", repeat=4, seed=4)
    for k, call in enumerate(result.calls, start=1):
        for name in ("a", "b"):
            torch.testing.assert_close(call.grads[name], k * single.grads[name], rtol=1e-15, atol=0)


def test_an_input_held_constant_gets_no_grad() -> None:
    result = compute_accumulation("a*b", {"a": "1,2", "b": "3,4"}, "ones", repeat=2, wrt=["a"])
    assert list(result.calls[1].grads) == ["a"]
    assert result.calls[1].grads["a"].tolist() == [6.0, 8.0]  # 2 calls of b


def test_plain_says_what_each_call_did() -> None:
    run = cli_runner().invoke(app, ["vjp", "(x+1)**2", "-i", "eye:2", "--v", "ones", "--repeat", "3",
                                    "--zero-grad-after", "2", "-f", "plain"])
    assert run.exit_code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("# call 1: y.backward(v)") and lines[2:4] == ["4.0 2.0", "2.0 4.0"]
    assert "# then x.grad.zero_()" in lines
    assert lines[lines.index("# then x.grad.zero_()") - 2:lines.index("# then x.grad.zero_()")] == ["8.0 4.0", "4.0 8.0"]


def test_errors() -> None:
    runner = cli_runner()
    base = ["vjp", "(x+1)**2", "-i", "eye:2", "--v", "ones"]
    alone = runner.invoke(app, [*base, "--zero-grad-after", "2"])
    assert alone.exit_code == 2 and alone.stdout == ""
    assert alone.stderr.startswith("Error: --zero-grad-after") and "--repeat" in alone.stderr
    grad = runner.invoke(app, [*base, "--repeat", "2", "--method", "grad"])
    assert grad.exit_code == 2 and grad.stdout == ""
    assert "--method backward" in grad.stderr and "Traceback" not in grad.stderr
    zero = runner.invoke(app, [*base, "--repeat", "0"])
    assert zero.exit_code == 2 and zero.stderr.startswith("Error: --repeat")
    csv = runner.invoke(app, [*base, "--repeat", "2", "-f", "csv"])
    assert csv.exit_code == 2 and csv.stdout == "" and "pretty, plain or json" in csv.stderr
