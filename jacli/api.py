"""The library behind the CLI: expression text + inputs → numbers, or a typed result.

``jacobian``, ``vjp``, ``jvp``, ``grad``, ``hessian`` and ``hvp`` return plain tensors for Python
users; the ``compute_*`` functions return the whole typed result (``jacli.result``) that the
renderers and the teaching features read. Each is the same three steps: ``prepare`` the problem
(check, size, bind), run the engine once, wrap the numbers in a result.

Example:
    >>> jacobian("x**2", {"x": [2.0, 3.0]})["x"]
    tensor([[4., 0.],
            [0., 6.]], dtype=torch.float64)
"""

from __future__ import annotations

import functools
import time
import warnings
from typing import Any, Callable, Mapping, Sequence

from jacli.engine.methods import GradMethod, HessianMethod, JacobianMethod, Layout, VJPMethod, small_problem_method
from jacli.errors import JacliWarning, ResourceError, ShapeError
from jacli.problem import (
    UNTRUSTED_SECONDS, InputValue, Inputs, Problem, all_finite, prepare, report_nonfinite, wrt_without,
)
from jacli.result import (
    Block,
    DiagonalBlock,
    GradResult,
    HessianResult,
    HVPResult,
    JacobianBlock,
    JacobianResult,
    Result,
    SparseBlock,
    VJPResult,
    JVPResult,
)

Progress = Callable[[int, int], None]


def jacobian(
    expr: str,
    inputs: Mapping[str, InputValue],
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
    layout: str = "auto",
    matrix: bool = False,
    const: Sequence[str] | None = None,
    batch_axis: int | None = None,
    batched: Sequence[str] | str | None = None,
) -> Any:
    """The Jacobian of ``expr`` with respect to each input in ``wrt``.

    Args:
        expr: e.g. ``"[r*cos(t), r*sin(t)]"``.
        inputs: name → tensor, number, nested list or spec string (``"eye:3"``).
        wrt: names to differentiate with respect to; default all.
        method: ``auto``, ``reverse`` (jacrev), ``forward`` (jacfwd), ``rows`` or ``symbolic``.
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto`` or a torch.device.
        dtype: ``float64`` or ``float32`` (a name or a torch.dtype).
        layout: ``auto`` or ``dense`` (dense tensors), ``diagonal`` or ``sparse`` (torch sparse
            COO tensors, ``.to_dense()`` gives the dense one).
        matrix: return the classic matrix instead: one tensor with one row per output element
            and one column per input element, the ``wrt`` inputs side by side (2-D sparse COO
            for ``diagonal`` or ``sparse``).
        const: inputs held constant (data): every other input is differentiated; not with ``wrt``
            naming the same input. The same ``const`` is taken by ``vjp``, ``grad`` and ``hessian``.
        batch_axis: the axis of the ``batched`` inputs that runs over independent points: one
            Jacobian per point, computed together (vmap), each result with the points on its
            leading axis (see ``jacli.points``). Default None: one point.
        batched: the inputs that hold the points along ``batch_axis``; default every input that
            has that axis. The others are shared by all points.

    Returns:
        name → tensor of shape ``output.shape + input.shape``; with ``matrix``, one
        ``(output size, inputs' size)`` tensor; with ``batch_axis``, ``(points,) +`` those.

    Example:
        >>> jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.0})["t"]
        tensor([0., 2.], dtype=torch.float64)
    """
    if batch_axis is not None:
        from jacli.points import jacobian_points

        points = jacobian_points(expr, inputs, batch_axis=batch_axis, batched=batched, wrt=wrt_without(expr, wrt, const), method=method,
                                 device=device, dtype=dtype, layout=layout)
        return points.matrices()[0] if matrix else dict(points.values)
    chosen = Layout.parse(layout)
    computed = Layout.dense if chosen is Layout.auto else chosen  # dense tensors come back: size them so
    result = compute_jacobian(expr, inputs, wrt=wrt_without(expr, wrt, const), method=method, device=device, dtype=dtype, layout=computed,
                              matrix=matrix)
    if matrix:
        whole = result.matrix()
        return whole.to_dense() if chosen in (Layout.auto, Layout.dense) else whole.to_sparse_coo()
    if chosen in (Layout.auto, Layout.dense):
        return {name: block.to_dense() for name, block in result.blocks.items()}
    return {name: block.to_sparse_coo() for name, block in result.blocks.items()}


def vjp(
    expr: str,
    inputs: Mapping[str, InputValue],
    v: InputValue,
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
    const: Sequence[str] | None = None,
    batch_axis: int | None = None,
    batched: Sequence[str] | str | None = None,
) -> dict[str, Any]:
    """vᵀJ for each input: exactly what ``y.backward(v)`` leaves in ``x.grad``.

    Args:
        v: shaped like the output; a tensor, number, list, or spec (``"ones"``, ``"onehot:0"``).
            With ``batch_axis``: like one point's output (shared), or one per point on its
            leading axis.
        method: ``auto`` or ``grad`` (torch.autograd.grad), or ``backward`` (y.backward(v)).
        batch_axis, batched: many points at once, as for ``jacobian``.

    Returns:
        name → tensor shaped like that input (``(points,) + input.shape`` with ``batch_axis``).

    Example:
        >>> vjp("2*x", {"x": [1.0, 2.0]}, [1.0, 0.1])["x"]
        tensor([2.0000, 0.2000], dtype=torch.float64)
    """
    if batch_axis is not None:
        from jacli.points import vjp_points

        return dict(vjp_points(expr, inputs, v, batch_axis=batch_axis, batched=batched, wrt=wrt_without(expr, wrt, const), method=method,
                               device=device, dtype=dtype).values)
    return compute_vjp(expr, inputs, v, wrt=wrt_without(expr, wrt, const), method=method, device=device, dtype=dtype).grads


