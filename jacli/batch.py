"""``jacli batch``: JSON Lines in, JSON Lines out, in input order.

One job per line, with the command line's names::

    {"id": "a", "command": "jacobian", "expr": "[r*cos(t), r*sin(t)]", "inputs": {"r": 2, "t": "0.5"}}

Keys: ``command`` (jacobian, vjp, jvp, grad, hessian, hvp) and ``expr`` are required; ``inputs``
maps each variable to its spec (a string such as ``"eye:5"``, or a JSON number or nested list);
``v`` (vjp: a spec; jvp and hvp: name → spec, or a spec for one variable), ``wrt``, ``const``, ``method``,
``layout``, ``matrix``, ``symbolic``, ``det``, ``dtype``, ``device``, ``seed`` and ``max_memory``
as the options of that name. ``id`` is any JSON value; without one, a job's id is its line number.

Each output line is what ``jacli COMMAND ... --format json`` prints for the job, with ``"id"``
first; a job that fails is ``{"id": ..., "line": N, "error": "..."}`` and the others go on.

Jobs with the same command, expression, input shapes and options form a group computed together
(``batch_axis``: one vmapped pass for the whole group, ``jacli.points``); a group of one runs as
the command does. A group's lines say what ran for the group (its ``method`` and ``how``); its
numbers are those of each job run alone. Groups run in this process, or on a Dask cluster
(``jacli.cluster``) through ``run_group``, a module-level function of a picklable ``Group``.

Example:
    >>> lines = ['{"id": 1, "command": "grad", "expr": "x**2", "inputs": {"x": 3}}', '{"command": "nope"}']
    >>> out = list(run(lines))
    >>> json.loads(out[0])["result"]["x"]["values"], json.loads(out[1])["error"][:30]
    (6.0, "unknown command 'nope'; a job'")
"""

from __future__ import annotations

import difflib
import gc
import itertools
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence, Sized

from jacli import inputs as specs
from jacli.errors import InputError, JacliError, ResourceError

EXIT_SOME_FAILED = 4
"""``jacli batch``'s exit code when at least one job failed (each has its error line)."""

COMMANDS = ("jacobian", "vjp", "jvp", "grad", "hessian", "hvp")

KEYS = ("id", "command", "expr", "inputs", "v", "wrt", "const", "method", "layout", "matrix", "symbolic", "det", "dtype",
        "device", "seed", "max_memory")
"""What a job may say (the command line's names)."""

GROUP_LIMIT = 4096
"""Most jobs computed together: a larger group is split, so lines and progress keep coming."""

WINDOW = 65_536
"""Lines read, grouped and written at a time: a long file streams through in windows."""

GROUP_BYTES = 256 * 2**20
"""Most bytes of inputs stacked for one group (jobs with large inputs are grouped fewer at a time)."""


@dataclass
class Job:
    """One line's job, checked; ``inputs`` and ``v`` keep the spec texts as written."""

    line: int
    id: Any
    command: str
    expr: str
    inputs: list[tuple[str, str]]
    v: Any = None
    wrt: list[str] = field(default_factory=list)
    method: str = "auto"
    layout: str = "auto"
    matrix: bool = False
    symbolic: bool = False
    det: bool = False
    dtype: str = "float64"
    device: str = "cpu"
    seed: int = 0
    max_memory: Any = None
    untrusted: bool = False
    specs: list[Any] | None = field(default=None, repr=False, compare=False)
    """The inputs' parsed specs, once they are read (``_specs``)."""


@dataclass
class Failed:
    """A line that is no job (not JSON, a key it cannot have...): its error line."""

    line: int
    id: Any
    error: str


@dataclass
class Group:
    """Jobs computed together (one job: alone); what ``run_group`` takes."""

    jobs: list[Job]


# -- reading ------------------------------------------------------------------------------------


def read_jobs(lines: Iterable[str], untrusted: bool = False) -> list[Job | Failed]:
    """Each non-blank line as a ``Job``, or a ``Failed`` saying what is wrong with it."""
    return _read(enumerate(lines, start=1), untrusted, {})


