"""What the benchmarks share: `machine()` describes the computer a run happened on (CPU model, cores,
architecture, Python, kernel) for the line every benchmark prints first, and `describe()` summarises a list of
durations in seconds as one aligned line of median, p95, p99 and max in milliseconds.

Benchmarks are run as modules from the repository root (`python -m bench.<name>`), which puts the root on
`sys.path`, so they import `bench`, `bot` and `tests.support` like any other package.
"""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def describe(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (f"{name:<28} median {statistics.median(ms):6.1f} ms  p95 {percentile(ms, 0.95):6.1f} ms  "
            f"p99 {percentile(ms, 0.99):6.1f} ms  max {max(ms):6.1f} ms  (n={len(ms)})")
