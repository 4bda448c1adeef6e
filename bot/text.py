"""Small helpers for text and time that every layer uses: cutting text to a limit, reading and writing ISO 8601
times, and saying a duration the way people do.
"""

from __future__ import annotations

from datetime import UTC, datetime


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when it was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """The form the store keeps times in: UTC, microseconds, `Z` (sorts as text in time order)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when no offset is given); None when missing or unreadable."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def seconds_since(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from an ISO time to `now` (default: this moment); None when the time is missing or unreadable."""
    moment = parse_time(value)
    return None if moment is None else ((now or utcnow()) - moment).total_seconds()


def duration(seconds: float) -> str:
    """A waiting time as people say it: minutes, then hours, then days."""
    if seconds < 3600:
        return f"{max(0.0, seconds) / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def percent(value: float | None) -> str:
    """A rate as a percentage with one decimal; "–" when there is none."""
    return "–" if value is None else f"{value * 100:.1f}%"
