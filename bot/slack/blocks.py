"""Block Kit builders: pure functions from Seam's data to Slack message payloads (plain dicts).

Built with slack_sdk's models so Slack's limits are validated at build time (`to_dict()` raises on a breach).
Ticket text never reaches Slack as mrkdwn unescaped: free text goes into `plain_text` objects, which Slack
renders literally (no mentions, no formatting), and the few mrkdwn places escape `&`, `<` and `>`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.models import Decision, Escalation, EscalationState, Message, Reason, Route, Ticket
from bot.text import clip, duration, has_placeholder, parse_time

SECTION_LIMIT = 3000
# Under the section limit, leaving room for a continuation marker.
CHUNK_CHARS = 2900
# Thread replies for one transcript; past this the rest is summarised with a link, so a huge thread never
# floods the channel or fails the post.
MAX_TRANSCRIPT_POSTS = 20
# A thread reply of the transcript holds whole parts of the conversation up to this many characters (and
# Slack's 50 blocks a message): a short conversation is one reply. Slack paces posts per channel, so fewer
# replies leave room for the next escalation's card sooner.
REPLY_CHARS = 4000
REPLY_BLOCKS = 50
FIELD_LIMIT = 2000
ACTION_IDS = {"claim": "seam_claim", "approve": "seam_approve", "edit": "seam_edit", "reject": "seam_reject",
              "retry": "seam_retry", "unclaim": "seam_unclaim", "reassign": "seam_reassign",
              "approve_after_edit": "seam_approve_after_edit"}
# The Approve button of a draft a person may not send as it is (none, below the draft threshold, placeholders,
# another customer's details): every card offers Claim, Approve, Edit and Reject, and this Approve opens the Edit
# form, so one click never sends such a draft.
APPROVE_AFTER_EDIT = "Approve (edit first)"
EDIT_CALLBACK = "seam_edit_submit"
REJECT_CALLBACK = "seam_reject_submit"
REASSIGN_CALLBACK = "seam_reassign_submit"
# The route in words: what the header and the Route field say.
ROUTE_WORDS = {Route.ESCALATE: "Needs a person", Route.DRAFT: "Draft to approve"}
# The reason code of a draft below the draft threshold (bot.policy.triggers.low_confidence).
LOW_CONFIDENCE = "low_confidence"
# The reason code of an answer naming another customer's details (bot.policy.decide.OTHER_CUSTOMER): a person edits
# those out before it is sent, so one click cannot send it.
OTHER_CUSTOMER = "other_customer"
METADATA_EVENT_TYPE = "seam_escalation"
# Slack's plain_text_input holds at most 3000 characters.
INPUT_LIMIT = 3000
# The draft, which Approve sends whole, is shown whole in up to this many sections of CHUNK_CHARS; a longer one
# could not be read on the card, so it is offered for Edit, not Approve. Slack refuses a message whose blocks hold
# more than about 13,000 characters in all (`msg_blocks_too_long`, below the documented limits: slackapi/bolt-js
# #2509), and a sent card also shows the reply: two sections leave room for the rest.
DRAFT_SECTIONS = 2
# How the cards name each helpdesk (HELPDESK's value); another is shown capitalised.
HELPDESK_LABELS = {"zendesk": "Zendesk", "freshdesk": "Freshdesk", "gorgias": "Gorgias", "front": "Front",
                   "helpscout": "Help Scout"}
REJECT_REASONS = {
    "wrong_information": "Wrong information",
    "wrong_tone": "Wrong tone",
    "should_not_automate": "Should not be automated",
    "needs_investigation": "Needs investigation",
    "other": "Other",
}


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: after this, `<!channel>` or `<http://x|y>` in ticket text is shown, not parsed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def helpdesk_label(name: str | None) -> str:
    """A helpdesk's name as people write it ("Help Scout" for `helpscout`); "the helpdesk" when not known."""
    key = (name or "").strip().lower()
    return HELPDESK_LABELS.get(key) or (key.capitalize() if key else "the helpdesk")


def _plain(text: str, limit: int = SECTION_LIMIT) -> PlainTextObject:
    # Slack rejects empty text objects.
    return PlainTextObject(text=clip(text, limit) or " ", emoji=False)


def _link(url: str | None, label: str) -> str:
    label = escape(label).replace("|", "¦")
    if url and url.startswith(("https://", "http://")) and not any(c in url for c in "<>| "):
        return f"<{url}|{label}>"
    return label


