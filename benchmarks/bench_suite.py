"""The benchmark suite: jacli's Jacobians against its peers, case by case, in one process.

For each case the same function is differentiated by
  * jacli through the API (``jacli.api.compute_jacobian``): ``layout="dense"`` (whatever jacli
    picks: one VJP for a diagonal Jacobian, one pass per colour for a sparse one, jacrev/jacfwd
    for a dense one, filled into a dense tensor), the structured layout (``diagonal`` or
    ``sparse``) where the formula has one, and ``method="reverse"`` / ``"forward"`` (dense);
  * the peers, on the same function written by hand in torch: the row loop (one
    ``torch.autograd.grad`` per output element), ``torch.autograd.functional.jacobian`` with
    ``vectorize=False`` and ``True``, ``torch.func.jacrev`` and ``jacfwd``, and JAX's
    ``jit(jacrev)`` / ``jit(jacfwd)`` when ``import jax`` works (float64, compile time excluded);
  * for the elementwise case, one hand-written VJP with ones: the floor for a diagonal.

Columns:
  median ms   the median wall time of ``runs`` calls after one warm-up call (CUDA: synchronised);
              slow rows get fewer runs (at most --row-seconds of timed calls each).
  min ms      the fastest of those calls (steadier than the median on a shared machine).
  × best      the median over the best peer's: the fastest of the torch and JAX peers that give
              the whole Jacobian (the hand-written VJP floor gives only a diagonal: not a peer).
  peak MB     CPU: how far the process's resident memory (RSS, /proc/self/statm, sampled every
              0.5 ms by a thread) rose above its level before the call, during one more call
              after the timed ones. For that call glibc's mmap threshold is 64 KiB (mallopt), so
              that large blocks are mapped and unmapped as torch allocates and frees them and RSS
              follows what is live; for the timed calls it is 32 MiB, glibc's usual steady state
              after large frees. Sampling can miss a peak shorter than 0.5 ms; anything the
              call keeps (the result) counts. CUDA: torch.cuda.max_memory_allocated over the call.
  result MB   the bytes of the tensors the call returns (for jacli: the stored blocks).
  how         jacli's ``result.how``; for a peer, its passes.

After each elementwise case a line gives the diagonal layout over the hand-written VJP: from the
rows' medians and fastest calls, and from --interleaved-rounds calls of each taking turns (at
0.1-0.5 ms a call, a few calls one after the other measure the machine's load as much as the code).

A peer (and jacli's reverse/forward, which run the same transforms) is skipped, with the reason,
when its estimate exceeds --max-call-seconds or the memory there is: the loops are timed on 1 and
33 rows (the difference gives the cost of a row) and extrapolated; the vmapped transforms are
estimated from passes × the case's widest intermediate, at the rate torch.func.jacrev reached on
the elementwise n = 1024 case in this process (memory: 6 × passes × widest × 8 bytes, which is what jacfwd reached at n = 16384).

Nothing is asserted; each result is compared with the first dense one of its case (column "ok").

    python benchmarks/bench_suite.py                 # everything, 7 runs (about 10+ min on 2 cores)
    python benchmarks/bench_suite.py --quick         # 3 runs, tighter skips (under 3 min on 2 cores)
    python benchmarks/bench_suite.py --case tridiag --case 5-point --case "n=4096"
    python benchmarks/bench_suite.py --threads 1 --device cuda
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch  # noqa: E402

from jacli.api import compute_jacobian  # noqa: E402

from common import row_loop  # noqa: E402

DTYPE = torch.float64


# -- measuring ------------------------------------------------------------------------------------


class Malloc:
    """glibc's thresholds through mallopt (ctypes): large blocks as their own mappings while memory
    is measured, so that RSS follows what torch holds; glibc's steady state while timing."""

    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    STEADY = 32 * 2**20  # where glibc's dynamic mmap threshold ends up after large frees (64-bit)

    def __init__(self) -> None:
        try:
            self.libc = ctypes.CDLL("libc.so.6")
            self.libc.mallopt.restype = ctypes.c_int
        except OSError:
            self.libc = None
        self.steady()

    def _set(self, mmap: int) -> None:
        if self.libc is not None:
            self.libc.mallopt(self.M_MMAP_THRESHOLD, mmap)
            self.libc.mallopt(self.M_TRIM_THRESHOLD, 2 * mmap)

    def steady(self) -> None:
        self._set(self.STEADY)

    def measuring(self) -> None:
        self._set(64 * 1024)
        if self.libc is not None:
            self.libc.malloc_trim(0)


