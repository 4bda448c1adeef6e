"""Putting escalations in Slack exactly once and keeping their messages true to the database.

The escalation's top-level message is recorded (`posting`) before it is posted and carries message metadata
(`event_type: seam_escalation` with the escalation id); each part of the transcript in its thread carries its
own (`seam_transcript`, escalation id and part number) and is recorded as an effect before and after. After a
crash, a retry looks for what already reached Slack (`conversations.history` / `conversations.replies`) before
posting again. Posts to one channel are paced to Slack's limit (about one a second, short bursts).

In a burst the k-th escalation's card should be visible about k seconds in, so cards come first: the pipeline
posts the card and queues the transcript (`queue_transcript`) and its thread notes (`queue_note`) as jobs of
their own, which the queue runs after the ticket jobs due (a lower job priority), and the pacer hands each free
slot of a channel to a waiting card before a note, and to a note before a transcript part (`PRIORITY`). A short
conversation is one thread reply (`bot.slack.blocks.transcript_replies`).

The card is a view of the escalation's row: `refresh` re-renders it after every change (chat.update) and records
the `updated_at` it rendered as `card_synced_at` (a compare-and-set: a change meanwhile leaves it stale); the
first post records it too. A card left behind — a crash between a change and its refresh, or an update Slack
refused, which `refresh` logs and drops — is caught up by `refresh_stale`, the sweep bot.jobs.cards runs at
start and every `[slack] card_sync_interval`. Renders of one card are serialised, so an older render never
lands after a newer one.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import transient
from bot.models import Escalation, EscalationState, Event, Message
from bot.pacing import ChannelPacer
from bot.slack.blocks import (
    METADATA_EVENT_TYPE,
    EscalationView,
    Status,
    escalation_message,
    transcript_messages,
    transcript_replies,
)
from bot.store import Store
from bot.text import parse_time, utcnow

log = logging.getLogger(__name__)

TRANSCRIPT_EVENT_TYPE = "seam_transcript"
# A note Seam adds to an escalation's thread (such as what it told the customer), found again by its key.
NOTE_EVENT_TYPE = "seam_thread_note"
# A queued announcement in a channel (the quality guard pausing automation), found again by its key after a crash.
ANNOUNCEMENT_EVENT_TYPE = "seam_announcement"
# How far back from the escalation's record to look for a post made just before a crash.
FIND_WINDOW_SECONDS = 60
# Which post takes a channel's next free slot (ChannelPacer.wait): lower first.
PRIORITY = {"card": 0, "note": 1, "transcript": 2}
# The jobs that post an escalation's thread after its card (bot.jobs.worker runs them; services registers them),
# and their queue priority: after every ticket job that is due (priority 0), so new cards go first.
TRANSCRIPT_KIND = "transcript"
NOTE_KIND = "thread_note"
# The job that takes Seam's replies out of an escalation's thread, and its DMs about it, once its conversation was
# erased on request (bot.flows.erasure queues it; serve runs it): the transcript holds the customer's words, the
# owner's DM the subject and summary.
ERASE_THREAD_KIND = "erase_thread"
THREAD_JOB_PRIORITY = 1
# The card sweep (`refresh_stale`): cards updated per round at most (chat.update is Tier 3, about 50 a minute, and
# the flows update cards too), and the longest a card Slack keeps refusing waits between tries, in rounds.
STALE_ROUND_LIMIT = 20
MAX_BACKOFF_ROUNDS = 64
# chat.update errors that mean the card is gone for good (deleted, its channel deleted or unreachable, too old to
# edit): the card is recorded as shown and no longer updated.
GONE_ERRORS = frozenset({"message_not_found", "channel_not_found", "cant_update_message", "edit_window_closed",
                         "is_archived"})
# What `_update_card` did.
UPDATED, GONE, REFUSED, SKIPPED = "updated", "gone", "refused", "skipped"


def view_of(escalation: Escalation) -> EscalationView:
    return EscalationView.from_card(escalation.id, escalation.card)


def _helpdesk(escalation: Escalation) -> str:
    return escalation.ticket_key.split(":", 1)[0]


def _slack_error(exc: BaseException | None) -> str | None:
    """Slack's error code of a refused call (`ratelimited`, `message_not_found`), None for a failure without one."""
    response = getattr(exc, "response", None)
    try:
        return response.get("error") if response is not None else None
    except (AttributeError, TypeError):
        return None


