"""The house rules, read from the code: imports point one way, derivatives are taken in one place.

Each rule is checked on every ``import`` statement of every module (those inside functions
too, where jacli keeps its heavy imports), so a shortcut that breaks the flow fails here.

    argv ─► cli ─► api ─► problem/plan ─► engine ─► result ─► render ─► stdout
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "jacli"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> set[str]:
    """Every jacli module ``path`` imports, written as ``jacli.x.y``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "jacli" or name.startswith("jacli.")}


IMPORTS = {_module_name(path): _imports(path) for path in MODULES}

TOP = {"jacli", "jacli.__main__", "jacli.cli"}
"""The entry points: they may import anything."""

RUNNERS = {"jacli.batch"}
"""Run many jobs through the API and write them with the renderers, as the CLI does (not the CLI)."""

RENDERERS = {"jacli.render", "jacli.render_points"}
"""Formatting only: the renderers of one result and of many points."""


def _reaches(module: str, target: str) -> bool:
    return any(name == target or name.startswith(target + ".") for name in IMPORTS[module])


def test_the_modules_are_found() -> None:
    assert {"jacli.api", "jacli.cli", "jacli.problem", "jacli.plan", "jacli.result", "jacli.render",
            "jacli.engine.autodiff", "jacli.engine.exact", "jacli.engine.finite"} <= set(IMPORTS)


@pytest.mark.parametrize("module", sorted(set(IMPORTS) - TOP))
def test_only_the_entry_points_import_the_cli(module: str) -> None:
    assert not _reaches(module, "jacli.cli")


@pytest.mark.parametrize("module", sorted(set(IMPORTS) - TOP - RUNNERS - {"jacli.api"}))
def test_nothing_below_the_api_imports_the_api_or_the_renderers(module: str) -> None:
    assert not _reaches(module, "jacli.api")
    if module not in RENDERERS:
        assert not _reaches(module, "jacli.render")


@pytest.mark.parametrize("module", sorted(m for m in IMPORTS if m.startswith("jacli.engine")))
def test_the_engine_reads_no_text(module: str) -> None:
    """The engine works on compiled functions and trees; it neither parses nor builds problems."""
    for upper in ("jacli.parse", "jacli.compile", "jacli.problem", "jacli.inputs", "jacli.render", "jacli.api"):
        assert not _reaches(module, upper), upper


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_render_computes_nothing(renderer: str) -> None:
    """The renderers read results; they import no engine, problem or compiler."""
    for lower in ("jacli.engine", "jacli.problem", "jacli.compile", "jacli.api", "jacli.verify", "jacli.points"):
        assert not _reaches(renderer, lower), lower


def _calls(path: pathlib.Path) -> set[str]:
    """The dotted names a module calls, such as ``torch.func.jacrev`` or ``sp.diff``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            parts = []
            target = node.func
            while isinstance(target, ast.Attribute):
                parts.append(target.attr)
                target = target.value
            if isinstance(target, ast.Name):
                names.add(".".join([target.id, *reversed(parts)]))
    return names


DERIVATIVES = {
    "torch.func.jacrev", "torch.func.jacfwd", "torch.func.vjp", "torch.func.jvp", "torch.func.grad",
    "torch.func.hessian", "torch.autograd.grad", "torch.autograd.functional.jacobian", "sp.diff",
}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_derivatives_are_taken_only_under_engine(path: pathlib.Path) -> None:
    if path.parent.name == "engine":
        return
    called = _calls(path) & DERIVATIVES
    assert not called, f"{path.name} takes derivatives: {called}"


def test_the_engine_takes_them() -> None:
    """The rule above could pass vacuously; the engine really calls these."""
    engine = set().union(*(_calls(p) for p in MODULES if p.parent.name == "engine"))
    assert {"torch.func.jacrev", "torch.func.jacfwd", "torch.autograd.grad", "sp.diff"} <= engine


def _messages(path: pathlib.Path) -> list[tuple[int, str]]:
    """The text of every message a module raises or warns with (its first argument), without
    the ``cli_message`` a JacliError may carry for the command line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        call = node.exc if isinstance(node, ast.Raise) else node
        if not isinstance(call, ast.Call) or not call.args:
            continue
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        if not (name.endswith("Error") or name in ("warn", "check_budget")):
            continue
        texts = call.args if name == "check_budget" else call.args[:1]  # what and advice, or the message
        parts = [n.value for arg in texts for n in ast.walk(arg) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        found.append((call.lineno, "".join(parts)))
    return found


@pytest.mark.parametrize(
    "path", [p for p in MODULES if p.name not in ("cli.py", "__main__.py")], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_library_messages_name_parameters_not_flags(path: pathlib.Path) -> None:
    """The library speaks Python: `max_memory`, not --max-memory (the CLI prints the flags)."""
    import re

    flags = [(line, text) for line, text in _messages(path) if re.search(r"(?<![\w-])--[a-z]", text)]
    assert not flags, flags


def test_the_message_scan_sees_messages() -> None:
    for module in ("plan.py", "limits.py", "problem.py"):
        texts = [text for _, text in _messages(PACKAGE / module)]
        assert any("`max_memory`" in text or "`wrt`" in text for text in texts), module
