"""A draft longer than the card can show whole (bot.slack.blocks `fits_card`, a long help-centre article) is not sent
with one click: Approve sends the draft as it is stored, so whoever approves it must have been able to read it on
the card. It is shown in part, marked as shortened, and Approve opens the Edit form instead (the blocks themselves
are checked in tests/test_slack_blocks.py). This test failed before the fix: Approve sent all 14,000 characters
after showing the first 3,000.
"""

from __future__ import annotations

from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.knowledge import ARTICLES
from tests.support.posts import posts_for
from tests.support.services import AGENT, escalated, staffed

PASSWORD = "I forgot my password and need to reset it. Can I talk to a person?"


def test_approve_does_not_send_a_draft_too_long_for_the_card_to_show(fake_slack, fake_zendesk, tmp_path):
    folder = tmp_path / "long-knowledge"
    folder.mkdir()
    title, body = ARTICLES["reset-password"]
    steps = " ".join(f"Step {i}: if the link has not arrived yet, wait a minute and look again." for i in range(200))
    (folder / "reset-password.md").write_text(f"# {title}\n\n{body} {steps}\n", encoding="utf-8")
    services = staffed(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path, knowledge_path=str(folder))
    case = escalated(services, fake_slack, fake_zendesk, ticket_id=4401, requester=CUSTOMER_ID, subject="Password",
                     text=PASSWORD)
    draft = services.store.escalation(case["escalation"]).draft
    assert draft and len(draft) > 6_000, "the long article is the draft"
    [card] = [m for m in fake_slack.messages(CHANNEL) if m["ts"] == case["ts"]]
    buttons = [e["text"]["text"] for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "Approve (edit first)" in buttons and "Approve" not in buttons

    outcome = services.actions.approve(case["escalation"], AGENT)
    assert not outcome.ok and "too long" in outcome.notice
    replies = [c for c in fake_zendesk.comments(4401) if c["public"] and c["author_id"] != CUSTOMER_ID]
    assert not any(c["body"] == draft for c in replies), "a draft nobody could read whole went to the customer"
    assert len(posts_for(fake_slack, 4401)) == 1
