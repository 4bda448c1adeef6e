"""In-process fake HTTP APIs (Slack Web API, Zendesk, OpenAI) for Seam's tests."""

from .openai_api import FakeOpenAI
from .slack_api import FakeSlack
from .zendesk_api import FakeZendesk
from ._base import Call

__all__ = ["Call", "FakeOpenAI", "FakeSlack", "FakeZendesk"]
