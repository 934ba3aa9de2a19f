"""``--show-code``: a standalone PyTorch script that reproduces a result jacli computed.

The script is text for the user; jacli never runs it. It is written from what jacli already
holds, never from the text the user typed:

* the inputs: a constructor call for ``eye``/``ones``/``arange``/``randn``… specs (a random one
  with the very generator and seed jacli drew it from, ``jacli.inputs.build.seed_for``), a
  literal ``torch.tensor([...])`` for numbers written out or read from a file (at most
  ``LITERAL_LIMIT`` of them);
* the expression: the parsed SymPy tree, walked as ``jacli.compile`` walks it, each function
  written from its table entry's ``code`` (``jacli.functions``), each shared sub-expression
  computed once into a name;
* the call the method makes (``torch.func.jacrev``, ``jacfwd``, the row loop of
  ``torch.autograd.grad``, ``y.backward(v)``, ``torch.func.jvp``…), and a ``print``.

The script leaves its numbers in ``result``, a dict keyed as jacli's JSON ``result`` is (``x``,
``a,b`` for a Hessian block, ``output`` for J·v), and the output in ``y``.

Example:
    >>> print(expression_code("(x+1)**2"))
    def f(x):
        return (x + 1) ** 2
"""

from __future__ import annotations

import keyword
import math
import re
from typing import Any, Callable, Sequence

import sympy as sp

from jacli import nodes
from jacli.errors import ResourceError
from jacli.functions import BY_NODE

LITERAL_LIMIT = 10_000
"""The most numbers an input written out as a literal may have (a file's, a Python tensor's)."""

SCRIPT_NAMES = {"torch", "math", "f", "y", "v", "dtype", "device", "result", "value", "values", "k", "g", "d",
                "diagonals",
                "call", "block", "one_hot", "leaves", "grads", "blocks", "hessian", "scalar", "tangents",
                "args", "range", "zip", "tuple", "reversed", "int", "print"}
"""Names the script uses itself: an input called one of these is renamed (``torch`` → ``torch_``)."""

_ATOM, _POWER, _UNARY, _PRODUCT, _SUM = 100, 90, 80, 70, 60
"""Python's precedences, as far as the script needs them."""


class _Code:
    """A piece of Python: its text, its precedence, and whether it is a tensor (or a number)."""

    __slots__ = ("text", "precedence", "tensor")

    def __init__(self, text: str, precedence: int, tensor: bool):
        self.text, self.precedence, self.tensor = text, precedence, tensor

    def at(self, precedence: int) -> str:
        """The text, parenthesized where an operator of ``precedence`` needs it."""
        return self.text if self.precedence >= precedence else f"({self.text})"


def _number_text(value: float | int) -> str:
    if isinstance(value, int):
        return repr(value)
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    return repr(value)


