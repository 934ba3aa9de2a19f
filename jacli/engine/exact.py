"""Exact derivatives with SymPy.

jacli's variables are tensors, SymPy's are scalars. To differentiate exactly, each variable of
shape S becomes an array of scalar symbols (``x[0, 1]``...), the expression is *expanded* over
those arrays — numpy object arrays of SymPy expressions, so broadcasting, indexing, reshaping and
``@`` behave exactly as in torch — and every output entry is differentiated by every input entry.
A variable of shape ``()`` stays the plain symbol ``x``, so polar coordinates read
``[[cos(t), -r⋅sin(t)], [sin(t), r⋅cos(t)]]``.

The exact entries are evaluated on torch through the same compiler as the expression itself.

Example:
    >>> from jacli.parse import parse
    >>> jac = jacobian(parse("[r*cos(t), r*sin(t)]").tree, {"r": (), "t": ()}, ["r", "t"])
    >>> jac["t"].tolist()
    [-r*sin(t), r*cos(t)]
"""

from __future__ import annotations

import contextlib
import itertools
import math
import signal
import threading
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import sympy as sp

from jacli import nodes
from jacli.errors import ResourceError, ShapeError
from jacli.functions import BY_NODE, entrywise, symbolic_array

SECONDS = 20.0
"""The exact method's time limit: SymPy's work has no size model that bounds it (a product of 100
scalars, x@x@x@x@x@x on 5x5), so it runs under a deadline and is refused when it passes it."""

MAX_INPUT_ELEMENTS = 400
"""Symbolic differentiation handles at most this many differentiated input elements in all (the
exact derivative's columns); inputs held constant (``const``) do not count here."""

MAX_ENTRIES = 10_000
"""... and Jacobians of at most this many entries (SymPy works entry by entry)."""

MAX_CONSTANT_ELEMENTS = 5_000
"""... and at most this many elements of inputs held constant: each is a symbol of the expansion,
so the expression SymPy differentiates grows with them (a sum over 1,000 data points is a sum
of 1,000 terms)."""

MAX_WORK = MAX_INPUT_ELEMENTS * MAX_INPUT_ELEMENTS
"""... and at most this many (input element, differentiated element) pairs: SymPy walks an
expression about as big as the inputs it reads once per differentiated element. 400 x 400 is the
largest problem the limits allowed when constants counted as inputs."""

MAX_INTERMEDIATE = 100_000
"""... and intermediate results of at most this many elements (a constant such as ones(10**6))."""

Symbolic = np.ndarray
"""A numpy object array of SymPy expressions (0-dimensional for a scalar)."""


def element_symbol(name: str, index: tuple[int, ...]) -> sp.Symbol:
    """The scalar symbol for one element: ``x`` for a scalar variable, else ``x[i, j]``."""
    if not index:
        return sp.Symbol(name, real=True)
    return sp.Symbol(f"{name}[{', '.join(map(str, index))}]", real=True)


def element_symbols(name: str, shape: tuple[int, ...]) -> Symbolic:
    """An object array of shape ``shape`` holding each element's symbol."""
    array = np.empty(shape, dtype=object)
    for index in itertools.product(*(range(n) for n in shape)):
        array[index] = element_symbol(name, index)
    return array


@contextlib.contextmanager
def deadline(seconds: float | None = None) -> Iterator[None]:
    """Run the block for at most ``seconds`` (default ``SECONDS``); past that, a ResourceError.

    SIGALRM interrupts SymPy between two Python steps. Where no alarm can be set (Windows, a
    thread other than the main one), the block runs without a deadline.
    """
    seconds = SECONDS if seconds is None else seconds
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    finished = False

    def expired(signum: int, frame: Any) -> None:
        if not finished:
            raise _Expired

    previous = signal.signal(signal.SIGALRM, expired)
    # The alarm repeats every 50 ms once due: Python ignores an exception raised inside a gc
    # callback ("Exception ignored in ..."), and SymPy would then run on; the next alarm lands.
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    try:
        yield
    except _Expired:
        finished = True
        raise ResourceError(
            f"the symbolic method took longer than its limit of {seconds:g} s (SymPy works entry by "
            "entry, and some formulas grow without bound). Use `method` reverse or forward",
            param="method",
        ) from None
    finally:
        finished = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Expired(Exception):
    """The deadline passed (caught inside ``deadline`` only)."""


