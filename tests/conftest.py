"""Pytest fixtures shared by every test module: the loopback fakes, a knowledge folder and the in-process
pipeline. The code behind them lives in `tests.support`; test modules import helpers from there, never from
here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Plain `assert`s in the shared helpers (the harnesses, the server) report their values like the tests' own.
pytest.register_assert_rewrite("tests.support")

from tests.support.constants import CUSTOMER_ID  # noqa: E402
from tests.support.fakes import FakeSlack, FakeZendesk  # noqa: E402
from tests.support.knowledge import write_knowledge  # noqa: E402


@pytest.fixture
def fake_slack():
    with FakeSlack() as server:
        yield server


@pytest.fixture
def fake_zendesk():
    with FakeZendesk() as server:
        server.add_user(id=CUSTOMER_ID, name="Ana Customer", email="ana@example.com")
        yield server


@pytest.fixture
def knowledge_dir(tmp_path: Path) -> Path:
    return write_knowledge(tmp_path / "knowledge")


@pytest.fixture
def pipeline(fake_slack, fake_zendesk, knowledge_dir, tmp_path):
    """Seam's pipeline in-process against the fakes, with its own database (see tests.support.pipeline)."""
    # Imported here, not at the top: only the tests that use the pipeline should load (or fail on) bot.flows.
    from tests.support.pipeline import build_pipeline

    return build_pipeline(slack=fake_slack, zendesk=fake_zendesk, knowledge=knowledge_dir,
                          database=tmp_path / "seam.db")
