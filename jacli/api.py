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

import contextlib
import math
import warnings
from typing import Any, Callable, Iterator, Mapping, Sequence

from jacli.engine.methods import GradMethod, HessianMethod, JacobianMethod, Layout, VJPMethod
from jacli.errors import InputError, JacliWarning, ResourceError, ShapeError
from jacli.problem import InputValue, Inputs, Problem, prepare, report_nonfinite
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
) -> dict[str, Any]:
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

    Returns:
        name → tensor of shape ``output.shape + input.shape``.

    Example:
        >>> jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.0})["t"]
        tensor([0., 2.], dtype=torch.float64)
    """
    chosen = Layout.parse(layout)
    result = compute_jacobian(expr, inputs, wrt=wrt, method=method, device=device, dtype=dtype, layout=chosen)
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
    return compute_vjp(expr, inputs, v, wrt=wrt, method=method, device=device, dtype=dtype).grads


def jvp(expr: str, inputs: Mapping[str, InputValue], v: Any, *, device: Any = "cpu", dtype: Any = "float64") -> Any:
    """J·u, shaped like the output, in one forward-mode pass.

    Example:
        >>> jvp("x**2", {"x": [1.0, 2.0]}, {"x": [1.0, 1.0]})
        tensor([2., 4.], dtype=torch.float64)
    """
    return compute_jvp(expr, inputs, v, device=device, dtype=dtype).value


def grad(expr: str, inputs: Mapping[str, InputValue], *, wrt: Sequence[str] | None = None,
         method: str = "auto", device: Any = "cpu", dtype: Any = "float64") -> dict[str, Any]:
    """The gradient of a single-element output, one tensor per input (shaped like it).

    Example:
        >>> grad("x**2 + 3*x + 1", {"x": 2.0})["x"]
        tensor(7., dtype=torch.float64)
    """
    return compute_grad(expr, inputs, wrt=wrt, method=method, device=device, dtype=dtype).grads


def hessian(expr: str, inputs: Mapping[str, InputValue], *, wrt: Sequence[str] | None = None,
            method: str = "auto", device: Any = "cpu", dtype: Any = "float64") -> dict[tuple[str, str], Any]:
    """The Hessian of a single-element output, one block per pair of inputs, keyed ``(a, b)``.

    Example:
        >>> hessian("x[0]**2*x[1] + x[1]**3", {"x": [1.0, 2.0]})["x", "x"]
        tensor([[ 4.,  2.],
                [ 2., 12.]], dtype=torch.float64)
    """
    return compute_hessian(expr, inputs, wrt=wrt, method=method, device=device, dtype=dtype).blocks


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
    progress: Progress | None = None,
    symbolic: bool = False,
    det: bool = False,
    layout: str = "auto",
) -> JacobianResult:
    """Like ``jacobian`` but returns the whole ``JacobianResult``; refuses Jacobians over the budget.

    Args:
        inputs: a mapping, or ``(name or None, value)`` pairs as the CLI gives them (None binds
            the only variable).
        seed: seeds ``rand``/``randn`` specs.
        max_memory: the memory budget in bytes (default: half the available memory).
        progress: ``progress(done, total)`` for the row loop.
        symbolic: also keep the exact derivative (``JacobianResult.symbolic``).
        det: also compute the determinant of the square Jacobian (all inputs together).
        layout: how each block is stored: ``dense``, ``diagonal`` (only for a Jacobian that is
            zero off its diagonal), ``sparse`` (the nonzeros, COO), or ``auto`` (dense, for now).
    """
    chosen = JacobianMethod.parse(method)
    chosen_layout = Layout.parse(layout)
    problem = prepare(expr, inputs, wrt=wrt, device=device, dtype=dtype, seed=seed, max_memory=max_memory,
                      result="jacobian")
    if chosen is JacobianMethod.auto:
        chosen = JacobianMethod(problem.plan.jacobian_method())
    exact = _exact(problem, chosen, _exact_jacobian) if symbolic or chosen is JacobianMethod.symbolic else None
    if chosen is JacobianMethod.symbolic:
        output = _evaluate_output(problem)
        values = {name: _evaluate_exact(problem, exact[name]) for name in problem.wrt}
    else:
        from jacli.engine import autodiff

        chunk = {JacobianMethod.reverse: problem.plan.reverse_chunk,
                 JacobianMethod.forward: problem.plan.forward_chunk}.get(chosen, lambda: None)()
        with _running(problem):
            output, blocks = autodiff.jacobian(
                problem.compiled.function, problem.args, problem.wrt_positions, chosen,
                progress=progress, chunk_size=chunk,
            )
        values = dict(zip(problem.wrt, blocks))
    result = JacobianResult(
        problem, chosen.value, _reported(output, values),
        blocks={name: JacobianBlock(name, value) for name, value in values.items()},
    )
    if exact is not None:
        from jacli.engine.exact import is_elementwise, scalar_derivative

        result.symbolic = exact
        tree = problem.compiled.tree
        if not all(not problem.shapes[n] for n in problem.wrt) and is_elementwise(tree):
            result.diagonal = {name: scalar_derivative(tree, name) for name in problem.wrt}
    if det:
        result.det, result.det_symbolic = _determinant(problem, values, exact)
    if chosen_layout not in (Layout.auto, Layout.dense):
        result.blocks = {name: _as_layout(block, problem.shapes[name], chosen_layout) for name, block in result.blocks.items()}
        result.how = f"{chosen_layout.value}: read off the dense Jacobian"
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
) -> VJPResult:
    """Like ``vjp`` but returns the whole ``VJPResult``."""
    from jacli import inputs as specs

    chosen = VJPMethod.parse(method)
    v_spec = specs.parse_spec(specs.unnamed_v(v), for_v=True) if isinstance(v, str) else v
    problem = prepare(expr, inputs, wrt=wrt, device=device, dtype=dtype, seed=seed, max_memory=max_memory)
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
) -> JVPResult:
    """J·u in one forward-mode pass, shaped like the output (``JVPResult.value``).

    Args:
        v: the direction: name → value for each input that moves (the others stay still), or a
            single value when the expression has one variable.
    """
    problem = prepare(expr, inputs, device=device, dtype=dtype, seed=seed, max_memory=max_memory)
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
    symbolic: bool = False,
) -> GradResult:
    """The gradient of a single-element output: what ``y.backward()`` leaves in ``x.grad``.

    Args:
        method: ``auto``/``reverse`` (torch.autograd.grad), ``forward`` (jacfwd) or ``symbolic``.
    """
    chosen = GradMethod.parse(method)
    problem = prepare(expr, inputs, wrt=wrt, device=device, dtype=dtype, seed=seed, max_memory=max_memory)
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
    return GradResult(problem, chosen.value, _reported(output, values), grads=values, symbolic=exact)


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
    symbolic: bool = False,
) -> HessianResult:
    """The Hessian of a single-element output: one block per pair of inputs, keyed ``(a, b)``,
    shaped ``a.shape + b.shape``.

    Args:
        method: ``auto``/``forward`` (forward-over-reverse), ``reverse`` (reverse-over-reverse)
            or ``symbolic``.
    """
    chosen = HessianMethod.parse(method)
    problem = prepare(expr, inputs, wrt=wrt, device=device, dtype=dtype, seed=seed, max_memory=max_memory,
                      result="hessian")
    problem.require_scalar("hessian")
    chosen = HessianMethod.forward if chosen is HessianMethod.auto else chosen
    exact = _exact(problem, chosen, _exact_hessian) if symbolic or chosen is HessianMethod.symbolic else None
    if chosen is HessianMethod.symbolic:
        output = _evaluate_output(problem)
        values = {key: _evaluate_exact(problem, block) for key, block in exact.items()}
    else:
        from jacli.engine import autodiff

        with _running(problem):
            output, blocks = autodiff.hessian(
                problem.compiled.function, problem.args, problem.wrt_positions, chosen,
                chunk_size=problem.plan.hessian_chunk(),
            )
        names = problem.compiled.variables
        values = {(names[i], names[j]): block for (i, j), block in blocks.items()}
    output = output.reshape(problem.plan.output_shape)
    return HessianResult(problem, chosen.value, _reported(output, values), blocks=values, symbolic=exact)


def compute_hvp(
    expr: str,
    inputs: Inputs,
    v: Mapping[str, InputValue] | Sequence[tuple[str | None, InputValue]] | InputValue,
    *,
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
) -> HVPResult:
    """H·u for a single-element output, without building H, one tensor per input (shaped like it).

    Args:
        v: the direction, as for ``compute_jvp``; inputs without a direction stay still.
    """
    problem = prepare(expr, inputs, device=device, dtype=dtype, seed=seed, max_memory=max_memory)
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


@contextlib.contextmanager
def _running(problem: Problem) -> Iterator[None]:
    """Torch running out of memory despite the plan (another process took it, or an estimate
    fell short) is a ``ResourceError`` that says what ran, not a traceback."""
    try:
        yield
    except RuntimeError as error:
        text = str(error)
        if "allocate" not in text and "out of memory" not in text.lower():
            raise
        first = text.strip().splitlines()[0]
        raise ResourceError(
            f"evaluating {problem.expression} ran out of memory ({first}). Use smaller inputs, a "
            "smaller max_memory so that the work is split, or an expression whose intermediate "
            "results are smaller.", param="max_memory",
        ) from None


def _as_layout(block: JacobianBlock, input_shape: tuple[int, ...], layout: Layout) -> Block:
    """The dense ``block`` stored as ``layout`` (diagonal or sparse).

    NOTE [interim layouts]: this reads the structure off numbers already computed densely, so it
    saves nothing, and a zero that happens to fall at these inputs counts as structure. The
    compressed engine (colouring over the formula's sparsity pattern) will replace this function.
    """
    input_shape = tuple(input_shape)
    output_shape = block.shape[: len(block.shape) - len(input_shape)]
    rows, cols, values = block.coo_for(input_shape)
    if layout is Layout.sparse:
        return SparseBlock(block.input, rows, cols, values, output_shape, input_shape)
    total = max(1, len(block.values.reshape(-1)))
    fitting = "sparse" if len(values) <= total // 2 else "dense"
    if output_shape != input_shape:
        raise ShapeError(
            f"`layout` diagonal needs an output shaped like {block.input}, but the output has shape "
            f"{output_shape} and {block.input} {input_shape}; use `layout` {fitting}", param="layout",
        )
    off_diagonal = int((rows != cols).sum())
    if off_diagonal:
        raise InputError(
            f"`layout` diagonal: the Jacobian for {block.input} has {off_diagonal} nonzero "
            f"entr{'y' if off_diagonal == 1 else 'ies'} off its diagonal ({len(values)} of {total} entries "
            f"are nonzero); use `layout` {fitting}", param="layout",
        )
    size = math.prod(input_shape)
    return DiagonalBlock(block.input, block.values.reshape(size, size).diagonal().reshape(input_shape),
                         output_shape, input_shape)


def _reported(output: Any, values: Mapping[Any, Any]) -> Any:
    """Warn about NaN or infinite numbers in the output and the results (the CLI shows them)."""
    from jacli.result import key_text

    report_nonfinite(output, "the output", where=True)
    for key, value in values.items():
        report_nonfinite(value, f"the result for {key_text(key)}", where=True)
    return output


def _exact(problem: Problem, method: Any, build: Callable[[Problem], Any]) -> Any:
    """``build(problem)`` for ``method="symbolic"`` (its errors stand); for ``symbolic=True`` alone,
    which only shows the exact form beside the numbers, a problem too large for SymPy is a
    warning and the numbers come as usual."""
    if method.value == "symbolic":
        return build(problem)
    try:
        return build(problem)
    except ResourceError as error:
        reason = str(error).split(". Use `method`")[0]
        warnings.warn(f"`symbolic` skipped: {reason}; the numbers below are from {method.value} mode",
                      JacliWarning, stacklevel=3)
        return None


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


def _evaluate_output(problem: Problem) -> Any:
    """The output alone (the symbolic method takes no autograd pass that would give it)."""
    return problem.compiled.checked(*problem.args).detach()


def _determinant(problem: Problem, values: dict[str, Any], exact: dict[str, Any] | None) -> tuple[Any, Any]:
    """det of the Jacobian with all inputs side by side as columns (the volume factor)."""
    import torch

    rows = problem.plan.output_elements
    matrix = torch.cat([values[name].reshape(rows, -1) for name in problem.wrt], dim=1)
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

        columns = np.concatenate([exact[name].reshape(rows, -1) for name in problem.wrt], axis=1)
        if rows <= 6:
            exact_det = sp.simplify(sp.Matrix(columns.tolist()).det())
    return determinant, exact_det


__all__ = [
    "jacobian", "vjp", "jvp", "grad", "hessian", "hvp",
    "compute_jacobian", "compute_vjp", "compute_jvp", "compute_grad", "compute_hessian", "compute_hvp",
    "Result", "JacobianResult", "VJPResult", "JVPResult", "GradResult", "HessianResult", "HVPResult",
]
