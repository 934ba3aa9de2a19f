"""Many points in one call (``batch_axis``): the API's path for a batch of independent points.

The inputs named by ``batched`` (default: every input that has the axis) hold one point per
index along ``batch_axis``; the other inputs are shared by all points. Each command's transform
is taken per point and vectorized over the points with ``torch.func.vmap``
(``jacli.engine.batched``), as many points at once as the memory budget allows
(``Plan.points_chunk``). Every result has the points on its leading axis:
``(points,) + output.shape + input.shape`` for a Jacobian block, ``(points,) + input.shape`` for
a VJP or gradient, ``(points,) + output.shape`` for J·u and the output.

``jacli.api`` calls these when ``batch_axis`` is given; they return a ``PointsResult``.

Example:
    >>> result = jacobian_points("[r*cos(t), r*sin(t)]", {"r": [1.0, 2.0], "t": 0.0}, batch_axis=0)
    >>> result.values["r"].tolist(), result.values["t"].tolist()
    ([[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 2.0]])
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from jacli.engine.methods import GradMethod, JacobianMethod, Layout, VJPMethod
from jacli.errors import InputError, ResourceError, ShapeError
from jacli.problem import InputValue, Inputs, Problem, materialize, prepare, report_all_nonfinite, spec_text
from jacli.result import PointsResult


def jacobian_points(
    expr: str, inputs: Inputs, *, batch_axis: int = 0, batched: Sequence[str] | str | None = None,
    wrt: Sequence[str] | None = None, method: str = "auto", device: Any = "cpu", dtype: Any = "float64",
    seed: int = 0, max_memory: int | None = None, untrusted: bool = False, layout: str = "auto",
    matrix: bool | None = None,
) -> PointsResult:
    """One Jacobian per point, computed together: blocks shaped ``(points,) + output.shape + input.shape``.

    Args:
        method: ``auto`` (forward when one point's inputs have fewer elements than its output,
            else reverse), ``reverse`` or ``forward``.
        layout: ``auto`` or ``dense`` (the blocks are dense).
        matrix: whether one point's result is written as its classic matrix (see
            ``compute_jacobian``); the points' blocks are the same either way.
    """
    chosen = JacobianMethod.parse(method)
    if chosen not in (JacobianMethod.auto, JacobianMethod.reverse, JacobianMethod.forward):
        raise InputError(
            f"`method` {chosen.value} computes one point at a time; with `batch_axis` use auto, reverse or "
            "forward (vectorized over the points), or leave out `batch_axis` and call once per point",
            param="method", usage=True,
        )
    if Layout.parse(layout) not in (Layout.auto, Layout.dense):
        raise InputError(
            f"`layout` {Layout.parse(layout).value}: with `batch_axis` each point's Jacobian is dense; ask for "
            "`layout` dense (or auto), or leave out `batch_axis` for a structured layout", param="layout", usage=True,
        )
    problem = _prepare(expr, inputs, batch_axis, batched, wrt, device, dtype, seed, max_memory, untrusted)
    plan = problem.plan
    if chosen is JacobianMethod.auto:
        chosen = JacobianMethod(plan.jacobian_method())
    m, n = plan.output_elements, plan.wrt_elements
    chunk = _chunk(problem, "jacobian", chosen.value, m * n + m, "the Jacobians")
    from jacli.engine import batched as engine

    with _running(problem):
        output, blocks = engine.jacobian(problem.compiled.function, problem.args, _in_dims(problem),
                                         problem.wrt_positions, chosen, chunk_size=chunk)
    values = _reported(problem, output, dict(zip(problem.wrt, blocks)))
    order = _ordered(wrt, problem.wrt)
    each = (f"{m:,} VJP{'s' if m != 1 else ''} (one per output element)" if chosen is JacobianMethod.reverse
            else f"{n:,} JVP{'s' if n != 1 else ''} (one per input element)")
    as_matrix = all(not plan.input_shapes[name] for name in plan.wrt) if matrix is None else matrix
    return PointsResult("jacobian", problem, chosen.value, output, {name: values[name] for name in order},
                        how=_how(each, problem, chunk), as_matrix=as_matrix, matrix_asked=bool(matrix))


def vjp_points(
    expr: str, inputs: Inputs, v: InputValue, *, batch_axis: int = 0, batched: Sequence[str] | str | None = None,
    wrt: Sequence[str] | None = None, method: str = "auto", device: Any = "cpu", dtype: Any = "float64",
    seed: int = 0, max_memory: int | None = None, untrusted: bool = False,
) -> PointsResult:
    """vᵀJ per point, shaped ``(points,) + input.shape``; ``v`` is shaped like one point's output
    (shared by all points) or holds one per point on its leading axis: ``(points,) + output.shape``."""
    from jacli import inputs as specs

    chosen = VJPMethod.parse(method)
    if chosen is VJPMethod.backward:
        raise InputError(
            "`method` backward calls y.backward(v) one point at a time; with `batch_axis` use auto or grad "
            "(the same numbers, vectorized over the points)", param="method", usage=True,
        )
    v_spec = specs.parse_spec(specs.unnamed_v(v), for_v=True) if isinstance(v, str) else v
    problem = _prepare(expr, inputs, batch_axis, batched, wrt, device, dtype, seed, max_memory, untrusted, {"v": v_spec})
    plan = problem.plan
    shape = tuple(plan.output_shape)
    points = problem.batch.size
    v_tensor = materialize(v_spec, "v", problem, output_shape=shape)
    v_batched = tuple(v_tensor.shape) == (points,) + shape
    if not v_batched:
        try:
            v_tensor = specs.fit_to_output(v_tensor, shape, spec_text(v_spec, v_tensor), what="one point's output")
        except ShapeError as error:
            raise ShapeError(
                f"{error} With `batch_axis`, `v` is shaped like one point's output {shape} (shared by all points) "
                f"or holds one per point: shape {(points,) + shape}", param="v",
            ) from None
    report_all_nonfinite([(v_tensor, "`v`")])
    chunk = _chunk(problem, "vjp", "reverse", plan.wrt_elements + plan.output_elements, "the VJPs")
    from jacli.engine import batched as engine

    with _running(problem):
        output, grads = engine.vjp(problem.compiled.function, problem.args, _in_dims(problem), problem.wrt_positions,
                                   v_tensor, 0 if v_batched else None, chunk_size=chunk)
    values = _reported(problem, output, dict(zip(problem.wrt, grads)))
    return PointsResult("vjp", problem, VJPMethod.grad.value, output, values,
                        how=_how("one VJP", problem, chunk), v=v_tensor, v_batched=v_batched)


def grad_points(
    expr: str, inputs: Inputs, *, batch_axis: int = 0, batched: Sequence[str] | str | None = None,
    wrt: Sequence[str] | None = None, method: str = "auto", device: Any = "cpu", dtype: Any = "float64",
    seed: int = 0, max_memory: int | None = None, untrusted: bool = False,
) -> PointsResult:
    """The gradient of a single-element output per point, shaped ``(points,) + input.shape``."""
    chosen = GradMethod.parse(method)
    if chosen is GradMethod.symbolic:
        raise InputError(
            "`method` symbolic evaluates SymPy's derivative one point at a time; with `batch_axis` use auto, "
            "reverse or forward", param="method", usage=True,
        )
    problem = _prepare(expr, inputs, batch_axis, batched, wrt, device, dtype, seed, max_memory, untrusted)
    problem.require_scalar("grad")
    chosen = GradMethod.reverse if chosen is GradMethod.auto else chosen
    chunk = _chunk(problem, "grad", chosen.value, problem.plan.wrt_elements + 1, "the gradients")
    from jacli.engine import batched as engine

    with _running(problem):
        output, grads = engine.grad(problem.compiled.function, problem.args, _in_dims(problem), problem.wrt_positions,
                                    chosen, chunk_size=chunk)
    output = output.reshape((problem.batch.size,) + tuple(problem.plan.output_shape))
    values = _reported(problem, output, dict(zip(problem.wrt, grads)))
    each = "one backward pass" if chosen is GradMethod.reverse else f"{problem.plan.wrt_elements:,} JVPs"
    return PointsResult("grad", problem, chosen.value, output, values, how=_how(each, problem, chunk))


def jvp_points(
    expr: str, inputs: Inputs, v: Any, *, batch_axis: int = 0, batched: Sequence[str] | str | None = None,
    device: Any = "cpu", dtype: Any = "float64", seed: int = 0, max_memory: int | None = None,
    untrusted: bool = False,
) -> PointsResult:
    """J·u per point, shaped ``(points,) + output.shape``. Each direction is shaped like its input
    at one point (shared by all points) or, for an input that holds points, like the whole input."""
    from jacli import inputs as specs

    problem = _prepare(expr, inputs, batch_axis, batched, None, device, dtype, seed, max_memory, untrusted)
    pairs = list(v.items()) if isinstance(v, Mapping) else (
        list(v) if isinstance(v, (list, tuple)) and v and all(isinstance(p, tuple) and len(p) == 2 for p in v)
        else [(None, v)])
    batch = problem.batch
    point_shapes = batch.point_shapes(problem.shapes)
    directions: dict[str, Any] = {}
    per_point: dict[str, bool] = {}
    for name, value in pairs:
        if name is None and len(problem.variables) == 1:
            name = problem.variables[0]
        if name in directions:
            raise InputError(f"`v` gives a direction for {name!r} twice", param="v")
        if name is None or name not in problem.variables:
            # the one-point rules give the message (a direction without a name, an unknown name)
            problem.directions({name: value} if name is not None else value, "jvp")
        spec = specs.parse_spec(value, for_v=True) if isinstance(value, str) else value
        whole, point = tuple(problem.inputs[name].shape), point_shapes[name]
        tensor = materialize(spec, f"v for {name}", problem, output_shape=whole)
        if name in batch.axes and tuple(tensor.shape) == whole:
            per_point[name] = True
            tensor = tensor.movedim(batch.axes[name], 0)
        else:
            per_point[name] = False
            tensor = specs.fit_to_output(tensor, point, spec_text(spec, tensor), what=f"input {name} at one point")
        report_all_nonfinite([(tensor, f"`v` for {name}")])
        directions[name] = tensor
    order = [name for name in problem.variables if name in directions]
    problem.wrt = tuple(order)
    chunk = _chunk(problem, "jvp", "forward", problem.plan.output_elements, "the JVPs")
    from jacli.engine import batched as engine

    with _running(problem):
        output, value = engine.jvp(problem.compiled.function, problem.args, _in_dims(problem), problem.wrt_positions,
                                   [directions[name] for name in order],
                                   [0 if per_point[name] else None for name in order], chunk_size=chunk)
    values = _reported(problem, output, {None: value})
    return PointsResult("jvp", problem, "forward", output, values, how=_how("one JVP", problem, chunk),
                        directions={name: directions[name] for name in order}, directions_batched=per_point)


def _prepare(expr: str, inputs: Inputs, batch_axis: Any, batched: Any, wrt: Any, device: Any, dtype: Any,
             seed: int, max_memory: int | None, untrusted: bool, reads: Mapping[str, Any] | None = None) -> Problem:
    return prepare(expr, inputs, wrt=wrt, device=device, dtype=dtype, seed=seed, max_memory=max_memory,
                   untrusted=untrusted, reads=reads, batch=(batch_axis, batched))


def _in_dims(problem: Problem) -> tuple[int | None, ...]:
    return problem.batch.in_dims(problem.variables)


def _chunk(problem: Problem, command: str, method: str, result: int, what: str) -> int | None:
    """Refuse what does not fit; the points pushed through at once (see NOTE [many points])."""
    plan = problem.plan
    inputs_bytes = sum(t.numel() * t.element_size() for t in problem.inputs.values())
    work = plan.point_work(command, method)
    plan.check_points(problem.batch.size, inputs_bytes, result, work, what)
    return plan.points_chunk(problem.batch.size, inputs_bytes, result, work)


def _how(each: str, problem: Problem, chunk: int | None) -> str:
    points = problem.batch.size
    how = f"{each} per point, for {points:,} point{'s' if points != 1 else ''} together (vmap)"
    return how + (f", {chunk:,} point{'s' if chunk != 1 else ''} at a time (the memory budget)" if chunk is not None else "")


def _ordered(wrt: Sequence[str] | None, names: Sequence[str]) -> tuple[str, ...]:
    """The inputs in the order ``wrt`` gives them, else the variables' order (as ``compute_jacobian``)."""
    given = [part.strip() for item in ([wrt] if isinstance(wrt, str) else wrt or ()) for part in item.split(",")]
    ordered = tuple(dict.fromkeys(name for name in given if name in names))
    return ordered if set(ordered) == set(names) else tuple(names)


def _reported(problem: Problem, output: Any, values: dict[Any, Any]) -> dict[Any, Any]:
    """Warn about NaN or infinite numbers in the outputs and results (after one fused scan)."""
    from jacli.result import key_text

    report_all_nonfinite([(output, "the output")] + [(t, f"the result for {key_text(k)}") for k, t in values.items()],
                         where=True)
    return values


class _running:
    """Torch running out of memory despite the plan is a ``ResourceError``, not a traceback."""

    def __init__(self, problem: Problem):
        self.problem = problem

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> bool:
        if not isinstance(error, RuntimeError):
            return False
        text = str(error)
        if "allocate" not in text and "out of memory" not in text.lower():
            return False
        raise ResourceError(
            f"evaluating {self.problem.expression} at {self.problem.batch.size:,} points ran out of memory "
            f"({text.strip().splitlines()[0]}). Give fewer points per call, or a smaller max_memory so that "
            "the points are split into chunks", param="max_memory",
        ) from None


__all__ = ["jacobian_points", "vjp_points", "grad_points", "jvp_points"]
