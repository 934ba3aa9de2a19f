"""Test helpers shared by the CLI tests."""

from __future__ import annotations

from typer.testing import CliRunner


def cli_runner() -> CliRunner:
    """A CliRunner whose result keeps stdout and stderr apart, on any supported click.

    click >= 8.2 always keeps them apart; older click needs ``mix_stderr=False`` (an argument
    that 8.2 removed).
    """
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()
