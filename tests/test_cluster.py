"""jacli.cluster.map_groups on a real Dask cluster: a LocalCluster bound to the loopback address,
two worker processes of one thread each (the CI machine has two cores).

The results are compared with the same function run here, in this process; a failing group and
a worker killed mid-run are made on purpose. Nothing waits a fixed time: each test consumes the
results as they come, and the kill leaves its evidence (a marker file with the dead worker's pid).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import pytest
import torch

import jacli
from jacli.cluster import ClusterError, map_groups

distributed = pytest.importorskip("distributed", reason='the Dask tests need the dask extra: pip install "jacli[dask]"')

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning")

GROUPS = [
    [("jacobian", "[r*cos(t), r*sin(t)]", {"r": 2.0, "t": 0.5})],
    [("jacobian", "x*sum(x)", {"x": [1.0, 2.0, 3.0]}), ("grad", "sum(sin(x)**2)", {"x": [0.1, 0.2]})],
    [("vjp", "A @ x", {"A": [[1.0, 2.0], [3.0, 4.0]], "x": [0.5, -1.0]})],
    [("jacobian", "softmax(x)", {"x": [0.0, 1.0, 2.0, 3.0]}), ("jacobian", "x**2", {"x": [1.0, 2.0]})],
]


def compute(group):
    """A group of jacli API calls (module-level: the workers import it by name)."""
    results = []
    for command, expr, inputs in group:
        if command == "vjp":
            results.append(jacli.vjp(expr, inputs, [1.0, -2.0]))
        else:
            results.append(getattr(jacli, command)(expr, inputs))
    return results


def threads_and_result(group):
    """``compute``, with the torch thread count the worker ran it on."""
    return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS"), compute(group)


def kill_once(group):
    """The first call kills its own worker process (leaving its pid in the marker file); later
    calls, on a worker that lives, compute the group."""
    marker, inner = group
    try:
        with open(marker, "x") as first:  # made by exactly one call, whichever worker it runs on
            first.write(str(os.getpid()))
    except FileExistsError:
        return os.getpid(), compute(inner)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: the worker is gone")


def _same(found, expected) -> None:
    """Identical results: the same keys and bit-identical tensors."""
    assert type(found) is type(expected)
    if isinstance(expected, dict):
        assert found.keys() == expected.keys()
        for key in expected:
            _same(found[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(found) == len(expected)
        for a, b in zip(found, expected):
            _same(a, b)
    elif isinstance(expected, torch.Tensor):
        assert found.dtype == expected.dtype and torch.equal(found, expected)
    else:
        assert found == expected


@pytest.fixture(scope="module")
def scheduler():
    """One LocalCluster for the tests that use an existing scheduler (started once: each worker
    process imports torch and jacli)."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
        scheduler_kwargs={"dashboard_address": ":0"},
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def test_results_on_an_existing_cluster_are_the_local_ones(scheduler) -> None:
    done = []
    found = dict(map_groups(compute, GROUPS, scheduler=scheduler, progress=lambda d, t: done.append((d, t))))
    assert sorted(found) == list(range(len(GROUPS)))
    for index, group in enumerate(GROUPS):
        _same(found[index], compute(group))
    assert done == [(k, len(GROUPS)) for k in range(1, len(GROUPS) + 1)]
    # and they are the right numbers: ∂(r cos t, r sin t)/∂(r, t) = [[cos t, -r sin t], [sin t, r cos t]]
    r, t = torch.tensor(2.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)
    block = found[0][0]
    torch.testing.assert_close(block["r"], torch.stack([t.cos(), t.sin()]), rtol=1e-15, atol=0)
    torch.testing.assert_close(block["t"], torch.stack([-r * t.sin(), r * t.cos()]), rtol=1e-15, atol=0)


def test_a_failing_group_comes_back_as_its_error_and_the_others_go_on(scheduler) -> None:
    groups = [GROUPS[0], [("jacobian", "x**2 +", {"x": [1.0]})], [("jacobian", "y", {"x": [1.0]})], GROUPS[2]]
    found = dict(map_groups(compute, groups, scheduler=scheduler))
    assert sorted(found) == [0, 1, 2, 3]
    _same(found[0], compute(groups[0]))
    _same(found[3], compute(groups[3]))
    for index in (1, 2):
        with pytest.raises(jacli.JacliError) as local:
            compute(groups[index])
        assert type(found[index]) is type(local.value)
        assert str(found[index]) == str(local.value) and found[index].param == local.value.param


