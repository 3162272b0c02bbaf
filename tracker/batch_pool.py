"""Runners of `tracker.batch`: the same per-file job on local worker processes or as Ray tasks.

Both take a list of `tracker.batch_job.FileJob` and call `on_row(row)` in the
calling process as each job finishes (in completion order). Both run
`tracker.batch_job.process_file`, so a file gives the same outputs either way.

Local (`run_local`): N processes started with "spawn" (no state of the caller
is inherited, and each sizes its own Numba pool at one thread). The runner
knows which job each worker holds, so a worker that dies (killed, out of
memory, a crash in native code) fails only its own file, with a "crash" row;
a new worker takes its place. Workers ignore Ctrl-C and die with their parent
(Linux), so stopping the batch stops them; the caller cleans up staging.

Ray (`run_ray`): one task per file, one CPU each, no retries (a crashed task
gives a "crash" row as locally). `ray` is imported only here, only when called.
"""
from __future__ import annotations

import os
import signal
import sys
from collections import deque
from collections.abc import Callable
from multiprocessing import connection, get_context
from pathlib import Path

from tracker.batch_job import FileJob, failed_row, process_file

OnRow = Callable[[dict], None]
# Thread pools of the numeric libraries, one thread each in a worker.
_ONE_THREAD = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1"}


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGKILL to this process when its parent exits, so a batch
    # killed with SIGKILL leaves no worker behind still writing to the output folder.
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _worker_main(conn) -> None:
    """A local worker: receive jobs until None, send back each job's row."""
    os.environ.update(_ONE_THREAD)  # before Numba is imported (by the first job)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides how a batch stops
    _die_with_parent()
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(process_file(job))


class _Worker:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True, name="facelite-batch")
        self.process.start()
        child.close()
        self.job: FileJob | None = None

    def give(self, job: FileJob) -> None:
        self.job = job
        try:
            self.conn.send(job)
        except OSError:
            pass  # it has died: its sentinel is ready, and the job is reported as lost with it

    def stop(self, wait: bool) -> None:
        if wait and self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
        self.conn.close()


def _death_message(worker: _Worker) -> str:
    code = worker.process.exitcode
    how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
    return f"the worker process died ({how}) while processing {worker.job.input}"


def run_local(jobs: list[FileJob], workers: int, on_row: OnRow) -> None:
    """Run the jobs on `workers` processes (at most one per job)."""
    if not jobs:
        return
    ctx = get_context("spawn")
    pending = deque(jobs)
    pool = [_Worker(ctx) for _ in range(min(workers, len(jobs)))]
    finished = False
    try:
        while True:
            for worker in pool:
                if worker.job is None and pending:
                    worker.give(pending.popleft())
            busy = [w for w in pool if w.job is not None]
            if not busy:
                break
            ready = set(connection.wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in busy:
                if worker.conn in ready:
                    try:
                        row = worker.conn.recv()
                    except (EOFError, OSError):
                        row = None  # it died before sending: handled below
                    if row is not None:
                        worker.job = None
                        on_row(row)
                        continue
                if worker.process.sentinel in ready or not worker.process.is_alive():
                    worker.process.join()
                    on_row(failed_row(worker.job, "crash", _death_message(worker)))
                    worker.stop(wait=False)
                    pool.remove(worker)
                    if pending:
                        pool.append(_Worker(ctx))
        finished = True
    finally:
        for worker in pool:
            worker.stop(wait=finished)


def _local_runtime_env() -> dict:
    # A local Ray's workers are fresh interpreters: give them this tracker package (the one
    # the caller imported, e.g. a source checkout) and one thread each.
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {"env_vars": {"PYTHONPATH": path, **_ONE_THREAD}}


def require_ray() -> None:
    """Raise InputError unless Ray (the optional extra) can be imported; imports nothing."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        from tracker.errors import InputError

        raise InputError('running on Ray needs Ray: pip install "facelite[ray]"')


def run_ray(jobs: list[FileJob], on_row: OnRow, address: str | None = None, num_cpus: int | None = None) -> None:
    """Run the jobs as Ray tasks.

    Uses the Ray already initialised in this process if there is one; else connects to
    the cluster at `address` ("ray start --head" elsewhere; the inputs and the output
    folder must be at the same paths on every node, e.g. a shared file system, and
    facelite installed there), or starts a local Ray with `num_cpus` CPUs when address
    is None. A Ray started or connected here is shut down at the end.
    """
    require_ray()
    import ray

    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, runtime_env={"env_vars": dict(_ONE_THREAD)}, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=_local_runtime_env(),
                     log_to_driver=False)
    task = ray.remote(num_cpus=1, max_retries=0)(process_file)
    refs = {task.remote(job): job for job in jobs}
    try:
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                job = refs.pop(ref)
                try:
                    row = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    row = failed_row(job, "crash", f"the Ray task died while processing {job.input}: "
                                                   f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                on_row(row)
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