MALLOC = Malloc()


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory above the level at entry: sampled RSS on the CPU, the allocator's peak on CUDA."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.linux = os.path.exists("/proc/self/statm")
        self.peak: int | None = None

    def __enter__(self) -> "PeakMemory":
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        if not self.linux:
            return self
        MALLOC.measuring()
        self.base = self.top = _rss()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.is_set():
            self.top = max(self.top, _rss())
            time.sleep(0.0005)

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        elif self.linux:
            self.stop.set()
            self.thread.join()
            sys.setswitchinterval(self.switch)
            MALLOC.steady()
            self.peak = max(self.top, _rss()) - self.base


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def available_bytes(device: str) -> int:
    if device.startswith("cuda"):
        return torch.cuda.mem_get_info()[0]
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def nbytes(value: Any) -> int:
    """Bytes of the tensors (or arrays) in ``value``: a tensor, a result, or nested sequences."""
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.numel()
    if hasattr(value, "blocks"):  # a JacobianResult: the blocks as stored
        total = 0
        for block in value.blocks.values():
            for name in ("values", "diagonal", "rows", "cols"):
                if hasattr(block, name):
                    total += nbytes(getattr(block, name))
        return total
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    if hasattr(value, "nbytes"):  # a JAX or NumPy array
        return int(value.nbytes)
    return 0


@dataclass
class Row:
    method: str
    seconds: float | None = None
    best: float | None = None
    runs: int = 0
    peak: int | None = None
    result: int = 0
    how: str = ""
    ok: str = "-"
    peer: bool = False
    skipped: str = ""
    interleaved: tuple[float, float, int] = (0.0, 1.0, 0)


def measure(fn: Callable[[], Any], device: str, repeats: int, row_seconds: float) -> tuple[float, float, int, int | None, Any]:
    """(median seconds, fastest seconds, runs, peak bytes, the last result): a warm-up call, then up to ``repeats``
    timed calls (fewer when the warm-up shows they would take over ``row_seconds``), then one
    call under the memory sampler."""
    start = time.perf_counter()
    fn()
    sync(device)
    warm = time.perf_counter() - start
    runs = max(1, min(repeats, int(row_seconds / max(warm, 1e-9))))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    with PeakMemory(device) as memory:
        result = fn()
    return statistics.median(times), min(times), runs, memory.peak, result


# -- the peers ------------------------------------------------------------------------------------


def one_vjp(f: Callable[..., torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The diagonal of an elementwise function's Jacobian by hand: one backward pass with ones."""
    leaf = x.detach().requires_grad_()
    y = f(leaf)
    (grad,) = torch.autograd.grad(y, leaf, torch.ones_like(y))
    return grad


# -- the cases ------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    expr: str
    inputs: dict[str, torch.Tensor]
    wrt: tuple[str, ...]
    torch_fn: Callable[..., torch.Tensor]  # takes the wrt inputs, in order; the others are bound
    jax_fn: Callable[..., Callable] | None  # (jax, jnp, constants) -> a function of the wrt inputs
    width: int  # the widest intermediate of one evaluation (elements): for the vmap estimates
    floor: bool = False
    args: tuple[torch.Tensor, ...] = field(default=())
    m: int = 0
    n: int = 0


def elementwise(x):
    return (x + 1) ** 2 + x * torch.sin(x)


def make_cases(device: str) -> list[Case]:
    g = torch.Generator().manual_seed(0)

    def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, dtype=DTYPE, generator=g) * scale).to(device)

    cases = []
    for n in (256, 1024, 4096, 16384):
        cases.append(Case(f"elementwise n={n}", "(x+1)**2 + x*sin(x)", {"x": randn(n)}, ("x",), elementwise,
                          lambda jax, jnp, c: lambda x: (x + 1) ** 2 + x * jnp.sin(x), n, floor=True))
    A = randn(1024, 1024, scale=1 / 32)
    cases.append(Case("tanh(A @ x) n=1024", "tanh(A @ x)", {"A": A, "x": randn(1024)}, ("x",),
                      lambda x: torch.tanh(A @ x),
                      lambda jax, jnp, c: lambda x: jnp.tanh(c["A"] @ x), 1024))
    cases.append(Case("tridiagonal n=10^4", "x[:-2] - 2*x[1:-1] + x[2:]", {"x": randn(10_000)}, ("x",),
                      lambda x: x[:-2] - 2 * x[1:-1] + x[2:],
                      lambda jax, jnp, c: lambda x: x[:-2] - 2 * x[1:-1] + x[2:], 10_000))
    u = "reshape(x, 100, 100)"
    cases.append(Case(
        "5-point 100x100 n=10^4",
        f"{u}[1:-1,1:-1]*4 - {u}[:-2,1:-1] - {u}[2:,1:-1] - {u}[1:-1,:-2] - {u}[1:-1,2:]",
        {"x": randn(10_000)}, ("x",), stencil, lambda jax, jnp, c: stencil, 10_000))
    cases.append(Case("softmax n=1000", "softmax(x)", {"x": randn(1000)}, ("x",), lambda x: torch.softmax(x, 0),
                      lambda jax, jnp, c: jax.nn.softmax, 1000))
    cases.append(Case("a*sin(b) + c**2, 3x300", "a*sin(b) + c**2", {"a": randn(300), "b": randn(300), "c": randn(300)},
                      ("a", "b", "c"), lambda a, b, c: a * torch.sin(b) + c**2,
                      lambda jax, jnp, c: lambda a, b, cc: a * jnp.sin(b) + cc**2, 300))
    w_tall = randn(64, 256)
    cases.append(Case("tall 64 -> 64x256", "reshape(x, -1, 1) * w", {"x": randn(64), "w": w_tall}, ("x",),
                      lambda x: x.reshape(-1, 1) * w_tall,
                      lambda jax, jnp, c: lambda x: x.reshape(-1, 1) * c["w"], 64 * 256))
    w_wide = randn(8, 100_000)
    cases.append(Case("wide 10^5 -> 8", "sum(x*w, 1)", {"x": randn(100_000), "w": w_wide}, ("x",),
                      lambda x: (x * w_wide).sum(1),
                      lambda jax, jnp, c: lambda x: (x * c["w"]).sum(1), 8 * 100_000))
    for case in cases:
        case.args = tuple(case.inputs[name] for name in case.wrt)
        case.m = case.torch_fn(*case.args).numel()
        case.n = sum(a.numel() for a in case.args)
    return cases


