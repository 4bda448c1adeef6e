"""Erasure on request: Seam forgets what it kept of a customer's conversations (`python -m bot forget`) — a
customer exercising their right to erasure, or a ticket that should never have been kept.

Seam keeps its own copy of what it handled: the ticket's subject and requester, each job's payload (and a failed
job's error), each decision's summary, evidence and answer, each escalation's card, draft, reply and last error,
the feedback log's texts, which the engine learns from, and an agent's note on a rejection (in the feedback and
the audit log). Erasure blanks those and keeps the rows, so counts, `/escalation stats`, the audit
trail and exactly-once processing go on working (bot.store `erase_tickets`). The escalation's card in Slack is
re-rendered without the conversation by serve's card sweep, and what Seam posted in its thread (the transcript,
its notes) and the DMs it sent people about it are deleted by an `erase_thread` job serve runs, and each App
Home that lists one of the tickets' escalations is published again by a `refresh_home` job (bot.flows.homes).
The sentence vectors cached since the tickets came go in the erasure's transaction (they are keyed by text, not
by ticket; the engine embeds again what it still needs). The helpdesk is the system of record: the ticket itself
is erased there. A running serve's engine drops the replies it learnt from the tickets at its next refit (the
erasure moves its revision; the knowledge sync's round or the next reply learnt refits), a restart at once.

By ticket id the tickets are the current helpdesk's; by email they are the customer's whichever helpdesk they came
through (a file may hold a helpdesk's used before). What is left afterwards is the rows' times, routes, confidences,
reasons, answer sources and who acted (counts and stats), and the helpdesk's ids: a redelivered webhook or a
reconciliation of the same turn finds its event already handled and keeps nothing again; a new message on the
ticket is new data, kept and erased like any (tests/test_erasure_audit.py searches everywhere for what is left).

An escalation still being worked on (not sent, rejected or answered), or a job of the ticket still to run, makes
the ticket busy: erasing it then would leave an agent a card with nothing to act on, or let the job bring the text
back. Busy tickets are named and nothing is erased until they are finished.

`[retention] erase_after` does the same on its own for every ticket on which nothing happened for that long
(`erase_idle`, run by bot.jobs.retention), skipping busy ones until they are finished, and drops the cached
vectors older than that (`expire_vectors`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta

from bot.flows.homes import REFRESH_HOME_KIND
from bot.flows.lifecycle import KEEP_WARM_KIND, REMINDER_KIND, SLA_KIND
from bot.slack.blocks import erased_card
from bot.slack.poster import ERASE_THREAD_KIND, THREAD_JOB_PRIORITY
from bot.store import Store
from bot.text import iso, utcnow

# Jobs that hold no text: scheduled ones, which see for themselves when they run that their escalation is
# finished, and an earlier erasure's clean-up in Slack.
IDLE_KINDS = (REMINDER_KIND, SLA_KIND, KEEP_WARM_KIND, ERASE_THREAD_KIND, REFRESH_HOME_KIND)


@dataclass(frozen=True)
class Erasure:
    """The tickets found (helpdesk ids: "512 (freshdesk)" for one of another helpdesk than the one asked about),
    those busy, the rows changed per table (empty until erased), and the tickets' keys."""

    tickets: list[str]
    busy: list[str]
    changed: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)


def _ids(keys: Collection[str], helpdesk: str) -> list[str]:
    return [ticket_id if name == helpdesk else f"{ticket_id} ({name})"
            for name, ticket_id in (key.split(":", 1) for key in keys)]


def find(store: Store, *, helpdesk: str, ticket_ids: Collection[str] = (), email: str | None = None) -> Erasure:
    """The tickets Seam kept of `helpdesk` with these ids, or of any helpdesk with this requester's email (an
    address is the customer's whichever helpdesk they wrote through: a file may hold a helpdesk used before), and
    which are busy."""
    keys = store.tickets_to_erase(helpdesk=helpdesk, ticket_ids=ticket_ids, email=email)
    return Erasure(tickets=_ids(keys, helpdesk), busy=_ids(store.busy_tickets(keys, idle_kinds=IDLE_KINDS), helpdesk),
                   keys=keys)


def erase(store: Store, *, helpdesk: str, ticket_ids: Collection[str] = (), email: str | None = None,
          actor: str) -> Erasure:
    """Erase what Seam kept of the tickets `find` finds, unless one of them is busy (then nothing is erased: see
    `busy`)."""
    found = find(store, helpdesk=helpdesk, ticket_ids=ticket_ids, email=email)
    if found.busy or not found.tickets:
        return found
    changed, busy = _erase(store, found.keys, actor=actor, drop_vectors=True)
    return Erasure(tickets=found.tickets, busy=_ids(busy, helpdesk), changed=changed, keys=found.keys)


def erase_idle(store: Store, *, after: float, limit: int) -> int:
    """`[retention]`: erase up to `limit` tickets on which nothing happened for `after` seconds, leaving out any
    still being worked on (they come back once finished); how many were erased. Audited as actor `retention`."""
    keys = store.idle_tickets(utcnow() - timedelta(seconds=after), limit=limit, idle_kinds=IDLE_KINDS)
    if not keys:
        return 0
    # One of them busy now (written on since the look-up): this round erases nothing, and the run ends; the
    # next run finds the others again.
    return 0 if _erase(store, keys, actor="retention")[1] else len(keys)


def expire_vectors(store: Store, *, after: float) -> int:
    """`[retention]`: drop the cached sentence vectors made more than `after` seconds ago, whatever text they were
    made from; how many. Audited as actor `retention`."""
    return store.expire_vectors(utcnow() - timedelta(seconds=after), actor="retention")


def _erase(store: Store, keys: list[str], *, actor: str,
           drop_vectors: bool = False) -> tuple[dict[str, int], list[str]]:
    """Erase these tickets unless one is busy now (the store checks in its transaction): the rows changed per
    table, and the busy tickets. With `drop_vectors`, the cached sentence vectors made since the tickets came go
    too (retention, which erases old tickets, drops old vectors instead: `expire_vectors`)."""
    at = iso(utcnow())
    changed, busy = store.erase_tickets(keys, idle_kinds=IDLE_KINDS, redact_card=lambda card: erased_card(card, at=at),
                                        actor=actor, drop_vectors=drop_vectors)
    if busy:
        return changed, busy
    for escalation in store.posted_escalations(keys):
        # Once per escalation: a second erasure of the same ticket finds the thread already emptied.
        store.record_event(kind=ERASE_THREAD_KIND, helpdesk=escalation.ticket_key.split(":", 1)[0],
                           dedupe_key=f"erase-thread:{escalation.id}", ticket_id=escalation.ticket_id,
                           body=json.dumps({"escalation_id": escalation.id}), priority=THREAD_JOB_PRIORITY)
    helpdesk = keys[0].split(":", 1)[0]
    for user_id in store.homes_listing(keys):
        # Not a ticket's job (no ticket id): it must not make a ticket busy, nor be erased with one.
        store.record_event(kind=REFRESH_HOME_KIND, helpdesk=helpdesk, dedupe_key=f"refresh-home:{user_id}:{at}",
                           ticket_id="", body=json.dumps({"user_id": user_id}), priority=THREAD_JOB_PRIORITY)
    return changed, []
