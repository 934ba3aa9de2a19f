"""The errors jacli raises for things a user got wrong.

Every message names the bad value and says what to do instead. The library speaks Python: a
message names parameters (``wrt``, ``v``, ``max_memory``), and ``param`` says which one was
wrong, so that the CLI can name its flag instead (``--wrt``). The CLI prints ``Error: <message>``
on stderr and exits 1; anything that is not a ``JacliError`` is a bug in jacli and keeps its
traceback.
"""

from __future__ import annotations


class JacliError(Exception):
    """Base class: a problem with what the user asked for, not a bug in jacli.

    Args:
        message: what is wrong and what to do, in the library's terms (parameter names).
        param: the parameter that was wrong (``"wrt"``, ``"v"``, ``"inputs"``...), when one was.
    """

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.param = param


class ExpressionError(JacliError):
    """The expression text is not valid jacli syntax or uses something unknown."""


class InputError(JacliError):
    """An input or v spec is malformed, unreadable or does not fit the expression."""


class ShapeError(JacliError):
    """Tensors whose shapes do not fit the operation or the output."""


class DeviceError(JacliError):
    """A device or dtype that this machine or torch build cannot provide."""


class ResourceError(JacliError):
    """A request that would exceed a memory or size limit."""


class JacliWarning(UserWarning):
    """Something suspicious but allowed, such as NaN in an input; the CLI prints it on stderr."""