@dataclass(frozen=True)
class EscalationView:
    """Everything the escalation message shows, gathered by the pipeline."""

    escalation_id: int
    ticket: Ticket
    decision: Decision
    link: str | None
    queue: str | None = None  # the `[[routes]]` entry that chose the channel, by name
    mention: str | None = None  # whom that route mentions (`<@U…>`, `<!subteam^S…>`)
    page: str | None = None  # the managers a `page_manager` route mentions too
    erased_at: str | None = None  # when the conversation was erased on request (`erased_card`)
    follow_ups: int = 0  # how often the customer wrote again since the card was posted (bot.store `add_follow_up`)

    def to_card(self) -> dict:
        """What the message needs, as JSON the store keeps so every later update re-renders the same card."""
        t, d = self.ticket, self.decision
        card = {
            "ticket": {"id": t.id, "subject": t.subject, "requester_name": t.requester_name,
                       "requester_email": t.requester_email, "priority": t.priority},
            "decision": {"route": str(d.route), "confidence": d.confidence, "answer": d.answer,
                         "answer_source": d.answer_source, "summary": d.summary,
                         "reasons": [r.__dict__ for r in d.reasons]},
            "link": self.link,
        }
        if self.queue or self.mention or self.page:
            card["queue"] = {"name": self.queue, "mention": self.mention, "page": self.page}
        if self.erased_at:
            card["erased_at"] = self.erased_at
        return card

    @classmethod
    def from_card(cls, escalation_id: int, card: dict) -> EscalationView:
        t, d = card["ticket"], card["decision"]
        decision = Decision(route=Route(d["route"]), confidence=d["confidence"], answer=d["answer"],
                            answer_source=d["answer_source"], summary=d["summary"],
                            reasons=tuple(Reason(**r) for r in d["reasons"]))
        queue = card.get("queue") or {}
        return cls(escalation_id=escalation_id, ticket=Ticket(**t), decision=decision, link=card["link"],
                   queue=queue.get("name"), mention=queue.get("mention"), page=queue.get("page"),
                   erased_at=card.get("erased_at"), follow_ups=len(card.get("follow_ups") or ()))

    @property
    def mentions(self) -> str:
        """Everyone the first post notifies: the route's mention and, for a paging route, the managers."""
        return " ".join(m for m in (self.mention, self.page) if m)


@dataclass(frozen=True)
class Status:
    """Where an escalation stands after agents acted on it."""

    state: EscalationState = EscalationState.OPEN
    owner: str | None = None
    sent_by: str | None = None
    sent_text: str | None = None
    reason: str | None = None
    error: str | None = None
    created_at: str | None = None  # for the age shown ("waiting 12 min", as of the render)
    sla_due_at: str | None = None
    customer_notified_at: str | None = None
    helpdesk: str | None = None  # the ticket's helpdesk (HELPDESK's value): where an answered ticket was answered

    @classmethod
    def of(cls, escalation: Escalation) -> Status:
        # A card still being posted is shown as it will be once posted: open.
        state = EscalationState.OPEN if escalation.state == EscalationState.POSTING else escalation.state
        return cls(state=state, owner=escalation.owner, sent_by=escalation.sent_by,
                   sent_text=escalation.sent_text, reason=escalation.reject_reason, error=escalation.last_error,
                   created_at=escalation.created_at, sla_due_at=escalation.sla_due_at,
                   customer_notified_at=escalation.customer_notified_at,
                   helpdesk=escalation.ticket_key.split(":", 1)[0])


def approvable(decision: Decision) -> bool:
    """Is the draft one a person may send with one click? Not when there is none, when its confidence is below
    the draft threshold (then it is only a starting point for Edit), when it still holds placeholders, when it
    names another customer's details, or when it is too long for the card to show whole (`fits_card`)."""
    return trusted(decision) and fits_card(decision.answer or "")


def trusted(decision: Decision) -> bool:
    """`approvable` but for the draft's length: there is one, confident enough, without placeholders or another
    customer's details."""
    answer = (decision.answer or "").strip()
    return bool(answer) and not has_placeholder(answer) and not any(r.code in (LOW_CONFIDENCE, OTHER_CUSTOMER)
                                                                     for r in decision.reasons)


def fits_card(draft: str) -> bool:
    """Can the card show all of this draft (DRAFT_SECTIONS sections at most)?"""
    return len(_split(draft.strip(), CHUNK_CHARS)) <= DRAFT_SECTIONS


def _draft_blocks(draft: str) -> list[Block]:
    """The draft as plain-text sections: all of it when it fits (`fits_card`); else its start, and a line saying it
    was shortened, so it is not offered for Approve."""
    parts = _split(draft.strip(), CHUNK_CHARS)
    blocks: list[Block] = [SectionBlock(text=_plain(part)) for part in parts[:DRAFT_SECTIONS]]
    if len(parts) > DRAFT_SECTIONS:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"Draft shortened here ({len(draft):,} characters), too long to approve as it is: Edit starts from "
                 f"its first {INPUT_LIMIT:,} characters.")]))
    return blocks