def check_size(
    shapes: Mapping[str, tuple[int, ...]], output_shape: tuple[int, ...], wrt: Sequence[str], largest: int = 0
) -> None:
    """Refuse expansions too big for SymPy to finish in reasonable time (``largest``: the most
    elements of one intermediate result, such as a constant ones(10**6) inside the formula).

    What bounds the work: the exact entries (output elements x differentiated elements), and the
    expression each is read off, whose size grows with every input element, held constant or not.
    """
    differentiated = sum(math.prod(shapes[name]) for name in wrt)
    held = {name: math.prod(shape) for name, shape in shapes.items() if name not in wrt}
    constants = sum(held.values())
    entries = math.prod(output_shape) * differentiated
    if largest > MAX_INTERMEDIATE:
        raise ResourceError(
            f"the symbolic method works entry by entry and handles intermediate results of at most "
            f"{MAX_INTERMEDIATE:,} elements; this formula makes one of {largest:,}. Use `method` reverse or forward."
        )
    if differentiated > MAX_INPUT_ELEMENTS or entries > MAX_ENTRIES:
        raise ResourceError(
            f"the symbolic method works entry by entry and handles at most {MAX_INPUT_ELEMENTS} "
            f"input elements (those differentiated; data held with `const` counts apart) and {MAX_ENTRIES:,} "
            f"Jacobian entries; this has {differentiated:,} and {entries:,}. Use `method` reverse or forward for inputs this large."
        )
    if constants > MAX_CONSTANT_ELEMENTS or (constants + differentiated) * differentiated > MAX_WORK:
        named = ", ".join(f"{name} ({size:,})" for name, size in sorted(held.items(), key=lambda item: -item[1]))
        raise ResourceError(
            f"the symbolic method expands held-constant inputs of at most {MAX_CONSTANT_ELEMENTS:,} elements, "
            f"and at most {MAX_WORK:,} input elements x differentiated elements; this holds {constants:,} "
            f"constant elements ({named}) and differentiates {differentiated:,}, for {(constants + differentiated) * differentiated:,}. "
            "Use `method` reverse or forward."
        )


def expand(tree: sp.Basic, shapes: Mapping[str, tuple[int, ...]]) -> Symbolic:
    """The expression's output as an object array of scalar SymPy expressions.

    Args:
        tree: the parsed expression.
        shapes: each variable's shape.
    """
    return _Expander({name: element_symbols(name, shape) for name, shape in shapes.items()}).node(tree)


def jacobian(
    tree: sp.Basic, shapes: Mapping[str, tuple[int, ...]], wrt: Sequence[str]
) -> dict[str, Symbolic]:
    """The exact Jacobian blocks, shaped ``output.shape + input.shape``, as object arrays.

    Raises:
        ResourceError: before any expansion, when the problem is over the size limits.
    """
    from jacli.shapes import infer

    sizes = infer(tree, shapes)
    check_size(shapes, sizes.output, wrt, sizes.largest)
    output = expand(tree, shapes)
    blocks = {}
    for name in wrt:
        symbols = element_symbols(name, shapes[name])
        block = np.empty(output.shape + symbols.shape, dtype=object)
        for out_index in itertools.product(*(range(n) for n in output.shape)):
            entry = output[out_index]
            for in_index in itertools.product(*(range(n) for n in symbols.shape)):
                block[out_index + in_index] = sp.diff(entry, symbols[in_index])
        blocks[name] = block
    return blocks


def hessian(
    tree: sp.Basic, shapes: Mapping[str, tuple[int, ...]], wrt: Sequence[str]
) -> dict[tuple[str, str], Symbolic]:
    """The exact Hessian blocks of a single-element output, keyed by (a, b), shaped a.shape + b.shape."""
    from jacli.shapes import infer

    check_size(shapes, (sum(math.prod(shapes[n]) for n in wrt),), wrt, infer(tree, shapes).largest)
    output = expand(tree, shapes)
    if output.size != 1:
        raise ShapeError(f"the Hessian needs a single-element output; this one has shape {output.shape}")
    scalar = output.reshape(-1)[0]
    gradients = {name: entrywise(lambda s: sp.diff(scalar, s), element_symbols(name, shapes[name])) for name in wrt}
    blocks = {}
    for a in wrt:
        for b in wrt:
            symbols = element_symbols(b, shapes[b])
            block = np.empty(shapes[a] + shapes[b], dtype=object)
            for i in itertools.product(*(range(n) for n in shapes[a])):
                for j in itertools.product(*(range(n) for n in shapes[b])):
                    block[i + j] = sp.diff(gradients[a][i], symbols[j])
            blocks[(a, b)] = block
    return blocks


