"""Spec → tensor: constructors, literals, one-hot ``v``s, and the checks on tensors and numbers.

torch is imported inside the functions that need it, so that importing this module stays cheap.
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Iterable

from jacli.errors import InputError, ShapeError
from jacli.inputs import files
from jacli.inputs.spec import (
    FLOAT64_MAX,
    Constructor,
    Literal,
    OneHot,
    Spec,
    check_spec_budget,
    naming,
)
from jacli.limits import check_budget, format_integer


def seed_for(seed: int, name: str) -> int:
    """Each random input draws from its own generator, so adding an input changes no other."""
    return (seed * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % (2**63)


def materialize(
    spec: Spec,
    *,
    name: str,
    dtype: Any,
    device: Any,
    seed: int = 0,
    budget: int | None = None,
    output_shape: tuple[int, ...] | None = None,
) -> Any:
    """Make the tensor a spec describes.

    Args:
        spec: from ``parse_spec``.
        name: the variable (or ``"v"``); seeds random specs and names errors.
        dtype, device: of the result.
        seed: the run's seed (``seed``).
        budget: refuse specs whose tensor would exceed this many bytes, before allocating.
        output_shape: the output's (or the input's) shape, given only when making a ``v``: the
            ``v`` forms without a shape take it, and errors then have ``param`` ``"v"``.

    Raises:
        InputError: unreadable files, non-numeric data.
        ResourceError: sizes over the budget.
        ShapeError: a onehot index outside the output's shape.

    Example:
        >>> from jacli.inputs.spec import parse_spec
        >>> materialize(parse_spec("ones", for_v=True), name="v", dtype=None, device="cpu", output_shape=(2,))
        tensor([1., 1.])
    """
    with naming("v" if output_shape is not None else "inputs"):
        return _materialize(spec, name, dtype, device, seed, budget, output_shape)


def _materialize(
    spec: Spec, name: str, dtype: Any, device: Any, seed: int, budget: int | None, output_shape: tuple[int, ...] | None
) -> Any:
    import torch

    itemsize = torch.empty((), dtype=dtype).element_size()
    if isinstance(spec, (Constructor, OneHot)) and (getattr(spec, "shape", None) is None):
        if output_shape is None:
            raise InputError(f"{spec.text!r} takes the output's shape, which is only known for `v`", param="inputs")
    if isinstance(spec, OneHot):
        return _onehot(spec, output_shape or (), dtype, device)
    shape = spec.shape if isinstance(spec, (Literal, Constructor)) else None
    if isinstance(spec, Constructor) and shape is None:
        shape = output_shape
    if shape is not None and budget is not None:
        check_spec_budget(spec, name, itemsize, budget, shape)
    if isinstance(spec, Literal):
        return torch.tensor(spec.values, dtype=torch.float64).to(dtype=dtype, device=device)
    if isinstance(spec, Constructor):
        return _construct(spec, shape, name, seed, dtype, device)
    tensor = files.read_file(spec, name, budget)
    if budget is not None:
        check_budget(tensor.numel() * itemsize, budget, f"{name} = {spec.text} ({tensor.numel():,} elements)",
                     "Use a smaller file, or raise `max_memory`.")
    return tensor.to(dtype=dtype, device=device)


def _construct(spec: Constructor, shape: tuple[int, ...], name: str, seed: int, dtype: Any, device: Any) -> Any:
    import torch

    kind = spec.kind
    if kind == "eye":
        return torch.eye(*shape, dtype=dtype, device=device)
    if kind == "ones":
        return torch.ones(shape, dtype=dtype, device=device)
    if kind == "zeros":
        return torch.zeros(shape, dtype=dtype, device=device)
    if kind == "full":
        return torch.full(shape, spec.params[0], dtype=dtype, device=device)
    if kind == "arange":
        return torch.arange(*spec.params, dtype=dtype, device=device)
    if kind == "linspace":
        return torch.linspace(*spec.params, shape[0], dtype=dtype, device=device)
    # rand / randn: drawn on the CPU from a local generator, so values match on every device.
    generator = torch.Generator(device="cpu").manual_seed(seed_for(seed, name))
    draw = torch.rand if kind == "rand" else torch.randn
    return draw(shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)


def _onehot(spec: OneHot, shape: tuple[int, ...], dtype: Any, device: Any) -> Any:
    import torch

    numel = math.prod(shape)
    tensor = torch.zeros(shape, dtype=dtype, device=device)
    index = spec.index
    if len(index) == 1 and len(shape) != 1:
        if not -numel <= index[0] < numel:
            raise ShapeError(
                f"`v` {spec.text}: flat index {index[0]} is out of range for the output's "
                f"{numel} elements (shape {shape}); use 0 to {numel - 1}",
                param="v",
            )
        tensor.view(-1)[index[0]] = 1
        return tensor
    if len(index) != len(shape):
        raise ShapeError(
            f"`v` {spec.text}: the output has shape {shape}, so give one flat index or "
            f"{len(shape)} indices, like onehot:{','.join('0' * len(shape)) or '0'}",
            param="v",
        )
    for i, size in zip(index, shape):
        if not -size <= i < size:
            raise ShapeError(
                f"`v` {spec.text}: index {i} is out of range for the output's shape {shape}", param="v"
            )
    tensor[index] = 1
    return tensor


def check_python_numbers(given: Iterable[tuple[str | None, Any]]) -> None:
    """``check_python_number`` for each of the API's inputs, named ``inputs['x']``."""
    for name, value in given:
        check_python_number(value, f"inputs[{name!r}]" if name is not None else "an input", param="inputs")


