"""What `python -m bot simulate` leaves in its --out folder: each output whole or not there, and `summary.json` only
beside the other three files of its own run."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_bot
from tests.support.jsonl import row, write_jsonl
from tests.support.knowledge import write_knowledge

OUTPUTS = ("decisions.jsonl", "summary.json", "sweep.png", "report.html")
PASSWORD = "I forgot my password and cannot sign in, how do I reset it?"
SHIPPING = "How long does shipping take abroad?"


def outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in OUTPUTS if (folder / name).exists()}


def run_limited(*args: str, cwd: Path, file_size_limit: int) -> subprocess.CompletedProcess:
    """`run_bot` with the kernel refusing to let the process grow any file past `file_size_limit` bytes: a write
    fails half-way (EFBIG), as on a disk that fills up."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAM_", "OPENAI_")) and k != "KNOWLEDGE_PATH"}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=limit)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """A folder, a knowledge folder, and the whole outputs of an earlier small run and of a later bigger one."""
    folder = tmp_path_factory.mktemp("outputs")
    knowledge = write_knowledge(folder / "knowledge")
    write_jsonl(folder / "earlier.jsonl", [row("a", PASSWORD), row("b", SHIPPING)])
    write_jsonl(folder / "later.jsonl", [row(f"t{i}", (PASSWORD, SHIPPING)[i % 2] + f" (order {i})")
                                         for i in range(40)])
    for name in ("earlier", "later"):
        done = run_bot("simulate", f"{name}.jsonl", "--knowledge", str(knowledge), "--out", name, cwd=folder)
        assert done.returncode == 0, done.stderr
    return folder, outputs(folder / "earlier"), outputs(folder / "later")


@pytest.mark.parametrize("cut", OUTPUTS)
def test_a_run_that_fails_while_writing_leaves_no_partial_file_and_no_summary(
        tmp_path: Path, runs: tuple[Path, dict[str, bytes], dict[str, bytes]], cut: str) -> None:
    # The disk fills while the later run writes its outputs over the earlier run's: each write stops at a size
    # just short of the `cut` file's, so the first file at least that big is left half-written.
    folder, earlier, later = runs
    out = tmp_path / "out"
    out.mkdir()
    for name, data in earlier.items():
        (out / name).write_bytes(data)
    done = run_limited("simulate", str(folder / "later.jsonl"), "--knowledge", str(folder / "knowledge"),
                       "--out", str(out), cwd=tmp_path, file_size_limit=len(later[cut]) - 1)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1].startswith("Error: --out")
    left = outputs(out)
    for name, data in left.items():
        assert data in (earlier[name], later[name]), f"{name} is partial"
    # summary.json marks a finished run: a failed one leaves none, so no earlier summary stands beside files the
    # later run already replaced.
    assert "summary.json" not in left
    assert sorted(p.name for p in out.iterdir()) == sorted(left), "a temporary file was left behind"


def test_a_finished_run_replaces_every_output_and_writes_the_summary_last(
        tmp_path: Path, runs: tuple[Path, dict[str, bytes], dict[str, bytes]]) -> None:
    folder, earlier, later = runs
    out = tmp_path / "out"
    out.mkdir()
    for name, data in earlier.items():
        (out / name).write_bytes(data)
    done = run_limited("simulate", str(folder / "later.jsonl"), "--knowledge", str(folder / "knowledge"),
                       "--out", str(out), cwd=tmp_path, file_size_limit=max(map(len, later.values())))
    assert done.returncode == 0, done.stderr
    assert outputs(out) == later  # and the same bytes as the run into another folder
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    summary_written = (out / "summary.json").stat().st_mtime_ns
    assert all((out / name).stat().st_mtime_ns <= summary_written for name in OUTPUTS)
