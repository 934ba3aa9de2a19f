"""``python -m jacli``, and the ``jacli`` script's entry point.

The script starts here rather than in ``jacli.cli`` so that a Ctrl-C while Python is still
importing Typer and the CLI is answered like any other: "Interrupted." and exit code 130.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Import the CLI and run it; an interrupt during the import is not a traceback."""
    try:
        from jacli.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
