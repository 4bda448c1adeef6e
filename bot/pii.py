"""PII masking: what Seam strips from text before it leaves for an external model or goes into a log.

`mask(text)` replaces, in this order (earlier kinds win where they overlap):

- secrets: API keys and tokens (`sk-…`, Slack `xoxb-`/`xoxp-`/`xapp-…`, AWS `AKIA…`, GitHub `ghp_…`/`github_pat_…`,
  JWTs, hex or base64-looking tokens of 32+ characters) and the value after `password:` / `pwd=` and the like
  → `[secret]`;
- email addresses → `[email]`;
- IBANs (country code, check digits, valid mod-97) → `[iban]`;
- payment card numbers (13–19 digits, spaces or dashes allowed, Luhn-valid only) → `[card ••••1234]`;
- phone numbers with at least 8 digits: international (`+44 20 7946 0958`, `0049 30 1234567`), national with
  separators (`(555) 123-4567`, `030 1234 5678`, `06 12 34 56 78`), or a bare digit run right after a word like
  "phone" or "call" → `[phone]`. Order numbers ("order 7781", "#12345678"), dates, times and amounts are left alone.

`mask` is idempotent (`mask(mask(x)) == mask(x)`) and never raises. `PiiLogFilter` applies it to log records;
`install_log_filter()` puts it on every handler of the root logger.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

__all__ = ["PiiLogFilter", "excerpt", "install_log_filter", "mask", "mask_payment"]

# Every replacement starts with "[" and ends with "]". The patterns treat "[" and "]" next to a match like word
# characters, so a replacement never changes what its neighbours match: that is what keeps `mask` idempotent.
SECRET = "[secret]"
EMAIL = "[email]"
IBAN = "[iban]"
PHONE = "[phone]"

# ---------------------------------------------------------------------------------------------------- secrets
_TOKEN = re.compile(
    r"(?<![\w\]-])(?:"
    r"sk-[A-Za-z0-9_-]{16,}"  # OpenAI / Anthropic style keys (sk-…, sk-proj-…, sk-ant-…)
    r"|xox[abposre]-[A-Za-z0-9-]{10,}"  # Slack bot/user/legacy tokens
    r"|xapp-[A-Za-z0-9-]{10,}"  # Slack app-level tokens
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JWTs
    r")(?![\w\[-])"
)
_HEX = re.compile(r"(?<![\w\]-])[0-9a-fA-F]{32,}(?![\w\[-])")
# A run of base64/base64url characters: a secret only if it mixes digits, upper and lower case (real words,
# URL paths and ids rarely do), see `_base64_secret`.
_BASE64 = re.compile(r"(?<![\w+/=\]-])[A-Za-z0-9+/_-]{32,}={0,2}(?![\w+/=\[-])")
_PASSWORD = re.compile(
    r"(?i)(?<![\w\]])(pass(?:word|wd|code|phrase)?|pwd|pin|secret|api[_ -]?key|access[_ -]?token|token)"
    r"([ \t]*[:=][ \t]*)(?!\[)(\"[^\"\n]*\"|'[^'\n]*'|\S+)"
)

# --------------------------------------------------------------------------------------------------- emails
_EMAIL = re.compile(r"(?<![\w.%+\]-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w\[-])")

# ---------------------------------------------------------------------------------------------------- IBANs
_IBAN = re.compile(r"(?<![A-Za-z0-9\]])[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]{1,4}){3,8}(?![A-Za-z0-9\[])")
_IBAN_GROUP = re.compile(r"[A-Z0-9]{1,4}")

# ---------------------------------------------------------------------------------------------------- cards
# A maximal run of digit groups (single space or dash between them); `_mask_card` finds the card inside it.
_CARD_RUN = re.compile(r"(?<![\w/+\]•-])(?<![\d\]][.,])(?>\d+(?:[ -]\d+)*)(?![\w\[])(?![.,/]\d)")
_CARD_GROUP = re.compile(r"\d+")

# --------------------------------------------------------------------------------------------------- phones
_SEP = r"[ .\-]"
_PHONE = re.compile(
    r"(?<![\w/+#\]•-])(?<![\d\]][.,])(?>"
    # international: +CC then groups, optional (0) trunk; 00CC only with separators (bare 00… is an id)
    r"\+[1-9]\d{0,3}(?:" + _SEP + r"?\(0\))?(?:" + _SEP + r"?(?:\(\d{1,5}\)|\d{1,8})){1,6}"
    r"|00[1-9]\d{0,3}(?:" + _SEP + r"?\(0\))?(?:" + _SEP + r"(?:\(\d{1,5}\)|\d{1,8})){1,6}"
    # North American: (555) 123-4567, 555-123-4567, 555.123.4567, 555 123 4567
    r"|\(\d{3}\)" + _SEP + r"?\d{3}" + _SEP + r"\d{4}"
    r"|\d{3}" + r"(?P<na>[ .\-])" + r"\d{3}(?P=na)\d{4}"
    # national with a trunk 0: 030 1234 5678, 0171-2345678, 06 12 34 56 78, (030) 1234567
    r"|(?:\(0\d{1,4}\)|0\d{1,4})(?:" + _SEP + r"\d{2,8}){1,5}"
    r")(?![\w/(\[-]|[.,]\d)"
)
# A bare run of digits is a phone number only right after a word that says so.
_CUED_PHONE = re.compile(
    r"(?i)\b(phone|telephone|tel|mobile|cell|call(?:\s+me)?(?:\s+(?:on|at))?|whatsapp|sms|text\s+me(?:\s+(?:on|at))?"
    r"|reach\s+me\s+(?:on|at)|number\s+is)(\s*[:#.]?\s*)((?>\+?\(?\d(?:[ .()\-]{0,2}\d){6,18}))(?![\w/(\[-]|[.,]\d)"
)
_DATE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_TIME_OR_AMOUNT_CONTEXT = re.compile(r"(?:[\d\]]:|[$€£¥] ?)$")

_MIN_PHONE_DIGITS = 8
_MAX_PHONE_DIGITS = 15


def _digits(text: str) -> str:
    return "".join(ch for ch in text if "0" <= ch <= "9")


def _luhn(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _iban_valid(candidate: str) -> bool:
    if not 15 <= len(candidate) <= 34:
        return False
    rearranged = candidate[4:] + candidate[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def _mask_iban(match: re.Match[str]) -> str:
    """The longest prefix of whole groups that is a valid IBAN, so a trailing word or number is not swallowed."""
    text = match.group(0)
    ends = [m.end() for m in _IBAN_GROUP.finditer(text, 4)]
    for end in reversed(ends):
        if _iban_valid(text[:end].replace(" ", "")):
            return IBAN + text[end:]
    return text


def _card_digits(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn(digits)


def _mask_cards_in(run: str) -> str:
    """Mask card numbers inside a run of digit groups: left to right, the longest Luhn-valid window of whole
    groups starting at each group, so "2026 4111 1111 1111 1111" masks only the card."""
    groups = [(m.start(), m.end()) for m in _CARD_GROUP.finditer(run)]
    if sum(end - start for start, end in groups) < 13:
        return run
    out: list[str] = []
    done = 0  # run[:done] is already in `out`
    i = 0
    while i < len(groups):
        digits, found = "", None
        for j in range(i, len(groups)):
            digits += run[groups[j][0]:groups[j][1]]
            if len(digits) > 19:
                break
            if _card_digits(digits):
                found = j
        if found is None:
            i += 1
            continue
        start, end = groups[i][0], groups[found][1]
        out.append(run[done:start])
        out.append(f"[card ••••{_digits(run[start:end])[-4:]}]")
        done = end
        i = found + 1
    out.append(run[done:])
    return "".join(out)


def _mask_card(match: re.Match[str]) -> str:
    return _mask_cards_in(match.group(0))


def _plausible_phone(text: str) -> bool:
    digits = _digits(text)
    if not _MIN_PHONE_DIGITS <= len(digits) <= _MAX_PHONE_DIGITS:
        return False
    return not _DATE.fullmatch(text.strip())


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    start = match.start()
    before = match.string[max(0, start - 2):start]  # "10:…" is a time, "$ 555 …" an amount
    if _TIME_OR_AMOUNT_CONTEXT.search(before):
        return text
    return PHONE if _plausible_phone(text) else text


def _mask_cued_phone(match: re.Match[str]) -> str:
    cue, gap, number = match.group(1), match.group(2), match.group(3)
    if not _plausible_phone(number):
        return match.group(0)
    return f"{cue}{gap}{PHONE}"


def _base64_secret(match: re.Match[str]) -> str:
    text = match.group(0)
    has_digit = any(c.isdigit() for c in text)
    has_upper = any(c.isupper() for c in text)
    has_lower = any(c.islower() for c in text)
    return SECRET if has_digit and has_upper and has_lower else text


def _mask_password(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}{SECRET}"


def mask(text: str) -> str:
    """`text` with secrets, emails, IBANs, card numbers and phone numbers replaced; see the module docstring."""
    if not text:
        return text if isinstance(text, str) else ""
    # One kind's replacement can uncover another (a phone masked next to a card run frees the card's
    # boundary), so repeat until nothing changes; it settles in two or three passes.
    for _ in range(5):
        masked = _mask_once(text)
        if masked == text:
            break
        text = masked
    return text


def _mask_once(text: str) -> str:
    text = _TOKEN.sub(SECRET, text)
    text = _HEX.sub(SECRET, text)
    text = _BASE64.sub(_base64_secret, text)
    text = _PASSWORD.sub(_mask_password, text)
    text = _EMAIL.sub(EMAIL, text)
    text = _IBAN.sub(_mask_iban, text)
    text = _CARD_RUN.sub(_mask_card, text)
    text = _PHONE.sub(_mask_phone, text)
    text = _CUED_PHONE.sub(_mask_cued_phone, text)
    return text


def _mask_iban_last_four(match: re.Match[str]) -> str:
    masked = _mask_iban(match)
    if not masked.startswith(IBAN):
        return masked
    rest = masked[len(IBAN):]
    number = match.group(0)[: len(match.group(0)) - len(rest)].replace(" ", "")
    return f"[iban ••••{number[-4:]}]{rest}"


def mask_payment(text: str) -> str:
    """`text` with payment card numbers and IBANs replaced, keeping their last four characters (`[card ••••1111]`,
    `[iban ••••3000]`) so an agent can still match them with the customer: what Seam posts into Slack. Nothing
    else is touched — the agent needs the customer's email, phone and words. Idempotent; never raises."""
    if not text or not isinstance(text, str):
        return text if isinstance(text, str) else ""
    if sum(c.isdigit() for c in text) < 13:  # no card or IBAN has fewer digits: the common case costs one scan
        return text
    return _CARD_RUN.sub(_mask_card, _IBAN.sub(_mask_iban_last_four, text))