def _read(numbered: Iterable[tuple[int, str]], untrusted: bool, seen: dict[Any, int]) -> list[Job | Failed]:
    """``read_jobs`` of numbered lines; ``seen`` holds the ids read so far (and gets these)."""
    found: list[Job | Failed] = []
    for number, text in numbered:
        if not text.strip():
            continue
        try:
            job = parse_job(text, number, untrusted)
        except JacliError as error:
            found.append(Failed(number, _id_of(text, number), str(error)))
            continue
        key = _id_key(job.id)
        if key in seen:
            found.append(Failed(number, job.id, f"id {json.dumps(job.id)} is also the id of line {seen[key]}; give each "
                                                "job its own id"))
            continue
        seen[key] = number
        found.append(job)
    return found


def _id_of(text: str, number: int) -> Any:
    try:
        document = json.loads(text)
    except ValueError:
        return number
    return document.get("id", number) if isinstance(document, dict) else number


def parse_job(text: str, number: int, untrusted: bool = False) -> Job:
    """One line as a ``Job``; an InputError names what is wrong and what a job looks like."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise InputError(f"line {number} is not JSON ({error}); write one job per line, e.g. {EXAMPLE}") from None
    if not isinstance(document, dict):
        raise InputError(f"line {number} is {type(document).__name__}, not a JSON object; write one job per line, "
                         f"e.g. {EXAMPLE}")
    for key in document:
        if key not in _KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(f"a job has no key {key!r}{hint}; its keys are: {', '.join(KEYS)}")
    command = document.get("command")
    if command not in COMMANDS:
        close = difflib.get_close_matches(str(command), COMMANDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        what = "no command" if command is None else f"unknown command {command!r}"
        raise InputError(f"{what}; a job's \"command\" is one of {', '.join(COMMANDS)}{hint}")
    unused = [key for key in document if key not in _TAKES[command] and key not in ("id", "command", "expr")]
    if unused:
        raise InputError(f"{command} takes no {', '.join(json.dumps(key) for key in unused)} (as jacli {command} "
                         f"has no such option); its keys are: id, command, expr, {', '.join(_TAKES[command])}")
    expr = document.get("expr")
    if not isinstance(expr, str):
        raise InputError(f"\"expr\" must be the formula as a string, e.g. \"x**2\", not {json.dumps(expr)}")
    job = Job(number, document.get("id", number), command, expr, _inputs(document.get("inputs", {})),
              untrusted=untrusted)
    if "v" in document:
        job.v = _v(document["v"], command)
    elif command in ("vjp", "jvp", "hvp"):
        raise InputError(f"{command} needs \"v\", e.g. \"v\": \"ones\"")
    if "wrt" in document:
        wrt = document["wrt"]
        if isinstance(wrt, str):
            wrt = [wrt]
        if not isinstance(wrt, list) or not all(isinstance(w, str) for w in wrt):
            raise InputError(f"\"wrt\" must be names, \"a,b\" or [\"a\", \"b\"], not {json.dumps(wrt)}")
        job.wrt = wrt
    if "const" in document:  # the inputs held constant: every other one is differentiated
        from jacli.problem import wrt_without

        const = document["const"]
        if not isinstance(const, (str, list)) or not all(isinstance(c, str) for c in ([const] if isinstance(const, str) else const)):
            raise InputError(f"\"const\" must be names, \"a,b\" or [\"a\", \"b\"], not {json.dumps(const)}")
        job.wrt = list(wrt_without(expr, job.wrt or None, const) or [])
    for key in sorted(_OPTIONS.keys() & document.keys()):
        kind, value = _OPTIONS[key], document[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InputError(f"\"{key}\" must be a {kind.__name__}, not {json.dumps(value)}")
        setattr(job, key, value)
    if "max_memory" in document:
        job.max_memory = document["max_memory"]
    return job


_KEYS = frozenset(KEYS)
_PLACE = ("dtype", "device", "seed", "max_memory")
_TAKES = {
    "jacobian": ("inputs", "wrt", "const", "method", "layout", "matrix", "symbolic", "det", *_PLACE),
    "vjp": ("inputs", "v", "wrt", "const", "method", *_PLACE),
    "jvp": ("inputs", "v", *_PLACE),
    "grad": ("inputs", "wrt", "const", "method", "symbolic", *_PLACE),
    "hessian": ("inputs", "wrt", "const", "method", "symbolic", "matrix", *_PLACE),
    "hvp": ("inputs", "v", *_PLACE),
}
"""The keys each command takes besides id, command and expr: its options."""
_OPTIONS = {"method": str, "layout": str, "dtype": str, "device": str, "matrix": bool, "symbolic": bool, "det": bool,
            "seed": int}

EXAMPLE = '{"id": 1, "command": "jacobian", "expr": "x**2", "inputs": {"x": "1,2,3"}}'


def _spec_text(value: Any, where: str) -> str:
    """A spec as the command line would take it: a string as it is, a JSON number or list as its text."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float or kind is int:
        return repr(value)  # what json.dumps writes for a number JSON can hold
    if kind is list:
        return json.dumps(value, separators=(",", ":"))
    raise InputError(f"{where} must be a spec such as \"eye:3\", a number or a list, not {json.dumps(value)}")


