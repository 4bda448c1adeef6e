"""A regular expression with a cheap pre-check: the words one of which any match must contain.

The asks-for-a-person trigger is a long alternation of phrasings, and Python's `re` tries every alternative at
every position of every ticket: a fifth of a millisecond a text, for the few percent that ask. `Guarded` reads
the pattern once (the parse `re` itself makes) for literal strings every match must contain — for each
alternative, its most telling required run of letters ("escalate"; one of "speak", "talk", "chat" …) — and
searches only texts holding one of them. The result is always the pattern's own: a text without any needle
cannot match, and anything else is searched as before. Texts beyond ASCII are always searched, as case-folding
rules there are wider than lower-casing.
"""

from __future__ import annotations

import re

try:  # the parse `re` compiles from (3.11–3.13); without it every text is searched, as before
    from re import _constants as sre
    from re import _parser
except ImportError:  # pragma: no cover - a Python that moved them
    sre = _parser = None

MIN_NEEDLE = 2  # a single letter is in every text and would check nothing

_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT)} if sre else set()


def needles(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """Lower-case strings one of which every match of `pattern` contains, or None when some match need contain
    no run of `MIN_NEEDLE` letters the parse can see."""
    if _parser is None:
        return None
    try:
        found = _needles(_parser.parse(pattern, flags))
    except Exception:  # a parse shaped unlike 3.11–3.13's: no pre-check, never a wrong answer
        return None
    if found is None or min(map(len, found)) < MIN_NEEDLE:
        return None
    return frozenset(n.lower() for n in found)


def _needles(items) -> frozenset[str] | None:
    """The best needle set of a parsed sequence: of the sets each required part gives, the one whose shortest
    needle is longest."""
    best: frozenset[str] | None = None

    def consider(options: frozenset[str] | None) -> None:
        nonlocal best
        if options and (best is None or min(map(len, options)) > min(map(len, best))):
            best = options

    run = ""
    for op, av in items:
        if op is sre.LITERAL:
            run += chr(av)
            continue
        consider(frozenset({run}) if run else None)
        run = ""
        if op is sre.SUBPATTERN:
            consider(_needles(av[-1]))
        elif op is sre.BRANCH:
            branches = [_needles(branch) for branch in av[1]]
            if all(b is not None for b in branches):
                consider(frozenset().union(*branches))
        elif op in _REPEATS and av[0] >= 1:
            consider(_needles(av[2]))
    consider(frozenset({run}) if run else None)
    return best


class Guarded:
    """`pattern.search`, skipped when the text holds none of the pattern's needles."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.needles = needles(pattern.pattern, pattern.flags)

    def search(self, text: str) -> re.Match[str] | None:
        if self.needles is not None and text.isascii():
            lowered = text.lower()
            if not any(needle in lowered for needle in self.needles):
                return None
        return self.pattern.search(text)
