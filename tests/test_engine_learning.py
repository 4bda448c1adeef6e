"""The local engine learning agents' replies (`LocalEngine.learn`): a reply is answerable once learn() returns,
replies that arrive during a refit are learnt together in the next one, a reply the embeddings server could not
embed waits for the next learn() instead of being lost from the semantic index, and a rejected draft's question
is not answered again until a reply for it is learnt.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from bot.engine import local
from bot.engine.embeddings import Embedder
from bot.engine.knowledge import load_knowledge
from bot.engine.local import LocalEngine
from bot.models import Message, Resolution, Ticket, read_tickets
from tests.support.fakes import FakeEmbeddings
from tests.support.knowledge import write_knowledge

ROOT = Path(__file__).resolve().parent.parent
REPLIES = {
    "learned-faroe": ("Do you ship parcels to the Faroe Islands by island courier?",
                      "Yes: our island courier reaches the Faroe Islands in 9 to 12 days."),
    "learned-tandem": ("Can I return a tandem bicycle bought in your spring sale?",
                       "Tandems from the spring sale can be returned within 60 days."),
    "learned-engraving": ("Will you engrave a name on the silver locket I ordered?",
                          "We engrave up to 12 letters on any locket for free."),
    "learned-hamster": ("Is the hamster wheel you sell safe for a dwarf hamster?",
                        "The 20 cm wheel suits dwarf hamsters; the 28 cm one suits Syrians."),
}


def history(count: int) -> list[Ticket]:
    return read_tickets(ROOT / "examples" / "history.jsonl", limit=count)[0]


def asking(text: str) -> Ticket:
    return Ticket(id="q", messages=(Message("customer", text),))


def test_replies_that_arrive_during_a_refit_are_learnt_together_in_the_next(monkeypatch) -> None:
    engine = LocalEngine(history=history(300))
    builds: list[int] = []
    first_started, others_queued = threading.Event(), threading.Event()
    build = local._build_index

    def counted(docs, *args, **kwargs):
        builds.append(len(docs))
        if len(builds) == 1:  # hold the first refit until the other three replies are waiting
            first_started.set()
            assert others_queued.wait(20)
        return build(docs, *args, **kwargs)

    monkeypatch.setattr(local, "_build_index", counted)
    labels = list(REPLIES)
    threads = [threading.Thread(target=engine.learn, args=(REPLIES[label][0], label, REPLIES[label][1]))
               for label in labels]
    threads[0].start()
    assert first_started.wait(20)
    for thread in threads[1:]:
        thread.start()

    def waiting() -> int:
        with engine._pending_lock:
            return len(engine._pending)

    while waiting() < 3:
        threading.Event().wait(0.01)
    others_queued.set()
    for thread in threads:
        thread.join(30)
    assert len(builds) == 2, "one refit for the first reply, one for the three that waited"
    assert builds[1] == builds[0] + 3
    for label in labels:
        assert engine.assess(asking(REPLIES[label][0])).answer_source == label


@pytest.fixture
def fake():
    with FakeEmbeddings() as server:
        yield server


def test_a_reply_the_embeddings_server_missed_is_learnt_semantically_with_the_next(fake) -> None:
    with httpx.Client() as client:
        embedder = Embedder(model="test-embed-1", base_url=fake.base_url, client=client, cooldown=0)
        engine = LocalEngine(history=history(120), embedder=embedder)
        faroe, tandem = "learned-faroe", "learned-tandem"
        fake.fail(status=400)  # the next request only
        engine.learn(REPLIES[faroe][0], faroe, REPLIES[faroe][1])
        assert faroe not in {d.label for d in engine._index.docs}, "not embedded: kept for the next learn()"
        engine.learn(REPLIES[tandem][0], tandem, REPLIES[tandem][1])
        assert engine._embedder is not None, "the engine is semantic again"
        for label in (faroe, tandem):
            assert engine.assess(asking(REPLIES[label][0])).answer_source == label
        assert {faroe, tandem} <= {d.label for d in engine._index.docs}


@pytest.fixture(scope="module")
def articles(tmp_path_factory: pytest.TempPathFactory) -> list:
    return load_knowledge(write_knowledge(tmp_path_factory.mktemp("learning") / "knowledge"))


def test_a_rejected_question_is_not_answered_again_and_takes_nothing_from_its_neighbours(articles: list) -> None:
    rejected = "How long does a refund take?"
    engine = LocalEngine(articles=articles)
    assert engine.assess(asking(rejected)).answer_source == "shipping-times", "the draft an agent would reject"
    engine.learn(rejected, local.REJECTED, "")
    again = engine.assess(asking("how long does a refund take"))
    assert (again.answer_source, again.confidence, again.rejected_before) == (None, 0.0, True)
    # The same framing about what the article does cover is answered as before: a rejection never votes.
    shipping = engine.assess(asking("How long does shipping take?"))
    assert shipping.answer_source == "shipping-times" and shipping.confidence >= 0.9
    assert not shipping.rejected_before
    # A template email with another order number is the same question.
    template = "Gift card 4471-2231 from my order 99812: does it expire? I got it two years ago."
    engine.learn(template, local.REJECTED, "")
    assert engine.assess(asking(template.replace("4471-2231", "5190-0042").replace("99812", "10334"))).rejected_before
    assert engine.assess(asking("Do gift cards expire?")).answer_source == "gift-cards"
    # After a restart the rejection comes back as a history ticket with that answer id.
    restarted = LocalEngine(articles=articles, history=[
        Ticket(id="r", messages=(Message("customer", rejected),), resolution=Resolution(answer_id=local.REJECTED))])
    assert restarted.assess(asking(rejected)).answer_source is None
    assert restarted.assess(asking("How long does shipping take?")).answer_source == "shipping-times"


def test_a_reply_sent_after_a_rejection_of_the_same_question_lifts_it(articles: list) -> None:
    question = "How long does a refund for order 5521 take?"
    reply = "Refunds reach your card 5 to 10 business days after we receive the parcel."
    engine = LocalEngine(articles=articles)
    engine.learn(question, local.REJECTED, "")
    assert engine.assess(asking(question)).rejected_before
    engine.learn(question.replace("5521", "6630"), "seam-reply-9", reply)  # an agent wrote the right reply
    again = engine.assess(asking(question.replace("5521", "7012")))
    assert not again.rejected_before and again.answer == reply

    def ticket(n: str, answer_id: str, answer: str | None = None) -> Ticket:
        return Ticket(id=n, messages=(Message("customer", question),),
                      resolution=Resolution(answer_id=answer_id, answer=answer))

    # After a restart the order the agents acted in decides: the reply first, then the rejection, blocks.
    lifted = LocalEngine(articles=articles, history=[ticket("a", local.REJECTED), ticket("b", "seam-reply-9", reply)])
    assert lifted.assess(asking(question)).answer == reply
    kept = LocalEngine(articles=articles, history=[ticket("b", "seam-reply-9", reply), ticket("a", local.REJECTED)])
    assert kept.assess(asking(question)).rejected_before
