"""``python -m jacli``, and the ``jacli`` script's entry point.

The script starts here rather than in ``jacli.cli`` so that a Ctrl-C while Python is still
importing Typer and the CLI is answered like any other: "Interrupted." and exit code 130.
"""

from __future__ import annotations

import os
import sys

M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter: allocations from this size up are mapped and unmapped on their own."""


def return_freed_memory() -> None:
    """Have glibc give large freed blocks back to the system at once (Linux; elsewhere nothing).

    # NOTE [heap fragmentation]: glibc raises its mmap threshold each time a mapped block is
    # freed, up to 32 MB, so the many 1-30 MB temporaries of a chunked vectorized pass end up on
    # the heap, where freed ones are kept and fragment it: torch.func.jacrev of
    # sum(x_col * x_row, 0) at n = 600 peaked 0.66 GB above torch's import in chunks of 10 basis
    # vectors (about 30 MB of live tensors each), 58 MB with the threshold fixed at glibc's
    # default of 128 kB. Fixing it turns the dynamic adjustment off. At 128 kB, though, every
    # block of a chunked Hessian's rows was mapped and faulted in afresh: 2,500 scalar inputs
    # took 96 s (124 s of it in the kernel) against 12 s. Fixed at 8 MB, that Hessian takes
    # 11.7 s and the outer product at n = 600 still peaks at 357 MB (355 at 128 kB, 985 with
    # glibc's dynamic threshold, 1178 fixed at 32 MB), measured in one process each.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): keep its allocator as is
        pass


def main() -> None:
    """Import the CLI and run it; an interrupt during the import is not a traceback."""
    return_freed_memory()
    try:
        from jacli.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    try:
        run()
    except SystemExit as done:
        leave(done.code)
        raise  # (leave returns where a quick exit would not be safe: the normal way out)
    leave(0)


def leave(code: object) -> None:
    """End the process now with ``code``, skipping the interpreter's teardown, where that is safe.

    # NOTE [quick exit]: with torch loaded, Python's teardown at exit (freeing every module and
    # object one by one) takes 0.35-0.4 s of CPU on the 2-core machine, about a third of a small
    # call and more than SymPy's import: `python -c "import torch"` takes 1.45 s, with
    # os._exit(0) after the import 1.05 s. The operating system frees the memory anyway. What
    # exit must still do is done first: the atexit handlers run (logging, temporary files, what
    # libraries registered) and stdout and stderr are flushed. The normal way out is kept where
    # anything could still be pending or watching: another thread alive, a profiler or tracer
    # (cProfile, coverage, a debugger), an exit with a message, a flush that fails, or
    # JACLI_FULL_EXIT=1 in the environment.
    """
    import threading

    if code is None:
        code = 0
    if not isinstance(code, int) or threading.active_count() > 1 or sys.getprofile() or sys.gettrace():
        return
    if os.environ.get("JACLI_FULL_EXIT"):
        return
    try:
        import atexit

        atexit._run_exitfuncs()  # (run once: they are cleared, so the normal way out would not repeat them)
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except BaseException:  # a handler or a flush that fails: the normal way out reports it as before
        return
    os._exit(code)


if __name__ == "__main__":
    main()
