"""Orchestration of one accepted webhook: fetch the ticket, decide, then resolve or escalate — exactly once.

The event row is the unit of work (see `bot.jobs.worker`). Each external side effect is recorded before and after
it happens (`effects` table, the escalation's `posting` state), so a retry after a crash checks what already
reached the outside world instead of doing it again:
- a public reply whose record says "started" is looked for among the ticket's comments before resending;
- an escalation still `posting` is looked for in the channel by its message metadata before posting again.
The decision is stored on the first attempt and reused by retries, so a retry never changes route.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.config import Settings
from bot.policy.decide import Policy, decide
from bot.engine.local import Engine
from bot.helpdesk.base import Helpdesk
from bot.flows.controls import effective_settings
from bot.models import Decision, Reason, Route, Ticket
from bot.pacing import ChannelPacer
from bot.slack.blocks import METADATA_EVENT_TYPE, EscalationView, escalation_message, transcript_messages
from bot.store import Store

log = logging.getLogger(__name__)

TRANSCRIPT_EVENT_TYPE = "seam_transcript"



def slack_client(settings: Settings) -> WebClient:
    """The Web API client: bounded timeout; retries on connection errors, 5xx and 429 (sleeping Retry-After)."""
    return WebClient(
        token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=15,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=5),
                        ServerErrorRetryHandler(max_retry_count=3)],
    )


def current_policy(store: Store, settings: Settings) -> Policy:
    """The file's policy with run-time changes from the database on top (they win, and survive restarts)."""
    effective, paused = effective_settings(store, settings)
    return Policy.from_settings(effective, paused=paused)


def _decision_from_row(row: dict) -> Decision:
    return Decision(route=Route(row["route"]), confidence=row["confidence"],
                    reasons=tuple(Reason(**r) for r in json.loads(row["reasons"])), answer=row["answer"],
                    answer_source=row["answer_source"], summary=row["summary"] or "",
                    evidence=tuple(json.loads(row["evidence"] or "[]")))


