"""The methods each command may run, and the Jacobian layouts, as enums: the one list the
library and the CLI share.

Pure Python (no torch), so the CLI can build its choices without importing anything heavy.
An unknown name is an ``InputError`` naming the parameter (``method``, ``layout``) and the choices.

Example:
    >>> JacobianMethod.parse("reverse")
    <JacobianMethod.reverse: 'reverse'>
    >>> JacobianMethod.parse("revers")
    Traceback (most recent call last):
    ...
    jacli.errors.InputError: method 'revers' is not a Jacobian method; did you mean reverse? Use auto, reverse, forward, rows, compressed, structured or symbolic
"""

from __future__ import annotations

import difflib
from enum import Enum
from typing import TypeVar

from jacli.errors import InputError

M = TypeVar("M", bound="Method")


class Method(str, Enum):
    """Base of the method (and layout) enums: ``str`` values, parsed with a helpful error."""

    @classmethod
    def parse(cls: type[M], name: "str | Method") -> M:
        """The member called ``name``; an ``InputError`` (param ``method``, or ``layout``) for anything else."""
        if isinstance(name, cls):
            return name
        member = cls._member_map_.get(name) if isinstance(name, str) else None  # (what cls[name] reads)
        if member is not None:
            return member
        names = list(cls.__members__)
        close = difflib.get_close_matches(str(name), names, n=1) if isinstance(name, str) else []
        hint = f"; did you mean {close[0]}?" if close else ";"
        param = _PARAM.get(cls.__name__, "method")
        raise InputError(
            f"{param} {name!r} is not a {_KIND[cls.__name__]} {param}{hint} Use {', '.join(names[:-1])} or {names[-1]}",
            param=param,
        )


class JacobianMethod(Method):
    auto = "auto"
    reverse = "reverse"
    forward = "forward"
    rows = "rows"
    compressed = "compressed"
    structured = "structured"
    symbolic = "symbolic"


class VJPMethod(Method):
    auto = "auto"
    grad = "grad"
    backward = "backward"


class GradMethod(Method):
    auto = "auto"
    reverse = "reverse"
    forward = "forward"
    symbolic = "symbolic"


class HessianMethod(Method):
    auto = "auto"
    forward = "forward"
    reverse = "reverse"
    symbolic = "symbolic"


class Layout(Method):
    """How a Jacobian block is stored: every entry (dense), only ∂y[i...]/∂x[i...] (diagonal), or
    the nonzeros as COO (sparse); auto picks one."""

    auto = "auto"
    dense = "dense"
    diagonal = "diagonal"
    sparse = "sparse"


# NOTE [small problems]: torch.func.jacrev and torch.func.vjp import torch._dynamo on their first
# call (0.7-1.7 s, more than the rest of a CLI call together), and torch.func.jvp/jacfwd load
# decompositions through torch.jit.script (0.2 s); the row loop (one torch.autograd.grad per
# output element) needs neither. Warm, a row costs about 0.07 ms on the 2-core machine, so up to
# SMALL_OUTPUT elements the loop costs at most a few milliseconds more than a vectorized pass, while
# a fresh process (a shell loop of `jacli jacobian` calls) saves the import every time. A
# diagonal Jacobian keeps its single VJP (plain torch.autograd.grad as well).
SMALL_OUTPUT = 32
"""``auto`` computes a Jacobian with at most this many output elements with the row loop."""


def small_problem_method(chosen: JacobianMethod, output_elements: int, diagonal: bool) -> JacobianMethod:
    """``auto``'s choice for a Jacobian with ``output_elements`` outputs: the row loop when that is
    small (NOTE [small problems]), unless every block is ``diagonal`` (one VJP does it all).

    Example:
        >>> small_problem_method(JacobianMethod.reverse, 2, diagonal=False)
        <JacobianMethod.rows: 'rows'>
        >>> small_problem_method(JacobianMethod.compressed, 2, diagonal=True)
        <JacobianMethod.compressed: 'compressed'>
    """
    if output_elements <= SMALL_OUTPUT and not diagonal:
        return JacobianMethod.rows
    return chosen


_KIND = {"JacobianMethod": "Jacobian", "VJPMethod": "vjp", "GradMethod": "gradient", "HessianMethod": "Hessian",
         "Layout": "Jacobian"}
_PARAM = {"Layout": "layout"}