class _Writer:
    """The expression as the body of ``def f(...)``: a walk that mirrors ``jacli.compile``'s.

    The compiler computes a sub-expression written twice once; so does the script, by giving it
    a name (``shared1 = torch.sin(x)``) at its first use. A first pass counts the uses exactly
    as the compiler's ``node`` does; the second writes.
    """

    def __init__(self, names: dict[str, str]):
        self.names = names  # variable → its name in the script
        self.uses: dict[sp.Basic, int] = {}
        self.written: dict[sp.Basic, _Code] = {}
        self.lines: list[str] = []
        self.counting = True
        self.taken = set(names.values()) | SCRIPT_NAMES

    def fresh(self, stem: str) -> str:
        for count in range(1, 1 << 20):
            name = f"{stem}{count}"
            if name not in self.taken:
                self.taken.add(name)
                return name
        raise AssertionError("unreachable")

    def body(self, tree: sp.Basic) -> list[str]:
        self.node(tree)
        self.counting = False
        result = self.node(tree)
        return self.lines + [f"return {result.text}"]

    # -- the walk ------------------------------------------------------------------------------

    def node(self, tree: sp.Basic) -> _Code:
        if isinstance(tree, sp.Symbol):
            return _Code(self.names[tree.name], _ATOM, True)
        if isinstance(tree, (sp.Number, sp.NumberSymbol)):
            value = nodes.number(tree)
            text = _number_text(value)
            return _Code(text, _UNARY if text.startswith("-") else _ATOM, False)
        if self.counting:
            self.uses[tree] = self.uses.get(tree, 0) + 1
            if self.uses[tree] == 1:
                self.build(tree)
            return _Code("", _ATOM, True)
        if tree in self.written:
            return self.written[tree]
        code = self.build(tree)
        if self.uses.get(tree, 1) > 1:
            name = self.fresh("shared")
            self.lines.append(f"{name} = {code.text}")
            code = _Code(name, _ATOM, True)
        self.written[tree] = code
        return code

    def lift(self, code: _Code) -> _Code:
        """A number as a tensor of the inputs' dtype, as the compiler lifts operands."""
        if code.tensor:
            return code
        return _Code(f"torch.tensor({code.text}, dtype=dtype, device=device)", _ATOM, True)

    def build(self, tree: sp.Basic) -> _Code:
        if isinstance(tree, sp.Add):
            return self.add(tree)
        if isinstance(tree, sp.Mul):
            return self.mul(tree)
        if isinstance(tree, sp.Pow):
            return self.power(tree)
        if isinstance(tree, nodes.Components):
            parts = [self.lift(self.node(part)) for part in tree.args]
            return _Code(f"torch.stack(torch.broadcast_tensors({', '.join(p.text for p in parts)}))", _ATOM, True)
        if isinstance(tree, nodes.Index):
            base = self.lift(self.node(tree.args[0]))
            return _Code(f"{base.at(_ATOM)}[{_key_text(tree.key())}]", _ATOM, True)
        entry = BY_NODE.get(tree.func)
        if entry is None or entry.code is None:
            raise TypeError(f"bug: no table entry writes code for {tree.func} (in {tree})")
        operands, literals, keywords = entry.arguments(tree.args)
        codes = [self.lift(self.node(operand)) for operand in operands]
        if self.counting:
            return _Code("", _ATOM, True)
        return _Code(self.call(entry.code, codes, literals, keywords), _ATOM, True)

    def call(self, template: str | Callable[..., str], codes: list[_Code], ints: list[Any],
             keywords: dict[str, Any] | None = None) -> str:
        """A table entry's code with these operands, literals (the integers, a constant's numbers,
        einsum's subscripts) and keywords: each operand used twice named first, each followed by
        ``.`` (a method call) parenthesized where it needs to be."""
        if not isinstance(template, str):  # a function of the operands: its text with markers in
            marked = template(*(f"\x00{index}\x00" for index in range(len(codes))), *ints, **(keywords or {}))
            template = re.sub(r"\x00(\d+)\x00", r"{\1}", marked.replace("{", "{{").replace("}", "}}"))
            ints = []
        texts = []
        for index, code in enumerate(codes):
            uses = template.count(f"{{{index}}}")
            if uses > 1 and not re.fullmatch(r"[\w.]+", code.text):
                name = self.fresh("operand")
                self.lines.append(f"{name} = {code.text}")
                code = _Code(name, _ATOM, True)
            texts.append(code.at(_ATOM) if f"{{{index}}}." in template else code.text)
        return template.format(*texts, *ints)

    def fold(self, first: _Code, steps: list[tuple[str, _Code]], precedence: int) -> _Code:
        """``first op b op c …`` left to right, as the compiler folds a sum or product."""
        if self.counting:
            return _Code("", _ATOM, True)
        text, current = first.at(precedence), first
        for op, code in steps:
            if not current.tensor and not code.tensor:
                text = self.lift(current).text
            text = f"{text} {op} {code.at(precedence + 1)}"
            current = _Code(text, precedence, True)
        return current

    def add(self, tree: sp.Add) -> _Code:
        first, *rest = tree.args
        negated = nodes.negated(first)
        start = self.node(first if negated is None else negated)
        if negated is not None and not self.counting:
            start = _Code(f"-{start.at(_UNARY)}", _UNARY, start.tensor)
        steps = []
        for term in rest:
            inner = nodes.negated(term)
            steps.append(("+", self.node(term)) if inner is None else ("-", self.node(inner)))
        return self.fold(start, steps, _SUM)

    def mul(self, tree: sp.Mul) -> _Code:
        negated = nodes.negated(tree)
        if negated is not None:
            inner = self.node(negated)
            return _Code(f"-{inner.at(_UNARY)}", _UNARY, inner.tensor)
        first, *rest = tree.args
        start = self.node(first)
        steps = []
        for factor in rest:
            base = nodes.reciprocal_base(factor)
            steps.append(("*", self.node(factor)) if base is None else ("/", self.node(base)))
        return self.fold(start, steps, _PRODUCT)

    def power(self, tree: sp.Pow) -> _Code:
        base, exponent = tree.args
        if base == sp.E:
            return self.unary("torch.exp", exponent)
        if exponent.is_Number:
            if exponent == sp.S.Half:
                return self.unary("torch.sqrt", base)
            if exponent == -sp.S.Half:
                return self.unary("torch.rsqrt", base)
            if exponent == sp.S.NegativeOne:
                return self.unary("torch.reciprocal", base)
            code = self.lift(self.node(base))
            power = _number_text(nodes.number(exponent))
            return _Code(f"{code.at(_POWER + 1)} ** {power if not power.startswith('-') else f'({power})'}", _POWER, True)
        left, right = self.node(base), self.node(exponent)
        if not left.tensor and not right.tensor:
            left = self.lift(left)
        return _Code(f"torch.pow({left.text}, {right.text})", _ATOM, True)

    def unary(self, function: str, operand: sp.Basic) -> _Code:
        code = self.lift(self.node(operand))
        return _Code(f"{function}({code.text})", _ATOM, True)


