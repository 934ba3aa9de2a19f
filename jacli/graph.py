"""``jacli graph``: the autograd graph torch records for a formula, each node beside the
sub-expression it computes.

torch builds the graph during the forward pass: every tensor computed from a tensor that
requires grad gets a ``grad_fn`` (``PowBackward0``, ``AddBackward0``…), whose
``next_functions`` point at the ``grad_fn`` of its operands; an input that requires grad is a
leaf, reached through ``AccumulateGrad`` (the node that adds into ``x.grad``); a constant, or an
input held constant, is ``None`` there. ``compute_graph`` evaluates the formula once as
``jacli.compile`` does (``evaluate_nodes`` says which sub-expression made each tensor), then
walks ``y.grad_fn.next_functions``. Nothing is differentiated.

Example:
    >>> [node.grad_fn for node in compute_graph("(x+1)**2", {"x": "eye:2"}).nodes]
    ['PowBackward0', 'AddBackward0', 'AccumulateGrad']
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import sympy as sp

from jacli import nodes as jacli_nodes
from jacli import teaching
from jacli.functions import BY_NODE
from jacli.problem import Inputs, prepare
from jacli.result import output_symbol


@dataclass
class Node:
    """One node of the graph.

    Attributes:
        id: its position in ``GraphResult.nodes`` (the output's node is 0).
        grad_fn: torch's class name: ``PowBackward0``, ``AccumulateGrad``…
        expression: the sub-expression whose value this node's tensor is; None for a node
            inside one function (``softmax`` over all elements is a view, softmax, a view).
        within: for such a node, the expression of the function it is part of.
        leaf: for ``AccumulateGrad``, the input whose ``.grad`` it fills.
        shape: the shape of the tensor (the leaf's, for ``AccumulateGrad``).
        next: one entry per ``next_functions`` entry: a node id, or a constant (its text when
            known, else None): torch's ``None``, where no gradient flows.
    """

    id: int
    grad_fn: str
    expression: str | None
    within: str | None = None
    leaf: str | None = None
    shape: tuple[int, ...] | None = None
    next: list[Any] = field(default_factory=list)


@dataclass
class Constant:
    """A ``None`` in ``next_functions``: a number or an input held constant; no gradient flows."""

    text: str | None


@dataclass
class GraphResult:
    """The graph of one formula at one point; ``nodes[0]`` is ``y.grad_fn`` (none when nothing
    requires grad)."""

    command = "graph"
    problem: Any
    output: Any
    nodes: list[Node]
    format: str | None = None

    @property
    def held(self) -> list[str]:
        """The inputs that do not require grad (``wrt`` leaves them out)."""
        return [name for name in self.problem.variables if name not in self.problem.wrt]

    # -- views -------------------------------------------------------------------------------

    def _line(self, node: Node) -> str:
        if node.leaf is not None:
            return (f"{node.grad_fn}  {node.leaf}: leaf, requires_grad=True, shape "
                    f"{teaching.shape_text(node.shape)}; adds into {node.leaf}.grad")
        what = node.expression if node.expression is not None else f"(part of {node.within})"
        shape = f"  shape {teaching.shape_text(node.shape)}" if node.shape is not None else ""
        return f"{node.grad_fn}  {what}{shape}"

    def _head(self) -> str:
        y = output_symbol(self.problem.inputs)
        return f"{y} = {self.problem.expression}  shape {teaching.shape_text(self.output.shape)}"

    def _tree(self) -> Any:
        from rich.text import Text
        from rich.tree import Tree

        root = Tree(Text(self._head(), style="bold"))
        if not self.nodes:
            root.add(Text("no grad_fn: no gradient can flow from the output to an input that requires grad "
                          "(comparisons and constants carry none), so torch records no graph"))
            return root
        shown: set[int] = set()

        def add(parent: Any, entry: Any) -> None:
            if isinstance(entry, Constant):
                said = f"{entry.text}: " if entry.text else ""
                parent.add(Text(f"None  {said}a constant, no gradient flows", style="dim"))
                return
            node = self.nodes[entry]
            if entry in shown:
                what = f"{node.leaf}, the same leaf as above" if node.leaf else "the same node as above"
                parent.add(Text(f"{node.grad_fn}  ({what}: the gradients along both paths are summed)", style="dim"))
                return
            shown.add(entry)
            branch = parent.add(Text(self._line(node), style="green" if node.leaf else ""))
            for child in node.next:
                add(branch, child)

        add(root, 0)
        return root

    def print_pretty(self, console: Any, precision: int | None = None) -> None:
        from rich.text import Text

        teaching.print_unpadded(console, self._tree())
        if self.held:
            held = Text(f"held constant (requires_grad=False): {', '.join(self.held)}", style="dim")
            teaching.print_unpadded(console, held)

    def text(self, chosen: str, precision: int | None = None) -> str:
        chosen = self.format or chosen
        if chosen == "json":
            return json.dumps(self.document(), allow_nan=False) + "\n"
        if chosen == "dot":
            return "".join(self._dot())
        if chosen == "plain":
            from rich.console import Console

            console = Console(width=1 << 12, no_color=True, color_system=None, force_terminal=False)
            with console.capture() as captured:
                self.print_pretty(console, precision)
            return "\n".join(line.rstrip() for line in captured.get().splitlines()) + "\n"
        raise teaching.refuse_format("the graph", chosen, "pretty, plain, json or dot")

    def document(self) -> dict[str, Any]:
        """The JSON view: every node with its ``next`` list (ids, or constants as objects)."""
        def entry(item: Any) -> Any:
            return {"constant": item.text} if isinstance(item, Constant) else item

        return {
            "command": "graph",
            "expression": self.problem.expression,
            "output": {"grad_fn": self.nodes[0].grad_fn if self.nodes else None, "shape": list(self.output.shape)},
            "inputs": {name: {"shape": list(t.shape), "requires_grad": name in self.problem.wrt}
                       for name, t in self.problem.inputs.items()},
            "nodes": [
                {"id": node.id, "grad_fn": node.grad_fn, "expression": node.expression, "within": node.within,
                 "leaf": node.leaf, "shape": None if node.shape is None else list(node.shape), "next": [entry(n) for n in node.next]}
                for node in self.nodes
            ],
        }

    def _dot(self) -> Iterator[str]:
        """Graphviz: data flows up from the leaves to the output, as torchviz draws it."""
        yield "digraph autograd {\n"
        yield "  node [shape=box, fontname=monospace];\n"
        constants = 0
        for node in self.nodes:
            if node.leaf is not None:
                label = f"{node.leaf}\\n{node.grad_fn}\\nshape {teaching.shape_text(node.shape)}"
                yield f"  n{node.id} [label={_quoted(label)}, style=filled, fillcolor=lightblue];\n"
            else:
                said = node.expression if node.expression is not None else f"(part of {node.within})"
                yield f"  n{node.id} [label={_quoted(f'{node.grad_fn}{_NEWLINE}{said}')}];\n"
        for node in self.nodes:
            for child in node.next:
                if isinstance(child, Constant):
                    yield f"  c{constants} [label={_quoted(child.text or 'constant')}, shape=plaintext];\n"
                    yield f"  c{constants} -> n{node.id} [style=dashed];\n"
                    constants += 1
                else:
                    yield f"  n{child} -> n{node.id};\n"
        if self.nodes:
            y = output_symbol(self.problem.inputs)
            yield f"  out [label={_quoted(y)}, shape=plaintext];\n  n0 -> out;\n"
        yield "}\n"


_NEWLINE = "\\n"


def _quoted(text: str) -> str:
    """A Graphviz string: quotes and backslashes escaped, except the ``\\n`` line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n")
    return f'"{escaped}"'


def _operands(tree: sp.Basic, terms: int | None) -> list[sp.Basic]:
    """The operands jacli's compiler passes to torch for this node (or this partial sum/product)."""
    if isinstance(tree, (sp.Add, sp.Mul)):
        args = list(tree.args)
        if isinstance(tree, sp.Mul) and jacli_nodes.negated(tree) is not None:
            return [jacli_nodes.negated(tree)]
        count = terms or len(args)
        left = args[0] if count == 2 else _partial(tree, count - 1)
        right = args[count - 1]
        unwrap = jacli_nodes.negated if isinstance(tree, sp.Add) else jacli_nodes.reciprocal_base
        right = unwrap(right) if unwrap(right) is not None else right
        return [left, right]
    if isinstance(tree, sp.Pow):
        base, exponent = tree.args
        return [exponent] if base == sp.E else [base] if exponent.is_Number else [base, exponent]
    if isinstance(tree, jacli_nodes.Index):
        return [tree.args[0]]
    if isinstance(tree, jacli_nodes.Components):
        return list(tree.args)
    entry = BY_NODE.get(tree.func)
    return entry.split(tree.args)[0] if entry is not None else list(tree.args)


def _partial(tree: sp.Basic, count: int) -> sp.Basic:
    """The first ``count`` terms (factors) of a sum (product), as the user wrote them."""
    return tree.func(*tree.args[:count], evaluate=False)


def compute_graph(
    expr: str,
    inputs: Inputs,
    *,
    wrt: Sequence[str] | None = None,
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    max_memory: int | None = None,
    untrusted: bool = False,
    output_format: str | None = None,
) -> GraphResult:
    """The autograd graph torch builds for ``expr`` at ``inputs``; the ``wrt`` inputs (default
    all) require grad, the others are constants.

    Args:
        output_format: ``json`` or ``dot`` to be written so whatever the CLI's default.
    """
    from jacli.compile import evaluate_nodes
    from jacli.printing import to_text

    problem = prepare(expr, inputs, wrt=wrt, device=device, dtype=dtype, seed=seed, max_memory=max_memory,
                      untrusted=untrusted)
    leaves = [problem.inputs[name].detach().requires_grad_(name in problem.wrt) for name in problem.variables]
    output, seen = evaluate_nodes(problem.expression, *leaves)
    names = {id(leaf): name for name, leaf in zip(problem.variables, leaves)}
    said: dict[Any, tuple[str, list[sp.Basic]]] = {}
    for value, tree, terms in seen:
        grad_fn = getattr(value, "grad_fn", None)
        if grad_fn is not None and grad_fn not in said:
            part = _partial(tree, terms) if terms is not None else tree
            said[grad_fn] = (to_text(part), _operands(tree, terms))
    found: list[Node] = []
    ids: dict[Any, int] = {}

    def visit(fn: Any, within: str | None, shape: tuple[int, ...] | None) -> int:
        if fn in ids:
            return ids[fn]
        name = type(fn).__name__
        variable = getattr(fn, "variable", None)
        expression, operands = said.get(fn, (None, []))
        node = Node(len(found), name, expression, None if expression is not None else within)
        if variable is not None:
            node.leaf, node.shape, node.within = names.get(id(variable), "?"), tuple(variable.shape), None
        else:
            node.shape = shape
        found.append(node)
        ids[fn] = node.id
        children = fn.next_functions
        for index, (child, _) in enumerate(children):
            if child is None:
                text = to_text(operands[index]) if len(operands) == len(children) else None
                node.next.append(Constant(text))
            else:
                node.next.append(visit(child, expression or within, _shape_of(child, shapes)))
        return node.id

    shapes = {getattr(v, "grad_fn", None): tuple(v.shape) for v, _, _ in seen if getattr(v, "grad_fn", None) is not None}
    if output.grad_fn is not None:
        visit(output.grad_fn, None, tuple(output.shape))
    return GraphResult(problem, output.detach(), found, output_format)


def _shape_of(fn: Any, shapes: dict[Any, tuple[int, ...]]) -> tuple[int, ...] | None:
    """The shape of the tensor a node made, where jacli saw it; None inside a function."""
    if fn in shapes:
        return shapes[fn]
    variable = getattr(fn, "variable", None)
    return tuple(variable.shape) if variable is not None else None


__all__ = ["Constant", "GraphResult", "Node", "compute_graph"]
