"""Routing policy: from a ticket and the engine's assessment to resolve, draft or escalate, with reasons.

When in doubt Seam escalates:
- escalate (a person takes it) when the customer asks for a person, is angry, the SLA is about to breach, the
  AI already answered twice, the ticket matches an exclusion, the engine is unavailable, the helpdesk gave a
  ticket Seam could not fully read (`Ticket.problems`), an agent rejected the draft for this very question
  before, Seam told the customer a person will follow up and nobody has replied since, or confidence is below
  `draft`;
- at most draft (a person approves) for a high-risk topic, an answer no retrieved passage supports, an answer
  that names another customer's case (an order number, an email, a name from the ticket it was written for),
  confidence below `auto`, or while automation is paused;
- resolve only what is left.
Thresholds can be set per topic (a high-risk topic's name or the answer's source); the strictest applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.models import Assessment, Decision, Reason, Route, Ticket
from bot.policy import exclusions, triggers
from bot.policy.settings import PolicySettings, Thresholds
from bot.text import has_placeholder

MEDIUM_CONFIDENCE = "medium_confidence"
PAUSED = "paused"
UNGROUNDED = "ungrounded"
AI_UNAVAILABLE = "ai_unavailable"
PLACEHOLDERS = "placeholders"
UNREADABLE = "unreadable"
REJECTED_BEFORE = "rejected_before"
OTHER_CUSTOMER = "other_customer"
PERSON_PROMISED = "person_promised"


@dataclass(frozen=True)
class Policy:
    """The settings the policy decides with, and whether a manager paused automatic answers."""

    settings: PolicySettings = field(default_factory=PolicySettings)
    paused: bool = False

    @property
    def thresholds(self) -> Thresholds:
        return self.settings.thresholds

    def thresholds_for(self, findings: Findings) -> Thresholds:
        return self.settings.thresholds_for(findings.topics, tighten_only=findings.tighten_only)


@dataclass(frozen=True)
class Findings:
    """What the triggers found: independent of thresholds, so a sweep computes it once per ticket."""

    forcing: tuple[Reason, ...]  # each sends the ticket to a person
    capping: tuple[Reason, ...]  # each allows a draft at most
    topics: tuple[str, ...]
    excluded: bool = False
    # Topics only the engine's own reading names (an LLM's `topic`): their thresholds may only tighten.
    tighten_only: tuple[str, ...] = ()


def examine(ticket: Ticket, assessment: Assessment, *, policy: Policy, now: datetime | None = None) -> Findings:
    """Run every trigger and the exclusion list on a ticket (and on what the engine read in it)."""
    settings = policy.settings
    now = now or datetime.now(UTC)
    forcing: list[Reason] = []
    capping: list[Reason] = []
    if assessment.unavailable:
        forcing.append(Reason(code=AI_UNAVAILABLE, label="AI unavailable", detail=assessment.unavailable))
    if assessment.rejected_before:
        forcing.append(Reason(code=REJECTED_BEFORE, label="A draft for this question was rejected before",
                              detail="an agent marked it wrong or not to automate: a person answers it"))
    if person_promised(ticket):
        # Whatever the engine now makes of the question, the customer was told a person follows up.
        forcing.append(Reason(code=PERSON_PROMISED, label="A person was promised",
                              detail="Seam told the customer a person will follow up, and nobody has replied since"))
    if ticket.problems:
        forcing.append(Reason(code=UNREADABLE, label="Seam could not read all of this ticket",
                              detail="; ".join(ticket.problems)))
    for trigger, reason in triggers.fired(ticket, assessment, settings=settings.triggers, now=now):
        (forcing if trigger.escalates else capping).append(reason)
    high_risk = settings.triggers.high_risk
    hits = triggers.risk_topics(ticket, topics=high_risk.topics) if high_risk.enabled else []
    topics = tuple(topic for topic, _ in hits) + tuple(t for t in (assessment.answer_source, assessment.topic) if t)
    excluded = exclusions.match(ticket, rules=settings.exclusions, topics=topics) if settings.exclusions else None
    if excluded:
        forcing.append(excluded)
    if assessment.answer and not assessment.grounded:
        capping.append(Reason(code=UNGROUNDED, label="Answer not supported by the knowledge",
                              detail="no retrieved article or past answer backs it"))
    if assessment.answer and has_placeholder(assessment.answer):
        # A macro's "{{ticket.requester.first_name}}" or Liquid "{% if %}" must never reach a customer as braces.
        capping.append(Reason(code=PLACEHOLDERS, label="The answer has placeholders a person fills in",
                              detail=f"from {assessment.answer_source}" if assessment.answer_source else ""))
    if assessment.answer and assessment.foreign_details:
        # A reply written for one customer, sent to another, would tell them someone else's order or address.
        shown = ", ".join(assessment.foreign_details[:5]) + (" …" if len(assessment.foreign_details) > 5 else "")
        capping.append(Reason(code=OTHER_CUSTOMER, label="The answer names another customer's details",
                              detail=f"{shown}: a person checks the reply first"))
    # The engine's topic, when neither the customer's words (a high-risk topic) nor the answer's source name it,
    # is the engine's own word: an LLM's can be steered by the ticket.
    named = {topic for topic, _ in hits} | {assessment.answer_source}
    steered = (assessment.topic,) if assessment.topic and assessment.topic not in named else ()
    return Findings(forcing=tuple(forcing), capping=tuple(capping), topics=tuple(dict.fromkeys(topics)),
                    excluded=excluded is not None, tighten_only=steered)


def person_promised(ticket: Ticket) -> bool:
    """Seam's notice or a keep-warm update (`Message.acknowledgement`, marked by the flows) came after the last real
    reply: the customer is still waiting for the person it promised."""
    for message in reversed(ticket.messages):
        if message.acknowledgement:
            return True
        if message.is_reply:
            return False
    return False


def route_of(findings: Findings, confidence: float, *, thresholds: Thresholds, paused: bool) -> Route:
    """The route alone (the simulation's sweep asks it of every ticket at a dozen thresholds)."""
    if findings.forcing or triggers.is_low_confidence(confidence, draft_threshold=thresholds.draft):
        return Route.ESCALATE
    if findings.capping or paused or confidence < thresholds.auto:
        return Route.DRAFT
    return Route.RESOLVE


def route(findings: Findings, assessment: Assessment, *, policy: Policy) -> Decision:
    confidence = assessment.confidence
    thresholds = policy.thresholds_for(findings)
    low = triggers.low_confidence(confidence, draft_threshold=thresholds.draft)
    reasons: list[Reason] = [*findings.forcing, *findings.capping, *([low] if low else [])]
    chosen = route_of(findings, confidence, thresholds=thresholds, paused=policy.paused)
    if chosen == Route.DRAFT and not findings.capping:
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
                    summary=assessment.summary, evidence=assessment.evidence, calibration=assessment.calibration)


def decide(ticket: Ticket, assessment: Assessment, *, policy: Policy, now: datetime | None = None) -> Decision:
    return route(examine(ticket, assessment, policy=policy, now=now), assessment, policy=policy)
