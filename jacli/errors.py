"""The errors jacli raises for things a user got wrong.

Every message names the bad value and says what to do instead. The CLI prints
``Error: <message>`` on stderr and exits 1; anything that is not a ``JacliError``
is a bug in jacli and keeps its traceback.
"""

from __future__ import annotations


class JacliError(Exception):
    """Base class: a problem with what the user asked for, not a bug in jacli."""


class ExpressionError(JacliError):
    """The expression text is not valid jacli syntax or uses something unknown."""


class InputError(JacliError):
    """An --input or --v spec is malformed, unreadable or does not fit the expression."""


class ShapeError(JacliError):
    """Tensors whose shapes do not fit the operation or the output."""


class DeviceError(JacliError):
    """A device or dtype that this machine or torch build cannot provide."""


class ResourceError(JacliError):
    """A request that would exceed a memory or size limit."""


class JacliWarning(UserWarning):
    """Something suspicious but allowed, such as NaN in an input; the CLI prints it on stderr."""
