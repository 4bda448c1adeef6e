"""Block Kit builders: pure functions from Seam's data to Slack message payloads (plain dicts).

Built with slack_sdk's models so Slack's limits are validated at build time (`to_dict()` raises on a breach).
Ticket text never reaches Slack as mrkdwn unescaped: free text goes into `plain_text` objects, which Slack
renders literally (no mentions, no formatting), and the few mrkdwn places escape `&`, `<` and `>`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
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
)
from slack_sdk.models.views import View

from bot.models import Decision, Escalation, EscalationState, Message, Reason, Route, Ticket
from bot.text import clip, duration

SECTION_LIMIT = 3000
# Under the section limit, leaving room for a continuation marker.
CHUNK_CHARS = 2900
# Thread replies for one transcript; past this the rest is summarised with a link, so a huge thread never
# floods the channel or fails the post.
MAX_TRANSCRIPT_POSTS = 20
FIELD_LIMIT = 2000
ACTION_IDS = {"claim": "seam_claim", "approve": "seam_approve", "edit": "seam_edit", "reject": "seam_reject",
              "retry": "seam_retry"}
EDIT_CALLBACK = "seam_edit_submit"
REJECT_CALLBACK = "seam_reject_submit"
METADATA_EVENT_TYPE = "seam_escalation"
# Slack's plain_text_input holds at most 3000 characters.
INPUT_LIMIT = 3000
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

    def to_card(self) -> dict:
        """What the message needs, as JSON the store keeps so every later update re-renders the same card."""
        t, d = self.ticket, self.decision
        return {
            "ticket": {"id": t.id, "subject": t.subject, "requester_name": t.requester_name,
                       "requester_email": t.requester_email, "priority": t.priority},
            "decision": {"route": str(d.route), "confidence": d.confidence, "answer": d.answer,
                         "answer_source": d.answer_source, "summary": d.summary,
                         "reasons": [r.__dict__ for r in d.reasons]},
            "link": self.link,
        }

    @classmethod
    def from_card(cls, escalation_id: int, card: dict) -> EscalationView:
        t, d = card["ticket"], card["decision"]
        decision = Decision(route=Route(d["route"]), confidence=d["confidence"], answer=d["answer"],
                            answer_source=d["answer_source"], summary=d["summary"],
                            reasons=tuple(Reason(**r) for r in d["reasons"]))
        return cls(escalation_id=escalation_id, ticket=Ticket(**t), decision=decision, link=card["link"])


@dataclass(frozen=True)
class Status:
    """Where an escalation stands after agents acted on it."""

    state: EscalationState = EscalationState.OPEN
    owner: str | None = None
    sent_by: str | None = None
    sent_text: str | None = None
    reason: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, escalation: Escalation) -> Status:
        return cls(state=escalation.state, owner=escalation.owner, sent_by=escalation.sent_by,
                   sent_text=escalation.sent_text, reason=escalation.reject_reason, error=escalation.last_error)


def _title(route: Route) -> str:
    return "✍️ Draft needs approval" if route == Route.DRAFT else "🙋 Needs a human"


def _fallback_text(view: EscalationView) -> str:
    subject = view.ticket.subject or f"Ticket {view.ticket.id}"
    reasons = "; ".join(r.label for r in view.decision.reasons)
    return escape(clip(f"{_title(view.decision.route)}: #{view.ticket.id} {subject} ({reasons})", 500))


def _button(kind: str, escalation_id: int, *, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=kind.capitalize(), action_id=ACTION_IDS[kind], value=str(escalation_id), style=style)


def _status_blocks(status: Status, escalation_id: int) -> list[Block]:
    """The part of the card that changes as agents act: who owns it, what was sent, and what is left to do."""
    owner = f"<@{status.owner}>" if status.owner else "nobody"
    if status.state == EscalationState.OPEN:
        return [ActionsBlock(block_id="seam_actions", elements=[
            _button("claim", escalation_id, style="primary"), _button("approve", escalation_id),
            _button("edit", escalation_id), _button("reject", escalation_id, style="danger")])]
    if status.state == EscalationState.CLAIMED:
        return [
            ContextBlock(elements=[MarkdownTextObject(text=f"👤 Claimed by {owner}")]),
            ActionsBlock(block_id="seam_actions", elements=[
                _button("approve", escalation_id, style="primary"), _button("edit", escalation_id),
                _button("reject", escalation_id, style="danger")]),
        ]
    if status.state == EscalationState.SENDING:
        return [ContextBlock(elements=[MarkdownTextObject(text=f"⏳ Sending the reply… (claimed by {owner})")])]
    if status.state == EscalationState.SENT:
        return [
            SectionBlock(text=MarkdownTextObject(text=f"✅ *Sent by <@{status.sent_by or status.owner}>*")),
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
                _button("reject", escalation_id, style="danger")]),
        ]
    return []


def escalation_blocks(view: EscalationView, status: Status | None = None) -> list[Block]:
    ticket, decision = view.ticket, view.decision
    subject = ticket.subject.strip() or "(no subject)"
    requester = ticket.requester_name or ticket.requester_email or "unknown"
    if ticket.requester_name and ticket.requester_email:
        requester = f"{ticket.requester_name} <{ticket.requester_email}>"
    blocks: list[Block] = [
        HeaderBlock(text=_plain(_title(decision.route), 150)),
        SectionBlock(
            text=MarkdownTextObject(text=f"*{_link(view.link, clip(f'#{ticket.id} {subject}', 300))}*"),
            fields=[
                MarkdownTextObject(text=clip(f"*Requester*\n{escape(requester)}", FIELD_LIMIT)),
                MarkdownTextObject(text=f"*Priority*\n{escape(ticket.priority or 'normal')}"),
                MarkdownTextObject(text=f"*Confidence*\n{decision.confidence:.0%}"),
                MarkdownTextObject(text=f"*Route*\n{decision.route}"),
            ],
        ),
        SectionBlock(text=MarkdownTextObject(text=clip(
            "*Why*\n" + "\n".join(f"• {escape(r.text())}" for r in decision.reasons), SECTION_LIMIT))),
        SectionBlock(text=MarkdownTextObject(text="*Summary*")),
        SectionBlock(text=_plain(decision.summary or "(no summary)")),
        DividerBlock(),
    ]
    if decision.answer:
        source = f" (from {escape(decision.answer_source)})" if decision.answer_source else ""
        blocks += [
            SectionBlock(text=MarkdownTextObject(text=f"*Suggested reply*{source}")),
            SectionBlock(text=_plain(decision.answer)),
        ]
        if len(decision.answer) > SECTION_LIMIT:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(
                text=f"Draft shortened here ({len(decision.answer):,} characters); Edit shows all of it.")]))
    else:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text="*Suggested reply*\n_No article or past answer matched this ticket; a person needs to write it._")))
    blocks += _status_blocks(status or Status(), view.escalation_id)
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=f"Seam escalation {view.escalation_id} · full conversation in the thread")]))
    return blocks


def escalation_message(view: EscalationView, status: Status | None = None) -> dict:
    """Arguments for chat.postMessage or chat.update (without `channel`/`ts`), including the metadata that
    finds the post again after a crash."""
    return {
        "text": _fallback_text(view),
        "blocks": [b.to_dict() for b in escalation_blocks(view, status)],
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
    """The full conversation as thread replies: each a chat.postMessage payload within Slack's limits."""
    sections: list[tuple[str, str]] = []  # (heading, text) with text <= CHUNK_CHARS
    for number, message in enumerate(messages, start=1):
        visibility = "" if message.public else " (internal note)"
        when = f" · {message.created_at}" if message.created_at else ""
        heading = f"*{number}. {_AUTHOR_LABEL.get(message.author, 'Agent')}*{visibility}{escape(when)}"
        body = message.body.strip() or ("" if message.attachments else "(empty)")
        if message.attachments:
            body += ("\n" if body else "") + "\n".join(f"📎 {name}" for name in message.attachments)
        parts = _split(body, CHUNK_CHARS)
        for index, part in enumerate(parts):
            suffix = f" (part {index + 1} of {len(parts)})" if len(parts) > 1 else ""
            sections.append((heading + suffix, part))
    posts: list[dict] = []
    for heading, text in sections:
        if len(posts) == max_posts - 1 and len(sections) > max_posts:
            remaining = len(sections) - len(posts)
            posts.append({"text": f"… {remaining} more parts of the conversation are not shown here. "
                                  f"{_link(link, 'Open the full ticket') if link else ''}".strip()})
            break
        blocks = [ContextBlock(elements=[MarkdownTextObject(text=heading)]), SectionBlock(text=_plain(text))]
        posts.append({"text": clip(escape(text), CHUNK_CHARS), "blocks": [b.to_dict() for b in blocks]})
    return posts