def _title(route: Route) -> str:
    return ("✍️ " if route == Route.DRAFT else "🙋 ") + ROUTE_WORDS.get(route, str(route))


# What an erased card shows for the subject and the summary.
ERASED = "(erased on request)"


def follow_up_note(text: str, *, owner: str | None) -> str:
    """The thread note of a customer's message that came while their escalation waits on a person (mrkdwn): the
    owner mentioned, so they hear of it; the customer's words escaped and quoted, cut to FOLLOW_UP_LIMIT."""
    who = f" <@{owner}>" if owner else ""
    words = clip(text.strip(), FOLLOW_UP_LIMIT)
    quoted = "\n".join(f"> {escape(line)}" if line.strip() else ">" for line in words.splitlines())
    return f"💬 *The customer wrote again*{who}:\n{quoted}"


# The most of a follow-up message the thread note quotes; the whole of it is in the helpdesk (the ticket link).
FOLLOW_UP_LIMIT = 3000


def erased_card(card: dict, *, at: str) -> dict:
    """The card of an escalation whose conversation was erased on request (bot.flows.erasure): the route, the
    confidence, the reasons and the link stay; the subject, who asked, what was asked and the draft go."""
    ticket, decision = card.get("ticket") or {}, card.get("decision") or {}
    return {**card, "ticket": {**ticket, "subject": ERASED, "requester_name": None, "requester_email": None},
            "decision": {**decision, "answer": None, "summary": ERASED}, "erased_at": at}


def _fallback_text(view: EscalationView) -> str:
    subject = view.ticket.subject or f"Ticket {view.ticket.id}"
    reasons = "; ".join(r.label for r in view.decision.reasons)
    return escape(clip(f"{_title(view.decision.route)}: #{view.ticket.id} {subject} ({reasons})", 500))


APPROVE_CONFIRM = {"title": "Send this reply?", "confirm": "Send it", "deny": "Not yet",
                   "text": "The suggested reply goes to the customer now, as a public reply on the ticket."}


def _button(kind: str, escalation_id: int, *, style: str | None = None, text: str | None = None) -> ButtonElement:
    confirm = ConfirmObject(**APPROVE_CONFIRM) if kind == "approve" else None
    return ButtonElement(text=text or kind.capitalize(), action_id=ACTION_IDS[kind], value=str(escalation_id),
                         style=style, confirm=confirm)


def _reply_buttons(decision: Decision, escalation_id: int, *, primary: bool) -> list[ButtonElement]:
    """Approve, Edit (or "Edit: write reply" when there is no draft at all) and Reject. Approve sends the draft
    after a confirm when a person may send it as it is (`approvable`); otherwise it reads APPROVE_AFTER_EDIT and
    opens the Edit form, and Edit is the primary button."""
    has_draft = bool((decision.answer or "").strip())
    if approvable(decision):
        approve = _button("approve", escalation_id, style="primary" if primary else None)
    else:
        approve = _button("approve_after_edit", escalation_id, text=APPROVE_AFTER_EDIT)
    edit = _button("edit", escalation_id, text=None if has_draft else "Edit: write reply",
                   style="primary" if primary and not approvable(decision) else None)
    return [approve, edit, _button("reject", escalation_id, style="danger")]