def _inputs(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        pairs = [(name, _spec_text(spec, f"input {name}")) for name, spec in value.items()]
        for name, text in pairs:
            if text.strip() == "@-":
                raise InputError(f"input {name} is @- (standard input), which a job cannot read: the jobs "
                                 "themselves may come from there; give the numbers, or a file as @FILE")
        return pairs
    if isinstance(value, list) and all(isinstance(item, str) for item in value):  # ["x=1,2", ...] as -i takes
        pairs = []
        for item in value:
            name, _ = specs.parse_input_option(item)
            pairs.append((name, item.split("=", 1)[1] if name is not None else item))
        return pairs
    raise InputError(f"\"inputs\" must map each variable to its spec, e.g. {{\"x\": \"eye:3\"}}, not {json.dumps(value)}")


def _v(value: Any, command: str) -> Any:
    if command in ("jvp", "hvp") and isinstance(value, dict):
        return {name: _spec_text(spec, f"v for {name}") for name, spec in value.items()}
    return _spec_text(value, "\"v\"")


# -- grouping -----------------------------------------------------------------------------------


def _known_shape(spec: Any) -> Any:
    """An input spec's shape when its text says it, else None (a file: its job runs alone)."""
    if isinstance(spec, (specs.Literal, specs.Constructor)) and spec.shape is not None:
        return spec.shape
    return None


def _shape_key(text: str, for_v: bool = False) -> Any:
    """What a spec's shape is known to be from its text, or None (a file: its job runs alone)."""
    spec = _parsed(text, for_v)
    if isinstance(spec, (specs.Literal, specs.Constructor)) and spec.shape is not None:
        return spec.shape
    if for_v and isinstance(spec, (specs.Constructor, specs.OneHot)):
        return ("like the output", text)  # made from the output's shape: the same text, the same tensor
    return None


_PARSED: dict[tuple[str, bool], Any] = {}


_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?")
"""A plain decimal number: what a sweep's specs are, read without the spec grammar's parser."""


def _parsed(text: str, for_v: bool = False) -> Any:
    """``parse_spec``, remembered per text (jobs repeat their specs), and at once for a plain
    number (a sweep's specs are all different numbers): the same ``Literal`` parse_spec gives."""
    key = (text, for_v)
    spec = _PARSED.get(key)
    if spec is not None:
        return spec
    if _NUMBER.fullmatch(text):
        value = float(text)
        if math.isfinite(value):
            return specs.Literal(text, value, ())
    spec = specs.parse_spec(text, for_v=for_v, param="v" if for_v else "inputs")
    if len(_PARSED) >= 4096:
        _PARSED.clear()
    _PARSED[key] = spec
    return spec


def _id_key(job_id: Any) -> Any:
    """An id as a dict key: a string and a number stay apart, a list or object by its JSON text."""
    kind = type(job_id)
    if kind is str or kind is int or kind is float:
        return (kind.__name__, job_id)
    return ("json", json.dumps(job_id, sort_keys=True))


def group_key(job: Job) -> Any:
    """Jobs with equal keys are computed together; None: the job runs alone."""
    if job.symbolic or job.det or job.untrusted:
        return None
    if job.command == "jacobian":
        if job.method not in ("auto", "reverse", "forward") or job.layout not in ("auto", "dense"):
            return None
    elif job.command == "grad":
        if job.method not in ("auto", "reverse", "forward"):
            return None
    elif job.command == "vjp":
        if job.method not in ("auto", "grad"):
            return None
    elif job.command != "jvp":
        return None
    try:
        shapes = tuple((name, _known_shape(spec)) for (name, _), spec in zip(job.inputs, _specs(job)))
        if any(shape is None for _, shape in shapes):
            return None
        v = None
        if job.command == "vjp":
            v = _shape_key(job.v, for_v=True)
        elif job.command == "jvp":
            pairs = sorted(job.v.items()) if isinstance(job.v, dict) else [(None, job.v)]
            v = tuple((name, _shape_key(text, for_v=True)) for name, text in pairs)
            if any(shape is None or shape[0] == "like the output" for _, shape in v):
                return None
        if job.command in ("vjp",) and v is None:
            return None
    except JacliError:
        return None  # run alone, it gives its own error line
    return (job.command, job.expr, shapes, v, tuple(job.wrt), job.method, job.layout, job.matrix, job.dtype,
            job.device, job.seed, repr(job.max_memory))


def groups_of(jobs: Sequence[Job]) -> list[Group]:
    """The jobs in groups (of at most GROUP_LIMIT), in order of each group's first job."""
    grouped: dict[Any, list[Job]] = {}
    alone: list[list[Job]] = []
    order: list[list[Job]] = []
    most: dict[Any, int] = {}
    for job in jobs:
        key = group_key(job)
        if key is None:
            alone.append([job])
            order.append(alone[-1])
            continue
        members = grouped.get(key)
        if key not in most:
            most[key] = _most_together(key)
        if members is None or len(members) >= most[key]:
            members = grouped[key] = []
            order.append(members)
        members.append(job)
    return [Group(members) for members in order]


def _most_together(key: Any) -> int:
    """How many jobs of a group key are stacked at once: GROUP_LIMIT, or fewer when their inputs
    together would pass GROUP_BYTES (the stacked inputs are made before any budget check)."""
    shapes = key[2]
    itemsize = 4 if key[8] == "float32" else 8
    per_job = sum(math.prod(shape) for _, shape in shapes) * itemsize
    return max(1, min(GROUP_LIMIT, GROUP_BYTES // max(1, per_job)))


# -- computing ----------------------------------------------------------------------------------


def run_group(group: Group) -> list[str]:
    """Each job's output line (no newline), in the group's order: a module-level function of a
    picklable group, so that a Dask worker runs it as this process does."""
    jobs = group.jobs
    if len(jobs) == 1:
        return [_run_alone(jobs[0])]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result, given = _compute_together(jobs)
            from jacli.render_points import point_documents

            documents = point_documents(result, given)
        if caught:  # a NaN somewhere: run each job alone, so that each warning names its job
            raise _Again
    except ResourceError:
        # the group's results do not fit the budget together: halves, each of which may
        if len(jobs) < 4:
            return [_run_alone(job) for job in jobs]
        half = len(jobs) // 2
        return run_group(Group(jobs[:half])) + run_group(Group(jobs[half:]))
    except (JacliError, MemoryError, _Again):
        return [_run_alone(job) for job in jobs]  # each job's own error line, or its result alone
    return [_with_id(job.id, document) for job, document in zip(jobs, documents)]


class _Again(Exception):
    """The group's pass warned: its jobs run alone."""


def _with_id(job_id: Any, document: str) -> str:
    kind = type(job_id)
    if kind is int:
        text = str(job_id)
    elif kind is str and job_id.isascii() and job_id.isprintable() and '"' not in job_id and "\\" not in job_id:
        text = f'"{job_id}"'
    else:
        text = json.dumps(job_id)
    return '{"id": ' + text + ", " + document[1:]


def error_line(job_id: Any, line: int, message: str) -> str:
    return json.dumps({"id": job_id, "line": line, "error": message})


def _budget(job: Job) -> int | None:
    if job.max_memory is None:
        return None
    from jacli import limits

    if isinstance(job.max_memory, int) and not isinstance(job.max_memory, bool):
        return job.max_memory
    if isinstance(job.max_memory, str):
        return limits.parse_size(job.max_memory)
    raise InputError(f"\"max_memory\" must be a size such as \"2GB\", not {json.dumps(job.max_memory)}")


def _run_alone(job: Job) -> str:
    """One job as its command runs it: its JSON line, or its error line (warnings go to stderr)."""
    from jacli import api, render

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = _compute_alone(job, api)
            document = render.to_json(result).rstrip("\n")
        for warning in caught:
            warnings.warn(f"job {json.dumps(job.id)} (line {job.line}): {warning.message}", warning.category,
                          stacklevel=2)
    except JacliError as error:
        return error_line(job.id, job.line, str(error))
    except MemoryError:
        return error_line(job.id, job.line, "ran out of memory; give it smaller inputs, or a lower \"max_memory\" "
                                            "so that it is refused before allocating")
    return _with_id(job.id, document)


def _specs(job: Job) -> list[Any]:
    """The job's input specs, parsed once."""
    if job.specs is None:
        job.specs = [_parsed(text) for _, text in job.inputs]
    return job.specs


def _compute_alone(job: Job, api: Any) -> Any:
    """What ``jacli COMMAND ... --format json`` computes for the job."""
    common = dict(device=job.device, dtype=job.dtype, seed=job.seed, max_memory=_budget(job), untrusted=job.untrusted)
    inputs = [(name, spec) for (name, _), spec in zip(job.inputs, _specs(job))]
    wrt = job.wrt or None
    if job.command == "jacobian":
        layout = "dense" if job.layout == "auto" else job.layout  # what --format json shows for auto
        return api.compute_jacobian(job.expr, inputs, wrt=wrt, method=job.method, symbolic=job.symbolic, det=job.det,
                                    layout=layout, matrix=job.matrix or None, **common)
    if job.command == "vjp":
        return api.compute_vjp(job.expr, inputs, _parsed(job.v, for_v=True), wrt=wrt, method=job.method, **common)
    if job.command == "grad":
        return api.compute_grad(job.expr, inputs, wrt=wrt, method=job.method, symbolic=job.symbolic, **common)
    if job.command == "hessian":
        return api.compute_hessian(job.expr, inputs, wrt=wrt, method=job.method, symbolic=job.symbolic,
                                   matrix=job.matrix or None, **common)
    directions = _directions(job.v)
    if job.command == "jvp":
        return api.compute_jvp(job.expr, inputs, directions, **common)
    return api.compute_hvp(job.expr, inputs, directions, **common)


def _directions(v: Any) -> list[tuple[str | None, Any]]:
    if isinstance(v, dict):
        return [(name, _parsed(text, for_v=True)) for name, text in v.items()]
    return [specs.parse_input_option(v, param="v", for_v=True)]


def _compute_together(jobs: Sequence[Job]) -> tuple[Any, list[dict[str, str]]]:
    """The group's jobs as points of one ``batch_axis`` call: every input stacked along a new
    leading axis (the jobs' shapes agree: that is their group)."""
    import torch

    from jacli import api, devices

    first = jobs[0]
    dtype = devices.resolve_dtype(first.dtype)
    device = devices.resolve_device(first.device, dtype)
    budget = _budget(first)
    names = [name for name, _ in first.inputs]
    stacked = {}
    for k, name in enumerate(names):
        parsed = [_specs(job)[k] for job in jobs]
        stacked[name] = _stack(parsed, name, dtype, device, first.seed, budget, torch, specs)
    given = [dict(job.inputs) for job in jobs]
    common = dict(device=first.device, dtype=first.dtype, seed=first.seed, max_memory=budget, batch_axis=0)
    wrt = first.wrt or None
    if first.command == "jacobian":
        result = api.compute_jacobian(first.expr, stacked, wrt=wrt, method=first.method, layout="dense",
                                      matrix=first.matrix or None, **common)
    elif first.command == "grad":
        result = api.compute_grad(first.expr, stacked, wrt=wrt, method=first.method, **common)
    elif first.command == "vjp":
        texts = {job.v for job in jobs}
        v_spec = _parsed(first.v, for_v=True)
        if len(texts) == 1:
            v: Any = v_spec  # one v for all: made once, in the output's shape
        else:
            v = _stack([_parsed(job.v, for_v=True) for job in jobs], "v", dtype, device, first.seed, budget, torch, specs)
        result = api.compute_vjp(first.expr, stacked, v, wrt=wrt, method=first.method, **common)
    else:
        first_v = first.v if isinstance(first.v, dict) else {None: first.v}
        directions: dict[Any, Any] = {}
        for name, text in first_v.items():
            texts = [(job.v if isinstance(job.v, dict) else {None: job.v})[name] for job in jobs]
            if len(set(texts)) == 1:
                directions[name] = _parsed(text, for_v=True)
            else:
                directions[name] = _stack([_parsed(t, for_v=True) for t in texts], f"v for {name}", dtype, device,
                                          first.seed, budget, torch, specs)
        if None in directions:
            directions = directions[None]
        result = api.compute_jvp(first.expr, stacked, directions, **common)
    return result, given


def _stack(parsed: Sequence[Any], name: str, dtype: Any, device: Any, seed: int, budget: int | None, torch: Any,
           specs: Any) -> Any:
    """The jobs' values of one input, stacked on a new leading axis (literals in one tensor call)."""
    if all(isinstance(spec, specs.Literal) for spec in parsed):
        return torch.tensor([spec.values for spec in parsed], dtype=torch.float64).to(dtype=dtype, device=device)
    return torch.stack([specs.materialize(spec, name=name, dtype=dtype, device=device, seed=seed, budget=budget)
                        for spec in parsed])


# -- the run ------------------------------------------------------------------------------------


Mapper = Callable[[Callable[[Group], list[str]], Sequence[Group]], Iterator[tuple[int, Any]]]


def local_map(function: Callable[[Group], list[str]], groups: Sequence[Group]) -> Iterator[tuple[int, Any]]:
    """Each group in this process, in order: ``(index, lines)``."""
    for index, group in enumerate(groups):
        yield index, function(group)


def run(lines: Iterable[str], *, done: Iterable[Any] = (), untrusted: bool = False, mapper: Mapper | None = None,
        progress: Callable[[int, int], None] | None = None, failed: list[int] | None = None,
        raise_errors: bool = False) -> Iterator[str]:
    """The output lines (no newline), in input order, as soon as each is known in order.

    Args:
        done: ids already written (``--resume``): those jobs are skipped.
        mapper: how groups are computed (default ``local_map``; ``jacli.cluster.map_groups`` on Dask).
        progress: ``progress(jobs done, lines)`` (lines: None when ``lines`` has no length).
        failed: the line numbers of failed jobs are appended here.
        raise_errors: raise an exception a ``mapper`` hands back for a group, instead of
            writing an error line for each of its jobs.
    """
    # NOTE [the jobs and the garbage collector]: reading makes a few objects per job and no
    # cycles, yet each thousand new objects sets the cyclic collector walking all of them (a
    # third of a 10,000-point sweep's time). It is off while the jobs are read, and the jobs
    # are then frozen out of its walks until their lines are written.
    already = {_id_key(job_id) for job_id in done}
    seen: dict[Any, int] = {}
    numbered = enumerate(lines, start=1)
    total = len(lines) if isinstance(lines, Sized) else None
    counted = [0]
    while True:
        # The jobs are read a window at a time, so a file of millions of jobs is never held whole
        # (jobs alike are grouped within a window).
        collecting = gc.isenabled()
        gc.disable()
        try:
            window = list(itertools.islice(numbered, WINDOW))
            entries = [entry for entry in _read(window, untrusted, seen) if _id_key(entry.id) not in already]
            groups = groups_of([entry for entry in entries if isinstance(entry, Job)])
            gc.freeze()
        finally:
            if collecting:
                gc.enable()
        try:
            yield from _written(entries, groups, mapper, progress, failed, raise_errors, total, counted)
        finally:
            gc.unfreeze()
        if len(window) < WINDOW:
            return


def _written(entries: list[Job | Failed], groups: list[Group], mapper: Mapper | None,
             progress: Callable[[int, Any], None] | None, failed: list[int] | None,
             raise_errors: bool, lines: int | None, counted: list[int]) -> Iterator[str]:
    """A window's lines in input order, as its groups are computed; ``counted[0]`` counts the
    jobs done in all windows (for ``progress``, out of ``lines``, None when not known)."""
    place = {id(entry): k for k, entry in enumerate(entries)}
    written: list[str | None] = [None] * len(entries)
    for k, entry in enumerate(entries):
        if isinstance(entry, Failed):
            written[k] = error_line(entry.id, entry.line, entry.error)
    total, next_out = len(entries), 0
    counted[0] += sum(isinstance(e, Failed) for e in entries)
    if progress is not None:
        progress(counted[0], lines)
    results = (mapper or local_map)(run_group, groups)
    while True:
        while next_out < total and written[next_out] is not None:
            line = written[next_out]
            if failed is not None and line.endswith("}") and _is_error(line):
                failed.append(entries[next_out].line)
            yield line
            written[next_out] = ""  # released
            next_out += 1
        if next_out >= total:
            return
        index, lines_out = next(results)
        if isinstance(lines_out, BaseException):
            # A cluster hands back what a group raised (a worker that died, or a bug): its jobs
            # get error lines and the others go on, unless the caller wants it raised (--debug).
            if raise_errors:
                raise lines_out
            what = f"{type(lines_out).__name__}: {lines_out}"
            lines_out = [error_line(job.id, job.line, f"computing this job's group failed on the cluster ({what})")
                         for job in groups[index].jobs]
        for job, line in zip(groups[index].jobs, lines_out):
            written[place[id(job)]] = line
        counted[0] += len(lines_out)
        if progress is not None:
            progress(counted[0], lines)


def _is_error(line: str) -> bool:
    return '"error": ' in line[-2000:] and set(json.loads(line)) == {"id", "line", "error"}


def written_ids(text: str) -> tuple[list[Any], int, list[int]]:
    """The ids of the complete lines of an output file (``--resume``), how many bytes of it are
    complete lines (a last line cut short by a crash is not), and the jobs' line numbers of the
    error lines among them (those jobs failed, and are not run again while their line is there)."""
    ids, errors = [], []
    end = text.rfind("\n") + 1
    for line in text[:end].splitlines():
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except ValueError:
            raise InputError(f"a line of the output to resume is not JSON: {line[:80]!r}; resume only a file "
                             "that jacli batch wrote") from None
        if isinstance(document, dict) and "id" in document:
            ids.append(document["id"])
            if set(document) == {"id", "line", "error"}:
                errors.append(document["line"])
    return ids, len(text[:end].encode("utf-8")), errors


__all__ = ["run", "run_group", "read_jobs", "groups_of", "written_ids", "EXIT_SOME_FAILED", "Job", "Group"]
