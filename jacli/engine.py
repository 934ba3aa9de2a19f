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


def _zero_tangents(args: Sequence[torch.Tensor], wrt: Sequence[int], tangents: Sequence[torch.Tensor]) -> tuple:
    """One tangent per argument: the given ones at ``wrt``, zeros elsewhere."""
    given = dict(zip(wrt, tangents))
    return tuple(given.get(i, torch.zeros_like(a)) for i, a in enumerate(args))


def jvp(
    f: Callable[..., torch.Tensor],
    args: Sequence[torch.Tensor],
    wrt: Sequence[int],
    tangents: Sequence[torch.Tensor],
) -> torch.Tensor:
    """J·u, shaped like the output, in one forward-mode pass (torch.func.jvp).

    ``tangents`` holds one direction per ``wrt`` input; the other inputs get a zero direction.
    """
    _, out = torch.func.jvp(f, tuple(args), _zero_tangents(args, wrt, tangents))
    return out


def _scalar(f: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``f`` with its single-element output as a 0-dimensional tensor (what grad needs)."""
    return lambda *args: f(*args).reshape(())


def grad(
    f: Callable[..., torch.Tensor], args: Sequence[torch.Tensor], wrt: Sequence[int], method: str
) -> tuple[torch.Tensor, ...]:
    """The gradient of a single-element output: what ``y.backward()`` leaves in ``.grad``.

    ``reverse`` uses torch.autograd.grad (one backward pass); ``forward`` uses jacfwd.
    """
    if method == "forward":
        return tuple(torch.func.jacfwd(_scalar(f), argnums=tuple(wrt))(*args))
    return vjp(_scalar(f), args, wrt, torch.ones((), dtype=args[0].dtype, device=args[0].device), "grad")


# NOTE [Hessian: forward-over-reverse]
# A Hessian is the Jacobian of the gradient. The gradient of a scalar is cheapest in reverse mode
# (one backward pass gives all n entries); its Jacobian maps n inputs to n outputs, where forward
# mode pushes n tangents through that gradient computation, vectorized by vmap, without building a
# second reverse graph over the first one. jacfwd(jacrev(f)) is therefore the usual fast choice
# (it is what torch.func.hessian and jax.hessian do); reverse-over-reverse (jacrev(jacrev(f)))
# gives the same numbers and is offered for comparison.



def hessian(
    f: Callable[..., torch.Tensor], args: Sequence[torch.Tensor], wrt: Sequence[int], method: str
) -> dict[tuple[int, int], torch.Tensor]:
    """The Hessian blocks of a single-element output, keyed by (i, j) positions.

    Args:
        method: ``forward`` (forward-over-reverse) or ``reverse`` (reverse-over-reverse).

    Returns:
        (i, j) → tensor of shape ``args[i].shape + args[j].shape``.
    """
    wrt = tuple(wrt)
    outer = torch.func.jacrev if method == "reverse" else torch.func.jacfwd
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*performance drop.*")
        nested = outer(torch.func.jacrev(_scalar(f), argnums=wrt), argnums=wrt)(*args)
    return {(i, j): nested[a][b] for a, i in enumerate(wrt) for b, j in enumerate(wrt)}


def hvp(
    f: Callable[..., torch.Tensor],
    args: Sequence[torch.Tensor],
    wrt: Sequence[int],
    tangents: Sequence[torch.Tensor],
) -> tuple[torch.Tensor, ...]:
    """H·u for each ``wrt`` input without building H: forward mode over the reverse-mode gradient."""
    wrt = tuple(wrt)

    def gradient(*inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.func.grad(_scalar(f), argnums=wrt)(*inputs)

    _, out = torch.func.jvp(gradient, tuple(args), _zero_tangents(args, wrt, tangents))
    return tuple(out)


FD_RELATIVE_STEP = (2.0 ** -52) ** 0.2
"""eps^(1/5) ≈ 7.4e-4: with Richardson's O(h⁴) truncation and rounding error ~eps/h, the best step."""


def fd_step(value: float) -> float:
    """The central-difference step for an input element: FD_RELATIVE_STEP · |x|, or · 1 at x = 0.

    Scaled to the element, so that the steps stay small beside it: 1/x at x = 1e-7 takes steps
    of 7e-11, where a fixed 1e-3 would jump over the pole at 0. At x = 0 there is no scale to
    follow, and the step is FD_RELATIVE_STEP.
    """
    return FD_RELATIVE_STEP * (abs(value) if value != 0 else 1.0)


def finite_differences(
    f: Callable[..., torch.Tensor], args: Sequence[torch.Tensor], wrt: Sequence[int]
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Central differences with Richardson extrapolation, in float64, and their error estimates.

    For each input element, D(h) = (f(x + h e) - f(x - h e)) / 2h has error O(h²); combining two
    steps, R(h) = (4 D(h/2) - D(h)) / 3, cancels the h² term. The result is R(h/2), from the
    steps h, h/2 and h/4, where h is ``fd_step(x)``.

    The error estimate bounds both kinds of error: |R(h/2) - R(h)| (the truncation error left,
    which it overestimates: R(h)'s is about 16 times R(h/2)'s) plus the rounding error of the
    differences, (4 ρ(h/4) + ρ(h/2)) / 3 with ρ(s) = eps · (|f(x + s e)| + |f(x - s e)|) / 2s, which
    dominates when f is large compared with its change over the step.

    Returns:
        (Jacobian blocks, error-estimate blocks), each shaped ``output.shape + args[i].shape``.
    """
    args = tuple(a.detach().to(torch.float64) for a in args)
    output_shape = f(*args).shape
    eps = torch.finfo(torch.float64).eps
    blocks, errors = [], []
    for i in wrt:
        x = args[i]
        flat = x.reshape(-1)
        block = torch.empty(output_shape + (flat.numel(),), dtype=torch.float64, device=x.device)
        error = torch.empty_like(block)
        for k in range(flat.numel()):
            step = fd_step(float(flat[k]))

            def central(h: float) -> tuple[torch.Tensor, torch.Tensor]:
                plus, minus = flat.clone(), flat.clone()
                plus[k] += h
                minus[k] -= h
                shifted = lambda value: tuple(value.reshape(x.shape) if j == i else a for j, a in enumerate(args))
                high, low = f(*shifted(plus)), f(*shifted(minus))
                width = plus[k] - minus[k]  # the step as the numbers hold it, not as intended
                return (high - low) / width, eps * (high.abs() + low.abs()) / width

            (d1, _), (d2, rounding2), (d4, rounding4) = central(step), central(step / 2), central(step / 4)
            coarse, fine = (4 * d2 - d1) / 3, (4 * d4 - d2) / 3
            block[..., k] = fine
            error[..., k] = (fine - coarse).abs() + (4 * rounding4 + rounding2) / 3
        blocks.append(block.reshape(output_shape + x.shape))
        errors.append(error.reshape(output_shape + x.shape))
    return tuple(blocks), tuple(errors)
