"""Autograd as a learner meets it: ``y.backward(v)`` called again and again on leaf tensors.

Unlike ``autodiff`` (which returns fresh gradients each call), this keeps torch's own state:
``x.grad`` is a buffer that each ``backward`` adds to until someone zeroes it.

Example:
    >>> x = torch.eye(2, dtype=torch.float64)
    >>> _, calls = backward_repeatedly(lambda x: (x + 1) ** 2, (x,), (0,), torch.ones(2, 2, dtype=torch.float64), 2)
    >>> [grads[0][0, 0].item() for grads, _ in calls]
    [4.0, 8.0]
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

Function = Callable[..., torch.Tensor]


def backward_repeatedly(
    f: Function,
    args: Sequence[torch.Tensor],
    wrt: Sequence[int],
    v: torch.Tensor,
    repeat: int,
    zero_grad_after: int | None = None,
) -> tuple[torch.Tensor, list[tuple[tuple[torch.Tensor, ...], bool]]]:
    """Call ``y.backward(v)`` ``repeat`` times on one graph and read each ``x.grad`` after each call.

    Args:
        wrt: the positions of the leaves that require grad (the others are constants).
        zero_grad_after: zero every ``x.grad`` after every this many calls (``x.grad.zero_()``,
            what ``optimizer.zero_grad()`` does between steps); None never zeroes.

    Returns:
        ``(output, calls)``: for each call, a copy of each ``wrt`` leaf's ``.grad`` right after
        it, and whether the gradients were zeroed after it.
    """
    leaves = [a.detach().requires_grad_(i in wrt) for i, a in enumerate(args)]
    targets = [leaves[i] for i in wrt]
    y = f(*leaves)
    calls = []
    for call in range(1, repeat + 1):
        if y.requires_grad:
            y.backward(v, retain_graph=call < repeat)  # the graph is walked again by the next call
        grads = tuple(t.grad.clone() if t.grad is not None else torch.zeros_like(t) for t in targets)
        zeroed = zero_grad_after is not None and call % zero_grad_after == 0 and call < repeat
        if zeroed:
            for target in targets:
                if target.grad is not None:
                    target.grad.zero_()
        calls.append((grads, zeroed))
    return y.detach(), calls