def stencil(x):
    u = x.reshape(100, 100)
    return u[1:-1, 1:-1] * 4 - u[:-2, 1:-1] - u[2:, 1:-1] - u[1:-1, :-2] - u[1:-1, 2:]


# -- running a case -------------------------------------------------------------------------------


class Budget:
    """Skip decisions from estimates (see the module docstring)."""

    def __init__(self, device: str, max_call_seconds: float):
        self.device, self.limit = device, max_call_seconds
        x = torch.randn(1024, dtype=DTYPE, device=device)
        torch.func.jacrev(elementwise)(x)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            torch.func.jacrev(elementwise)(x)
            sync(device)
            times.append(time.perf_counter() - start)
        self.rate = statistics.median(times) / 1024**2  # seconds per (pass × intermediate element)

    def vmap(self, passes: int, width: int) -> str:
        seconds, memory = self.rate * passes * width, 6 * passes * width * 8
        if memory > 0.8 * available_bytes(self.device):
            return f"skipped (needs about {memory / 2**30:.0f} GiB, {available_bytes(self.device) / 2**30:.0f} GiB available)"
        if seconds > self.limit:
            return f"skipped (about {seconds:.0f} s per call estimated, over {self.limit:g} s)"
        return ""

    def loop(self, case: Case) -> str:
        if 8 * case.m * case.n * 2 > 0.8 * available_bytes(self.device):
            return "skipped (the dense result does not fit)"
        probe = min(case.m, 33)
        times = []
        for limit in (1, probe, 1, probe):  # twice each: the first of each may pay for warm-up
            start = time.perf_counter()
            row_loop(case.torch_fn, case.args, limit=limit)
            sync(self.device)
            times.append(time.perf_counter() - start)
        fixed = min(times[0], times[2])  # the forward pass and the zeroed result
        per_row = max(0.0, min(times[1], times[3]) - fixed) / max(1, probe - 1)
        seconds = fixed + per_row * case.m
        if seconds > self.limit:
            return f"skipped (about {seconds:.0f} s per call from {probe} rows, over {self.limit:g} s)"
        return ""


def dense_of(value: Any, case: Case) -> list[torch.Tensor] | None:
    """The blocks of a result as dense float64 CPU tensors, output-major, or None when too large."""
    if case.m * case.n > 120_000_000:
        return None
    if hasattr(value, "blocks"):
        value = [value.blocks[name].to_dense() for name in case.wrt]
    elif isinstance(value, torch.Tensor):
        value = [value]
    return [torch.as_tensor(__import__("numpy").asarray(v)) if not isinstance(v, torch.Tensor) else v.detach().cpu()
            for v in value]


