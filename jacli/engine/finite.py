"""Central finite differences with Richardson extrapolation: the reference that needs no autograd.

``check`` compares every method with these, and excuses a column whose steps cross a kink; it
asks ``shifts`` which points these differences evaluate, so the two cannot drift apart.

Example:
    >>> x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> blocks, errors = finite_differences(lambda x: x**3, (x,), (0,))
    >>> torch.allclose(blocks[0], torch.diag(3 * x**2), atol=1e-9)
    True
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

FD_RELATIVE_STEP = (2.0 ** -52) ** 0.2
"""eps^(1/5) ≈ 7.4e-4: with Richardson's O(h⁴) truncation and rounding error ~eps/h, the best step."""

STEP_FRACTIONS = (1.0, 0.5, 0.25)
"""The differences use the steps h, h/2 and h/4 (see ``finite_differences``)."""


def fd_step(value: float) -> float:
    """The central-difference step for an input element: FD_RELATIVE_STEP · |x|, or · 1 at x = 0.

    Scaled to the element, so that the steps stay small beside it: 1/x at x = 1e-7 takes steps
    of 7e-11, where a fixed 1e-3 would jump over the pole at 0. At x = 0 there is no scale to
    follow, and the step is FD_RELATIVE_STEP.
    """
    return FD_RELATIVE_STEP * (abs(value) if value != 0 else 1.0)


def shifts(value: float) -> tuple[float, ...]:
    """Every signed shift the differences add to an input element of this value."""
    h = fd_step(value)
    return tuple(sign * fraction * h for fraction in STEP_FRACTIONS for sign in (1.0, -1.0))


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

            (d1, _), (d2, rounding2), (d4, rounding4) = (central(step * s) for s in STEP_FRACTIONS)
            coarse, fine = (4 * d2 - d1) / 3, (4 * d4 - d2) / 3
            block[..., k] = fine
            error[..., k] = (fine - coarse).abs() + (4 * rounding4 + rounding2) / 3
        blocks.append(block.reshape(output_shape + x.shape))
        errors.append(error.reshape(output_shape + x.shape))
    return tuple(blocks), tuple(errors)
