"""Keywords as people write them in seam.toml, turned into regular expressions.

Words match whole, apart or joined by a hyphen ("double charged" matches "double-charged"); `refund*` matches any
ending (refunds, refunded); a lone `*` stands for any one word (`cancel* * * account*` matches "cancel my pro
account"). Used by the high-risk topics and the profanity list.
"""

from __future__ import annotations

import re


def keyword_pattern(keyword: str) -> str:
    """A config keyword as a regex: words match whole; `refund*` matches any ending; a lone `*` is any one word."""
    tokens = keyword.lower().split()
    pattern = r"\b"
    for position, token in enumerate(tokens):
        last = position == len(tokens) - 1
        if token == "*":
            pattern += "" if last else r"(?:[\w'-]+\s+)?"
            continue
        pattern += re.escape(token.rstrip("*")) + (r"\w*" if token.endswith("*") else r"\b")
        # A compound is written apart or with a hyphen: "double charged", "double-charged".
        pattern += "" if last else r"(?:\s+|\s*-\s*)"
    return pattern
