"""The library behind the CLI: expression text + inputs → a ``Result`` that explains itself.

``jacobian`` and ``vjp`` return plain dicts of tensors for Python users; ``compute_jacobian``
and ``compute_vjp`` return the whole ``Result`` (inputs, output, method, device ...) that the
renderer and later teaching features read.

Example:
    >>> jacobian("x**2", {"x": [2.0, 3.0]})["x"]
    tensor([[4., 0.],
            [0., 6.]], dtype=torch.float64)
"""

from __future__ import annotations

import difflib
import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from jacli import devices, inputs as specs
from jacli.errors import ExpressionError, InputError, JacliWarning, ShapeError
from jacli.limits import check_budget, check_max_memory, default_budget

JACOBIAN_METHODS = ("auto", "reverse", "forward", "rows", "symbolic")
VJP_METHODS = ("auto", "grad", "backward")

InputValue = Any
"""A tensor, a number, nested lists of numbers, a spec string like ``"eye:3"``, or a parsed Spec."""


@dataclass
class Result:
    """Everything one computation produced, for rendering and explaining.

    Attributes:
        command: ``"jacobian"`` or ``"vjp"``.
        expression: the text as given.
        variables: the expression's inputs, in order of appearance.
        wrt: the inputs differentiated with respect to.
        method: the method that ran (never ``auto``).
        device, dtype: where and in what precision it ran, as names.
        inputs: name → input tensor.
        output: the expression's value at the inputs.
        values: name → result tensor (a Jacobian block, or the VJP shaped like the input).
        v: the vector of a VJP (shaped like the output), or name → direction for jvp and hvp.
        tree: the SymPy tree of the expression.
        symbolic: name → exact derivative entries (numpy object arrays of SymPy expressions),
            when asked for with ``symbolic=True`` or ``method="symbolic"``.
        diagonal: for elementwise expressions, name → the one scalar derivative on the diagonal.
        det: the Jacobian determinant (``det=True``), and ``det_symbolic`` its exact form.
    """

    command: str
    expression: str
    variables: tuple[str, ...]
    wrt: tuple[str, ...]
    method: str
    device: str
    dtype: str
    inputs: dict[str, Any]
    output: Any
    values: dict[str, Any]
    v: Any = None
    tree: Any = field(default=None, repr=False)
    symbolic: dict[str, Any] | None = field(default=None, repr=False)
    diagonal: dict[str, Any] | None = field(default=None, repr=False)
    det: Any = None
    det_symbolic: Any = field(default=None, repr=False)


def jacobian(
    expr: str,
    inputs: Mapping[str, InputValue],
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
) -> dict[str, Any]:
    """The Jacobian of ``expr`` with respect to each input in ``wrt``.

    Args:
        expr: e.g. ``"[r*cos(t), r*sin(t)]"``.
        inputs: name → tensor, number, nested list or spec string (``"eye:3"``).
        wrt: names to differentiate with respect to; default all.
        method: ``auto``, ``reverse`` (jacrev), ``forward`` (jacfwd) or ``rows``.
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto`` or a torch.device.
        dtype: ``float64`` or ``float32`` (a name or a torch.dtype).

    Returns:
        name → tensor of shape ``output.shape + input.shape``.

    Example:
        >>> jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.0})["t"]
        tensor([0., 2.], dtype=torch.float64)
    """
    return compute_jacobian(expr, inputs, wrt=wrt, method=method, device=device, dtype=dtype).values


def vjp(
    expr: str,
    inputs: Mapping[str, InputValue],
    v: InputValue,
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
) -> dict[str, Any]:
    """vᵀJ for each input: exactly what ``y.backward(v)`` leaves in ``x.grad``.

    Args:
        v: shaped like the output; a tensor, number, list, or spec (``"ones"``, ``"onehot:0"``).
        method: ``auto`` or ``grad`` (torch.autograd.grad), or ``backward`` (y.backward(v)).

    Returns:
        name → tensor shaped like that input.

    Example:
        >>> vjp("2*x", {"x": [1.0, 2.0]}, [1.0, 0.1])["x"]
        tensor([2.0000, 0.2000], dtype=torch.float64)
    """
    return compute_vjp(expr, inputs, v, wrt=wrt, method=method, device=device, dtype=dtype).values


def jvp(expr: str, inputs: Mapping[str, InputValue], v: Any, *, device: Any = "cpu", dtype: Any = "float64") -> Any:
    """J·u, shaped like the output, in one forward-mode pass.

    Example:
        >>> jvp("x**2", {"x": [1.0, 2.0]}, {"x": [1.0, 1.0]})
        tensor([2., 4.], dtype=torch.float64)
    """
    return compute_jvp(expr, inputs, v, device=device, dtype=dtype).values["output"]