def jvp(expr: str, inputs: Mapping[str, InputValue], v: Any, *, device: Any = "cpu", dtype: Any = "float64",
        batch_axis: int | None = None, batched: Sequence[str] | str | None = None) -> Any:
    """J·u, shaped like the output, in one forward-mode pass; with ``batch_axis`` (as for
    ``jacobian``), one per point, ``(points,) + output.shape``.

    Example:
        >>> jvp("x**2", {"x": [1.0, 2.0]}, {"x": [1.0, 1.0]})
        tensor([2., 4.], dtype=torch.float64)
    """
    if batch_axis is not None:
        from jacli.points import jvp_points

        return jvp_points(expr, inputs, v, batch_axis=batch_axis, batched=batched, device=device, dtype=dtype).values[None]
    return compute_jvp(expr, inputs, v, device=device, dtype=dtype).value


def grad(expr: str, inputs: Mapping[str, InputValue], *, wrt: Sequence[str] | None = None,
         method: str = "auto", device: Any = "cpu", dtype: Any = "float64",
         const: Sequence[str] | None = None, batch_axis: int | None = None,
         batched: Sequence[str] | str | None = None) -> dict[str, Any]:
    """The gradient of a single-element output, one tensor per input (shaped like it); with
    ``batch_axis`` (as for ``jacobian``), one per point, ``(points,) + input.shape``.

    Example:
        >>> grad("x**2 + 3*x + 1", {"x": 2.0})["x"]
        tensor(7., dtype=torch.float64)
    """
    if batch_axis is not None:
        from jacli.points import grad_points

        return dict(grad_points(expr, inputs, batch_axis=batch_axis, batched=batched, wrt=wrt_without(expr, wrt, const), method=method,
                                device=device, dtype=dtype).values)
    return compute_grad(expr, inputs, wrt=wrt_without(expr, wrt, const), method=method, device=device, dtype=dtype).grads


def hessian(expr: str, inputs: Mapping[str, InputValue], *, wrt: Sequence[str] | None = None,
            method: str = "auto", device: Any = "cpu", dtype: Any = "float64", matrix: bool = False,
            const: Sequence[str] | None = None) -> Any:
    """The Hessian of a single-element output, one block per pair of inputs, keyed ``(a, b)``:
    a read-only mapping whose blocks are views into one n × n matrix, made when looked up; with
    ``matrix``, that n×n tensor itself, the ``wrt`` inputs side by side as rows and as columns.

    Example:
        >>> hessian("x[0]**2*x[1] + x[1]**3", {"x": [1.0, 2.0]})["x", "x"]
        tensor([[ 4.,  2.],
                [ 2., 12.]], dtype=torch.float64)
    """
    result = compute_hessian(expr, inputs, wrt=wrt_without(expr, wrt, const), method=method, device=device, dtype=dtype, matrix=matrix)
    return result.matrix().to_dense() if matrix else result.blocks


def hvp(expr: str, inputs: Mapping[str, InputValue], v: Any, *, device: Any = "cpu", dtype: Any = "float64") -> dict[str, Any]:
    """H·u without building H, one tensor per input.

    Example:
        >>> hvp("x[0]**2*x[1] + x[1]**3", {"x": [1.0, 2.0]}, {"x": [1.0, 0.0]})["x"]
        tensor([4., 2.], dtype=torch.float64)
    """
    return compute_hvp(expr, inputs, v, device=device, dtype=dtype).grads


