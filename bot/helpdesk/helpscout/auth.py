"""The OAuth2 client-credentials access token Seam calls the Mailbox API with
(https://developer.helpscout.com/mailbox-api/overview/authentication/): one per process, fetched when first
needed, replaced a little before it runs out (tokens last two days) or as soon as the API refuses it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from bot.helpdesk.base import HelpdeskError

log = logging.getLogger(__name__)

# Take a new token this long before the old one runs out (a quarter of its life if that is shorter).
REFRESH_EARLY = 300.0


class AccessToken:
    """One OAuth2 client-credentials access token, shared by every thread: fetched when first needed, replaced a
    little before it expires or when the API refuses it. Its value is never logged or shown in a repr."""

    def __init__(self, fetch: Callable[[], Mapping], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._value: str | None = None
        self._renew_at = 0.0

    def __repr__(self) -> str:
        return "AccessToken(<hidden>)"

    def get(self) -> str:
        with self._lock:  # one fetch however many threads need a token at once
            if self._value is None or self._clock() >= self._renew_at:
                answer = self._fetch()
                value = answer.get("access_token")
                if not isinstance(value, str) or not value:
                    raise HelpdeskError("Help Scout's token endpoint answered without an access_token")
                lifetime = answer.get("expires_in")
                lifetime = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 3600.0
                self._value, self._renew_at = value, self._clock() + lifetime - min(REFRESH_EARLY, lifetime / 4)
                log.debug("fetched a Help Scout access token valid for %.0f s", lifetime)
            return self._value

    def invalidate(self, value: str) -> None:
        """Forget `value` if it is still the current token (another thread may have replaced it already)."""
        with self._lock:
            if self._value == value:
                self._value = None
