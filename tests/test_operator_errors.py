"""What an operator meets when the configuration is wrong in a way no variable check sees: a DATABASE_PATH that
is not a database, a SEAM_CONFIG that is a folder or not UTF-8, a LOG_LEVEL Python has no level for, a port
already taken. The contract: every command exits non-zero with one line on stderr, no traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_bot
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.server import seam_env


def assert_one_line(done: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 1, one line on stderr holding every word, no traceback."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("Error: ") and all(word in line for word in words), line
    return line


def not_a_database(folder: Path) -> Path:
    path = folder / "seam.db"
    path.write_bytes(b"these are notes, not a SQLite database\n" * 200)
    return path


@pytest.mark.parametrize("args", [("jobs",), ("audit",), ("feedback", "export"), ("knowledge", "list"),
                                  ("forget", "--ticket", "1", "--yes")])
def test_a_database_path_that_is_not_a_database_is_one_line_for_every_command(tmp_path: Path, monkeypatch,
                                                                               args: tuple[str, ...]) -> None:
    monkeypatch.setenv("DATABASE_PATH", str(not_a_database(tmp_path)))
    assert_one_line(run_bot(*args, cwd=tmp_path), "DATABASE_PATH", str(tmp_path / "seam.db"))


def test_a_database_path_that_is_a_folder_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path))
    assert_one_line(run_bot("jobs", cwd=tmp_path), "DATABASE_PATH", "directory")


@pytest.mark.parametrize("make", [
    pytest.param(lambda folder: folder, id="a-folder"),
    pytest.param(lambda folder: (folder / "seam.toml").write_bytes(b"\xff\xfe[thresholds]\n") and folder / "seam.toml",
                 id="not-utf8"),
])
def test_a_seam_config_that_cannot_be_read_is_one_line_naming_it(tmp_path: Path, make) -> None:
    path = make(tmp_path)
    tickets = tmp_path / "t.jsonl"
    tickets.write_text('{"id": "1", "subject": "Where is my order?"}\n', encoding="utf-8")
    # run_bot leaves every SEAM_ variable out: this one is set on its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAM_", "OPENAI_", "SLACK_", "ZENDESK_"))}
    done = subprocess.run([sys.executable, "-m", "bot", "simulate", str(tickets), "--out", str(tmp_path / "out")],
                          cwd=tmp_path, env={**env, "SEAM_CONFIG": str(path)}, capture_output=True, text=True,
                          timeout=120)
    assert_one_line(done, "SEAM_CONFIG", str(path))


def test_an_unknown_log_level_is_one_line_naming_the_known_ones(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "verbose")
    assert_one_line(run_bot("jobs", cwd=tmp_path), "LOG_LEVEL", "'verbose'", "DEBUG, INFO, WARNING")


@pytest.fixture
def env(tmp_path: Path):
    with FakeSlack() as slack, FakeZendesk() as zendesk:
        yield seam_env(slack=slack, zendesk=zendesk, tmp=tmp_path), zendesk


def serve(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", "serve"], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_serve_on_a_database_that_is_not_one_stops_with_one_line(env, tmp_path: Path) -> None:
    environment, _ = env
    environment["DATABASE_PATH"] = str(not_a_database(tmp_path))
    assert_one_line(serve(environment, tmp_path), "DATABASE_PATH")


def test_serve_on_a_port_in_use_stops_with_one_line_before_any_work(env, tmp_path: Path) -> None:
    environment, zendesk = env
    with socket.socket() as taken:
        taken.bind((environment["HOST"], 0))
        taken.listen()
        environment["PORT"] = str(taken.getsockname()[1])
        line = assert_one_line(serve(environment, tmp_path), "PORT", environment["PORT"], "in use")
    # It stopped before its workers started: no knowledge sync, no ticket read on the way down.
    assert not [call for call in zendesk.calls if "help_center" in call.path or "/tickets/" in call.path], line


def test_serve_on_a_host_that_is_no_address_here_stops_with_one_line(env, tmp_path: Path) -> None:
    environment, _ = env
    environment["HOST"] = "no-such-host.invalid"
    assert_one_line(serve(environment, tmp_path), "HOST", "no-such-host.invalid")


@pytest.mark.parametrize("suffix", ["", "/", "/api/v2", "/api/v2/", "/API/V2"])
def test_zendesk_api_url_is_read_with_or_without_api_v2(tmp_path: Path, suffix: str) -> None:
    """Zendesk's own documentation gives the API's base as https://{subdomain}.zendesk.com/api/v2: an operator who
    copies it must not get /api/v2/api/v2/… and every ticket failing with a 404."""
    from bot.config import load_settings
    from bot.helpdesk import registry
    from tests.support.constants import CUSTOMER_ID

    with FakeZendesk() as zendesk:
        zendesk.add_user(id=CUSTOMER_ID, name="Ana", email="ana@example.com")
        zendesk.add_ticket(id=42, subject="Where is my order", requester_id=CUSTOMER_ID,
                           comments=[{"author_id": CUSTOMER_ID, "body": "It never came."}])
        settings = load_settings(env={"ZENDESK_SUBDOMAIN": zendesk.subdomain, "ZENDESK_EMAIL": zendesk.email,
                                      "ZENDESK_API_TOKEN": zendesk.token, "ZENDESK_API_URL": zendesk.url + suffix},
                                 cwd=tmp_path)
        ticket = registry.plugin("zendesk").build(settings).fetch_ticket("42")
    assert ticket.subject == "Where is my order"
    assert settings.helpdesk_settings.agent_url == f"https://{zendesk.subdomain}.zendesk.com"


def test_serve_on_an_in_memory_database_stops_with_one_line(env, tmp_path: Path) -> None:
    """SQLite's ":memory:" is a database per connection: serve's threads would each see an empty one, and it ran
    on with /healthz 503 and every job failing on a missing table."""
    environment, _ = env
    environment["DATABASE_PATH"] = ":memory:"
    assert_one_line(serve(environment, tmp_path), "DATABASE_PATH", ":memory:")
