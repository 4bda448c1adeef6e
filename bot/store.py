"""The SQLite store: every table Seam keeps, its migrations, and every query — nothing else in Seam writes SQL.

Tables: tickets (seen), events (the durable job queue: accepted webhooks and reconciliation finds), decisions,
escalations (one Slack thread per ticket event), effects (external side effects, recorded before and after each
call so a retry never repeats one), feedback, settings, exclusions, slack_events, audit_log, automatic_answers
(what Seam answered alone, and whether the customer came back unsatisfied), direct_messages (where Seam DMed
someone about an escalation), home_views (whose App Home lists which escalations), embedding_cache (sentence
vectors by model and text hash) and synced_knowledge (articles and macros synced from the helpdesk). New tables
come as new migrations appended to `MIGRATIONS`; an applied migration is never edited.

Rows leave as typed records (`bot.models.Event`, `bot.models.Escalation`) or, for reports, plain dicts of
named columns. One connection per thread (sqlite3 connections must not cross threads), WAL so readers never
block the writer, and `BEGIN IMMEDIATE` where a read decides a write, so two workers cannot both claim the same
thing. Every statement's text parameters are made encodable on the way in (`EncodableConnection`): text from
outside (a ticket's subject, a manager's rule, an agent's reply) is always stored, never a UnicodeEncodeError.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from bot.errors import ConfigError
from bot.models import Article, Escalation, EscalationState, Event, EventState
from bot.text import encodable, has_placeholder, iso, seconds_since, utcnow

MIGRATIONS = Migrations("seam")
T = TypeVar("T")

# A job whose processing failed this many times for a reason of its own (a bug, a 4xx, a crash while it ran) stops
# being retried and waits for a person (`dead`). Failures because Slack or the helpdesk was down (bot.errors
# `transient`) do not count: they are retried until the job has waited MAX_OUTAGE.
MAX_ATTEMPTS = 5
# Seconds before a failed job's next try: 5 s, then four times longer each time — 5, 20, 80, 320 — and never longer
# than MAX_BACKOFF (320 s, the fourth step: a job failing for its own reason keeps the schedule it always had and
# is dead at its fifth failure; only a job waiting out an outage stays at the cap, tried every 320 s). The cap
# keeps the catch-up after an outage within about five minutes, and costs little while it lasts: 500 jobs waiting
# are under two tries a second, each answered at once or bounded by the clients' timeouts, and jobs that failed
# before leave a worker free for new tickets (bot.jobs.worker `max_retrying`).
BACKOFF_BASE = 5.0
MAX_BACKOFF = BACKOFF_BASE * 4 ** 3
# How long a job failing because a service is down keeps being retried, counted from when it first came due
# (`due_at`): Slack's and the helpdesks' longest outages last hours, not a day. After that it is dead like any other.
MAX_OUTAGE = timedelta(hours=24)
# Values per `in (…)` look-up (`_chunks`): under SQLite's oldest limit of 999 bound variables.
LOOKUP_CHUNK = 500
# Escalation states in which an agent owns the work but has not finished it.
OWNED_STATES = (EscalationState.CLAIMED, EscalationState.SENDING, EscalationState.FAILED)
# Escalation states in which the ticket waits on a person, so the customer's next message joins the escalation
# (`live_escalation`): every unfinished state but SENDING, whose reply is on its way.
WAITING_STATES = tuple(s for s in EscalationState if not s.finished and s != EscalationState.SENDING)
FEEDBACK_COLUMNS = ("id", "created_at", "user_id", "action", "escalation_id", "ticket_key", "confidence",
                    "answer_source", "draft", "final_text", "edit_distance", "reason")
# The job kind of an announcement queued by the quality guard (retried like any job until Slack takes it).
ANNOUNCE_KIND = "announce"
# The feedback rows that are replies the engine learns from: sent by a person (from Slack, or written in the
# helpdesk and resolving the ticket: bot.flows.answered), with the customer's words.
_LEARNED = ("action in ('approve', 'edit', 'helpdesk_reply') and customer_text is not null"
            " and final_text is not null")


def retry_delay(failures: int) -> float:
    """Seconds before the next try of a job that has now failed `failures` times (of one sort: permanent, or while
    a service was down): BACKOFF_BASE × 4^(failures − 1), at most MAX_BACKOFF."""
    return min(BACKOFF_BASE * 4 ** max(failures - 1, 0), MAX_BACKOFF)


def _chunks(items: Sequence[T], size: int = LOOKUP_CHUNK) -> Iterator[list[T]]:
    """`items` a few hundred at a time, for `in (…)` look-ups under SQLite's limit of bound variables."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def ticket_key(helpdesk: str, ticket_id: str) -> str:
    """How the store names a ticket across helpdesks."""
    return f"{helpdesk}:{ticket_id}"


def requester_key(email: str) -> str:
    """How the store matches a requester's email address: Unicode's canonical caseless match (decomposed, case
    folded, decomposed again), so "ZOË.STRASSE@…" finds "zoë.straße@…" whichever way its "ë" was encoded. Nothing
    looser: a plus-address, or a look-alike letter from another script, is another person's address."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", email).casefold())


def turn_key(helpdesk: str, ticket_id: str, comment: str | int) -> str:
    """How the store names one comment of a ticket (its id, or its position when the helpdesk gives none): the
    event that handles a customer's comment claims its turn (`claim_turn`), once."""
    return f"{helpdesk}:{ticket_id}:{comment}"


@MIGRATIONS()
def m001_initial(db: Database) -> None:
    db["tickets"].create({
        "key": str, "helpdesk": str, "ticket_id": str, "subject": str, "requester": str, "priority": str,
        "first_seen_at": str, "last_seen_at": str,
    }, pk="key")
    db["events"].create({
        "id": int, "helpdesk": str, "dedupe_key": str, "ticket_id": str, "turn_key": str, "body": str,
        "received_at": str, "state": str, "attempts": int, "lease_until": str, "next_attempt_at": str,
        "last_error": str, "outcome": str, "processed_at": str,
    }, pk="id", not_null={"helpdesk", "dedupe_key", "ticket_id", "state"}, defaults={"attempts": 0})
    db["events"].create_index(["dedupe_key"], unique=True)
    db["events"].create_index(["turn_key"], unique=True)
    db["events"].create_index(["state", "next_attempt_at"])
    db["decisions"].create({
        "id": int, "event_id": int, "ticket_key": str, "route": str, "confidence": float, "reasons": str,
        "answer": str, "answer_source": str, "summary": str, "evidence": str, "created_at": str,
    }, pk="id", foreign_keys=[("event_id", "events", "id")])
    db["decisions"].create_index(["event_id"])
    db["escalations"].create({
        "id": int, "event_id": int, "decision_id": int, "ticket_key": str, "ticket_id": str, "channel": str,
        "ts": str, "state": str, "owner": str, "draft": str, "confidence": float, "created_at": str,
        "updated_at": str,
    }, pk="id", foreign_keys=[("event_id", "events", "id"), ("decision_id", "decisions", "id")])
    db["escalations"].create_index(["event_id"], unique=True)
    db["escalations"].create_index(["ticket_key"])
    db["effects"].create({
        "key": str, "kind": str, "state": str, "result": str, "started_at": str, "finished_at": str,
    }, pk="key")
    db["feedback"].create({
        "id": int, "escalation_id": int, "ticket_key": str, "user_id": str, "action": str, "confidence": float,
        "draft": str, "final_text": str, "edit_distance": float, "reason": str, "created_at": str,
    }, pk="id", foreign_keys=[("escalation_id", "escalations", "id")])
    db["settings"].create({"key": str, "value": str, "updated_by": str, "updated_at": str}, pk="key")
    db["audit_log"].create({"id": int, "at": str, "actor": str, "action": str, "detail": str}, pk="id")


@MIGRATIONS()
def m002_agent_actions(db: Database) -> None:
    """What agents' actions need: who sent what, why a draft was rejected, the last failure, the card to
    re-render the message, and the customer's words for learning from approved replies."""
    escalations = db["escalations"]
    for column in ("sent_by", "sent_text", "send_action", "reject_reason", "last_error", "card", "customer_text"):
        escalations.add_column(column, str)
    escalations.add_column("claimed_at", str)
    escalations.add_column("finished_at", str)
    db["feedback"].add_column("answer_source", str)
    db["feedback"].add_column("customer_text", str)
    db["feedback"].create_index(["action"])


@MIGRATIONS()
def m003_manager_controls(db: Database) -> None:
    """Exclusions managers add at run time (kept after removal, for the audit trail)."""
    db["exclusions"].create({"id": int, "rule": str, "created_by": str, "created_at": str, "removed_by": str,
                             "removed_at": str}, pk="id")
    db["audit_log"].create_index(["at"])
    db["decisions"].create_index(["created_at"])


@MIGRATIONS()
def m004_slack_events(db: Database) -> None:
    """Slack event ids already handled: Slack redelivers an event it thinks we missed (X-Slack-Retry-Num)."""
    db["slack_events"].create({"event_id": str, "received_at": str}, pk="event_id")


@MIGRATIONS()
def m005_job_kinds(db: Database) -> None:
    """Jobs of more kinds than ticket events share the queue; existing rows are ticket events."""
    db["events"].add_column("kind", str, not_null_default="ticket")


@MIGRATIONS()
def m006_automatic_answers(db: Database) -> None:
    """Each public reply Seam sent on its own, and whether the customer reopened the ticket within the quality
    guard's window (`reopened_at`, the event that showed it, and why)."""
    db["automatic_answers"].create({
        "id": int, "ticket_key": str, "ticket_id": str, "event_id": int, "answer_source": str, "confidence": float,
        "answered_at": str, "reopened_at": str, "reopen_event_id": int, "reopen_reason": str,
    }, pk="id", not_null={"ticket_key", "ticket_id", "event_id", "answered_at"})
    db["automatic_answers"].create_index(["event_id"], unique=True)
    db["automatic_answers"].create_index(["ticket_key", "id"])
    db["automatic_answers"].create_index(["answered_at"])


@MIGRATIONS()
def m007_embedding_cache(db: Database) -> None:
    """Sentence vectors by model and text hash (bot.engine.embeddings), so a text is embedded once."""
    db["embedding_cache"].create({"model": str, "text_hash": str, "vector": bytes, "created_at": str},
                                 pk=("model", "text_hash"), not_null={"vector"})


