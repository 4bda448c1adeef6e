"""Block Kit builders: pure functions from Seam's data to Slack message payloads (plain dicts).

Built with slack_sdk's models so Slack's limits are validated at build time (`to_dict()` raises on a breach).
Ticket text never reaches Slack as mrkdwn unescaped: free text goes into `plain_text` objects, which Slack
renders literally (no mentions, no formatting), and the few mrkdwn places escape `&`, `<` and `>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.models import Decision, Message, Route, Ticket

SECTION_LIMIT = 3000
# Under the section limit, leaving room for a continuation marker.
CHUNK_CHARS = 2900
# Thread replies for one transcript; past this the rest is summarised with a link, so a huge thread never
# floods the channel or fails the post.
MAX_TRANSCRIPT_POSTS = 20
FIELD_LIMIT = 2000
ACTION_IDS = {"claim": "seam_claim", "approve": "seam_approve", "edit": "seam_edit", "reject": "seam_reject"}
METADATA_EVENT_TYPE = "seam_escalation"


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: after this, `<!channel>` or `<http://x|y>` in ticket text is shown, not parsed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _title(route: Route) -> str:
    return "✍️ Draft needs approval" if route == Route.DRAFT else "🙋 Needs a human"


def _fallback_text(view: EscalationView) -> str:
    subject = view.ticket.subject or f"Ticket {view.ticket.id}"
    reasons = "; ".join(r.label for r in view.decision.reasons)
    return escape(clip(f"{_title(view.decision.route)}: #{view.ticket.id} {subject} ({reasons})", 500))


def escalation_blocks(view: EscalationView) -> list[Block]:
    ticket, decision = view.ticket, view.decision
    subject = ticket.subject.strip() or "(no subject)"
    requester = ticket.requester_name or ticket.requester_email or "unknown"
    if ticket.requester_name and ticket.requester_email:
        requester = f"{ticket.requester_name} <{ticket.requester_email}>"
    blocks: list[Block] = [
        HeaderBlock(text=_plain(_title(decision.route), 150)),
        SectionBlock(
            text=MarkdownTextObject(text=clip(f"*{_link(view.link, f'#{ticket.id} {subject}')}*", SECTION_LIMIT)),
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
    blocks += [
        ActionsBlock(block_id="seam_actions", elements=[
            ButtonElement(text="Claim", action_id=ACTION_IDS["claim"], value=str(view.escalation_id),
                          style="primary"),
            ButtonElement(text="Approve", action_id=ACTION_IDS["approve"], value=str(view.escalation_id)),
            ButtonElement(text="Edit", action_id=ACTION_IDS["edit"], value=str(view.escalation_id)),
            ButtonElement(text="Reject", action_id=ACTION_IDS["reject"], value=str(view.escalation_id),
                          style="danger"),
        ]),
        ContextBlock(elements=[MarkdownTextObject(
            text=f"Seam escalation {view.escalation_id} · full conversation in the thread")]),
    ]
    return blocks


def escalation_message(view: EscalationView) -> dict:
    """Arguments for chat.postMessage (without `channel`), including the metadata that finds it after a crash."""
    return {
        "text": _fallback_text(view),
        "blocks": [b.to_dict() for b in escalation_blocks(view)],
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
        parts = _split(message.body.strip() or "(empty)", CHUNK_CHARS)
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
