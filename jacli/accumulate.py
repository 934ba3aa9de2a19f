"""Gradient accumulation: ``y.backward(v)`` called again and again, and ``x.grad`` after each call.

PyTorch's autograd tutorial shows it for ``(x+1)**2`` at ``x = eye``: the first call leaves vᵀJ in
``x.grad`` (4 on the diagonal, 2 elsewhere with v = ones), the second adds it again (8 and 4),
and after ``x.grad.zero_()`` a call leaves vᵀJ alone again. ``compute_accumulation`` runs exactly
that (``jacli.engine.teaching``) and keeps each ``x.grad``.

Example:
    >>> result = compute_accumulation("(x+1)**2", {"x": "eye:2"}, "ones", repeat=3, zero_grad_after=2)
    >>> [call.grads["x"][0].tolist() for call in result.calls]
    [[4.0, 2.0], [8.0, 4.0], [4.0, 2.0]]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from jacli import teaching
from jacli.engine.methods import VJPMethod
from jacli.errors import InputError
from jacli.problem import Inputs, InputValue, prepare, report_nonfinite
from jacli.result import VJPResult, output_symbol


@dataclass
class AccumulationResult:
    """Each call's ``x.grad`` (a ``VJPResult`` apiece, method ``backward``), and after which calls
    the gradients were zeroed."""

    command = "vjp"
    calls: list[VJPResult] = field(default_factory=list)
    zeroed: list[bool] = field(default_factory=list)
    zero_grad_after: int | None = None

    @property
    def problem(self) -> Any:
        return self.calls[0].problem

    def since_zeroing(self) -> list[int]:
        """For each call, how many calls' gradients ``x.grad`` holds (1, 2, … back to 1 after zeroing)."""
        counts, count = [], 0
        for zeroed in [False, *self.zeroed[:-1]]:
            count = 1 if zeroed else count + 1
            counts.append(count)
        return counts

    # -- views -------------------------------------------------------------------------------

    def _title(self, index: int, held: int) -> str:
        y = output_symbol(self.problem.inputs)
        again = " again" if index else ""
        grads = ", ".join(f"{name}.grad" for name in self.problem.wrt)
        if held == 1:
            return f"call {index + 1}: {y}.backward(v){again}  →  {grads} = vᵀ·J"
        return f"call {index + 1}: {y}.backward(v){again}  →  {grads} = {held}·vᵀ·J (each call adds vᵀ·J to .grad)"

    def _zeroing(self) -> str:
        return "then " + "; ".join(f"{name}.grad.zero_()" for name in self.problem.wrt)

    def print_pretty(self, console: Any, precision: int | None = None) -> None:
        from rich.table import Table
        from rich.text import Text

        first = self.calls[0]
        digits = teaching.PRETTY_DIGITS if precision is None else precision
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold cyan", justify="right")
        grid.add_column(overflow="fold")
        grid.add_row("vjp", Text(first.expression, style="bold"))
        for name, tensor in first.inputs.items():
            grid.add_row("input", Text(f"{name}: shape {teaching.shape_text(tensor.shape)}"))
        y = output_symbol(first.inputs)
        grid.add_row("output", Text(f"{y}: shape {teaching.shape_text(first.output.shape)}"))
        grid.add_row("v", Text(f"shape {teaching.shape_text(first.v.shape)} (like the output)"))
        every = f", {self._zeroing()[5:]} after every {self.zero_grad_after}" if self.zero_grad_after else ""
        grid.add_row("method", Text(f"{y}.backward(v, retain_graph=True) {len(self.calls)} times{every}"))
        teaching.print_unpadded(console, grid)
        for index, (call, held, zeroed) in enumerate(zip(self.calls, self.since_zeroing(), self.zeroed)):
            teaching.print_unpadded(console)
            teaching.print_unpadded(console, Text(self._title(index, held), style="bold"))
            for name, grad in call.grads.items():
                if len(call.grads) > 1:
                    teaching.print_unpadded(console, Text(f"{name}.grad"))
                teaching.print_unpadded(console, teaching.pretty_tensor(grad, digits))
            if zeroed:
                teaching.print_unpadded(console, Text(self._zeroing(), style="bold yellow"))

    def text(self, chosen: str, precision: int | None = None) -> str:
        return "".join(self._pieces(chosen, precision))

    def _pieces(self, chosen: str, precision: int | None) -> Iterator[str]:
        if chosen == "json":
            yield json.dumps([self._json(index) for index in range(len(self.calls))], allow_nan=False) + "\n"
            return
        if chosen != "plain":
            raise teaching.refuse_format("`repeat`'s list of results", chosen, "pretty, plain or json")
        for index, (call, held, zeroed) in enumerate(zip(self.calls, self.since_zeroing(), self.zeroed)):
            yield f"# {self._title(index, held)}\n"
            for name, grad in call.grads.items():
                yield from teaching.plain_tensor(name, grad, precision)
            if zeroed:
                yield f"# {self._zeroing()}\n"

    def _json(self, index: int) -> dict[str, Any]:
        call = self.calls[index]
        return {
            "command": "vjp", "expression": call.expression, "method": "backward",
            "call": index + 1, "calls_in_grad": self.since_zeroing()[index], "zeroed_after": self.zeroed[index],
            "device": call.device, "dtype": call.dtype, "seed": call.problem.seed,
            "inputs": {name: {"spec": call.problem.given.get(name), **teaching.json_tensor(t)}
                       for name, t in call.inputs.items()},
            "v": teaching.json_tensor(call.v),
            "output": teaching.json_tensor(call.output),
            "result": {name: teaching.json_tensor(grad) for name, grad in call.grads.items()},
        }


