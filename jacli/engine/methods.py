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


_KIND = {"JacobianMethod": "Jacobian", "VJPMethod": "vjp", "GradMethod": "gradient", "HessianMethod": "Hessian",
         "Layout": "Jacobian"}
_PARAM = {"Layout": "layout"}
