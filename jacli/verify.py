"""``jacli check``: every applicable method against the exact answer, in one command.

The Jacobian is computed in float64 on the CPU by reverse mode, forward mode, the row loop,
the compressed evaluation over the formula's sparsity pattern,
SymPy's exact derivative (when the expression is small enough to expand) and central finite
differences with Richardson extrapolation. Each is compared with the reference — the exact
derivative where available, else reverse mode — entry by entry with gradcheck's rule
``|a - r| <= atol + rtol * |r|`` (for finite differences, plus ten times their error estimate).

Three rules decide the verdict:

* A NaN or infinite entry, in the reference or in a method, never counts as agreement. A
  non-finite reference means the point is a singularity of the derivative (sqrt or log at 0,
  norm at the origin): nothing can confirm the numbers there, and the check fails with the
  entries named.
* Finite differences cannot see torch's convention at a kink (relu'(0) = 0, abs'(0) = 0, ties
  of max/min split 1/2 : 1/2, and the jumps of sign, floor, comparisons): a difference across a
  kink straddles two pieces. So an entry of finite differences that differs (or whose own error
  estimate exceeds the tolerance, as across a jump) is excused when its column's step moves a
  kinked argument, as the table's ``kinks`` name them (the argument of relu, abs, sign,
  Heaviside, the difference of the two arguments of max, min or a comparison), from or across
  zero, i.e. the signs of that argument at x and at the points x ± h, x ± h/2, x ± h/4 that
  the differences evaluate are not all the same. Only those columns are excused, only for
  finite differences; every other entry must agree. ``where(c, a, b)`` changes piece where c
  crosses 0, or, when c is a comparison (or another step), at that step's kinks only.
* ``max_abs`` and ``max_rel`` are taken over the same entries: those finite in both the method
  and the reference. ``max_rel`` is ``|a - r| / |r|``, infinite where the reference is 0 and the
  method is not.

Example:
    >>> check("sin(x)*x", {"x": "randn:5"}).ok
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import sympy as sp

from jacli.errors import InputError, JacliError
from jacli.result import DEFAULT_ATOL, DEFAULT_RTOL, CheckReport, MethodCheck, output_symbol


FD = "finite differences"
FD_SLACK = 10
"""Finite differences may differ from the reference by this many times their error estimate."""

SHOWN = 5
"""How many places a message lists before "and N more"."""


def check_tolerances(rtol: Any, atol: Any) -> None:
    """A tolerance is a finite number >= 0; anything else is an ``InputError`` naming it."""
    for name, value, default in (("rtol", rtol, DEFAULT_RTOL), ("atol", atol, DEFAULT_ATOL)):
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or number < 0:
            shown = format(value, "g") if number is not None else repr(value)
            raise InputError(
                f"`{name}` {shown} is not a tolerance: give a finite number >= 0, "
                f"such as `{name}` {default:g} (gradcheck's default), or 0 to demand exact agreement",
                param=name,
            )


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
    untrusted: bool = False,
) -> CheckReport:
    """Compute the Jacobian with every applicable method and compare them.

    Args:
        expr, inputs, wrt, seed, max_memory, untrusted: as for ``jacli.compute_jacobian``.
        rtol, atol: the tolerance, gradcheck's rule; finite numbers >= 0.
        reference: replaces the reference method: ``reference(f, args, wrt_positions)`` returns
            one block per input (used by the tests to prove that check can fail).

    Returns:
        A ``CheckReport``; ``report.ok`` is False when some method disagrees beyond tolerance or
        a Jacobian entry is NaN or infinite.
    """
    from jacli.compile import compile_tree
    from jacli.engine import autodiff, exact, finite
    from jacli.problem import prepare

    check_tolerances(rtol, atol)
    problem = prepare(expr, inputs, wrt=wrt, seed=seed, max_memory=max_memory, result="jacobian", untrusted=untrusted)
    f, args, positions = problem.compiled.function, problem.args, problem.wrt_positions
    names = list(problem.wrt)
    report = CheckReport(
        expression=expr, reference="", rtol=rtol, atol=atol, inputs=problem.shapes,
        output_shape=tuple(problem.plan.output_shape),
    )
    results: dict[str, Sequence[Any] | None] = {}
    notes: dict[str, str] = {}
    try:
        from jacli.problem import UNTRUSTED_SECONDS

        with exact.deadline(UNTRUSTED_SECONDS if problem.untrusted else None):
            entries = exact.jacobian(problem.compiled.tree, problem.shapes, problem.wrt)
            results["symbolic"] = [exact.evaluate(entries[name], problem.variables, args, compile_tree) for name in names]
    except JacliError as error:  # too large to expand, or a SymPy limitation: skip, and say why
        results["symbolic"] = None
        notes["symbolic"] = str(error).split(". ")[0]
    for method in ("reverse", "forward", "rows"):
        chunk = {"reverse": problem.plan.reverse_chunk, "forward": problem.plan.forward_chunk}.get(method, lambda: None)()
        results[method] = autodiff.jacobian(f, args, positions, method, chunk_size=chunk)[1]
    results["compressed"] = _compressed_blocks(problem)
    results["structured"] = _structured_blocks(problem)
    if results["structured"] is None:
        notes["structured"] = "covers vectors, arithmetic, elementwise functions and a constant matrix times a vector"
    fd_blocks, fd_errors = finite.finite_differences(f, args, positions)
    results[FD] = fd_blocks

    symbol = output_symbol(problem.inputs)  # y, unless an input is called y
    if reference is not None:
        report.reference, reference_blocks = "given reference", list(reference(f, args, positions))
    elif results["symbolic"] is not None:
        report.reference, reference_blocks = "symbolic", results["symbolic"]
    else:
        report.reference, reference_blocks = "reverse", results["reverse"]
    report.singular = [
        f"the reference ({report.reference}) is {place}"
        for place in _nonfinite(reference_blocks, names, symbol)
    ]
    kinked = _kinked_arguments(problem)
    report.kinks = kinks(problem, kinked)

    for method, blocks in results.items():
        if method == report.reference:
            continue
        if blocks is None:
            report.methods.append(MethodCheck(method, note=f"skipped: {notes[method]}", skipped=True))
            continue
        slack = fd_errors if method == FD else None
        entry = compare(method, blocks, reference_blocks, rtol, atol, slack, names=names, symbol=symbol)
        if method == FD and (not entry.ok or entry.note) and kinked:
            crossing = crossings(problem, kinked)  # only when they did not agree cleanly: it costs a loop
            if crossing:
                entry = compare(method, blocks, reference_blocks, rtol, atol, slack, crossing, names, symbol)
        report.methods.append(entry)
    return report


def _structured_blocks(problem: Any) -> list[Any] | None:
    """Structured accumulation for each input, or None where the formula is not covered."""
    from jacli.engine.structured import accumulate

    blocks = []
    for name in problem.wrt:
        found = accumulate(problem.compiled.tree, problem.inputs, name)
        if found is None:
            return None
        blocks.append(found[1])
    return blocks


def _compressed_blocks(problem: Any) -> list[Any]:
    """The Jacobian from the formula's sparsity pattern: one JVP or VJP per colour, made dense.

    A pattern that missed a nonzero would fold it into its colour-mates' entries, so this
    method checks the pattern as much as the numbers."""
    from jacli.engine import compressed
    from jacli.structure import patterns

    found = patterns(problem.compiled.tree, problem.shapes, problem.wrt)
    blocks = []
    for name, position in zip(problem.wrt, problem.wrt_positions):
        pattern = found[name]
        by_column, by_row = compressed.color_columns(pattern), compressed.color_rows(pattern)
        mode, coloring = ("forward", by_column) if by_column[1] <= by_row[1] else ("reverse", by_row)
        _, values = compressed.jacobian_compressed(
            problem.compiled.function, problem.args, position, pattern, mode, coloring=coloring
        )
        blocks.append(compressed.to_dense(pattern, values))
    return blocks


def compare(
    method: str, blocks: Sequence[Any], reference: Sequence[Any], rtol: float, atol: float,
    slack: Sequence[Any] | None = None,
    crossing: Mapping[int, tuple[tuple[int, ...], Mapping[int, list[str]]]] | None = None,
    names: Sequence[str] | None = None,
    symbol: str = "y",
) -> MethodCheck:
    """Largest differences, and gradcheck's rule entry by entry.

    Args:
        slack: error bounds per entry (finite differences): the tolerance grows by FD_SLACK times them.
        crossing: ``{block: (input shape, {flat input element: [kinks its step crosses]})}``
            (see ``crossings``): differences in those columns are excused, and so are entries
            there whose error estimate alone exceeds the tolerance (a step across a jump).
        names: the input of each block, for messages (``dy/dx[1, 0]``).
        symbol: the output's name in those messages (``f`` where an input is called ``y``).
    """
    import torch

    names = list(names) if names is not None else [f"input{i}" for i in range(len(blocks))]
    max_abs = max_rel = -math.inf
    failed = unreferenced = uncertain = 0
    widest_error = 0.0
    excused: dict[str, list[str]] = {}
    for b, (got, want) in enumerate(zip(blocks, reference)):
        got = torch.as_tensor(got).detach().to(torch.float64).cpu()
        want = torch.as_tensor(want).detach().to(torch.float64).cpu()
        got, want = torch.broadcast_tensors(got, want)
        finite_got, finite_want = torch.isfinite(got), torch.isfinite(want)
        both = finite_got & finite_want
        unreferenced += int((~finite_want).sum())
        diff = torch.where(both, (got - want).abs(), torch.zeros_like(got))
        rel = torch.where(diff == 0, torch.zeros_like(diff), diff / want.abs())
        tolerance = atol + rtol * want.abs()
        bound = tolerance
        vague = torch.zeros_like(both)
        if slack is not None:
            error = torch.as_tensor(slack[b]).detach().to(torch.float64).cpu().expand_as(got)
            bound = tolerance + FD_SLACK * error
            vague = both & ~(FD_SLACK * error <= tolerance)
        bad = both & ~(diff <= bound)
        if crossing and b in crossing and bool((bad | vague).any()):
            # a difference across a jump (floor, x > 0) is huge, and so is its error estimate:
            # within its slack but confirming nothing, it is excused at the kink like one that differs
            input_shape, columns = crossing[b]
            bad_columns = bad.reshape(-1, math.prod(input_shape)).clone()
            vague_columns = vague.reshape(-1, math.prod(input_shape)).clone()
            for k, kinked in columns.items():
                if bool(bad_columns[:, k].any() or vague_columns[:, k].any()):
                    excused[_element(names[b], k, input_shape)] = kinked
                    bad_columns[:, k] = vague_columns[:, k] = False
            bad, vague = bad_columns.reshape(bad.shape), vague_columns.reshape(vague.shape)
        if bool(vague.any()):
            uncertain += int(vague.sum())
            widest_error = max(widest_error, float(error[vague].max()))
        failed += int(bad.sum())
        if bool(both.any()):
            max_abs = max(max_abs, float(diff[both].max()))
            max_rel = max(max_rel, float(rel[both].max()))
    entry = MethodCheck(method, max_abs if max_abs >= 0 else math.nan, max_rel if max_rel >= 0 else math.nan)
    entry.nonfinite = _nonfinite(blocks, names, symbol)
    entry.excused = list(excused)
    entry.ok = failed == 0 and not entry.nonfinite and unreferenced == 0
    parts = []
    if entry.nonfinite:
        parts.append(f"not finite: {'; '.join(entry.nonfinite)}")
    if unreferenced:
        parts.append(f"not confirmed at the {_count(unreferenced, 'entry', 'entries')} where the reference is not finite")
    if failed:
        parts.append(f"beyond tolerance at {_count(failed, 'entry', 'entries')}")
    if excused:
        kinked = sorted({k for ks in excused.values() for k in ks})
        parts.append(
            f"differs at a kink, excused in the columns of {_listed(list(excused))}: the step there "
            f"crosses the kink of {', '.join(kinked)}"
        )
    if uncertain:
        parts.append(
            f"its error estimate (up to {widest_error:.2g}) exceeds the tolerance at "
            f"{_count(uncertain, 'entry', 'entries')}, which it hardly confirms"
        )
    entry.note = "; ".join(parts)
    return entry


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _index(index: Sequence[int]) -> str:
    return f"[{', '.join(map(str, index))}]" if len(index) else ""


def _element(name: str, k: int, shape: tuple[int, ...]) -> str:
    """Input element ``k`` (flat) of ``name``, as ``x[1, 0]`` (``x`` for a scalar)."""
    import numpy as np

    return name + _index([int(i) for i in np.unravel_index(k, shape)] if shape else [])


def _nonfinite(blocks: Sequence[Any], names: Sequence[str], symbol: str = "y") -> list[str]:
    """Where the blocks are NaN or infinite: ``"nan at dy/dx[1, 0], dy/dx[2, 0]"``, per kind."""
    import torch

    places: dict[str, list[str]] = {}
    for name, block in zip(names, blocks):
        block = torch.as_tensor(block).detach().to(torch.float64).cpu()
        for kind, mask in (("nan", torch.isnan(block)), ("inf", block == math.inf), ("-inf", block == -math.inf)):
            for index in mask.nonzero().tolist():
                places.setdefault(kind, []).append(f"d{symbol}/d{name}{_index(index)}")
    return [f"{kind} at {_listed(where)}" for kind, where in places.items()]


@dataclass(frozen=True)
class Kink:
    """One kinked sub-expression, as messages name it: ``text`` (``relu(x)``, ``x > 0``) and
    ``place``, what holds on the kink (``its argument is 0``)."""

    text: str
    place: str

    def __str__(self) -> str:
        return self.text


def _kinked_arguments(problem: Any) -> list[tuple[Kink, Callable[[tuple], Any]]]:
    """Each kinked node with a compiled argument whose sign says on which piece the input is,
    as the table's ``kinks`` names them (relu's argument, a - b for max(a, b), ...)."""
    from jacli.compile import _positional, compile_tree
    from jacli.functions import BY_NODE
    from jacli.printing import to_text

    read = _positional(problem.compiled.variables)
    found = []
    for node in sp.preorder_traversal(problem.compiled.tree):
        entry = BY_NODE.get(node.func)
        if entry is None or entry.kinks is None:
            continue
        operands, _ = entry.split(node.args)
        text = to_text(node)
        found += [(Kink(text, place), compile_tree(argument, read))
                  for argument, place in zip(entry.kinks(operands), entry.kinks.places)]
    return found


def kinks(problem: Any, kinked: list[tuple[Kink, Callable[[tuple], Any]]] | None = None) -> list[str]:
    """Where an input sits exactly on a kink: the sub-expression, the place and what holds there
    (``relu(x) at [1]: its argument is 0``)."""
    import torch

    found = []
    for kink, argument in kinked if kinked is not None else _kinked_arguments(problem):
        value = torch.as_tensor(argument(problem.args))
        zeros = (value == 0).nonzero().tolist()
        if zeros:
            where = _listed([_index(index) for index in zeros])
            place = f" at {where}" if where else ""
            found.append(f"{kink.text}{place}: {kink.place}")
    return found


def crossings(
    problem: Any, kinked: list[tuple[Kink, Callable[[tuple], Any]]]
) -> dict[int, tuple[tuple[int, ...], dict[int, list[str]]]]:
    """The input elements whose finite-difference steps cross or leave a kink.

    Element k's column is affected when some kinked argument has not the same sign at x, x ± h,
    x ± h/2 and x ± h/4, the points ``finite.shifts`` lists and ``finite.finite_differences`` evaluates: the differences then
    straddle two pieces of the function and cannot see the derivative torch defines at the kink.

    Returns:
        ``{block: (input shape, {k: [kinked nodes]})}`` for the blocks with such elements.
    """
    import torch

    from jacli.engine import finite

    args = problem.args
    found: dict[int, tuple[tuple[int, ...], dict[int, list[str]]]] = {}
    bases = [torch.sign(torch.as_tensor(argument(args))) for _, argument in kinked]
    for b, i in enumerate(problem.wrt_positions):
        x = args[i]
        flat = x.reshape(-1)
        for k in range(flat.numel()):
            moved = []
            for s in finite.shifts(float(flat[k])):
                shifted = flat.clone()
                shifted[k] += s
                moved.append(tuple(shifted.reshape(x.shape) if j == i else a for j, a in enumerate(args)))
            hits = []
            for (node, argument), base in zip(kinked, bases):
                for point in moved:
                    sign = torch.sign(torch.as_tensor(argument(point)))
                    if bool(((sign != base) & ~torch.isnan(sign) & ~torch.isnan(base)).any()):
                        hits.append(str(node))
                        break
            if hits:
                found.setdefault(b, (tuple(x.shape), {}))[1][k] = sorted(set(hits))
    return found