def _status_blocks(status: Status, view: EscalationView) -> list[Block]:
    """The part of the card that changes as agents act: who owns it, what was sent, and what is left to do."""
    escalation_id = view.escalation_id
    owner = f"<@{status.owner}>" if status.owner else "nobody"
    if status.state == EscalationState.OPEN:
        return [ActionsBlock(block_id="seam_actions", elements=[
            _button("claim", escalation_id, style="primary"),
            *_reply_buttons(view.decision, escalation_id, primary=False),
            _button("reassign", escalation_id, text="Assign to…")])]
    if status.state == EscalationState.CLAIMED:
        return [
            ContextBlock(elements=[MarkdownTextObject(text=f"👤 Claimed by {owner}")]),
            ActionsBlock(block_id="seam_actions", elements=[
                *_reply_buttons(view.decision, escalation_id, primary=True),
                _button("unclaim", escalation_id), _button("reassign", escalation_id)]),
        ]
    if status.state == EscalationState.SENDING:
        return [ContextBlock(elements=[MarkdownTextObject(text=f"⏳ Sending the reply… (claimed by {owner})")])]
    if status.state == EscalationState.SENT:
        return [
            SectionBlock(text=MarkdownTextObject(text=f"✅ *Sent by <@{status.sent_by or status.owner}>*")),
            SectionBlock(text=_plain(status.sent_text or "")),
        ]
    if status.state == EscalationState.ANSWERED:
        # Answered outside Seam (bot.flows.answered): nothing to click, so a second answer cannot go out from here.
        where = helpdesk_label(status.helpdesk)
        if not (status.sent_text or "").strip():
            return [SectionBlock(text=MarkdownTextObject(
                text=f"✅ *Solved in {escape(where)}* without a reply through Seam — nothing left to do here."))]
        return [
            SectionBlock(text=MarkdownTextObject(
                text=f"✅ *Answered in {escape(where)} by an agent* — nothing left to do here.")),
            SectionBlock(text=_plain(status.sent_text or "")),
        ]
    if status.state == EscalationState.REJECTED:
        label = REJECT_REASONS.get(status.reason or "", status.reason or "no reason given")
        return [SectionBlock(text=MarkdownTextObject(
            text=f"🚫 *Draft rejected by <@{status.sent_by or status.owner}>*: {escape(label)}. "
                 "The ticket stays with a person; the reason is an internal note on the ticket."))]
    if status.state == EscalationState.FAILED:
        return [
            SectionBlock(text=MarkdownTextObject(text=clip(
                f"⚠️ *The reply was not sent*: {escape(status.error or 'the helpdesk did not accept it')}. "
                f"The draft is kept; Retry sends it again. (claimed by {owner})", SECTION_LIMIT))),
            ActionsBlock(block_id="seam_actions", elements=[
                _button("retry", escalation_id, style="primary"), _button("edit", escalation_id),
                _button("reject", escalation_id, style="danger"), _button("unclaim", escalation_id),
                _button("reassign", escalation_id)]),
        ]
    return []


def _moment(moment: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """A time Slack shows in each reader's own time zone (UTC where it cannot)."""
    return f"<!date^{int(moment.timestamp())}^{fmt}|{moment:%Y-%m-%d %H:%M} UTC>"


def _tried(decision: Decision) -> str:
    """What the AI tried, in a sentence: its best answer's source and confidence, and what became of it."""
    source = f"`{escape(decision.answer_source)}`" if decision.answer_source else "a written answer"
    confident = f"{decision.confidence:.0%} confident"
    codes = {r.code for r in decision.reasons}
    answer = (decision.answer or "").strip()
    if not answer:
        if "excluded" in codes:
            return "nothing: this kind of ticket is excluded from automatic answers."
        if "ai_unavailable" in codes:
            return "nothing: the AI was unavailable."
        return f"no article or past answer fits ({confident} at best)."
    if has_placeholder(answer):
        return f"{source}, {confident}, but it holds placeholders a person fills in: Edit it before sending."
    if LOW_CONFIDENCE in codes:
        return (f"{source}, only {confident}: below the draft threshold, so it is a starting point for Edit, "
                "not a reply to approve.")
    return f"{source}, {confident}: the suggested reply below."


def _summary(decision: Decision) -> list[Block]:
    """What the card says that the customer's first message does not: what was asked (the customer's words, as
    plain text), what the AI tried and why a person has it."""
    why = "\n".join(f"• {escape(r.text())}" for r in decision.reasons) or "• (no reason recorded)"
    return [
        SectionBlock(text=MarkdownTextObject(text="*Summary* — what was asked")),
        SectionBlock(text=_plain(decision.summary or "(no summary)")),
        SectionBlock(text=MarkdownTextObject(text=clip(
            f"*AI tried:* {_tried(decision)}\n*Why a person:*\n{why}", SECTION_LIMIT))),
    ]


def _fields(view: EscalationView, status: Status, now: datetime | None) -> list[MarkdownTextObject]:
    ticket, decision = view.ticket, view.decision
    requester = ticket.requester_name or ticket.requester_email or "unknown"
    if ticket.requester_name and ticket.requester_email:
        requester = f"{ticket.requester_name} <{ticket.requester_email}>"
    fields = [
        MarkdownTextObject(text=clip(f"*Requester*\n{escape(requester)}", FIELD_LIMIT)),
        MarkdownTextObject(text=clip(f"*Priority*\n{escape(ticket.priority or 'normal')}", FIELD_LIMIT)),
        MarkdownTextObject(text=f"*Confidence*\n{decision.confidence:.0%}"),
        MarkdownTextObject(text=f"*Route*\n{ROUTE_WORDS.get(decision.route, str(decision.route))}"),
    ]
    if view.queue:
        fields.append(MarkdownTextObject(text=clip(
            f"*Queue*\n{escape(view.queue)}" + (f" · {view.mention}" if view.mention else ""), FIELD_LIMIT)))
    created, due = parse_time(status.created_at), parse_time(status.sla_due_at)
    if now is not None and created is not None and status.state in UNFINISHED:
        fields.append(MarkdownTextObject(text=f"*Waiting*\n{duration((now - created).total_seconds())}"))
    if due is not None:
        when = _moment(due)
        if now is not None and status.state in UNFINISHED:
            left = (due - now).total_seconds()
            when += f" · 🔴 overdue by {duration(-left)}" if left < 0 else f" · in {duration(left)}"
        fields.append(MarkdownTextObject(text=f"*SLA due*\n{when}"))
    return fields


# States in which the escalation still waits for someone: the card shows its age and the time left.
UNFINISHED = (EscalationState.OPEN, EscalationState.CLAIMED, EscalationState.SENDING, EscalationState.FAILED)


def escalation_blocks(view: EscalationView, status: Status | None = None, *,
                      now: datetime | None = None) -> list[Block]:
    """The card. `now` is the moment of this render: with it the card shows how long the escalation has waited
    and the time left to the SLA (re-rendered by `Poster.refresh`); without it neither, as in the first post."""
    ticket, decision = view.ticket, view.decision
    status = status or Status()
    subject = ticket.subject.strip() or "(no subject)"
    blocks: list[Block] = [
        HeaderBlock(text=_plain(_title(decision.route), 150)),
        SectionBlock(
            text=MarkdownTextObject(text=f"*{_link(view.link, clip(f'#{ticket.id} {subject}', 300))}*"),
            fields=_fields(view, status, now),
        ),
        *_summary(decision),
        DividerBlock(),
    ]
    if view.erased_at:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=f"_The conversation was erased from Seam on request ({escape(view.erased_at[:10])}); the ticket "
                 "is in the helpdesk._")))
    elif decision.answer:
        source = f" (from {escape(clip(decision.answer_source, 200))})" if decision.answer_source else ""
        label = ("*Suggested reply*" if approvable(decision)
                 else "*AI draft* — not ready to approve as it is; Edit starts from it")
        blocks += [
            SectionBlock(text=MarkdownTextObject(text=f"{label}{source}")),
            *_draft_blocks(decision.answer),
        ]
    else:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text="*Suggested reply*\n_No article or past answer matched this ticket; a person needs to write it: "
                 "Edit: write reply._")))
    if view.follow_ups and not view.erased_at:
        times = "once" if view.follow_ups == 1 else f"{view.follow_ups} times"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"💬 The customer wrote again ({times}) since this card was posted: their words are in the "
                 "thread. The draft answers their earlier message.")]))
    if status.customer_notified_at:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text="📣 Seam told the customer a person will follow up (the words are in the thread)")]))
    blocks += _status_blocks(status, view)
    footer = f"Seam escalation {view.escalation_id} · full conversation in the thread"
    if now is not None:
        footer += f" · as of {_moment(now, '{time}')}"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=footer)]))
    return blocks


