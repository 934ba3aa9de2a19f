"""A typed ``Problem``: the expression, its bound inputs, device and dtype, and the plan.

``prepare()`` is the one way to make one. It checks everything cheap first (names, specs, the
expression) so that those errors answer before torch loads; then it sizes everything from
shapes (``jacli.plan``), refusing what would not fit before anything large is made; then it
makes the inputs. It does not evaluate the expression: the engine does that, once, together
with the derivatives.

Example:
    >>> problem = prepare("x**2 + y", {"x": [1.0, 2.0], "y": 3.0}, wrt=["x"])
    >>> problem.variables, problem.wrt, problem.plan.output_shape
    (('x', 'y'), ('x',), (2,))
"""

from __future__ import annotations

import difflib
import math
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from jacli import devices, inputs as specs
from jacli.errors import ExpressionError, InputError, JacliWarning, ShapeError
from jacli.limits import check_budget, check_max_memory, default_budget

UNTRUSTED_BUDGET = 256 * 10**6
"""The memory budget of untrusted mode, at most (bytes)."""

UNTRUSTED_SECONDS = 2.0
"""SymPy's deadline in untrusted mode (the exact method, check's reference)."""

InputValue = Any
"""A tensor, a number, nested lists of numbers, a spec string like ``"eye:3"``, or a parsed Spec."""

Inputs = Mapping[str, InputValue] | Iterable[tuple[str | None, InputValue]]
"""name → value, or ``(name or None, value)`` pairs as the CLI gives them (None: the only variable)."""


@dataclass
class Problem:
    """One expression at one point, ready for the engine.

    Attributes:
        compiled: the compiled expression (text, tree, variables, function).
        inputs: name → input tensor, in the expression's variable order.
        wrt: the inputs to differentiate with respect to, in variable order.
        device, dtype: where and in what precision everything runs (torch objects).
        budget: the memory budget in bytes.
        plan: the sizes, checked against the budget (``jacli.plan.Plan``).
        seed: the seed of ``rand``/``randn`` specs.
        given: name → how the user wrote each input (for messages and suggested commands).
        seconds: the time the engine's passes on this problem took, measured (what ``explain``
            reports as the cost).
    """

    compiled: Any
    inputs: dict[str, Any]
    wrt: tuple[str, ...]
    device: Any
    dtype: Any
    budget: int
    plan: Any = None
    seed: int = 0
    given: dict[str, str] = field(default_factory=dict)
    untrusted: bool = False
    seconds: float = 0.0
    batch: "Batch | None" = None
    """With ``batch_axis``: which inputs hold the points, along which axis (``inputs`` are whole,
    ``plan`` is one point's)."""

    @property
    def expression(self) -> str:
        return self.compiled.text

    @property
    def variables(self) -> tuple[str, ...]:
        return self.compiled.variables

    @property
    def args(self) -> tuple:
        """The input tensors, positional, as the compiled function takes them."""
        return tuple(self.inputs[name] for name in self.compiled.variables)

    @property
    def wrt_positions(self) -> tuple[int, ...]:
        return tuple(self.compiled.variables.index(name) for name in self.wrt)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(t.shape) for name, t in self.inputs.items()}

    def command_line(self, command: str, extra: str = "") -> str:
        """A jacli command line that repeats this problem's expression and inputs."""
        import shlex

        parts = ["jacli", command, shlex.quote(self.compiled.text)]
        for name in self.compiled.variables:
            parts += ["-i", shlex.quote(f"{name}={self.given.get(name, '...')}")]
        return " ".join(parts) + (f" {extra}" if extra else "")

    def require_scalar(self, command: str) -> None:
        """grad, hessian and hvp need one output number; say why and what works instead."""
        shape = tuple(self.plan.output_shape)
        count = math.prod(shape)
        if count == 1:
            return
        why = (
            f"{command} needs an expression with a single number as output, but this output has shape "
            f"{shape} ({count} numbers). The gradient of a vector is not defined "
            "without a weighting vector v (torch: \"grad can be implicitly created only for scalar "
            "outputs\"): y.backward(v) takes the gradient of sum(v * y). Try"
        )
        wrap = ", or wrap the expression in sum(...) or mean(...)" if command != "grad" else ""
        raise ShapeError(
            f"{why} jacli.vjp(expr, inputs, v='ones') for vᵀJ with v = ones (the gradient of sum(y)), "
            f"or jacli.jacobian(expr, inputs) for the whole Jacobian{wrap}",
            cli_message=(
                f"{why}\n  {self.command_line('vjp', '--v ones')}\n"
                f"for vᵀJ with v = ones (the gradient of sum(y)), or\n  {self.command_line('jacobian')}\n"
                f"for the whole Jacobian{wrap}"
            ),
        )

    def make_v(self, value: InputValue) -> Any:
        """A VJP's v, shaped like the output (``ones`` without a shape takes the output's)."""
        spec = specs.parse_spec(specs.unnamed_v(value), for_v=True) if isinstance(value, str) else value
        shape = tuple(self.plan.output_shape)
        tensor = materialize(spec, "v", self, output_shape=shape)
        tensor = specs.fit_to_output(tensor, shape, spec_text(spec, tensor))
        report_nonfinite(tensor, "`v`")
        return tensor

    def directions(self, v: Any, command: str) -> dict[str, Any]:
        """The directions of jvp and hvp: one per input that moves, each shaped like its input."""
        if isinstance(v, Mapping):
            pairs = list(v.items())
        elif isinstance(v, (list, tuple)) and v and all(isinstance(p, tuple) and len(p) == 2 for p in v):
            pairs = list(v)
        else:
            pairs = [(None, v)]
        directions: dict[str, Any] = {}
        variables = self.compiled.variables
        for name, value in pairs:
            if name is None:
                if len(variables) != 1:
                    raise InputError(
                        f"{command}: a direction without a name fits only an expression with one "
                        f"variable; give `v` as {{name: direction}} for each input that moves "
                        f"({', '.join(variables)})", param="v",
                        cli_message=f"{command}: a --v without a name fits only an expression with one "
                        f"variable; write --v NAME=SPEC for each input that moves ({', '.join(variables)})",
                    )
                name = variables[0]
            if name not in variables:
                raise _unknown(f"`v` gives a direction for {name!r}, which is not a variable of the expression",
                               name, variables, "v")
            if name in directions:
                raise InputError(f"`v` gives a direction for {name!r} twice", param="v")
            spec = specs.parse_spec(value, for_v=True) if isinstance(value, str) else value
            shape = tuple(self.inputs[name].shape)
            tensor = materialize(spec, f"v for {name}", self, output_shape=shape)
            tensor = specs.fit_to_output(tensor, shape, spec_text(spec, tensor), what=f"input {name}")
            report_nonfinite(tensor, f"`v` for {name}")
            directions[name] = tensor
        return {name: directions[name] for name in variables if name in directions}


