"""Structured accumulation: each intermediate's Jacobian kept in its cheapest exact form.

Walking the formula forward, every sub-expression carries its value and its Jacobian with
respect to one input vector x (n elements), as one of

* ``zero``: it does not depend on x;
* ``diag``: it has x's shape and element i depends on x[i] alone (a vector of n derivatives);
* ``dense``: an m × n matrix.

The chain rule then costs what the forms cost: ``tanh(A @ x)`` with a constant A is
A · diag(1) = A (a scaled copy), then diag(tanh'(Ax)) · A, a row-scaled A: n² multiplications,
where jacrev pushes n basis vectors back through the whole formula. Elementwise derivatives
come from one JVP of the function with a tangent of ones, so no derivative is written twice.

Only formulas made of vectors and scalars, arithmetic, elementwise functions of one argument,
softmax of a vector (J = diag(s) - s sᵀ) and a constant matrix times a vector are covered: ``accumulate`` returns None for anything else,
and the caller falls back to torch.func.

Example:
    >>> from jacli.compile import compile_expression
    >>> A = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    >>> x = torch.tensor([0.5, -0.5], dtype=torch.float64)
    >>> out = accumulate(compile_expression("tanh(A @ x)").tree, {"A": A, "x": x}, "x")
    >>> torch.allclose(out[1], torch.func.jacrev(lambda x: torch.tanh(A @ x))(x))
    True
"""

from __future__ import annotations

from typing import Any, Mapping

import sympy as sp
import torch

from jacli import nodes
from jacli.functions import BY_NODE


class _Unsupported(Exception):
    """A node outside what structured accumulation covers (the caller falls back)."""


