"""bot.pii: what is masked, what is left alone, and the log filter."""

from __future__ import annotations

import io
import logging
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.pii import PiiLogFilter, install_log_filter, mask

# ------------------------------------------------------------------------------------------------ positives


@pytest.mark.parametrize("text, expected", [
    ("My card is 4111 1111 1111 1111, exp 12/27.", "My card is [card ••••1111], exp 12/27."),
    ("card: 4111-1111-1111-1111", "card: [card ••••1111]"),
    ("charged on 5555555555554444 twice", "charged on [card ••••4444] twice"),
    ("Amex 3782 822463 10005 please", "Amex [card ••••0005] please"),
    ("visa 4222222222222 (13 digits)", "visa [card ••••2222] (13 digits)"),
])
def test_luhn_valid_card_numbers_keep_only_the_last_four(text, expected):
    assert mask(text) == expected


def test_a_card_like_number_that_fails_luhn_is_left_alone():
    assert mask("reference 4111 1111 1111 1112") == "reference 4111 1111 1111 1112"


@pytest.mark.parametrize("text, expected", [
    ("Please refund to DE89 3704 0044 0532 0130 00 thanks", "Please refund to [iban] thanks"),
    ("IBAN: GB82WEST12345698765432.", "IBAN: [iban]."),
    ("my iban is FR14 2004 1010 0505 0001 3M02 606", "my iban is [iban]"),
    ("DE89 3704 0044 0532 0130 00 1234 is mine", "[iban] 1234 is mine"),
])
def test_valid_ibans_are_masked(text, expected):
    assert mask(text) == expected


def test_an_iban_with_a_wrong_check_digit_is_not_called_an_iban():
    assert "[iban]" not in mask("DE88 3704 0044 0532 0130 00")


@pytest.mark.parametrize("text", [
    "Call me on +44 20 7946 0958 today",
    "my number: +4915112345670",
    "reach me at 0049 30 1234567",
    "US office (555) 123-4567",
    "or 555-123-4567 after 5pm",
    "Berlin 030 1234 5678",
    "Handy 0171-2345678",
    "Paris 06 12 34 56 78",
    "Lyon +33 (0)4 72 00 00 00",
    "phone: 07700900123",
    "call me at 555 123 4567!",
])
def test_phone_numbers_are_masked(text):
    masked = mask(text)
    assert "[phone]" in masked, masked
    assert sum(ch.isdigit() for ch in masked) < 8, masked


@pytest.mark.parametrize("text, expected", [
    ("Email me at ana.maria+test@example.co.uk please", "Email me at [email] please"),
    ("From: Ana <ana@example.com>", "From: Ana <[email]>"),
    ("J.Doe_99@mail.example.org.", "[email]."),
])
def test_email_addresses_are_masked(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize("secret", [
    "sk-proj-AbCdEfGhIjKlMnOp1234567890qrstuv",
    "sk-1234567890abcdefghij",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "xoxp-1234567890-abcdefghij",
    "xapp-1-A0123456789-1234567890123-abcdef0123456789",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_abcdefghijklmnopqrstuvwxyzABCDEF123456",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "dGhpcyBpcyBhIHNlY3JldCB0b2tlbiBmb3IgdGVzdGluZzEyMw==",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
])
def test_api_keys_and_tokens_are_masked(secret):
    assert mask(f"here is my key {secret} ok") == "here is my key [secret] ok"


@pytest.mark.parametrize("text, expected", [
    ("password: hunter2", "password: [secret]"),
    ("Password = 'correct horse battery'", "Password = [secret]"),
    ("login with pwd=s3cr3t! then", "login with pwd=[secret] then"),
    ("PIN: 4321", "PIN: [secret]"),
])
def test_password_values_are_masked(text, expected):
    assert mask(text) == expected


def test_a_realistic_ticket_keeps_its_meaning():
    text = ("Hi, I'm Ana (ana@example.com, +1 415-555-0132). Order 7781 from 2026-11-20 was charged twice, "
            "$49.99 each, on my Visa 4111 1111 1111 1111. Please refund to DE89 3704 0044 0532 0130 00. "
            "My login password: Tr0ub4dor&3")
    assert mask(text) == (
        "Hi, I'm Ana ([email], [phone]). Order 7781 from 2026-11-20 was charged twice, "
        "$49.99 each, on my Visa [card ••••1111]. Please refund to [iban]. "
        "My login password: [secret]")


# ------------------------------------------------------------------------------------------------ negatives


@pytest.mark.parametrize("text", [
    "Where is order 7781?",
    "order #12345678 and order 0012345678 and ticket 1042",
    "Ticket ZD-20261120-0042 reopened",
    "I ordered on 2026-11-20 and again on 20.11.2026, 05.11.2026 and 11/20/2026",
    "timestamp 2026-11-20T10:02:00Z, at 10:02:00",
    "It cost $1,299.00 (1 299,00 €), was €1.234.567,00 and then 0,99 EUR",
    "I bought 12 345 678 units, version 1.2.3.4, from 192.168.1.1",
    "Tracking 1Z999AA10123456784, zip 10115 Berlin, year 2026",
    "The 16-digit code on the gift card did not work",
    "See https://help.example.com/articles/reset-your-password-now-and-later",
    "My password is not working and I can't sign in",
    "Invoice INV-2026-000123 total 4,500.00 USD",
    "Amounts: 100 200 300 and 1000 2000",
    "reference 4111 1111 1111 1112",
    "supercalifragilisticexpialidociousandmorewordsinarow",
])
def test_order_numbers_dates_amounts_and_ids_are_left_alone(text):
    assert mask(text) == text


def test_empty_text():
    assert mask("") == ""


# -------------------------------------------------------------------------------------------- properties

_FRAGMENTS = st.sampled_from([
    "4111 1111 1111 1111", "4111-1111-1111-1112", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432",
    "+44 20 7946 0958", "(555) 123-4567", "030 1234 5678", "phone: 07700900123", "ana@example.com",
    "sk-proj-AbCdEfGhIjKlMnOp1234567890", "password: x", "pwd=", "order 7781", "2026-11-20", "$1,299.00",
    "[card ••••1111]", "[phone]", "[email]", "[iban]", "[secret]", " ", "\n", ",", ".", "-", "+", "0", "00", "@",
    "call me at ", ":", "=", "(", ")",
])
_TEXT = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=12), st.from_regex(r"[0-9 +().-]{1,20}", fullmatch=True)),
                 max_size=12).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