def _key_text(key: tuple) -> str:
    """An index key as Python: ``0, 1:3, ::2``."""
    parts = []
    for item in key:
        if isinstance(item, slice):
            start, stop, step = ("" if v is None else str(v) for v in (item.start, item.stop, item.step))
            parts.append(f"{start}:{stop}" + (f":{step}" if step else ""))
        else:
            parts.append(str(item))
    return ", ".join(parts)


def script_names(variables: Sequence[str]) -> dict[str, str]:
    """Each variable's name in the script: itself, unless the script uses that name."""
    names = {}
    for name in variables:
        safe = name
        while safe in SCRIPT_NAMES or keyword.iskeyword(safe) or safe in names.values():
            safe += "_"
        names[name] = safe
    return names


def expression_code(text: str, names: dict[str, str] | None = None) -> str:
    """``def f(...)``: the expression ``text`` as torch code, from its parsed tree."""
    from jacli.parse import parse

    parsed = parse(text)
    names = names or script_names(parsed.variables)
    body = _Writer(names).body(parsed.tree)
    arguments = ", ".join(names[v] for v in parsed.variables)
    return f"def f({arguments}):\n" + "".join(f"    {line}\n" for line in body).rstrip("\n")


# -- the inputs ------------------------------------------------------------------------------


def _literal(tensor: Any, what: str) -> str:
    count = tensor.numel()
    if count > LITERAL_LIMIT:
        raise ResourceError(
            f"`show_code` writes {what} as a literal of its numbers, but it has {count:,} (at most "
            f"{LITERAL_LIMIT:,}); give it as a spec such as randn:{'x'.join(map(str, tensor.shape))}, "
            "which the script can make itself", param="show_code",
        )
    values = tensor.detach().cpu().double().tolist()
    return f"torch.tensor({_nested(values)}, dtype=dtype, device=device)"


def _nested(values: Any) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    return _number_text(float(values))


def input_code(name: str, tensor: Any, text: str | None, seed: int) -> str:
    """How the script makes one input: the spec's constructor, or its numbers."""
    from jacli.inputs import spec as specs
    from jacli.inputs.build import seed_for

    try:
        spec = specs.parse_spec(text, param="inputs") if text else None
    except Exception:  # a description of a Python tensor, not a spec
        spec = None
    shape = tuple(tensor.shape)
    if isinstance(spec, specs.Constructor):
        kind, params = spec.kind, [_number_text(p) for p in spec.params]
        options = "dtype=dtype, device=device"
        if kind == "eye":
            return f"torch.eye({', '.join(map(str, shape))}, {options})"
        if kind in ("ones", "zeros"):
            return f"torch.{kind}({shape!r}, {options})"
        if kind == "full":
            return f"torch.full({shape!r}, {params[0]}, {options})"
        if kind == "arange":
            return f"torch.arange({', '.join(params)}, {options})"
        if kind == "linspace":
            return f"torch.linspace({', '.join(params)}, {shape[0]}, {options})"
        if kind in ("rand", "randn"):
            generator = f"torch.Generator(device=\"cpu\").manual_seed({seed_for(seed, name)})"
            return (f"torch.{kind}({shape!r}, generator={generator}, dtype=torch.float64)"
                    ".to(dtype=dtype, device=device)")
    return _literal(tensor, f"input {name}")


