"""The composition root of the core: builds the store, helpdesk adapter, engine, Slack client, pipeline and
workers from Settings. The web layer (`handlers/`) receives one `Services` and injects it into listeners.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk import WebClient

from bot.flows.actions import AgentActions, learned_label
from bot.config import Settings
from bot.engine.local import Engine, LocalEngine
from bot.helpdesk.base import Helpdesk
from bot.helpdesk.zendesk.adapter import ZendeskAdapter
from bot.engine.knowledge import Article, load_knowledge
from bot.flows.controls import Controls
from bot.engine.openai import OpenAIEngine
from bot.models import Message, Resolution, Ticket
from bot.pacing import ChannelPacer
from bot.flows.pipeline import Pipeline, slack_client
from bot.jobs.reconcile import Reconciler
from bot.store import Store
from bot.jobs.worker import Worker

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
    actions: AgentActions
    controls: Controls
    reconciler: Reconciler

    @classmethod
    def build(cls, settings: Settings, *, helpdesk: Helpdesk | None = None, engine: Engine | None = None,
              slack: WebClient | None = None) -> Services:
        store = Store(settings.database_path)
        helpdesk = helpdesk or ZendeskAdapter.from_settings(settings)
        if engine is None:
            articles = load_knowledge(settings.knowledge_path)
            learned = learned_tickets(store)
            log.info("%d knowledge articles from %s, %d replies learned from agents",
                     len(articles), settings.knowledge_path, len(learned))
            engine = build_engine(settings, articles=articles, history=learned)
        slack = slack or slack_client(settings)
        pacer = ChannelPacer(rate=settings.posts_per_second, burst=settings.post_burst)
        pipeline = Pipeline(settings=settings, store=store, helpdesk=helpdesk, engine=engine, slack=slack,
                            pacer=pacer)
        worker = Worker(store=store, process=pipeline.process, threads=settings.workers)
        controls = Controls(store=store, settings=settings,
                            members=lambda group: slack.usergroups_users_list(usergroup=group)["users"])
        actions = AgentActions(settings=settings, store=store, helpdesk=helpdesk, slack=slack,
                               learn=getattr(engine, "learn", None), managers=controls.is_manager)
        reconciler = Reconciler(store=store, helpdesk=helpdesk, interval=settings.reconcile_seconds,
                                notify=worker.notify)
        return cls(settings=settings, store=store, helpdesk=helpdesk, engine=engine, slack=slack,
                   pipeline=pipeline, worker=worker, actions=actions, controls=controls, reconciler=reconciler)


def build_engine(settings: Settings, *, articles: Sequence[Article], history: Sequence[Ticket]) -> Engine:
    """The engine the configuration asks for: OpenAI's when OPENAI_API_KEY is set (grounded in the local
    engine's retrieval), else the local one."""
    local = LocalEngine(articles=articles, history=history)
    if settings.openai_api_key:
        log.info("engine: OpenAI model %s at %s", settings.openai_model, settings.openai_base_url or "the default URL")
        return OpenAIEngine.from_settings(settings, retriever=local)
    log.info("engine: local (%s)", "calibrated on history" if local.calibrated else "uncalibrated: too little history")
    return local


def learned_tickets(store: Store) -> list[Ticket]:
    """Replies agents approved or edited, as resolved tickets the engine can answer from (the feedback loop)."""
    return [Ticket(id=f"seam-feedback-{row['escalation_id']}", messages=(Message("customer", row["customer_text"]),),
                   resolution=Resolution(answer_id=learned_label(action=row["action"],
                                                                 answer_source=row["answer_source"],
                                                                 escalation_id=row["escalation_id"]),
                                         answer=row["final_text"]))
            for row in store.learned_answers()]
