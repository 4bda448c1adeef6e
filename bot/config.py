"""Settings: the environment (see ../shared/CONTRACT.md) and the optional TOML file, read into one typed object.

Secrets and deployment facts come from the environment; tuning (thresholds, trigger phrases, topic keywords,
what status a resolved ticket gets) comes from the TOML file named by `SEAM_CONFIG`. Values changed at run time
live in the database (see `bot.store`) and are layered on top by the caller, not here.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_SLACK_API_URL = "https://slack.com/api/"

# A deliberately cautious default: nothing is sent automatically unless the engine is very sure, and a human
# sees a draft down to a moderate score. Chosen on the bundled sample's sweep (docs/benchmarks.md).
DEFAULT_AUTO_THRESHOLD = 0.85
DEFAULT_DRAFT_THRESHOLD = 0.5

# Keywords: whole words; `word*` matches any ending; a lone `*` stands for any one word (bot/triggers.py).
DEFAULT_HIGH_RISK_TOPICS: dict[str, tuple[str, ...]] = {
    "refund": (
        "refund*", "reimburs*", "money back", "restitution*", "rebate*", "compensation*",
        "reembolso*", "rembours*", "rückerstattung*",
    ),
    "billing dispute": (
        "chargeback*", "charge back", "disput*", "charged twice", "double charged", "overcharg*",
        "unauthori* charge*", "did not authori*", "didn't authori*", "fraud*", "payment error*", "payment issue*",
        "payment problem*", "error* with * payment*", "issue* with * payment*", "problem* with * payment*",
        "trouble* with * payment*",
    ),
    "legal": ("lawyer*", "attorney*", "legal action", "sue you", "lawsuit*", "court", "gdpr", "small claims"),
    "account security": (
        "hacked", "compromised", "someone logged into", "stolen account", "account takeover", "phishing",
        "unauthori* access", "2fa", "two-factor", "identity theft",
    ),
    "account deletion": (
        "delet* * * account*", "clos* * * account*", "remov* * * account*", "terminat* * * account*",
        "cancel* * * account*", "removal of * * account*", "termination of * * account*",
        "deletion of * * account*", "cancellation of * * account*", "account cancel*", "account remov*",
        "account delet*", "account terminat*", "delete my data", "erase my data",
        "right to be forgotten",
    ),
}


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
class Settings:
    host: str = "0.0.0.0"
    port: int = 3000
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    escalation_channel: str | None = None
    manager_user_ids: tuple[str, ...] = ()
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
    human_phrases: tuple[str, ...] = ()
    high_risk_topics: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_HIGH_RISK_TOPICS))
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


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return tuple(v for v in value if v.strip())


def _from_file(data: Mapping) -> dict:
    """Map the TOML document (docs/configuration.md) onto Settings fields."""
    out: dict = {}
    thresholds = data.get("thresholds", {})
    if thresholds:
        out["thresholds"] = Thresholds(
            auto=_number(thresholds, "auto", "thresholds", DEFAULT_AUTO_THRESHOLD),
            draft=_number(thresholds, "draft", "thresholds", DEFAULT_DRAFT_THRESHOLD),
        )
    triggers = data.get("triggers", {})
    human = triggers.get("asks_for_human", {})
    if "phrases" in human:
        out["human_phrases"] = _strings(human["phrases"], "triggers.asks_for_human.phrases")
    high_risk = triggers.get("high_risk", {})
    topics = dict(DEFAULT_HIGH_RISK_TOPICS) if high_risk.get("defaults", True) else {}
    for topic, words in high_risk.get("topics", {}).items():
        # Per-deployment additions extend a default topic rather than replace it: removing a safety net
        # should take an explicit `defaults = false`.
        topics[topic] = tuple(dict.fromkeys(topics.get(topic, ()) + _strings(words, f"triggers.high_risk.topics.{topic}")))
    out["high_risk_topics"] = topics
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
