"""What the benchmark scripts share: the median of timed calls, and the classic row loop.

Run from the repository root as ``python benchmarks/NAME.py``; Python puts ``benchmarks/`` on
the path, so the scripts import this module as ``common``.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def median_time(fn: Callable[[], object], repeats: int, warm_up: bool = True) -> float:
    """Median wall time of ``fn`` in seconds, after one warm-up call when ``warm_up``."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row_loop(f: Callable[..., torch.Tensor], args: tuple[torch.Tensor, ...], limit: int | None = None) -> list[torch.Tensor]:
    """The classic loop as tutorials write it: one autograd.grad per output element (the first
    ``limit`` only, to probe how long a row takes)."""
    leaves = [a.detach().requires_grad_() for a in args]
    y = f(*leaves)
    blocks = [y.new_zeros(y.shape + a.shape) for a in leaves]
    for k in range(y.numel() if limit is None else min(limit, y.numel())):
        one_hot = torch.zeros_like(y)
        one_hot.view(-1)[k] = 1
        grads = torch.autograd.grad(y, leaves, one_hot, retain_graph=True)
        for block, grad in zip(blocks, grads):
            block.view(y.numel(), -1)[k] = grad.reshape(-1)
    return blocks
