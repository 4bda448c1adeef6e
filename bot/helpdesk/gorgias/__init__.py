"""Gorgias: settings from `GORGIAS_*` (settings.py), the adapter with the shared-secret webhook and the API calls
(adapter.py), the importer of API dumps for simulation (importer.py), and the export that fetches such a dump from
the API (export.py, `import gorgias --from-api`). Set-up: docs/helpdesks/gorgias.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.helpdesk.base import HelpdeskPlugin
from bot.helpdesk.gorgias.settings import STATUSES, GorgiasSettings

if TYPE_CHECKING:
    import click

    from bot.config import Settings
    from bot.helpdesk.base import Helpdesk


def _build(settings: Settings) -> Helpdesk:
    from bot.helpdesk.gorgias.adapter import GorgiasAdapter

    return GorgiasAdapter.from_settings(settings)


def _import_command() -> click.Command:
    from bot.helpdesk.gorgias.importer import command

    return command


PLUGIN = HelpdeskPlugin(name="gorgias", statuses=STATUSES, read_settings=GorgiasSettings.from_env, build=_build,
                        import_command=_import_command)
