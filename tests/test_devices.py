"""jacli.devices: device and dtype names → torch objects, and the errors that say what this
machine has. The CUDA and MPS branches are driven on the CPU by making torch report a GPU (or
none); the real device runs are in test_cuda.py and are skipped where there is none."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jacli import devices
from jacli.devices import check_names, resolve_device, resolve_dtype
from jacli.errors import DeviceError

F32, F64 = torch.float32, torch.float64


# -- check_names: pure Python, before torch ------------------------------------------------------


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:12", "mps", "auto"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_check_names_accepts_the_known_names(device: str, dtype: str) -> None:
    assert check_names(device, dtype) is None


@pytest.mark.parametrize("device", ["gpu", "CPU", "cuda:", "cuda:x", "cuda0", " cpu", "cpu ", "", "mps:0", "cuda:-1"])
def test_check_names_refuses_an_unknown_device(device: str) -> None:
    with pytest.raises(DeviceError) as caught:
        check_names(device, "float64")
    assert str(caught.value) == f"unknown device {device!r}; use cpu, cuda, cuda:N, mps or auto"


@pytest.mark.parametrize("dtype", ["float16", "double", "Float64", "torch.float64", ""])
def test_check_names_refuses_an_unknown_dtype(dtype: str) -> None:
    with pytest.raises(DeviceError) as caught:
        check_names("cpu", dtype)
    assert str(caught.value) == f"unknown dtype {dtype!r}; use float64 or float32"


def test_check_names_leaves_torch_objects_to_resolve() -> None:
    assert check_names(torch.device("cpu"), torch.float16) is None  # not names: resolve_* judge them


@pytest.mark.parametrize("device,dtype,param", [("gpu", "float64", "device"), ("cpu", "float16", "dtype")])
def test_check_names_errors_name_their_parameter(device: str, dtype: str, param: str) -> None:
    with pytest.raises(DeviceError) as caught:
        check_names(device, dtype)
    assert caught.value.param == param


# -- resolve_dtype -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,expected", [("float64", F64), ("float32", F32), (F64, F64), (F32, F32)])
def test_resolve_dtype(dtype, expected) -> None:
    assert resolve_dtype(dtype) is expected


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, torch.complex128])
def test_resolve_dtype_refuses_other_torch_dtypes(dtype) -> None:
    with pytest.raises(DeviceError, match=rf"dtype {dtype} is not supported; use float64 or float32"):
        resolve_dtype(dtype)


@pytest.mark.parametrize("dtype", [5, None, np.float64, float])
def test_resolve_dtype_refuses_what_is_not_a_name_or_dtype(dtype) -> None:
    with pytest.raises(DeviceError, match="dtype must be 'float64', 'float32' or a torch.dtype"):
        resolve_dtype(dtype)


def test_resolve_dtype_refuses_an_unknown_name() -> None:
    with pytest.raises(DeviceError, match="unknown dtype 'float16'"):
        resolve_dtype("float16")


# -- resolve_device on this machine --------------------------------------------------------------


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
@pytest.mark.parametrize("dtype", [F64, F32])
def test_resolve_device_cpu(device, dtype) -> None:
    assert resolve_device(device, dtype) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto picks the GPU here")
def test_auto_is_the_cpu_without_cuda_for_float64() -> None:
    assert resolve_device("auto", F64) == torch.device("cpu")  # MPS has no float64 either


@pytest.mark.skipif(torch.cuda.is_available() or devices._mps_available(), reason="auto picks a GPU here")
def test_auto_is_the_cpu_without_a_gpu() -> None:
    assert resolve_device("auto", F32) == torch.device("cpu")


@pytest.mark.parametrize("device", [5, None, ["cpu"]])
def test_resolve_device_refuses_what_is_not_a_name(device) -> None:
    with pytest.raises(DeviceError, match="device must be a name such as 'cpu', 'cuda:0' or 'auto'"):
        resolve_device(device, F64)


def test_resolve_device_refuses_an_unknown_name() -> None:
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        resolve_device("gpu", F64)


# -- CUDA and MPS, with torch made to report what a machine has ------------------------------------


def no_gpus(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)


def test_cuda_on_a_build_without_cuda(monkeypatch) -> None:
    no_gpus(monkeypatch)
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(DeviceError) as caught:
        resolve_device("cuda:0", F64)
    assert str(caught.value).startswith("`device` cuda:0: this torch build has no CUDA")
    assert "use `device` cpu" in str(caught.value) and caught.value.param == "device"


def test_cuda_build_without_a_gpu(monkeypatch) -> None:
    no_gpus(monkeypatch)
    monkeypatch.setattr(torch.version, "cuda", "12.1")
    with pytest.raises(DeviceError) as caught:
        resolve_device("cuda", F64)
    assert str(caught.value) == "`device` cuda: torch has CUDA but finds no GPU here; use `device` cpu"
    assert caught.value.param == "device"


def two_gpus(monkeypatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_cuda_index_beyond_the_gpus_lists_them(monkeypatch) -> None:
    two_gpus(monkeypatch)
    with pytest.raises(DeviceError) as caught:
        resolve_device("cuda:2", F64)
    assert str(caught.value) == "`device` cuda:2: there is no such GPU; this machine has cuda:0, cuda:1"
    assert caught.value.param == "device"


@pytest.mark.parametrize("device,expected", [("cuda", "cuda"), ("cuda:1", "cuda:1"), ("auto", "cuda")])
def test_cuda_names_resolve_when_there_are_gpus(monkeypatch, device: str, expected: str) -> None:
    two_gpus(monkeypatch)
    assert resolve_device(device, F64) == torch.device(expected)


def test_mps_unavailable(monkeypatch) -> None:
    no_gpus(monkeypatch)
    with pytest.raises(DeviceError) as caught:
        resolve_device("mps", F32)
    assert "MPS (Apple GPU) is not available here" in str(caught.value) and caught.value.param == "device"


def test_mps_has_no_float64_and_says_to_change_the_dtype(monkeypatch) -> None:
    no_gpus(monkeypatch)
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    with pytest.raises(DeviceError) as caught:
        resolve_device("mps", F64)
    assert str(caught.value) == "`device` mps: MPS has no float64; use `dtype` float32"
    assert caught.value.param == "dtype"
    assert resolve_device("mps", F32) == torch.device("mps")


@pytest.mark.parametrize("dtype,expected", [(F32, "mps"), (F64, "cpu")])
def test_auto_takes_mps_only_for_float32(monkeypatch, dtype, expected: str) -> None:
    no_gpus(monkeypatch)
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert resolve_device("auto", dtype) == torch.device(expected)
