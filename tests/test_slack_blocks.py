"""Block Kit payloads (bot.slack.blocks) checked as plain data: content, Slack's limits and escaping."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import Decision, EscalationState, Message, Reason, Route, Ticket
from bot.slack.blocks import (
    MAX_TRANSCRIPT_POSTS,
    EscalationView,
    QueueLine,
    Status,
    approvable,
    edit_modal,
    escalation_message,
    escape,
    home_view,
    reassign_modal,
    transcript_messages,
)

LINK = "https://acme.zendesk.com/agent/tickets/7"


def make_view(*, subject: str = "Cannot reset my password", answer: str | None = "Open the sign-in page.",
              route: Route = Route.DRAFT, confidence: float = 0.734, reasons: tuple[Reason, ...] | None = None,
              summary: str = "1 customer message. Cannot reset my password.", escalation_id: int = 41,
              link: str | None = LINK, requester_name: str | None = "Ana Customer",
              requester_email: str | None = "ana@example.com", priority: str | None = "high") -> EscalationView:
    ticket = Ticket(id="7", subject=subject, messages=(Message(author="customer", body="help"),),
                    requester_name=requester_name, requester_email=requester_email, priority=priority)
    if reasons is None:
        reasons = (Reason(code="high_risk_topic", label="High-risk topic: refund", detail="“refund”"),
                   Reason(code="medium_confidence", label="Needs approval & review"))
    decision = Decision(route=route, confidence=confidence, reasons=reasons, answer=answer,
                        answer_source="reset-password" if answer else None, summary=summary)
    return EscalationView(escalation_id=escalation_id, ticket=ticket, decision=decision, link=link)


def text_objects(node: object) -> Iterator[dict]:
    """Every text object (dict with type plain_text or mrkdwn and a text) anywhere in a payload."""
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
            yield node
        for value in node.values():
            yield from text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from text_objects(item)


def all_text(message: dict) -> str:
    return "\n".join(obj["text"] for obj in text_objects(message["blocks"]))


def blocks_of(message: dict, kind: str) -> list[dict]:
    return [b for b in message["blocks"] if b["type"] == kind]


def button_texts(message: dict) -> list[str]:
    return [e["text"]["text"] for b in blocks_of(message, "actions") for e in b["elements"]]


def section_texts(message: dict) -> list[str]:
    return [b["text"]["text"] for b in blocks_of(message, "section") if "text" in b]


# -- the escalation message --------------------------------------------------------------------------------


def test_the_escalation_message_shows_everything_an_agent_needs() -> None:
    message = escalation_message(make_view())
    header = blocks_of(message, "header")
    assert len(header) == 1 and header[0]["text"]["text"]
    text = all_text(message)
    assert f"<{LINK}|#7 Cannot reset my password>" in text
    assert "Ana Customer" in text and "ana@example.com" in text
    assert "high" in text
    assert "73%" in text
    assert "High-risk topic: refund" in text
    assert "Needs approval &amp; review" in text
    assert "1 customer message. Cannot reset my password." in text
    assert "Open the sign-in page." in text
    assert message["text"]  # the notification fallback


def test_confidence_is_shown_as_a_rounded_percentage() -> None:
    assert "*Confidence*\n5%" in all_text(escalation_message(make_view(confidence=0.05)))
    assert "*Confidence*\n100%" in all_text(escalation_message(make_view(confidence=1.0)))


def test_the_actions_are_claim_approve_edit_reject_carrying_the_escalation_id() -> None:
    message = escalation_message(make_view(escalation_id=41))
    [actions] = blocks_of(message, "actions")
    buttons = actions["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Claim", "Approve", "Edit", "Reject", "Assign to…"]
    assert [b["action_id"] for b in buttons] == ["seam_claim", "seam_approve", "seam_edit", "seam_reject",
                                                 "seam_reassign"]
    assert {b["value"] for b in buttons} == {"41"}


def test_the_metadata_lets_the_post_be_found_after_a_restart() -> None:
    message = escalation_message(make_view(escalation_id=41))
    assert message["metadata"]["event_type"] == "seam_escalation"
    assert message["metadata"]["event_payload"]["escalation_id"] == 41


def action_ids(message: dict) -> dict[str, str]:
    return {e["text"]["text"]: e["action_id"] for b in blocks_of(message, "actions") for e in b["elements"]}


def test_without_a_draft_every_card_still_offers_approve_and_reject_and_approve_opens_the_form() -> None:
    """The contract's four buttons are on every card; with nothing a person may send as it is, Approve opens the
    Edit form (its own action, no confirm: nothing is sent by the click)."""
    message = escalation_message(make_view(answer=None, route=Route.ESCALATE))
    assert "a person needs to write it" in all_text(message)
    assert button_texts(message) == ["Claim", "Approve (edit first)", "Edit: write reply", "Reject", "Assign to…"]
    assert action_ids(message)["Approve (edit first)"] == "seam_approve_after_edit"
    [approve] = [e for b in blocks_of(message, "actions") for e in b["elements"]
                 if e["text"]["text"].startswith("Approve")]
    assert "confirm" not in approve


def test_draft_and_escalate_have_different_headers() -> None:
    draft = blocks_of(escalation_message(make_view(route=Route.DRAFT)), "header")[0]["text"]["text"]
    escalate = blocks_of(escalation_message(make_view(route=Route.ESCALATE)), "header")[0]["text"]["text"]
    assert draft != escalate


def test_huge_draft_subject_and_summary_stay_within_slacks_limits() -> None:
    huge = ("word " * 2000).strip()  # 9,999 characters
    message = escalation_message(make_view(
        subject="S" * 10_000, answer=huge + "!", summary=huge,
        requester_name="N" * 5000,
        reasons=tuple(Reason(code=f"r{i}", label=f"Reason {i}", detail="d" * 500) for i in range(20))))
    # escalation_message built the blocks through slack_sdk, whose to_dict() validates: reaching here passed.
    for section in blocks_of(message, "section"):
        if "text" in section:
            assert len(section["text"]["text"]) <= 3000
        for field in section.get("fields", []):
            assert len(field["text"]) <= 2000
    for header in blocks_of(message, "header"):
        assert len(header["text"]["text"]) <= 150
    assert len(message["blocks"]) <= 50
    # Too long to show whole: shown in part, and not offered for one-click Approve.
    assert "Draft shortened here (10,000 characters)" in all_text(message)
    assert "Approve (edit first)" in button_texts(message)


def test_escape_neutralises_the_three_mrkdwn_control_characters() -> None:
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert escape("<!channel> <@U1> <http://x|y>") == "&lt;!channel&gt; &lt;@U1&gt; &lt;http://x|y&gt;"
    assert escape("&lt;") == "&amp;lt;"
    assert escape("plain") == "plain"


def test_a_subject_with_pipes_and_angle_brackets_cannot_break_or_redirect_the_link() -> None:
    message = escalation_message(make_view(subject="Refund | now> <https://evil.example|click> <!channel>"))
    [link_text] = [t for t in section_texts(message) if LINK in t]
    # Exactly one link: the one Seam made, to the ticket.
    assert link_text.count("<") == 1 and link_text.count(">") == 1 and link_text.count("|") == 1
    assert re.fullmatch(r"\*<" + re.escape(LINK) + r"\|[^<>|]*>\*", link_text)
    assert "<!channel>" not in all_text(message)
    assert "<!channel>" not in message["text"]


def test_a_link_that_is_not_http_or_contains_markup_is_shown_as_text_only() -> None:
    for link in ("javascript:alert(1)", "https://x.example/a|b", "https://x.example/<!channel>", None):
        message = escalation_message(make_view(link=link))
        assert "<" not in section_texts(message)[0]


def test_a_very_long_subject_is_shortened_inside_a_link_that_stays_closed() -> None:
    message = escalation_message(make_view(subject="S" * 10_000))
    [link_text] = [t for t in section_texts(message) if LINK in t]
    assert link_text.endswith(">*")
    assert len(link_text) <= 3000


# -- card polish: what is offered, the route in words, the summary, SLA and age ---------------------------------

NOW = datetime(2026, 11, 20, 10, 14, tzinfo=UTC)
LOW = Reason(code="low_confidence", label="Low confidence", detail="0.31 is below the draft threshold 0.50")


def buttons_of(message: dict) -> list[dict]:
    return [e for b in blocks_of(message, "actions") for e in b["elements"]]


def field_texts(message: dict) -> list[str]:
    return [f["text"] for b in blocks_of(message, "section") for f in b.get("fields", [])]


def test_approve_asks_for_confirmation_before_the_reply_goes_out() -> None:
    [approve] = [b for b in buttons_of(escalation_message(make_view())) if b["action_id"] == "seam_approve"]
    confirm = approve["confirm"]
    assert confirm["title"]["text"] == "Send this reply?"
    assert "public reply" in confirm["text"]["text"]
    assert confirm["confirm"]["text"] and confirm["deny"]["text"]
    assert all("confirm" not in b for b in buttons_of(escalation_message(make_view()))
               if b["action_id"] != "seam_approve")


def test_a_draft_below_the_draft_threshold_is_a_starting_point_not_a_reply_to_approve() -> None:
    message = escalation_message(make_view(route=Route.ESCALATE, confidence=0.31, reasons=(LOW,)))
    assert button_texts(message) == ["Claim", "Approve (edit first)", "Edit", "Reject", "Assign to…"]
    text = all_text(message)
    assert "Open the sign-in page." in text, "the draft is still shown"
    assert "not ready to approve" in text and "*Suggested reply*" not in text
    assert "only 31% confident: below the draft threshold" in text


def test_a_draft_holding_placeholders_is_not_offered_for_approval() -> None:
    message = escalation_message(make_view(answer="Hi {{ticket.requester.first_name}}, see the sign-in page."))
    assert "Approve" not in button_texts(message) and "Approve (edit first)" in button_texts(message)
    assert "placeholders a person fills in" in all_text(message)


def test_approvable_is_false_without_a_draft_below_the_threshold_or_with_placeholders() -> None:
    assert approvable(make_view().decision)
    assert not approvable(make_view(answer=None).decision)
    assert not approvable(make_view(answer="   ").decision)
    assert not approvable(make_view(reasons=(LOW,)).decision)
    assert not approvable(make_view(answer="Order {{ticket.id}}").decision)


def test_the_route_is_shown_in_words() -> None:
    for route, words in ((Route.ESCALATE, "Needs a person"), (Route.DRAFT, "Draft to approve")):
        message = escalation_message(make_view(route=route))
        assert words in blocks_of(message, "header")[0]["text"]["text"]
        assert f"*Route*\n{words}" in field_texts(message)
        assert words in message["text"]


def test_the_summary_says_what_was_asked_what_the_ai_tried_and_why_a_person_has_it() -> None:
    texts = section_texts(escalation_message(make_view()))
    start = texts.index("*Summary* — what was asked")
    asked, tried = texts[start + 1], texts[start + 2]
    assert asked == "1 customer message. Cannot reset my password."
    assert tried == ("*AI tried:* `reset-password`, 73% confident: the suggested reply below.\n"
                     "*Why a person:*\n• High-risk topic: refund: “refund”\n• Needs approval &amp; review")
    none = section_texts(escalation_message(make_view(answer=None, confidence=0.12)))
    assert "*AI tried:* no article or past answer fits (12% confident at best)." in "\n".join(none)
    excluded = make_view(answer=None, reasons=(Reason(code="excluded", label="Excluded: tagged vip"),))
    assert "excluded from automatic answers" in all_text(escalation_message(excluded))


def test_the_card_shows_the_sla_due_time_and_its_age_as_of_the_render() -> None:
    status = Status(created_at="2026-11-20T10:02:00Z", sla_due_at="2026-11-20T14:02:00Z")
    fields = field_texts(escalation_message(make_view(), status, now=NOW))
    assert "*Waiting*\n12 min" in fields
    [sla] = [f for f in fields if f.startswith("*SLA due*")]
    assert "<!date^1795183320^{date_short_pretty} {time}|2026-11-20 14:02 UTC>" in sla and "in 3.8 h" in sla
    late = Status(created_at="2026-11-20T09:00:00Z", sla_due_at="2026-11-20T10:00:00Z")
    [overdue] = [f for f in field_texts(escalation_message(make_view(), late, now=NOW)) if f.startswith("*SLA")]
    assert "🔴 overdue by 14 min" in overdue
    footer = blocks_of(escalation_message(make_view(), status, now=NOW), "context")[-1]["elements"][0]["text"]
    assert "as of <!date^1795169640^{time}|2026-11-20 10:14 UTC>" in footer
    # Without a render time (the first post) there is no age, and a finished one shows none either.
    assert not [f for f in field_texts(escalation_message(make_view(), status)) if f.startswith("*Waiting")]
    sent = Status(state=EscalationState.SENT, sent_by="U1", sent_text="x", created_at="2026-11-20T10:02:00Z")
    assert not [f for f in field_texts(escalation_message(make_view(), sent, now=NOW)) if f.startswith("*Waiting")]


def test_claimed_and_failed_cards_offer_unclaim_and_reassign() -> None:
    claimed = escalation_message(make_view(), Status(state=EscalationState.CLAIMED, owner="U1"))
    assert button_texts(claimed) == ["Approve", "Edit", "Reject", "Unclaim", "Reassign"]
    assert [b["action_id"] for b in buttons_of(claimed)][-2:] == ["seam_unclaim", "seam_reassign"]
    assert buttons_of(claimed)[0]["style"] == "primary"
    unsure = escalation_message(make_view(reasons=(LOW,)), Status(state=EscalationState.CLAIMED, owner="U1"))
    assert button_texts(unsure) == ["Approve (edit first)", "Edit", "Reject", "Unclaim", "Reassign"]
    assert [b.get("style") for b in buttons_of(unsure)][:2] == [None, "primary"], "Edit leads when Approve cannot"
    empty = escalation_message(make_view(answer=None), Status(state=EscalationState.CLAIMED, owner="U1"))
    assert button_texts(empty) == ["Approve (edit first)", "Edit: write reply", "Reject", "Unclaim", "Reassign"]
    failed = escalation_message(make_view(), Status(state=EscalationState.FAILED, owner="U1", error="422"))
    assert button_texts(failed) == ["Retry", "Edit", "Reject", "Unclaim", "Reassign"]
    for message in (claimed, unsure, empty, failed):
        assert all(b["text"]["text"].startswith(("Claim", "Approve", "Edit", "Reject", "Retry", "Unclaim",
                                                 "Reassign", "Assign")) for b in buttons_of(message))


def test_a_routed_card_names_its_queue_and_only_the_first_post_notifies() -> None:
    view = replace(make_view(), queue="vip", mention="<!subteam^S0VIP>", page="<@UMGR>")
    again = EscalationView.from_card(41, view.to_card())
    assert (again.queue, again.mention, again.page) == ("vip", "<!subteam^S0VIP>", "<@UMGR>")
    first = escalation_message(view, notify=True)
    assert first["text"].startswith("<!subteam^S0VIP> <@UMGR> ")
    assert "*Queue*\nvip · <!subteam^S0VIP>" in field_texts(first)
    update = escalation_message(view, Status(state=EscalationState.CLAIMED, owner="U1"), now=NOW)
    assert "<!subteam" not in update["text"] and "<@UMGR>" not in update["text"]
    plain = escalation_message(make_view(), notify=True)
    assert plain["text"] == escalation_message(make_view())["text"], "nothing to mention without a route"
    assert "queue" not in make_view().to_card()


def test_the_card_says_when_the_customer_was_told_a_person_will_follow_up() -> None:
    told = escalation_message(make_view(), Status(customer_notified_at="2026-11-20T10:03:00Z"))
    assert "Seam told the customer a person will follow up" in all_text(told)
    assert "told the customer" not in all_text(escalation_message(make_view()))


def test_the_edit_form_is_empty_without_a_draft_and_cautions_about_an_unsure_one() -> None:
    empty = edit_modal(7, draft=None, ticket_label="#7 Help")
    assert empty["title"]["text"] == "Write reply"
    assert "initial_value" not in empty["blocks"][-1]["element"]
    unsure = edit_modal(7, draft="Maybe this", ticket_label="#7 Help", caution="Only 31% confident")
    assert unsure["title"]["text"] == "Edit reply"
    assert unsure["blocks"][-1]["element"]["initial_value"] == "Maybe this"
    assert "Only 31% confident" in all_text(unsure)


def test_the_reassign_form_is_a_slack_user_picker() -> None:
    form = reassign_modal(7, ticket_label="#7 Help", owner="U1")
    assert form["callback_id"] == "seam_reassign_submit"
    assert json.loads(form["private_metadata"]) == {"escalation_id": 7}
    [picker] = [b for b in form["blocks"] if b["type"] == "input"]
    assert (picker["block_id"], picker["element"]["type"], picker["element"]["action_id"]) == (
        "owner", "users_select", "user")
    assert "<@U1>" in all_text(form) and form["submit"]["text"] == "Reassign"
    assert reassign_modal(7, ticket_label="#7", owner=None)["submit"]["text"] == "Assign"


def test_the_app_home_lists_the_queue_of_each_channel() -> None:
    view = home_view(manager=False, paused=False, thresholds_text="t", stats_text="s", owned=[], owned_total=0,
                     owned_page=0, unclaimed=[], unclaimed_total=0, unclaimed_page=0,
                     queues=[QueueLine(channel="C0ESC", routes=(), open=3, claimed=1),
                             QueueLine(channel="C0VIP", routes=("vip", "press"), open=0, claimed=2)])
    [queues] = [t for t in section_texts(view) if t.startswith("*Queues by channel*")]
    assert queues.splitlines()[1:] == ["• <#C0ESC>: 3 open, 1 claimed", "• <#C0VIP> (vip, press): 0 open, 2 claimed"]


# -- the transcript ----------------------------------------------------------------------------------------


def transcript_body(post: dict) -> str:
    return post["blocks"][1]["text"]["text"]


def test_one_short_message_is_one_post_with_its_author_and_text() -> None:
    posts = transcript_messages([Message(author="customer", body="My parcel is late.")])
    assert len(posts) == 1
    assert transcript_body(posts[0]) == "My parcel is late."
    assert "Customer" in posts[0]["blocks"][0]["elements"][0]["text"]


def test_a_ten_thousand_character_message_is_split_into_parts_that_add_back_up() -> None:
    words = [f"w{i:04d}" for i in range(1700)]  # ~10,200 characters with spaces
    body = " ".join(words)
    posts = transcript_messages([Message(author="customer", body=body)])
    assert len(posts) >= 4
    for post in posts:
        assert len(post["blocks"]) <= 50
        assert len(transcript_body(post)) <= 3000
    rejoined = " ".join(transcript_body(p) for p in posts)
    assert rejoined.split() == words
    headings = [p["blocks"][0]["elements"][0]["text"] for p in posts]
    assert headings[0].endswith(f"(part 1 of {len(posts)})")


def test_a_message_without_spaces_is_still_split_losslessly() -> None:
    body = "x" * 10_000
    posts = transcript_messages([Message(author="agent", body=body)])
    assert "".join(transcript_body(p) for p in posts) == body


def test_a_huge_thread_is_capped_with_a_note_about_the_rest() -> None:
    messages = [Message(author="customer" if i % 2 else "agent", body=f"message {i}") for i in range(300)]
    posts = transcript_messages(messages, link=LINK)
    assert len(posts) == MAX_TRANSCRIPT_POSTS
    note = posts[-1]["text"]
    assert "more parts" in note
    assert str(300 - (MAX_TRANSCRIPT_POSTS - 1)) in note
    assert LINK in note
    assert transcript_body(posts[0]) == "message 0"


def test_a_thread_of_exactly_the_cap_is_shown_in_full() -> None:
    messages = [Message(author="customer", body=f"m{i}") for i in range(MAX_TRANSCRIPT_POSTS)]
    posts = transcript_messages(messages)
    assert [transcript_body(p) for p in posts] == [f"m{i}" for i in range(MAX_TRANSCRIPT_POSTS)]


def test_internal_notes_are_labelled_and_public_comments_are_not() -> None:
    posts = transcript_messages([Message(author="agent", body="private", public=False),
                                 Message(author="agent", body="public")])
    headings = [p["blocks"][0]["elements"][0]["text"] for p in posts]
    assert "internal note" in headings[0]
    assert "internal note" not in headings[1]


def test_authors_are_labelled_customer_agent_and_bot() -> None:
    posts = transcript_messages([Message(author=a, body="x") for a in ("customer", "agent", "bot")])
    headings = [p["blocks"][0]["elements"][0]["text"] for p in posts]
    assert "Customer" in headings[0] and "Agent" in headings[1] and "bot" in headings[2]


hostile = st.sampled_from(["<!channel>", "<!here>", "<@U123>", "```", "`", "<http://x|y>", "&", ">", "*bold*", "\n"])
texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(hostile, st.text(max_size=30)), max_size=40).map("".join),
    st.tuples(st.one_of(hostile, st.text(min_size=1, max_size=5)), st.integers(500, 4000)).map(lambda t: t[0] * t[1]),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(st.tuples(texts, st.sampled_from(["customer", "agent", "bot"]), st.booleans(),
                                 st.one_of(st.none(), st.sampled_from(["2026-11-20T10:02:00Z", "<!channel>"]))),
                       min_size=1, max_size=6))
def test_any_ticket_text_builds_a_transcript_without_live_mentions(bodies: list) -> None:
    messages = [Message(author=author, body=body, public=public, created_at=when)
                for body, author, public, when in bodies]
    posts = transcript_messages(messages, link=LINK)
    assert 1 <= len(posts) <= MAX_TRANSCRIPT_POSTS
    for post in posts:
        assert "<!" not in post["text"]
        for obj in text_objects(post.get("blocks", [])):
            if obj["type"] == "mrkdwn":
                assert "<!" not in obj["text"]
            else:
                assert 1 <= len(obj["text"]) <= 3000
        assert len(post.get("blocks", [])) <= 50



def numbered_words(count: int) -> str:
    return " ".join(f"w{i:05d}" for i in range(count))


def card_characters(message: dict) -> int:
    return sum(len(t["text"]) for t in text_objects(message["blocks"]))


def test_a_long_draft_that_approve_sends_whole_is_shown_whole_on_the_card() -> None:
    # Approve sends the draft as it is stored, all of it: whoever approves it must have been able to read every word.
    draft = numbered_words(700)  # 4,899 characters: a long help-centre article
    message = escalation_message(make_view(answer=draft))
    assert "Approve" in button_texts(message)
    shown = " ".join(t["text"] for b in blocks_of(message, "section") for t in [b.get("text") or {}]
                     if t.get("type") == "plain_text")
    assert [w for w in draft.split() if w not in shown] == [], "words Approve would send that the card never showed"
    assert "Edit shows all of it" not in all_text(message)


def test_a_draft_too_long_to_show_whole_is_not_offered_for_approval() -> None:
    draft = numbered_words(1500)  # 10,499 characters
    view = make_view(answer=draft)
    assert not approvable(view.decision)
    message = escalation_message(view)
    assert "Approve" not in button_texts(message) and "Approve (edit first)" in button_texts(message)
    assert "Draft shortened here (10,499 characters), too long to approve as it is" in all_text(message)


def test_a_sent_card_with_the_longest_approvable_draft_stays_under_slacks_total_for_blocks() -> None:
    # Slack refuses a message whose blocks hold more than about 13,000 characters in all (msg_blocks_too_long,
    # slackapi/bolt-js#2509), whatever the per-block limits say: the card must never grow past that.
    draft = ("word " * 1200)[:5790]
    view = make_view(answer=draft, summary="s" * 400, subject="S" * 300,
                     reasons=tuple(Reason(code=f"r{i}", label=f"Reason {i}", detail="d" * 150) for i in range(5)))
    assert approvable(view.decision)
    sent = Status(state=EscalationState.SENT, owner="U1", sent_by="U1", sent_text=draft)
    assert card_characters(escalation_message(view, sent, now=datetime.now(UTC))) < 11_000
