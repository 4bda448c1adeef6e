"""When a process may hand work to forked worker processes (the offline simulation's fit, replay and triggers),
and the pool that does it.

Forking copies the whole process, so it is only worth it with a second core, and only safe on Linux: on macOS the
system libraries are not safe to use in a child forked after threads have run.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

_INHERITED: Any = None


def forking_helps() -> bool:
    """Linux with two cores or more."""
    return (os.cpu_count() or 1) >= 2 and sys.platform == "linux"


@contextmanager
def forked_pool(inherit: Any = None, *, workers: int | None = None) -> Iterator[ProcessPoolExecutor]:
    """Worker processes forked from this one (`workers`, or one per core). They find `inherit` with
    `inherited()`: it is set before they fork, so a large object (a fitted index) is copied once by the fork
    rather than pickled for every task."""
    global _INHERITED
    _INHERITED = inherit
    try:
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 2,
                                 mp_context=multiprocessing.get_context("fork")) as pool:
            yield pool
    finally:
        _INHERITED = None


def inherited() -> Any:
    """In a worker of `forked_pool`, what the pool was given to inherit."""
    return _INHERITED
