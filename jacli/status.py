"""Signs of life on a terminal: a transient status line on stderr while jacli works.

Only when stderr is a terminal (never on a pipe or in a log), only once a phase has run a moment,
and erased when it ends. rich is imported only when a status is about to show.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional


def progress_delay() -> float:
    """Seconds a phase runs before its status or progress bar appears (``JACLI_PROGRESS_DELAY``;
    0 shows it at once, as the tests do)."""
    try:
        return max(0.0, float(os.environ.get("JACLI_PROGRESS_DELAY", "0.5")))
    except ValueError:
        return 0.5


class Status:
    """A transient status line on stderr (a spinner and what jacli is doing) for a phase that
    may take a while: shown once it has run ``progress_delay()`` seconds, only when stderr is
    a terminal, and erased when the phase ends. A progress bar (the CLI's row loop) replaces it."""

    current: Optional["Status"] = None
    quiet = False
    """Set by the CLI for -q/--quiet: no status at all."""
    no_color = False
    """Set by the CLI for --no-color."""

    def __init__(self, message: str) -> None:
        import threading

        self.message = message
        self.live: Any = None
        self.lock = threading.Lock()
        self.timer: Any = None
        self.ended = False

    def __enter__(self) -> "Status":
        import threading

        if Status.quiet or sys.stderr is None or not sys.stderr.isatty():
            return self
        Status.current = self
        self.timer = threading.Timer(progress_delay(), self._show)
        self.timer.daemon = True
        self.timer.start()
        return self

    def _show(self) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.spinner import Spinner

        with self.lock:
            if self.ended:
                return
            console = Console(stderr=True, no_color=Status.no_color or None)
            if not console.is_terminal or console.is_dumb_terminal:
                return
            self.live = Live(Spinner("dots", text=self.message), console=console, transient=True,
                             refresh_per_second=8, redirect_stdout=False, redirect_stderr=False)
            self.live.start(refresh=True)

    def end(self) -> None:
        with self.lock:
            self.ended = True
            if self.timer is not None:
                self.timer.cancel()
            if self.live is not None:
                self.live.stop()
                self.live = None
        if Status.current is self:
            Status.current = None

    def __exit__(self, *exc: Any) -> None:
        self.end()

    @classmethod
    def end_current(cls) -> None:
        """Before another live display (a progress bar) starts: rich shows one at a time."""
        if cls.current is not None:
            cls.current.end()
