"""Peak memory of a command, measured from outside: run it as a child process and read the
kernel's high-water mark of its resident set (``ru_maxrss``) from ``os.wait4``.

``os.wait4`` gives the usage of that one child, so earlier children of the test session (which
``getrusage(RUSAGE_CHILDREN)`` would fold in) do not count. Nothing here sleeps: the call
returns when the child exits; ``timeout`` only kills a child that hangs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass

MB = 10**6
"""jacli's megabyte (`--max-memory 100MB` is 10⁸ bytes)."""


@dataclass
class Run:
    returncode: int
    peak: int
    """Peak resident set size in bytes."""
    stdout: bytes
    stderr: str


def peak_rss(argv: list[str], *, stdin: bytes | None = None, env: dict | None = None, timeout: float = 600) -> Run:
    """Run ``argv`` to completion and return its exit code, peak RSS and output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as given:
        if stdin is not None:
            given.write(stdin)
            given.seek(0)
        process = subprocess.Popen(
            argv, stdin=given if stdin is not None else subprocess.DEVNULL, stdout=out, stderr=err,
            env={**os.environ, "JACLI_DEBUG": "", **(env or {})},
        )
        killer = threading.Timer(timeout, process.kill)  # a safety net for a hang, not a measurement
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        # ru_maxrss is in kilobytes on Linux (bytes on macOS)
        scale = 1 if sys.platform == "darwin" else 1024
        return Run(process.returncode, usage.ru_maxrss * scale, out.read(), err.read().decode("utf-8", "replace"))


def jacli(*args: str, **kwargs) -> Run:
    """``python -m jacli ARGS`` with this interpreter, measured."""
    return peak_rss([sys.executable, "-m", "jacli", *args], **kwargs)


_BASELINE: list[int] = []


def torch_baseline() -> int:
    """Peak RSS of ``python -c "import torch"``, measured once per test session."""
    if not _BASELINE:
        run = peak_rss([sys.executable, "-c", "import torch"])
        assert run.returncode == 0, run.stderr
        _BASELINE.append(run.peak)
    return _BASELINE[0]