def check_python_number(value: Any, where: str, param: str | None = None) -> None:
    """Refuse Python ints too large for float64 (``10**400``) before anything converts or prints
    them: float() raises OverflowError, and str() a ValueError beyond 4,300 digits. Only ints and
    lists or tuples are walked; tensors and arrays cannot hold such numbers."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif type(item) is int and not -(2**1023) < item < 2**1023:
            try:
                float(item)
            except OverflowError:
                raise InputError(
                    f"{where} holds the integer {format_integer(item)}, larger than float64 can hold "
                    f"(about {FLOAT64_MAX}); give a float, e.g. float('inf') for infinity",
                    param=param,
                ) from None


def fit_to_output(v: Any, output_shape: tuple[int, ...], spec_text: str, what: str = "the output") -> Any:
    """Check ``v``'s shape against the output's (or an input's, ``what``); a single number fits a
    one-element target."""
    shape = tuple(v.shape)
    if shape == output_shape:
        return v
    if v.numel() == 1 and math.prod(output_shape) == 1:
        return v.reshape(output_shape)
    raise ShapeError(
        f"`v` {spec_text} has shape {_show(shape)} but {what} has shape {_show(output_shape)}; "
        f"v must match {what}. Try `v` {_example(output_shape)} (or `v` ones, `v` onehot:"
        f"{','.join('0' for _ in output_shape) or '0'})",
        param="v",
    )


def _show(shape: tuple[int, ...]) -> str:
    return "() (a scalar)" if not shape else str(shape)


def _example(shape: tuple[int, ...]) -> str:
    """A literal spec of that shape, counting 1, 2, 3 ... (abbreviated when large)."""
    if not shape:
        return "1"
    if math.prod(shape) > 12:
        return "ones:" + "x".join(map(str, shape))
    counter = iter(range(1, math.prod(shape) + 1))

    def build(dims: tuple[int, ...]) -> str:
        if len(dims) == 1:
            return ",".join(str(next(counter)) for _ in range(dims[0]))
        return ",".join(f"[{build(dims[1:])}]" for _ in range(dims[0]))

    text = build(shape)
    return text if len(shape) == 1 else f"'[{text}]'"