def _like(tensor: Any, like: str, what: str) -> str:
    """A v or direction: ``torch.ones_like(...)`` when it is all ones, else its numbers."""
    import torch

    if tensor.numel() and bool(torch.all(tensor == 1)):
        return f"torch.ones_like({like})"
    if tensor.numel() and bool(torch.all(tensor == 0)):
        return f"torch.zeros_like({like})"
    return _literal(tensor, what)


# -- the script --------------------------------------------------------------------------------

_SAYS = {
    ("jacobian", "reverse"): "reverse mode: torch.func.jacrev, one VJP per output element (vmapped)",
    ("jacobian", "forward"): "forward mode: torch.func.jacfwd, one JVP per input element (vmapped)",
    ("jacobian", "rows"): "the row loop: one torch.autograd.grad per output element, v = the k-th one-hot",
    ("jacobian", "diagonal"): "the formula is elementwise, so J is diagonal: one VJP with v = ones gives that "
                              "diagonal (1ᵀJ), and the matrix is zero elsewhere",
    ("vjp", "grad"): "torch.autograd.grad(y, inputs, grad_outputs=v): vᵀJ, without touching .grad",
    ("vjp", "backward"): "y.backward(v), then read x.grad (it adds to whatever .grad held)",
    ("jvp", "forward"): "forward mode: torch.func.jvp pushes the direction through f once",
    ("grad", "reverse"): "reverse mode: torch.autograd.grad of the one-number output",
    ("grad", "forward"): "forward mode: torch.func.jacfwd, one JVP per input element",
    ("hessian", "forward"): "forward-over-reverse: torch.func.jacfwd of torch.func.jacrev",
    ("hessian", "reverse"): "reverse-over-reverse: torch.func.jacrev of torch.func.jacrev",
    ("hvp", "forward-over-reverse"): "forward-over-reverse: torch.func.jvp of torch.func.grad, without building H",
}


def _stand_in(command: str, method: str, how: str | None = None) -> tuple[str, str]:
    """The method the script runs for jacli's ``method`` and, when they differ, why."""
    if command == "jacobian" and method == "compressed" and (how or "").startswith("diagonal"):
        return "diagonal", ""
    if (command, method) in _SAYS:
        return method, ""
    plain = {"jacobian": "reverse", "grad": "reverse", "hessian": "forward"}[command]
    return plain, (f"jacli ran method {method}; plain PyTorch has no such call, so this script runs "
                   f"{plain} mode, which gives the same numbers up to rounding")


def script(result: Any) -> str:
    """The whole script for a jacli result (``jacobian``, ``vjp``, ``jvp``, ``grad``,
    ``hessian`` or ``hvp``): inputs, ``f``, the method's call, a print."""
    result = getattr(result, "result", result)  # --answer's report: the script of the Jacobian it checked
    accumulated = getattr(result, "calls", None)  # --repeat (jacli.accumulate): the loop of backward calls
    if accumulated is not None:
        return _accumulation_script(result)
    problem = result.problem
    variables = problem.variables
    names = script_names(variables)
    command = result.command
    method, why = _stand_in(command, result.method, getattr(result, "how", None))
    wrt = [names[n] for n in problem.wrt]
    positions = tuple(variables.index(n) for n in problem.wrt)
    arguments = ", ".join(names[v] for v in variables)
    argnums = repr(positions)
    dtype = str(problem.dtype).replace("torch.", "")
    device = str(problem.device)

    header = [
        f"# {_comment(problem.command_line(command, f'--method {result.method}' + _v_option(result)))}",
        "# A standalone PyTorch script written by jacli --show-code: it computes the same numbers.",
        "import math",
        "",
        "import torch",
        "",
        f"dtype = torch.{dtype}",
        f"device = {device!r}",
        "",
    ]
    for name in variables:
        given = problem.given.get(name)
        header.append(f"{names[name]} = {input_code(name, problem.inputs[name], given, problem.seed)}"
                      + (f"  # {_comment(given)}" if given else ""))
    lines = header + ["", "", expression_code(problem.expression, names), "", ""]
    lines += _method_comment(command, method, why)
    lines += _method_lines(result, command, method, names, wrt, positions, arguments, argnums)
    lines += ["", 'print("y =", y)']
    lines += [f"print({_label(command, key, names)!r}, result[{key!r}])" for key in _keys(result)]
    return "\n".join(lines) + "\n"