def prepare(
    expr: str,
    inputs: Inputs,
    *,
    wrt: Sequence[str] | None = None,
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    result: Any = None,
    reads: Mapping[str, Any] | None = None,
    untrusted: bool = False,
    batch: tuple[Any, Sequence[str] | None] | None = None,
) -> Problem:
    """Check, size and bind one problem; the expression is not evaluated.

    Args:
        expr: the expression text.
        inputs: name → value (tensor, number, nested list, spec string), or (name, value) pairs.
        wrt: the inputs to differentiate with respect to (default all).
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto`` or a torch.device.
        dtype: ``float64`` or ``float32`` (a name or a torch.dtype).
        seed: seeds ``rand``/``randn`` specs.
        max_memory: the memory budget in bytes (default: half the available memory).
        result: ``"jacobian"`` or ``"hessian"``: also refuse that dense result if it would not fit;
            or a function of the plan that checks the result (it runs before any input is made).
        reads: other specs the call will read, such as ``{"v": spec}``: standard input is
            checked to be read once among them and the inputs.
        untrusted: refuse files and standard input, and hold the budget to ``UNTRUSTED_BUDGET``
            (also on with ``JACLI_UNTRUSTED=1`` in the environment).
        batch: ``(batch_axis, batched)``: the inputs hold many points along ``batch_axis``
            (``batched`` names them; None: every input that has that axis); the plan sizes one
            point, and ``problem.batch`` says which inputs hold the points (``Batch``).

    Returns:
        A ``Problem`` whose plan has checked every size against the budget.
    """
    again = None if batch is not None else _prepared_again(expr, inputs, wrt, device, dtype, seed, max_memory, result,
                                                           reads, untrusted)
    if again is not None:
        return again
    from jacli.plan import make_plan

    devices.check_names(device if isinstance(device, str) else "cpu", dtype if isinstance(dtype, str) else "float64")
    max_memory = check_max_memory(max_memory)
    wrt = specs.check_wrt(wrt)
    if batch is not None:
        batch = (check_batch_axis(batch[0]), _batched_names(batch[1]))
    pairs = _input_pairs(inputs)
    given = [(name, specs.parse_spec(value) if isinstance(value, str) else value) for name, value in pairs]
    specs.check_python_numbers(given)
    untrusted = untrusted or is_untrusted_environment()
    if untrusted:
        _refuse_files(given, reads)
        max_memory = min(max_memory or UNTRUSTED_BUDGET, UNTRUSTED_BUDGET)

    # Spec sizes, the expression and the names are checked before torch (and, for the sizes,
    # SymPy) is imported, so that these errors answer at once.
    cpu_budget = _check_spec_sizes(given, device, dtype, max_memory)

    from jacli.parse import parse

    variables = parse(expr).variables
    bound = bind(variables, given)
    wrt_names = _check_wrt(variables, wrt)
    readers = {n: s for n, s in bound.items() if not _is_tensor_like(s)}
    readers.update({f"`{n}`": s for n, s in (reads or {}).items() if not _is_tensor_like(s)})
    specs.check_single_stdin(readers)

    from jacli.compile import compile_expression

    compiled = compile_expression(expr)
    torch_dtype = devices.resolve_dtype(dtype)
    torch_device = devices.resolve_device(device, torch_dtype)
    budget = max_memory if max_memory is not None else cpu_budget or _default_budget(torch_device)
    problem = Problem(compiled, {}, wrt_names, torch_device, torch_dtype, budget, seed=seed, untrusted=untrusted)
    problem.given = {name: spec_text(bound[name], bound[name]) for name in compiled.variables}
    labels = _Labels(problem.given)

    def plan_for(shapes: dict[str, tuple[int, ...]]) -> Any:
        return make_plan(
            compiled.tree, compiled.text, shapes, wrt_names, budget=budget,
            itemsize=torch_dtype.itemsize, labels=labels, result=result,
        )

    # Inputs whose shape is known without reading anything are sized before they are made;
    # files are read (within the budget) first.
    shapes = {name: _known_shape(bound[name]) for name in compiled.variables}
    if all(shape is not None for shape in shapes.values()):
        if batch is not None:
            problem.batch = batched_points(compiled.variables, shapes, *batch, given=problem.given)
            shapes = problem.batch.point_shapes(shapes)
        problem.plan = plan_for(shapes)
    _make_inputs(problem, bound)
    if problem.plan is None:
        shapes = problem.shapes
        if batch is not None:
            problem.batch = batched_points(compiled.variables, shapes, *batch, given=problem.given)
            shapes = problem.batch.point_shapes(shapes)
        problem.plan = plan_for(shapes)
    if math.prod(problem.plan.output_shape) == 0:
        raise ShapeError(
            f"the output of {compiled.text} has no numbers (shape {tuple(problem.plan.output_shape)}), so there "
            "is nothing to differentiate. Check the indices and slices against the input shapes "
            f"({', '.join(f'{n} {tuple(t.shape)}' for n, t in problem.inputs.items())})."
        )
    if batch is None:
        _remember(expr, inputs, wrt, device, dtype, max_memory, result, reads, untrusted, problem)
    return problem


