"""THE function table: one entry per function a jacli expression may call.

The parser reads it to check calls and build SymPy nodes; the compiler reads it to turn those
nodes into torch calls. Adding a function is adding one entry here (and a test).

torch is imported lazily (see ``_LazyTorch``) so that parsing never pays for importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import sympy as sp

from jacli import nodes


class _LazyTorch:
    """Stands in for the torch module until a table entry first runs, then replaces itself."""

    def __getattr__(self, name: str) -> Any:
        import torch as real_torch

        globals()["torch"] = real_torch
        return getattr(real_torch, name)


torch: Any = _LazyTorch()


@dataclass(frozen=True)
class Function:
    """One callable name: how the parser builds it and how the compiler runs it.

    Attributes:
        name: what the user types.
        summary: one line for ``--help`` and the README.
        torch: the torch implementation, called with the tensor arguments then the integers.
        node: the SymPy class calls produce (the compiler's lookup key); None when ``build``
            produces plain arithmetic (``sqrt`` is a power).
        tensors: how many expression arguments (min, max).
        ints: how many trailing integer-literal arguments are allowed (axis, shape).
        elementwise: applies entry by entry, so its Jacobian is diagonal.
        build: makes the SymPy node from SymPy arguments; default ``node(*args, evaluate=False)``.
    """

    name: str
    summary: str
    torch: Callable[..., Any]
    node: type | None
    tensors: tuple[int, int] = (1, 1)
    ints: tuple[int, ...] = (0,)
    elementwise: bool = False
    build: Callable[..., sp.Basic] | None = None

    def make(self, args: list[sp.Basic], ints: list[int]) -> sp.Basic:
        """The SymPy node for a call with these arguments (already checked by the parser)."""
        if self.build is not None:
            return self.build(*args, *ints)
        assert self.node is not None
        return self.node(*args, *(sp.Integer(i) for i in ints), evaluate=False)


def _elementwise(name: str, summary: str, node: type, torch_fn: Callable[..., Any]) -> Function:
    return Function(name, summary, torch_fn, node, elementwise=True)


def _log(x: sp.Basic, base: sp.Basic | None = None) -> sp.Basic:
    if base is None:
        return sp.log(x, evaluate=False)
    return sp.Mul(
        sp.log(x, evaluate=False), sp.Pow(sp.log(base, evaluate=False), -1, evaluate=False),
        evaluate=False,
    )


def _over_all_or_axis(whole: Callable[[Any], Any], along: Callable[[Any, int], Any]):
    """A reduction over every element, or along ``axis`` when one is given."""

    def reduce(x: Any, axis: int | None = None) -> Any:
        return whole(x) if axis is None else along(x, axis)

    return reduce


def _softmax_all(x: Any) -> Any:
    return torch.softmax(x.reshape(-1), 0).reshape(x.shape)


def _transpose(x: Any, dim0: int | None = None, dim1: int | None = None) -> Any:
    if dim0 is None:
        return x.permute(*reversed(range(x.dim())))
    return x.transpose(dim0, dim1)


_TABLE = [
    _elementwise("sin", "sine", sp.sin, lambda x: torch.sin(x)),
    _elementwise("cos", "cosine", sp.cos, lambda x: torch.cos(x)),
    _elementwise("tan", "tangent", sp.tan, lambda x: torch.tan(x)),
    _elementwise("asin", "inverse sine", sp.asin, lambda x: torch.asin(x)),
    _elementwise("acos", "inverse cosine", sp.acos, lambda x: torch.acos(x)),
    _elementwise("atan", "inverse tangent", sp.atan, lambda x: torch.atan(x)),
    _elementwise("sinh", "hyperbolic sine", sp.sinh, lambda x: torch.sinh(x)),
    _elementwise("cosh", "hyperbolic cosine", sp.cosh, lambda x: torch.cosh(x)),
    _elementwise("tanh", "hyperbolic tangent", sp.tanh, lambda x: torch.tanh(x)),
    _elementwise("asinh", "inverse hyperbolic sine", sp.asinh, lambda x: torch.asinh(x)),
    _elementwise("acosh", "inverse hyperbolic cosine", sp.acosh, lambda x: torch.acosh(x)),
    _elementwise("atanh", "inverse hyperbolic tangent", sp.atanh, lambda x: torch.atanh(x)),
    _elementwise("exp", "e to the power x", sp.exp, lambda x: torch.exp(x)),
    Function(
        "log", "natural logarithm; log(x, b) is the logarithm to base b",
        lambda x: torch.log(x), sp.log, tensors=(1, 2), elementwise=True, build=_log,
    ),
    Function(
        "sqrt", "square root", lambda x: torch.sqrt(x), None, elementwise=True,
        build=lambda x: sp.Pow(x, sp.S.Half, evaluate=False),
    ),
    _elementwise("abs", "absolute value", sp.Abs, lambda x: torch.abs(x)),
    _elementwise("sign", "-1, 0 or 1", sp.sign, lambda x: torch.sign(x)),
    _elementwise("erf", "error function", sp.erf, lambda x: torch.special.erf(x)),
    _elementwise("relu", "max(x, 0)", nodes.relu, lambda x: torch.relu(x)),
    _elementwise("sigmoid", "1 / (1 + exp(-x))", nodes.sigmoid, lambda x: torch.sigmoid(x)),
    _elementwise(
        "softplus", "log(1 + exp(x))", nodes.softplus,
        lambda x: torch.nn.functional.softplus(x),
    ),
    Function(
        "min", "elementwise minimum of two tensors", lambda a, b: torch.minimum(a, b), sp.Min,
        tensors=(2, 2), elementwise=True,
    ),
    Function(
        "max", "elementwise maximum of two tensors", lambda a, b: torch.maximum(a, b), sp.Max,
        tensors=(2, 2), elementwise=True,
    ),
    Function(
        "sum", "sum of all elements; sum(x, axis) along one axis",
        _over_all_or_axis(lambda x: x.sum(), lambda x, axis: x.sum(axis)),
        nodes.tensor_op("sum"), ints=(0, 1),
    ),
    Function(
        "mean", "mean of all elements; mean(x, axis) along one axis",
        _over_all_or_axis(lambda x: x.mean(), lambda x, axis: x.mean(axis)),
        nodes.tensor_op("mean"), ints=(0, 1),
    ),
    Function(
        "prod", "product of all elements; prod(x, axis) along one axis",
        _over_all_or_axis(lambda x: x.prod(), lambda x, axis: x.prod(axis)),
        nodes.tensor_op("prod"), ints=(0, 1),
    ),
    Function(
        "norm", "Euclidean norm of all elements; norm(x, axis) along one axis",
        _over_all_or_axis(
            lambda x: torch.linalg.vector_norm(x), lambda x, axis: torch.linalg.vector_norm(x, dim=axis)
        ),
        nodes.tensor_op("norm"), ints=(0, 1),
    ),
    Function(
        "dot", "inner product of two vectors of the same length",
        lambda a, b: torch.dot(a, b), nodes.tensor_op("dot"), tensors=(2, 2),
    ),
    Function(
        "softmax", "exp(x) / sum(exp(x)) over all elements; softmax(x, axis) along one axis",
        _over_all_or_axis(_softmax_all, lambda x, axis: torch.softmax(x, axis)),
        nodes.tensor_op("softmax"), ints=(0, 1),
    ),
    Function(
        "logsumexp", "log(sum(exp(x))) over all elements; logsumexp(x, axis) along one axis",
        _over_all_or_axis(
            lambda x: torch.logsumexp(x.reshape(-1), 0), lambda x, axis: torch.logsumexp(x, axis)
        ),
        nodes.tensor_op("logsumexp"), ints=(0, 1),
    ),
    Function(
        "reshape", "reshape(x, 2, 3): the same elements in a new shape (one size may be -1)",
        lambda x, *shape: x.reshape(shape), nodes.tensor_op("reshape"), ints=tuple(range(1, 9)),
    ),
    Function(
        "transpose", "axes reversed; transpose(x, i, j) swaps axes i and j",
        _transpose, nodes.tensor_op("transpose"), ints=(0, 2),
    ),
    Function(
        "matmul", "matrix product, the same as a @ b", lambda a, b: torch.matmul(a, b),
        nodes.MatMul, tensors=(2, 2),
    ),
]

# Nodes that appear in exact derivatives (relu' is Heaviside(x, 0), sign' is 2*DiracDelta(x),
# max' is Heaviside(a - b)) but that users do not call. Their torch sides match torch's own
# derivatives: relu'(0) = 0, max splits ties 1/2 : 1/2, sign' = 0.
_DERIVATIVE_ONLY = [
    Function(
        "heaviside", "0 below zero, 1 above, H0 at zero (SymPy's default H0 is 1/2)",
        lambda x, at_zero=None: torch.heaviside(
            x, torch.full_like(x, 0.5) if at_zero is None else at_zero.to(x.dtype).expand_as(x)
        ),
        sp.Heaviside, tensors=(1, 2), elementwise=True,
    ),
    Function(
        "diracdelta", "zero away from zero (torch's derivative of sign)",
        lambda x, *order: torch.zeros_like(x), sp.DiracDelta, tensors=(1, 2), elementwise=True,
    ),
]

FUNCTIONS: dict[str, Function] = {f.name: f for f in _TABLE}
"""Every callable name, in table order."""

BY_NODE: dict[type, Function] = {f.node: f for f in _TABLE + _DERIVATIVE_ONLY if f.node is not None}
"""The table entry behind each SymPy node class (the compiler's lookup)."""

CONSTANTS: dict[str, sp.Basic] = {"pi": sp.pi, "e": sp.E}
"""Names that stand for numbers rather than variables."""
