"""Finite differences (jacli.engine.finite): against derivatives worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jacli.engine import finite as engine


# -- finite differences -------------------------------------------------------------------------

# (function, point, exact derivative worked out by hand)
FD_CASES = [
    (lambda x: torch.sin(x), 1.0, np.cos(1.0)),
    (lambda x: 1 / x, 1e-7, -1e14),  # a fixed 1e-3 step would jump over the pole at 0
    (lambda x: torch.log(x), 1e-9, 1e9),
    (lambda x: x**3, 1e5, 3e10),
    (lambda x: (x + 1) ** 2, 1e-8, 2 * (1 + 1e-8)),  # f large next to its change: rounding
    (lambda x: torch.exp(x), 1e-12, 1.0),  # the step follows x, f does not: rounding dominates
    (lambda x: torch.exp(x), 0.0, 1.0),
    (lambda x: 1 / (x - 1.001), 1.0, -1e6),  # a pole 1e-3 away: truncation dominates
    (lambda x: torch.sqrt(x), 1e-300, 0.5e150),
]


@pytest.mark.parametrize("f,point,exact", FD_CASES)
def test_finite_differences_error_estimate_is_honest(f, point, exact) -> None:
    """The estimate must cover the actual error (what `check` trusts it for)."""
    blocks, errors = engine.finite_differences(f, (torch.tensor(point, dtype=torch.float64),), (0,))
    actual = abs(float(blocks[0]) - exact)
    assert actual <= float(errors[0])


@pytest.mark.parametrize("point", [1e-7, 3e-4, 1.0, -2.5e6])
def test_finite_differences_scale_the_step_to_each_element(point) -> None:
    """1/x at tiny and huge x: within 1e-9 relative of -1/x², and so is the error estimate."""
    x = torch.tensor([point, 1.0], dtype=torch.float64)
    blocks, errors = engine.finite_differences(lambda x: 1 / x, (x,), (0,))
    exact = np.diag([-1 / point**2, -1.0])
    np.testing.assert_allclose(blocks[0].numpy(), exact, rtol=1e-9, atol=0)
    assert blocks[0][0, 1] == blocks[0][1, 0] == 0  # the other element does not move: exactly 0
    assert (np.diag(errors[0].numpy()) <= 1e-9 * np.abs(np.diag(exact))).all()
    assert engine.fd_step(point) == pytest.approx(engine.FD_RELATIVE_STEP * abs(point))
    assert engine.fd_step(0.0) == engine.FD_RELATIVE_STEP


def test_shifts_are_the_points_the_differences_evaluate() -> None:
    """check excuses kinks from ``shifts``; they must be the steps the differences take."""
    evaluated: list[float] = []

    def f(x):
        evaluated.append(float(x) - 0.5)
        return x * 1.0

    finite_points = engine.finite_differences(f, (torch.tensor(0.5, dtype=torch.float64),), (0,))
    assert finite_points[0][0] == pytest.approx(1.0)
    moved = sorted(round(d, 15) for d in evaluated if d != 0.0)
    assert moved == sorted(round(s, 15) for s in engine.shifts(0.5))
