"""An evaluation trace: every node's value, tangent (forward mode) and adjoint (reverse mode).

The formula is given as a list of steps, each a small function of earlier values (see
``jacli.trace``, which cuts the formula's tree into them). The forward pass runs them on dual
tensors (``torch.autograd.forward_ad``): each value carries its tangent, the directional derivative
along the input direction. The reverse pass runs them again with ``requires_grad``, keeps every
intermediate's ``.grad`` (``retain_grad``) and calls ``y.backward(seed)``: each node's ``.grad`` is
its adjoint, ∂⟨seed, y⟩/∂node. These are the two columns of Baydin et al.'s evaluation-trace
tables, from torch itself.

Example:
    >>> import torch
    >>> steps = [(lambda a: a[0] + 1, (0,)), (lambda a: a[0] ** 2, (1,))]
    >>> t = evaluate([torch.tensor(2.0)], steps, [torch.tensor(1.0)], torch.tensor(1.0))
    >>> [float(v) for v in t.values], [float(v) for v in t.tangents], [float(v) for v in t.adjoints]
    ([2.0, 3.0, 9.0], [1.0, 1.0, 6.0], [6.0, 6.0, 1.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

Step = tuple[Callable[[tuple], Any], tuple[int, ...]]
"""One node: a function of its children's values, and the children's positions in the trace."""


@dataclass
class Evaluated:
    """Each node's value, tangent and adjoint, in trace order (the inputs first, the output last)."""

    values: list[torch.Tensor]
    tangents: list[torch.Tensor]
    adjoints: list[torch.Tensor]


def evaluate(
    inputs: Sequence[torch.Tensor], steps: Sequence[Step], tangents: Sequence[torch.Tensor], seed: torch.Tensor
) -> Evaluated:
    """Run ``steps`` on ``inputs`` forward with ``tangents`` and backward from ``seed``.

    Args:
        inputs: the input tensors (the trace's first nodes).
        steps: the other nodes, each after its children; the last one is the output.
        tangents: one direction per input, shaped like it (zeros for an input that stays still).
        seed: the output's adjoint, shaped like the output (``v`` of ``y.backward(v)``).
    """
    import torch.autograd.forward_ad as fwAD

    like = inputs[0]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x, t.to(dtype=x.dtype, device=x.device)) for x, t in zip(inputs, tangents)]
        for local, children in steps:
            duals.append(_tensor(local(tuple(duals[c] for c in children)), like))
        values, found = [], []
        for dual in duals:
            primal, tangent = fwAD.unpack_dual(dual)
            values.append(primal.detach().clone())
            found.append(tangent.detach().clone() if tangent is not None else torch.zeros_like(primal))

    with torch.enable_grad():
        leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
        nodes: list[torch.Tensor] = list(leaves)
        for local, children in steps:
            value = _tensor(local(tuple(nodes[c] for c in children)), like)
            if value.requires_grad:
                value.retain_grad()
            nodes.append(value)
        output = nodes[-1]
        if output.requires_grad:
            output.backward(seed.to(dtype=output.dtype, device=output.device).reshape(output.shape))
    adjoints = [node.grad.detach().clone() if node.grad is not None else torch.zeros_like(node.detach())
                for node in nodes]
    if not output.requires_grad:  # a constant formula: only the output has an adjoint, the seed
        adjoints[-1] = seed.reshape(output.shape).to(dtype=output.dtype)
    return Evaluated(values, found, adjoints)


def _tensor(value: Any, like: torch.Tensor) -> torch.Tensor:
    """A constant node's Python number as a tensor of the inputs' dtype and device."""
    if isinstance(value, torch.Tensor):
        return value
    return torch.tensor(value, dtype=like.dtype, device=like.device)
