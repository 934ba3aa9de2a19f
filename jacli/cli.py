"""The ``jacli`` command: options → library calls → rendering. Only this module knows Typer.

Library errors (``JacliError``) become ``Error: …`` on stderr and exit 1; usage errors (unknown
options, bad choices) exit 2 through Typer. torch and SymPy are imported inside the commands, so
``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional

import typer

from jacli import __version__
from jacli.engine.methods import GradMethod, HessianMethod, JacobianMethod, Layout, VJPMethod
from jacli.errors import JacliError, flagged
from jacli.result import DEFAULT_ATOL, DEFAULT_RTOL

# No help= here: it would replace the callback's docstring, and with it the example in --help.
app = typer.Typer(
    name="jacli",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class DType(str, Enum):
    float64 = "float64"
    float32 = "float32"


class Format(str, Enum):
    pretty = "pretty"
    plain = "plain"
    json = "json"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jacli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Jacobians and vector-Jacobian products of formulas, computed with PyTorch.

    Example: jacli jacobian "(x+1)**2" --input eye:2
    """


# -- options shared by the commands, declared once -------------------------------------------------
#
# NOTE [shared options]
# Typer reads a command's options from its signature. The options every command shares are
# declared once here, in groups, and ``_options(...)`` appends a group's parameters to a command's
# signature and gathers their values into one ``_Options`` object, which the command receives
# as ``o`` (the idea of sqlite-utils' ``output_options`` decorator).

INPUT = typer.Option(
    [], "--input", "-i", metavar="NAME=SPEC",
    help="Bind a variable: x=1,2,3  x=eye:3  x=randn:2x3  x=@x.npy. With one variable the name may "
    "be left out. Repeat for each variable.",
)
WRT = typer.Option(
    [], "--wrt", metavar="NAMES", help="Differentiate with respect to these inputs only (a,b or repeated). Default: all."
)
SYMBOLIC = typer.Option(
    False, "--symbolic", help="Also show SymPy's exact derivative above the numbers."
)
V_DIRECTION = typer.Option(
    ..., "--v", metavar="[NAME=]SPEC",
    help="The direction, shaped like the input: x=1,0  x=onehot:0  x=ones. Repeat for each input "
    "that moves (the others stay still); with one variable the name may be left out.",
)

FLAGS = {
    "inputs": "--input", "wrt": "--wrt", "v": "--v", "method": "--method", "device": "--device",
    "dtype": "--dtype", "seed": "--seed", "max_memory": "--max-memory", "rtol": "--rtol",
    "atol": "--atol", "symbolic": "--symbolic", "det": "--det", "output": "--output",
    "format": "--format", "precision": "--precision", "full": "--full", "layout": "--layout",
    "view": "--view", "plot": "--plot",
}
"""Each library parameter's flag: how the CLI prints a message that names a parameter."""

PROBLEM = {
    "inputs": (List[str], INPUT),
    "seed": (int, typer.Option(0, "--seed", help="Seed for rand/randn specs.")),
    "max_memory": (Optional[str], typer.Option(
        None, "--max-memory", metavar="SIZE", help="Memory budget, e.g. 2GB (default: half of the available memory).",
    )),
}
PLACE = {
    "device": (str, typer.Option("cpu", "--device", help="cpu, cuda, cuda:N, mps or auto.")),
    "dtype": (DType, typer.Option(DType.float64, "--dtype", help="Floating-point precision.")),
}
SHOW = {
    "precision": (Optional[int], typer.Option(
        None, "--precision", min=1, max=17,
        help="Significant digits shown (default: 6 in pretty; every digit in plain and json).",
    )),
    "full": (bool, typer.Option(False, "--full", help="Show every entry of large tensors in the pretty view.")),
}
WRITE = {
    "output_format": (Optional[Format], typer.Option(
        None, "--format", "-f",
        help="pretty (default on a terminal), plain (default otherwise: numbers for awk/loadtxt) or json.",
    )),
    "output": (Optional[Path], typer.Option(
        None, "--output", "-o", metavar="FILE",
        help="Write the result to FILE instead of stdout: .json, .txt (plain), .npy (one result), "
        ".npz (one Jacobian as a scipy.sparse matrix; needs scipy) or .pt (one torch tensor, sparse "
        "for a diagonal or sparse Jacobian). The file is replaced only when everything succeeded.",
    )),
    "debug": (bool, typer.Option(False, "--debug", help="Show the Python traceback of an error (also JACLI_DEBUG=1).")),
    "untrusted": (bool, typer.Option(
        False, "--untrusted",
        help="The expression and inputs come from someone else: refuse @file and @- inputs, hold "
        "the memory budget to 256 MB and SymPy to 2 s (also JACLI_UNTRUSTED=1). See SECURITY.md.",
    )),
}