def grad(expr: str, inputs: Mapping[str, InputValue], *, wrt: Sequence[str] | None = None,
         method: str = "auto", device: Any = "cpu", dtype: Any = "float64") -> dict[str, Any]:
    """The gradient of a single-element output, one tensor per input (shaped like it).

    Example:
        >>> grad("x**2 + 3*x + 1", {"x": 2.0})["x"]
        tensor(7., dtype=torch.float64)
    """
    return compute_grad(expr, inputs, wrt=wrt, method=method, device=device, dtype=dtype).values


def hessian(expr: str, inputs: Mapping[str, InputValue], *, wrt: Sequence[str] | None = None,
            method: str = "auto", device: Any = "cpu", dtype: Any = "float64") -> dict[str, Any]:
    """The Hessian of a single-element output, blocks keyed ``"a,b"``.

    Example:
        >>> hessian("x[0]**2*x[1] + x[1]**3", {"x": [1.0, 2.0]})["x,x"]
        tensor([[ 4.,  2.],
                [ 2., 12.]], dtype=torch.float64)
    """
    return compute_hessian(expr, inputs, wrt=wrt, method=method, device=device, dtype=dtype).values


def hvp(expr: str, inputs: Mapping[str, InputValue], v: Any, *, device: Any = "cpu", dtype: Any = "float64") -> dict[str, Any]:
    """H·u without building H, one tensor per input."""
    return compute_hvp(expr, inputs, v, device=device, dtype=dtype).values


