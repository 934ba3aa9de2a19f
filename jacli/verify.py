"""``jacli check``: every applicable method against the exact answer, in one command.

The Jacobian is computed in float64 on the CPU by reverse mode, forward mode, the row loop,
SymPy's exact derivative (when the expression is small enough to expand) and central finite
differences with Richardson extrapolation. Each is compared with the reference — the exact
derivative where available, else reverse mode — entry by entry with gradcheck's rule
``|a - r| <= atol + rtol * |r|``. Where an input sits on a kink (relu, abs, sign at 0; max or
min at a tie) the derivative is not defined; torch picks a convention there (relu'(0) = 0,
abs'(0) = 0, ties split 1/2 : 1/2) that finite differences cannot see, so a difference of finite
differences there is reported as a kink, not as a failure.

Example:
    >>> check("sin(x)*x", {"x": "randn:5"}).ok
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import sympy as sp

from jacli import nodes

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-5
"""gradcheck's defaults."""

KINKED = (nodes.relu, sp.Abs, sp.sign, sp.Max, sp.Min, sp.Heaviside)


@dataclass
class MethodCheck:
    """One method's agreement with the reference.

    Attributes:
        method: e.g. ``"forward"``, ``"finite differences"``.
        max_abs, max_rel: the largest absolute and relative differences from the reference.
        ok: every entry within ``atol + rtol * |reference|``.
        note: why a method was skipped, or why a difference is expected.
    """

    method: str
    max_abs: float = math.nan
    max_rel: float = math.nan
    ok: bool = True
    note: str = ""
    skipped: bool = False


@dataclass
class CheckReport:
    """What ``check`` found; ``ok`` is what the exit code says."""

    expression: str
    reference: str
    rtol: float
    atol: float
    inputs: dict[str, tuple[int, ...]]
    output_shape: tuple[int, ...]
    methods: list[MethodCheck] = field(default_factory=list)
    kinks: list[str] = field(default_factory=list)

    command = "check"

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.methods)


def check(
    expr: str,
    inputs: Any,
    *,
    wrt: Sequence[str] | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    seed: int = 0,
    max_memory: int | None = None,
    reference: Callable[..., Sequence[Any]] | None = None,
) -> CheckReport:
    """Compute the Jacobian with every applicable method and compare them.

    Args:
        expr, inputs, wrt, seed, max_memory: as for ``jacli.jacobian``.
        rtol, atol: the tolerance, gradcheck's rule.
        reference: replaces the reference method: ``reference(f, args, wrt_positions)`` returns
            one block per input (used by the tests to prove that check can fail).

    Returns:
        A ``CheckReport``; ``report.ok`` is False when some method disagrees beyond tolerance.
    """
    from jacli import api, engine, symbolic

    problem = api._prepare(expr, inputs, wrt, "cpu", "float64", seed, max_memory)
    api._check_jacobian_budget(problem)
    f, args, positions = problem.compiled.function, problem.args, problem.wrt_positions
    report = CheckReport(
        expression=expr, reference="", rtol=rtol, atol=atol, inputs=problem.shapes,
        output_shape=tuple(problem.output.shape),
    )
    results: dict[str, Sequence[Any] | None] = {}
    notes: dict[str, str] = {}
    try:
        exact = problem.symbolic_jacobian()
        results["symbolic"] = [problem.evaluate(exact[name]) for name in problem.wrt]
    except Exception as error:  # too large to expand, or a SymPy limitation: skip, and say why
        results["symbolic"] = None
        notes["symbolic"] = str(error).split(". ")[0]
    for method in ("reverse", "forward", "rows"):
        results[method] = engine.jacobian(f, args, positions, method)
    fd_blocks, fd_errors = engine.finite_differences(f, args, positions)
    results["finite differences"] = fd_blocks

    if reference is not None:
        report.reference, reference_blocks = "given reference", list(reference(f, args, positions))
    elif results["symbolic"] is not None:
        report.reference, reference_blocks = "symbolic", results["symbolic"]
    else:
        report.reference, reference_blocks = "reverse", results["reverse"]
    report.kinks = kinks(problem)

    for method, blocks in results.items():
        if method == report.reference:
            continue
        if blocks is None:
            report.methods.append(MethodCheck(method, note=f"skipped: {notes[method]}", skipped=True))
            continue
        slack = fd_errors if method == "finite differences" else None
        entry = compare(method, blocks, reference_blocks, rtol, atol, slack)
        if not entry.ok and method == "finite differences" and report.kinks:
            entry.ok = True
            entry.note = "differs at a kink (see above)"
        report.methods.append(entry)
    return report


def compare(
    method: str, blocks: Sequence[Any], reference: Sequence[Any], rtol: float, atol: float,
    slack: Sequence[Any] | None = None,
) -> MethodCheck:
    """Largest differences, and gradcheck's rule entry by entry (plus ``slack``, an error bound)."""
    import torch

    max_abs = max_rel = 0.0
    ok = True
    for i, (got, want) in enumerate(zip(blocks, reference)):
        got, want = got.detach().to(torch.float64).cpu(), want.detach().to(torch.float64).cpu()
        both_nan = torch.isnan(got) & torch.isnan(want)
        same_inf = torch.isinf(got) & (got == want)
        diff = torch.where(both_nan | same_inf, torch.zeros_like(got), (got - want).abs())
        diff = torch.nan_to_num(diff, nan=math.inf)
        bound = atol + rtol * want.abs()
        if slack is not None:
            bound = bound + 10 * slack[i].detach().cpu()
        ok = ok and bool((diff <= bound).all())
        if diff.numel():
            max_abs = max(max_abs, float(diff.max()))
            nonzero = want != 0
            if bool(nonzero.any()):
                max_rel = max(max_rel, float((diff[nonzero] / want[nonzero].abs()).max()))
    return MethodCheck(method, max_abs, max_rel, ok)


def kinks(problem: Any) -> list[str]:
    """Where an input sits exactly on a kink: the function, the place and the value."""
    import torch

    from jacli.compile import _positional, compile_tree

    found = []
    read = _positional(problem.compiled.variables)
    for node in sp.preorder_traversal(problem.compiled.tree):
        if not isinstance(node, KINKED):
            continue
        if isinstance(node, (sp.Max, sp.Min)) and len(node.args) == 2:
            argument = sp.Add(node.args[0], -node.args[1], evaluate=False)
        else:
            argument = node.args[0]
        value = compile_tree(argument, read)(problem.args)
        value = torch.as_tensor(value)
        zeros = (value == 0).nonzero().tolist()
        if zeros:
            where = ", ".join(f"[{', '.join(map(str, index))}]" if index else "" for index in zeros[:5])
            more = f" and {len(zeros) - 5} more" if len(zeros) > 5 else ""
            place = f" at {where}{more}" if where else ""
            what = "a tie" if isinstance(node, (sp.Max, sp.Min)) else "0"
            found.append(f"{node} has its argument at {what}{place}")
    return found
