"""A stateful fake of the Slack Web API for Seam's tests.

Point ``slack_sdk.WebClient(token="xoxb-test", base_url=fake.url + "/")`` (or a
Bolt ``App(client=...)``) at a running :class:`FakeSlack`.  Every method is
served at ``POST {url}/{method}`` (GET with a query string works too), bodies
may be ``application/x-www-form-urlencoded``, ``application/json`` or
``multipart/form-data``; JSON-valued fields sent inside a form (``blocks``,
``attachments``, ``metadata``, ``view``) are decoded.

Like Slack, logical errors are HTTP 200 with ``{"ok": false, "error": ...}``;
injected failures (:meth:`FakeSlack.fail`) use real HTTP status codes, so a
``fail("chat.postMessage", status=429, headers={"Retry-After": "1"})`` surfaces
as ``SlackApiError`` with ``e.response.status_code == 429``.

Example::

    with FakeSlack() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.url + "/")
        client.chat_postMessage(channel="C1", text="hi")
        assert slack.messages("C1")[0]["text"] == "hi"
"""

from __future__ import annotations

import base64
import copy
import email.parser
import email.policy
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from ._base import Call, FakeHTTPServer, Handler, Request, Response

__all__ = ["Call", "FakeSlack"]

logger = logging.getLogger(__name__)

_JSON_FIELDS = ("blocks", "attachments", "metadata", "view", "user_auth_blocks")
_MAX_MESSAGE_BLOCKS = 50
_MAX_VIEW_BLOCKS = 100
_MAX_TEXT = 40_000
_MAX_SECTION_TEXT = 3000
_MAX_SECTION_FIELD = 2000


