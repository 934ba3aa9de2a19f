"""Sparse Jacobians: colour the pattern, push one seed per colour, read the entries back.

Three steps, each callable on its own (the sparse-AD stack's split: detection lives in
``jacli.structure``; colouring and compressed evaluation live here):

* ``color_columns`` / ``color_rows``: columns that share no row (rows that share no column) get
  one colour, so one forward (reverse) pass measures them all at once.
* ``jacobian_compressed``: one JVP (VJP) per colour, vectorized with ``torch.func.vmap``, then
  each stored entry is read off its colour's compressed column (row). The values come back in
  the pattern's CSR order, ``nnz`` numbers, never a dense matrix.
* ``to_dense`` / ``to_coo``: the values laid out for a caller.

``jacobian_diagonal`` is the one-colour case without any bookkeeping: an elementwise function
(output shaped like the input) has its whole diagonal in one JVP with a tangent of ones.

A pattern is any object with ``output_shape``, ``input_shape`` and CSR arrays ``indptr``,
``indices`` over flat (C-order) indices, ``None`` for both meaning dense: ``jacli.structure.Pattern``.

Example:
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> n = 6  # y = x[:-2] - 2 x[1:-1] + x[2:]: rows touch columns i, i+1, i+2
    >>> tridiagonal = SimpleNamespace(output_shape=(n - 2,), input_shape=(n,),
    ...     indptr=np.arange(0, 3 * (n - 2) + 1, 3), indices=(np.arange(n - 2)[:, None] + np.arange(3)).ravel())
    >>> color_columns(tridiagonal)
    (array([0, 1, 2, 0, 1, 2]), 3)
    >>> f = lambda x: x[:-2] - 2 * x[1:-1] + x[2:]
    >>> output, values = jacobian_compressed(f, (torch.ones(n, dtype=torch.float64),), 0, tridiagonal, "forward")
    >>> values.tolist()[:6]
    [1.0, -2.0, 1.0, 1.0, -2.0, 1.0]
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Callable, Sequence

import numpy as np
import torch

from jacli.engine.autodiff import _quiet

Function = Callable[..., torch.Tensor]
Pattern = Any
"""Anything shaped like ``jacli.structure.Pattern`` (see the module docstring)."""

Coloring = tuple[np.ndarray, int]
"""``(colors, count)``: one int64 colour per column (or row), and how many colours there are."""

STRATEGIES = ("auto", "natural", "largest_first", "dsatur")

# NOTE [colouring]
# Why by hand: networkx.greedy_color (the well-kept choice; scipy has no public colouring) needs
# the column-intersection graph as Python objects: 0.6 s for a tridiagonal at n = 10^5 and 2 s
# for a 5-point stencil at 10^5, against 0.07 s here, and it would be a new dependency.
#
# How: colouring a column only needs the colours already used in its rows, so each row keeps a
# bitmask of its used colours (a Python int) and a column takes the lowest bit free in the OR of
# its rows' masks. That is greedy distance-1 colouring of the column-intersection graph without
# building the graph: O(nnz) steps, each nonzero read twice. The steps are sequential (greedy in a
# fixed order is inherently so); numpy does everything around them: the transposed (CSC) index,
# degrees, the lower bound, and the trivial cases (no row with two columns: one colour; dense:
# one colour per column).
#
# Which order: natural-order greedy is optimal on banded patterns (a tridiagonal gets 3 whatever
# n) and on block-diagonal ones, but gives 7 colours, not 5, on a 2-D 5-point stencil (measured;
# networkx's largest_first gives 6-7 too). DSATUR (the next column is the one whose neighbours
# already use the most colours) finds 5 there, but walks every pair of columns sharing a row:
# O(sum of squared row lengths) Python steps, ~1.5 s at n = 10^5. So "auto" runs natural greedy,
# stops when it meets the lower bound (the longest row: its columns all differ), and otherwise
# runs DSATUR only while that costs less than _DSATUR_BUDGET steps (~0.5 s), keeping the fewer
# colours. Ask for "dsatur" to pay for it on larger patterns whose colouring is reused.
_DSATUR_BUDGET = 1_000_000


def _sizes(pattern: Pattern) -> tuple[int, int]:
    return math.prod(pattern.output_shape), math.prod(pattern.input_shape)


def _csr(pattern: Pattern) -> tuple[np.ndarray, np.ndarray]:
    """The pattern's (indptr, indices), materialized for a dense pattern."""
    rows, cols = _sizes(pattern)
    if pattern.indptr is None:
        return np.arange(0, rows * cols + 1, cols, dtype=np.int64), np.tile(np.arange(cols, dtype=np.int64), rows)
    return np.asarray(pattern.indptr, dtype=np.int64), np.asarray(pattern.indices, dtype=np.int64)