def compute_jacobian(
    expr: str,
    inputs: Mapping[str, InputValue] | Iterable[tuple[str | None, InputValue]],
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    progress: Any = None,
    symbolic: bool = False,
    det: bool = False,
) -> Result:
    """Like ``jacobian`` but returns the whole ``Result``; refuses Jacobians over the budget.

    Args:
        inputs: a mapping, or ``(name or None, value)`` pairs as the CLI gives them (None binds
            the only variable).
        method: also ``symbolic``: SymPy's exact derivative, evaluated on torch.
        seed: seeds ``rand``/``randn`` specs.
        max_memory: the memory budget in bytes (default: half the available memory).
        progress: ``progress(done, total)`` for the row loop.
        symbolic: also keep the exact derivative (``Result.symbolic``).
        det: also compute the determinant of the square Jacobian (all inputs together).
    """
    _check_method(method, JACOBIAN_METHODS)
    problem = _prepare(expr, inputs, wrt, device, dtype, seed, max_memory, result="jacobian")
    from jacli import engine

    output = problem.output
    wrt_tensors = [problem.inputs[name] for name in problem.wrt]
    itemsize = output.element_size()
    if method == "auto":
        method = engine.choose_jacobian_method(sum(t.numel() for t in wrt_tensors), output.numel())
    chunk_size = None
    if method == "reverse":
        # jacrev pulls back one basis vector per output element, all at once under vmap; when
        # that would not fit in the budget, it goes in chunks.
        basis = output.numel()
        per_vector = max(1, len(problem.compiled.tree.atoms()) + 4) * itemsize * (
            output.numel() + sum(t.numel() for t in problem.inputs.values())
        )
        if basis * per_vector > problem.budget:
            chunk_size = max(1, problem.budget // per_vector)
    exact = problem.shown_symbolic(method, problem.symbolic_jacobian) if symbolic or method == "symbolic" else None
    if method == "symbolic":
        values = {name: problem.evaluate(exact[name]) for name in problem.wrt}
    else:
        blocks = engine.jacobian(
            problem.compiled.function, problem.args, problem.wrt_positions, method,
            progress=progress, chunk_size=chunk_size,
        )
        values = dict(zip(problem.wrt, blocks))
    result = problem.result("jacobian", method, output, values)
    if exact is not None:
        result.symbolic = exact
        result.diagonal = problem.diagonal()
    if det:
        result.det, result.det_symbolic = _determinant(problem, values, exact)
    return result


def compute_vjp(
    expr: str,
    inputs: Mapping[str, InputValue] | Iterable[tuple[str | None, InputValue]],
    v: InputValue,
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
) -> Result:
    """Like ``vjp`` but returns the whole ``Result``."""
    _check_method(method, VJP_METHODS)
    v_spec = _as_spec(specs.unnamed_v(v), for_v=True) if isinstance(v, str) else v
    problem = _prepare(expr, inputs, wrt, device, dtype, seed, max_memory)
    from jacli import engine

    output = problem.output
    v_tensor = _materialize(v_spec, "v", problem, output_shape=tuple(output.shape))
    v_tensor = specs.fit_to_output(v_tensor, tuple(output.shape), _spec_text(v_spec, v_tensor))
    _report_nonfinite(v_tensor, "--v")
    method = "grad" if method == "auto" else method
    grads = engine.vjp(problem.compiled.function, problem.args, problem.wrt_positions, v_tensor, method)
    result = problem.result("vjp", method, output, dict(zip(problem.wrt, grads)))
    result.v = v_tensor
    return result


def compute_jvp(
    expr: str,
    inputs: Mapping[str, InputValue] | Iterable[tuple[str | None, InputValue]],
    v: Mapping[str, InputValue] | Iterable[tuple[str | None, InputValue]] | InputValue,
    *,
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
) -> Result:
    """J·u in one forward-mode pass, shaped like the output (``Result.values["output"]``).

    Args:
        v: the direction: name → value for each input that moves (the others stay still), or a
            single value when the expression has one variable.
    """
    problem = _prepare(expr, inputs, None, device, dtype, seed, max_memory)
    from jacli import engine

    directions = _directions(problem, v, "jvp")
    problem.wrt = tuple(directions)
    out = engine.jvp(problem.compiled.function, problem.args, problem.wrt_positions, list(directions.values()))
    result = problem.result("jvp", "forward", problem.output, {"output": out})
    result.v = directions
    return result


def compute_grad(
    expr: str,
    inputs: Mapping[str, InputValue] | Iterable[tuple[str | None, InputValue]],
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    symbolic: bool = False,
) -> Result:
    """The gradient of a single-element output: what ``y.backward()`` leaves in ``x.grad``.

    Args:
        method: ``auto``/``reverse`` (torch.autograd.grad), ``forward`` (jacfwd) or ``symbolic``.
    """
    _check_method(method, ("auto", "reverse", "forward", "symbolic"))
    problem = _prepare(expr, inputs, wrt, device, dtype, seed, max_memory)
    from jacli import engine

    _require_scalar(problem, "grad")
    method = "reverse" if method == "auto" else method
    exact = problem.shown_symbolic(method, problem.symbolic_jacobian) if symbolic or method == "symbolic" else None
    if exact is not None:
        exact = {name: block.reshape(problem.shapes[name]) for name, block in exact.items()}
    if method == "symbolic":
        values = {name: problem.evaluate(exact[name]) for name in problem.wrt}
    else:
        grads = engine.grad(problem.compiled.function, problem.args, problem.wrt_positions, method)
        values = dict(zip(problem.wrt, grads))
    result = problem.result("grad", method, problem.output, values)
    result.symbolic = exact
    return result


def compute_hessian(
    expr: str,
    inputs: Mapping[str, InputValue] | Iterable[tuple[str | None, InputValue]],
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    symbolic: bool = False,
) -> Result:
    """The Hessian of a single-element output: one block per pair of inputs, keyed ``"a,b"``,
    shaped ``a.shape + b.shape``.

    Args:
        method: ``auto``/``forward`` (forward-over-reverse), ``reverse`` (reverse-over-reverse)
            or ``symbolic``.
    """
    _check_method(method, ("auto", "forward", "reverse", "symbolic"))
    problem = _prepare(expr, inputs, wrt, device, dtype, seed, max_memory, result="hessian")
    from jacli import engine, symbolic as exact_module

    _require_scalar(problem, "hessian")
    sizes = [problem.inputs[n].numel() for n in problem.wrt]
    method = "forward" if method == "auto" else method
    exact = None
    if symbolic or method == "symbolic":

        def build() -> dict[str, Any]:
            exact_module.check_size(problem.shapes, (sum(sizes),), problem.wrt)
            pairs = exact_module.hessian(problem.compiled.tree, problem.shapes, problem.wrt)
            return {f"{a},{b}": block for (a, b), block in pairs.items()}

        exact = problem.shown_symbolic(method, build)
    if method == "symbolic":
        values = {key: problem.evaluate(block) for key, block in exact.items()}
    else:
        blocks = engine.hessian(problem.compiled.function, problem.args, problem.wrt_positions, method)
        names = problem.compiled.variables
        values = {f"{names[i]},{names[j]}": block for (i, j), block in blocks.items()}
    result = problem.result("hessian", method, problem.output, values)
    result.symbolic = exact
    return result


def compute_hvp(
    expr: str,
    inputs: Mapping[str, InputValue] | Iterable[tuple[str | None, InputValue]],
    v: Mapping[str, InputValue] | Iterable[tuple[str | None, InputValue]] | InputValue,
    *,
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
) -> Result:
    """H·u for a single-element output, without building H, one tensor per input (shaped like it).

    Args:
        v: the direction, as for ``compute_jvp``; inputs without a direction stay still.
    """
    problem = _prepare(expr, inputs, None, device, dtype, seed, max_memory)
    from jacli import engine

    _require_scalar(problem, "hvp")
    directions = _directions(problem, v, "hvp")
    tangents = [directions.get(name, None) for name in problem.wrt]
    tangents = [t if t is not None else problem.inputs[n].new_zeros(problem.inputs[n].shape)
                for t, n in zip(tangents, problem.wrt)]
    out = engine.hvp(problem.compiled.function, problem.args, problem.wrt_positions, tangents)
    result = problem.result("hvp", "forward-over-reverse", problem.output, dict(zip(problem.wrt, out)))
    result.v = directions
    return result


def _require_scalar(problem: "_Problem", command: str) -> None:
    """grad, hessian and hvp need one output number; say why and what works instead."""
    shape = tuple(problem.output.shape)
    if problem.output.numel() == 1:
        return
    raise ShapeError(
        f"{command} needs an expression with a single number as output, but this output has shape "
        f"{shape} ({problem.output.numel()} numbers). The gradient of a vector is not defined "
        "without a weighting vector v (torch: \"grad can be implicitly created only for scalar "
        "outputs\"): y.backward(v) takes the gradient of sum(v * y). Try\n"
        f"  {problem.command_line('vjp', '--v ones')}\n"
        f"for vᵀJ with v = ones (the gradient of sum(y)), or\n"
        f"  {problem.command_line('jacobian')}\n"
        "for the whole Jacobian" + (", or wrap the expression in sum(...) or mean(...)" if command != "grad" else "")
    )


def _directions(problem: "_Problem", v: Any, command: str) -> dict[str, Any]:
    """--v for jvp and hvp: one direction per input, each shaped like its input."""
    if isinstance(v, Mapping):
        pairs = list(v.items())
    elif isinstance(v, (list, tuple)) and v and all(isinstance(p, tuple) and len(p) == 2 for p in v):
        pairs = list(v)
    else:
        pairs = [(None, v)]
    directions: dict[str, Any] = {}
    variables = problem.compiled.variables
    for name, value in pairs:
        if name is None:
            if len(variables) != 1:
                raise InputError(
                    f"{command}: a --v without a name fits only an expression with one variable; "
                    f"write --v NAME=SPEC for each input that moves ({', '.join(variables)})"
                )
            name = variables[0]
        if name not in variables:
            close = _close_name(name, variables)
            hint = f"; did you mean {close}?" if close else "."
            raise InputError(f"--v {name}=...: {name!r} is not a variable of the expression{hint} Its variables are: {', '.join(variables)}")
        if name in directions:
            raise InputError(f"--v gives a direction for {name!r} twice")
        spec = _as_spec(value, for_v=True) if isinstance(value, str) else value
        shape = tuple(problem.inputs[name].shape)
        tensor = _materialize(spec, f"v for {name}", problem, output_shape=shape)
        tensor = specs.fit_to_output(tensor, shape, _spec_text(spec, tensor), what=f"input {name}")
        _report_nonfinite(tensor, f"--v for {name}")
        directions[name] = tensor
    return {name: directions[name] for name in variables if name in directions}


# -- shared preparation -------------------------------------------------------------------------


@dataclass
class _Problem:
    compiled: Any
    inputs: dict[str, Any]
    wrt: tuple[str, ...]
    output: Any
    budget: int
    device: Any
    dtype: Any
    seed: int
    given: dict[str, Any] = field(default_factory=dict)

    @property
    def args(self) -> tuple:
        return tuple(self.inputs[name] for name in self.compiled.variables)

    @property
    def wrt_positions(self) -> tuple[int, ...]:
        return tuple(self.compiled.variables.index(name) for name in self.wrt)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(t.shape) for name, t in self.inputs.items()}

    def symbolic_jacobian(self) -> dict[str, Any]:
        from jacli import symbolic

        symbolic.check_size(self.shapes, tuple(self.output.shape), self.wrt)
        return symbolic.jacobian(self.compiled.tree, self.shapes, self.wrt)

    def shown_symbolic(self, method: str, build: Any) -> Any:
        """``build()`` for --method symbolic (its errors stand); for --symbolic alone, which only
        shows the exact form beside the numbers, a problem too large for SymPy is a warning and
        the numbers come as usual."""
        from jacli.errors import ResourceError

        if method == "symbolic":
            return build()
        try:
            return build()
        except ResourceError as error:
            reason = str(error).split(". Use --method")[0]
            warnings.warn(f"--symbolic skipped: {reason}; the numbers below are from {method} mode",
                          JacliWarning, stacklevel=3)
            return None

    def evaluate(self, entries: Any) -> Any:
        """Exact SymPy entries evaluated on torch at the inputs."""
        from jacli import symbolic
        from jacli.compile import compile_tree

        return symbolic.evaluate(entries, self.compiled.variables, self.args, compile_tree)

    def diagonal(self) -> dict[str, Any] | None:
        """For an elementwise expression of tensors: the one derivative on each diagonal."""
        from jacli import symbolic

        if all(not self.shapes[n] for n in self.wrt) or not symbolic.is_elementwise(self.compiled.tree):
            return None
        return {name: symbolic.scalar_derivative(self.compiled.tree, name) for name in self.wrt}

    def command_line(self, command: str, extra: str = "") -> str:
        """A jacli command line that repeats this problem's expression and inputs."""
        import shlex

        parts = ["jacli", command, shlex.quote(self.compiled.text)]
        for name in self.compiled.variables:
            parts += ["-i", shlex.quote(f"{name}={self.given.get(name, '...')}")]
        return " ".join(parts) + (f" {extra}" if extra else "")

    def result(self, command: str, method: str, output: Any, values: dict[str, Any]) -> Result:
        _report_nonfinite(output, "the output", where=True)
        for name, value in values.items():
            _report_nonfinite(value, f"the result for {name}", where=True)
        return Result(
            command=command, expression=self.compiled.text, variables=self.compiled.variables,
            wrt=self.wrt, method=method, device=str(self.device), dtype=str(self.dtype).replace("torch.", ""),
            inputs=self.inputs, output=output, values=values, tree=self.compiled.tree,
        )