def escalation_message(view: EscalationView, status: Status | None = None, *, now: datetime | None = None,
                       notify: bool = False) -> dict:
    """Arguments for chat.postMessage or chat.update (without `channel`/`ts`), including the metadata that
    finds the post again after a crash. `notify` (the first post only) puts the route's mentions and a paging
    route's managers at the start of the message's text: Slack notifies people from `text`; an update never
    notifies anyone again."""
    text = _fallback_text(view)
    if notify and view.mentions:
        text = f"{view.mentions} {text}"
    return {
        "text": text,
        "blocks": [b.to_dict() for b in escalation_blocks(view, status, now=now)],
        "metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": {"escalation_id": view.escalation_id,
                                                                          "ticket_id": view.ticket.id}},
        "unfurl_links": False,
        "unfurl_media": False,
    }


def _split(text: str, size: int) -> list[str]:
    """Cut text into pieces of at most `size`, preferring line and word boundaries."""
    pieces = []
    while len(text) > size:
        cut = text.rfind("\n", 0, size)
        if cut < size // 2:
            cut = text.rfind(" ", 0, size)
        if cut < size // 2:
            cut = size
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text.strip() or not pieces:
        pieces.append(text)
    return pieces


_AUTHOR_LABEL = {"customer": "Customer", "agent": "Agent", "bot": "Seam (bot)"}


def transcript_messages(messages: Sequence[Message], *, link: str | None = None,
                        max_posts: int = MAX_TRANSCRIPT_POSTS) -> list[dict]:
    """The full conversation as thread replies, one part of a message each: chat.postMessage payloads within
    Slack's limits. (`transcript_replies` fits several parts in a reply.)"""
    sections = _transcript_sections(messages)
    posts: list[dict] = []
    for heading, text in sections:
        if len(posts) == max_posts - 1 and len(sections) > max_posts:
            posts.append(_more_parts(len(sections) - len(posts), link))
            break
        posts.append(_transcript_reply([(heading, text)]))
    return posts


