"""Routing policy: from a ticket and the engine's assessment to resolve, draft or escalate, with reasons.

When in doubt Seam escalates:
- escalate (a person takes it) when the customer asks for a person, is angry, the SLA is about to breach, the
  AI already answered twice, the ticket matches an exclusion, the engine is unavailable, or confidence is
  below `draft`;
- at most draft (a person approves) for a high-risk topic, an answer no retrieved passage supports, confidence
  below `auto`, or while automation is paused;
- resolve only what is left.
Thresholds can be set per topic (a high-risk topic's name or the answer's source); the strictest applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.policy import exclusions, triggers
from bot.config import Settings, Thresholds
from bot.models import Assessment, Decision, Reason, Route, Ticket

MEDIUM_CONFIDENCE = "medium_confidence"
PAUSED = "paused"
UNGROUNDED = "ungrounded"
AI_UNAVAILABLE = "ai_unavailable"


@dataclass(frozen=True)
class Policy:
    thresholds: Thresholds = field(default_factory=Thresholds)
    paused: bool = False
    settings: Settings = field(default_factory=Settings)  # trigger, topic and exclusion configuration

    @classmethod
    def from_settings(cls, settings: Settings, *, thresholds: Thresholds | None = None, paused: bool = False) -> Policy:
        return cls(thresholds=thresholds or settings.thresholds, paused=paused, settings=settings)

    def thresholds_for(self, topics: tuple[str, ...]) -> Thresholds:
        """The global thresholds, or the strictest override among the ticket's topics."""
        overrides = [self.settings.topic_thresholds[t] for t in topics if t in self.settings.topic_thresholds]
        if not overrides:
            return self.thresholds
        return Thresholds(auto=max(o.auto for o in overrides), draft=max(o.draft for o in overrides))


@dataclass(frozen=True)
class Findings:
    """What the triggers found: independent of thresholds, so a sweep computes it once per ticket."""

    forcing: tuple[Reason, ...]  # each sends the ticket to a person
    capping: tuple[Reason, ...]  # each allows a draft at most
    topics: tuple[str, ...]
    excluded: bool = False


def examine(ticket: Ticket, assessment: Assessment, *, policy: Policy, now: datetime | None = None) -> Findings:
    """Run every trigger and the exclusion list on a ticket (and on what the engine read in it)."""
    settings = policy.settings
    now = now or datetime.now(UTC)
    forcing: list[Reason] = []
    if assessment.unavailable:
        forcing.append(Reason(code=AI_UNAVAILABLE, label="AI unavailable", detail=assessment.unavailable))
    if settings.human_enabled:
        human = triggers.asks_for_human(ticket, extra_phrases=settings.human_phrases)
        if human is None and assessment.wants_human:
            human = Reason(code="asks_for_human", label="Customer asked for a human", detail="as read by the AI")
        forcing.append(human)
    if settings.tone.enabled:
        forcing.append(triggers.angry_tone(ticket, settings=settings.tone))
    if settings.sla.enabled:
        forcing.append(triggers.sla_breach(ticket, now=now, settings=settings.sla))
    if settings.repeat_enabled:
        forcing.append(triggers.ai_answered_twice(ticket, limit=settings.repeat_limit))
    hits = triggers.risk_topics(ticket, topics=settings.high_risk_topics) if settings.high_risk_enabled else []
    risky = triggers.risk_reason(hits)
    topics = tuple(topic for topic, _ in hits) + tuple(t for t in (assessment.answer_source, assessment.topic) if t)
    excluded = exclusions.match(ticket, rules=settings.exclusions, topics=topics) if settings.exclusions else None
    forcing.append(excluded)
    capping = [risky]
    if assessment.answer and not assessment.grounded:
        capping.append(Reason(code=UNGROUNDED, label="Answer not supported by the knowledge",
                              detail="no retrieved article or past answer backs it"))
    return Findings(forcing=tuple(r for r in forcing if r), capping=tuple(r for r in capping if r),
                    topics=tuple(dict.fromkeys(topics)), excluded=excluded is not None)


def route(findings: Findings, assessment: Assessment, *, policy: Policy) -> Decision:
    confidence = assessment.confidence
    thresholds = policy.thresholds_for(findings.topics)
    low = triggers.low_confidence(confidence, draft_threshold=thresholds.draft)
    reasons: list[Reason] = [*findings.forcing, *findings.capping, *([low] if low else [])]

    if findings.forcing or low:
        chosen = Route.ESCALATE
    elif findings.capping:
        chosen = Route.DRAFT
    elif confidence >= thresholds.auto and not policy.paused:
        chosen = Route.RESOLVE
    else:
        chosen = Route.DRAFT
        if policy.paused and confidence >= thresholds.auto:
            reasons.append(Reason(code=PAUSED, label="Automation is paused",
                                  detail=f"confidence {confidence:.2f} would have been answered automatically"))
        else:
            reasons.append(Reason(code=MEDIUM_CONFIDENCE, label="Needs approval",
                                  detail=f"confidence {confidence:.2f} is below the auto threshold "
                                         f"{thresholds.auto:.2f}"))
    # An excluded ticket type is never touched by the AI: not even a suggested reply.
    answer, source = (None, None) if findings.excluded else (assessment.answer, assessment.answer_source)
    return Decision(route=chosen, confidence=confidence, reasons=tuple(reasons), answer=answer, answer_source=source,
                    summary=assessment.summary, evidence=assessment.evidence)


def decide(ticket: Ticket, assessment: Assessment, *, policy: Policy, now: datetime | None = None) -> Decision:
    return route(examine(ticket, assessment, policy=policy, now=now), assessment, policy=policy)
