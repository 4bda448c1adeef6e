"""Manager controls: what `/escalation` understands, the run-time settings it changes, and the figures behind
`stats` and `advise`.

Run-time settings live in the database and win over the TOML file: the global thresholds, per-topic
thresholds, the pause switch and extra exclusions. `current_policy()` layers them on the file's policy
settings; the pipeline decides with that. Every change is validated, audited and comes back with the sentence to
announce in the escalation channel. Nothing here talks to Slack except through the injected `members` lookup
for a manager user group.
"""

from __future__ import annotations

import logging
import shlex
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.config import Settings
from bot.engine.local import MIN_CALIBRATION_EXAMPLES
from bot.errors import ConfigError
from bot.flows import routes
from bot.models import EscalationState
from bot.policy import exclusions, thresholds
from bot.policy.decide import Policy
from bot.policy.settings import PolicySettings, Thresholds
from bot.slack.blocks import QueueLine, escape
from bot.store import OWNED_STATES, Store
from bot.text import duration, iso, parse_time, seconds_since, utcnow

log = logging.getLogger(__name__)

PAUSED_KEY = "paused"
# What the quality guard saw when it paused automation (bot.flows.quality), for the App Home's notice.
QUALITY_PAUSE_KEY = "quality_guard_pause"
MAX_RULE_CHARS = 300  # what a person can read in the exclusions list; the rule is stored exactly as checked
THRESHOLDS_KEY = "thresholds"
TOPIC_THRESHOLDS_KEY = "topic_thresholds"
GROUP_CACHE_SECONDS = 300
# How long a check waits for the manager group's members from Slack: the check runs before a slash command's
# answer and a form's, which Slack waits 3 seconds for. A slower lookup goes on in the background.
GROUP_WAIT_SECONDS = 1.0

HELP = """*`/escalation`* — see and tune where the AI stops and a person starts.
• `thresholds` — the current `auto` and `draft` thresholds, per-topic overrides, and whether automation is paused
• `stats [7d|30d]` — tickets seen, resolved / drafted / escalated, approve / edit / reject rates, escalations
  answered in the helpdesk instead, time to claim and send, automatic answers and how many were reopened
• `advise [target]` — the `auto` threshold agents' feedback supports for a target wrong-answer rate (default 5%)
• `exclusions` — ticket types the AI never touches
• `routes` — which channel each kind of escalation goes to, whom it mentions, and whether the customer is told
Managers only:
• `set auto|draft VALUE` and `set auto|draft VALUE for TOPIC` — change a threshold (0 ≤ draft ≤ auto ≤ 1)
• `pause` / `resume` — stop and restart automatic replies (while paused everything is drafted or escalated);
  `resume` also lifts a pause by the quality guard
• `exclude "plain-language rule"` (e.g. `exclude "tickets tagged vip"`) and `unexclude N`"""


@dataclass(frozen=True)
class Reply:
    text: str
    announce: str | None = None  # posted in the escalation channel when a setting changed


# Stored exclusions already logged as unreadable (by id): the pipeline reads the policy for every ticket, and one
# warning per rule and process is enough.
_logged_unreadable: set[int] = set()
_logged_lock = threading.Lock()


def stored_exclusions(store: Store) -> tuple[list[exclusions.Exclusion], list[tuple[dict, str]]]:
    """Managers' stored exclusions: the ones that parse, and the ones that do not (row, why). A rule written by an
    older version, or straight into the table, must never stop the pipeline: it is skipped, logged once and shown
    to managers (`exclusions`, the App Home) until someone removes it."""
    readable: list[exclusions.Exclusion] = []
    unreadable: list[tuple[dict, str]] = []
    for row in store.exclusions():
        try:
            readable.append(exclusions.parse_rule(row["rule"]))
        except ConfigError as exc:
            unreadable.append((row, str(exc)))
            with _logged_lock:
                first = row["id"] not in _logged_unreadable
                _logged_unreadable.add(row["id"])
            if first:
                log.warning("exclusion %s cannot be read and is skipped (remove it with `/escalation unexclude "
                            "%s`): %s", row["id"], row["id"], exc)
    return readable, unreadable


