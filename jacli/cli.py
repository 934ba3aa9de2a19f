"""The ``jacli`` command: options → library calls → rendering. Only this module knows Typer.

Library errors (``JacliError``) become ``Error: …`` on stderr and exit 1; usage errors (unknown
options, bad choices) become one ``Error: …`` line in jacli's words and exit 2 (``_Group.main``);
``check`` exits 3 when the methods disagree. torch and SymPy are imported inside the commands,
so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional

import typer
from typer.core import TyperCommand, TyperGroup

try:  # typer >= 0.22 carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer, on click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]

from jacli import __version__
from jacli.engine.methods import GradMethod, HessianMethod, JacobianMethod, Layout, VJPMethod
from jacli.errors import JacliError, flagged
from jacli.result import DEFAULT_ATOL, DEFAULT_RTOL
from jacli.status import Status, progress_delay

EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_CONFIRMED = 3
"""``check``: the methods disagree, or nothing can confirm them; CI tells it from a typo (1).
``jacobian --answer``: the learner's Jacobian disagrees with jacli's, the same verdict."""


class _Group(TyperGroup):
    """The jacli command group: every usage error passes through ``main`` (see NOTE [usage errors])."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _quicken(self.get_params(ctx))  # (the help option is made for each context)
        return super().parse_args(ctx, args)

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as shown:  # plain `jacli`: the help, as a usage error
            shown.show()
            sys.exit(EXIT_USAGE)
        except click_errors.UsageError as error:
            _diagnose(f"Error: {usage_message(error, argv, self)}")
            sys.exit(EXIT_USAGE)
        except click_errors.ClickException as error:  # pragma: no cover - jacli raises none
            error.show()
            sys.exit(error.exit_code)
        except typer.Abort:  # pragma: no cover - jacli asks no questions
            _diagnose("Aborted.")
            sys.exit(EXIT_USER_ERROR)
        sys.exit(code if isinstance(code, int) else 0)


class _Command(TyperCommand):
    """A jacli command: its usage line reads ``jacli vjp [OPTIONS] EXPR`` (click's convention)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _quicken(self.get_params(ctx))  # (the help option is made for each context)
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        # typer writes a required argument as {EXPR}, a notation no other tool uses
        return [re.sub(r"^\{(.+)\}", r"\1", piece) for piece in super().collect_usage_pieces(ctx)]


class _QuickValues:
    """An option's value coerced without pydantic where it is plainly right; typer does the rest.

    # NOTE [quick coercion]: typer coerces every option's value, defaults included, through a
    # pydantic TypeAdapter, and importing pydantic for it costs 70 ms of a small call (about a
    # third of what jacli may add to torch's import). Text for a text option, a whole number in
    # range, a choice's name and a default already of its type are converted here, to exactly
    # what typer's coercion gives (tests/test_startup.py compares them); anything else (a bad
    # value, a path, a float) goes to typer's own coercion, which words the error.
    """

    def __init__(self, param: Any) -> None:
        self.param = param
        self.annotation = param.type_descriptor.annotation
        self.info = param.type_descriptor.parameter_info
        self.typers: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        quick = self.quick(value)
        if quick is not _DOUBTFUL:
            return quick
        if self.typers is None:
            from typer._coercion import build_runtime_param

            self.typers = build_runtime_param(self.param.type_descriptor)
        return self.typers.coerce(value, param=param, ctx=ctx)

    def quick(self, value: Any) -> Any:
        """The coerced value, or ``_DOUBTFUL`` when typer should decide."""
        many = self.param.multiple or self.param.nargs == -1
        if value is None:
            return () if many else None
        if many:
            if self.annotation == List[str] and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return list(value)
            return _DOUBTFUL
        kind = self.annotation
        if kind is str and isinstance(value, str):
            return value
        if isinstance(kind, type) and issubclass(kind, Enum):
            if isinstance(value, kind):
                return value
            if isinstance(value, str):
                fold = (lambda text: text) if self.info.case_sensitive else str.casefold
                return next((member for member in kind if fold(member.value) == fold(value)), _DOUBTFUL)
            return _DOUBTFUL
        if kind is int and not isinstance(value, bool):
            number = value if isinstance(value, int) else int(value) if isinstance(value, str) and re.fullmatch(r"[0-9]+", value) else None
            low, high = self.info.min, self.info.max
            if number is None or self.info.clamp or (low is not None and number < low) or (high is not None and number > high):
                return _DOUBTFUL
            return number
        if isinstance(kind, type) and kind is not bool and type(value) is kind:  # a default (a float, a Path)
            return value
        return _DOUBTFUL


def _quicken(params: Iterable[Any]) -> None:
    """Give typer's parameters ``_QuickValues`` (where this typer coerces through pydantic)."""
    for param in params:
        if hasattr(param, "type_descriptor") and getattr(param, "_runtime_param", False) is None:
            param._runtime_param = _QuickValues(param)


_DOUBTFUL = object()
"""``_QuickValues.quick``: typer's own coercion decides."""


