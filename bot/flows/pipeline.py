"""Orchestration of one accepted webhook: fetch the ticket, decide, then resolve or escalate — exactly once.

The event row is the unit of work (see `bot.jobs.worker`). Each external side effect is recorded before and after
it happens (`effects` table, the escalation's `posting` state), so a retry after a crash checks what already
reached the outside world instead of doing it again:
- a public reply whose record says "started" is looked for among the ticket's comments after the message it
  answers (not after the customer's latest: they may have read it and written again) before resending;
- an escalation still `posting` is looked for in the channel by its message metadata before posting again
  (`bot.slack.poster`);
- the customer notice (a public reply saying a person will follow up, `[customer_notice]`) is an effect keyed by
  the event, looked for on the ticket like any reply before it is sent again.
An escalation's channel and mentions come from the first matching `[[routes]]` entry (`bot.flows.routes`).
The decision is stored on the first attempt and reused by retries, so a retry never changes route — but for an
automatic answer that has not reached the customer when automation was paused meanwhile: decided again, it goes to
a person.

Every automatic answer is recorded, and every event first asks the quality guard (`bot.flows.quality`) whether
the ticket shows the customer coming back after the latest one — before the event is skipped or routed, so a
reopen counts once whatever happens to the new message.

An event whose latest comment is not the customer's (an agent's reply, a note, Seam's own reply), or whose
ticket is solved or closed, may show the ticket answered in the helpdesk, outside Seam: before it is skipped,
`bot.flows.answered` closes the ticket's open and claimed escalations and learns the reply that resolved it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot.config import Settings
from bot.engine.base import Engine
from bot.errors import transient
from bot.flows import routes
from bot.flows.answered import HelpdeskAnswers
from bot.flows.feedback import Learn
from bot.flows.lifecycle import Lifecycle, mark_acknowledgements, waiting_on_person
from bot.flows.quality import QualityGuard, is_thanks
from bot.helpdesk.base import Helpdesk, HelpdeskError, recorded_elsewhere
from bot.models import Decision, Escalation, EscalationState, Event, Message, Reason, Route, Ticket
from bot.pii import mask_payment
from bot.policy.decide import Policy, decide
from bot.slack.blocks import EscalationView, follow_up_note
from bot.slack.poster import Poster
from bot.store import FollowUp, Store, turn_key
from bot.store import ticket_key as key_of
from bot.text import iso, parse_time, utcnow

log = logging.getLogger(__name__)

# How often a follow-up chooses again what to quote when other events on the same ticket keep quoting first: each
# such turn means another worker moved on, and a handful of workers share a ticket at most.
FOLLOW_UP_ATTEMPTS = 5


def _decision_from_row(row: dict) -> Decision:
    parts = (row.get("p_right"), row.get("p_uncovered"))
    return Decision(route=Route(row["route"]), confidence=row["confidence"],
                    reasons=tuple(Reason(**r) for r in json.loads(row["reasons"])), answer=row["answer"],
                    answer_source=row["answer_source"], summary=row["summary"] or "",
                    evidence=tuple(json.loads(row["evidence"] or "[]")),
                    calibration=parts if None not in parts else None)


def reply_landed(ticket: Ticket, answer: str, *, since_latest_customer_message: bool = True,
                 answering: Message | None = None) -> bool:
    """Is `answer` on the ticket already as a public reply (after the message it answers, `answering`; by default
    after the customer's latest message)? What a retry asks before repeating a reply whose earlier attempt may
    have landed (a write that timed out, a crash)."""
    after = ticket.messages
    latest = answering if answering in ticket.messages else ticket.latest_customer_message
    if since_latest_customer_message and latest is not None:
        after = ticket.messages[ticket.messages.index(latest) + 1:]
    # Helpdesks that store replies as HTML give them back with other spacing: compare the words.
    wanted = " ".join(answer.split())
    return any(m.author != "customer" and m.public and " ".join(m.body.split()) == wanted for m in after)


def mark_sent_for_people(ticket: Ticket, sent: Sequence[tuple[str, str | None]]) -> Ticket:
    """The ticket with the replies people sent through Seam from Slack marked `Message.from_person`: Seam's
    helpdesk user delivered them, so the helpdesk names the bot, but a person answered — the count of the AI's
    answers passes over them (bot.policy.triggers `ai_answered_twice`). `sent`: each reply's text and when its
    escalation was made, oldest first. Each marks one message, the first of the bot's public ones with its words
    (spacing aside) not before its escalation: the AI may send the same words itself — a draft a person approved is
    the engine's answer, and a reply they wrote is learnt — and those remain the AI's."""
    marks = [False] * len(ticket.messages)
    for text, after in sent:
        wanted, since = " ".join(text.split()), parse_time(after)
        for index, message in enumerate(ticket.messages):
            if marks[index] or message.author != "bot" or not message.public \
                    or " ".join(message.body.split()) != wanted:
                continue
            at = parse_time(message.created_at)
            if since is not None and at is not None and at < since:
                continue
            marks[index] = True
            break
    if not any(marks):
        return ticket
    return replace(ticket, messages=tuple(replace(m, from_person=True) if mark else m
                                          for m, mark in zip(ticket.messages, marks, strict=True)))


def _thanked_after_a_reply(ticket: Ticket) -> bool:
    """The customer's latest message is a plain thank-you that follows a public reply."""
    messages = ticket.messages
    if len(messages) < 2 or messages[-1].author != "customer":
        return False
    previous = next((m for m in reversed(messages[:-1]) if m.public), None)
    return previous is not None and previous.author != "customer" and is_thanks(messages[-1].body)


def _new_messages(ticket: Ticket, escalation: Escalation) -> tuple[list[Message], str | None]:
    """The customer's messages the escalation's thread has not shown yet, and the time of the newest: those
    written after the newest one shown (the card's `follow_up_until`: the message the card answers, then the last
    follow-up quoted), so two quick messages whose webhooks are handled as one event are both quoted, and none
    twice. The times compared are all the helpdesk's, so its clock running ahead of Seam's or behind it changes
    nothing; an escalation recorded with no message time falls back to when the card was recorded. A helpdesk
    that gives no message times: the latest message alone."""
    since = parse_time(escalation.card.get("follow_up_until")) or parse_time(escalation.created_at)
    timed = _written(ticket.customer_messages)
    if since is not None and timed:
        fresh = [(written, m) for written, m in timed if written > since]
        # None new (another event quoted them already): nothing to quote.
        return [m for _, m in fresh], _newest(fresh)
    latest = ticket.latest_customer_message
    return ([latest] if latest is not None else []), None


def _written(messages: Sequence[Message]) -> list[tuple[datetime, Message]]:
    """The messages the helpdesk gave a time, with it."""
    return [(written, m) for m in messages if (written := parse_time(m.created_at)) is not None]


def _newest(timed: Sequence[tuple[datetime, Message]]) -> str | None:
    return iso(max(written for written, _ in timed)) if timed else None


@dataclass
class Pipeline:
    settings: Settings
    store: Store
    helpdesk: Helpdesk
    engine: Engine
    poster: Poster
    policy: Callable[[], Policy]  # the policy in force now (the file's, with managers' changes on top)
    guard: QualityGuard = field(init=False)
    # What follows a post — reminders, the SLA watch, keep-warm (bot.flows.lifecycle); None schedules none.
    lifecycle: Lifecycle | None = None
    # Teaches the engine a reply an agent wrote in the helpdesk that resolved an escalated ticket (bot.flows.answered),
    # as AgentActions.learn does for a reply sent from Slack.
    learn: Learn | None = None
    answers: HelpdeskAnswers = field(init=False)

    def __post_init__(self) -> None:
        self.guard = QualityGuard(store=self.store, settings=self.settings, poster=self.poster)
        self.answers = HelpdeskAnswers(store=self.store, poster=self.poster, helpdesk=self.helpdesk.name,
                                       learn=self.learn)

    def process(self, event: Event) -> str:
        """Handle one ticket event; return a short outcome. Raises on failures worth retrying."""
        if elsewhere := recorded_elsewhere(event.helpdesk, current=self.helpdesk.name):
            return f"skipped: {elsewhere}"
        read_at = iso(utcnow())
        # Seam's notice and keep-warm updates marked: they answer nothing, so the triggers (the SLA's wait, the AI's
        # answers counted) and the due time pass over them.
        ticket = mark_acknowledgements(self.helpdesk.fetch_ticket(event.ticket_id), self.settings)
        # Replies people sent from Slack are theirs, though Seam's helpdesk user delivered them.
        ticket = mark_sent_for_people(ticket, self.store.sent_for_people(key_of(self.helpdesk.name, ticket.id)))
        # Even an event skipped below may show a reopen (the ticket set back to open without a new comment).
        self.guard.check(event, ticket, helpdesk=self.helpdesk.name)
        if self.lifecycle is not None:
            # A priority changed in the helpdesk moves its SLA: the warning follows, even on an event skipped below.
            self.lifecycle.follow_due(key_of(self.helpdesk.name, ticket.id), ticket)
        if event.turn_key is None:
            latest = ticket.latest_message
            if not ticket.problems and latest is not None and (latest.author != "customer" or ticket.finished
                                                                or _thanked_after_a_reply(ticket)):
                # An agent may have answered in the helpdesk, or solved the ticket there: that closes its cards —
                # also when the customer's thank-you for that reply came in before the reply's own event.
                answered = self.answers.settle(ticket, read_at=read_at)
                if answered is not None:
                    return answered
            if ticket.problems:
                # Part of the ticket could not be read (no requester, malformed comments): who wrote last is not
                # known for sure, so it goes to a person with the reason (bot.policy.decide) — never skipped.
                log.warning("ticket %s could not be read fully: %s", ticket.id, "; ".join(ticket.problems))
            elif ticket.discarded:
                # Marked as spam or deleted in the helpdesk (a reconciliation or a late webhook can still name it):
                # neither the AI nor a person should answer it.
                return f"skipped: the ticket is marked {ticket.status} in the helpdesk"
            elif latest is None:
                return "skipped: ticket has no comments"
            elif latest.author != "customer":
                # Our own reply, an agent's reply or a note fired the trigger: nothing for the AI to answer.
                return f"skipped: latest comment is by the {latest.author}"
            elif _thanked_after_a_reply(ticket):
                # "Thanks, that worked!" after a reply asks nothing: answering it again would only repeat the answer.
                return "skipped: the customer only said thanks"
            turn = turn_key(self.helpdesk.name, ticket.id, (latest and latest.id) or len(ticket.messages))
            if not self.store.claim_turn(event_id=event.id, turn_key=turn):
                return "duplicate: this comment was already handled"
        ticket_key = self.store.upsert_ticket(helpdesk=self.helpdesk.name, ticket_id=ticket.id,
                                              subject=ticket.subject, requester=ticket.requester_email,
                                              priority=ticket.priority)
        row = self.store.decision_for_event(event.id)
        if row is None:
            live = self.store.live_escalation(ticket_key)
            joined = self._follow_up(event.id, live, ticket) if live is not None else None
            if joined is not None:
                return joined
            decision = decide(ticket, self.engine.assess(ticket), policy=self.policy())
            decision_id = self.store.add_decision(event_id=event.id, ticket_key=ticket_key, decision=decision)
        else:
            decision, decision_id = _decision_from_row(row), row["id"]
            if decision.route == Route.RESOLVE and self.policy().paused and not self._replied(event.id, ticket,
                                                                                                  decision):
                # Paused since this event was decided, and its reply has not reached the customer (an earlier
                # try failed): while paused nothing is answered automatically, so it is decided again, for a
                # person. Nothing was posted for it, so the new route doubles nothing.
                decision = decide(ticket, self.engine.assess(ticket), policy=self.policy())
                decision_id = self.store.add_decision(event_id=event.id, ticket_key=ticket_key, decision=decision)
        if decision.route == Route.RESOLVE:
            return self._resolve(event.id, ticket_key, ticket, decision)
        return self._escalate(event.id, decision_id, ticket_key, ticket, decision)

    def _replied(self, event_id: int, ticket: Ticket, decision: Decision) -> bool:
        """Whether the automatic reply of this event may be with the customer: recorded as sent, or (an earlier
        attempt began it) on the ticket."""
        effect = self.store.effect(f"reply:{event_id}")
        return effect is not None and (effect["state"] == "done" or reply_landed(
            ticket, decision.answer or "", answering=self._answering(event_id, ticket)))

    def _answering(self, event_id: int, ticket: Ticket) -> Message | None:
        """The message whose turn this event claimed (bot.store `claim_turn`): a reply of an earlier attempt is
        looked for after it, not after the customer's latest message — the customer may have read that reply and
        written again before the retry. None when the event claimed no turn or the message is gone."""
        turn = self.store.event(event_id).turn_key
        if turn is None:
            return None
        return next((m for position, m in enumerate(ticket.messages, start=1)
                     if turn_key(self.helpdesk.name, ticket.id, m.id or position) == turn), None)

    def _resolve(self, event_id: int, ticket_key: str, ticket: Ticket, decision: Decision) -> str:
        key = f"reply:{event_id}"

        def record_answer() -> None:
            # Once per event (the store ignores a repeat), and before the effect is finished: a crash in between
            # leaves the effect "started", and the retry that finds the reply records the answer then.
            self.store.record_automatic_answer(event_id=event_id, ticket_key=ticket_key, ticket_id=ticket.id,
                                               answer_source=decision.answer_source, confidence=decision.confidence,
                                               calibration=decision.calibration)

        effect = self.store.begin_effect(key, kind="public_reply")
        if effect["state"] == "done":
            record_answer()
            return "resolved (reply already sent)"
        answer = decision.answer or ""
        if not effect["fresh"] and reply_landed(ticket, answer, answering=self._answering(event_id, ticket)):
            # A previous attempt's reply reached the helpdesk but we crashed before recording it. On helpdesks
            # where a reply and its status are two calls, the status may not have followed: set it now.
            if self.settings.resolve_status and ticket.status != self.settings.resolve_status:
                self.helpdesk.set_status(ticket.id, self.settings.resolve_status)
            record_answer()
            self.store.finish_effect(key, result={"recovered": True})
            return "resolved (reply found after restart)"
        self.helpdesk.reply(ticket.id, answer, status=self.settings.resolve_status)
        record_answer()
        self.store.finish_effect(key, result={"answer_source": decision.answer_source})
        self.store.audit(actor="seam", action="auto_resolved",
                         detail={"ticket_id": ticket.id, "event_id": event_id, "confidence": decision.confidence,
                                 "answer_source": decision.answer_source})
        return "resolved"

    def _escalate(self, event_id: int, decision_id: int, ticket_key: str, ticket: Ticket, decision: Decision) -> str:
        escalation = self.store.escalation_for_event(event_id)
        retrying = escalation is not None
        link = ticket.url or self.helpdesk.ticket_link(ticket.id)
        if escalation is None:
            escalation = self._record_escalation(event_id, decision_id, ticket_key, ticket, decision, link)
        if escalation.state == EscalationState.POSTING:
            self.poster.post_escalation(escalation, retrying=retrying)
        # The transcript is a job of its own, behind the cards still due: in a burst every new card is posted
        # before older escalations' transcripts (bot.slack.poster). Once per escalation, however often retried.
        self.poster.queue_transcript(escalation, self._for_slack(ticket).messages, link=link)
        if self.lifecycle is not None:
            self.lifecycle.after_post(escalation.id, ticket)
        self._tell_customer(event_id, escalation.id, ticket_key, ticket, decision)
        return "escalated" if decision.route == Route.ESCALATE else "drafted"

    def _follow_up(self, event_id: int, escalation: Escalation, ticket: Ticket) -> str | None:
        """The customer wrote again while a person has (or is about to get) their ticket: the message joins that
        escalation — quoted in its thread with its owner mentioned, counted on its card — and nothing else is
        posted (the contract: one post per escalation, later changes in its thread or by chat.update). The AI
        neither answers nor drafts anew: a person has the conversation. Once per event, however often retried.
        None when the escalation stopped waiting since it was found (a reply sent meanwhile): the message is then
        decided like any new one, or it would join a finished escalation nobody looks at again."""
        for _ in range(FOLLOW_UP_ATTEMPTS):
            messages, until = _new_messages(ticket, escalation)
            added = self.store.add_follow_up(escalation.id, event_id=event_id, customer_text=ticket.customer_text(),
                                             quoted_until=until, shown_until=escalation.card.get("follow_up_until"))
            if added is not FollowUp.MOVED:
                break
            # Another event quoted messages meanwhile (two workers on one ticket): choose again from its card.
            escalation = self.store.escalation(escalation.id)
        else:
            return f"added to escalation {escalation.id}: its thread was being written by other events"
        if added is FollowUp.FINISHED:
            return None
        if added is FollowUp.ADDED:
            self.store.audit(actor="seam", action="customer_wrote_again",
                             detail={"escalation_id": escalation.id, "ticket_id": ticket.id, "event_id": event_id})
        if added is FollowUp.REPEATED:
            # A retry of this event: its note is queued under the event's key, so this queues nothing when the
            # first attempt got that far, and quotes the latest message when a crash stopped it before.
            latest = ticket.latest_customer_message
            messages = [latest] if latest is not None else []
        if not messages:
            return f"added to escalation {escalation.id}: what the customer wrote is already in its thread"
        text = "\n\n".join(m.body for m in messages)
        if self.settings.slack.mask_payment:
            text = mask_payment(text)
        # Queued like the transcript: its job also catches the card up (the count of follow-ups).
        self.poster.queue_note(escalation, key=f"follow-up-{event_id}",
                               text=follow_up_note(text, owner=escalation.owner))
        return f"added to escalation {escalation.id}: the customer wrote again"

    def _for_slack(self, ticket: Ticket) -> Ticket:
        """The ticket as Slack shows it: card numbers and IBANs masked (`[slack] mask_payment`) before the
        builders cut anything to Slack's limits, so a cut never leaves part of a number readable."""
        if not self.settings.slack.mask_payment:
            return ticket
        return replace(ticket, subject=mask_payment(ticket.subject),
                       messages=tuple(replace(m, body=mask_payment(m.body)) for m in ticket.messages))

    def _for_slack_decision(self, decision: Decision) -> Decision:
        if not self.settings.slack.mask_payment:
            return decision
        return replace(decision, answer=mask_payment(decision.answer) if decision.answer else decision.answer,
                       summary=mask_payment(decision.summary or "") or decision.summary,
                       reasons=tuple(replace(r, detail=mask_payment(r.detail)) for r in decision.reasons))

    def _record_escalation(self, event_id: int, decision_id: int, ticket_key: str, ticket: Ticket,
                           decision: Decision, link: str | None) -> Escalation:
        """The escalation's record, before anything is posted: the route chosen (`[[routes]]`, first match;
        otherwise ESCALATION_CHANNEL), whom the post mentions, and when the ticket is due."""
        policy = self.policy().settings
        match = routes.route_for(self.settings.routes, ticket, decision, policy=policy)
        route = match.route if match else None
        page = routes.manager_mentions(self.settings) if route and route.page_manager else ""
        card = EscalationView(escalation_id=0, ticket=self._for_slack(ticket),
                              decision=self._for_slack_decision(decision), link=link,
                              queue=route.name if route else None, mention=route.mention if route else None,
                              page=page or None).to_card()
        # The newest customer message this card answers, by the helpdesk's clock: later ones are follow-ups.
        if newest := _newest(_written(ticket.customer_messages)):
            card["follow_up_until"] = newest
        escalation = self.store.create_escalation(
            event_id=event_id, decision_id=decision_id, ticket_key=ticket_key, ticket_id=ticket.id,
            channel=route.channel if route else self.settings.escalation_channel or "", draft=decision.answer,
            confidence=decision.confidence, card=card, customer_text=ticket.customer_text(),
            route=route.name if route else None, mention=route.mention if route else None,
            sla_due_at=routes.sla_due_at(ticket, policy=policy), manager_paged_at=iso(utcnow()) if page else None)
        if match:
            self.store.audit(actor="seam", action="escalation_routed",
                             detail={"escalation_id": escalation.id, "ticket_id": ticket.id, "route": route.name,
                                     "channel": route.channel, "matched": match.detail, "paged_managers": bool(page)})
        return escalation

    def _tell_customer(self, event_id: int, escalation_id: int, ticket_key: str, ticket: Ticket,
                       decision: Decision) -> None:
        """The short public reply saying a person will follow up (`[customer_notice]`, per route), at most once
        per ticket event: recorded before and after, and looked for on the ticket when an earlier attempt may
        have sent it. Shown in the escalation's thread."""
        escalation = self.store.escalation(escalation_id)
        text = routes.customer_notice(self.settings, ticket, decision,
                                      route=routes.route_named(self.settings, escalation.route))
        if text is None:
            return
        key = f"customer-notice:{event_id}"
        effect = self.store.begin_effect(key, kind="public_reply")
        if effect["state"] != "done":
            told = self.store.customer_told(ticket_key, besides=escalation_id)
            current = self.store.escalation(escalation_id)
            if current is not None and current.state in (EscalationState.SENT, EscalationState.ANSWERED):
                # A retry after a person already replied or solved the ticket (the first attempt failed meanwhile):
                # "a person will follow up" after their reply would say the opposite of what happened.
                self.store.finish_effect(key, result={"skipped": f"the escalation is already {current.state}"})
                return
            if (answered := waiting_on_person(ticket)) is not None:
                # The same, answered in the helpdesk itself (or solved there) before this retry: its event has not
                # reached Seam yet, so the escalation is still open.
                self.store.finish_effect(key, result={"skipped": answered})
                return
            if told is not None:
                # Still waiting on the person an earlier escalation of this ticket promised: saying it again on
                # every new message would only repeat it.
                self.store.finish_effect(key, result={"skipped": f"already told on escalation {told.id}"})
                return
            landed = not effect["fresh"] and reply_landed(ticket, text, answering=self._answering(event_id, ticket))
            if not landed:
                try:
                    self.helpdesk.reply(ticket.id, text)
                except HelpdeskError as exc:
                    if exc.status is None or transient(exc):
                        raise  # worth retrying with the event (the helpdesk down, or an answer not understood)
                    # Refused for good (a closed ticket, a 422): the escalation stands; say so once, not five times.
                    log.warning("customer notice for ticket %s refused: %s", ticket.id, exc)
                    self.store.finish_effect(key, result={"failed": str(exc)[:300]})
                    self.store.audit(actor="seam", action="customer_notice_failed",
                                     detail={"escalation_id": escalation_id, "ticket_id": ticket.id,
                                             "error": str(exc)[:300]})
                    return
            self.store.update_escalation(escalation_id, customer_notified_at=iso(utcnow()))
            self.store.finish_effect(key, result={"recovered": landed})
            self.store.audit(actor="seam", action="customer_notified",
                             detail={"escalation_id": escalation_id, "ticket_id": ticket.id, "event_id": event_id,
                                     "route": escalation.route})
        elif {"skipped", "failed"} & set(json.loads(effect["result"] or "null") or {}):
            return
        # Queued like the transcript (and after it): in a burst the next escalation's card goes first.
        self.poster.queue_note(self.store.escalation(escalation_id), key="customer-notice",
                               text=routes.notified_line(text))
