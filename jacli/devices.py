"""Device and dtype names → torch objects, with errors that say what this machine has.

``check_names`` is pure Python (it runs before torch is imported); ``resolve`` asks torch.
"""

from __future__ import annotations

import re
from typing import Any

from jacli.errors import DeviceError
from jacli.limits import short_repr

DTYPES = ("float64", "float32")
DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?|mps|auto")


def check_names(device: str, dtype: Any) -> None:
    """Refuse unknown device or dtype names before anything heavy is imported."""
    if isinstance(device, str) and not DEVICE_PATTERN.fullmatch(device):
        raise DeviceError(f"unknown device {device!r}; use cpu, cuda, cuda:N, mps or auto", param="device")
    if isinstance(dtype, str) and dtype not in DTYPES:
        raise DeviceError(f"unknown dtype {dtype!r}; use {' or '.join(DTYPES)}", param="dtype")


def resolve_dtype(dtype: Any) -> Any:
    """``"float64"`` or ``torch.float64`` → ``torch.float64``."""
    import torch

    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float64, torch.float32):
            raise DeviceError(f"dtype {dtype} is not supported; use float64 or float32", param="dtype")
        return dtype
    if not isinstance(dtype, str):  # the API's argument: 5 or numpy.float64 would reach getattr
        raise DeviceError(
            f"dtype must be 'float64', 'float32' or a torch.dtype such as torch.float32, not {short_repr(dtype)}",
            param="dtype",
        )
    check_names("cpu", dtype)
    return getattr(torch, dtype)


def resolve_device(device: Any, dtype: Any) -> Any:
    """A usable ``torch.device``, or a DeviceError saying why not and what to use instead.

    ``auto`` picks CUDA, then MPS (when the dtype is float32), then the CPU.
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):  # the API's argument: 5 has no .startswith
        raise DeviceError(
            f"device must be a name such as 'cpu', 'cuda:0' or 'auto', or a torch.device, not {short_repr(device)}",
            param="device",
        )
    check_names(device, "float64")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available() and dtype == torch.float32:
            return torch.device("mps")
        return torch.device("cpu")
    if device.startswith("cuda"):
        if torch.version.cuda is None:
            raise DeviceError(
                f"`device` {device}: this torch build has no CUDA (torch {torch.__version__}); "
                "use `device` cpu, or install a CUDA build of torch", param="device",
            )
        if not torch.cuda.is_available():
            raise DeviceError(f"`device` {device}: torch has CUDA but finds no GPU here; use `device` cpu", param="device")
        index = int(device.split(":")[1]) if ":" in device else 0
        count = torch.cuda.device_count()
        if index >= count:
            have = ", ".join(f"cuda:{i}" for i in range(count))
            raise DeviceError(f"`device` {device}: there is no such GPU; this machine has {have}", param="device")
        return torch.device(device)
    if device == "mps":
        if not _mps_available():
            raise DeviceError("`device` mps: MPS (Apple GPU) is not available here; use `device` cpu", param="device")
        if dtype == torch.float64:
            raise DeviceError("`device` mps: MPS has no float64; use `dtype` float32", param="dtype")
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
