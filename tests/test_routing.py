"""Routes (bot.policy.routing, bot.flows.routes) as plain data: the plain-language rules, first match wins, the
`[[routes]]` and `[customer_notice]` tables and their one-line errors, and the notice's words."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import CustomerNoticeTable, Settings, load_settings
from bot.errors import ConfigError
from bot.flows import routes as flows
from bot.models import Decision, Message, Reason, Ticket
from bot.models import Route as Verdict
from bot.policy.routing import DOMAIN, TRIGGER, WORDS, Route, choose, holds, parse_condition, parse_when
from bot.policy.settings import PolicySettings


def ticket(body: str = "Hello", *, subject: str = "", email: str | None = "ana@example.com", tags=(),
           priority: str | None = None, name: str | None = "Ana Customer") -> Ticket:
    return Ticket(id="1", subject=subject, messages=(Message(author="customer", body=body),), tags=tuple(tags),
                  requester_email=email, requester_name=name, priority=priority)


def decision(*codes: str, route: Verdict = Verdict.ESCALATE, answer: str | None = None) -> Decision:
    return Decision(route=route, confidence=0.3, reasons=tuple(Reason(code=c, label=c) for c in codes),
                    answer=answer, answer_source=None, summary="")


# -- parsing -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "values"), [
    ("from acme.com", DOMAIN, ("acme.com",)),
    ("from @acme.com or globex.co.uk", DOMAIN, ("acme.com", "globex.co.uk")),
    ("customers from acme.com", DOMAIN, ("acme.com",)),
    ("requester domain acme.com", DOMAIN, ("acme.com",)),
    ("from ceo@acme.com", DOMAIN, ("ceo@acme.com",)),
    ("when the customer asks for a person", TRIGGER, ("asks_for_human",)),
    ("When the customer wants to talk to a human", TRIGGER, ("asks_for_human",)),
    ("when the customer may want a person", TRIGGER, ("maybe_asks_for_human",)),
    ("when the customer is angry or upset", TRIGGER, ("angry_tone",)),
    ("when the SLA is about to breach", TRIGGER, ("sla_breach",)),
    ("when the AI already answered twice", TRIGGER, ("ai_retry_limit",)),
    ("trigger asks_for_human", TRIGGER, ("asks_for_human",)),
    ("triggered by angry_tone or sla_breach", TRIGGER, ("angry_tone", "sla_breach")),
    ("mentioning 'invoice'", WORDS, ("invoice",)),
    ("mentioning \"wire transfer\" or 'IBAN'", WORDS, ("wire transfer", "iban")),
    ("containing refund policy", WORDS, ("refund policy",)),
    # Every exclusion form too, also behind a "when".
    ("tagged vip", "tag", ("vip",)),
    ("when tagged vip or enterprise", "tag", ("vip", "enterprise")),
    ("priority high or urgent", "priority", ("high", "urgent")),
    ("anything about chargebacks", "topic", ("chargebacks",)),
])
def test_route_rules_are_understood_in_plain_language(text: str, kind: str, values: tuple) -> None:
    condition = parse_condition(text)
    assert (condition.kind, condition.values) == (kind, values)
    assert condition.text == text


@pytest.mark.parametrize(("text", "says"), [
    ("", "is empty"),
    ("from vip customers", "not an email domain"),
    ("when the customer asks for a refund", "names no trigger"),
    ("when banana", "names no trigger"),
    ("mentioning ''", "names no words"),
    ("priority", "priority must be one of"),
    ("anything about the", "names no topic"),
])
def test_a_rule_seam_cannot_read_is_a_one_line_error_naming_it(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_condition(text, where="routes[2] (vip).when")
    message = str(error.value)
    assert message.startswith("routes[2] (vip).when") and says in message and "\n" not in message


def test_a_list_of_rules_must_all_hold_and_an_empty_one_is_refused() -> None:
    assert [c.kind for c in parse_when(["tagged vip", "from acme.com"], where="w")] == ["tag", DOMAIN]
    with pytest.raises(ConfigError, match="empty list"):
        parse_when([], where="w")
    with pytest.raises(ConfigError, match=r"w\[1\]"):
        parse_when(["tagged vip", "when banana"], where="w")


# -- matching ----------------------------------------------------------------------------------------------------


def test_each_kind_of_rule_holds_on_what_it_names() -> None:
    t = ticket("Please send the invoices for my wire transfers", subject="Billing", email="Ana@EU.Acme.com",
               tags=("VIP",), priority="urgent")
    assert holds(parse_condition("from acme.com"), t) == "from eu.acme.com"
    assert holds(parse_condition("from acme.co"), t) is None
    assert holds(parse_condition("from notacme.com"), ticket(email="x@notacme.com")) == "from notacme.com"
    assert holds(parse_condition("from acme.com"), ticket(email="x@notacme.com")) is None
    assert holds(parse_condition("mentioning 'invoice'"), t) == "mentions “invoice”"
    assert holds(parse_condition("mentioning 'wire transfer'"), t) == "mentions “wire transfer”"
    assert holds(parse_condition("mentioning 'transfer wire'"), t) is None, "words in their order"
    assert holds(parse_condition("tagged vip"), t) == "tagged vip"
    assert holds(parse_condition("priority urgent"), t) == "priority urgent"
    asked = parse_condition("when the customer asks for a person")
    assert holds(asked, t) is None
    assert holds(asked, t, reasons=[Reason("asks_for_human", "Customer asked for a human")]) == "trigger asks_for_human"
    assert holds(parse_condition("about refunds"), t, topics=["macro-refund-status"]) == "topic macro-refund-status"


def test_the_first_matching_route_wins_and_all_of_a_routes_rules_must_hold() -> None:
    vip = Route(name="vip", when=parse_when("tagged vip", where="w"), channel="C0VIP")
    acme_angry = Route(name="acme angry", when=parse_when(["from acme.com", "when the customer is angry"], where="w"),
                       channel="C0ACME")
    billing = Route(name="billing", when=parse_when("mentioning 'invoice'", where="w"), channel="C0BILL")
    routes = (vip, acme_angry, billing)
    both = ticket("my invoice is wrong", email="a@acme.com", tags=("vip",))
    assert choose(routes, both).route is vip
    assert choose(routes, ticket("my invoice", email="a@acme.com")).route is billing
    angry = [Reason("angry_tone", "Angry")]
    match = choose(routes, ticket("my invoice", email="a@acme.com"), reasons=angry)
    assert match.route is acme_angry and match.detail == "from acme.com; trigger angry_tone"
    assert choose(routes, ticket("hello", email="a@globex.com"), reasons=angry) is None


# -- the tables ----------------------------------------------------------------------------------------------------


def load(tmp_path: Path, text: str) -> Settings:
    (tmp_path / "seam.toml").write_text(text)
    return load_settings(env={}, cwd=tmp_path)


ROUTE = '[[routes]]\nname = "vip"\nwhen = "tagged vip"\nchannel = "C0VIP"\n'


def test_routes_load_in_order_with_their_options(tmp_path: Path) -> None:
    settings = load(tmp_path, ROUTE + 'mention = "<!subteam^S0VIP>  <@U0LEAD>"\npage_manager = true\n'
                    'notify_customer = true\nresponse_time = "90m"\n\n'
                    '[[routes]]\nname = "acme"\nwhen = ["from acme.com", "priority high or urgent"]\n'
                    'channel = "G0ACME"\n')
    vip, acme = settings.routes
    assert (vip.name, vip.channel, vip.mention, vip.page_manager, vip.notify_customer, vip.response_time) == (
        "vip", "C0VIP", "<!subteam^S0VIP> <@U0LEAD>", True, True, 5400.0)
    assert [c.kind for c in acme.when] == [DOMAIN, "priority"] and acme.notify_customer is None


@pytest.mark.parametrize(("text", "says"), [
    (ROUTE + 'colour = "red"\n', "routes[0] has an unknown key 'colour'"),
    (ROUTE.replace('"C0VIP"', '"#vip"'), "routes[0].channel must be a Slack channel ID"),
    (ROUTE + 'mention = "@vip-team"\n', "routes[0].mention must be Slack mentions"),
    (ROUTE.replace('"tagged vip"', '"when banana"'), "routes[0] (vip).when 'when banana' names no trigger"),
    (ROUTE.replace('"tagged vip"', '"from vip customers"'), "routes[0] (vip).when 'from vip customers'"),
    (ROUTE + ROUTE.replace('"vip"', '"VIP"', 1), "routes[1]: the name 'VIP' is used by an earlier route"),
    (ROUTE + "page_manager = 1\n", "routes[0].page_manager must be true or false"),
    (ROUTE + 'response_time = "soon"\n', "routes[0].response_time"),
    ('[[routes]]\nname = "x"\nchannel = "C0X"\n', "routes[0].when"),
    ('[customer_notice]\ntemplate = "Hi {first_name}"\n', "customer_notice.template: has an unknown placeholder"),
    ('[customer_notice]\ntemplate = "Hi {name"\n', "customer_notice.template: is not a valid template"),
    ('[customer_notice]\nenabled = "yes"\n', "customer_notice.enabled must be true or false"),
    ('[customer_notice]\nwording = "x"\n', "customer_notice has an unknown key 'wording'"),
    ('[customer_notice.response_time]\nhigh = "0s"\n', "customer_notice.response_time"),
])
def test_a_bad_route_or_notice_stops_seam_with_one_line_naming_it(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    assert says in str(error.value) and "\n" not in str(error.value)


# -- the customer notice -------------------------------------------------------------------------------------------


def notice_settings(**notice) -> Settings:
    return Settings(escalation_channel="C0ESC", customer_notice=CustomerNoticeTable(**notice))


def test_the_notice_names_the_customer_and_the_expected_time() -> None:
    settings = notice_settings(enabled=True, response_time={"high": 7200.0})
    text = flows.customer_notice(settings, ticket(priority="high"), decision("asks_for_human"), route=None)
    assert text == ("Hi Ana, thanks for your message. A member of our team has it and will get back to you within "
                    "2 hours.")
    unknown = flows.customer_notice(settings, ticket(priority="low", name=None), decision("asks_for_human"),
                                    route=None)
    assert unknown == "Hi there, thanks for your message. A member of our team has it and will get back to you."
    route = Route(name="vip", when=(), channel="C0VIP", response_time=1800.0)
    custom = replace(settings, customer_notice=CustomerNoticeTable(enabled=True, template="{name}: {hours}."))
    assert flows.customer_notice(custom, ticket(), decision("asks_for_human"), route=route) == "Ana: 30 minutes."


def test_the_notice_is_for_escalations_only_as_configured_and_never_for_excluded_tickets_by_default() -> None:
    on, off = notice_settings(enabled=True), notice_settings(enabled=False)
    route_on = Route(name="r", when=(), channel="C0R", notify_customer=True)
    route_off = Route(name="r", when=(), channel="C0R", notify_customer=False)
    asked = decision("asks_for_human")
    assert flows.customer_notice(on, ticket(), asked, route=None)
    assert flows.customer_notice(off, ticket(), asked, route=None) is None
    assert flows.customer_notice(off, ticket(), asked, route=route_on), "a route turns it on for itself"
    assert flows.customer_notice(on, ticket(), asked, route=route_off) is None, "and off"
    drafted = decision("medium_confidence", route=Verdict.DRAFT, answer="Try this")
    assert flows.customer_notice(on, ticket(), drafted, route=route_on) is None, "never for a draft"
    excluded = decision("excluded")
    assert flows.customer_notice(on, ticket(), excluded, route=None) is None
    assert flows.customer_notice(notice_settings(enabled=True, notify_excluded=True), ticket(), excluded, route=None)


@pytest.mark.parametrize(("seconds", "words"), [(60, "1 minute"), (1800, "30 minutes"), (3600, "1 hour"),
                                                (7200, "2 hours"), (5400, "1.5 hours"), (86400, "24 hours"),
                                                (2 * 86400, "2 days"), (3600 * 36, "1.5 days")])
def test_response_times_read_as_people_say_them(seconds: float, words: str) -> None:
    assert flows.in_words(seconds) == words


def test_routes_are_listed_in_order_with_where_the_rest_go() -> None:
    vip = Route(name="vip", when=parse_when("tagged vip", where="w"), channel="C0VIP", mention="<!subteam^S1>",
                page_manager=True, notify_customer=True, response_time=3600.0)
    asks = Route(name="people", when=parse_when("when the customer asks for a person", where="w"), channel="C0P")
    text = flows.routes_text(Settings(escalation_channel="C0ESC", routes=(vip, asks)))
    lines = text.splitlines()
    assert lines[1] == ("1. *vip* — tagged vip → <#C0VIP>; mentions <!subteam^S1>, pages the managers, tells the "
                        "customer (within 1 hour)")
    assert lines[2] == "2. *people* — when the customer asks for a person → <#C0P>"
    assert lines[3] == "Everything else → <#C0ESC>"
    assert "No routes" in flows.routes_text(Settings(escalation_channel="C0ESC"))


def test_managers_are_paged_by_their_ids_and_their_user_group() -> None:
    from bot.config import SlackTable

    settings = Settings(manager_user_ids=("UM1", "UM2"), slack=SlackTable(manager_group="S0MGR"))
    assert flows.manager_mentions(settings) == "<@UM1> <@UM2> <!subteam^S0MGR>"
    assert flows.manager_mentions(Settings()) == ""


def test_the_route_sees_the_high_risk_topics_the_customer_touched() -> None:
    refunds = Route(name="refunds", when=parse_when("about refunds", where="w"), channel="C0REF")
    t = ticket("I was charged twice and want my money back, please refund me")
    match = flows.route_for((refunds,), t, decision("high_risk_topic"), policy=PolicySettings())
    assert match is not None and match.route is refunds
