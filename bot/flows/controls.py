"""Manager controls: what `/escalation` understands, the run-time settings it changes, and the figures behind
`stats` and `advise`.

Run-time settings live in the database and win over the TOML file: the global thresholds, per-topic
thresholds, the pause switch and extra exclusions. `effective_settings()` layers them on the file's settings;
the pipeline decides with that. Every change is validated, audited and comes back with the sentence to
announce in the escalation channel. Nothing here talks to Slack except through the injected `members` lookup
for a manager user group.
"""

from __future__ import annotations

import json
import shlex
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.policy import exclusions
from bot.config import ConfigError, Settings, Thresholds
from bot.slack.blocks import duration
from bot.store import Store, iso, utcnow

PAUSED_KEY = "paused"
THRESHOLDS_KEY = "thresholds"
TOPIC_THRESHOLDS_KEY = "topic_thresholds"
GROUP_CACHE_SECONDS = 300
ADVICE_MIN_EVIDENCE = 10
DEFAULT_ADVICE_TARGET = 0.05

HELP = """*`/escalation`* — see and tune where the AI stops and a person starts.
• `thresholds` — the current `auto` and `draft` thresholds, per-topic overrides, and whether automation is paused
• `stats [7d|30d]` — tickets seen, resolved / drafted / escalated, approve / edit / reject rates, time to claim and send
• `advise [target]` — the `auto` threshold agents' feedback supports for a target wrong-answer rate (default 5%)
• `exclusions` — ticket types the AI never touches
Managers only:
• `set auto|draft VALUE` and `set auto|draft VALUE for TOPIC` — change a threshold (0 ≤ draft ≤ auto ≤ 1)
• `pause` / `resume` — stop and restart automatic replies (while paused everything is drafted or escalated)
• `exclude "plain-language rule"` (e.g. `exclude "tickets tagged vip"`) and `unexclude N`"""


@dataclass(frozen=True)
class Reply:
    text: str
    announce: str | None = None  # posted in the escalation channel when a setting changed


def stored_exclusions(store: Store) -> list[dict]:
    return list(store.db.query("select id, rule, created_by, created_at from exclusions where removed_at is null "
                               "order by id"))


def effective_settings(store: Store, settings: Settings) -> tuple[Settings, bool]:
    """The file's settings with the database's run-time changes on top, and whether automation is paused."""
    stored = store.get_setting(THRESHOLDS_KEY)
    thresholds = Thresholds(**stored) if stored else settings.thresholds
    topics = dict(settings.topic_thresholds)
    topics.update({t: Thresholds(**v) for t, v in (store.get_setting(TOPIC_THRESHOLDS_KEY) or {}).items()})
    extra = exclusions.parse_rules([row["rule"] for row in stored_exclusions(store)])
    merged = replace(settings, thresholds=thresholds, topic_thresholds=topics,
                     exclusions=tuple(settings.exclusions) + tuple(extra))
    return merged, bool(store.get_setting(PAUSED_KEY, False))


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


def _changed(user_id: str, which: str, old: float, new: float, topic: str | None) -> Reply:
    verb = "raised" if new > old else "lowered" if new < old else "kept"
    scope = f" for {topic}" if topic else ""
    return Reply(f"Done: {which}{scope} is now {new:.2f} (was {old:.2f}).",
                 announce=f"<@{user_id}> {verb} {which}{scope} from {old:.2f} to {new:.2f}")


