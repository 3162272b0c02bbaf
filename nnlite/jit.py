"""Numba when it can be imported, plain-Python stand-ins when it cannot.

Every module with ``@njit`` kernels (nnlite.kernels, and the packages built on
nnlite) imports ``njit``, ``prange`` and ``get_num_threads`` from here instead
of from numba, so those modules, and the NumPy references beside each kernel,
import on a machine without Numba.
There ``njit`` returns the function unchanged, ``prange`` is ``range`` and
one thread is reported; callers pick the NumPy code paths (see
``nnlite.backend``), so the undecorated kernels never run in hot paths.

Numba's compile cache goes to a per-user folder, never next to the package
(which may be read-only): ``$NUMBA_CACHE_DIR`` when the user set it, else
``$XDG_CACHE_HOME/nnlite/numba`` or ``~/.cache/nnlite/numba``. This module
sets ``NUMBA_CACHE_DIR`` before importing numba. When that folder cannot be
created or written, kernels compile without caching (no error, only slower
start-up).

The first kernel call of a process also pays for initialising Numba's compiler target
(its typing and lowering registries; ~0.3 s on a 2-core EPYC, even when every kernel
then loads from the cache, twice that when scipy is installed: `_NoScipyInThread` keeps
that import out of it). `start_compiler_init` moves that onto a background thread;
`nnlite.backend.get_backend("numba")` starts it, so it runs while the caller opens its
camera or video.
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import tempfile
import threading
import warnings

log = logging.getLogger(__name__)


class NumbaMissingWarning(RuntimeWarning):
    """Numba cannot be imported: the NumPy code paths run instead (slower)."""


def _writable_dir(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _default_cache_dir() -> str | None:
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec says to ignore relative values
        home = os.path.expanduser("~")
        if not os.path.isabs(home):  # no HOME and no password entry
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "nnlite", "numba")


def _setup_cache_dir() -> str | None:
    """Set NUMBA_CACHE_DIR unless the user did; -> the folder, or None when nothing is writable."""
    user = os.environ.get("NUMBA_CACHE_DIR", "")
    path = user or _default_cache_dir()
    if path is None or not _writable_dir(path):
        log.info("numba cache folder %s is not writable; kernels compile without caching", path)
        return None
    if not user:
        os.environ["NUMBA_CACHE_DIR"] = path
    return path


#: The folder Numba caches compiled kernels in (None: caching is off).
CACHE_DIR = _setup_cache_dir()

try:
    import numba as _numba
except Exception as exc:  # ImportError (also for sys.modules["numba"] = None), or a broken install
    _numba = None
    NUMBA_IMPORT_ERROR: str | None = f"{type(exc).__name__}: {exc}"
else:
    NUMBA_IMPORT_ERROR = None
    if CACHE_DIR is not None and _numba.config.CACHE_DIR != CACHE_DIR:
        _numba.core.config.reload_config()  # numba was imported before us: re-read the env

#: True when numba imported; the Numba backend and kernels are available.
HAVE_NUMBA = _numba is not None

#: True when numba imported with ``NUMBA_DISABLE_JIT=1``: ``@njit`` functions then run as
#: plain Python (a coverage and debugging mode), so code that only Numba can compile, such
#: as the SIMD intrinsics of ``nnlite.kernels.simd``, needs a Python stand-in.
JIT_DISABLED = HAVE_NUMBA and bool(_numba.config.DISABLE_JIT)


def njit(*args, **kwargs):
    """``numba.njit`` (``cache`` off when no cache folder is writable), or a no-op decorator.

    Parameters
    ----------
    *args : callable
        The function, when used as a bare ``@njit``.
    **kwargs : dict
        ``numba.njit`` options (``cache``, ``parallel``, ``fastmath``, ...).

    Returns
    -------
    decorated : callable
        The compiled dispatcher, or a decorator; without numba the function itself.
    """
    if _numba is None:
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda fn: fn
    if CACHE_DIR is None:
        kwargs["cache"] = False
    return _numba.njit(*args, **kwargs)


prange = _numba.prange if HAVE_NUMBA else range


class _NoScipyInThread:
    """A `sys.meta_path` finder that refuses to import scipy's modules in one thread only.

    Numba's target set-up imports ``scipy.linalg`` when scipy is installed, only to learn
    whether ``np.correlate`` and ``np.convolve`` may call BLAS's dot (measured: 0.45 s of
    its 0.9 s on a busy 2-core EPYC; nnlite's kernels use no linear algebra). Refused
    there, Numba records "no BLAS" for those two functions, which then run Numba's own
    loop; every other linear-algebra function (``np.dot``, ``np.linalg.*``) imports scipy
    when it is first compiled, as always. Other threads import scipy normally meanwhile.
    """

    def __init__(self):
        self.ident = threading.get_ident()

    def find_spec(self, name, path=None, target=None):
        if threading.get_ident() == self.ident and name.partition(".")[0] == "scipy":
            raise ImportError(f"{name} is not imported during nnlite's numba set-up")
        return None


def _init_compiler_target() -> None:
    """Initialise Numba's CPU target (what the first compile or cache load would do)."""
    try:
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.registry import cpu_target

        # Under Numba's own compiler lock: a kernel call in another thread that needs the
        # target waits for this instead of initialising it a second time.
        with global_compiler_lock:
            # (``import numba`` imports the top-level scipy package, which is cheap.)
            finder = None if "scipy.linalg" in sys.modules else _NoScipyInThread()  # imported: no cost
            if finder is not None:
                sys.meta_path.insert(0, finder)
            try:
                cpu_target.target_context.refresh()
            finally:
                if finder is not None:
                    sys.meta_path.remove(finder)
    except Exception as exc:  # the first kernel call then initialises it, as without this
        log.info("background numba initialisation failed: %s: %s", type(exc).__name__, exc)


