"""Settings: the environment (see ../shared/CONTRACT.md) and the optional TOML file, read into one typed object.

Secrets and deployment facts come from the environment; tuning comes from the TOML file named by `SEAM_CONFIG`
(docs/configuration.md). Each part is read by the code it configures: the policy's tables by
`bot.policy.settings`, the helpdesk's variables by its folder under `bot/helpdesk/` (picked by `HELPDESK`
through `bot.helpdesk.registry`), the rest here. Unknown keys anywhere in the file are errors naming the known
ones. Values changed at run time live in the database and are layered on top by `bot.flows.controls`.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator, model_validator

from bot.errors import ConfigError
from bot.helpdesk import registry
from bot.policy.routing import Route, parse_when
from bot.policy.settings import ExclusionsTable, PolicySettings, ThresholdsTable
from bot.policy.triggers import TriggerSettings
from bot.schema import Duration, Table, validate

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


def off_or_between(seconds: float, low: float, high: float, words: str) -> float:
    """An interval of a periodic job: 0 (off) or within [low, high] seconds (`words` says the range)."""
    if seconds != 0 and not low <= seconds <= high:
        raise ValueError(f"must be 0 (off) or between {words}")
    return seconds


class SlackTable(Table):
    """`[slack]`: the manager user group, the pace of posts (Slack allows about one message per second per
    channel, with short bursts: chat.postMessage's special tier), and how often stale cards are caught up."""

    manager_group: StrictStr | None = None  # a Slack user group ID whose members are managers too
    posts_per_second: Annotated[StrictFloat, Field(gt=0, le=1000)] = 1.0
    post_burst: Annotated[StrictInt, Field(ge=1, le=50)] = 4
    # Card numbers and IBANs from tickets are shown masked in everything Seam posts to Slack ("[card ••••1111]"):
    # a Slack workspace is read by many more people than the helpdesk. False shows them as the customer wrote.
    mask_payment: StrictBool = True
    # How often cards left behind their escalation (a crash mid-action, an update Slack refused) are re-rendered
    # (bot.jobs.cards): seconds or a duration; 0 turns it off. The first round runs at start.
    card_sync_interval: Duration = 60.0

    @field_validator("card_sync_interval")
    @classmethod
    def _sensible_sync(cls, seconds: float) -> float:
        return off_or_between(seconds, 10, 3600, "10 seconds and 1 hour")

    @field_validator("manager_group")
    @classmethod
    def _group_id(cls, group: str | None) -> str | None:
        if group is not None and not re.fullmatch(r"S[A-Z0-9]{2,}", group):
            raise ValueError("must be a Slack user group ID like S0123ABCD")
        return group


class HelpdeskTable(Table):
    """`[helpdesk]`: requests and ticket updates a minute; unset keeps the helpdesk's documented limits, 0 turns
    pacing off."""

    requests_per_minute: Annotated[StrictFloat, Field(ge=0, le=100_000)] | None = None
    updates_per_minute: Annotated[StrictFloat, Field(ge=0, le=100_000)] | None = None


class ReconcileTable(Table):
    """`[reconcile]`: how often to ask the helpdesk for tickets updated since the last check (0 turns it off)."""

    interval_seconds: StrictFloat = 300.0

    @field_validator("interval_seconds")
    @classmethod
    def _sensible(cls, seconds: float) -> float:
        return off_or_between(seconds, 10, 86400, "10 and 86400")


class KnowledgeTable(Table):
    """`[knowledge]`: how often `serve` syncs help-centre articles and macros from the helpdesk — seconds, or a
    duration such as "30m", "6h", "1d"; 0 turns it off. The first sync runs soon after start."""

    sync_interval: Duration = 3600.0

    @field_validator("sync_interval")
    @classmethod
    def _sensible(cls, seconds: float) -> float:
        return off_or_between(seconds, 10, 7 * 86400, "10 seconds and 7 days")


class RetentionTable(Table):
    """`[retention]`: erase what Seam kept of a ticket's conversation (as `python -m bot forget` does) once nothing
    happened on it for `erase_after` — a duration such as "90d"; 0 (the default) keeps conversations, which the
    engine learns from."""

    erase_after: Duration = 0.0

    @field_validator("erase_after")
    @classmethod
    def _sensible(cls, seconds: float) -> float:
        return off_or_between(seconds, 86400, 10 * 365 * 86400, "1 day and 10 years")


class StatusTable(Table):
    """`[resolve]` / `[approve]`: the status a ticket gets; "" leaves it unchanged."""

    status: StrictStr | None = None


class ServerTable(Table):
    """`[server]`: background worker threads processing webhooks (jobs that failed before may hold all but one of
    them, so a new ticket always finds one), and when a job still running counts as stuck in `/healthz` — seconds
    or a duration such as "2m"."""

    workers: Annotated[StrictInt, Field(ge=1, le=32)] = 4
    stuck_after: Annotated[Duration, Field(ge=1, le=86400)] = 120.0


class QualityGuardTable(Table):
    """`[quality_guard]`: an automatic answer the customer reopens (replies to unsatisfied, or the ticket goes
    back to open) within `window_hours` counts as wrong. When more than `max_reopen_rate` of the last `last`
    judged automatic answers were reopened — with at least `min_answers` judged — Seam pauses automatic replies
    itself and says why in the escalation channel; a manager resumes. `enabled = false` keeps counting (stats,
    the export) but never pauses."""

    enabled: StrictBool = True
    # Hours, like the other durations of the file are in their unit (margin_minutes, interval_seconds); a
    # fraction is fine (0.5 is half an hour).
    window_hours: Annotated[StrictFloat, Field(gt=0, le=24 * 90)] = 48.0
    last: Annotated[StrictInt, Field(ge=1, le=10_000)] = 50
    max_reopen_rate: Annotated[StrictFloat, Field(ge=0, le=1)] = 0.15
    min_answers: Annotated[StrictInt, Field(ge=1, le=10_000)] = 20

    @model_validator(mode="after")
    def _enough_to_judge(self) -> QualityGuardTable:
        if self.min_answers > self.last:
            raise ValueError(f"min_answers ({self.min_answers}) cannot be more than last ({self.last}): the guard "
                             "would never have enough answers to judge")
        return self

    @property
    def window_seconds(self) -> float:
        return self.window_hours * 3600


# Slack ids a route may name: a channel (public C…, private G…), and people or user groups to mention.
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_MENTION = re.compile(r"^(?:<@[UW][A-Z0-9]{2,}>|<!subteam\^S[A-Z0-9]{2,}(?:\|[^<>|]*)?>|<!here>|<!channel>)$")


class RouteTable(Table):
    """`[[routes]]`: escalations matching `when` (one plain-language rule, or a list that must all hold;
    bot.policy.routing) go to `channel` and mention `mention`; the first matching route wins, the rest go to
    ESCALATION_CHANNEL. `page_manager` mentions the managers too; `notify_customer` and `response_time`
    override `[customer_notice]` for this route, and `keep_warm = false` keeps `[keep_warm]` updates off it."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=60)]
    when: StrictStr | list[StrictStr]
    channel: StrictStr
    mention: StrictStr | None = None
    page_manager: StrictBool = False
    notify_customer: StrictBool | None = None
    response_time: Duration | None = None
    keep_warm: StrictBool | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must not be blank")
        return name.strip()

    @field_validator("channel")
    @classmethod
    def _channel(cls, channel: str) -> str:
        if not _CHANNEL_ID.match(channel.strip()):
            raise ValueError("must be a Slack channel ID like C0123ABCD (the channel's details show it), not a name")
        return channel.strip()

    @field_validator("mention")
    @classmethod
    def _mention(cls, mention: str | None) -> str | None:
        if mention is None:
            return None
        parts = mention.split()
        if not parts or not all(_MENTION.match(p) for p in parts):
            raise ValueError('must be Slack mentions such as "<@U0123ABCD>" or "<!subteam^S0123ABCD>", '
                             "space-separated")
        return " ".join(parts)

    @field_validator("response_time")
    @classmethod
    def _positive(cls, seconds: float | None) -> float | None:
        if seconds is not None and not 0 < seconds <= 90 * 86400:
            raise ValueError("must be more than 0 and at most 90 days")
        return seconds


NOTICE_PLACEHOLDERS = ("name", "hours", "within")
DEFAULT_NOTICE = ("Hi {name}, thanks for your message. A member of our team has it and will get back to "
                  "you{within}.")


class CustomerNoticeTable(Table):
    """`[customer_notice]`: on escalate, a short public reply telling the customer a person will follow up
    (bot.flows.routes). `template` may use {name} (the requester's first name, or "there"), {hours} (the
    expected response time in words, "2 hours") and {within} (" within 2 hours", or nothing when no time is
    known). The time is a route's `response_time`, else `response_time` for the ticket's priority here."""

    enabled: StrictBool = False
    template: Annotated[StrictStr, Field(min_length=1, max_length=2000)] = DEFAULT_NOTICE
    notify_excluded: StrictBool = False
    response_time: dict[str, Duration] = Field(default_factory=dict)

    @field_validator("template")
    @classmethod
    def _placeholders(cls, template: str) -> str:
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        except ValueError as exc:
            raise ValueError(f"is not a valid template ({exc}); write a literal brace as {{{{ or }}}}") from None
        unknown = [f for f in fields if f not in NOTICE_PLACEHOLDERS]
        if unknown:
            raise ValueError(f"has an unknown placeholder {{{unknown[0]}}} (known: "
                             + ", ".join("{" + p + "}" for p in NOTICE_PLACEHOLDERS) + ")")
        if not template.strip():
            raise ValueError("must not be blank")
        return template

    @field_validator("response_time")
    @classmethod
    def _times(cls, times: dict[str, float]) -> dict[str, float]:
        for priority, seconds in times.items():
            if not 0 < seconds <= 90 * 86400:
                raise ValueError(f"{priority} must be more than 0 and at most 90 days")
        return {priority.strip().lower(): seconds for priority, seconds in times.items()}


# After the post (bot.flows.lifecycle): durations are seconds or "30s", "15m", "4h", "1d".
DAY = 86400.0
DEFAULT_RESPONSE_TARGETS = {"urgent": 3600.0, "high": 4 * 3600.0, "normal": DAY, "low": 2 * DAY}
DEFAULT_KEEP_WARM = "We're still on it — a member of our team will reply as soon as possible."


def _within(seconds: float, *, high: float, zero: bool = False) -> float:
    """`seconds` if more than 0 (or 0 itself, when `zero`) and at most `high`; else a ValueError saying so."""
    if (zero and seconds == 0) or 0 < seconds <= high:
        return seconds
    raise ValueError(f"must be {'between 0' if zero else 'more than 0'} and {'' if zero else 'at most '}"
                     f"{high / DAY:g} days")


class RemindersTable(Table):
    """`[reminders]`: an escalation nobody claimed `unclaimed_after` its post gets a reply in its thread pinging
    its route's mention; still unclaimed `escalate_after` the post, one pinging the managers (MANAGER_USER_IDS
    and `[slack] manager_group`). A claim stops both. `escalate_after = 0` never pages the managers."""

    enabled: StrictBool = True
    unclaimed_after: Duration = 1800.0
    escalate_after: Duration = 7200.0

    @field_validator("unclaimed_after")
    @classmethod
    def _unclaimed(cls, seconds: float) -> float:
        return _within(seconds, high=30 * DAY)

    @field_validator("escalate_after")
    @classmethod
    def _escalate(cls, seconds: float) -> float:
        return _within(seconds, high=30 * DAY, zero=True)

    @model_validator(mode="after")
    def _in_order(self) -> RemindersTable:
        if self.escalate_after and self.escalate_after <= self.unclaimed_after:
            raise ValueError(f"escalate_after ({self.escalate_after:g} s) must be later than unclaimed_after "
                             f"({self.unclaimed_after:g} s), or 0 to never page the managers")
        return self


class SlaWatchTable(Table):
    """`[sla_watch]`: for escalations not yet finished, the ticket's due time — the helpdesk's SLA (Zendesk: its
    SLA policy's next breach), else the ticket's own due time, else its creation plus `response_targets` for its
    priority. `warn_before` the due time the card turns red, a reply in its thread pings the owner (the route's
    mention when unclaimed); at the due time a breach is recorded (stats). A priority not listed keeps its
    default; a ticket without one counts as normal."""

    enabled: StrictBool = True
    warn_before: Duration = 1800.0
    response_targets: dict[str, Duration] = Field(default_factory=lambda: dict(DEFAULT_RESPONSE_TARGETS))

    @field_validator("warn_before")
    @classmethod
    def _warn(cls, seconds: float) -> float:
        return _within(seconds, high=7 * DAY, zero=True)

    @field_validator("response_targets")
    @classmethod
    def _targets(cls, targets: dict[str, float]) -> dict[str, float]:
        for priority, seconds in targets.items():
            try:
                _within(seconds, high=90 * DAY)
            except ValueError as exc:
                raise ValueError(f"{priority} {exc}") from None
        return {**DEFAULT_RESPONSE_TARGETS, **{p.strip().lower(): s for p, s in targets.items()}}

    def target(self, priority: str | None) -> float:
        """The response target for a priority, in seconds (no priority, or one not listed: normal's)."""
        targets = self.response_targets
        return targets.get((priority or "normal").lower(), targets.get("normal", DAY))


class KeepWarmTable(Table):
    """`[keep_warm]`: an escalated ticket still waiting on a person `after` its post (no public agent reply
    since the customer's last message, not solved) gets `template` as a public reply, then again every
    `every`, at most `max` times; an agent's reply or the ticket solved stops it. Off by default: it writes to
    customers. A route with `keep_warm = false` never gets it."""

    enabled: StrictBool = False
    after: Duration = 4 * 3600.0
    every: Duration = 4 * 3600.0
    max: Annotated[StrictInt, Field(ge=1, le=20)] = 2
    template: Annotated[StrictStr, Field(min_length=1, max_length=2000)] = DEFAULT_KEEP_WARM

    @field_validator("after", "every")
    @classmethod
    def _durations(cls, seconds: float) -> float:
        return _within(seconds, high=30 * DAY)

    @field_validator("template")
    @classmethod
    def _text(cls, template: str) -> str:
        if not template.strip():
            raise ValueError("must not be blank")
        return template.strip()


class FileConfig(Table):
    """The whole TOML file."""

    thresholds: ThresholdsTable = ThresholdsTable()
    triggers: TriggerSettings = TriggerSettings()
    exclusions: ExclusionsTable = ExclusionsTable()
    resolve: StatusTable = StatusTable(status="solved")
    approve: StatusTable = StatusTable()
    slack: SlackTable = SlackTable()
    helpdesk: HelpdeskTable = HelpdeskTable()
    reconcile: ReconcileTable = ReconcileTable()
    server: ServerTable = ServerTable()
    quality_guard: QualityGuardTable = QualityGuardTable()
    knowledge: KnowledgeTable = KnowledgeTable()
    routes: tuple[RouteTable, ...] = ()
    customer_notice: CustomerNoticeTable = CustomerNoticeTable()
    reminders: RemindersTable = RemindersTable()
    sla_watch: SlaWatchTable = SlaWatchTable()
    keep_warm: KeepWarmTable = KeepWarmTable()
    retention: RetentionTable = RetentionTable()


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
    # The adapter's own settings, read from its variables by its folder (bot/helpdesk/<name>/settings.py).
    helpdesk_settings: Any = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str = DEFAULT_OPENAI_MODEL
    # Optional semantic evidence (bot.engine.embeddings): off while the model is unset. The URL is the API root
    # up to /v1; the key may be None for a local server that needs none.
    embeddings_model: str | None = None
    embeddings_base_url: str = DEFAULT_OPENAI_BASE_URL
    embeddings_api_key: str | None = None
    database_path: str = "./seam.db"
    # The bearer token `GET /metrics` asks for (bot.flows.metrics); unset, serve has no /metrics.
    metrics_token: str | None = None
    knowledge_path: str | None = None
    # Resolved past tickets (ticket JSONL, what `simulate --history` reads) the local engine learns from and
    # calibrates on in serve.
    history_path: str | None = None
    config_path: str | None = None
    policy: PolicySettings = field(default_factory=PolicySettings)
    slack: SlackTable = field(default_factory=SlackTable)
    helpdesk_limits: HelpdeskTable = field(default_factory=HelpdeskTable)
    reconcile_seconds: float = 300.0
    resolve_status: str | None = "solved"
    approve_status: str | None = None
    workers: int = 4
    stuck_after_seconds: float = 120.0  # [server] stuck_after: /healthz names jobs running longer than this
    quality_guard: QualityGuardTable = field(default_factory=QualityGuardTable)
    webhook_tolerance_seconds: int = 300
    knowledge_sync_seconds: float = 3600.0  # [knowledge] sync_interval; 0: serve never syncs
    routes: tuple[Route, ...] = ()  # [[routes]], understood (bot.policy.routing); first match wins
    customer_notice: CustomerNoticeTable = field(default_factory=CustomerNoticeTable)
    reminders: RemindersTable = field(default_factory=RemindersTable)
    sla_watch: SlaWatchTable = field(default_factory=SlaWatchTable)
    keep_warm: KeepWarmTable = field(default_factory=KeepWarmTable)
    retention: RetentionTable = field(default_factory=RetentionTable)

    def require_for_serve(self) -> None:
        """Raise ConfigError naming the first variable `serve` cannot run without."""
        required = ["SLACK_BOT_TOKEN", "ESCALATION_CHANNEL"]
        if not self.slack_app_token:
            required.append("SLACK_SIGNING_SECRET")
        missing = [name for name in required if not getattr(self, name.lower())]
        if self.helpdesk_settings is not None:
            missing += self.helpdesk_settings.missing()
        if missing:
            raise ConfigError(f"missing required environment variable {missing[0]}"
                              + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""))
        if self.database_path.strip() == ":memory:":
            # SQLite gives every connection its own empty database there, and serve's threads each have one.
            raise ConfigError("DATABASE_PATH :memory: is not a file: serve keeps its queue and escalations in a "
                              "SQLite file its threads share (e.g. ./seam.db)")


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _port(raw: str | None) -> int:
    if raw is None:
        return 3000
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"PORT must be a number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"PORT must be between 1 and 65535, got {port}")
    return port


def read_file(path: Path) -> FileConfig:
    """The TOML file, validated; ConfigError (one line naming the key, or the file) on anything unusable."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"SEAM_CONFIG file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"SEAM_CONFIG {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"SEAM_CONFIG {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:  # a folder, or a file this user may not read
        raise ConfigError(f"SEAM_CONFIG {path} cannot be read: {exc.strerror or exc}") from None
    return validate(FileConfig, data, where=str(path))


def read_routes(tables: tuple[RouteTable, ...]) -> tuple[Route, ...]:
    """`[[routes]]` understood: each `when` parsed (a rule Seam cannot read is a one-line error naming the route
    and the rule), names unique."""
    routes: list[Route] = []
    for index, table in enumerate(tables):
        if any(r.name.lower() == table.name.lower() for r in routes):
            raise ConfigError(f"routes[{index}]: the name {table.name!r} is used by an earlier route; names are unique")
        routes.append(Route(name=table.name, when=parse_when(table.when, where=f"routes[{index}] ({table.name}).when"),
                            channel=table.channel, mention=table.mention, page_manager=table.page_manager,
                            notify_customer=table.notify_customer, response_time=table.response_time,
                            keep_warm=table.keep_warm))
    return tuple(routes)


def _status(table: StatusTable, which: str, statuses: tuple[str, ...]) -> str | None:
    if table.status and table.status not in statuses:
        raise ConfigError(f"{which}.status must be one of {', '.join(statuses)} or empty, got {table.status!r}")
    return table.status or None


def _config_path(env: Mapping[str, str], cwd: Path) -> str | None:
    """The TOML file to read: SEAM_CONFIG, else ./seam.toml when there is one; None when neither."""
    path = _blank_to_none(env.get("SEAM_CONFIG"))
    if path is None and (cwd / "seam.toml").is_file():
        path = str(cwd / "seam.toml")
    return path


def helpdesk_limits(env: Mapping[str, str] | None = None, *, cwd: Path | None = None) -> HelpdeskTable:
    """`[helpdesk]` of the TOML file load_settings reads (the whole file validated as it does), without the
    variables serve needs: what `import HELPDESK --from-api` paces itself by. ConfigError on anything unusable."""
    env = os.environ if env is None else env
    config_path = _config_path(env, cwd or Path.cwd())
    return read_file(Path(config_path)).helpdesk if config_path else HelpdeskTable()


def load_settings(env: Mapping[str, str] | None = None, *, cwd: Path | None = None) -> Settings:
    """Read the environment and the TOML file into Settings; raise ConfigError on anything unusable."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()

    def get(name: str) -> str | None:
        return _blank_to_none(env.get(name))

    config_path = _config_path(env, cwd)
    file = read_file(Path(config_path)) if config_path else FileConfig()

    knowledge = get("KNOWLEDGE_PATH")
    if knowledge is None and (cwd / "knowledge").is_dir():
        knowledge = str(cwd / "knowledge")
    history = get("HISTORY_PATH")
    if history is None and (cwd / "history.jsonl").is_file():
        history = str(cwd / "history.jsonl")

    helpdesk = registry.plugin(get("HELPDESK") or "zendesk")
    settings = Settings(
        host=get("HOST") or "0.0.0.0",
        port=_port(get("PORT")),
        slack_bot_token=get("SLACK_BOT_TOKEN"),
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_app_token=get("SLACK_APP_TOKEN"),
        slack_api_url=get("SLACK_API_URL") or DEFAULT_SLACK_API_URL,
        escalation_channel=get("ESCALATION_CHANNEL"),
        manager_user_ids=tuple(u.strip() for u in (get("MANAGER_USER_IDS") or "").split(",") if u.strip()),
        helpdesk=helpdesk.name,
        helpdesk_settings=helpdesk.read_settings(get),
        openai_api_key=get("OPENAI_API_KEY"),
        openai_base_url=get("OPENAI_BASE_URL"),
        openai_model=get("OPENAI_MODEL") or DEFAULT_OPENAI_MODEL,
        embeddings_model=get("EMBEDDINGS_MODEL"),
        embeddings_base_url=get("EMBEDDINGS_BASE_URL") or get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL,
        # Set but empty means "send no key" (a local server), where unset falls back to OpenAI's key.
        embeddings_api_key=(get("EMBEDDINGS_API_KEY") if env.get("EMBEDDINGS_API_KEY") is not None
                            else get("OPENAI_API_KEY")),
        database_path=get("DATABASE_PATH") or "./seam.db",
        metrics_token=get("METRICS_TOKEN"),
        knowledge_path=knowledge,
        history_path=history,
        config_path=config_path,
    )
    return replace(
        settings,
        policy=PolicySettings.from_tables(thresholds=file.thresholds, triggers=file.triggers,
                                          exclusions=file.exclusions),
        slack=file.slack, helpdesk_limits=file.helpdesk, reconcile_seconds=file.reconcile.interval_seconds,
        resolve_status=_status(file.resolve, "resolve", helpdesk.statuses),
        approve_status=_status(file.approve, "approve", helpdesk.statuses),
        workers=file.server.workers, stuck_after_seconds=file.server.stuck_after, quality_guard=file.quality_guard,
        knowledge_sync_seconds=file.knowledge.sync_interval,
        routes=read_routes(file.routes), customer_notice=file.customer_notice,
        reminders=file.reminders, sla_watch=file.sla_watch, keep_warm=file.keep_warm, retention=file.retention,
    )
