"""jacli.engine against an independent reference: SymPy's exact Jacobian, built here from scalar
symbols (one per tensor element) and evaluated exactly, then rounded once to float64.

The compiled torch function comes from jacli.compile (the thing under test is the engine); the
reference never goes through jacli's parser, compiler or symbolic module.
"""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np
import pytest
import sympy as sp
import torch

from jacli.engine import autodiff
from jacli.compile import compile_expression


def _jacobian(f, args, wrt, method, **options):
    """The engine's blocks, after checking the output it returns from the same pass against f."""
    output, blocks = autodiff.jacobian(f, args, wrt, method, **options)
    assert torch.equal(output, f(*args).detach())
    return blocks


def _vjp(f, args, wrt, v, method):
    output, grads = autodiff.vjp(f, args, wrt, v, method)
    assert torch.equal(output, f(*args).detach())
    return grads

# torch's first forward-mode pass loads decompositions through torch.jit.script, which warns
# DeprecationWarning (hidden by Python outside pytest).
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

JACOBIAN_METHODS = ("reverse", "forward", "rows")
RTOL, ATOL = 1e-11, 1e-13


# -- the independent reference ------------------------------------------------------------------


def symbols(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of scalar SymPy symbols, one per element (a bare symbol for shape ())."""
    array = np.empty(shape, dtype=object)
    for index in itertools.product(*(range(n) for n in shape)):
        array[index] = sp.Symbol(f"{name}_{'_'.join(map(str, index))}" if index else name, real=True)
    return array


def exact_jacobian(
    output: np.ndarray, inputs: dict[str, np.ndarray], values: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:

    """d output / d input for each input, evaluated exactly at ``values`` and rounded to float64.

    ``output`` is an object array of SymPy expressions in the symbols of ``inputs``.
    """
    substitution = {}
    for name, syms in inputs.items():
        for index in itertools.product(*(range(n) for n in syms.shape)):
            # sp.Rational(float) is the exact binary value of the float64 input.
            substitution[syms[index]] = sp.Rational(float(values[name][index]))
    blocks = {}
    for name, syms in inputs.items():
        block = np.empty(output.shape + syms.shape)
        for out_index in itertools.product(*(range(n) for n in output.shape)):
            for in_index in itertools.product(*(range(n) for n in syms.shape)):
                derivative = sp.diff(output[out_index], syms[in_index])
                block[out_index + in_index] = float(sp.N(derivative.xreplace(substitution), 40))
        blocks[name] = block
    return blocks


def obj(value) -> np.ndarray:
    """A SymPy expression or nested list of them as an object array."""
    array = np.empty((), dtype=object)
    if isinstance(value, (list, np.ndarray)):
        return np.array(value, dtype=object)
    array[()] = value
    return array


# Each case: expression text, input shapes, how to build the same output from scalar symbols.
def _polar(s):
    r, t = s["r"][()], s["t"][()]
    return obj([r * sp.cos(t), r * sp.sin(t)])


def _matmul(s):
    return obj((sp.Matrix(s["a"].tolist()) * sp.Matrix(s["b"].tolist())).tolist())


def _softmax(s):
    exps = [sp.exp(x) for x in s["x"]]
    return obj([e / sum(exps) for e in exps])


def _cubic(s):
    x = s["x"]
    return obj(x[0] ** 2 * x[1] + x[1] ** 3)


def _sum_axis0(s):
    x, y = s["x"], s["y"]
    return obj([sum(x[i, j] * y[i, j] for i in range(x.shape[0])) for j in range(x.shape[1])])


def _tanh_affine(s):
    w, x, b = s["W"], s["x"], s["b"]
    return obj([sp.tanh(sum(w[i, j] * x[j] for j in range(x.shape[0])) + b[i]) for i in range(w.shape[0])])


def _softmax_rows(s):
    x = s["x"]
    rows = []
    for i in range(x.shape[0]):
        exps = [sp.exp(v) for v in x[i]]
        rows.append([e / sum(exps) for e in exps])
    return obj(rows)


def _broadcast(s):
    a, b = s["a"], s["b"]  # a (2, 3) * b (3,) + log(b)
    return obj([[a[i, j] * b[j] + sp.log(b[j]) for j in range(3)] for i in range(2)])


def _mean_square(s):
    x = s["x"]
    return obj(sum((v + 1) ** 2 for v in x.reshape(-1)) / x.size)


def _norm_index(s):
    x = s["x"]
    return obj([sp.sqrt(sum(v**2 for v in x)), x[1] * x[2]])


CASES = {
    "polar": ("[r*cos(t), r*sin(t)]", {"r": (), "t": ()}, _polar),
    "matmul": ("a @ b", {"a": (2, 3), "b": (3, 4)}, _matmul),
    "softmax": ("softmax(x)", {"x": (4,)}, _softmax),
    "cubic": ("x[0]**2*x[1] + x[1]**3", {"x": (2,)}, _cubic),
    "sum_axis0": ("sum(x*y, 0)", {"x": (3, 2), "y": (3, 2)}, _sum_axis0),
    "tanh_affine": ("tanh(W @ x + b)", {"W": (3, 2), "x": (2,), "b": (3,)}, _tanh_affine),
    "softmax_rows": ("softmax(x, -1)", {"x": (2, 3)}, _softmax_rows),
    "broadcast": ("a*b + log(b)", {"a": (2, 3), "b": (3,)}, _broadcast),
    "mean_square": ("mean((x+1)**2)", {"x": (2, 2)}, _mean_square),
    "norm_index": ("[norm(x), x[1]*x[2]]", {"x": (3,)}, _norm_index),
}


def make_inputs(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Positive values keep log() defined; the range avoids nothing else.
    return {name: rng.uniform(0.2, 1.7, size=shape) for name, shape in shapes.items()}


class Case:
    def __init__(self, key: str, seed: int = 0):
        text, shapes, build = CASES[key]
        self.compiled = compile_expression(text)
        assert set(self.compiled.variables) == set(shapes)
        self.names = self.compiled.variables
        self.values = make_inputs(shapes, seed)
        self.args = tuple(torch.tensor(self.values[n], dtype=torch.float64) for n in self.names)
        self.syms = {name: symbols(name, shape) for name, shape in shapes.items()}
        self.output_sym = build(self.syms)
        self.reference = exact_jacobian(self.output_sym, self.syms, self.values)
        self.output_shape = self.output_sym.shape

    @property
    def f(self) -> Callable[..., torch.Tensor]:
        return self.compiled.function

    @property
    def all_positions(self) -> tuple[int, ...]:
        return tuple(range(len(self.names)))


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request) -> Case:
    return Case(request.param)


# -- tests --------------------------------------------------------------------------------------


def test_reference_output_matches_the_function(case: Case) -> None:
    """Sanity of the reference itself: the SymPy output has the value torch computes."""
    substitution = {}
    for name, syms in case.syms.items():
        for index in itertools.product(*(range(n) for n in syms.shape)):
            substitution[syms[index]] = sp.Rational(float(case.values[name][index]))
    expected = np.vectorize(lambda e: float(sp.N(e.xreplace(substitution), 40)), otypes=[float])(case.output_sym)
    got = case.f(*case.args)
    assert tuple(got.shape) == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_jacobian_matches_sympy(case: Case, method: str) -> None:
    blocks = _jacobian(case.f, case.args, case.all_positions, method)
    assert len(blocks) == len(case.names)
    for name, block, arg in zip(case.names, blocks, case.args):
        assert tuple(block.shape) == case.output_shape + tuple(arg.shape)
        assert block.dtype == torch.float64
        np.testing.assert_allclose(block.numpy(), case.reference[name], rtol=RTOL, atol=ATOL, err_msg=f"{method} {name}")


def test_methods_agree_with_each_other(case: Case) -> None:
    results = {m: _jacobian(case.f, case.args, case.all_positions, m) for m in JACOBIAN_METHODS}
    for other in ("forward", "rows"):
        for a, b in zip(results["reverse"], results[other]):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_jacobian_wrt_subset(case: Case, method: str) -> None:
    """Only the positions in wrt come back, each with its own reference block, in wrt order."""
    last = (len(case.names) - 1,)
    (block,) = _jacobian(case.f, case.args, last, method)
    np.testing.assert_allclose(block.numpy(), case.reference[case.names[-1]], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("method", ("grad", "backward"))
@pytest.mark.parametrize("seed", (1, 2))
def test_vjp_is_v_transpose_j(case: Case, method: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=case.output_shape)
    grads = _vjp(case.f, case.args, case.all_positions, torch.tensor(v, dtype=torch.float64), method)
    output_axes = len(case.output_shape)
    for name, g, arg in zip(case.names, grads, case.args):
        assert g.shape == arg.shape
        letters = "abcdefgh"[:output_axes]
        rest = "pqrstuvw"[: arg.dim()]
        expected = np.einsum(f"{letters},{letters}{rest}->{rest}", v, case.reference[name])
        np.testing.assert_allclose(g.numpy(), expected, rtol=1e-10, atol=1e-12, err_msg=f"{method} {name}")


def test_vjp_grad_and_backward_are_bitwise_equal(case: Case) -> None:
    v = torch.tensor(np.random.default_rng(7).normal(size=case.output_shape), dtype=torch.float64)
    by_grad = _vjp(case.f, case.args, case.all_positions, v, "grad")
    by_backward = _vjp(case.f, case.args, case.all_positions, v, "backward")
    for a, b in zip(by_grad, by_backward):
        assert torch.equal(a, b)


def test_vjp_with_one_hot_is_a_jacobian_row(case: Case) -> None:
    """e_kᵀJ is row k: the definition the rows method relies on, checked against SymPy."""
    count = int(np.prod(case.output_shape))
    for k in range(count):
        v = torch.zeros(count, dtype=torch.float64)
        v[k] = 1
        grads = _vjp(case.f, case.args, case.all_positions, v.reshape(case.output_shape), "grad")
        for name, g in zip(case.names, grads):
            expected = case.reference[name].reshape((count,) + g.shape)[k]
            np.testing.assert_allclose(g.numpy(), expected, rtol=RTOL, atol=ATOL)


def test_vjp_does_not_touch_the_callers_tensors(case: Case) -> None:
    before = [a.clone() for a in case.args]
    _vjp(case.f, case.args, case.all_positions, torch.ones(case.output_shape, dtype=torch.float64), "backward")
    for a, b in zip(case.args, before):
        assert torch.equal(a, b)
        assert a.grad is None and not a.requires_grad


# -- inputs the output does not depend on ------------------------------------------------------


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_unused_argument_gives_zeros(method: str) -> None:
    x = torch.tensor([1.5, -2.0, 3.0], dtype=torch.float64)
    y = torch.tensor([[0.5, 4.0]], dtype=torch.float64)
    (block,) = _jacobian(lambda x, y: x**2, (x, y), (1,), method)
    assert block.shape == (3, 1, 2)
    assert torch.equal(block, torch.zeros(3, 1, 2, dtype=torch.float64))
    dx, dy = _jacobian(lambda x, y: x**2, (x, y), (0, 1), method)
    assert torch.equal(dx, torch.diag(2 * x))
    assert torch.equal(dy, torch.zeros(3, 1, 2, dtype=torch.float64))


@pytest.mark.parametrize("method", ("grad", "backward"))
def test_unused_argument_vjp_gives_zeros(method: str) -> None:
    x = torch.tensor([1.5, -2.0, 3.0], dtype=torch.float64)
    y = torch.tensor([[0.5, 4.0]], dtype=torch.float64)
    v = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    (gy,) = _vjp(lambda x, y: x**2, (x, y), (1,), v, method)
    assert torch.equal(gy, torch.zeros(1, 2, dtype=torch.float64))
    gx, gy = _vjp(lambda x, y: x**2, (x, y), (0, 1), v, method)
    assert torch.equal(gx, torch.tensor([3.0, -8.0, 18.0], dtype=torch.float64))  # 2 x v
    assert torch.equal(gy, torch.zeros(1, 2, dtype=torch.float64))


@pytest.mark.parametrize("method", JACOBIAN_METHODS)
def test_expression_with_a_zero_dependence_wrt(method: str) -> None:
    """`x**2 + 0*y` with wrt=y only: y is in the graph but its derivative is exactly 0."""
    compiled = compile_expression("x**2 + 0*y")
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    y = torch.tensor([3.0, 4.0], dtype=torch.float64)
    (block,) = _jacobian(compiled.function, (x, y), (1,), method)
    assert torch.equal(block, torch.zeros(2, 2, dtype=torch.float64))


# -- choosing a method, progress ---------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (1,), (5,), (2, 3)])
def test_rows_reports_progress_once_per_row(shape: tuple[int, ...]) -> None:
    calls: list[tuple[int, int]] = []
    x = torch.arange(1.0, 1.0 + int(np.prod(shape)), dtype=torch.float64).reshape(shape)
    (block,) = _jacobian(lambda x: x**3, (x,), (0,), "rows", progress=lambda d, t: calls.append((d, t)))
    n = int(np.prod(shape))
    assert calls == [(k, n) for k in range(1, n + 1)]
    # d(x**3)/dx = 3x² on the diagonal, by hand.
    expected = torch.diag(3 * x.reshape(-1) ** 2).reshape(shape + shape)
    assert torch.equal(block, expected)


def test_reverse_with_chunks_matches_sympy() -> None:
    """chunk_size bounds memory; it must not change the numbers."""
    case = Case("tanh_affine", seed=3)
    for chunk in (1, 2):
        blocks = _jacobian(case.f, case.args, case.all_positions, "reverse", chunk_size=chunk)
        for name, block in zip(case.names, blocks):
            np.testing.assert_allclose(block.numpy(), case.reference[name], rtol=RTOL, atol=ATOL)


def test_jacobian_passes_gradcheck_in_float64() -> None:
    """A second, independent reference: torch.autograd.gradcheck (finite differences) on the
    compiled function, and the engine's blocks against torch.autograd.functional.jacobian."""
    compiled = compile_expression("softmax(x) * log(y) + x[0]*y")
    x = torch.tensor([0.3, -1.2, 0.8], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.5, 0.4, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(compiled.function, (x, y))
    reference = torch.autograd.functional.jacobian(compiled.function, (x.detach(), y.detach()))
    for method in JACOBIAN_METHODS:
        blocks = _jacobian(compiled.function, (x.detach(), y.detach()), (0, 1), method)
        for block, ref in zip(blocks, reference):
            torch.testing.assert_close(block, ref, rtol=1e-12, atol=1e-14)


def test_jacobian_elements_by_hand() -> None:
    assert autodiff.jacobian_elements((1000, 1000), [(1000, 1000)]) == 10**12
    assert autodiff.jacobian_elements((2,), [(), (3, 4)]) == 2 * (1 + 12)
    assert autodiff.jacobian_elements((), [(5,)]) == 5




def test_a_hessian_of_several_inputs_is_one_packed_hessian_cut_into_blocks() -> None:
    """Packing the inputs into one vector must give torch.func.hessian's own blocks."""
    g = torch.Generator().manual_seed(4)
    a = torch.rand(2, dtype=torch.float64, generator=g)
    b = torch.rand((), dtype=torch.float64, generator=g)
    c = torch.rand(3, dtype=torch.float64, generator=g)
    f = lambda a, b, c: (a.sum() * b) ** 2 + torch.sin(c * b).sum() * a[0]  # noqa: E731
    for method in ("forward", "reverse"):
        output, blocks = autodiff.hessian(f, (a, b, c), (0, 1, 2), method)
        reference = torch.func.hessian(f, argnums=(0, 1, 2))(a, b, c)
        torch.testing.assert_close(output, f(a, b, c))
        for i in range(3):
            for j in range(3):
                torch.testing.assert_close(blocks[i, j], reference[i][j], rtol=1e-13, atol=1e-13)