def _prepare(expr, inputs, wrt, device, dtype, seed, max_memory, result: str | None = None) -> _Problem:
    """Check everything cheap first (names, specs, the expression), then import torch and build.

    Sizes are checked from shapes before anything large is allocated: each input, the inputs
    together, the expression's intermediate results, and the ``result`` to build ("jacobian" or
    "hessian"). Inputs whose shape is only known once read (files) are read first.
    """
    devices.check_names(device if isinstance(device, str) else "cpu", dtype if isinstance(dtype, str) else "float64")
    max_memory = check_max_memory(max_memory)
    wrt = specs.check_wrt(wrt)
    pairs = _input_pairs(inputs)
    given = [(name, _as_spec(value) if isinstance(value, str) else value) for name, value in pairs]
    specs.check_python_numbers(given)

    # Spec sizes, the expression and the names are checked before torch (and, for the sizes,
    # SymPy) is imported, so that these errors answer at once.
    cpu_budget = None  # read from /proc/meminfo once, here or below
    if isinstance(device, str) and device == "cpu":
        itemsize = 4 if str(dtype) in ("float32", "torch.float32") else 8
        if max_memory is None:
            cpu_budget = default_budget()
        limit = max_memory if max_memory is not None else cpu_budget
        sized = []
        for name, spec in given:
            if not _is_tensor_like(spec):
                specs.check_spec_budget(spec, name, itemsize, limit)
                if getattr(spec, "shape", None) is not None:
                    sized.append((name, spec, math.prod(spec.shape)))
        _check_inputs_together([(specs.label(n, s.text), count * itemsize) for n, s, count in sized], limit)

    from jacli.parse import parse

    variables = parse(expr).variables
    bound = bind(variables, given)
    wrt_names = _check_wrt(variables, wrt)
    specs.check_single_stdin({n: s for n, s in bound.items() if not _is_tensor_like(s)})

    from jacli.compile import compile_expression

    compiled = compile_expression(expr)
    torch_dtype = devices.resolve_dtype(dtype)
    torch_device = devices.resolve_device(device, torch_dtype)
    budget = max_memory if max_memory is not None else cpu_budget or _default_budget(torch_device)
    problem = _Problem(compiled, {}, wrt_names, None, budget, torch_device, torch_dtype, seed)
    problem.given = {name: _spec_text(bound[name], bound[name]) for name in compiled.variables}
    shapes = {name: _known_shape(bound[name]) for name in compiled.variables}
    planned = all(shape is not None for shape in shapes.values())
    checked = planned and _check_plan(problem, shapes, result)
    for name in compiled.variables:
        problem.inputs[name] = tensor = _materialize(bound[name], name, problem)
        if tensor.numel() == 0:
            raise InputError(
                f"input {specs.label(name, problem.given[name])} has no numbers (shape {tuple(tensor.shape)}); "
                "give at least one"
            )
        _report_nonfinite(tensor, f"input {name}")
    shapes = {n: tuple(t.shape) for n, t in problem.inputs.items()}
    if not planned:
        checked = _check_plan(problem, shapes, result)
    problem.output = compiled.checked(*problem.args).detach()
    if not checked:  # no shape-only run was possible: check the result from the real output
        _check_result(problem, shapes, tuple(problem.output.shape), result)
    if problem.output.numel() == 0:
        raise ShapeError(
            f"the output of {compiled.text} has no numbers (shape {tuple(problem.output.shape)}), so there "
            "is nothing to differentiate. Check the indices and slices against the input shapes "
            f"({', '.join(f'{n} {tuple(t.shape)}' for n, t in problem.inputs.items())})."
        )
    return problem


