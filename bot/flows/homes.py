"""The App Home: what each person sees on Seam's Home tab — their escalations and the unclaimed ones (a page of
each), the queue's state, the week's figures and, for managers, the controls (bot.slack.blocks `home_view`).

It is published when its viewer opens the tab and after each change they make there (handlers/home.py). Slack
keeps a published view until it is replaced, so a Home goes on listing what it listed when it was published;
that is harmless for an escalation claimed or finished since (a click on it says so), but not for one whose
conversation was erased: its subject would stay on the Home until its viewer opened the tab again. So Seam
records whose Home it published and which escalations it listed (bot.store m022, ids only), and an erasure
(bot.flows.erasure) queues a `refresh_home` job for each person whose Home lists one of the erased tickets'
escalations; the job publishes that Home again, as it is now (first pages). What a Home lists is recorded once
Slack has taken it (a refused publish leaves the old view, and its record); an erasure committed while a view was
being built and sent cannot find it on record yet, so the publish looks for one after, and publishes again.
"""

from __future__ import annotations

import json
import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import transient
from bot.flows.controls import Controls
from bot.models import Event
from bot.slack.blocks import HomeItem, home_view
from bot.store import Store
from bot.text import iso, utcnow

log = logging.getLogger(__name__)

REFRESH_HOME_KIND = "refresh_home"


class Homes:
    def __init__(self, *, store: Store, controls: Controls, slack: WebClient) -> None:
        self.store = store
        self.controls = controls
        self.slack = slack

    def publish(self, user_id: str, *, owned_page: int = 0, unclaimed_page: int = 0, again: bool = True) -> None:
        """Publish `user_id`'s App Home as it is now, at these pages, and record what it lists once Slack has it
        (a refused publish leaves the Home, and the record, as they were). An erasure committed while the view was
        built and sent finds no record of it yet: the view is then built and published once more."""
        started = iso(utcnow())
        controls = self.controls
        queue = controls.queue(user_id=user_id, owned_page=owned_page, unclaimed_page=unclaimed_page)
        manager = controls.is_manager(user_id)
        view = home_view(
            manager=manager, paused=controls.policy().paused,
            thresholds_text=controls.thresholds_text(),
            stats_text=controls.stats_text(days=7),
            queues=controls.queues(),
            owned=[HomeItem(**item) for item in queue["owned"]], owned_total=queue["owned_total"],
            owned_page=queue["owned_page"],
            unclaimed=[HomeItem(**item) for item in queue["unclaimed"]], unclaimed_total=queue["unclaimed_total"],
            unclaimed_page=queue["unclaimed_page"], queue=self.store.queue_stats(),
            notice=controls.home_notice(manager=manager))
        listed = [item["escalation_id"] for item in (*queue["owned"], *queue["unclaimed"])]
        self.slack.views_publish(user_id=user_id, view=view)
        self.store.note_home(user_id, escalation_ids=listed)
        if again and self.store.erased_since(listed, since=started):
            self.publish(user_id, owned_page=owned_page, unclaimed_page=unclaimed_page, again=False)

    def refresh_job(self, event: Event) -> str:
        """The `refresh_home` job: publish one person's Home again. Slack being down fails the job, which the queue
        retries; a Home Slack will not take for this person (they left the workspace, say) is forgotten, not
        retried: nobody can see it."""
        user_id = json.loads(event.body or "{}")["user_id"]
        try:
            self.publish(user_id)
        except SlackApiError as exc:
            if transient(exc):
                raise
            error = exc.response.get("error") if exc.response is not None else None
            log.warning("could not publish the App Home of %s again (%s); not trying again", user_id, error)
            self.store.forget_home(user_id)
            return f"not published: {error}"
        return "published again"