def accumulate(tree: sp.Basic, inputs: Mapping[str, torch.Tensor], wrt: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The output and the dense Jacobian (output.shape + x.shape) with respect to ``wrt``, or None
    where the formula holds something this does not cover."""
    x = inputs[wrt]
    if x.dim() != 1:
        return None
    walker = _Walker(inputs, wrt)
    try:
        value, (kind, jac) = walker.node(tree)
    except _Unsupported:
        return None
    value = value if isinstance(value, torch.Tensor) else torch.tensor(value, dtype=x.dtype, device=x.device)
    n = x.numel()
    if kind == "zero":
        return value, x.new_zeros(tuple(value.shape) + (n,))
    if kind == "diag":
        return value, torch.diag(jac)
    return value, walker.dense_rows((kind, jac), max(1, value.numel())).reshape(tuple(value.shape) + (n,))


class _Walker:
    def __init__(self, inputs: Mapping[str, torch.Tensor], wrt: str):
        self.inputs, self.wrt = inputs, wrt
        self.n = inputs[wrt].numel()
        self.like = inputs[wrt]

    # -- forms ------------------------------------------------------------------------------------

    def scale(self, factor: Any, form: tuple[str, Any]) -> tuple[str, Any]:
        """diag(factor) · J, with ``factor`` a number, a scalar tensor or a vector shaped like the value."""
        kind, jac = form
        if kind == "zero":
            return form
        vector = isinstance(factor, torch.Tensor) and factor.dim() == 1
        if kind == "diag":
            if vector and tuple(factor.shape) != (self.n,):
                raise _Unsupported
            return "diag", jac * factor
        if vector:
            if jac.shape[0] == 1 and factor.numel() > 1:  # a scalar's row, broadcast to the vector
                jac = jac.expand(factor.numel(), self.n)
            return "dense", factor.reshape(-1, 1) * jac
        return "dense", jac * factor

    def add(self, a: tuple[str, Any], b: tuple[str, Any], sign: float = 1.0) -> tuple[str, Any]:
        """J_a + sign · J_b; a scalar's single row broadcasts against a vector's rows."""
        if b[0] == "zero":
            return a
        if a[0] == "zero":
            return b if sign > 0 else (b[0], -b[1])
        if a[0] == "diag" and b[0] == "diag":
            return "diag", a[1] + sign * b[1]
        rows = max(self.rows(a), self.rows(b))
        return "dense", self.dense_rows(a, rows) + sign * self.dense_rows(b, rows)

    def rows(self, form: tuple[str, Any]) -> int:
        return self.n if form[0] == "diag" else form[1].shape[0]

    def dense_rows(self, form: tuple[str, Any], rows: int) -> torch.Tensor:
        kind, jac = form
        if kind == "zero":
            return self.like.new_zeros((rows, self.n))
        if kind == "diag":
            if rows != self.n:
                raise _Unsupported
            return torch.diag(jac)
        return jac.expand(rows, self.n) if jac.shape[0] == 1 and rows > 1 else jac

    # -- the walk --------------------------------------------------------------------------------

    def node(self, tree: sp.Basic) -> tuple[Any, tuple[str, Any]]:
        if isinstance(tree, sp.Symbol):
            value = self.inputs[tree.name]
            if value.dim() > 2 or (tree.name == self.wrt and value.dim() != 1):
                raise _Unsupported
            if tree.name == self.wrt:
                return value, ("diag", torch.ones_like(value))
            return value, ("zero", None)
        if isinstance(tree, (sp.Number, sp.NumberSymbol)):
            return nodes.number(tree), ("zero", None)
        if isinstance(tree, sp.Add):
            return self.sum(tree)
        if isinstance(tree, sp.Mul):
            return self.product(tree)
        if isinstance(tree, sp.Pow):
            return self.power(tree)
        if isinstance(tree, nodes.MatMul):
            return self.matmul(tree)
        entry = BY_NODE.get(tree.func)
        if entry is not None and entry.name == "softmax":
            return self.softmax(tree, entry)
        if entry is None or not entry.elementwise or len(tree.args) != 1:
            raise _Unsupported
        value, form = self.node(tree.args[0])
        return self.elementwise(entry.torch, value, form)

    def softmax(self, tree: sp.Basic, entry: Any) -> tuple[Any, tuple[str, Any]]:
        """s = softmax(u) of a vector, and (diag(s) - s sᵀ) · J_u: n² products, not n passes."""
        operands, integers = entry.split(tree.args)
        if len(operands) != 1 or [int(i) for i in integers] not in ([], [0]):
            raise _Unsupported
        value, form = self.node(operands[0])
        if not isinstance(value, torch.Tensor) or value.dim() != 1:
            raise _Unsupported
        s = entry.torch(value, *[int(i) for i in integers])
        kind, jac = form
        if kind == "zero":
            return s, form
        if kind == "diag":  # (diag(s) - s sᵀ) diag(d) = diag(s d) - s (s d)ᵀ
            weighted = s * jac
            dense = torch.outer(s, -weighted)
            dense.diagonal().add_(weighted)
            return s, ("dense", dense)
        rows = self.dense_rows(form, s.numel())  # (diag(s) - s sᵀ) M = s ⊙ (M - sᵀM), row-wise
        return s, ("dense", s.reshape(-1, 1) * (rows - (s @ rows).reshape(1, -1)))

    def elementwise(self, fn: Any, value: Any, form: tuple[str, Any]) -> tuple[Any, tuple[str, Any]]:
        """f(u) and diag(f'(u)) · J_u, f' from one JVP with a tangent of ones."""
        u = value if isinstance(value, torch.Tensor) else torch.tensor(value, dtype=self.like.dtype, device=self.like.device)
        if form[0] == "zero":
            return fn(u), form
        out, slope = torch.func.jvp(fn, (u,), (torch.ones_like(u),))
        return out, self.scale(slope, form)

    def sum(self, tree: sp.Add) -> tuple[Any, tuple[str, Any]]:
        value, form = None, ("zero", None)
        for position, term in enumerate(tree.args):
            inner = nodes.negated(term)
            sign = -1.0 if inner is not None else 1.0
            term_value, term_form = self.node(inner if inner is not None else term)
            if position == 0:
                value = -term_value if sign < 0 else term_value
                form = term_form if sign > 0 else (term_form[0], -term_form[1] if term_form[1] is not None else None)
                continue
            value = value - term_value if sign < 0 else value + term_value
            form = self.add(form, term_form, sign)
        return value, form

    def product(self, tree: sp.Mul) -> tuple[Any, tuple[str, Any]]:
        inner = nodes.negated(tree)
        if inner is not None:
            value, form = self.node(inner)
            return -value, (form[0], -form[1] if form[1] is not None else None)
        value, form = self.node(tree.args[0])
        for factor in tree.args[1:]:
            base = nodes.reciprocal_base(factor)
            other_value, other_form = self.node(base if base is not None else factor)
            if base is None:  # (a b)' = b a' + a b'
                new_value = value * other_value
                left, right = self.scale(other_value, form), self.scale(value, other_form)
            else:  # (a / b)' = a' / b - (a / b²) b'
                new_value = value / other_value
                left, right = self.scale(1 / other_value, form), self.scale(-new_value / other_value, other_form)
            form, value = self.add(left, right), new_value
        return value, form

    def power(self, tree: sp.Pow) -> tuple[Any, tuple[str, Any]]:
        base, exponent = tree.args
        if base == sp.E:
            return self.elementwise(torch.exp, *self.node(exponent))
        if not exponent.is_Number:
            raise _Unsupported
        power = nodes.number(exponent)
        value, form = self.node(base)
        return self.elementwise(lambda u: torch.pow(u, power), value, form)

    def matmul(self, tree: nodes.MatMul) -> tuple[Any, tuple[str, Any]]:
        (a_value, a_form), (b_value, b_form) = self.node(tree.args[0]), self.node(tree.args[1])
        if a_form[0] != "zero" or not isinstance(a_value, torch.Tensor) or a_value.dim() != 2:
            raise _Unsupported  # only a constant matrix times a vector
        if not isinstance(b_value, torch.Tensor) or b_value.dim() != 1:
            raise _Unsupported
        value = a_value @ b_value
        if b_form[0] == "zero":
            return value, b_form
        if b_form[0] == "diag":
            return value, ("dense", a_value * b_form[1])  # A · diag(d): columns scaled
        return value, ("dense", a_value @ b_form[1])


