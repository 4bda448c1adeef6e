"""The errors the core raises for people to read: each message is one line naming what to fix.

`bot.cli` turns them into a one-line error on stderr and a non-zero exit; nothing else catches them broadly.
Integration errors (a helpdesk call that failed, a forged webhook) live with their integration in
`bot.helpdesk.base`.
"""

from __future__ import annotations


class ConfigError(Exception):
    """Configuration that cannot work: a missing variable, a bad value in seam.toml, an unreadable rule."""


class InputError(ConfigError):
    """An input file that cannot be used at all (a bad row in a usable file is reported and skipped instead)."""
