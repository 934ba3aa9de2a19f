"""jacli in scripts and at scale: what one CLI call costs beside `import torch`, many points in one
call, `jacli batch` after start-up, and a Dask cluster against the local run.

    python benchmarks/bench_scale.py                    # every part
    python benchmarks/bench_scale.py --part startup     # one part (repeat --part for several)
    python benchmarks/bench_scale.py --part startup --runs 11

Parts (each a function ``part_NAME(args)`` listed in PARTS; add one by adding both):

- ``startup``: a small `jacli jacobian`, `vjp` and `grad` against a bare `python -c "import torch"`,
  runs interleaved (torch, jacobian, vjp, grad, torch, ...), the ratio of the medians; beside
  them torch's import without the interpreter's teardown (jacli skips it: NOTE [quick exit] in
  jacli/__main__.py), and where a call's import time goes, from `python -X importtime`.
- ``dask``: the same groups of jacli API calls on a `LocalCluster(2)` (two worker processes of
  one thread) and in this process, results compared; the cluster's start-up is timed apart.
- ``batch-axis``: ``jacli.jacobian(..., batch_axis=0)`` on 10,000 points against a Python loop
  of one-point ``jacli.jacobian`` calls (goal: at least 50x less per point);
- ``batch-jobs``: ``jacli batch`` after start-up: 1,000 small mixed jobs with distinct
  expressions (goal: at least 200 jobs/s), and a 10,000-point sweep of
  ``jacobian "[r*cos(t), r*sin(t)]"`` (goal: at least 20,000 points/s); then the same files
  through the command line, start-up included.

Public tools only (subprocess, time, statistics); nothing is asserted. Run from the repository
root, with jacli importable (installed, or PYTHONPATH=.).
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

SMALL_CALLS = {
    "jacobian": ["jacobian", "x**2", "-i", "1,2"],
    "vjp": ["vjp", "x**2", "-i", "1,2", "--v", "1,1"],
    "grad": ["grad", "sum(x**2)", "-i", "1,2"],
}
"""The small problems of the start-up goal (issue #14): each ≤ 1.15 × `import torch`."""

GOAL = 1.15


def _timed(argv: list[str], environ: dict[str, str]) -> tuple[float, float]:
    """``(wall s, CPU s)`` of one child process, from start to exit (its output discarded). The
    CPU time (user + system, from ``os.wait4``) moves less than the wall time on a shared machine."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environ)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (wait status {status})")
    return wall, usage.ru_utime + usage.ru_stime


def _environ() -> dict[str, str]:
    """The children's environment: no history written to the user's cache, bytecode cached."""
    environ = dict(os.environ)
    environ.setdefault("JACLI_NO_HISTORY", "1")
    # an installed package has its bytecode written; a run that may not write it compiles every
    # module of jacli from source each time (60 ms of the render module alone)
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return environ


def startup_times(runs: int) -> dict[str, list[tuple[float, float]]]:
    """``(wall s, CPU s)`` per run of `import torch` and of each small CLI call, interleaved so
    that the machine's load falls on all of them alike."""
    environ = _environ()
    commands = {"import torch": [sys.executable, "-c", "import torch"],
                "import torch, no teardown": [sys.executable, "-c", "import torch, os; os._exit(0)"]}
    commands.update({name: [sys.executable, "-m", "jacli", *argv] for name, argv in SMALL_CALLS.items()})
    for argv in commands.values():  # warm the file cache and the bytecode caches once
        _timed(argv, environ)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(_timed(argv, environ))
    return times


def import_times(argv: list[str]) -> list[tuple[int, str, float, float]]:
    """``(depth, module, self s, cumulative s)`` for each import one call makes, from
    `python -X importtime` (depth 0: imported by jacli's code or the interpreter itself)."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jacli", *argv],
        capture_output=True, text=True, env=_environ(), check=True,
    )
    found = []
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:"):].split("|")
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        found.append((depth, name.strip(), int(own) / 1e6, int(cumulative) / 1e6))
    return found


def by_package(imports: list[tuple[int, str, float, float]]) -> list[tuple[float, str]]:
    """Each package's own import time (its modules' self times added up), the largest first."""
    totals: dict[str, float] = {}
    for _, name, own, _ in imports:
        root = name.split(".")[0]
        totals[root] = totals.get(root, 0.0) + own
    return sorted(((seconds, root) for root, seconds in totals.items()), reverse=True)


def part_startup(args: argparse.Namespace) -> None:
    """The start-up ratio and the import breakdown."""
    times = startup_times(args.runs)
    torch_wall = statistics.median(wall for wall, _ in times["import torch"])
    torch_cpu = statistics.median(cpu for _, cpu in times["import torch"])
    print(f"## start-up: {args.runs} interleaved runs each, medians (goal: ≤ {GOAL} × import torch)")
    print(f"{'call':<42} {'wall s':>7} {'× torch':>8} {'CPU s':>7} {'× torch':>8}")
    for name, values in times.items():
        shown = {"import torch": "python -c 'import torch'", "import torch, no teardown": "  the same, then os._exit(0)"}.get(
            name) or "jacli " + " ".join(SMALL_CALLS[name])
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        print(f"{shown:<42} {wall:7.3f} {wall / torch_wall:8.2f} {cpu:7.3f} {cpu / torch_cpu:8.2f}")
    print()
    imports = import_times(SMALL_CALLS["jacobian"])
    total = sum(own for _, _, own, _ in imports)
    print(f"## where `jacli jacobian x**2 -i 1,2` spends its import time (-X importtime): {total:.3f} s in all")
    print("by package (the self times of its modules):")
    for seconds, root in by_package(imports)[:10]:
        print(f"{seconds:12.3f} s  {root}")
    print("top-level imports by cumulative time (what jacli's code, or the interpreter, imports):")
    top = sorted(((cumulative, own, name) for depth, name, own, cumulative in imports if depth == 0), reverse=True)
    for cumulative, own, name in top[:10]:
        print(f"{cumulative:12.3f} s  {name}")
    print()


# -- the Dask layer against the local run --------------------------------------------------------

SWEEP = ["[r*cos(t), r*sin(t)]", "x*sum(x)", "softmax(x)", "sin(x)*exp(-x**2)"]
"""The sweep's expressions; each point is a jacli.jacobian call."""


