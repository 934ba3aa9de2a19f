"""Pictures of a Jacobian or a Hessian: a heatmap, a braille spy plot, a PNG or SVG file.

Formatting only: a view reads a computed result, takes no derivative and runs no formula.

Every picture shows the classic matrix: one row per output element, one column per input
element, the inputs side by side in ``wrt`` order (for a Hessian, the rows are the ``wrt``
inputs' elements too). A matrix larger than the space is downsampled in square tiles of k×k
entries, and each tile shows the entry of largest magnitude in it (a NaN wins over everything),
so a nonzero never disappears however small the picture.

Structured blocks (``diagonal``, ``sparse``) are read from their nonzeros and dense blocks a
band of rows at a time, so a picture takes memory proportional to the picture, never to the
dense matrix (``to_dense()`` is never called).

NOTE [heatmap levels]
Magnitudes span decades (softmax's diagonal against its off-diagonal products, a stiff system's
rows), so the colours are decades below the largest magnitude M: level 5 is (M/10, M], level 4
(M/100, M/10], ..., level 1 everything smaller than M/10⁴ but not zero. An exact zero has its own
colour (and ``·`` in text), NaN and ±inf theirs: "tiny" and "zero" never look alike.

Example:
    >>> import jacli
    >>> from jacli import views
    >>> result = jacli.compute_jacobian("x[:-1] - x[1:]", {"x": [1.0, 2.0, 3.0]})
    >>> print("\\n".join(views.spy_lines(result, width=40)))
    Sparsity pattern of ∂y/∂x
    2×3, 4 nonzeros, one dot per entry
       ┌──┐
     0 │⠙⠂│
       └──┘
        0 2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from jacli.errors import InputError, JacliError
from jacli.result import output_symbol

if TYPE_CHECKING:
    import numpy as np
    import torch
    from rich.console import Console
    from rich.text import Text

VIEWS = ("heatmap", "spy")
"""What ``view`` may be."""

PLOT_SUFFIXES = (".png", ".svg")
"""The picture files ``plot`` writes."""

PLOT_INSTALL = 'pip install "jacli[plot]"'

LEVELS = 5
"""Colours per sign: one per decade below the largest magnitude (NOTE [heatmap levels])."""

POSITIVE = ("#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f")
NEGATIVE = ("#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061")
"""ColorBrewer's RdBu, a diverging map: pale for small magnitudes, dark for large; level 1 first."""

ZERO, NAN, POS_INF, NEG_INF = "#3a3a3a", "#33cc33", "#ffd700", "#00e5e5"
"""Exact zeros are dark grey (distinct from the palest, tiny values); NaN and ±inf stand out."""

PLOT_CELLS = 1000
"""A plotted matrix larger than this many rows or columns is downsampled to it (max-abs tiles)."""


# -- the classic matrix -------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """One block of the classic matrix at (``row``, ``column``): dense ``values`` (a 2-D tensor),
    or ``coo`` = (rows, cols, values) relative to the block's corner."""

    row: int
    column: int
    rows: int
    columns: int
    values: Any = None
    coo: Any = None


@dataclass(frozen=True)
class Matrix:
    """The classic matrix of a Jacobian or a Hessian, as the blocks it is made of.

    ``row_groups``/``column_groups``: (input name, first index, last index + 1) of each input's
    elements; ``what``: ``∂y/∂x`` or ``∂²f/∂x²``, for titles; ``structured``: a block is kept
    diagonal or sparse (the file picture is then a spy plot).
    """

    rows: int
    columns: int
    pieces: tuple[Piece, ...]
    row_groups: tuple[tuple[str, int, int], ...]
    column_groups: tuple[tuple[str, int, int], ...]
    what: str
    structured: bool


def _groups(result: Any) -> tuple[tuple[str, int, int], ...]:
    """Each input's columns, in the classic matrix's order (``wrt`` as the user gave it)."""
    names = list(result.blocks.parts) if result.command == "hessian" else list(result.blocks)
    groups, start = [], 0
    for name in names:
        size = result.inputs[name].numel()
        groups.append((name, start, start + size))
        start += size
    return tuple(groups)


