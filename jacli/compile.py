"""SymPy tree → torch function, by walking the tree with the function table.

No code is generated and nothing is ``eval``-ed: each tree node becomes a small Python closure
that calls the torch function the table names for it. The closures follow the tree's order, which
is the order the user wrote (the parser builds with ``evaluate=False``), so jacli computes
``a/b`` as a division and ``x - y`` as a subtraction, exactly as torch would on the same text.
A sub-expression written more than once (``sin(x)`` in ``sin(x)*sin(x) + sin(x)``) is one node,
computed once per call (NOTE [shared sub-expressions]).

Compilation is a pure function of the expression text and is cached.

Example:
    >>> f = compile_expression("(x+1)**2")
    >>> f(torch.tensor([1.0, 2.0]))
    tensor([4., 9.])
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import sympy as sp
import torch

from jacli import nodes, printing, shapes
from jacli.errors import ExpressionError, ResourceError, ShapeError
from jacli.functions import BY_NODE
from jacli.inputs import shorten
from jacli.parse import parse

# A compiled node: maps the positional input tensors to a tensor, or to a Python number for
# constants (torch combines those with tensors without allocating, exactly as in `x + 1`).
Node = Callable[[tuple], Any]

# Inside the compiler a node also gets the memo of the call it is part of (NOTE [shared
# sub-expressions]): ``step(args, memo)``.
_Step = Callable[[tuple, dict], Any]


@dataclass(frozen=True)
class Compiled:
    """An expression ready to run on tensors.

    Attributes:
        text: the expression as written.
        tree: its SymPy tree (what later stages read to explain or exploit structure).
        variables: the input names, in order of first appearance; the function's positional order.
        function: ``function(*tensors) -> tensor``; raw torch errors, for use inside torch.func.
        checked: the same function, but a shape mismatch raises ``ShapeError`` naming the
            sub-expression; run it once on the real inputs before differentiating.
    """

    text: str
    tree: sp.Basic
    variables: tuple[str, ...]
    function: Callable[..., torch.Tensor] = field(repr=False)
    checked: Callable[..., torch.Tensor] = field(repr=False)

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.function(*tensors)


@functools.lru_cache(maxsize=256)
def compile_expression(text: str) -> Compiled:
    """Parse and compile ``text`` (cached: the result depends on the text alone).

    Args:
        text: a jacli expression such as ``"3*a + 2*b**2 + log(c)"``.

    Returns:
        A ``Compiled`` whose function takes one tensor per variable, in ``variables`` order.
    """
    parsed = parse(text)
    read = _positional(parsed.variables)
    fast = _Compiler(read, guard=False).compile(parsed.tree)
    safe = _Compiler(read, guard=True).compile(parsed.tree)
    return Compiled(
        text=text,
        tree=parsed.tree,
        variables=parsed.variables,
        function=lambda *tensors: _as_tensor(fast(tensors), tensors),
        checked=lambda *tensors: _as_tensor(safe(tensors), tensors),
    )


def measure(text: str, *tensors: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Evaluate ``text`` and add up the bytes of every intermediate result it makes.

    Meant for shape-only ("meta") tensors, which allocate nothing: the output's shape and the
    memory autograd may keep for the backward pass, known before anything real is computed.
    """
    run = _measuring(text)
    return run(*tensors)


@functools.lru_cache(maxsize=256)
def _measuring(text: str) -> Callable[..., tuple[torch.Tensor, int]]:
    parsed = parse(text)
    sizes: list[int] = []

    def observe(value: Any, *where: Any) -> None:
        if isinstance(value, torch.Tensor):
            sizes.append(value.numel() * value.element_size())

    node = _Compiler(_positional(parsed.variables), guard=False, observe=observe).compile(parsed.tree)

    def run(*tensors: torch.Tensor) -> tuple[torch.Tensor, int]:
        sizes.clear()
        output = _as_tensor(node(tensors), tensors)
        return output, sum(sizes)

    return run


