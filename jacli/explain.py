"""``--explain``: what a result means, told with the numbers of the run that made it.

``explain(result)`` reads a typed result (``jacli.result``) and its problem and builds an
``Explanation``: a list of titled sections, each a few lines of text for a reader and a ``data``
mapping of the same facts for scripts (``-f json``). What a section says is worked out here, from
this run: the shapes are the real ones, the exact partial derivatives come from SymPy (under a
short deadline, for small problems), the structure is read from the formula
(``jacli.structure``), the einsum check contracts a full Jacobian computed by the *other* mode
with ``v`` (or ``u``) and measures its difference from the result, and the cost is the engine's
measured time (``Problem.seconds``). How it is shown is ``jacli.render_explain``'s business.

Big problems are summarized: the exact entries are listed for at most ``MAX_SYMBOLIC_ENTRIES``
Jacobian entries, and the full-Jacobian check runs only for at most ``MAX_CHECK_ENTRIES`` entries
within the memory budget; otherwise the section says why it is left out.

Example:
    >>> from jacli.api import compute_vjp
    >>> e = explain(compute_vjp("x**2", {"x": [1.0, 2.0]}, [1.0, 1.0]))
    >>> e.section("product").data["einsum"]
    'torch.einsum("a,ab->b", v, J)'
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


MAX_SYMBOLIC_ENTRIES = 16
"""The exact partial derivatives are listed for Jacobians (Hessians) of at most this many entries."""

SYMBOLIC_SECONDS = 2.0
"""SymPy's deadline for the exact entries an explanation shows (they are an aside: past it, left out)."""

MAX_SHOWN_ENTRIES = 36
"""The full Jacobian of a vjp or jvp is shown, row by row, when it has at most this many entries."""

MAX_CHECK_ENTRIES = 4_000_000
"""The full Jacobian of the einsum check is computed for at most this many entries (32 MB in float64)."""


@dataclass
class Section:
    """One part of an explanation.

    Attributes:
        key: its name in JSON (``shape``, ``product``...).
        title: its heading for a reader.
        lines: what it says, one line each.
        data: the same facts for scripts: numbers, shapes, strings.
    """

    key: str
    title: str
    lines: list[str]
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Explanation:
    """What a result means: the command, the expression and the sections, in reading order."""

    command: str
    expression: str
    sections: list[Section]

    def section(self, key: str) -> Section:
        """The section named ``key`` (KeyError when this explanation has none)."""
        for section in self.sections:
            if section.key == key:
                return section
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready object: each section's lines as ``text``, with its data."""
        return {
            "command": self.command,
            "expression": self.expression,
            **{s.key: {"title": s.title, "text": s.lines, **s.data} for s in self.sections},
        }


def explain(result: Any) -> Explanation:
    """The explanation of ``result`` (a ``JacobianResult``, ``VJPResult``, ``JVPResult``,
    ``GradResult``, ``HessianResult`` or ``HVPResult``), built from its problem and numbers."""
    problem = result.problem
    command = result.command
    sections = [_function(result)]
    sections.append(_derivatives(result))
    sections.append(_shape(result))
    structure = _structure(result) if command in ("jacobian", "vjp", "jvp", "grad") else None
    if structure is not None:
        sections.append(structure)
    sections.append(_product(result))
    sections.append(_cost(result))
    return Explanation(command, problem.expression, sections)


def teach(result: Any, *, explain: bool = True, trace: bool = False) -> dict[str, Any]:
    """What ``--explain`` and ``--trace`` add to a result: ``explanation`` → ``Explanation``,
    ``trace`` → ``jacli.trace.Trace``, each built from this run."""
    taught: dict[str, Any] = {}
    if explain:
        taught["explanation"] = globals()["explain"](result)
    if trace:
        from jacli.trace import trace_of

        taught["trace"] = trace_of(result)
    return taught


# -- naming ------------------------------------------------------------------------------------------

def shape_text(shape: Sequence[int]) -> str:
    """``(2, 3)``, ``(3,)`` or ``()``: Python's spelling of a shape."""
    shape = tuple(shape)
    return "()" if not shape else f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(map(str, shape))})"


