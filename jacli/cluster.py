"""Groups of work on a Dask distributed cluster: an existing one, or a local one made for the run.

``map_groups(function, groups, ...)`` sends each group to a worker and yields ``(index, result)``
as each completes. Nothing of Dask is imported until it is called, so jacli without the
``dask`` extra works as before, and a run without a cluster pays nothing for it.

Example (a local cluster of two worker processes, one torch thread each)::

    >>> from jacli.cluster import map_groups            # doctest: +SKIP
    >>> sorted(map_groups(abs, [-1, 2, -3], workers=2))  # doctest: +SKIP
    [(0, 1), (1, 2), (2, 3)]
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Iterator, Sequence

from jacli.errors import JacliError

INSTALL = 'pip install "jacli[dask]"'
"""How to get Dask, in every message that needs it."""

RETRIES = 3
"""How often a group whose worker died is sent to another worker (Dask's ``retries``)."""

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""The thread pools a worker process sizes at its start, before torch is imported."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after each group comes back."""


class ClusterError(JacliError):
    """Dask is missing, or its scheduler cannot be reached or started."""


def map_groups(
    function: Callable[[Any], Any],
    groups: Iterable[Any],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    progress: Progress | None = None,
) -> Iterator[tuple[int, Any]]:
    """Run ``function(group)`` for each group (picklable) on a Dask distributed cluster and yield
    ``(index, result)`` as each completes (any order).

    Args:
        function: a module-level function (workers import it by name: they need its module, and
            jacli, installed). An exception inside it is returned as that group's result, not
            raised, and the other groups go on (the caller turns it into error lines).
        groups: the work, one picklable item per task; ``index`` is its position here.
        scheduler: the address of a running scheduler, such as ``"tcp://HOST:8786"`` (the
            caller may take it from the ``JACLI_SCHEDULER`` environment variable).
        workers: instead, start a local ``dask.distributed.LocalCluster`` with this many worker
            processes, bound to 127.0.0.1, and close it afterwards.
        threads: threads per local worker; every worker runs torch on this many threads
            (``torch.set_num_threads`` and the OMP/MKL variables), so that workers sharing a
            machine do not oversubscribe its cores.
        progress: ``progress(done, total)`` after each group.

    A group whose worker dies (killed, out of memory) is sent to another worker, up to
    ``RETRIES`` times (Dask's ``retries``; the scheduler also reschedules the tasks of a
    lost worker): no group is lost while a worker is left.

    Raises:
        ClusterError: Dask is not installed, the scheduler cannot be reached, or neither or
            both of ``scheduler`` and ``workers`` are given.
    """
    _check(scheduler, workers, threads)
    groups = list(groups)
    distributed = _import_distributed()
    # The generator's own body: Dask is imported above, when map_groups is called, so that a
    # missing extra is reported at the call, not at the first next().
    return _run(distributed, function, groups, scheduler, workers, threads, progress)


def _check(scheduler: str | None, workers: int | None, threads: int) -> None:
    """The arguments' own checks, before anything is imported or started."""
    if (scheduler is None) == (workers is None):
        raise ClusterError(
            "map_groups needs either `scheduler` (the address of a running Dask scheduler, such as "
            "tcp://HOST:8786) or `workers` (how many local worker processes to start), not "
            + ("both" if scheduler is not None else "neither"),
            param="workers" if scheduler is None else "scheduler",
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ClusterError(f"`workers` {workers!r} is not a number of worker processes; give 1 or more", param="workers")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ClusterError(f"`threads` {threads!r} is not a number of threads; give 1 or more", param="threads")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ClusterError(
            f"`scheduler` {scheduler!r} is not a scheduler address; give one such as tcp://HOST:8786",
            param="scheduler",
        )


def _import_distributed() -> Any:
    """``dask.distributed``, or a ClusterError that says how to install it."""
    try:
        import dask.distributed as distributed
    except ImportError as missing:
        raise ClusterError(
            f"running on a Dask cluster needs Dask ({missing.name or 'distributed'} is not installed); "
            f"install it with: {INSTALL}"
        ) from None
    return distributed


def _run(
    distributed: Any,
    function: Callable[[Any], Any],
    groups: Sequence[Any],
    scheduler: str | None,
    workers: int | None,
    threads: int,
    progress: Progress | None,
) -> Iterator[tuple[int, Any]]:
    cluster = client = None
    try:
        cluster, client = _connect(distributed, scheduler, workers, threads)
        futures = {
            client.submit(run_group, function, group, threads, pure=False, retries=RETRIES): index
            for index, group in enumerate(groups)
        }
        done = 0
        for future in distributed.as_completed(futures):
            index = futures.pop(future)
            # run_group catches the function's exceptions; an error here is Dask's own (a group
            # that killed every worker it was sent to): that group's failure, like any other
            result = future.result() if future.status == "finished" else future.exception()
            future.release()
            done += 1
            if progress is not None:
                progress(done, len(groups))
            yield index, result
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _connect(distributed: Any, scheduler: str | None, workers: int | None, threads: int) -> tuple[Any, Any]:
    """``(cluster or None, client)``: a client of the scheduler, or of a new local cluster."""
    if scheduler is not None:
        try:
            return None, distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as failure:
            raise ClusterError(
                f"`scheduler` {scheduler!r} cannot be reached ({_first_line(failure)}); start one with "
                "'dask scheduler' and workers with 'dask worker ADDRESS', or check the address",
                param="scheduler",
            ) from None
    import dask

    # NOTE [worker threads]: torch sizes its thread pool from OMP_NUM_THREADS when it starts, so
    # the variables are set in the worker processes' environment before they start (Dask's
    # pre-spawn environment; its default is 1), and run_group also calls torch.set_num_threads
    # in each task (workers of an existing cluster were started by someone else).
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.update({name: str(threads) for name in THREAD_VARIABLES})
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        try:
            cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=threads, processes=True, host="127.0.0.1",
                # no dashboard; the scheduler's HTTP server (health checks) on a free port of
                # 127.0.0.1, not 8787, so that two runs at once do not collide
                dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
            )
        except (OSError, TimeoutError) as failure:
            raise ClusterError(f"a local Dask cluster of {workers} workers did not start ({_first_line(failure)})",
                               param="workers") from None
    try:
        return cluster, distributed.Client(cluster)
    except BaseException:
        cluster.close()
        raise


def run_group(function: Callable[[Any], Any], group: Any, threads: int) -> Any:
    """On a worker: ``function(group)`` with torch on ``threads`` threads; an exception is the result."""
    _limit_threads(threads)
    try:
        return function(group)
    except Exception as failure:  # the caller reports it for this group; the others go on
        return failure


def _limit_threads(threads: int) -> None:
    """torch on ``threads`` threads in this process (set once, then only checked)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)  # for pools that start later (numpy's, a child process)
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _first_line(failure: BaseException) -> str:
    text = str(failure).strip() or type(failure).__name__
    return text.splitlines()[0]
