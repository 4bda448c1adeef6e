"""What self-hosters start from stays true: the Dockerfile (no engine here to build it, so it is read: a slim
Python base, a user that is not root, `python -m bot serve`, the database on a volume, a health check that runs)
and `.env.example`, which lists every variable the contract, its additions and the README document."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store import Store
from tests.support.constants import ROOT
from tests.support.server import SeamServer, seam_env


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined and comments left out."""
    text = (ROOT / "Dockerfile").read_text()
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(word.upper(), rest.strip()) for word, _, rest in (line.partition(" ") for line in logical)]


def all_of(name: str) -> list[str]:
    return [args for instruction, args in instructions() if instruction == name]


def env_values() -> dict[str, str]:
    found: dict[str, str] = {}
    for args in all_of("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            found[key] = value
    return found


def test_the_image_runs_serve_as_a_user_that_is_not_root_with_its_database_on_a_volume():
    [base] = all_of("FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    users = all_of("USER")
    assert users and users[-1] not in ("root", "0", "0:0")
    position = [i for i, (instruction, _) in enumerate(instructions()) if instruction in ("USER", "CMD")]
    assert [instructions()[i][0] for i in position][-2:] == ["USER", "CMD"], "the command runs as that user"
    assert re.search(r"useradd\b.*\b" + re.escape(users[-1].split(":")[0]) + r"\b", " ".join(all_of("RUN")))
    [command] = all_of("CMD")
    assert command == '["python", "-m", "bot", "serve"]'
    assert (ROOT / "Procfile").read_text().strip() == "web: python -m bot serve", "the same command"
    assert env_values()["DATABASE_PATH"] == "/data/seam.db"
    assert any("/data" in v for v in all_of("VOLUME"))
    assert re.search(r"chown\s+\S+\s+/data", " ".join(all_of("RUN"))), "the user can write its volume"
    for args in all_of("COPY"):
        *sources, _target = args.split()
        assert all((ROOT / s).exists() for s in sources), args
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", "*.db", ".venv", "tests"} <= set(ignored), "secrets, databases and tests stay out of the image"


def test_the_health_check_passes_on_a_healthy_seam_and_fails_on_a_degraded_one(fake_slack, fake_zendesk, tmp_path):
    [check] = all_of("HEALTHCHECK")
    assert "/healthz" in check
    command = check.split(" CMD ", 1)[1]
    server = SeamServer(seam_env(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path), tmp_path / "serve.log").start()
    try:
        env = {**os.environ, "PORT": server.env["PORT"], "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        assert subprocess.run(["sh", "-c", command], env=env, timeout=30).returncode == 0
        # A job dies: Seam still answers, but /healthz says it is failing, and the container shows unhealthy.
        store = Store(server.env["DATABASE_PATH"])
        store.record_event(helpdesk="zendesk", dedupe_key="doomed", ticket_id="1", body="{}", kind="nothing")
        store.db.execute("update events set state = 'dead', attempts = 5 where dedupe_key = 'doomed'")
        failed = subprocess.run(["sh", "-c", command], env=env, timeout=30, capture_output=True, text=True)
        assert failed.returncode != 0 and "503" in failed.stderr
    finally:
        assert server.stop() == 0, server.log()


def documented_variables() -> set[str]:
    """Every variable in the Environment tables of the contract (../shared/CONTRACT.md, when it is beside the
    repository, as in CI), of docs/contract-additions.md and of the README."""
    names: set[str] = set()
    sources = [ROOT / "docs" / "contract-additions.md", ROOT / "README.md", ROOT.parent / "shared" / "CONTRACT.md"]
    for path in sources:
        if not path.exists():
            continue
        section = re.search(r"^#+ Environment\n(.*?)(?=^#+ )", path.read_text(), re.S | re.M)
        assert section, f"{path.name} has an Environment section"
        for row in section.group(1).splitlines():
            if row.startswith("|") and not row.startswith("| ---"):
                first = row.split("|")[1]
                names.update(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", first))
    return names


def test_env_example_lists_every_documented_variable():
    documented = documented_variables()
    assert {"SLACK_BOT_TOKEN", "ESCALATION_CHANNEL", "HELPSCOUT_DOCS_API_URL", "EMBEDDINGS_API_KEY"} <= documented
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.M))
    assert documented - listed == set()
    assert listed - documented == set(), "nothing undocumented"


def test_env_example_sets_no_secret_and_loads(tmp_path):
    """Its uncommented lines parse as `docker --env-file` reads them, and Seam reads them without complaint."""
    from bot.config import load_settings

    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    assert all(not value for key, value in env.items() if re.search(r"TOKEN|SECRET|KEY", key))
    settings = load_settings(env=env, cwd=tmp_path)
    assert settings.helpdesk == "zendesk" and settings.embeddings_api_key is None


@pytest.mark.parametrize("name", ["SLACK_BOT_TOKEN", "ESCALATION_CHANNEL", "ZENDESK_API_TOKEN"])
def test_env_example_leaves_what_serve_requires_for_the_deployer_to_fill(name):
    assert re.search(rf"^{name}=$", (ROOT / ".env.example").read_text(), re.M)
