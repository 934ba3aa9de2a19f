"""How derivatives are taken: each operator is a few lines on torch.func or torch.autograd.

Every function takes the compiled ``f(*args)``, the input tensors ``args`` (positional, in the
expression's variable order) and ``wrt``, the positions to differentiate with respect to. Results
follow the torch.func shape convention: a Jacobian block is ``output.shape + input.shape``.

Example:
    >>> f = lambda x: (x + 1) ** 2
    >>> jacobian(f, (torch.eye(2, dtype=torch.float64),), (0,), "reverse")[0].shape
    torch.Size([2, 2, 2, 2])
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import torch

JACOBIAN_METHODS = ("auto", "reverse", "forward", "rows")
VJP_METHODS = ("auto", "grad", "backward")

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called by the row loop after each row."""


def choose_jacobian_method(input_elements: int, output_elements: int) -> str:
    """``auto``: forward mode costs one pass per input element, reverse one per output element.

    Forward when the inputs have fewer elements than the output, else reverse.
    """
    return "forward" if input_elements < output_elements else "reverse"


def jacobian(
    f: Callable[..., torch.Tensor],
    args: Sequence[torch.Tensor],
    wrt: Sequence[int],
    method: str,
    *,
    progress: Progress | None = None,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, ...]:
    """The Jacobian blocks of ``f`` at ``args``, one per position in ``wrt``.

    Args:
        f: the function; returns one tensor.
        args: its inputs.
        wrt: positions in ``args`` to differentiate with respect to.
        method: ``reverse`` (torch.func.jacrev), ``forward`` (torch.func.jacfwd) or ``rows``
            (one torch.autograd.grad per output element); resolve ``auto`` first.
        progress: for ``rows``, called after each row.
        chunk_size: for ``reverse``, how many output basis vectors to pull back at once (bounds
            peak memory; None is all at once). torch.func.jacfwd has no such option.

    Returns:
        One tensor per ``wrt`` entry, shaped ``output.shape + args[i].shape``.
    """
    wrt = tuple(wrt)
    if method == "rows":
        return _jacobian_rows(f, args, wrt, progress)
    if method == "reverse":
        transform = torch.func.jacrev(f, argnums=wrt, chunk_size=chunk_size)
    else:
        transform = torch.func.jacfwd(f, argnums=wrt)
    with warnings.catch_warnings():
        # torch.func falls back to a slower loop for ops without a batching rule; that is fine.
        warnings.filterwarnings("ignore", message=".*performance drop.*")
        blocks = transform(*args)
    return tuple(blocks)


def _jacobian_rows(
    f: Callable[..., torch.Tensor],
    args: Sequence[torch.Tensor],
    wrt: tuple[int, ...],
    progress: Progress | None,
) -> tuple[torch.Tensor, ...]:
    """The classic loop: one backward pass per output element, with a one-hot grad_output.

    Row k of the Jacobian is e_kᵀJ, the vector-Jacobian product with the k-th basis vector.
    """
    leaves = [a.detach().requires_grad_(i in wrt) for i, a in enumerate(args)]
    targets = [leaves[i] for i in wrt]
    y = f(*leaves)
    blocks = [y.new_zeros(y.shape + t.shape) for t in targets]
    if not y.requires_grad:
        return tuple(blocks)
    rows = y.numel()
    flat_blocks = [block.view(rows, -1) for block in blocks]
    for k in range(rows):
        one_hot = torch.zeros_like(y)
        one_hot.view(-1)[k] = 1
        grads = torch.autograd.grad(
            y, targets, grad_outputs=one_hot, retain_graph=k < rows - 1, allow_unused=True
        )
        for flat, grad in zip(flat_blocks, grads):
            if grad is not None:
                flat[k] = grad.reshape(-1)
        if progress is not None:
            progress(k + 1, rows)
    return tuple(blocks)


def vjp(
    f: Callable[..., torch.Tensor],
    args: Sequence[torch.Tensor],
    wrt: Sequence[int],
    v: torch.Tensor,
    method: str,
) -> tuple[torch.Tensor, ...]:
    """vᵀJ for each input in ``wrt``: what ``y.backward(v)`` leaves in ``x.grad``.

    Args:
        method: ``grad`` (torch.autograd.grad) or ``backward`` (really calls ``y.backward(v)``
            on leaf tensors and reads ``.grad``); ``auto`` is ``grad``. They give identical bits.

    Returns:
        One tensor per ``wrt`` entry, shaped like that input.
    """
    leaves = [a.detach().requires_grad_(i in wrt) for i, a in enumerate(args)]
    targets = [leaves[i] for i in wrt]
    y = f(*leaves)
    if not y.requires_grad:
        return tuple(torch.zeros_like(t) for t in targets)
    if method == "backward":
        y.backward(v)
        return tuple(t.grad if t.grad is not None else torch.zeros_like(t) for t in targets)
    grads = torch.autograd.grad(y, targets, grad_outputs=v, allow_unused=True)
    return tuple(g if g is not None else torch.zeros_like(t) for g, t in zip(grads, targets))


def jacobian_elements(output_shape: Sequence[int], input_shapes: Sequence[Sequence[int]]) -> int:
    """How many numbers the Jacobian blocks hold together."""
    return math.prod(output_shape) * sum(math.prod(s) for s in input_shapes)
