"""Seam's command line run as a person would run it: `run_bot` starts `python -m bot <args>` in a subprocess, in
the given folder, with every Seam, Slack, Zendesk and OpenAI variable (and KNOWLEDGE_PATH) removed from the
environment so the developer's own settings never leak into a test, and returns the completed process.

For `import HELPDESK --from-api`: `run_with` (a subprocess with only the given variables; `start_with` starts
one without waiting, to interrupt it), the checks its one-line errors and its round trip share
(`assert_converts_alike`), and `run_in_process` with `built_adapters`, `paced_export` and `seconds_apart`, to look
at the adapter an export built (its pacing) after the real command ran.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest
    from click.testing import Result


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


def _read_by_seam(name: str) -> bool:
    """A variable Seam reads (a helpdesk's, Seam's, Slack's, OpenAI's or a path's): left out unless a test sets it."""
    from tests.support.server import HELPDESK_PREFIXES

    return (name.startswith(("SEAM_", "OPENAI_", "SLACK_", "EMBEDDINGS_", *HELPDESK_PREFIXES))
            or name in ("KNOWLEDGE_PATH", "DATABASE_PATH", "HISTORY_PATH"))


def _only(env: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not _read_by_seam(k)}, **env}


def run_with(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`run_bot` with `env` as the only helpdesk, Seam, Slack and OpenAI variables."""
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=_only(env), capture_output=True,
                          text=True, timeout=120)


def start_with(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """`run_with` started and not waited for, so that a test can kill it half-way (its output is not kept)."""
    return subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=cwd, env=_only(env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_in_process(*args: str, env: dict[str, str], cwd: Path) -> Result:
    """`python -m bot <args>` run by click's CliRunner in this process, from `cwd`, with `env` as the only
    helpdesk, Seam, Slack and OpenAI variables: what the command built stays in reach (`built_adapters`)."""
    from click.testing import CliRunner

    from bot.cli import cli

    unset: dict[str, str | None] = {k: None for k in os.environ if _read_by_seam(k)}
    httpx_level = logging.getLogger("httpx").level  # an export quiets httpx for the whole process
    try:
        with contextlib.chdir(cwd):
            return CliRunner().invoke(cli, list(args), env={**unset, **env}, catch_exceptions=False)
    finally:
        logging.getLogger("httpx").setLevel(httpx_level)


def built_adapters(monkeypatch: pytest.MonkeyPatch, export: ModuleType) -> list[Any]:
    """Every adapter a helpdesk's export module builds from now on (`export.export_adapter`), recorded as it goes
    to the export: the export still runs with it."""
    built: list[Any] = []
    build = export.export_adapter

    def recorded(own: Any, *, requests_per_minute: float | None) -> Any:
        built.append(build(own, requests_per_minute=requests_per_minute))
        return built[-1]

    monkeypatch.setattr(export, "export_adapter", recorded)
    return built


def paced_export(monkeypatch: pytest.MonkeyPatch, export: ModuleType, *args: str, env: dict[str, str], cwd: Path,
                 toml: str | None) -> tuple[Result, Any, Any]:
    """`run_in_process(*args)` of an export with `[helpdesk]` as `toml` says (`pace_config`), which must succeed;
    then the adapter the export built and the one serve builds from the same settings, to compare their pace."""
    from bot.config import load_settings
    from bot.helpdesk import registry

    config = pace_config(cwd, toml)
    built = built_adapters(monkeypatch, export)
    done = run_in_process(*args, env={**env, **config}, cwd=cwd)
    assert done.exit_code == 0, done.stderr
    [adapter] = built
    settings = load_settings(env={"HELPDESK": args[1], **env, **config}, cwd=cwd)
    return done, adapter, registry.plugin(settings.helpdesk).build(settings)


def assert_converts_alike(helpdesk: str, *options: str, cwd: Path) -> None:
    """`import HELPDESK` of the folders `by-hand` (a dump saved by hand) and `dump` (the export's) writes, without a
    problem, the JSONL the export wrote to `tickets.jsonl`."""
    for folder in ("by-hand", "dump"):
        again = run_with("import", helpdesk, folder, *options, "--out", f"{folder}.jsonl", env={}, cwd=cwd)
        assert again.returncode == 0, again.stderr
        assert (cwd / f"{folder}.jsonl").read_text() == (cwd / "tickets.jsonl").read_text()
        assert "problem" not in again.stderr.lower(), again.stderr


def seconds_apart(pacer: Any) -> float | None:
    """How far apart a pacer spaces calls once its burst is spent; None for no pacer (pacing off)."""
    return None if pacer is None else pacer._interval


# `[helpdesk] requests_per_minute` as a team writes it: 700 on a plan above the documented limit, 0 for no pacing.
FAST, UNPACED = "[helpdesk]\nrequests_per_minute = 700\n", "[helpdesk]\nrequests_per_minute = 0\n"
# Values serve refuses, and the one-line error each gives (the same for every import --from-api).
BAD_PACES = [
    ("[helpdesk]\nrequests_per_minute = -1\n", "helpdesk.requests_per_minute must be greater than or equal to 0, "
                                                "got -1"),
    ('[helpdesk]\nrequests_per_minute = "fast"\n', "helpdesk.requests_per_minute must be a number, got 'fast'"),
]


def pace_config(folder: Path, toml: str | None) -> dict[str, str]:
    """SEAM_CONFIG naming a file in `folder` that holds `toml`; no variable (and no file) for None."""
    if toml is None:
        return {}
    path = folder / "pace.toml"
    path.write_text(toml, encoding="utf-8")
    return {"SEAM_CONFIG": str(path)}


def assert_bad_config_refused(done: subprocess.CompletedProcess, message: str, calls: list, dump: Path) -> None:
    """A SEAM_CONFIG serve would refuse: exit 1, one line naming the key, no request made and nothing written."""
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [f"Error: {message}"]
    assert not calls and not dump.exists()


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
