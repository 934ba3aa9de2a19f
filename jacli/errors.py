"""The errors jacli raises for things a user got wrong.

Every message names the bad value and says what to do instead. The library speaks Python: a
message names a parameter in backticks (`` `wrt` ``, `` `max_memory` ``), and ``param`` says
which one was wrong; the CLI prints each backticked parameter as its flag (``--wrt``,
``--max-memory``), see ``flagged``. The CLI prints ``Error: <message>`` on stderr and exits 1
(2 for parameters that do not go together, ``usage``);
anything that is not a ``JacliError`` is a bug in jacli and keeps its traceback.

Example:
    >>> error = InputError("`wrt` 'z' is not a variable of the expression", param="wrt")
    >>> str(error), flagged(str(error), {"wrt": "--wrt"})
    ("`wrt` 'z' is not a variable of the expression", "--wrt 'z' is not a variable of the expression")
"""

from __future__ import annotations

import re
from typing import Mapping

PARAMETER = re.compile(r"`([a-z_]+)`")
"""How a message names a parameter: its Python name in backticks."""


def flagged(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with each backticked parameter that ``flags`` knows written as its flag."""
    return PARAMETER.sub(lambda match: flags.get(match.group(1), match.group(0)), message)


class JacliError(Exception):
    """Base class: a problem with what the user asked for, not a bug in jacli.

    Args:
        message: what is wrong and what to do, in the library's terms (parameter names).
        param: the parameter that was wrong (``"wrt"``, ``"v"``, ``"inputs"``...), when one was.
        cli_message: the same advice for the command line, where it differs by more than the
            flags' names (a whole command to run instead of a function to call).
        usage: the parameters given do not go together (``method`` rows with ``batch_axis``): on
            the command line that is a usage error, exit 2, like any other clash of options.
    """

    def __init__(self, message: str, *, param: str | None = None, cli_message: str | None = None,
                 usage: bool = False):
        super().__init__(message)
        self.param = param
        self.cli_message = cli_message
        self.usage = usage


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
