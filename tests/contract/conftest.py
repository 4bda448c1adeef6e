"""The `harness` fixture: every contract test runs once per helpdesk in `tests.support.helpdesks.HARNESSES`,
each time against a fresh fake of that helpdesk and a real adapter pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.helpdesks import HARNESSES, HelpdeskHarness


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Iterator[HelpdeskHarness]:
    harness = HARNESSES[request.param]()
    try:
        yield harness
    finally:
        harness.close()
