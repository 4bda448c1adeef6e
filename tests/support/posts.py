"""What Seam posted to the fake Slack: `posts_for` finds the escalation channel's posts for one ticket (by the
ticket id in the message metadata), and `text_objects` collects every `mrkdwn`/`plain_text` text object inside a
Block Kit structure, however deeply nested.
"""

from __future__ import annotations

from tests.support.constants import CHANNEL
from tests.support.fakes import FakeSlack


def posts_for(slack: FakeSlack, ticket_id: int) -> list[dict]:
    return [m for m in slack.messages(CHANNEL)
            if (m.get("metadata") or {}).get("event_payload", {}).get("ticket_id") == str(ticket_id)]


def text_objects(node) -> list[dict]:
    if isinstance(node, dict):
        found = [node] if node.get("type") in ("mrkdwn", "plain_text") and "text" in node else []
        return found + [t for value in node.values() for t in text_objects(value)]
    if isinstance(node, list):
        return [t for value in node for t in text_objects(value)]
    return []
