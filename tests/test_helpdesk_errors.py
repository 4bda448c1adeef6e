"""A helpdesk's refusal: the message that is logged names the call, the status and the helpdesk's error code;
the helpdesk's own words, which may quote the note or reply it refused, are the error's `detail`, kept beside
the ticket (`explained`) and never in the message."""

from __future__ import annotations

import httpx
import pytest

from bot.helpdesk.base import HelpdeskError, explained
from bot.helpdesk.http import checked, error_code

QUOTED = "Your order of the blue lamp for Ana Example"


def answer(status: int, body) -> httpx.Response:
    return httpx.Response(status, json=body) if not isinstance(body, str) else httpx.Response(status, text=body)


@pytest.mark.parametrize("body, code", [
    ({"error": "RecordInvalid", "description": "Record validation errors",
      "details": {"base": [{"description": QUOTED}]}}, "RecordInvalid"),  # Zendesk
    ({"description": "Validation failed",
      "errors": [{"field": "body", "message": QUOTED, "code": "invalid_value"}]}, "invalid_value"),  # Freshdesk
    ({"_error": {"status": 400, "title": "Bad request", "message": QUOTED}}, "Bad request"),  # Front
    ({"error": {"msg": QUOTED}, "type": "validation_error"}, "validation_error"),  # Gorgias-like
    ({"logRef": "abc", "message": "Bad request", "_embedded": {"errors": [{"message": QUOTED}]}}, None),  # Help Scout
    ({"error": QUOTED}, None),  # a sentence is not a code
    ("<html>" + QUOTED + "</html>", None),
])
def test_the_error_code_is_a_name_never_the_words_refused(body, code) -> None:
    assert error_code(answer(422, body)) == code


def test_a_refusal_keeps_the_helpdesks_words_out_of_its_message_and_in_its_detail() -> None:
    with pytest.raises(HelpdeskError) as error:
        checked("Zendesk PUT /api/v2/tickets/7", answer(422, {"error": "RecordInvalid", "description": QUOTED}))
    assert str(error.value) == "Zendesk PUT /api/v2/tickets/7 answered 422 (RecordInvalid)"
    assert error.value.status == 422 and QUOTED in error.value.detail
    assert explained(error.value) == f"{error.value}: {error.value.detail}"


def test_explained_finds_the_detail_of_what_caused_a_failure() -> None:
    try:
        try:
            checked("Freshdesk POST /api/v2/tickets/7/notes", answer(400, {"description": QUOTED}))
        except HelpdeskError as exc:
            raise RuntimeError("the note was not written") from exc
    except RuntimeError as outer:
        assert explained(outer).startswith("the note was not written: ")
        assert QUOTED in explained(outer) and QUOTED not in str(outer)


def test_an_empty_refusal_has_no_detail() -> None:
    with pytest.raises(HelpdeskError) as error:
        checked("Front GET /conversations/x", httpx.Response(404))
    assert error.value.detail is None and explained(error.value) == str(error.value)
