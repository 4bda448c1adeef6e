"""Routing policy: from a ticket and the engine's assessment to resolve, draft or escalate, with reasons.

When in doubt Seam escalates: a trigger that fires always wins over confidence, a high-risk topic can at most
be drafted for a person to approve, and nothing is answered automatically while automation is paused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot import triggers
from bot.config import DEFAULT_HIGH_RISK_TOPICS, Settings, Thresholds
from bot.models import Assessment, Decision, Reason, Route, Ticket

MEDIUM_CONFIDENCE = "medium_confidence"
PAUSED = "paused"


@dataclass(frozen=True)
class Policy:
    thresholds: Thresholds = field(default_factory=Thresholds)
    paused: bool = False
    human_phrases: tuple[str, ...] = ()
    high_risk_topics: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_HIGH_RISK_TOPICS))

    @classmethod
    def from_settings(cls, settings: Settings, *, thresholds: Thresholds | None = None, paused: bool = False) -> Policy:
        return cls(thresholds=thresholds or settings.thresholds, paused=paused,
                   human_phrases=settings.human_phrases, high_risk_topics=settings.high_risk_topics)


@dataclass(frozen=True)
class Findings:
    """What the triggers found in a ticket: independent of thresholds, so a sweep computes it once."""

    forcing: tuple[Reason, ...]
    risky: Reason | None


def examine(ticket: Ticket, *, policy: Policy) -> Findings:
    forcing = tuple(r for r in (triggers.asks_for_human(ticket, extra_phrases=policy.human_phrases),) if r)
    return Findings(forcing=forcing, risky=triggers.high_risk_topic(ticket, topics=policy.high_risk_topics))


def route(findings: Findings, assessment: Assessment, *, policy: Policy) -> Decision:
    confidence = assessment.confidence
    auto, draft = policy.thresholds.auto, policy.thresholds.draft
    low = triggers.low_confidence(confidence, draft_threshold=draft)
    reasons: list[Reason] = [*findings.forcing, *(r for r in (findings.risky, low) if r)]

    if findings.forcing or low:
        chosen = Route.ESCALATE
    elif findings.risky:
        chosen = Route.DRAFT
    elif confidence >= auto and not policy.paused:
        chosen = Route.RESOLVE
    else:
        chosen = Route.DRAFT
        if policy.paused and confidence >= auto:
            reasons.append(Reason(code=PAUSED, label="Automation is paused",
                                  detail=f"confidence {confidence:.2f} would have been answered automatically"))
        else:
            reasons.append(Reason(code=MEDIUM_CONFIDENCE, label="Needs approval",
                                  detail=f"confidence {confidence:.2f} is below the auto threshold {auto:.2f}"))
    return Decision(route=chosen, confidence=confidence, reasons=tuple(reasons), answer=assessment.answer,
                    answer_source=assessment.answer_source, summary=assessment.summary, evidence=assessment.evidence)


def decide(ticket: Ticket, assessment: Assessment, *, policy: Policy) -> Decision:
    return route(examine(ticket, policy=policy), assessment, policy=policy)
