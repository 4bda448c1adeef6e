"""What a reply people wrote is filed under (bot.flows.feedback): one answer per wording, so the same macro sent
by several agents to several customers is one answer the engine grows sure of, and an edit that only greets the
customer by name is the draft's own answer."""

from __future__ import annotations

from bot.engine.local import LocalEngine
from bot.flows.feedback import HELPDESK_REPLY, learned_label, reply_label
from bot.models import Message, Ticket
from bot.text import without_sign_off

FARO = "Yes: we ship to the Faroe Islands with our island courier; delivery takes 9 to 12 days."
QUESTIONS = ["Do you ship parcels to the Faroe Islands?", "Can you deliver to the Faroe Islands, and how long?",
             "Shipping to Faroe Islands possible? How many days?"]


def test_one_wording_is_one_answer_whoever_it_greets():
    assert reply_label(f"Hi Ana,\n{FARO}") == reply_label(f"hi  Bo,\n{FARO.upper()} ") == reply_label(
        f"Hi there,\n{FARO}")
    assert reply_label(FARO) != reply_label(f"Hi Ana,\n{FARO}"), "a greeting is part of the wording"
    assert reply_label(FARO) != reply_label(FARO.replace("9 to 12", "5 to 7"))
    order = f"{FARO} Your order 77812 leaves Monday."
    assert reply_label(order) == reply_label(order.replace("77812", "55501")), "a case's number aside"
    assert reply_label(FARO).startswith("seam-reply-")
    assert reply_label(f"{FARO} \ud800") == reply_label(f"{FARO} \ufffd"), "text UTF-8 cannot carry as it is"


def test_which_agent_signed_is_not_part_of_the_wording():
    signed = [f"Hi Ana,\n{FARO}\n\nBest,\nSam", f"Hi Bo,\n{FARO}\nKind regards, Maria from Acme Support",
              f"Hi Cy,\n{FARO}\n\nThanks!\nThe Acme Team", f"Hi Ana,\n{FARO}\n— Sam",
              f"Hi Dora,\n{FARO}\nRegards,\nSam Lee\nCustomer Support\nAcme", f"Hi there,\n{FARO}"]
    assert len({reply_label(reply) for reply in signed}) == 1
    # A closing that says something more is part of the answer.
    assert reply_label(f"{FARO}\nThank you for your patience while we fix the courier's app.") != reply_label(FARO)
    assert reply_label(f"{FARO} Thanks, the courier confirmed it.") != reply_label(FARO)
    assert without_sign_off("Best,\nSam") == "Best,\nSam", "a reply that is all sign-off is left as it is"
    # An edit that only signs the draft is the draft's own answer.
    assert learned_label(action="edit", answer_source="faroe-shipping", escalation_id=3, draft=f"Hi there,\n{FARO}",
                         final_text=f"Hi Ana,\n{FARO}\n\nCheers,\nSam") == "faroe-shipping"


def test_the_customers_name_anywhere_in_the_reply_is_not_part_of_the_wording():
    ana, bo = f"Thanks for waiting, Ana: {FARO}", f"Thanks for waiting, Bo: {FARO}"
    assert reply_label(ana, name="Ana Lopez") == reply_label(bo, name="Bo Li")
    assert reply_label(ana) != reply_label(bo), "without the name, it is a word of the reply"
    assert learned_label(action=HELPDESK_REPLY, answer_source=None, escalation_id=4, final_text=ana,
                         requester_name="Ana Lopez") == reply_label(bo, name="Bo Li")


def test_an_edit_that_only_greets_the_customer_is_filed_under_the_drafts_answer():
    draft = f"Hi there,\n{FARO}"
    for action in ("edit", HELPDESK_REPLY):
        assert learned_label(action=action, answer_source="faroe-shipping", escalation_id=3, draft=draft,
                             final_text=f"Hi Ana,\n{FARO}") == "faroe-shipping"
        assert learned_label(action=action, answer_source="faroe-shipping", escalation_id=3, draft=draft,
                             final_text=f"Hi Ana,\n{FARO} Sorry for the wait!") == reply_label(
            f"Hi Ana,\n{FARO} Sorry for the wait!")
    assert learned_label(action="approve", answer_source="faroe-shipping", escalation_id=3, draft=draft,
                         final_text=draft) == "faroe-shipping"
    assert learned_label(action="edit", answer_source=None, escalation_id=3, draft=None, final_text="") == \
        "seam-reply-3"


def test_the_same_reply_sent_three_times_is_an_answer_the_engine_is_sure_of():
    def confidence(labels: list[str]) -> float:
        engine = LocalEngine()
        for question, label in zip(QUESTIONS, labels, strict=True):
            engine.learn(question, label, f"Hi Ana,\n{FARO}")
        found = engine.assess(Ticket(id="n", messages=(Message("customer", "Do you deliver to the Faroe Islands?"),)))
        assert found.answer == f"Hi there,\n{FARO}"
        return found.confidence

    one_each = confidence([f"seam-reply-{i}" for i in range(3)])  # how replies were filed before
    shared = confidence([reply_label(f"Hi {name},\n{FARO}") for name in ("Ana", "Bo", "Cy")])
    assert shared >= 0.9 > one_each