class View(str, Enum):
    heatmap = "heatmap"
    spy = "spy"


PICTURE = {
    "view": (Optional[View], typer.Option(
        None, "--view",
        help="Draw the matrix (rows: output elements, columns: input elements) on stdout instead "
        "of printing its numbers: heatmap (colours by sign and magnitude; text without a colour "
        "terminal) or spy (the nonzeros in braille). Large matrices are shrunk to the terminal, "
        "each cell showing its tile's entry of largest magnitude.",
    )),
    "plot": (Optional[Path], typer.Option(
        None, "--plot", metavar="FILE",
        help='Also save a picture of the matrix: FILE.png or FILE.svg (needs matplotlib: pip install "jacli[plot]").',
    )),
}


LEADING = {"inputs"}


@dataclass
class _Options:
    """The shared options' values (those a command does not take keep their defaults)."""

    inputs: List[str] = field(default_factory=list)
    seed: int = 0
    max_memory: Optional[str] = None
    device: str = "cpu"
    dtype: DType = DType.float64
    precision: Optional[int] = None
    full: bool = False
    output_format: Optional[Format] = None
    output: Optional[Path] = None
    debug: bool = False
    untrusted: bool = False
    view: Optional[View] = None
    plot: Optional[Path] = None

    def specs(self) -> tuple[list, Optional[int]]:
        """The cheap checks (specs, device name, budget) before torch or SymPy load."""
        from jacli import devices, inputs as spec_module, limits

        devices.check_names(self.device, "float64")
        specs = [spec_module.parse_input_option(text) for text in self.inputs]
        budget = limits.parse_size(self.max_memory) if self.max_memory is not None else None
        return specs, budget

    def out(self) -> "_Out":
        return _Out(self.output_format, self.precision, self.full, self.output, self.view, self.plot)

    def shown_as(self) -> str:
        """Where the result goes (see ``_Out.destination``)."""
        return self.out().destination()

    def run(self, compute: Callable[[], Any]) -> Any:
        """Compute and show the result, with jacli's errors as Error lines."""
        return _run(compute, self.out(), self.debug)