def _check_inputs_together(sizes: list[tuple[str, int]], budget: int) -> None:
    """Several inputs may each fit the budget and still exceed it together."""
    if len(sizes) > 1:
        check_budget(
            sum(size for _, size in sizes), budget,
            "the inputs together (" + ", ".join(what for what, _ in sizes) + ")",
            "Use smaller inputs, or raise --max-memory.",
        )


def _known_shape(value: Any) -> tuple[int, ...] | None:
    """An input's shape when it is known without reading or allocating anything, else None."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return tuple(shape)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ()
    return None


def _check_plan(problem: _Problem, shapes: dict[str, tuple[int, ...]], result: str | None) -> bool:
    """Every size check that shapes alone decide: inputs together, evaluation, the result.

    Returns whether the result could be checked (False when the shape-only run was not possible).
    """
    itemsize = problem.dtype.itemsize
    elements = {name: math.prod(shape) for name, shape in shapes.items()}
    _check_inputs_together(
        [(specs.label(n, problem.given[n]), count * itemsize) for n, count in elements.items()], problem.budget
    )
    # A cheap upper bound first: when even it fits, the exact shape-only run (whose first use
    # imports a second of torch machinery) is not needed.
    output_bound, intermediates_bound = _size_bound(problem.compiled.tree, shapes)
    wrt_elements = sum(elements[name] for name in problem.wrt)
    result_bound = {"jacobian": output_bound * wrt_elements, "hessian": wrt_elements**2}.get(result, 0)
    bound = sum(elements.values()) + intermediates_bound + output_bound + result_bound
    if bound * itemsize <= problem.budget:
        return True
    output_shape, intermediates = _meta_evaluation(problem, shapes)
    check_budget(
        sum(elements.values()) * itemsize + intermediates, problem.budget,
        f"evaluating {specs.shorten(problem.compiled.text)} (its intermediate results, with the inputs)",
        "Use smaller inputs, or raise --max-memory.",
    )
    if output_shape is None:
        return False
    _check_result(problem, shapes, output_shape, result)
    return True


_SIZE_CAP = 2**62


def _size_bound(tree: Any, shapes: dict[str, tuple[int, ...]]) -> tuple[int, int]:
    """Upper bounds, in elements, of the output and of all intermediate results together.

    Pure Python over the SymPy tree. A node's size is at most the product of its children's
    sizes (broadcasting and matrix products; a list of m components, m times that); functions
    of one tensor, reductions, reshapes and indexing are no larger than their argument.
    """
    import sympy as sp

    from jacli import nodes

    total = 0

    def bound(node: Any) -> int:
        nonlocal total
        if isinstance(node, sp.Symbol):
            return math.prod(shapes.get(node.name, (1,)))
        if not node.args or isinstance(node, (sp.Number, sp.NumberSymbol)):
            return 1
        children = [bound(arg) for arg in node.args]
        size = 1
        for child in children:
            size = min(size * child, _SIZE_CAP)
        if isinstance(node, nodes.Components):
            size = min(size * len(node.args), _SIZE_CAP)
        total = min(total + size, _SIZE_CAP)
        return size

    return bound(tree), total


def _check_result(
    problem: _Problem, shapes: dict[str, tuple[int, ...]], output_shape: tuple[int, ...], result: str | None
) -> None:
    """Refuse a Jacobian or Hessian that would not fit beside the inputs and the output."""
    if result is None:
        return
    itemsize = problem.dtype.itemsize
    held = (sum(math.prod(shape) for shape in shapes.values()) + math.prod(output_shape)) * itemsize
    wrt_shapes = [shapes[name] for name in problem.wrt]
    if result == "jacobian":
        _check_jacobian_size(problem, output_shape, wrt_shapes, itemsize, held)
    elif result == "hessian" and math.prod(output_shape) == 1:
        n = sum(math.prod(shape) for shape in wrt_shapes)
        check_budget(
            n * n * itemsize + held, problem.budget,
            f"the Hessian ({n:,} × {n:,} numbers, with the inputs and output)",
            "Use `jacli hvp` for Hessian-vector products without building it, or pick fewer inputs with --wrt.",
        )


def _meta_evaluation(problem: _Problem, shapes: dict[str, tuple[int, ...]]) -> tuple[tuple[int, ...] | None, int]:
    """The output's shape and the bytes of all intermediate results, from shapes alone (cached:
    a pure function of the expression, the shapes and the dtype)."""
    key = tuple(shapes[name] for name in problem.compiled.variables)
    return _meta_run(problem.compiled.text, key, str(problem.dtype))


@functools.lru_cache(maxsize=256)
def _meta_run(text: str, shapes: tuple[tuple[int, ...], ...], dtype_name: str) -> tuple[tuple[int, ...] | None, int]:
    """See ``_meta_evaluation``.

    The expression runs first on shape-only ("meta") tensors, which allocate nothing, while the
    compiled tree adds up the size of every intermediate result; autograd may keep all of them
    for the backward pass. ``sum(x_col * y_row)`` with two 100,000-element inputs is refused
    here instead of being killed by the operating system. Where an operation has no meta
    version, the check is skipped and the real evaluation's own out-of-memory error applies.
    """
    import torch

    from jacli.compile import measure

    dtype = getattr(torch, dtype_name.replace("torch.", ""))
    args = [torch.empty(shape, dtype=dtype, device="meta") for shape in shapes]
    try:
        output, total = measure(text, *args)
    except Exception:  # an operation without a meta kernel, or a shape error the real run will name
        return None, 0
    return tuple(output.shape), total


def _input_pairs(inputs: Any) -> list[tuple[str | None, Any]]:
    """``{name: value}`` or ``[(name, value), ...]`` as pairs; anything else is an InputError."""
    if isinstance(inputs, Mapping):
        return list(inputs.items())
    example = "give them as a dict such as {'x': [1.0, 2.0]}"
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Iterable):
        raise InputError(f"inputs must map names to values, not {_describe(inputs)}; {example}")
    pairs = list(inputs)
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and (pair[0] is None or isinstance(pair[0], str))):
            raise InputError(f"inputs must be (name, value) pairs or a dict, not {_describe(inputs)}; {example}")
    return pairs


def bind(variables: Sequence[str], given: list[tuple[str | None, Any]]) -> dict[str, Any]:
    """Match given inputs to the expression's variables; errors list what is needed."""
    if not variables:
        raise ExpressionError(
            "the expression has no variables, so there is nothing to differentiate; "
            "use a name such as x and give it with --input x=..."
        )
    bound: dict[str, Any] = {}
    for name, value in given:
        if name is None:
            if len(variables) != 1:
                raise InputError(
                    f"an --input without a name fits only an expression with one variable; this one "
                    f"has {len(variables)} ({', '.join(variables)}), so write NAME=SPEC, e.g. "
                    f"--input {variables[0]}=1,2,3"
                )
            name = variables[0]
        if name not in variables:
            close = _close_name(name, variables)
            hint = f"; did you mean {close}?" if close else "."
            raise InputError(
                f"input {name!r} is not used by the expression{hint} Its variables are: {', '.join(variables)}"
            )
        if name in bound:
            raise InputError(f"input {name!r} is given twice; give each variable once")
        bound[name] = value
    missing = [name for name in variables if name not in bound]
    if missing:
        example = " ".join(f"-i {name}=1,2,3" for name in missing)
        raise InputError(
            f"no input for {', '.join(missing)}; the expression needs {', '.join(variables)}. "
            f"Give each one, e.g. {example}"
        )
    return bound