@MIGRATIONS()
def m008_knowledge(db: Database) -> None:
    """Help-centre articles and macros synced from the helpdesk (bot.jobs.knowledge): one row per helpdesk and
    id, its clean text, whether it still holds a template placeholder, and when it was added, changed, last
    seen and retired."""
    db["synced_knowledge"].create({
        "helpdesk": str, "article_id": str, "kind": str, "title": str, "body": str, "needs_person": int,
        "content_hash": str, "source_updated_at": str, "added_at": str, "changed_at": str, "synced_at": str,
        "retired_at": str,
    }, pk=("helpdesk", "article_id"), not_null={"kind", "title", "body", "content_hash", "synced_at"},
        defaults={"needs_person": 0})
    db["synced_knowledge"].create_index(["helpdesk", "retired_at"])


@MIGRATIONS()
def m009_escalation_lifecycle(db: Database) -> None:
    """What happens to an escalation after its post: the route that chose its channel and whom it mentions,
    the customer told a person will follow up, reminders while unclaimed, the SLA watched, keep-warm updates."""
    escalations = db["escalations"]
    for column in ("route", "mention", "customer_notified_at", "reminded_at", "manager_paged_at", "sla_due_at",
                   "sla_warned_at", "sla_breached_at", "last_keep_warm_at"):
        escalations.add_column(column, str)
    escalations.add_column("keep_warm_sent", int, not_null_default=0)
    escalations.create_index(["state", "created_at"])


@MIGRATIONS()
def m010_job_priority(db: Database) -> None:
    """Jobs due at the same time run in order of `priority` (lower first), then of arrival: a transcript (1)
    waits while a new escalation's card (a ticket job, 0) is due."""
    db["events"].add_column("priority", int, not_null_default=0)


@MIGRATIONS()
def m011_answer_calibration(db: Database) -> None:
    """The local engine's two calibrated parts of each automatic answer's confidence (bot.models.Assessment
    `calibration`), so the verdicts on them can re-fit the share of uncovered questions (bot.engine.local
    `share_from_feedback`); null for answers another engine made (and, before m012, for one whose decision a
    retry read back from the decisions table)."""
    for column in ("p_right", "p_uncovered"):
        db["automatic_answers"].add_column(column, float)


@MIGRATIONS()
def m012_decision_calibration(db: Database) -> None:
    """The same two parts on the decision, so a retry that reads the decision back (a crash after deciding)
    records its automatic answer with them, and the verdict on it counts."""
    for column in ("p_right", "p_uncovered"):
        db["decisions"].add_column(column, float)


# An escalation whose card in Slack is behind its row (bot.slack.poster `refresh_stale`): posted, and the row's
# version its card last showed (`card_synced_at`) is not the row's `updated_at`. The partial index below has this
# same condition, so finding the stale cards reads only them.
CARD_STALE = "card_synced_at is not updated_at"


@MIGRATIONS()
def m013_card_sync(db: Database) -> None:
    """Which version of the escalation's row its card in Slack shows: the row's `updated_at` as it was rendered
    (chat.update, or the first post). A card whose row changed since is caught up by the poster's sweep. The rows
    already there are taken as shown: an upgrade must not send a burst of updates for old finished escalations."""
    db["escalations"].add_column("card_synced_at", str)
    db.execute("update escalations set card_synced_at = updated_at")
    db.execute(f"create index escalations_card_stale on escalations (updated_at, id) where {CARD_STALE}")


# A job's ticket as the store names tickets (`ticket_key`): the expression m014 indexes, written the same way in
# the queries that use the index.
EVENT_TICKET_KEY = "helpdesk || ':' || ticket_id"
# The escalation columns a step after the post sets (bot.flows.lifecycle), in `lifecycle_counts`' order.
LIFECYCLE_COLUMNS = ("reminded_at", "manager_paged_at", "sla_warned_at", "sla_breached_at")


@MIGRATIONS()
def m014_erasure(db: Database) -> None:
    """When a ticket's conversation was erased (bot.flows.erasure): `python -m bot forget`, or `[retention]` once
    nothing happened on the ticket for a while; the partial index finds the tickets retention has still to erase,
    `tickets_erased` the latest erasure (the engine's revision), the last a ticket's jobs."""
    db["tickets"].add_column("erased_at", str)
    db.execute("create index tickets_to_retain on tickets (last_seen_at) where erased_at is null")
    db.execute("create index tickets_erased on tickets (erased_at)")
    # Erasure finds a ticket's jobs by its key, as the store names tickets (`ticket_key`).
    db.execute(f"create index events_ticket_key on events ({EVENT_TICKET_KEY})")


# A ticket whose conversation Seam holds: never erased, or written on again since its last erasure (whose time
# `erased_at` keeps, the engine's revision). The partial index m015 makes has this same condition, so retention's
# look-up (`idle_tickets`) reads only these tickets.
HOLDS_TEXT = "(erased_at is null or erased_at < last_seen_at)"


@MIGRATIONS()
def m015_retention_after_erasure(db: Database) -> None:
    """m014's index left out every ticket ever erased, so one the customer wrote on again was never erased again:
    it now holds the tickets that have text again too."""
    db.execute("drop index tickets_to_retain")
    db.execute(f"create index tickets_to_retain on tickets (last_seen_at) where {HOLDS_TEXT}")


@MIGRATIONS()
def m016_monitoring_indexes(db: Database) -> None:
    """What `/metrics` and `/escalation stats` count without reading every row (bench/metrics_scrape.py): decisions
    by route, and the few escalations that were reminded, paged, warned or breached (partial indexes: a row
    enters one only when that happens)."""
    db.execute("create index decisions_route on decisions (route)")
    for column in LIFECYCLE_COLUMNS:
        db.execute(f"create index escalations_{column} on escalations ({column}) where {column} is not null")


@MIGRATIONS()
def m017_direct_messages(db: Database) -> None:
    """Where Seam sent a DM about an escalation (the owner's, on claim or reassign, holds its subject and summary),
    so an erasure can delete it: the conversation and ts chat.postMessage answered. A row goes once its message
    is deleted."""
    db["direct_messages"].create({"id": int, "escalation_id": int, "channel": str, "ts": str, "sent_at": str},
                                 pk="id", not_null={"escalation_id", "channel", "ts"},
                                 foreign_keys=[("escalation_id", "escalations", "id")])
    db["direct_messages"].create_index(["escalation_id"])


@MIGRATIONS()
def m018_embedding_cache_age(db: Database) -> None:
    """The embedding cache by when a vector was made: an erasure drops the vectors made since its tickets came
    (`erase_tickets`), retention those older than `erase_after` (`expire_vectors`), without reading every row."""
    db.execute("create index embedding_cache_created on embedding_cache (created_at)")


@MIGRATIONS()
def m019_requester_key(db: Database) -> None:
    """Each ticket's requester as `forget --email` matches it (`requester_key`: SQLite's lower() folds ASCII
    only), indexed by helpdesk so the look-up reads only that requester's tickets."""
    db["tickets"].add_column("requester_key", str)
    db.conn.executemany("update tickets set requester_key = ? where key = ?", [
        (requester_key(requester), key)
        for key, requester in db.execute("select key, requester from tickets where requester is not null")])
    db.execute("create index tickets_requester on tickets (helpdesk, requester_key) where requester_key is not null")


@MIGRATIONS()
def m020_job_due_at(db: Database) -> None:
    """When each job first came due (`due_at`): its reception, or a scheduled job's run-at time. The queue's age
    (`queue_stats`: /healthz, /metrics) counts from it, so a reminder scheduled for an hour from now is not a job
    an hour old, and a retry's backoff does not reset it."""
    db["events"].add_column("due_at", str)
    db.execute("update events set due_at = case when attempts = 0 and next_attempt_at > received_at"
               " then next_attempt_at else received_at end")


@MIGRATIONS()
def m021_job_transient_failures(db: Database) -> None:
    """How many of a job's attempts failed because Slack or the helpdesk was down (bot.errors `transient`): they are
    retried for up to MAX_OUTAGE and do not count toward MAX_ATTEMPTS, so a job that waited out an outage still
    gets its five tries when it then fails for a reason of its own. Jobs already queued count none."""
    db["events"].add_column("transient_failures", int, not_null_default=0)


@MIGRATIONS()
def m022_home_views(db: Database) -> None:
    """Whose App Home Seam published, when, and which escalations it listed (their ids, a JSON list): Slack keeps
    a published view until it is replaced, so an erasure publishes again the Homes that list one of its
    escalations (bot.flows.homes). Ids only: a Home's text is rebuilt from the escalations when it is published.
    Homes published before this migration were not recorded: the people known to have used Seam (owners of
    escalations, agents in the feedback log, people in the audit log) are recorded with `escalations` null — it
    may list anything — so the first erasure publishes theirs again; anyone else's is published again when they
    next open it."""
    db["home_views"].create({"user_id": str, "published_at": str, "escalations": str}, pk="user_id")
    db.execute("insert or ignore into home_views (user_id, published_at, escalations)"
               " select owner, '', null from escalations where owner is not null and owner != ''"
               " union select user_id, '', null from feedback where user_id glob '[UW][A-Z0-9]*'"
               " union select actor, '', null from audit_log where actor glob '[UW][A-Z0-9]*'")


def _busy(idle_kinds: Collection[str]) -> tuple[str, list[str]]:
    """SQL that is true for a ticket (a row of `tickets`) still being worked on, and its parameters: an escalation
    not finished, or a job still to run whose kind is not one of `idle_kinds`."""
    unfinished = [s.value for s in EscalationState if not s.finished]
    idle = list(idle_kinds) or [""]
    # `+tickets.key`: compared without the column's text affinity, so the job look-up uses m014's index.
    return (f"(exists (select 1 from escalations where escalations.ticket_key = tickets.key"
            f" and escalations.state in ({', '.join('?' for _ in unfinished)}))"
            f" or exists (select 1 from events where {EVENT_TICKET_KEY} = +tickets.key"
            f" and events.state in ('pending', 'processing') and kind not in ({', '.join('?' for _ in idle)})))",
            [*unfinished, *idle])


def _encodable_parameters(parameters: Any) -> Any:
    """A statement's parameters with every string made encodable (a lone surrogate becomes U+FFFD)."""
    if isinstance(parameters, Mapping):
        return {k: encodable(v) if isinstance(v, str) else v for k, v in parameters.items()}
    if isinstance(parameters, list | tuple):
        return [encodable(v) if isinstance(v, str) else v for v in parameters]
    return parameters