def sweep_group(group: tuple[str, int, int]) -> list:
    """One group of the sweep: ``count`` jacli.jacobian calls of one expression at moving points
    (module-level, so that Dask's workers import it by name)."""
    import jacli

    expr, start, count = group
    results = []
    for k in range(start, start + count):
        if expr.startswith("[r"):
            inputs = {"r": 1.0 + k / 1000, "t": k / 1000}
        else:
            inputs = {"x": [0.1 + k / 1000, 0.2, 0.3, 0.4]}
        results.append(jacli.jacobian(expr, inputs))
    return results


def sweep_groups(points: int, per_group: int) -> list[tuple[str, int, int]]:
    """``points`` calls, spread over the expressions, in groups of ``per_group``."""
    each = points // len(SWEEP)
    return [(expr, start, min(per_group, each - start)) for expr in SWEEP for start in range(0, each, per_group)]


def part_dask(args: argparse.Namespace) -> None:
    """``map_groups`` on a LocalCluster(2) against the same groups run here, one after another."""
    try:
        import dask.distributed as distributed
    except ImportError:
        print('## dask: skipped (pip install "jacli[dask]")\n')
        return
    import torch

    from jacli.cluster import map_groups

    groups = sweep_groups(args.points, args.per_group)
    torch.set_num_threads(1)  # the local run on one thread, like each worker
    start = time.perf_counter()
    local = [sweep_group(group) for group in groups]
    local_s = time.perf_counter() - start

    start = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"})
    started_s = time.perf_counter() - start
    try:
        # a first round warms the workers: each imports torch and jacli, and compiles each
        # expression, once (as the local run did on its first groups)
        warm = [(expr, 0, 1) for expr in SWEEP] * 4
        list(map_groups(sweep_group, warm, scheduler=cluster.scheduler_address))
        start = time.perf_counter()
        remote = dict(map_groups(sweep_group, groups, scheduler=cluster.scheduler_address))
        remote_s = time.perf_counter() - start
    finally:
        cluster.close()
    same = all(
        all(torch.equal(a[name], b[name]) for name in a) for index, results in enumerate(local)
        for a, b in zip(results, remote[index])
    )
    print(f"## dask: {args.points} jacli.jacobian calls in {len(groups)} groups of ≤ {args.per_group}")
    print(f"{'run':<40} {'seconds':>8} {'calls/s':>9}")
    print(f"{'local, one process, 1 thread':<40} {local_s:8.2f} {args.points / local_s:9.0f}")
    print(f"{'LocalCluster(2), warm workers':<40} {remote_s:8.2f} {args.points / remote_s:9.0f}")
    print(f"{'LocalCluster(2) start-up (apart)':<40} {started_s:8.2f}")
    print(f"speed-up {local_s / remote_s:.2f}× on 2 workers; results identical: {same}")
    print()


