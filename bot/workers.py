"""When a process may hand work to forked worker processes: the offline simulation's fit, replay and triggers.

Forking copies the whole process, so it is only worth it with a second core, and only safe on Linux: on macOS the
system libraries are not safe to use in a child forked after threads have run.
"""

from __future__ import annotations

import os
import sys


def forking_helps() -> bool:
    """Linux with two cores or more."""
    return (os.cpu_count() or 1) >= 2 and sys.platform == "linux"
