"""Pictures (jacli/views.py, --view, --plot): what they draw is read back and compared with the
Jacobian that torch.func.jacrev computes from the same formula written in torch.

* spy: the braille is decoded into a 0/1 matrix and compared with the pattern of jacrev's dense
  Jacobian, reduced in k×k tiles by a loop written here;
* heatmap: the colours are read from the ANSI codes of a truecolor rendering, mapped to a sign
  class through the legend the heatmap prints, and compared with the sign of each tile's entry
  of largest magnitude (and, in text, with the decade rule computed here);
* plot: a real PNG / SVG file, and the grid it draws against the reference.
"""

from __future__ import annotations

import io
import math
import os
from types import SimpleNamespace
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli, random, record_work
from hypothesis import given
from hypothesis import strategies as st

import jacli
from jacli import views
from jacli.result import DiagonalBlock, SparseBlock

pytestmark = pytest.mark.filterwarnings("ignore::jacli.errors.JacliWarning")

STENCIL = "x[:-2] - 2*x[1:-1] + x[2:]"

# (jacli formula, the same formula in torch, inputs, layout)
FORMULAS = [
    (STENCIL, lambda x: x[:-2] - 2 * x[1:-1] + x[2:], {"x": random(60, 1)}, "sparse"),
    ("softmax(x)", lambda x: torch.softmax(x, 0), {"x": random(23, 2)}, "dense"),
    ("relu(x)*x", lambda x: torch.relu(x) * x, {"x": random(37, 3)}, "diagonal"),
    ("x[1:] * y[:-1]", lambda x, y: x[1:] * y[:-1], {"x": random(30, 4), "y": random(30, 5)}, "auto"),
    # wrt given as y, x: the columns follow the result's wrt, whatever order jacli keeps.
    ("x[1:] * y[:-1]", lambda y, x: x[1:] * y[:-1], {"y": random(20, 4), "x": random(25, 5)[:20]}, "auto"),
    ("sum(x[:5]) * x", lambda x: x[:5].sum() * x, {"x": random(19, 6)}, "auto"),
]


def reference(function, inputs: dict, order=None) -> np.ndarray:
    """The classic matrix from torch.func.jacrev: output elements × the inputs side by side, in
    ``order`` (default: as ``inputs`` lists them). A ``function`` that calls ``diag`` returns the
    square matrix of an elementwise formula itself."""
    tensors = tuple(inputs.values())
    if getattr(function, "__name__", "") == "<lambda>" and "diag" in function.__code__.co_names:
        return function(*tensors).numpy()
    blocks = torch.func.jacrev(function, argnums=tuple(range(len(tensors))))(*tensors)
    rows = function(*tensors).numel()
    named = {name: block.reshape(rows, -1) for name, block in zip(inputs, blocks)}
    return torch.cat([named[name] for name in (order or inputs)], dim=1).numpy()


