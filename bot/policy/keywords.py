"""Keywords as people write them in seam.toml, turned into regular expressions.

Words match whole, apart or joined by a hyphen ("double charged" matches "double-charged"), with an apostrophe
as any of the ways it is typed ("didn't", "didn’t"); `refund*` matches any ending (refunds, refunded); a lone `*`
stands for any one word (`cancel* * * account*` matches "cancel my pro account"). Used by the high-risk topics and
the profanity list.
"""

from __future__ import annotations

import re

# An apostrophe as typed: phones and Macs send the typographic one ("didn’t") by default.
_APOSTROPHE_CHARS = "'\u2019\u2018`\u00b4"
APOSTROPHES = f"[{_APOSTROPHE_CHARS}]"
STRAIGHTEN = str.maketrans(dict.fromkeys(_APOSTROPHE_CHARS, "'"))


def keyword_pattern(keyword: str) -> str:
    """A config keyword as a regex: words match whole; `refund*` matches any ending; a lone `*` is any one word."""
    tokens = keyword.lower().translate(STRAIGHTEN).split()
    pattern = r"\b"
    for position, token in enumerate(tokens):
        last = position == len(tokens) - 1
        if token == "*":
            pattern += "" if last else rf"(?:[\w{_APOSTROPHE_CHARS}-]+\s+)?"
            continue
        word = re.escape(token.rstrip("*")).replace("'", APOSTROPHES)
        pattern += word + (r"\w*" if token.endswith("*") else r"\b")
        # A compound is written apart or with a hyphen: "double charged", "double-charged".
        pattern += "" if last else r"(?:\s+|\s*-\s*)"
    return pattern
