"""Front: settings from `FRONT_*` (settings.py), the adapter with webhook verification and the API calls
(adapter.py), and the importer of API dumps for simulation (importer.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.helpdesk.base import HelpdeskPlugin
from bot.helpdesk.front.settings import STATUSES, FrontSettings

if TYPE_CHECKING:
    import click

    from bot.config import Settings
    from bot.helpdesk.base import Helpdesk


def _build(settings: Settings) -> Helpdesk:
    from bot.helpdesk.front.adapter import FrontAdapter

    return FrontAdapter.from_settings(settings)


def _import_command() -> click.Command:
    from bot.helpdesk.front.importer import command

    return command


PLUGIN = HelpdeskPlugin(name="front", statuses=STATUSES, read_settings=FrontSettings.from_env, build=_build,
                        import_command=_import_command)