def tiles_of(matrix: np.ndarray, k: int) -> np.ndarray:
    """Each k×k tile's entry of largest magnitude (NaN if it holds one; of two with opposite
    signs, the positive one), by a plain loop."""
    rows, cols = -(-matrix.shape[0] // k), -(-matrix.shape[1] // k)
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            tile = matrix[i * k:(i + 1) * k, j * k:(j + 1) * k].ravel()
            if np.isnan(tile).any():
                out[i, j] = np.nan
            elif tile.size:
                out[i, j] = max(tile[np.abs(tile) == np.abs(tile).max()])
    return out


def compute(formula: str, inputs: dict, layout: str = "auto"):
    """jacli's Jacobian with respect to the inputs in the order ``inputs`` lists them."""
    return jacli.compute_jacobian(formula, inputs, wrt=list(inputs), layout=layout)


# -- spy ----------------------------------------------------------------------------------------


def decode_spy(lines: list[str]) -> tuple[np.ndarray, int]:
    """The dots inside the box as a 0/1 matrix, and k from the subtitle (1 for one dot per entry)."""
    top = next(i for i, line in enumerate(lines) if "┌" in line)
    bottom = next(i for i, line in enumerate(lines) if "└" in line)
    body = [line[line.index("│") + 1:line.rindex("│")] for line in lines[top + 1:bottom]]
    dots = np.zeros((4 * len(body), 2 * len(body[0])), dtype=int)
    for line_index, line in enumerate(body):
        for char_index, char in enumerate(line):
            code = 0 if char == " " else ord(char) - 0x2800
            assert 0 <= code < 256, char
            for dy, bits in enumerate(((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))):
                for dx, bit in enumerate(bits):
                    dots[4 * line_index + dy, 2 * char_index + dx] = bool(code & bit)
    subtitle = " ".join(lines[:top])
    found = re.search(r"each dot a (\d+)×\1 tile", subtitle)
    k = int(found.group(1)) if found else 1
    if not found:
        assert "one dot per entry" in subtitle
    return dots, k


@pytest.mark.parametrize("formula,function,inputs,layout", FORMULAS, ids=[f[0] for f in FORMULAS])
@pytest.mark.parametrize("width", [200, 24, 13])
def test_spy_decodes_to_the_pattern_of_jacrev(formula, function, inputs, layout, width) -> None:
    result = compute(formula, inputs, layout)
    expected = reference(function, inputs, list(result.blocks))  # the columns in the matrix's order (wrt as given)
    lines = views.spy_lines(result, width=width)
    assert all(len(line) <= max(width, 60) for line in lines[2:])  # the box fits; titles may not
    dots, k = decode_spy(lines)
    rows, cols = expected.shape
    # k is the smallest tile side that fits the box (width less labels and borders).
    inner = width - len(str(rows - 1)) - 4
    assert k == max(1, math.ceil(rows / (4 * inner)), math.ceil(cols / (2 * inner)))
    pattern = (tiles_of(expected, k) != 0).astype(int)
    assert (dots[:pattern.shape[0], :pattern.shape[1]] == pattern).all()
    assert dots[pattern.shape[0]:].sum() == 0 and dots[:, pattern.shape[1]:].sum() == 0
    assert f"{rows}×{cols}, {int((expected != 0).sum()):,} nonzeros" in " ".join(lines[:3])
    if len(inputs) > 1:
        sizes = [inputs[name].numel() for name in result.blocks]
        starts = np.cumsum([0, *sizes])
        groups = ", ".join(f"{name} {a}–{b - 1}" for name, a, b in zip(list(result.blocks), starts, starts[1:]))
        assert f"columns: {groups}" in lines


def test_spy_downsampling_keeps_every_nonzero() -> None:
    """One nonzero in a 1000×1000 matrix still shows as one dot, wherever it is."""
    for row, col in [(0, 0), (999, 999), (517, 3)]:
        block = SparseBlock("x", torch.tensor([row]), torch.tensor([col]), torch.tensor([1e-300], dtype=torch.float64), (1000,), (1000,))
        result = _with_blocks(compute("x", {"x": torch.zeros(1000)}), {"x": block})
        dots, k = decode_spy(views.spy_lines(result, width=30))
        assert k > 1 and dots.sum() == 1 and dots[row // k, col // k] == 1


def _with_blocks(result, blocks):
    """A copy of ``result`` holding ``blocks`` instead (a Jacobian made by hand)."""
    import dataclasses

    return dataclasses.replace(result, blocks=blocks)


def test_spy_of_a_hessian_is_its_pattern() -> None:
    inputs = {"a": random(3, 7), "b": random(4, 8)}
    result = jacli.compute_hessian("sum(a**2)*b[0] + sum(b**3)", inputs)

    def f(packed):
        a, b = packed[:3], packed[3:]
        return (a**2).sum() * b[0] + (b**3).sum()

    expected = torch.func.hessian(f)(torch.cat([inputs["a"], inputs["b"]])).numpy()
    dots, k = decode_spy(views.spy_lines(result, width=80))
    assert k == 1 and (dots[:7, :7] == (expected != 0)).all() and dots.sum() == (expected != 0).sum()


def test_structured_blocks_are_never_densified(monkeypatch) -> None:
    result = compute(STENCIL, {"x": random(3000, 9)}, "sparse")
    diagonal = compute("tanh(x)", {"x": random(3000, 10)}, "diagonal")
    assert result.blocks["x"].layout == "sparse" and diagonal.blocks["x"].layout == "diagonal"

    def refuse(self):
        raise AssertionError("to_dense() was called")

    monkeypatch.setattr(SparseBlock, "to_dense", refuse)
    monkeypatch.setattr(DiagonalBlock, "to_dense", refuse)
    for picture in (views.spy_lines(result), views.heatmap(result, color=False), views.spy_lines(diagonal)):
        assert picture
    dots, k = decode_spy(views.spy_lines(diagonal, width=40))
    assert k > 1 and (dots[:math.ceil(3000 / k), :math.ceil(3000 / k)] == np.eye(math.ceil(3000 / k))).all()


def test_a_spy_of_a_big_stencil_stays_small_in_memory() -> None:
    """The 10⁴ stencil's spy (auto layout: --view keeps the structure) peaks far below the 800 MB
    of its dense Jacobian (measured against the same spy of a tiny stencil, so that what torch
    and the machine add cancels out); the dots are the tridiagonal band."""
    from memory import MB, jacli as measured

    env = {**os.environ, "COLUMNS": "60"}
    tiny = measured("jacobian", STENCIL, "-i", "randn:10", "--view", "spy", env=env)
    big = measured("jacobian", STENCIL, "-i", "randn:10000", "--view", "spy", env=env)
    assert tiny.returncode == 0 and big.returncode == 0, big.stderr
    assert big.peak < tiny.peak + 300 * MB, (big.peak / MB, tiny.peak / MB)  # dense would add 800 MB
    done = SimpleNamespace(stdout=big.stdout.decode())
    dots, k = decode_spy(done.stdout.splitlines())
    grid = math.ceil(10000 / k)
    band = np.abs(np.subtract.outer(np.arange(grid), np.arange(grid))) <= 1
    assert (dots[:math.ceil(9998 / k), :grid] <= band[:math.ceil(9998 / k)]).all()
    assert dots[np.arange(math.ceil(9998 / k)), np.arange(math.ceil(9998 / k))].all()


# -- heatmap ------------------------------------------------------------------------------------

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def parse_ansi(line: str) -> list[tuple[str, str | None, str | None]]:
    """Each character of ``line`` with its foreground and background colours (hex or None)."""
    chars, fg, bg, at = [], None, None, 0
    for match in list(SGR.finditer(line)) + [None]:
        end = match.start() if match else len(line)
        chars += [(c, fg, bg) for c in line[at:end]]
        if match is None:
            break
        at = match.end()
        codes = [int(c) for c in match.group(1).split(";") if c] or [0]
        i = 0
        while i < len(codes):
            if codes[i] == 0:
                fg = bg = None
            elif codes[i] in (38, 48) and codes[i + 1] == 2:
                colour = "#%02x%02x%02x" % tuple(codes[i + 2:i + 5])
                fg, bg = (colour, bg) if codes[i] == 38 else (fg, colour)
                i += 4
            i += 1
    return chars


def render_colour(result, width: int = 120, height: int | None = None) -> list[str]:
    console = io.StringIO()
    from rich.console import Console

    views.print_view(result, "heatmap", Console(file=console, force_terminal=True, color_system="truecolor",
                                                width=width, height=height or 25))
    return console.getvalue().splitlines()


def legend_classes(lines: list[str]) -> dict[str, str]:
    """Colour → "+", "-", "0", "nan", "inf", "-inf", read from the legend printed below the cells."""
    last_cell = max(i for i, line in enumerate(lines) if "▀" in line)
    classes = {}
    for line in lines[last_cell + 1:]:
        chars = parse_ansi(line)
        text = "".join(c for c, _, _ in chars)
        for index, (char, colour, _) in enumerate(chars):
            if char != "█" or (index and chars[index - 1][0] == "█"):
                continue
            words = text[index + 2:].split("  ")[0].strip()
            named = {"exactly 0": "0", "nan": "nan", "inf": "inf", "-inf": "-inf"}
            classes[colour] = named.get(words) or ("-" if words.startswith("[-") else "+" if words.startswith("(") else "?")
    assert "?" not in classes.values(), classes
    return classes


def sign_class(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return "+" if value > 0 else "-" if value < 0 else "0"


def decode_colour_heatmap(lines: list[str], rows: int) -> tuple[list[list[str]], int]:
    """The class of each cell from the ▀ characters, and k from the title."""
    legend = legend_classes(lines)
    assert len(legend) == 14  # 5 + 5 levels, zero, NaN, ±inf: all distinct
    k = int(m.group(1)) if (m := re.search(r"each cell a (\d+)×\1 tile", lines[0])) else 1
    grid = []
    for line in lines:
        chars = [c for c in parse_ansi(line) if c[0] == "▀"]
        if not chars:
            continue
        grid.append([legend[fg] for _, fg, _ in chars])
        if all(bg is not None for _, _, bg in chars):
            grid.append([legend[bg] for _, _, bg in chars])
    return grid[:math.ceil(rows / k)], k


HEATMAP_CASES = [
    ("softmax(x)", lambda x: torch.softmax(x, 0), {"x": random(40, 11)}),
    # jacrev would spread the NaN and inf of sqrt' over whole columns (0 * inf); the derivative of an
    # elementwise function is its diagonal, from torch.func.grad element by element.
    ("sqrt(x)", lambda x: torch.diag(torch.func.vmap(torch.func.grad(torch.sqrt))(x)),
     {"x": torch.tensor([0.0, -1.0, 4.0, 1e-30, 9.0], dtype=torch.float64)}),
    ("[1e-12*x[0], 0*x[1], -x[2]**2]", lambda x: torch.stack([1e-12 * x[0], 0 * x[1], -x[2] ** 2]),
     {"x": torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)}),
    ("x[1:] * y[:-1]", lambda x, y: x[1:] * y[:-1], {"x": random(30, 4), "y": random(30, 5)}),
    (STENCIL, lambda x: x[:-2] - 2 * x[1:-1] + x[2:], {"x": random(300, 12)}),
]


@pytest.mark.parametrize("formula,function,inputs", HEATMAP_CASES, ids=[c[0] for c in HEATMAP_CASES])
@pytest.mark.parametrize("width", [120, 25])
def test_colour_heatmap_cells_have_the_sign_of_the_jacobian(formula, function, inputs, width) -> None:
    result = compute(formula, inputs)
    expected = reference(function, inputs, list(result.blocks))
    lines = render_colour(result, width=width)
    assert not any("\x1b" in line for line in lines[:1])  # the title is plain text
    grid, k = decode_colour_heatmap(lines, expected.shape[0])
    tiles = tiles_of(expected, k)
    assert len(grid) == tiles.shape[0] and all(len(row) == tiles.shape[1] for row in grid)
    assert grid == [[sign_class(v) for v in row] for row in tiles]
    if width == 25 and expected.shape[1] > 20:
        assert k > 1


def test_a_tiny_value_and_an_exact_zero_get_different_colours() -> None:
    result = compute("[1e-12*x[0], 0*x[1], -x[2]**2]", {"x": [1.0, 2.0, 3.0]})
    lines = render_colour(result)
    cells = [c for line in lines[2:4] for c in parse_ansi(line) if c[0] == "▀"]
    # Row 0: 1e-12 at column 0 (the palest red, level 1), zeros elsewhere; row 1: all zeros.
    assert cells[0][1] == views.POSITIVE[0] and cells[1][1] == views.ZERO and cells[0][2] == views.ZERO


def test_heatmap_fits_the_terminal_height() -> None:
    result = compute("softmax(x)", {"x": random(200, 13)})
    for width in (60, 200):
        lines = render_colour(result, width=width, height=30)
        assert len(lines) < 30  # a line left for the prompt
        spy = views.spy_lines(result, width=width, height=30)
        assert len(spy) < 30
    lines = render_colour(result, width=200, height=30)
    grid, k = decode_colour_heatmap(lines, 200)
    assert k > 1 and grid == [[sign_class(v) for v in row] for row in tiles_of(reference(lambda x: torch.softmax(x, 0), {"x": random(200, 13)}), k)]


def decode_text_heatmap(lines: list[str], rows: int) -> tuple[list[list[str]], int]:
    k = int(m.group(1)) if (m := re.search(r"each cell a (\d+)×\1 tile", lines[0])) else 1
    start = next(i for i, line in enumerate(lines) if re.match(r"^\s*0 \S", line))
    margin = lines[start].index("0 ") + 2
    cells = []
    for line in lines[start:start + math.ceil(rows / k)]:
        body = line[margin:]
        cells.append([body[i:i + 2] for i in range(0, len(body), 2)])
    return cells, k


@pytest.mark.parametrize("formula,function,inputs", HEATMAP_CASES, ids=[c[0] for c in HEATMAP_CASES])
def test_text_heatmap_shows_sign_and_decade(formula, function, inputs) -> None:
    expected = reference(function, inputs)
    lines = [text.plain.rstrip() for text in views.heatmap(compute(formula, inputs), width=70, color=False)]
    cells, k = decode_text_heatmap(lines, expected.shape[0])
    tiles = tiles_of(expected, k)
    finite = tiles[np.isfinite(tiles) & (tiles != 0)]
    top = np.abs(finite).max()

    def glyph(value: float) -> str:
        if math.isnan(value):
            return " N"
        if math.isinf(value):
            return "+∞" if value > 0 else "-∞"
        if value == 0:
            return " ·"
        level = min(5, max(1, 5 - math.floor(math.log10(top / abs(value)))))
        return f"{'+' if value > 0 else '-'}{level}"

    assert [row + [" ·"] * (tiles.shape[1] - len(row)) for row in cells] == [[glyph(v) for v in row] for row in tiles]
    assert f"+5 ({top / 10:.2g}, {top:.2g}]" in "\n".join(lines)
    assert all(len(line) <= 70 for line in lines[1:])


def test_the_heatmap_of_a_hessian_is_its_matrix() -> None:
    inputs = {"x": random(12, 14)}
    result = jacli.compute_hessian("logsumexp(x)", inputs)
    expected = torch.func.hessian(lambda x: torch.logsumexp(x, 0))(inputs["x"]).numpy()
    grid, k = decode_colour_heatmap(render_colour(result), 12)
    assert k == 1 and grid == [[sign_class(v) for v in row] for row in expected]


# -- the tiles, by either path ------------------------------------------------------------------


@given(
    rows=st.integers(1, 17), cols=st.integers(1, 17), k=st.integers(1, 6),
    cells=st.lists(st.tuples(st.integers(0, 16), st.integers(0, 16),
                             st.sampled_from([1.0, -2.0, 1e-300, -1e-300, math.inf, -math.inf, math.nan, 0.0])), max_size=30),
)
def test_dense_and_sparse_tiles_agree_with_the_loop(rows, cols, k, cells) -> None:
    dense = np.zeros((rows, cols))
    for r, c, v in cells:
        if r < rows and c < cols:
            dense[r, c] = v
    expected = tiles_of(dense, k)
    nz = np.nonzero((dense != 0) | np.isnan(dense))
    sparse = views.Piece(0, 0, rows, cols, coo=(torch.tensor(nz[0]), torch.tensor(nz[1]), torch.tensor(dense[nz])))
    whole = views.Piece(0, 0, rows, cols, values=torch.tensor(dense))
    halves = (views.Piece(0, 0, rows, cols // 2, values=torch.tensor(dense[:, :cols // 2])),
              views.Piece(0, cols // 2, rows, cols - cols // 2, values=torch.tensor(dense[:, cols // 2:])))
    r = rows // 2  # the pieces of a Hessian start at row offsets, inside a tile or not
    stacked = (views.Piece(0, 0, r, cols, values=torch.tensor(dense[:r])),
               views.Piece(r, 0, rows - r, cols, values=torch.tensor(dense[r:])))
    for pieces in ((sparse,), (whole,), halves, stacked):
        tiles = views.reduce_tiles(views.Matrix(rows, cols, pieces, (), (), "", False), k)
        np.testing.assert_array_equal(tiles.signed, expected)
        np.testing.assert_array_equal(tiles.occupied, (expected != 0) | np.isnan(expected))
        assert tiles.nnz == len(nz[0])


# -- the command line ---------------------------------------------------------------------------


def test_view_goes_to_stdout_as_text_on_a_pipe() -> None:
    done = cli("jacobian", STENCIL, "-i", "randn:50", "--view", "spy")
    assert done.exit_code == 0 and done.stderr == ""
    assert "\x1b" not in done.stdout
    dots, k = decode_spy(done.stdout.splitlines())
    expected = reference(lambda x: x[:-2] - 2 * x[1:-1] + x[2:], {"x": torch.randn(50, dtype=torch.float64)})
    assert k == 1 and (dots[:48, :50] == (expected != 0)).all()
    heat = cli("jacobian", "softmax(x)", "-i", "randn:10", "--view", "heatmap")
    assert heat.exit_code == 0 and "\x1b" not in heat.stdout and "+5" in heat.stdout and "▀" not in heat.stdout


def test_heatmap_is_coloured_only_where_colour_is_wanted() -> None:
    from helpers import cli_runner

    from jacli.cli import app

    def run(**env):
        return cli_runner().invoke(app, ["jacobian", "softmax(x)", "-i", "randn:6", "--view", "heatmap"],
                                   env={"JACLI_DEBUG": "", "NO_COLOR": None, "FORCE_COLOR": None,
                                        "COLORTERM": None, "TERM": "xterm", **env})

    for env in ({"FORCE_COLOR": "1", "COLORTERM": "truecolor"}, {"FORCE_COLOR": "1", "TERM": "xterm-256color"}):
        coloured = run(**env)
        assert coloured.exit_code == 0 and "\x1b[38;" in coloured.stdout and "▀" in coloured.stdout, env
    for env in ({}, {"COLORTERM": "truecolor"}, {"FORCE_COLOR": "1", "COLORTERM": "truecolor", "NO_COLOR": "1"},
                {"FORCE_COLOR": "1", "TERM": "dumb"}, {"FORCE_COLOR": "1"}):  # the last: 16 colours
        plain = run(**env)
        assert plain.exit_code == 0 and "\x1b" not in plain.stdout and "▀" not in plain.stdout, env


def test_sixteen_colours_get_the_text_form() -> None:
    """Five shades per sign would merge into one or two of 16 colours: the text form says more."""
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=80)
    views.print_view(compute("softmax(x)", {"x": random(5, 17)}), "heatmap", console)
    assert "+5" in console.file.getvalue() and "▀" not in console.file.getvalue()


def test_a_closed_pipe_ends_the_view_quietly() -> None:
    """`jacli ... --view spy | true`: the reader is gone before the picture is written (``true``
    exits at once, jacli computes first); exit 0 and nothing on stderr, as for plain output."""
    done = subprocess.run(
        f"{sys.executable} -m jacli jacobian '{STENCIL}' -i randn:50 --view spy | true; exit ${{PIPESTATUS[0]}}",
        shell=True, capture_output=True, text=True, check=False,
        executable="/bin/bash", env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )
    assert done.returncode == 0 and done.stderr == ""


def test_view_with_a_format_is_a_usage_error() -> None:
    for fmt in ("json", "plain", "pretty"):
        done = cli("jacobian", "x**2", "-i", "1,2", "--view", "spy", "-f", fmt)
        assert done.exit_code == 2 and done.stdout == ""
        assert done.stderr.startswith("Error: --view spy") and f"--format {fmt}" in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_view_with_output_writes_the_numbers_and_draws_the_picture(tmp_path: Path) -> None:
    target = tmp_path / "J.txt"
    done = cli("jacobian", "x**2", "-i", "1,2,3", "-o", str(target), "--view", "spy")
    assert done.exit_code == 0, done.stderr
    np.testing.assert_array_equal(np.loadtxt(target), np.diag([2.0, 4.0, 6.0]))
    dots, _ = decode_spy(done.stdout.splitlines())
    assert (dots[:3, :3] == np.eye(3)).all()
    assert f"wrote {target}" in done.stderr


def test_plot_suffix_is_checked_before_any_work(monkeypatch, tmp_path: Path) -> None:
    work = record_work(monkeypatch)
    done = cli("jacobian", "x**2", "-i", "1,2", "--plot", str(tmp_path / "J.jpg"))
    assert done.exit_code == 1 and done.stdout == "" and work == []
    assert done.stderr.startswith("Error: --plot '") and "J.jpg" in done.stderr and "*.png or *.svg" in done.stderr


def test_plot_without_matplotlib_says_how_to_install_it(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    work = record_work(monkeypatch)
    done = cli("jacobian", "x**2", "-i", "1,2", "--plot", str(tmp_path / "J.png"))
    assert done.exit_code == 1 and done.stdout == "" and work == []
    assert done.stderr == 'Error: --plot needs matplotlib, which is not installed; install it with: pip install "jacli[plot]"\n'
    assert not (tmp_path / "J.png").exists()
    with pytest.raises(jacli.JacliError, match="`plot` needs matplotlib"):
        views.check_plot("J.png")


def test_plot_writes_a_png_and_an_svg(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.image

    png, svg = tmp_path / "J.png", tmp_path / "J.svg"
    done = cli("jacobian", "softmax(x)", "-i", "randn:40", "--plot", str(png), "-f", "plain")
    assert done.exit_code == 0, done.stderr
    assert np.loadtxt(io.StringIO(done.stdout)).shape == (40, 40)  # the numbers still on stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(str(png))
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 10  # a picture, not a blank
    done = cli("hessian", "logsumexp(x)", "-i", "randn:12", "--plot", str(svg), "--view", "spy")
    assert done.exit_code == 0, done.stderr
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.fromstring(svg.read_bytes())
    assert root.tag.endswith("svg")
    assert "logsumexp(x)" in "".join(root.itertext())


def test_plot_draws_the_tiles_of_the_matrix() -> None:
    pytest.importorskip("matplotlib")
    inputs = {"x": random(45, 15)}
    expected = reference(lambda x: torch.softmax(x, 0), inputs)
    grid, tiles, matrix = views.plot_grid(compute("softmax(x)", inputs), cells=10)
    assert tiles.k == 5 and not matrix.structured
    np.testing.assert_allclose(grid, tiles_of(expected, 5), rtol=1e-12, atol=0)
    sparse, tiles, matrix = views.plot_grid(compute(STENCIL, {"x": random(100, 16)}, "sparse"), cells=10)
    expected = reference(lambda x: x[:-2] - 2 * x[1:-1] + x[2:], {"x": random(100, 16)})
    assert matrix.structured and (sparse == (tiles_of(expected, tiles.k) != 0)).all()
    assert views.plot_bytes(compute(STENCIL, {"x": random(100, 16)}, "sparse"), "png")[:4] == b"\x89PNG"


def test_plot_to_an_unwritable_place_is_an_error(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    done = cli("jacobian", "x**2", "-i", "1,2", "--plot", str(tmp_path / "missing" / "J.png"))
    assert done.exit_code == 1 and done.stderr.startswith("Error: --plot ") and "Traceback" not in done.stderr


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_pictures_of_a_cuda_result_are_the_cpu_pictures(layout) -> None:
    """Blocks on the GPU are read a band (or their nonzeros) at a time onto the CPU."""
    x = random(300, 18)
    pictures = []
    for device in ("cpu", "cuda"):
        result = jacli.compute_jacobian(STENCIL, {"x": x}, device=device, layout=layout)
        pictures.append((views.spy_lines(result, width=50),
                         [t.plain for t in views.heatmap(result, width=50, color=False)]))
    assert pictures[0] == pictures[1]


def test_titles_name_the_output_as_the_pretty_view_does_and_follow_the_wrt_order() -> None:
    hessian = jacli.compute_hessian("a*b**2", {"a": 1.0, "b": 2.0})
    assert "∂²y/∂(a, b)²" in " ".join(views.spy_lines(hessian, width=40)[:2])
    named_y = jacli.compute_jacobian("x*y", {"x": [1.0, 2.0], "y": [3.0, 4.0]}, wrt=["y", "x"])
    title = " ".join(views.spy_lines(named_y, width=40)[:3])
    assert "∂f/∂(y, x)" in title and "columns: y 0–1, x 2–3" in " ".join(views.spy_lines(named_y, width=40))