def transcript_replies(messages: Sequence[Message], *, link: str | None = None,
                       max_posts: int = MAX_TRANSCRIPT_POSTS, max_chars: int = REPLY_CHARS) -> list[dict]:
    """The full conversation in as few thread replies as fit: consecutive parts (each a heading and its text)
    share a reply up to `max_chars` characters and Slack's 50 blocks, so a short conversation is one reply and
    a long message still splits at the section limit. At most `max_posts` replies: past that the last one says
    how many parts are not shown and links the ticket."""
    groups: list[list[tuple[str, str]]] = []
    size = 0
    for heading, text in _transcript_sections(messages):
        cost = len(heading) + len(text)
        if groups and size + cost <= max_chars and 2 * (len(groups[-1]) + 1) <= REPLY_BLOCKS:
            groups[-1].append((heading, text))
            size += cost
        else:
            groups.append([(heading, text)])
            size = cost
    if len(groups) <= max_posts:
        return [_transcript_reply(group) for group in groups]
    shown = groups[:max_posts - 1]
    return [*(_transcript_reply(group) for group in shown),
            _more_parts(sum(len(group) for group in groups[max_posts - 1:]), link)]


def _transcript_reply(parts: Sequence[tuple[str, str]]) -> dict:
    blocks: list[Block] = []
    for heading, text in parts:
        blocks += [ContextBlock(elements=[MarkdownTextObject(text=heading)]), SectionBlock(text=_plain(text))]
    return {"text": clip(escape("\n\n".join(text for _, text in parts)), CHUNK_CHARS),
            "blocks": [b.to_dict() for b in blocks]}


def _more_parts(remaining: int, link: str | None) -> dict:
    return {"text": f"… {remaining} more parts of the conversation are not shown here. "
                    f"{_link(link, 'Open the full ticket') if link else ''}".strip()}


def _transcript_sections(messages: Sequence[Message]) -> list[tuple[str, str]]:
    """Each message as (heading, text) parts, the text at most CHUNK_CHARS (a long message is split)."""
    sections: list[tuple[str, str]] = []
    for number, message in enumerate(messages, start=1):
        visibility = "" if message.public else " (internal note)"
        when = f" · {clip(message.created_at, 64)}" if message.created_at else ""
        heading = f"*{number}. {_AUTHOR_LABEL.get(message.author, 'Agent')}*{visibility}{escape(when)}"
        body = message.body.strip() or ("" if message.attachments else "(empty)")
        if message.attachments:
            body += ("\n" if body else "") + "\n".join(f"📎 {name}" for name in message.attachments)
        parts = _split(body, CHUNK_CHARS)
        for index, part in enumerate(parts):
            suffix = f" (part {index + 1} of {len(parts)})" if len(parts) > 1 else ""
            sections.append((heading + suffix, part))
    return sections


def _metadata(escalation_id: int, message: tuple[str, str] | None) -> str:
    """A form's private metadata: the escalation it acts on, and the card (channel, ts) it was opened from,
    which the submission checks still belong together."""
    data: dict = {"escalation_id": escalation_id}
    if message is not None:
        data["channel"], data["ts"] = message
    return json.dumps(data)


def edit_modal(escalation_id: int, *, draft: str | None, ticket_label: str, caution: str | None = None,
               message: tuple[str, str] | None = None) -> dict:
    """The Edit modal: the draft in a multiline input (an empty one, titled "Write reply", when there is no
    draft); Slack checks it is not empty, and so do we on submit. `caution` (mrkdwn) says why the draft needs a
    careful read, such as a confidence below the draft threshold."""
    text = draft or ""
    notice = []
    if caution:
        notice.append(ContextBlock(elements=[MarkdownTextObject(text=clip(caution, SECTION_LIMIT))]))
    if len(text) > INPUT_LIMIT:
        notice.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"The draft had {len(text):,} characters; Slack's input holds {INPUT_LIMIT:,}, so it is shortened.")]))
    view = View(
        type="modal", callback_id=EDIT_CALLBACK, private_metadata=_metadata(escalation_id, message),
        title=PlainTextObject(text="Edit reply" if text.strip() else "Write reply"),
        submit=PlainTextObject(text="Send reply"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=clip(f"Reply to *{escape(ticket_label)}*", SECTION_LIMIT))),
            *notice,
            InputBlock(block_id="reply", label=PlainTextObject(text="Reply to the customer"),
                       element=PlainTextInputElement(action_id="text", multiline=True, min_length=1,
                                                     max_length=INPUT_LIMIT,
                                                     initial_value=text[:INPUT_LIMIT] or None)),
        ],
    )
    return view.to_dict()