def _metadata(escalation_id: int) -> str:
    return json.dumps({"escalation_id": escalation_id})


def edit_modal(escalation_id: int, *, draft: str | None, ticket_label: str) -> dict:
    """The Edit modal: the draft in a multiline input; Slack checks it is not empty, and so do we on submit."""
    text = draft or ""
    notice = []
    if len(text) > INPUT_LIMIT:
        notice = [ContextBlock(elements=[MarkdownTextObject(
            text=f"The draft had {len(text):,} characters; Slack's input holds {INPUT_LIMIT:,}, so it is shortened.")])]
    view = View(
        type="modal", callback_id=EDIT_CALLBACK, private_metadata=_metadata(escalation_id),
        title=PlainTextObject(text="Edit reply"), submit=PlainTextObject(text="Send reply"),
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


def reject_modal(escalation_id: int, *, ticket_label: str) -> dict:
    view = View(
        type="modal", callback_id=REJECT_CALLBACK, private_metadata=_metadata(escalation_id),
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


def owner_dm(view: EscalationView) -> dict:
    """The DM an agent gets when they claim: the ticket link and the summary."""
    ticket = view.ticket
    label = clip(f"#{ticket.id} {ticket.subject.strip() or '(no subject)'}", 300)
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=clip(f"You claimed *{_link(view.link, label)}*", SECTION_LIMIT))),
        SectionBlock(text=_plain(view.decision.summary or "(no summary)")),
    ]
    return {"text": escape(clip(f"You claimed {label}", 500)), "blocks": [b.to_dict() for b in blocks],
            "unfurl_links": False}


