"""Jacobian speed: jacli against its peers, side by side in one process.

For each case the same function is differentiated by
  * jacli (the library call: compiled expression, inputs from specs, budget check, forward pass),
    with each method;
  * torch.func.jacrev / jacfwd on the hand-written torch function;
  * the hand-written row loop (one torch.autograd.grad per output element);
  * JAX's jit(jacrev) / jit(jacfwd), where JAX is installed (compile time excluded).
It prints the median time of each and its ratio to torch.func.jacrev on the hand-written
function. Nothing here is asserted: the figures go into benchmarks/README.md.

    python benchmarks/bench_jacobian.py            # all cases
    python benchmarks/bench_jacobian.py --quick    # fewer repeats
"""

from __future__ import annotations

import argparse
import platform
from typing import Callable

import torch

import jacli
from jacli.compile import compile_expression

from common import median_time, row_loop


def cases(n: int) -> list[tuple[str, str, dict[str, torch.Tensor], Callable[..., torch.Tensor], Callable]]:
    """(name, jacli expression, inputs, the function in torch, (jax, jnp) → the function in JAX).

    Every input is differentiated, except where the case names ``wrt`` (see ``WRT``)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, dtype=torch.float64, generator=g)
    a = torch.randn(20, 30, dtype=torch.float64, generator=g)
    b = torch.randn(30, 10, dtype=torch.float64, generator=g)
    big = torch.randn(1024, 1024, dtype=torch.float64, generator=g) / 32
    x_big = torch.randn(1024, dtype=torch.float64, generator=g)
    return [
        ("elementwise n=%d" % n, "sin(x)*x + x**2", {"x": x},
         lambda x: torch.sin(x) * x + x**2, lambda jax, jnp: lambda x: jnp.sin(x) * x + x**2),
        ("softmax n=%d" % n, "softmax(x)", {"x": x},
         lambda x: torch.softmax(x, 0), lambda jax, jnp: jax.nn.softmax),
        ("polar (2 scalars)", "[r*cos(t), r*sin(t)]",
         {"r": torch.tensor(2.0, dtype=torch.float64), "t": torch.tensor(0.5, dtype=torch.float64)},
         lambda r, t: torch.stack([r * torch.cos(t), r * torch.sin(t)]),
         lambda jax, jnp: lambda r, t: jnp.stack([r * jnp.cos(t), r * jnp.sin(t)])),
        ("matmul 20x30 @ 30x10", "a @ b", {"a": a, "b": b},
         lambda a, b: a @ b, lambda jax, jnp: lambda a, b: a @ b),
        ("tanh(A @ x) n=1024, wrt x", "tanh(A @ x)", {"A": big, "x": x_big},
         lambda A, x: torch.tanh(A @ x), lambda jax, jnp: lambda A, x: jnp.tanh(A @ x)),
    ]


WRT = {"tanh(A @ x) n=1024, wrt x": ("x",)}
"""Cases that differentiate some inputs only (the others are constants, such as a fixed matrix)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("-n", type=int, default=300, help="vector length for the vector cases")
    options = parser.parse_args()
    repeats = 3 if options.quick else 7
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
    except ImportError:
        jax = None
    torch.set_num_threads(torch.get_num_threads())
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, python {platform.python_version()}"
          + (f", jax {jax.__version__}" if jax else ", jax not installed"))
    print(f"{'case':<24} {'method':<34} {'median ms':>10} {'× jacrev':>9}")
    for name, expression, inputs, hand, jax_version in cases(options.n):
        args = tuple(inputs.values())
        wrt = WRT.get(name, tuple(inputs))
        argnums = tuple(i for i, n in enumerate(inputs) if n in wrt)
        reference = median_time(lambda: torch.func.jacrev(hand, argnums=argnums)(*args), repeats)
        rows = [("torch.func.jacrev (hand-written)", reference)]
        rows.append(("torch.func.jacfwd (hand-written)",
                     median_time(lambda: torch.func.jacfwd(hand, argnums=argnums)(*args), repeats)))
        if len(argnums) == len(args):  # the tutorial loop differentiates every input
            rows.append(("row loop (hand-written)", median_time(lambda: row_loop(hand, args), repeats)))
        compile_expression(expression)  # compiled once, as the cache does for repeated calls
        for method in ("reverse", "forward", "rows"):
            rows.append((f"jacli --method {method}",
                         median_time(lambda: jacli.jacobian(expression, inputs, wrt=list(wrt), method=method), repeats)))
        if jax is not None:
            jax_fn = jax_version(jax, jnp)
            jax_args = [jnp.asarray(t.numpy()) for t in args]
            for label, transform in (("jax jit(jacrev)", jax.jacrev), ("jax jit(jacfwd)", jax.jacfwd)):
                compiled = jax.jit(transform(jax_fn, argnums=argnums))
                rows.append((label, median_time(lambda: jax.block_until_ready(compiled(*jax_args)), repeats)))
        for method, seconds in rows:
            print(f"{name:<24} {method:<34} {seconds * 1e3:>10.3f} {seconds / reference:>9.2f}")


if __name__ == "__main__":
    main()
