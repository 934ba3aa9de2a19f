"""Many points at once: each operator of ``autodiff`` applied per point under ``torch.func.vmap``.

Every function takes the compiled ``f(*args)`` written for ONE point, the full input tensors
``args`` and ``in_dims``: for each argument, the axis that runs over the points, or None for an
input shared by all of them. ``chunk_size`` bounds how many points are pushed through at once
(vmap's own chunking; None: all). Results have the points on their leading axis: a Jacobian
block is ``(points,) + output.shape + input.shape``, the output ``(points,) + output.shape``.

Example:
    >>> f = lambda r, t: torch.stack([r * torch.cos(t), r * torch.sin(t)])
    >>> r = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> output, blocks = jacobian(f, (r, torch.zeros((), dtype=torch.float64)), (0, None), (1,), "reverse")
    >>> output.shape, blocks[0].tolist()
    (torch.Size([2, 2]), [[0.0, 1.0], [0.0, 2.0]])
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

from jacli.engine.autodiff import _quiet, _scalar, _with_output, _zero_tangents
from jacli.engine.methods import GradMethod, JacobianMethod

Function = Callable[..., torch.Tensor]
InDims = Sequence[int | None]


def _mapped(per_point: Callable[..., Any], in_dims: InDims, chunk_size: int | None) -> Callable[..., Any]:
    """``per_point`` vectorized over the points, ``chunk_size`` points at a time."""
    mapped = torch.func.vmap(per_point, in_dims=tuple(in_dims), out_dims=0)
    return lambda *args: _in_chunks(mapped, args, in_dims, chunk_size)


def jacobian(
    f: Function, args: Sequence[torch.Tensor], in_dims: InDims, wrt: Sequence[int], method: JacobianMethod | str,
    *, chunk_size: int | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The output and one Jacobian block per ``wrt`` position, for every point.

    Args:
        method: ``reverse`` (jacrev per point) or ``forward`` (one JVP per input element and
            point, see NOTE [forward mode over points]).
    """
    method = JacobianMethod.parse(method)
    wrt = tuple(wrt)
    if method is JacobianMethod.reverse:
        transform = torch.func.jacrev(_with_output(f), argnums=wrt, has_aux=True)

        def per_point(*point: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
            blocks, output = transform(*point)
            return output, tuple(blocks)

        with _quiet():
            output, blocks = _mapped(per_point, in_dims, chunk_size)(*args)
        return output, tuple(blocks)
    if method is JacobianMethod.forward:
        return _in_chunks(lambda *part: _forward(f, part, in_dims, wrt), args, in_dims, chunk_size)
    raise ValueError(f"engine.batched.jacobian cannot run method {method.value!r}")


# NOTE [forward mode over points]
# vmap over the points of jacfwd (a vmap over the directions inside) gives wrong numbers for
# torch.linalg.solve in torch 2.13: the JVP of solve mixes the two batch levels when the points
# are the outer one. With the directions outer and the points inner, each level sees what a
# one-point jacfwd sees, and the numbers are those of a loop of jacfwd (tests/test_batch_axis.py
# checks solve both ways). Reverse mode (jacrev inside vmap) is not affected.


def _forward(f: Function, args: Sequence[torch.Tensor], in_dims: InDims,
             wrt: tuple[int, ...]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Every point's Jacobian blocks by JVPs: the input elements' directions outside, the points inside."""
    dims = tuple(in_dims)
    output = None
    blocks = []
    for position in wrt:
        shape = args[position].shape
        point_shape = tuple(s for k, s in enumerate(shape) if k != dims[position]) if dims[position] is not None else tuple(shape)
        n = math.prod(point_shape)
        basis = torch.eye(n, dtype=args[position].dtype, device=args[position].device).reshape((n,) + point_shape)

        def push(*both: torch.Tensor, position: int = position) -> tuple[torch.Tensor, torch.Tensor]:
            point, tangent = both[:-1], both[-1]
            tangents = tuple(tangent if i == position else torch.zeros_like(a) for i, a in enumerate(point))
            return torch.func.jvp(f, tuple(point), tangents)

        over_points = torch.func.vmap(push, in_dims=(*dims, None))
        with _quiet():
            ys, columns = torch.func.vmap(over_points, in_dims=(*(None for _ in dims), 0))(*args, basis)
        # columns: (directions, points) + output.shape → (points,) + output.shape + input.shape
        output = ys[0] if output is None else output
        blocks.append(columns.movedim(0, -1).reshape(columns.shape[1:] + point_shape))
    assert output is not None
    return output, tuple(blocks)


def _in_chunks(run: Callable[..., Any], args: Sequence[torch.Tensor], in_dims: InDims,
               chunk_size: int | None) -> Any:
    """``run`` on ``chunk_size`` points at a time, each chunk's results written into the whole
    results as it comes (vmap's own chunk_size concatenates them at the end: twice the results)."""
    points = next(a.shape[d] for a, d in zip(args, in_dims) if d is not None)
    if chunk_size is None or chunk_size >= points:
        return run(*args)
    whole = None
    for start in range(0, points, chunk_size):
        count = min(chunk_size, points - start)
        part = run(*(a if d is None else a.narrow(d, start, count) for a, d in zip(args, in_dims)))
        if whole is None:
            whole = _empty_like(part, points)
        _write(whole, part, start)
    return whole


def _empty_like(part: Any, points: int) -> Any:
    """Results nested like ``part`` (tensors in tuples), with room for every point."""
    if isinstance(part, torch.Tensor):
        return part.new_empty((points,) + tuple(part.shape[1:]))
    return type(part)(_empty_like(item, points) for item in part)


def _write(whole: Any, part: Any, start: int) -> None:
    if isinstance(part, torch.Tensor):
        whole[start:start + part.shape[0]] = part
        return
    for into, item in zip(whole, part):
        _write(into, item, start)


def vjp(
    f: Function, args: Sequence[torch.Tensor], in_dims: InDims, wrt: Sequence[int], v: torch.Tensor,
    v_dim: int | None, *, chunk_size: int | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The output and vᵀJ for each ``wrt`` input, for every point; ``v`` is one per point
    (``v_dim`` 0) or shared (None), shaped like one point's output."""
    wrt = tuple(wrt)

    def per_point(v_point: torch.Tensor, *point: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        def of_wrt(*moving: torch.Tensor) -> torch.Tensor:
            full = list(point)
            for position, value in zip(wrt, moving):
                full[position] = value
            return f(*full)

        output, pullback = torch.func.vjp(of_wrt, *(point[i] for i in wrt))
        return output, tuple(pullback(v_point.to(output.dtype).expand_as(output)))

    with _quiet():
        output, grads = _mapped(per_point, (v_dim, *in_dims), chunk_size)(v, *args)
    return output, tuple(grads)


def grad(
    f: Function, args: Sequence[torch.Tensor], in_dims: InDims, wrt: Sequence[int], method: GradMethod | str,
    *, chunk_size: int | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The output and the gradient of a single-element output, for every point."""
    wrt = tuple(wrt)
    if GradMethod.parse(method) is GradMethod.forward:
        transform = torch.func.jacfwd(_with_output(_scalar(f)), argnums=wrt, has_aux=True)
    else:
        transform = torch.func.grad(_with_output(_scalar(f)), argnums=wrt, has_aux=True)

    def per_point(*point: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        grads, output = transform(*point)
        return output, tuple(grads)

    with _quiet():
        output, grads = _mapped(per_point, in_dims, chunk_size)(*args)
    return output, tuple(grads)


def jvp(
    f: Function, args: Sequence[torch.Tensor], in_dims: InDims, wrt: Sequence[int], tangents: Sequence[torch.Tensor],
    tangent_dims: InDims, *, chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The output and J·u for every point; each direction is one per point (its dim 0) or shared."""
    wrt = tuple(wrt)
    count = len(args)

    def per_point(*both: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        point, directions = both[:count], both[count:]
        output, out = torch.func.jvp(f, tuple(point), _zero_tangents(point, wrt, directions))
        return output, out

    with _quiet():
        output, value = _mapped(per_point, (*in_dims, *tangent_dims), chunk_size)(*args, *tangents)
    return output, value


__all__ = ["jacobian", "vjp", "grad", "jvp"]
