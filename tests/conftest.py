"""Test-suite configuration: markers, and a Numba thread pool of at least two."""
import os

# The threaded-vs-serial kernel tests need two threads. Numba sizes its pool once, from
# NUMBA_NUM_THREADS (default: the CPU count), when it is first imported, i.e. after this
# file is read; on a one-core machine make it two (a value the user set wins).
if "NUMBA_NUM_THREADS" not in os.environ and (os.cpu_count() or 1) < 2:
    os.environ["NUMBA_NUM_THREADS"] = "2"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "packaging: builds the wheel once per session and runs installed copies in "
                   "subprocesses (about 15 s in all); deselect with -m 'not packaging'")