def evaluate_nodes(text: str, *tensors: torch.Tensor) -> tuple[torch.Tensor, list[tuple[Any, sp.Basic, int | None]]]:
    """Evaluate ``text`` as the compiled function does, and list every value it computes with
    the subtree it belongs to: ``(value, tree, terms)``, where ``terms`` counts the operands a sum
    or product has combined so far (its partial results: ``a + b`` on the way to ``a + b + c``),
    None for a whole node. What ``jacli graph`` reads to name each ``grad_fn``."""
    parsed = parse(text)
    seen: list[tuple[Any, sp.Basic, int | None]] = []
    node = _Compiler(_positional(parsed.variables), guard=True,
                     observe=lambda value, tree, terms=None: seen.append((value, tree, terms))).compile(parsed.tree)
    return _as_tensor(node(tuple(tensors)), tuple(tensors)), seen


def compile_tree(tree: sp.Basic, read_symbol: Callable[[sp.Symbol], Node]) -> Node:
    """Compile any SymPy tree whose symbols ``read_symbol`` knows how to fetch from the inputs.

    Used for trees jacli builds itself: exact derivatives (whose symbols are input *elements*
    such as ``x[0, 1]``) and sub-expressions. The returned node may give a Python number.

    Raises:
        ExpressionError: the tree uses a function outside jacli's table. SymPy writes some exact
            derivatives with functions jacli does not evaluate (``re``, ``im``, ``atan2``, ``Piecewise``
            where it cannot prove an argument real); that is a limit of the exact method, not a bug.
    """
    return _Compiler(read_symbol, guard=False, foreign=True).compile(tree)


def _positional(variables: tuple[str, ...]) -> Callable[[sp.Symbol], Node]:
    """Symbols read as whole inputs, by position in ``variables``."""
    position = {name: i for i, name in enumerate(variables)}

    def read(symbol: sp.Symbol) -> Node:
        index = position[symbol.name]
        return lambda args: args[index]

    return read


def _as_tensor(value: Any, args: tuple) -> torch.Tensor:
    """A Python number as a tensor with the inputs' dtype and device; tensors pass through."""
    if isinstance(value, torch.Tensor):
        return value
    if not args:  # an expression without variables, such as "pi/2": jacli's default dtype
        return torch.tensor(value, dtype=torch.float64)
    like = args[0]
    return torch.tensor(value, dtype=like.dtype, device=like.device)


# NOTE [shared sub-expressions]
# Structurally equal subtrees (the three sin(x) of sin(x)*sin(x) + sin(x): SymPy trees compare
# and hash by structure) compile to one ``_Shared`` node. A shared node used in more than one
# place keeps its value in the memo of the current call, so it is computed once per call: the
# memo is a dict made afresh by each top-level call and dropped when that call returns, so no
# tensor outlives the call, and under vmap, jacrev or jacfwd each call memoizes its own wrapped
# tensors. A node used in one place skips the memo, so its value is freed as soon as its parent
# has used it. The values are those torch computes for the text, bit for bit; a gradient through
# a shared node is summed there first, as torch does for a variable used twice.
class _Shared:
    """A compiled sub-expression, and how many places in the tree use it."""

    __slots__ = ("compute", "uses")

    def __init__(self, compute: _Step):
        self.compute = compute
        self.uses = 1

    def __call__(self, args: tuple, memo: dict) -> Any:
        if self.uses == 1:
            return self.compute(args, memo)
        value = memo.get(self, _MISSING)
        if value is _MISSING:
            value = memo[self] = self.compute(args, memo)
        return value


_MISSING = object()


