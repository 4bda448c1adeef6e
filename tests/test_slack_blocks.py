"""Block Kit payloads (bot.slack.blocks) checked as plain data: content, Slack's limits and escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import Decision, Message, Reason, Route, Ticket
from bot.slack.blocks import (
    MAX_TRANSCRIPT_POSTS,
    EscalationView,
    escalation_message,
    escape,
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
    assert [b["text"]["text"] for b in buttons] == ["Claim", "Approve", "Edit", "Reject"]
    assert [b["action_id"] for b in buttons] == ["seam_claim", "seam_approve", "seam_edit", "seam_reject"]
    assert {b["value"] for b in buttons} == {"41"}


def test_the_metadata_lets_the_post_be_found_after_a_restart() -> None:
    message = escalation_message(make_view(escalation_id=41))
    assert message["metadata"]["event_type"] == "seam_escalation"
    assert message["metadata"]["event_payload"]["escalation_id"] == 41


def test_without_a_draft_the_message_says_a_person_must_write_it_and_keeps_four_buttons() -> None:
    message = escalation_message(make_view(answer=None, route=Route.ESCALATE))
    assert "a person needs to write it" in all_text(message)
    [actions] = blocks_of(message, "actions")
    assert len(actions["elements"]) == 4


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
    assert "Edit shows all of it" in all_text(message)


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
