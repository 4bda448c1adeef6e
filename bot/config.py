"""Settings: the environment (see ../shared/CONTRACT.md) and the optional TOML file, read into one typed object.

Secrets and deployment facts come from the environment; tuning (thresholds, trigger phrases, topic keywords,
what status a resolved ticket gets) comes from the TOML file named by `SEAM_CONFIG`. Values changed at run time
live in the database (see `bot.store`) and are layered on top by the caller, not here.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.policy.exclusions import Exclusion

DEFAULT_SLACK_API_URL = "https://slack.com/api/"

# A deliberately cautious default: nothing is sent automatically unless the engine is very sure, and a human
# sees a draft down to a moderate score. Chosen on the bundled sample's sweep (docs/benchmarks.md).
DEFAULT_AUTO_THRESHOLD = 0.9
DEFAULT_DRAFT_THRESHOLD = 0.5

# Keywords: whole words; `word*` matches any ending; a lone `*` stands for any one word (bot/triggers.py).
DEFAULT_HIGH_RISK_TOPICS: dict[str, tuple[str, ...]] = {
    "refund": (
        "refund*", "reimburs*", "money back", "restitution*", "rebate*", "compensation*",
        "reembolso*", "rembours*", "rückerstattung*", "give me back my money", "return an item",
    ),
    "billing dispute": (
        "chargeback*", "charge back", "disput*", "charged twice", "double charged", "overcharg*",
        "unauthori* charge*", "did not authori*", "didn't authori*", "fraud*", "payment error*", "payment issue*",
        "payment problem*", "error* with * payment*", "issue* with * payment*", "problem* with * payment*",
        "trouble* with * payment*", "charged * twice", "duplicate* charge*", "duplicate* transaction*",
        "extra charge*", "wrong amount", "more than one charge",
    ),
    "legal": ("lawyer*", "attorney*", "legal action", "sue you", "lawsuit*", "court", "gdpr", "small claims"),
    "account security": (
        "hacked", "compromised", "someone logged into", "stolen account", "account takeover", "phishing",
        "unauthori* access", "2fa", "two-factor", "identity theft", "stolen", "stole", "lost * * card",
        "lost * * wallet", "lost * * phone", "can't find my card", "cant find my card", "without * permission",
        "someone * using my", "someone * used my", "not mine", "isn't mine", "don't recogni*", "do not recogni*",
        "didn't make", "did not make", "strange payment*", "strange charge*", "unknown charge*", "unknown payment*",
    ),
    "account deletion": (
        "delet* * * account*", "clos* * * account*", "remov* * * account*", "terminat* * * account*",
        "cancel* * * account*", "removal of * * account*", "termination of * * account*",
        "deletion of * * account*", "cancellation of * * account*", "account cancel*", "account remov*",
        "account delet*", "account terminat*", "delete my data", "erase my data", "account * * deleted",
        "get rid of my account",
        "right to be forgotten",
    ),
}


# Angry tone (bot.triggers.angry_tone): the tone score runs from 0 (calm) to 1 (furious); above this it fires.
# Chosen on the Twitter US airline sentiment set (negative vs the rest): see bot/triggers.py.
DEFAULT_TONE_THRESHOLD = 0.5

# SLA (bot.triggers.sla_breach): hours from creation to the due time per priority, when the ticket carries no
# `sla_due_at` of its own; a missing priority counts as normal.
DEFAULT_SLA_HOURS: dict[str, float] = {"urgent": 1.0, "high": 4.0, "normal": 24.0, "low": 48.0}
DEFAULT_SLA_MARGIN_MINUTES = 30.0

# The AI answers at most this many times in a thread before a person takes over (bot.triggers.ai_answered_twice).
DEFAULT_REPEAT_LIMIT = 2


class ConfigError(Exception):
    """Configuration that cannot work; its message is one line meant for the operator."""


@dataclass(frozen=True)
class Thresholds:
    auto: float = DEFAULT_AUTO_THRESHOLD
    draft: float = DEFAULT_DRAFT_THRESHOLD

    def __post_init__(self) -> None:
        if not (0.0 <= self.draft <= self.auto <= 1.0):
            raise ConfigError(f"thresholds must satisfy 0 <= draft <= auto <= 1 (got draft={self.draft}, auto={self.auto})")


@dataclass(frozen=True)
class ToneSettings:
    """The angry-tone trigger: on or off, the score above which it fires, profanity added to the built-in list."""

    enabled: bool = True
    threshold: float = DEFAULT_TONE_THRESHOLD
    profanity: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"triggers.angry_tone.threshold must be above 0 and at most 1, got {self.threshold}")


@dataclass(frozen=True)
class SlaSettings:
    """The SLA trigger: fires when the due time is at most `margin_minutes` away (or past)."""

    enabled: bool = True
    margin_minutes: float = DEFAULT_SLA_MARGIN_MINUTES
    hours: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(dict(DEFAULT_SLA_HOURS)))

    def __post_init__(self) -> None:
        if self.margin_minutes < 0:
            raise ConfigError(f"triggers.sla.margin_minutes must be 0 or more, got {self.margin_minutes}")
        for priority, hours in self.hours.items():
            if not hours > 0:
                raise ConfigError(f"triggers.sla.hours.{priority} must be more than 0, got {hours}")


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 3000
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    escalation_channel: str | None = None
    manager_user_ids: tuple[str, ...] = ()
    manager_group: str | None = None  # a Slack user group ID whose members are managers too
    # Slack allows about one message per second per channel, with short bursts (chat.postMessage's special tier).
    posts_per_second: float = 1.0
    post_burst: int = 4
    # How often to ask the helpdesk for tickets updated since the last check (0 turns it off).
    reconcile_seconds: float = 300.0
    # The helpdesk's documented limits (Zendesk: 400 requests a minute on Growth and Professional plans, and
    # 100 ticket updates a minute); 0 turns pacing off.
    helpdesk_requests_per_minute: float = 400.0
    helpdesk_updates_per_minute: float = 100.0
    helpdesk: str = "zendesk"
    zendesk_subdomain: str | None = None
    zendesk_email: str | None = None
    zendesk_api_token: str | None = None
    zendesk_api_url: str | None = None
    zendesk_webhook_secret: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    database_path: str = "./seam.db"
    knowledge_path: str | None = None
    config_path: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    # Per high-risk topic overrides of the thresholds; a topic that sets one value inherits the other.
    topic_thresholds: Mapping[str, Thresholds] = field(default_factory=dict)
    human_enabled: bool = True
    human_phrases: tuple[str, ...] = ()
    high_risk_enabled: bool = True
    high_risk_topics: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_HIGH_RISK_TOPICS))
    tone: ToneSettings = field(default_factory=ToneSettings)
    sla: SlaSettings = field(default_factory=SlaSettings)
    repeat_enabled: bool = True
    repeat_limit: int = DEFAULT_REPEAT_LIMIT
    # Ticket types the AI never answers ([exclusions] rules, parsed by bot.exclusions.parse_rules).
    exclusions: tuple[Exclusion, ...] = ()
    resolve_status: str | None = "solved"
    approve_status: str | None = None
    webhook_tolerance_seconds: int = 300
    workers: int = 2

    @property
    def zendesk_base_url(self) -> str:
        if self.zendesk_api_url:
            return self.zendesk_api_url.rstrip("/")
        return f"https://{self.zendesk_subdomain}.zendesk.com"

    @property
    def zendesk_agent_url(self) -> str:
        """Where a person opens a ticket: the real subdomain even when the API is pointed elsewhere."""
        if self.zendesk_subdomain:
            return f"https://{self.zendesk_subdomain}.zendesk.com"
        return self.zendesk_base_url

    def require_for_serve(self) -> None:
        """Raise ConfigError naming the first variable `serve` cannot run without."""
        required = ["SLACK_BOT_TOKEN", "ESCALATION_CHANNEL"]
        if not self.slack_app_token:
            required.append("SLACK_SIGNING_SECRET")
        if self.helpdesk == "zendesk":
            required += ["ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN", "ZENDESK_WEBHOOK_SECRET"]
        missing = [name for name in required if not getattr(self, name.lower())]
        if missing:
            raise ConfigError(f"missing required environment variable {missing[0]}"
                              + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""))


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _port(raw: str | None) -> int:
    if raw is None or not raw.strip():
        return 3000
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"PORT must be a number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"PORT must be between 1 and 65535, got {port}")
    return port


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"SEAM_CONFIG file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"SEAM_CONFIG {path} is not valid TOML: {exc}") from None


def _number(table: Mapping, key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}.{key} must be a number, got {value!r}")
    return float(value)


def _table(data: Mapping, key: str, where: str, allowed: tuple[str, ...] | None = None) -> Mapping:
    """A sub-table of the document: {} when absent; a one-line ConfigError when it is not a table or has unknown keys."""
    value = data.get(key, {})
    name = f"{where}.{key}" if where else key
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a table, got {value!r}")
    if allowed is not None:
        unknown = [k for k in value if k not in allowed]
        if unknown:
            raise ConfigError(f"{name} has an unknown key {unknown[0]!r} (known: {', '.join(allowed)})")
    return value


def _flag(table: Mapping, key: str, where: str, default: bool = True) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key} must be true or false, got {value!r}")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return tuple(v for v in value if v.strip())


def _from_file(data: Mapping) -> dict:
    """Map the TOML document (docs/configuration.md) onto Settings fields."""
    out: dict = {}
    thresholds = _table(data, "thresholds", "")
    if thresholds:
        out["thresholds"] = Thresholds(
            auto=_number(thresholds, "auto", "thresholds", DEFAULT_AUTO_THRESHOLD),
            draft=_number(thresholds, "draft", "thresholds", DEFAULT_DRAFT_THRESHOLD),
        )
        out["topic_thresholds"] = _topic_thresholds(_table(thresholds, "topics", "thresholds"), out["thresholds"])
    slack = _table(data, "slack", "")
    if "manager_group" in slack:
        group = slack["manager_group"]
        if not isinstance(group, str) or not re.fullmatch(r"S[A-Z0-9]{2,}", group):
            raise ConfigError(f"slack.manager_group must be a Slack user group ID like S0123ABCD, got {group!r}")
        out["manager_group"] = group
    if "posts_per_second" in slack:
        rate = _number(slack, "posts_per_second", "slack", 1.0)
        if not 0 < rate <= 1000:
            raise ConfigError(f"slack.posts_per_second must be above 0 and at most 1000, got {rate}")
        out["posts_per_second"] = rate
    if "post_burst" in slack:
        burst = slack["post_burst"]
        if not isinstance(burst, int) or isinstance(burst, bool) or not 1 <= burst <= 50:
            raise ConfigError("slack.post_burst must be an integer between 1 and 50")
        out["post_burst"] = burst
    helpdesk = _table(data, "helpdesk", "")
    for key, field_name in (("requests_per_minute", "helpdesk_requests_per_minute"),
                            ("updates_per_minute", "helpdesk_updates_per_minute")):
        if key in helpdesk:
            limit = _number(helpdesk, key, "helpdesk", 0.0)
            if not 0 <= limit <= 100_000:
                raise ConfigError(f"helpdesk.{key} must be between 0 (no pacing) and 100000, got {limit}")
            out[field_name] = limit
    reconcile = _table(data, "reconcile", "")
    if "interval_seconds" in reconcile:
        interval = _number(reconcile, "interval_seconds", "reconcile", 300.0)
        if interval != 0 and not 10 <= interval <= 86400:
            raise ConfigError(f"reconcile.interval_seconds must be 0 (off) or between 10 and 86400, got {interval}")
        out["reconcile_seconds"] = interval
    triggers = _table(data, "triggers", "")
    human = _table(triggers, "asks_for_human", "triggers")
    out["human_enabled"] = _flag(human, "enabled", "triggers.asks_for_human")
    if "phrases" in human:
        out["human_phrases"] = _strings(human["phrases"], "triggers.asks_for_human.phrases")
    high_risk = _table(triggers, "high_risk", "triggers")
    out["high_risk_enabled"] = _flag(high_risk, "enabled", "triggers.high_risk")
    topics = dict(DEFAULT_HIGH_RISK_TOPICS) if high_risk.get("defaults", True) else {}
    for topic, words in high_risk.get("topics", {}).items():
        # Per-deployment additions extend a default topic rather than replace it: removing a safety net
        # should take an explicit `defaults = false`.
        topics[topic] = tuple(dict.fromkeys(topics.get(topic, ()) + _strings(words, f"triggers.high_risk.topics.{topic}")))
    out["high_risk_topics"] = topics
    out["tone"] = _tone(_table(triggers, "angry_tone", "triggers", ("enabled", "threshold", "profanity")))
    out["sla"] = _sla(_table(triggers, "sla", "triggers", ("enabled", "margin_minutes", "hours")))
    repeat = _table(triggers, "repeat", "triggers", ("enabled", "limit"))
    out["repeat_enabled"] = _flag(repeat, "enabled", "triggers.repeat")
    limit = repeat.get("limit", DEFAULT_REPEAT_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 20:
        raise ConfigError(f"triggers.repeat.limit must be an integer between 1 and 20, got {limit!r}")
    out["repeat_limit"] = limit
    exclusions = _table(data, "exclusions", "", ("rules",))
    if "rules" in exclusions:
        from bot.policy.exclusions import parse_rules  # bot.policy.exclusions imports this module for ConfigError

        rules = exclusions["rules"]
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise ConfigError("exclusions.rules must be a list of strings")
        out["exclusions"] = parse_rules(rules)
    for table in ("resolve", "approve"):
        section = data.get(table, {})
        if "status" in section:
            status = section["status"]
            if status not in ("", "open", "pending", "hold", "solved"):
                raise ConfigError(f"{table}.status must be one of open, pending, hold, solved or empty, got {status!r}")
            out[f"{table}_status"] = status or None
    server = data.get("server", {})
    if "workers" in server:
        workers = server["workers"]
        if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 32:
            raise ConfigError("server.workers must be an integer between 1 and 32")
        out["workers"] = workers
    return out


def _topic_thresholds(topics: Mapping, base: Thresholds) -> dict[str, Thresholds]:
    out: dict[str, Thresholds] = {}
    for topic, table in topics.items():
        where = f'thresholds.topics."{topic}"'
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table with auto and/or draft, got {table!r}")
        unknown = [k for k in table if k not in ("auto", "draft")]
        if unknown:
            raise ConfigError(f"{where} has an unknown key {unknown[0]!r} (known: auto, draft)")
        if not table:
            raise ConfigError(f"{where} must set auto and/or draft")
        auto, draft = _number(table, "auto", where, base.auto), _number(table, "draft", where, base.draft)
        try:
            out[topic] = Thresholds(auto=auto, draft=draft)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return out


def _tone(table: Mapping) -> ToneSettings:
    where = "triggers.angry_tone"
    profanity = _strings(table["profanity"], f"{where}.profanity") if "profanity" in table else ()
    return ToneSettings(enabled=_flag(table, "enabled", where),
                        threshold=_number(table, "threshold", where, DEFAULT_TONE_THRESHOLD),
                        profanity=tuple(p.strip().lower() for p in profanity))


def _sla(table: Mapping) -> SlaSettings:
    where = "triggers.sla"
    hours = dict(DEFAULT_SLA_HOURS)
    for priority in _table(table, "hours", where):
        hours[priority.strip().lower()] = _number(table["hours"], priority, f"{where}.hours", 0.0)
    return SlaSettings(enabled=_flag(table, "enabled", where),
                       margin_minutes=_number(table, "margin_minutes", where, DEFAULT_SLA_MARGIN_MINUTES),
                       hours=MappingProxyType(hours))


def load_settings(env: Mapping[str, str] | None = None, *, cwd: Path | None = None) -> Settings:
    """Read the environment and the TOML file into Settings; raise ConfigError on anything unusable."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()

    def get(name: str) -> str | None:
        return _blank_to_none(env.get(name))

    config_path = get("SEAM_CONFIG")
    file_values: dict = {}
    if config_path:
        file_values = _from_file(_read_toml(Path(config_path)))
    elif (cwd / "seam.toml").is_file():
        config_path = str(cwd / "seam.toml")
        file_values = _from_file(_read_toml(Path(config_path)))

    knowledge = get("KNOWLEDGE_PATH")
    if knowledge is None and (cwd / "knowledge").is_dir():
        knowledge = str(cwd / "knowledge")

    helpdesk = (get("HELPDESK") or "zendesk").lower()
    if helpdesk != "zendesk":
        raise ConfigError(f"HELPDESK={helpdesk!r} is not supported yet (supported: zendesk)")

    settings = Settings(
        host=get("HOST") or "0.0.0.0",
        port=_port(get("PORT")),
        slack_bot_token=get("SLACK_BOT_TOKEN"),
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_app_token=get("SLACK_APP_TOKEN"),
        slack_api_url=get("SLACK_API_URL") or DEFAULT_SLACK_API_URL,
        escalation_channel=get("ESCALATION_CHANNEL"),
        manager_user_ids=tuple(u.strip() for u in (get("MANAGER_USER_IDS") or "").split(",") if u.strip()),
        helpdesk=helpdesk,
        zendesk_subdomain=get("ZENDESK_SUBDOMAIN"),
        zendesk_email=get("ZENDESK_EMAIL"),
        zendesk_api_token=get("ZENDESK_API_TOKEN"),
        zendesk_api_url=get("ZENDESK_API_URL"),
        zendesk_webhook_secret=get("ZENDESK_WEBHOOK_SECRET"),
        openai_api_key=get("OPENAI_API_KEY"),
        openai_base_url=get("OPENAI_BASE_URL"),
        openai_model=get("OPENAI_MODEL") or "gpt-4o-mini",
        database_path=get("DATABASE_PATH") or "./seam.db",
        knowledge_path=knowledge,
        config_path=config_path,
    )
    return replace(settings, **file_values)
