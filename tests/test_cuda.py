"""The core commands on a CUDA GPU give the CPU's numbers. Skipped where torch finds no GPU."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import cli_runner

import jacli
from jacli.cli import app

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

CASES = [
    ("(x+1)**2", {"x": "eye:5"}),
    ("[r*cos(t), r*sin(t)]", {"r": "2", "t": "0.5"}),
    ("softmax(x) * sum(sin(x))", {"x": "randn:64"}),
    ("a @ b", {"a": "randn:8x16", "b": "randn:16x4"}),
    ("3*a + 2*b**2 + log(c)", {"a": "1,2,3", "b": "3,4,5", "c": "6,7,8"}),
]


@pytest.mark.parametrize("expr,inputs", CASES)
@pytest.mark.parametrize("method", ["reverse", "forward", "rows"])
def test_jacobian_on_cuda_equals_cpu(expr, inputs, method):
    cpu = jacli.jacobian(expr, inputs, method=method)
    gpu = jacli.jacobian(expr, inputs, method=method, device="cuda")
    for name in cpu:
        assert gpu[name].device.type == "cuda"
        torch.testing.assert_close(gpu[name].cpu(), cpu[name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("expr,inputs", CASES)
def test_vjp_grad_hessian_on_cuda_equal_cpu(expr, inputs):
    for method in ("grad", "backward"):
        cpu = jacli.vjp(expr, inputs, "ones", method=method)
        gpu = jacli.vjp(expr, inputs, "ones", method=method, device="cuda")
        for name in cpu:
            torch.testing.assert_close(gpu[name].cpu(), cpu[name], rtol=1e-12, atol=1e-12)
    scalar = f"sum({expr})"
    torch.testing.assert_close(
        {k: v.cpu() for k, v in jacli.hessian(scalar, inputs, device="cuda").items()},
        jacli.hessian(scalar, inputs), rtol=1e-12, atol=1e-12,
    )


def test_float32_on_cuda_and_cli():
    result = cli_runner().invoke(
        app, ["vjp", "relu(x)", "-i", "arange:-8,8,0.1", "--v", "ones", "--device", "cuda",
              "--dtype", "float32", "-f", "json"],
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["device"].startswith("cuda") and doc["dtype"] == "float32"
    x = torch.arange(-8, 8, 0.1, dtype=torch.float32)
    assert doc["result"]["x"]["values"] == (x > 0).float().tolist()


def test_missing_gpu_index_is_an_error():
    index = torch.cuda.device_count()
    result = cli_runner().invoke(app, ["jacobian", "x", "-i", "1", "--device", f"cuda:{index}"])
    assert result.exit_code == 1 and "no such GPU" in result.stderr