def _why(exc: BaseException | None) -> str:
    """A refusal in a few words for the log: Slack's error code (and HTTP status), or the exception."""
    code = _slack_error(exc)
    if code is None:
        return f"{type(exc).__name__}: {exc}"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{code} (HTTP {status})" if status and status != 200 else code


def _slack_down(exc: BaseException | None) -> bool:
    """A refusal by Slack as a whole rather than of one card: rate limited, a 5xx, one of Slack's own "down" codes
    (bot.errors `SLACK_DOWN_ERRORS`), a timeout or a lost connection (after the client's own retries) — the rule
    the job queue retries an outage by (bot.errors `transient`) — or any failure without Slack's answer."""
    return not isinstance(exc, SlackApiError) or transient(exc)


class _Unwanted(Exception):
    """A note no longer wanted when its turn came (`Poster.thread_note`)."""


@dataclass
class Poster:
    slack: WebClient
    store: Store
    pacer: ChannelPacer | None = None
    # Renders of one card are serialised (`_update_card`): one lock per escalation id modulo their number.
    _card_locks: list[threading.Lock] = field(default_factory=lambda: [threading.Lock() for _ in range(64)],
                                              init=False, repr=False)
    _sweep_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _round: int = field(default=0, init=False, repr=False)
    # Cards the sweep saw Slack refuse: escalation id -> (refusals in a row, the round to try it again in).
    _refused: dict[int, tuple[int, int]] = field(default_factory=dict, init=False, repr=False)
    _refused_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # -- the escalation and its thread ------------------------------------------------------------------------

    def post_escalation(self, escalation: Escalation, *, retrying: bool) -> str:
        """Post the card of an escalation still `posting` (or find it, when an earlier attempt may have posted
        it), record it as open and return its ts."""
        ts = self._find_post(escalation) if retrying else None
        found = ts is not None
        if ts is None:
            self._pace(escalation.channel, "card")
            # The first post names the route's mention (and a paging route's managers) in its text: the one
            # place Slack notifies people from. Later updates never notify again.
            response = self.slack.chat_postMessage(channel=escalation.channel, **escalation_message(
                view_of(escalation), Status.of(escalation), notify=True))
            ts = response["ts"]
        # The card just posted shows the row it was rendered from (a posting escalation is shown open): in sync,
        # unless the row changed meanwhile. One found again was rendered by an earlier attempt: the sweep checks.
        self.store.mark_escalation_posted(escalation.id, channel=escalation.channel, ts=ts,
                                          rendered=None if found else escalation.updated_at)
        return ts

    def post_transcript(self, escalation: Escalation, ts: str, messages: Sequence[Message], *,
                        link: str | None, packed: bool = True) -> None:
        """The conversation as replies in the card's thread, each part once however often this is retried:
        packed, a short conversation is one reply (`transcript_replies`); else one reply per part of a message."""
        render = transcript_replies if packed else transcript_messages
        self._post_parts(escalation, ts, render(messages, link=link))

    def queue_transcript(self, escalation: Escalation, messages: Sequence[Message], *, link: str | None) -> None:
        """Queue the transcript of an escalation whose card is posted, as a `transcript` job (once per
        escalation): rendered now, so a retry after a crash posts the same parts, found again by their number."""
        body = {"escalation_id": escalation.id, "replies": transcript_replies(messages, link=link)}
        self.store.record_event(kind=TRANSCRIPT_KIND, helpdesk=_helpdesk(escalation),
                                dedupe_key=f"transcript:{escalation.id}", ticket_id=escalation.ticket_id,
                                body=json.dumps(body), priority=THREAD_JOB_PRIORITY)

    def transcript_job(self, event: Event) -> str:
        """The `transcript` job: post the queued parts in the card's thread (each once)."""
        body = json.loads(event.body or "{}")
        escalation = self.store.escalation(int(body["escalation_id"]))
        if escalation is None or not escalation.ts:
            raise LookupError(f"escalation {body.get('escalation_id')} has no post to thread the transcript under")
        replies = body.get("replies") or []
        self._post_parts(escalation, escalation.ts, replies)
        return f"transcript posted ({len(replies)} replies)"

    def _post_parts(self, escalation: Escalation, ts: str, replies: Sequence[dict]) -> None:
        posted: set[int] | None = None
        for index, reply in enumerate(replies):
            key = f"transcript:{escalation.id}:{index}"
            effect = self.store.begin_effect(key, kind="slack_thread_reply")
            if effect["state"] == "done":
                continue
            if not effect["fresh"]:
                # An earlier attempt may have posted this part and died before recording it: look first.
                if posted is None:
                    posted = self._posted_parts(escalation.channel, ts, escalation.id)
                if index in posted:
                    self.store.finish_effect(key, result={"recovered": True})
                    continue
            self._pace(escalation.channel, "transcript")
            self.slack.chat_postMessage(channel=escalation.channel, thread_ts=ts, unfurl_links=False,
                                        metadata={"event_type": TRANSCRIPT_EVENT_TYPE,
                                                  "event_payload": {"escalation_id": escalation.id, "part": index}},
                                        **reply)
            self.store.finish_effect(key)

    def queue_note(self, escalation: Escalation, *, key: str, text: str) -> None:
        """`thread_note`, as a job (`thread_note`, once per escalation and key) queued behind the cards due: for
        a note the pipeline adds right after the card, such as what the customer was told."""
        self.store.record_event(kind=NOTE_KIND, helpdesk=_helpdesk(escalation),
                                dedupe_key=f"thread-note:{escalation.id}:{key}", ticket_id=escalation.ticket_id,
                                body=json.dumps({"escalation_id": escalation.id, "key": key, "text": text}),
                                priority=THREAD_JOB_PRIORITY)

    def note_job(self, event: Event) -> str:
        """The `thread_note` job: post the queued note in the escalation's thread (once)."""
        body = json.loads(event.body or "{}")
        escalation = self.store.escalation(int(body["escalation_id"]))
        if escalation is None or not escalation.ts:
            raise LookupError(f"escalation {body.get('escalation_id')} has no post to add a note under")
        self.thread_note(escalation, key=body["key"], text=body["text"])
        # What the note tells may be on the card too ("Seam told the customer …"), recorded after the card was
        # posted: the card shows it now rather than at the next sweep.
        current = self.store.escalation(escalation.id)
        if current is not None and current.card_synced_at != current.updated_at:
            self.refresh(current.id)
        return "note posted"

    def thread_note(self, escalation: Escalation, *, key: str, text: str,
                    wanted: Callable[[], bool] | None = None) -> bool:
        """A line Seam adds to the escalation's thread (mrkdwn `text`), once per `key` however often this is
        retried: recorded before and after, and looked for in the thread when an earlier attempt may have
        posted it. With `wanted`, asked again when the channel's turn comes (in a burst the pacer waits seconds,
        and a "still unclaimed" reminder must not land after a claim made meanwhile): when it says no, nothing is
        posted or recorded. True when the note is in the thread, posted now or before."""
        if not escalation.ts:
            return False

        def posted_before() -> bool:
            replies = self._pages(self.slack.conversations_replies, channel=escalation.channel, ts=escalation.ts,
                                  limit=200)
            return any((payload := self._payload(m, NOTE_EVENT_TYPE, escalation.id)) is not None
                       and payload.get("key") == key for m in replies)

        def post() -> None:
            self._pace(escalation.channel, "note")
            if wanted is not None and not wanted():
                raise _Unwanted
            self.slack.chat_postMessage(channel=escalation.channel, thread_ts=escalation.ts, text=text,
                                        unfurl_links=False, unfurl_media=False,
                                        metadata={"event_type": NOTE_EVENT_TYPE,
                                                  "event_payload": {"escalation_id": escalation.id, "key": key}})

        effect_key = f"thread-note:{escalation.id}:{key}"
        try:
            self._once(effect_key, kind="slack_thread_reply", posted_before=posted_before, post=post)
        except _Unwanted:
            self.store.forget_effect(effect_key)  # nothing went out
            return False
        return True

    def erase_thread_job(self, event: Event) -> str:
        """The `erase_thread` job: delete what Seam posted about the escalation — the DMs it sent people about it
        (recorded as sent, m017), and in its thread the transcript parts and its notes, found by their metadata
        (people's replies are theirs, and a bot token may delete only its own messages:
        https://docs.slack.dev/reference/methods/chat.delete, scope chat:write, Tier 3). Safe to retry: a DM
        deleted is no longer recorded, the thread is read again, and a message already gone counts as deleted."""
        body = json.loads(event.body or "{}")
        escalation = self.store.escalation(int(body["escalation_id"]))
        if escalation is None:
            return "no escalation"
        dms = self.store.direct_messages(escalation.id)
        for dm in dms:
            self._delete(dm["channel"], dm["ts"])
            self.store.forget_direct_message(dm["id"])
        if not escalation.ts:
            return f"{len(dms)} DMs deleted, no thread"
        replies = self._pages(self.slack.conversations_replies, channel=escalation.channel, ts=escalation.ts,
                              limit=200)
        ours = [m["ts"] for m in replies if m.get("ts") != escalation.ts and any(
            self._payload(m, kind, escalation.id) is not None for kind in (TRANSCRIPT_EVENT_TYPE, NOTE_EVENT_TYPE))]
        for ts in ours:
            self._delete(escalation.channel, ts)
        return f"{len(dms)} DMs and {len(ours)} thread replies deleted"

    def _delete(self, channel: str, ts: str) -> None:
        """chat.delete of one of Seam's messages, paced like its posts; one already gone counts as deleted."""
        self._pace(channel, "transcript")
        try:
            self.slack.chat_delete(channel=channel, ts=ts)
        except SlackApiError as exc:
            if _slack_error(exc) != "message_not_found":
                raise

    def refresh(self, escalation_id: int) -> bool:
        """Re-render the escalation's message from the database (chat.update), and record the version of the row
        it now shows (`card_synced_at`, a compare-and-set: a change that landed meanwhile leaves it stale for
        `refresh_stale`). False when Slack refused: logged and dropped — the database is the truth, and a failed
        cosmetic update must not undo or repeat an action; the sweep catches the card up later."""
        outcome, error = self._update_card(escalation_id)
        if outcome == REFUSED:
            log.warning("could not update escalation %s in Slack (the card is caught up later): %s", escalation_id,
                        _why(error))
        return outcome != REFUSED

    def refresh_stale(self, *, limit: int = STALE_ROUND_LIMIT) -> int:
        """One round of the card sweep: re-render the cards that are behind their row (a crash between a change
        and its refresh, or a chat.update Slack refused), the oldest change first, at most `limit` (chat.update
        is Tier 3, about 50 a minute). A refusal by Slack as a whole (rate limited, 5xx, a timeout) ends the
        round: that card and the rest wait for the next one. A card Slack refuses on its own (another error) is
        tried again next round, then after 2, 4, … rounds (at most MAX_BACKOFF_ROUNDS), so it never holds up the
        others. A card whose message is gone is recorded as shown and no longer updated. How many were updated."""
        with self._sweep_lock:
            self._round += 1
            with self._refused_lock:
                waiting = {i for i, (_, due) in self._refused.items() if due > self._round}
            due = [e for e in self.store.stale_cards(limit=limit + len(waiting)) if e.id not in waiting][:limit]
            updated = 0
            for escalation in due:
                outcome, error = self._update_card(escalation.id)
                if outcome == UPDATED:
                    updated += 1
                if outcome != REFUSED:
                    continue
                if _slack_down(error):
                    # Not this card's fault: no backoff for it, and no more calls this round.
                    log.warning("card sweep: Slack refused the card of escalation %s (%s); %d stale cards wait for "
                                "the next round", escalation.id, _why(error), len(due) - due.index(escalation))
                    break
                with self._refused_lock:
                    failures = self._refused.get(escalation.id, (0, 0))[0] + 1
                    self._refused[escalation.id] = (failures,
                                                    self._round + min(2 ** (failures - 1), MAX_BACKOFF_ROUNDS))
                log.warning("card sweep: Slack refused the card of escalation %s (%s, %d times in a row); tried "
                            "again in a later round", escalation.id, _why(error), failures)
            if updated:
                log.info("card sweep: %d cards caught up with the database", updated)
            return updated

    def _update_card(self, escalation_id: int) -> tuple[str, BaseException | None]:
        """chat.update of the card from the row as it is now, and the row's version recorded as shown: UPDATED,
        GONE (the message or channel is gone: recorded as shown, logged once), REFUSED (with the error; the card
        stays stale) or SKIPPED (no card)."""
        with self._card_locks[escalation_id % len(self._card_locks)]:
            # One render of a card at a time: the read, the update and its record happen in order, so an older
            # render can never reach Slack after a newer one and be recorded as the newer.
            escalation = self.store.escalation(escalation_id)
            if escalation is None or not escalation.ts or escalation.state == EscalationState.POSTING:
                return SKIPPED, None
            # Rendered as of now: the card shows how long the escalation has waited and the time left to its SLA.
            message = escalation_message(view_of(escalation), Status.of(escalation), now=utcnow())
            message.pop("metadata", None)
            message.pop("unfurl_media", None)
            try:
                self.slack.chat_update(channel=escalation.channel, ts=escalation.ts, **message)
            except (SlackApiError, OSError) as exc:
                if _slack_error(exc) not in GONE_ERRORS:
                    return REFUSED, exc
                log.warning("the card of escalation %s is gone from Slack (%s): it is no longer updated",
                            escalation_id, _slack_error(exc))
                self._shown(escalation)
                return GONE, exc
            self._shown(escalation)
            return UPDATED, None

    def _shown(self, escalation: Escalation) -> None:
        self.store.mark_card_synced(escalation.id, rendered=escalation.updated_at)
        with self._refused_lock:
            self._refused.pop(escalation.id, None)

    def refresh_interrupted(self) -> None:
        """At start-up: replies being sent when Seam stopped are marked failed and their cards offer Retry."""
        for escalation_id in self.store.fail_interrupted_sends():
            log.warning("escalation %s was being sent when Seam stopped: marked failed, Retry is offered",
                        escalation_id)
            self.refresh(escalation_id)

    # -- people ------------------------------------------------------------------------------------------------

    def direct_message(self, user_id: str, message: dict, *, escalation_id: int | None = None) -> bool:
        """Send `message` (chat.postMessage arguments) in the app's DM with a person; False when Slack refused.
        A DM about an escalation (`escalation_id`) is recorded where it landed, so erasing the escalation's
        conversation deletes it too (`erase_thread_job`)."""
        try:
            channel = self.slack.conversations_open(users=user_id)["channel"]["id"]
            posted = self.slack.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            log.warning("could not DM %s: %s", user_id, exc)
            return False
        if escalation_id is not None:
            self.store.record_direct_message(escalation_id=escalation_id, channel=posted.get("channel") or channel,
                                             ts=posted["ts"])
        return True

    def announce(self, channel: str | None, text: str) -> None:
        """A line in a channel, such as a settings change; failures are logged, never raised."""
        if not channel:
            return
        try:
            self.slack.chat_postMessage(channel=channel, text=text)
        except SlackApiError as exc:
            log.warning("could not announce in %s: %s", channel, exc)

    def announce_once(self, channel: str | None, text: str, *, key: str, since: datetime) -> bool:
        """A queued announcement (failures raise, for the queue to retry), once per `key` however often it is
        retried: recorded before and after, and looked for in the channel since `since` (when it was queued) when
        an earlier attempt may have posted it. True if this call posted it."""
        if not channel:
            return False

        def posted_before() -> bool:
            history = self._pages(self.slack.conversations_history, channel=channel,
                                  oldest=f"{since.timestamp() - FIND_WINDOW_SECONDS:.6f}", limit=100)
            return any((payload := self._payload(m, ANNOUNCEMENT_EVENT_TYPE)) is not None
                       and payload.get("key") == key for m in history)

        return self._once(f"announcement:{key}", kind="slack_announcement", posted_before=posted_before,
                          post=lambda: self.slack.chat_postMessage(
                              channel=channel, text=text,
                              metadata={"event_type": ANNOUNCEMENT_EVENT_TYPE, "event_payload": {"key": key}}))

    def _once(self, effect_key: str, *, kind: str, posted_before: Callable[[], bool], post: Callable[[], object]
              ) -> bool:
        """`post`, once per `effect_key` however often it is retried: recorded before and after, and when an
        earlier attempt may have posted it (`posted_before` finds it by its metadata), that post stands. True if
        this call posted."""
        effect = self.store.begin_effect(effect_key, kind=kind)
        if effect["state"] == "done":
            return False
        if not effect["fresh"] and posted_before():
            self.store.finish_effect(effect_key, result={"recovered": True})
            return False
        post()
        self.store.finish_effect(effect_key)
        return True

    # -- finding what an earlier attempt posted -----------------------------------------------------------------

    def _pace(self, channel: str, kind: str) -> None:
        if self.pacer is not None:
            waited = self.pacer.wait(channel, priority=PRIORITY[kind])
            if waited > 1:
                log.info("paced a post to %s by %.1f s (Slack allows about one message a second)", channel, waited)

    def _pages(self, method, **kwargs) -> list[dict]:
        """Every message of a paginated conversations.* listing (bounded: a runaway cursor must not loop)."""
        messages: list[dict] = []
        cursor = None
        for _ in range(20):
            page = method(include_all_metadata=True, cursor=cursor, **kwargs)
            messages += page.get("messages") or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
        return messages

    @staticmethod
    def _payload(message: dict, event_type: str, escalation_id: int | None = None) -> dict | None:
        """The message's metadata payload if it is of `event_type` (and about `escalation_id`, when given)."""
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        if metadata.get("event_type") == event_type and (
                escalation_id is None or str(payload.get("escalation_id")) == str(escalation_id)):
            return payload
        return None

    def _posted_parts(self, channel: str, ts: str, escalation_id: int) -> set[int]:
        replies = self._pages(self.slack.conversations_replies, channel=channel, ts=ts, limit=200)
        return {int(payload.get("part", -1)) for message in replies
                if (payload := self._payload(message, TRANSCRIPT_EVENT_TYPE, escalation_id)) is not None}

    def _find_post(self, escalation: Escalation) -> str | None:
        """After a crash between posting and recording: find our message by its metadata, newest first."""
        created = parse_time(escalation.created_at)
        oldest = f"{created.timestamp() - FIND_WINDOW_SECONDS:.6f}" if created else "0"
        history = self._pages(self.slack.conversations_history, channel=escalation.channel, oldest=oldest, limit=100)
        return next((m["ts"] for m in history
                     if self._payload(m, METADATA_EVENT_TYPE, escalation.id) is not None), None)