POLAR = "[r*cos(t), r*sin(t)]"


def bench_batch_axis(points: int, loop_points: int, repeats: int) -> None:
    """Per-point cost of batch_axis against a loop of one-point library calls."""
    import jacli

    generator = torch.Generator().manual_seed(0)
    # (expression, the points' inputs, shared inputs, wrt): the Jacobian of the matrix product
    # with respect to x only, as a per-point Jacobian is usually wanted (with respect to the
    # shared A too, each point's block is 8 x 8 x 8 numbers, and writing them dominates).
    cases = [
        (POLAR, {"r": torch.rand(points, generator=generator, dtype=torch.float64),
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
    return [json.dumps({"id": k, "command": "jacobian", "expr": POLAR, "inputs": {"r": r[k], "t": t[k]}})
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


def _timed_in_process(run: Callable[[], object], repeats: int, before: Callable[[], object] = lambda: None) -> tuple[float, float]:
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
    mixed_wall, mixed_cpu = _timed_in_process(lambda: _run_batch(mixed), repeats, before=_compile_caches_cleared)
    sweep_lines = _sweep_jobs(sweep)
    _run_batch(sweep_lines[:10])
    sweep_wall, sweep_cpu = _timed_in_process(lambda: _run_batch(sweep_lines), repeats)
    print("\n## jacli batch after start-up (in one process, lines written to memory); wall and CPU time")
    print(f"{jobs:,} mixed jobs, distinct expressions: {mixed_wall:.2f} s wall, {jobs / mixed_wall:,.0f} jobs/s; "
          f"{mixed_cpu:.2f} s CPU, {jobs / mixed_cpu:,.0f} jobs/s (goal 200)")
    print(f"{sweep:,}-point sweep of jacobian {POLAR}: {sweep_wall:.3f} s wall, {sweep / sweep_wall:,.0f} points/s; "
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


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {
    "startup": part_startup,
    "dask": part_dask,
    "batch-axis": lambda args: bench_batch_axis(args.points, args.loop_points, args.repeats),
    "batch-jobs": lambda args: bench_batch_jobs(args.jobs, args.points, args.repeats),
}
"""Each part of the benchmark by name, in the order ``--part`` runs them by default."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", action="append", choices=list(PARTS), help="run only this part (repeatable)")
    parser.add_argument("--runs", type=int, default=7, help="start-up: runs of each call (default 7)")
    parser.add_argument("--points", type=int, default=10000,
                        help="dask: jacli.jacobian calls; batch-axis and the batch sweep: points (default 10000)")
    parser.add_argument("--loop-points", type=int, default=1_000, help="batch-axis: points the one-point loop is timed on")
    parser.add_argument("--jobs", type=int, default=1_000, help="batch-jobs: mixed jobs for jacli batch")
    parser.add_argument("--repeats", type=int, default=3, help="batch-axis, batch-jobs: repeats (median)")
    parser.add_argument("--per-group", type=int, default=1000, help="dask: calls per group (default 1000)")
    args = parser.parse_args(argv)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    for name in args.part or list(PARTS):
        PARTS[name](args)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