class FollowUp(StrEnum):
    """What became of a message the customer wrote while their escalation waits (`Store.add_follow_up`)."""

    ADDED = "added"
    REPEATED = "repeated"
    FINISHED = "finished"
    MOVED = "moved"


class EncodableConnection(sqlite3.Connection):
    """A connection whose `execute` and `executemany` (every query here and in sqlite-utils goes through them)
    bind text SQLite can store: sqlite3 raises UnicodeEncodeError on a lone surrogate, which would fail the job
    that tried to store it on every retry."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute(sql, _encodable_parameters(parameters))

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:
        return super().executemany(sql, (_encodable_parameters(p) for p in seq_of_parameters))


def _writes(method: Callable[..., T]) -> Callable[..., T]:
    """Serialise the store's writes on one in-process lock. Every writer is in this process, and a Python lock
    queues them fairly, where SQLite's busy handler would have them sleep and poll (1, 2, 5 … 100 ms): with
    workers writing, a webhook's insert could wait 100 ms for a lock held for one."""

    @functools.wraps(method)
    def locked(self: Store, *args: Any, **kwargs: Any) -> T:
        with self._write_lock:
            return method(self, *args, **kwargs)

    return locked


def open_store(path: str | Path) -> Store:
    """The store at DATABASE_PATH, created and migrated; a ConfigError naming the variable when the path cannot
    hold Seam's database (a folder, a file that is not SQLite, a place that cannot be written): commands stop with
    that one line rather than a traceback."""
    try:
        return Store(path)
    except (OSError, sqlite3.DatabaseError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"DATABASE_PATH {path} cannot be used as Seam's database: {reason}") from None