# -- App Home -------------------------------------------------------------------------------------------------

HOME_PAGE_SIZE = 15
HOME_ACTIONS = {"page": "seam_home_page", "pause": "seam_home_pause", "resume": "seam_home_resume",
                "thresholds": "seam_home_thresholds", "retry_dead": "seam_home_retry_dead"}
THRESHOLDS_CALLBACK = "seam_thresholds_submit"


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


def home_view(*, manager: bool, paused: bool, thresholds_text: str, stats_text: str, owned: Sequence[HomeItem],
              owned_total: int, owned_page: int, unclaimed: Sequence[HomeItem], unclaimed_total: int,
              unclaimed_page: int, queue: dict | None = None, notice: str | None = None) -> dict:
    """The App Home for one viewer. Lists are paged (HOME_PAGE_SIZE each) so the view stays under Slack's
    100 blocks however long the queue is. `notice` (mrkdwn Seam wrote, such as the quality guard's reason for
    pausing) comes first, for everyone to see."""
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
            line = (f"*Work queue*: {queue['pending']} pending"
                    f"{'' if age is None else f' (oldest {duration(age)})'}, {queue['dead']} dead")
            if queue["dead"]:
                blocks.append(SectionBlock(
                    text=MarkdownTextObject(text=line + " — dead jobs failed five times and wait for you"),
                    accessory=ButtonElement(text="Retry dead jobs", action_id=HOME_ACTIONS["retry_dead"],
                                            value="retry")))
            else:
                blocks.append(ContextBlock(elements=[MarkdownTextObject(text=line)]))
    blocks += [
        DividerBlock(),
        SectionBlock(text=MarkdownTextObject(text=clip(stats_text, SECTION_LIMIT))),
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
