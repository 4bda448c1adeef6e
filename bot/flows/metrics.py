"""What Seam tells a monitoring system: `/metrics` in Prometheus's text format, for dashboards and alerts that a
support team's on-call already watches (a queue backing up, escalations nobody claims, automation paused by the
quality guard, Seam failing its health checks).

Every figure is read from the database at the moment of the scrape (bot.store `totals`, `queue_stats`), so the
counters survive restarts and agree with `/escalation stats`; the process's own CPU and memory come from
prometheus_client's process collector. Counts only: no ticket, customer or agent text is ever exposed.
`handlers/web.py` serves it, behind a bearer token (`METRICS_TOKEN`; unset, there is no `/metrics`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from bot.models import EscalationState, Route
from bot.policy.decide import Policy
from bot.store import Store
from bot.text import seconds_since

PREFIX = "seam"
# What followed the posts (bot.store `lifecycle_counts`), as the values of one counter's `event` label.
# The contract's four buttons: their counters exist from the first scrape, before anyone clicks.
BUTTONS = ("claim", "approve", "edit", "reject")
LIFECYCLE_EVENTS = ("reminded", "managers_paged", "sla_warned", "sla_breached", "keep_warm_sent")


class _Reading:
    """One scrape's figures as metric families (a prometheus_client collector)."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def families(*, store: Store, queue: Mapping[str, Any], policy: Policy, healthy: bool, running: int,
             stuck: int) -> list[Metric]:
    """The figures of one scrape. `queue` is the store's `queue_stats()`; `healthy`, `running` and `stuck` are
    what `/healthz` says (its verdict, the jobs running, those past [server] stuck_after)."""
    totals = store.totals()

    decisions = CounterMetricFamily(f"{PREFIX}_decisions", "Ticket events decided, by route", labels=["route"])
    for route in Route:
        decisions.add_metric([route.value], totals["routes"].get(route.value, 0))
    escalations = GaugeMetricFamily(f"{PREFIX}_escalations", "Escalations in each state now", labels=["state"])
    oldest = GaugeMetricFamily(f"{PREFIX}_escalation_oldest_seconds",
                               "Age of the oldest escalation in each unfinished state (0: none)", labels=["state"])
    for state in EscalationState:
        escalations.add_metric([state.value], totals["escalations"].get(state.value, 0))
        if not state.finished:
            age = seconds_since(totals["oldest"].get(state.value))
            oldest.add_metric([state.value], round(age, 1) if age is not None else 0.0)
    actions = CounterMetricFamily(f"{PREFIX}_agent_actions", "Agents' actions on escalations (the feedback "
                                  "log)", labels=["action"])
    for action in sorted(set(BUTTONS) | set(totals["actions"])):
        actions.add_metric([action], totals["actions"].get(action, 0))
    lifecycle = CounterMetricFamily(f"{PREFIX}_lifecycle_events", "What followed the posts: reminders, managers "
                                    "paged, SLA warnings and breaches, keep-warm updates", labels=["event"])
    for event in LIFECYCLE_EVENTS:
        lifecycle.add_metric([event], totals["lifecycle"].get(event, 0))

    jobs = GaugeMetricFamily(f"{PREFIX}_queue_jobs", "Jobs in the work queue (a webhook's ticket, a post, a note...), "
                             "by state; pending includes those running", labels=["state"])
    for state in ("pending", "dead", "done"):
        jobs.add_metric([state], queue[state])
    retrying = GaugeMetricFamily(f"{PREFIX}_queue_retrying", "Pending jobs waiting for another try after a failure "
                                 "(while Slack or the helpdesk is down, every job that came in); counted in pending "
                                 "too", value=queue["retrying"])
    return [
        decisions, escalations, oldest, actions, lifecycle, jobs, retrying,
        CounterMetricFamily(f"{PREFIX}_automatic_answers", "Replies Seam sent on its own",
                            value=totals["automatic_answers"]),
        CounterMetricFamily(f"{PREFIX}_automatic_answers_reopened",
                            "Automatic answers the customer reopened (the quality guard's wrong answers)",
                            value=totals["reopened"]),
        GaugeMetricFamily(f"{PREFIX}_queue_oldest_pending_seconds", "How long the oldest job due has "
                          "waited (a scheduled one counts from its time; 0: none)",
                          value=queue["oldest_pending_seconds"] or 0.0),
        GaugeMetricFamily(f"{PREFIX}_jobs_running", "Jobs being processed now", value=running),
        GaugeMetricFamily(f"{PREFIX}_jobs_stuck", "Jobs running longer than [server] stuck_after", value=stuck),
        GaugeMetricFamily(f"{PREFIX}_automation_paused", "1 while automatic replies are paused (by a manager or "
                          "the quality guard)", value=int(policy.paused)),
        _thresholds(policy),
        GaugeMetricFamily(f"{PREFIX}_healthy", "1 while /healthz answers 200", value=int(healthy)),
    ]


def _thresholds(policy: Policy) -> GaugeMetricFamily:
    found = GaugeMetricFamily(f"{PREFIX}_threshold", "The confidence thresholds in force (per-topic overrides "
                              "aside)", labels=["kind"])
    thresholds = policy.thresholds
    found.add_metric(["auto"], thresholds.auto)
    found.add_metric(["draft"], thresholds.draft)
    return found


def exposition(found: Sequence[Metric], *, process: bool = True) -> bytes:
    """The text format Prometheus scrapes (`prometheus_client.CONTENT_TYPE_LATEST`): these families, and the
    process's CPU, memory and open files with `process`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Reading(found))
    if process:
        ProcessCollector(namespace=PREFIX, registry=registry)
    return generate_latest(registry)
