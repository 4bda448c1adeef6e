"""In-process fake HTTP APIs (Slack Web API, Zendesk, OpenAI) and Slack's Socket Mode server for Seam's tests."""

from ._base import Call
from .embeddings_api import FakeEmbeddings
from .freshdesk_api import FakeFreshdesk
from .front_api import FakeFront
from .gorgias_api import FakeGorgias
from .helpscout_api import FakeHelpScout
from .openai_api import FakeOpenAI
from .slack_api import FakeSlack
from .socket_mode import FakeSocketMode
from .zendesk_api import FakeZendesk

__all__ = ["Call", "FakeEmbeddings", "FakeFreshdesk", "FakeFront", "FakeGorgias", "FakeHelpScout", "FakeOpenAI",
           "FakeSlack", "FakeSocketMode", "FakeZendesk"]