def classic_matrix(result: Any) -> Matrix:
    """The classic matrix of a ``JacobianResult`` or ``HessianResult``, without densifying a
    structured block.

    Example:
        >>> import jacli
        >>> matrix = classic_matrix(jacli.compute_jacobian("[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5}))
        >>> matrix.rows, matrix.columns, matrix.column_groups
        (2, 2, (('r', 0, 1), ('t', 1, 2)))
    """
    columns = _groups(result)
    width = columns[-1][2] if columns else 0
    if result.command == "jacobian":
        height = result.output.numel()
        pieces = []
        for name, start, stop in columns:
            block = result.blocks[name]
            if block.layout == "dense":
                pieces.append(Piece(0, start, height, stop - start, values=block.values.reshape(height, stop - start)))
            else:
                pieces.append(Piece(0, start, height, stop - start, coo=block.coo()))
        structured = any(block.layout != "dense" for block in result.blocks.values())
        out = output_symbol(result.inputs)  # as the pretty view names it: y, unless an input is called y
        names = [name for name, _, _ in columns]
        wrt = names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"
        rows = ((out, 0, height),)
        return Matrix(height, width, tuple(pieces), rows, columns, f"∂{out}/∂{wrt}", structured)
    if result.command == "hessian":
        pieces = [
            Piece(a_start, b_start, a_stop - a_start, b_stop - b_start,
                  values=result.blocks[(a, b)].reshape(a_stop - a_start, b_stop - b_start))
            for a, a_start, a_stop in columns for b, b_start, b_stop in columns
        ]
        names = [name for name, _, _ in columns]
        wrt = names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"
        return Matrix(width, width, tuple(pieces), columns, columns, f"∂²{output_symbol(result.inputs)}/∂{wrt}²", False)
    raise InputError(
        f"`view` and `plot` draw a Jacobian or a Hessian, not the result of {result.command}; "
        "ask for the jacobian or the hessian instead", param="view",
    )


# -- tiles --------------------------------------------------------------------------------------