def _options(*groups: dict[str, tuple[Any, Any]]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the options of ``groups``; it receives their values as ``o: _Options``."""
    shared = {name: spec for group in groups for name, spec in group.items()}

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.name != "o"]
        added = [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=option, annotation=annotation)
            for name, (annotation, option) in shared.items()
        ]

        @functools.wraps(command)
        def with_options(**values: Any) -> Any:
            options = _Options(**{name: values.pop(name) for name in shared})
            return command(o=options, **values)

        # The inputs come right after the expression in --help, where a reader looks first.
        leading = [p for p in added if p.name in LEADING]
        trailing = [p for p in added if p.name not in LEADING]
        parameters = own[:1] + leading + own[1:] + trailing
        with_options.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        annotations = {k: v for k, v in command.__annotations__.items() if k != "o"}
        with_options.__annotations__ = {**annotations, **{name: spec[0] for name, spec in shared.items()}}
        return with_options

    return decorate


def _expression(example: str, what: str = "The formula") -> Any:
    return typer.Argument(..., metavar="EXPR", help=f"{what}, e.g. \"{example}\".")


@app.command()
@_options(PROBLEM, PLACE, SHOW, WRITE, PICTURE)
def jacobian(
    expression: str = _expression("[r*cos(t), r*sin(t)]"),
    wrt: List[str] = WRT,
    method: JacobianMethod = typer.Option(
        JacobianMethod.auto, "--method", "-m",
        help="reverse (torch.func.jacrev), forward (jacfwd), rows (one autograd.grad per output "
        "element), compressed (one JVP or VJP per colour of the formula's sparsity pattern), "
        "structured (each intermediate's Jacobian kept as zero, diagonal or dense: a constant "
        "matrix times a vector, arithmetic, elementwise functions), "
        "symbolic (SymPy's exact derivative, evaluated on torch), or auto: compressed when the "
        "pattern is diagonal or sparse and needs fewer passes, else structured where it applies, "
        "else forward when the inputs have fewer elements than the output, else reverse.",
    ),
    symbolic: bool = SYMBOLIC,
    det: bool = typer.Option(
        False, "--det", help="Also the determinant of the square Jacobian (all inputs as columns)."
    ),
    layout: Layout = typer.Option(
        Layout.auto, "--layout",
        help="How to store and show each block: dense (every entry), diagonal (only dy[i]/dx[i], "
        "for a Jacobian that is zero elsewhere), sparse (the nonzeros, as output index, input "
        "index, value), or auto: the structure the formula has on a terminal and in .npz/.pt "
        "files, dense in plain, json and other files (what scripts read).",
    ),
    *,
    o: _Options,
) -> None:
    """The Jacobian of EXPR with respect to each input; shape output.shape + input.shape.

    Examples:

      jacli jacobian "(x+1)**2" --input eye:2

      jacli jacobian "[r*cos(t), r*sin(t)]" -i r=2 -i t=0.5

      jacli jacobian "x**2" -i 2,3 --method rows

      jacli jacobian "[r*cos(t), r*sin(t)]" -i r=2 -i t=0.5 --symbolic --det

      jacli jacobian "(x+1)**2" --input eye:1000 --layout diagonal

      jacli jacobian "x[:-2] - 2*x[1:-1] + x[2:]" -i randn:10000 --view spy
    """

    def compute() -> Any:
        from jacli import api

        specs, budget = o.specs()
        # NOTE [auto layout]: scripts keep the dense numbers they have always read; a person at a
        # terminal sees the structure; a sparse file format keeps it.
        # A picture on stdout reads the structure too (a spy plot of a sparse block stays sparse).
        shown = layout
        pictured = o.view is not None and o.output is None
        if layout is Layout.auto and o.shown_as() not in ("pretty", ".npz", ".pt") and not pictured:
            shown = Layout.dense
        return api.compute_jacobian(
            expression, specs, wrt=wrt, method=method.value, device=o.device, dtype=o.dtype.value,
            seed=o.seed, max_memory=budget, untrusted=o.untrusted, progress=_RowProgress(), symbolic=symbolic, det=det,
            layout=shown.value,
        )

    o.run(compute)


@app.command()
@_options(PROBLEM, PLACE, SHOW, WRITE)
def vjp(
    expression: str = _expression("3*a + 2*b**2"),
    v: str = typer.Option(
        ..., "--v", metavar="SPEC",
        help="The vector v, shaped like the output: 1,0.5  ones  randn  onehot:0  @v.npy. "
        "ones, zeros, rand, randn without a shape take the output's shape.",
    ),
    wrt: List[str] = WRT,
    method: VJPMethod = typer.Option(
        VJPMethod.auto, "--method", "-m",
        help="grad (torch.autograd.grad), backward (y.backward(v), then read x.grad), or auto (grad).",
    ),
    *,
    o: _Options,
) -> None:
    """vᵀJ for each input: what y.backward(v) leaves in x.grad, shaped like x.

    A non-scalar output y needs v (one weight per output element) because backward computes
    the gradient of the scalar sum(v * y).

    Examples:

      jacli vjp "3*a + 2*b**2 + log(c)" -i a=1,2,3 -i b=3,4,5 -i c=6,7,8 --v 0.1,1,0.0001

      jacli vjp "relu(x)" -i arange:-8,8,0.1 --v ones --format json
    """

    def compute() -> Any:
        from jacli import api, inputs as spec_module

        specs, budget = o.specs()
        v_spec = spec_module.parse_spec(spec_module.unnamed_v(v), for_v=True)
        return api.compute_vjp(
            expression, specs, v_spec, wrt=wrt, method=method.value, device=o.device,
            dtype=o.dtype.value, seed=o.seed, max_memory=budget, untrusted=o.untrusted,
        )

    o.run(compute)


@app.command()
@_options(PROBLEM, PLACE, SHOW, WRITE)
def jvp(
    expression: str = _expression("[r*cos(t), r*sin(t)]"),
    v: List[str] = V_DIRECTION,
    *,
    o: _Options,
) -> None:
    """J·v, the Jacobian-vector product, shaped like the output (one forward-mode pass).

    v is a direction in input space: how fast the output changes when the inputs move along v.

    Examples:

      jacli jvp "[r*cos(t), r*sin(t)]" -i r=2 -i t=0.5 --v t=1

      jacli jvp "x**2" -i 1,2,3 --v 1,0,0
    """

    def compute() -> Any:
        from jacli import api

        specs, budget = o.specs()
        return api.compute_jvp(
            expression, specs, _directions(v), device=o.device, dtype=o.dtype.value, seed=o.seed,
            max_memory=budget, untrusted=o.untrusted,
        )

    o.run(compute)


@app.command()
@_options(PROBLEM, PLACE, SHOW, WRITE)
def grad(
    expression: str = _expression("x**2 + 3*x + 1", "A formula with one number as output"),
    wrt: List[str] = WRT,
    method: GradMethod = typer.Option(
        GradMethod.auto, "--method", "-m",
        help="reverse (torch.autograd.grad, also auto), forward (jacfwd) or symbolic (SymPy).",
    ),
    symbolic: bool = SYMBOLIC,
    *,
    o: _Options,
) -> None:
    """The gradient of a single-number output: what y.backward() leaves in x.grad.

    Examples:

      jacli grad "x**2 + 3*x + 1" -i 2

      jacli grad "3*a + 2*b**2 + log(c)" -i a=0.1 -i b=1 -i c=0.1 --symbolic
    """

    def compute() -> Any:
        from jacli import api

        specs, budget = o.specs()
        return api.compute_grad(
            expression, specs, wrt=wrt, method=method.value, device=o.device, dtype=o.dtype.value,
            seed=o.seed, max_memory=budget, untrusted=o.untrusted, symbolic=symbolic,
        )

    o.run(compute)


@app.command()
@_options(PROBLEM, PLACE, SHOW, WRITE, PICTURE)
def hessian(
    expression: str = _expression("sum(x**3)", "A formula with one number as output"),
    wrt: List[str] = WRT,
    method: HessianMethod = typer.Option(
        HessianMethod.auto, "--method", "-m",
        help="forward (forward-over-reverse: jacfwd of jacrev, also auto), reverse "
        "(reverse-over-reverse) or symbolic (SymPy).",
    ),
    symbolic: bool = SYMBOLIC,
    *,
    o: _Options,
) -> None:
    """The Hessian of a single-number output: shape input.shape + input.shape; with several
    inputs, one block per pair (keyed "a,b" in JSON).

    Examples:

      jacli hessian "x[0]**2*x[1] + x[1]**3" -i 1,2

      jacli hessian "a*b**2" -i a=1 -i b=2 --symbolic

      jacli hessian "logsumexp(x)" -i randn:30 --view heatmap
    """

    def compute() -> Any:
        from jacli import api

        specs, budget = o.specs()
        return api.compute_hessian(
            expression, specs, wrt=wrt, method=method.value, device=o.device, dtype=o.dtype.value,
            seed=o.seed, max_memory=budget, untrusted=o.untrusted, symbolic=symbolic,
        )

    o.run(compute)


@app.command()
@_options(PROBLEM, PLACE, SHOW, WRITE)
def hvp(
    expression: str = _expression("sum(x**3)", "A formula with one number as output"),
    v: List[str] = V_DIRECTION,
    *,
    o: _Options,
) -> None:
    """H·v, the Hessian-vector product, without building the Hessian (forward over reverse).

    Examples:

      jacli hvp "x[0]**2*x[1] + x[1]**3" -i 1,2 --v 1,0
    """

    def compute() -> Any:
        from jacli import api

        specs, budget = o.specs()
        return api.compute_hvp(
            expression, specs, _directions(v), device=o.device, dtype=o.dtype.value, seed=o.seed,
            max_memory=budget, untrusted=o.untrusted,
        )

    o.run(compute)


@app.command()
@_options(PROBLEM, WRITE)
def check(
    expression: str = _expression("softmax(x)*x", "The formula to verify"),
    wrt: List[str] = WRT,
    rtol: float = typer.Option(DEFAULT_RTOL, "--rtol", help="Relative tolerance (gradcheck's default)."),
    atol: float = typer.Option(DEFAULT_ATOL, "--atol", help="Absolute tolerance (gradcheck's default)."),
    *,
    o: _Options,
) -> None:
    """Compute the Jacobian with every method (reverse, forward, rows, compressed, structured, symbolic,
    finite differences) in float64 and compare each with the reference: the exact answer where
    SymPy gives it, else reverse mode. Exits 0 when all agree within --rtol/--atol, 1 otherwise,
    so it can run in CI scripts.

    Examples:

      jacli check "softmax(x)*x" -i randn:5

      jacli check "relu(x)" -i -1,0,1
    """

    def compute() -> Any:
        from jacli import verify

        verify.check_tolerances(rtol, atol)  # before reading any input
        specs, budget = o.specs()
        return verify.check(expression, specs, wrt=wrt, rtol=rtol, atol=atol, seed=o.seed, max_memory=budget, untrusted=o.untrusted)

    report = o.run(compute)
    if report is not None and not report.ok:
        raise typer.Exit(1)


def _directions(texts: List[str]) -> list:
    """--v values of jvp and hvp: [NAME=]SPEC each."""
    from jacli import inputs as spec_module

    return [spec_module.parse_input_option(text, param="v", for_v=True) for text in texts]


@dataclass
class _Out:
    """Where and how to write the result."""

    format: Optional[Format]
    precision: Optional[int]
    full: bool
    file: Optional[Path]
    view: Optional["View"] = None
    plot: Optional[Path] = None

    def destination(self) -> str:
        """pretty, plain or json on stdout, or the file's suffix (``.json``, ``.npz`` ...)."""
        if self.file is not None:
            from jacli.render import file_suffix

            return file_suffix(self.file)
        if self.format is not None:
            return self.format.value
        return "pretty" if sys.stdout is not None and sys.stdout.isatty() else "plain"


def _run(compute: Callable[[], Any], out: _Out, debug: bool) -> Any:
    """Compute, render, and turn library errors into ``Error:`` lines with exit code 1."""
    debug = debug or os.environ.get("JACLI_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")
    warnings.showwarning = _show_warning
    try:
        if out.file is None and sys.stdout is None:
            # Started with stdout closed (>&-): Python leaves sys.stdout None. Say so before
            # computing, rather than fail on the first write after all the work.
            raise JacliError(
                "standard output is closed, so the result has nowhere to go; write it to a file "
                "with --output FILE, or run jacli with stdout open (> FILE or | less)"
            )
        if out.file is not None:
            from jacli import render

            if out.file.is_dir():
                raise JacliError(f"--output {out.file} is a folder; give a file name such as {out.file / 'result.json'}")
            render.check_file_suffix(out.file)  # before computing: a typo costs nothing
            _check_format_matches_file(out)
        _check_pictures(out)
        result = compute()
        _render(result, out)
        return result
    except JacliError as error:
        if debug:
            raise
        _diagnose(f"Error: {error.cli_message or flagged(str(error), FLAGS)}")
        raise typer.Exit(1) from None
    except MemoryError:
        # The budget checks refuse what they can estimate; this is what slipped past them.
        if debug:
            raise
        _diagnose(
            "Error: ran out of memory; use smaller inputs, or a lower --max-memory so that jacli "
            "refuses before allocating"
        )
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        if debug:
            raise
        _RowProgress.stop_all()
        _interrupted()
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # The reader (head, a closed pager) went away; there is no one left to tell.
        _silence_stdout()
        raise typer.Exit(0) from None


def _diagnose(line: str) -> None:
    """One line on stderr, flushed at once (it may come before a long computation's result).

    Control characters are escaped here too, whatever the library put in the message: a message
    may quote what the user typed, and a terminal must never receive it raw."""
    from jacli.inputs.spec import printable

    if sys.stderr is None:  # started with stderr closed (2>&-): there is no one to tell
        return
    sys.stderr.write(printable(line, keep_newlines=True) + "\n")
    sys.stderr.flush()


def _render(result: Any, out: _Out) -> None:
    from jacli import render

    chosen = out.destination()
    if out.plot is not None:
        _plot(result, out.plot)
    if out.view is not None and out.file is None:
        _print_view(result, out.view)
        return
    if out.file is not None:
        _write_atomically(out.file, render.to_chunks(result, chosen, out.precision))
        blocks = getattr(result, "blocks", {})
        diagonal = any(getattr(block, "layout", "") == "diagonal" for block in blocks.values())
        what = " (the diagonal, shaped like the output)" if diagonal and chosen == ".npy" else ""
        _diagnose(f"jacli: wrote {out.file}{what}")
        if out.view is not None:
            _print_view(result, out.view)
        return
    try:
        if chosen == "json":
            sys.stdout.write(render.to_json(result))
        elif chosen == "plain":
            for line in render.plain_lines(result, out.precision):
                sys.stdout.write(line)
        else:
            from rich.console import Console

            console = Console()
            if console.width < 20:  # COLUMNS=0 or a tiny pane: rich would print nothing at all
                console = Console(width=80)
            render.print_pretty(result, console, out.precision, out.full)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as error:  # a full disk, a closed terminal: say so instead of a traceback
        raise JacliError(
            f"cannot write the result to standard output ({error.strerror or error}); "
            "free some space, or write it with --output FILE"
        ) from None


def _check_pictures(out: _Out) -> None:
    """--view replaces the numbers on stdout, so it takes no --format (usage error, exit 2);
    --plot needs a .png or .svg name and matplotlib. Both checked before any work."""
    if out.view is not None and out.format is not None:
        _diagnose(
            f"Error: --view {out.view.value} draws the matrix on stdout instead of numbers, so it "
            f"cannot be combined with --format {out.format.value}; leave out --format, or keep the "
            "numbers in a file with --output FILE"
        )
        raise typer.Exit(2)
    if out.plot is not None:
        from jacli import views

        if out.plot.is_dir():
            raise JacliError(f"--plot {out.plot} is a folder; give a file name such as {out.plot / 'jacobian.png'}")
        views.check_plot(out.plot)


def _plot(result: Any, path: Path) -> None:
    from jacli import views

    _write_atomically(path, [views.plot_bytes(result, views.check_plot(path))], flag="--plot")
    _diagnose(f"jacli: wrote {path}")


def _print_view(result: Any, view: "View") -> None:
    from rich.console import Console

    from jacli import views

    console = Console()
    if console.width < 20:  # as for the pretty view: COLUMNS=0 or a tiny pane
        console = Console(width=80)
    # Captured, then written: rich answers a broken pipe with exit 1 itself; jacli's is exit 0.
    with console.capture() as picture:
        views.print_view(result, view.value, console)
    try:
        sys.stdout.write(picture.get())
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as error:
        raise JacliError(f"cannot write the picture to standard output ({error.strerror or error})") from None


def _check_format_matches_file(out: _Out) -> None:
    """--format with --output must agree with the file's name, which decides what is written."""
    from jacli.errors import InputError

    if out.format is None or out.file is None:
        return
    suffix = out.destination()
    written = {".json": "json", ".txt": "plain", ".npy": "npy", ".npz": "npz", ".pt": "pt"}.get(suffix)
    if out.format.value == "pretty":
        raise InputError(
            f"--format pretty is for the terminal and cannot go to --output {out.file}; leave out "
            "--format (the file's name decides: .json, .txt, .npy, .npz or .pt), or leave out --output"
        )
    if out.format.value != written:
        fitting = {"json": ".json", "plain": ".txt"}[out.format.value]
        raise InputError(
            f"--format {out.format.value} does not match --output {out.file}: a {suffix} file is written "
            f"as {written}. Leave out --format (the file's name decides), or name the file *{fitting}"
        )


def _write_atomically(path: Path, chunks: Iterable[bytes], flag: str = "--output") -> None:
    """Write to a temporary file beside ``path``, then rename it into place: an error or Ctrl-C
    never leaves a truncated file, and an existing file is replaced only on success. ``flag``:
    the option that named the file, for the messages."""
    import tempfile

    from jacli.errors import InputError

    folder = path.parent if str(path.parent) else Path(".")
    # The file gets the mode of the one it replaces, or what the umask gives a new file
    # (NamedTemporaryFile alone would leave 0600).
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        # A short name of its own: the file's name plus a prefix could pass the name-length limit.
        handle = tempfile.NamedTemporaryFile(dir=folder, prefix=".jacli-", suffix=".tmp", delete=False)
    except OSError as error:
        raise InputError(f"{flag} {path}: cannot write in {folder} ({error.strerror or error})") from None
    previous = _on_sigterm_exit()  # SIGTERM while writing: clean up as for Ctrl-C, then exit 143
    try:
        with handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, mode)
        os.replace(handle.name, path)
    except BaseException as error:
        os.unlink(handle.name)
        if isinstance(error, OSError):
            raise InputError(f"{flag} {path}: cannot write it ({error.strerror or error})") from None
        raise
    finally:
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)


