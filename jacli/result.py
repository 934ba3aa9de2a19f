"""Typed results: what each command computed, with everything needed to show and explain it.

Every result carries the ``Problem`` it answers (expression, inputs, device, dtype), the output,
and the method that ran. Then each kind holds its own numbers, keyed by what they are:

* ``JacobianResult.blocks``: input name → ``JacobianBlock`` (one per ``wrt`` input), shaped
  ``output.shape + input.shape``;
* ``VJPResult.grads``, ``GradResult.grads``, ``HVPResult.grads``: input name → tensor shaped
  like the input;
* ``JVPResult.value``: one tensor shaped like the output;
* ``HessianResult.blocks``: ``(a, b)`` → tensor shaped ``a.shape + b.shape``.

``JacobianBlock`` has a ``layout``; today every block is ``dense``. Structured layouts
(diagonal, sparse) are further subclasses that know how to ``to_dense()`` themselves, so a
renderer that asks for ``to_dense()`` never needs to know which it holds.

Example:
    >>> import jacli
    >>> result = jacli.compute_jacobian("x**2", {"x": [1.0, 2.0]})
    >>> result.command, result.method, result.blocks["x"].layout
    ('jacobian', 'reverse', 'dense')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

if TYPE_CHECKING:
    import torch

    from jacli.problem import Problem

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-5
"""check's default tolerances: gradcheck's."""

Key = Any
"""What a result's numbers are keyed by: an input name, or an (a, b) pair of names (Hessian)."""


@dataclass(frozen=True)
class JacobianBlock:
    """∂output/∂input for one input: a dense tensor shaped ``output.shape + input.shape``."""

    input: str
    values: "torch.Tensor"
    layout: ClassVar[str] = "dense"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def to_dense(self) -> "torch.Tensor":
        """The block as one dense tensor."""
        return self.values


@dataclass
class Result:
    """What every command's result shares.

    Attributes:
        problem: the problem it answers (expression, inputs, wrt, device, dtype).
        method: the method that ran (never ``auto``).
        output: the expression's value at the inputs.
    """

    command: ClassVar[str] = ""

    problem: "Problem" = field(repr=False)
    method: str
    output: "torch.Tensor"

    @property
    def expression(self) -> str:
        return self.problem.expression

    @property
    def variables(self) -> tuple[str, ...]:
        return self.problem.variables

    @property
    def wrt(self) -> tuple[str, ...]:
        return self.problem.wrt

    @property
    def inputs(self) -> dict[str, "torch.Tensor"]:
        return self.problem.inputs

    @property
    def device(self) -> str:
        return str(self.problem.device)

    @property
    def dtype(self) -> str:
        return str(self.problem.dtype).replace("torch.", "")

    @property
    def tree(self) -> Any:
        return self.problem.compiled.tree

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        """Each computed tensor with its key, in order (what plain, JSON and files write)."""
        raise NotImplementedError


@dataclass
class JacobianResult(Result):
    """The Jacobian: one block per input in ``wrt``.

    Attributes:
        symbolic: input name → exact derivative entries (numpy object arrays of SymPy
            expressions), when asked for.
        diagonal: for elementwise expressions, input name → the one scalar derivative on the
            diagonal (with ``symbolic``).
        det, det_symbolic: the Jacobian determinant (``det=True``) and its exact form.
    """

    command: ClassVar[str] = "jacobian"

    blocks: dict[str, JacobianBlock] = field(default_factory=dict)
    symbolic: dict[str, Any] | None = field(default=None, repr=False)
    diagonal: dict[str, Any] | None = field(default=None, repr=False)
    det: Any = None
    det_symbolic: Any = field(default=None, repr=False)

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        for name, block in self.blocks.items():
            yield name, block.to_dense()


@dataclass
class VJPResult(Result):
    """vᵀJ per input: what ``y.backward(v)`` leaves in ``x.grad``; ``v`` is shaped like the output."""

    command: ClassVar[str] = "vjp"

    grads: dict[str, "torch.Tensor"] = field(default_factory=dict)
    v: Any = None

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        yield from self.grads.items()


@dataclass
class GradResult(Result):
    """The gradient of a single-element output, per input; ``symbolic`` as for the Jacobian."""

    command: ClassVar[str] = "grad"

    grads: dict[str, "torch.Tensor"] = field(default_factory=dict)
    symbolic: dict[str, Any] | None = field(default=None, repr=False)

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        yield from self.grads.items()


@dataclass
class JVPResult(Result):
    """J·u, shaped like the output; ``directions`` holds u, input name → tensor."""

    command: ClassVar[str] = "jvp"

    value: Any = None
    directions: dict[str, "torch.Tensor"] = field(default_factory=dict)

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        yield None, self.value


@dataclass
class HessianResult(Result):
    """The Hessian of a single-element output: ``(a, b)`` → block shaped ``a.shape + b.shape``."""

    command: ClassVar[str] = "hessian"

    blocks: dict[tuple[str, str], "torch.Tensor"] = field(default_factory=dict)
    symbolic: dict[tuple[str, str], Any] | None = field(default=None, repr=False)

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        yield from self.blocks.items()


@dataclass
class HVPResult(Result):
    """H·u per input, shaped like the input; ``directions`` holds u."""

    command: ClassVar[str] = "hvp"

    grads: dict[str, "torch.Tensor"] = field(default_factory=dict)
    directions: dict[str, "torch.Tensor"] = field(default_factory=dict)

    def tensors(self) -> Iterator[tuple[Key, "torch.Tensor"]]:
        yield from self.grads.items()


@dataclass
class MethodCheck:
    """One method's agreement with the reference.

    Attributes:
        method: e.g. ``"forward"``, ``"finite differences"``.
        max_abs, max_rel: the largest absolute and relative differences from the reference, over
            the entries finite in both (NaN when there are none, or when skipped).
        ok: every entry finite and within ``atol + rtol * |reference|`` (or excused at a kink).
        note: why a method was skipped, or why it failed or was excused where it was.
        nonfinite: where this method's Jacobian is NaN or infinite, e.g. ``"nan at dy/dx[1, 0]"``.
        excused: the input elements (``"x[1]"``) whose finite-difference columns differ across a kink.
    """

    method: str
    max_abs: float = math.nan
    max_rel: float = math.nan
    ok: bool = True
    note: str = ""
    skipped: bool = False
    nonfinite: list[str] = field(default_factory=list)
    excused: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    """What ``check`` found; ``ok`` is what the exit code says."""

    expression: str
    reference: str
    rtol: float
    atol: float
    inputs: dict[str, tuple[int, ...]]
    output_shape: tuple[int, ...]
    methods: list[MethodCheck] = field(default_factory=list)
    kinks: list[str] = field(default_factory=list)
    singular: list[str] = field(default_factory=list)
    """Where the reference is NaN or infinite: the derivative has a singularity there."""

    @property
    def ok(self) -> bool:
        return not self.singular and all(m.ok for m in self.methods)

    @property
    def verdict(self) -> str:
        """``"agree"``, ``"singular"`` (the reference is not finite) or ``"mismatch"``."""
        if self.singular:
            return "singular"
        return "agree" if self.ok else "mismatch"


def key_text(key: Key) -> str:
    """A key as text: ``x``, ``a,b`` (a Hessian pair), ``output`` (J·u)."""
    if key is None:
        return "output"
    return ",".join(key) if isinstance(key, tuple) else key
