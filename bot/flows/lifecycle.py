"""What follows an escalation's post: reminders while nobody claims it, the SLA watched, and keep-warm updates to
a customer still waiting on a person — each a durable job in the store's queue, due at its time.

`Lifecycle.after_post` runs when the pipeline has posted a card and schedules, once per escalation (a dedupe
key per escalation and step, so a retry or a redelivery schedules nothing twice):

- `reminder` (`[reminders]`): at post + `unclaimed_after`, if nobody claimed it, a reply in its thread pings
  the route's mention (`Escalation.mention`; none named when the default channel took it) and schedules the
  manager step at post + `escalate_after`, which pings the managers (MANAGER_USER_IDS, `[slack]
  manager_group`). A claim, or a finished escalation, stops both: the job then does nothing.
- `sla_watch` (`[sla_watch]`): the ticket's due time is stored (`sla_due_at`) — the helpdesk's (Zendesk: its
  SLA policy's next breach, `bot.helpdesk.zendesk`), else the response target for its priority from when the
  customer started waiting (`triggers.waiting_since`, with Seam's notice and keep-warm updates marked as no
  reply: `mark_acknowledgements`). At due − `warn_before`, if the escalation is not finished and the ticket
  still waits on a person, `sla_warned_at` is set (the card turns red), a reply in the thread pings the owner
  (the route's mention when unclaimed). At the due time the same check records `sla_breached_at` (counted in stats).
  The helpdesk's due time is followed when it moves (a priority changed, the SLA policy changed): a ticket event
  that shows it moved (reconciliation reads the update) queues the steps not done yet for the new time
  (`follow_due`), and each step reads it again when it runs — later, it is queued again for then; earlier, it runs
  with it. The card shows the time moved. A helpdesk that gives no time now (its SLA paused or met) leaves the
  scheduled one. On Zendesk, Seam's own notice is an agent's public reply to its SLA policy (it may count the first
  reply as met); the warning then follows the policy's next breach.
- `keep_warm` (`[keep_warm]`, per route `keep_warm = false`): at post + `after`, and every `every` after that,
  at most `max` times, while the ticket waits on a person (not solved, no public reply by an agent since the
  customer's last message — a plain thank-you for that reply asks nothing — no reply sent through Seam, the
  escalation not answered in the helpdesk, no newer message with an escalation of its own), the template goes to
  the customer as a public reply and a line in the thread says so.

Each job runs after the ticket jobs due (the transcripts' queue priority): new cards first, as in a burst.

Every step is recorded whole (`Store.finish_step`: its effect, the escalation's column and the audit entry in
one transaction) and its Slack line is posted once (`Poster.thread_note`, found again by metadata after a
crash); the keep-warm reply is an effect recorded before and after, and a retry after a crash looks for it on
the ticket (`reply_landed`'s rule, counting the earlier updates since the escalation's message) before sending it
again. A step an earlier attempt began is finished whatever happened since (a keep-warm update only when it is on
the ticket: one that did not reach the customer is sent only while they still wait); one not begun checks again
whether it is still wanted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.config import Settings
from bot.flows import routes
from bot.flows.quality import asking_index
from bot.helpdesk.base import Helpdesk, recorded_elsewhere
from bot.models import Escalation, EscalationState, Event, Ticket
from bot.policy import triggers
from bot.slack.blocks import escape
from bot.slack.poster import THREAD_JOB_PRIORITY, Poster
from bot.store import Store
from bot.text import iso, parse_time, utcnow

log = logging.getLogger(__name__)

REMINDER_KIND, SLA_KIND, KEEP_WARM_KIND = "reminder", "sla_watch", "keep_warm"


def span(seconds: float) -> str:
    """A waiting time in words: "45 seconds", "30 minutes", "2 hours", "1.5 days"."""
    seconds = max(0.0, seconds)
    return f"{round(seconds)} second{'' if round(seconds) == 1 else 's'}" if seconds < 60 else routes.in_words(seconds)


def slack_time(moment: datetime) -> str:
    """A time every reader sees in their own time zone (Slack's date formatting), with a UTC fallback."""
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def waiting_on_person(ticket: Ticket) -> str | None:
    """Why the ticket no longer waits on a person, or None while it does: solved (or closed), or a public reply
    by an agent after the customer's latest message that asks something — a plain thank-you after that reply
    ("Thanks, that helps!", `bot.flows.quality.is_thanks`) asks nothing: the customer was answered."""
    if ticket.finished:
        return f"the ticket is {ticket.status}"
    asking = asking_index(ticket)
    after = ticket.messages[asking + 1:] if asking is not None else ticket.messages
    if any(m.author == "agent" and m.public for m in after):
        return "an agent replied"
    return None


def mark_acknowledgements(ticket: Ticket, settings: Settings) -> Ticket:
    """The ticket with Seam's own acknowledgements marked (`Message.acknowledgement`): public messages not by the
    customer that say what Seam sends a waiting customer — the `[keep_warm]` template, or the `[customer_notice]`
    as rendered for this ticket with any of the configured response times (or none) — compared word for word, as
    helpdesks that store HTML give replies back with other spacing. They promise a person, so the SLA clock runs
    on through them and they are not AI answers (bot.policy.triggers).

    The helpdesk gives back no id for what Seam posts, and the notice holds the customer's name, which the store
    keeps nowhere erasure would not clear: the texts are rendered again from the settings in force, so words sent
    under a template changed since are no longer recognised (they count as a reply again, as before)."""
    texts = _acknowledgement_texts(ticket, settings)
    found = [m.public and m.author != "customer" and not m.acknowledgement and " ".join(m.body.split()) in texts
             for m in ticket.messages]
    if not any(found):
        return ticket
    return replace(ticket, messages=tuple(replace(m, acknowledgement=True) if new else m
                                          for m, new in zip(ticket.messages, found, strict=True)))


def before_acknowledgements(ticket: Ticket) -> Ticket:
    """The ticket without the acknowledgements that end it: a replayed export ends with the notice Seam sent when
    it escalated the question, which is that decision's outcome, not part of the question (`simulate`)."""
    end = len(ticket.messages)
    while end and ticket.messages[end - 1].acknowledgement:
        end -= 1
    return ticket if end == len(ticket.messages) else replace(ticket, messages=ticket.messages[:end])


def _acknowledgement_texts(ticket: Ticket, settings: Settings) -> frozenset[str]:
    """Every text Seam may have sent this ticket's customer to say a person will follow up, spacing normalised:
    the notice as `routes.customer_notice` renders it, for the requester's first name (or "there") and each
    response time a route or `[customer_notice] response_time` names (or none known), and the keep-warm update."""
    notice = settings.customer_notice
    first = (ticket.requester_name or "").split()[:1]
    seconds = [*notice.response_time.values(), *(r.response_time for r in settings.routes if r.response_time)]
    texts = {settings.keep_warm.template}
    for name in {"there", *first}:
        for hours in {None, *(routes.in_words(s) for s in seconds)}:
            texts.add(notice.template.format_map({"name": name, "hours": hours or "as soon as we can",
                                                  "within": f" within {hours}" if hours else ""}))
    return frozenset(" ".join(t.split()) for t in texts)


def updates_on_ticket(ticket: Ticket, text: str, *, since: int | None = None) -> int:
    """How many public replies after the message at index `since` (default: the customer's latest message) say
    `text` (compared word for word, as helpdesks that store HTML give replies back with other spacing)."""
    latest = ticket.latest_customer_message
    if since is None and latest is not None:
        since = ticket.messages.index(latest)
    after = ticket.messages[since + 1:] if since is not None else ticket.messages
    wanted = " ".join(text.split())
    return sum(m.author != "customer" and m.public and " ".join(m.body.split()) == wanted for m in after)


@dataclass
class Lifecycle:
    settings: Settings
    store: Store
    helpdesk: Helpdesk
    poster: Poster
    clock: Callable[[], datetime] = utcnow

    def handlers(self) -> dict[str, Callable[[Event], str]]:
        """The job kinds this module runs, for the worker."""
        return {kind: self._here(handler) for kind, handler in (
            (REMINDER_KIND, self.reminder), (SLA_KIND, self.sla_watch), (KEEP_WARM_KIND, self.keep_warm))}

    def _here(self, handler: Callable[[Event], str]) -> Callable[[Event], str]:
        """`handler` for the jobs of this deployment's helpdesk; one scheduled before HELPDESK changed is skipped
        (a keep-warm update would reach another customer's ticket)."""
        def run(event: Event) -> str:
            if elsewhere := recorded_elsewhere(event.helpdesk, current=self.helpdesk.name):
                return f"skipped: {elsewhere}"
            return handler(event)
        return run

    # -- scheduling -----------------------------------------------------------------------------------------

    def after_post(self, escalation_id: int, ticket: Ticket) -> list[str]:
        """Schedule what follows the post of escalation `escalation_id` (its card is in Slack); the kinds
        scheduled. Safe to call again: each job is once per escalation and step."""
        escalation = self.store.escalation(escalation_id)
        if escalation is None or not escalation.ts:
            return []
        now = self.clock()
        scheduled = []
        reminders, sla, warm = self.settings.reminders, self.settings.sla_watch, self.settings.keep_warm
        if reminders.enabled:
            self._schedule(REMINDER_KIND, escalation, "unclaimed", now + timedelta(seconds=reminders.unclaimed_after),
                           posted_at=iso(now))
            scheduled.append(REMINDER_KIND)
        if sla.enabled:
            due = self.due_at(ticket, posted=now)
            if iso(due) != escalation.sla_due_at:
                self.store.update_escalation(escalation.id, sla_due_at=iso(due))
                self.poster.refresh(escalation.id)
            self._schedule(SLA_KIND, escalation, "warn", max(now, due - timedelta(seconds=sla.warn_before)),
                           due=iso(due))
            self._schedule(SLA_KIND, escalation, "breach", max(now, due), due=iso(due))
            scheduled.append(SLA_KIND)
        if warm.enabled and self.keeps_warm(escalation.route):
            self._schedule(KEEP_WARM_KIND, escalation, "1", now + timedelta(seconds=warm.after), n=1)
            scheduled.append(KEEP_WARM_KIND)
        return scheduled

    def due_at(self, ticket: Ticket, *, posted: datetime) -> datetime:
        """When the ticket is due: the helpdesk's time (Zendesk: its SLA policy's next breach, else its own due
        date), else the response target for its priority from when the customer started waiting (their first
        message since the last reply — Seam's notice and keep-warm updates are none: `mark_acknowledgements` —
        else the ticket's creation: `triggers.waiting_since`) — or from the post, when the helpdesk gives
        neither."""
        due = parse_time(ticket.sla_due_at)
        if due is not None:
            return due
        start = triggers.waiting_since(mark_acknowledgements(ticket, self.settings)) or posted
        return start + timedelta(seconds=self.settings.sla_watch.target(ticket.priority))

    def keeps_warm(self, route_name: str | None) -> bool:
        """Whether escalations of this route get keep-warm updates: `keep_warm` on its `[[routes]]` entry when
        set there, else yes."""
        route = routes.route_named(self.settings, route_name)
        allowed = route.keep_warm if route is not None else None
        return True if allowed is None else bool(allowed)

    def _schedule(self, kind: str, escalation: Escalation, step: str, run_at: datetime, *, dedupe: str | None = None,
                  **body: object) -> bool:
        _, new = self.store.record_event(
            kind=kind, helpdesk=escalation.ticket_key.split(":", 1)[0], ticket_id=escalation.ticket_id,
            dedupe_key=f"{kind}:{escalation.id}:{dedupe or step}", run_at=run_at,
            body=json.dumps({"escalation_id": escalation.id, "step": step, **body}),
            # Each posts in an older escalation's thread: when many come due at once (an hour after a burst, or
            # after an outage), new tickets' jobs go first, so their cards are not held behind them.
            priority=THREAD_JOB_PRIORITY)
        if new:
            log.info("escalation %s: %s %s scheduled for %s", escalation.id, kind, step, iso(run_at))
        return new

    def _job(self, event: Event) -> tuple[dict, Escalation | None]:
        body = json.loads(event.body or "{}")
        return body, self.store.escalation(int(body["escalation_id"]))

    # -- reminders ------------------------------------------------------------------------------------------

    def reminder(self, event: Event) -> str:
        """The `reminder` job: step `unclaimed` pings the route's mention, step `manager` the managers — only
        while nobody has claimed the escalation."""
        body, escalation = self._job(event)
        if escalation is None:
            return "skipped: no such escalation"
        step = body["step"]
        key = f"{REMINDER_KIND}:{escalation.id}:{step}"
        if self.store.effect(key) is None:
            if escalation.state != EscalationState.OPEN:
                return f"stopped: the escalation is {escalation.state}"
            if not self.settings.reminders.enabled:
                return "skipped: reminders are off"
            if step == "manager" and not self.settings.reminders.escalate_after:
                # Turned off (and serve restarted) while this page was queued.
                return "skipped: managers are never paged (escalate_after = 0)"
        now = self.clock()
        posted = parse_time(body.get("posted_at")) or parse_time(escalation.created_at) or now
        if self.store.begin_effect(key, kind=REMINDER_KIND)["state"] == "done":
            # An earlier attempt recorded the step and died (or failed) before queueing the next one: queue it
            # now (once: its dedupe key), or the managers are never paged.
            self._schedule_manager(escalation, step, posted)
            return "done before"
        waited = span((now - posted).total_seconds())
        if step == "manager":
            mentioned = routes.manager_mentions(self.settings)
            who = mentioned or "(no managers to page: set MANAGER_USER_IDS or [slack] manager_group)"
            text = f"🚨 Still unclaimed after {waited}. {who} — please find someone to take it."
            fields, action = {"manager_paged_at": iso(now)}, "manager_paged"
        else:
            mentioned = escalation.mention or ""
            text = f"⏰ Still unclaimed after {waited}." + (f" {mentioned} — can someone take it?" if mentioned
                                                            else " Can someone take it?")
            fields, action = {"reminded_at": iso(now)}, "reminder_sent"

        def still_open() -> bool:
            current = self.store.escalation(escalation.id)
            return current is not None and current.state == EscalationState.OPEN

        if not self.poster.thread_note(escalation, key=f"reminder-{step}", text=text, wanted=still_open):
            self.store.forget_effect(key)
            return "stopped: taken or closed while the reminder waited for its turn to post"
        self.store.finish_step(key, escalation_id=escalation.id, fields=fields, action=action, detail={
            "escalation_id": escalation.id, "ticket_id": escalation.ticket_id, "step": step, "waited": waited,
            "mentioned": mentioned or None, "route": escalation.route})
        self._schedule_manager(escalation, step, posted)
        self.poster.refresh(escalation.id)
        return "managers paged" if step == "manager" else "reminded"

    def _schedule_manager(self, escalation: Escalation, step: str, posted: datetime) -> None:
        """After the `unclaimed` step, the managers' step at post + `escalate_after` (when set)."""
        escalate_after = self.settings.reminders.escalate_after
        if step == "unclaimed" and escalate_after:
            self._schedule(REMINDER_KIND, escalation, "manager", posted + timedelta(seconds=escalate_after),
                           posted_at=iso(posted))

    # -- SLA watch ------------------------------------------------------------------------------------------

    def sla_watch(self, event: Event) -> str:
        """The `sla_watch` job: step `warn` (the breach is within `warn_before`) warns in the thread and turns
        the card red; step `breach` (the due time) records the breach — while the escalation is not finished and
        the ticket still waits on a person."""
        body, escalation = self._job(event)
        if escalation is None:
            return "skipped: no such escalation"
        step = body["step"]
        key = f"{SLA_KIND}:{escalation.id}:{step}"
        if self.store.effect(key) is None:
            if escalation.state.finished:
                return f"stopped: the escalation is {escalation.state}"
            if not self.settings.sla_watch.enabled:
                return "skipped: the SLA watch is off"
            ticket = self.helpdesk.fetch_ticket(escalation.ticket_id)
            met = waiting_on_person(ticket)
            if met is not None:
                return f"stopped: {met}"
            body, later = self._due_now(escalation, step, body, ticket)
            if later is not None:
                return later
        if self.store.begin_effect(key, kind=SLA_KIND)["state"] == "done":
            return "done before"
        now = self.clock()
        due = parse_time(body.get("due")) or parse_time(escalation.sla_due_at) or now
        detail = {"escalation_id": escalation.id, "ticket_id": escalation.ticket_id, "due_at": iso(due),
                  "owner": escalation.owner, "route": escalation.route}
        if step == "warn":
            who = f"<@{escalation.owner}>" if escalation.owner else escalation.mention or ""
            left = (due - now).total_seconds()
            # Past already when the step runs (a ticket that came in overdue, or a restart after its time).
            when = (f"is due in {span(left)}" if left >= 1 else "is due now" if left > -60
                    else f"was due {span(-left)} ago")
            text = (f"⏳ The SLA {when} ({slack_time(due)}) and the customer is still waiting."
                    + (f" {who}" if who else ""))
            fields, action = {"sla_warned_at": iso(now)}, "sla_warned"
            detail["mentioned"] = who or None
        else:
            text = f"🔴 The SLA was breached at {slack_time(due)}: the customer is still waiting on a person."
            fields, action = {"sla_breached_at": iso(now)}, "sla_breached"
        self.poster.thread_note(escalation, key=f"sla-{step}", text=text)
        self.store.finish_step(key, escalation_id=escalation.id, fields=fields, action=action, detail=detail)
        self.poster.refresh(escalation.id)
        return "SLA warned" if step == "warn" else "SLA breached"

    def _due_now(self, escalation: Escalation, step: str, body: dict, ticket: Ticket) -> tuple[dict, str | None]:
        """The step's body with the due time the helpdesk gives now, when it moved since the step was scheduled (a
        priority changed, the SLA policy changed), and the card with it; and why the step waits, when its time is
        now later (it is queued again for then). A helpdesk giving no time now (its SLA paused or met) leaves the
        one scheduled."""
        scheduled, fresh = parse_time(body.get("due")), parse_time(ticket.sla_due_at)
        if scheduled is None or fresh is None or abs((fresh - scheduled).total_seconds()) < 60:
            return body, None
        self.store.update_escalation(escalation.id, sla_due_at=iso(fresh))
        self.poster.refresh(escalation.id)
        moved = {**body, "due": iso(fresh)}
        at = fresh - timedelta(seconds=self.settings.sla_watch.warn_before) if step == "warn" else fresh
        if at <= self.clock():
            return moved, None  # earlier now: this step is due already
        self._schedule_moved(escalation, step, fresh, at)
        return moved, f"moved: the ticket is now due at {iso(fresh)}"

    def _schedule_moved(self, escalation: Escalation, step: str, due: datetime, at: datetime) -> None:
        # One job per step and due time, however many events and steps see the same move.
        self._schedule(SLA_KIND, escalation, step, at, dedupe=f"{step}:due{int(due.timestamp())}", due=iso(due))

    def follow_due(self, ticket_key: str, ticket: Ticket) -> str | None:
        """A ticket event showing the helpdesk's due time moved (a priority raised, the SLA policy changed) for
        the ticket's escalation still waiting on a person: the card shows the new time, and the warning and the
        breach steps not done yet are queued for it (the ones queued before find, when they come due, that the
        time moved, or that their step is done). The new due time, or None when it did not move."""
        if not self.settings.sla_watch.enabled:
            return None
        fresh = parse_time(ticket.sla_due_at)
        escalation = self.store.live_escalation(ticket_key) if fresh is not None else None
        if escalation is None or not escalation.ts:
            return None
        shown = parse_time(escalation.sla_due_at)
        if shown is not None and abs((fresh - shown).total_seconds()) < 60:
            return None
        self.store.update_escalation(escalation.id, sla_due_at=iso(fresh))
        self.poster.refresh(escalation.id)
        now = self.clock()
        for step, at in (("warn", fresh - timedelta(seconds=self.settings.sla_watch.warn_before)), ("breach", fresh)):
            if self.store.effect(f"{SLA_KIND}:{escalation.id}:{step}") is None:
                self._schedule_moved(escalation, step, fresh, max(now, at))
        log.info("escalation %s: the ticket's due time moved to %s", escalation.id, iso(fresh))
        return iso(fresh)

    # -- keep-warm ------------------------------------------------------------------------------------------

    def keep_warm(self, event: Event) -> str:
        """The `keep_warm` job: update `n` of `max` to a customer still waiting on a person, then the next one
        scheduled `every` later."""
        body, escalation = self._job(event)
        if escalation is None:
            return "skipped: no such escalation"
        table = self.settings.keep_warm
        n = int(body.get("n") or body["step"])
        key = f"{KEEP_WARM_KIND}:{escalation.id}:{n}"
        started = self.store.effect(key)
        if started is None or started["state"] != "done":
            ticket = self.helpdesk.fetch_ticket(escalation.ticket_id)
            if started is None:
                stop = self._why_not_keep_warm(escalation, ticket, n)
                if stop is not None:
                    return f"stopped: {stop}"
            effect = self.store.begin_effect(key, kind="public_reply")
            if effect["state"] != "done":
                # An earlier attempt may have sent it and died before recording it: update n is on the ticket
                # when n updates follow the message the escalation was made for (the customer may have written
                # again between two updates).
                recovered = not effect["fresh"] and updates_on_ticket(
                    ticket, table.template, since=self._escalated_message(escalation, ticket)) >= n
                if not recovered:
                    # Not on the ticket: whatever an earlier attempt began did not reach the customer, so the
                    # update is still only wanted while they wait (an agent may have answered since).
                    stop = None if effect["fresh"] else self._why_not_keep_warm(escalation, ticket, n)
                    if stop is not None:
                        return f"stopped: {stop}"
                    self.helpdesk.reply(escalation.ticket_id, table.template)
                now = self.clock()
                self.store.finish_step(key, escalation_id=escalation.id,
                                       fields={"keep_warm_sent": n, "last_keep_warm_at": iso(now)},
                                       action="keep_warm_sent", result={"recovered": recovered}, detail={
                                           "escalation_id": escalation.id, "ticket_id": escalation.ticket_id,
                                           "n": n, "max": table.max, "route": escalation.route})
        self.poster.thread_note(escalation, key=f"keep-warm-{n}", text=(
            f"💬 Seam sent the customer a keep-warm update ({n} of {table.max}): “{escape(table.template)}”"))
        if n < table.max:
            self._schedule(KEEP_WARM_KIND, escalation, str(n + 1), self.clock() + timedelta(seconds=table.every),
                           n=n + 1)
        self.poster.refresh(escalation.id)
        return f"kept warm ({n} of {table.max})"

    def _escalated_message(self, escalation: Escalation, ticket: Ticket) -> int | None:
        """Where the customer's message the escalation was made for is in the ticket (its event's turn: the
        comment's id, or its position when the helpdesk gives none), or None when it cannot be found."""
        turn = self.store.event(escalation.event_id).turn_key or ""
        comment = turn[len(escalation.ticket_key) + 1:] if turn.startswith(f"{escalation.ticket_key}:") else ""
        found = next((i for i, m in enumerate(ticket.messages) if m.id is not None and m.id == comment), None)
        if found is None and comment.isdigit() and not any(m.id for m in ticket.messages):
            found = int(comment) - 1 if 0 < int(comment) <= len(ticket.messages) else None
        return found

    def _why_not_keep_warm(self, escalation: Escalation, ticket: Ticket, n: int) -> str | None:
        """Why update `n` should not go out now, or None when it should."""
        if not self.settings.keep_warm.enabled:
            return "keep-warm is off"
        if n > self.settings.keep_warm.max:
            # `max` lowered (and serve restarted) while this update was queued: the customer gets no more.
            return f"keep-warm sends at most {self.settings.keep_warm.max} updates"
        if not self.keeps_warm(escalation.route):
            return f"the route {escalation.route!r} has keep-warm off"
        if escalation.state in (EscalationState.SENDING, EscalationState.SENT):
            return "a reply was sent through Seam"
        if escalation.state == EscalationState.ANSWERED:
            # Even when the customer's thank-you since leaves the ticket looking unanswered (waiting_on_person).
            return "the ticket was answered in the helpdesk"
        if self.store.latest_escalation_id(escalation.ticket_key) != escalation.id:
            return "a newer message has an escalation of its own"
        return waiting_on_person(ticket)
