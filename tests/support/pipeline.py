"""The pipeline in-process, without `serve`: `build_pipeline` wires Seam's `Pipeline` to the fake Slack and the
fake Zendesk (through a real `ZendeskAdapter`), the local engine over a knowledge folder, and a fresh SQLite
store, so tests can drive single events through a `Worker` and then look at the fakes and the database.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from bot.config import Settings
from bot.engine.knowledge import load_knowledge
from bot.engine.local import LocalEngine
from bot.flows.controls import current_policy
from bot.flows.pipeline import Pipeline
from bot.helpdesk.zendesk.adapter import ZendeskAdapter
from bot.helpdesk.zendesk.settings import ZendeskSettings
from bot.slack.client import slack_client
from bot.slack.poster import Poster
from bot.store import Store
from tests.support.constants import CHANNEL
from tests.support.fakes import FakeSlack, FakeZendesk


def build_pipeline(*, slack: FakeSlack, zendesk: FakeZendesk, knowledge: Path, database: Path) -> Pipeline:
    settings = Settings(slack_bot_token=slack.token, slack_api_url=slack.url + "/", escalation_channel=CHANNEL,
                        helpdesk_settings=ZendeskSettings(subdomain="acme", webhook_secret="s"))
    helpdesk = ZendeskAdapter(httpx.Client(base_url=zendesk.url, auth=zendesk.auth),
                              webhook_secret="s", agent_url="https://acme.zendesk.com", retry_deadline=2)
    store = Store(database)
    poster = Poster(slack=slack_client(token=settings.slack_bot_token, base_url=settings.slack_api_url), store=store)
    return Pipeline(settings=settings, store=store, helpdesk=helpdesk, poster=poster,
                    engine=LocalEngine(articles=load_knowledge(knowledge)),
                    policy=lambda: current_policy(store, settings.policy))