def _v_option(result: Any) -> str:
    """``--v ...`` for the header's command line: ``ones`` or ``zeros`` when v is, else ``...``."""
    import torch

    given = [(None, result.v)] if getattr(result, "v", None) is not None else list(getattr(result, "directions", {}).items())
    options = []
    for name, tensor in given:
        text = ("ones" if bool(torch.all(tensor == 1)) else "zeros" if bool(torch.all(tensor == 0)) else "...")
        options.append(f" --v {name + '=' if name and len(result.problem.variables) > 1 else ''}{text}")
    return "".join(options)


def _method_comment(command: str, method: str, why: str) -> list[str]:
    return [f"# {_SAYS[(command, method)]}"] + ([f"# ({why})"] if why else [])


def _accumulation_script(result: Any) -> str:
    """The script of ``--repeat``: one graph, ``y.backward(v, retain_graph=True)`` in a loop,
    ``x.grad`` printed after each call and zeroed every ``zero_grad_after`` calls."""
    first = result.calls[0]
    lines = script(first).splitlines()
    cut = lines.index("y.backward(v)")
    names = script_names(first.problem.variables)
    wrt = [names[n] for n in first.problem.wrt]
    repeat, every = len(result.calls), result.zero_grad_after
    loop = [
        "result = {}",
        f"for call in range(1, {repeat + 1}):",
        f"    y.backward(v, retain_graph=call < {repeat})  # keep the graph for the next call",
        f"    result[call] = {{{', '.join(f'{n!r}: {w}.grad.clone()' for n, w in zip(first.problem.wrt, wrt))}}}",
        *[f'    print(f"call {{call}}: {w}.grad =", {w}.grad)' for w in wrt],
    ]
    if every:
        loop += [f"    if call % {every} == 0 and call < {repeat}:"]
        loop += [f"        {w}.grad.zero_()  # as optimizer.zero_grad() does" for w in wrt]
    header = lines[:cut]
    header[0] = _comment(first.problem.command_line("vjp", f"--method backward{_v_option(first)} --repeat {repeat}"
                                                         + (f" --zero-grad-after {every}" if every else "")))
    header[0] = "# " + header[0]
    return "\n".join(header + loop + ["y = y.detach()"]) + "\n"


def _keys(result: Any) -> list[str]:
    """The keys of ``result`` in the script, as jacli's JSON writes them."""
    if result.command == "jvp":
        return ["output"]
    if result.command == "hessian":
        return [f"{a},{b}" for a in result.wrt for b in result.wrt]
    if result.command == "jacobian":
        return list(result.blocks)
    return list(result.wrt)


def _label(command: str, key: str, names: dict[str, str]) -> str:
    """What the print says a result is, in the script's names."""
    if command == "jacobian":
        return f"dy/d{names[key]} ="
    if command in ("vjp", "grad"):
        return f"{names[key]}.grad ="
    if command == "hessian":
        a, b = key.split(",")
        return f"d2y/d{names[a]}d{names[b]} ="
    return "J·v =" if command == "jvp" else f"H·v for {names[key]} ="