@dataclass(frozen=True)
class Batch:
    """Many points in one call: ``names`` hold them along ``axes[name]`` (``batch_axis``,
    counted from the end when negative); every other input is shared by all ``size`` points."""

    axis: int
    names: tuple[str, ...]
    axes: dict[str, int]
    size: int

    def point_shapes(self, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        """Each input's shape at one point: the batched ones without their points' axis."""
        return {name: tuple(s for k, s in enumerate(shape) if k != self.axes.get(name, -1))
                for name, shape in shapes.items()}

    def in_dims(self, variables: Sequence[str]) -> tuple[int | None, ...]:
        """For each variable, the axis its points run along, or None (shared): vmap's ``in_dims``."""
        return tuple(self.axes.get(name) for name in variables)


def check_batch_axis(axis: Any) -> int:
    """``batch_axis`` as an int, or an InputError that says what it takes."""
    if isinstance(axis, bool) or not isinstance(axis, int):
        try:
            import operator

            return operator.index(axis)
        except TypeError:
            raise InputError(
                f"`batch_axis` must be an axis number such as 0 (the leading axis), not {describe(axis)}",
                param="batch_axis",
            ) from None
    return axis


def _batched_names(names: Any) -> list[str] | None:
    """``batched``: None (every input with the axis), one name ("x" or "x,y"), or a list of names."""
    if names is None or isinstance(names, str):
        return None if names is None else [names]
    if isinstance(names, (list, tuple)) and all(isinstance(name, str) for name in names):
        return list(names)
    raise InputError(f"`batched` must be input names such as ['x', 'y'], not {describe(names)}", param="batched")


def batched_points(variables: Sequence[str], shapes: Mapping[str, tuple[int, ...]], axis: int,
                   names: Sequence[str] | None, given: Mapping[str, str] | None = None) -> Batch:
    """Which inputs hold the points along ``axis`` and how many there are, or a ShapeError.

    Args:
        names: the inputs that hold points (``batched``); None: every input that has ``axis``
            (an input with fewer axes, such as a number, is shared by all points).
    """
    given = given or {}

    def shown(name: str) -> str:
        return f"{specs.label(name, given[name]) if name in given else name} (shape {tuple(shapes[name])})"

    def has_axis(name: str) -> bool:
        return -len(shapes[name]) <= axis < len(shapes[name])

    if names is None:
        chosen = tuple(name for name in variables if has_axis(name))
        if not chosen:
            raise ShapeError(
                f"`batch_axis` {axis}: no input has an axis {axis} to hold the points ("
                + ", ".join(shown(n) for n in variables) + "); give the points along that axis of an input, "
                f"e.g. {variables[0]} = 1,2,3 for three points of a number", param="batch_axis",
            )
    else:
        chosen_names = []
        for part in names:
            for name in (_identifier(p.strip()) for p in part.split(",")):
                if not name:
                    continue
                if name not in variables:
                    raise _unknown(f"`batched` {name!r} is not a variable of the expression", name, variables, "batched")
                if not has_axis(name):
                    raise ShapeError(
                        f"`batch_axis` {axis}: input {shown(name)} has no axis {axis} to hold the points; "
                        "give it one, or leave it out of `batched` to share it by all points", param="batch_axis",
                    )
                chosen_names.append(name)
        chosen = tuple(name for name in variables if name in chosen_names)
        if not chosen:
            raise InputError(f"`batched` names no input; the expression's variables are: {', '.join(variables)}",
                             param="batched")
    axes = {name: axis % len(shapes[name]) for name in chosen}
    sizes = {name: shapes[name][axes[name]] for name in chosen}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{shown(name)}: {size}" for name, size in sizes.items())
        hint = ("; name the inputs that hold points with `batched` (the others are shared by all points)"
                if names is None else "")
        raise ShapeError(
            f"`batch_axis` {axis}: the inputs hold different numbers of points along axis {axis}: {listed}. "
            f"Give each the same number{hint}", param="batch_axis",
        )
    return Batch(axis, chosen, axes, next(iter(sizes.values())))


# NOTE [prepared again]
# A loop over points (or a benchmark) calls the library with the same expression, input names
# and shapes, wrt, device, dtype and budget each time, with new numbers. Everything ``prepare``
# checks before making the inputs is a pure function of those: the names and specs, the parse,
# the binding, wrt, the device and dtype, and the plan with its budget checks. So when every
# input is a tensor (nothing to read, no spec to size), a problem that passed those checks once
# is remembered by them, and the next call only makes the inputs again (``materialize``: dense,
# real, non-empty, within the budget) and scans them for NaN/Inf, exactly as the first call did.
# A refusal is never remembered (it raises before ``_remember``), untrusted mode and devices other
# than the CPU always take the long way, and a budget that changed (the default one follows the
# memory available) misses.
_PREPARED: dict[tuple, tuple] = {}


def _again_key(expr: Any, inputs: Any, wrt: Any, device: Any, dtype: Any, max_memory: Any, result: Any,
               reads: Any, untrusted: Any) -> tuple | None:
    """The key of a call that can be prepared again, or None when it must take the long way."""
    import torch

    if reads or untrusted or type(inputs) is not dict or type(expr) is not str:
        return None
    if not (wrt is None or (type(wrt) in (list, tuple) and all(type(w) is str for w in wrt))):
        return None
    if not (type(max_memory) is int or max_memory is None) or not isinstance(result, (str, type(None))) and not callable(result):
        return None
    # The CPU only: "auto", "cuda" and "mps" are resolved against what the machine offers now.
    if not (device == "cpu" or isinstance(device, torch.device) and device.type == "cpu" and device.index is None):
        return None
    if not isinstance(dtype, (str, torch.dtype)):
        return None
    shapes = []
    for name, value in inputs.items():
        if type(name) is not str or not isinstance(value, torch.Tensor):
            return None
        shapes.append((name, tuple(value.shape)))
    return (expr, tuple(shapes), None if wrt is None else tuple(wrt), device, dtype, max_memory,
            result if isinstance(result, str) else callable(result))


def _remember(expr: Any, inputs: Any, wrt: Any, device: Any, dtype: Any, max_memory: Any, result: Any,
              reads: Any, untrusted: bool, problem: Problem) -> None:
    key = _again_key(expr, inputs, wrt, device, dtype, max_memory, result, reads, untrusted or problem.untrusted)
    if key is None:
        return
    if len(_PREPARED) >= 256:
        _PREPARED.clear()
    names = dict(zip(inputs, (_identifier(name) for name in inputs)))
    _PREPARED[key] = (problem.wrt, problem.device, problem.dtype, problem.budget, problem.plan, names)


def _prepared_again(expr: Any, inputs: Any, wrt: Any, device: Any, dtype: Any, seed: int, max_memory: Any,
                    result: Any, reads: Any, untrusted: bool) -> Problem | None:
    """The problem from what an earlier call with the same key checked (see NOTE [prepared again])."""
    if untrusted or not _PREPARED:
        return None
    key = _again_key(expr, inputs, wrt, device, dtype, max_memory, result, reads, untrusted)
    remembered = _PREPARED.get(key) if key is not None else None
    if remembered is None or is_untrusted_environment():
        return None
    wrt_names, torch_device, torch_dtype, budget, plan, names = remembered
    if max_memory is None:
        if _default_budget(torch_device) != budget:
            return None
    # Looked up again (its own cache answers), never kept here: whatever compile_expression
    # gives now (a test may wrap it) is what runs, as on the long way.
    compiled = sys.modules["jacli.compile"].compile_expression(expr)
    problem = Problem(compiled, {}, wrt_names, torch_device, torch_dtype, budget, seed=seed)
    bound = {names[name]: value for name, value in inputs.items()}
    problem.given = {name: spec_text(bound[name], bound[name]) for name in compiled.variables}
    if callable(result):
        result(plan)
    problem.plan = plan
    _make_inputs(problem, bound)
    return problem


class _Labels(dict):
    """How messages name each input (``x = ones:3``), made only when a message names one."""

    def __init__(self, given: Mapping[str, str]):
        super().__init__()
        self.given = given

    def __missing__(self, name: str) -> str:
        self[name] = label = specs.label(name, self.given[name])
        return label


def is_untrusted_environment() -> bool:
    """``JACLI_UNTRUSTED`` set to anything but empty, 0, false, no or off."""
    import os

    return os.environ.get("JACLI_UNTRUSTED", "").strip().lower() not in ("", "0", "false", "no", "off")


def _refuse_files(given: list[tuple[str | None, Any]], reads: Mapping[str, Any] | None) -> None:
    """Untrusted mode reads no file and no standard input: text from a form must not name them."""
    named = [(name, spec) for name, spec in given] + [(f"`{name}`", spec) for name, spec in (reads or {}).items()]
    for name, spec in named:
        if isinstance(spec, specs.File):
            raise InputError(
                f"{specs.label(name, spec.text)}: files and standard input are refused in untrusted "
                "mode; give the numbers themselves", param="inputs",
            )


def _check_spec_sizes(given: list[tuple[str | None, Any]], device: Any, dtype: Any, max_memory: int | None) -> int | None:
    """Refuse specs too large for the budget from their text alone (CPU only: a GPU's budget
    needs torch). Returns the default CPU budget when it was read, so it is read once."""
    if not (isinstance(device, str) and device == "cpu"):
        return None
    from jacli.plan import check_inputs_together

    itemsize = 4 if str(dtype) in ("float32", "torch.float32") else 8
    cpu_budget = default_budget() if max_memory is None else None
    limit = max_memory if max_memory is not None else cpu_budget
    sized = []
    for name, spec in given:
        if not _is_tensor_like(spec):
            specs.check_spec_budget(spec, name, itemsize, limit)
            if getattr(spec, "shape", None) is not None:
                sized.append((name, spec, math.prod(spec.shape)))
    check_inputs_together([(specs.label(n, s.text), count * itemsize) for n, s, count in sized], limit)
    return cpu_budget


def _make_inputs(problem: Problem, bound: Mapping[str, Any]) -> None:
    """Each input as a tensor of the problem's dtype and device (within the budget)."""
    for name in problem.compiled.variables:
        problem.inputs[name] = tensor = materialize(bound[name], name, problem)
        if tensor.numel() == 0:
            raise InputError(
                f"input {specs.label(name, problem.given[name])} has no numbers (shape {tuple(tensor.shape)}); "
                "give at least one", param="inputs",
            )
    report_all_nonfinite([(tensor, f"input {name}") for name, tensor in problem.inputs.items()])


def _known_shape(value: Any) -> tuple[int, ...] | None:
    """An input's shape when it is known without reading or allocating anything, else None."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return tuple(shape)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ()
    return None


def _input_pairs(inputs: Any) -> list[tuple[str | None, Any]]:
    """``{name: value}`` or ``[(name, value), ...]`` as pairs; anything else is an InputError."""
    if isinstance(inputs, Mapping):
        return [(_identifier(name), value) for name, value in inputs.items()]
    example = "give them as a dict such as {'x': [1.0, 2.0]}"
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Iterable):
        raise InputError(f"inputs must map names to values, not {describe(inputs)}; {example}")
    pairs = list(inputs)
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and (pair[0] is None or isinstance(pair[0], str))):
            raise InputError(f"inputs must be (name, value) pairs or a dict, not {describe(inputs)}; {example}")
    return pairs


def bind(variables: Sequence[str], given: list[tuple[str | None, Any]]) -> dict[str, Any]:
    """Match given inputs to the expression's variables; errors list what is needed."""
    if not variables:
        from jacli.functions import CONSTANTS

        constants = [name for name, _ in given if name in CONSTANTS]
        why = f" ({' and '.join(constants)} {'is a constant' if len(constants) == 1 else 'are constants'} there)" if constants else ""
        raise ExpressionError(
            f"the expression has no variables{why}, so there is nothing to differentiate; "
            "use a name such as x and give its value in `inputs`", param="expr",
        )
    bound: dict[str, Any] = {}
    for name, value in given:
        if name is None:
            if len(variables) != 1:
                raise InputError(
                    f"an input without a name fits only an expression with one variable; this one "
                    f"has {len(variables)} ({', '.join(variables)}), so name each one in `inputs`",
                    param="inputs",
                    cli_message=f"an --input without a name fits only an expression with one variable; "
                    f"this one has {len(variables)} ({', '.join(variables)}), so write NAME=SPEC, e.g. "
                    f"--input {variables[0]}=1,2,3",
                )
            name = variables[0]
        if name not in variables:
            from jacli.functions import CONSTANTS

            if name in CONSTANTS:
                raise InputError(
                    f"input {name!r} is not used by the expression: in an expression {name} is the "
                    f"constant {float(CONSTANTS[name]):.6f}..., not a variable. Name the variable "
                    f"something else, such as {name}1 (the expression's variables are: {', '.join(variables)})",
                    param="inputs",
                )
            raise _unknown(f"input {name!r} is not used by the expression", name, variables, "inputs")
        if name in bound:
            raise InputError(f"input {name!r} is given twice; give each variable once", param="inputs")
        bound[name] = value
    missing = [name for name in variables if name not in bound]
    if missing:
        needs = f"no input for {', '.join(missing)}; the expression needs {', '.join(variables)}."
        python = ", ".join(f"{name!r}: [1.0, 2.0]" for name in missing)
        raise InputError(
            f"{needs} Give each one in `inputs`, e.g. {{{python}}}", param="inputs",
            cli_message=f"{needs} Give each one, e.g. " + " ".join(f"-i {name}=1,2,3" for name in missing),
        )
    return bound


def _identifier(name: Any) -> Any:
    """A name as Python (and the expression parser) reads it: NFKC-normalized, so ｘ is x."""
    import unicodedata

    return unicodedata.normalize("NFKC", name) if isinstance(name, str) else name


def _unknown(what: str, name: str, variables: Sequence[str], param: str) -> InputError:
    """``what``, a did-you-mean when a variable is close, and the variables there are."""
    close = close_name(name, variables)
    hint = f"; did you mean {close}?" if close else "."
    return InputError(f"{what}{hint} Its variables are: {', '.join(variables)}", param=param)


def close_name(name: str, variables: Sequence[str]) -> str | None:
    """The variable the user probably meant: the same name in another case, or a near spelling."""
    for variable in variables:
        if variable.lower() == name.lower():
            return variable
    close = difflib.get_close_matches(name, variables, n=1)
    return close[0] if close else None


def wrt_without(expr: str, wrt: Any, const: Sequence[str] | str | None) -> Any:
    """``wrt`` once the inputs held constant (``const``) are taken out: a shorter way to say
    "every input but these". ``wrt`` and ``const`` may not share a name.

    Args:
        expr: the expression text (its variables are what ``const`` may name).
        wrt: the inputs to differentiate with respect to, or None for all.
        const: inputs held constant: a name, names, or items such as ``"y,z"``.

    Returns:
        The inputs to differentiate with respect to: ``wrt`` itself when ``const`` names nothing.

    Example:
        >>> wrt_without("sum((y - x[0]*exp(-x[1]*t))**2)", None, ["y", "t"])
        ['x']
    """
    from jacli.parse import parse

    held_items = specs.check_wrt(const)  # the same forms as wrt: a name, or a list of names
    if not held_items:
        return wrt  # as given: prepare checks it
    variables = parse(expr).variables
    held: list[str] = []
    for item in held_items:
        for name in (_identifier(part.strip()) for part in item.split(",")):
            if name and name not in variables:
                raise _unknown(f"`const` {name!r} is not a variable of the expression", name, variables, "const")
            if name and name not in held:
                held.append(name)
    if not held:  # "" or ",": as an empty `wrt` is refused, not read as "hold nothing"
        raise InputError(f"`const` names no variable; its variables are: {', '.join(variables)}", param="const")
    chosen = _check_wrt(variables, specs.check_wrt(wrt))
    both = [name for name in held if name in chosen and wrt]
    if both:
        raise InputError(
            f"{both[0]!r} is both in `wrt` (differentiate) and in `const` (hold constant); name it in one of them",
            param="const", usage=True,
        )
    kept = [name for name in chosen if name not in held]
    if not kept:
        raise InputError(
            f"`const` holds every variable ({', '.join(variables)}), so nothing is left to differentiate; "
            "hold fewer inputs constant", param="const",
        )
    return kept


def _check_wrt(variables: Sequence[str], wrt: Sequence[str] | None) -> tuple[str, ...]:
    if not wrt:
        return tuple(variables)
    names: list[str] = []
    for item in wrt:
        for name in (_identifier(part.strip()) for part in item.split(",")):
            if not name:
                continue
            if name not in variables:
                raise _unknown(f"`wrt` {name!r} is not a variable of the expression", name, variables, "wrt")
            if name not in names:
                names.append(name)
    if not names:
        raise InputError(f"`wrt` names no variable; its variables are: {', '.join(variables)}", param="wrt")
    return tuple(name for name in variables if name in names)


def spec_text(spec: Any, value: Any) -> str:
    """How the user wrote a value: its spec text, or a short description of a tensor."""
    text = getattr(spec, "text", None)
    if text is not None:
        return text
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and math.prod(shape) > 12:  # a large tensor or array: its description
        return describe(value)
    try:
        import torch

        # detach: describing a tensor that requires grad must not warn about float(tensor).
        tensor = torch.as_tensor(value).detach()
        if tensor.numel() <= 12:
            return ",".join(repr(float(x)) for x in tensor.reshape(-1)) if tensor.dim() == 1 else repr(tensor.tolist()).replace(" ", "")
    except (TypeError, ValueError, RuntimeError, OverflowError):
        pass
    return describe(value)


def _is_tensor_like(value: Any) -> bool:
    return not isinstance(value, (specs.Literal, specs.Constructor, specs.File, specs.OneHot))


def materialize(value: Any, name: str, problem: Problem, output_shape: tuple[int, ...] | None = None) -> Any:
    """A value (tensor, number, list or spec) as a tensor of the problem's dtype and device."""
    import torch

    budget = problem.budget
    if _is_tensor_like(value):
        try:
            # Python numbers and lists are read in float64: as_tensor's default, float32, would
            # round 0.1 to 0.10000000149 before the requested dtype is applied.
            tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64)
        except OverflowError:  # a Python int beyond float64 (v; inputs are checked in prepare)
            specs.check_python_number(value, f"input {name}")
            raise
        except (TypeError, ValueError, RuntimeError) as error:
            raise InputError(f"input {name}: cannot make a tensor of {describe(value)} ({error})") from None
        specs.check_dense(tensor, f"input {name}")
        if tensor.is_complex() or tensor.dtype == torch.bool or tensor.numel() == 0:
            raise InputError(f"input {name}: jacli needs a non-empty tensor of real numbers, not {describe(value)}")
        check_budget(tensor.numel() * tensor.element_size(), budget, f"input {name}", "Use a smaller input.")
        if tensor.dtype is problem.dtype and tensor.device == problem.device:
            return tensor.detach()  # what .to() would give, without parsing its arguments
        return tensor.detach().to(dtype=problem.dtype, device=problem.device)
    return specs.materialize(
        value, name=name, dtype=problem.dtype, device=problem.device, seed=problem.seed,
        budget=budget, output_shape=output_shape,
    )


