"""What the routing policy is tuned with: the thresholds (global and per topic), each trigger's settings and the
exclusions — read from seam.toml's `[thresholds]`, `[triggers]` and `[exclusions]` tables, and nothing else.

`PolicySettings` is all `bot.policy.decide` sees of the configuration. Managers' run-time changes (the
`/escalation` command) are layered on top by `bot.flows.controls`, never written back here.
"""

from __future__ import annotations

from pydantic import Field, StrictFloat, StrictStr, field_validator, model_validator

from bot.errors import ConfigError
from bot.policy.exclusions import Exclusion, parse_rules
from bot.policy.triggers import TriggerSettings
from bot.schema import Table, key_path

# A deliberately cautious default: nothing is sent automatically unless the engine is very sure, and a human
# sees a draft down to a moderate score. Chosen on the bundled sample's sweep (docs/benchmarks.md).
DEFAULT_AUTO_THRESHOLD = 0.9
DEFAULT_DRAFT_THRESHOLD = 0.5


class Thresholds(Table):
    """At or above `auto` the AI answers alone; between `draft` and `auto` a person approves its draft; below
    `draft` a person takes over. Always 0 <= draft <= auto <= 1."""

    auto: StrictFloat = DEFAULT_AUTO_THRESHOLD
    draft: StrictFloat = DEFAULT_DRAFT_THRESHOLD

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not (0.0 <= self.draft <= self.auto <= 1.0):
            raise ConfigError(f"thresholds must satisfy 0 <= draft <= auto <= 1 (got draft={self.draft}, "
                              f"auto={self.auto})")
        return self


class TopicThresholds(Table):
    """`[thresholds.topics."NAME"]`: a topic may set only one of the two; the other comes from [thresholds]."""

    auto: StrictFloat | None = None
    draft: StrictFloat | None = None

    @model_validator(mode="after")
    def _one_at_least(self) -> TopicThresholds:
        if self.auto is None and self.draft is None:
            raise ValueError("must set auto and/or draft")
        return self


class ThresholdsTable(Table):
    """`[thresholds]` as written in the file."""

    auto: StrictFloat = DEFAULT_AUTO_THRESHOLD
    draft: StrictFloat = DEFAULT_DRAFT_THRESHOLD
    topics: dict[str, TopicThresholds] = Field(default_factory=dict)

    def resolve(self) -> tuple[Thresholds, dict[str, Thresholds]]:
        """The global thresholds, and each topic's with the global value filling what it does not set."""
        base = Thresholds(auto=self.auto, draft=self.draft)
        topics = {}
        for topic, own in self.topics.items():
            try:
                topics[topic] = Thresholds(auto=base.auto if own.auto is None else own.auto,
                                           draft=base.draft if own.draft is None else own.draft)
            except ConfigError as exc:
                raise ConfigError(f"{key_path(('thresholds', 'topics', topic))}: {exc}") from None
        return base, topics


class ExclusionsTable(Table):
    """`[exclusions]`: ticket types the AI never answers, in plain language (bot.policy.exclusions)."""

    rules: tuple[StrictStr, ...] = ()

    @field_validator("rules")
    @classmethod
    def _readable(cls, rules: tuple[str, ...]) -> tuple[str, ...]:
        parse_rules(rules)  # a rule that cannot be understood stops Seam, naming it
        return rules


class PolicySettings(Table):
    """Everything the policy decides with, besides the pause switch."""

    thresholds: Thresholds = Thresholds()
    # Per-topic overrides (a high-risk topic's name or an answer's source); the strictest applies.
    topic_thresholds: dict[str, Thresholds] = Field(default_factory=dict)
    triggers: TriggerSettings = TriggerSettings()
    exclusions: tuple[Exclusion, ...] = ()

    @classmethod
    def from_tables(cls, *, thresholds: ThresholdsTable, triggers: TriggerSettings,
                    exclusions: ExclusionsTable) -> PolicySettings:
        base, topics = thresholds.resolve()
        return cls(thresholds=base, topic_thresholds=topics, triggers=triggers,
                   exclusions=parse_rules(exclusions.rules))

    def thresholds_for(self, topics: tuple[str, ...], *, base: Thresholds | None = None,
                       tighten_only: tuple[str, ...] = ()) -> Thresholds:
        """The global thresholds (or `base`, the simulation's sweep point), or the strictest override among the
        ticket's topics. An override matched only through a topic in `tighten_only` — what an LLM engine says the
        ticket is about, which the ticket's own text can steer — may raise the thresholds, never lower them: a
        customer must not talk the AI into a topic a manager trusted with a looser threshold."""
        start = base or self.thresholds
        overrides = []
        for topic in topics:
            override = self.topic_thresholds.get(topic)
            if override is not None and topic in tighten_only:
                override = Thresholds(auto=max(override.auto, start.auto), draft=max(override.draft, start.draft))
            if override is not None:
                overrides.append(override)
        if not overrides:
            return start
        return Thresholds(auto=max(o.auto for o in overrides), draft=max(o.draft for o in overrides))
