"""Help Scout: settings from `HELPSCOUT_*` (settings.py), the OAuth2 token (auth.py), the API shapes both the
adapter and the importer read (shapes.py), knowledge sync from saved replies and Docs (knowledge.py), the adapter
with webhook verification and the Mailbox API calls (adapter.py), and the importer of API dumps for simulation
(importer.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.helpdesk.base import HelpdeskPlugin
from bot.helpdesk.helpscout.settings import STATUSES, HelpScoutSettings

if TYPE_CHECKING:
    import click

    from bot.config import Settings
    from bot.helpdesk.base import Helpdesk


def _build(settings: Settings) -> Helpdesk:
    from bot.helpdesk.helpscout.adapter import HelpScoutAdapter

    return HelpScoutAdapter.from_settings(settings)


def _import_command() -> click.Command:
    from bot.helpdesk.helpscout.importer import command

    return command


PLUGIN = HelpdeskPlugin(name="helpscout", statuses=STATUSES, read_settings=HelpScoutSettings.from_env, build=_build,
                        import_command=_import_command)
