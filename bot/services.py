"""The composition root of the core: builds the store, helpdesk adapter, engine, Slack client, pipeline and
workers from Settings. The web layer (`handlers/`) receives one `Services` and injects it into listeners.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient

from bot.config import Settings
from bot.engine import Engine, LocalEngine
from bot.helpdesk import Helpdesk
from bot.helpdesk.zendesk import ZendeskAdapter
from bot.knowledge import load_knowledge
from bot.pipeline import Pipeline, slack_client
from bot.store import Store
from bot.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: Store
    helpdesk: Helpdesk
    engine: Engine
    slack: WebClient
    pipeline: Pipeline
    worker: Worker

    @classmethod
    def build(cls, settings: Settings, *, helpdesk: Helpdesk | None = None, engine: Engine | None = None,
              slack: WebClient | None = None) -> Services:
        store = Store(settings.database_path)
        helpdesk = helpdesk or ZendeskAdapter.from_settings(settings)
        if engine is None:
            articles = load_knowledge(settings.knowledge_path)
            log.info("local engine: %d knowledge articles from %s", len(articles), settings.knowledge_path)
            engine = LocalEngine(articles=articles)
        slack = slack or slack_client(settings)
        pipeline = Pipeline(settings=settings, store=store, helpdesk=helpdesk, engine=engine, slack=slack)
        worker = Worker(store=store, process=pipeline.process, threads=settings.workers)
        return cls(settings=settings, store=store, helpdesk=helpdesk, engine=engine, slack=slack,
                   pipeline=pipeline, worker=worker)