class _Compiler:
    """Turns one SymPy tree into a ``Node``, recursively, one ``_Shared`` per distinct subtree."""

    def __init__(
        self, read_symbol: Callable[[sp.Symbol], Node], guard: bool,
        observe: Callable[..., None] | None = None, foreign: bool = False,
    ):
        self.foreign = foreign  # the tree comes from SymPy, not the parser: it may hold anything
        self.read_symbol = read_symbol
        self.guard = guard
        # sees every value a node computes, with its subtree: ``observe(value, tree[, terms])``
        # (see ``measure`` and ``evaluate_nodes``)
        self.observe = observe
        self.built: dict[sp.Basic, _Shared] = {}

    def compile(self, tree: sp.Basic) -> Node:
        """The whole tree as a ``Node``: each call gets a fresh memo."""
        root = self.node(tree)
        return lambda args: root(args, {})

    def node(self, tree: sp.Basic) -> _Step:
        if isinstance(tree, sp.Symbol):
            read = self.read_symbol(tree)
            return lambda args, memo: read(args)
        if isinstance(tree, (sp.Number, sp.NumberSymbol)):
            value = nodes.number(tree)
            return lambda args, memo: value
        shared = self.built.get(tree)
        if shared is not None:
            shared.uses += 1
            return shared
        shared = self.built[tree] = _Shared(self._build(tree))
        return shared

    def _build(self, tree: sp.Basic) -> _Step:
        if isinstance(tree, sp.Add):
            return self._add(tree)
        if isinstance(tree, sp.Mul):
            return self._mul(tree)
        if isinstance(tree, sp.Pow):
            return self._pow(tree)
        if isinstance(tree, nodes.Components):
            return self._apply(tree, list(tree.args), _stack)
        if isinstance(tree, nodes.Index):
            key = tree.key()
            return self._apply(tree, [tree.args[0]], lambda x: x[key])
        entry = BY_NODE.get(tree.func)
        if entry is None:
            if self.foreign:
                raise ExpressionError(
                    f"the exact derivative holds {tree.func.__name__}(...) ({shorten(str(tree))}), which jacli "
                    "cannot evaluate on torch; SymPy writes it where it cannot prove an argument real. "
                    "Use `method` reverse or forward", param="method",
                )
            raise TypeError(f"bug: no table entry compiles {tree.func} (in {tree}); the parser made a node the table lacks")
        operands, literals, keywords = entry.arguments(tree.args)
        torch_fn = entry.torch
        if entry.constant:
            return self._constant(tree, torch_fn, literals)
        return self._apply(tree, operands, lambda *xs: torch_fn(*xs, *literals, **keywords))

    def _constant(self, tree: sp.Basic, make: Callable[..., Any], literals: list[Any]) -> _Step:
        """A constant tensor (arange(5)) in the inputs' dtype and on their device."""
        observe = self.observe

        def constant(args: tuple, memo: dict) -> Any:
            value = make(*literals, like=args[0] if args else None)
            if observe is not None:
                observe(value, tree)
            return value

        return constant

    def _apply(self, tree: sp.Basic, children: list[sp.Basic], fn: Callable[..., Any]) -> _Step:
        """A node that calls ``fn`` on its children's values, lifted to tensors."""
        compiled = [self.node(child) for child in children]
        observe = self.observe
        if observe is not None:

            def observed(args: tuple, memo: dict) -> Any:
                values = [_as_tensor(c(args, memo), args) for c in compiled]
                try:
                    value = fn(*values)
                except (RuntimeError, IndexError, ValueError, TypeError) as error:
                    if not self.guard:
                        raise
                    raise _shape_error(tree, children, values, error) from None
                observe(value, tree)
                return value

            return observed
        if not self.guard:
            return lambda args, memo: fn(*(_as_tensor(c(args, memo), args) for c in compiled))

        def checked(args: tuple, memo: dict) -> Any:
            values = [_as_tensor(c(args, memo), args) for c in compiled]
            try:
                return fn(*values)
            except (RuntimeError, IndexError, ValueError, TypeError) as error:
                raise _shape_error(tree, children, values, error) from None

        return checked

    def _binary(self, tree: sp.Basic, left: _Step, right: _Step, op: Callable[[Any, Any], Any]) -> _Step:
        """``op`` on two values; two plain numbers are lifted first so torch's rules apply."""
        return self._fold(tree, left, [(op, right)], [tree.args[1]])

    def _fold(
        self, tree: sp.Basic, first: _Step, steps: list[tuple[Callable[[Any, Any], Any], _Step]],
        operands: list[sp.Basic],
    ) -> _Step:
        """``first``, then each ``op`` with the next value, left to right, in one loop.

        A sum or product of many terms is one node whose closure loops (not a chain of nested
        closures, which would recurse once per term). ``operands``: the tree each step's value
        is of (``y`` for ``- y``), for error messages.
        """
        guard, observe = self.guard, self.observe

        def run(args: tuple, memo: dict) -> Any:
            a = first(args, memo)
            for terms, (op, node) in enumerate(steps, start=2):
                b = node(args, memo)
                if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
                    a = _as_tensor(a, args)
                if not guard:
                    a = op(a, b)
                    if observe is not None:
                        observe(a, tree, terms if terms <= len(steps) else None)
                    continue
                try:
                    a = op(a, b)
                except (RuntimeError, IndexError, ValueError, TypeError) as error:
                    left = tree.args[0] if terms == 2 else tree.func(*tree.args[: terms - 1], evaluate=False)
                    raise _shape_error(tree, [left, operands[terms - 2]], [a, b], error) from None
                if observe is not None:
                    observe(a, tree, terms if terms <= len(steps) else None)
            return a

        return run

    def _add(self, tree: sp.Add) -> _Step:
        first, *rest = tree.args
        negated = nodes.negated(first)
        start = self.node(first if negated is None else negated)
        if negated is not None:
            inner, observe = start, self.observe
            start = lambda args, memo: _negate(inner(args, memo), first, observe)
        steps, operands = [], []
        for term in rest:
            negated = nodes.negated(term)
            if negated is None:
                steps.append((operator.add, self.node(term)))
            else:
                steps.append((operator.sub, self.node(negated)))
            operands.append(term if negated is None else negated)
        return self._fold(tree, start, steps, operands)

    def _mul(self, tree: sp.Mul) -> _Step:
        negated = nodes.negated(tree)
        if negated is not None:
            inner, observe = self.node(negated), self.observe
            return lambda args, memo: _negate(inner(args, memo), tree, observe)
        first, *rest = tree.args
        steps, operands = [], []
        for factor in rest:
            base = nodes.reciprocal_base(factor)
            if base is None:
                steps.append((operator.mul, self.node(factor)))
            else:
                steps.append((operator.truediv, self.node(base)))
            operands.append(factor if base is None else base)
        return self._fold(tree, self.node(first), steps, operands)

    def _pow(self, tree: sp.Pow) -> _Step:
        base, exponent = tree.args
        if base == sp.E:
            return self._apply(tree, [exponent], torch.exp)
        if exponent.is_Number:
            if exponent == sp.S.Half:
                return self._apply(tree, [base], torch.sqrt)
            if exponent == -sp.S.Half:
                return self._apply(tree, [base], torch.rsqrt)
            if exponent == sp.S.NegativeOne:
                return self._apply(tree, [base], torch.reciprocal)
            power = nodes.number(exponent)
            return self._apply(tree, [base], lambda x: torch.pow(x, power))
        return self._binary(tree, self.node(base), self.node(exponent), torch.pow)


def _negate(value: Any, tree: sp.Basic, observe: Callable[..., None] | None) -> Any:
    """``-value``, seen by ``observe`` as ``tree`` (the negation the user wrote)."""
    negative = -value
    if observe is not None:
        observe(negative, tree)
    return negative


def _stack(*components: torch.Tensor) -> torch.Tensor:
    """Components broadcast to one shape, stacked along a new first axis."""
    return torch.stack(torch.broadcast_tensors(*components))


def _shape_error(
    tree: sp.Basic, operands: list[sp.Basic], values: list[Any], error: Exception
) -> ShapeError | ResourceError:
    """torch's refusal of ``tree`` on ``values`` (those of ``operands``), in jacli's words."""
    if "allocate" in str(error) or "out of memory" in str(error):
        return ResourceError(
            f"evaluating {printing.to_text(tree)} ran out of memory ({str(error).strip().splitlines()[0]}). "
            "Use smaller inputs, or an expression whose intermediate results are smaller."
        )
    parts = [tuple(v.shape) if isinstance(v, torch.Tensor) else () for v in values]
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return shapes.mismatch(tree, operands, parts, reason)


__all__ = ["Compiled", "compile_expression", "compile_tree", "evaluate_nodes", "measure"]