def reject_modal(escalation_id: int, *, ticket_label: str, message: tuple[str, str] | None = None) -> dict:
    view = View(
        type="modal", callback_id=REJECT_CALLBACK, private_metadata=_metadata(escalation_id, message),
        title=PlainTextObject(text="Reject draft"), submit=PlainTextObject(text="Reject"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=clip(
                f"Nothing reaches the customer. *{escape(ticket_label)}* stays with a person, and the reason is "
                "added to the ticket as an internal note.", SECTION_LIMIT))),
            InputBlock(block_id="reason", label=PlainTextObject(text="What is wrong with the draft?"),
                       element=StaticSelectElement(action_id="choice", placeholder="Choose a reason", options=[
                           Option(value=key, text=label) for key, label in REJECT_REASONS.items()])),
            InputBlock(block_id="note", label=PlainTextObject(text="Details"), optional=True,
                       element=PlainTextInputElement(action_id="text", multiline=True, max_length=INPUT_LIMIT)),
        ],
    )
    return view.to_dict()


def reassign_modal(escalation_id: int, *, ticket_label: str, owner: str | None,
                   message: tuple[str, str] | None = None) -> dict:
    """The Reassign form: a Slack user picker. For an open escalation it assigns it (a claim on someone's
    behalf); for an owned one it hands it over."""
    lead = (f"*{escape(ticket_label)}* is owned by <@{owner}>. Who takes it over?" if owner
            else f"Nobody owns *{escape(ticket_label)}* yet. Who should take it?")
    view = View(
        type="modal", callback_id=REASSIGN_CALLBACK, private_metadata=_metadata(escalation_id, message),
        title=PlainTextObject(text="Reassign escalation" if owner else "Assign escalation"),
        submit=PlainTextObject(text="Reassign" if owner else "Assign"), close=PlainTextObject(text="Cancel"),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=clip(lead, SECTION_LIMIT))),
            InputBlock(block_id="owner", label=PlainTextObject(text="New owner"),
                       element=UserSelectElement(action_id="user", placeholder="Choose a person")),
            ContextBlock(elements=[MarkdownTextObject(
                text="The ticket is assigned to them in the helpdesk (matched by their Slack email), and they get "
                     "a DM.")]),
        ],
    )
    return view.to_dict()


def owner_dm(view: EscalationView, *, assigned_by: str | None = None) -> dict:
    """The DM an agent gets when they claim, or when someone else gives them the escalation: the ticket link and
    the summary."""
    ticket = view.ticket
    label = clip(f"#{ticket.id} {ticket.subject.strip() or '(no subject)'}", 300)
    lead = f"<@{assigned_by}> gave you" if assigned_by else "You claimed"
    plain_lead = "You were given" if assigned_by else "You claimed"
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=clip(f"{lead} *{_link(view.link, label)}*", SECTION_LIMIT))),
        SectionBlock(text=_plain(view.decision.summary or "(no summary)")),
    ]
    return {"text": escape(clip(f"{plain_lead} {label}", 500)), "blocks": [b.to_dict() for b in blocks],
            "unfurl_links": False}


# -- App Home -------------------------------------------------------------------------------------------------

HOME_PAGE_SIZE = 15
HOME_ACTIONS = {"page": "seam_home_page", "pause": "seam_home_pause", "resume": "seam_home_resume",
                "thresholds": "seam_home_thresholds", "retry_dead": "seam_home_retry_dead"}
THRESHOLDS_CALLBACK = "seam_thresholds_submit"


@dataclass(frozen=True)
class QueueLine:
    """One channel's queue on the App Home: the routes that post there, and its unfinished escalations."""

    channel: str
    routes: tuple[str, ...]
    open: int
    claimed: int


@dataclass(frozen=True)
class HomeItem:
    escalation_id: int
    ticket_id: str
    subject: str
    link: str | None
    age_seconds: float
    state: str


def _home_list(title: str, items: Sequence[HomeItem], *, page: int, total: int, kind: str) -> list[Block]:
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"*{escape(title)}* ({total})"))]
    if not items:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="Nothing here.")]))
        return blocks
    for item in items:
        label = clip(f"#{item.ticket_id} {item.subject.strip() or '(no subject)'}", 200)
        state = "" if item.state in ("open", "claimed") else f" · {item.state}"
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=f"{_link(item.link, label)}\nwaiting {duration(item.age_seconds)}{state} · "
                 f"escalation {item.escalation_id}")))
    pages = max(1, -(-total // HOME_PAGE_SIZE))
    if pages > 1:
        buttons = []
        if page > 0:
            buttons.append(ButtonElement(text="Previous", action_id=f"{HOME_ACTIONS['page']}_{kind}_prev",
                                         value=f"{kind}:{page - 1}"))
        if page < pages - 1:
            buttons.append(ButtonElement(text="Next", action_id=f"{HOME_ACTIONS['page']}_{kind}_next",
                                         value=f"{kind}:{page + 1}"))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"page {page + 1} of {pages}")]))
        blocks.append(ActionsBlock(block_id=f"seam_home_{kind}_pages", elements=buttons))
    return blocks