def _close_name(name: str, variables: Sequence[str]) -> str | None:
    """The variable the user probably meant: the same name in another case, or a near spelling."""
    for variable in variables:
        if variable.lower() == name.lower():
            return variable
    close = difflib.get_close_matches(name, variables, n=1)
    return close[0] if close else None


def _check_wrt(variables: Sequence[str], wrt: Sequence[str] | None) -> tuple[str, ...]:
    if not wrt:
        return tuple(variables)
    names: list[str] = []
    for item in wrt:
        for name in (part.strip() for part in item.split(",")):
            if not name:
                continue
            if name not in variables:
                close = _close_name(name, variables)
                hint = f"; did you mean {close}?" if close else "."
                raise InputError(f"--wrt {name!r} is not a variable of the expression{hint} Its variables are: {', '.join(variables)}")
            if name not in names:
                names.append(name)
    if not names:
        raise InputError(f"--wrt names no variable; its variables are: {', '.join(variables)}")
    return tuple(name for name in variables if name in names)


def _check_jacobian_size(
    problem: _Problem, output_shape: tuple[int, ...], wrt_shapes: list[tuple[int, ...]], itemsize: int, held: int
) -> None:
    """Refuse a Jacobian whose blocks would not fit in the memory budget, before building it."""
    from jacli import engine

    outputs = math.prod(output_shape)
    ins = sum(math.prod(shape) for shape in wrt_shapes)
    numbers = engine.jacobian_elements(output_shape, wrt_shapes)
    shapes = " + ".join(f"{n} {tuple(s)}" for n, s in zip(problem.wrt, wrt_shapes))
    check_budget(
        numbers * itemsize + held, problem.budget,
        f"the Jacobian of {specs.shorten(problem.compiled.text)} ({outputs:,} output "
        f"element{'s' if outputs != 1 else ''} × {ins:,} input element{'s' if ins != 1 else ''} = "
        f"{numbers:,} numbers, for output {tuple(output_shape)} and {shapes}; with the inputs "
        "and output it holds)",
        "Use `jacli vjp` with --v for one combination of its rows, pick fewer inputs with --wrt, "
        "use smaller inputs, or raise --max-memory.",
    )