# One per process, like the Numba target it initialises (guarded by the lock).
_init_lock = threading.Lock()
_init_thread: threading.Thread | None = None


def start_compiler_init() -> bool:
    """Initialise Numba's compiler target on a background thread, once per process.

    The first kernel call (compile or cache load) needs Numba's typing and target
    registries; building them takes ~0.3 s of one core. Started when a model is built,
    this overlaps with what the caller does next (opening a camera or a video, reading
    the first frame); a kernel called before it is done waits for it (Numba's compiler
    lock), so results never depend on the timing. Later calls do nothing. Forks and
    interpreter exit wait for the thread, so no child inherits the lock half-taken.

    Returns
    -------
    started : bool
        True when the initialisation runs or ran (Numba is importable and its JIT on).
    """
    global _init_thread
    if not HAVE_NUMBA or JIT_DISABLED:
        return False
    with _init_lock:
        if _init_thread is None:
            _init_thread = threading.Thread(target=_init_compiler_target, name="nnlite-numba-init",
                                            daemon=True)
            _init_thread.start()
    return True


def compiler_lock():
    """Numba's process-wide compiler lock as a context manager (a no-op without Numba).

    While a thread holds it, every compile or cache load in the process waits; calls of
    kernels already compiled or loaded do not.
    """
    if not HAVE_NUMBA:
        return contextlib.nullcontext()
    from numba.core.compiler_lock import global_compiler_lock

    return global_compiler_lock


def wait_compiler_init(timeout: float | None = None) -> bool:
    """Wait for `start_compiler_init`'s thread.

    Parameters
    ----------
    timeout : float or None
        Most seconds to wait; None waits until it is done.

    Returns
    -------
    done : bool
        True when it is done, or was never started.
    """
    thread = _init_thread
    if thread is None or thread is threading.current_thread():
        return True
    thread.join(timeout)
    return not thread.is_alive()


def cached_on_disk(dispatcher) -> bool:
    """Whether Numba's cache folder holds an index for `dispatcher` (an ``@njit`` kernel).

    A cheap look at the folder (nothing is loaded or compiled): True means some
    compiled version was saved, not that it matches this process's types or sources;
    False means the first call will compile. Always False without numba or caching.

    Parameters
    ----------
    dispatcher : numba dispatcher
        A kernel made by `njit` with ``cache=True``.

    Returns
    -------
    cached : bool
        An index file named after the kernel exists in its cache folder.
    """
    stats = getattr(dispatcher, "stats", None)
    func = getattr(dispatcher, "py_func", None)
    if not HAVE_NUMBA or JIT_DISABLED or stats is None or func is None:
        return False
    folder = stats.cache_path
    # Numba names the index "<module>.<qualname>-<first line>.py<version>.nbi".
    prefix = f"{func.__module__.rpartition('.')[2]}.{func.__qualname__}-"
    try:
        return any(name.startswith(prefix) and name.endswith(".nbi") for name in os.listdir(folder))
    except OSError:
        return False


