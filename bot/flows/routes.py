"""Routes and the customer notice, as `serve` uses them: which `[[routes]]` entry takes an escalation (and whom
its post mentions), the start-up check that every route's channel exists and has the bot in it, the listing for
`/escalation routes` and the App Home's queues, and the short public reply telling the customer a person will
follow up.

The rules themselves are parsed and matched in `bot.policy.routing` (pure); this module adds what needs the
settings, Slack or the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.errors import ConfigError
from bot.models import Decision, Ticket
from bot.models import Route as Verdict
from bot.policy import triggers
from bot.policy.routing import Match, Route, choose
from bot.policy.settings import PolicySettings
from bot.slack.blocks import QueueLine, escape
from bot.store import Store
from bot.text import iso

log = logging.getLogger(__name__)

EXCLUDED = "excluded"


# -- choosing a route ---------------------------------------------------------------------------------------------


def route_for(routes: Sequence[Route], ticket: Ticket, decision: Decision, *, policy: PolicySettings) -> Match | None:
    """The first route whose rules hold for this escalation. Topic rules see the same topics exclusions do: the
    high-risk topics the customer's words touch and the answer's source."""
    high_risk = policy.triggers.high_risk
    topics = tuple(topic for topic, _ in triggers.risk_topics(ticket, topics=high_risk.topics)) if high_risk.enabled \
        else ()
    topics += tuple(t for t in (decision.answer_source,) if t)
    return choose(routes, ticket, reasons=decision.reasons, topics=topics)


def route_named(settings: Settings, name: str | None) -> Route | None:
    return next((r for r in settings.routes if r.name == name), None) if name else None


def manager_mentions(settings: Settings) -> str:
    """How a post pages the managers: each of MANAGER_USER_IDS, and the `[slack] manager_group` user group."""
    mentions = [f"<@{user}>" for user in settings.manager_user_ids]
    if settings.slack.manager_group:
        mentions.append(f"<!subteam^{settings.slack.manager_group}>")
    return " ".join(mentions)


def sla_due_at(ticket: Ticket, *, policy: PolicySettings) -> str | None:
    """When the ticket is due, where known: its own `sla_due_at`, else its creation plus `[triggers.sla.hours]` for
    its priority (the SLA trigger's own reading)."""
    due = triggers.due_at(ticket, settings=policy.triggers.sla)
    return iso(due) if due is not None else None


# -- the start-up check --------------------------------------------------------------------------------------------


def check_routes(slack: WebClient, settings: Settings) -> None:
    """Every route's channel is one Slack knows and the bot is in, and a paging route has managers to page:
    otherwise a ConfigError naming the route in one line. Slack unreachable (no answer at all) is logged and
    left to the first post: a network blip must not stop a deployment."""
    seen: dict[str, dict] = {}
    for route in settings.routes:
        where = f"route {route.name!r}"
        if route.page_manager and not manager_mentions(settings):
            raise ConfigError(f"{where} pages a manager (page_manager = true), but there are none: set "
                              "MANAGER_USER_IDS or [slack] manager_group")
        if route.channel not in seen:
            try:
                seen[route.channel] = slack.conversations_info(channel=route.channel)["channel"]
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                if error in ("channel_not_found", "not_in_channel"):
                    raise ConfigError(f"{where}: channel {route.channel} is not a channel Slack knows, or a private "
                                      "one the bot was not invited to") from None
                if error == "missing_scope":
                    raise ConfigError(f"{where}: Slack refused to show channel {route.channel} (missing_scope); "
                                      "the bot needs channels:read and groups:read") from None
                log.warning("could not check %s's channel %s with Slack (%s); continuing", where, route.channel,
                            error or exc)
                seen[route.channel] = {}
            except Exception as exc:  # no answer from Slack at all
                log.warning("could not check the routes' channels with Slack (%s); continuing", exc)
                return
        channel = seen[route.channel]
        label = f"#{channel['name']} ({route.channel})" if channel.get("name") else route.channel
        if channel.get("is_archived"):
            raise ConfigError(f"{where}: channel {label} is archived")
        # Only a definite "no": an answer without the field is not a refusal.
        if channel.get("is_member") is False:
            raise ConfigError(f"{where}: the bot is not in channel {label}; invite it there (/invite @seam)")


# -- what people see -------------------------------------------------------------------------------------------------


def in_words(seconds: float) -> str:
    """A response time as a customer reads it: "30 minutes", "2 hours", "1.5 hours", "2 days"."""
    def plural(value: float, unit: str) -> str:
        shown = f"{value:.1f}".removesuffix(".0")
        return f"{shown} {unit}" + ("" if shown == "1" else "s")

    if seconds < 3600:
        return plural(max(1, round(seconds / 60)), "minute")
    if seconds < 36 * 3600:
        return plural(round(seconds / 1800) / 2, "hour")
    return plural(round(seconds / 43200) / 2, "day")


def routes_text(settings: Settings) -> str:
    """`/escalation routes`: each route in order, and where the rest go."""
    default = f"<#{settings.escalation_channel}>" if settings.escalation_channel else "ESCALATION_CHANNEL"
    if not settings.routes:
        return (f"No routes: every escalation goes to {default}. Routes are `[[routes]]` tables in the config file "
                "(docs/configuration.md).")
    notice = settings.customer_notice
    lines = ["*Routes* — the first that matches takes the escalation"]
    for number, route in enumerate(settings.routes, start=1):
        extras = []
        if route.mention:
            extras.append(f"mentions {route.mention}")
        if route.page_manager:
            extras.append("pages the managers")
        tells = notice.enabled if route.notify_customer is None else route.notify_customer
        if tells:
            extras.append("tells the customer" + (f" (within {in_words(route.response_time)})"
                                                   if route.response_time else ""))
        lines.append(f"{number}. *{route.name}* — {route.describe()} → <#{route.channel}>"
                     + (f"; {', '.join(extras)}" if extras else ""))
    lines.append(f"Everything else → {default}"
                 + ("; tells the customer" if notice.enabled else ""))
    return "\n".join(lines)


def queues(settings: Settings, store: Store) -> list[QueueLine]:
    """Each escalation channel (the default one, then the routes' in order, then any other holding escalations)
    with its routes and its open and claimed escalations."""
    counts = store.channel_queues()
    channels: dict[str, list[str]] = {}
    if settings.escalation_channel:
        channels[settings.escalation_channel] = []
    for route in settings.routes:
        channels.setdefault(route.channel, []).append(route.name)
    for channel in counts:
        if channel:
            channels.setdefault(channel, [])
    return [QueueLine(channel=channel, routes=tuple(names), open=counts.get(channel, {}).get("open", 0),
                      claimed=counts.get(channel, {}).get("claimed", 0)) for channel, names in channels.items()]


# -- the customer notice -------------------------------------------------------------------------------------------


def customer_notice(settings: Settings, ticket: Ticket, decision: Decision, *, route: Route | None) -> str | None:
    """The public reply telling the customer a person will follow up, or None when none is to be sent: only for
    an escalation (never a draft), as the route or `[customer_notice]` says, and never for an excluded ticket
    unless `notify_excluded` is set."""
    notice = settings.customer_notice
    if decision.route != Verdict.ESCALATE:
        return None
    if not (notice.enabled if route is None or route.notify_customer is None else route.notify_customer):
        return None
    if any(r.code == EXCLUDED for r in decision.reasons) and not notice.notify_excluded:
        return None
    seconds = route.response_time if route is not None and route.response_time else None
    if seconds is None:
        seconds = notice.response_time.get((ticket.priority or "normal").strip().lower())
    hours = in_words(seconds) if seconds else None
    name = (ticket.requester_name or "").split()
    return notice.template.format_map({
        "name": name[0] if name else "there",
        "hours": hours or "as soon as we can",
        "within": f" within {hours}" if hours else "",
    }).strip()


def notified_line(text: str) -> str:
    """The thread's record of the notice (mrkdwn)."""
    return f"📣 Seam told the customer: “{escape(text)}”"
