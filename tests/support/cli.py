"""Seam's command line run as a person would run it: `run_bot` starts `python -m bot <args>` in a subprocess, in
the given folder, with every Seam, Slack, Zendesk and OpenAI variable (and KNOWLEDGE_PATH) removed from the
environment so the developer's own settings never leak into a test, and returns the completed process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_bot(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SEAM_", "OPENAI_", "SLACK_", "ZENDESK_")) and k != "KNOWLEDGE_PATH"}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


# -- `import HELPDESK --from-api` -------------------------------------------------------------------------------

# What every `import HELPDESK --from-api` refuses as a usage error (exit 2), and a word of the message.
FROM_API_USAGE_MISTAKES = [
    (("dump", "--since", "1d"), "--since goes with --from-api"),
    (("dump", "--limit", "3"), "--limit goes with --from-api"),
    (("--from-api", "dump", "--since", "1d"), "pass no DUMPS with it"),
    (("--from-api",), "--from-api needs --since"),
    (("--from-api", "--since", "soon"), "neither a date (2026-09-01) nor a duration ago"),
    ((), "pass the DUMPS to convert, or --from-api"),
]


def run_with(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`run_bot` with `env` as the only helpdesk, Seam, Slack and OpenAI variables."""
    from tests.support.server import HELPDESK_PREFIXES

    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SEAM_", "OPENAI_", "SLACK_", "EMBEDDINGS_", *HELPDESK_PREFIXES))
             and k not in ("KNOWLEDGE_PATH", "DATABASE_PATH", "HISTORY_PATH")}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env={**clean, **env}, capture_output=True,
                          text=True, timeout=120)


def assert_refused(done: subprocess.CompletedProcess, line: str, secret: str, out: Path) -> None:
    """Refused credentials: exit 1, one line naming the variables, the secret nowhere, nothing written."""
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [line]
    assert "Traceback" not in done.stderr and secret not in done.stdout + done.stderr
    assert not out.exists()


def assert_says_how_to_resume(done: subprocess.CompletedProcess, helpdesk: str) -> None:
    """An export that failed half-way: exit 1, and its last line says a re-run goes on."""
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"Error: the export from {helpdesk} stopped: ") and "404" in line
    assert "running the same command again goes on from there" in line


def assert_missing_variable(done: subprocess.CompletedProcess, name: str, calls: list) -> None:
    """A variable the export needs, unset: exit 2, one line naming it, and no request made."""
    assert done.returncode == 2
    assert done.stderr.strip() == f"Error: missing required environment variable {name}"
    assert not calls