def readable(entries: Symbolic) -> Symbolic:
    """Exact entries as shown to users: the shifts that keep softmax and logsumexp stable
    (``nodes.held_max``) set to 0, which gives the same values in their textbook form."""
    return entrywise(nodes.readable, entries)


def is_elementwise(tree: sp.Basic) -> bool:
    """True when every operation applies entry by entry (arithmetic and elementwise functions)."""
    if isinstance(tree, (sp.Symbol, sp.Number, sp.NumberSymbol)):
        return True
    if isinstance(tree, (sp.Add, sp.Mul, sp.Pow)):
        return all(is_elementwise(a) for a in tree.args)
    entry = BY_NODE.get(tree.func)
    return bool(entry and entry.elementwise) and all(is_elementwise(a) for a in tree.args)


def scalar_derivative(tree: sp.Basic, name: str) -> sp.Basic:
    """d tree / d name with every variable read as a scalar: the diagonal of an elementwise Jacobian."""
    return sp.diff(tree, sp.Symbol(name, real=True))


def evaluate(
    entries: Symbolic,
    variables: Sequence[str],
    args: Sequence[Any],
    compile_scalar: Callable[[sp.Basic, Callable[[sp.Symbol], Any]], Callable[[tuple], Any]],
) -> Any:
    """Evaluate an object array of exact expressions on torch, at the given input tensors.

    Args:
        entries: exact expressions in element symbols.
        variables: the input names, in the order of ``args``.
        args: the input tensors.
        compile_scalar: compiles one scalar SymPy expression, given how to read a symbol.
    """
    import torch

    position = {name: i for i, name in enumerate(variables)}
    shapes = {name: tuple(args[i].shape) for name, i in position.items()}
    lookup: dict[sp.Symbol, Any] = {}
    for name, shape in shapes.items():
        for index in itertools.product(*(range(n) for n in shape)):
            lookup[element_symbol(name, index)] = (position[name], index)

    def read(symbol: sp.Symbol) -> Callable[[tuple], Any]:
        if symbol not in lookup:
            raise LookupError(f"bug: the exact derivative mentions {symbol}, which is no input element")
        slot, index = lookup[symbol]
        return lambda a: a[slot][index] if index else a[slot]

    like = args[0]
    flat = [_value(compile_scalar(entry, read)(tuple(args)), like) for entry in entries.reshape(-1)]
    if not flat:
        return like.new_zeros(entries.shape)
    return torch.stack(flat).reshape(entries.shape)


def _value(value: Any, like: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(dtype=like.dtype, device=like.device).reshape(())
    return torch.tensor(value, dtype=like.dtype, device=like.device)


# -- expansion ----------------------------------------------------------------------------------

class _Expander:
    """Evaluates the tree on object arrays of scalar SymPy expressions.

    Arithmetic, lists and indexing are handled here; every function call is expanded by its
    table entry's ``expand``.
    """

    def __init__(self, symbols: Mapping[str, Symbolic]):
        self.symbols = symbols

    def node(self, tree: sp.Basic) -> Symbolic:
        if isinstance(tree, sp.Symbol):
            return self.symbols[tree.name]
        if isinstance(tree, (sp.Number, sp.NumberSymbol)):
            return symbolic_array(tree)
        if isinstance(tree, nodes.Index):
            try:
                return symbolic_array(self.node(tree.args[0])[tree.key()])
            except IndexError as error:
                raise ShapeError(f"cannot evaluate {tree}: {error}") from None
        if isinstance(tree, (sp.Add, sp.Mul, sp.Pow, nodes.Components)):
            return self._arithmetic(tree, [self.node(a) for a in tree.args])
        entry = BY_NODE.get(tree.func)
        if entry is None:  # the parser builds only table functions: this is a bug
            raise TypeError(f"no table entry expands {tree.func.__name__} (in {tree})")
        operands, literals, keywords = entry.arguments(tree.args)
        args = [self.node(a) for a in operands]
        try:
            return entry.expand(*args, *literals, **keywords)
        except (ValueError, IndexError) as error:
            raise ShapeError(f"cannot evaluate {tree}: {error}") from None

    @staticmethod
    def _arithmetic(tree: sp.Basic, args: list[Symbolic]) -> Symbolic:
        if isinstance(tree, sp.Add):
            return symbolic_array(sum(args[1:], start=args[0]))
        if isinstance(tree, sp.Mul):
            result = args[0]
            for factor in args[1:]:
                result = result * factor
            return symbolic_array(result)
        if isinstance(tree, sp.Pow):
            return entrywise(lambda b, e: b**e, *args)
        return symbolic_array(np.stack(np.broadcast_arrays(*args)))
