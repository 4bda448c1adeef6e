"""Which helpdesks Seam knows, by the name `HELPDESK` takes. Adding a helpdesk adds its folder and one line here.

Each entry names the package whose `PLUGIN` (a `HelpdeskPlugin`) describes it; packages are imported only when
asked for, so the command line stays fast and one helpdesk's dependencies never load for another.
"""

from __future__ import annotations

import importlib

from bot.errors import ConfigError
from bot.helpdesk.base import HelpdeskPlugin

HELPDESKS: dict[str, str] = {
    "zendesk": "bot.helpdesk.zendesk",
    "helpscout": "bot.helpdesk.helpscout",
    "gorgias": "bot.helpdesk.gorgias",
    "front": "bot.helpdesk.front",
    "freshdesk": "bot.helpdesk.freshdesk",
}


def names() -> list[str]:
    return list(HELPDESKS)


def plugin(name: str) -> HelpdeskPlugin:
    """The helpdesk called `name` (case-insensitive); ConfigError naming the supported ones otherwise."""
    package = HELPDESKS.get(name.strip().lower())
    if package is None:
        raise ConfigError(f"HELPDESK={name!r} is not supported yet (supported: {', '.join(HELPDESKS)})")
    return importlib.import_module(package).PLUGIN