def compute_jacobian(
    expr: str,
    inputs: Inputs,
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    untrusted: bool = False,
    progress: Progress | None = None,
    symbolic: bool = False,
    det: bool = False,
    layout: str = "auto",
    matrix: bool | None = None,
    batch_axis: int | None = None,
    batched: Sequence[str] | str | None = None,
) -> JacobianResult:
    """Like ``jacobian`` but returns the whole ``JacobianResult``; refuses Jacobians over the budget.

    The Jacobian's sparsity pattern is read off the formula (``jacli.structure``); ``auto``
    computes a diagonal one with one VJP, a sparse one with one JVP or VJP per colour of its
    columns or rows (``jacli.engine.compressed``), and a dense one with jacrev or jacfwd,
    whichever needs fewer passes. ``result.how`` says what ran.

    Args:
        inputs: a mapping, or ``(name or None, value)`` pairs as the CLI gives them (None binds
            the only variable).
        method: ``auto``, ``reverse``, ``forward``, ``rows``, ``compressed`` (colours over the
            pattern) or ``symbolic``.
        seed: seeds ``rand``/``randn`` specs.
        max_memory: the memory budget in bytes (default: half the available memory).
        untrusted: the inputs come from someone else (a web form): files and standard input are
            refused, the budget is at most ``UNTRUSTED_BUDGET`` and SymPy's deadline
            ``UNTRUSTED_SECONDS`` (also on with the environment variable ``JACLI_UNTRUSTED=1``).
        progress: ``progress(done, total)`` for the row loop.
        symbolic: also keep the exact derivative (``JacobianResult.symbolic``).
        det: also compute the determinant of the square Jacobian (all inputs together).
        layout: how each block is stored: ``dense``, ``diagonal`` (only for a Jacobian that is
            zero off its diagonal), ``sparse`` (the nonzeros, COO), or ``auto``: the structure
            the formula has (diagonal, sparse when at most a quarter is nonzero, else dense).
        matrix: whether renderers write the classic matrix (``result.matrix()``) instead of the
            blocks; None: when every ``wrt`` input is a scalar. True also sizes the budget for
            the matrix as one tensor.
        batch_axis, batched: many points at once (see ``jacobian``): a ``PointsResult`` whose
            ``point(i)`` is point i's ``JacobianResult``.
    """
    if batch_axis is not None:
        from jacli.points import jacobian_points

        _alone("jacobian", symbolic=symbolic, det=det)
        return jacobian_points(expr, inputs, batch_axis=batch_axis, batched=batched, wrt=wrt, method=method,
                               device=device, dtype=dtype, seed=seed, max_memory=max_memory, untrusted=untrusted,
                               layout=layout, matrix=matrix)
    chosen = JacobianMethod.parse(method)
    chosen_layout = Layout.parse(layout)
    decided: dict[str, Any] = {}

    def decide(plan: Any) -> None:
        """From shapes alone, before any input is made: the structure, the layout, their sizes."""
        decided["shapes"], decided["target"] = _decided(plan, chosen, chosen_layout, _as_matrix(plan, matrix))

    problem = prepare(expr, inputs, wrt=wrt, device=device, dtype=dtype, seed=seed, max_memory=max_memory, untrusted=untrusted,
                      result=decide)
    shapes, target = decided["shapes"], decided["target"]
    chosen, structured = _resolve(problem, chosen, shapes, target)
    exact = _exact(problem, chosen, _exact_jacobian) if symbolic or chosen is JacobianMethod.symbolic else None
    if structured is not None:
        output, values = structured
        blocks = {name: JacobianBlock(name, value) for name, value in values.items()}
        how = "each intermediate's Jacobian kept as zero, diagonal or dense through the chain rule"
    elif chosen is JacobianMethod.compressed:
        output, blocks, how = _compressed(problem, shapes)
        # The numbers computed are the stored ones; a dense copy only adds zeros, so the NaN/Inf
        # scan reads the compact blocks (n numbers for a diagonal, not n²).
        _reported(output, {name: _stored(block) for name, block in blocks.items()})
        blocks = {name: _in_layout(problem, block, target) for name, block in blocks.items()}
    else:
        output, values, how = _dense(problem, chosen, exact, progress)
        blocks = {name: _laid_out(problem, name, value, shapes, target) for name, value in values.items()}
    if chosen is not JacobianMethod.compressed:  # compressed blocks were scanned before being made dense
        _reported(output, {name: _stored(block) for name, block in blocks.items()})
    as_matrix = _as_matrix(problem.plan, matrix)
    order = _wrt_order(wrt, problem.wrt)
    blocks = {name: blocks[name] for name in order}
    result = JacobianResult(problem, chosen.value, output, blocks=blocks, how=how, as_matrix=as_matrix)
    if exact is not None:
        from jacli.engine.exact import is_elementwise, scalar_derivative

        result.symbolic = _readable(exact)
        tree = problem.compiled.tree
        if not all(not problem.shapes[n] for n in problem.wrt) and is_elementwise(tree):
            result.diagonal = {name: scalar_derivative(tree, name) for name in problem.wrt}
    if det:
        result.det, result.det_symbolic = _determinant(problem, result.matrix().to_dense(), _readable(exact), order)
    return result


def compute_vjp(
    expr: str,
    inputs: Inputs,
    v: InputValue,
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    untrusted: bool = False,
    batch_axis: int | None = None,
    batched: Sequence[str] | str | None = None,
) -> VJPResult:
    """Like ``vjp`` but returns the whole ``VJPResult`` (with ``batch_axis``, a ``PointsResult``)."""
    if batch_axis is not None:
        from jacli.points import vjp_points

        return vjp_points(expr, inputs, v, batch_axis=batch_axis, batched=batched, wrt=wrt, method=method,
                          device=device, dtype=dtype, seed=seed, max_memory=max_memory, untrusted=untrusted)
    from jacli import inputs as specs

    chosen = VJPMethod.parse(method)
    v_spec = specs.parse_spec(specs.unnamed_v(v), for_v=True) if isinstance(v, str) else v
    problem = prepare(expr, inputs, wrt=wrt, device=device, dtype=dtype, seed=seed, max_memory=max_memory, untrusted=untrusted,
                      reads={"v": v_spec})
    v_tensor = problem.make_v(v_spec)
    chosen = VJPMethod.grad if chosen is VJPMethod.auto else chosen
    from jacli.engine import autodiff

    with _running(problem):
        output, grads = autodiff.vjp(problem.compiled.function, problem.args, problem.wrt_positions, v_tensor, chosen)
    values = dict(zip(problem.wrt, grads))
    return VJPResult(problem, chosen.value, _reported(output, values), grads=values, v=v_tensor)


def compute_jvp(
    expr: str,
    inputs: Inputs,
    v: Mapping[str, InputValue] | Sequence[tuple[str | None, InputValue]] | InputValue,
    *,
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    untrusted: bool = False,
    batch_axis: int | None = None,
    batched: Sequence[str] | str | None = None,
) -> JVPResult:
    """J·u in one forward-mode pass, shaped like the output (``JVPResult.value``).

    Args:
        v: the direction: name → value for each input that moves (the others stay still), or a
            single value when the expression has one variable.
        batch_axis, batched: many points at once (see ``jacobian``): a ``PointsResult``.
    """
    if batch_axis is not None:
        from jacli.points import jvp_points

        return jvp_points(expr, inputs, v, batch_axis=batch_axis, batched=batched, device=device, dtype=dtype,
                          seed=seed, max_memory=max_memory, untrusted=untrusted)
    problem = prepare(expr, inputs, device=device, dtype=dtype, seed=seed, max_memory=max_memory, untrusted=untrusted)
    directions = problem.directions(v, "jvp")
    problem.wrt = tuple(directions)
    from jacli.engine import autodiff

    with _running(problem):
        output, value = autodiff.jvp(problem.compiled.function, problem.args, problem.wrt_positions,
                                     list(directions.values()))
    return JVPResult(problem, "forward", _reported(output, {"output": value}), value=value, directions=directions)


