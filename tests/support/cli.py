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