def run_case(case: Case, options: Any, budget: Budget, jax: Any) -> list[Row]:
    device, repeats, row_seconds = options.device, options.repeats, options.row_seconds
    rows: list[Row] = []
    reference: list[torch.Tensor] | None = None

    def add(row: Row, fn: Callable[[], Any] | None, describe: Callable[[Any], str] | None = None,
            compare: bool = True) -> None:
        nonlocal reference
        rows.append(row)
        if row.skipped or fn is None:
            return
        row.seconds, row.best, row.runs, row.peak, result = measure(fn, device, repeats, row_seconds)
        row.result = nbytes(result)
        if describe is not None:
            row.how = describe(result)
        if compare:
            got = dense_of(result, case)
            if got is not None:
                if reference is None:
                    reference, row.ok = got, "ref"
                else:
                    row.ok = "ok" if all(torch.allclose(a.reshape(b.shape), b, rtol=1e-9, atol=1e-12)
                                         for a, b in zip(got, reference)) else "DIFF"
        del result

    # jacli. The structure (and so the layout it has) from one auto call.
    probe = compute_jacobian(case.expr, case.inputs, wrt=list(case.wrt), device=device)
    structured = {block.layout for block in probe.blocks.values()} - {"dense"}
    how = lambda result: result.how  # noqa: E731
    add(Row('jacli layout="dense"'), lambda: compute_jacobian(case.expr, case.inputs, wrt=list(case.wrt),
                                                           device=device, layout="dense"), how)
    for layout in sorted(structured):
        add(Row(f'jacli layout="{layout}"'),
            lambda: compute_jacobian(case.expr, case.inputs, wrt=list(case.wrt), device=device, layout=layout), how)
    for method, passes in (("reverse", case.m), ("forward", case.n)):
        add(Row(f'jacli method="{method}" (dense)', skipped=budget.vmap(passes, case.width)),
            lambda: compute_jacobian(case.expr, case.inputs, wrt=list(case.wrt), device=device, method=method,
                                     layout="dense"), how)

    # The peers, on the hand-written function.
    f, args, k = case.torch_fn, case.args, len(case.args)
    argnums = tuple(range(k))
    loop_skip = budget.loop(case)
    add(Row("row loop (autograd.grad per output)", peer=True, skipped=loop_skip, how=f"{case.m:,} backward passes"),
        lambda: row_loop(f, args))
    add(Row("autograd.functional.jacobian vectorize=False", peer=True, skipped=loop_skip,
            how=f"{case.m:,} backward passes"),
        lambda: torch.autograd.functional.jacobian(f, args if k > 1 else args[0], vectorize=False))
    add(Row("autograd.functional.jacobian vectorize=True", peer=True, skipped=budget.vmap(case.m, case.width),
            how=f"{case.m:,} VJPs, vmapped"),
        lambda: torch.autograd.functional.jacobian(f, args if k > 1 else args[0], vectorize=True))
    add(Row("torch.func.jacrev", peer=True, skipped=budget.vmap(case.m, case.width), how=f"{case.m:,} VJPs, vmapped"),
        lambda: torch.func.jacrev(f, argnums=argnums)(*args))
    add(Row("torch.func.jacfwd", peer=True, skipped=budget.vmap(case.n, case.width), how=f"{case.n:,} JVPs, vmapped"),
        lambda: torch.func.jacfwd(f, argnums=argnums)(*args))
    if jax is not None and case.jax_fn is not None:
        import jax.numpy as jnp

        constants = {name: jnp.asarray(t.cpu().numpy()) for name, t in case.inputs.items() if name not in case.wrt}
        jax_args = [jnp.asarray(t.cpu().numpy()) for t in args]
        fn = case.jax_fn(jax, jnp, constants)
        for label, transform, passes in (("jax jit(jacrev)", jax.jacrev, case.m), ("jax jit(jacfwd)", jax.jacfwd, case.n)):
            skip = budget.vmap(passes, case.width)
            compiled = None if skip else jax.jit(transform(fn, argnums=argnums))
            if compiled is not None:
                jax.block_until_ready(compiled(*jax_args))  # compile outside the timings
            add(Row(label, peer=True, skipped=skip, how=f"{passes:,} passes, XLA"),
                None if compiled is None else (lambda c=compiled: jax.block_until_ready(c(*jax_args))))
    if case.floor:
        add(Row("hand-written VJP with ones (floor)", how="1 backward pass: the diagonal only"),
            lambda: one_vjp(f, args[0]), compare=False)
        rows[-1].interleaved = interleaved(
            lambda: compute_jacobian(case.expr, case.inputs, wrt=list(case.wrt), device=device, layout="diagonal"),
            lambda: one_vjp(f, args[0]), device, options.interleaved_rounds,
        )
    return rows