def current_policy(store: Store, base: PolicySettings) -> Policy:
    """The file's policy with the database's run-time changes on top (they win, and survive restarts)."""
    stored = store.get_setting(THRESHOLDS_KEY)
    topics = {**base.topic_thresholds,
              **{t: Thresholds(**v) for t, v in (store.get_setting(TOPIC_THRESHOLDS_KEY) or {}).items()}}
    extra = tuple(stored_exclusions(store)[0])
    settings = base.model_copy(update={"thresholds": Thresholds(**stored) if stored else base.thresholds,
                                       "topic_thresholds": topics, "exclusions": base.exclusions + extra})
    return Policy(settings=settings, paused=bool(store.get_setting(PAUSED_KEY, False)))


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    # + 0.0 turns "-0" into 0.0, which reads "0.00" rather than "-0.00".
    return value + 0.0 if 0.0 <= value <= 1.0 else None


def _changed(user_id: str, which: str, old: float, new: float, topic: str | None, *, note: str = "") -> Reply:
    verb = "raised" if new > old else "lowered" if new < old else "kept"
    # What a manager typed is shown, never parsed: `<!channel>` in a topic must not notify the channel.
    scope = f" for {escape(topic)}" if topic else ""
    return Reply(f"Done: {which}{scope} is now {new:.2f} (was {old:.2f}).{note}",
                 announce=f"<@{user_id}> {verb} {which}{scope} from {old:.2f} to {new:.2f}")


def rate_text(value: float) -> str:
    """A rate as a percentage without needless decimals: 18%, 12.5%."""
    return f"{value * 100:.1f}".removesuffix(".0") + "%"


def window_text(hours: float) -> str:
    """The quality guard's window as people say it: 48 h, 30 min, 7.2 s."""
    if hours >= 1:
        return f"{round(hours, 1):g} h"
    if hours * 60 >= 1:
        return f"{round(hours * 60, 1):g} min"
    return f"{round(hours * 3600, 1):g} s"


def quality_sentence(figures: dict) -> str:
    """Why the quality guard paused automation, from the figures it recorded."""
    return (f"{figures['reopened']} of the last {figures['judged']} automatic answers ({rate_text(figures['rate'])}) "
            f"were reopened within {window_text(figures['window_hours'])} (limit {rate_text(figures['limit'])})")


def _target(raw: str) -> float | None:
    """A wrong-answer rate: `0.02` or `2%`, strictly between 0 and 1."""
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        return None
    return value if 0 < value < 1 else None