def _target(raw: str) -> float | None:
    """A wrong-answer rate: `0.02` or `2%`, strictly between 0 and 1."""
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        return None
    return value if 0 < value < 1 else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class Controls:
    """The `/escalation` command and the App Home's settings, for one deployment."""

    def __init__(self, *, store: Store, settings: Settings,
                 members: Callable[[str], list[str]] | None = None) -> None:
        self.store = store
        self.settings = settings
        self._members = members
        self._group: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._group_lock = threading.Lock()

    # -- who may change things ------------------------------------------------------------------------------

    def is_manager(self, user_id: str) -> bool:
        if user_id in self.settings.manager_user_ids:
            return True
        group = self.settings.manager_group
        if not group or self._members is None:
            return False
        with self._group_lock:
            fetched, members = self._group
            if time.monotonic() - fetched > GROUP_CACHE_SECONDS:
                try:
                    members = frozenset(self._members(group))
                    self._group = (time.monotonic(), members)
                except Exception:  # Slack unreachable: keep the last known members rather than lock managers out
                    pass
            return user_id in members

    def _refuse(self, user_id: str) -> Reply | None:
        if self.is_manager(user_id):
            return None
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
            days = {"7d": 7, "30d": 30, "": 7}.get((args[0].lower() if args else ""), None)
            if days is None:
                return Reply("Use `stats`, `stats 7d` or `stats 30d`.")
            return Reply(self.stats_text(days=days))
        if verb == "advise":
            target = _target(args[0]) if args else DEFAULT_ADVICE_TARGET
            if target is None:
                    return Reply("The target is a wrong-answer rate between 0 and 1 (e.g. `advise 0.02` or "
                                 "`advise 2%`).")
            return Reply(self.advise_text(target=target))
        if verb == "exclusions":
            return Reply(self.exclusions_text())
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
            return self.unexclude(user_id, args[0] if args else "")
        return Reply(f"I don't know `{verb[:40]}`.\n\n{HELP}")

    # -- thresholds and pause -------------------------------------------------------------------------------

    def thresholds_text(self) -> str:
        settings, paused = effective_settings(self.store, self.settings)
        lines = [f"*auto* {settings.thresholds.auto:.2f} · *draft* {settings.thresholds.draft:.2f}"
                 + (" · :double_vertical_bar: *automation is paused*" if paused else " · automation is on")]
        for topic, value in sorted(settings.topic_thresholds.items()):
            lines.append(f"• for {topic}: auto {value.auto:.2f}, draft {value.draft:.2f}")
        return "\n".join(lines)

    def set_threshold(self, user_id: str, args: list[str]) -> Reply:
        usage = "Use `set auto VALUE`, `set draft VALUE` or `set auto VALUE for TOPIC` (VALUE between 0 and 1)."
        if len(args) < 2 or args[0].lower() not in ("auto", "draft") or (len(args) > 2 and (
                len(args) < 4 or args[2].lower() != "for")):
            return Reply(usage)
        which, value = args[0].lower(), _number(args[1])
        if value is None:
            return Reply(f"`{args[1][:20]}` is not a number between 0 and 1. {usage}")
        topic = " ".join(args[3:]) if len(args) > 3 else None
        settings, _ = effective_settings(self.store, self.settings)
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
        return _changed(user_id, which, getattr(current, which), value, topic)

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
        current = self.effective()[0].thresholds
        self.store.set_setting(THRESHOLDS_KEY, values, actor=user_id)
        return {}, [_changed(user_id, key, getattr(current, key), values[key], None)
                    for key in ("auto", "draft") if values[key] != getattr(current, key)]

    def effective(self) -> tuple[Settings, bool]:
        return effective_settings(self.store, self.settings)

    def set_paused(self, user_id: str, *, paused: bool) -> Reply:
        _, now_paused = effective_settings(self.store, self.settings)
        if now_paused == paused:
            return Reply(f"Nothing changed: automation is already {'paused' if paused else 'on'}.")
        self.store.set_setting(PAUSED_KEY, paused, actor=user_id)
        if paused:
            return Reply("Paused: nothing is answered automatically; every ticket is drafted or escalated.",
                         announce=f"<@{user_id}> paused automatic replies: every ticket now goes to a person")
        return Reply("Resumed: confident tickets are answered automatically again.",
                     announce=f"<@{user_id}> resumed automatic replies")

    # -- exclusions -----------------------------------------------------------------------------------------

    def exclusions_text(self) -> str:
        lines = [f"• from the config file: {e.text}" for e in self.settings.exclusions]
        lines += [f"• *{row['id']}.* {row['rule']} (added by <@{row['created_by']}>)"
                  for row in stored_exclusions(self.store)]
        return "\n".join(["*Ticket types the AI never touches*", *lines]) if lines else (
            "No exclusions yet. Add one with `/escalation exclude \"tickets tagged vip\"`.")

    def exclude(self, user_id: str, rule: str) -> Reply:
        rule = rule.strip().strip('"“”').strip()
        try:
            exclusions.parse_rule(rule)
        except ConfigError as exc:
            return Reply(f"Nothing changed: {exc}")
        if not rule:
            return Reply('Say what to exclude, e.g. `/escalation exclude "anything about chargebacks"`.')
        with self.store.db.atomic():
            row_id = self.store.db["exclusions"].insert({"rule": rule[:300], "created_by": user_id,
                                                         "created_at": iso(utcnow())}).last_pk
            self.store.audit(actor=user_id, action="exclude", detail={"id": row_id, "rule": rule})
        return Reply(f"Added exclusion {row_id}: {rule}",
                     announce=f"<@{user_id}> excluded from automation: {rule} (#{row_id})")

    def unexclude(self, user_id: str, raw: str) -> Reply:
        rows = {str(r["id"]): r for r in stored_exclusions(self.store)}
        if raw.lstrip("#") not in rows:
            return Reply(f"There is no exclusion `{raw[:20]}`: see `/escalation exclusions` for the numbers "
                         "(exclusions from the config file are changed there).")
        row = rows[raw.lstrip("#")]
        with self.store.db.atomic():
            self.store.db["exclusions"].update(row["id"], {"removed_by": user_id, "removed_at": iso(utcnow())})
            self.store.audit(actor=user_id, action="unexclude", detail={"id": row["id"], "rule": row["rule"]})
        return Reply(f"Removed exclusion {row['id']}: {row['rule']}",
                     announce=f"<@{user_id}> removed exclusion #{row['id']}: {row['rule']}")

    # -- figures --------------------------------------------------------------------------------------------

    def stats(self, *, days: int) -> dict:
        since = iso(utcnow() - timedelta(days=days))
        db = self.store.db
        routes = dict(db.execute("select route, count(*) from decisions where created_at >= ? group by route",
                                 [since]).fetchall())
        seen = db.execute("select count(distinct ticket_key) from decisions where created_at >= ?",
                          [since]).fetchone()[0]
        actions = dict(db.execute("select action, count(*) from feedback where created_at >= ? group by action",
                                  [since]).fetchall())
        reviewed = sum(actions.get(a, 0) for a in ("approve", "edit", "reject"))
        rows = list(db.query("select created_at, claimed_at, finished_at, state from escalations "
                             "where created_at >= ?", [since]))
        to_claim = [(_parse_time(r["claimed_at"]) - _parse_time(r["created_at"])).total_seconds()
                    for r in rows if r["claimed_at"]]
        to_send = [(_parse_time(r["finished_at"]) - _parse_time(r["created_at"])).total_seconds()
                   for r in rows if r["finished_at"] and r["state"] == "sent"]
        reasons = Counter((r["reason"] or "").split(":")[0] for r in db.query(
            "select reason from feedback where action = 'reject' and created_at >= ?", [since]))
        topics = {r["topic"]: r for r in db.query(
            "select coalesce(answer_source, '(no answer)') as topic, count(*) as tickets, "
            "sum(route = 'resolve') as resolved, sum(route = 'draft') as drafted, sum(route = 'escalate') as escalated "
            "from decisions where created_at >= ? group by topic order by tickets desc limit 8", [since])}
        return {
            "days": days, "tickets": seen, "resolved": routes.get("resolve", 0), "drafted": routes.get("draft", 0),
            "escalated": routes.get("escalate", 0), "reviewed": reviewed,
            "approve_rate": actions.get("approve", 0) / reviewed if reviewed else None,
            "edit_rate": actions.get("edit", 0) / reviewed if reviewed else None,
            "reject_rate": actions.get("reject", 0) / reviewed if reviewed else None,
            "median_claim_seconds": statistics.median(to_claim) if to_claim else None,
            "median_send_seconds": statistics.median(to_send) if to_send else None,
            "reject_reasons": reasons.most_common(3), "topics": list(topics.values()),
        }

    def stats_text(self, *, days: int) -> str:
        s = self.stats(days=days)
        decided = s["resolved"] + s["drafted"] + s["escalated"]

        def pct(value: float | None) -> str:
            return "–" if value is None else f"{value:.0%}"

        def share(n: int) -> str:
            return f"{n} ({n / decided:.0%})" if decided else str(n)

        lines = [
            f"*Last {days} days*: {s['tickets']} tickets seen; resolved by AI {share(s['resolved'])}, "
            f"drafted {share(s['drafted'])}, escalated {share(s['escalated'])}.",
            f"Agents reviewed {s['reviewed']} drafts: approved as is {pct(s['approve_rate'])}, edited "
            f"{pct(s['edit_rate'])}, rejected {pct(s['reject_rate'])}.",
            "Median time to claim: " + ("–" if s["median_claim_seconds"] is None else duration(s["median_claim_seconds"]))
            + "; to send: " + ("–" if s["median_send_seconds"] is None else duration(s["median_send_seconds"])) + ".",
        ]
        if s["reject_reasons"]:
            lines.append("Top reject reasons: " + ", ".join(f"{r or 'unspecified'} ({n})" for r, n in s["reject_reasons"]))
        for t in s["topics"]:
            lines.append(f"• {t['topic']}: {t['tickets']} tickets — {t['resolved']} resolved, {t['drafted']} drafted, "
                         f"{t['escalated']} escalated")
        return "\n".join(lines)

    def advice(self, *, target: float) -> dict:
        """From agents' verdicts on drafts: where an automatic answer would have been right (approved as is)
        or wrong (edited or rejected), by confidence; and the lowest `auto` that keeps wrong ones under target."""
        rows = list(self.store.db.query(
            "select confidence, action from feedback where action in ('approve', 'edit', 'reject') "
            "and confidence is not null"))
        buckets = []
        for low in [i / 10 for i in range(10)]:
            band = [r for r in rows if low <= r["confidence"] < low + 0.1 or (low == 0.9 and r["confidence"] >= 1.0)]
            if band:
                approved = sum(r["action"] == "approve" for r in band)
                buckets.append({"band": f"{low:.1f}–{low + 0.1:.1f}", "drafts": len(band), "approved_as_is": approved,
                                "wrong_rate": round(1 - approved / len(band), 4)})
        best = None
        for threshold in sorted({round(r["confidence"], 2) for r in rows}):
            above = [r for r in rows if r["confidence"] >= threshold]
            wrong = sum(r["action"] != "approve" for r in above)
            if len(above) >= ADVICE_MIN_EVIDENCE and wrong / len(above) <= target:
                best = {"auto": threshold, "drafts_above": len(above), "wrong": wrong,
                        "wrong_rate": round(wrong / len(above), 4)}
                break
        return {"target": target, "reviewed": len(rows), "buckets": buckets, "recommended": best}

    def advise_text(self, *, target: float) -> str:
        a = self.advice(target=target)
        settings, _ = effective_settings(self.store, self.settings)
        if a["reviewed"] == 0:
            return "No reviewed drafts yet: advice needs agents' approvals, edits and rejections to learn from."
        lines = [f"*Advice for a {target:.1%} wrong-answer target* (from {a['reviewed']} drafts agents reviewed; "
                 "approved as is = the AI would have been right, edited or rejected = wrong)"]
        lines += [f"• confidence {b['band']}: {b['drafts']} drafts, {b['approved_as_is']} approved as is "
                  f"({1 - b['wrong_rate']:.0%})" for b in a["buckets"]]
        best = a["recommended"]
        if best is None:
            lines.append(f"No threshold keeps wrong answers under {target:.1%} with at least {ADVICE_MIN_EVIDENCE} "
                         f"drafts above it: keep auto at {settings.thresholds.auto:.2f} or higher.")
        else:
            lines.append(f"*auto {best['auto']:.2f}* would have kept wrong automatic answers at "
                         f"{best['wrong_rate']:.1%} ({best['wrong']} of {best['drafts_above']} drafts above it). "
                         f"auto is now {settings.thresholds.auto:.2f}. Nothing changes until a manager runs "
                         f"`/escalation set auto {best['auto']:.2f}`.")
        return "\n".join(lines)

    def queue(self, *, user_id: str, owned_page: int = 0, unclaimed_page: int = 0, page_size: int = 15) -> dict:
        """The viewer's open escalations and the unclaimed ones (oldest first), a page of each, with totals."""
        now = utcnow()

        def page(where: str, params: list, number: int) -> tuple[list[dict], int]:
            total = self.store.db.execute(f"select count(*) from escalations where {where}", params).fetchone()[0]
            rows = list(self.store.db.query(
                f"select id, ticket_id, card, created_at, state from escalations where {where} "
                f"order by created_at, id limit ? offset ?", [*params, page_size, max(0, number) * page_size]))
            items = []
            for row in rows:
                card = json.loads(row["card"] or "{}")
                items.append({"escalation_id": row["id"], "ticket_id": row["ticket_id"],
                              "subject": (card.get("ticket") or {}).get("subject") or "", "link": card.get("link"),
                              "age_seconds": (now - _parse_time(row["created_at"])).total_seconds(),
                              "state": row["state"]})
            return items, total

        owned, owned_total = page("owner = ? and state in ('claimed', 'sending', 'failed')", [user_id], owned_page)
        unclaimed, unclaimed_total = page("state = 'open'", [], unclaimed_page)
        return {"owned": owned, "owned_total": owned_total, "unclaimed": unclaimed,
                "unclaimed_total": unclaimed_total}
