"""jacli in scripts and at scale (issue 14): many points per call, and ``jacli batch``.

Parts (``--part``, default all):

- ``batch-axis``: ``jacli.jacobian(..., batch_axis=0)`` on 10,000 points against a Python loop
  of one-point ``jacli.jacobian`` calls (goal: at least 50x less per point);
- ``batch-jobs``: ``jacli batch`` after start-up: 1,000 small mixed jobs with distinct
  expressions (goal: at least 200 jobs/s), and a 10,000-point sweep of
  ``jacobian "[r*cos(t), r*sin(t)]"`` (goal: at least 20,000 points/s); then the same files
  through the command line, start-up included.

Nothing is asserted; the ratios are printed. Run from the repository root:

    python benchmarks/bench_scale.py
    python benchmarks/bench_scale.py --part batch-axis --points 10000 --loop-points 1000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

import torch

from common import median_time

SWEEP = "[r*cos(t), r*sin(t)]"


def _header() -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"{platform.machine()}, python {platform.python_version()}; load average {load}")


def bench_batch_axis(points: int, loop_points: int, repeats: int) -> None:
    """Per-point cost of batch_axis against a loop of one-point library calls."""
    import jacli

    generator = torch.Generator().manual_seed(0)
    # (expression, the points' inputs, shared inputs, wrt): the Jacobian of the matrix product
    # with respect to x only, as a per-point Jacobian is usually wanted (with respect to the
    # shared A too, each point's block is 8 x 8 x 8 numbers, and writing them dominates).
    cases = [
        (SWEEP, {"r": torch.rand(points, generator=generator, dtype=torch.float64),
                 "t": torch.rand(points, generator=generator, dtype=torch.float64)}, {}, None),
        ("tanh(A @ x)", {"x": torch.randn(points, 8, generator=generator, dtype=torch.float64)},
         {"A": torch.randn(8, 8, generator=generator, dtype=torch.float64)}, ["x"]),
        ("softmax(x) * x", {"x": torch.randn(points, 16, generator=generator, dtype=torch.float64)}, {}, None),
    ]
    print(f"\n## batch_axis: {points:,} points in one call against a loop of jacli.jacobian "
          f"(the loop timed on {loop_points:,} points)")
    print(f"{'expression':24} {'wrt':>4} {'batched µs/point':>17} {'loop µs/point':>14} {'loop / batched':>15}")
    for expr, batched, shared, wrt in cases:
        inputs = {**batched, **shared}
        whole = median_time(lambda: jacli.jacobian(expr, inputs, batch_axis=0, batched=list(batched), wrt=wrt), repeats)

        def loop() -> None:
            for i in range(loop_points):
                jacli.jacobian(expr, {**{n: t[i] for n, t in batched.items()}, **shared}, wrt=wrt)

        looped = median_time(loop, max(1, repeats // 2))
        per_batched, per_loop = whole / points * 1e6, looped / loop_points * 1e6
        print(f"{expr:24} {','.join(wrt or ['all']):>4} {per_batched:17.2f} {per_loop:14.1f} {per_loop / per_batched:14.0f}x")


def _mixed_jobs(count: int) -> list[str]:
    """Small jobs, each with its own expression, over the commands."""
    lines = []
    for k in range(count):
        kind = k % 4
        if kind == 0:
            job = {"command": "jacobian", "expr": f"x**2 + {k}*sin(x)", "inputs": {"x": "1,2,3"}}
        elif kind == 1:
            job = {"command": "grad", "expr": f"sum(exp(-{k}*x**2))", "inputs": {"x": "0.1,0.2"}}
        elif kind == 2:
            job = {"command": "vjp", "expr": f"[a*b, a + {k}*b]", "inputs": {"a": 2, "b": "3"}, "v": "ones"}
        else:
            job = {"command": "jvp", "expr": f"tanh({k}*x) * x", "inputs": {"x": "1,2"}, "v": "1,0"}
        lines.append(json.dumps({"id": k, **job}))
    return lines


def _sweep_jobs(count: int) -> list[str]:
    generator = torch.Generator().manual_seed(1)
    r = torch.rand(count, generator=generator, dtype=torch.float64).tolist()
    t = torch.rand(count, generator=generator, dtype=torch.float64).tolist()
    return [json.dumps({"id": k, "command": "jacobian", "expr": SWEEP, "inputs": {"r": r[k], "t": t[k]}})
            for k in range(count)]


def _run_batch(lines: list[str]) -> int:
    """``jacli batch`` in this process, the lines written to memory; how many came out."""
    from jacli import batch

    sink = io.StringIO()
    count = 0
    for line in batch.run(lines):
        sink.write(line + "\n")
        count += 1
    return count


def _compile_caches_cleared() -> None:
    """Every expression new again: the distinct-expression figure must not reuse an earlier run's work."""
    from jacli import compile as compiled, parse

    compiled.compile_expression.cache_clear()
    for name in dir(parse):
        cached = getattr(getattr(parse, name), "cache_clear", None)
        if cached is not None:
            cached()


