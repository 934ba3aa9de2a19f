"""jacli: Jacobians and vector-Jacobian products of formulas.

    >>> import jacli
    >>> jacli.jacobian("x**2", {"x": [2.0, 3.0]})["x"]
    tensor([[4., 0.],
            [0., 6.]], dtype=torch.float64)

Importing jacli is cheap: torch and SymPy load on the first computation.
"""

from __future__ import annotations

from typing import Any

from jacli.errors import (
    DeviceError,
    ExpressionError,
    InputError,
    JacliError,
    JacliWarning,
    ResourceError,
    ShapeError,
)

__version__ = "0.1.0"

__all__ = [
    "jacobian", "vjp", "jvp", "grad", "hessian", "hvp", "check",
    "compute_jacobian", "compute_vjp", "compute_jvp", "compute_grad", "compute_hessian",
    "compute_hvp", "prepare", "Problem", "Result", "JacobianResult", "VJPResult", "JVPResult", "GradResult",
    "HessianResult", "HVPResult", "PointsResult", "JacobianBlock", "DiagonalBlock", "SparseBlock", "Matrix", "CheckReport",
    "JacliError", "ExpressionError", "InputError", "ShapeError", "DeviceError", "ResourceError",
    "JacliWarning", "__version__",
]

_API = {
    "jacobian", "vjp", "jvp", "grad", "hessian", "hvp", "compute_jacobian", "compute_vjp",
    "compute_jvp", "compute_grad", "compute_hessian", "compute_hvp",
}
_MODULES = {
    "prepare": "problem", "Problem": "problem", "Result": "result", "JacobianResult": "result",
    "VJPResult": "result", "JVPResult": "result", "GradResult": "result", "HessianResult": "result",
    "HVPResult": "result", "PointsResult": "result", "JacobianBlock": "result", "DiagonalBlock": "result", "SparseBlock": "result",
    "Matrix": "result", "CheckReport": "result",
}


def __getattr__(name: str) -> Any:
    # The API module imports SymPy-facing code on use; keep `import jacli` (and --help) light.
    if name in _API:
        from jacli import api

        return getattr(api, name)
    if name in _MODULES:
        import importlib

        return getattr(importlib.import_module(f"jacli.{_MODULES[name]}"), name)
    if name == "check":
        from jacli.verify import check

        return check
    raise AttributeError(f"module 'jacli' has no attribute {name!r}")