class _SlackError(Exception):
    """Raised inside handlers to answer ``{"ok": false, "error": code}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _int_param(params: dict[str, Any], key: str, default: int) -> int:
    value = params.get(key)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _SlackError("invalid_arguments") from None


class FakeSlack(FakeHTTPServer):
    """Stateful fake Slack Web API on 127.0.0.1 (see module docstring)."""

    BOT_USER_ID = "UBOT"
    BOT_ID = "BBOT"
    TEAM_ID = "T1"

    def __init__(self, *, token: str = "xoxb-test") -> None:
        super().__init__()
        self.token = token
        self._ts_seq = 0
        self._id_seq = 0
        # channel -> list of top-level message dicts (oldest first); each has "replies".
        self._channels: dict[str, list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        # channel id -> what conversations.info says of it (only channels added with add_channel)
        self._channel_info: dict[str, dict[str, Any]] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._socket_mode: tuple[str | None, str | None] = (None, None)  # (ws:// URL, app token): attach_socket_mode
        self._home_views: dict[str, str] = {}
        self._used_triggers: set[str] = set()
        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "apps.connections.open": self._apps_connections_open,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "usergroups.users.list": self._usergroups_users_list,
        }

    def start(self) -> FakeSlack:
        super().start()
        return self

    def __enter__(self) -> FakeSlack:
        return self.start()

    # ------------------------------------------------------------ test helpers
    def add_user(
        self,
        user_id: str,
        *,
        email: str,
        name: str,
        real_name: str | None = None,
        is_bot: bool = False,
    ) -> dict[str, Any]:
        """Register a workspace user for ``users.info`` / ``users.lookupByEmail``."""
        real = real_name or name
        user = {
            "id": user_id,
            "team_id": self.TEAM_ID,
            "name": name,
            "real_name": real,
            "deleted": False,
            "is_bot": is_bot,
            "tz": "UTC",
            "profile": {"email": email, "display_name": name, "real_name": real},
        }
        with self._lock:
            self._users[user_id] = user
            return copy.deepcopy(user)

    def add_channel(self, channel_id: str, *, name: str, is_member: bool = True, is_private: bool = False,
                    is_archived: bool = False) -> None:
        """Register a channel for ``conversations.info`` (whether the bot is in it: ``is_member``). Like Slack,
        a private channel the bot is not in is answered ``channel_not_found``."""
        with self._lock:
            self._channel_info[channel_id] = {
                "id": channel_id, "name": name, "is_channel": not is_private, "is_group": False,
                "is_im": False, "is_private": is_private, "is_archived": is_archived, "is_member": is_member,
                "created": 1700000000, "creator": "UADMIN", "name_normalized": name,
            }

    def attach_socket_mode(self, url: str, *, app_token: str) -> None:
        """Make ``apps.connections.open`` (called with ``app_token``) answer the WebSocket ``url`` of a
        :class:`FakeSocketMode`."""
        with self._lock:
            self._socket_mode = (url, app_token)

    def add_usergroup(self, usergroup_id: str, users: list[str]) -> None:
        """Register a user group for ``usergroups.users.list``."""
        with self._lock:
            self._usergroups[usergroup_id] = list(users)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages posted to ``channel``, oldest first.

        Each dict has ``ts``, ``text``, ``blocks``, ``metadata``, ``thread_ts``,
        ``user``, ``bot_id``, ``channel`` and ``replies`` (list of reply dicts).
        """
        with self._lock:
            return copy.deepcopy(self._channels.get(channel, []))

    def replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies (oldest first) in the thread whose parent is ``ts``."""
        with self._lock:
            parent = self._find_parent(channel, ts)
            return copy.deepcopy(parent["replies"]) if parent else []

    def post_as_user(self, channel: str, user: str, text: str, *, thread_ts: str) -> str:
        """A person's reply in a thread (what they type in Slack, not through the API); its ts."""
        with self._lock:
            parent = self._find_parent(channel, thread_ts)
            if parent is None:
                raise KeyError(f"no thread {thread_ts} in {channel}")
            msg = {"channel": channel, "ts": self._next_ts(), "text": text, "blocks": [], "attachments": [],
                   "metadata": None, "thread_ts": parent["ts"], "user": user, "bot_id": None, "params": {},
                   "replies": [], "parent_user_id": parent["user"]}
            parent["replies"].append(msg)
            return msg["ts"]

    def ephemerals(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages sent via ``chat.postEphemeral`` (optionally by channel)."""
        with self._lock:
            return [
                copy.deepcopy(m)
                for m in self._ephemerals
                if channel is None or m["channel"] == channel
            ]

    def views(self) -> dict[str, dict[str, Any]]:
        """All stored views (modal and home) by view id."""
        with self._lock:
            return copy.deepcopy(self._views)

    def view(self, view_id: str) -> dict[str, Any] | None:
        """One stored view by id, or None."""
        with self._lock:
            v = self._views.get(view_id)
            return copy.deepcopy(v) if v else None

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The App Home view last published for ``user_id``, or None."""
        with self._lock:
            view_id = self._home_views.get(user_id)
            return copy.deepcopy(self._views[view_id]) if view_id else None

    # ------------------------------------------------------------ plumbing
    def _dispatch(self, http_method: str, path: str) -> tuple[str, Handler]:
        name = path.strip("/").rsplit("/", 1)[-1] or "(root)"
        handler = self._handlers.get(name)
        if handler is None:
            return name, self._unknown_method
        return name, handler

    def _failure_body(self, status: int) -> Any:
        if status == 429:
            return {"ok": False, "error": "ratelimited"}
        return {"ok": False, "error": "internal_error"}

    def _parse_params(self, req: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(req.query)
        ctype = req.headers.get("content-type", "").lower()
        if req.body:
            if ctype.startswith("application/json"):
                decoded = json.loads(req.body.decode("utf-8"))
                if isinstance(decoded, dict):
                    params.update(decoded)
            elif ctype.startswith("multipart/form-data"):
                msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    b"Content-Type: " + req.headers["content-type"].encode() + b"\r\n\r\n" + req.body
                )
                for part in msg.iter_parts():
                    key = part.get_param("name", header="content-disposition")
                    if key and not part.get_filename():
                        params[key] = part.get_content()
                    elif key:
                        params[key] = part.get_payload(decode=True)
            else:  # form-encoded (Slack's default)
                form = parse_qs(req.body.decode("utf-8"), keep_blank_values=True)
                params.update({k: v[-1] for k, v in form.items()})
        for key in _JSON_FIELDS:
            value = params.get(key)
            if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    pass  # left as a string; validation reports it
        return params

    def _authorized(self, req: Request, params: dict[str, Any]) -> bool:
        auth = req.headers.get("authorization", "")
        if auth:
            return auth == f"Bearer {self.token}"
        return params.get("token") == self.token

    def _run(self, req: Request, params: dict[str, Any], fn: Any) -> Response:
        if not self._authorized(req, params):
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        try:
            with self._lock:
                payload = fn(params)
        except _SlackError as err:
            return 200, {}, {"ok": False, "error": err.code}
        return 200, {}, {"ok": True, **payload}

    def _next_ts(self) -> str:
        # Like Slack: the posting time, unique and increasing within the workspace.
        self._ts_seq = max(self._ts_seq + 1, int(time.time() * 1_000_000))
        return f"{self._ts_seq // 1_000_000}.{self._ts_seq % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        self._id_seq += 1
        return f"{prefix}{self._id_seq:08d}"

    def _find_parent(self, channel: str, ts: str) -> dict[str, Any] | None:
        for msg in self._channels.get(channel, []):
            if msg["ts"] == ts:
                return msg
            if any(r["ts"] == ts for r in msg["replies"]):
                return msg  # ts of a reply resolves to its thread
        return None

    def _find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        for msg in self._channels.get(channel, []):
            if msg["ts"] == ts:
                return msg
            for reply in msg["replies"]:
                if reply["ts"] == ts:
                    return reply
        return None

    @staticmethod
    def _validate_blocks(blocks: Any, *, max_blocks: int, error: str) -> list[dict[str, Any]]:
        if blocks is None or blocks == "":
            return []
        if not isinstance(blocks, list) or len(blocks) > max_blocks:
            raise _SlackError(error)
        for block in blocks:
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise _SlackError(error)
            if block["type"] == "section":
                text = block.get("text")
                if isinstance(text, dict) and len(str(text.get("text", ""))) > _MAX_SECTION_TEXT:
                    raise _SlackError(error)
                for fld in block.get("fields") or []:
                    if isinstance(fld, dict) and len(str(fld.get("text", ""))) > _MAX_SECTION_FIELD:
                        raise _SlackError(error)
        return blocks

    def _validate_message(self, params: dict[str, Any], *, require_content: bool) -> tuple[str, list]:
        text = params.get("text") or ""
        if not isinstance(text, str):
            text = str(text)
        blocks = self._validate_blocks(
            params.get("blocks"), max_blocks=_MAX_MESSAGE_BLOCKS, error="invalid_blocks"
        )
        if require_content and not text and not blocks and not params.get("attachments"):
            raise _SlackError("no_text")
        if len(text) > _MAX_TEXT:
            raise _SlackError("msg_too_long")
        return text, blocks

    @staticmethod
    def _public(msg: dict[str, Any], *, include_metadata: bool) -> dict[str, Any]:
        """Render a stored message the way conversations.* return it."""
        out: dict[str, Any] = {
            "type": "message",
            "user": msg["user"],
            "bot_id": msg["bot_id"],
            "text": msg["text"],
            "ts": msg["ts"],
            "team": FakeSlack.TEAM_ID,
        }
        if msg["blocks"]:
            out["blocks"] = copy.deepcopy(msg["blocks"])
        if msg.get("attachments"):
            out["attachments"] = copy.deepcopy(msg["attachments"])
        if msg.get("thread_ts"):
            out["thread_ts"] = msg["thread_ts"]
            if msg.get("parent_user_id"):
                out["parent_user_id"] = msg["parent_user_id"]
        replies = msg.get("replies") or []
        if replies:
            out["thread_ts"] = msg["ts"]
            out["reply_count"] = len(replies)
            out["reply_users"] = sorted({r["user"] for r in replies})
            out["reply_users_count"] = len(out["reply_users"])
            out["latest_reply"] = replies[-1]["ts"]
        if msg.get("edited"):
            out["edited"] = dict(msg["edited"])
        if include_metadata and msg.get("metadata"):
            out["metadata"] = copy.deepcopy(msg["metadata"])
        return out

    @staticmethod
    def _paginate(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        limit = _int_param(params, "limit", 100)
        limit = max(1, min(limit, 999))
        cursor = params.get("cursor") or ""
        offset = 0
        if cursor:
            try:
                offset = int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)[1])
            except (ValueError, IndexError, UnicodeDecodeError):
                raise _SlackError("invalid_cursor") from None
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        next_cursor = (
            base64.urlsafe_b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
        )
        return page, {"has_more": more, "response_metadata": {"next_cursor": next_cursor}}

    # ------------------------------------------------------------ methods
    def _unknown_method(self, req: Request, params: dict[str, Any]) -> Response:
        name = req.path.strip("/").rsplit("/", 1)[-1]
        logger.warning("FakeSlack: unimplemented method %r answered with ok:true", name)
        return self._run(req, params, lambda p: {})

    def _auth_test(self, req: Request, params: dict[str, Any]) -> Response:
        return self._run(
            req,
            params,
            lambda p: {
                "url": "https://test.slack.com/",
                "team": "Test",
                "user": "seam",
                "team_id": self.TEAM_ID,
                "user_id": self.BOT_USER_ID,
                "bot_id": self.BOT_ID,
                "is_enterprise_install": False,
            },
        )

    def _chat_post_message(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            channel = p.get("channel")
            if not channel:
                raise _SlackError("channel_not_found")
            text, blocks = self._validate_message(p, require_content=True)
            thread_ts = p.get("thread_ts") or None
            parent = None
            if thread_ts:
                parent = self._find_parent(channel, str(thread_ts))
                if parent is None:
                    raise _SlackError("thread_not_found")
            metadata = p.get("metadata")
            if metadata is not None and not isinstance(metadata, dict):
                raise _SlackError("invalid_metadata_format")
            msg: dict[str, Any] = {
                "channel": channel,
                "ts": self._next_ts(),
                "text": text,
                "blocks": blocks,
                "attachments": p.get("attachments") or [],
                "metadata": metadata,
                "thread_ts": parent["ts"] if parent else None,
                "user": self.BOT_USER_ID,
                "bot_id": self.BOT_ID,
                "params": {k: v for k, v in p.items() if k != "token"},
                "replies": [],
            }
            if parent is not None:
                msg["parent_user_id"] = parent["user"]
                parent["replies"].append(msg)
            else:
                self._channels.setdefault(channel, []).append(msg)
            public = self._public(msg, include_metadata=True)
            return {"channel": channel, "ts": msg["ts"], "message": public}

        return self._run(req, params, run)

    def _chat_update(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            channel, ts = p.get("channel"), p.get("ts")
            if not channel:
                raise _SlackError("channel_not_found")
            msg = self._find_message(channel, str(ts or ""))
            if msg is None:
                raise _SlackError("message_not_found")
            text, blocks = self._validate_message(p, require_content=False)
            if "text" in p:
                msg["text"] = text
            if "blocks" in p:
                msg["blocks"] = blocks
            if "attachments" in p:
                msg["attachments"] = p.get("attachments") or []
            if isinstance(p.get("metadata"), dict):
                msg["metadata"] = p["metadata"]
            msg["edited"] = {"user": self.BOT_USER_ID, "ts": self._next_ts()}
            public = self._public(msg, include_metadata=True)
            return {"channel": channel, "ts": msg["ts"], "text": msg["text"], "message": public}

        return self._run(req, params, run)

    def _chat_delete(self, req: Request, params: dict[str, Any]) -> Response:
        """A message (top-level or a reply) the app posted goes; someone else's is `cant_delete_message`, as for a
        bot token."""
        def run(p: dict[str, Any]) -> dict[str, Any]:
            channel, ts = p.get("channel"), str(p.get("ts") or "")
            if not channel:
                raise _SlackError("channel_not_found")
            messages = self._channels.get(channel, [])
            for listing in [messages, *(m["replies"] for m in messages)]:
                for msg in listing:
                    if msg["ts"] == ts:
                        if msg.get("user") != self.BOT_USER_ID:
                            raise _SlackError("cant_delete_message")
                        listing.remove(msg)
                        return {"channel": channel, "ts": ts}
            raise _SlackError("message_not_found")

        return self._run(req, params, run)

    def _chat_post_ephemeral(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            if not p.get("channel"):
                raise _SlackError("channel_not_found")
            if not p.get("user"):
                raise _SlackError("user_not_in_channel")
            text, blocks = self._validate_message(p, require_content=True)
            ts = self._next_ts()
            self._ephemerals.append(
                {
                    "channel": p["channel"],
                    "user": p["user"],
                    "text": text,
                    "blocks": blocks,
                    "thread_ts": p.get("thread_ts"),
                    "message_ts": ts,
                }
            )
            return {"message_ts": ts}

        return self._run(req, params, run)

    def _conversations_history(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            channel = p.get("channel")
            if not channel:
                raise _SlackError("channel_not_found")
            include_meta = _truthy(p.get("include_all_metadata", False))
            inclusive = _truthy(p.get("inclusive", False))
            oldest, latest = p.get("oldest"), p.get("latest")
            msgs = list(reversed(self._channels.get(channel, [])))  # newest first

            def in_window(m: dict[str, Any]) -> bool:
                ts = float(m["ts"])
                if oldest not in (None, ""):
                    o = float(oldest)
                    if ts < o or (ts == o and not inclusive):
                        return False
                if latest not in (None, ""):
                    lt = float(latest)
                    if ts > lt or (ts == lt and not inclusive):
                        return False
                return True

            try:
                msgs = [m for m in msgs if in_window(m)]
            except ValueError:
                raise _SlackError("invalid_ts_oldest") from None
            page, meta = self._paginate(msgs, p)
            return {
                "messages": [self._public(m, include_metadata=include_meta) for m in page],
                "pin_count": 0,
                **meta,
            }

        return self._run(req, params, run)

    def _conversations_replies(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            channel, ts = p.get("channel"), p.get("ts")
            if not channel:
                raise _SlackError("channel_not_found")
            parent = self._find_parent(channel, str(ts or ""))
            if parent is None:
                raise _SlackError("thread_not_found")
            include_meta = _truthy(p.get("include_all_metadata", False))
            items = [parent, *parent["replies"]]
            page, meta = self._paginate(items, p)
            return {"messages": [self._public(m, include_metadata=include_meta) for m in page], **meta}

        return self._run(req, params, run)

    def _conversations_open(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            if p.get("channel"):
                return {"channel": {"id": p["channel"]}}
            users = p.get("users")
            if isinstance(users, list):
                users = ",".join(users)
            ids = [u.strip() for u in str(users or "").split(",") if u.strip()]
            if not ids:
                raise _SlackError("users_list_not_supplied")
            if len(ids) == 1:
                return {"channel": {"id": "D" + ids[0], "is_im": True, "user": ids[0]}}
            return {"channel": {"id": "G" + "".join(sorted(ids)), "is_mpim": True}}

        return self._run(req, params, run)

    def _conversations_info(self, req: Request, params: dict[str, Any]) -> Response:
        # https://api.slack.com/methods/conversations.info
        def run(p: dict[str, Any]) -> dict[str, Any]:
            info = self._channel_info.get(str(p.get("channel") or ""))
            if info is None or (info["is_private"] and not info["is_member"]):
                raise _SlackError("channel_not_found")
            return {"channel": copy.deepcopy(info)}

        return self._run(req, params, run)

    def _apps_connections_open(self, req: Request, params: dict[str, Any]) -> Response:
        # https://api.slack.com/methods/apps.connections.open: an app-level token (xapp-…), never the bot token.
        with self._lock:
            url, app_token = self._socket_mode
        offered = params.get("token") or req.headers.get("authorization", "").removeprefix("Bearer ")
        if app_token is None or offered != app_token:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        return 200, {}, {"ok": True, "url": url}

    def _users_info(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            user = self._users.get(str(p.get("user") or ""))
            if user is None:
                raise _SlackError("user_not_found")
            return {"user": copy.deepcopy(user)}

        return self._run(req, params, run)

    def _users_lookup_by_email(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            wanted = str(p.get("email") or "").strip().lower()
            for user in self._users.values():
                if user["profile"]["email"].lower() == wanted:
                    return {"user": copy.deepcopy(user)}
            raise _SlackError("users_not_found")

        return self._run(req, params, run)

    def _store_view(self, view: Any, *, view_id: str | None = None) -> dict[str, Any]:
        if not isinstance(view, dict) or not view.get("type"):
            raise _SlackError("invalid_arguments")
        blocks = self._validate_blocks(
            view.get("blocks") or [], max_blocks=_MAX_VIEW_BLOCKS, error="invalid_arguments"
        )
        vid = view_id or self._next_id("V")
        stored = {
            "id": vid,
            "team_id": self.TEAM_ID,
            "app_id": "A1",
            "bot_id": self.BOT_ID,
            "type": view["type"],
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": blocks,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": self._next_id("h"),
            "root_view_id": vid,
            "previous_view_id": None,
        }
        self._views[vid] = stored
        return copy.deepcopy(stored)

    def _views_open(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            trigger = p.get("trigger_id")
            if not trigger:
                raise _SlackError("invalid_arguments")
            if trigger in self._used_triggers:
                raise _SlackError("exchanged_trigger_id")
            view = self._store_view(p.get("view"))
            self._used_triggers.add(trigger)
            return {"view": view}

        return self._run(req, params, run)

    def _views_update(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            view_id = p.get("view_id")
            if not view_id and p.get("external_id"):
                view_id = next(
                    (v["id"] for v in self._views.values() if v["external_id"] == p["external_id"]),
                    None,
                )
            if not view_id or view_id not in self._views:
                raise _SlackError("not_found")
            expected = p.get("hash")
            if expected and expected != self._views[view_id]["hash"]:
                raise _SlackError("hash_conflict")
            return {"view": self._store_view(p.get("view"), view_id=view_id)}

        return self._run(req, params, run)

    def _views_publish(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            user_id = p.get("user_id")
            if not user_id:
                raise _SlackError("invalid_arguments")
            view = self._store_view(p.get("view"), view_id=self._home_views.get(user_id))
            self._home_views[user_id] = view["id"]
            return {"view": view}

        return self._run(req, params, run)

    def _usergroups_users_list(self, req: Request, params: dict[str, Any]) -> Response:
        def run(p: dict[str, Any]) -> dict[str, Any]:
            group = self._usergroups.get(str(p.get("usergroup") or ""))
            if group is None:
                raise _SlackError("no_such_subteam")
            return {"users": list(group)}

        return self._run(req, params, run)
