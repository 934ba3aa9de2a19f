"""Input specs: text such as ``"eye:5"``, ``"1,2,3"`` or ``"@x.npy"`` → tensors.

Two steps, so that bad specs fail before torch is imported:

1. ``parse_spec(text)`` checks the text and returns a small ``Spec`` (``spec``: pure Python);
2. ``materialize(spec, ...)`` makes the tensor (``build``; ``files`` reads ``@file`` and ``@-``).

Importing this package imports neither torch nor numpy.

Example:
    >>> from jacli import inputs
    >>> inputs.materialize(inputs.parse_spec("eye:2"), name="x", dtype=None, device="cpu")
    tensor([[1., 0.],
            [0., 1.]])
"""

from jacli.inputs.build import (
    check_python_number,
    check_python_numbers,
    fit_to_output,
    materialize,
    seed_for,
)
from jacli.inputs.files import check_dense, check_single_stdin, read_file
from jacli.inputs.spec import (
    CONSTRUCTORS,
    FILE_SUFFIXES,
    MAX_AXES,
    MAX_NESTING,
    OUTPUT_SHAPED,
    Constructor,
    File,
    Literal,
    OneHot,
    Spec,
    check_spec_budget,
    check_wrt,
    label,
    parse_input_option,
    parse_spec,
    shorten,
    unnamed_v,
)

__all__ = [
    "CONSTRUCTORS", "FILE_SUFFIXES", "MAX_AXES", "MAX_NESTING", "OUTPUT_SHAPED",
    "Constructor", "File", "Literal", "OneHot", "Spec",
    "parse_input_option", "parse_spec", "unnamed_v", "check_spec_budget", "check_wrt", "label", "shorten",
    "materialize", "seed_for", "fit_to_output", "check_dense", "check_python_number", "check_python_numbers",
    "read_file", "check_single_stdin",
]
