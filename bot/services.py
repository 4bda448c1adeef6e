"""The composition root of the core: builds the store, helpdesk adapter, engine, Slack client, flows and the
background runner from Settings. The web layer (`handlers/`) receives one `Services` and injects it into
listeners; `start()` and `stop()` bracket the background work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient

from bot.config import Settings
from bot.engine import build_engine
from bot.engine.base import Engine
from bot.engine.knowledge import load_knowledge
from bot.flows.actions import AgentActions, learned_label
from bot.flows.controls import Controls
from bot.flows.pipeline import Pipeline
from bot.helpdesk import registry
from bot.helpdesk.base import Helpdesk
from bot.jobs.reconcile import Reconciler
from bot.jobs.runner import Runner
from bot.jobs.worker import Worker
from bot.models import Message, Resolution, Ticket
from bot.pacing import ChannelPacer
from bot.slack.client import slack_client
from bot.slack.poster import Poster
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: Store
    helpdesk: Helpdesk
    engine: Engine
    slack: WebClient
    poster: Poster
    pipeline: Pipeline
    actions: AgentActions
    controls: Controls
    runner: Runner

    @classmethod
    def build(cls, settings: Settings, *, helpdesk: Helpdesk | None = None, engine: Engine | None = None,
              slack: WebClient | None = None) -> Services:
        store = Store(settings.database_path)
        helpdesk = helpdesk or registry.plugin(settings.helpdesk).build(settings)
        if engine is None:
            articles = load_knowledge(settings.knowledge_path)
            learned = learned_tickets(store)
            log.info("%d knowledge articles from %s, %d replies learned from agents",
                     len(articles), settings.knowledge_path, len(learned))
            engine = build_engine(settings, articles=articles, history=learned)
        slack = slack or slack_client(token=settings.slack_bot_token, base_url=settings.slack_api_url)
        poster = Poster(slack=slack, store=store,
                        pacer=ChannelPacer(rate=settings.slack.posts_per_second, burst=settings.slack.post_burst))
        controls = Controls(store=store, settings=settings,
                            members=lambda group: slack.usergroups_users_list(usergroup=group)["users"])
        pipeline = Pipeline(settings=settings, store=store, helpdesk=helpdesk, engine=engine, poster=poster,
                            policy=controls.policy)
        actions = AgentActions(settings=settings, store=store, helpdesk=helpdesk, slack=slack, poster=poster,
                               learn=getattr(engine, "learn", None), managers=controls.is_manager)
        worker = Worker(store=store, handlers={"ticket": pipeline.process})
        runner = Runner(store=store, worker=worker, threads=settings.workers)
        # Periodic jobs queue their finds and wake the workers through the runner they run in.
        runner.add_periodic(Reconciler(store=store, helpdesk=helpdesk, interval=settings.reconcile_seconds,
                                       notify=runner.notify))
        return cls(settings=settings, store=store, helpdesk=helpdesk, engine=engine, slack=slack, poster=poster,
                   pipeline=pipeline, actions=actions, controls=controls, runner=runner)

    def start(self) -> None:
        """Start the background work, after putting right what the last process left half done."""
        self.poster.refresh_interrupted()
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop()


def learned_tickets(store: Store) -> list[Ticket]:
    """Replies agents approved or edited, as resolved tickets the engine can answer from (the feedback loop)."""
    return [Ticket(id=f"seam-feedback-{row['escalation_id']}", messages=(Message("customer", row["customer_text"]),),
                   resolution=Resolution(answer_id=learned_label(action=row["action"],
                                                                 answer_source=row["answer_source"],
                                                                 escalation_id=row["escalation_id"]),
                                         answer=row["final_text"]))
            for row in store.learned_answers()]