def _transpose(indptr: np.ndarray, indices: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of the transposed pattern (the CSC index), rows sorted within each column."""
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    t_indptr = np.zeros(columns + 1, dtype=np.int64)
    np.cumsum(np.bincount(indices, minlength=columns), out=t_indptr[1:])
    return t_indptr, rows[order]


def _greedy(ptr: list[int], members: list[int], groups: int, order: Sequence[int], count: int) -> list[int]:
    """Greedy colouring of ``count`` vertices; vertex v touches groups ``members[ptr[v]:ptr[v+1]]``."""
    used = [0] * groups  # bit c set: colour c is taken in that group
    colors = [0] * count
    for v in order:
        touched = members[ptr[v] : ptr[v + 1]]
        taken = 0
        for g in touched:
            taken |= used[g]
        color = (~taken & (taken + 1)).bit_length() - 1  # the lowest clear bit
        bit = 1 << color
        for g in touched:
            used[g] |= bit
        colors[v] = color
    return colors


def _dsatur(
    ptr: list[int], members: list[int], g_ptr: list[int], g_members: list[int], groups: int, degree: list[int]
) -> list[int]:
    """DSATUR: colour next the vertex whose neighbours use the most colours (then highest degree)."""
    count = len(ptr) - 1
    used = [0] * groups
    seen = [0] * count  # colours among a vertex's coloured neighbours, as bits
    saturation = [0] * count
    colors = [-1] * count
    heap = [(0, -d, v) for v, d in enumerate(degree)]
    heapq.heapify(heap)
    while heap:
        negative_saturation, _, v = heapq.heappop(heap)
        if colors[v] >= 0 or -negative_saturation != saturation[v]:
            continue  # a stale entry: v was coloured or pushed again with more saturation
        touched = members[ptr[v] : ptr[v + 1]]
        taken = 0
        for g in touched:
            taken |= used[g]
        color = (~taken & (taken + 1)).bit_length() - 1
        bit = 1 << color
        colors[v] = color
        for g in touched:
            used[g] |= bit
            for u in g_members[g_ptr[g] : g_ptr[g + 1]]:
                if colors[u] < 0 and not seen[u] & bit:
                    seen[u] |= bit
                    saturation[u] += 1
                    heapq.heappush(heap, (-saturation[u], -degree[u], u))
    return colors


def _color(
    g_ptr: np.ndarray, g_members: np.ndarray, count: int, strategy: str
) -> Coloring:
    """Colour ``count`` vertices so that no group (CSR ``g_ptr``, ``g_members``) repeats a colour."""
    if strategy not in STRATEGIES:
        raise ValueError(f"color: strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    groups = len(g_ptr) - 1
    lengths = np.diff(g_ptr)
    lower_bound = int(lengths.max(initial=0))
    if count == 0:
        return np.zeros(0, dtype=np.int64), 0
    if lower_bound <= 1:  # no group holds two vertices: one colour for all (elementwise, diagonal)
        return np.zeros(count, dtype=np.int64), 1
    ptr, members = _transpose(g_ptr, g_members, count)
    # An upper bound on each vertex's degree: the other members of its groups, repeats counted.
    group_of_entry = np.repeat(np.arange(groups), lengths)
    degree = np.bincount(g_members, weights=(lengths - 1)[group_of_entry], minlength=count).astype(np.int64)
    lists = ptr.tolist(), members.tolist()
    best: list[int] | None = None
    if strategy in ("auto", "natural"):
        best = _greedy(*lists, groups, range(count), count)
    elif strategy == "largest_first":
        best = _greedy(*lists, groups, np.argsort(-degree, kind="stable").tolist(), count)
    wants_dsatur = strategy == "dsatur" or (
        strategy == "auto" and max(best) + 1 > lower_bound and int((lengths * lengths).sum()) <= _DSATUR_BUDGET
    )
    if wants_dsatur:
        saturated = _dsatur(*lists, g_ptr.tolist(), g_members.tolist(), groups, degree.tolist())
        if best is None or max(saturated) < max(best):
            best = saturated
    colors = np.asarray(best, dtype=np.int64)
    return colors, int(colors.max()) + 1


def color_columns(pattern: Pattern, *, strategy: str = "auto") -> Coloring:
    """Colours for the input elements such that no output row holds two columns of one colour.

    Columns of one colour are structurally orthogonal: one forward pass with the sum of their
    basis vectors measures each of them (forward-mode compression). See NOTE [colouring].

    Args:
        pattern: a ``jacli.structure.Pattern`` (or anything with its attributes).
        strategy: ``auto`` (natural greedy, DSATUR when it may save colours and is cheap),
            ``natural``, ``largest_first`` or ``dsatur``.

    Returns:
        ``(colors, count)``: an int64 array with one colour per flat input element, and the number
        of colours (the number of forward passes).

    Example:
        >>> import numpy as np
        >>> from types import SimpleNamespace
        >>> diagonal = SimpleNamespace(output_shape=(3,), input_shape=(3,), indptr=np.arange(4), indices=np.arange(3))
        >>> color_columns(diagonal)
        (array([0, 0, 0]), 1)
    """
    rows, columns = _sizes(pattern)
    if pattern.indptr is None and rows > 0:  # dense: every column meets every other in row 0
        return np.arange(columns, dtype=np.int64), columns
    indptr, indices = _csr(pattern)
    return _color(indptr, indices, columns, strategy)


def color_rows(pattern: Pattern, *, strategy: str = "auto") -> Coloring:
    """Colours for the output elements such that no input column meets two rows of one colour.

    Rows of one colour share no column: one reverse pass (VJP) with the sum of their basis
    vectors measures each of them (reverse-mode compression). Arguments as ``color_columns``.

    Returns:
        ``(colors, count)``: one colour per flat output element, and the number of VJPs.
    """
    rows, columns = _sizes(pattern)
    if pattern.indptr is None and columns > 0:
        return np.arange(rows, dtype=np.int64), rows
    indptr, indices = _csr(pattern)
    t_indptr, t_indices = _transpose(indptr, indices, columns)
    return _color(t_indptr, t_indices, rows, strategy)


def _seeds(colors: np.ndarray, count: int, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """``count`` seeds shaped ``shape``: seed k is 1 on the elements of colour k, 0 elsewhere."""
    size = len(colors)
    seeds = like.new_zeros((count, size))
    seeds[torch.as_tensor(colors, device=like.device), torch.arange(size, device=like.device)] = 1
    return seeds.reshape((count,) + tuple(shape))


def _check_input(name: str, args: Sequence[torch.Tensor], wrt_position: int, pattern: Pattern) -> torch.Tensor:
    x = args[wrt_position]
    if tuple(x.shape) != tuple(pattern.input_shape):
        raise ValueError(
            f"{name}: input {wrt_position} has shape {tuple(x.shape)}, the pattern's input_shape is "
            f"{tuple(pattern.input_shape)}"
        )
    return x


def _check_output(name: str, output: torch.Tensor, pattern: Pattern) -> None:
    if tuple(output.shape) != tuple(pattern.output_shape):
        raise ValueError(
            f"{name}: the output has shape {tuple(output.shape)}, the pattern's output_shape is "
            f"{tuple(pattern.output_shape)}"
        )


def _of_one(f: Function, args: Sequence[torch.Tensor], wrt_position: int) -> Function:
    """``f`` as a function of ``args[wrt_position]`` alone, the other inputs held fixed."""
    before, after = tuple(args[:wrt_position]), tuple(args[wrt_position + 1 :])
    return lambda x: f(*before, x, *after)


def jacobian_compressed(
    f: Function,
    args: Sequence[torch.Tensor],
    wrt_position: int,
    pattern: Pattern,
    mode: str,
    *,
    chunk_size: int | None = None,
    coloring: Coloring | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The output and the Jacobian's stored entries, one JVP (or VJP) per colour.

    Forward mode pushes, for each column colour, the sum of that colour's basis vectors through
    ``torch.func.jvp`` (vmapped over the seeds); the Jacobian entry (r, c) is then the compressed
    product's row r for colour ``colors[c]``. Reverse mode runs ``torch.func.vjp`` once and vmaps
    its pullback over one seed per row colour; entry (r, c) is column c of row colour
    ``colors[r]``. The pattern must hold every nonzero: an entry outside it would be added into
    the entries of its colour, silently.

    Args:
        f: the compiled function, ``f(*args)``.
        args: its inputs; only ``args[wrt_position]`` is differentiated.
        pattern: the Jacobian's pattern for that input (``jacli.structure.Pattern``).
        mode: ``forward`` (colours columns: best when rows are short) or ``reverse`` (colours rows).
        chunk_size: how many seeds vmap pushes at once (bounds memory); None is all at once.
            In forward mode each chunk evaluates ``f`` again; the output is the first chunk's.
        coloring: ``color_columns(pattern)`` (forward) or ``color_rows(pattern)`` (reverse) made
            earlier, to reuse it; computed here when None.

    Returns:
        ``(output, values)``: ``f(*args)`` and a 1-D tensor of ``pattern.nnz`` entries in CSR
        order (row r's entries at ``indptr[r]:indptr[r+1]``, for columns ``indices[...]``);
        row-major over all entries for a dense pattern.

    Example:
        >>> import numpy as np
        >>> from types import SimpleNamespace
        >>> diagonal = SimpleNamespace(output_shape=(3,), input_shape=(3,), indptr=np.arange(4), indices=np.arange(3))
        >>> x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        >>> output, values = jacobian_compressed(lambda x: x**2, (x,), 0, diagonal, "reverse")
        >>> output.tolist(), values.tolist()
        ([1.0, 4.0, 9.0], [2.0, 4.0, 6.0])
    """
    if mode not in ("forward", "reverse"):
        raise ValueError(f"jacobian_compressed: mode {mode!r} is not 'forward' or 'reverse'")
    x = _check_input("jacobian_compressed", args, wrt_position, pattern)
    g = _of_one(f, args, wrt_position)
    indptr, indices = _csr(pattern)
    rows = torch.as_tensor(np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)), device=x.device)
    cols = torch.as_tensor(indices, device=x.device)
    if coloring is None:
        coloring = color_columns(pattern) if mode == "forward" else color_rows(pattern)
    colors, count = coloring
    colored, size = ("input", x.numel()) if mode == "forward" else ("output", math.prod(pattern.output_shape))
    if len(colors) != size:
        raise ValueError(
            f"jacobian_compressed: `coloring` colours {len(colors)} elements, the {colored} has {size}; "
            f"{mode} mode needs {'color_columns' if mode == 'forward' else 'color_rows'}(pattern)"
        )
    if count == 0 or len(indices) == 0:  # nothing to measure; still one forward pass for the output
        output = g(x)
        _check_output("jacobian_compressed", output, pattern)
        return output, output.new_zeros(len(indices))
    color_of = torch.as_tensor(colors, device=x.device)

    if mode == "forward" and count == 1:
        output, compressed = _jvp_by_double_backward(g, x, _seeds(colors, count, x.shape, x)[0])
        _check_output("jacobian_compressed", output, pattern)
        return output, compressed.reshape(-1)[rows]  # one colour: J[r, c] = (J·1)[r]

    if mode == "forward":

        def push(seed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y, dy = torch.func.jvp(g, (x,), (seed,))
            return dy, y

        with _quiet():
            compressed, outputs = torch.func.vmap(push, chunk_size=chunk_size)(_seeds(colors, count, x.shape, x))
        output = outputs[0]
        _check_output("jacobian_compressed", output, pattern)
        values = compressed.reshape(count, -1)[color_of[cols], rows]  # J[r, c] = (J·seed_color(c))[r]
        return output, values

    output, pullback = torch.func.vjp(g, x)
    _check_output("jacobian_compressed", output, pattern)

    def pull(seed: torch.Tensor) -> torch.Tensor:
        (grad,) = pullback(seed)
        return grad

    with _quiet():
        compressed = torch.func.vmap(pull, chunk_size=chunk_size)(_seeds(colors, count, output.shape, output))
    values = compressed.reshape(count, -1)[color_of[rows], cols]  # J[r, c] = (seed_color(r)ᵀJ)[c]
    return output, values


def _jvp_by_double_backward(g: Function, x: torch.Tensor, tangent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``g(x)`` and J·u from two backward passes: u = ∂(vᵀJ·u)/∂v at any v.

    # NOTE [one JVP by double backward]: vᵀJ is linear in v, so differentiating it with respect
    # to v in the direction of u gives J·u (torch.autograd.functional.jvp's way). For a single
    # seed it is 2-8x faster than torch.func.jvp on torch 2.13, whose forward mode runs `x + 1`,
    # `x * 2` and broadcasting products through Python reference decompositions (0.4-0.5 ms a
    # call at any size); with several seeds the vmapped forward pass is as fast or faster, so
    # it is used there.
    """
    leaf = x.detach().requires_grad_(True)
    y = g(leaf)
    if not y.requires_grad:
        return y.detach(), torch.zeros_like(y).detach()
    v = torch.zeros_like(y, requires_grad=True)
    (pulled,) = torch.autograd.grad(y, leaf, v, create_graph=True, allow_unused=True)
    if pulled is None or not pulled.requires_grad:  # J is zero
        return y.detach(), torch.zeros_like(y).detach()
    (pushed,) = torch.autograd.grad(pulled, v, tangent, allow_unused=True)
    return y.detach(), (pushed if pushed is not None else torch.zeros_like(y)).detach()


def jacobian_diagonal(f: Function, args: Sequence[torch.Tensor], wrt_position: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The output and the diagonal of an elementwise function's Jacobian, from one VJP.

    When output element i depends only on input element i (elementwise, also through
    broadcasting against the other inputs), J is diagonal and 1ᵀJ is that diagonal. The caller
    vouches for the pattern (``Pattern.is_diagonal``); the shapes are checked here.

    # NOTE [diagonal by a VJP]: J·1 (one JVP) gives the same numbers, but torch's forward mode
    # runs `x + 1` with a Python number through a reference decomposition (about 1 ms a call on
    # torch 2.13), where one backward pass costs what the function costs.

    Returns:
        ``(output, diagonal)``, the diagonal shaped like ``args[wrt_position]``.

    Example:
        >>> x = torch.tensor([1.0, 2.0], dtype=torch.float64)
        >>> jacobian_diagonal(lambda x, s: s * x**2, (x, torch.tensor(3.0, dtype=torch.float64)), 0)
        (tensor([ 3., 12.], dtype=torch.float64), tensor([ 6., 12.], dtype=torch.float64))
    """
    output, (diagonal,) = jacobian_diagonals(f, args, (wrt_position,))
    return output, diagonal


def jacobian_diagonals(
    f: Function, args: Sequence[torch.Tensor], wrt_positions: Sequence[int]
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """``jacobian_diagonal`` for several inputs at once: one forward and one backward pass.

    Each ``args[i]`` for i in ``wrt_positions`` must have a diagonal Jacobian (output element k
    depends on element k of that input alone); 1ᵀJ_i is then its diagonal, and one backward
    pass with ones gives every 1ᵀJ_i together.

    Example:
        >>> a, b = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([3.0, 4.0], dtype=torch.float64)
        >>> jacobian_diagonals(lambda a, b: a * torch.sin(b), (a, b), (0, 1))[1][0].tolist() == torch.sin(b).tolist()
        True
    """
    positions = tuple(wrt_positions)
    if len(args) == 1 and positions == (0,):  # the common case, without the bookkeeping
        leaves = targets = [args[0].detach().requires_grad_(True)]
    else:
        leaves = [a.detach().requires_grad_(True) if i in positions else a for i, a in enumerate(args)]
        targets = [leaves[i] for i in positions]
    y = f(*leaves)
    for i, x in zip(positions, targets):
        if y.shape != x.shape:
            raise ValueError(
                f"jacobian_diagonal: the output has shape {tuple(y.shape)} but input {i} has "
                f"{tuple(x.shape)}; a diagonal Jacobian needs them equal (use jacobian_compressed)"
            )
    if not y.requires_grad:  # the output depends on none of them
        return y.detach(), tuple(torch.zeros_like(x).detach() for x in targets)
    # the backward pass of sum(y) starts from ones shaped like y, as grad_outputs=ones_like(y) would,
    # without torch.autograd's size check of grad_outputs, which imports torch.fx (25 ms of a CLI call)
    grads = torch.autograd.grad(y.sum(), targets, allow_unused=True)  # no graph: nothing to detach
    grads = tuple(g.contiguous() if g is not None else None for g in grads)  # (ones may come expanded)
    if all(g is not None for g in grads):
        return y.detach(), grads
    return y.detach(), tuple(g if g is not None else torch.zeros_like(x).detach() for g, x in zip(grads, targets))


def to_coo(pattern: Pattern, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rows, cols, values)``: flat output and input indices (int64, on ``values``' device).

    ``torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (output_size, input_size))``
    builds the matrix without a dense one in between.
    """
    indptr, indices = _csr(pattern)
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    return (
        torch.as_tensor(rows, device=values.device),
        torch.as_tensor(indices, device=values.device),
        values,
    )


def to_dense(pattern: Pattern, values: torch.Tensor) -> torch.Tensor:
    """The Jacobian as a dense tensor shaped ``output_shape + input_shape`` (zeros off the pattern)."""
    out_size, in_size = _sizes(pattern)
    rows, cols, values = to_coo(pattern, values)
    dense = values.new_zeros(out_size * in_size)
    dense[rows * in_size + cols] = values
    return dense.reshape(tuple(pattern.output_shape) + tuple(pattern.input_shape))
