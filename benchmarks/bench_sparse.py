"""Sparse Jacobians: compressed evaluation (one JVP/VJP per colour) against dense torch.func.

For each case the same hand-written torch function is differentiated by
  * torch.func.jacrev / jacfwd (dense: one pass per output / input element);
  * jacli.engine.compressed.jacobian_compressed, forward and reverse, with the colouring made
    once beforehand (it is reused, as a "prepare" step would) and timed on its own;
  * for the elementwise case, jacobian_diagonal (one VJP) and one hand-written VJP with ones.
It prints medians and the ratio to torch.func.jacrev. Nothing is asserted.

    python benchmarks/bench_sparse.py            # n = 10^4 (diagonal n = 4096), 5 repeats
    python benchmarks/bench_sparse.py --quick    # 3 repeats
    python benchmarks/bench_sparse.py --threads 1  # steadier where other processes share the cores
"""

from __future__ import annotations

import argparse
import math
import os
import platform
from types import SimpleNamespace

import numpy as np
import torch

from jacli.engine.compressed import color_columns, color_rows, jacobian_compressed, jacobian_diagonal

from common import median_time  # noqa: E402


def csr_pattern(output_shape, input_shape, columns: np.ndarray) -> SimpleNamespace:
    """A pattern whose rows each hold the same number of columns (``columns``: rows x k)."""
    rows, k = columns.shape
    return SimpleNamespace(output_shape=output_shape, input_shape=input_shape,
                           indptr=np.arange(0, rows * k + 1, k, dtype=np.int64),
                           indices=np.sort(columns, axis=1).ravel().astype(np.int64))


def tridiagonal(x: torch.Tensor) -> torch.Tensor:
    return x[:-2] - 2 * x[1:-1] + x[2:] * torch.cos(x[2:])


def tridiagonal_pattern(n: int) -> SimpleNamespace:
    return csr_pattern((n - 2,), (n,), np.arange(n - 2)[:, None] + np.arange(3))


def stencil(x: torch.Tensor) -> torch.Tensor:
    u = torch.sin(x)
    return u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4 * x[1:-1, 1:-1] ** 2


def stencil_pattern(side: int) -> SimpleNamespace:
    i, j = np.meshgrid(np.arange(1, side - 1), np.arange(1, side - 1), indexing="ij")
    neighbours = [(i - 1) * side + j, i * side + j - 1, i * side + j, i * side + j + 1, (i + 1) * side + j]
    return csr_pattern((side - 2, side - 2), (side, side), np.stack(neighbours, -1).reshape(-1, 5))


def elementwise(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) ** 2 + x * torch.sin(x)


def one_vjp(x: torch.Tensor) -> torch.Tensor:
    """The hand-written diagonal of an elementwise function: one backward pass with ones."""
    leaf = x.detach().requires_grad_()
    y = elementwise(leaf)
    (grad,) = torch.autograd.grad(y, leaf, torch.ones_like(y))
    return grad


def row(case: str, method: str, seconds: float, reference: float) -> None:
    print(f"{case:<24} {method:<44} {seconds * 1e3:>10.3f} {seconds / reference:>10.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="input size of the sparse cases")
    parser.add_argument("--diagonal-n", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--threads", type=int, help="torch threads (1 steadies figures on a shared machine)")
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    repeats = 3 if options.quick else options.repeats
    torch.set_default_dtype(torch.float64)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"{platform.machine()}, python {platform.python_version()}, median of {repeats}; "
          f"load average {os.getloadavg()[0]:.1f}")

    side = math.isqrt(options.n)
    cases = [
        (f"tridiagonal n={options.n}", tridiagonal, torch.rand(options.n), tridiagonal_pattern(options.n)),
        (f"5-point {side}x{side}", stencil, torch.rand(side, side), stencil_pattern(side)),
    ]

    print(f"\n{'colouring (once per pattern)':<69} {'median ms':>10} {'colours':>8}")
    colorings = {}
    for name, _, _, pattern in cases:
        for label, colorer, strategy in [("color_columns", color_columns, "natural"),
                                         ("color_columns", color_columns, "auto"),
                                         ("color_rows", color_rows, "auto")]:
            seconds = median_time(lambda: colorer(pattern, strategy=strategy), repeats)
            method = f"{label} strategy={strategy}"
            print(f"{name:<24} {method:<44} {seconds * 1e3:>10.3f} {colorer(pattern, strategy=strategy)[1]:>8}")
        colorings[name] = color_columns(pattern), color_rows(pattern)

    print(f"\n{'case':<24} {'method':<44} {'median ms':>10} {'× jacrev':>10}")
    for name, f, x, pattern in cases:
        forward_coloring, reverse_coloring = colorings[name]
        reference = median_time(lambda: torch.func.jacrev(f)(x), repeats)
        row(name, "torch.func.jacrev (dense)", reference, reference)
        row(name, "torch.func.jacfwd (dense)", median_time(lambda: torch.func.jacfwd(f)(x), repeats), reference)
        row(name, f"compressed forward ({forward_coloring[1]} JVPs)",
            median_time(lambda: jacobian_compressed(f, (x,), 0, pattern, "forward", coloring=forward_coloring), repeats),
            reference)
        row(name, f"compressed reverse ({reverse_coloring[1]} VJPs)",
            median_time(lambda: jacobian_compressed(f, (x,), 0, pattern, "reverse", coloring=reverse_coloring), repeats),
            reference)
        row(name, "compressed forward, colouring included",
            median_time(lambda: jacobian_compressed(f, (x,), 0, pattern, "forward"), repeats), reference)

    n = options.diagonal_n
    x = torch.rand(n)
    name = f"elementwise n={n}"
    diagonal = csr_pattern((n,), (n,), np.arange(n)[:, None])
    reference = median_time(lambda: torch.func.jacrev(elementwise)(x), repeats)
    row(name, "torch.func.jacrev (dense)", reference, reference)
    row(name, "one hand-written VJP with ones", median_time(lambda: one_vjp(x), repeats), reference)
    row(name, "jacobian_diagonal (one VJP)", median_time(lambda: jacobian_diagonal(elementwise, (x,), 0), repeats),
        reference)
    row(name, "compressed forward (1 colour)",
        median_time(lambda: jacobian_compressed(elementwise, (x,), 0, diagonal, "forward"), repeats), reference)
    print(f"# load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end (1, 5, 15 min)")


if __name__ == "__main__":
    main()
