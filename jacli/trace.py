"""The evaluation trace of a formula (``--trace``): its nodes, as the user wrote them, with each
node's value, tangent and adjoint, so that a learner can follow the chain rule by hand.

The formula's tree is cut into nodes the way the compiler evaluates it (``jacli.compile``): one
node per distinct sub-expression (``x + 1``, ``(x + 1)**2``), numbers being constants inside
their node. Each node is compiled alone, as a function of its children (``v1**2``), and
``jacli.engine.trace`` runs the nodes forward on dual numbers and backward with ``retain_grad``.

* The **tangent** of a node is its derivative along the input direction ``u``:
  ``tangent(node) = Σ ∂node/∂child · tangent(child)`` (forward mode). Default ``u``: a one-hot
  on the first element of the first ``wrt`` input; ``jvp`` and ``hvp`` use their ``v``.
* The **adjoint** of a node is ``∂⟨seed, y⟩/∂node``: ``adjoint(node) = Σ adjoint(user) ·
  ∂user/∂node`` over the nodes that use it (reverse mode). Default seed: 1 for a one-number output,
  else a one-hot on the output's first element (the adjoints are then row 0 of J); ``vjp`` uses
  its ``v``.

The trace is for small problems: at most ``LIMIT`` numbers per column (each node's elements,
all nodes together); past that it is refused with what to do.

Example:
    >>> from jacli.problem import prepare
    >>> t = trace(prepare("(x+1)**2", {"x": 2.0}))
    >>> [(n.text, float(n.value), float(n.tangent), float(n.adjoint)) for n in t.nodes]
    [('x', 2.0, 1.0, 6.0), ('x + 1', 3.0, 1.0, 6.0), ('(x + 1)**2', 9.0, 6.0, 1.0)]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import sympy as sp

from jacli import nodes, printing
from jacli.errors import ResourceError
from jacli.functions import BY_NODE

LIMIT = 60
"""The most numbers a trace column may hold (the elements of every node together)."""


@dataclass
class TraceNode:
    """One row of the trace.

    Attributes:
        label: ``x`` for an input, ``v1``, ``v2``... for the intermediate results in order.
        text: the sub-expression as the user would write it (``(x + 1)**2``).
        local: the same node in terms of its children's labels (``v1**2``); for an input, its name.
        children: the labels of the nodes it is computed from.
        value, tangent, adjoint: tensors shaped like the node's value.
        is_input: whether the node is an input (the others are computed).
    """

    label: str
    text: str
    local: str
    children: tuple[str, ...]
    value: Any
    tangent: Any
    adjoint: Any
    is_input: bool = False


@dataclass
class Trace:
    """The whole trace: its nodes (the inputs first, the output last), the direction ``u`` of the
    tangents (input name → tensor) and the ``seed`` of the adjoints (shaped like the output)."""

    expression: str
    nodes: list[TraceNode]
    direction: dict[str, Any]
    direction_text: str
    seed: Any
    seed_text: str
    output: str = "y"
    """The output's name: ``y``, unless an input is called ``y`` (``jacli.result.output_symbol``)."""


def trace(problem: Any, direction: Mapping[str, Any] | None = None, seed: Any = None,
          direction_text: str = "", seed_text: str = "") -> Trace:
    """The evaluation trace of ``problem`` (a ``jacli.problem.Problem``).

    Args:
        direction: input name → tangent direction; inputs left out stay still. Default: one-hot
            on the first element of the first ``wrt`` input.
        seed: the output's adjoint. Default: 1 for a one-number output, else one-hot on its
            first element.
        direction_text, seed_text: how to describe a given direction and seed.

    Raises:
        ResourceError: the trace would have more than ``LIMIT`` numbers per column.
    """
    import torch

    from jacli.compile import compile_tree
    from jacli.engine.trace import evaluate
    from jacli.result import output_symbol

    tree = problem.compiled.tree
    variables = list(problem.compiled.variables)
    order = _nodes(tree)
    output_shape = tuple(problem.plan.output_shape)
    output = output_symbol(problem.inputs)  # y, unless an input is called y
    total = sum(math.prod(problem.shapes[name]) for name in variables)
    for node in order:  # each node's size from shapes alone, stopping at the limit
        total += 0 if total > LIMIT else _size(node, problem.shapes)
    if total > LIMIT:
        raise ResourceError(
            f"the trace of {printing.to_text(tree)} would show more than {LIMIT} numbers per column "
            f"({len(variables)} input{'s' if len(variables) != 1 else ''} and {len(order)} intermediate result"
            f"{'s' if len(order) != 1 else ''}, every element of each), too many to follow by hand; use "
            "smaller `inputs` (2 or 3 elements), or leave out `trace`",
            param="trace",
        )
    prefix = _prefix(variables)
    position = {sp.Symbol(name, real=True): i for i, name in enumerate(variables)}
    for i, node in enumerate(order):
        position[node] = len(variables) + i
    labels = variables + [f"{prefix}{i + 1}" for i in range(len(order))]
    steps, rows = [], []
    for node in order:
        children = [child for child in dict.fromkeys(_children(node)) if _is_node(child)]
        where = tuple(position[_key(child)] for child in children)
        placeholders = [sp.Dummy(f"c{i}", real=True) for i in range(len(children))]
        local = _replaced(node, dict(zip(children, placeholders)))
        slot = {p: i for i, p in enumerate(placeholders)}
        compiled = compile_tree(local, lambda symbol, slot=slot: (lambda args, i=slot[symbol]: args[i]))
        steps.append((compiled, where))
        shown = _replaced(local, {p: sp.Symbol(labels[w], real=True) for p, w in zip(placeholders, where)})
        rows.append((printing.to_text(node), printing.to_text(shown), tuple(labels[w] for w in where)))

    inputs = [problem.inputs[name] for name in variables]
    like = inputs[0] if inputs else torch.zeros((), dtype=torch.float64)
    if direction is None:
        first = problem.wrt[0]
        tangent = torch.zeros_like(problem.inputs[first]).reshape(-1)
        if tangent.numel():
            tangent[0] = 1
        direction = {first: tangent.reshape(problem.inputs[first].shape)}
        index = ", ".join("0" for _ in problem.shapes[first])
        direction_text = direction_text or f"one-hot on {first}{f'[{index}]' if index else ''}"
    tangents = [direction[name] if name in direction else torch.zeros_like(problem.inputs[name]) for name in variables]
    if seed is None:
        seed = torch.zeros(output_shape, dtype=like.dtype, device=like.device).reshape(-1)
        if seed.numel():
            seed[0] = 1
        seed = seed.reshape(output_shape)
        if math.prod(output_shape) == 1:
            seed_text = seed_text or "1 (the output is one number)"
        else:
            seed_text = seed_text or f"one-hot on {output}[{', '.join('0' for _ in output_shape)}] (the adjoints are row 0 of J)"
    evaluated = evaluate(inputs, steps, tangents, seed)

    found = []
    for i, label in enumerate(labels):
        if i < len(variables):
            text, local, children = label, label, ()
        else:
            text, local, children = rows[i - len(variables)]
        found.append(TraceNode(label, text, local, children, evaluated.values[i], evaluated.tangents[i],
                               evaluated.adjoints[i], is_input=i < len(variables)))
    return Trace(problem.expression, found, dict(direction), direction_text, seed, seed_text, output)