def _check_method(method: str, known: Sequence[str]) -> None:
    if method not in known:
        raise InputError(f"unknown method {method!r}; use {', '.join(known)}")


def _spec_text(spec: Any, value: Any) -> str:
    """How the user wrote a value: its spec text, or a short description of a tensor."""
    text = getattr(spec, "text", None)
    if text is not None:
        return text
    try:
        import torch

        # detach: describing a tensor that requires grad must not warn about float(tensor).
        tensor = torch.as_tensor(value).detach()
        if tensor.numel() <= 12:
            return ",".join(repr(float(x)) for x in tensor.reshape(-1)) if tensor.dim() == 1 else repr(tensor.tolist()).replace(" ", "")
    except (TypeError, ValueError, RuntimeError):
        pass
    return _describe(value)


def _determinant(problem: _Problem, values: dict[str, Any], exact: dict[str, Any] | None) -> tuple[Any, Any]:
    """det of the Jacobian with all inputs side by side as columns (the volume factor)."""
    import torch

    rows = problem.output.numel()
    matrix = torch.cat([values[name].reshape(rows, -1) for name in problem.wrt], dim=1)
    if matrix.shape[0] != matrix.shape[1]:
        raise ShapeError(
            f"--det needs a square Jacobian, but the output has {matrix.shape[0]} elements and the "
            f"inputs ({', '.join(problem.wrt)}) have {matrix.shape[1]} together; choose inputs with "
            "--wrt so that the counts match"
        )
    determinant = torch.linalg.det(matrix)
    exact_det = None
    if exact is not None:
        import numpy as np
        import sympy as sp

        columns = np.concatenate([exact[name].reshape(rows, -1) for name in problem.wrt], axis=1)
        if rows <= 6:
            exact_det = sp.simplify(sp.Matrix(columns.tolist()).det())
    return determinant, exact_det


