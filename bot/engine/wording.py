"""What in a customer's question the chosen answer explains, in words: the evidence the local engine scores with
when it has no history to calibrate on (knowledge articles alone, a deployment's first day).

A question shares most of its words with an article and still asks something else when its key word is one the
article never uses: "How long does a refund take?" against "How long shipping takes". Similarity alone rates
that match as high as a true one; the share of the question's content the article explains does not.
- Content words: the question's words less function words (`FUNCTION_WORDS`: the closed classes of English —
  pronouns, determiners, auxiliaries, prepositions, conjunctions — and the courtesies and framing of a support
  message, "hi", "please", "need help", the generic nouns of a subject line, "issue", "problem", "urgent", and
  who should answer, "talk to a person": the asks-for-a-person trigger reads that, and the draft for the agent
  who takes the ticket is about the rest), and less anything with a digit (order numbers say nothing of the
  topic). The list was written from the grammar and the shape of a ticket, not fitted to a dataset; words that
  are framing in one ticket and the point in another ("quick", "more") stay content: when in doubt, a draft.
- Each content word weighs its inverse document frequency in the knowledge; a word the knowledge never uses
  weighs the most (the knowledge has nothing on it).
- A word is explained when the answer's passages use it, an inflection of it ("takes" for "take": a shared stem
  of all but the last two letters, at least 4, and 5 from six letters), or a misspelling of it (one edit, two
  for words over seven letters: the allowance of the asks-for-a-person trigger's spelling reader,
  `bot.text.allowed_edits`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from bot.text import allowed_edits, distance

FUNCTION_WORDS: frozenset[str] = frozenset("""
a an the this that these those there here some any each every all both either neither no none another other
such what which who whom whose whatever whichever whoever
i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his himself she her hers
herself it its itself they them their theirs themselves one ones someone somebody something anyone anybody
anything everyone everybody everything nobody nothing
am is are was were be been being do does did doing done have has had having will would shall should can could
may might must ought let lets
don doesn didn isn aren wasn weren haven hasn hadn won wouldn shouldn couldn can cannot cant mustn ll ve re
im ive id youre dont doesnt didnt isnt arent wasnt havent hasnt wont wouldnt shouldnt couldnt
of in on at by for from to with without into onto about above below over under between through during before
after since until till up down out off around across along against among upon within via per than as like
and or but nor so yet if then else when where why how while because though although whether unless once
not only also just too very really quite even still already again ever never always often sometimes maybe
perhaps please thanks thank thx ty hi hello hey dear regards cheers sorry ok okay yes yeah yep nope well
need needs needed want wants wanted wanna gonna would like know tell let help helping assist assistance
question questions ask asking trying try able possible way thing things get got getting go going make
talk talking speak speaking person persons people human humans agent agents representative representatives operator
issue issues problem problems query queries request requests inquiry enquiry urgent urgently asap regarding fw fwd
""".split())
_WORD = re.compile(r"(?u)\b\w\w+\b")


def content_words(text: str) -> list[str]:
    """The question's words that carry its topic, each once, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in FUNCTION_WORDS and not any(c.isdigit() for c in word):
            seen.setdefault(word, None)
    return list(seen)


def _same_word(word: str, known: str) -> bool:
    if word == known:
        return True
    shorter = min(len(word), len(known))
    # A shared stem of all but the last two letters, and at least 4 (5 from 6 letters: "refund" is not "refurbished").
    stem = max(4 if shorter < 6 else 5, shorter - 2)
    if shorter >= 4 and word[:stem] == known[:stem]:
        return True  # an inflection: take / takes, expire / expired, card / cards
    if len(word) >= 5 and abs(len(word) - len(known)) <= 2:
        edits = allowed_edits(word)
        return distance(word, known, edits) <= edits  # a misspelling: subscreiption / subscription
    return False


def explained_share(text: str, known: Collection[str], weights: Mapping[str, float], unknown_weight: float) -> float:
    """The share of the question's content-word weight that the answer's words `known` explain; 1.0 for a
    question without content words. `weights`: each knowledge word's weight; a word not in it weighs
    `unknown_weight`."""
    words = content_words(text)
    if not words:
        return 0.0
    total = explained = 0.0
    for word in words:
        weight = weights.get(word, unknown_weight)
        total += weight
        if word in known or any(_same_word(word, other) for other in known):
            explained += weight
    return explained / total if total > 0 else 1.0