def _on_sigterm_exit() -> Any:
    """Make SIGTERM raise SystemExit(143) (so ``finally`` and ``except`` blocks run); returns the
    handler it replaced, or None where handlers cannot be set (not the main thread)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def terminated(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, terminated)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    # Deprecation notices are for developers (Python hides them unless a test runner or
    # PYTHONWARNINGS turns them on); torch raises one on its first forward-mode pass.
    if issubclass(category, (DeprecationWarning, PendingDeprecationWarning)):
        return
    _diagnose(f"Warning: {flagged(str(message), FLAGS)}")


class _RowProgress:
    """A progress bar on stderr for the row loop, shown only once it has run a moment."""

    DELAY = 0.5
    active: list["_RowProgress"] = []

    @classmethod
    def stop_all(cls) -> None:
        """Put the terminal back (cursor, line) when the loop is interrupted."""
        for progress in cls.active:
            if progress.bar is not None:
                progress.bar.stop()
        cls.active.clear()

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if done == total or time.monotonic() - self.start < self.DELAY:
                return
            from rich.console import Console
            from rich.progress import Progress

            console = Console(stderr=True)
            if not console.is_terminal:
                self.start = float("inf")  # never again: no bars in logs
                return
            self.bar = Progress(console=console, transient=True)
            self.bar.start()
            _RowProgress.active.append(self)
            self.task = self.bar.add_task("Jacobian rows", total=total)
        self.bar.update(self.task, completed=done)
        if done == total:
            self.bar.stop()
            _RowProgress.active.remove(self)


_interruption_reported = False
"""Whether this run has said "Interrupted." (main says it when _run has not)."""


def _interrupted() -> None:
    global _interruption_reported
    _interruption_reported = True
    _diagnose("Interrupted.")


def main() -> None:
    """Entry point of the ``jacli`` script.

    Ctrl-C inside a command is answered by ``_run``. Earlier, while Typer builds the command
    and parses the options, it lands here: as a KeyboardInterrupt when Typer has not yet
    entered its own handler, or as the silent exit 130 that Typer makes of it. Either way the
    user sees "Interrupted." and exit code 130, never a traceback. (Ctrl-C while Python
    imports this module, before main runs, is Python's own.)
    """
    global _interruption_reported
    _interruption_reported = False
    try:
        app()
    except KeyboardInterrupt:
        _interrupted()
        sys.exit(130)
    except SystemExit as done:
        if done.code == 130 and not _interruption_reported:  # jacli exits 130 only when interrupted
            _interrupted()
        raise


if __name__ == "__main__":
    main()