def _as_spec(text: str, for_v: bool = False) -> Any:
    return specs.parse_spec(text, for_v=for_v)


def _is_tensor_like(value: Any) -> bool:
    return not isinstance(value, (specs.Literal, specs.Constructor, specs.File, specs.OneHot))


def _materialize(value: Any, name: str, problem: _Problem, output_shape: tuple[int, ...] | None = None) -> Any:
    import torch

    if _is_tensor_like(value):
        try:
            # Python numbers and lists are read in float64: as_tensor's default, float32, would
            # round 0.1 to 0.10000000149 before the requested dtype is applied.
            tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64)
        except OverflowError:  # a Python int beyond float64 (v; inputs are checked in _prepare)
            specs.check_python_number(value, f"input {name}")
            raise
        except (TypeError, ValueError, RuntimeError) as error:
            raise InputError(f"input {name}: cannot make a tensor of {_describe(value)} ({error})") from None
        specs.check_dense(tensor, f"input {name}")
        if tensor.is_complex() or tensor.dtype == torch.bool or tensor.numel() == 0:
            raise InputError(f"input {name}: jacli needs a non-empty tensor of real numbers, not {_describe(value)}")
        check_budget(tensor.numel() * tensor.element_size(), problem.budget, f"input {name}", "Use a smaller input.")
        return tensor.detach().to(dtype=problem.dtype, device=problem.device)
    return specs.materialize(
        value, name=name, dtype=problem.dtype, device=problem.device, seed=problem.seed,
        budget=problem.budget, output_shape=output_shape,
    )


def _default_budget(device: Any) -> int:
    budget = default_budget()
    if device.type == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        budget = min(budget, free // 2)
    return budget


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and math.prod(shape) > 12:  # repr of a large tensor costs milliseconds
        return f"a {type(value).__name__} of shape {tuple(shape)} ({getattr(value, 'dtype', '?')})"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _report_nonfinite(tensor: Any, what: str, where: bool = False) -> None:
    """NaN or infinite numbers are accepted, with a warning (the CLI prints it on stderr) that
    says how many and, with ``where``, at which indices."""
    import torch

    if tensor.is_floating_point() and torch.isfinite(tensor.sum()):
        return  # any NaN or infinity makes the sum NaN or infinite; no tensor-sized mask needed
    bad = ~torch.isfinite(tensor)
    count = int(bad.sum())
    if not count:
        return
    places = ""
    if where and tensor.dim():
        indices = bad.nonzero().tolist()[:5]
        places = " at " + ", ".join(f"[{', '.join(map(str, i))}]" for i in indices)
        places += f" and {count - 5} more" if count > 5 else ""
    warnings.warn(
        f"{what} holds {count} NaN or infinite number{'s' if count > 1 else ''}{places}",
        JacliWarning, stacklevel=3,
    )