def _default_budget(device: Any) -> int:
    budget = default_budget()
    if device.type == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        budget = min(budget, free // 2)
    return budget


def describe(value: Any) -> str:
    """A short description of any value, for messages."""
    shape = getattr(value, "shape", None)
    if shape is not None and math.prod(shape) > 12:  # repr of a large tensor costs milliseconds
        return f"a {type(value).__name__} of shape {tuple(shape)} ({getattr(value, 'dtype', '?')})"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def all_finite(tensors: Sequence[Any]) -> bool:
    """Whether every number of every tensor is finite, from one scan of each (their sums).

    A NaN or an infinity makes its tensor's sum, and so the total, NaN or infinite; a total
    that overflows although every number is finite only costs the detailed look that follows.
    """
    total, elsewhere = 0.0, []
    for t in tensors:
        if not t.is_floating_point():
            continue  # integers are always finite
        if t.device.type == "cpu":
            total += t.sum().item()
        else:
            elsewhere.append(t.sum().double())
    if elsewhere:  # one device sync for all of them
        import torch

        total += torch.stack(elsewhere).sum().item()
    return math.isfinite(total)


def report_all_nonfinite(tensors: Sequence[tuple[Any, str]], where: bool = False) -> None:
    """``report_nonfinite`` for each ``(tensor, what)``, after one fused scan finds something."""
    if all_finite([tensor for tensor, _ in tensors]):
        return
    for tensor, what in tensors:
        report_nonfinite(tensor, what, where=where, stacklevel=4)


def report_nonfinite(tensor: Any, what: str, where: bool = False, stacklevel: int = 3) -> None:
    """NaN or infinite numbers are accepted, with a warning (the CLI prints it on stderr) that
    says how many and, with ``where``, at which indices."""
    import torch

    if tensor.is_floating_point() and all_finite([tensor]):
        return  # any NaN or infinity makes the sum NaN or infinite; no tensor-sized mask needed
    bad = ~torch.isfinite(tensor)
    count = int(bad.sum())
    if not count:
        return
    places = ""
    if where and tensor.dim():
        indices = _first_places(bad, 5)
        places = " at " + ", ".join(f"[{', '.join(map(str, i))}]" for i in indices)
        places += f" and {count - 5} more" if count > 5 else ""
    warnings.warn(
        f"{what} holds {count} NaN or infinite number{'s' if count > 1 else ''}{places}",
        JacliWarning, stacklevel=stacklevel,
    )


def _first_places(mask: Any, count: int, piece: int = 1 << 20) -> list[tuple[int, ...]]:
    """The indices of the first ``count`` True entries of ``mask``, scanning it in pieces: a
    result full of NaN must not turn into millions of index tuples to show five."""
    import numpy as np

    flat = mask.reshape(-1)
    found: list[int] = []
    for start in range(0, flat.numel(), piece):
        hits = flat[start : start + piece].nonzero().reshape(-1)[: count - len(found)]
        found += [start + int(i) for i in hits]
        if len(found) == count:
            break
    return [tuple(int(i) for i in np.unravel_index(k, tuple(mask.shape))) for k in found]