def _element(name: str, index: Sequence[int]) -> str:
    return f"{name}[{', '.join(map(str, index))}]" if len(index) else name


def _number(value: float) -> str:
    """A measured number, short: 6 significant digits."""
    value = float(value) + 0.0  # no -0
    return f"{value:.6g}"


def _tensor_text(tensor: Any, most: int = 8) -> str:
    """A small tensor inline (``[1, 2]``), or its shape alone when it has more than ``most`` elements."""
    if tensor.numel() > most:
        return f"shape {shape_text(tensor.shape)}"

    def nested(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(nested(v) for v in value) + "]"
        return _number(value)

    return nested(tensor.detach().cpu().tolist())


def _described(tensor: Any) -> str:
    """``shape (2,) = [1, 2]``, or the shape alone for a tensor too large to show inline."""
    shown = _tensor_text(tensor)
    return f"shape {shape_text(tensor.shape)}" + ("" if shown.startswith("shape") else f" = {shown}")


def _letters(count: int, start: int = 0) -> str:
    return string.ascii_lowercase[start:start + count]


def einsum_vjp(output_rank: int, input_rank: int) -> str:
    """The einsum that contracts v (output-shaped) with J (output + input shape): ``a,ab->b``."""
    out, inp = _letters(output_rank), _letters(input_rank, output_rank)
    return f"{out},{out}{inp}->{inp}"


def einsum_jvp(output_rank: int, input_rank: int) -> str:
    """The einsum that contracts J with u (input-shaped): ``ab,b->a``."""
    out, inp = _letters(output_rank), _letters(input_rank, output_rank)
    return f"{out}{inp},{inp}->{out}"


# -- the sections ------------------------------------------------------------------------------------

def _output(result: Any) -> str:
    """The output's name, as the pretty header calls it: ``y``, unless an input is called ``y``."""
    from jacli.result import output_symbol

    return output_symbol(result.problem.inputs)


def _function(result: Any) -> Section:
    problem = result.problem
    out = _output(result)
    lines = [f"{out} = {problem.expression}"]
    inputs = {}
    for name, tensor in problem.inputs.items():
        moving = "" if name in problem.wrt else " (held constant)"
        lines.append(f"{name}: {_described(tensor)}{moving}")
        inputs[name] = list(tensor.shape)
    output = result.output
    lines.append(f"{out}: {_described(output)}")
    return Section("function", "The function", lines,
                   {"inputs": inputs, "output": out, "output_shape": list(output.shape), "wrt": list(problem.wrt)})


def _second_order(result: Any) -> bool:
    return result.command in ("hessian", "hvp")


def _derivatives(result: Any) -> Section:
    """The exact partial derivatives, from SymPy, for small problems within a short deadline."""
    from jacli.errors import JacliError

    problem = result.problem
    plan = problem.plan
    second = _second_order(result)
    wrt = _wrt(result)
    n = sum(math.prod(problem.shapes[name]) for name in wrt)
    entries = n * n if second else plan.output_elements * n
    title = "Exact second derivatives (SymPy)" if second else "Exact partial derivatives (SymPy)"
    if entries > MAX_SYMBOLIC_ENTRIES:
        why = (f"not listed: the {'Hessian' if second else 'Jacobian'} has {entries:,} entries, more than the "
               f"{MAX_SYMBOLIC_ENTRIES} an explanation lists")
        return Section("derivatives", title, [why], {"entries": None, "skipped": why})
    from jacli.engine import exact

    tree = problem.compiled.tree
    try:
        with exact.deadline(SYMBOLIC_SECONDS):
            blocks = exact.hessian(tree, problem.shapes, wrt) if second else exact.jacobian(tree, problem.shapes, wrt)
            blocks = {key: exact.readable(block) for key, block in blocks.items()}
    except JacliError as error:
        why = f"not listed: {str(error).split(' (')[0].split('. Use')[0]}"
        return Section("derivatives", title, [why], {"entries": None, "skipped": why})
    listed: dict[str, str] = {}
    zeros = 0
    y = _output(result)
    for key, block in blocks.items():
        for index, entry in _entries(block):
            if entry == 0:
                zeros += 1
                continue
            if second:
                a, b = key
                split = len(problem.shapes[a])
                name = f"∂²{y}/∂{_element(a, index[:split])}∂{_element(b, index[split:])}"
            else:
                split = len(plan.output_shape)
                name = f"∂{_element(y, index[:split])}/∂{_element(key, index[split:])}"
            listed[name] = _sympy_text(entry)
    lines = [f"{name} = {text}" for name, text in listed.items()]
    if zeros:
        lines.append(f"the other {zeros} entr{'y is' if zeros == 1 else 'ies are'} 0")
    return Section("derivatives", title, lines, {"entries": listed, "zeros": zeros, "skipped": None})


def _entries(block: Any) -> list[tuple[tuple[int, ...], Any]]:
    import itertools

    return [(index, block[index]) for index in itertools.product(*(range(n) for n in block.shape))]


def _sympy_text(entry: Any) -> str:
    """SymPy's own spelling (``-r*sin(t)``), as ``--symbolic`` shows exact entries."""
    return str(entry)


def _wrt(result: Any) -> tuple[str, ...]:
    """The inputs the result differentiates by (jvp and hvp: those that move)."""
    directions = getattr(result, "directions", None)
    if directions:
        return tuple(name for name in result.problem.variables if name in directions)
    return tuple(result.problem.wrt)


def _shape(result: Any) -> Section:
    problem = result.problem
    y = tuple(result.output.shape)
    out = _output(result)
    wrt = _wrt(result)
    shapes = {name: tuple(problem.shapes[name]) for name in wrt}
    command = result.command
    lines: list[str] = []
    data: dict[str, Any] = {"output": list(y), "inputs": {n: list(s) for n, s in shapes.items()}}
    if command == "hessian":
        for a in wrt:
            for b in wrt:
                lines.append(f"H for ({a}, {b}) is {a}.shape + {b}.shape = {shape_text(shapes[a])} + "
                             f"{shape_text(shapes[b])} = {shape_text(shapes[a] + shapes[b])}")
        data["hessian"] = {f"{a},{b}": list(shapes[a] + shapes[b]) for a in wrt for b in wrt}
        return Section("shape", "Shapes", lines, data)
    jacobians = {}
    for name, shape in shapes.items():
        jacobians[name] = list(y + shape)
        if command in ("jacobian", "vjp", "jvp", "grad"):
            lines.append(f"J for {name} is output.shape + input.shape = {shape_text(y)} + {shape_text(shape)} = "
                         f"{shape_text(y + shape)}")
    data["jacobian"] = jacobians
    if command == "jacobian":
        rows, cols = math.prod(y), sum(math.prod(s) for s in shapes.values())
        lines.append(f"as the classic matrix: {rows} row{'s' if rows != 1 else ''} (output elements) × {cols} "
                     f"column{'s' if cols != 1 else ''} (input elements)")
    elif command == "vjp":
        lines.append(f"v is shaped like {out}, {shape_text(y)}; vᵀJ for each input is shaped like that input "
                     f"({', '.join(f'{n} {shape_text(s)}' for n, s in shapes.items())})")
    elif command == "jvp":
        lines.append(f"u is shaped like each input it moves ({', '.join(f'{n} {shape_text(s)}' for n, s in shapes.items())}); "
                     f"J·u is shaped like {out}, {shape_text(y)}")
    elif command == "grad":
        lines.append(f"{out} has one element, so J's output part is {shape_text(y)}: the gradient for each input "
                     "is J reshaped to that input's shape")
    elif command == "hvp":
        lines.append(f"H·u for each input is shaped like that input ({', '.join(f'{n} {shape_text(s)}' for n, s in shapes.items())})")
    return Section("shape", "Shapes", lines, data)


def _structure(result: Any) -> Section | None:
    """The Jacobian's pattern, read off the formula (``jacli.structure``)."""
    from jacli.engine.exact import is_elementwise, scalar_derivative
    from jacli.structure import patterns

    problem = result.problem
    y = tuple(result.output.shape)
    o = _output(result)
    wrt = _wrt(result)
    if not y and all(not problem.shapes[name] for name in wrt):
        return None  # one number by one number: nothing to say about a pattern
    tree = problem.compiled.tree
    found = patterns(tree, problem.shapes, wrt)
    elementwise = is_elementwise(tree)
    lines, data = [], {}
    for name in wrt:
        pattern = found[name]
        shape = tuple(problem.shapes[name])
        total = pattern.output_size * pattern.input_size
        if pattern.is_zero:
            lines.append(f"J for {name} is zero: {o} does not depend on {name}")
            data[name] = {"kind": "zero", "nonzeros": 0, "entries": total}
        elif pattern.is_diagonal and y == shape and y:
            out, inp = ", ".join(_letters(len(y), 12)), ", ".join(_letters(len(y), 8))
            same = f"{out} = {inp}" if len(y) == 1 else f"({out}) = ({inp})"
            line = (f"J for {name} is diagonal ({o}[{out}] depends on {name}[{out}] alone): ∂{o}[{out}]/∂{name}[{inp}] = 0 "
                    f"unless {same}")
            entry: dict[str, Any] = {"kind": "diagonal", "nonzeros": pattern.nnz, "entries": total}
            if elementwise:
                derivative = _sympy_text(scalar_derivative(tree, name))
                line += f"; on the diagonal ∂{o}/∂{name} = {derivative} (the formula read with scalar {name})"
                entry["diagonal"] = derivative
            lines.append(line)
            data[name] = entry
        elif pattern.is_dense:
            lines.append(f"J for {name} is dense: each of its {total:,} entries may be nonzero")
            data[name] = {"kind": "dense", "nonzeros": total, "entries": total}
        else:
            share = pattern.nnz / total
            lines.append(f"J for {name} is sparse: {pattern.nnz:,} of its {total:,} entries may be nonzero ({share:.1%})")
            data[name] = {"kind": "sparse", "nonzeros": pattern.nnz, "entries": total}
    lines.append("(read from the formula, for every input value: an entry outside the pattern is always 0)")
    return Section("structure", "Structure", lines, data)


# -- the product and its check ----------------------------------------------------------------------

def _fits(problem: Any, numbers: int) -> tuple[bool, str]:
    """Whether a full matrix of ``numbers`` entries may be computed for a check, and if not, why."""
    from jacli.limits import format_bytes

    size = numbers * problem.dtype.itemsize
    if numbers > MAX_CHECK_ENTRIES:
        return False, (f"not checked: the full matrix would have {numbers:,} entries, more than the "
                       f"{MAX_CHECK_ENTRIES:,} an explanation computes")
    if 3 * size + problem.plan.held > problem.budget:
        return False, (f"not checked: the full matrix ({format_bytes(size)}) does not fit the memory budget of "
                       f"{format_bytes(problem.budget)}")
    return True, ""


def _full_jacobian(problem: Any, names: Sequence[str], mode: str) -> dict[str, Any]:
    """Every entry of J for ``names``, by ``mode`` (reverse: jacrev, forward: jacfwd)."""
    from jacli.engine import autodiff

    positions = [problem.variables.index(name) for name in names]
    _, blocks = autodiff.jacobian(problem.compiled.function, problem.args, positions, mode)
    return dict(zip(names, blocks))


def _max_difference(a: Any, b: Any) -> float:
    """max |a − b| over the entries finite in both; NaN when one is finite where the other is not
    (entries infinite or NaN in both, alike, agree: a kink or a pole seen by both methods)."""
    import torch

    a, b = torch.broadcast_tensors(a.to(b.dtype), b)
    finite = torch.isfinite(a) & torch.isfinite(b)
    alike = ~torch.isfinite(a) & ~torch.isfinite(b) & ((a == b) | (torch.isnan(a) & torch.isnan(b)))
    if not bool((finite | alike).all()):
        return math.nan
    return float((a - b)[finite].abs().max()) if bool(finite.any()) else 0.0


def _difference_text(difference: float) -> str:
    if math.isnan(difference):
        return "not comparable (one holds NaN or infinity where the other is finite)"
    return _number(difference)


def _product(result: Any) -> Section:
    return {
        "jacobian": _product_jacobian, "vjp": _product_vjp, "jvp": _product_jvp, "grad": _product_grad,
        "hessian": _product_hessian, "hvp": _product_hvp,
    }[result.command](result)


def _product_vjp(result: Any) -> Section:
    import torch

    problem = result.problem
    v = result.v
    y_rank = v.dim()
    lines = ["vᵀJ[in] = Σ_out v[out]·J[out, in]: each output element's row of J, weighted by v and summed"]
    einsums = {name: f'torch.einsum("{einsum_vjp(y_rank, problem.inputs[name].dim())}", v, J)' for name in problem.wrt}
    for name, text in einsums.items():
        lines.append(f"for {name}: {text}" if len(einsums) > 1 else text)
    ok, why = _fits(problem, problem.plan.output_elements * problem.plan.wrt_elements)
    difference = None
    if ok:
        jacobians = _full_jacobian(problem, problem.wrt, "forward")
        difference = max(
            _max_difference(torch.einsum(einsum_vjp(y_rank, problem.inputs[name].dim()), v, jacobians[name]),
                            result.grads[name])
            for name in problem.wrt
        )
        lines += _shown_jacobians(problem, jacobians, _output(result))
        lines.append(f"checked here: J computed in full by forward mode (jacfwd), contracted with v by that einsum: "
                     f"max |difference| from the VJP = {_difference_text(difference)}")
    else:
        lines.append(why)
    y, x = _output(result), problem.wrt[0]
    lines += [
        f"this is exactly {y}.backward(v), then {x}.grad; and the same as sum(v * {y}).backward(): v is a constant, "
        f"so the gradient of the one number Σ v·{y} is Σ v[out]·∂{y}[out]/∂{x}",
        f"v must have {y}'s shape {shape_text(v.shape)}: it holds one weight per output element (backward needs "
        f"a number to differentiate, and Σ v·{y} is that number)",
        f"v = ones gives J's column sums (the gradient of sum({y})); v = onehot:k gives row k of J (the gradient of "
        f"{y}.flat[k])",
    ]
    own = _which_v(v, y)
    if own:
        lines.append(f"here v is {own}")
    data = {"einsum": einsums[problem.wrt[0]] if len(einsums) == 1 else einsums, "max_difference": difference,
            "checked_with": "forward" if ok else None, "skipped": None if ok else why}
    return Section("product", "What vᵀJ is", lines, data)


def _shown_jacobians(problem: Any, jacobians: dict[str, Any], y: str) -> list[str]:
    """Each full J as its classic matrix, a row per output element, when it is small enough to read."""
    if sum(j.numel() for j in jacobians.values()) > MAX_SHOWN_ENTRIES:
        return []
    lines = []
    rows = problem.plan.output_elements
    for name, jacobian in jacobians.items():
        columns = max(1, math.prod(problem.shapes[name]))
        lines.append(f"J for {name}, as a {rows}×{columns} matrix (a row per element of {y}, a column per element of {name}):")
        lines += [f"  {_tensor_text(row, most=columns)}" for row in jacobian.reshape(rows, columns)]
    return lines


def _which_v(v: Any, y: str) -> str:
    """What this run's v picks out of J, when it is ones or a one-hot."""
    import torch

    flat = v.reshape(-1)
    if flat.numel() > 1 and bool((flat == 1).all()):
        return "ones: the result is J's column sums"
    if bool(((flat == 0) | (flat == 1)).all()) and int((flat == 1).sum()) == 1:
        k = int(torch.nonzero(flat)[0])
        return f"onehot:{k}: the result is row {k} of J (the gradient of {y}.flat[{k}])"
    return ""


def _product_jvp(result: Any) -> Section:
    import torch

    problem = result.problem
    names = _wrt(result)
    y_rank = result.output.dim()
    lines = ["J·u[out] = Σ_in J[out, in]·u[in], summed over every input that moves: how fast each output "
             "element changes along u"]
    einsums = {name: f'torch.einsum("{einsum_jvp(y_rank, problem.inputs[name].dim())}", J, u)' for name in names}
    for name, text in einsums.items():
        lines.append(f"for {name}: {text}" if len(einsums) > 1 else text)
    entries = problem.plan.output_elements * sum(math.prod(problem.shapes[n]) for n in names)
    ok, why = _fits(problem, entries)
    difference = None
    if ok:
        jacobians = _full_jacobian(problem, names, "reverse")
        total = sum(
            torch.einsum(einsum_jvp(y_rank, problem.inputs[name].dim()), jacobians[name],
                         result.directions[name].to(jacobians[name].dtype))
            for name in names
        )
        difference = _max_difference(total.reshape(result.value.shape), result.value)
        lines += _shown_jacobians(problem, jacobians, _output(result))
        lines.append(f"checked here: J computed in full by reverse mode (jacrev), contracted with u by that einsum: "
                     f"max |difference| from the JVP = {_difference_text(difference)}")
    else:
        lines.append(why)
    lines += [
        "this is torch.func.jvp(f, (x,), (u,)): one forward pass that carries each value's tangent along u, "
        "the same as d/dt f(x + t·u) at t = 0; no J is built",
        "u must have each input's shape: it says how far each input element moves",
        "u = onehot:k gives column k of J; J itself is one JVP per input element (jacfwd)",
    ]
    data = {"einsum": einsums[names[0]] if len(einsums) == 1 else einsums, "max_difference": difference,
            "checked_with": "reverse" if ok else None, "skipped": None if ok else why}
    return Section("product", "What J·u is", lines, data)


def _product_grad(result: Any) -> Section:
    problem = result.problem
    y, x = _output(result), problem.wrt[0]
    lines = [
        f"grad needs a one-number output: the gradient is ∂{y}/∂{x}, one number per input element, shaped like {x} "
        "(J's only row)",
        "an output with several elements has one gradient per element (the rows of J): ask for the jacobian, "
        f"or for a vjp with a v that weighs the elements; torch refuses {y}.backward() there (grad can be "
        "implicitly created only for scalar outputs)",
        f"this is {y}.backward(), then {x}.grad: {y}.backward(torch.ones_like({y})) for a one-number {y}",
    ]
    ok, why = _fits(problem, problem.plan.wrt_elements)
    difference = None
    if ok:
        other = "forward" if result.method != "forward" else "reverse"
        difference = _checked_by(problem, other, lines, "the gradient",
                                 lambda n, j: _max_difference(j.reshape(result.grads[n].shape), result.grads[n]))
    else:
        lines.append(why)
    return Section("product", "Why a gradient needs one output number", lines,
                   {"max_difference": difference, "checked_with": other if ok else None, "skipped": None if ok else why})


def _checked_by(problem: Any, other: str, lines: list[str], against: str, difference: Callable[[str, Any], float]) -> float:
    """J computed in full by the ``other`` mode, compared with the result through ``difference``
    (name, that input's J → max |difference|); the line saying so is appended to ``lines``."""
    jacobians = _full_jacobian(problem, problem.wrt, other)
    largest = max(difference(name, jacobians[name]) for name in problem.wrt)
    lines.append(f"checked here: J by {other} mode ({'jacfwd' if other == 'forward' else 'jacrev'}): max |difference| "
                 f"from {against} = {_difference_text(largest)}")
    return largest


def _product_jacobian(result: Any) -> Section:
    problem = result.problem
    lines = [
        "row k of J is the VJP with v = onehot:k (reverse mode: one backward pass per output element)",
        "column k of J is the JVP with u = onehot:k (forward mode: one forward pass per input element)",
        "the mode with fewer passes wins: reverse for many inputs and few outputs, forward for the opposite",
    ]
    if (getattr(result, "how", None) or "").startswith("diagonal"):
        lines.append("a diagonal J needs one pass: with v = ones, vᵀJ adds up each column, and each column "
                     "holds one nonzero, the diagonal's entry")
    ok, why = _fits(problem, problem.plan.output_elements * problem.plan.wrt_elements)
    difference = None
    other = "forward" if result.method == "reverse" else "reverse"
    if ok:
        difference = _checked_by(problem, other, lines, "this result",
                                 lambda n, j: _max_difference(j, result.blocks[n].to_dense()))
    else:
        lines.append(why)
    return Section("product", "Rows and columns of J", lines,
                   {"max_difference": difference, "checked_with": other if ok else None, "skipped": None if ok else why})


def _product_hessian(result: Any) -> Section:
    import torch

    matrix = result.values if getattr(result, "values", None) is not None else result.matrix().to_dense()
    y = _output(result)
    lines = [
        f"H[i, j] = ∂²{y}/∂x[i]∂x[j]: the Jacobian of the gradient (the gradient is one row; H stacks how "
        "each of its entries changes)",
        {"forward": "forward over reverse: one JVP of the reverse-mode gradient per input element (jacfwd(jacrev(f)))",
         "reverse": "reverse over reverse: one VJP of the reverse-mode gradient per input element (jacrev(jacrev(f)))",
         "symbolic": "symbolic: SymPy differentiates the formula twice, entry by entry; torch evaluates the entries",
         }.get(result.method, result.method),
    ]
    symmetry = float((matrix - matrix.T).abs().max()) if matrix.numel() else 0.0
    if bool(torch.isfinite(matrix).all()):
        lines.append(f"H is symmetric where {y} is twice continuously differentiable: max |H − Hᵀ| here = {_number(symmetry)}")
    return Section("product", "What H is", lines, {"max_asymmetry": symmetry})


def _product_hvp(result: Any) -> Section:
    import torch

    from jacli.engine import autodiff

    problem = result.problem
    names = _wrt(result)
    lines = ["H·u = the JVP of the gradient along u (forward over reverse): one pass, H is never built"]
    n = problem.plan.wrt_elements
    ok, why = _fits(problem, n * n)
    difference = None
    if ok:
        positions = problem.wrt_positions
        _, full = autodiff.hessian_matrix(problem.compiled.function, problem.args, positions, "forward")
        u = torch.cat([(result.directions[name] if name in result.directions
                        else torch.zeros_like(problem.inputs[name])).reshape(-1).to(full.dtype) for name in problem.wrt])
        product = full @ u
        mine = torch.cat([result.grads[name].reshape(-1) for name in problem.wrt])
        difference = _max_difference(product, mine)
        lines.append(f"checked here: H computed in full, times u: max |difference| from the HVP = {_difference_text(difference)}")
    else:
        lines.append(why)
    del names
    return Section("product", "What H·u is", lines,
                   {"max_difference": difference, "skipped": None if ok else why})


# -- the cost ----------------------------------------------------------------------------------------

def _passes(result: Any) -> str:
    problem = result.problem
    n = problem.plan.wrt_elements
    method, command = result.method, result.command
    if method == "symbolic":
        return "SymPy's exact derivative, evaluated on torch"
    if command == "jacobian":
        return getattr(result, "how", None) or method
    if command == "vjp":
        return "1 VJP: one forward pass and one backward pass" + (f" ({_output(result)}.backward(v))" if method == "backward" else
                                                                  " (torch.autograd.grad)")
    if command == "jvp":
        return "1 JVP: one forward pass carrying tangents (torch.func.jvp)"
    if command == "grad":
        if method == "forward":
            return f"{n:,} JVP{'s' if n != 1 else ''}, one per input element (jacfwd)"
        return "1 VJP: one forward pass and one backward pass (torch.autograd.grad)"
    if command == "hessian":
        kind = "JVP" if method == "forward" else "VJP"
        return f"{n:,} {kind}{'s' if n != 1 else ''} of the gradient, one per input element ({method} over reverse)"
    if command == "hvp":
        return "1 JVP of the gradient (forward over reverse)"
    return method


def _cost(result: Any) -> Section:
    seconds = result.problem.seconds
    how = _passes(result)
    timed = result.method != "symbolic" and seconds > 0
    lines = [f"method {result.method}: {how}" + (f" (measured {_duration(seconds)})" if timed else "")]
    if timed:
        lines.append("timed once, in this run: a process's first torch.func or forward-mode call also pays "
                     "torch's one-time set-up")
    return Section("cost", "Cost", lines, {"method": result.method, "passes": how, "seconds": seconds if timed else None})


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


__all__ = ["Explanation", "Section", "explain", "teach", "einsum_vjp", "einsum_jvp", "shape_text", "MAX_SYMBOLIC_ENTRIES",
           "MAX_CHECK_ENTRIES"]