def compute_grad(
    expr: str,
    inputs: Inputs,
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    untrusted: bool = False,
    symbolic: bool = False,
    batch_axis: int | None = None,
    batched: Sequence[str] | str | None = None,
) -> GradResult:
    """The gradient of a single-element output: what ``y.backward()`` leaves in ``x.grad``.

    Args:
        method: ``auto``/``reverse`` (torch.autograd.grad), ``forward`` (jacfwd) or ``symbolic``.
        batch_axis, batched: many points at once (see ``jacobian``): a ``PointsResult``.
    """
    if batch_axis is not None:
        from jacli.points import grad_points

        _alone("grad", symbolic=symbolic)
        return grad_points(expr, inputs, batch_axis=batch_axis, batched=batched, wrt=wrt, method=method,
                           device=device, dtype=dtype, seed=seed, max_memory=max_memory, untrusted=untrusted)
    chosen = GradMethod.parse(method)
    problem = prepare(expr, inputs, wrt=wrt, device=device, dtype=dtype, seed=seed, max_memory=max_memory, untrusted=untrusted)
    problem.require_scalar("grad")
    chosen = GradMethod.reverse if chosen is GradMethod.auto else chosen
    exact = _exact(problem, chosen, _exact_jacobian) if symbolic or chosen is GradMethod.symbolic else None
    if exact is not None:
        exact = {name: block.reshape(problem.shapes[name]) for name, block in exact.items()}
    if chosen is GradMethod.symbolic:
        output = _evaluate_output(problem)
        values = {name: _evaluate_exact(problem, exact[name]) for name in problem.wrt}
    else:
        from jacli.engine import autodiff

        with _running(problem):
            output, grads = autodiff.grad(
                problem.compiled.function, problem.args, problem.wrt_positions, chosen,
                chunk_size=problem.plan.forward_chunk() if chosen is GradMethod.forward else None,
            )
        values = dict(zip(problem.wrt, grads))
    output = output.reshape(problem.plan.output_shape)
    return GradResult(problem, chosen.value, _reported(output, values), grads=values, symbolic=_readable(exact))


def compute_hessian(
    expr: str,
    inputs: Inputs,
    *,
    wrt: Sequence[str] | None = None,
    method: str = "auto",
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    untrusted: bool = False,
    symbolic: bool = False,
    matrix: bool | None = None,
) -> HessianResult:
    """The Hessian of a single-element output as one n × n matrix (``values``, the ``wrt`` inputs
    side by side) with its blocks, keyed ``(a, b)`` and shaped ``a.shape + b.shape``, as views.

    Args:
        method: ``auto``/``forward`` (forward-over-reverse), ``reverse`` (reverse-over-reverse)
            or ``symbolic``.
        matrix: whether renderers write the n×n matrix (``result.matrix()``) instead of the
            blocks; None: when every ``wrt`` input is a scalar.
    """
    chosen = HessianMethod.parse(method)
    problem = prepare(expr, inputs, wrt=wrt, device=device, dtype=dtype, seed=seed, max_memory=max_memory, untrusted=untrusted,
                      result=lambda plan: plan.check_hessian(matrix=_as_matrix(plan, matrix)))
    problem.require_scalar("hessian")
    chosen = HessianMethod.forward if chosen is HessianMethod.auto else chosen
    exact = _exact(problem, chosen, _exact_hessian) if symbolic or chosen is HessianMethod.symbolic else None
    as_matrix = _as_matrix(problem.plan, matrix)
    order = _wrt_order(wrt, problem.wrt)
    if chosen is HessianMethod.symbolic:
        output = _evaluate_output(problem).reshape(problem.plan.output_shape)
        values = {key: _evaluate_exact(problem, block) for key, block in exact.items()}
        result = HessianResult(problem, chosen.value, output, blocks=values, symbolic=_readable(exact),
                               as_matrix=as_matrix, order=order)
    else:
        from jacli.engine import autodiff

        with _running(problem):
            output, hessian = autodiff.hessian_matrix(
                problem.compiled.function, problem.args, problem.wrt_positions, chosen,
                chunk_size=problem.plan.hessian_chunk(),
            )
        output = output.reshape(problem.plan.output_shape)
        result = HessianResult(problem, chosen.value, output, values=hessian, symbolic=_readable(exact),
                               as_matrix=as_matrix, order=order)
    report_nonfinite(output, "the output", where=True)
    _report_hessian(result)
    return result


def _report_hessian(result: HessianResult) -> None:
    """One warning for the whole matrix, naming the first blocks that hold NaN or infinity
    (a check per block cost more than the Hessian itself for many scalar inputs)."""
    import torch

    from jacli.problem import _first_places
    from jacli.result import key_text

    matrix = result.values
    if torch.isfinite(matrix.sum()):
        return  # one pass, no mask: any NaN or infinity makes the sum NaN or infinite
    bad = ~torch.isfinite(matrix)
    count = int(bad.sum())
    if not count:
        return
    shown = [result.blocks.locate(row, column) for row, column in _first_places(bad, 5)]
    places = "; ".join(key_text(key) + (f"[{', '.join(map(str, index))}]" if index else "") for key, index in shown)
    more = f" and {count - len(shown)} more" if count > len(shown) else ""
    warnings.warn(
        f"the Hessian holds {count} NaN or infinite number{'s' if count > 1 else ''} at {places}{more}",
        JacliWarning, stacklevel=3,
    )


