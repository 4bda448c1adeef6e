"""Benchmark: what agents' replies teach — filed under their wording, or one answer per escalation.

    python -m bench.feedback_loop [--learnt 200,1000] [--agents K] [--data ../shared/data]

BANKING77's test questions (3,080, read from ../shared/data at run time), shuffled with a fixed seed, arrive at a
deployment whose knowledge is a title-only article for four intents in five (every 5th intent has none, as in
`bench.knowledge_only`). The first N tickets are answered by agents, who edit or write the reply: the intent's
macro, greeting the customer by name ("Hi <name>,"), so every reply of one intent has the same wording but for
the name. Serve then refits on them (a `LocalEngine` fitted on the articles and the learnt replies: calibrated
from 50), and the rest of the tickets are replayed. Two systems in the same run differ only in what a reply is
filed under:
- by wording (Seam now, `bot.flows.feedback.reply_label`): one answer per wording, the greeting aside;
- by escalation (Seam before): `seam-reply-<escalation>`, one answer per reply.
With `--agents K`, each reply is signed by one of K agents ("Best,\nSam"), as real agents sign, and a third
system files by wording with the sign-off kept (`reply_label` before 2026-12-04), so each agent's signature made
another answer of the same macro.
An answer is right when it is the question's intent (its article, or a reply learnt for that intent); a ticket
whose intent has neither expects no answer. The figures are bench.decisions' (coverage at ≤1/2/5 % wrong,
AURC, top-1, the wrong share and the share answered at the default auto threshold 0.9).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import time
from pathlib import Path

import numpy as np

from bench import _datasets as data
from bench.decisions import DEFAULT_DATA, Answers, figures, print_header
from bot.engine.knowledge import Article
from bot.engine.local import LocalEngine
from bot.flows.feedback import learned_label
from bot.models import Message, Resolution, Ticket
from bot.text import addressed_to

NAMES = ("Ana", "Bo", "Cy", "Dora", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo")
AGENTS = ("Sam", "Maria", "Lee", "Priya", "Tom", "Aiko", "Ben", "Zoe")
BY_WORDING, SIGNED, BY_ESCALATION = "by wording", "by wording, sign-off kept", "by escalation"


def label_before(reply: str) -> str:
    """`reply_label` as it was before sign-offs were set aside: the baseline of `--agents`."""
    normalised = " ".join(re.sub(r"\d{4,}", "0", addressed_to(reply.strip(), None)).casefold().split())
    return "seam-reply-" + hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:12]


def macro(intent: str) -> str:
    words = intent.replace("_", " ")
    return f"Thanks for asking about {words}. Our team's answer on {words} is in your account settings."


def run(texts: list[str], intents: list[str], learnt: int, *, filing: str, agents: int = 0) -> tuple[Answers, list]:
    covered = sorted(set(intents))
    articles = [Article(id=i, title=i.replace("_", " ").capitalize(), body="") for n, i in enumerate(covered) if n % 5]
    meaning = {a.id: a.id for a in articles}  # answer source -> intent
    history = []
    for n in range(learnt):
        reply = f"Hi {NAMES[n % len(NAMES)]},\n\n{macro(intents[n])}"
        if agents:
            reply += f"\n\nBest,\n{AGENTS[n % agents]}"
        if filing == BY_WORDING:
            label = learned_label(action="edit", answer_source=None, escalation_id=n, final_text=reply)
        else:
            label = label_before(reply) if filing == SIGNED else f"seam-reply-{n}"
        meaning[label] = intents[n]
        history.append(Ticket(id=f"e{n}", messages=(Message("customer", texts[n]),),
                              resolution=Resolution(answer_id=label, answer=reply)))
    started = time.perf_counter()
    engine = LocalEngine(articles=articles, history=history)
    rest = [Ticket(id=f"r{n}", messages=(Message("customer", t),)) for n, t in enumerate(texts[learnt:])]
    found = engine.assess_many(rest)
    answerable = set(meaning.values())
    expected = [i if i in answerable else None for i in intents[learnt:]]
    return Answers(filing, np.array([a.confidence for a in found]),
                   [meaning.get(a.answer_source) for a in found], time.perf_counter() - started), expected


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.feedback_loop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--learnt", default="200,1000", help="tickets answered by agents before the replay")
    parser.add_argument("--agents", type=int, default=0, choices=range(len(AGENTS) + 1),
                        help="replies signed by this many agents in turn (0: unsigned)")
    args = parser.parse_args()
    questions = data.banking77_test(args.data)
    pairs = list(zip(questions.texts, questions.labels, strict=True))
    random.Random(0).shuffle(pairs)
    texts, intents = [t for t, _ in pairs], [i for _, i in pairs]
    print_header("What agents' replies teach" + (f", signed by {args.agents} agents" if args.agents else ""))
    for learnt in (int(n) for n in args.learnt.split(",")):
        for filing in (BY_WORDING, SIGNED, BY_ESCALATION) if args.agents else (BY_WORDING, BY_ESCALATION):
            answers, expected = run(texts, intents, learnt, filing=filing, agents=args.agents)
            print(figures(f"banking77, {learnt} replies learnt", answers, expected).row(), flush=True)


if __name__ == "__main__":
    main()