def test_a_worker_killed_mid_run_loses_no_group(scheduler, tmp_path) -> None:
    marker = tmp_path / "killed"
    groups = [(str(marker), group) for group in GROUPS]
    found = dict(map_groups(kill_once, groups, scheduler=scheduler))
    killed = int(marker.read_text())  # the evidence: one group did kill its worker
    assert sorted(found) == list(range(len(groups)))
    for index, (_, group) in enumerate(groups):
        pid, results = found[index]
        assert pid != killed
        _same(results, compute(group))


def test_a_local_cluster_runs_torch_on_one_thread_per_worker() -> None:
    found = dict(map_groups(threads_and_result, GROUPS[:2], workers=2, threads=1))
    assert sorted(found) == [0, 1]
    for index in (0, 1):
        threads, omp, results = found[index]
        assert (threads, omp) == (1, "1")
        _same(results, compute(GROUPS[index]))


def test_arguments_are_checked_before_anything_starts() -> None:
    with pytest.raises(ClusterError, match="either `scheduler`.*not neither") as neither:
        map_groups(compute, GROUPS)
    assert neither.value.param == "workers"
    with pytest.raises(ClusterError, match="not both"):
        map_groups(compute, GROUPS, scheduler="tcp://127.0.0.1:8786", workers=2)
    with pytest.raises(ClusterError, match="`workers` 0 is not a number of worker processes"):
        map_groups(compute, GROUPS, workers=0)
    with pytest.raises(ClusterError, match="`threads` 0"):
        map_groups(compute, GROUPS, workers=1, threads=0)


def test_without_dask_the_error_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # what a missing package looks like
    with pytest.raises(ClusterError) as missing:
        map_groups(compute, GROUPS, workers=2)
    message = str(missing.value)
    assert 'pip install "jacli[dask]"' in message and "\n" not in message


def test_nothing_of_dask_is_imported_until_map_groups_is_called() -> None:
    code = (
        "import sys, jacli, jacli.cluster, jacli.cli\n"
        "jacli.jacobian('x**2', {'x': [1.0, 2.0]})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


JOBS = "\n".join([
    '{"id": "p1", "command": "jacobian", "expr": "[r*cos(t), r*sin(t)]", "inputs": {"r": 2, "t": 0.5}}',
    '{"id": "p2", "command": "jacobian", "expr": "[r*cos(t), r*sin(t)]", "inputs": {"r": 3, "t": 0.25}}',
    '{"id": "bad-shape", "command": "jacobian", "expr": "A @ x", "inputs": {"A": "eye:2", "x": "1,2,3"}}',
    '{"id": "g", "command": "grad", "expr": "sum(sin(x)**2)", "inputs": {"x": "0.1,0.2"}}',
    '{"id": "v", "command": "vjp", "expr": "3*a + 2*b**2", "inputs": {"a": "1,2", "b": "3,4"}, "v": "ones"}',
    '{"id": "bad-parse", "command": "jacobian", "expr": "x**", "inputs": {"x": 1}}',
]) + "\n"


def test_jacli_batch_on_a_cluster_writes_the_local_lines(scheduler, monkeypatch) -> None:
    """`jacli batch --scheduler` (and JACLI_SCHEDULER) give the local run's lines byte for byte,
    in input order, with a job that fails on a worker as its error line and exit 4."""
    from helpers import cli_runner

    from jacli.cli import app

    def run(*args: str, environ: dict | None = None):
        return cli_runner().invoke(app, ["batch", "-", *args], input=JOBS,
                                   env={"JACLI_DEBUG": None, "JACLI_SCHEDULER": None, **(environ or {})})

    local = run()
    assert local.exit_code == 4, local.stderr
    lines = local.stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["p1", "p2", "bad-shape", "g", "v", "bad-parse"]
    assert "error" in json.loads(lines[2]) and "error" in json.loads(lines[5])
    assert json.loads(lines[0])["matrix"]["values"] == [[math.cos(0.5), -2 * math.sin(0.5)], [math.sin(0.5), 2 * math.cos(0.5)]]
    for remote in (run("--scheduler", scheduler), run(environ={"JACLI_SCHEDULER": scheduler})):
        assert remote.exit_code == 4, remote.stderr
        assert remote.stdout == local.stdout
