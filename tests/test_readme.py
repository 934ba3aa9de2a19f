"""The README's examples are real: every `$ jacli ...` line in a ```console block is run and its
output must match what the README shows (trailing spaces aside).

After changing what jacli prints, refresh the README with

    python tests/test_readme.py --update
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from helpers import cli_runner

from jacli.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)
# Parts of the output that depend on the machine: compared up to this point only.
MACHINE_DEPENDENT = re.compile(r"over the memory budget of [0-9.]+ [kMGTP]?B")
MEASURED = re.compile(r"\(measured [0-9.]+ (?:µs|ms|s)\)")
"""--explain's measured time, which differs from run to run: not compared."""
WIDTH = "100"


def examples(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(command line, expected output, the block's commands before it) for each `$ jacli` line
    of each console block."""
    found = []
    for block in BLOCK.findall(text):
        parts = re.split(r"^\$ ", block, flags=re.MULTILINE)
        before: list[str] = []
        for part in parts[1:]:
            command, _, output = part.partition("\n")
            found.append((command, output, tuple(before)))
            before.append(command)
    return found


def run(command: str) -> str:
    """What the command prints: stdout, then stderr (errors), as a user sees it in a terminal."""
    argv = shlex.split(command)
    assert argv[0] == "jacli"
    result = cli_runner().invoke(app, argv[1:], env={"COLUMNS": WIDTH, "JACLI_DEBUG": ""})
    text = result.stdout + result.stderr
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def normalize(text: str) -> str:
    return MEASURED.sub("(measured <time>)", MACHINE_DEPENDENT.sub("over the memory budget of <machine>", text))


@pytest.mark.parametrize("command,expected,before", examples(README.read_text(encoding="utf-8")))
def test_readme_example(command: str, expected: str, before: tuple[str, ...], tmp_path, monkeypatch) -> None:
    # Each block starts with no last problem and runs in order: a block may continue a problem.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for earlier in before:
        run(earlier)
    assert normalize(run(command)) == normalize(expected)


def update() -> None:
    import os
    import tempfile

    text = README.read_text(encoding="utf-8")

    def refresh(block: re.Match) -> str:
        os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp()  # as the test runs it: no last problem
        body = block.group(1)
        parts = re.split(r"^\$ ", body, flags=re.MULTILINE)
        rebuilt = parts[0]
        for part in parts[1:]:
            command = part.partition("\n")[0]
            rebuilt += f"$ {command}\n{run(command)}"
        return f"```console\n{rebuilt}```"

    README.write_text(BLOCK.sub(refresh, text), encoding="utf-8")


if __name__ == "__main__" and "--update" in sys.argv:
    update()