def compute_hvp(
    expr: str,
    inputs: Inputs,
    v: Mapping[str, InputValue] | Sequence[tuple[str | None, InputValue]] | InputValue,
    *,
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    untrusted: bool = False,
) -> HVPResult:
    """H·u for a single-element output, without building H, one tensor per input (shaped like it).

    Args:
        v: the direction, as for ``compute_jvp``; inputs without a direction stay still.
    """
    problem = prepare(expr, inputs, device=device, dtype=dtype, seed=seed, max_memory=max_memory, untrusted=untrusted)
    problem.require_scalar("hvp")
    directions = problem.directions(v, "hvp")
    tangents = [directions[name] if name in directions else problem.inputs[name].new_zeros(problem.inputs[name].shape)
                for name in problem.wrt]
    from jacli.engine import autodiff

    with _running(problem):
        output, out = autodiff.hvp(problem.compiled.function, problem.args, problem.wrt_positions, tangents)
    values = dict(zip(problem.wrt, out))
    output = output.reshape(problem.plan.output_shape)
    return HVPResult(problem, "forward-over-reverse", _reported(output, values), grads=values, directions=directions)


# -- helpers of the compute functions --------------------------------------------------------------


# -- the Jacobian's structure: which method, which layout -------------------------------------------

COLORING_LIMIT = 20_000_000
"""Patterns with more stored entries than this are not coloured (the greedy colouring walks
every entry once in Python); they are computed dense."""

SPARSE_DENSITY = 0.25
"""``layout="auto"`` stores a block sparse when at most this fraction of its entries can be nonzero."""


class _Structure:
    """One input's pattern, and how it would be computed compressed."""

    def __init__(self, pattern: Any, shapes_equal: bool):
        self.pattern = pattern
        self.diagonal = pattern.is_diagonal and shapes_equal
        self.coloring: Any = None
        self.mode = ""
        if self.diagonal or pattern.is_dense or pattern.nnz > COLORING_LIMIT:
            return
        from jacli.engine.compressed import color_columns, color_rows

        # NOTE [which colouring]: natural-order greedy in both directions is O(nnz) and cheap;
        # the slower DSATUR, which can save colours (7 -> 5 on a 5-point stencil), runs only in
        # the direction chosen, and only where the greedy colouring is above its lower bound.
        by_column, by_row = color_columns(pattern, strategy="natural"), color_rows(pattern, strategy="natural")
        self.mode, self.coloring = ("forward", by_column) if by_column[1] <= by_row[1] else ("reverse", by_row)
        better = (color_columns if self.mode == "forward" else color_rows)(pattern, strategy="auto")
        if better[1] < self.coloring[1]:
            self.coloring = better

    @property
    def structured(self) -> bool:
        return self.diagonal or self.coloring is not None

    @property
    def passes(self) -> int:
        return 1 if self.diagonal else self.coloring[1] if self.coloring is not None else 0

    @property
    def stored(self) -> int:
        return self.pattern.nnz


def _structures(plan: Any) -> dict[str, _Structure]:
    """Each ``wrt`` input's sparsity pattern, read off the formula, with its colouring."""
    shapes = tuple((name, tuple(plan.input_shapes[name])) for name in plan.input_shapes)
    return dict(_cached_structures(plan.text, shapes, tuple(plan.wrt)))


@functools.lru_cache(maxsize=64)
def _cached_structures(text: str, shapes: tuple, wrt: tuple[str, ...]) -> tuple[tuple[str, _Structure], ...]:
    """``_structures``, cached: a pure function of the expression, the shapes and ``wrt`` (a
    loop over points, or a benchmark, reads the pattern and colours it once)."""
    from jacli.compile import compile_expression
    from jacli.shapes import infer
    from jacli.structure import patterns

    tree, input_shapes = compile_expression(text).tree, dict(shapes)
    found = patterns(tree, input_shapes, wrt)
    output_shape = infer(tree, input_shapes).output
    return tuple((name, _Structure(found[name], output_shape == input_shapes[name])) for name in wrt)


_DECIDED: dict[tuple, tuple] = {}
_DECIDED_KEPT = 64
"""As many as ``_cached_structures`` keeps: the structures hold patterns, O(nnz) each."""


def _decided(
    plan: Any, method: JacobianMethod, layout: Layout, matrix: bool = False
) -> tuple[dict[str, _Structure] | None, Layout]:
    """The structures and the target layout (checked against the budget) for a plan: a pure
    function of it, remembered for the plans ``make_plan`` remembers (the same object again)."""
    key = (id(plan), method, layout, matrix)
    found = _DECIDED.get(key)
    if found is not None and found[0] is plan:
        return found[1], found[2]
    wanted = method in (JacobianMethod.auto, JacobianMethod.compressed) or layout is not Layout.dense
    shapes = _structures(plan) if wanted else None
    target = _target_layout(plan, layout, shapes, matrix=matrix)
    if len(_DECIDED) >= _DECIDED_KEPT:
        _DECIDED.clear()
    _DECIDED[key] = (plan, shapes, target)  # holding the plan keeps its id from being reused
    return shapes, target