def _replaced(tree: sp.Basic, mapping: Mapping[sp.Basic, sp.Basic]) -> sp.Basic:
    """``tree`` with the subtrees in ``mapping`` replaced, keeping the order the user wrote
    (SymPy's ``xreplace`` would evaluate, writing ``x + 1`` as ``1 + x``)."""
    if tree in mapping:
        return mapping[tree]
    if not tree.args:
        return tree
    args = [_replaced(arg, mapping) for arg in tree.args]
    if all(new is old for new, old in zip(args, tree.args)):
        return tree
    if isinstance(tree, (sp.Add, sp.Mul, sp.Pow)):
        return tree.func(*args, evaluate=False)
    return tree.func(*args)


def _is_node(tree: sp.Basic) -> bool:
    """Numbers are constants inside their node; everything else is a node (or an input)."""
    return not isinstance(tree, (sp.Number, sp.NumberSymbol))


def _key(tree: sp.Basic) -> sp.Basic:
    return sp.Symbol(tree.name, real=True) if isinstance(tree, sp.Symbol) else tree


def _children(tree: sp.Basic) -> list[sp.Basic]:
    """The operands the compiler evaluates ``tree`` from (``a - b``: a and b, not ``-b``)."""
    if isinstance(tree, sp.Add):
        return [nodes.negated(term) if nodes.negated(term) is not None else term for term in tree.args]
    if isinstance(tree, sp.Mul):
        negated = nodes.negated(tree)
        if negated is not None:
            return [negated]
        return [nodes.reciprocal_base(f) if nodes.reciprocal_base(f) is not None else f for f in tree.args]
    if isinstance(tree, sp.Pow):
        base, exponent = tree.args
        if base == sp.E:
            return [exponent]
        return [base] if exponent.is_Number else [base, exponent]
    if isinstance(tree, nodes.Components):
        return list(tree.args)
    if isinstance(tree, nodes.Index):
        return [tree.args[0]]
    entry = BY_NODE.get(tree.func)
    if entry is None:
        raise TypeError(f"bug: no table entry for {tree.func} (in {tree})")
    operands, _ = entry.split(tree.args)
    return list(operands)


def _nodes(tree: sp.Basic) -> list[sp.Basic]:
    """Every distinct non-input sub-expression, each after the ones it is computed from."""
    found: dict[sp.Basic, None] = {}

    def visit(node: sp.Basic) -> None:
        if isinstance(node, sp.Symbol) or not _is_node(node) or node in found:
            return
        for child in _children(node):
            visit(child)
        found[node] = None

    visit(tree)
    return list(found)


def _size(node: sp.Basic, shapes: Mapping[str, tuple[int, ...]]) -> int:
    """A node's element count, from shapes alone (before anything runs)."""
    from jacli.shapes import infer

    return math.prod(infer(node, {name: shapes[name] for name in _names(node)}).output)


def _names(tree: sp.Basic) -> set[str]:
    return {symbol.name for symbol in tree.free_symbols if isinstance(symbol, sp.Symbol)}


def _prefix(variables: list[str]) -> str:
    """``v`` for v1, v2... unless an input is itself named like that."""
    for prefix in ("v", "w", "t", "node"):
        if not any(re.fullmatch(rf"{prefix}\d+", name) for name in variables):
            return prefix
    return "node_"


def trace_of(result: Any) -> Trace:
    """The trace of a computed result's problem, along its own directions: ``jvp`` and ``hvp``
    trace their ``v`` as the tangents' direction, ``vjp`` its ``v`` as the adjoints' seed."""
    directions = getattr(result, "directions", None) or None
    v = getattr(result, "v", None)
    direction_text = seed_text = ""
    if directions:
        direction_text = "u: " + "; ".join(f"{name} = {_inline(t)}" for name, t in directions.items())
    if v is not None:
        seed_text = f"v = {_inline(v)}"
    return trace(result.problem, directions, v, direction_text, seed_text)


def _inline(tensor: Any) -> str:
    def nested(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(nested(item) for item in value) + "]"
        return f"{float(value) + 0.0:.6g}"

    return nested(tensor.detach().cpu().tolist())