def compute_accumulation(
    expr: str,
    inputs: Inputs,
    v: InputValue,
    *,
    repeat: int,
    zero_grad_after: int | None = None,
    wrt: Sequence[str] | None = None,
    method: str = "backward",
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    untrusted: bool = False,
) -> AccumulationResult:
    """``y.backward(v)`` ``repeat`` times on one graph, ``x.grad`` read after each call.

    Args:
        repeat: how many calls (at least 1).
        zero_grad_after: zero ``x.grad`` after every this many calls; None: never.
        method: ``backward`` (or ``auto``): only ``y.backward`` accumulates; ``grad``
            (torch.autograd.grad) returns fresh gradients and is refused.
    """
    from jacli import inputs as specs

    chosen = VJPMethod.parse(method)
    if chosen is VJPMethod.grad:
        raise InputError(
            "`repeat` shows how x.grad accumulates over calls of y.backward(v), which `method` grad "
            "(torch.autograd.grad, a fresh gradient each call) never does; use `method` backward",
            param="repeat", usage=True,
        )
    if not isinstance(repeat, int) or repeat < 1:
        raise InputError(f"`repeat` {repeat!r} is not a number of calls; give 1 or more, e.g. 3", param="repeat")
    if zero_grad_after is not None and (not isinstance(zero_grad_after, int) or zero_grad_after < 1):
        raise InputError(f"`zero_grad_after` {zero_grad_after!r} is not a number of calls; give 1 or more, "
                         "e.g. 2", param="zero_grad_after")
    v_spec = specs.parse_spec(specs.unnamed_v(v), for_v=True) if isinstance(v, str) else v
    problem = prepare(expr, inputs, wrt=wrt, device=device, dtype=dtype, seed=seed, max_memory=max_memory,
                      untrusted=untrusted, reads={"v": v_spec})
    v_tensor = problem.make_v(v_spec)
    from jacli.engine.teaching import backward_repeatedly

    output, calls = backward_repeatedly(problem.compiled.function, problem.args, problem.wrt_positions, v_tensor,
                                        repeat, zero_grad_after)
    report_nonfinite(output, "the output")
    results = [VJPResult(problem, "backward", output, grads=dict(zip(problem.wrt, grads)), v=v_tensor)
               for grads, _ in calls]
    return AccumulationResult(results, [zeroed for _, zeroed in calls], zero_grad_after)


__all__ = ["AccumulationResult", "compute_accumulation"]