def _method_lines(result: Any, command: str, method: str, names: dict[str, str], wrt: list[str],
                  positions: tuple[int, ...], arguments: str, argnums: str) -> list[str]:
    problem = result.problem
    keys = list(problem.wrt)
    lines: list[str] = []
    if command == "jacobian":
        keys = list(result.blocks)  # jacli orders the blocks as `wrt` lists them
        if method in ("reverse", "forward"):
            transform = "jacrev" if method == "reverse" else "jacfwd"
            lines += [f"y = f({arguments})",
                      f"blocks = torch.func.{transform}(f, argnums={argnums})({arguments})"]
            lines += _collect(keys, lambda key: f"blocks[{problem.wrt.index(key)}]")
        elif method == "diagonal":
            lines += [f"{name}.requires_grad_(True)" for name in wrt]
            lines += [f"y = f({arguments})",
                      f"diagonals = torch.autograd.grad(y, ({', '.join(wrt)},), grad_outputs=torch.ones_like(y))",
                      "blocks = [torch.diag(d.reshape(-1)).reshape(y.shape + d.shape) for d in diagonals]",
                      "y = y.detach()"]
            lines += _collect(keys, lambda key: f"blocks[{problem.wrt.index(key)}]")
        else:  # rows
            lines += [f"leaves = [{', '.join(names[v] + '.detach().requires_grad_(' + str(v in problem.wrt) + ')' for v in problem.variables)}]",
                      "y = f(*leaves)",
                      f"blocks = [y.new_zeros(y.shape + leaves[i].shape) for i in {argnums}]",
                      "for k in range(y.numel()):",
                      "    one_hot = torch.zeros_like(y)",
                      "    one_hot.view(-1)[k] = 1",
                      f"    grads = torch.autograd.grad(y, [leaves[i] for i in {argnums}], grad_outputs=one_hot, "
                      "retain_graph=True, allow_unused=True)",
                      "    for block, g in zip(blocks, grads):",
                      "        if g is not None:",
                      "            block.view(y.numel(), -1)[k] = g.reshape(-1)",
                      "y = y.detach()"]
            lines += _collect(keys, lambda key: f"blocks[{problem.wrt.index(key)}]")
        return lines
    if command == "vjp":
        for name in wrt:
            lines.append(f"{name}.requires_grad_(True)")
        lines.append(f"y = f({arguments})")
        lines.append(f"v = {_like(result.v, 'y', 'v')}")
        if method == "backward":
            lines += ["y.backward(v)"]
            lines += _collect(keys, lambda key: f"{names[key]}.grad if {names[key]}.grad is not None "
                                                f"else torch.zeros_like({names[key]})")
        else:
            lines += [f"grads = torch.autograd.grad(y, ({', '.join(wrt)},), grad_outputs=v, allow_unused=True)"]
            lines += _collect(keys, lambda key: f"grads[{keys.index(key)}] if grads[{keys.index(key)}] is not None "
                                                f"else torch.zeros_like({names[key]})")
        lines.append("y = y.detach()")
        return lines
    if command in ("jvp", "hvp"):
        tangents = []
        for name in problem.variables:
            direction = result.directions.get(name)
            tangents.append(f"torch.zeros_like({names[name]})" if direction is None
                            else _like(direction, names[name], f"the direction for {name}"))
        lines.append(f"tangents = ({', '.join(tangents)},)")
        if command == "jvp":
            lines += [f"y, value = torch.func.jvp(f, ({arguments},), tangents)", 'result = {"output": value}']
            return lines
        lines += ["def scalar(*args):", "    return f(*args).reshape(())", "",
                  f"y = f({arguments})",
                  f"_, values = torch.func.jvp(torch.func.grad(scalar, argnums={argnums}), ({arguments},), tangents)"]
        lines += _collect(keys, lambda key: f"values[{keys.index(key)}]")
        return lines
    lines += ["def scalar(*args):", "    return f(*args).reshape(())", "", f"y = f({arguments})"]
    if command == "grad":
        if method == "forward":
            lines.append(f"grads = torch.func.jacfwd(scalar, argnums={argnums})({arguments})")
        else:
            lines += [f"{name}.requires_grad_(True)" for name in wrt]
            lines += [f"grads = torch.autograd.grad(scalar({arguments}), ({', '.join(wrt)},), allow_unused=True)",
                      "grads = [torch.zeros_like(x) if g is None else g for g, x in "
                      f"zip(grads, ({', '.join(wrt)},))]"]
        lines += _collect(keys, lambda key: f"grads[{keys.index(key)}]")
        return lines
    outer = "jacfwd" if method == "forward" else "jacrev"
    lines.append(f"hessian = torch.func.{outer}(torch.func.jacrev(scalar, argnums={argnums}), "
                 f"argnums={argnums})({arguments})")
    pairs = [(a, b) for a in keys for b in keys]
    lines.append("result = {")
    lines += [f"    {a + ',' + b!r}: hessian[{keys.index(a)}][{keys.index(b)}]," for a, b in pairs]
    lines.append("}")
    return lines


def _collect(keys: list[str], value: Callable[[str], str]) -> list[str]:
    return ["result = {"] + [f"    {key!r}: {value(key)}," for key in keys] + ["}"]


def _comment(text: str) -> str:
    """Text for a ``#`` comment: one line, no control characters."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)


__all__ = ["LITERAL_LIMIT", "expression_code", "input_code", "script", "script_names"]