def interleaved(a: Callable[[], Any], b: Callable[[], Any], device: str, rounds: int) -> tuple[float, float, int]:
    """(median of a, median of b, rounds) from ``rounds`` calls of each, taking turns: a load that
    comes and goes weighs on both alike, where the rows above time one after the other."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(3):
        a(), b()
    for _ in range(rounds):
        for fn, kept in zip((a, b), times):
            start = time.perf_counter()
            fn()
            sync(device)
            kept.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1]), rounds


def show(case: Case, rows: list[Row]) -> None:
    peers = [r.seconds for r in rows if r.peer and r.seconds is not None]
    best = min(peers) if peers else None
    for r in rows:
        if r.skipped:
            print(f"{case.name:<24} {r.method:<46} {r.skipped}")
            continue
        ratio = f"{r.seconds / best:>8.2f}" if best else f"{'-':>8}"
        peak = f"{r.peak / 2**20:>9.1f}" if r.peak is not None else f"{'n/a':>9}"
        print(f"{case.name:<24} {r.method:<46} {r.seconds * 1e3:>10.3f} {r.best * 1e3:>9.3f} {r.runs:>4} {ratio} {peak} "
              f"{r.result / 2**20:>9.2f} {r.ok:>4}  {r.how}")
    floor = next((r for r in rows if r.method.startswith("hand-written VJP") and r.seconds), None)
    diagonal = next((r for r in rows if r.method == 'jacli layout="diagonal"' and r.seconds), None)
    if floor is not None and diagonal is not None:
        jacli, vjp, rounds = floor.interleaved
        print(f"{case.name:<24} # diagonal layout / hand-written VJP: {diagonal.seconds / floor.seconds:.2f}x by median, "
              f"{diagonal.best / floor.best:.2f}x by fastest call; taking turns, {rounds} rounds: {jacli * 1e3:.3f} / "
              f"{vjp * 1e3:.3f} ms = {jacli / vjp:.2f}x")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs, shorter rows and tighter skips")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads(N)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--case", action="append", default=[], help="only the cases whose name contains this (repeatable)")
    parser.add_argument("--repeats", type=int, help="timed calls per row (default 7, --quick 3)")
    parser.add_argument("--row-seconds", type=float, help="timed calls per row stop after this (default 10, --quick 3)")
    parser.add_argument("--interleaved-rounds", type=int, default=300,
                        help="rounds of the diagonal layout and the hand-written VJP taking turns (default 300)")
    parser.add_argument("--max-call-seconds", type=float, help="skip what is estimated to take longer per call "
                        "(default 20, --quick 2)")
    options = parser.parse_args()
    options.repeats = options.repeats or (3 if options.quick else 7)
    options.row_seconds = options.row_seconds or (3.0 if options.quick else 10.0)
    options.max_call_seconds = options.max_call_seconds or (2.0 if options.quick else 20.0)
    if options.threads:
        torch.set_num_threads(options.threads)
    if options.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        jax_line = f"jax {jax.__version__} ({jax.default_backend()})"
    except ImportError:
        jax, jax_line = None, "jax not installed"

    device = options.device
    where = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else (
        platform.processor() or platform.machine())
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, {where}, "
          f"device {device}, python {platform.python_version()}, {jax_line}; median of up to {options.repeats}; "
          f"load average {os.getloadavg()[0]:.1f}")
    budget = Budget(device, options.max_call_seconds)
    print(f"# jacrev rate for the estimates: {budget.rate * 1e9:.1f} ns per pass x element; "
          f"skip over {options.max_call_seconds:g} s per call")
    print(f"{'case':<24} {'method':<46} {'median ms':>10} {'min ms':>9} {'runs':>4} {'× best':>8} {'peak MB':>9} "
          f"{'result MB':>9} {'ok':>4}  how")
    started = time.perf_counter()
    for case in make_cases(device):
        if options.case and not any(s in case.name for s in options.case):
            continue
        show(case, run_case(case, options, budget, jax))
    print(f"# {time.perf_counter() - started:.0f} s; load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end (1, 5, 15 min)")


if __name__ == "__main__":
    main()
