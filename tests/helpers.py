"""Test helpers shared by several test files: the CLI runner, recorded work, seeded tensors."""

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


def record_work(monkeypatch) -> list[str]:
    """Record the real work jacli does: each input it builds or reads, each evaluation on real tensors.

    Returns a list that fills as the work happens ("input x", "evaluate x**2"). A refusal made
    from shapes alone leaves it empty; shape-only ("meta") runs, which allocate nothing, are not
    recorded. The functions are wrapped, not replaced, so the computation still runs.
    """
    import dataclasses

    import jacli.compile
    import jacli.inputs.build
    import jacli.inputs.files

    work: list[str] = []
    construct, read_file, compile_expression = (
        jacli.inputs.build._construct, jacli.inputs.files.read_file, jacli.compile.compile_expression
    )

    def constructed(spec, shape, name, *args, **kwargs):
        work.append(f"input {name}")
        return construct(spec, shape, name, *args, **kwargs)

    def read(spec, name, *args, **kwargs):
        work.append(f"input {name}")
        return read_file(spec, name, *args, **kwargs)

    def compiled(text: str):
        real = compile_expression(text)

        def recorded(run):
            def evaluate(*tensors):
                if all(t.device.type != "meta" for t in tensors):
                    work.append(f"evaluate {text}")
                return run(*tensors)

            return evaluate

        return dataclasses.replace(real, function=recorded(real.function), checked=recorded(real.checked))

    monkeypatch.setattr(jacli.inputs.build, "_construct", constructed)
    monkeypatch.setattr(jacli.inputs.files, "read_file", read)
    monkeypatch.setattr(jacli.compile, "compile_expression", compiled)
    return work


def cli(*argv: str):
    """Run the jacli app in-process with --debug off; stdout and stderr kept apart."""
    from jacli.cli import app

    return cli_runner().invoke(app, list(argv), env={"JACLI_DEBUG": ""})


def cli_json(*argv: str) -> dict:
    """``cli(*argv, "--format", "json")``, which must succeed, parsed."""
    import json

    result = cli(*argv, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def random(shape, seed: int):
    """A float64 standard-normal tensor from its own seeded generator (no global RNG state)."""
    import torch

    return torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
