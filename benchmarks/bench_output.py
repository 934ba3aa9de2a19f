"""What writing a result costs: peak memory of JSON against plain, and the pretty view's --full.

The test suite checks JSON's peak RSS against plain's (within 1.2x, for a 2000x2000 Jacobian)
but never times anything; this script prints the figures for benchmarks/README.md.

  * peak RSS (ru_maxrss of a fresh process) of `jacli jacobian "softmax(x)" -i randn:N -f FMT`
    with stdout to /dev/null, for plain and json, and their ratio;
  * in one process, the time to lay out a dense NxN matrix with --full: jacli's own table
    (render._Grid, the pretty view) against rich's Table holding the same cells, and the ratio.

    python benchmarks/bench_output.py                  # N = 2000 (memory), 600 (--full)
    python benchmarks/bench_output.py --memory-n 1000 --full-n 300
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEAK = (
    "import resource, sys\n"
    "from jacli.cli import main\n"
    "sys.argv = ['jacli', *sys.argv[1:]]\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    sys.stderr.write(f'peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n')\n"
)


def peak_rss_mb(*argv: str) -> float:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", PEAK, *argv], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=env, check=True)
    kilobytes = int(done.stderr.rsplit("peak ", 1)[1])
    return kilobytes / 1024


def full_layout_seconds(n: int) -> tuple[float, float]:
    """Seconds to print an n x n matrix with full=True: jacli's _Grid, then rich's Table."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from jacli import render

    array = np.random.default_rng(0).standard_normal((n, n))
    console = Console(width=100, file=io.StringIO())
    start = time.perf_counter()
    for part in render._matrix_tables(array, 6, True, 100):
        console.print(part, crop=False)
    grid = time.perf_counter() - start

    start = time.perf_counter()
    for part in render._matrix_tables(array, 6, True, 100):
        if isinstance(part, render._Grid):
            table = Table(show_edge=False, pad_edge=False)
            for header, _, justify in part.columns:
                table.add_column(header, justify=justify, no_wrap=True)
            for row in zip(*(cells for _, cells, _ in part.columns)):
                table.add_row(*(Text(str(cell)) for cell in row))
            part = table
        console.print(part, crop=False)
    return grid, time.perf_counter() - start  # both passes format the cells (_matrix_tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-n", type=int, default=2000)
    parser.add_argument("--full-n", type=int, default=600)
    args = parser.parse_args()

    n = args.memory_n
    plain = peak_rss_mb("jacobian", "softmax(x)", "-i", f"randn:{n}", "-f", "plain")
    json_ = peak_rss_mb("jacobian", "softmax(x)", "-i", f"randn:{n}", "-f", "json")
    print(f"# load average {os.getloadavg()[0]:.1f}")
    print(f"peak RSS, softmax(x) on randn:{n} ({n}x{n} Jacobian)   plain {plain:8.1f} MB   "
          f"json {json_:8.1f} MB   json/plain {json_ / plain:.2f}")
    grid, table = full_layout_seconds(args.full_n)
    print(f"--full layout of a {args.full_n}x{args.full_n} matrix           jacli {grid:8.2f} s    "
          f"rich Table {table:6.2f} s   rich/jacli {table / grid:.1f}")


if __name__ == "__main__":
    main()