# No help= here: it would replace the callback's docstring, and with it the example in --help.
app = typer.Typer(
    name="jacli",
    cls=_Group,
    no_args_is_help=True,
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
    csv = "csv"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jacli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Jacobians and vector-Jacobian products of formulas, computed with PyTorch.

    \b
    Examples:
      jacli jacobian "(x+1)**2" --input eye:2
      jacli vjp "3*a + 2*b**2" -i a=1,2 -i b=3,4 --v 1,1
      jacli functions

    Each command's --help lists its options, examples and the input specs.

    \b
    Exit codes:
      0    success (check: all methods agree)
      1    an error in what was asked
      2    a usage error (an unknown option...)
      3    check: the methods disagree, or the point cannot be confirmed;
           jacobian --answer: an entry of your Jacobian is wrong
      4    batch: some jobs failed (each has its error line)
      130  interrupted
    """


# -- options shared by the commands, declared once -------------------------------------------------
#
# NOTE [shared options]
# Typer reads a command's options from its signature. The options every command shares are
# declared once here, in groups, and ``_options(...)`` appends a group's parameters to a command's
# signature and gathers their values into one ``_Options`` object, which the command receives
# as ``o`` (the idea of sqlite-utils' ``output_options`` decorator).

SPECS = """\b
Input specs, for -i NAME=SPEC and --v SPEC:
  2.5   1,2,3   [[1,2],[3,4]]   nan   inf
  eye:3   ones:2x3   zeros:4   full:2x2:0.5
  arange:5   arange:0,1,0.1   linspace:0,1,5
  rand:3   randn:3x4   (seeded by --seed)
  @x.npy  @x.pt  @x.json  @x.csv  @x.txt  @-
--v also takes ones, zeros, rand or randn
without a shape (v's own shape) and onehot:0.

\b
The functions a formula may call:
  jacli functions
"""
"""Every computing command's epilog: the spec forms (README "Input specs") and the function list."""

INPUT = typer.Option(
    [], "--input", "-i", metavar="NAME=SPEC",
    help="Bind a variable: x=1,2,3  x=eye:3  x=randn:2x3  x=@x.npy. With one variable the name may "
    "be left out. Repeat for each variable.",
)
MATRIX = typer.Option(
    False, "--matrix",
    help="Write the classic matrix in every format: one row per output element, one column per "
    "input element, the inputs side by side in --wrt order (hessian: the inputs as rows and as "
    "columns), instead of one block per input. The default when every input is a number.",
)
WRT = typer.Option(
    [], "--wrt", metavar="NAMES", help="Differentiate with respect to these inputs only (a,b or repeated). Default: all."
)
HELD = {
    "const": (List[str], typer.Option(
        [], "--const", metavar="NAMES",
        help="Hold these inputs constant (data): differentiate with respect to all the others (a,b or repeated).",
    )),
}
"""--const: given to every command that takes --wrt (see ``_options``)."""
SYMBOLIC = typer.Option(
    False, "--symbolic", help="Also show SymPy's exact derivative above the numbers."
)
V_DIRECTION = typer.Option(
    ..., "--v", "-v", metavar="[NAME=]SPEC",
    help="The direction, shaped like the input: x=1,0  x=onehot:0  x=ones. Repeat for each input "
    "that moves (the others stay still); with one variable the name may be left out.",
)

FLAGS = {
    "show_code": "--show-code", "repeat": "--repeat", "zero_grad_after": "--zero-grad-after", "answer": "--answer",
    "inputs": "--input", "wrt": "--wrt", "const": "--const", "v": "--v", "method": "--method", "device": "--device",
    "dtype": "--dtype", "seed": "--seed", "max_memory": "--max-memory", "rtol": "--rtol",
    "atol": "--atol", "symbolic": "--symbolic", "det": "--det", "output": "--output",
    "format": "--format", "precision": "--precision", "full": "--full", "layout": "--layout",
    "matrix": "--matrix",
    "view": "--view", "plot": "--plot", "explain": "--explain", "trace": "--trace",
    "batch_axis": "--batch-axis", "batched": "--batched",
    "scheduler": "--scheduler", "workers": "--workers",
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
    "dtype": (DType, typer.Option(DType.float64, "--dtype", case_sensitive=False, help="Floating-point precision.")),
}
SHOW = {
    "precision": (Optional[int], typer.Option(
        None, "--precision", min=1, max=17,
        help="Significant digits shown (default: 6 in pretty; every digit in plain and json).",
    )),
    "full": (bool, typer.Option(False, "--full", help="Show every entry of large tensors in the pretty view.")),
    "show_code": (bool, typer.Option(
        False, "--show-code",
        help="Print a standalone PyTorch script that computes the same numbers (the inputs, the "
        "formula as torch code, the method's call, a print) instead of the result. "
        "Save it with > repro.py.",
    )),
}
WRITE = {
    "output_format": (Optional[Format], typer.Option(
        None, "--format", "-f", case_sensitive=False,
        help="pretty (default on a terminal), plain (default otherwise: numbers for awk/loadtxt), json "
        "or csv (a header row naming the columns).",
    )),
    "output": (Optional[Path], typer.Option(
        None, "--output", "-o", metavar="FILE",
        help="Write the result to FILE instead of stdout (- is stdout): .json, .txt (plain, or csv "
        "with --format csv), .csv, .npy (the matrix, or one result), .npz (every result by name; "
        "the matrix as scipy.sparse; needs scipy) or .pt (every result by name, for torch.load). "
        "The file is replaced only when everything succeeded.",
    )),
    "debug": (bool, typer.Option(False, "--debug", help="Show the Python traceback of an error (also JACLI_DEBUG=1).")),
    "untrusted": (bool, typer.Option(
        False, "--untrusted",
        help="The expression and inputs come from someone else: refuse @file and @- inputs, hold "
        "the memory budget to 256 MB and SymPy to 2 s (also JACLI_UNTRUSTED=1). See SECURITY.md.",
    )),
}


POINTS = {
    "batch_axis": (Optional[int], typer.Option(
        None, "--batch-axis", metavar="AXIS",
        help="Many points in one call: axis AXIS of the inputs (0: the leading one) runs over "
        "independent points, and the result is one per point, computed together, with the points "
        "on its leading axis: (points,) + the one-point shape. Inputs without that axis (a number) "
        "are shared by all points.",
    )),
    "batched": (List[str], typer.Option(
        [], "--batched", metavar="NAMES",
        help="With --batch-axis: the inputs that hold the points (a,b or repeated); the others are "
        "shared by all points. Default: every input that has the axis.",
    )),
}
"""``--batch-axis`` and ``--batched``, for the commands that vectorize over points."""

NOISE = {
    "quiet": (bool, typer.Option(
        False, "--quiet", "-q", help="Print only the result: no notes, warnings or progress on stderr (errors still).",
    )),
    "no_color": (bool, typer.Option(
        False, "--no-color",
        help="No colour (also NO_COLOR=1 or TERM=dumb). Colour is only used on a terminal, or with FORCE_COLOR=1.",
    )),
}
"""Every command's noise options; ``_options`` adds them and keeps their values in ``_noise``."""


@dataclass
class _Noise:
    """What a run may print besides its result (the clig.dev rules), from -q and --no-color."""

    quiet: bool = False
    no_color: bool = False


_noise = _Noise()


def colour_wanted(is_terminal: bool, no_color: bool = False, environ: Optional[dict] = None) -> bool:
    """Colour only on a terminal; --no-color, NO_COLOR and TERM=dumb turn it off, FORCE_COLOR on."""
    environ = os.environ if environ is None else environ
    if no_color or environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    return bool(environ.get("FORCE_COLOR")) or is_terminal


def _console(stderr: bool = False, pipe_safe: bool = False, **settings: Any) -> Any:
    """A rich Console for stdout (or stderr) that follows ``colour_wanted``; ``pipe_safe``: a
    broken pipe raises BrokenPipeError (which ends jacli with exit 0) instead of rich's exit 1."""
    from rich.console import Console

    class PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    stream = sys.stderr if stderr else sys.stdout
    is_terminal = bool(stream is not None and stream.isatty())
    colour = colour_wanted(is_terminal, _noise.no_color)
    return (PipeConsole if pipe_safe else Console)(
        stderr=stderr, force_terminal=is_terminal or colour, color_system="auto" if colour else None,
        no_color=not colour, **settings,
    )


def _note(line: str) -> None:
    """A note or warning on stderr, which -q/--quiet leaves out (errors go through ``_diagnose``)."""
    if not _noise.quiet:
        _diagnose(line)


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


TEACH = {
    "explain": (bool, typer.Option(
        False, "--explain",
        help="After the result, explain it with this run's numbers: the exact partial derivatives "
        "(small problems), the shape rule, the structure, what the product is (with the einsum that "
        "gives it from the full J, checked), and the cost. Plain text when piped; with -f json, an "
        '"explanation" object inside the result.',
    )),
    "trace": (bool, typer.Option(
        False, "--trace",
        help="After the result, the evaluation trace: each sub-expression's value, tangent (forward "
        "mode: along --v for jvp and hvp, else a one-hot on the first input element) and adjoint "
        "(reverse mode: from --v for vjp, else 1 or a one-hot on y's first element). At most 60 "
        'numbers per column; with -f json, a "trace" object inside the result.',
    )),
}
"""--explain and --trace (jacli.explain, jacli.trace): what a result means, from this run."""

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
    show_code: bool = False
    doing: str = "jacli: computing…"
    """What the status line says while the command computes."""
    given: Optional[list] = None
    """The input specs of a continued problem (``_continue``), which replace ``inputs``."""
    view: Optional[View] = None
    plot: Optional[Path] = None
    explain: bool = False
    trace: bool = False
    const: List[str] = field(default_factory=list)
    batch_axis: Optional[int] = None
    batched: List[str] = field(default_factory=list)

    def points(self) -> dict[str, Any]:
        """The library's ``batch_axis`` and ``batched`` (none without --batch-axis)."""
        if self.batch_axis is None:
            if self.batched:
                raise _clash("--batched names the inputs that hold points along --batch-axis; give --batch-axis "
                             "too, e.g. --batch-axis 0")
            return {}
        taught = [flag for flag, on in (("--explain", self.explain), ("--trace", self.trace),
                                        ("--show-code", self.show_code)) if on]
        # a continued problem's --batch-axis was not typed: it cannot be left out, only replaced
        fix = ("give one point's problem instead (EXPR and its inputs): the continued one has many points"
               if self.given is not None else "leave out --batch-axis and give one point's inputs")
        if taught:
            doing = "writes the script of" if taught[0] == "--show-code" else "explains"
            raise _clash(f"{taught[0]} {doing} one point; with --batch-axis there is one result per point: {fix}")
        if self.view is not None or self.plot is not None:
            raise _clash(f"{'--view' if self.view is not None else '--plot'} draws one matrix; with --batch-axis "
                         f"there is one per point: {fix}")
        return {"batch_axis": self.batch_axis, "batched": list(self.batched) or None}

    def specs(self) -> tuple[list, Optional[int]]:
        """The cheap checks (specs, device name, budget) before torch or SymPy load."""
        from jacli import devices, inputs as spec_module, limits

        devices.check_names(self.device, "float64")
        specs = self.given if self.given is not None else [spec_module.parse_input_option(text) for text in self.inputs]
        budget = limits.parse_size(self.max_memory) if self.max_memory is not None else None
        _announce_terminal_stdin(specs)
        return specs, budget

    def out(self) -> "_Out":
        stdout = self.output is not None and str(self.output) == "-"  # -o -: standard output
        return _Out(self.output_format, self.precision, self.full, None if stdout else self.output, self.view, self.plot,
                    self.show_code)

    def shown_as(self) -> str:
        """Where the result goes (see ``_Out.destination``)."""
        return self.out().destination()

    def run(self, compute: Callable[[], Any]) -> Any:
        """Compute and show the result, with jacli's errors as Error lines."""
        return _run(compute, self.out(), self.debug, self.doing, self.inputs, teach=(self.explain, self.trace))


def _options(*groups: dict[str, tuple[Any, Any]]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the options of ``groups``; it receives their values as ``o: _Options``."""
    common = {name: spec for group in (*groups, NOISE) for name, spec in group.items()}

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command)
        shared = {**common, **(HELD if "wrt" in signature.parameters else {})}
        own = [p for p in signature.parameters.values() if p.name != "o"]
        added = [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=option, annotation=annotation)
            for name, (annotation, option) in shared.items()
        ]

        @functools.wraps(command)
        def with_options(**values: Any) -> Any:
            _noise.quiet, _noise.no_color = values.pop("quiet"), values.pop("no_color")
            Status.quiet, Status.no_color = _noise.quiet, _noise.no_color
            options = _Options(**{name: values.pop(name) for name in shared if name not in NOISE})
            options.doing = _computing(command.__name__, values)
            context = values.pop("context")
            if "expression" not in values:
                return command(o=options, **values)
            values["expression"] = _problem(command, values, options, context)
            _hold_constant(values, options, context)
            outcome = command(o=options, **values)
            _remember(command.__name__, values, options)
            return outcome

        # The inputs come right after the expression in --help, where a reader looks first.
        leading = [p for p in added if p.name in LEADING]
        trailing = [p for p in added if p.name not in LEADING]
        # Typer passes the click context to a parameter of this type: it says which options
        # were typed (NOTE [continuing a problem]).
        context = inspect.Parameter("context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        parameters = own[:1] + leading + own[1:] + trailing + [context]
        with_options.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        annotations = {k: v for k, v in command.__annotations__.items() if k != "o"}
        with_options.__annotations__ = {
            **annotations, **{name: spec[0] for name, spec in shared.items()}, "context": typer.Context,
        }
        return with_options

    return decorate


def _expression(example: str, what: str = "The formula") -> Any:
    return typer.Argument(
        None, metavar="EXPR", show_default=False,
        help=f"{what}, e.g. \"{example}\"; @FILE or - reads it from a file or stdin. Left out, "
        "the problem is continued: from jacli's -f json output piped in, else the last one run.",
    )


# NOTE [continuing a problem]
# With no EXPR a command continues a problem (the "second used-by line": after a jacobian, a
# learner types `jacli vjp --v 0.1,1,0.0001`): the one piped in as jacli's own -f json output
# when stdin is a pipe, else the last one jacli ran for this user (jacli.history). What the user
# types wins: -i replaces that input (the others stay), and --wrt, --dtype, --device, --seed
# replace theirs. One line on stderr says which problem was continued. Untrusted mode continues
# nothing and reads no expression file.

def _problem(command: Callable[..., Any], values: dict[str, Any], o: _Options, context: Any) -> str:
    """The expression to compute: EXPR as typed, read from @FILE or -, or a continued problem's."""
    from jacli import history
    from jacli.problem import is_untrusted_environment

    warnings.showwarning = _show_warning
    untrusted = o.untrusted or is_untrusted_environment()
    text = values["expression"]
    try:
        if text is not None:
            if text == "-" and _reads_stdin(o, values):
                raise JacliError(
                    "the expression is - (standard input), and so is an input or --v; give the expression itself"
                )
            return history.expression(text, untrusted=untrusted)
        earlier = None
        if not untrusted:
            if history.piped() and not _reads_stdin(o, values):
                piped = history.read_stdin()
                earlier = history.document(piped) if piped.strip() else None
            earlier = earlier or history.load()
        if earlier is None:
            _diagnose(f"Error: {_no_problem(command, values, o, untrusted)}")
            raise typer.Exit(2)
        _continue(earlier, values, o, context)
        return earlier.expression
    except JacliError as error:
        if o.debug or os.environ.get("JACLI_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off"):
            raise
        raise _refused(error) from None


def _hold_constant(values: dict[str, Any], o: _Options, context: Any) -> None:
    """--const NAMES: --wrt becomes every other variable (the library's ``wrt_without``); a --wrt
    taken over from a continued problem, not typed, gives way to the --const typed now."""
    if not o.const:
        return
    from jacli.problem import wrt_without

    source = context.get_parameter_source("wrt")
    typed = source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")
    try:
        values["wrt"] = wrt_without(values["expression"], values.get("wrt") if typed else None, o.const)
    except JacliError as error:
        if o.debug or os.environ.get("JACLI_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off"):
            raise
        raise _refused(error) from None


def _reads_stdin(o: _Options, values: dict[str, Any]) -> bool:
    """Whether an --input or --v typed on this command line is @- (standard input)."""
    v = values.get("v") or []
    texts = list(o.inputs) + ([v] if isinstance(v, str) else list(v))
    return any(text.split("=", 1)[-1].strip() == "@-" for text in texts)


def _continue(earlier: Any, values: dict[str, Any], o: _Options, context: Any) -> None:
    """Take the earlier problem's inputs and settings, except where the user typed their own."""
    import shlex

    from jacli import inputs as spec_module
    from jacli.errors import InputError

    specs = {
        name: earlier.values.get(name) or spec_module.parse_spec(text, param="inputs") for name, text in earlier.inputs
    }
    for name, spec in (spec_module.parse_input_option(text) for text in o.inputs):
        if name is None:
            if len(specs) != 1:
                raise InputError(
                    f"an --input without a name cannot say which input of the continued problem it "
                    f"replaces ({', '.join(specs)}); write NAME=SPEC, e.g. --input {next(iter(specs), 'x')}=1,2,3"
                )
            name = next(iter(specs))
        specs[name] = spec
    o.given = list(specs.items())

    def default(name: str) -> bool:
        source = context.get_parameter_source(name)
        return source is None or source.name in ("DEFAULT", "DEFAULT_MAP")

    if "wrt" in values and default("wrt") and earlier.wrt:
        values["wrt"] = list(earlier.wrt)  # a --const typed now gives way to none of it (_hold_constant)
    source = "the last problem" if earlier.source == "history" else "the problem piped in"
    if earlier.batch_axis is not None and default("batch_axis"):
        if not any(getattr(param, "name", None) == "batch_axis" for param in context.command.params):
            raise InputError(
                f"{source} has many points (--batch-axis {earlier.batch_axis}), and jacli {context.command.name} "
                "computes one point; give one point's problem (EXPR and its inputs), or continue this one with "
                "jacobian, vjp, jvp or grad"
            )
        o.batch_axis = earlier.batch_axis
        if default("batched"):
            o.batched = list(earlier.batched)
    if default("dtype") and earlier.dtype in DType.__members__:
        o.dtype = DType(earlier.dtype)
    if default("device"):
        o.device = earlier.device
    if default("seed"):
        o.seed = earlier.seed
    shown = [shlex.quote(earlier.expression)] + [f"-i {shlex.quote(f'{n}={t}')}" for n, t in earlier.inputs]
    shown += [f"--wrt {shlex.quote(','.join(earlier.wrt))}"] if earlier.wrt else []
    shown += [f"--dtype {earlier.dtype}"] if earlier.dtype != "float64" else []
    shown += [f"--device {shlex.quote(earlier.device)}"] if earlier.device != "cpu" else []
    shown += [f"--seed {earlier.seed}"] if earlier.seed and earlier.source == "history" else []
    shown += [f"--batch-axis {earlier.batch_axis}"] if earlier.batch_axis is not None else []
    shown += [f"--batched {shlex.quote(','.join(earlier.batched))}"] if earlier.batch_axis is not None and earlier.batched else []
    _diagnose(f"jacli: continuing {source}: jacli {earlier.command} {' '.join(shown)}")


def _no_problem(command: Callable[..., Any], values: dict[str, Any], o: _Options, untrusted: bool) -> str:
    """No EXPR and nothing to continue: the command's first example, with what the user typed
    (their --v, their inputs under an expression of their names), and why nothing continued."""
    import re
    import shlex

    from jacli import history

    if untrusted:
        why = "untrusted mode continues no earlier problem"
    elif not history.enabled():
        why = "nothing is piped in, and the last problem is not kept: JACLI_NO_HISTORY is set"
    else:
        why = "nothing is piped in, and jacli has run no problem for you yet"
    name = command.__name__
    examples = [line.strip() for line in (command.__doc__ or "").splitlines() if line.strip().startswith("jacli ")]
    example = examples[0] if examples else f'jacli {name} "x**2" -i x=1,2,3'
    if o.inputs:  # the user's own inputs, under an expression of their names
        names = dict.fromkeys(t.split("=", 1)[0].strip() if "=" in t else "x" for t in o.inputs)
        inputs = " ".join(f"-i {shlex.quote(text)}" for text in o.inputs)
        example = f'jacli {name} "{" + ".join(f"{n}**2" for n in names)}" {inputs}'
    v = values.get("v")
    typed = [v] if isinstance(v, str) else list(v or [])
    if typed:  # the user's own --v in place of the example's
        example = re.sub(r" --v \S+", "", example) + "".join(f" --v {shlex.quote(text)}" for text in typed)
    return f"jacli {name} needs a formula (EXPR); for example: {example} (there is no problem to continue: {why})"


def _remember(command: str, values: dict[str, Any], o: _Options) -> None:
    """Keep the problem that just ran as the last one (see jacli.history)."""
    from jacli import history
    from jacli.problem import is_untrusted_environment

    if o.untrusted or is_untrusted_environment() or not history.enabled():
        return
    try:
        from jacli.parse import parse

        specs, _ = o.specs()
        history.save(
            command, values["expression"], [(name, spec.text) for name, spec in specs],
            variables=parse(values["expression"]).variables, wrt=list(values.get("wrt") or []),
            dtype=o.dtype.value, device=o.device, seed=o.seed, batch_axis=o.batch_axis, batched=list(o.batched),
        )
    except JacliError:
        pass


@app.command(cls=_Command, short_help="The Jacobian of EXPR for each input.", epilog=SPECS)
@_options(PROBLEM, PLACE, SHOW, WRITE, PICTURE, TEACH, POINTS)
def jacobian(
    expression: str = _expression("[r*cos(t), r*sin(t)]"),
    wrt: List[str] = WRT,
    method: JacobianMethod = typer.Option(
        JacobianMethod.auto, "--method", "-m", case_sensitive=False,
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
        Layout.auto, "--layout", case_sensitive=False,
        help="How to store and show each block: dense (every entry), diagonal (only dy[i]/dx[i], "
        "for a Jacobian that is zero elsewhere), sparse (the nonzeros, as output index, input "
        "index, value), or auto: the structure the formula has on a terminal and in .npz/.pt "
        "files, dense in plain, json and other files (what scripts read).",
    ),
    matrix: bool = MATRIX,
    answer: Optional[str] = typer.Option(
        None, "--answer", metavar="JACOBIAN",
        help="Check your own Jacobian instead of printing jacli's: numbers ([[4, 1]]), a file (@J.npy) "
        "or formulas in the inputs' names ([2*x*y, x**2]), as the classic matrix. Says which entries "
        "are wrong (right: within 0.5%, or 1e-6 near 0); exit 0 when all are right, 3 when one is wrong.",
    ),
    *,
    o: _Options,
) -> None:
    """The Jacobian of EXPR with respect to each input; shape output.shape + input.shape.

    Examples:

    \b
      jacli jacobian "(x+1)**2" --input eye:2
      jacli jacobian "[r*cos(t), r*sin(t)]" -i r=2 -i t=0.5
      jacli jacobian "x**2" -i 2,3 --method rows
      jacli jacobian "[r*cos(t), r*sin(t)]" -i r=2 -i t=0.5 --symbolic --det
      jacli jacobian "(x+1)**2" --input eye:1000 --layout diagonal
      jacli jacobian "x**2*y" -i x=1 -i y=2 --answer "[2*x*y, x**2]"

      jacli jacobian "x[:-2] - 2*x[1:-1] + x[2:]" -i randn:10000 --view spy
      jacli jacobian "r*sin(t)" -i r=1,2,3 -i t=0.5 --batch-axis 0
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
        if answer is not None and o.batch_axis is not None:
            raise _clash("--answer checks one point's Jacobian; with --batch-axis there is one per point: "
                         "leave out --batch-axis and give one point's inputs")
        result = api.compute_jacobian(
            expression, specs, wrt=wrt, method=method.value, device=o.device, dtype=o.dtype.value,
            seed=o.seed, max_memory=budget, untrusted=o.untrusted, progress=_RowProgress(), symbolic=symbolic, det=det,
            layout=Layout.dense.value if answer is not None else shown.value, matrix=matrix or None,
            **o.points(),
        )
        if answer is None:
            return result
        from jacli.answer import check_answer

        return check_answer(result, answer)

    _explained_alone(o, answer=answer is not None)
    report = o.run(compute)
    if answer is not None and report is not None and not getattr(report, "ok", True):
        raise typer.Exit(EXIT_NOT_CONFIRMED)


@app.command(cls=_Command, short_help="vᵀJ: what y.backward(v) leaves in x.grad.", epilog=SPECS)
@_options(PROBLEM, PLACE, SHOW, WRITE, TEACH, POINTS)
def vjp(
    expression: str = _expression("3*a + 2*b**2"),
    v: str = typer.Option(
        ..., "--v", "-v", metavar="SPEC",
        help="The vector v, shaped like the output: 1,0.5  ones  randn  onehot:0  @v.npy. "
        "ones, zeros, rand, randn without a shape take the output's shape.",
    ),
    wrt: List[str] = WRT,
    method: VJPMethod = typer.Option(
        VJPMethod.auto, "--method", "-m", case_sensitive=False,
        help="grad (torch.autograd.grad), backward (y.backward(v), then read x.grad), or auto (grad).",
    ),
    repeat: Optional[int] = typer.Option(
        None, "--repeat", min=1, metavar="N",
        help="Call y.backward(v) N times on one graph and show x.grad after each call: it accumulates "
        "(--method backward; JSON: a list of results).",
    ),
    zero_grad_after: Optional[int] = typer.Option(
        None, "--zero-grad-after", min=1, metavar="K", help="With --repeat: x.grad.zero_() after every K calls.",
    ),
    *,
    o: _Options,
) -> None:
    """vᵀJ for each input: what y.backward(v) leaves in x.grad, shaped like x.

    A non-scalar output y needs v (one weight per output element) because backward computes
    the gradient of the scalar sum(v * y).

    Examples:

    \b
      jacli vjp "3*a + 2*b**2 + log(c)" -i a=1,2,3 -i b=3,4,5 -i c=6,7,8 --v 0.1,1,0.0001
      jacli vjp "relu(x)" -i arange:-8,8,0.1 --v ones --format json
      jacli vjp "(x+1)**2" -i eye:5 --v ones --method backward --repeat 3 --zero-grad-after 2
    """

    def compute() -> Any:
        from jacli import api, inputs as spec_module

        specs, budget = o.specs()
        v_spec = spec_module.parse_spec(spec_module.unnamed_v(v), for_v=True)
        if repeat is not None or zero_grad_after is not None:
            from jacli.accumulate import compute_accumulation

            if o.batch_axis is not None:
                raise _clash("--repeat shows one x.grad after each call; with --batch-axis there is one per "
                             "point: leave out --batch-axis and give one point's inputs")

            return compute_accumulation(
                expression, specs, v_spec, repeat=repeat if repeat is not None else _needs_repeat(),
                zero_grad_after=zero_grad_after, wrt=wrt, method=method.value, device=o.device,
                dtype=o.dtype.value, seed=o.seed, max_memory=budget, untrusted=o.untrusted,
            )
        return api.compute_vjp(
            expression, specs, v_spec, wrt=wrt, method=method.value, device=o.device,
            dtype=o.dtype.value, seed=o.seed, max_memory=budget, untrusted=o.untrusted, **o.points(),
        )

    _explained_alone(o, repeat=repeat is not None, zero_grad_after=zero_grad_after is not None)
    o.run(compute)


@app.command(cls=_Command, short_help="J·v, the Jacobian-vector product.", epilog=SPECS)
@_options(PROBLEM, PLACE, SHOW, WRITE, TEACH, POINTS)
def jvp(
    expression: str = _expression("[r*cos(t), r*sin(t)]"),
    v: List[str] = V_DIRECTION,
    *,
    o: _Options,
) -> None:
    """J·v, the Jacobian-vector product, shaped like the output (one forward-mode pass).

    v is a direction in input space: how fast the output changes when the inputs move along v.

    Examples:

    \b
      jacli jvp "[r*cos(t), r*sin(t)]" -i r=2 -i t=0.5 --v t=1
      jacli jvp "x**2" -i 1,2,3 --v 1,0,0
    """

    def compute() -> Any:
        from jacli import api

        specs, budget = o.specs()
        return api.compute_jvp(
            expression, specs, _directions(v), device=o.device, dtype=o.dtype.value, seed=o.seed,
            max_memory=budget, untrusted=o.untrusted, **o.points(),
        )

    o.run(compute)


@app.command(cls=_Command, short_help="The gradient of a one-number output.", epilog=SPECS)
@_options(PROBLEM, PLACE, SHOW, WRITE, TEACH, POINTS)
def grad(
    expression: str = _expression("x**2 + 3*x + 1", "A formula with one number as output"),
    wrt: List[str] = WRT,
    method: GradMethod = typer.Option(
        GradMethod.auto, "--method", "-m", case_sensitive=False,
        help="reverse (torch.autograd.grad, also auto), forward (jacfwd) or symbolic (SymPy).",
    ),
    symbolic: bool = SYMBOLIC,
    *,
    o: _Options,
) -> None:
    """The gradient of a single-number output: what y.backward() leaves in x.grad.

    Examples:

    \b
      jacli grad "x**2 + 3*x + 1" -i 2
      jacli grad "3*a + 2*b**2 + log(c)" -i a=0.1 -i b=1 -i c=0.1 --symbolic
    """

    def compute() -> Any:
        from jacli import api

        specs, budget = o.specs()
        return api.compute_grad(
            expression, specs, wrt=wrt, method=method.value, device=o.device, dtype=o.dtype.value,
            seed=o.seed, max_memory=budget, untrusted=o.untrusted, symbolic=symbolic, **o.points(),
        )

    o.run(compute)


@app.command(cls=_Command, short_help="The Hessian of a one-number output.", epilog=SPECS)
@_options(PROBLEM, PLACE, SHOW, WRITE, PICTURE, TEACH)
def hessian(
    expression: str = _expression("sum(x**3)", "A formula with one number as output"),
    wrt: List[str] = WRT,
    method: HessianMethod = typer.Option(
        HessianMethod.auto, "--method", "-m", case_sensitive=False,
        help="forward (forward-over-reverse: jacfwd of jacrev, also auto), reverse "
        "(reverse-over-reverse) or symbolic (SymPy).",
    ),
    symbolic: bool = SYMBOLIC,
    matrix: bool = MATRIX,
    *,
    o: _Options,
) -> None:
    """The Hessian of a single-number output: shape input.shape + input.shape; with several
    inputs, one block per pair (keyed "a,b" in JSON).

    Examples:

    \b
      jacli hessian "x[0]**2*x[1] + x[1]**3" -i 1,2
      jacli hessian "a*b**2" -i a=1 -i b=2 --symbolic

      jacli hessian "logsumexp(x)" -i randn:30 --view heatmap
    """

    def compute() -> Any:
        from jacli import api

        specs, budget = o.specs()
        return api.compute_hessian(
            expression, specs, wrt=wrt, method=method.value, device=o.device, dtype=o.dtype.value,
            seed=o.seed, max_memory=budget, untrusted=o.untrusted, symbolic=symbolic, matrix=matrix or None,
        )

    o.run(compute)


@app.command(cls=_Command, short_help="H·v, the Hessian-vector product.", epilog=SPECS)
@_options(PROBLEM, PLACE, SHOW, WRITE, TEACH)
def hvp(
    expression: str = _expression("sum(x**3)", "A formula with one number as output"),
    v: List[str] = V_DIRECTION,
    *,
    o: _Options,
) -> None:
    """H·v, the Hessian-vector product, without building the Hessian (forward over reverse).

    Examples:

    \b
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


@app.command(cls=_Command, short_help="Compare every method; exit 3 if they disagree.", epilog=SPECS)
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
    SymPy gives it, else reverse mode.

    Exit codes, for CI scripts: 0 when all agree within --rtol/--atol; 3 when a method disagrees
    or the point cannot be confirmed (a singularity of the derivative); 1 for an error in what
    was asked (a typo in the formula, a bad input); 2 for a usage error.

    Examples:

    \b
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
        raise typer.Exit(EXIT_NOT_CONFIRMED)


class GraphFormat(str, Enum):
    pretty = "pretty"
    plain = "plain"
    json = "json"
    dot = "dot"


@app.command(cls=_Command, short_help="The autograd graph torch builds for EXPR.", epilog=SPECS)
@_options(PROBLEM, PLACE)
def graph(
    expression: str = _expression("(x+1)**2"),
    wrt: List[str] = WRT,
    output_format: Optional[GraphFormat] = typer.Option(
        None, "--format", "-f", case_sensitive=False,
        help="pretty (a tree, default on a terminal), plain (the same tree as text, default otherwise), "
        "json (nodes with their next_functions) or dot (Graphviz: dot -Tsvg).",
    ),
    *,
    o: _Options,
) -> None:
    """The autograd graph of EXPR: each grad_fn (PowBackward0, AddBackward0, ...) beside the
    sub-expression it computes, down to the leaves (AccumulateGrad, which fills x.grad) and the
    constants, where no gradient flows. Inputs left out of --wrt are held constant.

    Examples:

    \b
      jacli graph "(x+1)**2" -i eye:2
      jacli graph "sin(x)*sin(x) + y" -i x=1 -i y=2 --wrt x
      jacli graph "(x+1)**2" -i eye:2 -f dot
    """

    def compute() -> Any:
        from jacli.graph import compute_graph

        specs, budget = o.specs()
        return compute_graph(expression, specs, wrt=wrt, device=o.device, dtype=o.dtype.value, seed=o.seed,
                             max_memory=budget, untrusted=o.untrusted,
                             output_format=output_format.value if output_format is not None else None)

    o.run(compute)


@app.command(cls=_Command, short_help="The functions a formula may call.")
def functions(
    names: Optional[List[str]] = typer.Argument(
        None, metavar="NAME", show_default=False,
        help="Only these functions or constants, in this order, e.g. softmax sum (default: all).",
    ),
    output_format: Optional[str] = typer.Option(
        None, "--format", "-f", metavar="FORMAT",
        help="plain (default: one per line, with its group) or json (each function's group and "
        "arguments, whether it is elementwise and whether it has kinks, and the constants).",
    ),
) -> None:
    """The functions a formula may call, one per line, and the constants; with NAMEs, only those.

    \b
    Example:
      jacli functions
      jacli functions softmax sum
      jacli functions -f json
    """
    from jacli.functions import CONSTANTS, FUNCTIONS

    wanted = (output_format or "plain").strip().lower()
    if wanted not in ("plain", "json"):
        _diagnose(f"Error: --format {output_format!r} is not one of its choices; choose plain or json")
        raise typer.Exit(2)
    chosen = _chosen_functions(names or [], [*FUNCTIONS, *CONSTANTS])
    if wanted == "json":
        document = {
            "functions": [
                {
                    "name": entry.name, "summary": entry.summary,
                    "operands": {"min": entry.tensors[0], "max": entry.tensors[1]},
                    "integers": list(entry.ints), "elementwise": entry.elementwise,
                    "kinks": entry.kinks is not None, "sparsity": entry.sparsity.__name__,
                    "group": entry.group, "constant": entry.constant, "keywords": list(entry.keywords),
                    "subscripts": entry.subscripts is not None,
                }
                for entry in (FUNCTIONS[name] for name in chosen if name in FUNCTIONS)
            ],
            "constants": {name: float(CONSTANTS[name]) for name in chosen if name in CONSTANTS},
        }
        sys.stdout.write(json.dumps(document) + "\n")
        return
    rows = [(entry.name, entry.group, entry.summary) for entry in FUNCTIONS.values()]
    rows += [(name, "constant", f"the constant {float(value):.6g}...") for name, value in CONSTANTS.items()]
    by_name = {row[0]: row for row in rows}
    rows = [by_name[name] for name in chosen]
    width, kind = max(len(row[0]) for row in rows), max(len(row[1]) for row in rows)
    sys.stdout.write("".join(f"{name:<{width}}  {group:<{kind}}  {summary}\n" for name, group, summary in rows))


def _chosen_functions(names: List[str], known: List[str]) -> List[str]:
    """The functions and constants ``jacli functions NAME...`` shows, in the order named (none
    named: all of them); an unknown name is an Error with the near misses, before any output."""
    import difflib

    if not names:
        return list(known)
    for name in names:
        if name not in known:
            close = [name.lower()] if name.lower() in known else difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            _diagnose(f"Error: {name!r} is not a jacli function or constant; {hint}"
                      "'jacli functions' lists them all")
            raise typer.Exit(1)
    return list(dict.fromkeys(names))


def _needs_repeat() -> int:
    raise _clash("--zero-grad-after zeroes x.grad between repeated calls; give --repeat N too, "
                 "e.g. --repeat 3 --zero-grad-after 2")


def _teaching_view(result: Any, out: _Out) -> None:
    """A teaching result (jacli.accumulate, jacli.graph, jacli.answer) formats itself."""
    if out.file is not None:
        raise _clash(f"--output {out.file}: this view is written to standard output only; "
                     f"redirect it instead (> {out.file})")
    chosen = getattr(result, "format", None) or out.destination()
    if chosen == "pretty":
        console = _stdout_console()
        result.print_pretty(console if console.width >= 20 else _stdout_console(width=80), out.precision)
    else:
        sys.stdout.write(result.text(chosen, out.precision))
    sys.stdout.flush()


EXIT_SOME_FAILED = 4
"""``batch``: at least one job failed (each has its error line); jacli.batch.EXIT_SOME_FAILED."""


@app.command(cls=_Command, name="batch", short_help="Many jobs: JSON Lines in, JSON Lines out.")
def batch_command(
    jobs: Optional[str] = typer.Argument(
        None, metavar="FILE|-", show_default=False,
        help="The jobs, one JSON object per line; - (or nothing, with a pipe) reads standard input.",
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", metavar="OUT.jsonl", help="Write the lines to OUT.jsonl instead of stdout.",
    ),
    resume: Optional[Path] = typer.Option(
        None, "--resume", metavar="OUT.jsonl",
        help="Skip the jobs whose id is already in OUT.jsonl (results and errors) and append the "
        "others' lines to it. A last line cut short is dropped.",
    ),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", metavar="URL",
        help='Compute the groups on this Dask cluster (tcp://HOST:8786; also JACLI_SCHEDULER); '
        'needs pip install "jacli[dask]", and jacli on the workers.',
    ),
    workers: Optional[int] = typer.Option(
        None, "--workers", min=1, metavar="N", help="Compute the groups on a local Dask cluster of N worker processes.",
    ),
    untrusted: bool = typer.Option(
        False, "--untrusted", help="The jobs come from someone else: refuse @file and @- specs (see SECURITY.md).",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the Python traceback of an error (also JACLI_DEBUG=1)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or warnings on stderr (errors still)."),
    no_color: bool = typer.Option(False, "--no-color", help="No colour (also NO_COLOR=1 or TERM=dumb)."),
) -> None:
    """Run many jobs: one JSON object per line in, one JSON line per job out, in input order.

    A job uses the command line's names: {"id": 1, "command": "jacobian", "expr":
    "x**2", "inputs": {"x": "1,2,3"}}, and may give v, wrt, method, layout, matrix,
    symbolic, det, dtype, device, seed and max_memory. Its line is what --format json
    prints for it, with its id first (without an id: its line number), or
    {"id": ..., "line": N, "error": "..."} when it fails; the others go on.
    Jobs with the same command, expression, input shapes and options are computed
    together, as --batch-axis does.

    Examples (write the lines to a file with > OUT.jsonl or -o OUT.jsonl; after an
    interruption, --resume OUT.jsonl runs the jobs not in it yet and appends their lines):

    \b
      jacli batch examples/sweep.jsonl

    \b
    Exit codes:
      0    every job succeeded
      1    an error in what was asked (a file that cannot be read...)
      2    a usage error
      4    some jobs failed: each has its error line
    """
    from jacli.batch import EXIT_SOME_FAILED as failed_code

    _noise.quiet, _noise.no_color = quiet, no_color
    Status.quiet, Status.no_color = quiet, no_color
    warnings.showwarning = _show_warning
    debug = debug or os.environ.get("JACLI_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")
    assert failed_code == EXIT_SOME_FAILED
    try:
        failed, failed_before, written, skipped = _run_batch(jobs, output, resume, scheduler, workers, untrusted, debug)
    except JacliError as error:
        if debug:
            raise
        raise _refused(error) from None
    except KeyboardInterrupt:
        if debug:
            raise
        _interrupted()
        raise typer.Exit(130) from None
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(0) from None
    if written == 0 and not skipped:
        _note(f"jacli: no jobs in {'standard input' if jobs in (None, '-') else jobs} (it is empty or blank); "
              + (f"wrote an empty {output}" if output is not None else "nothing to do"))
    elif output is not None:  # as the other commands note the file -o wrote
        errors = f", {len(failed):,} error{'s' if len(failed) != 1 else ''}" if failed else ""
        _note(f"jacli: wrote {output} ({written:,} line{'s' if written != 1 else ''}{errors})")
    if failed:
        _note(f"jacli: {len(failed)} job{'s' if len(failed) != 1 else ''} failed (line{'s' if len(failed) != 1 else ''} "
              f"{_short_list(failed)}); each has its error line")
    if failed_before:  # a resumed file still holding error lines is not a finished run
        many = len(failed_before) != 1
        _note(f"jacli: {resume} still holds {len(failed_before)} error line{'s' if many else ''} from before (the "
              f"job{'s' if many else ''} on line{'s' if many else ''} {_short_list(failed_before)}); delete "
              f"{'those lines' if many else 'that line'} and --resume again to run {'them' if many else 'it'}")
    if failed or failed_before:
        raise typer.Exit(EXIT_SOME_FAILED)


def _short_list(numbers: List[int], most: int = 10) -> str:
    shown = ", ".join(map(str, numbers[:most]))
    return shown + (f" and {len(numbers) - most} more" if len(numbers) > most else "")


def _run_batch(jobs: Optional[str], output: Optional[Path], resume: Optional[Path], scheduler: Optional[str],
               workers: Optional[int], untrusted: bool, debug: bool = False) -> tuple[List[int], List[int], int, int]:
    """Read the jobs, run them, write the lines; the line numbers of the jobs that failed now, and
    of those whose error lines were already in the file resumed; the lines written, and the jobs
    already in the file resumed."""
    from jacli import batch
    from jacli.problem import is_untrusted_environment

    untrusted = untrusted or is_untrusted_environment()
    if output is not None and resume is not None:
        raise _clash("--output writes a new file and --resume appends to one; give one of them")
    if jobs is None and sys.stdin is not None and sys.stdin.isatty():
        _diagnose("Error: jacli batch needs jobs: a file (jacli batch jobs.jsonl), or - for standard input "
                  "(jacli batch - < jobs.jsonl)")
        raise typer.Exit(EXIT_USAGE)
    lines = _job_lines(jobs)
    done: list = []
    failed_before: List[int] = []
    target, mode = (output, "w") if output is not None else (resume, "a") if resume is not None else (None, "")
    if resume is not None and resume.exists():
        try:
            text = resume.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise JacliError(f"cannot read --resume {resume} ({getattr(error, 'strerror', None) or error})") from None
        done, complete, failed_before = batch.written_ids(text)
        if complete < len(text.encode("utf-8")):
            with open(resume, "r+b") as handle:
                handle.truncate(complete)
            _note(f"jacli: dropped the last line of {resume}, cut short; its job runs again")
        errors = (f"; {len(failed_before):,} of them {'are errors' if len(failed_before) != 1 else 'is an error'}: delete "
                  f"{'those lines' if len(failed_before) != 1 else 'that line'} to run "
                  f"{'them' if len(failed_before) != 1 else 'it'} again") if failed_before else ""
        _note(f"jacli: {len(done):,} job{'s' if len(done) != 1 else ''} already in {resume}, skipped{errors}")
    mapper = _cluster_mapper(scheduler, workers)
    failed: List[int] = []
    written = 0
    try:
        stream = open(target, mode, encoding="utf-8") if target is not None else sys.stdout
    except OSError as error:
        raise JacliError(f"cannot write {target} ({error.strerror or error})") from None
    try:
        with _BatchProgress(_count_lines(jobs) if not _noise.quiet and sys.stderr is not None and sys.stderr.isatty()
                            else None) as progress:
            for line in batch.run(lines, done=done, untrusted=untrusted, mapper=mapper, progress=progress,
                                  failed=failed, raise_errors=debug):
                stream.write(line + "\n")
                written += 1
                if target is not None:
                    stream.flush()  # a crash leaves whole lines behind, for --resume
        stream.flush()
    finally:
        if target is not None:
            stream.close()
    return failed, failed_before, written, len(done)


def _job_lines(jobs: Optional[str]) -> Iterable[str]:
    """The jobs' lines as they are read (a long file is never held whole)."""
    if jobs is None or jobs == "-":
        return _read_lines(sys.stdin, "standard input") if sys.stdin is not None else iter(())
    try:
        handle = open(jobs, encoding="utf-8")
    except FileNotFoundError:
        raise JacliError(f"no such file: {jobs}; give the jobs file (one JSON object per line), or - for standard input") from None
    except IsADirectoryError:
        raise JacliError(f"{jobs} is a folder; give the jobs file (one JSON object per line)") from None
    except OSError as error:
        raise JacliError(f"cannot read {jobs} ({error.strerror or error})") from None
    return _read_lines(handle, jobs, close=True)


def _count_lines(jobs: Optional[str]) -> Optional[int]:
    """The lines of a jobs file (for the progress bar's total), or None for standard input."""
    if jobs is None or jobs == "-":
        return None
    try:
        with open(jobs, "rb") as handle:
            return sum(piece.count(b"\n") for piece in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None


def _read_lines(handle: Any, name: str, close: bool = False) -> Iterable[str]:
    try:
        for line in handle:
            yield line
    except (OSError, UnicodeDecodeError) as error:
        raise JacliError(f"cannot read {name} ({getattr(error, 'strerror', None) or error})") from None
    finally:
        if close:
            handle.close()


def _cluster_mapper(scheduler: Optional[str], workers: Optional[int]) -> Any:
    """Dask's ``map_groups`` for --scheduler or --workers (nothing of Dask is imported without them)."""
    if scheduler is None and workers is None:  # JACLI_SCHEDULER stands in for --scheduler, not beside --workers
        scheduler = os.environ.get("JACLI_SCHEDULER", "").strip() or None
    if scheduler is None and workers is None:
        return None
    if scheduler is not None and workers is not None:
        raise _clash("--scheduler uses a running cluster and --workers starts a local one; give one of them")
    try:
        from jacli import cluster
    except ImportError as error:
        raise JacliError(f'--scheduler and --workers need jacli\'s Dask support ({error}); install it with pip install "jacli[dask]"') from None

    def mapper(function: Any, groups: Any) -> Any:
        return cluster.map_groups(function, groups, scheduler=scheduler, workers=workers, threads=1)

    return mapper


class _BatchProgress:
    """A progress bar of the jobs on stderr, only on a terminal and without -q; ``lines``: how
    many lines the jobs file has, when it is known."""

    def __init__(self, lines: Optional[int] = None) -> None:
        self.progress: Any = None
        self.task: Any = None
        self.lines = lines

    def __enter__(self) -> "_BatchProgress":
        if not _noise.quiet and sys.stderr is not None and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("jacli batch"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                     console=_console(stderr=True), transient=True)
            self.progress.start()
        return self

    def __call__(self, done: int, total: Optional[int]) -> None:
        if self.progress is None:
            return
        total = total if total is not None else self.lines
        if self.task is None:
            self.task = self.progress.add_task("jobs", total=total)
        self.progress.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()


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
    code: bool = False

    def destination(self) -> str:
        """pretty, plain, json or csv (on stdout, or a text file's), or a binary file's suffix
        (``.npy``, ``.npz``, ``.pt``)."""
        if self.file is not None:
            from jacli.render import file_format, file_suffix

            suffix = file_suffix(self.file)
            try:
                return file_format(suffix, self.format.value if self.format is not None else None)
            except ValueError:
                return suffix  # refused by _check_format_matches_file before any work
        if self.format is not None:
            return self.format.value
        return "pretty" if sys.stdout is not None and sys.stdout.isatty() else "plain"


def _run(
    compute: Callable[[], Any], out: _Out, debug: bool, doing: str = "jacli: computing…", inputs: Iterable[str] = (),
    teach: tuple[bool, bool] = (False, False),
) -> Any:
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
        _check_teaching(out, teach)
        with _no_status() if _reads_terminal(inputs) else Status(doing):
            result = compute()
            taught = _teaching(result, teach)
        _render(result, out, taught)
        return result
    except JacliError as error:
        if debug:
            raise
        raise _refused(error) from None
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


def _reads_terminal(inputs: Iterable[str]) -> bool:
    """Whether an input is read from the terminal (``-i @-``): no spinner over the typing."""
    return any(t.strip().endswith("@-") for t in inputs) and sys.stdin is not None and sys.stdin.isatty()


def _no_status() -> Any:
    import contextlib

    return contextlib.nullcontext()


def _diagnose(line: str) -> None:
    """One line on stderr, flushed at once (it may come before a long computation's result).

    Control characters are escaped here too, whatever the library put in the message: a message
    may quote what the user typed, and a terminal must never receive it raw."""
    from jacli.inputs.spec import printable

    if sys.stderr is None:  # started with stderr closed (2>&-): there is no one to tell
        return
    sys.stderr.write(printable(line, keep_newlines=True) + "\n")
    sys.stderr.flush()


def _refused(error: JacliError) -> typer.Exit:
    """A library error's ``Error:`` line on stderr, and the exit that goes with it: 2 when the
    options given do not go together (``error.usage``: a usage error, like a typo in a flag), else 1."""
    _diagnose(f"Error: {error.cli_message or flagged(str(error), FLAGS)}")
    return typer.Exit(EXIT_USAGE if error.usage else EXIT_USER_ERROR)


def _clash(message: str) -> JacliError:
    """Options that do not go together: raised, it is reported as a usage error (exit 2)."""
    return JacliError(message, usage=True)


def _check_teaching(out: _Out, teach: tuple[bool, bool]) -> None:
    """--explain and --trace add text to stdout: a CSV table has no place for it (usage error)."""
    if any(teach) and out.code:
        wanted = " and ".join(flag for flag, on in zip(("--explain", "--trace"), teach) if on)
        _diagnose(f"Error: {wanted} explains jacli's own result, which --show-code replaces with a script; "
                  f"run them as two commands, one with {wanted} and one with --show-code")
        raise typer.Exit(2)
    if any(teach) and out.format is Format.csv and out.file is None:
        wanted = " and ".join(flag for flag, on in zip(("--explain", "--trace"), teach) if on)
        _diagnose(f"Error: {wanted} cannot go into a CSV table; use --format json (it comes as its own key) "
                  "or plain, or write the CSV with --output FILE")
        raise typer.Exit(2)


def _explained_alone(o: "_Options", **others: bool) -> None:
    """--explain and --trace explain jacli's own result: --answer, --repeat and --show-code replace
    that result with another view, so they do not go together, nor does --show-code with --answer
    (usage errors)."""
    clashing = [FLAGS[name] for name, on in others.items() if on]
    if (o.explain or o.trace) and clashing:
        wanted = " and ".join(flag for flag, on in zip(("--explain", "--trace"), (o.explain, o.trace)) if on)
        _diagnose(f"Error: {wanted} explains jacli's own result, which {clashing[0]} replaces; "
                  f"run them as two commands, one with {wanted} and one with {clashing[0]}")
        raise typer.Exit(2)
    if o.show_code and others.get("answer"):  # (--repeat's script is the loop of backward calls: it goes)
        _diagnose("Error: --show-code prints a script in place of jacli's result, and --answer checks your Jacobian "
                  "against that result; run them as two commands, one with --show-code and one with --answer")
        raise typer.Exit(2)


def _teaching(result: Any, teach: tuple[bool, bool]) -> dict:
    if not any(teach):
        return {}
    from jacli.explain import teach as taught

    return taught(result, explain=teach[0], trace=teach[1])


def _json_teaching(taught: dict) -> dict:
    from jacli import render_explain

    return render_explain.as_json(taught) if taught else {}


def _teach(taught: dict, out: _Out, chosen: str) -> None:
    """Write the explanation and the trace after the result, on stdout (the result may be in a file)."""
    if taught:
        from jacli import render_explain

        render_explain.write(taught, chosen, sys.stdout, _stdout_console, out.precision)


def _render(result: Any, out: _Out, taught: Optional[dict] = None) -> None:
    from jacli import render

    taught = taught or {}
    if out.code:
        from jacli import showcode

        sys.stdout.write(showcode.script(result))
        sys.stdout.flush()
        return
    if hasattr(result, "print_pretty") and hasattr(result, "text"):
        _teaching_view(result, out)
        return
    if type(result).__name__ == "PointsResult":
        _render_points(result, out)
        return

    chosen = out.destination()
    writing = f"jacli: writing {render.number_count(result):,} numbers to {out.file or 'standard output'}…"
    if out.plot is not None:
        _plot(result, out.plot)
    if out.view is not None and out.file is None:
        _print_view(result, out.view)
        _teach(taught, out, "pretty" if sys.stdout.isatty() else "plain")
        return
    if out.file is not None:
        with Status(writing):
            _write_atomically(out.file, render.to_chunks(result, chosen, out.precision))
        # a Hessian's blocks are views made on demand, and never diagonal blocks: not looked at
        blocks = result.blocks if getattr(result, "command", "") == "jacobian" else {}
        diagonal = any(getattr(block, "layout", "") == "diagonal" for block in blocks.values())
        what = ""
        if chosen == ".npy" and getattr(result, "as_matrix", False):
            rows, columns = result.matrix().rows, result.matrix().columns
            what = f" (the {len(rows)}x{len(columns)} matrix: rows {rows.summary()}; columns {columns.summary()}"
            what += "; det J is not in it: write .npz, .pt or .json for it)" if getattr(result, "det", None) is not None else ")"
        elif diagonal and chosen == ".npy":
            what = " (the diagonal, shaped like the output)"
        _note(f"jacli: wrote {out.file}{what}")
        _det_left_out(result, chosen)
        if out.view is not None:
            _print_view(result, out.view)
        _teach(taught, out, out.format.value if out.format is not None and out.format is not Format.csv else "")
        return
    _det_left_out(result, chosen)
    try:
        if chosen in ("json", "plain", "csv"):
            pieces = {"json": lambda: render.json_chunks(result, extra=_json_teaching(taught)),
                      "csv": lambda: render.csv_lines(result, out.precision),
                      "plain": lambda: render.plain_lines(result, out.precision)}[chosen]()
            # on a terminal the numbers themselves show progress; a pipe or file shows none
            with _no_status() if sys.stdout.isatty() else Status(writing):
                for piece in pieces:
                    sys.stdout.write(piece)
        else:
            console = _stdout_console()
            if console.width < 20:  # COLUMNS=0 or a tiny pane: rich would print nothing at all
                console = _stdout_console(width=80)
            render.print_pretty(result, console, out.precision, out.full)
        if chosen != "json":
            _teach(taught, out, chosen)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as error:  # a full disk, a closed terminal: say so instead of a traceback
        raise JacliError(
            f"cannot write the result to standard output ({error.strerror or error}); "
            "free some space, or write it with --output FILE"
        ) from None


def _render_points(result: Any, out: _Out) -> None:
    """A result per point (--batch-axis): one document, table or view for all of them."""
    from jacli import render_points

    chosen = out.destination()
    count = sum(t.numel() for _, t in result.tensors())
    if out.file is not None:
        with Status(f"jacli: writing {count:,} numbers to {out.file}…"):
            _write_atomically(out.file, render_points.to_chunks(result, chosen, out.precision))
        _note(f"jacli: wrote {out.file} ({result.points:,} points)")
        return
    try:
        if chosen in ("json", "plain", "csv"):
            pieces = {"json": lambda: render_points.json_chunks(result),
                      "csv": lambda: render_points.csv_lines(result, out.precision),
                      "plain": lambda: render_points.plain_lines(result, out.precision)}[chosen]()
            for piece in pieces:
                sys.stdout.write(piece)
        else:
            console = _stdout_console()
            if console.width < 20:
                console = _stdout_console(width=80)
            render_points.print_pretty(result, console, out.precision, out.full)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as error:
        raise JacliError(
            f"cannot write the result to standard output ({error.strerror or error}); "
            "free some space, or write it with --output FILE"
        ) from None


def _det_left_out(result: Any, chosen: str) -> None:
    """A CSV table has no place for det J: say so, as the .npy note does."""
    if chosen == "csv" and getattr(result, "det", None) is not None:
        _note("jacli: det J is not in the CSV table (one matrix); write .json, .npz or .pt for it, or use -f plain")


def _stdout_console(**options: Any) -> Any:
    """``_console()`` for stdout, whose broken pipe (``| head``) ends jacli as plain and json do,
    with exit 0; rich's own answer is exit 1."""
    return _console(pipe_safe=True, **options)


def _check_pictures(out: _Out) -> None:
    """--view replaces the numbers on stdout, so it takes no --format (usage error, exit 2);
    --plot needs a .png or .svg name and matplotlib. Both checked before any work."""
    if out.code:
        given = [flag for flag, value in (("--format", out.format), ("--output", out.file), ("--view", out.view),
                                          ("--plot", out.plot)) if value is not None]
        if given:
            _diagnose(f"Error: --show-code prints a script on stdout instead of the result, so it cannot be "
                      f"combined with {given[0]}; leave out {given[0]}, and save the script with > repro.py")
            raise typer.Exit(2)
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
    _note(f"jacli: wrote {path}")


def _print_view(result: Any, view: "View") -> None:
    from jacli import views

    console = _console()
    if console.width < 20:  # as for the pretty view: COLUMNS=0 or a tiny pane
        console = _console(width=80)
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
    """--format with --output may pick what a text file holds (.txt: plain or csv); otherwise the
    file's name decides, and a --format that contradicts it is refused."""
    from jacli.errors import InputError
    from jacli.render import file_format, file_suffix

    if out.format is None or out.file is None:
        return
    suffix = file_suffix(out.file)
    if out.format.value == "pretty":
        raise InputError(
            f"--format pretty is for the terminal and cannot go to --output {out.file}; leave out "
            "--format (the file's name decides: .json, .txt, .csv, .npy, .npz or .pt), or leave out --output"
        )
    try:
        file_format(suffix, out.format.value)
    except ValueError as error:
        fitting = {"json": ".json", "plain": ".txt", "csv": ".csv"}[out.format.value]
        written = " or ".join(str(error).split(", ")) if str(error) else suffix[1:]
        raise InputError(
            f"--format {out.format.value} does not match --output {out.file}: a {suffix} file is written as {written}. "
            f"Leave out --format (the file's name decides), or name the file *{fitting}"
        ) from None


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
    _note(f"Warning: {flagged(str(message), FLAGS)}")


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
            if done == total or time.monotonic() - self.start < min(self.DELAY, progress_delay()):
                return
            # a real terminal only: FORCE_COLOR asks for colour, not for a bar drawn into a log
            if sys.stderr is None or not sys.stderr.isatty() or _noise.quiet:
                self.start = float("inf")  # never again: no bars in logs, nor with -q
                return
            from rich.progress import Progress  # (only now: a pipe or a log never pays its import)

            Status.end_current()
            self.bar = Progress(console=_console(stderr=True), transient=True)
            self.bar.start()
            _RowProgress.active.append(self)
            self.task = self.bar.add_task("Jacobian rows", total=total)
        self.bar.update(self.task, completed=done)
        if done == total:
            self.bar.stop()
            _RowProgress.active.remove(self)


# -- usage errors in jacli's words ---------------------------------------------------------------
#
# NOTE [usage errors]
# click words a usage error for the programmer who wrote the CLI ("Invalid value for '--method' /
# '-m': Value error, 'revers' is not one of ...") and prints the usage line above it. jacli says,
# in one line, what was wrong (with what the user typed) and what to type instead: a close
# choice or option, a complete example, or where the help is. Every usage error of every command
# comes here from ``_Group.main``; the exit code stays 2.


def usage_message(error: Exception, argv: List[str], group: Any = None) -> str:
    """One line, without ``Error:``, that says what was wrong with the command line and what to do.

    ``group`` (the jacli group) finds the command when click raised the error without a context."""
    ctx = getattr(error, "ctx", None)
    if ctx is not None:
        command, where = ctx.command, _command_line(ctx)
        group = ctx.parent.command if ctx.parent is not None else ctx.command
    else:
        commands = getattr(group, "commands", {})
        name = next((t for t in argv if t in commands), None)
        command = commands[name] if name else group
        where = f"jacli {name}" if name else "jacli"
    param = getattr(error, "param", None)
    message = str(getattr(error, "message", error)).strip()
    if isinstance(error, click_errors.NoSuchOption):
        return _unknown_option(error.option_name, argv, command, group, where)
    if isinstance(error, click_errors.MissingParameter) and param is not None:
        if not _flag(param).startswith("-"):
            return f"{where} needs a formula ({_flag(param)}){_example(command, where)}"
        return f"{where} needs {_flag(param)} {param.metavar or ''}".rstrip() + _example(command, where, _flag(param))
    if isinstance(error, click_errors.BadParameter) and param is not None:
        return _bad_value(error, param, argv, where)
    if isinstance(error, click_errors.BadOptionUsage):
        name = error.option_name
        if "does not take a value" in message:
            return f"{name} takes no value; write {name} alone"
        option = _option_named(command, name)
        metavar = f" ({option.metavar})" if option is not None and option.metavar else ""
        return f"{name} needs a value{metavar}{_example(command, where, _long(option) if option else name)}"
    extra = re.match(r"Got unexpected extra argument\S* \((.*)\)", message)
    if extra:
        if not any(getattr(p, "param_type_name", "") == "argument" for p in getattr(command, "params", [])):
            return f"{where} takes no arguments, and got {extra.group(1)!r}; '{where} --help' lists its options"
        if getattr(command, "name", "") == "batch":
            return (f"{where} takes one jobs file, and {extra.group(1)!r} came after it; give one FILE, or - for "
                    "standard input (join several files with cat a.jsonl b.jsonl | jacli batch)")
        return (
            f"{where} takes one formula, and {extra.group(1)!r} came after it; quote a formula that "
            "has spaces (\"x + y\"), and give each input with -i NAME=SPEC"
        )
    unknown = re.match(r"No such command '(.+?)'", message)
    if unknown:
        names = ", ".join(getattr(group, "commands", {}))
        close = difflib.get_close_matches(unknown.group(1).lower(), list(getattr(group, "commands", {})), n=1)
        if close:
            return f"jacli has no command {unknown.group(1)!r}; did you mean {close[0]!r}? (the commands: {names})"
        return f"jacli has no command {unknown.group(1)!r}; the commands are {names}"
    return f"{message.rstrip('.')}; see '{where} --help'"


def _command_line(ctx: Any) -> str:
    """``jacli vjp`` for a command's context, ``jacli`` for the group's."""
    if ctx is None or ctx.parent is None:
        return "jacli"
    return f"jacli {ctx.info_name}"


def _long(param: Any) -> str:
    return next((o for o in param.opts if o.startswith("--")), param.opts[0])


def _flag(param: Any) -> str:
    """How a message names a parameter: its long option, or an argument's metavar (EXPR)."""
    if getattr(param, "param_type_name", "") == "argument" or not param.opts[0].startswith("-"):
        return param.metavar or param.name.upper()
    return _long(param)


def _options_of(command: Any) -> set[str]:
    names = {"-h", "--help"}
    for param in getattr(command, "params", []):
        names.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("-"))
    return names


def _option_named(command: Any, name: str) -> Any:
    return next((p for p in getattr(command, "params", []) if name in (*p.opts, *p.secondary_opts)), None)


def _examples(command: Any) -> list[str]:
    """The example command lines in a command's help, whole."""
    return [line.strip() for line in (command.help or "").splitlines() if line.strip().startswith("jacli ")]


def _example(command: Any, where: str, flag: Optional[str] = None) -> str:
    """"; for example: " and the command's first example (that uses ``flag``), or where its help is."""
    found = [e for e in _examples(command) if flag is None or re.search(rf"{re.escape(flag)}(?![\w-])", e)]
    return f"; for example: {found[0]}" if found else f"; '{where} --help' says what it takes"


def _unknown_option(name: str, argv: List[str], command: Any, group: Any, where: str) -> str:
    typed = next((t for t in argv if t == name or (t.startswith(name) and not t.startswith("--"))), name)
    options = _options_of(command)
    said = f"{where} has no option {name}"
    elsewhere = [f"jacli {n}" for n, c in getattr(group, "commands", {}).items() if name in _options_of(c)]
    verb = "takes" if len(elsewhere) == 1 else "take"
    taken = f"{said}; {_one_of(elsewhere or ['none'])} {verb} it ('{where} --help' lists this command's options)"
    if name.startswith("--"):
        if elsewhere and command is not group:
            return taken
        close = difflib.get_close_matches(name, sorted(o for o in options if o.startswith("--")), n=1)
        if close:
            return f"{said}; did you mean {close[0]}?"
        return f"{said}; '{where} --help' lists its options"
    close = [o for o in options if len(o) == 2 and o.lower() == name.lower()]
    if close and typed == name:
        return f"{said}; did you mean {close[0]}?"
    if elsewhere and command is not group and typed == name:
        return taken
    takes_formula = any(getattr(p, "param_type_name", "") == "argument" for p in getattr(command, "params", []))
    if takes_formula and "--" not in argv and typed in argv:
        rest = list(argv)
        rest.remove(typed)
        fixed = " ".join(["jacli", *map(_shell_word, rest), "--", _shell_word(typed)])
        return f"{said}; if {typed!r} is the formula, put -- before it: {fixed}"
    return f"{said}; '{where} --help' lists its options"


def _shell_word(text: str) -> str:
    """``text`` as a shell word a user can paste: bare, in double quotes, or in single quotes."""
    import shlex

    if re.fullmatch(r"[\w@%+=:,./-]+", text):
        return text
    if not re.search(r"[\"$`\\!]", text):
        return f'"{text}"'
    return shlex.quote(text)


def _typed_value(error: Exception, param: Any, argv: List[str]) -> Optional[str]:
    """What the user gave ``param``: from the validation error, else read back from argv."""
    details = getattr(error.__cause__, "errors", None)
    if callable(details):
        try:
            first = details()[0]
            if "input" in first:
                return str(first["input"])
        except Exception:  # pragma: no cover - an unexpected shape of pydantic's error
            pass
    value = None
    for i, token in enumerate(argv):
        for opt in param.opts:
            if token == opt and i + 1 < len(argv):
                value = argv[i + 1]
            elif opt.startswith("--") and token.startswith(opt + "="):
                value = token[len(opt) + 1:]
            elif not opt.startswith("--") and token.startswith(opt) and len(token) > len(opt):
                value = token[len(opt):]
    return value


def _choices(param: Any) -> Optional[list[str]]:
    descriptor = getattr(param, "type_descriptor", None)
    values = getattr(descriptor, "choices", None) if descriptor is not None else getattr(param.type, "choices", None)
    return [str(getattr(c, "value", c)) for c in values] if values else None


def _number_kind(param: Any) -> Optional[str]:
    import typing

    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    for candidate in (annotation, *typing.get_args(annotation)):
        if candidate is int:
            return "a whole number"
        if candidate is float:
            return "a number"
    return {"integer": "a whole number", "float": "a number"}.get(getattr(getattr(param, "type", None), "name", ""))


def _one_of(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _bad_value(error: Exception, param: Any, argv: List[str], where: str) -> str:
    flag = _flag(param)
    typed = _typed_value(error, param, argv)
    shown = f"{flag} {typed!r}" if typed is not None else flag
    choices = _choices(param)
    if choices:
        close = difflib.get_close_matches((typed or "").lower(), choices, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? The choices: " if close else "choose "
        return f"{shown} is not one of its choices; {hint}{_one_of(choices)}"
    kind = _number_kind(param)
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if kind is not None:
        example = param.default if isinstance(param.default, (int, float)) and not isinstance(param.default, bool) else 1
        if low is not None or high is not None:
            bounds = f"from {low} to {high}" if low is not None and high is not None else (
                f"of at least {low}" if low is not None else f"of at most {high}")
            try:
                number = float(typed) if typed is not None else None
            except ValueError:
                number = None
            if number is not None:
                return f"{flag} {typed} is out of range; give {kind} {bounds}"
            return f"{shown} is not {kind}; give {kind} {bounds}"
        return f"{shown} is not {kind}; give {kind}, e.g. {flag} {example}"
    detail = re.sub(r"^Value error, ", "", str(getattr(error, "message", error))).rstrip(".")
    return f"{shown}: {detail}; see '{where} --help'"


def _computing(command: Optional[str], params: dict) -> str:
    """What the status line says while a command computes."""
    what = {"jacobian": "the Jacobian", "vjp": "vᵀJ", "jvp": "J·v", "grad": "the gradient",
            "hessian": "the Hessian", "hvp": "H·v", "check": "the Jacobian with every method"}.get(command or "", "")
    exact = getattr(params.get("method"), "value", params.get("method")) == "symbolic" or params.get("symbolic")
    if exact:
        return f"jacli: deriving {what or 'the result'} exactly with SymPy, then evaluating it…"
    return f"jacli: computing {what or 'the result'}…"


def _announce_terminal_stdin(specs: list) -> None:
    """``-i @-`` with the terminal as standard input: jacli waits for typing; say so."""
    from jacli.inputs.spec import File

    if sys.stdin is None or sys.stderr is None or not sys.stdin.isatty() or not sys.stderr.isatty():
        return
    for name, spec in specs:
        if isinstance(spec, File) and spec.path == "-":
            _diagnose(f"jacli: reading {name or 'the input'} from standard input (this terminal): type the "
                      "numbers (1,2,3 or one row per line), then press Ctrl-D; or pipe them in (< x.txt)")


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