def _queue_blocks(queues: Sequence[QueueLine]) -> list[Block]:
    if not queues:
        return []
    lines = [f"• <#{q.channel}>" + (f" ({escape(', '.join(q.routes))})" if q.routes else "")
             + f": {q.open} open, {q.claimed} claimed" for q in queues]
    return [DividerBlock(), SectionBlock(text=MarkdownTextObject(
        text=clip("*Queues by channel*\n" + "\n".join(lines), SECTION_LIMIT)))]


def home_view(*, manager: bool, paused: bool, thresholds_text: str, stats_text: str, owned: Sequence[HomeItem],
              owned_total: int, owned_page: int, unclaimed: Sequence[HomeItem], unclaimed_total: int,
              unclaimed_page: int, queue: dict | None = None, notice: str | None = None,
              queues: Sequence[QueueLine] = ()) -> dict:
    """The App Home for one viewer. Lists are paged (HOME_PAGE_SIZE each) so the view stays under Slack's
    100 blocks however long the queue is. `notice` (mrkdwn Seam wrote, such as the quality guard's reason for
    pausing) comes first, for everyone to see. `queues`: each escalation channel's open and claimed counts."""
    blocks: list[Block] = [HeaderBlock(text=_plain("Seam", 150))]
    if notice:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(notice, SECTION_LIMIT))))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(thresholds_text, SECTION_LIMIT))))
    if manager:
        toggle = ("resume", "Resume automatic replies") if paused else ("pause", "Pause automatic replies")
        blocks.append(ActionsBlock(block_id="seam_home_manager", elements=[
            ButtonElement(text=toggle[1], action_id=HOME_ACTIONS[toggle[0]], value=toggle[0],
                          style="primary" if paused else "danger"),
            ButtonElement(text="Edit thresholds", action_id=HOME_ACTIONS["thresholds"], value="thresholds"),
        ]))
        if queue is not None:
            age = queue.get("oldest_pending_seconds")
            waiting = [f"{queue['retrying']} retrying"] if queue.get("retrying") else []
            waiting += [] if age is None else [f"oldest {duration(age)}"]
            detail = f" ({', '.join(waiting)})" if waiting else ""
            line = f"*Work queue*: {queue['pending']} pending{detail}, {queue['dead']} dead"
            if queue["dead"]:
                blocks.append(SectionBlock(
                    text=MarkdownTextObject(text=line + " — dead jobs failed five times (or for a day while a "
                                                        "service was down) and wait for you"),
                    accessory=ButtonElement(text="Retry dead jobs", action_id=HOME_ACTIONS["retry_dead"],
                                            value="retry")))
            else:
                blocks.append(ContextBlock(elements=[MarkdownTextObject(text=line)]))
    blocks += [
        DividerBlock(),
        SectionBlock(text=MarkdownTextObject(text=clip(stats_text, SECTION_LIMIT))),
        *_queue_blocks(queues),
        DividerBlock(),
        *_home_list("Your escalations", owned, page=owned_page, total=owned_total, kind="owned"),
        DividerBlock(),
        *_home_list("Unclaimed, oldest first", unclaimed, page=unclaimed_page, total=unclaimed_total,
                    kind="unclaimed"),
    ]
    view = View(type="home", blocks=blocks,
                private_metadata=json.dumps({"owned": owned_page, "unclaimed": unclaimed_page}))
    return view.to_dict()


def thresholds_modal(*, auto: float, draft: float) -> dict:
    def number_input(block_id: str, label: str, value: float) -> InputBlock:
        return InputBlock(block_id=block_id, label=PlainTextObject(text=label),
                          element=PlainTextInputElement(action_id="value", initial_value=f"{value:.2f}",
                                                        max_length=6))

    view = View(type="modal", callback_id=THRESHOLDS_CALLBACK, title=PlainTextObject(text="Seam thresholds"),
                submit=PlainTextObject(text="Save"), close=PlainTextObject(text="Cancel"), blocks=[
                    SectionBlock(text=MarkdownTextObject(
                        text="Confidence from 0 to 1. At or above *auto* the AI answers alone; between *draft* and "
                             "*auto* a person approves its draft; below *draft* a person takes over.")),
                    number_input("auto", "auto (answer automatically)", auto),
                    number_input("draft", "draft (suggest a reply)", draft),
                ])
    return view.to_dict()