class Store:
    """All database access. Safe to share between threads: each thread gets its own connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # Ticket text and tokens live here: owner-only from the first byte.
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
            self.db.enable_wal()
        MIGRATIONS.apply(self.db)

    @property
    def db(self) -> Database:
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False,
                                   factory=EncodableConnection)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            db = self._local.db = Database(conn)
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _one(self, table: str, where: str, params: Sequence[Any]) -> dict | None:
        return next(iter(self.db[table].rows_where(where, list(params), limit=1)), None)

    def ping(self) -> bool:
        return self.db.execute("select 1").fetchone() == (1,)

    # -- events: the durable job queue -----------------------------------------------------------------------

    @_writes
    def record_event(self, *, helpdesk: str, dedupe_key: str, ticket_id: str, body: str,
                     kind: str = "ticket", run_at: datetime | None = None, priority: int = 0) -> tuple[int, bool]:
        """Store an accepted job, due now or at `run_at` (a scheduled job); return (event id, True), or (existing
        id, False) for a redelivery — a dedupe key makes a job once, however often it is scheduled. Of the jobs
        due, the lowest `priority` runs first (m010)."""
        now = iso(utcnow())
        with self._immediate() as conn:
            cursor = conn.execute(
                "insert or ignore into events (kind, helpdesk, dedupe_key, ticket_id, body, received_at, state,"
                " attempts, next_attempt_at, due_at, priority) values (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                (kind, helpdesk, dedupe_key, ticket_id, body, now, due := iso(run_at) if run_at else now, due,
                 priority),
            )
            if cursor.rowcount:
                return int(cursor.lastrowid), True
            row = conn.execute("select id from events where dedupe_key = ?", (dedupe_key,)).fetchone()
            return int(row[0]), False

    @_writes
    def claim_event(self, *, lease_seconds: float = 120.0, retries: bool = True) -> Event | None:
        """Take the oldest event that is due (of the lowest `priority`), or whose worker's lease ran out (it
        crashed), for processing. With `retries` False only a job's first attempt is taken (the worker keeps a
        thread for new work while the others retry jobs that failed, bot.jobs.worker).

        A ticket's events are taken one at a time: one whose ticket has another event being processed (its
        lease not run out) waits for it, so a second message, or reconciliation naming the same ticket, is
        decided knowing the first one's escalation — two decided side by side would post two cards, or answer
        the customer while a person is about to."""
        now = utcnow()
        with self._immediate() as conn:
            due = ("state = 'pending' and next_attempt_at <= :now and not (kind = 'ticket' and exists ("
                   "select 1 from events busy where busy.helpdesk || ':' || busy.ticket_id"
                   " = events.helpdesk || ':' || events.ticket_id"
                   " and busy.kind = 'ticket' and busy.state = 'processing' and busy.lease_until >= :now))")
            where = (f"({due}) or (state = 'processing' and lease_until < :now)" if retries
                     else f"{due} and attempts = 0")
            row = conn.execute(f"select id from events where {where} order by priority, id limit 1",
                               {"now": iso(now)}).fetchone()
            if row is None:
                return None
            conn.execute(
                "update events set state = 'processing', attempts = attempts + 1, lease_until = ? where id = ?",
                (iso(now + timedelta(seconds=lease_seconds)), row[0]),
            )
        return self.event(row[0])

    def event(self, event_id: int) -> Event:
        return Event.from_row(self.db["events"].get(event_id))

    @_writes
    def claim_event_by_id(self, event_id: int, *, lease_seconds: float = 120.0) -> Event | None:
        """Take one given pending job for processing now, due or not (a job its recorder runs at once, such as an
        agent action's helpdesk write); None if it is not pending (a worker holds it, or it is finished)."""
        cursor = self.db.execute(
            "update events set state = 'processing', attempts = attempts + 1, lease_until = ?"
            " where id = ? and state = 'pending'",
            [iso(utcnow() + timedelta(seconds=lease_seconds)), event_id])
        return self.event(event_id) if cursor.rowcount == 1 else None

    @_writes
    def claim_turn(self, *, event_id: int, turn_key: str) -> bool:
        """Mark this event as the one that handles a ticket's latest comment; False if another already does."""
        with self._immediate() as conn:
            row = conn.execute("select id from events where turn_key = ?", (turn_key,)).fetchone()
            if row is not None:
                return int(row[0]) == event_id
            conn.execute("update events set turn_key = ? where id = ?", (turn_key, event_id))
            return True

    @_writes
    def finish_event(self, event_id: int, *, outcome: str) -> None:
        self.db["events"].update(event_id, {"state": EventState.DONE, "outcome": outcome,
                                            "processed_at": iso(utcnow()), "lease_until": None, "last_error": None})

    @_writes
    def fail_event(self, event_id: int, *, error: str, transient: bool = False,
                   retry_in: float | None = None, at_least: float | None = None) -> EventState:
        """Record a failed attempt, retried after `retry_in` seconds (by default `retry_delay` of the failures of
        its sort so far), and no sooner than `at_least` (the failed service's Retry-After). A permanent failure
        parks the job as dead once its attempts that were not `transient` reach MAX_ATTEMPTS; a transient one
        (Slack or the helpdesk down: bot.errors `transient`) is counted apart (`transient_failures`, m021) and
        parks it only once it has waited MAX_OUTAGE since it first came due."""
        event = self.event(event_id)
        now = utcnow()
        if transient:
            failures = event.transient_failures + 1
            waited = seconds_since(event.due_at or event.received_at, now=now) or 0.0
            dead = waited >= MAX_OUTAGE.total_seconds()
            if dead:
                error = f"still failing after {waited / 3600:.0f} h while a service was down: {error}"
        else:
            failures = event.attempts - event.transient_failures
            dead = failures >= MAX_ATTEMPTS
        state = EventState.DEAD if dead else EventState.PENDING
        delay = max(retry_delay(failures) if retry_in is None else retry_in, at_least or 0.0)
        self.db["events"].update(event_id, {
            "state": state, "last_error": error[:2000], "lease_until": None,
            "next_attempt_at": iso(now + timedelta(seconds=delay)),
            "transient_failures": event.transient_failures + int(transient),
        })
        return state

    @_writes
    def release_event(self, event_id: int) -> None:
        """Give an event back untouched (shutdown): it is retried at once by the next worker."""
        self.db.execute("update events set state = 'pending', lease_until = null, attempts = max(attempts - 1, 0)"
                        " where id = ? and state = 'processing'", [event_id])

    @_writes
    def recover_interrupted(self) -> int:
        """At start-up: events a previous process was processing when it died go back to the queue at once.
        (One `serve` process owns a database; leases are for a worker that hangs, not for a restart.) One that was
        running at MAX_ATTEMPTS crashes (of its attempts that did not fail because a service was down) is dead
        instead: a job that takes the process down with it must not crash every start."""
        cursor = self.db.execute(
            "update events set lease_until = null, next_attempt_at = ?,"
            " state = case when attempts - transient_failures >= ? then 'dead' else 'pending' end,"
            " last_error = case when attempts - transient_failures >= ?"
            " then 'interrupted by a crash or kill on each of its last ' || (attempts - transient_failures)"
            " || ' attempts' else last_error end where state = 'processing'",
            [iso(utcnow()), MAX_ATTEMPTS, MAX_ATTEMPTS])
        return cursor.rowcount

    @_writes
    def retry_dead(self, event_id: int | None = None) -> int:
        """Put dead events (or one of them) back in the queue with a fresh attempt count, due now: a job that died
        waiting out an outage gets MAX_OUTAGE again, and the queue's age counts from the retry."""
        where, params = ("state = 'dead'", []) if event_id is None else ("state = 'dead' and id = ?", [event_id])
        now = iso(utcnow())
        cursor = self.db.execute(f"update events set state = 'pending', attempts = 0, transient_failures = 0,"
                                 f" next_attempt_at = ?, due_at = ?, last_error = null where {where}",
                                 [now, now, *params])
        return cursor.rowcount

    def dead_events(self) -> list[Event]:
        return [Event.from_row(row) for row in self.db["events"].rows_where("state = 'dead'", order_by="id")]

    def queue_stats(self) -> dict:
        counts = dict(self.db.execute("select state, count(*) from events group by state").fetchall())
        # The oldest job that is due: a scheduled one (a reminder, an SLA step) counts from its time, not from
        # when it was scheduled, or every deployment would look hours behind (m020).
        now = utcnow()
        oldest = self.db.execute("select min(due_at) from events where state in ('pending', 'processing')"
                                 " and due_at <= ?", [iso(now)]).fetchone()[0]
        age = seconds_since(oldest, now=now)
        # Of the pending, those waiting for another try after a failure: during an outage, every job that came in.
        retrying = self.db.execute("select count(*) from events where state = 'pending' and attempts > 0"
                                   ).fetchone()[0]
        return {"pending": counts.get("pending", 0) + counts.get("processing", 0), "retrying": retrying,
                "dead": counts.get("dead", 0), "done": counts.get("done", 0),
                "oldest_pending_seconds": None if age is None else round(age, 1)}

    @_writes
    def remember_slack_event(self, event_id: str) -> bool:
        """True the first time a Slack event id is seen, False for a redelivery."""
        cursor = self.db.execute("insert or ignore into slack_events (event_id, received_at) values (?, ?)",
                                 [event_id[:200], iso(utcnow())])
        return cursor.rowcount == 1

    # -- tickets and decisions -------------------------------------------------------------------------------

    @_writes
    def upsert_ticket(self, *, helpdesk: str, ticket_id: str, subject: str, requester: str | None,
                      priority: str | None) -> str:
        key = ticket_key(helpdesk, ticket_id)
        now = iso(utcnow())
        existing = self.db["tickets"].count_where("key = ?", [key])
        values = {"key": key, "helpdesk": helpdesk, "ticket_id": ticket_id, "subject": subject,
                  "requester": requester, "requester_key": None if requester is None else requester_key(requester),
                  "priority": priority, "last_seen_at": now}
        if not existing:
            values["first_seen_at"] = now
        self.db["tickets"].upsert(values, pk="key")
        return key

    @_writes
    def add_decision(self, *, event_id: int, ticket_key: str, decision: Any) -> int:
        p_right, p_uncovered = decision.calibration if decision.calibration is not None else (None, None)
        return self.db["decisions"].insert({
            "event_id": event_id, "ticket_key": ticket_key, "route": str(decision.route),
            "confidence": decision.confidence, "reasons": json.dumps([r.__dict__ for r in decision.reasons]),
            "answer": decision.answer, "answer_source": decision.answer_source, "summary": decision.summary,
            "evidence": json.dumps(list(decision.evidence)), "created_at": iso(utcnow()),
            "p_right": p_right, "p_uncovered": p_uncovered,
        }).last_pk

    def decision_for_event(self, event_id: int) -> dict | None:
        rows = list(self.db["decisions"].rows_where("event_id = ?", [event_id], order_by="id desc", limit=1))
        return rows[0] if rows else None

    # -- escalations -----------------------------------------------------------------------------------------

    def escalation(self, escalation_id: int) -> Escalation | None:
        row = self._one("escalations", "id = ?", [escalation_id])
        return Escalation.from_row(row) if row else None

    def escalation_for_event(self, event_id: int) -> Escalation | None:
        row = self._one("escalations", "event_id = ?", [event_id])
        return Escalation.from_row(row) if row else None

    @_writes
    def create_escalation(self, *, event_id: int, decision_id: int, ticket_key: str, ticket_id: str, channel: str,
                          draft: str | None, confidence: float, card: dict, customer_text: str,
                          route: str | None = None, mention: str | None = None, sla_due_at: str | None = None,
                          manager_paged_at: str | None = None) -> Escalation:
        """The record written before posting to Slack, so a crash mid-post can be recognised after restart.
        `route` and `mention`: the `[[routes]]` entry that chose `channel` and whom it mentions (None: the
        default channel); `sla_due_at`: when the ticket is due, where known; `manager_paged_at`: set when the
        post itself pages the managers (a `page_manager` route)."""
        now = iso(utcnow())
        self.db["escalations"].insert({
            "event_id": event_id, "decision_id": decision_id, "ticket_key": ticket_key, "ticket_id": ticket_id,
            "channel": channel, "state": EscalationState.POSTING, "draft": draft, "confidence": confidence,
            "card": json.dumps(card), "customer_text": customer_text, "created_at": now, "updated_at": now,
            "route": route, "mention": mention, "sla_due_at": sla_due_at, "manager_paged_at": manager_paged_at,
        }, ignore=True)
        return self.escalation_for_event(event_id)

    @_writes
    def mark_escalation_posted(self, escalation_id: int, *, channel: str, ts: str,
                               rendered: str | None = None) -> None:
        """The escalation is open and its card is at `ts`. `rendered`: the `updated_at` of the row the card was
        posted from — when the row has not changed since, the card shows it as it is now (a card still posting
        is shown open), so it is recorded in sync; None (a post found again after a crash, rendered by an
        earlier attempt) leaves it to the sweep to catch up."""
        now = iso(utcnow())
        self.db.execute(
            "update escalations set state = ?, channel = ?, ts = ?, updated_at = ?,"
            " card_synced_at = case when ? is not null and updated_at = ? then ? else card_synced_at end"
            " where id = ?", [EscalationState.OPEN, channel, ts, now, rendered, rendered, now, escalation_id])

    @_writes
    def mark_card_synced(self, escalation_id: int, *, rendered: str) -> bool:
        """The card in Slack now shows the row as of `updated_at` == `rendered`: recorded only if the row has not
        changed since (compare-and-set), so a change that landed meanwhile leaves the card stale, to be caught up.
        True if recorded. `updated_at` itself is left alone: this is bookkeeping, not a change of the escalation."""
        cursor = self.db.execute("update escalations set card_synced_at = ? where id = ? and updated_at = ?",
                                 [rendered, escalation_id, rendered])
        return cursor.rowcount == 1

    def stale_cards(self, *, limit: int) -> list[Escalation]:
        """Escalations whose card in Slack is behind their row (posted, `card_synced_at` not `updated_at`), the
        oldest change first; at most `limit`. One still `posting` is not in Slack yet (its post records it)."""
        rows = self.db.query(
            f"select * from escalations where {CARD_STALE} and ts is not null and state != 'posting'"
            " order by updated_at, id limit ?", [limit])
        return [Escalation.from_row(row) for row in rows]

    @_writes
    def update_escalation(self, escalation_id: int, **fields: Any) -> None:
        self.db["escalations"].update(escalation_id, {**fields, "updated_at": iso(utcnow())})

    @_writes
    def claim_escalation(self, escalation_id: int, *, user_id: str) -> bool:
        """Make `user_id` the owner if nobody is; exactly one of many simultaneous claims wins."""
        now = iso(utcnow())
        with self._immediate() as conn:
            cursor = conn.execute(
                "update escalations set owner = ?, state = 'claimed', claimed_at = ?, updated_at = ?"
                " where id = ? and owner is null and state = 'open'", (user_id, now, now, escalation_id))
            return cursor.rowcount == 1

    @_writes
    def change_owner(self, escalation_id: int, *, expected: str | None, new: str | None) -> bool:
        """Compare-and-set the owner: from `expected` (None: nobody, the escalation open) to `new` (None: back to
        open, nobody). Only an open, claimed or failed escalation changes hands; exactly one of many
        simultaneous changes from the same owner wins, so there are never two owners."""
        now = iso(utcnow())
        with self._immediate() as conn:
            if new is None:  # unclaim
                cursor = conn.execute(
                    "update escalations set owner = null, state = 'open', claimed_at = null, updated_at = ?"
                    " where id = ? and owner = ? and state in ('claimed', 'failed')", (now, escalation_id, expected))
            elif expected is None:  # assign an open one: a claim on someone's behalf
                cursor = conn.execute(
                    "update escalations set owner = ?, state = 'claimed', claimed_at = ?, updated_at = ?"
                    " where id = ? and owner is null and state = 'open'", (new, now, now, escalation_id))
            else:  # hand over: the state (claimed or failed) and the first claim's time stay
                cursor = conn.execute(
                    "update escalations set owner = ?, updated_at = ?"
                    " where id = ? and owner = ? and state in ('claimed', 'failed')",
                    (new, now, escalation_id, expected))
            return cursor.rowcount == 1

    @_writes
    def begin_finishing(self, escalation_id: int, *, user_id: str, manager: bool, to_state: EscalationState) -> bool:
        """Move a claimed (or failed) escalation into `to_state` (sending, rejected) for its owner or a manager:
        the compare-and-set that makes a double click act once."""
        owner_clause = "" if manager else " and owner = ?"
        params: list[Any] = [to_state, iso(utcnow()), escalation_id] + ([] if manager else [user_id])
        with self._immediate() as conn:
            cursor = conn.execute(
                f"update escalations set state = ?, updated_at = ? where id = ?"
                f" and state in ('claimed', 'failed'){owner_clause}", params)
            return cursor.rowcount == 1

    @_writes
    def fail_interrupted_sends(self) -> list[int]:
        """At start-up: replies an agent was sending when the process died are marked failed (the message then
        offers Retry, which checks the ticket before sending again). Returns their escalation ids."""
        ids = [row[0] for row in self.db.execute("select id from escalations where state = 'sending'").fetchall()]
        if ids:
            self.db.execute("update escalations set state = 'failed', last_error = ?, updated_at = ? "
                            "where state = 'sending'", ["interrupted by a restart", iso(utcnow())])
        return ids

    def escalations_page(self, *, states: Sequence[EscalationState], owner: str | None = None, offset: int = 0,
                         limit: int = 15) -> tuple[list[Escalation], int]:
        """Escalations in `states` (and owned by `owner`, if given), oldest first: one page and the total."""
        where = f"state in ({', '.join('?' for _ in states)})" + (" and owner = ?" if owner else "")
        params = [str(s) for s in states] + ([owner] if owner else [])
        total = self.db["escalations"].count_where(where, params)
        rows = self.db["escalations"].rows_where(where, params, order_by="created_at, id", limit=limit,
                                                 offset=max(0, offset))
        return [Escalation.from_row(row) for row in rows], total

    def channel_queues(self) -> dict[str, dict[str, int]]:
        """Unfinished escalations per channel: `{channel: {"open": n, "claimed": n}}` (claimed counts every owned
        state: claimed, sending, failed)."""
        rows = self.db.execute(
            "select channel, state, count(*) from escalations where state in ('open', 'claimed', 'sending', 'failed')"
            " group by channel, state").fetchall()
        queues: dict[str, dict[str, int]] = {}
        for channel, state, count in rows:
            counts = queues.setdefault(channel or "", {"open": 0, "claimed": 0})
            counts["open" if state == "open" else "claimed"] += count
        return queues

    def answerable_escalations(self, ticket_key: str, *, created_before: str) -> list[Escalation]:
        """The ticket's escalations still waiting in Slack (open or claimed) that were recorded before an ISO
        time: those an answer the helpdesk showed at that time may close (bot.flows.answered). Sending and failed
        ones are Seam's own reply in flight; a posting one is not in Slack yet."""
        rows = self.db["escalations"].rows_where(
            "ticket_key = ? and state in ('open', 'claimed') and created_at <= ?", [ticket_key, created_before],
            order_by="id")
        return [Escalation.from_row(row) for row in rows]

    @_writes
    def answer_escalation(self, escalation_id: int, *, text: str | None, detail: Mapping[str, Any]) -> bool:
        """Mark an open or claimed escalation answered in the helpdesk, with the agent's reply (`text`, None when
        the ticket was solved without one), and write the audit entry (actor `seam`, action
        `escalation_answered_in_helpdesk`) in the same transaction: the compare-and-set that makes it happen
        once, whatever the redeliveries, and never after a click already finished it. True if this call did."""
        now = iso(utcnow())
        with self._immediate() as conn:
            cursor = conn.execute(
                "update escalations set state = 'answered', sent_text = ?, finished_at = ?, updated_at = ?"
                " where id = ? and state in ('open', 'claimed')", (text, now, now, escalation_id))
            if cursor.rowcount != 1:
                return False
            conn.execute("insert into audit_log (at, actor, action, detail) values (?, 'seam',"
                         " 'escalation_answered_in_helpdesk', ?)", (now, json.dumps(dict(detail))))
        return True

    def escalation_for_turn(self, turn_key: str) -> Escalation | None:
        """The escalation made for one customer comment (the event that claimed its turn), if any."""
        row = next(iter(self.db.query(
            "select e.* from escalations e join events v on v.id = e.event_id where v.turn_key = ?"
            " order by e.id desc limit 1", [turn_key])), None)
        return Escalation.from_row(row) if row else None

    def live_escalation(self, ticket_key: str) -> Escalation | None:
        """The ticket's newest escalation still waiting on a person — posted or being posted, open, claimed, or
        its reply refused — to which the customer's next message belongs (bot.flows.pipeline `_follow_up`). One
        whose reply is being sent is finishing: a message then starts a new escalation."""
        marks = ", ".join("?" for _ in WAITING_STATES)
        rows = self.db["escalations"].rows_where(
            f"ticket_key = ? and state in ({marks})", [ticket_key, *WAITING_STATES], order_by="id desc", limit=1)
        row = next(iter(rows), None)
        return Escalation.from_row(row) if row else None

    @_writes
    def add_follow_up(self, escalation_id: int, *, event_id: int, customer_text: str,
                      quoted_until: str | None = None, shown_until: str | None = None) -> FollowUp:
        """The customer wrote again (event `event_id`) while this escalation waits on a person: their words are
        what a reply now answers (`customer_text`, which the engine learns the reply against), and the card
        counts the event once (`follow_ups`, event ids) and keeps the time of the newest message quoted in the
        thread (`follow_up_until`), which the caller read as `shown_until` and chose what to quote by. Nothing is
        written unless ADDED: REPEATED for an event already added (a retry); FINISHED when the escalation no longer
        waits (`WAITING_STATES`: finished, or its reply began sending, since it was found by `live_escalation`),
        and the message is a new one; MOVED when another event quoted messages since the caller read the card,
        so what to quote must be chosen again."""
        with self._immediate() as conn:
            row = conn.execute("select card, state from escalations where id = ?", [escalation_id]).fetchone()
            card = json.loads(row[0] or "{}")
            events = card.get("follow_ups") or []
            if event_id in events:
                return FollowUp.REPEATED
            if row[1] not in WAITING_STATES:
                return FollowUp.FINISHED
            if card.get("follow_up_until") != shown_until:
                return FollowUp.MOVED
            card["follow_ups"] = [*events, event_id]
            if quoted_until is not None:
                card["follow_up_until"] = max(quoted_until, card.get("follow_up_until") or quoted_until)
            conn.execute("update escalations set card = ?, customer_text = ?, updated_at = ? where id = ?",
                         [json.dumps(card), customer_text, iso(utcnow()), escalation_id])
            return FollowUp.ADDED

    @_writes
    def record_direct_message(self, *, escalation_id: int, channel: str, ts: str) -> None:
        """A DM Seam sent about this escalation, at `ts` in conversation `channel` (m017)."""
        self.db.execute("insert into direct_messages (escalation_id, channel, ts, sent_at) values (?, ?, ?, ?)",
                        [escalation_id, channel, ts, iso(utcnow())])

    def direct_messages(self, escalation_id: int) -> list[dict]:
        """The DMs Seam sent about this escalation and has not deleted: id, channel, ts; oldest first."""
        return list(self.db.query("select id, channel, ts from direct_messages where escalation_id = ? order by id",
                                  [escalation_id]))

    @_writes
    def note_home(self, user_id: str, *, escalation_ids: Collection[int]) -> None:
        """Seam published `user_id`'s App Home listing these escalations."""
        self.db.execute("insert into home_views (user_id, published_at, escalations) values (?, ?, ?) on conflict"
                        "(user_id) do update set published_at = excluded.published_at,"
                        " escalations = excluded.escalations",
                        [user_id, iso(utcnow()), json.dumps(sorted(set(escalation_ids)))])

    def homes_listing(self, keys: Sequence[str]) -> list[str]:
        """The people whose App Home, as last published, lists an escalation of one of these tickets, or may list
        one (published before m022 recorded what a Home lists)."""
        users = {row[0] for row in self.db.execute("select user_id from home_views where escalations is null")}
        for chunk in _chunks(keys):
            users |= {row[0] for row in self.db.execute(
                "select distinct home_views.user_id from home_views, json_each(home_views.escalations) as listed"
                " join escalations on escalations.id = listed.value"
                f" where escalations.ticket_key in ({', '.join('?' for _ in chunk)})", chunk)}
        return sorted(users)

    def sent_for_people(self, key: str) -> list[tuple[str, str | None]]:
        """The replies people approved, edited or wrote in Slack that Seam sent on this ticket, and when each one's
        escalation was made, oldest first."""
        return [(row[0], row[1]) for row in self.db.execute(
            "select sent_text, created_at from escalations where ticket_key = ? and state = 'sent'"
            " and sent_text is not null order by id", [key])]

    def erased_since(self, escalation_ids: Collection[int], *, since: str) -> bool:
        """Was the ticket of one of these escalations erased at or after `since` (ISO time)?"""
        return any(self.db.execute(
            "select 1 from escalations join tickets on tickets.key = escalations.ticket_key"
            f" where escalations.id in ({', '.join('?' for _ in chunk)}) and tickets.erased_at >= ? limit 1",
            [*chunk, since]).fetchone() for chunk in _chunks(list(escalation_ids)))

    @_writes
    def forget_home(self, user_id: str) -> None:
        """Nobody can see `user_id`'s App Home any more (Slack no longer knows them): nothing to publish again."""
        self.db.execute("delete from home_views where user_id = ?", [user_id])

    @_writes
    def forget_direct_message(self, message_id: int) -> None:
        """The DM is gone from Slack: nothing is left to delete."""
        self.db.execute("delete from direct_messages where id = ?", [message_id])

    def customer_told(self, ticket_key: str, *, besides: int) -> Escalation | None:
        """An unfinished escalation of this ticket, other than `besides`, whose customer was already told that a
        person will follow up: telling them again on every new message would only repeat it."""
        rows = self.db["escalations"].rows_where(
            "ticket_key = ? and id != ? and customer_notified_at is not null"
            " and state in ('posting', 'open', 'claimed', 'sending', 'failed')", [ticket_key, besides],
            order_by="id desc", limit=1)
        row = next(iter(rows), None)
        return Escalation.from_row(row) if row else None

    # -- after the post: reminders, SLA watch, keep-warm (bot.flows.lifecycle) ------------------------------------

    def latest_escalation_id(self, ticket_key: str) -> int | None:
        """The ticket's newest escalation: a newer message's escalation takes over what follows the post."""
        return self.db.execute("select max(id) from escalations where ticket_key = ?", [ticket_key]).fetchone()[0]

    @_writes
    def finish_step(self, key: str, *, escalation_id: int, fields: Mapping[str, Any], action: str,
                    detail: Mapping[str, Any], result: Any = None) -> None:
        """A lifecycle job's step recorded whole, in one transaction: its effect `key` done, the escalation's
        `fields` set, and the audit entry (actor `seam`, `action`, `detail`) written — a crash leaves all three
        or none, so the retry that finds the effect done neither repeats the step nor loses its record."""
        now = iso(utcnow())
        values = {**fields, "updated_at": now}
        with self._immediate() as conn:
            conn.execute("update effects set state = 'done', result = ?, finished_at = ? where key = ?",
                         (json.dumps(result), now, key))
            conn.execute(f"update escalations set {', '.join(f'{column} = ?' for column in values)} where id = ?",
                         [*values.values(), escalation_id])
            conn.execute("insert into audit_log (at, actor, action, detail) values (?, 'seam', ?, ?)",
                         (now, action, json.dumps(dict(detail))))

    def lifecycle_counts(self, *, since: str) -> dict:
        """What followed the posts since an ISO time (for stats): escalations reminded, managers paged, SLA
        warnings and breaches, and keep-warm updates sent to customers."""
        # One count per column, so each reads its own partial index (m016) rather than every escalation.
        reminded, paged, warned, breached = (
            self.db.execute(f"select count(*) from escalations where {column} >= ?", [since]).fetchone()[0]
            for column in LIFECYCLE_COLUMNS)
        kept_warm = self.db.execute("select count(*) from audit_log where action = 'keep_warm_sent' and at >= ?",
                                    [since]).fetchone()[0]
        return {"reminded": reminded, "managers_paged": paged, "sla_warned": warned, "sla_breached": breached,
                "keep_warm_sent": kept_warm}

    # -- feedback --------------------------------------------------------------------------------------------

    @_writes
    def add_feedback(self, **row: Any) -> int:
        return self.db["feedback"].insert({**row, "created_at": iso(utcnow())}).last_pk

    @_writes
    def add_feedback_once(self, *, escalation_id: int, action: str, **row: Any) -> bool:
        """Add a feedback row unless the escalation already has one with this action (a redelivered event, two
        workers on one ticket); True if this call added it."""
        columns = {**row, "escalation_id": escalation_id, "action": action, "created_at": iso(utcnow())}
        with self._immediate() as conn:
            if conn.execute("select 1 from feedback where escalation_id = ? and action = ?",
                            (escalation_id, action)).fetchone():
                return False
            conn.execute(f"insert into feedback ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
                         list(columns.values()))
        return True

    def learned_answers(self) -> list[dict]:
        """Replies people approved or edited in Slack, or wrote in the helpdesk to resolve an escalated ticket:
        (customer text, answer source, final text, and the draft and action the answer source is read with, and
        the name of the customer it was written for, from the escalation's card), oldest first."""
        return list(self.db.query(
            "select id, customer_text, answer_source, final_text, draft, action, escalation_id,"
            " (select json_extract(e.card, '$.ticket.requester_name') from escalations e"
            "  where e.id = feedback.escalation_id) as requester_name"
            f" from feedback where {_LEARNED} order by id"))

    def taught_rejections(self, reasons: tuple[str, ...]) -> list[dict]:
        """Rejections for one of `reasons` (the feedback's reason is "reason" or "reason: note"), with the
        customer's words, oldest first."""
        if not reasons:
            return []
        matches = " or ".join("reason = ? or reason like ?" for _ in reasons)
        return list(self.db.query(
            f"select id, customer_text, escalation_id, reason from feedback where action = 'reject'"
            f" and customer_text is not null and ({matches}) order by id",
            [value for r in reasons for value in (r, f"{r}:%")]))

    def learned_count(self) -> int:
        """How many replies `learned_answers` holds."""
        return self.db.execute(f"select count(*) from feedback where {_LEARNED}").fetchone()[0]

    def feedback_rows(self) -> Iterator[dict]:
        """The whole feedback log for export, oldest first, in FEEDBACK_COLUMNS: agents' actions, and Seam's
        automatic answers beside them — a row with action `auto_answer` (user `seam`, the reply sent as
        `final_text`) for each, and one with action `reopened` (the reason in `reason`) when the customer came
        back unsatisfied. Those two have no `id` or `escalation_id`: they are not rows of the feedback table."""
        columns = ", ".join(FEEDBACK_COLUMNS)
        query = (
            f"select {columns} from ("
            f"select {columns}, 0 as part, id as seq from feedback"
            " union all select null, answered_at, 'seam', 'auto_answer', null, ticket_key, confidence, answer_source,"
            " null, (select d.answer from decisions d where d.event_id = a.event_id order by d.id desc limit 1),"
            " null, null, 1, id from automatic_answers a"
            " union all select null, reopened_at, null, 'reopened', null, ticket_key, confidence, answer_source, null,"
            " null, null, reopen_reason, 2, id from automatic_answers where reopened_at is not null"
            ") order by created_at, part, seq")
        return self.db.query(query)

    def reviewed_drafts(self) -> list[dict]:
        """Agents' verdicts on drafts: confidence and action (approve, edit, reject) of each."""
        return list(self.db.query("select confidence, action from feedback where action in ('approve', 'edit', "
                                  "'reject') and confidence is not null"))

    # -- figures for /escalation stats -----------------------------------------------------------------------

    def activity(self, *, since: str, topics: int = 8) -> dict:
        """What happened since an ISO time: routes decided, tickets seen, agents' actions, escalation times,
        escalations answered in the helpdesk instead, reject reasons and the busiest answer sources."""
        db = self.db
        return {
            "routes": dict(db.execute("select route, count(*) from decisions where created_at >= ? group by route",
                                      [since]).fetchall()),
            "tickets": db.execute("select count(distinct ticket_key) from decisions where created_at >= ?",
                                  [since]).fetchone()[0],
            "actions": dict(db.execute("select action, count(*) from feedback where created_at >= ? "
                                       "group by action", [since]).fetchall()),
            "escalations": list(db.query("select created_at, claimed_at, finished_at, state from escalations "
                                         "where created_at >= ?", [since])),
            "answered_in_helpdesk": db.execute("select count(*) from escalations where state = 'answered' "
                                               "and finished_at >= ?", [since]).fetchone()[0],
            "reject_reasons": [r["reason"] for r in db.query(
                "select reason from feedback where action = 'reject' and created_at >= ?", [since])],
            "topics": list(db.query(
                "select coalesce(answer_source, '(no answer)') as topic, count(*) as tickets, "
                "sum(route = 'resolve') as resolved, sum(route = 'draft') as drafted, "
                "sum(route = 'escalate') as escalated from decisions where created_at >= ? "
                "group by topic order by tickets desc limit ?", [since, topics])),
        }

    # -- automatic answers and the quality guard ----------------------------------------------------------------
    #
    # An automatic answer counts as wrong when the customer reopens the ticket within the guard's window. The
    # rate the guard watches is over *judged* answers only: reopened ones, and ones whose window has passed
    # without a reopen. An answer still inside its window is neither right nor wrong yet — counting it as "not
    # reopened" would make a burst of fresh answers hide the reopens coming for them. Reopens count at once,
    # so a run of bad answers is caught within hours rather than after the window; this leans towards pausing
    # early (the reopened answers push older, settled ones out of the last K), which is the safe side: a person
    # checks and resumes.

    @_writes
    def record_automatic_answer(self, *, event_id: int, ticket_key: str, ticket_id: str, answer_source: str | None,
                                confidence: float, calibration: tuple[float, float] | None = None) -> int:
        """Note a public reply Seam sent on its own, with its confidence's calibrated parts when the local engine
        made it; once per event (a retry finds the first row). Its id."""
        p_right, p_uncovered = calibration if calibration is not None else (None, None)
        self.db.execute(
            "insert or ignore into automatic_answers (event_id, ticket_key, ticket_id, answer_source, confidence,"
            " answered_at, p_right, p_uncovered) values (?, ?, ?, ?, ?, ?, ?, ?)",
            [event_id, ticket_key, ticket_id, answer_source, confidence, iso(utcnow()), p_right, p_uncovered])
        return int(self.db.execute("select id from automatic_answers where event_id = ?", [event_id]).fetchone()[0])

    def latest_automatic_answer(self, ticket_key: str) -> dict | None:
        """The ticket's most recent automatic answer, with the reply it sent (`answer`), or None."""
        rows = list(self.db.query(
            "select a.*, (select d.answer from decisions d where d.event_id = a.event_id order by d.id desc limit 1)"
            " as answer from automatic_answers a where ticket_key = ? order by id desc limit 1", [ticket_key]))
        return rows[0] if rows else None

    @_writes
    def mark_reopened(self, *, ticket_key: str, event_id: int, reason: str, answered_after: str) -> dict | None:
        """Mark the ticket's latest automatic answer reopened by `event_id`, once: only if it was made at or after
        `answered_after` (the window's start), by another event, and is not marked yet. Returns the answer when
        this event is the one that reopened it (now, or on an earlier attempt of the same event), else None."""
        with self._immediate() as conn:
            row = conn.execute("select id, event_id, reopened_at, reopen_event_id, answered_at from automatic_answers"
                               " where ticket_key = ? order by id desc limit 1", (ticket_key,)).fetchone()
            if row is None:
                return None
            answer_id, answered_by, reopened_at, reopened_by, answered_at = row
            if reopened_at is None and answered_by != event_id and answered_at >= answered_after:
                conn.execute("update automatic_answers set reopened_at = ?, reopen_event_id = ?, reopen_reason = ?"
                             " where id = ? and reopened_at is null", (iso(utcnow()), event_id, reason, answer_id))
                reopened_by = event_id
        return self.db["automatic_answers"].get(answer_id) if reopened_by == event_id else None

    def judged_automatic_answers(self, *, last: int, window_seconds: float, since: str | None = None,
                                 now: datetime | None = None) -> list[dict]:
        """The last `last` automatic answers that are judged — their window passed, so whether they were reopened
        is known — newest first; only those answered after `since` when given (the guard's last resume). One
        reopened inside its window waits with the others of its time: taken alone, the reopens would be judged a
        window before the answers nobody reopened, and the rate read far above the true one."""
        cutoff = iso((now or utcnow()) - timedelta(seconds=window_seconds))
        return list(self.db.query(
            "select * from automatic_answers where answered_at <= ? and answered_at > ?"
            " order by answered_at desc, id desc limit ?", [cutoff, since or "", last]))

    def latest_automatic_answers(self, *, last: int, since: str | None = None) -> list[dict]:
        """The last `last` automatic answers, judged or not, newest first; only those answered after `since` when
        given."""
        return list(self.db.query("select * from automatic_answers where answered_at > ?"
                                  " order by answered_at desc, id desc limit ?", [since or "", last]))

    def totals(self) -> dict:
        """Since the database began, for monitoring (bot.flows.metrics): decisions by route, escalations by state,
        agents' actions, automatic answers and their reopens, what followed the posts; and for each unfinished
        state, when its oldest escalation was posted. Aggregates only: a scrape reads no row's text."""
        db = self.db
        unfinished = [s.value for s in EscalationState if not s.finished]
        marks = ", ".join("?" for _ in unfinished)
        answers, reopened = db.execute("select count(*), count(reopened_at) from automatic_answers").fetchone()
        return {
            "routes": dict(db.execute("select route, count(*) from decisions group by route").fetchall()),
            "escalations": dict(db.execute("select state, count(*) from escalations group by state").fetchall()),
            "oldest": dict(db.execute(f"select state, min(created_at) from escalations where state in ({marks})"
                                      " group by state", unfinished).fetchall()),
            "actions": dict(db.execute("select action, count(*) from feedback group by action").fetchall()),
            "automatic_answers": answers, "reopened": reopened,
            "lifecycle": self.lifecycle_counts(since=""),
        }

    def automatic_answer_counts(self, *, since: str) -> dict:
        """Automatic answers made since an ISO time, and how many of them were reopened (for stats)."""
        answers, reopened = self.db.execute(
            "select count(*), count(reopened_at) from automatic_answers where answered_at >= ?", [since]).fetchone()
        return {"answers": answers, "reopened": reopened}

    @_writes
    def pause_for_quality(self, *, paused_key: str, record_key: str, figures: dict, announcement: str,
                          helpdesk: str, ticket_id: str) -> bool:
        """The quality guard pausing automation, in one transaction: the pause switch (`paused_key`) set by
        "seam", the figures kept under `record_key` for the App Home, the audit entry, and the announcement
        queued as a job (kind ANNOUNCE_KIND), so a crash or a Slack outage cannot lose it. False, with nothing
        written, when automation is already paused: one announcement per pause, never repeated."""
        now = iso(utcnow())
        with self._immediate() as conn:
            row = conn.execute("select value from settings where key = ?", (paused_key,)).fetchone()
            if row is not None and json.loads(row[0]):
                return False
            for key, value in ((paused_key, True), (record_key, {**figures, "at": now})):
                conn.execute("insert into settings (key, value, updated_by, updated_at) values (?, ?, 'seam', ?)"
                             " on conflict(key) do update set value = excluded.value,"
                             " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                             (key, json.dumps(value), now))
            conn.execute("insert into audit_log (at, actor, action, detail) values (?, 'seam', 'quality_guard_paused',"
                         " ?)", (now, json.dumps(figures)))
            conn.execute(
                "insert into events (kind, helpdesk, dedupe_key, ticket_id, body, received_at, state, attempts,"
                " next_attempt_at, due_at) values (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                (ANNOUNCE_KIND, helpdesk, f"quality_guard:{now}", ticket_id, json.dumps({"text": announcement}),
                 now, now, now))
        return True

    # -- effects: external calls recorded before and after ---------------------------------------------------

    def effect(self, key: str) -> dict | None:
        return self._one("effects", "key = ?", [key])

    @_writes
    def begin_effect(self, key: str, *, kind: str) -> dict:
        """Note that an external call is about to happen. The row says whether it is already done, and `fresh`
        whether this is the first attempt (if not, an earlier one may have reached the outside world)."""
        cursor = self.db.execute("insert or ignore into effects (key, kind, state, started_at) values (?, ?, ?, ?)",
                                 [key, kind, "started", iso(utcnow())])
        return {**self.effect(key), "fresh": cursor.rowcount == 1}

    @_writes
    def finish_effect(self, key: str, *, result: Any = None) -> None:
        self.db["effects"].update(key, {"state": "done", "result": json.dumps(result), "finished_at": iso(utcnow())})

    @_writes
    def restart_effect(self, key: str) -> None:
        """A new attempt at an external call that is not done: `started_at` becomes now (how long an answer to
        this attempt may still take is counted from it)."""
        self.db.execute("update effects set started_at = ? where key = ? and state != 'done'", [iso(utcnow()), key])

    @_writes
    def forget_effect(self, key: str) -> None:
        """The call was refused for certain (it did not reach the outside world): the next attempt is a fresh one."""
        self.db.execute("delete from effects where key = ? and state != 'done'", [key])

    # -- embedding cache ---------------------------------------------------------------------------------------

    @property
    def embedding_cache(self) -> EmbeddingCache:
        """This store as the engine's embedding cache (`get_many` / `put_many`, bot.engine.embeddings)."""
        return EmbeddingCache(self)

    def cached_embeddings(self, model: str, hashes: Sequence[str]) -> dict[str, bytes]:
        """The vectors stored for `model` (the embedder's cache key: the model and its server,
        bot.engine.embeddings.cache_key) among `hashes`, by hash."""
        found: dict[str, bytes] = {}
        hashes = list(dict.fromkeys(hashes))
        for chunk in _chunks(hashes):
            found.update(self.db.execute(
                f"select text_hash, vector from embedding_cache where model = ? and text_hash in "
                f"({', '.join('?' * len(chunk))})", [model, *chunk]).fetchall())
        return found

    @_writes
    def cache_embeddings(self, model: str, vectors: Mapping[str, bytes]) -> None:
        """Keep vectors for `model` (the cache key) by text hash. A hash already stored takes the new vector and
        its time: the embedder only puts what it could not use (a vector of a size the server no longer answers),
        and an erasure or retention then counts the vector from when it was made again."""
        if not vectors:
            return
        now = iso(utcnow())
        with self.db.atomic():
            self.db.conn.executemany(
                "insert into embedding_cache (model, text_hash, vector, created_at) values (?, ?, ?, ?)"
                " on conflict (model, text_hash) do update set vector = excluded.vector,"
                " created_at = excluded.created_at", [(model, h, v, now) for h, v in vectors.items()])

    # -- synced knowledge --------------------------------------------------------------------------------------
    #
    # Help-centre articles and macros a helpdesk lists (`python -m bot knowledge sync`, the periodic job in
    # `serve`), one row per helpdesk and id. A sync adds the new ones, updates the changed ones (their title and
    # text hashed), and — only after it read the whole listing — retires the ones no longer listed; one that
    # comes back is restored. `knowledge_revision` changes whenever any of that happens, so a running `serve`
    # can tell that its engine is out of date, whoever synced.

    @_writes
    def upsert_knowledge(self, *, helpdesk: str, articles: Sequence[Article]) -> dict[str, int]:
        """Store one sync's articles (the last of two with the same id wins): counts of those `added` (new, or
        retired and back), `updated` (title or text changed) and `unchanged`. `needs_person` is set for text that
        still holds a template placeholder (bot.text.has_placeholder)."""
        now = iso(utcnow())
        counts = {"added": 0, "updated": 0, "unchanged": 0}
        with self._immediate() as conn:
            known = {row[0]: (row[1], row[2]) for row in conn.execute(
                "select article_id, content_hash, retired_at from synced_knowledge where helpdesk = ?", (helpdesk,))}
            for article in {a.id: a for a in articles}.values():
                digest = knowledge_hash(article)
                values = {"kind": "macro" if article.id.startswith("macro-") else "article", "title": article.title,
                          "body": article.body, "needs_person": int(has_placeholder(article.body)),
                          "content_hash": digest, "source_updated_at": article.updated_at, "synced_at": now}
                previous = known.get(article.id)
                if previous is None:
                    columns = {"helpdesk": helpdesk, "article_id": article.id, **values, "added_at": now,
                               "changed_at": now}
                    conn.execute(f"insert into synced_knowledge ({', '.join(columns)}) values "
                                 f"({', '.join('?' * len(columns))})", list(columns.values()))
                    counts["added"] += 1
                    continue
                digest_before, retired_at = previous
                changed = digest_before != digest or retired_at is not None
                if changed:
                    values.update(changed_at=now, retired_at=None)
                conn.execute(f"update synced_knowledge set {', '.join(f'{k} = ?' for k in values)} "
                             "where helpdesk = ? and article_id = ?", [*values.values(), helpdesk, article.id])
                counts["added" if retired_at is not None else "updated" if changed else "unchanged"] += 1
        return counts

    @_writes
    def retire_knowledge(self, *, helpdesk: str, keep: Collection[str]) -> int:
        """Retire this helpdesk's active articles whose ids are not in `keep` (what a complete sync listed);
        how many. Call it only after a sync that read everything: a partial listing would retire the rest."""
        now = iso(utcnow())
        keep = set(keep)
        with self._immediate() as conn:
            gone = [row[0] for row in conn.execute("select article_id from synced_knowledge where helpdesk = ? and"
                                                   " retired_at is null", (helpdesk,)) if row[0] not in keep]
            conn.executemany("update synced_knowledge set retired_at = ? where helpdesk = ? and article_id = ?",
                             [(now, helpdesk, article_id) for article_id in gone])
        return len(gone)

    def synced_articles(self, helpdesk: str) -> list[Article]:
        """This helpdesk's active synced articles and macros, by id."""
        return [Article(id=row["article_id"], title=row["title"], body=row["body"],
                        updated_at=row["source_updated_at"])
                for row in self.db.query("select article_id, title, body, source_updated_at from synced_knowledge"
                                         " where helpdesk = ? and retired_at is null order by article_id",
                                         [helpdesk])]

    def knowledge_rows(self, helpdesk: str, *, retired: bool = False) -> list[dict]:
        """This helpdesk's synced knowledge for people to read (`python -m bot knowledge list`): every column
        but the body, with its length in `chars`; retired rows too when `retired`."""
        where = "" if retired else " and retired_at is null"
        return list(self.db.query(
            "select helpdesk, article_id, kind, title, length(body) as chars, needs_person, source_updated_at,"
            " added_at, changed_at, synced_at, retired_at from synced_knowledge where helpdesk = ?"
            f"{where} order by kind, article_id", [helpdesk]))

    def knowledge_revision(self, helpdesk: str) -> str:
        """A value that changes whenever this helpdesk's synced knowledge gains, changes or retires an article."""
        active, changed, retired = self.db.execute(
            "select count(*) - count(retired_at), max(changed_at), max(retired_at) from synced_knowledge"
            " where helpdesk = ?", [helpdesk]).fetchone()
        return f"{active}:{changed or ''}:{retired or ''}"

    # -- erasure: a customer's conversations forgotten on request (bot.flows.erasure) -------------------------

    def tickets_to_erase(self, *, helpdesk: str, ticket_ids: Collection[str] = (),
                         email: str | None = None) -> list[str]:
        """The keys of the tickets Seam kept of `helpdesk` with one of these ids, or whose requester is `email`
        (in any case: `requester_key`) whatever helpdesk they came from (an address is the customer's, and a file
        may hold tickets of a helpdesk used before), in ticket order."""
        found: dict[str, str] = {}
        for chunk in _chunks(sorted({ticket_key(helpdesk, str(i)) for i in ticket_ids})):
            found.update(self.db.execute(f"select key, ticket_id from tickets where key in"
                                         f" ({', '.join('?' for _ in chunk)})", chunk).fetchall())
        if email is not None:
            # Each helpdesk the file holds requesters of, found by skipping through the (helpdesk, requester_key)
            # index, then the address looked up in each: no scan of the tickets.
            found.update(self.db.execute(
                "with recursive helpdesks(name) as"
                " (select min(helpdesk) from tickets where requester_key is not null union all"
                "  select (select min(helpdesk) from tickets where requester_key is not null and helpdesk > name)"
                "  from helpdesks where name is not null)"
                " select key, ticket_id from tickets where requester_key = ?"
                " and helpdesk in (select name from helpdesks where name is not null)",
                [requester_key(email)]).fetchall())
        return sorted(found, key=lambda key: (len(found[key]), found[key]))

    def idle_tickets(self, before: datetime, *, limit: int, idle_kinds: Collection[str]) -> list[str]:
        """Up to `limit` tickets holding text (`HOLDS_TEXT`) on which nothing happened since `before`: no event seen
        and no escalation changed (an agent's reply days after the ticket last changed counts), oldest first. Those
        still being worked on (`busy_tickets`) are left out here, not after: however many of them are the oldest,
        a round reaches the tickets behind them."""
        cutoff = iso(before)
        busy, params = _busy(idle_kinds)
        return [row[0] for row in self.db.execute(
            f"select key from tickets where {HOLDS_TEXT} and last_seen_at < ? and not exists"
            " (select 1 from escalations where escalations.ticket_key = tickets.key and escalations.updated_at >= ?)"
            f" and not {busy} order by last_seen_at limit ?", [cutoff, cutoff, *params, limit]).fetchall()]

    def busy_tickets(self, keys: Sequence[str], *, idle_kinds: Collection[str]) -> list[str]:
        """Of these tickets, those still being worked on: an escalation not finished, or a job still to run
        whose kind is not one of `idle_kinds` (jobs that hold no text and decide when they run whether they are
        still wanted)."""
        sql, params = _busy(idle_kinds)
        busy = set()
        for chunk in _chunks(keys):
            busy |= {row[0] for row in self.db.execute(
                f"select key from tickets where key in ({', '.join('?' for _ in chunk)}) and {sql}",
                [*chunk, *params])}
        return [key for key in keys if key in busy]

    def posted_escalations(self, keys: Sequence[str]) -> list[Escalation]:
        """These tickets' escalations whose card is in Slack, oldest first."""
        found: list[Escalation] = []
        for chunk in _chunks(keys):
            found += [Escalation.from_row(row) for row in self.db["escalations"].rows_where(
                f"ticket_key in ({', '.join('?' for _ in chunk)}) and ts is not null", chunk, order_by="id")]
        return found

    def last_erasure(self) -> str:
        """When a ticket was last erased ("" for never): the engine refits when it moves (bot.services). Read on
        every learnt reply, so from m014's index, not the audit log."""
        return self.db.execute("select coalesce(max(erased_at), '') from tickets").fetchone()[0]

    @_writes
    def erase_tickets(self, keys: Sequence[str], *, idle_kinds: Collection[str], redact_card: Callable[[dict], dict],
                      actor: str, drop_vectors: bool = False) -> tuple[dict[str, int], list[str]]:
        """Forget what these tickets' customers wrote, and what was written to them, in one transaction — unless
        one of them is busy (`busy_tickets`, checked in that transaction: a message escalated since the caller's
        check must not lose its card's words under an agent), then nothing is written. The rows
        stay, so counts, stats, the audit trail and exactly-once keep working: the ticket's subject and requester,
        every job's payload (a dead job is settled as done: retrying it would bring the text back), the
        decisions' summary, evidence and answer, the escalations' draft, customer text and sent reply (the card
        kept for Slack is `redact_card`'s, and it counts as changed, so serve's card sweep re-renders it), the
        feedback's texts, and any note an agent added to a rejection reason ("wrong answer: …" keeps "wrong
        answer"). With `drop_vectors`, every embedding cache row made since the earliest of the tickets was first
        seen goes too: a vector is not tied to its ticket, and the engine embeds again what it still needs. What
        Seam erased is audited by ticket id, never by what it held. The rows changed (or dropped) per table, and
        the busy tickets (then nothing changed)."""
        counts = {"tickets": 0, "events": 0, "decisions": 0, "escalations": 0, "feedback": 0, "audit_log": 0}
        now = iso(utcnow())
        # A rejection reason is "reason" or "reason: the agent's note": the note goes, the reason stays.
        reason = "case when instr({0}, ':') > 0 then trim(substr({0}, 1, instr({0}, ':') - 1)) else {0} end"
        audit_reason = reason.format("json_extract(detail, '$.reason')")
        with self._immediate() as conn:
            busy = self.busy_tickets(keys, idle_kinds=idle_kinds)
            if busy:
                return {}, busy
            for chunk in _chunks(keys):
                marks = ", ".join("?" for _ in chunk)
                counts["tickets"] += conn.execute(
                    "update tickets set subject = null, requester = null, requester_key = null, erased_at = ?"
                    f" where key in ({marks})",
                    [now, *chunk]).rowcount
                counts["events"] += conn.execute(
                    "update events set body = null, last_error = null, state = 'done',"
                    # An outcome's detail may quote a helpdesk's refusal ("not sent: … answered 422: {…}"): its
                    # head stays ("not sent"), as a rejection reason keeps its code.
                    " outcome = case when instr(outcome, ':') > 0 then substr(outcome, 1, instr(outcome, ':') - 1)"
                    " else coalesce(outcome, 'erased') end,"
                    f" processed_at = coalesce(processed_at, ?) where {EVENT_TICKET_KEY} in ({marks})"
                    " and state in ('done', 'dead')", [now, *chunk]).rowcount
                counts["decisions"] += conn.execute(
                    "update decisions set summary = null, evidence = null, answer = null"
                    f" where ticket_key in ({marks})", chunk).rowcount
                escalations = conn.execute(f"select id, card from escalations where ticket_key in ({marks})",
                                           chunk).fetchall()
                for escalation_id, card in escalations:
                    conn.execute(
                        "update escalations set card = ?, draft = null, customer_text = null, sent_text = null,"
                        f" last_error = null, reject_reason = {reason.format('reject_reason')}, updated_at = ?"
                        " where id = ?",
                        [json.dumps(redact_card(json.loads(card or "{}"))), now, escalation_id])
                counts["escalations"] += len(escalations)
                counts["feedback"] += conn.execute(
                    "update feedback set customer_text = null, draft = null, final_text = null,"
                    f" reason = {reason.format('reason')} where ticket_key in ({marks})", chunk).rowcount
                ids = [row[0] for row in escalations]
                if ids:
                    counts["audit_log"] += conn.execute(
                        f"update audit_log set detail = json_set(detail, '$.reason', {audit_reason})"
                        f" where json_extract(detail, '$.escalation_id') in ({', '.join('?' for _ in ids)})"
                        " and json_extract(detail, '$.reason') like '%:%'", ids).rowcount
                    # A helpdesk's refusal may quote what was sent (the reply, the customer's words).
                    counts["audit_log"] += conn.execute(
                        "update audit_log set detail = json_remove(detail, '$.error')"
                        " where action = 'escalation_send_failed' and json_extract(detail, '$.escalation_id') in"
                        f" ({', '.join('?' for _ in ids)})", ids).rowcount
            if drop_vectors:
                since = min((conn.execute(f"select coalesce(min(first_seen_at), '') from tickets where key in"
                                          f" ({', '.join('?' for _ in chunk)})", chunk).fetchone()[0]
                             for chunk in _chunks(keys)), default="")
                counts["embedding_cache"] = conn.execute("delete from embedding_cache where created_at >= ?",
                                                         [since]).rowcount
            conn.execute("insert into audit_log (at, actor, action, detail) values (?, ?, 'erase', ?)",
                         [now, actor, json.dumps({"ticket_ids": [k.split(":", 1)[1] for k in keys], "rows": counts})])
        return counts, []

    @_writes
    def expire_vectors(self, before: datetime, *, actor: str) -> int:
        """Drop the embedding cache rows made before `before` (`[retention]`: a vector made from a ticket's text
        lives at most `erase_after`; one still needed is made again at the next fit), audited with how many
        (action `expire_vectors`) when there were any. How many."""
        with self._immediate() as conn:
            dropped = conn.execute("delete from embedding_cache where created_at < ?", [iso(before)]).rowcount
            if dropped:
                conn.execute("insert into audit_log (at, actor, action, detail) values (?, ?, 'expire_vectors', ?)",
                             [iso(utcnow()), actor, json.dumps({"rows": {"embedding_cache": dropped}})])
        return dropped

    # -- settings, exclusions and audit ----------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self._one("settings", "key = ?", [key])
        return json.loads(row["value"]) if row else default

    def setting_record(self, key: str) -> dict | None:
        """A run-time setting with who changed it last and when: value (decoded), updated_by, updated_at."""
        row = self._one("settings", "key = ?", [key])
        return {**row, "value": json.loads(row["value"])} if row else None

    @_writes
    def set_setting(self, key: str, value: Any, *, actor: str, audit: bool = True) -> None:
        """Store a run-time setting; people's changes are audited, Seam's own bookkeeping need not be."""
        with self.db.atomic():
            self.db["settings"].upsert({"key": key, "value": json.dumps(value), "updated_by": actor,
                                        "updated_at": iso(utcnow())}, pk="key")
            if audit:
                self.audit(actor=actor, action=f"set {key}", detail={"value": value})

    def exclusions(self) -> list[dict]:
        """Exclusion rules managers added and did not remove: id, rule, created_by, created_at."""
        return list(self.db.query("select id, rule, created_by, created_at from exclusions "
                                  "where removed_at is null order by id"))

    @_writes
    def add_exclusion(self, rule: str, *, actor: str) -> int:
        with self.db.atomic():
            row_id = self.db["exclusions"].insert({"rule": rule, "created_by": actor,
                                                   "created_at": iso(utcnow())}).last_pk
            self.audit(actor=actor, action="exclude", detail={"id": row_id, "rule": rule})
        return row_id

    @_writes
    def remove_exclusion(self, exclusion_id: int, *, actor: str) -> None:
        with self.db.atomic():
            rule = self._one("exclusions", "id = ?", [exclusion_id])["rule"]
            self.db["exclusions"].update(exclusion_id, {"removed_by": actor, "removed_at": iso(utcnow())})
            self.audit(actor=actor, action="unexclude", detail={"id": exclusion_id, "rule": rule})

    @_writes
    def audit(self, *, actor: str, action: str, detail: dict | None = None) -> None:
        self.db["audit_log"].insert({"at": iso(utcnow()), "actor": actor, "action": action,
                                     "detail": json.dumps(detail or {})})

    def audit_rows(self, *, limit: int, actor: str | None = None) -> list[dict]:
        """The audit log, newest first, with `detail` decoded."""
        where, params = ("where actor = ?", [actor]) if actor else ("", [])
        rows = self.db.query(f"select id, at, actor, action, detail from audit_log {where} order by id desc limit ?",
                             [*params, limit])
        return [{**row, "detail": json.loads(row["detail"] or "{}")} for row in rows]


def knowledge_hash(article: Article) -> str:
    """What tells a changed article from an unchanged one: its title and text."""
    return hashlib.sha256(f"{article.title}\n\x00{article.body}".encode()).hexdigest()


class EmbeddingCache:
    """The SQLite embedding cache as `bot.engine.embeddings.EmbeddingCache` wants it; a view of one Store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, bytes]:
        return self._store.cached_embeddings(model, hashes)

    def put_many(self, model: str, vectors: Mapping[str, bytes]) -> None:
        self._store.cache_embeddings(model, vectors)