def _timed(run: Callable[[], object], repeats: int, before: Callable[[], object] = lambda: None) -> tuple[float, float]:
    """Median wall and CPU seconds of ``run`` (``before`` untimed before each). On a loaded
    2-core machine the wall time measures the other processes too; the CPU time (this process's
    threads) is what the work itself costs."""
    walls, cpus = [], []
    for _ in range(repeats):
        before()
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def bench_batch_jobs(jobs: int, sweep: int, repeats: int) -> None:
    """jacli batch's throughput after start-up, then through the command line."""
    _run_batch(_mixed_jobs(4))  # start-up: torch, SymPy and the first transforms loaded
    mixed = _mixed_jobs(jobs)
    mixed_wall, mixed_cpu = _timed(lambda: _run_batch(mixed), repeats, before=_compile_caches_cleared)
    sweep_lines = _sweep_jobs(sweep)
    _run_batch(sweep_lines[:10])
    sweep_wall, sweep_cpu = _timed(lambda: _run_batch(sweep_lines), repeats)
    print("\n## jacli batch after start-up (in one process, lines written to memory); wall and CPU time")
    print(f"{jobs:,} mixed jobs, distinct expressions: {mixed_wall:.2f} s wall, {jobs / mixed_wall:,.0f} jobs/s; "
          f"{mixed_cpu:.2f} s CPU, {jobs / mixed_cpu:,.0f} jobs/s (goal 200)")
    print(f"{sweep:,}-point sweep of jacobian {SWEEP}: {sweep_wall:.3f} s wall, {sweep / sweep_wall:,.0f} points/s; "
          f"{sweep_cpu:.3f} s CPU, {sweep / sweep_cpu:,.0f} points/s (goal 20,000)")
    print("\n## the same jobs through the command line: each file against its first 10 jobs, taking turns "
          f"(median of {repeats}); the difference is the cost after start-up")
    with tempfile.TemporaryDirectory() as folder:
        for name, lines in (("mixed", mixed), ("sweep", sweep_lines)):
            paths = {}
            for count in (10, len(lines)):
                paths[count] = os.path.join(folder, f"{name}-{count}.jsonl")
                with open(paths[count], "w") as handle:
                    handle.write("\n".join(lines[:count]) + "\n")
            took: dict[int, list[float]] = {10: [], len(lines): []}
            for _ in range(repeats):
                for count, path in paths.items():
                    start = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "jacli", "batch", path], stdout=subprocess.DEVNULL, check=True)
                    took[count].append(time.perf_counter() - start)
            small, large = statistics.median(took[10]), statistics.median(took[len(lines)])
            print(f"jacli batch {name} ({len(lines):,} jobs): {large:.2f} s; its first 10 jobs: {small:.2f} s; "
                  f"{(len(lines) - 10) / max(1e-9, large - small):,.0f} jobs/s after start-up")


PARTS = {
    "batch-axis": lambda args: bench_batch_axis(args.points, args.loop_points, args.repeats),
    "batch-jobs": lambda args: bench_batch_jobs(args.jobs, args.points, args.repeats),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--points", type=int, default=10_000, help="points of batch_axis and of the sweep")
    parser.add_argument("--loop-points", type=int, default=1_000, help="points the one-point loop is timed on")
    parser.add_argument("--jobs", type=int, default=1_000, help="mixed jobs for jacli batch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    _header()
    for name, part in PARTS.items():
        if args.part in (name, "all"):
            part(args)


if __name__ == "__main__":
    main()
