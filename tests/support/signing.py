"""Requests signed the way the platforms sign them: Zendesk webhook headers (base64 HMAC-SHA256 over timestamp
and body), Slack request headers (`v0=` HMAC-SHA256 over `v0:<timestamp>:<body>`), and a Slack interaction
payload form-encoded as `payload=<json>` with its headers. Secrets default to the ones in `constants`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

from bot.helpdesk.zendesk.adapter import sign
from tests.support.constants import SLACK_SECRET, ZENDESK_SECRET


def zendesk_headers(body: bytes, *, secret: str = ZENDESK_SECRET, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": sign(secret, timestamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }


def slack_headers(body: bytes, *, secret: str = SLACK_SECRET, timestamp: int | None = None,
                  content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    timestamp = timestamp or int(time.time())
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature}


def signed_form(payload: dict, **kwargs) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return body, slack_headers(body, **kwargs)