def _target_layout(plan: Any, layout: Layout, shapes: dict[str, _Structure] | None, matrix: bool = False) -> Layout:
    """The layout the blocks will have, checked against the budget (auto: the formula's structure);
    with ``matrix``, also the classic matrix as one tensor beside the blocks."""
    if shapes is not None and all(s.diagonal for s in shapes.values()):
        fits = ("diagonal", sum(s.stored for s in shapes.values()))
    elif shapes is not None and all(s.structured for s in shapes.values()):
        fits = ("sparse", sum(s.stored for s in shapes.values()))
    else:
        fits = None
    if layout is Layout.auto:
        dense_size = max(1, plan.output_elements * plan.wrt_elements)
        if fits is not None and (fits[0] == "diagonal" or fits[1] <= SPARSE_DENSITY * dense_size):
            layout = Layout(fits[0])
        else:
            layout = Layout.dense
    if layout is Layout.dense:
        plan.check_jacobian(fits=fits, matrix=matrix)
    elif layout is Layout.diagonal and shapes is not None:
        off = [name for name, s in shapes.items() if not s.diagonal]
        if off:
            shown = fits[0] if fits is not None else "dense"
            raise ShapeError(
                f"`layout` diagonal needs each output element to depend on the same element of the "
                f"input alone, but the Jacobian for {off[0]} is not diagonal (from the formula); use "
                f"`layout` {shown if shown != 'diagonal' else 'sparse'}", param="layout",
            )
        plan.check_structured("diagonal", plan.wrt_elements)
    elif layout is Layout.sparse and shapes is not None:
        plan.check_structured("sparse", sum(
            s.stored if not s.pattern.is_dense else s.pattern.output_size * s.pattern.input_size
            for s in shapes.values()
        ))
    return layout


def _auto_method(problem: Problem, shapes: dict[str, _Structure] | None) -> JacobianMethod:
    """Compressed when every block has structure and that needs fewer passes than dense
    (a pure function of the plan and its structures: remembered with them)."""
    plan = problem.plan
    key = (id(plan), "auto", shapes is None)
    found = _DECIDED.get(key)
    if found is not None and found[0] is plan:
        return found[1]
    method = _auto_method_of(plan, shapes)
    if len(_DECIDED) >= _DECIDED_KEPT:
        _DECIDED.clear()
    _DECIDED[key] = (plan, method)
    return method


def _auto_method_of(plan: Any, shapes: dict[str, _Structure] | None) -> JacobianMethod:
    """``_auto_method``, worked out."""
    dense = plan.jacobian_method()
    if shapes is not None and all(s.structured for s in shapes.values()):
        dense_passes = min(plan.output_elements, plan.wrt_elements)
        if sum(s.passes for s in shapes.values()) < dense_passes:
            return JacobianMethod.compressed
    return JacobianMethod(dense)


def _compressed(problem: Problem, shapes: dict[str, _Structure] | None) -> tuple[Any, dict[str, Any], str]:
    """One VJP for all the diagonal blocks together, one JVP or VJP per colour for a sparse one."""
    from jacli.engine import compressed

    shapes = shapes if shapes is not None else _structures(problem.plan)
    f, args, input_shapes = problem.compiled.function, problem.args, problem.shapes
    output_shape = tuple(problem.plan.output_shape)
    several = len(shapes) > 1
    output, found, said = None, {}, []
    wrt = list(zip(problem.wrt, problem.wrt_positions))
    diagonal = [(name, position) for name, position in wrt if shapes[name].diagonal]
    if diagonal:
        # 1ᵀJ is each diagonal block's diagonal, for every input at once: one forward pass and
        # one backward pass, however many inputs are diagonal.
        with _running(problem):
            output, diagonals = compressed.jacobian_diagonals(f, args, [position for _, position in diagonal])
        for (name, _), values in zip(diagonal, diagonals):
            found[name] = DiagonalBlock(name, values, output_shape, input_shapes[name])
        said.append("1 VJP" + (f" for {_listed([name for name, _ in diagonal])}" if several else ""))
        if len(diagonal) == len(wrt):
            return output, found, f"diagonal: {said[0]}"
    for name, position in wrt:
        s = shapes[name]
        if s.diagonal:
            continue
        mode = s.mode or ("forward" if s.pattern.input_size <= s.pattern.output_size else "reverse")
        coloring = s.coloring or (compressed.color_columns(s.pattern) if mode == "forward" else compressed.color_rows(s.pattern))
        with _running(problem):
            output, values = compressed.jacobian_compressed(
                f, args, position, s.pattern, mode, coloring=coloring,
                chunk_size=problem.plan.compressed_chunk(coloring[1], mode),
            )
        rows, cols, values = compressed.to_coo(s.pattern, values)
        found[name] = SparseBlock(name, rows, cols, values, output_shape, input_shapes[name], colors=coloring[1])
        kind = "JVP" if mode == "forward" else "VJP"
        said.append(f"{coloring[1]} colour{'s' if coloring[1] != 1 else ''}, {coloring[1]} {kind}"
                    f"{'s' if coloring[1] != 1 else ''}" + (f" for {name}" if several else ""))
    kind = "diagonal" if all(s.diagonal for s in shapes.values()) else "sparse"
    return output, {name: found[name] for name in problem.wrt}, f"{kind}: {'; '.join(said)}"


def _in_layout(problem: Problem, block: Block, target: Layout) -> Block:
    """A compressed block (diagonal or sparse) in the layout asked for."""
    if target is Layout.dense:
        return JacobianBlock(block.input, block.to_dense())
    if target is Layout.sparse and isinstance(block, DiagonalBlock):
        rows = cols = _arange_like(block)
        return SparseBlock(block.input, rows, cols, block.diagonal.reshape(-1), block.output_shape, block.input_shape,
                           colors=1)
    return block


def _alone(command: str, **asked: bool) -> None:
    """``symbolic`` and ``det`` are computed one point at a time: refuse them with ``batch_axis``."""
    for name, on in asked.items():
        if on:
            raise ShapeError(
                f"`{name}` works on one point; leave it out with `batch_axis`, or call {command} once per point",
                param=name, usage=True,
            )