def _slack_ts(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


@dataclass
class Pipeline:
    settings: Settings
    store: Store
    helpdesk: Helpdesk
    engine: Engine
    slack: WebClient
    pacer: ChannelPacer | None = None

    def process(self, event: dict) -> str:
        """Handle one event; return a short outcome. Raises on failures worth retrying."""
        event_id = int(event["id"])
        ticket = self.helpdesk.fetch_ticket(event["ticket_id"])
        if event.get("turn_key") is None:
            latest = ticket.latest_message
            if latest is None:
                return "skipped: ticket has no comments"
            if latest.author != "customer":
                # Our own reply, an agent's reply or a note fired the trigger: nothing for the AI to answer.
                return f"skipped: latest comment is by the {latest.author}"
            turn_key = f"{self.helpdesk.name}:{ticket.id}:{latest.id or len(ticket.messages)}"
            if not self.store.claim_turn(event_id=event_id, turn_key=turn_key):
                return "duplicate: this comment was already handled"
        ticket_key = self.store.upsert_ticket(helpdesk=self.helpdesk.name, ticket_id=ticket.id,
                                              subject=ticket.subject, requester=ticket.requester_email,
                                              priority=ticket.priority)
        row = self.store.decision_for_event(event_id)
        if row is None:
            decision = decide(ticket, self.engine.assess(ticket), policy=current_policy(self.store, self.settings))
            decision_id = self.store.add_decision(event_id=event_id, ticket_key=ticket_key, decision=decision)
        else:
            decision, decision_id = _decision_from_row(row), row["id"]
        if decision.route == Route.RESOLVE:
            return self._resolve(event_id, ticket, decision)
        return self._escalate(event_id, decision_id, ticket_key, ticket, decision)

    def _resolve(self, event_id: int, ticket: Ticket, decision: Decision) -> str:
        key = f"reply:{event_id}"
        effect = self.store.begin_effect(key, kind="public_reply")
        if effect["state"] == "done":
            return "resolved (reply already sent)"
        answer = decision.answer or ""
        if not effect["fresh"] and self._reply_landed(ticket, answer):
            # A previous attempt's reply reached Zendesk but we crashed before recording it.
            self.store.finish_effect(key, result={"recovered": True})
            return "resolved (reply found after restart)"
        self.helpdesk.reply(ticket.id, answer, status=self.settings.resolve_status)
        self.store.finish_effect(key, result={"answer_source": decision.answer_source})
        self.store.audit(actor="seam", action="auto_resolved",
                         detail={"ticket_id": ticket.id, "event_id": event_id, "confidence": decision.confidence,
                                 "answer_source": decision.answer_source})
        return "resolved"

    @staticmethod
    def _reply_landed(ticket: Ticket, answer: str) -> bool:
        latest = ticket.latest_customer_message
        after = ticket.messages[ticket.messages.index(latest) + 1:] if latest else ticket.messages
        return any(m.author != "customer" and m.public and m.body.strip() == answer.strip() for m in after)

    def _escalate(self, event_id: int, decision_id: int, ticket_key: str, ticket: Ticket, decision: Decision) -> str:
        channel = self.settings.escalation_channel or ""
        escalation = self.store.escalation_for_event(event_id)
        retrying = escalation is not None
        link = ticket.url or self.helpdesk.ticket_link(ticket.id)
        if escalation is None:
            card = EscalationView(escalation_id=0, ticket=ticket, decision=decision, link=link).to_card()
            escalation = self.store.create_escalation(
                event_id=event_id, decision_id=decision_id, ticket_key=ticket_key, ticket_id=ticket.id,
                channel=channel, draft=decision.answer, confidence=decision.confidence, card=card,
                customer_text=ticket.customer_text())
        escalation_id = int(escalation["id"])
        ts = escalation["ts"]
        if escalation["state"] == "posting":
            ts = self._find_post(escalation) if retrying else None
            if ts is None:
                view = EscalationView.from_card(escalation_id, json.loads(escalation["card"]))
                self._pace(escalation["channel"])
                response = self.slack.chat_postMessage(channel=escalation["channel"], **escalation_message(view))
                ts = response["ts"]
            self.store.mark_escalation_posted(escalation_id, channel=escalation["channel"], ts=ts)
        posted_parts: set[int] | None = None
        for index, reply in enumerate(transcript_messages(ticket.messages, link=link)):
            key = f"transcript:{escalation_id}:{index}"
            effect = self.store.begin_effect(key, kind="slack_thread_reply")
            if effect["state"] == "done":
                continue
            if not effect["fresh"]:
                # An earlier attempt may have posted this part and died before recording it: look first.
                if posted_parts is None:
                    posted_parts = self._posted_parts(escalation["channel"], ts, escalation_id)
                if index in posted_parts:
                    self.store.finish_effect(key, result={"recovered": True})
                    continue
            self._pace(escalation["channel"])
            self.slack.chat_postMessage(channel=escalation["channel"], thread_ts=ts, unfurl_links=False,
                                        metadata={"event_type": TRANSCRIPT_EVENT_TYPE,
                                                  "event_payload": {"escalation_id": escalation_id, "part": index}},
                                        **reply)
            self.store.finish_effect(key)
        return f"{decision.route}d" if decision.route == Route.ESCALATE else "drafted"

    def _pace(self, channel: str) -> None:
        if self.pacer is not None:
            waited = self.pacer.wait(channel)
            if waited > 1:
                log.info("paced a post to %s by %.1f s (Slack allows about one message a second)", channel, waited)

    def _posted_parts(self, channel: str, ts: str, escalation_id: int) -> set[int]:
        parts: set[int] = set()
        cursor = None
        for _ in range(20):
            page = self.slack.conversations_replies(channel=channel, ts=ts, include_all_metadata=True, limit=200,
                                                    cursor=cursor)
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if (metadata.get("event_type") == TRANSCRIPT_EVENT_TYPE
                        and str(payload.get("escalation_id")) == str(escalation_id)):
                    parts.add(int(payload.get("part", -1)))
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
        return parts

    def _find_post(self, escalation: dict) -> str | None:
        """After a crash between posting and recording: find our message by its metadata, newest first."""
        oldest = f"{_slack_ts(escalation['created_at']) - 60:.6f}"
        cursor = None
        for _ in range(10):
            page = self.slack.conversations_history(channel=escalation["channel"], oldest=oldest, limit=100,
                                                    include_all_metadata=True, cursor=cursor)
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if (metadata.get("event_type") == METADATA_EVENT_TYPE
                        and str(payload.get("escalation_id")) == str(escalation["id"])):
                    return message["ts"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return None
        return None
