"""In-process fake HTTP APIs (Slack Web API, Zendesk) for Seam's tests."""

from .slack_api import FakeSlack
from .zendesk_api import FakeZendesk
from ._base import Call

__all__ = ["Call", "FakeSlack", "FakeZendesk"]
