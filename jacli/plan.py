"""Sizes and budgets, from shapes, in one place: what a computation will hold before it runs.

A ``Plan`` is made from the expression's tree and the input shapes alone (``jacli.shapes``):
the output's shape, every intermediate result, and what each method holds. Everything that
would not fit the memory budget is refused here, with the estimate and what to do instead,
before any input is made or any derivative taken; and the vectorized methods are told how many
basis vectors to push at once (``chunk_size``): all of them when they fit, which is fastest.

Example:
    >>> from jacli.parse import parse
    >>> plan = make_plan(parse("tanh(A @ x)").tree, "tanh(A @ x)", {"A": (1024, 1024), "x": (1024,)},
    ...                  ("x",), budget=10**9, itemsize=8)
    >>> plan.output_shape, plan.reverse_chunk(), plan.jacobian_method()
    ((1024,), None, 'reverse')
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import sympy as sp

from jacli.errors import ResourceError
from jacli.limits import check_budget, format_bytes
from jacli.shapes import Shape, infer


STRUCTURED_FORMS = 3
"""Jacobian-sized dense tensors structured accumulation may hold at once (see ``Plan``)."""

WORKING_SET_FACTOR = 3
"""Elements a vectorized pass holds per basis vector, per element of intermediate results."""


@dataclass(frozen=True)
class Plan:
    """The sizes of one problem, in elements, and the budget, in bytes.

    Attributes:
        text: the expression, for messages.
        budget: the memory budget in bytes.
        itemsize: bytes per number (8 for float64).
        input_shapes: every input's shape.
        wrt: the inputs differentiated with respect to.
        output_shape: the output's shape.
        intermediates: the elements of every tensor the evaluation makes, added up.
        tree: the parsed expression (what the Jacobian's structure is read from).
    """

    text: str
    budget: int
    itemsize: int
    input_shapes: Mapping[str, Shape]
    wrt: tuple[str, ...]
    output_shape: Shape
    intermediates: int
    tree: Any = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def output_elements(self) -> int:
        return math.prod(self.output_shape)

    @functools.cached_property
    def wrt_elements(self) -> int:
        return sum(math.prod(self.input_shapes[name]) for name in self.wrt)

    @functools.cached_property
    def input_elements(self) -> int:
        return sum(math.prod(shape) for shape in self.input_shapes.values())

    @functools.cached_property
    def held(self) -> int:
        """Bytes held through any computation: the inputs, the output, the forward pass's results."""
        return (self.input_elements + self.output_elements + self.intermediates) * self.itemsize

    def jacobian_method(self) -> str:
        """``auto``: forward mode costs one pass per input element, reverse one per output element.

        Forward when the inputs have fewer elements than the output, else reverse.
        """
        return "forward" if self.wrt_elements < self.output_elements else "reverse"

    def _chunk(self, directions: int, per_direction: int, result: int, concatenated: bool = True) -> int | None:
        """How many of ``directions`` basis vectors fit at once beside the result; None: all.

        Each vector costs ``per_direction`` elements while it is pushed through (its basis
        vector, a cotangent or tangent for every intermediate result, the vector it produces).
        """
        # NOTE [vectorized working set]
        # Under vmap every intermediate result gets a cotangent (or tangent) per basis vector,
        # and its backward rule makes temporaries beside it: the derivative of a broadcasting
        # x_col * x_row is g * x_row (full size) before it is summed down, for each operand.
        # Measured on sum(x_col * x_row, 0) at n = 2000, a vector cost about twice the
        # intermediates; WORKING_SET_FACTOR = 3 keeps the peak under the budget.
        free = self.budget - self.held - result * self.itemsize
        cost = max(1, per_direction) * self.itemsize
        if directions * cost <= free:
            return None
        # In chunks, torch.func concatenates the chunks' results at the end: the result is held
        # twice (the Hessian's rows are written into one matrix instead: ``concatenated`` False).
        if concatenated:
            free -= result * self.itemsize
        return max(1, free // cost)

    def reverse_chunk(self) -> int | None:
        """jacrev's chunk: one basis vector per output element."""
        m = self.output_elements
        return self._chunk(m, m + WORKING_SET_FACTOR * self.intermediates + self.wrt_elements, m * self.wrt_elements)

    def forward_chunk(self) -> int | None:
        """jacfwd's chunk: one basis vector per input element, and the inputs' tangent made from
        it (grad "sum(x)" at n = 20,000 peaked 0.18 GB above its floor under a 100 MB budget
        when only the basis vector was counted)."""
        n = self.wrt_elements
        return self._chunk(n, 2 * n + WORKING_SET_FACTOR * self.intermediates + self.output_elements, self.output_elements * n)

    def hessian_chunk(self) -> int | None:
        """The outer derivative of a Hessian: one direction per input element, through the gradient."""
        n = self.wrt_elements
        return self._chunk(n, 2 * n + 2 * WORKING_SET_FACTOR * self.intermediates, n * n, concatenated=False)

    def matrix_copies(self, matrix: bool) -> int:
        """Dense copies of the Jacobian held at once: a second one while the classic matrix of
        several inputs is assembled as one tensor (one input's matrix is a view of its block)."""
        return 2 if matrix and len(self.wrt) > 1 else 1

    def check_jacobian(
        self, labels: Mapping[str, str] | None = None, fits: tuple[str, int] | None = None, matrix: bool = False
    ) -> None:
        """Refuse a dense Jacobian that would not fit beside the inputs and the output.

        Args:
            fits: ``(layout, numbers)`` of a structured layout that holds the same Jacobian, for
                the advice (``diagonal`` holds n numbers where dense holds n²).
            matrix: it is also wanted as one classic matrix (``matrix_copies``).
        """
        outputs, ins = self.output_elements, self.wrt_elements
        numbers = outputs * ins
        copies = self.matrix_copies(matrix)
        if copies * numbers * self.itemsize + self.held <= self.budget:
            return  # it fits: no message to make
        shapes = " + ".join(f"{name} {tuple(self.input_shapes[name])}" for name in self.wrt)
        advice = (
            "Use vjp with `v` for one combination of its rows, pick fewer inputs with `wrt`, "
            "use smaller inputs, or raise `max_memory`."
        )
        if fits is not None and self.fits_structured(fits[1], fits[0]):
            layout, stored = fits
            advice = (
                f"It is {layout}: `layout` {layout} holds its {stored:,} nonzero numbers in "
                f"{format_bytes(self.structured_bytes(layout, stored))}. Or {advice[0].lower()}{advice[1:]}"
            )
        check_budget(
            copies * numbers * self.itemsize + self.held, self.budget,
            f"the Jacobian of {_shorten(self.text)} ({outputs:,} output element{'s' if outputs != 1 else ''} "
            f"× {ins:,} input element{'s' if ins != 1 else ''} = {numbers:,} numbers, for output "
            f"{tuple(self.output_shape)} and {shapes}; "
            f"{'twice, as blocks and as one matrix, ' if copies == 2 else ''}with the inputs and output it holds)",
            advice,
        )

    def structured_bytes(self, layout: str, stored: int) -> int:
        """Bytes of a diagonal (values) or sparse (values and two int64 indices) Jacobian."""
        return stored * (self.itemsize + (16 if layout == "sparse" else 0))

    def fits_structured(self, stored: int, layout: str = "sparse") -> bool:
        return self.structured_bytes(layout, stored) + self.held <= self.budget

    def check_structured(self, layout: str, stored: int) -> None:
        """Refuse a diagonal or sparse Jacobian that would not fit beside the inputs and output."""
        if self.structured_bytes(layout, stored) + self.held <= self.budget:
            return
        check_budget(
            self.structured_bytes(layout, stored) + self.held, self.budget,
            f"the {layout} Jacobian of {_shorten(self.text)} ({stored:,} stored numbers, with the "
            "inputs and output)",
            "Use smaller inputs, or raise `max_memory`.",
        )

    def _structured_accumulation_bytes(self) -> int:
        """Structured accumulation holds the result and up to two more Jacobian-sized dense forms
        (an intermediate's and its product with the next step's), each output × input elements."""
        return STRUCTURED_FORMS * self.output_elements * self.wrt_elements * self.itemsize + self.held

    def fits_structured_accumulation(self) -> bool:
        return self._structured_accumulation_bytes() <= self.budget

    def check_structured_accumulation(self) -> None:
        """Refuse structured accumulation whose dense intermediate Jacobians would not fit."""
        if self.fits_structured_accumulation():
            return
        check_budget(
            self._structured_accumulation_bytes(), self.budget,
            f"structured accumulation for {_shorten(self.text)} ({STRUCTURED_FORMS} Jacobian-sized forms "
            f"of {self.output_elements * self.wrt_elements:,} numbers, with the inputs and output)",
            "Use `method` reverse or forward, which split their work to fit, or raise `max_memory`.",
        )

    def compressed_chunk(self, colors: int, mode: str) -> int | None:
        """Seeds pushed at once by the compressed evaluation: one per colour."""
        seed, made = (self.wrt_elements, self.output_elements) if mode == "forward" else (self.output_elements, self.wrt_elements)
        return self._chunk(colors, seed + made + WORKING_SET_FACTOR * self.intermediates, 0)

    # NOTE [many points]
    # With ``batch_axis`` the plan sizes one point; a call holds the whole inputs (``inputs_bytes``,
    # shared inputs once), every point's output and result, and, for the points pushed through
    # vmap at once, each one's working set: the same per-direction costs as ``reverse_chunk`` and
    # ``forward_chunk``, all of one point's directions at once. Chunks are written into the
    # whole results as they come (``engine.batched``), so the results are held once.

    def point_work(self, command: str, method: str) -> int:
        """Elements one point holds while it is computed (``command``'s transform, ``method``)."""
        m, n, inter = self.output_elements, self.wrt_elements, self.intermediates
        if command == "jacobian" and method == "forward":
            return n * (2 * n + WORKING_SET_FACTOR * inter + m) + m + inter
        if command == "jacobian":
            return m * (m + WORKING_SET_FACTOR * inter + n) + m + inter
        return 2 * m + (WORKING_SET_FACTOR + 1) * inter + 2 * n

    def points_chunk(self, points: int, inputs_bytes: int, result: int, work: int) -> int | None:
        """How many of ``points`` vmap pushes through at once; None: all (the fastest).

        Args:
            inputs_bytes: the whole inputs' bytes.
            result: elements of one point's result and output, kept for every point.
            work: ``point_work``.
        """
        free = self.budget - inputs_bytes - points * result * self.itemsize
        cost = max(1, work) * self.itemsize
        if points * cost <= free:
            return None
        return max(1, free // cost)

    def check_points(self, points: int, inputs_bytes: int, result: int, work: int, what: str) -> None:
        """Refuse ``points`` results (and one point's working set) that would not fit beside the inputs."""
        needed = inputs_bytes + (points * result + work) * self.itemsize
        if needed <= self.budget:
            return
        check_budget(
            needed, self.budget,
            f"{what} of {_shorten(self.text)} at {points:,} points ({result:,} numbers each, with the inputs)",
            "Give fewer points per call, pick fewer inputs with `wrt`, or raise `max_memory`.",
        )

    def check_hessian(self, matrix: bool = False) -> None:
        """Refuse a Hessian that would not fit beside the inputs and the output. It is one n×n
        matrix whatever ``matrix`` says: its blocks are views into it."""
        if self.output_elements != 1:
            return  # the command refuses a non-scalar output with its own message
        n = self.wrt_elements
        check_budget(
            n * n * self.itemsize + self.held, self.budget,
            f"the Hessian ({n:,} × {n:,} numbers, with the inputs and output)",
            "Use hvp for Hessian-vector products without building it, or pick fewer inputs with `wrt`.",
        )


def make_plan(
    tree: sp.Basic,
    text: str,
    shapes: Mapping[str, Shape],
    wrt: Sequence[str],
    *,
    budget: int,
    itemsize: int,
    labels: Mapping[str, str] | None = None,
    result: str | Callable[["Plan"], Any] | None = None,
) -> Plan:
    """Size the problem and refuse what does not fit.

    Args:
        tree, text: the parsed expression and its text.
        shapes: each input's shape.
        wrt: the inputs to differentiate with respect to.
        budget: bytes.
        itemsize: bytes per number.
        labels: how to name each input in messages (``x = ones:1000``); default its name.
        result: ``"jacobian"`` or ``"hessian"`` to refuse a dense result that would not fit, or
            a function of the plan that checks the result itself (before any input is made).

    Raises:
        ShapeError: the shapes do not fit the expression.
        ResourceError: the inputs, the evaluation or the result would exceed ``budget``.
    """
    key = (text, tuple((name, tuple(shape)) for name, shape in shapes.items()), tuple(wrt), budget, itemsize,
           result if isinstance(result, str) else None)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _checked_plan(tree, text, shapes, wrt, budget, itemsize, labels, result if isinstance(result, str) else None)
        if len(_PLANS) >= 256:
            _PLANS.clear()
        _PLANS[key] = plan
    if callable(result):
        result(plan)
    return plan


# NOTE [plans are remembered]
# Every check in ``_checked_plan`` is a pure function of the expression, the shapes, ``wrt``, the
# budget, the item size and the result checked, so a plan that passed them once passes them
# again: a loop over points (or a benchmark) sizes each problem once. A refusal is never
# remembered (it raises before the plan is stored), and a different budget (the default one
# follows the memory available) is a different key, so nothing that would now be refused passes.
_PLANS: dict[tuple, Plan] = {}


def _checked_plan(
    tree: sp.Basic, text: str, shapes: Mapping[str, Shape], wrt: Sequence[str], budget: int, itemsize: int,
    labels: Mapping[str, str] | None, result: str | None,
) -> Plan:
    """``make_plan``'s sizes and checks, without the cache."""
    named = labels if labels is not None else {name: name for name in shapes}
    check_inputs_together([(name, math.prod(shape) * itemsize) for name, shape in shapes.items()], budget,
                          named=named.__getitem__)
    sizes = _inferred(text, tuple((name, tuple(shape)) for name, shape in shapes.items()), tree)
    plan = Plan(text, budget, itemsize, dict(shapes), tuple(wrt), sizes.output, sizes.intermediates, tree)
    needed = (plan.input_elements + plan.intermediates) * itemsize
    if needed > budget:  # the message (which shortens the text) is only made for a refusal
        check_budget(
            needed, budget, f"evaluating {_shorten(text)} (its intermediate results, with the inputs)",
            _evaluation_advice(text, sizes, shapes, itemsize),
        )
    if result == "jacobian":
        plan.check_jacobian(named)
    elif result == "hessian":
        plan.check_hessian()
    return plan


def _evaluation_advice(text: str, sizes: Any, shapes: Mapping[str, Shape], itemsize: int) -> str:
    """What to do about an evaluation too large for the budget: when a constant tensor of the
    formula is larger than every input, that constant, named with its size; else the inputs."""
    constant = sizes.largest_constant
    if constant is not None and constant[1] > max((math.prod(shape) for shape in shapes.values()), default=0):
        from jacli.printing import to_text

        tree, elements = constant
        return (
            f"Its constant {_shorten(_as_written(text, tree) or to_text(tree), 40)} alone has {elements:,} elements "
            f"({format_bytes(elements * itemsize)}): make it smaller, or raise `max_memory`."
        )
    return "Use smaller inputs, or raise `max_memory`."


def _as_written(text: str, tree: sp.Basic) -> str | None:
    """The call in ``text`` that parses to ``tree`` (``ones(10**12)``, where the tree holds the
    number 1000000000000), as the user wrote it; None if none does."""
    import re

    from jacli.errors import JacliError
    from jacli.parse import parse

    for match in re.finditer(rf"\b{re.escape(type(tree).__name__)}\s*\(", text):
        depth = 0
        for end in range(match.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                call = text[match.start(): end + 1]
                try:
                    if parse(call).tree == tree:
                        return call
                except JacliError:
                    pass
                break
    return None


_INFERRED: dict[tuple[str, tuple], Any] = {}


def _inferred(text: str, shapes: tuple, tree: sp.Basic) -> Any:
    """``infer(tree, shapes)``, remembered per expression and shapes (a pure function of them):
    a loop over points walks the tree once. Errors are not remembered; they are raised again."""
    key = (text, shapes)
    if key not in _INFERRED:
        if len(_INFERRED) >= 256:
            _INFERRED.clear()
        _INFERRED[key] = infer(tree, dict(shapes))
    return _INFERRED[key]


def check_inputs_together(sizes: list[tuple[Any, int]], budget: int, named: Callable[[Any], str] = str) -> None:
    """Several inputs may each fit the budget and still exceed it together.

    Args:
        sizes: ``(input, bytes)`` for each input.
        named: how a message names an input (called only for a refusal).
    """
    if len(sizes) > 1 and sum(size for _, size in sizes) > budget:
        check_budget(
            sum(size for _, size in sizes), budget,
            "the inputs together (" + ", ".join(named(what) for what, _ in sizes) + ")",
            "Use smaller inputs, or raise `max_memory`.",
        )


def _shorten(text: str, limit: int = 60) -> str:
    from jacli.inputs import shorten

    return shorten(text, limit)


__all__ = ["Plan", "make_plan", "check_inputs_together", "ResourceError", "format_bytes"]
