"""Freshdesk: settings and the platform's codes from `FRESHDESK_*` (settings.py), the adapter with the shared-secret
webhook and the API v2 calls (adapter.py), the importer of API dumps for simulation (importer.py), and the export
that fetches such a dump from the API (export.py, `import freshdesk --from-api`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.helpdesk.base import HelpdeskPlugin
from bot.helpdesk.freshdesk.settings import STATUSES, FreshdeskSettings

if TYPE_CHECKING:
    import click

    from bot.config import Settings
    from bot.helpdesk.base import Helpdesk


def _build(settings: Settings) -> Helpdesk:
    from bot.helpdesk.freshdesk.adapter import FreshdeskAdapter

    return FreshdeskAdapter.from_settings(settings)


def _import_command() -> click.Command:
    from bot.helpdesk.freshdesk.importer import command

    return command


PLUGIN = HelpdeskPlugin(name="freshdesk", statuses=STATUSES, read_settings=FreshdeskSettings.from_env, build=_build,
                        import_command=_import_command)