class Controls:
    """The `/escalation` command and the App Home's settings, for one deployment."""

    def __init__(self, *, store: Store, settings: Settings,
                 members: Callable[[str], list[str]] | None = None,
                 alert: Callable[[], str | None] | None = None,
                 uncovered_share: Callable[[], tuple[float, bool] | None] | None = None,
                 plain_score: Callable[[], bool] | None = None) -> None:
        self.store = store
        self.settings = settings
        self._members = members
        self._alert = alert  # Seam's own health, for managers (bot.flows.health.Health.alert)
        # The share of uncovered questions the local engine's confidences assume now, and whether reopened
        # automatic answers set it (bot.engine.local); None from an engine without one.
        self._uncovered_share = uncovered_share
        # Whether the local engine has too little history to calibrate on, and scores plainly (bot.engine.wording).
        self._plain_score = plain_score
        self._group: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._group_lock = threading.Lock()
        self._group_lookup: threading.Thread | None = None  # the lookup of the group's members under way
        # A change reads the settings, checks the pair (draft ≤ auto) and writes it back: two managers at once would
        # each write a pair missing the other's change, and both be told "Done". serve is one process.
        self._changing = threading.Lock()

    # -- who may change things ------------------------------------------------------------------------------

    def is_manager(self, user_id: str) -> bool:
        if user_id in self.settings.manager_user_ids:
            return True
        group = self.settings.slack.manager_group
        if not group or self._members is None:
            return False
        with self._group_lock:
            lookup = self._group_lookup
            if lookup is None and time.monotonic() - self._group[0] > GROUP_CACHE_SECONDS:
                lookup = self._group_lookup = threading.Thread(target=self._look_up_group, args=(group,),
                                                               name="seam-manager-group", daemon=True)
                lookup.start()
        if lookup is not None:
            lookup.join(GROUP_WAIT_SECONDS)
        with self._group_lock:
            return user_id in self._group[1]

    def _look_up_group(self, group: str) -> None:
        try:
            members = frozenset(self._members(group))
            with self._group_lock:
                self._group = (time.monotonic(), members)
        except Exception:  # Slack unreachable: keep the last known members rather than lock managers out
            pass
        finally:
            with self._group_lock:
                self._group_lookup = None

    def refusal(self, user_id: str) -> str | None:
        """Why this user may not change settings now (not a manager, or the manager group not checkable), or None."""
        refused = self._refuse(user_id)
        return refused.text if refused else None

    def _refuse(self, user_id: str) -> Reply | None:
        if self.is_manager(user_id):
            return None
        if self.settings.slack.manager_group and self._members is not None and not self._group[0]:
            return Reply("Seam could not check the manager user group with Slack just now, so nothing changed; "
                         "try again in a moment.")
        return Reply("Only managers can change Seam's settings (MANAGER_USER_IDS or the manager user group); "
                     "you can still use `thresholds`, `stats`, `advise` and `exclusions`.")

    # -- the command ----------------------------------------------------------------------------------------

    def handle(self, user_id: str, text: str) -> Reply:
        try:
            words = shlex.split(text.strip())
        except ValueError:
            words = text.strip().split()
        if not words or words[0].lower() in ("help", "?"):
            return Reply(HELP)
        verb, args = words[0].lower(), words[1:]
        if verb == "thresholds":
            return Reply(self.thresholds_text())
        if verb == "stats":
            days = {"7d": 7, "30d": 30, "": 7}.get(args[0].lower() if args else "")
            if days is None:
                return Reply("Use `stats`, `stats 7d` or `stats 30d`.")
            return Reply(self.stats_text(days=days))
        if verb == "advise":
            target = _target(args[0]) if args else thresholds.DEFAULT_TARGET
            if target is None:
                return Reply("The target is a wrong-answer rate between 0 and 1 (e.g. `advise 0.02` or "
                             "`advise 2%`).")
            return Reply(self.advise_text(target=target))
        if verb == "exclusions":
            return Reply(self.exclusions_text())
        if verb == "routes":
            return Reply(routes.routes_text(self.settings))
        if verb in ("set", "pause", "resume", "exclude", "unexclude"):
            refusal = self._refuse(user_id)
            if refusal:
                return refusal
            if verb == "set":
                return self.set_threshold(user_id, args)
            if verb in ("pause", "resume"):
                return self.set_paused(user_id, paused=verb == "pause")
            if verb == "exclude":
                return self.exclude(user_id, " ".join(args))
            if len(args) != 1:
                return Reply("Say which exclusion to remove, by its number: `/escalation unexclude 2` (one at a time; "
                             "`/escalation exclusions` lists the numbers).")
            return self.unexclude(user_id, args[0])
        return Reply(f"I don't know `{escape(verb[:40])}`.\n\n{HELP}")

    # -- thresholds and pause -------------------------------------------------------------------------------

    def thresholds_text(self) -> str:
        policy = self.policy()
        settings = policy.settings
        by_guard = " by the quality guard" if policy.paused and self.quality_pause() is not None else ""
        lines = [f"*auto* {settings.thresholds.auto:.2f} · *draft* {settings.thresholds.draft:.2f}"
                 + (f" · :double_vertical_bar: *automation is paused*{by_guard}" if policy.paused
                    else " · automation is on")]
        for topic, value in sorted(settings.topic_thresholds.items()):
            lines.append(f"• for {escape(topic)}: auto {value.auto:.2f}, draft {value.draft:.2f}")
        return "\n".join(lines)

    def set_threshold(self, user_id: str, args: list[str]) -> Reply:
        with self._changing:
            return self._set_threshold(user_id, args)

    def _set_threshold(self, user_id: str, args: list[str]) -> Reply:
        usage = "Use `set auto VALUE`, `set draft VALUE` or `set auto VALUE for TOPIC` (VALUE between 0 and 1)."
        if len(args) < 2 or args[0].lower() not in ("auto", "draft") or (len(args) > 2 and (
                len(args) < 4 or args[2].lower() != "for")):
            return Reply(usage)
        which, value = args[0].lower(), _number(args[1])
        if value is None:
            return Reply(f"`{escape(args[1][:20])}` is not a number between 0 and 1. {usage}")
        topic = " ".join(args[3:]).strip() if len(args) > 3 else None
        if topic == "":  # `for ""`: no topic named, and not a change of the global threshold either
            return Reply(usage)
        settings = self.policy().settings
        note = ""
        if topic:
            # A topic is matched exactly when tickets are decided: "Billing Dispute" would be stored beside
            # "billing dispute" and never apply. A high-risk topic's name is taken as configured, whatever its case.
            named = settings.triggers.high_risk.topics
            topic = next((name for name in named if name.casefold() == topic.casefold()), topic)
            if topic not in named:
                listed = ", ".join(sorted(named)) or "none configured"
                note = (f" No high-risk topic is named {escape(topic)} (they are: {escape(listed)}), so this applies "
                        f"only to tickets whose answer comes from a macro or article of that id, or that the OpenAI "
                        f"engine files under that topic.")
        current = settings.topic_thresholds.get(topic, settings.thresholds) if topic else settings.thresholds
        proposed = {"auto": current.auto, "draft": current.draft, which: value}
        if proposed["draft"] > proposed["auto"]:
            return Reply(f"Nothing changed: draft ({proposed['draft']:.2f}) must not be above auto "
                         f"({proposed['auto']:.2f}).")
        if topic:
            stored = self.store.get_setting(TOPIC_THRESHOLDS_KEY) or {}
            stored[topic] = proposed
            self.store.set_setting(TOPIC_THRESHOLDS_KEY, stored, actor=user_id)
        else:
            self.store.set_setting(THRESHOLDS_KEY, proposed, actor=user_id)
        return _changed(user_id, which, getattr(current, which), value, topic, note=note)

    def set_thresholds(self, user_id: str, raw: dict[str, str]) -> tuple[dict[str, str], list[Reply]]:
        """Both global thresholds at once (the App Home's form): errors by field, or the changes made."""
        refusal = self._refuse(user_id)
        if refusal:
            return {"auto": "Only managers can change the thresholds."}, []
        values = {key: _number(raw.get(key, "").strip()) for key in ("auto", "draft")}
        errors = {key: "A number between 0 and 1, like 0.85" for key, value in values.items() if value is None}
        if errors:
            return errors, []
        if values["draft"] > values["auto"]:
            return {"draft": "draft must not be above auto"}, []
        with self._changing:
            current = self.policy().thresholds
            self.store.set_setting(THRESHOLDS_KEY, values, actor=user_id)
        return {}, [_changed(user_id, key, getattr(current, key), values[key], None)
                    for key in ("auto", "draft") if values[key] != getattr(current, key)]

    def policy(self) -> Policy:
        """The policy in force: the file's, with managers' run-time changes on top."""
        return current_policy(self.store, self.settings.policy)

    def set_paused(self, user_id: str, *, paused: bool) -> Reply:
        if self.policy().paused == paused:
            return Reply(f"Nothing changed: automation is already {'paused' if paused else 'on'}.")
        by_guard = self.quality_pause() is not None
        # Switching automation back on also restarts the quality guard's count (bot.flows.quality): only answers
        # made from now on are judged, so the old reopens that tripped it cannot trip it again at once.
        self.store.set_setting(PAUSED_KEY, paused, actor=user_id)
        if paused:
            return Reply("Paused: nothing is answered automatically; every ticket is drafted or escalated.",
                         announce=f"<@{user_id}> paused automatic replies: every ticket now goes to a person")
        restart = (" The quality guard starts counting afresh: only automatic answers from now on are judged."
                   if by_guard else "")
        return Reply("Resumed: confident tickets are answered automatically again." + restart,
                     announce=f"<@{user_id}> resumed automatic replies")

    def quality_pause(self) -> dict | None:
        """The figures the quality guard paused automation on, while that pause lasts; None otherwise (running,
        or paused by a manager)."""
        paused = self.store.setting_record(PAUSED_KEY)
        if not paused or not paused["value"] or paused["updated_by"] != "seam":
            return None
        return self.store.get_setting(QUALITY_PAUSE_KEY)

    def quality_notice(self) -> str | None:
        """The App Home's notice while the quality guard holds automation paused."""
        figures = self.quality_pause()
        if figures is None:
            return None
        tickets = figures.get("tickets") or []
        shown = ", ".join(f"#{t}" for t in tickets[:10]) + (f" and {len(tickets) - 10} more" if len(tickets) > 10
                                                            else "")
        return (f":warning: *The quality guard paused automatic replies* at {figures['at'][:16].replace('T', ' ')} "
                f"UTC: {quality_sentence(figures)}. Every ticket is drafted or escalated until a manager checks "
                "those answers and resumes (`/escalation resume`)." + (f" Reopened: {shown}." if shown else ""))

    def home_notice(self, *, manager: bool) -> str | None:
        """What the App Home says first: the quality guard's pause, for everyone; for managers also what needs
        them — stored exclusions that cannot be read, and Seam's health alert (auth failures, jobs dying)."""
        notices = [self.quality_notice()]
        if manager:
            unreadable = stored_exclusions(self.store)[1]
            if unreadable:
                rules = "; ".join(f"#{row['id']} “{row['rule']}”" for row, _ in unreadable)
                notices.append(f":warning: *{len(unreadable)} exclusion rule{'s' if len(unreadable) > 1 else ''} "
                               f"cannot be read and {'are' if len(unreadable) > 1 else 'is'} skipped*: {rules}. "
                               f"Remove {'each' if len(unreadable) > 1 else 'it'} with `/escalation unexclude "
                               f"{unreadable[0][0]['id']}` and add it again in a form `/escalation exclude` accepts.")
            if self._alert is not None:
                notices.append(self._alert())
        return "\n\n".join(n for n in notices if n) or None

    # -- exclusions -----------------------------------------------------------------------------------------

    def exclusions_text(self) -> str:
        lines = [f"• from the config file: {escape(e.text)}" for e in self.settings.policy.exclusions]
        unreadable = {row["id"]: why for row, why in stored_exclusions(self.store)[1]}
        lines += [f"• *{row['id']}.* {escape(row['rule'])} (added by <@{row['created_by']}>)"
                  + (f" — :warning: cannot be read, so it is skipped ({unreadable[row['id']]}); remove it with "
                     f"`/escalation unexclude {row['id']}`" if row["id"] in unreadable else "")
                  for row in self.store.exclusions()]
        return "\n".join(["*Ticket types the AI never touches*", *lines]) if lines else (
            "No exclusions yet. Add one with `/escalation exclude \"tickets tagged vip\"`.")

    def exclude(self, user_id: str, rule: str) -> Reply:
        rule = rule.strip().strip('"“”').strip()
        try:
            exclusions.parse_rule(rule)
        except ConfigError as exc:
            return Reply(f"Nothing changed: {escape(str(exc))}")
        if not rule:
            return Reply('Say what to exclude, e.g. `/escalation exclude "anything about chargebacks"`.')
        if len(rule) > MAX_RULE_CHARS:
            return Reply(f"Nothing changed: a rule is at most {MAX_RULE_CHARS} characters; this one has {len(rule)}.")
        row_id = self.store.add_exclusion(rule, actor=user_id)
        shown = escape(rule)
        return Reply(f"Added exclusion {row_id}: {shown}",
                     announce=f"<@{user_id}> excluded from automation: {shown} (#{row_id})")

    def unexclude(self, user_id: str, raw: str) -> Reply:
        rows = {str(r["id"]): r for r in self.store.exclusions()}
        if raw.lstrip("#") not in rows:
            return Reply(f"There is no exclusion `{escape(raw[:20])}`: see `/escalation exclusions` for the numbers "
                         "(exclusions from the config file are changed there).")
        row = rows[raw.lstrip("#")]
        self.store.remove_exclusion(row["id"], actor=user_id)
        shown = escape(row["rule"])
        return Reply(f"Removed exclusion {row['id']}: {shown}",
                     announce=f"<@{user_id}> removed exclusion #{row['id']}: {shown}")

    # -- figures --------------------------------------------------------------------------------------------

    def stats(self, *, days: int) -> dict:
        since = iso(utcnow() - timedelta(days=days))
        found = self.store.activity(since=since)
        automatic = self.store.automatic_answer_counts(since=since)
        routes, actions = found["routes"], found["actions"]
        reviewed = sum(actions.get(a, 0) for a in ("approve", "edit", "reject"))

        def waited(row: dict, column: str) -> float:
            return (parse_time(row[column]) - parse_time(row["created_at"])).total_seconds()

        to_claim = [waited(r, "claimed_at") for r in found["escalations"] if r["claimed_at"]]
        to_send = [waited(r, "finished_at") for r in found["escalations"]
                   if r["finished_at"] and r["state"] == EscalationState.SENT]
        reasons = Counter((reason or "").split(":")[0] for reason in found["reject_reasons"])
        return {
            "days": days, "tickets": found["tickets"], "resolved": routes.get("resolve", 0),
            "drafted": routes.get("draft", 0), "escalated": routes.get("escalate", 0), "reviewed": reviewed,
            "approve_rate": actions.get("approve", 0) / reviewed if reviewed else None,
            "edit_rate": actions.get("edit", 0) / reviewed if reviewed else None,
            "reject_rate": actions.get("reject", 0) / reviewed if reviewed else None,
            "median_claim_seconds": statistics.median(to_claim) if to_claim else None,
            "median_send_seconds": statistics.median(to_send) if to_send else None,
            "reject_reasons": reasons.most_common(3), "topics": found["topics"],
            # Closed because an agent answered (or solved the ticket) in the helpdesk instead (bot.flows.answered).
            "answered_in_helpdesk": found["answered_in_helpdesk"],
            "automatic_answers": automatic["answers"], "reopened": automatic["reopened"],
            # After the post (bot.flows.lifecycle): reminded, managers_paged, sla_warned, sla_breached, keep_warm_sent.
            **self.store.lifecycle_counts(since=since),
        }

    def _share_line(self) -> list[str]:
        """What the engine's confidence means now, for managers wondering why it answers as often as it does."""
        if self._plain_score is not None and self._plain_score():
            learnt = self.store.learned_count()
            return [f"Confidence is a plain score, not yet a probability: too little history to calibrate on, so a "
                    f"ticket is answered on its own only when an article covers everything it asks. Replies learnt so "
                    f"far (approved, edited, or written in the helpdesk): {learnt} (at {MIN_CALIBRATION_EXAMPLES} "
                    f"Seam refits on them)."]
        found = self._uncovered_share() if self._uncovered_share is not None else None
        if found is None:
            return []
        share, from_reopens = found
        why = ("raised because customers reopened more automatic answers than their confidence foretold"
               if from_reopens else "estimated from recent tickets, never below 20%")
        return [f"Confidence assumes {share:.0%} of questions are outside the knowledge ({why})."]

    def stats_text(self, *, days: int) -> str:
        s = self.stats(days=days)
        decided = s["resolved"] + s["drafted"] + s["escalated"]

        def pct(value: float | None) -> str:
            return "–" if value is None else f"{value:.0%}"

        def waited(seconds: float | None) -> str:
            return "–" if seconds is None else duration(seconds)

        def share(n: int) -> str:
            return f"{n} ({n / decided:.0%})" if decided else str(n)

        lines = [
            f"*Last {days} days*: {s['tickets']} tickets seen; resolved by AI {share(s['resolved'])}, "
            f"drafted {share(s['drafted'])}, escalated {share(s['escalated'])}.",
            f"Agents reviewed {s['reviewed']} drafts: approved as is {pct(s['approve_rate'])}, edited "
            f"{pct(s['edit_rate'])}, rejected {pct(s['reject_rate'])}; escalations answered in the helpdesk: "
            f"{s['answered_in_helpdesk']}.",
            f"Median time to claim: {waited(s['median_claim_seconds'])}; to send: {waited(s['median_send_seconds'])}.",
            # Reopened within the quality guard's window (bot.flows.quality): the check on the resolved share.
            f"Automatic answers: {s['automatic_answers']}, reopened: {s['reopened']} "
            f"({pct(s['reopened'] / s['automatic_answers'] if s['automatic_answers'] else None)}).",
            *self._share_line(),
            f"After the post: SLA breaches {s['sla_breached']} (warned {s['sla_warned']}); reminders "
            f"{s['reminded']}, managers paged {s['managers_paged']}; keep-warm updates {s['keep_warm_sent']}.",
        ]
        if s["reject_reasons"]:
            reasons = ", ".join(f"{r or 'unspecified'} ({n})" for r, n in s["reject_reasons"])
            lines.append(f"Top reject reasons: {reasons}")
        for t in s["topics"]:
            lines.append(f"• {t['topic']}: {t['tickets']} tickets — {t['resolved']} resolved, {t['drafted']} drafted, "
                         f"{t['escalated']} escalated")
        return "\n".join(lines)

    def advice(self, *, target: float) -> dict:
        """From agents' verdicts on drafts (approved as is = the AI would have been right; edited or rejected =
        wrong), by confidence band, and the threshold `bot.policy.thresholds.recommend` chooses: the same
        measure and rule as the simulation's recommendation."""
        rows = self.store.reviewed_drafts()
        buckets = []
        for low in [i / 10 for i in range(10)]:
            band = [r for r in rows if low <= r["confidence"] < low + 0.1 or (low == 0.9 and r["confidence"] >= 1.0)]
            if band:
                approved = sum(r["action"] == "approve" for r in band)
                buckets.append({"band": f"{low:.1f}–{low + 0.1:.1f}", "drafts": len(band), "approved_as_is": approved,
                                "wrong_rate": round(1 - approved / len(band), 4)})
        points = thresholds.points_from([(r["confidence"], r["action"] != "approve") for r in rows],
                                        thresholds.grid(self.policy().thresholds.draft))
        chosen = thresholds.recommend(points, target=target)
        return {"target": target, "reviewed": len(rows), "buckets": buckets,
                "recommended": chosen.point.as_dict() if chosen.point else None, "reason": chosen.reason}

    def advise_text(self, *, target: float) -> str:
        a = self.advice(target=target)
        settings = self.policy().settings
        if a["reviewed"] == 0:
            return "No reviewed drafts yet: advice needs agents' approvals, edits and rejections to learn from."
        lines = [f"*Advice for a {target:.1%} target* (the wrong share of automatic answers, at the top of its 95% "
                 f"interval; from {a['reviewed']} drafts agents reviewed: approved as is = the AI would have been "
                 "right, edited or rejected = wrong)"]
        lines += [f"• confidence {b['band']}: {b['drafts']} drafts, {b['approved_as_is']} approved as is "
                  f"({1 - b['wrong_rate']:.0%})" for b in a["buckets"]]
        best = a["recommended"]
        if best is None:
            lines.append(f"No recommendation: {a['reason']}. auto is now {settings.thresholds.auto:.2f}.")
        else:
            auto, answered = best["auto_threshold"], best["graded_automatic_answers"]
            lines.append(f"*auto {auto:.2f}*: {best['wrong']} of the {answered} drafts above it were wrong "
                         f"({best['wrong_share']:.1%}, at most {best['wrong_share_high']:.1%} with 95% confidence). "
                         f"auto is now {settings.thresholds.auto:.2f}. Nothing changes until a manager runs "
                         f"`/escalation set auto {auto:.2f}`.")
        return "\n".join(lines)

    def queues(self) -> list[QueueLine]:
        """Each escalation channel's open and claimed escalations, with the routes posting there (App Home)."""
        return routes.queues(self.settings, self.store)

    def queue(self, *, user_id: str, owned_page: int = 0, unclaimed_page: int = 0, page_size: int = 15) -> dict:
        """The viewer's open escalations and the unclaimed ones (oldest first), a page of each, with totals and the
        page numbers shown: a page past the end (the list shrank since its button was drawn) shows the last one."""
        now = utcnow()

        def page(number: int, **where) -> tuple[list[dict], int, int]:
            number = max(0, number)
            rows, total = self.store.escalations_page(offset=number * page_size, limit=page_size, **where)
            if not rows and number > 0 and total:
                number = (total - 1) // page_size
                rows, total = self.store.escalations_page(offset=number * page_size, limit=page_size, **where)
            return [{"escalation_id": e.id, "ticket_id": e.ticket_id, "subject": e.subject, "link": e.link,
                     "age_seconds": seconds_since(e.created_at, now=now), "state": str(e.state)}
                    for e in rows], total, number

        owned, owned_total, owned_page = page(owned_page, states=OWNED_STATES, owner=user_id)
        unclaimed, unclaimed_total, unclaimed_page = page(unclaimed_page, states=(EscalationState.OPEN,))
        return {"owned": owned, "owned_total": owned_total, "owned_page": owned_page, "unclaimed": unclaimed,
                "unclaimed_total": unclaimed_total, "unclaimed_page": unclaimed_page}