def tile_size(rows: int, columns: int, max_rows: int, max_columns: int) -> int:
    """The side k of the square tiles that fit a ``rows``×``columns`` matrix into at most
    ``max_rows``×``max_columns`` cells: the smallest k with ⌈rows/k⌉ ≤ max_rows and
    ⌈columns/k⌉ ≤ max_columns (one tile side for both axes keeps the picture's proportions).

    >>> tile_size(10000, 9998, 184, 184), tile_size(40, 40, 46, 46)
    (55, 1)
    """
    return max(1, -(-rows // max(1, max_rows)), -(-columns // max(1, max_columns)))


@dataclass(frozen=True)
class Tiles:
    """A matrix reduced to k×k tiles: per tile the largest and smallest value (NaN left out,
    0 where the tile has nothing else), whether it holds a NaN, and the matrix's nonzeros."""

    k: int
    largest: "np.ndarray"
    smallest: "np.ndarray"
    nan: "np.ndarray"
    nnz: int

    @property
    def signed(self) -> "np.ndarray":
        """Each tile's entry of largest magnitude (the positive one of a tie), NaN where the tile
        holds a NaN."""
        import numpy as np

        value = np.where(self.largest >= -self.smallest, self.largest, self.smallest)
        return np.where(self.nan, np.nan, value)

    @property
    def occupied(self) -> "np.ndarray":
        """Tiles that hold a nonzero (NaN counts: it is not zero)."""
        return (self.largest != 0) | (self.smallest != 0) | self.nan


BAND_ENTRIES = 1 << 20
"""A dense block is reduced in bands of whole tile rows of about this many entries (at least one
tile row), so a picture of a dense block needs a few such bands of memory."""


def reduce_tiles(matrix: Matrix, k: int) -> Tiles:
    """``matrix`` in k×k tiles (the last ones may be partial), in memory of the tiles plus one band
    of a dense block at a time.

    >>> import torch
    >>> piece = Piece(0, 0, 2, 3, values=torch.tensor([[1.0, 0.0, -4.0], [0.0, 0.0, 0.0]]))
    >>> tiles = reduce_tiles(Matrix(2, 3, (piece,), (), (), "", False), 2)
    >>> tiles.signed.tolist(), tiles.occupied.tolist(), tiles.nnz
    ([[1.0, -4.0]], [[True, True]], 2)
    """
    import torch

    grid_rows, grid_columns = -(-matrix.rows // k), -(-matrix.columns // k)
    largest = torch.zeros(grid_rows * grid_columns, dtype=torch.float64)
    smallest = torch.zeros_like(largest)
    nan = torch.zeros(grid_rows * grid_columns, dtype=torch.bool)
    nnz = 0

    def add(cells: "torch.Tensor", values: "torch.Tensor") -> None:
        is_nan = torch.isnan(values)
        finite = torch.where(is_nan, torch.zeros_like(values), values)
        largest.scatter_reduce_(0, cells, finite, "amax")
        smallest.scatter_reduce_(0, cells, finite, "amin")
        nan.index_fill_(0, cells[is_nan], True)

    for piece in matrix.pieces:
        if piece.coo is not None:
            rows, cols, values = (t.detach().cpu() for t in piece.coo)
            keep = values != 0  # an explicitly stored zero is still zero (NaN != 0 is kept)
            rows, cols, values = rows[keep], cols[keep], values[keep].to(torch.float64)
            nnz += len(values)
            add(((rows + piece.row) // k) * grid_columns + (cols + piece.column) // k, values)
            continue
        dense = piece.values.detach()
        column_cells = (torch.arange(piece.columns) + piece.column) // k
        rows_at_once = max(1, BAND_ENTRIES // max(1, piece.columns) // k) * k
        start = 0
        while start < piece.rows:
            # A band of whole tile rows (zero-padded where the piece starts or ends inside one):
            # reduced over each tile's rows as a (tiles, k, columns) view, then scattered by column.
            first_tile = (piece.row + start) // k
            stop = min(piece.rows, first_tile * k + rows_at_once - piece.row)
            tiles_here = -(-(piece.row + stop) // k) - first_tile
            band = torch.zeros((tiles_here * k, piece.columns), dtype=torch.float64)
            offset = piece.row + start - first_tile * k
            band[offset:offset + stop - start] = dense[start:stop].cpu()
            nnz += int(torch.count_nonzero(band))
            is_nan = torch.isnan(band).reshape(tiles_here, k, -1).any(1)
            band = torch.nan_to_num(band, nan=0.0, posinf=math.inf, neginf=-math.inf).reshape(tiles_here, k, -1)
            cells = ((torch.arange(tiles_here) + first_tile)[:, None] * grid_columns + column_cells[None, :]).reshape(-1)
            largest.scatter_reduce_(0, cells, band.amax(1).reshape(-1), "amax")
            smallest.scatter_reduce_(0, cells, band.amin(1).reshape(-1), "amin")
            nan.index_fill_(0, cells[is_nan.reshape(-1)], True)
            start = stop
    shape = (grid_rows, grid_columns)
    return Tiles(k, largest.reshape(shape).numpy(), smallest.reshape(shape).numpy(), nan.reshape(shape).numpy(), nnz)


# -- levels -------------------------------------------------------------------------------------


def levels(signed: "np.ndarray") -> tuple["np.ndarray", float]:
    """Each value's class: 0 for exact zero, ±1…±LEVELS by sign and decade below the largest
    finite magnitude M (NOTE [heatmap levels]), ±(LEVELS + 1) for ±inf, and LEVELS + 2 for NaN;
    and M (0 when nothing is finite and nonzero).

    >>> import numpy as np
    >>> levels(np.array([0.0, 1.0, -0.05, 1e-9, -np.inf, np.nan]))[0].tolist()
    [0, 5, -4, 1, -6, 7]
    """
    import numpy as np

    magnitude = np.abs(signed)
    finite = np.isfinite(signed) & (signed != 0)
    top = float(magnitude[finite].max()) if finite.any() else 0.0
    sign = (signed > 0).astype(np.int64) - (signed < 0).astype(np.int64)
    classes = np.zeros(signed.shape, dtype=np.int64)
    if top > 0:
        decades = np.floor(np.log10(top / np.where(finite, magnitude, top)))
        classes = np.where(finite, sign * np.clip(LEVELS - decades, 1, LEVELS).astype(np.int64), 0)
    classes = np.where(np.isinf(signed), sign * (LEVELS + 1), classes)
    return np.where(np.isnan(signed), LEVELS + 2, classes), top


def level_range(level: int, top: float) -> str:
    """The values of class ``level`` (±1…±LEVELS) when the largest magnitude is ``top``.

    >>> level_range(5, 0.25), level_range(-4, 0.25), level_range(1, 0.25)
    ('(0.025, 0.25]', '[-0.025, -0.0025)', '(0, 2.5e-05]')
    """
    high = top / 10 ** (LEVELS - abs(level))
    low = high / 10 if abs(level) > 1 else 0.0
    if level > 0:
        return f"({_short(low)}, {_short(high)}]"
    return f"[{_short(-high)}, {_short(-low) if low else '0'})"


def _short(value: float) -> str:
    return f"{value:.2g}"


COLOURS = {
    0: ZERO, LEVELS + 2: NAN, LEVELS + 1: POS_INF, -(LEVELS + 1): NEG_INF,
    **{level: POSITIVE[level - 1] for level in range(1, LEVELS + 1)},
    **{-level: NEGATIVE[level - 1] for level in range(1, LEVELS + 1)},
}
"""The heatmap's colour for each class of ``levels``."""

GLYPHS = {
    0: " ·", LEVELS + 2: " N", LEVELS + 1: "+∞", -(LEVELS + 1): "-∞",
    **{level: f"+{level}" for level in range(1, LEVELS + 1)},
    **{-level: f"-{level}" for level in range(1, LEVELS + 1)},
}
"""The text heatmap's two characters for each class (no colour: a pipe, NO_COLOR, TERM=dumb)."""


# -- the heatmap --------------------------------------------------------------------------------


def _title(result: Any, matrix: Matrix) -> str:
    kind = "Hessian" if result.command == "hessian" else "Jacobian"
    return f"{kind} {matrix.what} of {result.expression}"


def _nonzeros(count: int) -> str:
    return f"{count:,} nonzero" + ("" if count == 1 else "s")


def _tile_words(k: int, what: str) -> str:
    if k == 1:
        return f"one {what} per entry"
    if what == "dot":
        return f"each dot a {k}×{k} tile, set where the tile holds a nonzero"
    return f"each cell a {k}×{k} tile, showing its entry of largest magnitude"


def _groups_line(label: str, groups: Sequence[tuple[str, int, int]]) -> str | None:
    if len(groups) < 2:
        return None
    return f"{label}: " + ", ".join(f"{name} {start}" + (f"–{stop - 1}" if stop - start > 1 else "")
                                     for name, start, stop in groups)


def _column_axis(margin: int, grid_columns: int, cell: int, k: int) -> str:
    """Each labelled cell's first column index, written from its left edge."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9)
                if s * cell >= max(8, len(str((grid_columns - 1) * k)) + 2))
    line = " " * margin
    for cell_index in range(0, grid_columns, step):
        position = margin + cell_index * cell
        line = line.ljust(position) + str(cell_index * k)
    return line


def heatmap(result: Any, *, width: int = 80, height: int | None = None, color: bool = True) -> list["Text"]:
    """The heatmap of a Jacobian or Hessian, as lines of rich ``Text``.

    In colour (``color=True``) each character is ▀ with two matrix cells: the upper one in the
    foreground colour, the lower one in the background colour; without colour each cell is two
    characters (``+5``, ``-2``, `` ·``, see ``GLYPHS``). ``width`` and ``height`` (lines; ``None``:
    as many as the width allows for a square picture) bound the grid.

    Example:
        >>> import jacli
        >>> result = jacli.compute_jacobian("[x[0]*x[1], -x[0], 0*x[1]]", {"x": [2.0, 1e-3]})
        >>> for line in heatmap(result, color=False): print(line.plain.rstrip())
        Jacobian ∂y/∂x of [x[0]*x[1], -x[0], 0*x[1]]: 3×2, 3 nonzeros, one cell per entry
          0
        0 +2+5
          -5 ·
           · ·
        +5 (0.2, 2]  +4 (0.02, 0.2]  +3 (0.002, 0.02]  +2 (0.0002, 0.002]
        +1 (0, 0.0002]
        -5 [-2, -0.2)  -4 [-0.2, -0.02)  -3 [-0.02, -0.002)  -2 [-0.002, -0.0002)
        -1 [-0.0002, 0)
         · exactly 0   N nan  +∞ inf  -∞ -inf
    """
    from rich.text import Text

    matrix = classic_matrix(result)
    margin = len(str(max(matrix.rows - 1, 0))) + 1
    cell = 1 if color else 2
    max_columns = max(1, (width - margin) // cell)
    lines_per_cell = 0.5 if color else 1
    if height is None:
        max_rows = max_columns
    else:
        # Title, groups, axis, the legend at its longest (numbers like 1.2e-100), the prompt after.
        groups = sum(len(g) > 1 for g in (matrix.row_groups, matrix.column_groups))
        reserved = 3 + groups + len(_legend(1.5e-100, color, width))
        max_rows = max(1, int((height - reserved) / lines_per_cell))
    k = tile_size(matrix.rows, matrix.columns, max_rows, max_columns)
    out: list[Text] = []
    title = f"{_title(result, matrix)}: {matrix.rows}×{matrix.columns}"
    if not matrix.rows or not matrix.columns:
        return [Text(f"{title}: an empty matrix, nothing to draw")]
    tiles = reduce_tiles(matrix, k)
    classes, top = levels(tiles.signed)
    out.append(Text(f"{title}, {_nonzeros(tiles.nnz)}, {_tile_words(k, 'cell')}"))
    for label, groups in (("rows", matrix.row_groups), ("columns", matrix.column_groups)):
        line = _groups_line(label, groups)
        if line:
            out.append(Text(line))
    grid_rows, grid_columns = classes.shape
    out.append(Text(_column_axis(margin, grid_columns, cell, k)))
    rows_per_line = 2 if color else 1
    for line_index, first in enumerate(range(0, grid_rows, rows_per_line)):
        label = str(first * k) if line_index % 5 == 0 else ""
        text = Text(label.rjust(margin - 1) + " ")
        for column in range(grid_columns):
            if color:
                upper = COLOURS[int(classes[first, column])]
                lower = COLOURS[int(classes[first + 1, column])] if first + 1 < grid_rows else None
                text.append("▀", style=f"{upper} on {lower}" if lower else upper)
            else:
                text.append(GLYPHS[int(classes[first, column])])
        out.append(text)
    out += _legend(top, color, width)
    return out


def _legend(top: float, color: bool, width: int) -> list["Text"]:
    """Each class's swatch and values: positives, negatives, then zero, NaN and ±inf, each group
    from its own line, wrapped at ``width``."""
    from rich.text import Text

    if top == 0:
        top = 1.0  # nothing finite and nonzero: the ranges are only a scale
    groups = [
        [(level, level_range(level, top)) for level in range(LEVELS, 0, -1)],
        [(-level, level_range(-level, top)) for level in range(LEVELS, 0, -1)],
        [(0, "exactly 0"), (LEVELS + 2, "nan"), (LEVELS + 1, "inf"), (-(LEVELS + 1), "-inf")],
    ]
    lines = []
    for group in groups:
        line = Text()
        for cls, words in group:
            entry = Text()
            _swatch(entry, cls, color)
            entry.append(f" {words}")
            if line and len(line) + 2 + len(entry) > width:
                lines.append(line)
                line = Text()
            if line:
                line.append("  ")
            line.append_text(entry)
        lines.append(line)
    return lines


def _swatch(line: "Text", cls: int, color: bool) -> None:
    if color:
        line.append("██", style=COLOURS[cls])
    else:
        line.append(GLYPHS[cls])


# -- spy ----------------------------------------------------------------------------------------

BRAILLE = 0x2800
DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
"""The bit of each dot of a braille character, by (row 0-3, column 0-1): Unicode's numbering."""


def spy_lines(result: Any, *, width: int = 80, height: int | None = None) -> list[str]:
    """The sparsity pattern of a Jacobian or Hessian in braille, as UnicodePlots.jl draws it:
    each character holds 2×4 dots, each dot one entry (or one k×k tile: set when the tile holds a
    nonzero), in a box with the first and last row and column indices.

    ``height`` (lines; ``None``: as many as the width allows for a square picture) and ``width``
    bound the picture.
    """
    matrix = classic_matrix(result)
    margin = len(str(max(matrix.rows - 1, 0))) + 2
    inner = max(1, width - margin - 2)
    groups = sum(len(g) > 1 for g in (matrix.row_groups, matrix.column_groups))
    max_lines = inner if height is None else max(1, height - 6 - groups)  # titles, box, axis, prompt
    title = f"Sparsity pattern of {matrix.what}"
    if not matrix.rows or not matrix.columns:
        return [title, f"{matrix.rows}×{matrix.columns}: an empty matrix, nothing to draw"]
    k = tile_size(matrix.rows, matrix.columns, 4 * max_lines, 2 * inner)
    tiles = reduce_tiles(matrix, k)
    occupied = tiles.occupied
    dot_rows, dot_columns = occupied.shape
    chars, lines_count = -(-dot_columns // 2), -(-dot_rows // 4)
    body = []
    for line in range(lines_count):
        text = []
        for char in range(chars):
            code = 0
            for dy in range(4):
                for dx in range(2):
                    r, c = 4 * line + dy, 2 * char + dx
                    if r < dot_rows and c < dot_columns and occupied[r, c]:
                        code |= DOTS[dy][dx]
            text.append(chr(BRAILLE + code) if code else " ")
        body.append("".join(text))
    subtitle = f"{matrix.rows}×{matrix.columns}, {_nonzeros(tiles.nnz)}, {_tile_words(k, 'dot')}"
    full = margin + chars + 2
    out = [title.center(max(full, len(title))).rstrip(), subtitle.center(max(full, len(subtitle))).rstrip()]
    for label, groups in (("rows", matrix.row_groups), ("columns", matrix.column_groups)):
        line = _groups_line(label, groups)
        if line:
            out.append(line)
    out.append(" " * margin + "┌" + "─" * chars + "┐")
    for index, text in enumerate(body):
        label = "0" if index == 0 else str(matrix.rows - 1) if index == len(body) - 1 else ""
        out.append(label.rjust(margin - 1) + " │" + text + "│")
    out.append(" " * margin + "└" + "─" * chars + "┘")
    last = str(matrix.columns - 1)
    axis = " " * (margin + 1) + "0"
    if matrix.columns > 1:
        axis = axis.ljust(margin + 1 + chars - len(last)) + last if chars > len(last) + 1 else axis + " " + last
    out.append(axis)
    return out


# -- the terminal -------------------------------------------------------------------------------


def print_view(result: Any, view: str, console: "Console") -> None:
    """Print ``view`` (``heatmap`` or ``spy``) of ``result`` on ``console``: in colour where the
    console has 256 colours or more (a terminal, FORCE_COLOR; not NO_COLOR or TERM=dumb), as text elsewhere,
    sized to the console's width, and to its height on a terminal."""
    from rich.text import Text

    if view not in VIEWS:
        raise InputError(f"`view` {view!r} is not one of {', '.join(VIEWS)}", param="view")
    height = console.height if console.is_terminal else None
    if view == "spy":
        for line in spy_lines(result, width=console.width, height=height):
            console.print(Text(line), crop=False, soft_wrap=True)
        return
    # Five shades per sign need 256 colours; 16 would merge them, and the text form says more.
    color = console.color_system in ("256", "truecolor") and not console.no_color and console.is_terminal
    for text in heatmap(result, width=console.width, height=height, color=color):
        text.rstrip()
        console.print(text, crop=False, soft_wrap=True)


# -- files --------------------------------------------------------------------------------------


def check_plot(path: Any) -> str:
    """The picture format of ``path`` (``png`` or ``svg``), after checking that it is one and
    that matplotlib is installed: both before any work is done."""
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise InputError(
            f"`plot` {str(path)!r} is not a picture jacli writes; name the file *.png or *.svg", param="plot"
        )
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise JacliError(
            f"`plot` needs matplotlib, which is not installed; install it with: {PLOT_INSTALL}", param="plot"
        ) from None
    return suffix[1:]


def plot_grid(result: Any, cells: int = PLOT_CELLS) -> tuple["np.ndarray", Tiles, Matrix]:
    """What ``plot_bytes`` draws: the signed max-abs tiles (``imshow``), or for a structured
    Jacobian whether each tile holds a nonzero (a spy plot); with the tiles and the matrix."""
    matrix = classic_matrix(result)
    k = tile_size(matrix.rows, matrix.columns, cells, cells)
    tiles = reduce_tiles(matrix, k)
    return (tiles.occupied if matrix.structured else tiles.signed), tiles, matrix


def plot_bytes(result: Any, file_format: str) -> bytes:
    """The picture of ``result``'s classic matrix as a ``png`` or ``svg`` file's bytes: a spy plot
    for a structured (diagonal, sparse) Jacobian, else ``imshow`` on a diverging colour map
    centred at 0 (red positive, blue negative, white zero, NaN black), titled with the expression."""
    import io

    import numpy as np
    from matplotlib import colors, rc_context
    from matplotlib.figure import Figure

    grid, tiles, matrix = plot_grid(result)
    k = tiles.k
    extent = (-0.5, grid.shape[1] * k - 0.5, grid.shape[0] * k - 0.5, -0.5)
    # svg.fonttype none: the title stays text in the SVG (searchable, selectable), not glyph paths.
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "jacli"}):
        figure = Figure(figsize=(6.4, 5.6), layout="constrained")
        axes = figure.add_subplot()
        if matrix.structured:
            axes.imshow(grid, cmap=colors.ListedColormap(["white", "black"]), vmin=0, vmax=1,
                        interpolation="nearest", extent=extent, aspect="equal")
        else:
            finite = grid[np.isfinite(grid)]
            half = float(np.abs(finite).max()) if finite.size else 1.0
            cmap = colors.LinearSegmentedColormap.from_list(
                "jacli", list(reversed(NEGATIVE)) + ["#ffffff"] + list(POSITIVE)
            ).with_extremes(bad="black")
            image = axes.imshow(grid, cmap=cmap, norm=colors.CenteredNorm(0.0, half or 1.0),
                                interpolation="nearest", extent=extent, aspect="equal")
            figure.colorbar(image, ax=axes, shrink=0.8)
        kind = "Hessian" if result.command == "hessian" else "Jacobian"
        if k == 1:
            shrunk = ""
        elif matrix.structured:
            shrunk = f", {k}×{k} tiles, black where one holds a nonzero"
        else:
            shrunk = f", {k}×{k} tiles, each its entry of largest magnitude"
        axes.set_title(
            f"{result.expression}\n{kind} {matrix.what}: {matrix.rows}×{matrix.columns}, "
            f"{_nonzeros(tiles.nnz)}{shrunk}", fontsize=10,
        )
        axes.set_xlabel("column: input element")
        axes.set_ylabel("row: output element" if result.command == "jacobian" else "row: input element")
        buffer = io.BytesIO()
        metadata = {"Date": None} if file_format == "svg" else {}
        figure.savefig(buffer, format=file_format, metadata=metadata)
    return buffer.getvalue()
