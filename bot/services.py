"""The composition root of the core: builds the store, helpdesk adapter, engine, Slack client, flows and the
background runner from Settings. The web layer (`handlers/`) receives one `Services` and injects it into
listeners; `start()` and `stop()` bracket the background work.

The engine answers from the KNOWLEDGE_PATH files, the articles and macros synced from the helpdesk
(bot.jobs.knowledge), the resolved past tickets of HISTORY_PATH and the replies agents approved. Its first fit
runs in a background thread, so serve listens at once; when the synced knowledge or the history file changes,
`LiveEngine` fits a new engine from them all in the sync's own thread and swaps it in whole: the pipeline and the
agent actions hold the `LiveEngine`, so that swap is the one place the engine changes.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from slack_sdk import WebClient

from bot.config import Settings
from bot.engine import build_engine
from bot.engine.base import Engine
from bot.engine.knowledge import Article, load_knowledge, with_synced
from bot.engine.local import MIN_CALIBRATION_EXAMPLES, REJECTED
from bot.flows.actions import TEACHING_REJECTIONS, WRITE_KIND, AgentActions
from bot.flows.controls import Controls
from bot.flows.erasure import erase_idle, expire_vectors
from bot.flows.feedback import learned_label
from bot.flows.health import Health, check_credentials, observe
from bot.flows.homes import REFRESH_HOME_KIND, Homes
from bot.flows.lifecycle import Lifecycle
from bot.flows.pipeline import Pipeline
from bot.flows.quality import verdicts
from bot.helpdesk import registry
from bot.helpdesk.base import Helpdesk
from bot.jobs.cards import CardSync
from bot.jobs.knowledge import KnowledgeSync
from bot.jobs.reconcile import Reconciler
from bot.jobs.retention import RetentionSweep
from bot.jobs.runner import Runner
from bot.jobs.worker import Worker
from bot.models import Assessment, Message, Resolution, Ticket, read_tickets
from bot.pacing import ChannelPacer
from bot.slack.client import slack_client
from bot.slack.poster import ERASE_THREAD_KIND, NOTE_KIND, STALE_ROUND_LIMIT, TRANSCRIPT_KIND, Poster
from bot.store import ANNOUNCE_KIND, Store, open_store

log = logging.getLogger(__name__)

# How long a ticket waits for the engine's first fit before its job fails and is retried (bot.jobs.worker).
FIRST_FIT_WAIT_SECONDS = 240.0


@dataclass
class Services:
    settings: Settings
    store: Store
    helpdesk: Helpdesk
    engine: LiveEngine
    slack: WebClient
    poster: Poster
    pipeline: Pipeline
    actions: AgentActions
    controls: Controls
    homes: Homes
    runner: Runner
    health: Health | None = None  # what /healthz and the managers' App Home say about Seam itself

    @classmethod
    def build(cls, settings: Settings, *, helpdesk: Helpdesk | None = None, engine: Engine | None = None,
              slack: WebClient | None = None) -> Services:
        store = open_store(settings.database_path)
        health = Health(store=store, helpdesk=settings.helpdesk)
        # Every helpdesk call's outcome reaches Health: a refused credential shows in /healthz.
        helpdesk = observe(helpdesk or registry.plugin(settings.helpdesk).build(settings), health)
        # An engine given here (tests) is kept as it is; one built here is refitted when the knowledge changes.
        if engine is not None:
            live = LiveEngine(engine)
        else:
            # Read (and check) what the engine is fitted from now, so a bad HISTORY_PATH stops serve with one line;
            # fit it in the background, so serve listens at once (a long history takes a while to fit).
            inputs = EngineInputs.read(settings, store)
            live = LiveEngine.fitting(lambda: fit_engine(settings, store, inputs=inputs, observer=health.engine_call),
                                      fit=lambda: fit_engine(settings, store, observer=health.engine_call),
                                      revision=lambda: engine_revision(settings, store))
        slack = slack or slack_client(token=settings.slack_bot_token, base_url=settings.slack_api_url,
                                      observer=health.slack_call, mask_payment=settings.slack.mask_payment)
        poster = Poster(slack=slack, store=store,
                        pacer=ChannelPacer(rate=settings.slack.posts_per_second, burst=settings.slack.post_burst))
        controls = Controls(store=store, settings=settings,
                            members=lambda group: slack.usergroups_users_list(usergroup=group)["users"],
                            alert=health.alert, uncovered_share=live.uncovered_share, plain_score=live.plain_score)
        homes = Homes(store=store, controls=controls, slack=slack)
        lifecycle = Lifecycle(settings=settings, store=store, helpdesk=helpdesk, poster=poster)
        pipeline = Pipeline(settings=settings, store=store, helpdesk=helpdesk, engine=live, poster=poster,
                            policy=controls.policy, lifecycle=lifecycle, learn=live.learn)
        actions = AgentActions(settings=settings, store=store, helpdesk=helpdesk, slack=slack, poster=poster,
                               learn=live.learn, managers=controls.is_manager, answers=pipeline.answers)
        # `announce`: the quality guard's announcement that it paused automation, queued so it is never lost.
        # `transcript` and `thread_note`: an escalation's thread, queued behind the cards still due
        # (bot.slack.poster); `reminder`, `sla_watch`, `keep_warm`: what follows the post (bot.flows.lifecycle);
        # `helpdesk_write`: an agent action's reply, note or assignment, left by a crash or failed (bot.flows.actions).
        # `erase_thread`: what Seam posted in the thread of an escalation erased on request (bot.flows.erasure);
        # `refresh_home`: an App Home that listed one of its escalations, published again (bot.flows.homes).
        worker = Worker(store=store, handlers={"ticket": pipeline.process, ANNOUNCE_KIND: pipeline.guard.announce,
                                               TRANSCRIPT_KIND: poster.transcript_job, NOTE_KIND: poster.note_job,
                                               WRITE_KIND: actions.write_job,
                                               ERASE_THREAD_KIND: poster.erase_thread_job,
                                               REFRESH_HOME_KIND: homes.refresh_job, **lifecycle.handlers()})
        runner = Runner(store=store, worker=worker, threads=settings.workers)
        # Periodic jobs queue their finds and wake the workers through the runner they run in.
        runner.add_periodic(Reconciler(store=store, helpdesk=helpdesk, interval=settings.reconcile_seconds,
                                       notify=runner.notify))
        # Cards behind their escalation's row (a crash mid-action, an update Slack refused) are caught up.
        runner.add_periodic(CardSync(sweep=poster.refresh_stale, interval=settings.slack.card_sync_interval,
                                     limit=STALE_ROUND_LIMIT))
        # With [retention] erase_after set, idle tickets' conversations are erased (bot.flows.erasure).
        erase_after = settings.retention.erase_after
        runner.add_periodic(RetentionSweep(sweep=functools.partial(erase_idle, store, after=erase_after),
                                           expire=functools.partial(expire_vectors, store, after=erase_after),
                                           enabled=erase_after > 0))
        runner.add_periodic(KnowledgeSync(store=store, helpdesk=helpdesk, interval=settings.knowledge_sync_seconds,
                                          refresh=live.refresh))
        return cls(settings=settings, store=store, helpdesk=helpdesk, engine=live, slack=slack, poster=poster,
                   pipeline=pipeline, actions=actions, controls=controls, homes=homes, runner=runner, health=health)

    def check_credentials(self) -> list[str]:
        """Slack's token, the escalation channel (the app a member) and the helpdesk's credentials, before
        serving: ConfigError in one line when one is refused (bot.flows.health). What was found, for the log."""
        return check_credentials(slack=self.slack, helpdesk=self.helpdesk, settings=self.settings)

    def start(self) -> None:
        """Start the background work, after putting right what the last process left half done."""
        self.poster.refresh_interrupted()
        if self.health is not None:
            self.health.start()
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop()


class LiveEngine:
    """The engine `serve` answers with, swapped whole when the synced knowledge, the history or the number of
    learnt replies changes (`engine_revision`).

    `assess` asks the current engine (an answer still holding a template placeholder is drafted at most: the
    policy sees to that); while the first fit runs (`fitting`: serve listens meanwhile) it waits for it. `learn`
    teaches the current engine an agent's reply; one learnt while a new engine is being fitted is taught to the
    new one too, so a swap loses none (the fit may also have read it from the store: the new engine then holds it
    twice, which only weighs it a little more). `refresh` refits — files, synced articles, the history and learnt
    replies, read afresh — when the revision is not the one the current engine was fitted at, and swaps the new
    engine in; until then, and if the fit fails, the old one answers. The knowledge sync's rounds refresh, and so
    does a learnt reply that moved the revision (in the background). A first fit that failed leaves no engine:
    tickets fail and are retried, and each refresh fits again."""

    def __init__(self, engine: Engine | None, *, fit: Callable[[], tuple[Engine, str]] | None = None,
                 revision: Callable[[], str] | None = None, fitted_at: str | None = None) -> None:
        self._engine = engine
        self._fit = fit
        self._revision = revision
        self.fitted_at = fitted_at  # the revision the current engine was fitted at
        self._swap = threading.Lock()  # guards the engine and the replies learnt during a fit
        self._fitting = threading.Lock()  # one fit at a time
        self._learnt_meanwhile: list[tuple[str, str, str, str | None]] | None = None
        self._settled = threading.Event()  # the first fit is over, well or not
        if engine is not None:
            self._settled.set()
        self.fit_error: str | None = None  # why the last fit failed
        self._refitting = threading.Lock()  # held by the background refit a learnt reply started
        self._failed_at: str | None = None  # the revision that background refit last failed at

    @classmethod
    def fitted(cls, fit: Callable[[], tuple[Engine, str]], *, revision: Callable[[], str]) -> LiveEngine:
        engine, fitted_at = fit()
        return cls(engine, fit=fit, revision=revision, fitted_at=fitted_at)

    @classmethod
    def fitting(cls, first: Callable[[], tuple[Engine, str]], *, fit: Callable[[], tuple[Engine, str]],
                revision: Callable[[], str]) -> LiveEngine:
        """A live engine whose first fit (`first`) runs in a background thread; `fit` is every later one."""
        live = cls(None, fit=fit, revision=revision)
        live._learnt_meanwhile = []
        threading.Thread(target=live._first_fit, args=(first,), name="seam-engine-fit", daemon=True).start()
        return live

    def _first_fit(self, first: Callable[[], tuple[Engine, str]]) -> None:
        started = time.monotonic()
        with self._fitting:
            try:
                engine, fitted_at = first()
            except Exception as exc:
                with self._swap:
                    self._learnt_meanwhile = None
                self.fit_error = f"{type(exc).__name__}: {exc}"
                log.exception("the engine could not be fitted; tickets wait and are retried, and the next "
                              "refresh fits again")
            else:
                replayed = self._install(engine, fitted_at)
                log.info("engine ready after %.1f s (%d replies learnt during the fit replayed)",
                         time.monotonic() - started, replayed)
            finally:
                self._settled.set()

    @property
    def current(self) -> Engine | None:
        return self._engine

    @property
    def ready(self) -> bool:
        return self._engine is not None

    def uncovered_share(self) -> tuple[float, bool] | None:
        """The share of uncovered questions the current local engine scores for, and whether reopened automatic
        answers set it; None when confidence comes from elsewhere (OpenAI, or too little history to calibrate)."""
        engine = self._engine
        if not getattr(engine, "calibrated", False):
            return None
        return engine.uncovered_share, engine.share_from_reopens

    def plain_score(self) -> bool:
        """Does the current engine score plainly, having too little history to calibrate on (a local engine's
        first days on knowledge alone)?"""
        return getattr(self._engine, "calibrated", True) is False

    def assess(self, ticket: Ticket) -> Assessment:
        if not self._settled.wait(FIRST_FIT_WAIT_SECONDS):
            raise RuntimeError("the engine is still being fitted")
        engine = self._engine
        if engine is None:
            raise RuntimeError(f"no engine: the fit failed ({self.fit_error})")
        return engine.assess(ticket)

    def learn(self, customer_text: str, answer_source: str, answer: str, *,
              requester_name: str | None = None) -> None:
        with self._swap:
            engine = self._engine
            if self._learnt_meanwhile is not None:
                self._learnt_meanwhile.append((customer_text, answer_source, answer, requester_name))
        learn = getattr(engine, "learn", None)
        if learn is not None:
            learn(customer_text, answer_source, answer, requester_name=requester_name)
        self._refit_when_due()

    def _refit_when_due(self) -> None:
        """After a reply is learnt: if the revision moved (enough learnt replies to calibrate on, then each
        doubling, `engine_revision`; or the knowledge or history), refit in the background now rather than at
        the knowledge sync's next round, an hour away by default and never with syncing off. A learnt reply
        joins the index at once but not the calibrator, and only a refit turns a knowledge-only engine's plain
        score into a probability. Not again for a revision whose refit failed (the sync's rounds still try)."""
        if self._revision is None or self._fit is None or not self._settled.is_set():
            return
        try:
            revision = self._revision()
        except Exception:
            log.exception("could not tell whether the engine needs a refit; the next reply asks again")
            return
        if revision in (self.fitted_at, self._failed_at) or not self._refitting.acquire(blocking=False):
            return

        def refit() -> None:
            try:
                self.refresh()
            except Exception:
                self._failed_at = revision
                log.exception("the engine could not be refitted; the current one keeps answering")
            finally:
                self._refitting.release()

        threading.Thread(target=refit, name="seam-engine-refit", daemon=True).start()

    def refresh(self) -> bool:
        """Refit and swap when the knowledge or the history changed since the current engine was fitted (or
        when there is no engine yet, the first fit having failed); True if it did."""
        if self._fit is None or self._revision is None or not self._settled.is_set():
            return False
        with self._fitting:
            if self._engine is not None and self._revision() == self.fitted_at:
                return False
            with self._swap:
                self._learnt_meanwhile = []
            try:
                engine, fitted_at = self._fit()
            except BaseException as exc:
                with self._swap:
                    self._learnt_meanwhile = None
                self.fit_error = f"{type(exc).__name__}: {exc}"
                raise
            replayed = self._install(engine, fitted_at)
            log.info("engine refitted on the changed knowledge, history or learnt replies (%s; %d replies learnt "
                     "during the fit replayed)", "calibrated" if getattr(engine, "calibrated", False)
                     else "uncalibrated", replayed)
            return True

    def _install(self, engine: Engine, fitted_at: str) -> int:
        """Swap the new engine in, teach it the replies learnt while it was fitted; how many."""
        with self._swap:
            meanwhile, self._learnt_meanwhile = self._learnt_meanwhile or [], None
            self._engine, self.fitted_at, self.fit_error = engine, fitted_at, None
        learn = getattr(engine, "learn", None)
        for text, source, answer, name in meanwhile if learn is not None else ():
            learn(text, source, answer, requester_name=name)
        return len(meanwhile)


@dataclass(frozen=True)
class EngineInputs:
    """What an engine is fitted from, and the revision they were read at (read first: a change made during the
    fit shows as a new revision, and the next refresh fits again)."""

    articles: list[Article]
    history: list[Ticket]
    revision: str

    @classmethod
    def read(cls, settings: Settings, store: Store) -> EngineInputs:
        """The KNOWLEDGE_PATH files, the articles and macros synced from this helpdesk, the resolved past tickets
        of HISTORY_PATH, the replies agents approved and the questions of drafts they rejected (learned_tickets).
        Raises ConfigError on a file that cannot be read."""
        revision = engine_revision(settings, store)
        files = load_knowledge(settings.knowledge_path)
        synced = store.synced_articles(settings.helpdesk)
        past = past_tickets(settings.history_path)
        learned = learned_tickets(store)
        log.info("%d knowledge articles from %s, %d synced from %s, %d resolved past tickets from %s, %d replies "
                 "and rejections learned from agents", len(files), settings.knowledge_path, len(synced),
                 settings.helpdesk, len(past), settings.history_path, len(learned))
        return cls(articles=with_synced(files, synced), history=[*past, *learned], revision=revision)


def fit_engine(settings: Settings, store: Store, *, inputs: EngineInputs | None = None,
               observer: Callable[[str | None], None] | None = None) -> tuple[Engine, str]:
    """An engine fitted on `inputs` (read now by default: see EngineInputs), and the revision they were read at;
    `observer` hears whether the OpenAI engine's server refuses Seam's settings (bot.engine.build_engine)."""
    inputs = inputs or EngineInputs.read(settings, store)
    engine = build_engine(settings, articles=inputs.articles, history=inputs.history,
                          embedding_cache=store.embedding_cache,
                          feedback=lambda: verdicts(store, settings.quality_guard), observer=observer)
    return engine, inputs.revision


def engine_revision(settings: Settings, store: Store) -> str:
    """What the engine is fitted from, as a version: the synced knowledge's revision, the HISTORY_PATH file's
    size and modification time (a history file replaced under a running serve is refitted on too), the
    learnt replies counted in steps (`learned_step`), and the latest erasure (`python -m bot forget`: the refit
    no longer holds the erased replies)."""
    try:
        stat = Path(settings.history_path).stat() if settings.history_path else None
    except OSError:
        stat = None  # gone: the refit says so (and the current engine keeps answering)
    history = f"{stat.st_size}:{stat.st_mtime_ns}" if stat else "-"
    learnt = learned_step(store.learned_count())
    return (f"{store.knowledge_revision(settings.helpdesk)}|history {history}|learnt {learnt}"
            f"|erased {store.last_erasure()}")


def learned_step(count: int) -> int:
    """The learnt replies in steps that each double the last, from the fewest the engine calibrates on (50): 0,
    50, 100, 200, ... A learnt reply joins the index at once; a refit, which also refits the calibrator, is
    due at each step — often enough to turn approved replies into calibration, rarely enough for a long
    history (a refit of 10,000 past tickets costs about 17 s of CPU on serve's threads)."""
    if count < MIN_CALIBRATION_EXAMPLES:
        return 0
    step = MIN_CALIBRATION_EXAMPLES
    while step * 2 <= count:
        step *= 2
    return step


def past_tickets(path: str | None) -> list[Ticket]:
    """The resolved tickets of HISTORY_PATH (ticket JSONL: `python -m bot import … --resolved-only` writes it,
    `simulate --history` reads it), so serve decides with the engine the simulation measured; none without a
    path. Rows that cannot be read are skipped and counted in the log; a missing or empty file is an error."""
    if not path:
        return []
    tickets, problems = read_tickets(path)
    if problems:
        log.warning("%s: %d rows skipped, e.g. %s", path, len(problems), problems[0])
    return [t for t in tickets if t.resolution is not None]


def learned_tickets(store: Store) -> list[Ticket]:
    """Replies agents approved or edited, or wrote in the helpdesk to resolve an escalated ticket
    (bot.flows.answered), as resolved tickets the engine can answer from, and the questions of drafts rejected as
    wrong or not to be automated, which it must not answer again (the feedback loop)."""
    replies = [(row["id"], Ticket(id=f"seam-feedback-{row['escalation_id']}",
                                  messages=(Message("customer", row["customer_text"]),),
                                  requester_name=row["requester_name"],
                                  resolution=Resolution(answer_id=learned_label(action=row["action"],
                                                                                answer_source=row["answer_source"],
                                                                                escalation_id=row["escalation_id"],
                                                                                draft=row["draft"],
                                                                                final_text=row["final_text"],
                                                                                requester_name=row["requester_name"]),
                                                        answer=row["final_text"])))
               for row in store.learned_answers()]
    rejected = [(row["id"], Ticket(id=f"seam-rejected-{row['escalation_id']}",
                                   messages=(Message("customer", row["customer_text"]),),
                                   resolution=Resolution(answer_id=REJECTED)))
                for row in store.taught_rejections(TEACHING_REJECTIONS)]
    # In the order agents acted: a reply sent after a rejection of the same question lifts it (bot.engine.local).
    return [ticket for _, ticket in sorted([*replies, *rejected], key=lambda pair: pair[0])]