def test_mask_never_raises_and_is_idempotent(text):
    once = mask(text)
    assert isinstance(once, str)
    assert mask(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_mask_is_idempotent_on_arbitrary_unicode(text):
    once = mask(text)
    assert mask(once) == once


def test_mask_is_fast_on_long_text():
    text = ("Hello, my order 7781 from 2026-11-20 cost $12.50; call +44 20 7946 0958 or mail ana@example.com. " * 400
            + "9" * 5000 + " " + "a1B" * 3000)
    start = time.perf_counter()
    mask(text)
    assert time.perf_counter() - start < 0.5


# -------------------------------------------------------------------------------------------------- logging


def _logger_with_stream(name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger(name)
    logger.handlers[:] = [logging.StreamHandler(stream)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_log_filter_masks_the_formatted_message_and_clears_args():
    logger, stream = _logger_with_stream("seam.test.pii.filter")
    logger.handlers[0].addFilter(PiiLogFilter())
    logger.info("ticket %s from %s card %s", 1042, "ana@example.com", "4111 1111 1111 1111")
    assert stream.getvalue().strip() == "ticket 1042 from [email] card [card ••••1111]"


def test_log_filter_masks_tracebacks():
    logger, stream = _logger_with_stream("seam.test.pii.exc")
    logger.handlers[0].addFilter(PiiLogFilter())
    try:
        raise ValueError("bad email ana@example.com")
    except ValueError:
        logger.exception("failed for %s", "+44 20 7946 0958")
    out = stream.getvalue()
    assert "ana@example.com" not in out and "7946" not in out
    assert "failed for [phone]" in out and "bad email [email]" in out


def test_log_filter_keeps_records_with_a_bad_format_string():
    logger, stream = _logger_with_stream("seam.test.pii.bad")
    logger.handlers[0].addFilter(PiiLogFilter())
    logger.info("oops %s %s", "ana@example.com")
    assert "[email]" in stream.getvalue() and "ana@example.com" not in stream.getvalue()


def test_install_log_filter_covers_every_handler_once():
    logger = logging.getLogger("seam.test.pii.install")
    first, second = io.StringIO(), io.StringIO()
    logger.handlers[:] = [logging.StreamHandler(first), logging.StreamHandler(second)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    installed = install_log_filter(logger)
    assert install_log_filter(logger) is installed
    assert all(h.filters.count(installed) == 1 for h in logger.handlers)
    child = logging.getLogger("seam.test.pii.install.child")
    child.warning("customer %s wrote", "ana@example.com")
    assert first.getvalue().strip() == second.getvalue().strip() == "customer [email] wrote"


def test_install_log_filter_defaults_to_the_root_logger():
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        installed = install_log_filter()
        assert installed in handler.filters
    finally:
        root.removeHandler(handler)
        for h in root.handlers:
            h.removeFilter(installed)


# -- issue 14, item 9: mask after decoding, and before cutting ---------------------------------------------


def test_an_email_in_a_url_encoded_query_is_masked_in_the_log() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("seam.test.urlencoded")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    install_log_filter(logger)
    try:
        logger.warning('HTTP Request: GET http://127.0.0.1/api/v2/users/search.json?query=email%%3A%%22%s%%22 "200"',
                       "ana.customer%40example.com")
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert "ana.customer" not in logged and "example.com" not in logged and "[email]" in logged


def test_an_error_body_is_masked_before_it_is_cut() -> None:
    from bot.pii import excerpt

    body = "x" * 290 + " card 4111 1111 1111 1111 declined"
    cut = excerpt(body, 300)
    assert len(cut) <= 300 and "4111" not in cut and "1111 1" not in cut
    assert mask(body[:300]) != cut, "cutting first would have left digits of the card behind"


def test_a_helpdesk_error_never_carries_part_of_a_card_number(fake_zendesk) -> None:
    import httpx

    from bot.helpdesk.base import HelpdeskError
    from bot.helpdesk.zendesk.adapter import ZendeskAdapter

    fake_zendesk.add_ticket(id=5, subject="Hi", requester_id=1001, comments=[{"author_id": 1001, "body": "hi"}])
    fake_zendesk.fail("update_ticket", status=422, body="e" * 280 + " 4111 1111 1111 1111 was rejected")
    adapter = ZendeskAdapter(httpx.Client(base_url=fake_zendesk.url, auth=fake_zendesk.auth), webhook_secret="s",
                             agent_url="https://acme.zendesk.com", retry_deadline=2)
    with pytest.raises(HelpdeskError) as error:
        adapter.add_note("5", "note")
    assert "4111" not in str(error.value) and "1111 1" not in str(error.value)
