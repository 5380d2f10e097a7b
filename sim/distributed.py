"""The one place the project talks to Dask: a cluster to run on, and tasks run on it.

:func:`cluster` gives a ``distributed.Client``, either of an embedded ``LocalCluster``
(worker processes on this machine) or of a scheduler already running elsewhere.
:func:`run_tasks` runs one function over a list of tasks on it and hands the results
back in task order, so what a caller computes from them does not depend on how many
workers there were or in which order they finished.

Dask logs through the ``distributed`` loggers, in this process and in every worker; they
are silenced unless ``verbose``, so a command's terminal shows only what the command
says. A scheduler address that is malformed or does not answer is a
:class:`ClusterError` naming the address and the reason, raised within
``connect_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import distributed
from distributed.comm import connect

__all__ = ["ClusterError", "ShardError", "cluster", "run_tasks"]

T = TypeVar("T")
R = TypeVar("R")

#: How long a scheduler given by address has to answer.
CONNECT_TIMEOUT = 5.0

#: The scheduler serves its health routes over HTTP even without a dashboard, by default
#: on port 8787 with a warning when that is taken: a free port on loopback instead.
_NO_DASHBOARD = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}


class ClusterError(RuntimeError):
    """No cluster to run on: a bad or silent scheduler address, or workers that did not start."""


class ShardError(RuntimeError):
    """A task failed: its message names the task (via ``describe``) and the original error."""

    def __init__(self, task: object, description: str, error: BaseException) -> None:
        super().__init__(f"{description}: {type(error).__name__}: {error}")
        self.task = task
        self.error = error


@contextmanager
def _quiet_logs(verbose: bool) -> Iterator[None]:
    """Dask's loggers in this process raised to CRITICAL for the block, unless ``verbose``."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


async def _identify(address: str, timeout: float) -> str:
    """The type of the Dask server at ``address`` (``"Scheduler"`` for a scheduler)."""
    comm = await connect(address, timeout=timeout)
    try:
        await asyncio.wait_for(comm.write({"op": "identity", "reply": True}), timeout)
        answer = await asyncio.wait_for(comm.read(), timeout)
    finally:
        await comm.close()
    return str(answer.get("type", "?")) if isinstance(answer, dict) else "?"


def _check_scheduler(address: str, timeout: float) -> None:
    """Raise :class:`ClusterError` unless a Dask scheduler answers at ``address``.

    Checked before a ``Client`` is made because a Client whose connection failed blocks
    the interpreter's exit while it times out a second time.
    """
    where = f"scheduler {address!r}"
    try:  # in a thread of its own, so that a caller's running event loop is no obstacle
        with ThreadPoolExecutor(1) as pool:
            kind = pool.submit(lambda: asyncio.run(_identify(address, timeout))).result()
    except ValueError as exc:  # no port, unknown scheme
        raise ClusterError(f"{where}: malformed address ({exc}); expected tcp://HOST:PORT") from None
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"{where}: no answer within {timeout:g} s ({exc})") from None
    except Exception as exc:  # a server that is not Dask's, closing the connection
        raise ClusterError(f"{where}: not a Dask scheduler ({type(exc).__name__}: {exc})") from None
    if kind != "Scheduler":
        raise ClusterError(f"{where}: answered as a Dask {kind}, not a scheduler")


@contextmanager
def cluster(scheduler: str | None = None, workers: int = 2, threads_per_worker: int = 1, *,
            verbose: bool = False, connect_timeout: float = CONNECT_TIMEOUT) -> Iterator[distributed.Client]:
    """An embedded LocalCluster (``workers`` worker processes, no dashboard, quiet logs) when
    ``scheduler`` is None, else a Client connected to ``scheduler`` ('tcp://HOST:PORT');
    closed on exit (an embedded cluster's workers end with it)."""
    with ExitStack() as stack:
        stack.enter_context(_quiet_logs(verbose))
        if scheduler is None:
            if workers < 1 or threads_per_worker < 1:
                raise ValueError("a local cluster needs at least one worker with one thread")
            try:
                local = stack.enter_context(distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                    dashboard_address=None, scheduler_kwargs=_NO_DASHBOARD,
                    silence_logs=False if verbose else logging.CRITICAL))
            except (OSError, RuntimeError) as exc:
                raise ClusterError(f"the local cluster of {workers} worker(s) did not start: {exc}") from None
            client = stack.enter_context(distributed.Client(local, set_as_default=False))
        else:
            _check_scheduler(scheduler, connect_timeout)
            try:
                client = distributed.Client(scheduler, timeout=connect_timeout, set_as_default=False)
            except (OSError, ValueError, TimeoutError) as exc:
                raise ClusterError(f"scheduler {scheduler!r}: {exc}") from None
            stack.callback(client.close)
        yield client


def run_tasks(client: distributed.Client, fn: Callable[[T], R], tasks: Sequence[T], *,
              describe: Callable[[T], str],
              progress: Callable[[int, int], None] | None = None) -> list[R]:
    """``fn(task)`` for every task on the cluster, the results in task order.

    The order of the results is the order of ``tasks`` whatever the number of workers
    and the order in which they finish, so merging them is deterministic.
    ``progress(done, total)`` is called as each task completes. The first task to fail
    cancels every task after it and raises :class:`ShardError` naming ``describe(task)``;
    tasks before it are waited for, and the earliest of them to fail is the one
    reported, so the error too is the same on every run. ``fn`` and the tasks must be
    importable by the workers (module-level, not ``__main__``).
    """
    total = len(tasks)
    if total == 0:
        return []
    futures = client.map(fn, list(tasks), pure=False)
    index = {future.key: i for i, future in enumerate(futures)}
    results: list[Any] = [None] * total
    finished = [False] * total
    done = 0
    try:
        for future in distributed.as_completed(futures, loop=client.loop):
            i = index[future.key]
            if future.status == "finished":
                results[i] = future.result()
                finished[i] = True
                future.release()
                done += 1
                if progress is not None:
                    progress(done, total)
                continue
            client.cancel(futures[i + 1:])
            for k in range(i):  # an earlier failure, once every earlier task is over
                error = None if finished[k] else _failure(futures[k])
                if error is not None:
                    raise ShardError(tasks[k], describe(tasks[k]), error) from error
            error = _failure(future) or RuntimeError("the task failed")
            raise ShardError(tasks[i], describe(tasks[i]), error) from error
    finally:
        if done < total:
            client.cancel(futures)
    return results


def _failure(future: distributed.Future) -> BaseException | None:
    """What a task failed with, once it is over (``None`` if it succeeded)."""
    try:
        return future.exception()
    except CancelledError as exc:
        return RuntimeError(f"the task was cancelled by the cluster: {exc}")
