"""In-process fake HTTP APIs (Slack Web API, Zendesk, OpenAI) for Seam's tests."""

from ._base import Call
from .openai_api import FakeOpenAI
from .slack_api import FakeSlack
from .zendesk_api import FakeZendesk

__all__ = ["Call", "FakeOpenAI", "FakeSlack", "FakeZendesk"]