if HAVE_NUMBA:
    if hasattr(os, "register_at_fork"):  # POSIX
        os.register_at_fork(before=wait_compiler_init)
    atexit.register(wait_compiler_init)  # no interpreter shutdown in the middle of its imports


def get_num_threads() -> int:
    """Threads Numba's parallel loops use in the calling thread (1 without numba)."""
    return _numba.get_num_threads() if HAVE_NUMBA else 1


def max_threads() -> int:
    """Most threads Numba can use (its pool size, NUMBA_NUM_THREADS); 1 without numba."""
    return int(_numba.config.NUMBA_NUM_THREADS) if HAVE_NUMBA else 1


#: Most threads the default cap allows: kernels on maps of 64x64 and smaller stop gaining
#: beyond a few threads, so a big machine is not flooded by default.
DEFAULT_MAX_THREADS = 4


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    """The default thread cap: one core fewer than available, at least 1, at most 4.

    On a 2-core machine that is 1: the other core stays free for video decoding and
    encoding, rendering and the host application. A parallel kernel waits for its
    slowest thread, so running on more threads than there are free cores costs far
    more than it gains (measured: 2 threads on a 2-core machine with one busy core
    are about 5x slower per model call than 1 thread).
    """
    return max(1, min(DEFAULT_MAX_THREADS, available_cores() - 1))


def resolve_threads(threads: int | None) -> int:
    """The thread cap to use: `threads` (checked), or `default_threads()` for None.

    Parameters
    ----------
    threads : int or None
        A count >= 1, or None for the default.

    Returns
    -------
    threads : int
        The cap.

    Raises
    ------
    ValueError
        When `threads` is not None nor an integer >= 1.
    """
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1 (or None for the default), got {threads!r}")
    return threads


@contextlib.contextmanager
def thread_limit(n: int | None):
    """Run the block with Numba's parallel loops on at most `n` threads (None: unchanged).

    A cap: the count in force is min(n, the caller's current count, the pool
    size), so nested limits compose and never raise an outer one. Numba's
    count is per calling thread, so this is safe from several threads at
    once; the previous count is restored on exit.

    Parameters
    ----------
    n : int or None
        Most threads; None leaves the count as it is.
    """
    if n is None or not HAVE_NUMBA:
        yield
        return
    before = _numba.get_num_threads()
    _numba.set_num_threads(max(1, min(int(n), before)))
    try:
        yield
    finally:
        _numba.set_num_threads(before)


_warned = False
_IMPORT_MACHINERY = ("importlib", "_frozen_importlib")


def warn_numba_missing() -> None:
    """Warn once per process that Numba is missing and the NumPy code paths run instead.

    Silent when the user chose the NumPy backend explicitly (NNLITE_BACKEND=numpy). The
    warning points at the first caller outside nnlite, the package that called this
    function (a package built on nnlite with kernels of its own) and the import machinery.
    """
    global _warned
    if _warned or HAVE_NUMBA or os.environ.get("NNLITE_BACKEND", "").strip().lower() == "numpy":
        return
    _warned = True
    # Point the warning at the first caller outside nnlite and the calling package, counting
    # frames the way `warnings` does (it skips the import machinery's frames).
    caller = sys._getframe(1).f_globals.get("__name__", "").partition(".")[0]
    internal = ("nnlite", caller) + _IMPORT_MACHINERY
    level, frame = 1, sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not ("importlib" in filename and "_bootstrap" in filename):
            level += 1
        if frame.f_globals.get("__name__", "").partition(".")[0] not in internal:
            break
        frame = frame.f_back
    warnings.warn(f"numba cannot be imported ({NUMBA_IMPORT_ERROR}); nnlite and the packages built "
                  "on it run their NumPy code paths instead, which are slower. Install numba for "
                  "full speed, or set NNLITE_BACKEND=numpy to choose the NumPy backend explicitly.",
                  NumbaMissingWarning, stacklevel=level)