def _listed(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _arange_like(block: Any) -> Any:
    import torch

    return torch.arange(block.diagonal.numel(), device=block.diagonal.device)


def _resolve(
    problem: Problem, chosen: JacobianMethod, shapes: dict[str, _Structure] | None, target: Layout
) -> tuple[JacobianMethod, tuple[Any, dict[str, Any]] | None]:
    """The method that runs, and, for structured accumulation, what it computed: whether the
    formula is covered is known by walking it, and the walk is the computation."""
    if chosen is JacobianMethod.auto:
        diagonal = shapes is not None and all(s.diagonal for s in shapes.values())
        chosen = _auto_method(problem, shapes)
        # NOTE [small problems]: the row loop only where neither the colouring nor structured
        # accumulation applies: those need no torch._dynamo either, and beat the row loop once
        # a problem has more than a few outputs (softmax(x) * x at n = 16: 0.1 ms against 0.9)
        small = small_problem_method(chosen, problem.plan.output_elements, diagonal)
        if chosen is JacobianMethod.compressed or target is not Layout.dense \
                or not problem.plan.fits_structured_accumulation():
            return small, None  # (jacrev and jacfwd split their work by the budget; it cannot)
        structured = _structured(problem)
        return (JacobianMethod.structured, structured) if structured is not None else (small, None)
    if chosen is not JacobianMethod.structured:
        return chosen, None
    if target is not Layout.dense:
        raise ShapeError(
            f"`method` structured builds a dense Jacobian; ask for `layout` dense, or `method` compressed "
            f"for the {target.value} layout", param="method", usage=True,
        )
    problem.plan.check_structured_accumulation()
    structured = _structured(problem)
    if structured is None:
        raise ShapeError(
            "`method` structured covers vectors and scalars, arithmetic, elementwise functions "
            "of one argument, softmax of a vector and a constant matrix times a vector; this formula holds more. "
            "Use `method` auto", param="method",
        )
    return chosen, structured


def _structured(problem: Problem) -> tuple[Any, dict[str, Any]] | None:
    """Structured accumulation for every ``wrt`` input, or None where the formula is not covered."""
    from jacli.engine.structured import accumulate

    values, output = {}, None
    for name in problem.wrt:
        with _running(problem):
            found = accumulate(problem.compiled.tree, problem.inputs, name)
        if found is None:
            return None
        output, values[name] = found
    return output.reshape(problem.plan.output_shape), values


def _dense(problem: Problem, chosen: JacobianMethod, exact: Any, progress: Progress | None) -> tuple[Any, dict[str, Any], str]:
    """Every entry: jacrev, jacfwd, the row loop, or the exact derivative."""
    plan = problem.plan
    if chosen is JacobianMethod.symbolic:
        output = _evaluate_output(problem)
        return output, {name: _evaluate_exact(problem, exact[name]) for name in problem.wrt}, "symbolic: SymPy's exact derivative"
    from jacli.engine import autodiff

    chunk = {JacobianMethod.reverse: plan.reverse_chunk, JacobianMethod.forward: plan.forward_chunk}.get(chosen, lambda: None)()
    with _running(problem):
        output, blocks = autodiff.jacobian(
            problem.compiled.function, problem.args, problem.wrt_positions, chosen, progress=progress, chunk_size=chunk,
        )
    m, n = plan.output_elements, plan.wrt_elements
    how = {
        JacobianMethod.reverse: f"{m:,} VJP{'s' if m != 1 else ''}, one per output element",
        JacobianMethod.forward: f"{n:,} JVP{'s' if n != 1 else ''}, one per input element",
        JacobianMethod.rows: f"{m:,} backward pass{'es' if m != 1 else ''}, one per output element",
    }[chosen]
    if chunk is not None:
        how += f", {chunk:,} at a time (the memory budget)"
    return output, dict(zip(problem.wrt, blocks)), how


def _stored(block: Any) -> Any:
    """The numbers a block holds, for the NaN report (never a dense copy of a structured block)."""
    if isinstance(block, DiagonalBlock):
        return block.diagonal
    if isinstance(block, SparseBlock):
        return block.values
    return block.to_dense()


class _running:
    """Torch running out of memory despite the plan (another process took it, or an estimate
    fell short) is a ``ResourceError`` that says what ran, not a traceback.

    (A class, not ``contextlib.contextmanager``: entering it costs a tenth as much, and it is
    entered on every call.)
    """

    __slots__ = ("problem", "start")

    def __init__(self, problem: Problem):
        self.problem = problem

    def __enter__(self) -> None:
        self.start = time.perf_counter()  # the engine's time, which --explain reports
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> bool:
        self.problem.seconds += time.perf_counter() - self.start
        if not isinstance(error, RuntimeError):
            return False
        text = str(error)
        if "allocate" not in text and "out of memory" not in text.lower():
            return False
        first = text.strip().splitlines()[0]
        raise ResourceError(
            f"evaluating {self.problem.expression} ran out of memory ({first}). Use smaller inputs, a "
            "smaller max_memory so that the work is split, or an expression whose intermediate "
            "results are smaller.", param="max_memory",
        ) from None


def _laid_out(problem: Problem, name: str, dense: Any, shapes: dict[str, _Structure] | None, target: Layout) -> Block:
    """A densely computed block kept as ``target``; the entries kept are those of the formula's
    pattern (``_target_layout`` has checked that it fits), never read off the numbers."""
    if target is Layout.dense:
        return JacobianBlock(name, dense)
    pattern = shapes[name].pattern
    input_shape, output_shape = problem.shapes[name], tuple(problem.plan.output_shape)
    matrix = dense.reshape(pattern.output_size, pattern.input_size)
    if target is Layout.diagonal:
        return DiagonalBlock(name, matrix.diagonal().reshape(input_shape), output_shape, input_shape)
    if pattern.is_dense:
        rows, cols = (t.reshape(-1) for t in _all_indices(pattern.output_size, pattern.input_size, dense.device))
    else:
        from jacli.engine.compressed import to_coo

        rows, cols, _ = to_coo(pattern, matrix.new_zeros(pattern.nnz))
    return SparseBlock(name, rows, cols, matrix[rows, cols], output_shape, input_shape)


def _all_indices(rows: int, cols: int, device: Any) -> tuple[Any, Any]:
    """Every (row, column) of a rows × cols matrix, row-major."""
    import torch

    return torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij")


def _reported(output: Any, values: Mapping[Any, Any]) -> Any:
    """Warn about NaN or infinite numbers in the output and the results (the CLI shows them)."""
    if all_finite([output, *values.values()]):  # one fused scan; the report only when it fails
        return output
    from jacli.result import key_text

    report_nonfinite(output, "the output", where=True)
    for key, value in values.items():
        report_nonfinite(value, f"the result for {key_text(key)}", where=True)
    return output


def _exact(problem: Problem, method: Any, build: Callable[[Problem], Any]) -> Any:
    """``build(problem)`` for ``method="symbolic"`` (its errors stand); for ``symbolic=True`` alone,
    which only shows the exact form beside the numbers, a problem too large for SymPy is a
    warning and the numbers come as usual."""
    from jacli.engine.exact import deadline

    seconds = UNTRUSTED_SECONDS if problem.untrusted else None
    if method.value == "symbolic":
        with deadline(seconds):
            return build(problem)
    try:
        with deadline(seconds):
            return build(problem)
    except ResourceError as error:
        reason = str(error).split(". Use `method`")[0]
        warnings.warn(f"`symbolic` skipped: {reason}; the numbers below are from {method.value} mode",
                      JacliWarning, stacklevel=3)
        return None


def _readable(exact: dict[Any, Any] | None) -> dict[Any, Any] | None:
    """The exact blocks as shown to users: the stable shifts of softmax and logsumexp set to 0
    (the textbook form; the stable form is what is evaluated)."""
    if exact is None:
        return None
    from jacli.engine.exact import readable

    return {key: readable(block) for key, block in exact.items()}


def _exact_jacobian(problem: Problem) -> dict[str, Any]:
    from jacli.engine import exact

    return exact.jacobian(problem.compiled.tree, problem.shapes, problem.wrt)


def _exact_hessian(problem: Problem) -> dict[tuple[str, str], Any]:
    from jacli.engine import exact

    return exact.hessian(problem.compiled.tree, problem.shapes, problem.wrt)


def _evaluate_exact(problem: Problem, entries: Any) -> Any:
    """Exact SymPy entries evaluated on torch at the inputs."""
    from jacli.compile import compile_tree
    from jacli.engine import exact

    return exact.evaluate(entries, problem.compiled.variables, problem.args, compile_tree)


def _as_matrix(plan: Any, matrix: bool | None) -> bool:
    """Whether the result is written as its classic matrix: as asked, else when every ``wrt``
    input is a scalar (its matrix is the one the pretty view has always shown)."""
    return all(not plan.input_shapes[name] for name in plan.wrt) if matrix is None else matrix


def _wrt_order(wrt: Sequence[str] | None, names: Sequence[str]) -> tuple[str, ...]:
    """The inputs in the order ``wrt`` gives them (``["t,r"]``: t, then r), which orders the
    blocks and the classic matrix's columns; without ``wrt``, the variables' order."""
    given = [part.strip() for item in wrt or () for part in item.split(",")]
    ordered = tuple(dict.fromkeys(name for name in given if name in names))
    return ordered if set(ordered) == set(names) else tuple(names)


def _evaluate_output(problem: Problem) -> Any:
    """The output alone (the symbolic method takes no autograd pass that would give it)."""
    return problem.compiled.checked(*problem.args).detach()


def _determinant(problem: Problem, matrix: Any, exact: dict[str, Any] | None, order: Sequence[str]) -> tuple[Any, Any]:
    """det of the classic matrix, the inputs side by side as columns in ``order`` (the volume factor)."""
    import torch

    rows = problem.plan.output_elements
    if matrix.shape[0] != matrix.shape[1]:
        raise ShapeError(
            f"`det` needs a square Jacobian, but the output has {matrix.shape[0]} elements and the "
            f"inputs ({', '.join(problem.wrt)}) have {matrix.shape[1]} together; choose inputs with "
            "`wrt` so that the counts match", param="det",
        )
    determinant = torch.linalg.det(matrix)
    exact_det = None
    if exact is not None:
        import numpy as np
        import sympy as sp

        columns = np.concatenate([exact[name].reshape(rows, -1) for name in order], axis=1)
        if rows <= 6:
            from jacli.engine.exact import deadline

            try:
                with deadline(UNTRUSTED_SECONDS if problem.untrusted else None):
                    exact_det = sp.simplify(sp.Matrix(columns.tolist()).det())
            except ResourceError as error:  # the numbers stand; the exact form is only shown
                warnings.warn(f"the exact determinant is skipped: {str(error).split(' (')[0]}", JacliWarning, stacklevel=3)
    return determinant, exact_det


__all__ = [
    "jacobian", "vjp", "jvp", "grad", "hessian", "hvp",
    "compute_jacobian", "compute_vjp", "compute_jvp", "compute_grad", "compute_hessian", "compute_hvp",
    "Result", "JacobianResult", "VJPResult", "JVPResult", "GradResult", "HessianResult", "HVPResult",
]
