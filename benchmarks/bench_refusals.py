"""How long jacli takes to refuse what is too big, and how that compares with importing torch.

The test suite checks that these refusals come from shapes alone, before any input is built or
evaluated (tests/helpers.py: record_work); it never times them, because shared machines are
noisy. This script does the timing. Nothing here is asserted: the figures go into
benchmarks/README.md.

In one process, after a warm-up (imports done, the shape-only run cached):
  * a Jacobian over the budget: (x+1)**2 on eye:1000, 10**12 numbers, 8.0 TB;
  * intermediate results over the budget: sum(x*y) on a 1000x1 and a 1x1000 input, 8 MB against
    --max-memory 1 MB;
  * for scale, the small Jacobian of (x+1)**2 on eye:2, which is computed.
From a shell, a fresh process each time, with the ratio to `python -c "import torch"` (after one
warm-up round, the commands take turns, one run each per round, so that a passing load weighs on
all of them alike):
  * `python -m jacli jacobian "(x+1)**2" -i eye:1000` (refused after torch is imported);
  * `python -m jacli jacobian x -i ones:100000x100000` (refused from the spec, before torch);
  * `python -m jacli jacobian "(x+1)**2" -i eye:2` (computed).

    python benchmarks/bench_refusals.py              # 7 repeats
    python benchmarks/bench_refusals.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # time this checkout's jacli, in this process and in the children

import torch  # noqa: E402

import jacli  # noqa: E402
from jacli import api  # noqa: E402
from jacli.errors import ResourceError  # noqa: E402

from common import median_time  # noqa: E402


def refused(fn: Callable[[], object]) -> Callable[[], None]:
    """``fn``, which must raise ResourceError (a refusal that stopped refusing is not timed)."""

    def call() -> None:
        try:
            fn()
        except ResourceError:
            return
        raise SystemExit(f"expected a ResourceError from {fn}")

    return call


def process(*args: str, expect: int) -> Callable[[], None]:
    """Run ``python *args`` from the checkout's root; its exit status must be ``expect``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("JACLI_DEBUG", None)

    def call() -> None:
        done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != expect:
            raise SystemExit(f"python {' '.join(args)}: exit {done.returncode}, expected {expect}\n{done.stderr}")

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure (median shown)")
    repeats = parser.parse_args().repeats

    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"{platform.machine()}, python {platform.python_version()}, median of {repeats}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    print("\nin one process (warm)                                        median ms  × eye:2 Jacobian")
    computed = median_time(lambda: jacli.jacobian("(x+1)**2", {"x": "eye:2"}), repeats)
    in_process = [
        ("Jacobian (x+1)**2 on eye:2, computed", computed),
        ("Jacobian (x+1)**2 on eye:1000, refused (8.0 TB)",
         median_time(refused(lambda: jacli.jacobian("(x+1)**2", {"x": "eye:1000"})), repeats)),
        ("grad sum(x*y), 1000x1 by 1x1000, refused (8 MB > 1 MB)",
         median_time(refused(lambda: api.compute_grad(
             "sum(x*y)", {"x": "ones:1000x1", "y": "ones:1x1000"}, max_memory=1_000_000)), repeats)),
    ]
    for name, seconds in in_process:
        print(f"{name:<60} {seconds * 1e3:9.2f}  {seconds / computed:6.2f}", flush=True)

    print("\nfresh process each time (interleaved)                        median s   × import torch")
    commands = [
        ('python -c "import torch"', process("-c", "import torch", expect=0)),
        ('python -m jacli jacobian "(x+1)**2" -i eye:2  (computed)',
         process("-m", "jacli", "jacobian", "(x+1)**2", "-i", "eye:2", expect=0)),
        ('python -m jacli jacobian "(x+1)**2" -i eye:1000  (refused)',
         process("-m", "jacli", "jacobian", "(x+1)**2", "-i", "eye:1000", expect=1)),
        ("python -m jacli jacobian x -i ones:100000x100000  (refused)",
         process("-m", "jacli", "jacobian", "x", "-i", "ones:100000x100000", expect=1)),
    ]
    # One run of each command per round, so that a load that comes and goes (a shared machine)
    # weighs on all of them alike and the ratios stay meaningful.
    for _, call in commands:  # warm-up: the files in the page cache
        call()
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(repeats):
        for (_, call), series in zip(commands, times):
            series.append(median_time(call, 1, warm_up=False))
    baseline = statistics.median(times[0])
    for (name, _), series in zip(commands, times):
        seconds = statistics.median(series)
        print(f"{name:<60} {seconds:9.2f}  {seconds / baseline:6.2f}", flush=True)
    print(f"# load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end (1, 5, 15 min)")

if __name__ == "__main__":
    main()