def excerpt(text: str, limit: int) -> str:
    """At most `limit` characters of outside text (an API's error body) for a message or a log: masked first,
    then cut, so a cut never leaves part of a card number unmasked."""
    masked = mask(text)
    return masked if len(masked) <= limit else masked[: limit - 1] + "…"


class PiiLogFilter(logging.Filter):
    """Masks a log record's formatted message (and any traceback text) in place; never drops a record."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: mask the raw parts rather than lose the record
            message = f"{record.msg} {record.args!r}"
        # A URL in a log line carries its query percent-encoded ("query=email%3Aana%40example.com"): decode it
        # first, or the email hides from the patterns.
        record.msg = mask(unquote(message) if "%" in message else message)
        record.args = None
        if record.exc_info and not record.exc_text:
            try:
                record.exc_text = self._formatter.formatException(record.exc_info)
            except Exception:
                record.exc_text = None
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


def install_log_filter(logger: logging.Logger | None = None) -> PiiLogFilter:
    """Add one `PiiLogFilter` to every handler of `logger` (the root logger by default) and return it.

    Call it after the handlers exist (after `logging.basicConfig`): handlers added later are not covered. A
    handler filter sees records from every child logger that propagates to it, which a logger filter would not.
    Calling it again does not add a second filter.
    """
    logger = logger if logger is not None else logging.getLogger()
    existing = next((f for h in logger.handlers for f in h.filters if isinstance(f, PiiLogFilter)), None)
    installed = existing or PiiLogFilter()
    for handler in logger.handlers:
        if not any(isinstance(f, PiiLogFilter) for f in handler.filters):
            handler.addFilter(installed)
    return installed
