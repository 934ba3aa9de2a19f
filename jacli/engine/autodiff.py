"""Automatic differentiation: each operator is a few lines on torch.func or torch.autograd.

Every function takes the compiled ``f(*args)``, the input tensors ``args`` (positional, in the
expression's variable order) and ``wrt``, the positions to differentiate with respect to. Each
returns the output ``f(*args)`` beside the derivatives, from the same forward pass: jacli
evaluates a formula once per call. Results follow the torch.func shape convention: a Jacobian
block is ``output.shape + input.shape``.

Example:
    >>> f = lambda x: (x + 1) ** 2
    >>> output, blocks = jacobian(f, (torch.eye(2, dtype=torch.float64),), (0,), "reverse")
    >>> output.shape, blocks[0].shape
    (torch.Size([2, 2]), torch.Size([2, 2, 2, 2]))
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any, Callable, Iterator, Sequence

import torch

from jacli.engine.methods import GradMethod, HessianMethod, JacobianMethod, VJPMethod

Function = Callable[..., torch.Tensor]
Blocks = tuple[torch.Tensor, ...]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called by the row loop after each row."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch.func falls back to a slower loop for ops without a batching rule; that is fine."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*performance drop.*")
        yield


def _with_output(f: Function) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``f`` returning its output twice: once to differentiate, once as torch.func's ``aux``."""

    def both(*args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = f(*args)
        return y, y

    return both


def jacobian(
    f: Function,
    args: Sequence[torch.Tensor],
    wrt: Sequence[int],
    method: JacobianMethod | str,
    *,
    progress: Progress | None = None,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, Blocks]:
    """The output and the Jacobian blocks of ``f`` at ``args``, one block per position in ``wrt``.

    Args:
        method: ``reverse`` (torch.func.jacrev), ``forward`` (torch.func.jacfwd) or ``rows``
            (one torch.autograd.grad per output element); resolve ``auto`` first.
        progress: for ``rows``, called after each row.
        chunk_size: how many basis vectors to push through at once (bounds vmap's memory);
            None is all at once, the fastest when it fits.

    Returns:
        ``(output, blocks)``, each block shaped ``output.shape + args[i].shape``.
    """
    method = JacobianMethod.parse(method)
    wrt = tuple(wrt)
    if method is JacobianMethod.rows:
        return _jacobian_rows(f, args, wrt, progress)
    if method is JacobianMethod.reverse:
        transform = torch.func.jacrev(_with_output(f), argnums=wrt, has_aux=True, chunk_size=chunk_size)
        with _quiet():
            blocks, output = transform(*args)
        return output, tuple(blocks)
    if method is JacobianMethod.forward:
        if chunk_size is None:
            with _quiet():
                blocks, output = torch.func.jacfwd(_with_output(f), argnums=wrt, has_aux=True)(*args)
            return output, tuple(blocks)
        return _jacobian_forward_chunked(f, args, wrt, chunk_size)
    raise ValueError(f"engine.jacobian cannot run method {method.value!r}")  # symbolic is exact.py's


def _jacobian_forward_chunked(
    f: Function, args: Sequence[torch.Tensor], wrt: tuple[int, ...], chunk_size: int
) -> tuple[torch.Tensor, Blocks]:
    """jacfwd, ``chunk_size`` input directions at a time (torch.func.jacfwd has no chunk_size)."""
    primals = tuple(args)
    output = None
    blocks: list[torch.Tensor] = []
    for position in wrt:
        x = args[position]
        n = x.numel()
        columns = []

        def push(tangent: torch.Tensor, position: int = position) -> tuple[torch.Tensor, torch.Tensor]:
            tangents = tuple(tangent if i == position else torch.zeros_like(a) for i, a in enumerate(primals))
            y, dy = torch.func.jvp(f, primals, tangents)
            return dy, y

        for start in range(0, n, chunk_size):
            count = min(chunk_size, n - start)
            basis = x.new_zeros((count, n))
            basis[torch.arange(count), torch.arange(start, start + count)] = 1
            with _quiet():
                dy, y = torch.func.vmap(push)(basis.reshape((count,) + x.shape))
            output = y[0] if output is None else output
            columns.append(dy.reshape(count, -1))
        assert output is not None
        block = torch.cat(columns).T.reshape(output.shape + x.shape)
        blocks.append(block)
    assert output is not None
    return output, tuple(blocks)


def _jacobian_rows(
    f: Function, args: Sequence[torch.Tensor], wrt: tuple[int, ...], progress: Progress | None
) -> tuple[torch.Tensor, Blocks]:
    """The classic loop: one backward pass per output element, from that element alone.

    Row k of the Jacobian is e_kᵀJ, the vector-Jacobian product with the k-th basis vector:
    the backward pass of ``y.reshape(-1)[k]`` starts from exactly that one-hot tensor. (Passing
    the one-hot as ``grad_outputs`` gives the same numbers, but makes torch.autograd import
    torch.fx's symbolic shapes for its size check: 25 ms of a small CLI call.)
    """
    leaves = [a.detach().requires_grad_(i in wrt) for i, a in enumerate(args)]
    targets = [leaves[i] for i in wrt]
    y = f(*leaves)
    blocks = [y.new_zeros(y.shape + t.shape) for t in targets]
    if not y.requires_grad:
        return y.detach(), tuple(blocks)
    rows = y.numel()
    flat_blocks = [block.view(rows, -1) for block in blocks]
    elements = y.reshape(-1)  # (a copy where y's strides need one: inv's are column-major)
    for k in range(rows):
        grads = torch.autograd.grad(elements[k], targets, retain_graph=k < rows - 1, allow_unused=True)
        for flat, grad in zip(flat_blocks, grads):
            if grad is not None:
                flat[k] = grad.reshape(-1)
        if progress is not None:
            progress(k + 1, rows)
    return y.detach(), tuple(blocks)


class Pullback:
    """The forward pass done, the backward pass to come: ``output`` now, ``vjp(v)`` when v is made.

    A VJP's ``v`` is shaped like the output, and specs such as ``ones`` take the output's shape;
    splitting the two passes lets the caller build ``v`` between them without evaluating twice.
    """

    def __init__(self, f: Function, args: Sequence[torch.Tensor], wrt: Sequence[int], method: VJPMethod | str):
        self.method = VJPMethod.parse(method)
        leaves = [a.detach().requires_grad_(i in wrt) for i, a in enumerate(args)]
        self.targets = [leaves[i] for i in wrt]
        self._y = f(*leaves)
        self.output = self._y.detach()

    def vjp(self, v: torch.Tensor | None) -> Blocks:
        """vᵀJ for each input in ``wrt``: what ``y.backward(v)`` leaves in ``x.grad`` (``v`` None:
        a one-element output's gradient, without the size check that imports torch.fx's shapes)."""
        y, targets = self._y, self.targets
        if not y.requires_grad:
            return tuple(torch.zeros_like(t) for t in targets)
        if self.method is VJPMethod.backward:
            y.backward(v)
            return tuple(t.grad if t.grad is not None else torch.zeros_like(t) for t in targets)
        grads = torch.autograd.grad(y, targets, grad_outputs=v, allow_unused=True)
        return tuple(g if g is not None else torch.zeros_like(t) for g, t in zip(grads, targets))


def vjp(
    f: Function, args: Sequence[torch.Tensor], wrt: Sequence[int], v: torch.Tensor, method: VJPMethod | str
) -> tuple[torch.Tensor, Blocks]:
    """The output and vᵀJ for each input in ``wrt``, shaped like that input.

    Args:
        method: ``grad`` (torch.autograd.grad) or ``backward`` (really calls ``y.backward(v)``
            on leaf tensors and reads ``.grad``); ``auto`` is ``grad``. They give identical bits.
    """
    pullback = Pullback(f, args, wrt, method)
    return pullback.output, pullback.vjp(v)


def _zero_tangents(args: Sequence[torch.Tensor], wrt: Sequence[int], tangents: Sequence[torch.Tensor]) -> tuple:
    """One tangent per argument: the given ones at ``wrt``, zeros elsewhere."""
    given = dict(zip(wrt, tangents))
    return tuple(given.get(i, torch.zeros_like(a)) for i, a in enumerate(args))


def jvp(
    f: Function, args: Sequence[torch.Tensor], wrt: Sequence[int], tangents: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The output and J·u, shaped like the output, in one forward-mode pass (torch.func.jvp).

    ``tangents`` holds one direction per ``wrt`` input; the other inputs get a zero direction.
    """
    output, out = torch.func.jvp(f, tuple(args), _zero_tangents(args, wrt, tangents))
    return output, out


def _scalar(f: Function) -> Function:
    """``f`` with its single-element output as a 0-dimensional tensor (what grad needs)."""
    return lambda *args: f(*args).reshape(())


def grad(
    f: Function,
    args: Sequence[torch.Tensor],
    wrt: Sequence[int],
    method: GradMethod | str,
    *,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, Blocks]:
    """The output and the gradient of a single-element output: what ``y.backward()`` leaves in ``.grad``.

    ``reverse`` uses torch.autograd.grad (one backward pass); ``forward`` pushes one tangent per
    input element (jacfwd), ``chunk_size`` of them at a time when given.
    """
    if GradMethod.parse(method) is GradMethod.forward:
        output, blocks = jacobian(_scalar(f), args, wrt, JacobianMethod.forward, chunk_size=chunk_size)
        return output, blocks
    pullback = Pullback(_scalar(f), args, wrt, VJPMethod.grad)
    return pullback.output, pullback.vjp(None)  # (None: autograd's own 1, the same as passing ones)


# NOTE [Hessian: forward-over-reverse]
# A Hessian is the Jacobian of the gradient. The gradient of a scalar is cheapest in reverse mode
# (one backward pass gives all n entries); its Jacobian maps n inputs to n outputs, where forward
# mode pushes n tangents through that gradient computation, vectorized by vmap, without building a
# second reverse graph over the first one. jacfwd(jacrev(f)) is therefore the usual fast choice
# (it is what torch.func.hessian and jax.hessian do); reverse-over-reverse (jacrev(jacrev(f)))
# gives the same numbers and is offered for comparison. torch.func.jacfwd has no chunk_size, so
# a Hessian too large to vectorize at once runs reverse-over-reverse in chunks.
#
# NOTE [packing the inputs]: torch.func differentiates a tuple of inputs argument by argument,
# with a nested result per pair: for k scalar inputs that is k² small tensors and the
# bookkeeping of k vmapped passes (1,600 scalars: 74 s and 3.5 GB for a 20 MB Hessian). One
# vector of all the ``wrt`` elements makes it one n × n matrix, chunked by the budget like any
# other, whatever the number of inputs; blocks are views into it.


def hessian_matrix(
    f: Function,
    args: Sequence[torch.Tensor],
    wrt: Sequence[int],
    method: HessianMethod | str,
    *,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The output and the Hessian of a single-element output as one n × n matrix.

    The ``wrt`` inputs are flattened (C order) and laid side by side: rows and columns
    ``offset(a) .. offset(a) + a.numel()`` belong to input ``a``, in ``wrt`` order.

    Args:
        method: ``forward`` (forward-over-reverse) or ``reverse`` (reverse-over-reverse).
        chunk_size: how many directions the outer derivative pushes at once (None: all).

    Example:
        >>> f = lambda a, b: a * b**2
        >>> one = torch.tensor(1.0, dtype=torch.float64)
        >>> hessian_matrix(f, (one, 2 * one), (0, 1), "forward")[1].tolist()
        [[0.0, 4.0], [4.0, 2.0]]
    """
    method = HessianMethod.parse(method)
    wrt = tuple(wrt)
    sizes = [args[i].numel() for i in wrt]
    shapes = [tuple(args[i].shape) for i in wrt]
    packed = torch.cat([args[i].reshape(-1) for i in wrt]) if len(wrt) > 1 else args[wrt[0]].reshape(-1)

    def of_packed(vector: torch.Tensor) -> torch.Tensor:
        full = list(args)
        pieces = torch.split(vector, sizes) if len(wrt) > 1 else (vector,)
        for i, piece, shape in zip(wrt, pieces, shapes):
            full[i] = piece.reshape(shape)
        return f(*full).reshape(())

    gradient = torch.func.jacrev(_with_output(of_packed), has_aux=True)
    if chunk_size is not None and chunk_size < packed.numel():
        return _hessian_in_chunks(gradient, packed, chunk_size)
    if method is HessianMethod.forward:
        outer = torch.func.jacfwd(gradient, has_aux=True)
    else:
        outer = torch.func.jacrev(gradient, has_aux=True)
    with _quiet():
        matrix, output = outer(packed)
    return output, matrix


def _hessian_in_chunks(gradient: Any, packed: torch.Tensor, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The Hessian's rows, ``chunk_size`` at a time, each a vmapped VJP of the gradient, written
    into one matrix: ``jacrev(chunk_size=...)`` concatenates its chunks at the end, which holds
    the Hessian twice (and made the plan's chunks so small that 2,500 scalar inputs took minutes)."""
    n = packed.numel()
    with _quiet():
        _, pullback, output = torch.func.vjp(gradient, packed, has_aux=True)
        matrix = packed.new_empty((n, n))
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            basis = packed.new_zeros((stop - start, n))
            basis[torch.arange(stop - start), torch.arange(start, stop)] = 1
            (rows,) = torch.func.vmap(pullback)(basis)
            matrix[start:stop] = rows  # H is symmetric: row k is the VJP with the k-th basis vector
    return output, matrix


def hessian(
    f: Function,
    args: Sequence[torch.Tensor],
    wrt: Sequence[int],
    method: HessianMethod | str,
    *,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, dict[tuple[int, int], torch.Tensor]]:
    """The output and the Hessian blocks of a single-element output, keyed by (i, j) positions:
    ``hessian_matrix`` cut into views, for a handful of inputs (use the matrix for many).

    Returns:
        ``(output, {(i, j): tensor of shape args[i].shape + args[j].shape})``.
    """
    wrt = tuple(wrt)
    output, matrix = hessian_matrix(f, args, wrt, method, chunk_size=chunk_size)
    sizes = [args[i].numel() for i in wrt]
    found = {}
    for i, row in zip(wrt, torch.split(matrix, sizes, dim=0)):
        for j, block in zip(wrt, torch.split(row, sizes, dim=1)):
            found[(i, j)] = block.reshape(args[i].shape + args[j].shape)
    return output, found


def hvp(
    f: Function, args: Sequence[torch.Tensor], wrt: Sequence[int], tangents: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, Blocks]:
    """The output and H·u for each ``wrt`` input without building H: forward over reverse."""
    wrt = tuple(wrt)
    gradient = torch.func.grad(_with_output(_scalar(f)), argnums=wrt, has_aux=True)
    _, out, output = torch.func.jvp(gradient, tuple(args), _zero_tangents(args, wrt, tangents), has_aux=True)
    return output, tuple(out)


def jacobian_elements(output_shape: Sequence[int], input_shapes: Sequence[Sequence[int]]) -> int:
    """How many numbers the Jacobian blocks hold together."""
    return math.prod(output_shape) * sum(math.prod(s) for s in input_shapes)
