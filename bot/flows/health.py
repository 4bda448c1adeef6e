"""Seam's own health: is it doing its job, or failing quietly while `/healthz` says all is well?

- At start-up, `check_credentials` (called once by `serve`): Slack's `auth.test` with the bot token, the
  helpdesk's cheapest authenticated call (`Helpdesk.check`, its "me" endpoint), and the escalation channel — one
  Slack knows, not archived, with the app in it (`conversations.info`: `is_member`; crash recovery reads the
  channel's history, which needs membership). A definite refusal stops the start with a ConfigError of one line
  naming the problem. No answer at all (a network blip, a 5xx) is logged and Seam starts: the queue waits.
- While serving, `Health` hears the outcome of every Slack call (the client's observer, `bot.slack.client`) and
  every helpdesk call (`observe`). It reports a problem while the last Slack call failed on the token, while
  Slack refuses to let Seam post in a channel (until a call there succeeds), while the last helpdesk call was
  refused its credentials, while the OpenAI engine's server refuses Seam's key or model (every ticket then goes to
  a person), or when more jobs are dead than when Seam started (or than after the last retry).
  `/healthz` then answers 503 with the reasons, and managers see one alert at the top of the App Home.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.errors import ConfigError
from bot.helpdesk.base import Helpdesk, HelpdeskError, explained
from bot.store import Store
from bot.text import clip

log = logging.getLogger(__name__)

# Slack's answers meaning the token itself is refused (https://api.slack.com/methods/auth.test#errors).
SLACK_AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                               "org_login_required", "ekm_access_denied", "team_access_not_granted"})
# Slack's answers meaning Seam cannot post in that channel.
SLACK_CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "restricted_action"})
# The calls that post: a refusal of another call (a chat.update or chat.delete of a message in a channel archived or
# deleted since, which the poster then leaves alone) says nothing about where Seam posts now, and no later call
# there would ever clear it.
SLACK_POSTS = frozenset({"chat.postMessage", "chat.postEphemeral"})
# Helpdesk answers meaning the credentials are refused (or point at nothing: a wrong domain or URL).
HELPDESK_AUTH_STATUSES = frozenset({401, 403})
# The adapter methods that call the helpdesk (the others only read webhooks or build links).
HELPDESK_CALLS = frozenset({"fetch_ticket", "updated_since", "reply", "add_note", "assign", "set_status",
                            "add_tags", "find_agent", "knowledge", "check"})


def _one_line(text: str, limit: int = 300) -> str:
    return clip(" ".join(str(text).split()), limit)


# -- at start-up -------------------------------------------------------------------------------------------------


def check_credentials(*, slack: WebClient, helpdesk: Helpdesk, settings: Settings) -> list[str]:
    """Check the Slack token, the escalation channel and the helpdesk's credentials; ConfigError (one line) on a
    definite refusal. Returns what was found, for the log."""
    found: list[str] = []
    channel = settings.escalation_channel or ""
    try:
        who = slack.auth_test()
        found.append(f"Slack: signed in as {who.get('user') or who.get('user_id')} in {who.get('team')}")
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        if error in SLACK_AUTH_ERRORS:
            raise ConfigError(f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token (xoxb-…) "
                              "of the installed app again") from None
        log.warning("could not check SLACK_BOT_TOKEN with Slack (%s); starting anyway", error or exc)
        return found
    except Exception as exc:  # no answer at all: not a reason to stay down
        log.warning("could not reach Slack to check SLACK_BOT_TOKEN (%s); starting anyway", exc)
        return found
    try:
        info = slack.conversations_info(channel=channel)["channel"]
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        if error in ("channel_not_found", "not_in_channel"):
            raise ConfigError(f"ESCALATION_CHANNEL {channel} is not a channel Slack knows, or a private one the app "
                              "was not invited to: use the channel's ID (C…) and /invite @seam there") from None
        if error == "missing_scope":
            raise ConfigError(f"Slack will not show ESCALATION_CHANNEL {channel} (missing_scope): the app needs "
                              "channels:read and groups:read; reinstall it from manifest.yml") from None
        log.warning("could not check ESCALATION_CHANNEL %s with Slack (%s); starting anyway", channel,
                    error or exc)
        info = None
    except Exception as exc:
        log.warning("could not check ESCALATION_CHANNEL %s with Slack (%s); starting anyway", channel, exc)
        info = None
    if info is not None:
        label = f"#{info['name']} ({channel})" if info.get("name") else channel
        if info.get("is_archived"):
            raise ConfigError(f"ESCALATION_CHANNEL {label} is archived: unarchive it or choose another channel")
        # Only a definite "no": an answer without the field (an older or partial API) is not a refusal.
        if info.get("is_member") is False:
            raise ConfigError(f"the app is not a member of ESCALATION_CHANNEL {label}: invite it there "
                              "(/invite @seam); Seam posts there and reads its history to recover after a crash")
        found.append(f"escalation channel {label}: " + ("the app is a member" if info.get("is_member")
                                                          else "found (membership not reported)"))
    try:
        found.append(f"{helpdesk.name}: {helpdesk.check()}")
    except HelpdeskError as exc:
        if exc.status in HELPDESK_AUTH_STATUSES:
            raise ConfigError(f"HELPDESK={helpdesk.name} refused Seam's API credentials: "
                              f"{_one_line(explained(exc))}") from None
        # A 404 may be a wrong domain, or an API that does not serve this one endpoint: say so, and let the
        # first real call tell (its failure then shows in /healthz and the dead jobs).
        log.warning("could not check the %s credentials (%s); starting anyway", helpdesk.name, _one_line(exc))
    return found


# -- while serving -----------------------------------------------------------------------------------------------


class Health:
    """What `/healthz` and the managers' App Home say about Seam itself (see the module docstring)."""

    def __init__(self, *, store: Store, helpdesk: str) -> None:
        self._store = store
        self._helpdesk = helpdesk
        self._lock = threading.Lock()
        self._slack_auth: str | None = None  # "invalid_auth on chat.postMessage", while the last call failed so
        self._channels: dict[str, str] = {}  # channel -> the error of the last call there, while it fails
        self._helpdesk_auth: str | None = None
        self._engine: str | None = None  # why the AI engine's server refused Seam's settings on its last answer
        self._dead_floor: int | None = None

    def start(self) -> None:
        """Take the dead jobs already there as known: only new deaths are a problem."""
        with self._lock:
            self._dead_floor = self._store.queue_stats()["dead"]

    # -- what the clients report -----------------------------------------------------------------------------

    def slack_call(self, method: str, channel: str | None, error: str | None) -> None:
        """One Slack call's outcome (the client's observer)."""
        with self._lock:
            if error in SLACK_AUTH_ERRORS:
                if self._slack_auth is None:
                    log.error("Slack refused the bot token (%s on %s): escalations cannot reach Slack", error, method)
                self._slack_auth = f"{error} on {method}"
                return
            self._slack_auth = None
            if channel is None:
                return
            if error in SLACK_CHANNEL_ERRORS and method in SLACK_POSTS:
                if channel not in self._channels:
                    log.error("Slack refused %s in channel %s (%s)", method, channel, error)
                self._channels[channel] = f"{error} on {method}"
            elif error is None:
                self._channels.pop(channel, None)

    def helpdesk_call(self, error: BaseException | None) -> None:
        """One helpdesk call's outcome (`observe`)."""
        with self._lock:
            if isinstance(error, HelpdeskError) and error.status in HELPDESK_AUTH_STATUSES:
                if self._helpdesk_auth is None:
                    log.error("%s refused Seam's credentials: %s", self._helpdesk, _one_line(error))
                self._helpdesk_auth = _one_line(error, 200)
            elif error is None:
                self._helpdesk_auth = None

    def engine_call(self, refused: str | None) -> None:
        """One answer of the AI engine's server: why it refused Seam's settings (the key, the model), or None."""
        with self._lock:
            if refused and self._engine is None:
                log.error("the AI engine refused Seam's settings (%s): every ticket goes to a person", refused)
            self._engine = _one_line(refused, 200) if refused else None

    # -- what is said ------------------------------------------------------------------------------------------

    def problems(self, queue: dict | None = None) -> list[str]:
        """Why Seam is not doing its job right now, one sentence each; empty when all is well."""
        dead = (queue if queue is not None else self._store.queue_stats())["dead"]
        with self._lock:
            floor = self._dead_floor = dead if self._dead_floor is None else min(self._dead_floor, dead)
            found = []
            if self._slack_auth:
                found.append(f"Slack refused the bot token on its last call ({self._slack_auth}): nothing reaches "
                             "Slack until SLACK_BOT_TOKEN is fixed")
            found += [f"Slack will not let Seam post in {channel} ({error}): invite the app there (/invite @seam)"
                      for channel, error in sorted(self._channels.items())]
            if self._helpdesk_auth:
                found.append(f"{self._helpdesk} refused Seam's credentials on its last call ({self._helpdesk_auth})")
            if self._engine:
                found.append(f"The AI engine refused Seam's settings on its last call ({self._engine}): every ticket "
                             "goes to a person until OPENAI_API_KEY or OPENAI_MODEL is fixed")
        if dead > floor:
            found.append(f"{dead - floor} more job{'s' if dead - floor > 1 else ''} failed five times (or for a "
                         f"day while a service was down) and {'are' if dead - floor > 1 else 'is'} dead ({dead} dead "
                         "in all): `python -m bot jobs` lists them; retry them once the cause is fixed")
        return found

    def alert(self) -> str | None:
        """The one alert managers see at the top of the App Home while something is wrong."""
        found = self.problems()
        if not found:
            return None
        return ":rotating_light: *Seam is not doing its job right now*\n" + "\n".join(f"• {p}" for p in found)


class ObservedHelpdesk:
    """The helpdesk adapter as the rest of Seam uses it: every call's outcome is told to `Health` (a refusal with
    401 or 403 marks the credentials refused; any call that returns clears it); everything else passes through."""

    def __init__(self, helpdesk: Helpdesk, health: Health) -> None:
        self._helpdesk = helpdesk
        self._health = health
        self.name = helpdesk.name

    @property
    def wrapped(self) -> Helpdesk:
        return self._helpdesk

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._helpdesk, attr)
        if attr not in HELPDESK_CALLS or not callable(value):
            return value
        return self._observed(value)

    def _observed(self, call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        def observed(*args: Any, **kwargs: Any) -> Any:
            try:
                result = call(*args, **kwargs)
            except HelpdeskError as exc:
                self._health.helpdesk_call(exc)
                raise
            self._health.helpdesk_call(None)
            return result

        return observed


def observe(helpdesk: Helpdesk, health: Health) -> Helpdesk:
    return ObservedHelpdesk(helpdesk, health)  # type: ignore[return-value]
